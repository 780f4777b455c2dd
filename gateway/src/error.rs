//! Errors in PostgREST's shape: a JSON body `{code, message, details, hint}` and the HTTP
//! status PostgREST documents for the code (its "HTTP Status Codes" table, plus the
//! `PTxyz` and `RAISE SQLSTATE 'PGRST'` conventions).

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
    /// Extra response headers (WWW-Authenticate on 401, headers from RAISE 'PGRST').
    pub headers: Vec<(String, String)>,
    /// A body that is not PostgREST's shape (Supabase's API-key check answers with its
    /// own `{message, hint}`).
    pub raw_body: Option<Value>,
    /// Set when the error comes from the schema cache not knowing a name: the handler
    /// reloads the cache once and retries before answering with it.
    pub cache_miss: bool,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: None,
            hint: None,
            headers: Vec::new(),
            raw_body: None,
            cache_miss: false,
        }
    }

    pub fn details(mut self, d: impl Into<String>) -> ApiError {
        self.details = Some(d.into());
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> ApiError {
        self.hint = Some(h.into());
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> ApiError {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn miss(mut self) -> ApiError {
        self.cache_miss = true;
        self
    }

    /// PGRST100: a query string parameter that cannot be parsed.
    pub fn bad_param(message: impl Into<String>, details: impl Into<String>) -> ApiError {
        ApiError::new(400, "PGRST100", message).details(details)
    }

    /// A PostgREST feature this stand-in does not implement (tollgate does not use it).
    pub fn unsupported(what: &str) -> ApiError {
        ApiError::new(400, "PGRST127", "Feature not implemented").details(format!(
            "{what} is not supported by tollgate-gateway, the local stand-in for PostgREST"
        ))
    }

    pub fn body(&self) -> String {
        match &self.raw_body {
            Some(v) => v.to_string(),
            None => json!({
                "code": self.code,
                "details": self.details,
                "hint": self.hint,
                "message": self.message,
            })
            .to_string(),
        }
    }

    /// Maps an error from PostgreSQL (or from the connection to it). `anon` tells whether
    /// the request ran as the anonymous role (42501 is then 401 rather than 403).
    pub fn from_pg(e: &tokio_postgres::Error, anon: bool) -> ApiError {
        let Some(db) = e.as_db_error() else {
            // The connection broke (server stopped, socket closed): retryable.
            return ApiError::new(
                503,
                "PGRST001",
                "Database client error. Retrying the connection.",
            )
            .details(e.to_string());
        };
        let code = db.code().code();
        if code == "PGRST" {
            return raise_pgrst(db.message(), db.detail());
        }
        let mut err = ApiError::new(
            status_for_sqlstate(code, db.message(), anon),
            code,
            db.message(),
        );
        err.details = db.detail().map(str::to_string);
        err.hint = db.hint().map(str::to_string);
        if err.status == 401 {
            err.headers
                .push(("WWW-Authenticate".into(), "Bearer".into()));
        }
        err
    }
}

/// PostgREST's SQLSTATE -> HTTP status table.
pub fn status_for_sqlstate(code: &str, message: &str, anon: bool) -> u16 {
    let class = code.get(..2).unwrap_or("");
    match code {
        "23503" | "23505" => return 409,
        "25006" => return 405,
        "21000" => {
            return if message.ends_with("requires a WHERE clause") {
                400
            } else {
                500
            }
        }
        // A JWT naming a role that does not exist.
        "22023" => {
            return if message.starts_with("role") && message.ends_with("does not exist") {
                401
            } else {
                400
            }
        }
        "53400" => return 500,
        "57P01" => return 503,
        "P0001" => return 400,
        "42883" => return 404,
        "42P01" => return 404,
        "42P17" => return 500,
        "42501" => return if anon { 401 } else { 403 },
        _ => {}
    }
    if let Some(n) = code.strip_prefix("PT") {
        return n
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=999).contains(s))
            .unwrap_or(500);
    }
    match class {
        "08" => 503,
        "09" => 500,
        "0L" | "0P" => 403,
        "25" => 500,
        "28" => 403,
        "2D" | "38" | "39" | "3B" | "40" => 500,
        "53" => 503,
        "54" | "55" | "57" | "58" | "F0" | "HV" | "P0" | "XX" => 500,
        _ => 400,
    }
}

/// `RAISE SQLSTATE 'PGRST' USING message = '{"code":..,"message":..}', detail =
/// '{"status":..,"headers":{..}}'`: full control of the response.
fn raise_pgrst(message: &str, detail: Option<&str>) -> ApiError {
    let parse_err = |d: String, h: &str| {
        ApiError::new(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
        )
        .details(d)
        .hint(h)
    };
    let msg: Value = match serde_json::from_str(message) {
        Ok(v @ Value::Object(_)) if v.get("code").is_some() && v.get("message").is_some() => v,
        _ => {
            return parse_err(
                format!("Invalid JSON value for MESSAGE: '{message}'"),
                "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.",
            )
        }
    };
    let Some(detail) = detail else {
        return parse_err(
            "DETAIL is missing in the RAISE statement".into(),
            "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.",
        );
    };
    let det: Value = match serde_json::from_str(detail) {
        Ok(v @ Value::Object(_)) if v.get("status").and_then(Value::as_u64).is_some() && v.get("headers").is_some_and(Value::is_object) => v,
        _ => {
            return parse_err(
                format!("Invalid JSON value for DETAIL: '{detail}'"),
                "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.",
            )
        }
    };
    let text = |v: Option<&Value>| -> Option<String> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        }
    };
    let status = det["status"].as_u64().unwrap_or(500).clamp(100, 999) as u16;
    let mut err = ApiError::new(
        status,
        &text(msg.get("code")).unwrap_or_default(),
        text(msg.get("message")).unwrap_or_default(),
    );
    err.details = text(msg.get("details"));
    err.hint = text(msg.get("hint"));
    if let Some(Value::Object(h)) = det.get("headers") {
        for (k, v) in h {
            err.headers
                .push((k.clone(), text(Some(v)).unwrap_or_default()));
        }
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        assert_eq!(status_for_sqlstate("23505", "", false), 409);
        assert_eq!(status_for_sqlstate("23503", "", false), 409);
        assert_eq!(status_for_sqlstate("P0001", "", false), 400);
        assert_eq!(status_for_sqlstate("PT402", "", false), 402);
        assert_eq!(status_for_sqlstate("PTabc", "", false), 500);
        assert_eq!(status_for_sqlstate("42501", "", true), 401);
        assert_eq!(status_for_sqlstate("42501", "", false), 403);
        assert_eq!(status_for_sqlstate("42P01", "", false), 404);
        assert_eq!(status_for_sqlstate("22P02", "", false), 400);
        assert_eq!(status_for_sqlstate("22023", "invalid value", false), 400);
        assert_eq!(
            status_for_sqlstate("22023", "role \"x\" does not exist", false),
            401
        );
        assert_eq!(status_for_sqlstate("08006", "", false), 503);
        assert_eq!(status_for_sqlstate("57P01", "", false), 503);
        assert_eq!(status_for_sqlstate("53300", "", false), 503);
        assert_eq!(status_for_sqlstate("53400", "", false), 500);
        assert_eq!(status_for_sqlstate("P0002", "", false), 500);
        assert_eq!(status_for_sqlstate("40001", "", false), 500);
        assert_eq!(status_for_sqlstate("25006", "", false), 405);
        assert_eq!(status_for_sqlstate("42703", "", false), 400);
    }

    #[test]
    fn raise_pgrst_full_control() {
        let e = raise_pgrst(
            r#"{"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade"}"#,
            Some(r#"{"status":402,"headers":{"X-Powered-By":"tollgate"}}"#),
        );
        assert_eq!(e.status, 402);
        assert_eq!(e.code, "123");
        assert_eq!(e.details.as_deref(), Some("Quota exceeded"));
        assert_eq!(
            e.headers,
            vec![("X-Powered-By".to_string(), "tollgate".to_string())]
        );
        let bad = raise_pgrst("not json", Some("{}"));
        assert_eq!((bad.status, bad.code.as_str()), (500, "PGRST121"));
    }

    #[test]
    fn body_shape() {
        let e = ApiError::new(
            404,
            "PGRST205",
            "Could not find the table 'public.x' in the schema cache",
        );
        let v: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["code"], "PGRST205");
        assert!(v["details"].is_null() && v["hint"].is_null());
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
}
