//! The Workers runtime glue (wasm32 only): turns `worker::Request` into the app's plain
//! request, sends outbound HTTP through the runtime's `fetch`, reads configuration from
//! the environment, and reads the clock (the only place that does).

use std::cell::RefCell;
use std::rc::Rc;

use tollgate::time::Timestamp;
use worker::{
    event, Context, Env, Fetch, Method as WMethod, Request, RequestInit, Response, ScheduleContext, ScheduledEvent,
};

use crate::app::App;
use crate::respond::error;
use crate::config::Config;
use crate::http::{AppResponse, Headers, InRequest, Method, OutRequest, OutResponse, Transport, TransportError};

/// Outbound HTTP through the Workers runtime's `fetch`.
#[derive(Clone, Copy)]
pub struct FetchTransport;

impl Transport for FetchTransport {
    async fn send(&self, req: OutRequest) -> Result<OutResponse, TransportError> {
        let method = match req.method {
            Method::Get => WMethod::Get,
            Method::Post => WMethod::Post,
            Method::Put => WMethod::Put,
            Method::Patch => WMethod::Patch,
            Method::Delete => WMethod::Delete,
            Method::Head => WMethod::Head,
            Method::Options | Method::Other => WMethod::Options,
        };
        let headers = worker::Headers::new();
        for (k, v) in req.headers.iter() {
            headers.set(k, v).map_err(|e| TransportError(e.to_string()))?;
        }
        let mut init = RequestInit::new();
        // A redirect is an answer, not followed (see `Transport`).
        init.with_method(method).with_headers(headers).with_redirect(worker::RequestRedirect::Manual);
        if let Some(b) = req.body {
            init.with_body(Some(js_sys::Uint8Array::from(b.as_slice()).into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(|e| TransportError(e.to_string()))?;
        let mut resp = match req.timeout_ms {
            None => Fetch::Request(request).send().await.map_err(|e| TransportError(e.to_string()))?,
            Some(ms) => {
                let signal = worker::AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(ms));
                Fetch::Request(request).send_with_signal(&signal).await.map_err(|e| {
                    if signal.aborted() {
                        TransportError::timed_out(format!("no answer in {ms} ms"))
                    } else {
                        TransportError(e.to_string())
                    }
                })?
            }
        };
        let status = resp.status_code();
        let mut out_headers = Headers::new();
        for (k, v) in resp.headers().entries() {
            out_headers.0.push((k, v));
        }
        let body = resp.bytes().await.map_err(|e| TransportError(e.to_string()))?;
        Ok(OutResponse {
            status,
            headers: out_headers,
            body,
        })
    }
}

thread_local! {
    /// One app per isolate: the parsed catalog and the JWKS cache live across requests.
    static APP: RefCell<Option<Rc<App<FetchTransport>>>> = const { RefCell::new(None) };
}

fn config(env: &Env) -> Result<Config, String> {
    Config::from_lookup(|name| {
        env.secret(name)
            .map(|s| s.to_string())
            .ok()
            .or_else(|| env.var(name).map(|v| v.to_string()).ok())
    })
    .map_err(|e| e.to_string())
}

fn app(env: &Env) -> Result<Rc<App<FetchTransport>>, String> {
    if let Some(a) = APP.with(|a| a.borrow().clone()) {
        return Ok(a);
    }
    let a = Rc::new(App::new(config(env)?, FetchTransport)?);
    APP.with(|slot| *slot.borrow_mut() = Some(a.clone()));
    Ok(a)
}

fn now() -> Timestamp {
    Timestamp((worker::Date::now().as_millis() / 1000) as i64)
}

fn to_response(r: AppResponse) -> worker::Result<Response> {
    let headers = worker::Headers::new();
    for (k, v) in r.headers.iter() {
        headers.set(k, v)?;
    }
    Ok(Response::from_bytes(r.body)?
        .with_status(r.status)
        .with_headers(headers))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let app = match app(&env) {
        Ok(a) => a,
        Err(e) => return to_response(error(500, "misconfigured", e)),
    };
    // The path comes pre-split by the runtime; the query is cut from the raw URL here, so
    // nothing parses URLs (the url crate's IDNA tables would double the bundle).
    let raw_url = req.inner().url();
    let query = raw_url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    let mut headers = Headers::new();
    for (k, v) in req.headers().entries() {
        headers.0.push((k, v));
    }
    // A body declared larger than the limit is not read at all: the app refuses it (413)
    // from its `content-length`. Any other body is read, and its actual length is
    // checked again by the app before anything looks at it.
    let body = if crate::routes::body_too_large(&headers, 0).is_some() {
        Vec::new()
    } else {
        req.bytes().await.unwrap_or_default()
    };
    let inreq = InRequest {
        method: Method::parse(req.method().as_ref()),
        path: req.path(),
        query: query.to_string(),
        headers,
        body,
    };
    let t = now();
    let before = app.requests();
    let resp = app.handle(inreq, t).await;
    // Outbound webhooks the request queued go out after the answer, never delaying it,
    // with what the invocation has left of its subrequests (other requests served by
    // this isolate meanwhile count too: the share is never more than what is left).
    if app.take_outbox_work() {
        let a = app.clone();
        let left = a.ctx.config.subrequests.saturating_sub(app.requests() - before);
        ctx.wait_until(async move {
            // The clock is read at each round: what a later request queued meanwhile goes too.
            if let Err(e) = a.deliver_within(&now, left).await {
                worker::console_error!("outbox: {e}");
            }
        });
    }
    to_response(resp)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match app(&env) {
        Ok(a) => match a.scheduled_with_clock(now(), &now).await {
            Ok(report) => worker::console_log!("scheduled: {report}"),
            Err(e) => worker::console_error!("scheduled: {e}"),
        },
        Err(e) => worker::console_error!("scheduled: {e}"),
    }
}
