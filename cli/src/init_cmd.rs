//! `tollgate init [FILE]`: writes a commented starter catalog (default `catalog.toml`) that
//! the core accepts as it is, so a new user edits a valid catalog instead of starting from
//! a blank page, and `catalog.schema.json` beside it, which the catalog's first line
//! (`#:schema ./catalog.schema.json`) points editors at. An existing file is never
//! overwritten without `--force`.

use std::path::Path;

use crate::util::{display_path, Failure};

/// The starter catalog: every section a catalog may have, each with a comment.
pub const STARTER: &str = include_str!("starter.toml");

pub fn run(path: &Path, force: bool) -> Result<(), Failure> {
    let schema = path.with_file_name("catalog.schema.json");
    for p in [path, schema.as_path()] {
        if p.exists() && !force {
            return Err(Failure::new(format!(
                "{} exists; pass --force to replace it, or name another file (tollgate init my-catalog.toml)",
                display_path(p)
            )));
        }
    }
    let write = |p: &Path, text: &str| std::fs::write(p, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", display_path(p))));
    write(path, STARTER)?;
    write(&schema, &crate::schema_cmd::text())?;
    println!("wrote {}: a starter catalog, and {} for editors. Next:", display_path(path), display_path(&schema));
    println!("  tollgate catalog check {}", display_path(path));
    println!("  tollgate catalog push {} --url <SUPABASE_URL> --service-key <key>", display_path(path));
    println!("  tollgate catalog types {} > tollgate-catalog.d.ts", display_path(path));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_starter_catalog_is_valid() {
        tollgate::catalog::Catalog::from_toml(super::STARTER).unwrap();
    }
}
