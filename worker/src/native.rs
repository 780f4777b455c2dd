//! The native [`Transport`]: reqwest. Used by tests and tools that run the worker's code
//! outside workerd against the same Supabase REST API.

use crate::http::{Headers, Method, OutRequest, OutResponse, Transport, TransportError};

#[derive(Clone, Default)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    pub fn new() -> Self {
        ReqwestTransport {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                // A redirect is an answer, not followed (see `Transport`).
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a plain reqwest client builds"),
        }
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            Method::Options | Method::Other => reqwest::Method::OPTIONS,
        };
        let mut rb = self.client.request(method, &req.url);
        for (k, v) in req.headers.iter() {
            rb = rb.header(k, v);
        }
        if let Some(b) = req.body {
            rb = rb.body(b);
        }
        if let Some(ms) = req.timeout_ms {
            rb = rb.timeout(std::time::Duration::from_millis(u64::from(ms)));
        }
        let failed = |e: reqwest::Error| if e.is_timeout() { TransportError::timed_out(e) } else { TransportError(e.to_string()) };
        let resp = rb.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let mut headers = Headers::new();
        for (k, v) in resp.headers() {
            headers
                .0
                .push((k.as_str().to_string(), v.to_str().unwrap_or("").to_string()));
        }
        let body = resp.bytes().await.map_err(failed)?.to_vec();
        Ok(OutResponse { status, headers, body })
    }
}
