//! The browser half: the React layer (`react/`), the Next.js demo app (`www/`) and the
//! real-browser tests (`tests/browser/`, playwright-core driving Debian's Chromium).
//!
//! - [`install`]: `npm ci` in the three folders, and the React layer's `tsc` build.
//! - [`build`]: `next build` of www (the npm package in `pkg/` must be built first).
//! - [`start`] / [`Www::stop`]: `next start` on 127.0.0.1, pointed at a running stack.
//! - [`test_browser`]: the browser tests against a running www + worker + stack.
//! - [`bench_first_paint`]: navigation to the correct locked state, as figures.
//!
//! Everything the app needs from the stack comes through [`StackUrls`], so the caller
//! (test, demo, bench) decides ports and secrets.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{note, run, step, Result};

/// Where the app finds the rest of the local stack, and the secrets it shares with it.
#[derive(Clone, Debug)]
pub struct StackUrls {
    /// The worker gating the VCM Suite catalog (`CATALOG=vcm-suite`).
    pub worker_url: String,
    /// The worker serving the video-studio catalog (Video Studio usage); may equal `worker_url`.
    pub studio_worker_url: String,
    /// The worker serving the razorpay-ai catalog (free drafts, AI credits); may equal `worker_url`.
    pub razorpay_worker_url: String,
    /// The worker serving the org-seats catalog (organizations, invites, seats); may equal `worker_url`.
    pub org_worker_url: String,
    /// Trusted snapshot keys, `kid:base64url[,kid:base64url]` (the worker's `SNAPSHOT_KEY_ID`
    /// and the public key of its `SNAPSHOT_SIGNING_KEY`).
    pub snapshot_public_keys: String,
    /// The REST gateway (Supabase URL), e.g. http://127.0.0.1:54321.
    pub supabase_url: String,
    /// The JWT secret the worker and the gateway verify access tokens with.
    pub jwt_secret: String,
    /// PostgreSQL for the local sign-in's auth.users, e.g. postgres://postgres@127.0.0.1:54322/postgres.
    pub database_url: String,
    /// The workers' Stripe endpoint secret (`whsec_...`): the Stripe stand-in signs its events with it.
    pub stripe_webhook_secret: String,
    /// The Razorpay AI app worker's webhook secret: the Razorpay stand-in signs its events with it.
    pub razorpay_webhook_secret: String,
}

fn npm() -> Command {
    let mut c = Command::new("npm");
    c.env("NEXT_TELEMETRY_DISABLED", "1")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false");
    c
}

fn npm_install(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    let locked = lock.exists();
    let stamp = dir.join("node_modules").join(".package-lock.json");
    // Installed, and not before the lockfile last changed (as worker::npm_ci decides): a
    // dependency added since then is installed, not missed.
    let present = match (
        std::fs::metadata(&stamp).and_then(|m| m.modified()),
        std::fs::metadata(&lock).and_then(|m| m.modified()),
    ) {
        (Ok(s), Ok(l)) => s >= l,
        (Ok(_), Err(_)) => true, // no lockfile: `npm install` made what is there
        _ => false,
    };
    if present {
        // Already installed: `npm ci` would delete and refetch everything.
        note(format!("{}: node_modules present", dir.display()));
        return Ok(());
    }
    step(format!(
        "npm {} in {}",
        if locked { "ci" } else { "install" },
        dir.display()
    ));
    run(npm()
        .current_dir(dir)
        .arg(if locked { "ci" } else { "install" }))
}

/// Installs the npm dependencies of react/, www/ and tests/browser/, and builds the React layer.
pub fn install(root: &Path) -> Result<()> {
    ensure_chromium()?;
    build_react(root)?;
    // www installs ../pkg and ../react as copies (www/.npmrc: install-links), so it is
    // installed afresh each time: the copies must match what was just built.
    step("npm ci in www (fresh copies of pkg/ and react/)");
    run(npm().current_dir(root.join("www")).arg("ci"))?;
    npm_install(&root.join("tests").join("browser"))?;
    Ok(())
}

/// The React layer alone: its npm packages, then tsc (react/ -> react/dist).
pub fn build_react(root: &Path) -> Result<()> {
    let react = root.join("react");
    npm_install(&react)?;
    step("tsc: react/ -> react/dist");
    run(npm().current_dir(&react).args(["run", "build"]))
}

/// Debian's Chromium (playwright-core cannot download its own browsers here).
pub fn ensure_chromium() -> Result<()> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    step("apt-get install chromium");
    run(Command::new("apt-get").arg("update").stdout(Stdio::null()))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The React layer's own tests (snapshot verification against the core's vectors).
pub fn test_react(root: &Path) -> Result<()> {
    step("node --test react/test");
    run(Command::new("node")
        .current_dir(root.join("react"))
        .args(["--test", "test/"]))
}

/// `next build` of www/. Needs pkg/ built (the wasm and the catalogs) and [`install`].
pub fn build(root: &Path) -> Result<()> {
    let pkg_wasm = root.join("pkg").join("tollgate_bg.wasm");
    if !pkg_wasm.exists() {
        return Err(format!(
            "{} is missing: build the npm package first (cargo xtask build)",
            pkg_wasm.display()
        ));
    }
    install(root)?;
    next_build(root)
}

/// `next build` of www/ alone, after [`install`].
pub fn next_build(root: &Path) -> Result<()> {
    // The app's own copy of each catalog, its fallback when a worker is unreachable
    // (the package carries none).
    crate::package::write_catalogs_to(root, "www/catalogs", "the app's fallback copies")?;
    step("next build (www/)");
    let t = Instant::now();
    run(Command::new("node")
        .current_dir(root.join("www"))
        .args(["node_modules/next/dist/bin/next", "build"])
        .env("NEXT_TELEMETRY_DISABLED", "1"))?;
    note(format!("www built in {:.1}s", t.elapsed().as_secs_f64()));
    Ok(())
}

/// A running `next start`.
pub struct Www {
    child: Child,
    pub port: u16,
    pub url: String,
    pub log: PathBuf,
}

impl Www {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(())
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn app_env(cmd: &mut Command, s: &StackUrls) {
    cmd.env("NEXT_TELEMETRY_DISABLED", "1")
        .env("TOLLGATE_WORKER_URL", &s.worker_url)
        .env("TOLLGATE_STUDIO_WORKER_URL", &s.studio_worker_url)
        .env("TOLLGATE_RAZORPAY_WORKER_URL", &s.razorpay_worker_url)
        .env("TOLLGATE_ORG_WORKER_URL", &s.org_worker_url)
        .env("TOLLGATE_SNAPSHOT_PUBLIC_KEYS", &s.snapshot_public_keys)
        .env("SUPABASE_URL", &s.supabase_url)
        // The new-style public key, as a current Supabase project hands out (the gateway maps it to `anon`).
        .env("SUPABASE_PUBLISHABLE_KEY", crate::stack::LOCAL_PUBLISHABLE_KEY)
        .env("SUPABASE_JWT_SECRET", &s.jwt_secret)
        .env("TOLLGATE_DEV_DATABASE_URL", &s.database_url)
        .env("STRIPE_WEBHOOK_SECRET", &s.stripe_webhook_secret)
        .env("RAZORPAY_WEBHOOK_SECRET", &s.razorpay_webhook_secret)
        // The local stand-ins: sign-in, and Stripe's and Razorpay's APIs (never on in production).
        .env("TOLLGATE_DEV_AUTH", "1");
}

/// Starts `next start -H 127.0.0.1 -p PORT` (port 0: a free one) and waits until it answers.
/// The PID kept is the server's own (not npx's), so [`Www::stop`] ends it.
pub fn start(root: &Path, port: u16, stack: &StackUrls) -> Result<Www> {
    let port = if port == 0 { free_port()? } else { port };
    let state = root.join("target").join("www");
    std::fs::create_dir_all(&state)
        .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    let log = state.join(format!("next-{port}.log"));
    let out =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    step(format!(
        "next start on http://127.0.0.1:{port} (log: {})",
        log.display()
    ));
    let mut cmd = Command::new("node");
    cmd.current_dir(root.join("www"))
        .args([
            "node_modules/next/dist/bin/next",
            "start",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    app_env(&mut cmd, stack);
    let child = cmd.spawn().map_err(|e| format!("cannot start next: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let www = Www {
        child,
        port,
        url: url.clone(),
        log,
    };
    if let Err(e) = wait_http(&format!("127.0.0.1:{port}"), "/", Duration::from_secs(60)) {
        let tail = std::fs::read_to_string(&www.log).unwrap_or_default();
        let _ = www.stop();
        return Err(format!(
            "next start did not answer: {e}\n{}",
            last_lines(&tail, 30)
        ));
    }
    Ok(www)
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until `GET path` on `addr` answers with any HTTP status.
pub fn wait_http(addr: &str, path: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut last = String::new();
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&sock, Duration::from_millis(500)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let req =
                    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut buf = [0u8; 16];
                    if let Ok(n) = s.read(&mut buf) {
                        if n >= 12 && buf.starts_with(b"HTTP/1.") {
                            return Ok(());
                        }
                    }
                }
                last = "connected, no HTTP answer yet".into();
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "no answer from http://{addr}{path} within {}s ({last})",
        timeout.as_secs()
    ))
}

fn browser_env(cmd: &mut Command, www: &Www, s: &StackUrls) {
    app_env(cmd, s);
    cmd.env("WWW_URL", &www.url).env("CHROMIUM_PATH", CHROMIUM);
}

/// The real-browser tests (node --test tests/browser/*.test.mjs) against a running www,
/// worker(s) and stack. Screenshots land in tests/browser/artifacts/ (gitignored).
/// `TOLLGATE_BROWSER_FILES=a,b` runs only the files whose names contain a or b.
pub fn test_browser(root: &Path, www: &Www, stack: &StackUrls) -> Result<()> {
    let dir = root.join("tests").join("browser");
    let files = crate::util::test_file_names(&dir, "TOLLGATE_BROWSER_FILES")?;
    step(format!(
        "browser tests: node --test tests/browser ({} files, Chromium {CHROMIUM})",
        files.len()
    ));
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .args(["--test", "--test-concurrency=1"])
        .args(&files);
    browser_env(&mut cmd, www, stack);
    run(&mut cmd)?;
    note(format!("screenshots: {}", dir.join("artifacts").display()));
    Ok(())
}

/// Time from navigation to the correct locked state on first paint (tools page and demo
/// tool page; signed out, cold and warm cache), printed as figures.
/// Returns one figure line per case: median, p95, the ratio to the baseline page and, for
/// the signed-in cases, whether it is within the case's budget.
pub fn bench_first_paint(root: &Path, www: &Www, stack: &StackUrls) -> Result<Vec<String>> {
    step("browser bench: navigation -> correct locked state (Chromium)");
    let out_file = root.join("target").join("bench-first-paint.json");
    let mut cmd = Command::new("node");
    cmd.current_dir(root.join("tests").join("browser"))
        .arg("bench-first-paint.mjs")
        .env("BENCH_OUT", &out_file);
    browser_env(&mut cmd, www, stack);
    run(&mut cmd)?;
    let rows: serde_json::Value = serde_json::from_str(&crate::util::read(&out_file)?).map_err(|e| e.to_string())?;
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    Ok(rows
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let budget = match r["budget"].as_f64() {
                Some(b) => format!(" (budget {b}x: {})", if f(&r["ratio"]) <= b { "met" } else { "NOT met" }),
                None => String::new(),
            };
            format!(
                "first paint, {}: median {:.0} ms, p95 {:.0} ms = {:.2}x baseline{budget}",
                r["name"].as_str().unwrap_or("?"),
                f(&r["median"]),
                f(&r["p95"]),
                f(&r["ratio"])
            )
        })
        .collect())
}
