//! Answers: JSON errors and request bodies, shared by every route (so no handler
//! depends on the router).

use serde_json::{json, Value};

use crate::http::{AppResponse, InRequest};
use crate::supabase::StoreError;

/// The most characters of a refusal's message: one that quotes a caller's input (an offer,
/// an id, a field) says what it needs to in far less, and a 1 MiB input is not sent back.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// The first `max` characters of `s` when it has more, else `None`.
pub fn cut(s: &str, max: usize) -> Option<&str> {
    s.char_indices().nth(max).map(|(at, _)| &s[..at])
}

fn bounded(message: String) -> String {
    match cut(&message, MAX_MESSAGE_CHARS) {
        Some(head) => format!("{head}… (cut at {MAX_MESSAGE_CHARS} characters)"),
        None => message,
    }
}

/// Builds a JSON error response.
pub fn error(status: u16, code: &str, message: impl Into<String>) -> AppResponse {
    AppResponse::json(status, &json!({"error": {"code": code, "message": bounded(message.into())}}))
}

pub fn error_json(status: u16, code: &str, message: impl Into<String>, extra: Value) -> AppResponse {
    let mut body = json!({"error": {"code": code, "message": bounded(message.into())}});
    if let (Some(obj), Value::Object(more)) = (body["error"].as_object_mut(), extra) {
        obj.extend(more);
    }
    AppResponse::json(status, &body)
}

/// A failing store is the sender's cue to retry: 503 (unavailable) or 500. For callers
/// who are signed in (a user, an operator); what failed goes to the worker's log, never to
/// the body (the store's hosts, tables and SQL are no caller's business).
pub fn store_error(e: &StoreError) -> AppResponse {
    #[cfg(target_arch = "wasm32")]
    worker::console_error!("store: {e}");
    match e {
        StoreError::Unavailable(_) => {
            error(503, "store_unavailable", "the store is unavailable; retry in a few seconds").with_header("retry-after", "5")
        }
        _ => error(500, "store_error", "the store could not answer; retry later"),
    }
}

/// A store failure answered to a sender that is not signed in (a provider): 5xx so it
/// retries, and nothing about the store's insides (tables, constraints, values).
pub fn public_store_error(e: &StoreError) -> AppResponse {
    #[cfg(target_arch = "wasm32")]
    worker::console_error!("store: {e}");
    let status = if matches!(e, StoreError::Unavailable(_)) { 503 } else { 500 };
    error(status, "not_applied", "the event was not applied; send it again later").with_header("retry-after", "5")
}

/// An optional text field of a JSON body: `None` when absent or null, the text when it is
/// a string, else a 400 `code` naming the field (a `true` or a `1` is never taken for a
/// missing field).
pub fn opt_str<'a>(body: &'a Value, field: &str, code: &str) -> Result<Option<&'a str>, AppResponse> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error(400, code, format!("`{field}` must be a string"))),
    }
}

/// Reads a JSON request body, or a 400 response.
pub fn json_body(req: &InRequest) -> Result<Value, AppResponse> {
    if req.body.is_empty() {
        return Err(error(400, "empty_body", "a JSON body is required"));
    }
    serde_json::from_slice(&req.body).map_err(|e| error(400, "malformed_json", format!("the body is not JSON: {e}")))
}

/// The request's `Idempotency-Key` (trimmed; empty when absent and not `required`), or a 400:
/// missing when required, or longer than 200 characters, or with control characters.
pub fn idempotency_key(req: &InRequest, required: bool) -> Result<&str, AppResponse> {
    let key = req.headers.get("idempotency-key").map(str::trim).unwrap_or("");
    if required && key.is_empty() {
        return Err(error(400, "missing_idempotency_key", "send an Idempotency-Key header (one per request, reused on retry)"));
    }
    if key.len() > 200 || key.chars().any(|c| c.is_control()) {
        return Err(error(400, "invalid_idempotency_key", "Idempotency-Key must be at most 200 printable characters"));
    }
    Ok(key)
}
