//! Embeds the shipped catalogs (`catalogs/*.toml`) into the worker as JSON.
//!
//! Each TOML file is converted to the equivalent JSON document here (a TOML syntax
//! error fails the build); the core validates it when the worker loads it, and the
//! crate's tests load every embedded catalog. The worker picks one at run time by the
//! `CATALOG` variable.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalogs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    let mut table = String::from(
        "/// (catalog name, catalog JSON) for every catalogs/*.toml.\npub static CATALOGS: &[(&str, &str)] = &[\n",
    );
    for path in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc: toml::Value = toml::from_str(&src).unwrap_or_else(|e| panic!("catalogs/{name}.toml: {e}"));
        let json = serde_json::to_string(&doc).expect("TOML values convert to JSON");
        let file = format!("{out}/catalog-{name}.json");
        std::fs::write(&file, json).expect("write catalog JSON");
        writeln!(
            table,
            "    ({name:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/catalog-{name}.json\"))),"
        )
        .unwrap();
    }
    table.push_str("];\n");
    std::fs::write(format!("{out}/catalogs.rs"), table).expect("write catalogs.rs");
}
