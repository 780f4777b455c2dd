//! Shared pieces: errors, time arguments, reading files, loading catalogs.

use std::fmt::Display;
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tollgate::{Catalog, CatalogError, Timestamp};

/// A failure to report on stderr (`error: ...`) with exit code 1.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
}

impl Failure {
    pub fn new(message: impl Display) -> Failure {
        Failure { message: message.to_string() }
    }
}

/// `--now`: RFC 3339 or Unix seconds.
pub fn parse_now(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s)
}

/// The given time, or the system clock (the CLI may read it; the core never does).
pub fn now_or_clock(now: Option<Timestamp>) -> Timestamp {
    now.unwrap_or_else(|| {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Timestamp::from_unix(secs)
    })
}

/// How a path is named in messages (`-` is standard input).
pub fn display_path(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// The exact bytes of a file (or of standard input for `-`).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| Failure::new(format!("cannot read standard input: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

/// A file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::new(format!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            display_path(path),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A catalog error located in its file: `FILE:LINE: catalog error at PATH: MESSAGE`.
pub fn catalog_failure(path: &Path, e: &CatalogError) -> Failure {
    let file = display_path(path);
    let at = if e.path.is_empty() { String::new() } else { format!(" at {}", e.path) };
    match e.line {
        Some(line) => Failure::new(format!("{file}:{line}: catalog error{at}: {}", e.message)),
        None => Failure::new(format!("{file}: catalog error{at}: {}", e.message)),
    }
}

/// Reads and validates a catalog: TOML or JSON by extension, else by content.
pub fn load_catalog(path: &Path) -> Result<Catalog, Failure> {
    let src = read_text(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    let parsed = match ext.as_deref() {
        Some("json") => Catalog::from_json(&src),
        Some("toml") => Catalog::from_toml(&src),
        _ => Catalog::parse(&src),
    };
    parsed.map_err(|e| catalog_failure(path, &e))
}

/// Pretty or compact JSON, with a trailing newline.
pub fn to_json<T: serde::Serialize>(v: &T, compact: bool) -> String {
    let s = if compact { serde_json::to_string(v) } else { serde_json::to_string_pretty(v) };
    s.expect("serialising plain data cannot fail")
}
