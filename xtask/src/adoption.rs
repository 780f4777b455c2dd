//! `cargo xtask test adoption`: the npm packages as a new user gets them.
//!
//! `npm pack` of pkg/ (tollgate) and react/ (tollgate-react) into a folder outside the
//! repository (the system's temporary folder), then tests/adoption makes fresh apps there
//! from its templates (Next.js 16, a Cloudflare Worker, Vite, plain Node) plus the
//! packages' README blocks, installs the tarballs and the registry's packages into them,
//! builds, starts, and reads the answers over HTTP and in Chromium. No file of those apps
//! comes from the repository's node_modules or source tree; only the tools that drive them
//! do (the tests' playwright-core, and the wrangler the worker build uses).
//!
//! npm's download cache lives in target/adoption-npm-cache, so a second run installs
//! Next.js from disk; the scratch apps are removed afterwards (TOLLGATE_ADOPTION_KEEP=1
//! keeps them for a look).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::local::Ports;
use crate::util::{ensure_port_free, fnv1a, note, output, run, step, Result};
use crate::{toolchain, worker, www};

/// The scratch apps' ports: beside the www app's and the Org Seats worker's.
pub struct AdoptionPorts {
    pub next: u16,
    pub vite: u16,
    pub worker: u16,
}

impl AdoptionPorts {
    pub fn of(ports: Ports) -> AdoptionPorts {
        AdoptionPorts { next: ports.www + 1, vite: ports.www + 2, worker: ports.org + 1 }
    }
}

/// The folder outside the repository where the tarballs and the scratch apps go.
fn scratch_dir(root: &Path) -> PathBuf {
    let tag = fnv1a(&[root.to_string_lossy().as_bytes()]) as u32;
    std::env::temp_dir().join(format!("tollgate-adoption-{tag:08x}"))
}

/// `npm pack` of `pkg_dir` into `dest`, renamed `name` (the templates depend on
/// `file:../<name>`).
fn pack(pkg_dir: &Path, dest: &Path, name: &str) -> Result<()> {
    let json = output(
        Command::new("npm")
            .current_dir(pkg_dir)
            .args(["pack", "--json", "--loglevel=error", "--pack-destination"])
            .arg(dest),
    )?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| format!("npm pack --json: {e}: {json}"))?;
    let file = v[0]["filename"].as_str().ok_or_else(|| format!("npm pack --json names no file: {json}"))?;
    let size = v[0]["size"].as_u64().unwrap_or(0);
    let files = v[0]["entryCount"].as_u64().unwrap_or(0);
    std::fs::rename(dest.join(file), dest.join(name)).map_err(|e| format!("{file} -> {name}: {e}"))?;
    note(format!("{name}: {files} files, {:.1} KB", size as f64 / 1024.0));
    Ok(())
}

/// The packed packages in the scratch folder, and what the scripts of tests/adoption read.
struct Prepared {
    dir: PathBuf,
    tests: PathBuf,
    env: Vec<(String, String)>,
}

impl Prepared {
    fn node(&self) -> Command {
        let mut c = Command::new("node");
        c.current_dir(&self.tests);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Removes the scratch apps (TOLLGATE_ADOPTION_KEEP=1 keeps them).
    fn clean(self) {
        if std::env::var("TOLLGATE_ADOPTION_KEEP").is_ok_and(|v| v == "1") {
            note(format!("the scratch apps stay in {}", self.dir.display()));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Checks the ports, installs the drivers (playwright-core, wrangler) and packs both
/// packages (built before) into a fresh scratch folder.
fn prepare(root: &Path, p: &AdoptionPorts) -> Result<Prepared> {
    ensure_port_free(p.next, "the adoption test's Next.js app", "TOLLGATE_WWW_PORT (its port + 1)")?;
    ensure_port_free(p.vite, "the adoption test's Vite app", "TOLLGATE_WWW_PORT (its port + 2)")?;
    ensure_port_free(p.worker, "the adoption test's Worker", "TOLLGATE_ORG_WORKER_PORT (its port + 1)")?;
    www::ensure_chromium()?;
    let tests = root.join("tests").join("adoption");
    toolchain::npm_ci(&tests)?;
    let wrangler = worker::npm_ci(root).map_err(|e| e.to_string())?.join("node_modules/wrangler/bin/wrangler.js");
    if !wrangler.exists() {
        return Err(format!("{} is missing after npm ci", wrangler.display()));
    }
    let dir = scratch_dir(root);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    step(format!("npm pack pkg/ and react/ into {}", dir.display()));
    pack(&root.join("pkg"), &dir, "tollgate.tgz")?;
    pack(&root.join("react"), &dir, "tollgate-react.tgz")?;
    let cache = root.join("target").join("adoption-npm-cache");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let env = vec![
        ("TOLLGATE_ADOPTION_DIR".to_string(), s(&dir)),
        ("TOLLGATE_ADOPTION_NPM_CACHE".to_string(), s(&cache)),
        ("TOLLGATE_ADOPTION_NEXT_PORT".to_string(), p.next.to_string()),
        ("TOLLGATE_ADOPTION_VITE_PORT".to_string(), p.vite.to_string()),
        ("TOLLGATE_ADOPTION_WORKER_PORT".to_string(), p.worker.to_string()),
        ("TOLLGATE_WRANGLER".to_string(), s(&wrangler)),
        ("CHROMIUM_PATH".to_string(), www::CHROMIUM.to_string()),
        ("NEXT_TELEMETRY_DISABLED".to_string(), "1".to_string()),
        ("WRANGLER_SEND_METRICS".to_string(), "false".to_string()),
    ];
    Ok(Prepared { dir, tests, env })
}

/// Packs both packages (built before) and runs tests/adoption against them.
pub fn test(root: &Path, ports: Ports) -> Result<()> {
    let p = AdoptionPorts::of(ports);
    let tests = root.join("tests").join("adoption");
    let files = crate::util::test_file_names(&tests, "TOLLGATE_ADOPTION_FILES")?;
    let prepared = prepare(root, &p)?;
    step(format!(
        "tests/adoption: {} (Next.js on :{}, Vite on :{}, the Worker on :{})",
        files.join(", "),
        p.next,
        p.vite,
        p.worker
    ));
    let result = run(prepared.node().args(["--test", "--test-concurrency=1", "--test-reporter=spec"]).args(&files));
    prepared.clean();
    result
}

fn kb(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0) / 1024.0
}

/// For `cargo xtask bench`: the client JavaScript and wasm a Next.js page using only
/// `hasAccess` loads, against the same page without tollgate (tests/adoption/sizes.mjs),
/// with Turbopack and with webpack. Needs both packages built.
pub fn sizes(root: &Path, ports: Ports) -> Result<Vec<String>> {
    let p = AdoptionPorts::of(ports);
    let prepared = prepare(root, &p)?;
    step("tests/adoption/sizes.mjs: /sizes/with and /sizes/without of the scratch Next.js app in Chromium");
    let out = output(prepared.node().arg("sizes.mjs"));
    prepared.clean();
    let out = out?;
    let mut figures = Vec::new();
    for line in out.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let (w, wo) = (&v["with"], &v["without"]);
        let line = format!(
            "a Next.js page with hasAccess ({}): {:.1} KB JS + {:.1} KB wasm gzipped ({:.1} + {:.1} KB raw) vs {:.1} KB JS gzipped without tollgate: +{:.1} KB JS, +{:.1} KB in all",
            v["bundler"].as_str().unwrap_or("?"),
            kb(w, "js_gzip"),
            kb(w, "wasm_gzip"),
            kb(w, "js"),
            kb(w, "wasm"),
            kb(wo, "js_gzip"),
            kb(w, "js_gzip") - kb(wo, "js_gzip"),
            kb(w, "js_gzip") + kb(w, "wasm_gzip") - kb(wo, "js_gzip") - kb(wo, "wasm_gzip"),
        );
        note(&line);
        figures.push(line);
    }
    if figures.is_empty() {
        return Err(format!("tests/adoption/sizes.mjs printed no figures:\n{out}"));
    }
    Ok(figures)
}
