//! `cargo xtask build`: the npm package in `pkg/`.
//!
//! 1. catalogs/*.toml -> target/catalogs/*.json (read with the core's TOML loader):
//!    the example catalogs as the package reads them, for the repository's own
//!    tests and benchmarks. The package carries no catalog: an app hands it the text
//!    of `GET /v1/catalog` or a JSON file it built (`tollgate catalog check --json FILE`);
//! 2. the core for wasm32, without its TOML reader (`--no-default-features`);
//! 3. wasm-bindgen --target web -> pkg/tollgate.js, tollgate_bg.wasm, tollgate.d.ts;
//! 4. wasm-opt (npm binaryen) for size;
//! 5. pkg/tollgate_bg_base64.js: the optimized wasm as base64 text, for the Node
//!    entry (node.js). Bundlers that compile server code (Next.js with Turbopack or
//!    webpack, Vite's SSR build) carry JavaScript along as it is, while a file read
//!    through `new URL('./x.wasm', import.meta.url)` becomes a browser asset URL there;
//!    text inside a module loads wherever the module does, with no configuration.
//!
//! Steps 3 and 4 are skipped when their input and tools have not changed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tollgate::Catalog;

use crate::toolchain::{self, WasmRust, WASM_TARGET};
use crate::util::{fnv1a, note, read, run, secs, step, write_if_changed, Result};

/// The cargo profile for the wasm build (see the root Cargo.toml).
pub const PROFILE: &str = "wasm-release";
/// wasm-opt's options: size first; the features rustc enables for wasm32 by default.
pub const WASM_OPT_ARGS: &[&str] = &[
    "-Oz",
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--strip-debug",
    "--strip-producers",
    "--strip-target-features",
];

/// Every shipped catalog, read and validated by the core: (name, catalog).
pub fn catalogs(root: &Path) -> Result<Vec<(String, Catalog)>> {
    let dir = root.join("catalogs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no catalogs in {}", dir.display()));
    }
    files
        .iter()
        .map(|f| {
            let name = f.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let cat = Catalog::from_toml(&read(f)?).map_err(|e| format!("catalogs/{name}.toml: {e}"))?;
            Ok((name, cat))
        })
        .collect()
}

/// Where [`write_catalogs`] puts the example catalogs as JSON, relative to the repository.
pub const CATALOG_JSON_DIR: &str = "target/catalogs";

/// catalogs/*.toml -> target/catalogs/*.json, each checked to load again unchanged.
pub fn write_catalogs(root: &Path) -> Result<()> {
    write_catalogs_to(root, CATALOG_JSON_DIR, "for the tests, not shipped")
}

/// catalogs/*.toml -> `<rel>/*.json` (relative to the repository): what
/// `tollgate catalog check --json FILE` prints, each checked to load again unchanged.
pub fn write_catalogs_to(root: &Path, rel: &str, why: &str) -> Result<()> {
    step(format!("catalogs/*.toml -> {rel}/*.json (validated by the core; {why})"));
    let dir = root.join(rel);
    for (name, cat) in catalogs(root)? {
        let pretty = serde_json::to_string_pretty(&cat.doc).map_err(|e| e.to_string())? + "\n";
        // What the package will read must load again, unchanged.
        let again = Catalog::from_json(&pretty).map_err(|e| format!("{rel}/{name}.json does not load: {e}"))?;
        if again.doc != cat.doc {
            return Err(format!("catalog {name} changes when written as JSON and read back"));
        }
        let changed = write_if_changed(&dir.join(format!("{name}.json")), pretty.as_bytes())?;
        note(format!("{name}.json{}", if changed { " (updated)" } else { "" }));
    }
    Ok(())
}

/// Builds the core for wasm32 and returns the .wasm cargo wrote.
pub fn cargo_build_wasm(root: &Path) -> Result<PathBuf> {
    let rust = WasmRust::detect_and_install()?;
    let target_dir = root.join("target").join("wasm");
    step(format!("cargo build: the core for {WASM_TARGET} ({}, --no-default-features --features js: the bindings, no TOML reader)", rust.describe()));
    let t = Instant::now();
    run(rust
        .cargo(&target_dir)
        .current_dir(root)
        .args(["build", "--package", "tollgate", "--lib", "--target", WASM_TARGET, "--no-default-features", "--features", "js"])
        .args(["--profile", PROFILE]))?;
    note(format!("done in {}", secs(t)));
    Ok(target_dir.join(WASM_TARGET).join(PROFILE).join("tollgate.wasm"))
}

fn gzip_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip {} failed", path.display()));
    }
    Ok(out.stdout.len() as u64)
}

/// The whole package build.
pub fn build(root: &Path) -> Result<()> {
    let t0 = Instant::now();
    let pkg = root.join("pkg");
    write_catalogs(root)?;
    let input = cargo_build_wasm(root)?;
    let bindgen = toolchain::wasm_bindgen(root)?;
    toolchain::npm_ci(&pkg)?;
    let wasm_opt = toolchain::wasm_opt(&pkg)?;

    let out_wasm = pkg.join("tollgate_bg.wasm");
    let stamp_path = root.join("target").join("wasm").join("pkg.stamp");
    let input_bytes = std::fs::read(&input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let stamp = format!(
        "{:016x}",
        fnv1a(&[&input_bytes, bindgen.to_string_lossy().as_bytes(), WASM_OPT_ARGS.join(" ").as_bytes()])
    );
    let outputs_there = ["tollgate.js", "tollgate.d.ts", "tollgate_bg.wasm"].iter().all(|f| pkg.join(f).is_file());
    if outputs_there && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        step("wasm-bindgen and wasm-opt: pkg/ is up to date");
    } else {
        step("wasm-bindgen --target web -> pkg/tollgate.js, pkg/tollgate_bg.wasm");
        run(Command::new(&bindgen)
            .args(["--target", "web", "--out-name", "tollgate", "--out-dir"])
            .arg(&pkg)
            .arg(&input))?;
        step("wasm-opt -Oz (npm binaryen)");
        let t = Instant::now();
        let before = std::fs::metadata(&out_wasm).map(|m| m.len()).unwrap_or(0);
        run(Command::new(&wasm_opt).args(WASM_OPT_ARGS).arg(&out_wasm).arg("-o").arg(&out_wasm))?;
        let after = std::fs::metadata(&out_wasm).map(|m| m.len()).unwrap_or(0);
        note(format!("{before} -> {after} bytes in {}", secs(t)));
        std::fs::write(&stamp_path, &stamp).map_err(|e| format!("cannot write {}: {e}", stamp_path.display()))?;
    }
    write_wasm_base64(&pkg)?;
    let raw_bytes = std::fs::metadata(&out_wasm).map_err(|e| e.to_string())?.len();
    let gzip_bytes = gzip_size(&out_wasm)?;
    step(format!(
        "pkg/ is built in {}: tollgate_bg.wasm {:.1} KB, {:.1} KB gzipped",
        secs(t0),
        raw_bytes as f64 / 1024.0,
        gzip_bytes as f64 / 1024.0
    ));
    Ok(())
}

/// pkg/tollgate_bg.wasm -> pkg/tollgate_bg_base64.js (`export default "<base64>"`), the
/// bytes that node.js instantiates.
fn write_wasm_base64(pkg: &Path) -> Result<()> {
    use base64::Engine as _;
    let wasm = pkg.join("tollgate_bg.wasm");
    let bytes = std::fs::read(&wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
    let text = format!(
        "// Generated by `cargo xtask build`: tollgate_bg.wasm as base64, for the Node entry (node.js).\n\
         export default \"{}\";\n",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    if write_if_changed(&pkg.join("tollgate_bg_base64.js"), text.as_bytes())? {
        note("tollgate_bg_base64.js (updated)");
    }
    Ok(())
}
