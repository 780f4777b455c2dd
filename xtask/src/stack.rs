//! The local stack: a throwaway PostgreSQL cluster (Debian's packages), the Supabase
//! bootstrap plus the project's migrations, and the REST gateway (`tollgate-gateway`, a
//! local stand-in for PostgREST) in front of it.
//!
//! Self-contained (std only) so that `xtask` and the gateway's integration tests can both
//! use it. Every step is idempotent and says what it does on stderr (`==> ...`).
//!
//! Layout of a cluster directory `dir` (by default `<repo>/.stack/pg`, ignored by git):
//!
//! ```text
//! dir/data          PGDATA (initdb)
//! dir/run           unix socket directory
//! dir/postgres.log  server log
//! ```
//!
//! Typical use:
//!
//! ```ignore
//! let root = stack::repo_root()?;                  // found from the current directory
//! let pg = stack::pg_start(&root.join(".stack/pg"), stack::PG_PORT)?;
//! stack::apply_all(&pg, &root, 2)?;                 // bootstrap + migrations, each twice
//! let bin = stack::gateway_binary(&root, false)?;   // cargo build -p tollgate-gateway
//! let gw = stack::gateway_start(&bin, &stack::GatewayOptions::local(&pg), &root.join(".stack"))?;
//! stack::wait_ready(&gw.url("/rest/v1/"), std::time::Duration::from_secs(10))?;
//! // ... (the gateway stops when `gw` is dropped, unless `gw.detach()` leaves it running;
//! // `gateway_stop(&root.join(".stack"))` stops a detached one later)
//! gw.stop()?;
//! stack::pg_stop(&root.join(".stack/pg"))?;
//! ```
//!
//! Or all at once: `stack_up(&root)` / `stack_down(&root)`.
//!
//! As root the cluster runs as the `postgres` OS user (via `runuser`), since PostgreSQL
//! refuses to run as root. If that user cannot reach `dir` (for example a checkout under
//! a private home directory), the cluster goes to a directory under the system temp dir
//! derived from `dir`, and the module says so.

// The API is wider than any one command (or test) uses.
#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Supabase's local convention: the database on 54322, the REST API on 54321.
pub const PG_PORT: u16 = 54322;
/// Where the gateway listens by default (`/rest/v1` is served there).
pub const GATEWAY_ADDR: &str = "127.0.0.1:54321";
/// The JWT secret the Supabase CLI uses for local stacks (public, local-only). Tokens for
/// the local stack are HS256-signed with it.
pub const LOCAL_JWT_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
/// The local stack's API keys in Supabase's current style (not JWTs): the gateway maps the
/// secret key to `service_role` and the publishable key to `anon`, as Supabase's does.
/// Fixed and public, like the JWT secret above: local use only.
pub const LOCAL_SECRET_KEY: &str = "sb_secret_tollgate_local_stack_0000000000";
pub const LOCAL_PUBLISHABLE_KEY: &str = "sb_publishable_tollgate_local_stack_00000";
/// The bootstrap script and the migrations folder, relative to the repository root.
pub const BOOTSTRAP_DIR: &str = "supabase/bootstrap";
pub const MIGRATIONS_DIR: &str = "supabase/migrations";

/// What went wrong, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackError(pub String);

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StackError {}

pub type Result<T> = std::result::Result<T, StackError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(StackError(msg.into()))
}

fn say(msg: &str) {
    eprintln!("==> {msg}");
}

/// The repository root, found at run time: the nearest directory at or above the current
/// directory whose Cargo.toml has a `[workspace]` section and which contains `xtask/`.
/// (`cargo xtask` is an alias of `cargo run --package xtask`, which keeps the caller's
/// directory; cargo runs the gateway's tests in `gateway/`.) Never the directory the code
/// was compiled in, so a build tree copied elsewhere acts on the checkout it is run in.
pub fn repo_root() -> Result<PathBuf> {
    let here = std::env::current_dir()
        .map_err(|e| StackError(format!("cannot read the current directory: {e}")))?;
    find_repo_root(&here)
}

/// [`repo_root`] from `start` instead of the current directory.
pub fn find_repo_root(start: &Path) -> Result<PathBuf> {
    match start.ancestors().find(|dir| is_repo_root(dir)) {
        Some(dir) => Ok(dir.to_path_buf()),
        None => err(format!(
            "no tollgate repository at or above {}: looked for a directory whose Cargo.toml has a \
             [workspace] section and that contains xtask/; run `cargo xtask` from inside the repository",
            start.display()
        )),
    }
}

fn is_repo_root(dir: &Path) -> bool {
    dir.join("xtask").is_dir()
        && fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|s| s.lines().any(|l| l.trim_start().starts_with("[workspace]")))
}

/// A free TCP port on 127.0.0.1 (for tests that run their own cluster or gateway).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| StackError(format!("cannot bind a free port: {e}")))?;
    Ok(l.local_addr()
        .map_err(|e| StackError(e.to_string()))?
        .port())
}

// ------------------------------------------------------------------ processes

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a command to completion; on failure the error carries its output.
fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| StackError(format!("{what}: cannot run {:?}: {e}", cmd.get_program())))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

// ------------------------------------------------------------------ PostgreSQL

/// Finds PostgreSQL's server binaries: `$TOLLGATE_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else `pg_config --bindir`.
pub fn find_pg_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TOLLGATE_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for e in entries.flatten() {
            let bin = e.path().join("bin");
            let version = e.file_name().to_string_lossy().parse::<u32>().ok();
            if let (Some(v), true) = (version, bin.join("initdb").exists()) {
                if best.as_ref().is_none_or(|(b, _)| v > *b) {
                    best = Some((v, bin));
                }
            }
        }
    }
    if let Some((_, bin)) = best {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.join("initdb").exists().then_some(dir)
}

/// Makes sure PostgreSQL's server binaries exist, installing Debian's `postgresql` with
/// apt when missing (as root). Returns the bin directory.
pub fn ensure_postgres() -> Result<PathBuf> {
    if let Some(dir) = find_pg_bindir() {
        return Ok(dir);
    }
    if !is_root() {
        return err("PostgreSQL is not installed: run `sudo apt-get install -y postgresql` (or set TOLLGATE_PG_BINDIR)");
    }
    say("installing PostgreSQL (apt-get install -y postgresql)");
    let install = || {
        run(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "postgresql",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install postgresql",
        )
    };
    if install().is_err() {
        say("apt-get update");
        run(
            Command::new("apt-get").args(["update", "-q"]),
            "apt-get update",
        )?;
        install()?;
    }
    find_pg_bindir().ok_or_else(|| {
        StackError(
            "apt installed postgresql but no initdb was found under /usr/lib/postgresql".into(),
        )
    })
}

/// A throwaway cluster: where it lives and how to reach it.
#[derive(Debug, Clone)]
pub struct Pg {
    pub bin_dir: PathBuf,
    /// The cluster directory (holds `data`, `run`, `postgres.log`).
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub log_file: PathBuf,
    pub port: u16,
    /// Run server commands as the `postgres` OS user (we are root).
    as_postgres: bool,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

impl Pg {
    /// Describes the cluster in `dir` (nothing is created or started). Installs
    /// PostgreSQL first if needed.
    pub fn new(dir: &Path, port: u16) -> Result<Pg> {
        let bin_dir = ensure_postgres()?;
        let as_postgres = is_root();
        let mut dir = absolute(dir)?;
        // The socket path must stay under the kernel's ~107-byte limit.
        let too_long = dir.join("run/.s.PGSQL.65535").as_os_str().len() > 100;
        if too_long || (as_postgres && !postgres_can_use(&dir)?) {
            let alt = std::env::temp_dir().join(format!(
                "tollgate-stack-{:016x}",
                fnv(&dir.to_string_lossy())
            ));
            say(&format!(
                "{} is {} for PostgreSQL; using {} instead",
                dir.display(),
                if too_long {
                    "too deep a path"
                } else {
                    "not reachable by the postgres user"
                },
                alt.display()
            ));
            dir = alt;
        }
        Ok(Pg {
            data_dir: dir.join("data"),
            socket_dir: dir.join("run"),
            log_file: dir.join("postgres.log"),
            dir,
            bin_dir,
            port,
            as_postgres,
        })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// A server-side command (initdb, pg_ctl), run as `postgres` when we are root.
    fn server_cmd(&self, name: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin(name));
            c
        } else {
            Command::new(self.bin(name))
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// Creates the directories, owned by `postgres` when we are root.
    fn prepare_dirs(&self) -> Result<()> {
        for d in [&self.dir, &self.socket_dir] {
            fs::create_dir_all(d)
                .map_err(|e| StackError(format!("cannot create {}: {e}", d.display())))?;
        }
        if self.as_postgres {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:postgres")
                    .arg(&self.dir),
                "chown the cluster directory to postgres",
            )?;
        }
        Ok(())
    }

    /// Runs initdb unless the cluster exists. Returns whether it created one.
    pub fn init(&self) -> Result<bool> {
        if self.data_dir.join("PG_VERSION").exists() {
            return Ok(false);
        }
        self.prepare_dirs()?;
        say(&format!("initdb {}", self.data_dir.display()));
        run(
            self.server_cmd("initdb")
                .arg("-D")
                .arg(&self.data_dir)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]),
            "initdb",
        )?;
        // A throwaway cluster: durability across OS crashes is not needed, speed is.
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir.join("postgresql.conf"))
            .map_err(|e| StackError(format!("cannot open postgresql.conf: {e}")))?;
        writeln!(
            conf,
            "\n# tollgate local stack (throwaway cluster)\n\
             listen_addresses = '127.0.0.1'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             timezone = 'UTC'\nmax_connections = 200\n"
        )
        .map_err(|e| StackError(format!("cannot write postgresql.conf: {e}")))?;
        Ok(true)
    }

    pub fn is_running(&self) -> bool {
        self.data_dir.join("PG_VERSION").exists()
            && self
                .server_cmd("pg_ctl")
                .arg("status")
                .arg("-D")
                .arg(&self.data_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
    }

    /// Starts the server (initdb first if needed); a no-op when it is already running.
    pub fn start(&self) -> Result<()> {
        self.init()?;
        if self.is_running() {
            say(&format!(
                "PostgreSQL already running on 127.0.0.1:{}",
                self.port
            ));
            return Ok(());
        }
        self.prepare_dirs()?;
        say(&format!(
            "starting PostgreSQL on 127.0.0.1:{} ({})",
            self.port,
            self.data_dir.display()
        ));
        let opts = format!("-p {} -k {}", self.port, self.socket_dir.display());
        let started = run(
            self.server_cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&self.log_file)
                .args(["-w", "-t", "60", "-o", &opts, "start"]),
            "pg_ctl start",
        );
        if let Err(e) = started {
            let log = fs::read_to_string(&self.log_file).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return err(format!(
                "{e}\nlast lines of {}:\n{}",
                self.log_file.display(),
                tail.join("\n")
            ));
        }
        Ok(())
    }

    /// Stops the server (fast shutdown); a no-op when it is not running.
    pub fn stop(&self) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        say(&format!(
            "stopping PostgreSQL ({})",
            self.data_dir.display()
        ));
        run(
            self.server_cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
            "pg_ctl stop",
        )
        .map(|_| ())
    }

    /// Stops the server and deletes the cluster, then creates and starts a fresh one.
    pub fn reset(&self) -> Result<()> {
        self.stop()?;
        if self.data_dir.exists() {
            say(&format!("deleting {}", self.data_dir.display()));
            fs::remove_dir_all(&self.data_dir).map_err(|e| {
                StackError(format!("cannot delete {}: {e}", self.data_dir.display()))
            })?;
        }
        self.start()
    }

    /// A `sh` command line that stops this cluster: for a watchdog process that must
    /// clean up after its caller has exited.
    pub fn stop_shell_command(&self) -> String {
        let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        let pg_ctl = format!(
            "{} -D {} -m fast -w stop",
            q(&self.bin("pg_ctl")),
            q(&self.data_dir)
        );
        if self.as_postgres {
            format!("cd {} && runuser -u postgres -- {pg_ctl}", q(&self.dir))
        } else {
            pg_ctl
        }
    }

    /// A `sh` command line that starts this (already initialised) cluster with the same
    /// options as `start`: for tests run by another program (the e2e outage test).
    pub fn start_shell_command(&self) -> String {
        let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        let pg_ctl = format!(
            "{} -D {} -l {} -w -t 60 -o {} start",
            q(&self.bin("pg_ctl")),
            q(&self.data_dir),
            q(&self.log_file),
            q(Path::new(&format!(
                "-p {} -k {}",
                self.port,
                self.socket_dir.display()
            )))
        );
        if self.as_postgres {
            format!("cd {} && runuser -u postgres -- {pg_ctl}", q(&self.dir))
        } else {
            pg_ctl
        }
    }

    /// `postgres://<user>@127.0.0.1:<port>/postgres` (trust authentication, no password).
    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }

    fn psql_cmd(&self) -> Command {
        let mut cmd = Command::new(self.bin("psql"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .env("PGOPTIONS", "-c client_min_messages=warning");
        cmd
    }

    /// Runs one SQL file as the superuser, in a single transaction.
    pub fn psql_file(&self, file: &Path) -> Result<()> {
        run(
            self.psql_cmd().arg("-1").arg("-f").arg(file),
            &format!("applying {}", file.display()),
        )
        .map(|_| ())
    }

    /// Runs SQL as the superuser and returns psql's unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> Result<String> {
        run(self.psql_cmd().args(["-A", "-t", "-c", sql]), "psql").map(|s| s.trim_end().to_string())
    }
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        Ok(dir.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .map_err(|e| StackError(e.to_string()))?
            .join(dir))
    }
}

/// Whether the `postgres` OS user can create and use `dir` (checked on its nearest
/// existing ancestor, since we create the directory ourselves).
fn postgres_can_use(dir: &Path) -> Result<bool> {
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => return Ok(false),
        }
    }
    // The directory itself gets chowned to postgres; what matters is that every
    // ancestor can be traversed.
    Ok(Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false))
}

/// Installs PostgreSQL if needed, creates the cluster in `dir` if needed, starts it on
/// 127.0.0.1:`port`. Idempotent.
pub fn pg_start(dir: &Path, port: u16) -> Result<Pg> {
    let pg = Pg::new(dir, port)?;
    pg.start()?;
    Ok(pg)
}

/// Stops the cluster in `dir` if it is running (whatever port it was started on).
pub fn pg_stop(dir: &Path) -> Result<()> {
    match find_pg_bindir() {
        None => Ok(()), // nothing installed, nothing running
        Some(_) => Pg::new(dir, PG_PORT)?.stop(),
    }
}

/// The SQL files to apply, in order: `supabase/bootstrap/*.sql` then
/// `supabase/migrations/*.sql`, each folder sorted by file name (the migrations are
/// timestamped, so that is their creation order). A missing folder contributes nothing.
pub fn sql_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for sub in [BOOTSTRAP_DIR, MIGRATIONS_DIR] {
        let dir = root.join(sub);
        if !dir.exists() {
            continue;
        }
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| StackError(format!("cannot read {}: {e}", dir.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        all.extend(files);
    }
    if all.is_empty() {
        return err(format!(
            "no SQL found under {}/{BOOTSTRAP_DIR}",
            root.display()
        ));
    }
    Ok(all)
}

/// Applies the bootstrap and the migrations in order, each file `passes` times in a row
/// (2 proves each is idempotent: its second run must succeed on top of its first, as
/// when a deployment is interrupted and retried). A later migration may change what an
/// earlier one made (a table into a view), so the files are not run again after their
/// successors. Each run is its own transaction, so a failing file leaves nothing
/// half-applied. Afterwards the gateway is told to reload its schema cache
/// (`NOTIFY pgrst, 'reload schema'`, as PostgREST).
pub fn apply_all(pg: &Pg, root: &Path, passes: u32) -> Result<Vec<PathBuf>> {
    let files = sql_files(root)?;
    let migrations = files
        .iter()
        .filter(|f| f.starts_with(root.join(MIGRATIONS_DIR)))
        .count();
    say(&format!(
        "applying bootstrap + {migrations} migration(s){}",
        if passes > 1 { format!(", each {passes} times") } else { String::new() }
    ));
    for f in &files {
        let shown = f.strip_prefix(root).unwrap_or(f);
        say(&format!("  {}", shown.display()));
        for _ in 0..passes.max(1) {
            pg.psql_file(f)?;
        }
    }
    pg.psql("notify pgrst, 'reload schema'")?;
    Ok(files)
}

// ------------------------------------------------------------------ gateway

/// How to run the gateway. `local(&pg)` gives the local stack's settings.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub listen: String,
    pub db_uri: String,
    pub jwt_secret: String,
    pub schema: String,
    pub anon_role: String,
    pub pool_size: u32,
    /// Extra arguments passed through (for example `--require-apikey`).
    pub extra_args: Vec<String>,
}

impl GatewayOptions {
    pub fn local(pg: &Pg) -> GatewayOptions {
        GatewayOptions {
            listen: GATEWAY_ADDR.to_string(),
            db_uri: pg.url("authenticator"),
            jwt_secret: LOCAL_JWT_SECRET.to_string(),
            schema: "public".to_string(),
            anon_role: "anon".to_string(),
            pool_size: 20,
            extra_args: vec![
                "--secret-key".into(),
                LOCAL_SECRET_KEY.into(),
                "--publishable-key".into(),
                LOCAL_PUBLISHABLE_KEY.into(),
            ],
        }
    }
}

/// Builds the gateway (`cargo build -p tollgate-gateway [--release]`) and returns the
/// binary's path.
pub fn gateway_binary(root: &Path, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    say(&format!(
        "building tollgate-gateway{}",
        if release { " (release)" } else { "" }
    ));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "-q", "-p", "tollgate-gateway"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| StackError(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return err("cargo build -p tollgate-gateway failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target
        .join(if release { "release" } else { "debug" })
        .join("tollgate-gateway");
    if bin.exists() {
        Ok(bin)
    } else {
        err(format!("built, but {} is missing", bin.display()))
    }
}

/// A running gateway process, stopped when this value is dropped unless `detach`ed.
#[derive(Debug)]
pub struct Gateway {
    pub child: Child,
    pub listen: String,
    pub log_file: PathBuf,
    done: bool,
}

impl Gateway {
    /// `http://<listen><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops this gateway (SIGTERM, then SIGKILL after 5 s) and waits for it.
    pub fn stop(mut self) -> Result<()> {
        self.shut_down();
        Ok(())
    }

    /// Leaves the gateway running after this value is gone; `gateway_stop(state_dir)`
    /// stops it later through its pid file.
    pub fn detach(mut self) -> u32 {
        self.done = true;
        self.child.id()
    }

    fn shut_down(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // Our own child: its pid cannot be reused before we reap it below.
        terminate(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Starts the gateway binary in the background, logging to `<state_dir>/gateway.log` and
/// recording `<pid> <listen address>` in `<state_dir>/gateway.pid` (for `gateway_stop`).
/// Does not wait for it: call `wait_ready` next.
pub fn gateway_start(bin: &Path, opts: &GatewayOptions, state_dir: &Path) -> Result<Gateway> {
    fs::create_dir_all(state_dir)
        .map_err(|e| StackError(format!("cannot create {}: {e}", state_dir.display())))?;
    let log_file = state_dir.join("gateway.log");
    let log = fs::File::create(&log_file)
        .map_err(|e| StackError(format!("cannot create {}: {e}", log_file.display())))?;
    let log2 = log.try_clone().map_err(|e| StackError(e.to_string()))?;
    say(&format!(
        "starting tollgate-gateway on {} (log: {})",
        opts.listen,
        log_file.display()
    ));
    let child = Command::new(bin)
        .args([
            "--listen",
            &opts.listen,
            "--db-uri",
            &opts.db_uri,
            "--schema",
            &opts.schema,
        ])
        .args([
            "--anon-role",
            &opts.anon_role,
            "--pool-size",
            &opts.pool_size.to_string(),
        ])
        .args(&opts.extra_args)
        // The secret goes through the environment, not the command line.
        .env("PGRST_JWT_SECRET", &opts.jwt_secret)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| StackError(format!("cannot start {}: {e}", bin.display())))?;
    let gateway = Gateway {
        child,
        listen: opts.listen.clone(),
        log_file,
        done: false,
    };
    fs::write(
        state_dir.join("gateway.pid"),
        format!("{} {}", gateway.pid(), opts.listen),
    )
    .map_err(|e| StackError(format!("cannot write gateway.pid: {e}")))?;
    Ok(gateway)
}

/// Stops the gateway recorded in `<state_dir>/gateway.pid`, if it is still running: the
/// pid is signalled only when its command line is a tollgate-gateway listening on the
/// recorded address (pids get reused).
pub fn gateway_stop(state_dir: &Path) -> Result<()> {
    let pid_file = state_dir.join("gateway.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let _ = fs::remove_file(&pid_file);
    let mut parts = text.split_whitespace();
    let (Some(Ok(pid)), Some(listen)) = (parts.next().map(str::parse::<u32>), parts.next()) else {
        return Ok(());
    };
    let cmdline =
        String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .replace('\0', " ");
    if !cmdline.contains("tollgate-gateway") || !cmdline.contains(listen) {
        return Ok(());
    }
    say(&format!("stopping tollgate-gateway (pid {pid}, {listen})"));
    terminate(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// GETs `url` (plain `http://host:port/path`) and returns the status code and body.
pub fn http_get(url: &str, timeout: Duration) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| StackError(format!("not an http:// url: {url}")))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| StackError(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| StackError(format!("{host}: no address")))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| StackError(format!("{url}: {e}")))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| StackError(format!("{url}: {e}")))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| StackError(format!("{url}: {e}")))?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| StackError(format!("{url}: not an HTTP response")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `url` until it answers 200 or `timeout` passes. For the gateway, use
/// `/rest/v1/`: it answers 200 only once PostgreSQL is reachable through it.
pub fn wait_ready(url: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match http_get(url, Duration::from_secs(2)) {
            Ok((200, _)) => return Ok(()),
            Ok((code, body)) => last = format!("HTTP {code}: {}", body.trim()),
            Err(e) => last = e.0,
        }
        if Instant::now() >= deadline {
            return err(format!("{url} not ready after {timeout:?} ({last})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------ whole stack

/// The local stack as `cargo xtask demo` / `cargo xtask test` use it. Dropping it stops
/// the gateway (PostgreSQL keeps running until `stack_down` or `pg_stop`).
#[derive(Debug)]
pub struct Stack {
    pub pg: Pg,
    pub gateway: Gateway,
}

/// Brings the whole local stack up on Supabase's local ports: PostgreSQL on 54322
/// (cluster in `<root>/.stack/pg`), bootstrap + migrations each applied twice, the gateway on
/// 54321 (a debug build), waiting until it answers.
pub fn stack_up(root: &Path) -> Result<Stack> {
    let state = root.join(".stack");
    gateway_stop(&state)?;
    let pg = pg_start(&state.join("pg"), PG_PORT)?;
    apply_all(&pg, root, 2)?;
    let bin = gateway_binary(root, false)?;
    let gateway = gateway_start(&bin, &GatewayOptions::local(&pg), &state)?;
    wait_ready(&gateway.url("/rest/v1/"), Duration::from_secs(20))?;
    say(&format!(
        "local stack ready: REST {} , database {}",
        gateway.url("/rest/v1"),
        pg.url("postgres")
    ));
    Ok(Stack { pg, gateway })
}

/// Stops the gateway and PostgreSQL of the local stack (the cluster's data stays).
pub fn stack_down(root: &Path) -> Result<()> {
    let state = root.join(".stack");
    gateway_stop(&state)?;
    pg_stop(&state.join("pg"))
}

#[cfg(test)]
mod repo_root_tests {
    use super::*;

    #[test]
    fn the_repository_is_found_from_the_current_directory_not_the_build() {
        // cargo runs the tests inside the checkout (xtask/ or gateway/): the root is its
        // workspace, the one that holds this file.
        let root = repo_root().unwrap();
        assert!(root.join("xtask").join("src").join("stack.rs").is_file(), "{}", root.display());
        assert_eq!(find_repo_root(&root.join("xtask").join("src")).unwrap(), root);

        // A copy elsewhere is found from inside it: the nearest directory with a
        // [workspace] Cargo.toml and xtask/, skipping a nested workspace without xtask/.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let tmp = std::env::temp_dir().join(format!("tollgate-repo-root-{}-{nanos}", std::process::id()));
        let copy = tmp.join("copy");
        let nested = copy.join("bench").join("core");
        fs::create_dir_all(copy.join("xtask")).unwrap();
        fs::create_dir_all(nested.join("src")).unwrap();
        fs::write(copy.join("Cargo.toml"), "[package]\nname = \"x\"\n\n[workspace]\nmembers = [\"xtask\"]\n").unwrap();
        fs::write(nested.join("Cargo.toml"), "[package]\nname = \"core\"\n\n[workspace]\n").unwrap();
        assert_eq!(find_repo_root(&nested.join("src")).unwrap(), copy);
        assert_eq!(find_repo_root(&copy).unwrap(), copy);

        // Outside any checkout: a clear error, naming where it looked from.
        fs::create_dir_all(tmp.join("elsewhere")).unwrap();
        let e = find_repo_root(&tmp.join("elsewhere")).unwrap_err().to_string();
        assert!(e.contains("[workspace]") && e.contains("xtask/") && e.contains("elsewhere"), "{e}");
        // A Cargo.toml without [workspace] next to an xtask/ folder is not the root either.
        fs::write(copy.join("Cargo.toml"), "[package]\nname = \"x\"\n[workspace.dependencies]\n").unwrap();
        assert_ne!(find_repo_root(&copy.join("xtask")).ok(), Some(copy.clone()));
        fs::remove_dir_all(&tmp).unwrap();
    }
}

