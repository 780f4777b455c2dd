//! The project's commands: `cargo xtask <command>`.
//!
//! Each command installs what it needs on a fresh Debian machine (and nothing
//! when it is already there) and announces every step as `==> ...`.

mod demo;
mod package;
mod toolchain;
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use util::{note, root, run, secs, step, Result};

const HELP: &str = "\
cargo xtask <command>

  demo    evaluate each shipped catalog for a few example users: which tools are
          locked, why, and the cheapest upgrade for each lock
  test    every test: native Rust (cargo test --workspace), then the npm package
          built from the core and tested under Node (node --test pkg/test)
  build   the npm package in pkg/ (catalogs as JSON, the core as wasm, JS glue)
  bench   the package under Node against a plain-JS baseline, and the wasm size
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let t = Instant::now();
    let result = match args.first().map(String::as_str) {
        Some("build") => package::build(&root()),
        Some("test") => test(&root()),
        Some("demo") => demo::run(&root()),
        Some("bench") => bench(&root()),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            return;
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => step(format!("{} finished in {}", args.join(" "), secs(t))),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------- test

/// Every test there is. Later stages add theirs as one more function here.
fn test(root: &Path) -> Result<()> {
    test_native(root)?;
    package::build(root)?;
    test_package(root)?;
    test_worker(root)?;
    test_browser(root)?;
    Ok(())
}

/// Native Rust: unit, property and conformance tests of every workspace crate.
fn test_native(root: &Path) -> Result<()> {
    step("cargo test --workspace (native)");
    let t = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo).current_dir(root).args(["test", "--workspace"]))?;
    note(format!("native tests passed in {}", secs(t)));
    Ok(())
}

/// The npm package under Node's test runner: the shared fixtures and the API tests.
fn test_package(root: &Path) -> Result<()> {
    let pkg = root.join("pkg");
    let files = test_files(&pkg.join("test"))?;
    step(format!("node --test pkg/test ({} files)", files.len()));
    let t = Instant::now();
    run(Command::new("node").current_dir(&pkg).arg("--test").args(&files))?;
    note(format!("package tests passed in {}", secs(t)));
    Ok(())
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

/// Extension point: the Cloudflare Worker's tests (workerd via wrangler) run here.
fn test_worker(_root: &Path) -> Result<()> {
    step("worker tests: none yet");
    Ok(())
}

/// Extension point: the real-browser tests (Chromium via playwright-core) run here.
fn test_browser(_root: &Path) -> Result<()> {
    step("browser tests: none yet");
    Ok(())
}

// ---------------------------------------------------------------- bench

/// The package under Node against the plain-JS baseline; every figure in one run.
fn bench(root: &Path) -> Result<()> {
    package::build(root)?;
    toolchain::node()?;
    bench_package(root)?;
    Ok(())
}

fn bench_package(root: &Path) -> Result<()> {
    step("node bench/package.bench.mjs");
    run(Command::new("node").current_dir(root).arg("bench/package.bench.mjs"))
}
