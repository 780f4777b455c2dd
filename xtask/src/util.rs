//! Small helpers every command uses: announcing steps, running programs,
//! finding the repository.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub type Result<T> = std::result::Result<T, String>;

/// The repository root, found at run time from the current directory (see
/// [`crate::stack::repo_root`]), never from where xtask was compiled.
pub fn root() -> Result<PathBuf> {
    crate::stack::repo_root().map_err(|e| e.to_string())
}

/// Announces a step: `==> what`.
pub fn step(what: impl AsRef<str>) {
    println!("==> {}", what.as_ref());
    let _ = std::io::stdout().flush();
}

/// A note under a step.
pub fn note(what: impl AsRef<str>) {
    println!("    {}", what.as_ref());
    let _ = std::io::stdout().flush();
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs a command with inherited output; fails with a clear message.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    let t = Instant::now();
    let status = cmd.status().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status}) after {:.1}s", t.elapsed().as_secs_f64()))
    }
}

/// Runs a command and returns its stdout (stderr passes through).
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{shown}` failed ({})", out.status));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("`{shown}` printed non-UTF-8 output"))
}

/// Stdout of a command if it runs and succeeds, else None (for probing tools).
pub fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if out.status.success() {
        String::from_utf8(out.stdout).ok()
    } else {
        None
    }
}

/// A program on PATH (or at an absolute path) that exists.
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|c| c.is_file())
}

/// Seconds since `t`, for "done in N s" notes.
pub fn secs(t: Instant) -> String {
    format!("{:.1}s", t.elapsed().as_secs_f64())
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes a file only when its content changes (keeps mtimes, and so bundlers' caches, stable).
pub fn write_if_changed(path: &Path, content: &[u8]) -> Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

/// A stable 64-bit FNV-1a hash (for build stamps; not for security).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------- Ctrl-C

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
}

extern "C" fn on_interrupt(_signum: i32) {
    // Only async-signal-safe work here: set a flag (the first time), or leave at once
    // (the second time, for a user who does not want to wait for the clean shutdown).
    if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        unsafe { _exit(130) }
    }
}

/// From now on SIGINT (Ctrl-C) and SIGTERM set a flag instead of killing xtask, so the
/// command can stop what it started (Drop guards, in reverse order) before it exits.
/// A second Ctrl-C exits at once.
pub fn catch_interrupts() {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    // SAFETY: installs a handler that only touches an atomic (or calls _exit).
    unsafe {
        signal(SIGINT, on_interrupt);
        signal(SIGTERM, on_interrupt);
    }
}

/// Whether Ctrl-C (or SIGTERM) has been received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

// ---------------------------------------------------------------- stages

/// The named stages of a command, each announced, timed and summarised; a failing
/// stage fails the command with a message that names it.
pub struct Stages {
    command: String,
    done: Vec<(String, f64, &'static str)>,
    started: Instant,
}

impl Stages {
    pub fn new(command: &str) -> Stages {
        Stages { command: command.to_string(), done: Vec::new(), started: Instant::now() }
    }

    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if interrupted() {
            return Err(format!("interrupted (Ctrl-C) before stage `{name}`"));
        }
        self.run_always(name, f)
    }

    /// [`Stages::run`], also after Ctrl-C (for the stage that shuts things down).
    pub fn run_always<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let n = self.done.len() + 1;
        println!();
        step(format!("[{n}] {name}"));
        let t = Instant::now();
        let r = f();
        let took = t.elapsed().as_secs_f64();
        match r {
            Ok(v) => {
                step(format!("[{n}] {name}: ok in {took:.1}s"));
                self.done.push((name.to_string(), took, "ok"));
                Ok(v)
            }
            Err(e) if interrupted() => {
                self.done.push((name.to_string(), took, "interrupted"));
                Err(format!("stage `{name}` interrupted (Ctrl-C) after {took:.1}s ({e})"))
            }
            Err(e) => {
                self.done.push((name.to_string(), took, "FAILED"));
                Err(format!("stage `{name}` failed after {took:.1}s:\n{e}"))
            }
        }
    }

    /// Prints every stage with its outcome and duration.
    pub fn summary(&self) {
        println!();
        step(format!("cargo xtask {}: {} stage(s) in {}", self.command, self.done.len(), secs(self.started)));
        let w = self.done.iter().map(|d| d.0.chars().count()).max().unwrap_or(0);
        for (name, took, outcome) in &self.done {
            let pad = " ".repeat(w - name.chars().count());
            note(format!("{name}{pad}  {outcome:<11} {took:>7.1}s"));
        }
        let _ = std::io::stdout().flush();
    }
}

// ---------------------------------------------------------------- ports

/// Fails with a clear message when something already listens on 127.0.0.1:`port`.
pub fn ensure_port_free(port: u16, what: &str, variable: &str) -> Result<()> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "127.0.0.1:{port} (for {what}) is already in use ({e}): stop what listens there \
             (`ss -ltnp 'sport = :{port}'` names it), or choose another port with {variable}=<port>"
        )),
    }
}

/// A port from the environment variable `name`, or `default`.
pub fn port_from_env(name: &str, default: u16) -> Result<u16> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{name}={v} is not a TCP port"))
        }
        _ => Ok(default),
    }
}

// ---------------------------------------------------------------- HTTP

/// An HTTP answer (body decoded from chunked transfer encoding when needed).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The `name=value` of each `Set-Cookie` header, in order.
    pub cookies: Vec<String>,
}

impl Response {
    /// The cookies this answer set, as a `Cookie` request header sends them back.
    pub fn cookie_header(&self) -> String {
        self.cookies.join("; ")
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .map_err(|e| format!("HTTP {}: not JSON ({e}): {}", self.status, self.body.chars().take(300).collect::<String>()))
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else { break };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// A plain HTTP/1.1 request to `http://host:port/path` (the local stack only), with a
/// JSON or raw body; one connection per request.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response> {
    use std::io::Read;
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("{method} {url}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let body = body.unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).map_err(|e| format!("{method} {url}: {e}"))?;
    // Read until the answer is complete (Content-Length, or the last chunk): servers
    // may keep the connection open whatever the request asked.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut head_end: Option<usize> = None;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    loop {
        if let Some(h) = head_end {
            let got = raw.len() - h;
            let done = match (length, chunked) {
                (Some(n), _) => got >= n,
                (None, true) => raw[h..].starts_with(b"0\r\n\r\n") || raw[h..].ends_with(b"\r\n0\r\n\r\n"),
                (None, false) => false,
            };
            if done {
                break;
            }
        }
        let n = s.read(&mut buf).map_err(|e| format!("{method} {url}: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if head_end.is_none() {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                head_end = Some(p + 4);
                let head = String::from_utf8_lossy(&raw[..p]).to_ascii_lowercase();
                for line in head.lines() {
                    if let Some((k, v)) = line.split_once(':') {
                        match k.trim() {
                            "content-length" => length = v.trim().parse().ok(),
                            "transfer-encoding" => chunked = v.trim() == "chunked",
                            _ => {}
                        }
                    }
                }
                if method == "HEAD" || head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304") {
                    length = Some(0);
                }
            }
        }
    }
    let split = head_end.ok_or_else(|| format!("{method} {url}: not an HTTP answer"))? - 4;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("{method} {url}: no status line"))?;
    let payload = &raw[split + 4..];
    let body = if chunked { dechunk(payload) } else { payload.to_vec() };
    let cookies = head
        .lines()
        .filter_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("set-cookie")))
        .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_string())
        .collect();
    Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned(), cookies })
}

/// The `*.test.mjs` file names in `dir`, sorted; `only_var` (e.g. `TOLLGATE_BROWSER_FILES=a,b`)
/// narrows them to the names that contain a or b. An empty result is an error naming both.
pub fn test_file_names(dir: &Path, only_var: &str) -> Result<Vec<String>> {
    let only: Vec<String> = std::env::var(only_var)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .filter(|n| only.is_empty() || only.iter().any(|o| n.contains(o.as_str())))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no *.test.mjs in {}{}",
            dir.display(),
            if only.is_empty() { String::new() } else { format!(" matching {only_var}={}", only.join(",")) }
        ));
    }
    Ok(files)
}
