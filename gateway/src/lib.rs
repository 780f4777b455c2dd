//! `tollgate-gateway`: a local stand-in for PostgREST (Supabase's REST API), serving
//! `/rest/v1` for tollgate's local stack and tests. See README.md in this crate for what
//! it implements and what it does not.

// One error per request at most, built on the slow path: its size does not matter.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod config;
pub mod error;
pub mod handler;
pub mod pool;
pub mod request;
pub mod schema;
pub mod sql;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::config::Config;
use crate::error::ApiError;
use crate::pool::Pool;
use crate::schema::SchemaCache;

/// Shared state of the server.
pub struct App {
    pub cfg: Config,
    pub pool: Pool,
    cache: RwLock<Option<Arc<SchemaCache>>>,
    stale: AtomicBool,
}

impl App {
    pub fn new(cfg: Config) -> Result<App, String> {
        let pg: tokio_postgres::Config = cfg
            .db_uri
            .parse()
            .map_err(|e| format!("invalid --db-uri: {e}"))?;
        let pool = Pool::new(pg, cfg.pool_size, cfg.pool_timeout);
        Ok(App {
            cfg,
            pool,
            cache: RwLock::new(None),
            stale: AtomicBool::new(true),
        })
    }

    /// The schema cache, loaded when missing, marked stale (NOTIFY pgrst), or `force`d
    /// (a request named something the cache did not know).
    pub async fn schema(
        &self,
        client: &mut tokio_postgres::Client,
        force: bool,
    ) -> Result<Arc<SchemaCache>, ApiError> {
        if !force && !self.stale.load(Ordering::SeqCst) {
            if let Some(c) = self.cache.read().unwrap_or_else(|p| p.into_inner()).clone() {
                return Ok(c);
            }
        }
        self.stale.store(false, Ordering::SeqCst);
        match schema::load(client, &self.cfg.schema).await {
            Ok(c) => {
                let c = Arc::new(c);
                *self.cache.write().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.stale.store(true, Ordering::SeqCst);
                if e.as_db_error().is_some() {
                    Err(ApiError::from_pg(&e, false))
                } else {
                    Err(ApiError::new(
                        503,
                        "PGRST002",
                        "Could not query the database for the schema cache. Retrying.",
                    )
                    .details(e.to_string()))
                }
            }
        }
    }
}

/// Keeps a connection that LISTENs on the `pgrst` channel: `NOTIFY pgrst, 'reload schema'`
/// (what Supabase migrations and PostgREST use) marks the schema cache stale. Reconnects
/// every second while PostgreSQL is away; every reconnect also marks the cache stale.
async fn listen_for_reloads(app: Arc<App>) {
    loop {
        if let Ok((client, mut conn)) = app.pool.config().connect(NoTls).await {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            let _ = tx.send(n.payload().to_string());
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            });
            if client.batch_execute("listen pgrst").await.is_ok() {
                app.stale.store(true, Ordering::SeqCst);
                while let Some(payload) = rx.recv().await {
                    if payload.is_empty() || payload == "reload schema" {
                        app.stale.store(true, Ordering::SeqCst);
                    }
                }
            }
            driver.abort();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(cfg: Config) -> Result<(), String> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Arc::new(App::new(cfg)?);
    eprintln!(
        "tollgate-gateway (local stand-in for PostgREST) listening on http://{addr}/rest/v1, schema `{}`, database {}",
        app.cfg.schema,
        redact(&app.cfg.db_uri)
    );
    if app.cfg.jwt_secret.is_none() {
        eprintln!("tollgate-gateway: no JWT secret configured; requests carrying a JWT will fail with PGRST300");
    }
    tokio::spawn(listen_for_reloads(app.clone()));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("tollgate-gateway: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handler::handle(app, req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    eprintln!("tollgate-gateway: shutting down");
    Ok(())
}

/// The connection string without its password, for logs.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &uri[s + 3..at];
            match cred.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &uri[..s + 3], &uri[at..]),
                None => uri.to_string(),
            }
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
