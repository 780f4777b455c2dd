//! The one Supabase REST (PostgREST) client the worker uses, over any [`Transport`].
//!
//! Every request carries the two headers Supabase's API gateway and PostgREST expect:
//! `apikey: <key>` and `Authorization: Bearer <key>` (the service-role key, so the role
//! is `service_role`). Calls are PostgREST's documented forms only:
//! - `POST /rest/v1/rpc/<fn>` with a JSON object of named arguments (one transaction);
//! - `GET /rest/v1/<table>?select=...&<column>=eq.<value>` / `in.(...)`.
//!
//! Errors come back as PostgREST's `{code, message, details, hint}` and are sorted
//! into what the caller must do: retry later (store unavailable), recompute (conflict),
//! or give up on this input (rejected).

use serde::Serialize;
use serde_json::Value;
use std::fmt;

use crate::http::{Headers, Method, OutRequest, Transport};

/// PostgREST's error body.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct PgError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
}

/// What kind of conflict a store refused a write with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// The facts a fold read, or the charges of a lot it writes, changed meanwhile:
    /// read and fold again.
    FoldStale,
    /// The request id of a charge was used before for another request.
    KeyReused,
    /// A concurrent charge emptied a lot between a charge's check and its take: decide
    /// again from fresh lots.
    LotShort,
    /// A new fact's key was stored before, with other content, outside the fold's cluster.
    FactConflict,
    /// A charge's overage would pass the subject's cap for its billing period (a
    /// concurrent charge spent it first): decide again with the period's spend.
    OverageCap,
    /// An organization changed between the read a decision was made from and its write:
    /// read and decide again.
    OrgStale,
    /// The invite was accepted, revoked or expired between its read and its acceptance.
    InviteClosed,
    /// Any other conflict (a unique key of the store's own).
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// No answer, a 5xx, or a connection failure behind the REST API (PostgREST's 503):
    /// nothing was committed; the caller answers 5xx so the sender retries.
    Unavailable(String),
    /// 409: a unique or foreign key violation, or a raised PT409 (version conflict).
    Conflict { status: u16, error: PgError },
    /// Our own key was refused (401/403): a deployment mistake, also answered with 5xx.
    Unauthorized { status: u16, error: PgError },
    /// Any other 4xx: the request itself was refused.
    Rejected { status: u16, error: PgError },
    /// A 2xx whose body was not the JSON we expect.
    Decode(String),
}

impl StoreError {
    pub fn pg_code(&self) -> Option<&str> {
        match self {
            StoreError::Conflict { error, .. }
            | StoreError::Unauthorized { error, .. }
            | StoreError::Rejected { error, .. } => error.code.as_deref(),
            _ => None,
        }
    }
    /// The kind of a conflict (409), named by the SQL function's hint.
    pub fn conflict(&self) -> Option<Conflict> {
        let StoreError::Conflict { error, .. } = self else { return None };
        Some(match (error.code.as_deref(), error.hint.as_deref()) {
            (Some("PT409"), Some("fold_stale")) => Conflict::FoldStale,
            (Some("PT409"), Some("key_reused")) => Conflict::KeyReused,
            (Some("PT409"), Some("lot_short")) => Conflict::LotShort,
            (Some("PT409"), Some("fact_conflict")) => Conflict::FactConflict,
            (Some("PT409"), Some("overage_cap")) => Conflict::OverageCap,
            (Some("PT409"), Some("org_stale")) => Conflict::OrgStale,
            (Some("PT409"), Some("invite_closed")) => Conflict::InviteClosed,
            _ => Conflict::Other,
        })
    }
    /// True for the optimistic-concurrency conflict raised by `tollgate_apply_fold`.
    pub fn is_version_conflict(&self) -> bool {
        self.conflict() == Some(Conflict::FoldStale)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pg = |e: &PgError| {
            format!(
                "{} {}{}",
                e.code.as_deref().unwrap_or("-"),
                e.message.as_deref().unwrap_or(""),
                e.details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
            )
        };
        match self {
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Conflict { status, error } => write!(f, "store conflict ({status}): {}", pg(error)),
            StoreError::Unauthorized { status, error } => write!(f, "store refused our key ({status}): {}", pg(error)),
            StoreError::Rejected { status, error } => write!(f, "store rejected the request ({status}): {}", pg(error)),
            StoreError::Decode(m) => write!(f, "unexpected answer from the store: {m}"),
        }
    }
}
impl std::error::Error for StoreError {}

/// A PostgREST filter value for [`SupabaseClient::select`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Eq(String),
    In(Vec<String>),
}

pub struct SupabaseClient<T> {
    base: String,
    key: String,
    transport: T,
    /// Requests sent so far (each one subrequest of the invocation).
    sent: std::cell::Cell<u64>,
}

impl<T: Transport> SupabaseClient<T> {
    /// `base_url` is the project URL (`https://<ref>.supabase.co` or the local gateway).
    pub fn new(base_url: &str, service_role_key: &str, transport: T) -> Self {
        SupabaseClient {
            base: base_url.trim_end_matches('/').to_string(),
            key: service_role_key.to_string(),
            transport,
            sent: Default::default(),
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// A secret API key (`sb_secret_...`) goes in `apikey` alone: it is not a JWT, and
    /// Supabase's gateway turns it into the `service_role` for the database. A legacy
    /// service-role key (a JWT) goes in both headers, as PostgREST reads the role from the
    /// bearer token.
    fn headers(&self) -> Headers {
        let h = Headers::new().with("apikey", self.key.clone()).with("Accept", "application/json");
        if self.key.starts_with("sb_") {
            h
        } else {
            h.with("Authorization", format!("Bearer {}", self.key))
        }
    }

    /// `POST /rest/v1/rpc/<name>` with named arguments; returns the function's JSON result.
    pub async fn rpc<A: Serialize>(&self, name: &str, args: &A) -> Result<Value, StoreError> {
        let body = serde_json::to_vec(args).map_err(|e| StoreError::Decode(e.to_string()))?;
        let req = OutRequest {
            method: Method::Post,
            url: format!("{}/rest/v1/rpc/{}", self.base, name),
            headers: self.headers().with("Content-Type", "application/json"),
            body: Some(body),
            timeout_ms: None,
        };
        self.execute(req).await
    }

    /// `GET /rest/v1/<table>?select=<columns>&<col>=eq.<v>|in.(<v>,...)`: rows as JSON.
    pub async fn select(&self, table: &str, columns: &str, filters: &[(&str, Filter)]) -> Result<Value, StoreError> {
        let mut url = format!("{}/rest/v1/{}?select={}", self.base, table, encode_query(columns));
        for (col, f) in filters {
            let v = match f {
                Filter::Eq(v) => format!("eq.{}", encode_query(v)),
                Filter::In(vs) => format!("in.({})", vs.iter().map(|v| quote_in(v)).collect::<Vec<_>>().join(",")),
            };
            url.push_str(&format!("&{}={}", encode_query(col), v));
        }
        let req = OutRequest {
            method: Method::Get,
            url,
            headers: self.headers(),
            body: None,
            timeout_ms: None,
        };
        self.execute(req).await
    }

    /// How many requests this client has sent.
    pub fn requests(&self) -> u64 {
        self.sent.get()
    }

    async fn execute(&self, req: OutRequest) -> Result<Value, StoreError> {
        self.sent.set(self.sent.get() + 1);
        let resp = self
            .transport
            .send(req)
            .await
            .map_err(|e| StoreError::Unavailable(e.0))?;
        let status = resp.status;
        if (200..300).contains(&status) {
            if resp.body.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&resp.body)
                .map_err(|e| StoreError::Decode(format!("{e}: {}", String::from_utf8_lossy(&resp.body))));
        }
        let error: PgError = serde_json::from_slice(&resp.body).unwrap_or_else(|_| PgError {
            message: Some(String::from_utf8_lossy(&resp.body).chars().take(300).collect()),
            ..PgError::default()
        });
        Err(match status {
            409 => StoreError::Conflict { status, error },
            401 | 403 => StoreError::Unauthorized { status, error },
            s if s >= 500 => StoreError::Unavailable(format!(
                "{s} {} {}",
                error.code.as_deref().unwrap_or(""),
                error.message.as_deref().unwrap_or("")
            )),
            _ => StoreError::Rejected { status, error },
        })
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass; PostgREST's
/// own syntax characters in values are escaped).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' | b',' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A value inside `in.(...)`: double-quoted (PostgREST's rule for values with reserved
/// characters), then percent-encoded.
fn quote_in(v: &str) -> String {
    let q = format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    encode_query(&q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{OutResponse, TransportError};
    use std::cell::RefCell;

    /// Records requests and answers with canned responses (a recording transport for
    /// unit tests; the real stack is exercised by tests/e2e).
    struct Canned {
        seen: RefCell<Vec<OutRequest>>,
        answer: Result<OutResponse, TransportError>,
    }
    impl Transport for Canned {
        async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
            self.seen.borrow_mut().push(req);
            self.answer.clone()
        }
    }
    fn canned(status: u16, body: &str) -> Canned {
        Canned {
            seen: RefCell::new(vec![]),
            answer: Ok(OutResponse {
                status,
                headers: Headers::new(),
                body: body.as_bytes().to_vec(),
            }),
        }
    }
    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn rpc_sends_postgrest_headers_and_named_arguments() {
        let c = SupabaseClient::new("http://127.0.0.1:54321/", "svc", canned(200, r#"{"status":"applied"}"#));
        let v = block(c.rpc(
            "tollgate_apply_fold",
            &serde_json::json!({"p_subject": {"user_id": "u"}}),
        ))
        .unwrap();
        assert_eq!(v["status"], "applied");
        let seen = c.transport().seen.borrow();
        let r = &seen[0];
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.url, "http://127.0.0.1:54321/rest/v1/rpc/tollgate_apply_fold");
        assert_eq!(r.headers.get("apikey"), Some("svc"));
        assert_eq!(r.headers.get("authorization"), Some("Bearer svc"));
        assert_eq!(r.headers.get("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"p_subject": {"user_id": "u"}}));
    }

    #[test]
    fn a_secret_api_key_goes_in_apikey_alone() {
        let c = SupabaseClient::new("http://x", "sb_secret_abc", canned(200, "{}"));
        block(c.rpc("f", &serde_json::json!({}))).unwrap();
        let seen = c.transport().seen.borrow();
        assert_eq!(seen[0].headers.get("apikey"), Some("sb_secret_abc"));
        assert_eq!(seen[0].headers.get("authorization"), None, "not a JWT: no bearer");
    }

    #[test]
    fn errors_are_sorted_by_what_the_caller_must_do() {
        let c = SupabaseClient::new(
            "http://x",
            "k",
            canned(
                409,
                r#"{"code":"PT409","message":"billing state changed concurrently","details":null,"hint":"fold_stale"}"#,
            ),
        );
        let e = block(c.rpc("f", &serde_json::json!({}))).unwrap_err();
        assert!(e.is_version_conflict(), "{e}");

        let c = SupabaseClient::new(
            "http://x",
            "k",
            canned(503, r#"{"code":"PGRST001","message":"Database client error"}"#),
        );
        assert!(matches!(
            block(c.rpc("f", &serde_json::json!({}))).unwrap_err(),
            StoreError::Unavailable(_)
        ));

        let c = SupabaseClient::new(
            "http://x",
            "k",
            canned(404, r#"{"code":"PGRST202","message":"Could not find the function"}"#),
        );
        let e = block(c.rpc("f", &serde_json::json!({}))).unwrap_err();
        assert_eq!(e.pg_code(), Some("PGRST202"));
        assert!(matches!(e, StoreError::Rejected { status: 404, .. }));

        let c = SupabaseClient::new(
            "http://x",
            "k",
            canned(401, r#"{"code":"PGRST301","message":"JWSError"}"#),
        );
        assert!(matches!(
            block(c.rpc("f", &serde_json::json!({}))).unwrap_err(),
            StoreError::Unauthorized { .. }
        ));

        let c = SupabaseClient::new(
            "http://x",
            "k",
            Canned {
                seen: RefCell::new(vec![]),
                answer: Err(TransportError("refused".into())),
            },
        );
        assert!(matches!(
            block(c.rpc("f", &serde_json::json!({}))).unwrap_err(),
            StoreError::Unavailable(_)
        ));
        // A request the network refused is a subrequest all the same.
        block(c.select("t", "a", &[])).unwrap_err();
        assert_eq!(c.requests(), 2);
    }

    #[test]
    fn select_builds_postgrest_filters() {
        let c = SupabaseClient::new("http://x", "k", canned(200, "[]"));
        block(c.select(
            "cloud_entitlements",
            "grant_key,tier",
            &[
                ("user_id", Filter::Eq("a b".into())),
                ("status", Filter::In(vec!["active".into(), "trial".into()])),
            ],
        ))
        .unwrap();
        let seen = c.transport().seen.borrow();
        assert_eq!(
            seen[0].url,
            "http://x/rest/v1/cloud_entitlements?select=grant_key,tier&user_id=eq.a%20b&status=in.(%22active%22,%22trial%22)"
        );
        assert_eq!(seen[0].method, Method::Get);
        assert!(seen[0].body.is_none());
    }
}
