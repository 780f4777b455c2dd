//! Plain HTTP values shared by the worker and its native tests, and the one outbound
//! seam: [`Transport`]. The worker sends through the runtime's `fetch`
//! (`entry::FetchTransport`); native code and tests through reqwest
//! (`native::ReqwestTransport`). Nothing else in the crate knows which one runs.

use std::fmt;

/// An HTTP request or response header list (names compared case-insensitively).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.push((name.to_string(), value.into()));
    }
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Head,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "HEAD" => Method::Head,
            _ => Method::Other,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Other => "OTHER",
        }
    }
}

/// An outbound request (to Supabase, a JWKS endpoint, or a payment provider's API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRequest {
    pub method: Method,
    pub url: String,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    /// Give up after this many milliseconds ([`TransportError::is_timeout`]); `None`: the
    /// transport's own limit.
    pub timeout_ms: Option<u32>,
}

/// The answer to an [`OutRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// The request could not be sent or no answer came back (DNS, refused connection,
/// reset, timeout). Always retryable from the caller's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError(pub String);

impl TransportError {
    const TIMED_OUT: &'static str = "timed out: ";
    /// No answer came within the request's time limit.
    pub fn timed_out(detail: impl fmt::Display) -> TransportError {
        TransportError(format!("{}{detail}", Self::TIMED_OUT))
    }
    pub fn is_timeout(&self) -> bool {
        self.0.starts_with(Self::TIMED_OUT)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport error: {}", self.0)
    }
}
impl std::error::Error for TransportError {}

/// Sends one HTTP request. Futures are not `Send`: the Workers runtime is single-threaded.
/// A redirect is answered as it is, never followed: no API the worker calls redirects, and
/// a webhook endpoint that answers 3xx has not taken the message (Standard Webhooks counts
/// it a failure), nor may it send the signed body somewhere else.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError>;
}

/// An inbound request as the app sees it: the raw body is kept byte for byte, since
/// webhook signatures are computed over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRequest {
    pub method: Method,
    /// Path without the query string, e.g. `/v1/entitlements`.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl InRequest {
    /// The first query parameter named twice (names compared as written, and decoded), if any:
    /// which of its values counts is a guess no route takes.
    pub fn repeated_query_param(&self) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        self.query.split('&').filter(|p| !p.is_empty()).find_map(|pair| {
            let k = pair.split_once('=').map_or(pair, |(k, _)| k);
            let name = decode(k).unwrap_or_else(|| k.to_string());
            (!seen.insert(name.clone())).then_some(name)
        })
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a space);
    /// `None` when absent or not UTF-8 once decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k)? == name).then(|| decode(v)).flatten()
        })
    }
}

/// Percent-decoding of one query component; `None` for a malformed escape or bytes that
/// are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What the app answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl AppResponse {
    pub fn json(status: u16, value: &serde_json::Value) -> AppResponse {
        AppResponse {
            status,
            headers: Headers::new()
                .with("content-type", "application/json; charset=utf-8")
                .with("cache-control", "no-store"),
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.set(name, value);
        self
    }
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let r = InRequest {
            method: Method::Get,
            path: "/".into(),
            query: "feature=ai%5Fcredits&from=2027-01-01&x&to=2027-02-01T00%3A00%3A00Z&note=a+b&bad=%zz".into(),
            headers: Headers::new(),
            body: vec![],
        };
        assert_eq!(r.query_param("feature").as_deref(), Some("ai_credits"));
        assert_eq!(r.query_param("to").as_deref(), Some("2027-02-01T00:00:00Z"));
        assert_eq!(r.query_param("note").as_deref(), Some("a b"));
        assert_eq!(r.query_param("x").as_deref(), Some(""));
        assert_eq!(r.query_param("bad"), None);
        assert_eq!(r.query_param("missing"), None);
    }
}
