//! `tollgate catalog diff OLD NEW [--facts FILE]`: what changed between two catalog
//! versions and, given stored facts, whose access, limits or balances change. Both come
//! from the core (`tollgate::catalog_diff`): the CLI reads the files and prints.

use std::path::{Path, PathBuf};

use serde_json::json;
use tollgate::billing::Fact;
use tollgate::catalog_diff::{diff, impact};
use tollgate::Timestamp;

use crate::replay_cmd::{parse_one, split_events, write_stdout, Outcome};
use crate::util::{display_path, load_catalog, now_or_clock, read_text, to_json, Failure};

pub fn run(old: &Path, new: &Path, facts: Option<&PathBuf>, now: Option<Timestamp>, json_out: bool) -> Result<(), Failure> {
    let (a, b) = (load_catalog(old)?, load_catalog(new)?);
    let changes = diff(&a, &b);
    let subjects = match facts {
        None => None,
        Some(path) => {
            let text = read_text(path)?;
            let mut all: Vec<Fact> = Vec::new();
            for ev in split_events(&display_path(path), &text)? {
                match parse_one(&a, &ev).map_err(Failure::new)? {
                    Outcome::Facts(_, fs, _) => all.extend(fs),
                    Outcome::Ignored(..) => {}
                }
            }
            Some(impact(&a, &b, &all, now_or_clock(now)))
        }
    };
    if json_out {
        return write_stdout(&to_json(&json!({"changes": changes, "subjects": subjects}), false));
    }
    let mut out = String::new();
    if changes.is_empty() {
        out.push_str("no change\n");
    }
    for c in &changes {
        out.push_str(&c.describe());
        out.push('\n');
    }
    if let Some(subjects) = subjects {
        out.push_str(&format!("\n{} affected:\n", match subjects.len() {
            1 => "1 subject".to_string(),
            n => format!("{n} subjects"),
        }));
        for s in &subjects {
            out.push_str(&format!("  {}\n", s.subject));
            for c in &s.changes {
                out.push_str(&format!("    {}\n", c.describe()));
            }
        }
    }
    write_stdout(out.trim_end())
}
