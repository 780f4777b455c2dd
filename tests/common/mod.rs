//! Shared by the adversarial tests: small helpers several of them need that
//! `events/support.rs` (which has `shipped`, a shipped catalog loaded) does not give.
#![allow(dead_code)]

/// The text of one of the shipped catalogs (`catalogs/<name>.toml`), to edit before loading.
pub fn shipped_src(name: &str) -> String {
    let path = format!("{}/catalogs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}
