//! Installs what the commands need on a fresh Debian machine, and nothing when
//! it is already there: Debian packages, the wasm32 Rust toolchain,
//! wasm-bindgen-cli at the version in Cargo.lock, and the npm packages of `pkg/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::util::{fnv1a, note, output, probe, read, run, secs, step, which, Result};

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

// ---------------------------------------------------------------- Debian packages

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

fn dpkg_installed(pkg: &str) -> bool {
    probe("dpkg-query", &["-W", "-f=${Status}", pkg]).is_some_and(|s| s.trim() == "install ok installed")
}

/// Installs the Debian packages that are missing (apt-get update once per run first).
pub fn apt_ensure(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if which("apt-get").is_none() {
        return Err(format!(
            "these Debian packages are needed but apt-get is not available: {}",
            missing.join(" ")
        ));
    }
    let as_root = probe("id", &["-u"]).is_some_and(|u| u.trim() == "0");
    let sudo: Option<&str> = if as_root { None } else { Some("sudo") };
    let apt = |args: &[&str]| {
        let mut c = match sudo {
            Some(s) => {
                let mut c = Command::new(s);
                c.arg("apt-get");
                c
            }
            None => Command::new("apt-get"),
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        step("apt-get update");
        run(&mut apt(&["update", "-q"]))?;
    }
    step(format!("apt-get install {}", missing.join(" ")));
    let t = Instant::now();
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    run(&mut apt(&args))?;
    note(format!("installed in {}", secs(t)));
    Ok(())
}

// ---------------------------------------------------------------- Rust for wasm32

/// Size flags for every wasm build (the worker, the npm package) when std is built from source (`-Z build-std`), each
/// measured on the gzipped module (before -> after, same code):
/// - `-Cpanic=immediate-abort`: a panic traps at once instead of formatting its message
///   for a hook first, so no panic-message machinery is linked (354.6 -> 342.7 KB). The
///   runtime glue still sees the trap and resets the instance, as before; only the
///   "Rust panic: ..." console line is gone.
/// - `-Zlocation-detail=none`: no file/line strings for panics; `-Zfmt-debug=shallow`:
///   derived `Debug` prints the type name only (no answer of the worker uses `Debug`)
///   (355.6 -> 354.6 KB).
///
/// Rustup's prebuilt wasm32 std takes none of these (they need std rebuilt), so there the
/// build is the plain profile.
pub const BUILD_STD_RUSTFLAGS: &str = "-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=shallow";
/// std's own size option: smaller sort, float-parsing and number-formatting code, same
/// results (the core and the worker use stable sorts only, whose order is unique)
/// (342.7 -> 332.6 KB).
pub const BUILD_STD_FEATURES: &str = "optimize_for_size";

/// How this machine builds Rust for wasm32.
#[derive(Clone, Debug)]
pub enum WasmRust {
    /// rustup's toolchain has the wasm32 target: plain `cargo build --target`.
    Rustup,
    /// Debian's rustc-web with the standard library's sources: std is built
    /// from source (build-std), configured by environment variables only.
    DebianBuildStd,
}

impl WasmRust {
    pub fn detect_and_install() -> Result<WasmRust> {
        step("choosing the Rust toolchain for wasm32");
        let rustup_has_target = probe("rustup", &["target", "list", "--installed"])
            .is_some_and(|s| s.lines().any(|l| l.trim() == WASM_TARGET));
        if rustup_has_target {
            note(format!("rustup's toolchain has the {WASM_TARGET} target: using it"));
            return Ok(WasmRust::Rustup);
        }
        note(format!(
            "rustup's toolchain has no {WASM_TARGET} target: using Debian's rustc-web and building std from source"
        ));
        apt_ensure(&["rustc-web", "cargo-web", "rust-web-src", "lld"])?;
        Ok(WasmRust::DebianBuildStd)
    }

    /// A `cargo` command set up to build for wasm32 into `target_dir`.
    pub fn cargo(&self, target_dir: &Path) -> Command {
        let mut c = match self {
            WasmRust::Rustup => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
            WasmRust::DebianBuildStd => {
                let mut c = Command::new("/usr/bin/cargo");
                // Debian's compiler, not rustup's proxies (which this process may have in its environment).
                c.env_remove("RUSTUP_TOOLCHAIN")
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTDOC", "/usr/bin/rustdoc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
                    .env("CARGO_UNSTABLE_BUILD_STD_FEATURES", BUILD_STD_FEATURES)
                    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", BUILD_STD_RUSTFLAGS)
                    // RUSTFLAGS would take precedence over the target's flags above.
                    .env_remove("RUSTFLAGS")
                    .env_remove("CARGO_ENCODED_RUSTFLAGS")
                    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld");
                c
            }
        };
        c.env("CARGO_TARGET_DIR", target_dir);
        c
    }

    pub fn describe(&self) -> &'static str {
        match self {
            WasmRust::Rustup => "rustup's toolchain",
            WasmRust::DebianBuildStd => "Debian's rustc-web with build-std",
        }
    }
}

// ---------------------------------------------------------------- wasm-bindgen-cli

/// The version of a package in Cargo.lock.
pub fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = read(&root.join("Cargo.lock"))?;
    let name_line = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == name_line {
            if let Some(v) = lines.next().and_then(|v| v.trim().strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}

fn cargo_bin_dir() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin"))
}

fn wasm_bindgen_version(bin: &Path) -> Option<String> {
    probe(bin.to_str()?, &["--version"]).and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
}

/// wasm-bindgen-cli at exactly the version of the `wasm-bindgen` crate in Cargo.lock.
pub fn wasm_bindgen(root: &Path) -> Result<PathBuf> {
    let want = locked_version(root, "wasm-bindgen")?;
    step(format!("wasm-bindgen-cli {want} (the version in Cargo.lock)"));
    let candidates = which("wasm-bindgen").into_iter().chain(cargo_bin_dir().map(|d| d.join("wasm-bindgen")));
    for c in candidates {
        match wasm_bindgen_version(&c) {
            Some(v) if v == want => {
                note(format!("found {}", c.display()));
                return Ok(c);
            }
            Some(v) => note(format!("{} is version {v}", c.display())),
            None => {}
        }
    }
    note("installing with cargo install (a few minutes, once)");
    let t = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo).args(["install", "wasm-bindgen-cli", "--version", &want, "--force"]))?;
    note(format!("installed in {}", secs(t)));
    let bin = cargo_bin_dir().map(|d| d.join("wasm-bindgen")).filter(|p| p.is_file());
    match bin {
        Some(b) if wasm_bindgen_version(&b).as_deref() == Some(want.as_str()) => Ok(b),
        _ => Err(format!("wasm-bindgen {want} is still not available after cargo install")),
    }
}

// ---------------------------------------------------------------- Node and npm

/// Node (20 or newer) and npm.
pub fn node() -> Result<()> {
    let version = probe("node", &["--version"]);
    let major = version
        .as_deref()
        .and_then(|v| v.trim().trim_start_matches('v').split('.').next()?.parse::<u32>().ok());
    match major {
        Some(m) if m >= 20 => {}
        Some(m) => return Err(format!("Node {m} is too old: the package and its tests need Node 20 or newer")),
        None => {
            note("Node is missing: installing Debian's nodejs and npm");
            apt_ensure(&["nodejs", "npm"])?;
        }
    }
    if which("npm").is_none() {
        apt_ensure(&["npm"])?;
    }
    Ok(())
}

/// `npm ci` in `dir` when its node_modules does not match its package-lock.json.
pub fn npm_ci(dir: &Path) -> Result<()> {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("{}: no package-lock.json ({e})", dir.display()))?;
    let manifest = std::fs::read(dir.join("package.json")).unwrap_or_default();
    let stamp_path = dir.join("node_modules").join(".tollgate-npm-ci");
    let stamp = format!("{:016x}", fnv1a(&[&lock, &manifest]));
    let label = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        step(format!("npm packages of {label}/: up to date"));
        return Ok(());
    }
    node()?;
    step(format!("npm ci in {label}/"));
    let t = Instant::now();
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .env("npm_config_update_notifier", "false"))?;
    std::fs::write(&stamp_path, stamp).map_err(|e| format!("cannot write {}: {e}", stamp_path.display()))?;
    note(format!("done in {}", secs(t)));
    Ok(())
}

/// npm binaryen's wasm-opt from `pkg/node_modules` (version 132 or newer).
pub fn wasm_opt(pkg: &Path) -> Result<PathBuf> {
    let bin = pkg.join("node_modules").join(".bin").join("wasm-opt");
    let version = output(Command::new(&bin).arg("--version"))?;
    let n: u32 = version
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("cannot read the version of {}: {version}", bin.display()))?;
    if n < 132 {
        return Err(format!("wasm-opt {n} is too old (132 or newer is needed)"));
    }
    Ok(bin)
}
