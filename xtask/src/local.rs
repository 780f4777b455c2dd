//! The whole local stack as one value, for `test`, `demo` and `bench`: PostgreSQL, the
//! REST gateway (a local stand-in for PostgREST), one `wrangler dev` per catalog, and
//! `next start` of the www app. Each part is started in order and stopped in reverse
//! order, by [`Local::stop`] or, when a command fails or is interrupted, by `Drop`:
//! nothing started here outlives the command, and a later stage never finds an
//! earlier one's ports taken.
//!
//! Ports (Supabase's local convention, and wrangler's default) can be moved with
//! environment variables, for a machine where they are taken:
//!
//! | part | default | variable |
//! |---|---|---|
//! | PostgreSQL | 54322 | `TOLLGATE_PG_PORT` |
//! | REST gateway (`/rest/v1`) | 54321 | `TOLLGATE_REST_PORT` |
//! | worker, VCM Suite catalog | 8787 | `TOLLGATE_WORKER_PORT` |
//! | worker, video-studio catalog | 8788 | `TOLLGATE_STUDIO_WORKER_PORT` |
//! | worker, razorpay-ai catalog | 8789 | `TOLLGATE_RAZORPAY_WORKER_PORT` |
//! | worker, org-seats catalog (Org Seats) | 8790 | `TOLLGATE_ORG_WORKER_PORT` |
//! | www (`next start`) | 3000 | `TOLLGATE_WWW_PORT` |

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::stack;
use crate::util::{ensure_port_free, note, port_from_env, secs, step, Result};
use crate::worker::{self, LocalSecrets, StackInfo, WranglerDev};
use crate::www::{self, StackUrls, Www};

/// Where each part listens.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub pg: u16,
    pub rest: u16,
    pub worker: u16,
    pub studio: u16,
    pub razorpay: u16,
    pub org: u16,
    pub www: u16,
}

impl Ports {
    pub fn from_env() -> Result<Ports> {
        Ok(Ports {
            pg: port_from_env("TOLLGATE_PG_PORT", stack::PG_PORT)?,
            rest: port_from_env("TOLLGATE_REST_PORT", 54321)?,
            worker: port_from_env("TOLLGATE_WORKER_PORT", worker::DEV_PORT)?,
            studio: port_from_env("TOLLGATE_STUDIO_WORKER_PORT", 8788)?,
            razorpay: port_from_env("TOLLGATE_RAZORPAY_WORKER_PORT", 8789)?,
            org: port_from_env("TOLLGATE_ORG_WORKER_PORT", 8790)?,
            www: port_from_env("TOLLGATE_WWW_PORT", 3000)?,
        })
    }
}

/// Stops a cluster when dropped.
struct PgGuard(Option<stack::Pg>);

impl PgGuard {
    fn stop(&mut self) -> Result<()> {
        match self.0.take() {
            Some(pg) => pg.stop().map_err(s),
            None => Ok(()),
        }
    }
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: could not stop PostgreSQL: {e}");
        }
    }
}

/// A `wrangler dev` (and its workerd), stopped when dropped.
pub struct Worker {
    pub catalog: String,
    pub url: String,
    dev: Option<WranglerDev>,
}

impl Worker {
    fn stop(&mut self) -> Result<()> {
        match self.dev.take() {
            Some(d) => d.stop().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `next start`, stopped when dropped.
struct WwwGuard(Option<Www>);

impl WwwGuard {
    fn stop(&mut self) -> Result<()> {
        match self.0.take() {
            Some(w) => w.stop(),
            None => Ok(()),
        }
    }
}

impl Drop for WwwGuard {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The running local stack. Fields drop in declaration order: the app, the workers,
/// the gateway, then PostgreSQL.
pub struct Local {
    pub root: PathBuf,
    pub ports: Ports,
    /// Secrets of this run (fresh each time, never written outside `.stack/` and `.dev.vars`).
    pub secrets: LocalSecrets,
    www: WwwGuard,
    pub workers: Vec<Worker>,
    gateway: Option<stack::Gateway>,
    pg: PgGuard,
    pg_handle: stack::Pg,
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Local {
    /// PostgreSQL on a fresh cluster (`.stack/pg`), the Supabase bootstrap and the
    /// migrations each applied twice in a row (each must be idempotent), and the gateway in front.
    pub fn database(root: &Path, ports: Ports) -> Result<Local> {
        Local::database_with(root, ports, false)
    }

    /// [`Local::database`], with the gateway built in release mode when `release`
    /// (for benchmarks; tests use the debug build that `cargo test` already made).
    pub fn database_with(root: &Path, ports: Ports, release: bool) -> Result<Local> {
        let state = root.join(".stack");
        // A gateway left behind by an earlier run that was killed outright.
        stack::gateway_stop(&state).map_err(s)?;
        let pg = stack::Pg::new(&state.join("pg"), ports.pg).map_err(s)?;
        pg.stop().map_err(s)?;
        ensure_port_free(ports.pg, "PostgreSQL", "TOLLGATE_PG_PORT")?;
        ensure_port_free(ports.rest, "the REST gateway", "TOLLGATE_REST_PORT")?;
        // A fresh database each time: every run starts from the same state.
        pg.reset().map_err(s)?;
        let mut local = Local {
            root: root.to_path_buf(),
            ports,
            secrets: LocalSecrets::generate(stack::LOCAL_JWT_SECRET).map_err(s)?,
            www: WwwGuard(None),
            workers: Vec::new(),
            gateway: None,
            pg: PgGuard(Some(pg.clone())),
            pg_handle: pg.clone(),
        };
        stack::apply_all(&pg, root, 2).map_err(s)?;
        let bin = stack::gateway_binary(root, release).map_err(s)?;
        let mut opts = stack::GatewayOptions::local(&pg);
        opts.listen = format!("127.0.0.1:{}", ports.rest);
        let gw = stack::gateway_start(&bin, &opts, &state).map_err(s)?;
        local.gateway = Some(gw);
        stack::wait_ready(&local.rest_url_path("/rest/v1/"), Duration::from_secs(30)).map_err(s)?;
        note(format!("PostgreSQL on 127.0.0.1:{}, REST gateway on {}", ports.pg, local.rest_url()));
        Ok(local)
    }

    /// The gateway's base URL (the project's SUPABASE_URL locally).
    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.rest)
    }

    fn rest_url_path(&self, path: &str) -> String {
        format!("{}{path}", self.rest_url())
    }

    /// A superuser connection string (for checks and the local sign-in's auth.users).
    pub fn db_url(&self) -> String {
        self.pg_handle.url("postgres")
    }

    pub fn pg(&self) -> &stack::Pg {
        &self.pg_handle
    }

    /// What the worker's e2e suite needs to know.
    pub fn stack_info(&self) -> StackInfo {
        let pg = &self.pg_handle;
        StackInfo {
            rest_url: self.rest_url(),
            db_url: self.db_url(),
            jwt_secret: stack::LOCAL_JWT_SECRET.to_string(),
            pg_stop_cmd: pg.stop_shell_command(),
            pg_start_cmd: worker::pg_start_shell_command(
                &pg.bin_dir,
                &pg.dir,
                &pg.data_dir,
                &pg.log_file,
                &pg.socket_dir,
                pg.port,
            ),
        }
    }

    /// Starts `wrangler dev` with `catalog` on `port`, from its own folder
    /// (`.stack/workers/<catalog>`), so that several run side by side. The worker must
    /// be built (`worker/build`).
    pub fn start_worker(&mut self, catalog: &str, port: u16, variable: &str) -> Result<&Worker> {
        self.start_workers(&[(catalog, port, variable)])?;
        Ok(self.workers.last().expect("just pushed"))
    }

    /// Starts one `wrangler dev` per `(catalog, port, variable)` at the same time (each
    /// waits for its own `/healthz`, so together they take about as long as one). Every
    /// worker that started is kept (and stopped with the stack), also when another failed.
    pub fn start_workers(&mut self, list: &[(&str, u16, &str)]) -> Result<()> {
        self.start_workers_with(list, |_| Vec::new())
    }

    /// [`Local::start_workers`], each worker's variables extended by `extra(catalog)`.
    fn start_workers_with(&mut self, list: &[(&str, u16, &str)], extra: impl Fn(&str) -> Vec<(String, String)>) -> Result<()> {
        let mut dirs = Vec::new();
        for &(catalog, port, variable) in list {
            ensure_port_free(port, &format!("the worker ({catalog})"), variable)?;
            let dir = self.root.join(".stack").join("workers").join(catalog);
            let mut vars = self.secrets.dev_vars(&self.rest_url(), stack::LOCAL_JWT_SECRET, catalog);
            vars.extend(extra(catalog));
            worker::dev_dir(&self.root, &dir, &vars).map_err(s)?;
            dirs.push((catalog, port, dir));
        }
        let root = self.root.as_path();
        let started: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = dirs
                .iter()
                .map(|(catalog, port, dir)| {
                    let h = scope.spawn(move || worker::dev_start_in(root, dir, *port, &dir.join("wrangler.log")));
                    (*catalog, h)
                })
                .collect();
            let panicked = || Err(worker::WorkerError("wrangler dev: its thread panicked".into()));
            handles.into_iter().map(|(catalog, h)| (catalog, h.join().unwrap_or_else(|_| panicked()))).collect()
        });
        let mut errors = Vec::new();
        for (catalog, r) in started {
            match r {
                Ok(dev) => {
                    let url = dev.url.clone();
                    self.workers.push(Worker { catalog: catalog.to_string(), url, dev: Some(dev) });
                }
                Err(e) => errors.push(format!("the worker ({catalog}): {e}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Stops the worker serving `catalog` (its isolate is gone: the next one starts cold).
    pub fn stop_worker(&mut self, catalog: &str) -> Result<()> {
        match self.workers.iter().position(|w| w.catalog == catalog) {
            Some(i) => self.workers.remove(i).stop(),
            None => Ok(()),
        }
    }

    /// The four workers the app uses: VCM Suite (gating), video studio (usage and holds),
    /// the Razorpay AI app (free drafts and AI credits) and Org Seats (organizations, their
    /// members, invites and seats). Each sells through the www
    /// app's local stand-ins for Stripe's and Razorpay's APIs (see [`Local::provider_stand_in`]).
    pub fn start_app_workers(&mut self) -> Result<()> {
        let p = self.ports;
        let www = format!("http://127.0.0.1:{}", p.www);
        self.start_workers_with(
            &[
                ("vcm-suite", p.worker, "TOLLGATE_WORKER_PORT"),
                ("video-studio", p.studio, "TOLLGATE_STUDIO_WORKER_PORT"),
                ("razorpay-ai", p.razorpay, "TOLLGATE_RAZORPAY_WORKER_PORT"),
                ("org-seats", p.org, "TOLLGATE_ORG_WORKER_PORT"),
            ],
            |catalog| Local::provider_stand_in(&www, catalog),
        )
    }

    /// One worker that sells through the www app's provider stand-ins, like
    /// [`Local::start_app_workers`]'s (the first-paint bench buys a plan through it).
    pub fn start_selling_worker(&mut self, catalog: &str, port: u16, variable: &str) -> Result<()> {
        let www = format!("http://127.0.0.1:{}", self.ports.www);
        self.start_workers_with(&[(catalog, port, variable)], |c| Local::provider_stand_in(&www, c))
    }

    /// A worker's provider configuration for local runs: its own base on the www app's
    /// stand-ins for Stripe's and Razorpay's APIs (`/api/dev/stripe/<catalog>`, enabled
    /// only with `TOLLGATE_DEV_AUTH=1`), so the stand-in knows which worker its webhooks
    /// go to, and keys that are plainly fake: the stand-in takes test-mode keys only, and
    /// no real provider accepts these.
    pub fn provider_stand_in(www: &str, catalog: &str) -> Vec<(String, String)> {
        vec![
            ("STRIPE_API_BASE".into(), format!("{www}/api/dev/stripe/{catalog}")),
            ("STRIPE_SECRET_KEY".into(), "sk_test_local_stand_in".into()),
            ("RAZORPAY_API_BASE".into(), format!("{www}/api/dev/razorpay/{catalog}")),
            ("RAZORPAY_KEY_ID".into(), "rzp_test_local_stand_in".into()),
            ("RAZORPAY_KEY_SECRET".into(), "local_stand_in".into()),
        ]
    }

    pub fn worker_url(&self, catalog: &str) -> Option<String> {
        self.workers.iter().find(|w| w.catalog == catalog).map(|w| w.url.clone())
    }

    /// The trusted snapshot key, `kid:base64url`, of this run's signing key.
    pub fn snapshot_public_keys(&self) -> Result<String> {
        let secret = tollgate::snapshot::decode_key(&self.secrets.snapshot_secret).map_err(|e| format!("snapshot signing key: {e}"))?;
        let public = tollgate::snapshot::public_key_of(&secret);
        Ok(format!("{}:{}", self.secrets.snapshot_kid, tollgate::snapshot::encode_b64url(&public)))
    }

    /// What the www app needs from the stack.
    pub fn urls(&self) -> Result<StackUrls> {
        let worker = self.worker_url("vcm-suite").ok_or("the VCM Suite worker is not running")?;
        let studio = self.worker_url("video-studio").unwrap_or_else(|| worker.clone());
        let razorpay = self.worker_url("razorpay-ai").unwrap_or_else(|| worker.clone());
        let org = self.worker_url("org-seats").unwrap_or_else(|| worker.clone());
        Ok(StackUrls {
            worker_url: worker,
            studio_worker_url: studio,
            razorpay_worker_url: razorpay,
            org_worker_url: org,
            snapshot_public_keys: self.snapshot_public_keys()?,
            supabase_url: self.rest_url(),
            jwt_secret: stack::LOCAL_JWT_SECRET.to_string(),
            database_url: self.db_url(),
            stripe_webhook_secret: self.secrets.stripe[0].clone(),
            razorpay_webhook_secret: self.secrets.razorpay.clone(),
        })
    }

    /// `next start` of the built www app, pointed at this stack.
    pub fn start_www(&mut self) -> Result<&Www> {
        ensure_port_free(self.ports.www, "the www app", "TOLLGATE_WWW_PORT")?;
        let urls = self.urls()?;
        let w = www::start(&self.root, self.ports.www, &urls)?;
        self.www.0 = Some(w);
        Ok(self.www.0.as_ref().expect("just started"))
    }

    pub fn www(&self) -> Option<&Www> {
        self.www.0.as_ref()
    }

    /// Whether every started process is still running (for a command that waits).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(gw) = self.gateway.as_mut() {
            if let Ok(Some(status)) = gw.child.try_wait() {
                return Err(format!("the REST gateway exited ({status}); log: {}", gw.log_file.display()));
            }
        }
        if !self.pg_handle.is_running() {
            return Err(format!("PostgreSQL stopped; log: {}", self.pg_handle.log_file.display()));
        }
        Ok(())
    }

    /// Stops everything, in reverse order of starting, saying what it stops.
    pub fn stop(mut self) -> Result<()> {
        let t = Instant::now();
        step("stopping the local stack");
        let mut errors = Vec::new();
        if self.www.0.is_some() {
            note("next start");
            if let Err(e) = self.www.stop() {
                errors.push(e);
            }
        }
        while let Some(mut w) = self.workers.pop() {
            note(format!("wrangler dev ({}, {})", w.catalog, w.url));
            if let Err(e) = w.stop() {
                errors.push(e);
            }
        }
        if let Some(gw) = self.gateway.take() {
            note("REST gateway");
            if let Err(e) = gw.stop() {
                errors.push(e.to_string());
            }
        }
        if self.pg.0.is_some() {
            note("PostgreSQL");
            if let Err(e) = self.pg.stop() {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            note(format!("stopped in {}", secs(t)));
            Ok(())
        } else {
            Err(format!("stopping the local stack: {}", errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod supabase_config_tests {
    use std::fs;

    use crate::stack::{repo_root, BOOTSTRAP_DIR, MIGRATIONS_DIR, PG_PORT};

    #[test]
    fn the_supabase_cli_config_names_the_local_stack_s_ports_and_postgres() {
        let root = repo_root().unwrap();
        let text = fs::read_to_string(root.join("supabase").join("config.toml")).unwrap();
        let cfg: toml::Table = toml::from_str(&text).unwrap();
        let int = |section: &str, key: &str| cfg[section][key].as_integer().unwrap_or_else(|| panic!("[{section}] {key}"));
        assert_eq!(int("api", "port"), 54321, "the REST gateway's default port (local.rs)");
        assert_eq!(int("db", "port"), i64::from(PG_PORT));
        assert_eq!(int("db", "major_version"), 15, "the PostgreSQL the local stack runs (Debian's)");
        assert_eq!(cfg["project_id"].as_str(), Some("tollgate"));
        // `supabase db reset` applies supabase/migrations/, as the local stack does; the
        // local-only bootstrap folder is never among them.
        assert!(root.join(MIGRATIONS_DIR).is_dir());
        assert!(!text.contains(BOOTSTRAP_DIR), "the CLI must not apply {BOOTSTRAP_DIR}");
    }
}
