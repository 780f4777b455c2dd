//! `tollgate catalog push | list | activate`: catalogs published as versioned data in the
//! store (`tollgate_catalogs`, migration 20261205006000), through Supabase's REST API with
//! the service role. A file is validated by the core before anything is sent: an invalid
//! one is refused with the core's error and line, and the store is not called at all.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{display_path, load_catalog, outln, to_json, Failure};

/// Where the store is and the key that may write it.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// The Supabase project URL (`https://<ref>.supabase.co`, or the local gateway).
    #[arg(long, value_name = "URL", env = "TOLLGATE_SUPABASE_URL")]
    pub url: String,
    /// A secret API key (`sb_secret_...`) or the legacy service-role key (a JWT).
    #[arg(long, value_name = "KEY", env = "TOLLGATE_SERVICE_KEY", hide_env_values = true)]
    pub service_key: String,
}

/// A blocking client of Supabase's REST API (PostgREST's documented forms only).
pub struct Rest {
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Rest {
    pub fn new(a: &StoreArgs) -> Result<Rest, Failure> {
        let base = a.url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Failure::new(format!("--url `{base}` must start with https:// (or http:// locally)")));
        }
        if a.service_key.trim().is_empty() {
            return Err(Failure::new("--service-key is empty"));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Rest { base, key: a.service_key.trim().to_string(), agent })
    }

    /// A secret API key goes in `apikey` alone (it is not a JWT); a legacy service-role
    /// JWT goes in both headers, as PostgREST reads the role from the bearer token.
    fn auth<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let r = r.header("apikey", &self.key).header("Accept", "application/json");
        if self.key.starts_with("sb_") {
            r
        } else {
            r.header("Authorization", format!("Bearer {}", self.key))
        }
    }

    /// `POST /rest/v1/rpc/<name>` with named arguments.
    pub fn rpc(&self, name: &str, args: &Value) -> Result<Value, Failure> {
        let url = format!("{}/rest/v1/rpc/{name}", self.base);
        let r = self.auth(self.agent.post(&url)).header("Content-Type", "application/json").send(args.to_string());
        answer(&url, r)
    }

    /// `GET /rest/v1/<path_and_query>`.
    pub fn get(&self, path_and_query: &str) -> Result<Value, Failure> {
        let url = format!("{}/rest/v1/{path_and_query}", self.base);
        answer(&url, self.auth(self.agent.get(&url)).call())
    }
}

fn answer(url: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, Failure> {
    let mut resp = r.map_err(|e| Failure::new(format!("cannot reach the store at {url}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| Failure::new(format!("cannot read the store's answer from {url}: {e}")))?;
    if (200..300).contains(&status) {
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(&body)
            .map_err(|e| Failure::new(format!("unexpected answer from {url}: {e}: {}", clip(&body))));
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let msg = v.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| clip(&body));
    let code = v.get("code").and_then(Value::as_str).unwrap_or("");
    let hint = match status {
        401 | 403 => " (is --service-key the project's secret or service-role key?)",
        404 if code == "PGRST202" || code == "PGRST205" || code == "42883" => {
            " (are supabase/migrations applied, 20261205006000_catalog_versions.sql included?)"
        }
        _ => "",
    };
    Err(Failure::new(format!("the store refused the request ({status} {code}): {msg}{hint}")))
}

fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok()).unwrap_or_default()
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// `catalog push FILE`: validate with the core, then store as a new version.
pub fn push(file: &Path, store: &StoreArgs, by: Option<String>, activate: bool, json_out: bool) -> Result<(), Failure> {
    let catalog = load_catalog(file)?;
    let rest = Rest::new(store)?;
    let doc: Value = serde_json::from_str(&catalog.to_json()).map_err(|e| Failure::new(e.to_string()))?;
    let v = rest.rpc(
        "tollgate_catalog_push",
        &json!({"p_document": doc, "p_by": who(by), "p_activate": activate}),
    )?;
    if json_out {
        outln!("{}", to_json(&v, false))?;
        return Ok(());
    }
    let id = v["id"].as_str().unwrap_or("");
    let version = v["version"].as_i64().unwrap_or(0);
    let digest = v["digest"].as_str().unwrap_or("");
    if v["created"].as_bool() == Some(true) {
        let state = if v["active"].as_bool() == Some(true) { "active" } else { "not active" };
        outln!("{}: pushed catalog `{id}` version {version} ({state}, sha256 {})", display_path(file), short(digest))?;
    } else {
        let state = if v["active"].as_bool() == Some(true) {
            "it is the active one".to_string()
        } else {
            format!("it is not active: `tollgate catalog activate {version} --catalog {id}` makes it so")
        };
        outln!(
            "{}: unchanged, catalog `{id}` version {version} has this content already ({state})",
            display_path(file)
        )?;
    }
    Ok(())
}

/// The catalog ids the store holds.
fn catalog_ids(rest: &Rest) -> Result<Vec<String>, Failure> {
    let rows = rest.get("tollgate_catalogs?select=id&order=id")?;
    let mut ids: Vec<String> =
        rows.as_array().into_iter().flatten().filter_map(|r| r["id"].as_str().map(str::to_string)).collect();
    ids.dedup();
    Ok(ids)
}

/// The catalog an `activate` means: the one named, or the store's only one.
fn one_catalog(rest: &Rest, named: Option<String>) -> Result<String, Failure> {
    if let Some(id) = named {
        return Ok(id);
    }
    let ids = catalog_ids(rest)?;
    match ids.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Failure::new("the store holds no catalog yet: `tollgate catalog push FILE` first")),
        many => Err(Failure::new(format!("the store holds several catalogs ({}): name one with --catalog", many.join(", ")))),
    }
}

/// `catalog list`: every version of every catalog (or of one), newest first.
pub fn list(store: &StoreArgs, catalog: Option<String>, json_out: bool) -> Result<(), Failure> {
    let rest = Rest::new(store)?;
    let ids = match catalog {
        Some(id) => vec![id],
        None => catalog_ids(&rest)?,
    };
    let mut all = Vec::new();
    for id in &ids {
        let versions = rest.rpc("tollgate_catalog_versions", &json!({"p_catalog": id}))?;
        all.push(json!({"id": id, "versions": versions}));
    }
    if json_out {
        outln!("{}", to_json(&Value::Array(all), false))?;
        return Ok(());
    }
    if all.is_empty() {
        outln!("no catalog in the store")?;
    }
    for c in &all {
        outln!("catalog `{}`:", c["id"].as_str().unwrap_or(""))?;
        let versions = c["versions"].as_array().cloned().unwrap_or_default();
        if versions.is_empty() {
            outln!("  no version")?;
        }
        for v in versions {
            outln!(
                "  {} v{:<4} sha256 {}  published {} by {}{}",
                if v["active"].as_bool() == Some(true) { "*" } else { " " },
                v["version"].as_i64().unwrap_or(0),
                short(v["digest"].as_str().unwrap_or("")),
                v["published_at"].as_str().unwrap_or(""),
                match v["published_by"].as_str() {
                    Some("") | None => "-",
                    Some(b) => b,
                },
                match v["activated_at"].as_str() {
                    Some(a) => format!(", last activated {a}"),
                    None => String::new(),
                }
            )?;
        }
    }
    Ok(())
}

/// `catalog activate VERSION`: make a version the active one (a rollback for an older one).
pub fn activate(store: &StoreArgs, catalog: Option<String>, version: u32, by: Option<String>) -> Result<(), Failure> {
    let rest = Rest::new(store)?;
    let id = one_catalog(&rest, catalog)?;
    let v = rest.rpc(
        "tollgate_catalog_activate",
        &json!({"p_catalog": id, "p_version": version, "p_by": who(by)}),
    )?;
    if v.is_null() {
        return Err(Failure::new(format!("catalog `{id}` has no version {version} (`tollgate catalog list` shows them)")));
    }
    if v["changed"].as_bool() == Some(true) {
        outln!("catalog `{id}` version {version} is now active")?;
    } else {
        outln!("catalog `{id}` version {version} was already active; nothing changed")?;
    }
    Ok(())
}
