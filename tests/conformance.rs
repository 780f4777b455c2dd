//! The shared conformance fixtures (`tests/fixtures/*.json`), run natively.
//!
//! The same files run under Node (through `pkg/`) and in the browser, so this
//! runner keeps to the comparison rules every host shares:
//! - `expect` is partial: only the keys it names are compared;
//! - `upgrade` compares as the offer key (a string) or null; `holds_until` and
//!   `resets_at` as an RFC 3339 string or null; `limit` and `remaining` as an
//!   integer or "unlimited";
//! - `check` (the metered decision of `POST /v1/check`) takes `feature`,
//!   `quantity` (default 1) and `used` (default 0), and gives `allowed`,
//!   `reason`, `remaining`, `used`, `limit`, `resets_at`, `tier`, `upgrade`;
//! - `page` gives `locked` and `unlocked` as lists of tool ids in catalog
//!   order, compared as whole lists;
//! - `error` is a substring of the error message, and a case that expects an
//!   error fails if the call succeeds (and the other way round);
//! - a case may override `now` and `entitlements`;
//! - an op this runner does not know fails the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tollgate::decide::{self, ExportPolicy, Usage};
use tollgate::meter;
use tollgate::vcm::{self, CloudEntitlementRow, PlanUser};
use tollgate::{Catalog, Decision, Entitlements, LimitValue, Timestamp};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_catalog(name: &str) -> Catalog {
    let path = root().join("catalogs").join(format!("{name}.toml"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Catalog::from_toml(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decision_json(d: &Decision) -> Value {
    json!({
        "allowed": d.allowed,
        "reason": d.reason.as_str(),
        "tier": d.tier,
        "grant": d.grant,
        "holds_until": d.holds_until.map(|t| t.to_rfc3339()),
        "upgrade": d.upgrade.as_ref().map(|u| u.offer.clone()),
    })
}

fn limit_json(v: LimitValue) -> Value {
    match v {
        LimitValue::Limited(n) => json!(n),
        LimitValue::Unlimited => json!("unlimited"),
    }
}

fn field<'a>(case: &'a Value, key: &str) -> Result<&'a Value, String> {
    case.get(key)
        .ok_or_else(|| format!("case is missing `{key}`"))
}

fn str_field<'a>(case: &'a Value, key: &str) -> Result<&'a str, String> {
    field(case, key)?
        .as_str()
        .ok_or_else(|| format!("`{key}` must be a string"))
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("invalid {what}: {e}"))
}

fn user_of(case: &Value) -> Result<Option<PlanUser>, String> {
    match case.get("user") {
        None | Some(Value::Null) => Ok(None),
        Some(u) => parse(u, "user").map(Some),
    }
}

/// Runs one case. `Err` is an error the library reported (compared with
/// `expect.error`); a malformed fixture or an unknown op panics.
fn run(
    catalog: &Catalog,
    ents: &Entitlements,
    now: Timestamp,
    case: &Value,
) -> Result<Value, String> {
    let op = case
        .get("op")
        .and_then(Value::as_str)
        .expect("every case has a string `op`");
    let e = |r: Result<Value, tollgate::DecideError>| r.map_err(|e| e.to_string());
    match op {
        "has_access" => e(decide::has_access(
            catalog,
            ents,
            str_field(case, "product")?,
            str_field(case, "tier")?,
            now,
        )
        .map(|d| decision_json(&d))),
        "can" => e(decide::can(catalog, ents, str_field(case, "capability")?, now).map(|d| decision_json(&d))),
        "limit" => e(decide::limit(catalog, ents, str_field(case, "limit")?, now).map(|a| {
            json!({
                "limit": limit_json(a.limit),
                "tier": a.tier,
                "holds_until": a.holds_until.map(|t| t.to_rfc3339()),
            })
        })),
        "check_limit" => {
            let used = field(case, "used")?.as_u64().ok_or("`used` must be a non-negative integer")?;
            e(decide::check_limit(catalog, ents, str_field(case, "limit")?, used, now).map(|d| decision_json(&d)))
        }
        "check" => {
            let count = |key: &str, default: u64| match case.get(key) {
                None => Ok(default),
                Some(v) => v.as_u64().ok_or(format!("`{key}` must be a non-negative integer")),
            };
            let (quantity, used) = (count("quantity", 1)?, count("used", 0)?);
            meter::check_feature(catalog, ents, str_field(case, "feature")?, quantity, used, now)
                .map(|c| {
                    json!({
                        "allowed": c.allowed,
                        "reason": c.reason.as_str(),
                        "remaining": c.remaining,
                        "used": c.used,
                        "limit": c.limit,
                        "resets_at": c.resets_at.map(|t| t.to_rfc3339()),
                        "tier": c.tier,
                        "upgrade": c.upgrade.map(|u| u.offer),
                    })
                })
                .map_err(|e| e.to_string())
        }
        "export_policy" => e(decide::export_policy(catalog, ents, now).map(|p| match p {
            ExportPolicy::Full => json!({ "policy": "full", "message": null, "upgrade": null }),
            ExportPolicy::Watermarked => json!({ "policy": "watermarked", "message": null, "upgrade": null }),
            ExportPolicy::Refused { message, upgrade } => {
                json!({ "policy": "refused", "message": message, "upgrade": upgrade.map(|u| u.offer) })
            }
        })),
        "page" => {
            let page = case.get("page").and_then(Value::as_str);
            let usage: Usage = match case.get("usage") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(u) => parse(u, "usage")?,
            };
            e(decide::page_state(catalog, ents, page, &usage, now).map(|tools| {
                let (locked, unlocked): (Vec<_>, Vec<_>) = tools.into_iter().partition(|t| t.locked);
                json!({
                    "locked": locked.into_iter().map(|t| t.tool).collect::<Vec<_>>(),
                    "unlocked": unlocked.into_iter().map(|t| t.tool).collect::<Vec<_>>(),
                })
            }))
        }
        "rows_has_access" => {
            let rows: Vec<CloudEntitlementRow> = parse(field(case, "rows")?, "cloud_entitlements rows")?;
            e(vcm::has_access_rows(catalog, rows, str_field(case, "cloud")?, str_field(case, "required")?, now)
                .map(|d| decision_json(&d)))
        }
        "resolve_user_tier" => {
            let user = user_of(case)?;
            e(vcm::resolve_user_tier(catalog, user.as_ref(), now).map(|t| json!({ "tier": t })))
        }
        "user_can" => {
            let user = user_of(case)?;
            e(vcm::user_can(catalog, user.as_ref(), str_field(case, "capability")?, now).map(|d| decision_json(&d)))
        }
        other => panic!("unknown op `{other}`: every host must fail on an op it does not know"),
    }
}

/// Compares a result with a partial expectation; returns the mismatches.
fn compare(expect: &Map<String, Value>, got: &Result<Value, String>) -> Vec<String> {
    let mut out = Vec::new();
    match (expect.get("error"), got) {
        (Some(want), Err(msg)) => {
            let want = want.as_str().expect("`expect.error` is a string");
            if !msg.contains(want) {
                out.push(format!("error {msg:?} does not contain {want:?}"));
            }
        }
        (Some(want), Ok(v)) => out.push(format!("expected an error containing {want}, got {v}")),
        (None, Err(msg)) => out.push(format!("unexpected error: {msg}")),
        (None, Ok(v)) => {
            for (key, want) in expect {
                match v.get(key) {
                    None => out.push(format!("result has no `{key}` (result: {v})")),
                    Some(have) if have != want => {
                        out.push(format!("`{key}`: got {have}, want {want}"))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    out
}

struct Outcome {
    cases: usize,
    failures: Vec<String>,
}

fn run_fixture(path: &Path, catalogs: &mut BTreeMap<String, Catalog>) -> (String, Outcome) {
    let text = std::fs::read_to_string(path).unwrap();
    let fx: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let name = fx["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no `name`", path.display()))
        .to_string();
    let cat_name = fx["catalog"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no `catalog`", path.display()));
    let catalog = catalogs
        .entry(cat_name.to_string())
        .or_insert_with(|| load_catalog(cat_name));
    let base_now: Timestamp =
        parse(&fx["now"], "now").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let base_ents: Entitlements = match fx.get("entitlements") {
        None | Some(Value::Null) => Entitlements::default(),
        Some(v) => parse(v, "entitlements").unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    };
    let cases = fx["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no `cases`", path.display()));
    assert!(!cases.is_empty(), "{}: no cases", path.display());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let now: Timestamp = match case.get("now") {
            Some(v) => {
                parse(v, "now").unwrap_or_else(|e| panic!("{} case {i}: {e}", path.display()))
            }
            None => base_now,
        };
        let ents: Entitlements = match case.get("entitlements") {
            Some(v) => parse(v, "entitlements")
                .unwrap_or_else(|e| panic!("{} case {i}: {e}", path.display())),
            None => base_ents.clone(),
        };
        let expect = case
            .get("expect")
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{} case {i}: `expect` must be an object", path.display()));
        assert!(
            !expect.is_empty(),
            "{} case {i}: an empty `expect` asserts nothing",
            path.display()
        );
        let got = run(catalog, &ents, now, case);
        for problem in compare(expect, &got) {
            let label = case.get("note").and_then(Value::as_str).unwrap_or("");
            failures.push(format!("case {i} ({} {label}): {problem}", case["op"]));
        }
    }
    (
        name,
        Outcome {
            cases: cases.len(),
            failures,
        },
    )
}

#[test]
fn conformance_fixtures() {
    let dir = root().join("tests").join("fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in tests/fixtures");
    let mut catalogs = BTreeMap::new();
    let (mut total, mut failed) = (0, Vec::new());
    for f in &files {
        let (name, outcome) = run_fixture(f, &mut catalogs);
        let file = f.file_name().unwrap().to_string_lossy();
        let status = if outcome.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        println!("fixture {file}: {name}: {} cases {status}", outcome.cases);
        total += outcome.cases;
        for m in outcome.failures {
            failed.push(format!("{file}: {m}"));
        }
    }
    println!(
        "{} fixtures, {total} cases, {} failures",
        files.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
#[should_panic(expected = "unknown op `quote`")]
fn an_unknown_op_fails() {
    let catalog = load_catalog("vcm-suite");
    let case = json!({ "op": "quote", "expect": { "allowed": true } });
    let _ = run(&catalog, &Entitlements::default(), Timestamp(0), &case);
}

#[test]
fn comparison_is_partial_and_strict_about_errors() {
    let expect = |v: Value| v.as_object().unwrap().clone();
    let ok: Result<Value, String> =
        Ok(json!({ "allowed": true, "upgrade": null, "holds_until": null }));
    assert!(compare(&expect(json!({ "allowed": true })), &ok).is_empty());
    assert_eq!(compare(&expect(json!({ "allowed": false })), &ok).len(), 1);
    assert_eq!(
        compare(&expect(json!({ "alowed": true })), &ok).len(),
        1,
        "a misspelt key must fail"
    );
    assert_eq!(
        compare(&expect(json!({ "error": "unknown" })), &ok).len(),
        1
    );
    let err: Result<Value, String> = Err("unknown product `nope`".into());
    assert!(compare(&expect(json!({ "error": "unknown product" })), &err).is_empty());
    assert_eq!(compare(&expect(json!({ "allowed": false })), &err).len(), 1);
}
