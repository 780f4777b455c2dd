//! The project's commands: `cargo xtask <command>`.
//!
//! Each command installs what it needs on a fresh Debian machine (and nothing
//! when it is already there) and announces every step as `==> ...`. Commands
//! made of stages (`test`, `demo`, `bench`) time each stage, name the one that
//! failed, and stop every process they started, also on failure or Ctrl-C.

mod adoption;
mod bench;
mod dbtypes;
mod demo;
mod lifecycle;
mod live;
mod local;
mod package;
mod stack;
mod toolchain;
mod tstypes;
mod util;
#[allow(dead_code)]
mod worker;
#[allow(dead_code)]
mod www;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use local::{Local, Ports};
use util::{note, root, run, secs, step, Result, Stages};

const HELP: &str = "\
cargo xtask <command>

  demo    the main job: (1) each shipped catalog evaluated for example users (locked
          tools, why, cheapest upgrade); (2) a subscription lifecycle replayed through
          the core for each example catalog (access and balances at every step); (3) the
          whole local stack started (PostgreSQL, REST gateway, workers, www app), a
          Stripe-signed purchase replayed against it, then kept running until Ctrl-C.
            --no-wait   stop after the purchase scenario (also when CI=true)
            --offline   only (1) and (2): no local stack
  test    every test, in stages: native Rust (cargo test --workspace); the npm package
          under Node; webhook signatures cross-checked with Stripe's and Razorpay's own
          libraries; the React layer; the packed npm packages through publint and attw, then
          in fresh Next.js, Worker, Vite and Node apps (`test adoption`);
          the worker end to end under wrangler dev against
          PostgreSQL and the REST gateway, once per example catalog; the www app in Chromium
          (TOLLGATE_BROWSER_FILES=a,b for the browser test files whose names contain a or b)
  test adoption
          the packages as a new user gets them: `npm pack` of pkg/ and react/ into a folder
          outside the repository, fresh apps made there from tests/adoption/templates and the
          READMEs' code blocks (Next.js 16 built with Turbopack and with webpack, a Worker
          under wrangler dev, Vite, plain Node), installed, built, started and read over
          HTTP and in Chromium (TOLLGATE_ADOPTION_FILES=a,b for some test files; also in `test`)
  test e2e
          the worker's end-to-end stage alone (TOLLGATE_E2E_CATALOGS=a,b for some catalogs,
          TOLLGATE_E2E_FILES=a,b for the test files whose names contain a or b)
  test browser
          the Chromium stage alone, with what it needs (the package, the React layer, the
          local stack, the app workers, next build); TOLLGATE_BROWSER_FILES=a,b for the test
          files whose names contain a or b (also in `test`)
  types   supabase/database.types.ts from the migrations (the shape of `supabase gen types`;
          `test` checks that the committed file matches)
  ts      pkg/types.generated.d.ts from the core's Rust types (ts-rs; `test` checks that the
          committed file matches)
  build   the npm package in pkg/ (catalogs as JSON, the core as wasm, JS glue)
  worker build
          the Cloudflare Worker into worker/build/ (worker-build 0.8.7)
  bench [STAGE...]
          the package under Node against a plain-JS baseline and its wasm size; the
          worker's bundle size, the core natively vs in wasm, webhook latency and
          throughput and concurrent consumes through wrangler dev; first paint in Chromium.
          STAGE (any of package, size, core, pagesize, worker, store, catalog, paint) runs only those

Ports (defaults: PostgreSQL 54322, REST 54321, workers 8787 (VCM Suite), 8788 (Video Studio),
8789 (Razorpay AI app) and 8790 (Org Seats), www 3000) move with TOLLGATE_PG_PORT,
TOLLGATE_REST_PORT, TOLLGATE_WORKER_PORT, TOLLGATE_STUDIO_WORKER_PORT,
TOLLGATE_RAZORPAY_WORKER_PORT, TOLLGATE_ORG_WORKER_PORT, TOLLGATE_WWW_PORT.
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let t = Instant::now();
    let flags: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let result = match (args.first().map(String::as_str), flags.as_slice()) {
        (Some("build"), []) => root().and_then(|r| package::build(&r)),
        (Some("worker"), ["build"]) => root().and_then(|r| worker::build(&r).map(|_| ()).map_err(|e| e.to_string())),
        (Some("test"), []) => root().and_then(|r| test(&r)),
        (Some("test"), ["e2e"]) => root().and_then(|r| test_e2e(&r)),
        (Some("test"), ["browser"]) => root().and_then(|r| test_browser(&r)),
        (Some("test"), ["adoption"]) => root().and_then(|r| test_adoption(&r)),
        (Some("demo"), f) => root().and_then(|r| demo_command(&r, f)),
        (Some("bench"), only) => root().and_then(|r| bench::run(&r, only)),
        (Some("types"), []) => root().and_then(|r| write_types(&r)),
        (Some("ts"), []) => root().and_then(|r| tstypes::write(&r)),
        (Some("help" | "--help" | "-h"), _) | (None, _) => {
            print!("{HELP}");
            return;
        }
        (Some(other), f) => Err(format!("unknown command `{}`\n\n{HELP}", [other].iter().chain(f).copied().collect::<Vec<_>>().join(" "))),
    };
    match result {
        Ok(()) => step(format!("cargo xtask {} finished in {}", args.join(" "), secs(t))),
        Err(e) => {
            eprintln!();
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------- test

/// Every test there is, in stages. The local stack lives from its stage to the end
/// and is stopped whatever happens (Drop guards), so no process outlives the command.
fn test(root: &Path) -> Result<()> {
    util::catch_interrupts();
    let ports = Ports::from_env()?;
    let mut stages = Stages::new("test");
    let result = test_stages(root, ports, &mut stages);
    stages.summary();
    result
}

fn test_stages(root: &Path, ports: Ports, stages: &mut Stages) -> Result<()> {
    stages.run("prerequisites: Node, PostgreSQL and Chromium from Debian", || {
        toolchain::node()?;
        toolchain::apt_ensure(&["postgresql", "chromium"])
    })?;
    stages.run("native: cargo test --workspace, and a check of bench/core", || test_native(root))?;
    stages.run(&format!("package types: {} is what the core's types give", tstypes::TS_FILE), || {
        tstypes::check(root)
    })?;
    stages.run("npm package: build pkg/ (the core as wasm)", || package::build(root))?;
    stages.run("npm package: node --test pkg/test", || test_package(root))?;
    stages.run("signatures: tests/vectors/gen against Stripe's and Razorpay's npm libraries", || test_vectors(root))?;
    stages.run("React layer: install, tsc, node --test react/test", || {
        www::install(root)?;
        www::test_react(root)
    })?;
    stages.run("npm packages: publint and attw (Are the Types Wrong?) on pkg/ and react/ as packed", || {
        test_packages(root)
    })?;
    stages.run("adoption: the packed packages in fresh Next.js, Worker, Vite and Node apps (HTTP, Chromium)", || {
        adoption::test(root, ports)
    })?;
    let mut local = stages.run(
        &format!("local stack: PostgreSQL on :{} + REST gateway on :{}", ports.pg, ports.rest),
        || Local::database(root, ports),
    )?;
    stages.run(&format!("database types: {} is what the migrations give", dbtypes::TYPES_FILE), || {
        dbtypes::check(root, local.pg())
    })?;
    let info = local.stack_info();
    stages.run(
        &format!("worker: build, then tests/e2e under wrangler dev on :{} for each example catalog", ports.worker),
        || worker::test_all_on(root, &info, ports.worker).map(|_| ()).map_err(|e| e.to_string()),
    )?;
    stages.run("www: next build", || www::next_build(root))?;
    browser_stage(root, ports, stages, &mut local)?;
    stages.run_always("shutdown: stop the local stack", || local.stop())?;
    Ok(())
}

/// The Chromium stage: the app's four workers and `next start` on the running stack, then
/// tests/browser.
fn browser_stage(root: &Path, ports: Ports, stages: &mut Stages, local: &mut Local) -> Result<()> {
    stages.run(
        &format!(
            "browser: workers on :{}, :{}, :{} and :{}, next start on :{}, tests/browser in Chromium",
            ports.worker, ports.studio, ports.razorpay, ports.org, ports.www
        ),
        || {
            local.start_app_workers()?;
            local.start_www()?;
            let urls = local.urls()?;
            let www = local.www().ok_or("next start is not running")?;
            www::test_browser(root, www, &urls)
        },
    )
}

/// `cargo xtask test browser`: the Chromium stage alone, after building what it needs
/// (the package, the worker, the React layer and www) on a fresh local stack.
fn test_browser(root: &Path) -> Result<()> {
    util::catch_interrupts();
    let ports = Ports::from_env()?;
    let mut stages = Stages::new("test browser");
    let result = (|| {
        stages.run("prerequisites: Node, PostgreSQL and Chromium from Debian", || {
            toolchain::node()?;
            toolchain::apt_ensure(&["postgresql", "chromium"])
        })?;
        stages.run("npm package: build pkg/ (the core as wasm)", || package::build(root))?;
        stages.run("worker: build", || worker::build(root).map(|_| ()).map_err(|e| e.to_string()))?;
        stages.run("www: install, next build", || {
            www::install(root)?;
            www::next_build(root)
        })?;
        let mut local = stages.run(
            &format!("local stack: PostgreSQL on :{} + REST gateway on :{}", ports.pg, ports.rest),
            || Local::database(root, ports),
        )?;
        let r = browser_stage(root, ports, &mut stages, &mut local);
        stages.run_always("shutdown: stop the local stack", || local.stop())?;
        r
    })();
    stages.summary();
    result
}

/// `cargo xtask test adoption`: the adoption stage alone, after building both packages.
fn test_adoption(root: &Path) -> Result<()> {
    util::catch_interrupts();
    let ports = Ports::from_env()?;
    let mut stages = Stages::new("test adoption");
    let result = (|| {
        stages.run("prerequisites: Node and Chromium from Debian", || {
            toolchain::node()?;
            toolchain::apt_ensure(&["chromium"])
        })?;
        stages.run("npm package: build pkg/ (the core as wasm)", || package::build(root))?;
        stages.run("React layer: install, tsc", || www::build_react(root))?;
        stages.run("adoption: the packed packages in fresh Next.js, Worker, Vite and Node apps (HTTP, Chromium)", || {
            adoption::test(root, ports)
        })
    })();
    stages.summary();
    result
}

/// `cargo xtask types`: writes supabase/database.types.ts from the migrations.
fn write_types(root: &Path) -> Result<()> {
    util::catch_interrupts();
    let ports = Ports::from_env()?;
    let local = Local::database(root, ports)?;
    let result = dbtypes::generate(local.pg()).and_then(|ts| {
        let path = root.join(dbtypes::TYPES_FILE);
        std::fs::write(&path, ts).map_err(|e| format!("{}: {e}", path.display()))?;
        step(format!("wrote {}", path.display()));
        Ok(())
    });
    local.stop()?;
    result
}

/// The worker's end-to-end suite alone (PostgreSQL, the gateway, wrangler dev): for
/// working on the worker and the store. `cargo xtask test` runs it too.
fn test_e2e(root: &Path) -> Result<()> {
    util::catch_interrupts();
    let ports = Ports::from_env()?;
    let mut stages = Stages::new("test e2e");
    let result = (|| {
        stages.run("prerequisites: Node and PostgreSQL from Debian", || {
            toolchain::node()?;
            toolchain::apt_ensure(&["postgresql"])
        })?;
        let local = stages.run(
            &format!("local stack: PostgreSQL on :{} + REST gateway on :{}", ports.pg, ports.rest),
            || Local::database(root, ports),
        )?;
        let info = local.stack_info();
        let r = stages.run(&format!("worker: build, then tests/e2e under wrangler dev on :{}", ports.worker), || {
            worker::test_all_on(root, &info, ports.worker).map(|_| ()).map_err(|e| e.to_string())
        });
        stages.run_always("shutdown: stop the local stack", || local.stop())?;
        r
    })();
    stages.summary();
    result
}

/// Native Rust: unit, property and conformance tests of every workspace crate.
fn test_native(root: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(&cargo).current_dir(root).args(["test", "--workspace"]))?;
    // bench/core is its own workspace (no build of the project includes it): checked here
    // so that a change to the core's types cannot leave `cargo xtask bench` unbuildable.
    run(Command::new(&cargo)
        .current_dir(root.join("bench").join("core"))
        .env("CARGO_TARGET_DIR", root.join("target").join("bench-core"))
        .args(["check", "--bins"]))
}

/// The npm package under Node's test runner: the shared fixtures and the API tests.
fn test_package(root: &Path) -> Result<()> {
    let pkg = root.join("pkg");
    let files = test_files(&pkg.join("test"))?;
    note(format!("{} test files", files.len()));
    run(Command::new("node").current_dir(&pkg).arg("--test").args(&files))
}

/// Webhook signatures made by the core checked with Stripe's and Razorpay's own npm
/// libraries, and the committed vectors regenerated from those libraries.
fn test_vectors(root: &Path) -> Result<()> {
    let dir = root.join("tests").join("vectors").join("gen");
    toolchain::npm_ci(&dir)?;
    let files = test_files(&dir)?;
    run(Command::new("node").current_dir(dir.parent().unwrap_or(&dir)).arg("--test").args(&files))
}

/// The packed npm packages checked by publint and Are the Types Wrong? (tests/packages),
/// after the package and the React layer are built.
fn test_packages(root: &Path) -> Result<()> {
    let dir = root.join("tests").join("packages");
    toolchain::npm_ci(&dir)?;
    let files = test_files(&dir)?;
    run(Command::new("node").current_dir(dir.parent().unwrap_or(&dir)).arg("--test").args(&files))
}

fn test_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .map(|p| p.strip_prefix(dir.parent().unwrap_or(dir)).map(Path::to_path_buf).unwrap_or(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.test.mjs files in {}", dir.display()));
    }
    Ok(files)
}

// ---------------------------------------------------------------- demo

fn demo_command(root: &Path, flags: &[&str]) -> Result<()> {
    let mut no_wait = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    let mut offline = false;
    for f in flags {
        match *f {
            "--no-wait" => no_wait = true,
            "--offline" => offline = true,
            other => return Err(format!("unknown option `{other}` for demo\n\n{HELP}")),
        }
    }
    util::catch_interrupts();
    let mut stages = Stages::new("demo");
    let result = (|| {
        stages.run("catalogs: which tools are locked for example users, why, and the cheapest upgrade", || {
            demo::run(root)
        })?;
        stages.run("billing lifecycles: provider events replayed through the core, per example catalog", || {
            lifecycle::run(root)
        })?;
        if offline {
            return Ok(());
        }
        live::run(root, &mut stages, no_wait)
    })();
    stages.summary();
    result
}
