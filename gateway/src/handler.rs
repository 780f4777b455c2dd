//! One HTTP request, end to end: route, authenticate, plan against the schema cache, run
//! as ONE transaction (role and request settings first, then the statement, commit or
//! roll back), and answer as PostgREST does.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;

use crate::auth::{self, Auth};
use crate::error::ApiError;
use crate::pool::PoolError;
use crate::request::{parse_accept, Accept, Prefer, Query, Resolution, Return, SelectItem};
use crate::schema::{Function, Returns, SchemaCache};
use crate::sql::{self, Args, Output, Stmt};
use crate::App;

const MAX_BODY: usize = 16 * 1024 * 1024;
const JSON: &str = "application/json; charset=utf-8";
const OBJECT: &str = "application/vnd.pgrst.object+json; charset=utf-8";

/// The settings every transaction starts with, as PostgREST sets them: the role from the
/// JWT (`SET LOCAL ROLE`, bound as a value), the claims, method, path, headers and
/// cookies of the request, and the search path.
const SETUP_SQL: &str = "select set_config('role', $1, true), \
    set_config('request.jwt.claims', $2, true), \
    set_config('request.method', $3, true), \
    set_config('request.path', $4, true), \
    set_config('request.headers', $5, true), \
    set_config('request.cookies', $6, true), \
    set_config('search_path', $7, true)";

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Reply {
    fn json(status: u16, content_type: &str, body: Option<String>) -> Reply {
        let mut headers = Vec::new();
        if body.is_some() {
            headers.push(("Content-Type".to_string(), content_type.to_string()));
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        let mut r = Reply::json(e.status, JSON, Some(e.body()));
        if !e.code.is_empty() {
            r.headers.push((
                "Proxy-Status".into(),
                format!("tollgate-gateway; error={}", e.code),
            ));
        }
        r.headers.extend(e.headers.iter().cloned());
        r
    }
}

/// What the single statement of a request returned.
struct Outcome {
    body: Option<String>,
    rows: i64,
    inserted: bool,
    total: Option<i64>,
    /// `response.status` / `response.headers` as the statement left them.
    guc_status: Option<String>,
    guc_headers: Option<String>,
}

/// Everything about the caller and the request that goes into the transaction settings.
struct Ctx {
    auth: Auth,
    method: String,
    path: String,
    headers_json: String,
    cookies_json: String,
    read_only: bool,
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let head = method == Method::HEAD;
    let reply = match route(&app, req).await {
        Ok(r) => r,
        Err(e) => Reply::from(e),
    };
    if !app.cfg.quiet {
        eprintln!(
            "{method} {path} -> {} ({} ms)",
            reply.status,
            started.elapsed().as_millis()
        );
    }
    into_response(reply, head)
}

fn into_response(reply: Reply, head: bool) -> Response<Full<Bytes>> {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(reply.body.unwrap_or_default())
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("Content-Range, Preference-Applied, Proxy-Status"),
    );
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.append(k, v);
        }
    }
    resp
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn route(app: &Arc<App>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = req.uri().path().to_string();
    let Some(rest) = path
        .strip_prefix("/rest/v1")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return Err(ApiError::new(
            404,
            "PGRST125",
            "Invalid path specified in request URL",
        ));
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let method = req.method().clone();

    if method == Method::OPTIONS {
        let allow_headers = header(req.headers(), "access-control-request-headers")
            .unwrap_or("Authorization, apikey, Content-Type, Prefer, Accept, Accept-Profile, Content-Profile, Range, X-Client-Info")
            .to_string();
        return Ok(Reply::json(200, JSON, None)
            .header(
                "Access-Control-Allow-Methods",
                "GET, HEAD, POST, PATCH, DELETE, OPTIONS",
            )
            .header("Access-Control-Allow-Headers", allow_headers)
            .header("Access-Control-Max-Age", "86400"));
    }

    let query = Query::parse(req.uri().query().unwrap_or(""))?;
    if app.cfg.require_apikey {
        if let Some(secret) = &app.cfg.jwt_secret {
            auth::check_apikey(req.headers(), query.apikey.as_deref(), secret, api_keys(&app.cfg))?;
        }
    }

    if segments.is_empty() {
        return if method == Method::GET || method == Method::HEAD {
            root(app).await
        } else {
            Err(unsupported_method(&method))
        };
    }

    let auth = auth::authenticate(
        req.headers(),
        app.cfg.jwt_secret.as_deref(),
        &app.cfg.anon_role,
        api_keys(&app.cfg),
    )?;
    let prefer = Prefer::parse(
        req.headers()
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    prefer.check_strict()?;
    let accept = parse_accept(header(req.headers(), "accept"))?;
    if let Some(profile) =
        header(req.headers(), "accept-profile").or(header(req.headers(), "content-profile"))
    {
        if profile != app.cfg.schema {
            return Err(
                ApiError::new(406, "PGRST106", format!("Invalid schema: {profile}")).hint(format!(
                    "Only the following schemas are exposed: {}",
                    app.cfg.schema
                )),
            );
        }
    }
    if req.headers().contains_key("range") {
        return Err(ApiError::unsupported(
            "the Range header (use limit and offset)",
        ));
    }

    let mut hdrs = Map::new();
    for name in req.headers().keys() {
        let values: Vec<&str> = req
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        hdrs.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    let mut cookies = Map::new();
    for c in req
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
    {
        if let Some((k, v)) = c.trim().split_once('=') {
            cookies.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
        }
    }
    let content_type = header(req.headers(), "content-type").map(str::to_string);
    let ctx = Ctx {
        auth,
        method: method.as_str().to_string(),
        path: rest.to_string(),
        headers_json: Value::Object(hdrs).to_string(),
        cookies_json: Value::Object(cookies).to_string(),
        read_only: method == Method::GET || method == Method::HEAD,
    };

    let body = if matches!(method, Method::POST | Method::PATCH | Method::PUT) {
        if let Some(ct) = &content_type {
            let mt = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !mt.is_empty() && mt != "application/json" {
                return Err(ApiError::new(
                    415,
                    "PGRST107",
                    format!("The Content-Type `{mt}` is not supported (only application/json)"),
                ));
            }
        }
        Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                ApiError::new(400, "PGRST102", "Could not read the request body")
                    .details(e.to_string())
            })?
            .to_bytes()
    } else {
        Bytes::new()
    };

    // The database work runs in its own task: a client that hangs up mid-request does
    // not cut its transaction short.
    let app2 = app.clone();
    let task = tokio::spawn(async move {
        match segments.as_slice() {
            [rpc, name] if rpc == "rpc" => {
                rpc_call(&app2, ctx, name, &method, &query, &prefer, accept, &body).await
            }
            [table] => {
                table_request(&app2, ctx, table, &method, &query, &prefer, accept, &body).await
            }
            _ => Err(ApiError::new(
                404,
                "PGRST125",
                "Invalid path specified in request URL",
            )),
        }
    });
    task.await.unwrap_or_else(|e| {
        Err(ApiError::new(500, "PGRSTX00", "Internal error").details(e.to_string()))
    })
}

fn unsupported_method(m: &Method) -> ApiError {
    ApiError::new(405, "PGRST117", format!("Unsupported HTTP method: {m}"))
}

async fn root(app: &Arc<App>) -> Result<Reply, ApiError> {
    let mut client = get_client(app).await?;
    let cache = app.schema(&mut client, true).await?;
    client.release();
    let mut tables: Vec<&String> = cache.tables.keys().collect();
    tables.sort();
    let mut functions: Vec<&String> = cache.functions.keys().collect();
    functions.sort();
    let body = serde_json::json!({
        "service": "tollgate-gateway",
        "stand_in_for": "PostgREST (Supabase REST API), local development and tests only",
        "schema": cache.schema,
        "tables": tables,
        "functions": functions,
    });
    Ok(Reply::json(200, JSON, Some(body.to_string())))
}

async fn get_client(app: &App) -> Result<crate::pool::PooledClient, ApiError> {
    app.pool.get().await.map_err(|e| match e {
        PoolError::Timeout => ApiError::new(
            504,
            "PGRST003",
            "Timed out acquiring connection from connection pool.",
        ),
        PoolError::Connect(e) => ApiError::new(
            503,
            "PGRST000",
            "Database connection error. Retrying the connection.",
        )
        .details(e.to_string()),
    })
}

/// A statement plus whether its result must be exactly one row (singular responses).
struct Plan {
    stmt: Stmt,
    singular: bool,
    /// READ ONLY even for a method that may write (POST to a STABLE/IMMUTABLE function).
    read_only: bool,
}

/// Plans against the schema cache (reloading it once when the plan names something the
/// cache does not know) and runs the plan as one transaction.
async fn execute(
    app: &App,
    ctx: &Ctx,
    plan: impl Fn(&SchemaCache) -> Result<Plan, ApiError>,
) -> Result<Outcome, ApiError> {
    let mut client = get_client(app).await?;
    let cache = app.schema(&mut client, false).await?;
    let plan = match plan(&cache) {
        Err(e) if e.cache_miss => {
            let fresh = app.schema(&mut client, true).await?;
            plan(&fresh)?
        }
        other => other?,
    };
    let search_path = if app.cfg.schema == "public" {
        "\"public\", \"extensions\"".to_string()
    } else {
        format!(
            "{}, \"public\", \"extensions\"",
            sql::ident(&app.cfg.schema)
        )
    };
    let claims = Value::Object(ctx.auth.claims.clone()).to_string();
    let setup: [&(dyn ToSql + Sync); 7] = [
        &ctx.auth.role,
        &claims,
        &ctx.method,
        &ctx.path,
        &ctx.headers_json,
        &ctx.cookies_json,
        &search_path,
    ];
    let params: Vec<&(dyn ToSql + Sync)> = plan
        .stmt
        .params
        .iter()
        .map(|p| p as &(dyn ToSql + Sync))
        .collect();

    let result = async {
        let tx = client
            .build_transaction()
            .read_only(ctx.read_only || plan.read_only)
            .start()
            .await?;
        let run = async {
            tx.query_one(SETUP_SQL, &setup).await?;
            let row = tx.query_one(plan.stmt.sql.as_str(), &params).await?;
            let gucs = tx
                .query_one(
                    "select current_setting('response.status', true), current_setting('response.headers', true)",
                    &[],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>((row, gucs))
        }
        .await;
        match run {
            Ok((row, gucs)) => {
                let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
                let out = Outcome {
                    body: row.get(0),
                    rows: row.get(1),
                    inserted: row.get(2),
                    total: row.get(3),
                    guc_status: nonempty(gucs.get(0)),
                    guc_headers: nonempty(gucs.get(1)),
                };
                if plan.singular && out.rows != 1 {
                    tx.rollback().await?;
                    return Ok(Err(ApiError::new(
                        406,
                        "PGRST116",
                        "Cannot coerce the result to a single JSON object",
                    )
                    .details(format!("The result contains {} rows", out.rows))));
                }
                tx.commit().await?;
                Ok(Ok(out))
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
    .await;
    if !client.is_closed() {
        client.release();
    }
    match result {
        Ok(r) => r,
        Err(e) => Err(ApiError::from_pg(&e, ctx.auth.anon)),
    }
}

fn content_range(offset: u64, rows: i64, total: Option<i64>) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    if rows <= 0 {
        format!("*/{total}")
    } else {
        format!("{offset}-{}/{total}", offset + rows as u64 - 1)
    }
}

/// The columns and rows of an insert or update body.
struct Payload {
    columns: Vec<String>,
    /// The body as a JSON array (an object is wrapped) for inserts, as is for updates.
    json: String,
    is_array: bool,
}

fn payload(body: &[u8], columns_param: Option<&Vec<String>>) -> Result<Payload, ApiError> {
    let invalid = |d: String| ApiError::new(400, "PGRST102", "Empty or invalid json").details(d);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the request body is empty".into()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    let text = String::from_utf8(body.to_vec()).map_err(|e| invalid(e.to_string()))?;
    let keys = |o: &Map<String, Value>| -> Vec<String> { o.keys().cloned().collect() };
    let (found, is_array) = match &value {
        Value::Object(o) => (keys(o), false),
        Value::Array(items) => {
            let mut first: Option<Vec<String>> = None;
            for item in items {
                let Value::Object(o) = item else {
                    return Err(invalid(
                        "every element of the array must be a JSON object".into(),
                    ));
                };
                let k = keys(o);
                match &first {
                    None => first = Some(k),
                    Some(f) if columns_param.is_none() && *f != k => {
                        return Err(ApiError::new(400, "PGRST102", "All object keys must match"));
                    }
                    Some(_) => {}
                }
            }
            (first.unwrap_or_default(), true)
        }
        _ => {
            return Err(invalid(
                "expected a JSON object or an array of objects".into(),
            ))
        }
    };
    Ok(Payload {
        columns: columns_param.cloned().unwrap_or(found),
        json: if is_array { text } else { format!("[{text}]") },
        is_array,
    })
}

#[allow(clippy::too_many_arguments)]
async fn table_request(
    app: &App,
    ctx: Ctx,
    table_name: &str,
    method: &Method,
    query: &Query,
    prefer: &Prefer,
    accept: Accept,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let schema = app.cfg.schema.as_str();
    let filters = query.filters()?;
    let select = query
        .select
        .clone()
        .unwrap_or_else(|| vec![SelectItem::Star]);
    let object = accept == Accept::Object;
    let find = |cache: &SchemaCache| {
        cache.tables.get(table_name).cloned().ok_or_else(|| {
            ApiError::new(
                404,
                "PGRST205",
                format!("Could not find the table '{schema}.{table_name}' in the schema cache"),
            )
            .miss()
        })
    };
    let output = match prefer.ret {
        Some(Return::Representation) => {
            if object {
                Output::Object
            } else {
                Output::Array
            }
        }
        _ => Output::None,
    };
    let mut applied: Vec<&str> = Vec::new();
    match prefer.ret {
        Some(Return::Representation) => applied.push("return=representation"),
        Some(Return::Minimal) => applied.push("return=minimal"),
        _ => {}
    }
    let content_type = if object { OBJECT } else { JSON };

    match *method {
        Method::GET | Method::HEAD => {
            let out = execute(app, &ctx, |cache| {
                let table = find(cache)?;
                let stmt = sql::read(&sql::ReadSpec {
                    schema,
                    table: &table,
                    select: &select,
                    filters: &filters,
                    order: &query.order,
                    limit: query.limit,
                    offset: query.offset,
                    count_exact: prefer.count_exact,
                    object,
                })?;
                Ok(Plan {
                    stmt,
                    singular: object,
                    read_only: false,
                })
            })
            .await?;
            let offset = query.offset.unwrap_or(0);
            let partial = out
                .total
                .is_some_and(|t| offset > 0 || (offset as i64 + out.rows) < t);
            let mut reply = Reply::json(
                if partial { 206 } else { 200 },
                content_type,
                out.body.clone().or(Some("[]".into())),
            )
            .header("Content-Range", content_range(offset, out.rows, out.total));
            if prefer.count_exact {
                reply = reply.header("Preference-Applied", "count=exact");
            }
            with_gucs(reply, &out)
        }
        Method::POST => {
            let p = payload(body, query.columns.as_ref())?;
            let resolution = prefer.resolution;
            let out = execute(app, &ctx, |cache| {
                let table = find(cache)?;
                let target: Option<Vec<String>> = match (resolution, &query.on_conflict) {
                    (None, _) => None,
                    (Some(_), Some(cols)) => Some(cols.clone()),
                    (Some(_), None) if !table.pk.is_empty() => Some(table.pk.clone()),
                    (Some(_), None) => {
                        return Err(ApiError::new(
                            400,
                            "PGRST100",
                            "An upsert needs on_conflict or a primary key",
                        )
                        .details(format!(
                            "'{}' has no primary key; name the unique columns with ?on_conflict=",
                            table.name
                        )))
                    }
                };
                let stmt = sql::insert(&sql::InsertSpec {
                    schema,
                    table: &table,
                    columns: &p.columns,
                    rows_json: p.json.clone(),
                    resolution,
                    on_conflict: target.as_deref(),
                    select: &select,
                    output,
                })?;
                Ok(Plan {
                    stmt,
                    singular: object,
                    read_only: false,
                })
            })
            .await?;
            match resolution {
                Some(Resolution::MergeDuplicates) => applied.push("resolution=merge-duplicates"),
                Some(Resolution::IgnoreDuplicates) => applied.push("resolution=ignore-duplicates"),
                None => {}
            }
            // An upsert that only updated rows answers 200, anything that inserted 201.
            let status =
                if resolution == Some(Resolution::MergeDuplicates) && out.rows > 0 && !out.inserted
                {
                    200
                } else {
                    201
                };
            let body = if output == Output::None {
                None
            } else {
                out.body.clone().or(Some("[]".into()))
            };
            let mut reply = Reply::json(status, content_type, body).header("Content-Range", "*/*");
            if !applied.is_empty() {
                reply = reply.header("Preference-Applied", applied.join(", "));
            }
            with_gucs(reply, &out)
        }
        Method::PATCH | Method::DELETE => {
            if query.limit.is_some() || query.offset.is_some() || !query.order.is_empty() {
                return Err(ApiError::unsupported(
                    "limit, offset and order on PATCH/DELETE",
                ));
            }
            let update = if *method == Method::PATCH {
                let p = payload(body, None)?;
                if p.is_array {
                    return Err(ApiError::new(400, "PGRST102", "Empty or invalid json")
                        .details("PATCH takes a single JSON object"));
                }
                // The object itself (not wrapped) feeds jsonb_populate_record.
                Some((p.columns, String::from_utf8_lossy(body).into_owned()))
            } else {
                None
            };
            let out = execute(app, &ctx, |cache| {
                let table = find(cache)?;
                let stmt = match &update {
                    Some((columns, row_json)) => sql::update(&sql::UpdateSpec {
                        schema,
                        table: &table,
                        columns,
                        row_json: row_json.clone(),
                        filters: &filters,
                        select: &select,
                        output,
                    })?,
                    None => sql::delete(schema, &table, &filters, &select, output)?,
                };
                Ok(Plan {
                    stmt,
                    singular: object,
                    read_only: false,
                })
            })
            .await?;
            let range = content_range(0, out.rows, None);
            let mut reply = match output {
                Output::None => Reply::json(204, content_type, None),
                _ => Reply::json(200, content_type, out.body.clone().or(Some("[]".into()))),
            }
            .header("Content-Range", range);
            if !applied.is_empty() {
                reply = reply.header("Preference-Applied", applied.join(", "));
            }
            with_gucs(reply, &out)
        }
        _ => Err(unsupported_method(method)),
    }
}

#[allow(clippy::too_many_arguments)]
async fn rpc_call(
    app: &App,
    ctx: Ctx,
    name: &str,
    method: &Method,
    query: &Query,
    prefer: &Prefer,
    accept: Accept,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let schema = app.cfg.schema.as_str();
    if !matches!(*method, Method::GET | Method::HEAD | Method::POST) {
        return Err(ApiError::new(
            405,
            "PGRST101",
            format!("Cannot use the {method} method on RPC"),
        ));
    }
    if query
        .select
        .as_ref()
        .is_some_and(|s| s != &vec![SelectItem::Star])
        || !query.order.is_empty()
        || query.limit.is_some()
        || query.offset.is_some()
    {
        return Err(ApiError::unsupported(
            "select, order, limit and offset on RPC results",
        ));
    }
    // The arguments: the JSON body (POST) or the query parameters (GET).
    let (args, raw): (Map<String, Value>, String) = if *method == Method::POST {
        if !query.rest.is_empty() {
            return Err(ApiError::unsupported("filters on RPC results"));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            (Map::new(), "{}".to_string())
        } else {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::new(400, "PGRST102", "Empty or invalid json").details(e.to_string())
            })?;
            let raw = String::from_utf8_lossy(body).into_owned();
            match v {
                Value::Object(o) => (o, raw),
                // Not an object: only a function taking the whole body can accept it.
                _ => (Map::new(), raw),
            }
        }
    } else {
        let mut m = Map::new();
        for (k, v) in &query.rest {
            if m.insert(k.clone(), Value::String(v.clone())).is_some() {
                return Err(ApiError::unsupported(
                    "repeated GET parameters (variadic arguments)",
                ));
            }
        }
        let raw = Value::Object(m.clone()).to_string();
        (m, raw)
    };
    let body_is_object = *method != Method::POST || raw.trim_start().starts_with('{');
    let mut keys: Vec<&str> = args.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let object = accept == Accept::Object;
    let is_post = *method == Method::POST;

    let choose = |cache: &SchemaCache| -> Result<(Function, bool), ApiError> {
        let not_found = || {
            let shown = format!("{schema}.{name}");
            let (msg, det) = if keys.is_empty() {
                (format!("Could not find the function {shown} without parameters in the schema cache"), format!("Searched for the function {shown} without parameters"))
            } else {
                (
                    format!(
                        "Could not find the function {shown}({}) in the schema cache",
                        keys.join(", ")
                    ),
                    format!(
                        "Searched for the function {shown} with parameter{} {}",
                        if keys.len() > 1 { "s" } else { "" },
                        keys.join(", ")
                    ),
                )
            };
            let det = if is_post {
                format!("{det} or with a single unnamed json/jsonb parameter")
            } else {
                det
            };
            ApiError::new(404, "PGRST202", msg)
                .details(format!(
                    "{det}, but no matches were found in the schema cache."
                ))
                .miss()
        };
        let candidates = cache.functions.get(name).ok_or_else(not_found)?;
        let matching: Vec<&Function> = if body_is_object {
            candidates.iter().filter(|f| f.accepts(&keys)).collect()
        } else {
            Vec::new()
        };
        match matching.as_slice() {
            [f] => Ok(((*f).clone(), false)),
            [] => match candidates.iter().find(|f| is_post && f.takes_whole_body()) {
                Some(f) => Ok((f.clone(), true)),
                None => Err(not_found()),
            },
            many => Err(ApiError::new(300, "PGRST203", "Could not choose the best candidate function between: ".to_string()
                + &many
                    .iter()
                    .map(|f| format!("{schema}.{}({})", f.name, f.params.iter().map(|p| format!("{} => {}", p.name, p.ty)).collect::<Vec<_>>().join(", ")))
                    .collect::<Vec<_>>()
                    .join(", "))
            .hint("Try renaming the parameters or the function itself in the database so function overloading can be resolved")),
        }
    };

    let returns = std::sync::Mutex::new(Returns::Void);
    let out = execute(app, &ctx, |cache| {
        let (f, whole) = choose(cache)?;
        *returns.lock().unwrap_or_else(|p| p.into_inner()) = f.returns;
        let set = matches!(
            f.returns,
            Returns::Scalar { set: true } | Returns::Composite { set: true }
        );
        let args = if whole {
            Args::WholeBody(raw.clone())
        } else {
            Args::Named {
                params: f
                    .params
                    .iter()
                    .filter(|p| args.contains_key(&p.name))
                    .collect(),
                json: raw.clone(),
            }
        };
        Ok(Plan {
            stmt: sql::call(schema, &f, &args, object && set),
            singular: object && set,
            read_only: !f.volatile,
        })
    })
    .await?;
    let returns = *returns.lock().unwrap_or_else(|p| p.into_inner());
    let content_type = if object { OBJECT } else { JSON };
    let total = prefer.count_exact.then_some(out.rows);
    let reply = match returns {
        Returns::Void => Reply::json(204, JSON, None),
        Returns::Scalar { set: true } | Returns::Composite { set: true } => {
            let r = Reply::json(200, content_type, out.body.clone().or(Some("[]".into())))
                .header("Content-Range", content_range(0, out.rows, total));
            if prefer.count_exact {
                r.header("Preference-Applied", "count=exact")
            } else {
                r
            }
        }
        _ => Reply::json(
            200,
            content_type,
            Some(out.body.clone().unwrap_or_else(|| "null".into())),
        ),
    };
    with_gucs(reply, &out)
}

/// PostgREST's `response.status` and `response.headers` (set by a function or trigger)
/// override the status and add headers.
fn with_gucs(mut reply: Reply, out: &Outcome) -> Result<Reply, ApiError> {
    if let Some(s) = &out.guc_status {
        reply.status = s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| {
                ApiError::new(500, "PGRST112", "response.status guc must be a valid status code")
            })?;
    }
    if let Some(h) = &out.guc_headers {
        let bad = || {
            ApiError::new(
                500,
                "PGRST111",
                "response.headers guc must be a JSON array composed of objects with a single key and a string value",
            )
        };
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(h) else {
            return Err(bad());
        };
        for item in items {
            match item {
                Value::Object(o) if o.len() == 1 => {
                    let (k, v) = o.into_iter().next().ok_or_else(bad)?;
                    let Value::String(v) = v else { return Err(bad()) };
                    reply.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
                    reply.headers.push((k, v));
                }
                _ => return Err(bad()),
            }
        }
    }
    Ok(reply)
}

/// The configured API keys that are not JWTs.
fn api_keys(cfg: &crate::config::Config) -> auth::ApiKeys<'_> {
    auth::ApiKeys { secret: &cfg.secret_keys, publishable: &cfg.publishable_keys }
}
