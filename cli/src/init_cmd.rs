//! `tollgate init [FILE]`: writes a commented starter catalog (default `catalog.toml`) that
//! the core accepts as it is, so a new user edits a valid catalog instead of starting from
//! a blank page, and `catalog.schema.json` beside it, which the catalog's first line
//! (`#:schema ./catalog.schema.json`) points editors at. An existing file is never
//! overwritten without `--force`.

use std::path::Path;

use crate::util::{display_path, outln, Failure};

/// The starter catalog: every section a catalog may have, each with a comment.
pub const STARTER: &str = include_str!("starter.toml");

pub fn run(path: &Path, force: bool) -> Result<(), Failure> {
    // `-` means standard input elsewhere; here it would be a file named `-`, reported as
    // `<stdin>`.
    if path.as_os_str() == "-" {
        return Err(Failure::new("init writes files (the catalog and catalog.schema.json beside it): name the catalog file, not `-`"));
    }
    // A directory (`tollgate init my-app/`) gets the default name inside it, rather than a
    // refusal whose `--force` could never replace a directory.
    let joined;
    let path = if path.is_dir() {
        joined = path.join("catalog.toml");
        joined.as_path()
    } else {
        path
    };
    let schema = path.with_file_name("catalog.schema.json");
    let schema_text = crate::schema_cmd::text();
    if !force {
        if path.exists() {
            return Err(Failure::new(format!(
                "{} exists; pass --force to replace it, or name another file (tollgate init my-catalog.toml)",
                display_path(path)
            )));
        }
        // The schema a previous `init` wrote beside another catalog is the same file: it
        // is no one's edit, and a second catalog in the directory shares it.
        if schema.exists() && std::fs::read_to_string(&schema).ok().as_deref() != Some(schema_text.as_str()) {
            return Err(Failure::new(format!(
                "{} exists and is not the schema init writes; pass --force to replace it, or init in another directory",
                display_path(&schema)
            )));
        }
    }
    let write = |p: &Path, text: &str| std::fs::write(p, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", display_path(p))));
    write(path, STARTER)?;
    write(&schema, &schema_text)?;
    outln!("wrote {}: a starter catalog, and {} for editors. Next:", display_path(path), display_path(&schema))?;
    outln!("  tollgate catalog check {}", display_path(path))?;
    outln!("  tollgate catalog push {} --url <SUPABASE_URL> --service-key <key>", display_path(path))?;
    outln!("  tollgate catalog types {} > tollgate-catalog.d.ts", display_path(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_starter_catalog_is_valid() {
        tollgate::catalog::Catalog::from_toml(super::STARTER).unwrap();
    }
}
