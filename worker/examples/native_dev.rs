//! Serves the worker's app natively (reqwest for outbound HTTP, a minimal HTTP/1.1
//! listener for inbound), configured from the environment like the worker. A development
//! aid for iterating on the routes without a wasm build; the e2e suite runs against
//! `wrangler dev` (workerd).
//!
//! `cargo run -p tollgate-worker --example native_dev -- 127.0.0.1:8788`

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate::time::Timestamp;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::native::ReqwestTransport;
use tollgate_worker::{App, Config};

fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

async fn serve(app: Rc<App<ReqwestTransport>>, mut sock: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = Method::parse(first.next().unwrap_or(""));
    let target = first.next().unwrap_or("/").to_string();
    let mut headers = Headers::new();
    for l in lines.filter(|l| !l.is_empty()) {
        if let Some((k, v)) = l.split_once(':') {
            headers.0.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    // As in the worker: a body declared over the limit is not read; the app answers 413.
    if tollgate_worker::routes::body_too_large(&headers, 0).is_some() {
        len = 0;
    }
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..(head_end + len).min(buf.len())].to_vec();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    // Like `wrangler dev --test-scheduled`: GET /__scheduled runs the cron handler.
    let resp = if path == "/__scheduled" {
        match app.scheduled(now()).await {
            Ok(v) => tollgate_worker::http::AppResponse::json(200, &v),
            Err(e) => tollgate_worker::respond::store_error(&e),
        }
    } else {
        app.handle(InRequest { method, path, query, headers, body }, now()).await
    };
    let mut out = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        resp.status,
        resp.body.len()
    );
    for (k, v) in resp.headers.iter() {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    sock.write_all(out.as_bytes()).await?;
    sock.write_all(&resp.body).await?;
    sock.shutdown().await
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8788".into());
    let config = Config::from_lookup(|k| std::env::var(k).ok()).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let app = Rc::new(App::new(config, ReqwestTransport::new()).unwrap_or_else(|e| panic!("{e}")));
        let listener = TcpListener::bind(&addr).await.expect("bind");
        eprintln!("native worker app on http://{addr}");
        loop {
            let (sock, _) = listener.accept().await.expect("accept");
            let app = app.clone();
            tokio::task::spawn_local(async move {
                let _ = serve(app, sock).await;
            });
        }
    });
}
