//! `tollgate catalog diff OLD NEW [--facts FILE | --url URL]`: what changed between two
//! catalog versions and, given stored facts (a file, or the store's), whose access, limits
//! or balances change, now or at their renewal (the new catalog's migration policies). Both come
//! from the core (`tollgate::catalog_diff`): the CLI reads the files and prints.

use std::path::{Path, PathBuf};

use serde_json::json;
use tollgate::billing::Fact;
use tollgate::catalog_diff::{diff, impact};
use tollgate::Timestamp;

use crate::replay_cmd::{parse_one, split_events, Outcome};
use crate::store_cmd::{Rest, StoreArgs};
use crate::util::{display_path, load_catalog, now_or_clock, read_text, to_json, write_stdout, Failure};

/// Where the facts to replay come from.
pub enum Facts {
    /// JSON lines of stored facts (or provider events).
    File(PathBuf),
    /// The store's `billing_facts`.
    Store(StoreArgs),
}

/// How many facts one read of the store answers.
const PAGE: usize = 1000;

/// Every stored fact a fold replays, in the order they were stored, a page at a time. Usage
/// rows (`fact_type` `usage`, the charges' own records) are left out, as the store's fold
/// leaves them out: a fold reads charges as per-lot totals, never as facts.
fn stored_facts(store: &StoreArgs) -> Result<Vec<Fact>, Failure> {
    let rest = Rest::new(store)?;
    let mut all = Vec::new();
    let mut read = 0;
    loop {
        let page = rest.get(&format!(
            "billing_facts?select=id,fact&fact_type=neq.usage&order=id.asc&limit={PAGE}&offset={read}"
        ))?;
        let rows = page.as_array().ok_or_else(|| Failure::new("the store's billing_facts answer is not a list"))?;
        read += rows.len();
        for r in rows {
            // A row the core cannot read (written by hand, or by a newer tollgate) is told
            // on stderr and left out: one such row must not hide everyone else's impact.
            match serde_json::from_value::<Fact>(r["fact"].clone()) {
                Ok(f) => all.push(f),
                Err(e) => crate::util::errln!("warning: stored fact {} does not read ({e}); left out of the report", r["id"]),
            }
        }
        if rows.len() < PAGE {
            return Ok(all);
        }
    }
}

pub fn run(old: &Path, new: &Path, facts: Option<Facts>, now: Option<Timestamp>, json_out: bool) -> Result<(), Failure> {
    let (a, b) = (load_catalog(old)?, load_catalog(new)?);
    let changes = diff(&a, &b);
    let subjects = match facts {
        None => None,
        Some(Facts::Store(store)) => Some(impact(&a, &b, &stored_facts(&store)?, now_or_clock(now))),
        Some(Facts::File(path)) => {
            let text = read_text(&path)?;
            let mut all: Vec<Fact> = Vec::new();
            for ev in split_events(&display_path(&path), &text)? {
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
            for c in &s.at_renewal {
                out.push_str(&format!("    at its renewal: {}\n", c.describe()));
            }
        }
    }
    write_stdout(out.trim_end())
}
