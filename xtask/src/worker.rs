//! The Cloudflare Worker (`worker/`): build it with worker-build, run it under
//! `wrangler dev` (workerd) on 127.0.0.1:8787, and run the end-to-end suite
//! (`tests/e2e/*.test.mjs`, Node's test runner) against it and the local stack.
//!
//! Self-contained (std only). Every step says what it does on stderr (`==> ...`) and
//! installs what it needs on a fresh Debian machine:
//! - `npm ci` in `tests/e2e` (esbuild, binaryen's wasm-opt, wrangler, and the test
//!   clients stripe, razorpay, pg), from the committed package-lock.json;
//! - `cargo install worker-build --version 0.8.7` and `wasm-bindgen-cli` at exactly the
//!   wasm-bindgen version of Cargo.lock;
//! - a Rust compiler for wasm32: rustup's target where it exists; otherwise Debian's
//!   `rustc-web` with the standard library built from source (`-Z build-std`), as
//!   ../shared/TOOLCHAIN.md describes. The build says which one it uses.
//!
//! worker-build would download wasm-bindgen, wasm-opt and esbuild; it is pointed at the
//! local ones (WASM_BINDGEN_BIN, WASM_OPT_BIN, ESBUILD_BIN) instead.
//!
//! Typical use (from `cargo xtask test` after the local stack is up):
//!
//! ```ignore
//! let out = worker::build(&root)?;                       // worker/build/, sizes
//! let secrets = worker::LocalSecrets::generate(&root)?;  // random, local only
//! worker::write_dev_vars(&root, &secrets.dev_vars(rest_url, jwt_secret, "vcm-suite"))?;
//! let dev = worker::dev_start(&root, worker::DEV_PORT)?;
//! worker::run_e2e(&root, &worker::E2eEnv { ... })?;
//! dev.stop()?;
//! ```

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The worker's local address (wrangler dev).
pub const DEV_HOST: &str = "127.0.0.1";
pub const DEV_PORT: u16 = 8787;
/// The worker-build release that matches `worker = "0.8.7"`.
pub const WORKER_BUILD_VERSION: &str = "0.8.7";
/// Where the e2e package (and the build tools) live, relative to the repository root.
pub const E2E_DIR: &str = "tests/e2e";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerError(pub String);

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WorkerError {}

pub type Result<T> = std::result::Result<T, WorkerError>;

fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(WorkerError(m.into()))
}

fn say(m: &str) {
    eprintln!("==> {m}");
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| WorkerError(format!("{what}: cannot start {:?}: {e}", cmd.get_program())))?;
    if !out.status.success() {
        let mut msg = String::from_utf8_lossy(&out.stderr).to_string();
        msg.push_str(&String::from_utf8_lossy(&out.stdout));
        let tail: Vec<&str> = msg.lines().rev().take(40).collect();
        return err(format!(
            "{what} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Runs with inherited output (long builds show their progress).
fn run_visible(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| WorkerError(format!("{what}: cannot start {:?}: {e}", cmd.get_program())))?;
    if !status.success() {
        return err(format!("{what} failed ({status})"));
    }
    Ok(())
}

fn probe(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo"))
}

fn host_cargo() -> PathBuf {
    std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| "cargo".into())
}

fn is_root() -> bool {
    probe(Path::new("id"), &["-u"]).is_some_and(|u| u == "0")
}

// ------------------------------------------------------------------ tools

/// The wasm32 compiler to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmCompiler {
    /// rustup's toolchain has the wasm32-unknown-unknown target.
    Rustup,
    /// Debian's rustc-web / cargo-web, building std from source.
    DebianBuildStd,
}

/// Paths of the local build tools.
#[derive(Debug, Clone)]
pub struct Tools {
    pub e2e_dir: PathBuf,
    pub esbuild: PathBuf,
    pub wasm_opt: PathBuf,
    pub wrangler: PathBuf,
    pub wasm_bindgen: PathBuf,
    pub worker_build: PathBuf,
    pub compiler: WasmCompiler,
}

/// `npm ci` in tests/e2e when node_modules is missing or older than package-lock.json.
pub fn npm_ci(root: &Path) -> Result<PathBuf> {
    let dir = root.join(E2E_DIR);
    let lock = dir.join("package-lock.json");
    let stamp = dir.join("node_modules/.package-lock.json");
    let fresh = match (fs::metadata(&lock).and_then(|m| m.modified()), fs::metadata(&stamp).and_then(|m| m.modified())) {
        (Ok(l), Ok(s)) => s >= l,
        _ => false,
    };
    if !fresh {
        say(&format!("npm ci in {E2E_DIR} (esbuild, binaryen, wrangler, stripe, razorpay, pg)"));
        run_visible(
            Command::new("npm").current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]),
            "npm ci",
        )?;
    }
    Ok(dir)
}

/// The version of `package` locked in Cargo.lock.
pub fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).map_err(|e| WorkerError(format!("Cargo.lock: {e}")))?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{package}\"") {
            if let Some(v) = lines.next().and_then(|v| v.trim().strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    err(format!("{package} is not in Cargo.lock"))
}

fn ensure_cargo_install(krate: &str, bin: &str, version: &str) -> Result<PathBuf> {
    let path = cargo_home().join("bin").join(bin);
    let have = probe(&path, &["--version"]).unwrap_or_default();
    if have.split_whitespace().last() == Some(version) {
        return Ok(path);
    }
    say(&format!("cargo install {krate} --version {version} (a few minutes, once)"));
    run_visible(
        Command::new(host_cargo()).args(["install", krate, "--version", version]),
        &format!("cargo install {krate}"),
    )?;
    Ok(path)
}

/// Which wasm32 compiler this machine has, installing Debian's when rustup has none.
pub fn wasm_compiler() -> Result<WasmCompiler> {
    let libdir = probe(Path::new("rustc"), &["--print", "target-libdir", "--target", "wasm32-unknown-unknown"]);
    let has_std = libdir.as_deref().map(Path::new).is_some_and(|d| {
        fs::read_dir(d).map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libcore"))).unwrap_or(false)
    });
    if has_std {
        say("wasm32: rustup's wasm32-unknown-unknown target");
        return Ok(WasmCompiler::Rustup);
    }
    let src = Path::new("/usr/lib/rustlib/src/rust/library");
    if !(Path::new("/usr/bin/cargo").exists() && Path::new("/usr/bin/rustc").exists() && src.exists() && which("wasm-ld")) {
        say("wasm32: rustup has no wasm32 target; installing Debian's rustc-web, its std sources and lld");
        if !is_root() {
            return err("installing rustc-web needs root (apt-get install rustc-web cargo-web rust-web-src lld)");
        }
        let _ = run(Command::new("apt-get").arg("update"), "apt-get update");
        run_visible(
            Command::new("apt-get")
                .args(["install", "-y", "rustc-web", "cargo-web", "rust-web-src", "lld"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install rustc-web",
        )?;
    }
    // worker-build checks that the target's libdir exists; with build-std it may be empty.
    if let Some(dir) = probe(Path::new("/usr/bin/rustc"), &["--print", "target-libdir", "--target", "wasm32-unknown-unknown"]) {
        let _ = fs::create_dir_all(dir);
    }
    say("wasm32: Debian's rustc-web with std built from source (-Z build-std)");
    Ok(WasmCompiler::DebianBuildStd)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Installs (when missing) and locates every tool the worker's build and tests use.
pub fn ensure_tools(root: &Path) -> Result<Tools> {
    let e2e_dir = npm_ci(root)?;
    let esbuild = e2e_dir.join("node_modules/@esbuild/linux-x64/bin/esbuild");
    let wasm_opt = e2e_dir.join("node_modules/.bin/wasm-opt");
    let wrangler = e2e_dir.join("node_modules/wrangler/bin/wrangler.js");
    for p in [&esbuild, &wasm_opt, &wrangler] {
        if !p.exists() {
            return err(format!("{} is missing after npm ci", p.display()));
        }
    }
    let worker_build = ensure_cargo_install("worker-build", "worker-build", WORKER_BUILD_VERSION)?;
    let wb_version = locked_version(root, "wasm-bindgen")?;
    let wasm_bindgen = ensure_cargo_install("wasm-bindgen-cli", "wasm-bindgen", &wb_version)?;
    let compiler = wasm_compiler()?;
    Ok(Tools { e2e_dir, esbuild, wasm_opt, wrangler, wasm_bindgen, worker_build, compiler })
}

// ------------------------------------------------------------------ build

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// `worker/build`: the shim and the wasm module wrangler serves.
    pub dir: PathBuf,
    pub wasm: PathBuf,
    pub wasm_bytes: u64,
    /// The whole upload as Cloudflare measures its limit: every file, gzipped.
    pub gzip_bytes: u64,
}

fn gzip_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| WorkerError(format!("gzip: {e}")))?;
    if !out.status.success() {
        return err(format!("gzip {} failed", path.display()));
    }
    Ok(out.stdout.len() as u64)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// worker-build keeps the wasm names section (for stack traces) and optimises with `-O`;
/// the upload is measured gzipped against a budget, so optimise for size and drop the
/// names and producers sections (same feature set as worker-build passes). `-Os` rather
/// than `-Oz`: the module is a little larger but compresses better, and the gzipped size
/// is what counts (342.7 -> 339.7 KB measured with the same code; `--converge` and
/// `--merge-similar-functions` gave nothing more).
fn shrink(tools: &Tools, wasm: &Path) -> Result<()> {
    let before = fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
    let tmp = wasm.with_extension("small.wasm");
    let mut cmd = Command::new(&tools.wasm_opt);
    cmd.arg(wasm).args(["-Os", "--strip-debug", "--strip-producers"]);
    for f in ["mutable-globals", "sign-ext", "nontrapping-float-to-int", "bulk-memory", "multivalue", "reference-types", "exception-handling"] {
        cmd.arg(format!("--enable-{f}"));
    }
    cmd.arg("-o").arg(&tmp);
    run(&mut cmd, "wasm-opt -Os")?;
    fs::rename(&tmp, wasm).map_err(|e| WorkerError(format!("{}: {e}", wasm.display())))?;
    let after = fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
    say(&format!("wasm-opt -Os, names stripped: {} KB -> {} KB", before / 1024, after / 1024));
    Ok(())
}

/// Builds the worker with worker-build (release) into `worker/build`.
pub fn build(root: &Path) -> Result<BuildOutput> {
    let tools = ensure_tools(root)?;
    build_with(root, &tools)
}


pub fn build_with(root: &Path, tools: &Tools) -> Result<BuildOutput> {
    let t = Instant::now();
    say("building the worker (worker-build)");
    let mut cmd = Command::new(&tools.worker_build);
    // The workspace's size-optimised profile (opt-level z, symbols kept for wasm-bindgen)
    // when it exists, else plain release.
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let profile: &[&str] = if manifest.contains("[profile.wasm-release]") { &["--profile", "wasm-release"] } else { &["--release"] };
    cmd.current_dir(root.join("worker"))
        .args(profile)
        .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
        .env("ESBUILD_BIN", &tools.esbuild)
        .env("WASM_OPT_BIN", &tools.wasm_opt)
        // Its own target dir: Debian's compiler and rustup's must not share artifacts.
        .env("CARGO_TARGET_DIR", root.join("target/worker-wasm"));
    if tools.compiler == WasmCompiler::DebianBuildStd {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![PathBuf::from("/usr/bin")];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).map_err(|e| WorkerError(e.to_string()))?)
            .env("CARGO", "/usr/bin/cargo")
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
            .env("CARGO_UNSTABLE_BUILD_STD_FEATURES", crate::toolchain::BUILD_STD_FEATURES)
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", crate::toolchain::BUILD_STD_RUSTFLAGS)
            // RUSTFLAGS would take precedence over the target's flags above.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld")
            .env_remove("RUSTUP_TOOLCHAIN");
    }
    run_visible(&mut cmd, "worker-build")?;
    let dir = root.join("worker/build");
    shrink(tools, &dir.join("index_bg.wasm"))?;
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let wasm = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .cloned()
        .ok_or_else(|| WorkerError(format!("no .wasm under {}", dir.display())))?;
    let wasm_bytes = fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    let mut gzip_bytes = 0;
    for f in &files {
        gzip_bytes += gzip_size(f)?;
    }
    say(&format!(
        "worker built in {:.0} s: {} ({} KB wasm), upload {} KB gzipped",
        t.elapsed().as_secs_f64(),
        dir.display(),
        wasm_bytes / 1024,
        gzip_bytes / 1024
    ));
    Ok(BuildOutput { dir, wasm, wasm_bytes, gzip_bytes })
}

// ------------------------------------------------------------------ secrets and .dev.vars

fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| WorkerError(format!("/dev/urandom: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Secrets for one local run, made fresh each time (never committed).
#[derive(Debug, Clone)]
pub struct LocalSecrets {
    /// Two Stripe endpoint secrets, as during a secret rotation.
    pub stripe: [String; 2],
    pub razorpay: String,
    pub admin: String,
    /// Ed25519 secret key bytes (hex) that sign snapshots.
    pub snapshot_secret: String,
    pub snapshot_kid: String,
    /// The service-role key: an HS256 JWT with role `service_role`, signed with the
    /// local stack's JWT secret (made by Node's crypto).
    pub service_role_key: String,
}

/// Signs an HS256 JWT with Node's crypto (no Rust crypto dependency in xtask).
pub fn sign_jwt(claims_json: &str, secret: &str) -> Result<String> {
    let script = "const c=require('crypto');const b=x=>Buffer.from(x).toString('base64url');\
const h=b(JSON.stringify({alg:'HS256',typ:'JWT'}));const p=b(process.env.CLAIMS);\
const s=c.createHmac('sha256',process.env.SECRET).update(h+'.'+p).digest('base64url');\
process.stdout.write(h+'.'+p+'.'+s)";
    run(
        Command::new("node").args(["-e", script]).env("CLAIMS", claims_json).env("SECRET", secret),
        "signing a JWT with node",
    )
}

impl LocalSecrets {
    pub fn generate(jwt_secret: &str) -> Result<LocalSecrets> {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + 10 * 365 * 86_400;
        Ok(LocalSecrets {
            stripe: [format!("whsec_{}", random_hex(24)?), format!("whsec_{}", random_hex(24)?)],
            razorpay: random_hex(16)?,
            admin: random_hex(24)?,
            snapshot_secret: random_hex(32)?,
            snapshot_kid: "local-1".into(),
            service_role_key: sign_jwt(
                &format!("{{\"role\":\"service_role\",\"iss\":\"tollgate-local\",\"exp\":{exp}}}"),
                jwt_secret,
            )?,
        })
    }

    /// The worker's variables for a local run against `rest_url`.
    /// The Razorpay AI app's worker reaches the store with a secret API key (`sb_secret_...`)
    /// and the others with the legacy service-role JWT, so both key styles run end to end.
    pub fn dev_vars(&self, rest_url: &str, jwt_secret: &str, catalog: &str) -> Vec<(String, String)> {
        let key = if catalog == "razorpay-ai" {
            ("SUPABASE_SECRET_KEY".to_string(), crate::stack::LOCAL_SECRET_KEY.to_string())
        } else {
            ("SUPABASE_SERVICE_ROLE_KEY".to_string(), self.service_role_key.clone())
        };
        vec![
            ("SUPABASE_URL".into(), rest_url.into()),
            key,
            ("SUPABASE_JWT_SECRET".into(), jwt_secret.into()),
            ("STRIPE_WEBHOOK_SECRETS".into(), format!("{},{}", self.stripe[0], self.stripe[1])),
            ("RAZORPAY_WEBHOOK_SECRET".into(), self.razorpay.clone()),
            ("ADMIN_SECRET".into(), self.admin.clone()),
            ("SNAPSHOT_SIGNING_KEY".into(), self.snapshot_secret.clone()),
            ("SNAPSHOT_KEY_ID".into(), self.snapshot_kid.clone()),
            ("SNAPSHOT_TTL_SECONDS".into(), "3600".into()),
            ("CATALOG".into(), catalog.into()),
            // Workers Paid's subrequests (the worker's default is Workers Free's 50): the
            // end-to-end tests page scheduled runs through thousands of rows.
            ("SUBREQUESTS".into(), "10000".into()),
        ]
    }
}

const RECORDED_PROVIDER_VARS: &[&str] = &[
    "STRIPE_SECRET_KEY",
    "STRIPE_API_BASE",
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_API_BASE",
    "PROVIDER_TIMEOUT_SECONDS",
];

/// The e2e workers' provider settings: test keys, and both providers' API bases on the
/// recorder that tests/e2e/checkout.test.mjs runs on `port` (it records each request
/// for the contract test and answers like the provider; nothing leaves the machine).
fn recorded_provider_vars(port: u16) -> Vec<(String, String)> {
    [
        ("STRIPE_SECRET_KEY", "sk_test_e2e_recorder".to_string()),
        ("STRIPE_API_BASE", format!("http://127.0.0.1:{port}/stripe")),
        ("RAZORPAY_KEY_ID", "rzp_test_e2e_recorder".to_string()),
        ("RAZORPAY_KEY_SECRET", "rzp_test_e2e_recorder_secret".to_string()),
        ("RAZORPAY_API_BASE", format!("http://127.0.0.1:{port}/razorpay")),
        ("PROVIDER_TIMEOUT_SECONDS", "2".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes `.dev.vars` (wrangler's local secrets, git-ignored) at the repository root.
pub fn write_dev_vars(root: &Path, vars: &[(String, String)]) -> Result<PathBuf> {
    let path = root.join(".dev.vars");
    let mut s = String::from("# Written by cargo xtask for local runs only. Never commit this file.\n");
    for (k, v) in vars {
        s.push_str(&format!("{k}=\"{}\"\n", v.replace('\\', "\\\\").replace('"', "\\\"")));
    }
    fs::write(&path, s).map_err(|e| WorkerError(format!("{}: {e}", path.display())))?;
    say(&format!("wrote {} ({} variables)", path.display(), vars.len()));
    Ok(path)
}

// ------------------------------------------------------------------ wrangler dev

fn http_status(host: &str, port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&format!("{host}:{port}").parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1)?.parse().ok()
}

/// A running `wrangler dev`.
#[derive(Debug)]
pub struct WranglerDev {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl WranglerDev {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops wrangler and the workerd it started (its whole process group).
    pub fn stop(mut self) -> Result<()> {
        let pgid = self.child.id();
        // wrangler ignores SIGTERM but stops (with its workerd) on SIGINT, as on Ctrl-C.
        let _ = Command::new("kill").args(["-INT", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
        say("wrangler dev stopped");
        Ok(())
    }
}

/// Starts `wrangler dev` on 127.0.0.1:`port` with the built worker and the repository's
/// `.dev.vars` (see [`write_dev_vars`]), and waits until `/healthz` answers 200. wrangler
/// runs from `.stack/worker-dev/`, with the configuration [`dev_config`] makes (never the
/// repository's own file, whose `[build]` would rebuild the worker). Output goes to
/// `.stack/wrangler.log`.
pub fn dev_start(root: &Path, port: u16) -> Result<WranglerDev> {
    let state = root.join(".stack");
    let dir = state.join("worker-dev");
    fs::create_dir_all(&dir).map_err(|e| WorkerError(format!("{}: {e}", dir.display())))?;
    let toml = dev_config(root)?;
    fs::write(dir.join("wrangler.toml"), toml).map_err(|e| WorkerError(format!("{}: {e}", dir.display())))?;
    // wrangler reads `.dev.vars` beside its configuration file.
    let vars = root.join(".dev.vars");
    if vars.exists() {
        fs::copy(&vars, dir.join(".dev.vars")).map_err(|e| WorkerError(format!("{}: {e}", vars.display())))?;
    } else {
        let _ = fs::remove_file(dir.join(".dev.vars"));
    }
    dev_start_in(root, &dir, port, &state.join("wrangler.log"))
}

/// Writes `dir/wrangler.toml` ([`dev_config`]) and `dir/.dev.vars`: a folder from which
/// one more `wrangler dev` can run beside others, each with its own variables (its own
/// catalog) and its own local state.
pub fn dev_dir(root: &Path, dir: &Path, vars: &[(String, String)]) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| WorkerError(format!("{}: {e}", dir.display())))?;
    let toml = dev_config(root)?;
    fs::write(dir.join("wrangler.toml"), toml).map_err(|e| WorkerError(format!("{}: {e}", dir.display())))?;
    write_dev_vars(dir, vars)?;
    Ok(())
}

/// The repository's `wrangler.toml` for a `wrangler dev` that xtask starts from another
/// folder: `main` made absolute, and the `[build]` table left out. `[build]` is there for
/// `wrangler dev` and `wrangler deploy` run by hand (it builds the worker on a fresh
/// clone); xtask builds the worker itself before it starts wrangler, and wrangler 4 has no
/// flag to skip a custom build (`--no-bundle` only skips esbuild): it would run
/// `cargo xtask worker build` on every start (twice: for the entry point, then when its
/// file watcher is ready) and again on every change under `watch_dir`.
pub fn dev_config(root: &Path) -> Result<String> {
    let toml = fs::read_to_string(root.join("wrangler.toml")).map_err(|e| WorkerError(format!("wrangler.toml: {e}")))?;
    Ok(dev_config_text(&toml, root))
}

fn dev_config_text(toml: &str, root: &Path) -> String {
    let mut out = String::new();
    let mut in_build = false;
    for line in toml.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_build = opens_table(t, "build");
        }
        if in_build {
            continue;
        }
        match t.strip_prefix("main").map(str::trim_start) {
            Some(rest) if rest.starts_with('=') => {
                let rel = rest.trim_start_matches('=').trim().trim_matches('"');
                out.push_str(&format!("main = {:?}\n", root.join(rel).display().to_string()));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Whether a TOML line opens the table `name`: `[name]`, with spaces or a comment after it
/// (not `[[name]]`, not `[name.sub]`).
fn opens_table(line: &str, name: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix('[') else { return false };
    if rest.starts_with('[') {
        return false;
    }
    let Some((inside, after)) = rest.split_once(']') else { return false };
    let after = after.trim_start();
    inside.trim() == name && (after.is_empty() || after.starts_with('#'))
}

/// Starts `wrangler dev` from `dir` (holding `wrangler.toml` and `.dev.vars`) on
/// 127.0.0.1:`port`, logging to `log`, and waits until `/healthz` answers 200.
pub fn dev_start_in(root: &Path, dir: &Path, port: u16, log: &Path) -> Result<WranglerDev> {
    let wrangler = root.join(E2E_DIR).join("node_modules/wrangler/bin/wrangler.js");
    if !wrangler.exists() {
        return err("wrangler is not installed: run worker::npm_ci first");
    }
    if http_status(DEV_HOST, port, "/healthz").is_some() {
        return err(format!("something already listens on {DEV_HOST}:{port}; stop it first"));
    }
    let log = log.to_path_buf();
    let out = fs::File::create(&log).map_err(|e| WorkerError(format!("{}: {e}", log.display())))?;
    let out2 = out.try_clone().map_err(|e| WorkerError(e.to_string()))?;
    say(&format!("starting wrangler dev on {DEV_HOST}:{port} (log: {})", log.display()));
    let child = Command::new("node")
        .arg(&wrangler)
        .args(["dev", "--ip", DEV_HOST, "--port", &port.to_string(), "--inspector-port", "0", "--test-scheduled", "--show-interactive-dev-session=false"])
        .current_dir(dir)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(out2)
        .process_group(0)
        .spawn()
        .map_err(|e| WorkerError(format!("cannot start wrangler: {e}")))?;
    let dev = WranglerDev { child, url: format!("http://{DEV_HOST}:{port}"), log: log.clone() };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut dev = dev;
    loop {
        if http_status(DEV_HOST, port, "/healthz") == Some(200) {
            say(&format!("worker ready at {}", dev.url));
            return Ok(dev);
        }
        if let Ok(Some(status)) = dev.child.try_wait() {
            let text = fs::read_to_string(&log).unwrap_or_default();
            return err(format!("wrangler dev exited ({status}):\n{}", tail(&text, 30)));
        }
        if Instant::now() > deadline {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let _ = dev.stop();
            return err(format!("wrangler dev did not answer /healthz within 120 s:\n{}", tail(&text, 30)));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

// ------------------------------------------------------------------ e2e

/// What the e2e suite needs to know about the running stack.
#[derive(Debug, Clone)]
pub struct E2eEnv {
    /// `http://127.0.0.1:8787`
    pub worker_url: String,
    /// Where tests/e2e/checkout.test.mjs listens as the RECORDER of provider requests
    /// (the worker's STRIPE_API_BASE and RAZORPAY_API_BASE point there).
    pub recorder_port: u16,
    /// The REST gateway's base URL (`http://127.0.0.1:54321`).
    pub rest_url: String,
    /// `postgres://postgres@127.0.0.1:54322/postgres` (superuser, for checking rows).
    pub db_url: String,
    pub jwt_secret: String,
    pub secrets: LocalSecrets,
    /// `sh -c` command lines that stop and start the stack's PostgreSQL (the outage test).
    pub pg_stop_cmd: String,
    pub pg_start_cmd: String,
    /// The catalog the worker runs with (`CATALOG`).
    pub catalog: String,
}

/// A `sh` command line that starts a cluster made by xtask's stack module (the same
/// options as `Pg::start`).
pub fn pg_start_shell_command(bin_dir: &Path, dir: &Path, data_dir: &Path, log_file: &Path, socket_dir: &Path, port: u16) -> String {
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let pg_ctl = format!(
        "{} -D {} -l {} -w -t 60 -o '-p {port} -k {}' start",
        q(&bin_dir.join("pg_ctl")),
        q(data_dir),
        q(log_file),
        socket_dir.display()
    );
    if is_root() {
        format!("cd {} && runuser -u postgres -- {pg_ctl}", q(dir))
    } else {
        pg_ctl
    }
}

/// Runs `node --test` on tests/e2e/*.test.mjs (one file at a time: they share the
/// database) with the stack's coordinates in the environment.
pub fn run_e2e(root: &Path, env: &E2eEnv) -> Result<()> {
    let dir = root.join(E2E_DIR);
    let files = crate::util::test_file_names(&dir, "TOLLGATE_E2E_FILES").map_err(WorkerError)?;
    say(&format!("e2e: node --test ({} files) against {}", files.len(), env.worker_url));
    let s = &env.secrets;
    run_visible(
        Command::new("node")
            .current_dir(&dir)
            .args(["--test", "--test-concurrency=1"])
            .args(&files)
            .env("TOLLGATE_WORKER_URL", &env.worker_url)
            .env("TOLLGATE_REST_URL", &env.rest_url)
            .env("TOLLGATE_DB_URL", &env.db_url)
            .env("TOLLGATE_JWT_SECRET", &env.jwt_secret)
            .env("TOLLGATE_SERVICE_ROLE_KEY", &s.service_role_key)
            .env("TOLLGATE_SECRET_KEY", crate::stack::LOCAL_SECRET_KEY)
            .env("TOLLGATE_PUBLISHABLE_KEY", crate::stack::LOCAL_PUBLISHABLE_KEY)
            .env("TOLLGATE_STRIPE_SECRETS", format!("{},{}", s.stripe[0], s.stripe[1]))
            .env("TOLLGATE_RAZORPAY_SECRET", &s.razorpay)
            .env("TOLLGATE_ADMIN_SECRET", &s.admin)
            .env("TOLLGATE_SNAPSHOT_SECRET", &s.snapshot_secret)
            .env("TOLLGATE_SNAPSHOT_KID", &s.snapshot_kid)
            .env("TOLLGATE_PG_STOP_CMD", &env.pg_stop_cmd)
            .env("TOLLGATE_PG_START_CMD", &env.pg_start_cmd)
            .env("TOLLGATE_CATALOG", &env.catalog)
            .env("TOLLGATE_PROVIDER_RECORDER_PORT", env.recorder_port.to_string())
            .env("TOLLGATE_REPO", root)
            // Where the worker's console goes ([`dev_start`]) and the gateway's log.
            .env("TOLLGATE_WORKER_LOG", root.join(".stack").join("wrangler.log"))
            .env("TOLLGATE_GATEWAY_LOG", root.join(".stack").join("gateway.log")),
        "e2e tests",
    )
}

// ------------------------------------------------------------------ everything

/// The example catalogs the e2e suite runs against, one `wrangler dev` each.
pub const CATALOGS: &[&str] = &["vcm-suite", "video-studio", "org-seats", "razorpay-ai"];

/// Where the local stack is (from xtask's stack module).
#[derive(Debug, Clone)]
pub struct StackInfo {
    /// The REST gateway's base URL, without `/rest/v1` (`http://127.0.0.1:54321`).
    pub rest_url: String,
    /// A superuser connection string for checking rows.
    pub db_url: String,
    /// The JWT secret the gateway verifies tokens with (HS256).
    pub jwt_secret: String,
    /// `sh` command lines that stop and start the stack's PostgreSQL.
    pub pg_stop_cmd: String,
    pub pg_start_cmd: String,
}

/// The worker's whole test stage, with the local stack already up: build the worker,
/// then for each example catalog write `.dev.vars`, start `wrangler dev` and run the e2e
/// suite (each test file runs what applies to that catalog). Prints the bundle size.
pub fn test_all(root: &Path, stack: &StackInfo) -> Result<BuildOutput> {
    test_all_on(root, stack, DEV_PORT)
}

/// [`test_all`] with `wrangler dev` on another port than 8787.
pub fn test_all_on(root: &Path, stack: &StackInfo, port: u16) -> Result<BuildOutput> {
    let tools = ensure_tools(root)?;
    let out = build_with(root, &tools)?;
    let secrets = LocalSecrets::generate(&stack.jwt_secret)?;
    // TOLLGATE_E2E_CATALOGS=a,b narrows a local run to some catalogs (all by default).
    let only: Option<Vec<String>> = std::env::var("TOLLGATE_E2E_CATALOGS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|c| c.trim().to_string()).collect());
    for catalog in CATALOGS.iter().filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|x| x == *c))) {
        say(&format!("worker e2e with catalog `{catalog}`"));
        let recorder_port = port + 1000;
        let mut vars = secrets.dev_vars(&stack.rest_url, &stack.jwt_secret, catalog);
        vars.retain(|(k, _)| !RECORDED_PROVIDER_VARS.contains(&k.as_str()));
        vars.extend(recorded_provider_vars(recorder_port));
        write_dev_vars(root, &vars)?;
        let dev = dev_start(root, port)?;
        let env = E2eEnv {
            worker_url: dev.url.clone(),
            recorder_port,
            rest_url: stack.rest_url.clone(),
            db_url: stack.db_url.clone(),
            jwt_secret: stack.jwt_secret.clone(),
            secrets: secrets.clone(),
            pg_stop_cmd: stack.pg_stop_cmd.clone(),
            pg_start_cmd: stack.pg_start_cmd.clone(),
            catalog: catalog.to_string(),
        };
        let result = run_e2e(root, &env);
        dev.stop()?;
        result?;
    }
    // The model-based test of the money path against this PostgreSQL, through the REST
    // gateway, with the worker's routes run natively (tests run it on memory too).
    say("model: worker/tests/model.rs against PostgreSQL through the REST gateway");
    run_visible(
        Command::new(host_cargo())
            .current_dir(root)
            .args(["test", "-p", "tollgate-worker", "--test", "model", "money_is_conserved_on_postgresql", "--", "--nocapture"])
            .env("TOLLGATE_MODEL_REST_URL", &stack.rest_url)
            .env("TOLLGATE_MODEL_DB_URL", &stack.db_url)
            .env("TOLLGATE_MODEL_SERVICE_ROLE_KEY", &secrets.service_role_key),
        "the model-based test on PostgreSQL",
    )?;
    say(&format!(
        "worker bundle: {} KB wasm, {} KB gzipped upload (budget 350 KB)",
        out.wasm_bytes / 1024,
        out.gzip_bytes / 1024
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_config_leaves_out_the_custom_build_and_makes_main_absolute() {
        let toml = "name = \"tollgate\"\nmain = \"worker/build/index.js\"\n\n[build]\ncommand = \"cargo xtask worker build\"\nwatch_dir = [\"src\", \"worker/src\"]\n\n[vars]\nCATALOG = \"vcm-suite\"\n\n[triggers]\ncrons = [\"*/15 * * * *\"]\n";
        let out = dev_config_text(toml, Path::new("/repo"));
        assert!(!out.contains("[build]") && !out.contains("command") && !out.contains("watch_dir"), "{out}");
        assert!(out.contains("main = \"/repo/worker/build/index.js\"\n"), "{out}");
        assert!(out.contains("[vars]\nCATALOG = \"vcm-suite\"\n"), "{out}");
        assert!(out.contains("[triggers]\ncrons = [\"*/15 * * * *\"]\n"), "{out}");
    }

    #[test]
    fn the_repository_configuration_for_dev_runs_no_custom_build() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ is in the repository");
        let out = dev_config(root).expect("wrangler.toml");
        assert!(!out.lines().any(|l| opens_table(l, "build")), "{out}");
        assert!(out.contains(&format!("main = {:?}", root.join("worker/build/index.js").display().to_string())), "{out}");
    }

    #[test]
    fn opens_table_names_one_table() {
        assert!(opens_table("[build]", "build"));
        assert!(opens_table("  [ build ]  # custom build", "build"));
        assert!(!opens_table("[[build]]", "build"));
        assert!(!opens_table("[build.upload]", "build"));
        assert!(!opens_table("[vars]", "build"));
        assert!(!opens_table("build = 1", "build"));
    }
}
