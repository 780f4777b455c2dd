//! A small connection pool: at most `size` connections, connections made on demand,
//! closed ones dropped. A client goes back to the pool only when its request finished
//! cleanly (committed or rolled back), never mid-transaction.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

#[derive(Debug)]
pub enum PoolError {
    /// No connection became free in time (PostgREST's PGRST003, 504).
    Timeout,
    /// PostgreSQL could not be reached (PGRST000, 503).
    Connect(tokio_postgres::Error),
}

struct Inner {
    config: Config,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    pub fn new(mut config: Config, size: usize, acquire_timeout: Duration) -> Pool {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("tollgate-gateway");
        Pool {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(size)),
                acquire_timeout,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub async fn get(&self) -> Result<PooledClient, PoolError> {
        let permit = tokio::time::timeout(
            self.inner.acquire_timeout,
            self.inner.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| PoolError::Timeout)?
        .map_err(|_| PoolError::Timeout)?;
        loop {
            let idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            match idle {
                Some(c) if !c.is_closed() => return Ok(self.wrap(c, permit)),
                Some(_) => continue,
                None => break,
            }
        }
        let (client, connection) = self
            .inner
            .config
            .connect(NoTls)
            .await
            .map_err(PoolError::Connect)?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the client is dropped.
            let _ = connection.await;
        });
        Ok(self.wrap(client, permit))
    }

    fn wrap(&self, client: Client, permit: OwnedSemaphorePermit) -> PooledClient {
        PooledClient {
            client: Some(client),
            inner: self.inner.clone(),
            _permit: permit,
            reusable: false,
        }
    }
}

pub struct PooledClient {
    client: Option<Client>,
    inner: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
    reusable: bool,
}

impl PooledClient {
    /// Marks the connection as clean (no open transaction): it may serve another request.
    pub fn release(&mut self) {
        self.reusable = true;
    }
}

impl Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("client present until drop")
    }
}

impl DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("client present until drop")
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if self.reusable && !c.is_closed() {
                self.inner
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(c);
            }
        }
    }
}
