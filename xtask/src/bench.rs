//! `cargo xtask bench`: every figure measured in one run, in stages.
//!
//! 1. The npm package under Node against the VCM Suite's original plain-JS
//!    `hasAccess` (the baseline, measured in the same run), and its gzipped wasm
//!    (`bench/package.bench.mjs`).
//! 2. The worker's upload, gzipped, against the 350 KB budget.
//! 3. Verify + parse + reduce of a ~4 KB Stripe event: natively and as wasm under
//!    Node, the same crate (`bench/core`) built with the same settings, side by side
//!    with the ratio (budgets: 200 µs native, wasm within 2x); plus the wasm built as
//!    the worker ships it (smallest code).
//! 4. Through `wrangler dev` against the local stack: webhook latency (p50, p99, as a
//!    ratio to `/healthz` measured in the same run) and throughput; consume with 50
//!    concurrent clients, with zero lost updates (`bench/worker.bench.mjs`).
//! 5. The store: `tollgate_charge` against a bare one-row UPDATE from 50 clients, and a
//!    webhook fold for a subject with 1 and with 10,000 charges (`bench/store.bench.mjs`).
//! 6. Chromium: navigation to the correct locked state on first paint
//!    (`tests/browser/bench-first-paint.mjs`).
//! 7. What a user's page pays: the client JavaScript and wasm of a page using only
//!    `hasAccess` in a fresh Next.js app with the packed packages, against the same page
//!    without tollgate, with Turbopack and with webpack (`tests/adoption/sizes.mjs`).
//!
//! Benchmarks are not run by `cargo xtask test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::local::{Local, Ports};
use crate::toolchain::{self, WasmRust, WASM_TARGET};
use crate::util::{interrupted, note, output, run as run_cmd, step, Result, Stages};
use crate::{package, worker, www};

const WORKER_BUDGET_KB: f64 = 350.0;
const NATIVE_BUDGET_US: f64 = 200.0;

/// The stages `cargo xtask bench STAGE...` may name.
const STAGES: [&str; 8] = ["package", "size", "core", "pagesize", "worker", "store", "catalog", "paint"];

pub fn run(root: &Path, only: &[&str]) -> Result<()> {
    if let Some(bad) = only.iter().find(|s| !STAGES.contains(s)) {
        return Err(format!("no bench stage `{bad}`: the stages are {}", STAGES.join(", ")));
    }
    crate::util::catch_interrupts();
    let ports = Ports::from_env()?;
    let mut stages = Stages::new("bench");
    let mut figures: Vec<String> = Vec::new();
    let want = |s: &str| only.is_empty() || only.contains(&s);
    let result = stages_all(root, ports, &mut stages, &mut figures, &want);
    stages.summary();
    if !figures.is_empty() {
        println!();
        step("figures");
        for f in &figures {
            note(f);
        }
    }
    result
}

fn stages_all(
    root: &Path,
    ports: Ports,
    stages: &mut Stages,
    figures: &mut Vec<String>,
    want: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if want("package") {
        stages.run("npm package: build, then bench/package.bench.mjs (Node, plain-JS baseline)", || {
            package::build(root)?;
            toolchain::node()?;
            run_cmd(
                Command::new("node")
                    .current_dir(root)
                    .env("TOLLGATE_WASM_OPT_ARGS", package::WASM_OPT_ARGS.join(" "))
                    .arg("bench/package.bench.mjs"),
            )
        })?;
    }
    if want("size") {
        let size = stages.run("worker: build, bundle size gzipped", || {
            let out = worker::build(root).map_err(|e| e.to_string())?;
            Ok(out.gzip_bytes)
        })?;
        let kb = size as f64 / 1024.0;
        let line = format!(
            "worker upload: {kb:.1} KB gzipped (budget {WORKER_BUDGET_KB:.0} KB: {})",
            if kb <= WORKER_BUDGET_KB { "within" } else { "OVER" }
        );
        note(&line);
        figures.push(line);
    }
    if want("core") {
        let core = stages.run("core: verify + parse + reduce of a ~4 KB Stripe event, native vs wasm (Node)", || bench_core(root))?;
        figures.extend(core);
    }
    if want("pagesize") {
        let sizes = stages.run("adoption: client JS + wasm of a Next.js page with hasAccess vs without tollgate", || {
            www::build_react(root)?;
            crate::adoption::sizes(root, ports)
        })?;
        figures.extend(sizes);
    }
    if !(want("worker") || want("store") || want("catalog") || want("paint")) {
        return Ok(());
    }
    let mut local = stages.run(
        &format!("local stack: PostgreSQL on :{}, REST gateway (release) on :{}", ports.pg, ports.rest),
        || Local::database_with(root, ports, true),
    )?;
    let result = measured_on_stack(root, ports, &mut local, stages, figures, want);
    stages.run_always("shutdown: stop the local stack", || local.stop())?;
    result
}

/// The stages that need the local stack (the caller stops it, whatever happens here).
fn measured_on_stack(
    root: &Path,
    ports: Ports,
    local: &mut Local,
    stages: &mut Stages,
    figures: &mut Vec<String>,
    want: &dyn Fn(&str) -> bool,
) -> Result<()> {
    // The store's fold goes through the Video Studio worker too.
    if want("worker") || want("store") {
        let worker_figs = stages.run(
            &format!("worker: webhooks and consume through wrangler dev on :{} (video studio)", ports.studio),
            || {
                local.start_worker("video-studio", ports.studio, "TOLLGATE_STUDIO_WORKER_PORT")?;
                if want("worker") { bench_worker(root, local) } else { Ok(Vec::new()) }
            },
        )?;
        figures.extend(worker_figs);
    }
    if want("store") {
        let store_figs = stages.run(
            "store: tollgate_charge vs a bare UPDATE (50 clients, one row); a webhook fold with 1 vs 10,000 charges",
            || bench_store(root, local),
        )?;
        figures.extend(store_figs);
    }
    if want("catalog") {
        let figs = stages.run(
            &format!("catalog as data: the Razorpay AI app's worker on :{}, embedded catalog, then the store's", ports.razorpay),
            || bench_catalog(root, local, ports),
        )?;
        figures.extend(figs);
    }
    if !want("paint") {
        return Ok(());
    }
    let paint = stages.run(
        &format!("browser: first paint in Chromium (worker on :{}, www on :{})", ports.worker, ports.www),
        || {
            www::install(root)?;
            www::next_build(root)?;
            local.start_selling_worker("vcm-suite", ports.worker, "TOLLGATE_WORKER_PORT")?;
            local.start_www()?;
            let urls = local.urls()?;
            let w = local.www().ok_or("next start is not running")?;
            www::bench_first_paint(root, w, &urls)
        },
    )?;
    figures.extend(paint);
    if interrupted() {
        return Err("interrupted".into());
    }
    Ok(())
}

// ---------------------------------------------------------------- core, native vs wasm

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ns_per_op(json_line: &str) -> Result<(f64, u64)> {
    let line = json_line.lines().rev().find(|l| l.trim_start().starts_with('{')).ok_or("no JSON line")?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let xs: Vec<f64> = v["ns_per_op"].as_array().ok_or("no ns_per_op")?.iter().filter_map(Value::as_f64).collect();
    if xs.is_empty() {
        return Err("no rounds".into());
    }
    Ok((median(&xs), v["bytes"].as_u64().unwrap_or(0)))
}

/// Builds bench/core for wasm32 with `profile` and binds it with wasm-bindgen into
/// `<target>/pkg-<profile>`.
fn build_core_wasm(root: &Path, rust: &WasmRust, bindgen: &Path, target: &Path, profile: &str) -> Result<PathBuf> {
    step(format!("bench/core for {WASM_TARGET} (profile {profile}, {})", rust.describe()));
    let mut cargo = rust.cargo(&target.join("wasm"));
    if profile == "release" {
        // The side-by-side build takes the native build's settings: std built for speed,
        // without the size flags the shipped wasm gets.
        cargo
            .env_remove("CARGO_UNSTABLE_BUILD_STD_FEATURES")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", "");
    }
    run_cmd(
        cargo
            .current_dir(root.join("bench").join("core"))
            .args(["build", "--lib", "--target", WASM_TARGET, "--profile", profile]),
    )?;
    let wasm = target.join("wasm").join(WASM_TARGET).join(profile).join("tollgate_bench_core.wasm");
    let out = target.join(format!("pkg-{profile}"));
    run_cmd(Command::new(bindgen).args(["--target", "web", "--out-dir"]).arg(&out).arg(&wasm))?;
    Ok(out)
}

fn bench_core(root: &Path) -> Result<Vec<String>> {
    let target = root.join("target").join("bench-core");
    let dir = root.join("bench").join("core");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    step("bench/core, native (profile release)");
    run_cmd(
        Command::new(&cargo)
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--release", "--bin", "bench-core-native", "--bin", "bench-meter-native"]),
    )?;
    let rust = WasmRust::detect_and_install()?;
    let bindgen = toolchain::wasm_bindgen(root)?;
    let fast = build_core_wasm(root, &rust, &bindgen, &target, "release")?;
    let small = build_core_wasm(root, &rust, &bindgen, &target, "size")?;
    // Native and wasm take turns (three times each), so that a change in the machine's
    // load during the stage touches both sides alike; each side is the median of its turns.
    step("timing: native and wasm in Node by turns (same rounds, same batches)");
    let script = root.join("bench").join("core.bench.mjs");
    let (mut natives, mut fasts, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..3 {
        let (n, b) = ns_per_op(&output(&mut Command::new(target.join("release").join("bench-core-native")))?)?;
        natives.push(n);
        bytes = b;
        fasts.push(ns_per_op(&output(Command::new("node").arg(&script).arg(&fast))?)?.0);
    }
    let (native, wasm_fast) = (median(&natives), median(&fasts));
    let (wasm_small, _) = ns_per_op(&output(Command::new("node").arg(&script).arg(&small))?)?;
    let us = |ns: f64| ns / 1000.0;
    let lines = vec![
        format!(
            "verify + parse + reduce, {bytes}-byte Stripe invoice.paid: native {:.1} µs (budget {NATIVE_BUDGET_US:.0} µs: {})",
            us(native),
            if us(native) <= NATIVE_BUDGET_US { "met" } else { "NOT met" }
        ),
        format!(
            "  same work in wasm (Node {}), same build settings: {:.1} µs = {:.2}x native (budget 2x: {})",
            toolchain_node_version(),
            us(wasm_fast),
            wasm_fast / native,
            if wasm_fast / native <= 2.0 { "met" } else { "NOT met" }
        ),
        format!(
            "  wasm built for size (opt-level z and the size flags, as the worker ships): {:.1} µs = {:.2}x native",
            us(wasm_small),
            wasm_small / native
        ),
    ];
    let mut lines = lines;
    lines.push(bench_meter(&target)?);
    for l in &lines {
        note(l);
    }
    Ok(lines)
}

/// The core's decision for one tracked use (`tollgate::meter::track`), natively, against a
/// capability check on the same entitlements measured by turns in the same run.
fn bench_meter(target: &Path) -> Result<String> {
    step("timing: the core's decision for one tracked use, natively");
    let line = output(&mut Command::new(target.join("release").join("bench-meter-native")))?;
    let v: Value = serde_json::from_str(line.trim()).map_err(|e| format!("bench-meter-native: {e}: {line}"))?;
    let med = |k: &str| median(&v[k].as_array().into_iter().flatten().filter_map(Value::as_f64).collect::<Vec<_>>());
    let (track, can) = (med("track_ns") / 1000.0, med("can_ns") / 1000.0);
    Ok(format!(
        "core decision for one tracked use (meter::track, a Starter's workflow run): {track:.2} µs natively (budget {TRACK_BUDGET_US:.0} µs: {}) = {:.1}x a capability check ({can:.2} µs)",
        if track <= TRACK_BUDGET_US { "met" } else { "NOT met" },
        track / can
    ))
}

/// The budget of [`bench_meter`].
const TRACK_BUDGET_US: f64 = 5.0;

fn toolchain_node_version() -> String {
    crate::util::probe("node", &["--version"]).map(|v| v.trim().to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------- worker through wrangler dev

/// Runs `bench/<script>` under Node against the running video-studio worker and its
/// database (the stack's coordinates and secrets in the environment); its JSON figures.
fn node_bench(root: &Path, local: &Local, script: &str) -> Result<Value> {
    let url = local.worker_url("video-studio").ok_or("the video-studio worker is not running")?;
    let out_file = root.join("target").join(format!("{}.json", script.trim_end_matches(".mjs").replace('.', "-")));
    let info = local.stack_info();
    let s = &local.secrets;
    step(format!("node bench/{script}"));
    run_cmd(
        Command::new("node")
            .current_dir(root)
            .arg(format!("bench/{script}"))
            .env("BENCH_OUT", &out_file)
            .env("TOLLGATE_WORKER_URL", &url)
            .env("TOLLGATE_REST_URL", &info.rest_url)
            .env("TOLLGATE_DB_URL", &info.db_url)
            .env("TOLLGATE_JWT_SECRET", &info.jwt_secret)
            .env("TOLLGATE_SERVICE_ROLE_KEY", &s.service_role_key)
            .env("TOLLGATE_STRIPE_SECRETS", format!("{},{}", s.stripe[0], s.stripe[1]))
            .env("TOLLGATE_ADMIN_SECRET", &s.admin)
            .env("TOLLGATE_CATALOG", "video-studio")
            .env("TOLLGATE_PG_DATA", &local.pg().data_dir)
            // PostgreSQL's own load client, from the same installation as the server.
            .env("TOLLGATE_PGBENCH", local.pg().bin("pgbench")),
    )?;
    serde_json::from_str(&crate::util::read(&out_file)?).map_err(|e| e.to_string())
}

/// The local REST gateway's log: one line per request it answered.
fn gateway_log(root: &Path) -> PathBuf {
    root.join(".stack").join("gateway.log")
}

/// Store calls the REST gateway has answered so far.
fn gateway_calls(root: &Path) -> Result<usize> {
    let log = crate::util::read(&gateway_log(root))?;
    Ok(log.lines().filter(|l| l.contains(" -> ") && l.ends_with(" ms)")).count())
}

/// The worker on `port` started afresh (a cold isolate): the store calls its first
/// requests made (xtask's readiness checks: `/healthz`, which brings the catalog up to the
/// store's like any route).
fn cold_start_calls(root: &Path, local: &mut Local, port: u16) -> Result<usize> {
    local.stop_worker("razorpay-ai")?;
    let before = gateway_calls(root)?;
    local.start_worker("razorpay-ai", port, "TOLLGATE_RAZORPAY_WORKER_PORT")?;
    Ok(gateway_calls(root)? - before)
}

/// bench/catalog.bench.mjs in one phase against the Razorpay AI app's worker.
fn catalog_phase(root: &Path, local: &Local, phase: &str) -> Result<Value> {
    let url = local.worker_url("razorpay-ai").ok_or("the razorpay-ai worker is not running")?;
    let out_file = root.join("target").join(format!("catalog-bench-{phase}.json"));
    let info = local.stack_info();
    run_cmd(
        Command::new("node")
            .current_dir(root)
            .args(["bench/catalog.bench.mjs", "--phase", phase])
            .env("BENCH_OUT", &out_file)
            .env("TOLLGATE_WORKER_URL", &url)
            .env("TOLLGATE_REST_URL", &info.rest_url)
            .env("TOLLGATE_DB_URL", &info.db_url)
            .env("TOLLGATE_JWT_SECRET", &info.jwt_secret)
            .env("TOLLGATE_CATALOG", "razorpay-ai")
            .env("TOLLGATE_GATEWAY_LOG", gateway_log(root)),
    )?;
    serde_json::from_str(&crate::util::read(&out_file)?).map_err(|e| e.to_string())
}

/// Issue 14's budgets: a warm isolate pays nothing for the catalog being data (the check's
/// p50 over the same run's `/healthz`, with the catalog from the store against embedded,
/// within 1.1x), and a cold isolate's first request makes at most one store call for it.
fn bench_catalog(root: &Path, local: &mut Local, ports: Ports) -> Result<Vec<String>> {
    let cold_embedded = cold_start_calls(root, local, ports.razorpay)?;
    let embedded = catalog_phase(root, local, "embedded")?;
    // The same catalog, published: what the worker serves is the store's version now.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_cmd(
        Command::new(cargo)
            .current_dir(root)
            .args(["run", "-q", "-p", "tollgate-cli", "--", "catalog", "push", "catalogs/razorpay-ai.toml", "--by", "bench"])
            .env("TOLLGATE_SUPABASE_URL", local.rest_url())
            .env("TOLLGATE_SERVICE_KEY", crate::stack::LOCAL_SECRET_KEY),
    )?;
    let cold_stored = cold_start_calls(root, local, ports.razorpay)?;
    let stored = catalog_phase(root, local, "stored")?;
    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
    let ratio = f(&stored["ratio"]) / f(&embedded["ratio"]);
    // One call each: the read of the active version (which finds none without a push).
    let cold_met = cold_stored <= 1 && cold_embedded <= 1;
    Ok(vec![
        format!(
            "catalog as data, warm isolate: POST /v1/check p50 {:.2} ms = {:.2}x GET /healthz with the store's catalog (version {}), {:.2} ms = {:.2}x with the embedded one: {:.2}x (budget 1.1x: {})",
            f(&stored["check_p50"]),
            f(&stored["ratio"]),
            stored["store_version"],
            f(&embedded["check_p50"]),
            f(&embedded["ratio"]),
            ratio,
            if ratio <= 1.1 { "met" } else { "NOT met" }
        ),
        format!(
            "  store calls per warm check: {:.2} with the store's catalog, {:.2} with the embedded one",
            f(&stored["store_calls_per_check"]),
            f(&embedded["store_calls_per_check"])
        ),
        format!(
            "catalog as data, cold isolate: its first requests made {cold_stored} store call(s) with a version in the store, {cold_embedded} without (the catalog read; budget at most one extra: {})",
            if cold_met { "met" } else { "NOT met" }
        ),
    ])
}

/// bench/store.bench.mjs: the store's money path against its baselines.
fn bench_store(root: &Path, local: &Local) -> Result<Vec<String>> {
    let v = node_bench(root, local, "store.bench.mjs")?;
    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
    let (c, fo) = (&v["charge"], &v["fold"]);
    Ok(vec![
        format!(
            "charge (tollgate_charge, {} clients, one lot, pgbench): {:.0}/s; a bare one-row UPDATE from the same clients {:.0}/s = {:.2}x (budget 3x: {})",
            c["pgbench"]["clients"],
            f(&c["pgbench"]["charge"]["per_second"]),
            f(&c["pgbench"]["bare"]["per_second"]),
            f(&c["pgbench"]["ratio"]),
            if f(&c["pgbench"]["ratio"]) <= 3.0 { "met" } else { "NOT met" }
        ),
        format!(
            "  the same from node-postgres clients (the client's own CPU shares the cores): {:.0}/s vs {:.0}/s = {:.2}x",
            f(&c["charge"]["per_second"]),
            f(&c["bare"]["per_second"]),
            f(&c["ratio"]),
        ),
        format!(
            "  one client, one at a time: a charge {:.0} µs, the bare UPDATE {:.0} µs = {:.2}x",
            f(&c["sequential_us"]["charge"]),
            f(&c["sequential_us"]["bare"]),
            f(&c["sequential_us"]["ratio"])
        ),
        format!(
            "webhook fold, subject with 1 vs 10,000 charges: p50 {:.1} ms vs {:.1} ms = {:.2}x (budget 1.5x: {})",
            f(&fo["p50_ms"][0]),
            f(&fo["p50_ms"][1]),
            f(&fo["ratio"]),
            if f(&fo["ratio"]) <= 1.5 { "met" } else { "NOT met" }
        ),
    ])
}

fn bench_worker(root: &Path, local: &Local) -> Result<Vec<String>> {
    let v = node_bench(root, local, "worker.bench.mjs")?;
    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
    let (h, w, c) = (&v["healthz"], &v["webhook"], &v["consume"]);
    Ok(vec![
        format!(
            "webhook latency through wrangler dev: p50 {:.1} ms, p99 {:.1} ms = {:.1}x / {:.1}x GET /healthz ({:.1} / {:.1} ms)",
            f(&w["p50"]),
            f(&w["p99"]),
            f(&w["p50"]) / f(&h["p50"]),
            f(&w["p99"]) / f(&h["p99"]),
            f(&h["p50"]),
            f(&h["p99"])
        ),
        format!(
            "webhook throughput: {:.0} deliveries/s with {} subscribers in flight ({} answers 503, retried)",
            f(&v["webhook_throughput"]["per_second"]),
            v["webhook_throughput"]["in_flight"],
            v["webhook_throughput"]["retried_5xx"]
        ),
        format!(
            "consume: {:.0} requests/s with {} concurrent clients (budget 500/s: {}) = {:.2}x one client alone ({:.0}/s) = {:.2}x GET /healthz from {} clients ({:.0}/s, the ceiling of wrangler dev here); lost updates: {}; retried (same key): {}",
            f(&c["per_second"]),
            c["clients"],
            if f(&c["per_second"]) >= 500.0 { "met" } else { "NOT met" },
            f(&c["per_second"]) / f(&v["consume_sequential"]["per_second"]),
            f(&v["consume_sequential"]["per_second"]),
            f(&c["per_second"]) / f(&v["healthz_concurrent"]["per_second"]),
            v["healthz_concurrent"]["clients"],
            f(&v["healthz_concurrent"]["per_second"]),
            c["lost_updates"],
            c["retries"]
        ),
        cpu_figure("consume", &c["cpu"], &v["cores"]),
        cpu_figure("GET /healthz", &v["healthz_concurrent"]["cpu"], &v["cores"]),
    ])
}

/// Where a request's CPU time goes, by process, and the rate this machine's cores allow.
fn cpu_figure(label: &str, cpu: &Value, cores: &Value) -> String {
    let total = cpu["total_ms"].as_f64().unwrap_or(f64::NAN);
    let cores = cores.as_f64().unwrap_or(f64::NAN);
    let parts: Vec<String> = cpu["per_request_ms"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(f64::NAN))).collect())
        .unwrap_or_default();
    format!(
        "CPU per {label} request: {total:.2} ms ({}); {cores:.0} cores allow at most {:.0}/s",
        parts.join(", "),
        cores * 1000.0 / total
    )
}
