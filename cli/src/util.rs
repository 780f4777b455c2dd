//! Shared pieces: errors, time arguments, reading files, loading catalogs.

use std::fmt::Display;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// `--seconds`: a whole number. Says what is wrong with `-5`, `1.5` or `1e3` rather than
/// the integer parser's "invalid digit found in string".
pub fn parse_seconds(s: &str) -> Result<u64, String> {
    s.parse::<u64>().map_err(|e| {
        if s.trim_start().starts_with('-') {
            "a number of seconds cannot be negative".to_string()
        } else if *e.kind() == std::num::IntErrorKind::PosOverflow {
            format!("more than the largest number of seconds ({})", u64::MAX)
        } else if s.contains(['.', 'e', 'E']) && s.chars().all(|c| c.is_ascii_digit() || ".eE+".contains(c)) {
            format!("seconds are whole numbers (usage is priced per whole second), not {s}")
        } else {
            "not a whole number of seconds".to_string()
        }
    })
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

/// Whether standard input has been read (by a `-` argument).
static STDIN_READ: AtomicBool = AtomicBool::new(false);

/// The exact bytes of a file (or of standard input for `-`).
///
/// Standard input can be read once: a second `-` (`catalog diff - -`, `replay --catalog -
/// ... -`) would read nothing and be reported as an empty catalog or no events, so it is
/// refused instead.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        if STDIN_READ.swap(true, Ordering::SeqCst) {
            return Err(Failure::new(
                "`-` (standard input) is given more than once; standard input can be read once: name a file for the others",
            ));
        }
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| Failure::new(format!("cannot read standard input: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

/// A file as UTF-8 text, without a leading byte order mark (some editors and Windows
/// tools write one; it is no part of the document, and JSON parsers refuse it). Line
/// numbers are unchanged. A UTF-16 file (PowerShell's `>`) is told as such.
pub fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = read_bytes(path)?;
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(Failure::new(format!(
            "{} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8",
            display_path(path)
        )));
    }
    let mut text = String::from_utf8(bytes).map_err(|e| {
        Failure::new(format!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            display_path(path),
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
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
///
/// The extension decides, so a file whose content is the other format (a TOML catalog saved
/// as `.json`) gets the parser's error at line 1, which does not say why: the message then
/// adds what the content looks like.
pub fn load_catalog(path: &Path) -> Result<Catalog, Failure> {
    let src = read_text(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    let looks_json = src.trim_start().starts_with('{');
    let (parsed, hint) = match ext.as_deref() {
        Some("json") => (
            Catalog::from_json(&src),
            (!looks_json).then_some("the file is named .json but does not start with `{`: if it is TOML, name it .toml"),
        ),
        Some("toml") => (
            Catalog::from_toml(&src),
            looks_json.then_some("the file is named .toml but starts with `{`: if it is JSON, name it .json"),
        ),
        _ => (Catalog::parse(&src), None),
    };
    parsed.map_err(|e| {
        let mut f = catalog_failure(path, &e);
        if let Some(hint) = hint.filter(|_| !src.trim().is_empty()) {
            f.message = format!("{} ({hint})", f.message);
        }
        f
    })
}

/// Writes `s` and a newline to stdout: every result goes through here. A closed pipe (`|
/// head`) is not an error; any other failure to write (a full disk) is one, not a panic as
/// `println!` would make it.
pub fn write_stdout(s: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(format!("cannot write to standard output: {e}"))),
    }
}

/// `println!` through [`write_stdout`]: `outln!(...)?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::util::write_stdout(&format!($($arg)*))
    };
}
pub(crate) use outln;

/// `eprintln!` that never panics: a message to a closed standard error (`2>&1 | head` once
/// the reader has gone) is dropped, the command's outcome is not changed by it.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use errln;

/// Pretty or compact JSON, with a trailing newline.
pub fn to_json<T: serde::Serialize>(v: &T, compact: bool) -> String {
    let s = if compact { serde_json::to_string(v) } else { serde_json::to_string_pretty(v) };
    s.expect("serialising plain data cannot fail")
}
