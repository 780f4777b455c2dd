//! Runs the built `tollgate` binary on the repository's catalogs and on the
//! sample events in `cli/tests/data/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tollgate::verify::{sign_razorpay, sign_stripe, sign_stripe_rotating};
use tollgate::Timestamp;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// The repository root (the CLI crate sits in `cli/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

fn catalog(name: &str) -> String {
    repo().join("catalogs").join(format!("{name}.toml")).display().to_string()
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name).display().to_string()
}

/// A scratch file under the target directory, unique per test.
fn scratch(name: &str, contents: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tollgate-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.display().to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out: Output = Command::new(BIN)
        .args(args)
        .env_remove("TOLLGATE_STRIPE_SECRET")
        .env_remove("TOLLGATE_RAZORPAY_SECRET")
        .env_remove("TOLLGATE_SUPABASE_URL")
        .env_remove("TOLLGATE_SERVICE_KEY")
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(r.code, 0, "tollgate {args:?} failed\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

fn fails(args: &[&str], code: i32) -> Run {
    let r = run(args);
    assert_eq!(r.code, code, "tollgate {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

// ------------------------------------------------------------------ catalog check

#[test]
fn every_repository_catalog_checks_ok_with_a_summary() {
    for name in ["vcm-suite", "video-studio", "razorpay-ai", "org-seats"] {
        let r = ok(&["catalog", "check", &catalog(name)]);
        assert!(r.stdout.contains(&format!("catalog `{name}`")), "{}", r.stdout);
        assert!(r.stdout.trim_end().ends_with("ok"), "{}", r.stdout);
        assert!(r.stderr.is_empty(), "{}", r.stderr);
    }
}

#[test]
fn video_studio_summary_shows_prices_pools_and_rates() {
    let r = ok(&["catalog", "check", &catalog("video-studio")]);
    let s = &r.stdout;
    for want in [
        "products (1):",
        "tiers creator < pro < agency < studio",
        "offers (7):",
        // 7900 minor units, monthly; its allowance in the pool's unit.
        "$79.00 / month (Pro Plan); grants video:pro; 7200 seconds of video_seconds per period",
        "$19.00 once (30 Min Bundle); 1800 seconds of video_seconds once",
        "capabilities: none",
        "credit pools (1):",
        "rollover capped at one period",
        "usage pricing (11 rates): pool video_seconds",
        "overage x1.5, default overage limit $100.00",
        "0.15 usd per second x 2.5",
        "tools: 2 (by page: studio 2)",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    let offer_line = s.lines().find(|l| l.trim_start().starts_with("VIDEO_STUDIO_MONTHLY")).unwrap();
    assert!(offer_line.contains("$399.00 / month"), "{offer_line}");
}

#[test]
fn other_catalogs_show_capabilities_limits_and_currencies() {
    let r = ok(&["catalog", "check", &catalog("vcm-suite")]);
    assert!(r.stdout.contains("use_ai                  suite >= pro"), "{}", r.stdout);
    assert!(r
        .stdout
        .contains("workflow_runs_per_day  suite per day: free 0, starter 3, basic unlimited, pro unlimited"));
    assert!(r.stdout.contains("$9.99 / month (Starter)"));
    assert!(r.stdout.contains("2 chosen of [creation, video,"));
    let r = ok(&["catalog", "check", &catalog("razorpay-ai")]);
    assert!(r.stdout.contains("₹499.00 / month"), "{}", r.stdout);
    assert!(r.stdout.contains("free_drafts  unit draft, no rollover, 2 free"), "{}", r.stdout);
    let r = ok(&["catalog", "check", &catalog("org-seats")]);
    assert!(r.stdout.contains("CA$25.00 / month"), "{}", r.stdout);
    assert!(r.stdout.contains("14-day trial; 1 seat per unit; for organizations"), "{}", r.stdout);
}

#[test]
fn catalog_json_output_is_the_same_catalog() {
    let r = ok(&["catalog", "check", "--json", &catalog("video-studio")]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["catalog"]["id"], "video-studio");
    assert_eq!(v["offers"].as_array().unwrap().len(), 7);
    assert_eq!(v["usage"]["overage_multiplier"], "1.5");
    // The JSON form validates too, and summarises identically after the file name line.
    let path = scratch("video-studio.json", r.stdout.as_bytes());
    let from_json = ok(&["catalog", "check", &path]).stdout;
    let from_toml = ok(&["catalog", "check", &catalog("video-studio")]).stdout;
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&from_json), body(&from_toml));
}

#[test]
fn broken_catalog_names_file_line_and_field() {
    let src = std::fs::read_to_string(catalog("video-studio")).unwrap();
    let needle = r#"grants = [{ product = "video", tier = "pro" }]"#;
    let line = src.lines().position(|l| l == needle).expect("the Pro offer's grant line") + 1;
    let broken = src.replacen(needle, r#"grants = [{ product = "video", tier = "platinum" }]"#, 1);
    let path = scratch("broken-tier.toml", broken.as_bytes());
    let r = fails(&["catalog", "check", &path], 1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let want = format!("broken-tier.toml:{line}: catalog error at offers[1].grants[0].tier: `platinum` is not a tier");
    assert!(r.stderr.contains(&want), "want {want:?} in {}", r.stderr);

    // A type error: the decimal written as a float.
    let float = src.replacen(r#"overage_multiplier = "1.5""#, "overage_multiplier = 1.5", 1);
    let line = float.lines().position(|l| l == "overage_multiplier = 1.5").unwrap() + 1;
    let path = scratch("float.toml", float.as_bytes());
    let r = fails(&["catalog", "check", &path], 1);
    assert!(
        r.stderr.contains(&format!("float.toml:{line}: catalog error at usage.overage_multiplier")),
        "{}",
        r.stderr
    );

    // Broken JSON, and a file that does not exist.
    let path = scratch("broken.json", b"{\"catalog\": {\"id\": \"x\",\n");
    let r = fails(&["catalog", "check", &path], 1);
    assert!(r.stderr.contains("broken.json:2: catalog error: invalid JSON catalog"), "{}", r.stderr);
    let r = fails(&["catalog", "check", "no-such-catalog.toml"], 1);
    assert!(r.stderr.contains("cannot read no-such-catalog.toml"), "{}", r.stderr);
}

// ------------------------------------------------------------------ quote

/// Hand-worked from catalogs/video-studio.toml: cost = ceil(seconds x base x multiplier) cents,
/// overage = ceil(seconds x base x multiplier x 1.5) cents.
#[test]
fn quotes_match_the_catalog_rates_worked_by_hand() {
    let cases: [(&str, &str, &str, i64, i64); 6] = [
        // 30 x 0.015 x 1.2 = 0.54 exactly; x1.5 = 0.81
        ("standard", "standard", "30", 54, 81),
        // 7 x 0.015 x 1.2 = 0.126 -> 13 (not 7 x 2 = 14); x1.5 = 0.189 -> 19
        ("standard", "standard", "7", 13, 19),
        // 60 x 0.15 x 2.5 = 22.50; x1.5 = 33.75
        ("ultra", "studio", "60", 2250, 3375),
        // 11 x 0.07 x 1.3 = 1.001 -> 101; x1.5 = 1.5015 -> 151
        ("ultra", "hd", "11", 101, 151),
        // 1 x 0.01 x 1.0 = 0.01; x1.5 = 0.015 -> 2
        ("standard", "watermark", "1", 1, 2),
        // 3600 x 0.06 x 2.0 = 432.00; x1.5 = 648.00
        ("pro", "ultra_hd", "3600", 43200, 64800),
    ];
    let cat = catalog("video-studio");
    for (model, quality, seconds, cost, overage) in cases {
        let args = ["quote", "--catalog", &cat, "--model", model, "--quality", quality, "--seconds", seconds, "--json"];
        let v: Value = serde_json::from_str(&ok(&args).stdout).unwrap();
        assert_eq!(v["cost"], cost, "{model} x {quality} x {seconds}");
        assert_eq!(v["overage_cost"], overage, "{model} x {quality} x {seconds}");
        assert_eq!(v["currency"], "usd");
        assert_eq!(v["pool"], "video_seconds");
        assert_eq!(v["seconds"].as_u64().unwrap().to_string(), seconds);
        assert!(v["rounding"].as_str().unwrap().contains("rounded up once on the total"));
    }
}

#[test]
fn quote_text_shows_minor_units_formatted_amount_rate_and_rule() {
    let cat = catalog("video-studio");
    let r = ok(&["quote", "--catalog", &cat, "--model", "ultra", "--quality", "hd", "--seconds", "11"]);
    for want in [
        "11 seconds of model `ultra` at quality `hd`",
        "rate:     0.07 usd per second x multiplier 1.3",
        "cost:     $1.01 (101 minor units)",
        "overage:  $1.51 (151 minor units, x1.5",
        "rounding: seconds x base_price_per_second x multiplier",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in:\n{}", r.stdout);
    }
    let v: Value = serde_json::from_str(
        &ok(&["quote", "--catalog", &cat, "--model", "ultra", "--quality", "hd", "--seconds", "11", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["cost_display"], "$1.01");
    assert_eq!(v["base_price_per_second"], "0.07");
    assert_eq!(v["multiplier"], "1.3");
}

#[test]
fn quote_refuses_unpriced_and_out_of_range_requests() {
    let cat = catalog("video-studio");
    let r = fails(&["quote", "--catalog", &cat, "--model", "ultra", "--quality", "watermark", "--seconds", "5"], 1);
    assert!(r.stderr.contains("no price for model `ultra` at quality `watermark`"), "{}", r.stderr);
    assert!(r.stderr.contains("ultra x studio"), "{}", r.stderr);
    let r = fails(&["quote", "--catalog", &cat, "--model", "pro", "--quality", "hd", "--seconds", "0"], 1);
    assert!(r.stderr.contains("0 seconds is outside the allowed range 1..=86400"), "{}", r.stderr);
    let r =
        fails(&["quote", "--catalog", &catalog("vcm-suite"), "--model", "pro", "--quality", "hd", "--seconds", "5"], 1);
    assert!(r.stderr.contains("no usage pricing"), "{}", r.stderr);
    let r = fails(&["quote", "--catalog", &cat, "--model", "pro", "--quality", "hd", "--seconds", "-3"], 2);
    assert!(r.stderr.contains("invalid value '-3' for '--seconds <S>'"), "{}", r.stderr);
}

// ------------------------------------------------------------------ replay

const NOW: &str = "2026-03-20T00:00:00Z";

fn replay(catalog_name: &str, files: &[&str], extra: &[&str]) -> (Value, String) {
    let cat = catalog(catalog_name);
    let mut args = vec!["replay", "--catalog", cat.as_str(), "--now", NOW];
    args.extend_from_slice(extra);
    args.extend_from_slice(files);
    let r = ok(&args);
    (serde_json::from_str(&r.stdout).expect("replay prints JSON"), r.stderr)
}

#[test]
fn replay_of_a_stripe_lifecycle_gives_the_expected_grants_and_balances() {
    let (state, stderr) = replay("video-studio", &[&data("stripe-lifecycle.jsonl")], &[]);
    assert_eq!(state["as_of"], NOW);
    let alice = &state["subjects"]["user:u_alice"];
    let grants = alice["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let g = &grants[0];
    // Cancelled at period end: keeps Pro until the paid period ends.
    assert_eq!(g["id"], "stripe:sub_cli_A:video");
    assert_eq!(g["product"], "video");
    assert_eq!(g["tier"], "pro");
    assert_eq!(g["status"], "canceled");
    assert_eq!(g["source"], "stripe");
    assert_eq!(g["offer"], "VIDEO_PRO_MONTHLY");
    assert_eq!(g["valid_from"], "2026-03-01T00:00:00Z");
    assert_eq!(g["valid_to"], "2026-04-01T00:00:00Z");
    // Pro's 7200-second allowance from the paid invoice, plus the 1800-second bundle.
    assert_eq!(alice["balances"]["video_seconds"], 9000);
    let lots = alice["wallet"]["lots"].as_array().unwrap();
    let kinds: Vec<(&str, i64)> =
        lots.iter().map(|l| (l["kind"].as_str().unwrap(), l["granted"].as_i64().unwrap())).collect();
    assert_eq!(kinds, vec![("allowance", 7200), ("purchase", 1800)]);
    assert_eq!(alice["customers"], serde_json::json!(["stripe:cus_cli_A"]));
    let sub = &state["subscriptions"]["stripe:sub_cli_A"];
    assert_eq!(sub["cancel_at_period_end"], true);
    assert_eq!(sub["paid_through"], "2026-04-01T00:00:00Z");
    assert_eq!(state["customers"]["stripe:cus_cli_A"], "user:u_alice");
    assert_eq!(state["payments"]["stripe:in_cli_1"]["amount"], 7900);
    assert_eq!(state["pending"], serde_json::json!([]));
    assert_eq!(state["facts"]["unique"], 5);
    // customer.created is acknowledged and ignored; the summary says so on stderr.
    assert!(stderr.contains("replayed 6 events from 1 file (6 stripe): 5 facts (5 unique), 1 ignored"), "{stderr}");
}

#[test]
fn replay_output_does_not_depend_on_order_format_or_duplicates() {
    // The same events reversed, as a pretty-printed JSON array, with a duplicate delivery.
    let lines = ok(&["replay", "--catalog", &catalog("video-studio"), "--now", NOW, &data("stripe-lifecycle.jsonl")]);
    let shuffled = ok(&[
        "replay",
        "--catalog",
        &catalog("video-studio"),
        "--now",
        "1773964800",
        &data("stripe-lifecycle-shuffled.json"),
    ]);
    assert_eq!(lines.stdout, shuffled.stdout);
    assert!(shuffled.stderr.contains("7 events"), "{}", shuffled.stderr);
}

/// `--now` decides how far time has run for the credit lots; `--until` folds
/// only the events up to a moment.
#[test]
fn replay_now_expires_period_lots_and_until_shows_an_earlier_moment() {
    let cat = catalog("video-studio");
    let replay_with = |args: &[&str]| -> (Value, String) {
        let mut all = vec!["replay", "--catalog", cat.as_str()];
        all.extend_from_slice(args);
        let events = data("stripe-lifecycle.jsonl");
        all.push(&events);
        let r = ok(&all);
        (serde_json::from_str(&r.stdout).unwrap(), r.stderr)
    };
    // After the period end the allowance lot has expired unused; the bundle never expires.
    let (late, _) = replay_with(&["--now", "2026-04-02T00:00:00Z"]);
    assert_eq!(late["as_of"], "2026-04-02T00:00:00Z");
    let alice = &late["subjects"]["user:u_alice"];
    assert_eq!(alice["balances"]["video_seconds"], 1800);
    let allowance = &alice["wallet"]["lots"][0];
    assert_eq!(allowance["kind"], "allowance");
    assert_eq!(allowance["remaining"], 0);
    assert_eq!(allowance["expired"], 7200);
    assert_eq!(allowance["closed"], true);

    // On March 5th: subscribed and paid, no bundle yet, not cancelled yet.
    let (early, stderr) = replay_with(&["--until", "2026-03-05T00:00:00Z"]);
    assert_eq!(early["as_of"], "2026-03-05T00:00:00Z");
    let alice = &early["subjects"]["user:u_alice"];
    assert_eq!(alice["balances"]["video_seconds"], 7200);
    assert_eq!(alice["grants"][0]["status"], "active");
    assert_eq!(early["facts"]["unique"], 3);
    assert!(stderr.contains("2 after 2026-03-05T00:00:00Z left out"), "{stderr}");
}

#[test]
fn replay_detects_the_provider_per_event() {
    let (state, stderr) = replay("razorpay-ai", &[&data("mixed-providers.json")], &[]);
    let priya = &state["subjects"]["user:u_priya"];
    let g = &priya["grants"][0];
    assert_eq!(g["id"], "razorpay:sub_rzp_P1:premium");
    assert_eq!(g["tier"], "PREMIUM");
    assert_eq!(g["status"], "active");
    assert_eq!(g["valid_to"], "2026-04-01T00:00:00Z");
    // 2000 credits from the charge, 500 from the Stripe top-up, and the two free drafts.
    assert_eq!(priya["balances"]["ai_credits"], 2500);
    assert_eq!(priya["balances"]["free_drafts"], 2);
    assert!(stderr.contains("(1 razorpay, 1 stripe)"), "{stderr}");
}

/// Stored facts of the application (here a usage record, serialised by the
/// core) replay alongside provider events.
#[test]
fn replay_takes_stored_facts_with_the_events() {
    use tollgate::billing::{Fact, Subject, UsageFact};
    let usage = Fact::usage(
        UsageFact {
            request_id: "req_cli_1".into(),
            subject: Subject::user("u_alice"),
            pool: "video_seconds".into(),
            units: 600,
            model: Some("standard".into()),
            quality: Some("standard".into()),
            takes: None, overage_units: 0, overage_cost: 0, currency: String::new(),
        },
        Timestamp::parse("2026-03-10T12:00:00Z").unwrap(),
    );
    let line = serde_json::to_string(&usage).unwrap();
    // Twice: a retried request counts once.
    let p = scratch("usage.jsonl", format!("{line}\n{line}\n").as_bytes());
    let (state, stderr) = replay("video-studio", &[&data("stripe-lifecycle.jsonl"), &p], &[]);
    assert!(stderr.contains("(2 app, 6 stripe)"), "{stderr}");
    let alice = &state["subjects"]["user:u_alice"];
    // 9000 - 600, taken from the period allowance first.
    assert_eq!(alice["balances"]["video_seconds"], 8400);
    assert_eq!(alice["wallet"]["lots"][0]["kind"], "allowance");
    assert_eq!(alice["wallet"]["lots"][0]["remaining"], 6600);
    let used: i64 = alice["wallet"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "usage")
        .map(|e| e["delta"].as_i64().unwrap())
        .sum();
    assert_eq!(used, -600);
}

#[test]
fn replay_reads_several_files_in_order_and_standard_input() {
    // The lifecycle split in two files gives the state of the whole.
    let all = std::fs::read_to_string(data("stripe-lifecycle.jsonl")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let a = scratch("part-a.jsonl", lines[..3].join("\n").as_bytes());
    let b = scratch("part-b.json", lines[3].as_bytes());
    let c = scratch("part-c.jsonl", lines[4..].join("\n").as_bytes());
    let (split, stderr) = replay("video-studio", &[&a, &b, &c], &[]);
    let (whole, _) = replay("video-studio", &[&data("stripe-lifecycle.jsonl")], &[]);
    assert_eq!(split, whole);
    assert!(stderr.contains("from 3 files"), "{stderr}");

    let mut child = Command::new(BIN)
        .args(["replay", "--catalog", &catalog("video-studio"), "--now", NOW, "--compact", "-q", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(all.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim_end().lines().count(), 1, "--compact prints one line");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), whole);
    assert!(out.stderr.is_empty(), "--quiet prints no summary");
}

/// A large input gets a progress bar only on a terminal: in a pipe stderr holds
/// just the summary, with no terminal control characters.
#[test]
fn large_replay_in_a_pipe_shows_no_progress_bar() {
    let lines = std::fs::read_to_string(data("stripe-lifecycle.jsonl")).unwrap();
    let mut big = String::new();
    for i in 0..100 {
        big.push_str(&lines.replace("_cli_", &format!("_big{i}_")).replace("u_alice", &format!("u_{i}")));
    }
    let p = scratch("big.jsonl", big.as_bytes());
    let (state, stderr) = replay("video-studio", &[&p], &[]);
    assert_eq!(state["subjects"].as_object().unwrap().len(), 100);
    assert_eq!(state["subjects"]["user:u_42"]["balances"]["video_seconds"], 9000);
    assert!(!stderr.contains('\r') && !stderr.contains('\u{1b}'), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("replayed 600 events from 1 file"), "{stderr}");
}

#[test]
fn replay_errors_name_the_file_line_and_field() {
    let cat = catalog("video-studio");
    let broken = data("stripe-broken.jsonl");
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &broken], 1);
    assert!(r.stdout.is_empty(), "no state on a parse error: {}", r.stdout);
    assert!(
        r.stderr.contains(
            "stripe-broken.jsonl:2: stripe event evt_cli_2 (customer.subscription.created): missing field `data.object.customer` (missing_field)"
        ),
        "{}",
        r.stderr
    );

    // --skip-invalid reports and goes on.
    let r = ok(&["replay", "--catalog", &cat, "--now", NOW, "--skip-invalid", &broken]);
    assert!(r.stderr.contains("skipped: "), "{}", r.stderr);
    assert!(r.stderr.contains("1 invalid skipped"), "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["subjects"]["user:u_alice"]["grants"][0]["tier"], "pro");

    // An element of an array: its index and its own line.
    let arr = "[\n  {\"object\": \"event\", \"id\": \"evt_ok\", \"type\": \"customer.created\", \"created\": 1, \"data\": {\"object\": {\"id\": \"cus_1\"}}},\n  {\"object\": \"event\", \"id\": \"evt_x\", \"type\": \"invoice.paid\", \"created\": \"soon\", \"data\": {\"object\": {}}}\n]\n";
    let p = scratch("array-bad.json", arr.as_bytes());
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &p], 1);
    assert!(
        r.stderr.contains("array-bad.json:3 (array index 1): stripe event evt_x (invoice.paid): field `created`"),
        "{}",
        r.stderr
    );

    // Not JSON at all: line and column.
    let p = scratch("not-json.jsonl", b"{\"object\": \"event\"}\n{\"object\": \n");
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &p], 1);
    assert!(r.stderr.contains("not-json.jsonl:3:0: not JSON"), "{}", r.stderr);

    // JSON, but no provider's event.
    let p = scratch("unknown.jsonl", b"{\"hello\": 1}\n");
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &p], 1);
    assert!(r.stderr.contains("unknown.jsonl:1: an object that is neither a Stripe event"), "{}", r.stderr);

    // An event for an offer the catalog does not have: not an error (a paid event is never
    // refused for its metadata), a warning naming the field, and the purchase waits.
    let ev = std::fs::read_to_string(data("stripe-event.json")).unwrap().replace("VIDEO_PRO_MONTHLY", "NOPE");
    let p = scratch("unknown-offer.json", ev.as_bytes());
    let r = ok(&["replay", "--catalog", &cat, "--now", NOW, &p]);
    assert!(
        r.stderr.contains("warning: ") && r.stderr.contains("field `data.object.metadata.offer_key`: offer `NOPE` is not in the catalog"),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["pending"].as_array().map(Vec::len), Some(1), "{v}");
}

#[test]
fn replay_output_keys_are_documented_in_the_readme() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let (state, _) = replay("video-studio", &[&data("stripe-lifecycle.jsonl")], &[]);
    let mut keys: Vec<String> = state.as_object().unwrap().keys().cloned().collect();
    let subject = &state["subjects"]["user:u_alice"];
    keys.extend(subject.as_object().unwrap().keys().cloned());
    keys.extend(subject["grants"][0].as_object().unwrap().keys().cloned());
    keys.extend(subject["wallet"]["lots"][0].as_object().unwrap().keys().cloned());
    keys.extend(subject["wallet"]["ledger"][0].as_object().unwrap().keys().cloned());
    keys.extend(state["subscriptions"]["stripe:sub_cli_A"].as_object().unwrap().keys().cloned());
    keys.extend(state["payments"]["stripe:in_cli_1"].as_object().unwrap().keys().cloned());
    for k in keys {
        assert!(readme.contains(&format!("`{k}`")), "replay output key `{k}` is not documented in cli/README.md");
    }
}

// ------------------------------------------------------------------ verify and sign

const SECRET: &str = "whsec_cli_test_secret";
const T0: i64 = 1_772_323_200; // 2026-03-01T00:00:00Z

#[test]
fn verify_stripe_accepts_a_header_from_the_core_signer() {
    let payload = std::fs::read(data("stripe-event.json")).unwrap();
    let header = sign_stripe(&payload, SECRET, Timestamp::from_unix(T0));
    let p = data("stripe-event.json");
    let r = ok(&[
        "verify",
        "stripe",
        "--secret",
        SECRET,
        "--header",
        &header,
        "--payload",
        &p,
        "--now",
        "2026-03-01T00:04:00Z",
    ]);
    assert_eq!(r.stdout, "valid\n");
    // Unix seconds for --now, the header name pasted along, the default tolerance edge (300 s).
    let pasted = format!("Stripe-Signature: {header}");
    let r = ok(&[
        "verify",
        "stripe",
        "--secret",
        SECRET,
        "--header",
        &pasted,
        "--payload",
        &p,
        "--now",
        &(T0 + 300).to_string(),
    ]);
    assert_eq!(r.stdout, "valid\n");
    // Rotation: the header is signed with the new secret only; both are configured.
    let rotated = sign_stripe(&payload, "whsec_new", Timestamp::from_unix(T0));
    ok(&[
        "verify",
        "stripe",
        "--secret",
        SECRET,
        "--secret",
        "whsec_new",
        "--header",
        &rotated,
        "--payload",
        &p,
        "--now",
        &T0.to_string(),
    ]);
    ok(&[
        "verify",
        "stripe",
        "--secret",
        &format!("{SECRET},whsec_new"),
        "--header",
        &rotated,
        "--payload",
        &p,
        "--now",
        &T0.to_string(),
    ]);
    // A stored event, checked without the time.
    ok(&["verify", "stripe", "--secret", SECRET, "--header", &header, "--payload", &p, "--no-timestamp-check"]);
}

#[test]
fn verify_stripe_rejects_with_the_typed_error() {
    let payload = std::fs::read(data("stripe-event.json")).unwrap();
    let header = sign_stripe(&payload, SECRET, Timestamp::from_unix(T0));
    let p = data("stripe-event.json");
    let now = T0.to_string();

    let r =
        fails(&["verify", "stripe", "--secret", "whsec_wrong", "--header", &header, "--payload", &p, "--now", &now], 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("invalid Stripe signature: no v1 signature matches"), "{}", r.stderr);
    assert!(r.stderr.contains("(signature_mismatch)"), "{}", r.stderr);

    // One byte changed in the body.
    let mut tampered = payload.clone();
    let last = tampered.len() - 2;
    tampered[last] = b' ';
    let tp = scratch("tampered.json", &tampered);
    fails(&["verify", "stripe", "--secret", SECRET, "--header", &header, "--payload", &tp, "--now", &now], 1);

    // Too old, and too far ahead; a wider tolerance accepts.
    let late = (T0 + 301).to_string();
    let r = fails(&["verify", "stripe", "--secret", SECRET, "--header", &header, "--payload", &p, "--now", &late], 1);
    assert!(r.stderr.contains("(timestamp_out_of_tolerance)"), "{}", r.stderr);
    assert!(r.stderr.contains("301 s older than now"), "{}", r.stderr);
    let early = (T0 - 301).to_string();
    let r = fails(&["verify", "stripe", "--secret", SECRET, "--header", &header, "--payload", &p, "--now", &early], 1);
    assert!(r.stderr.contains("ahead of now"), "{}", r.stderr);
    ok(&[
        "verify",
        "stripe",
        "--secret",
        SECRET,
        "--header",
        &header,
        "--payload",
        &p,
        "--now",
        &late,
        "--tolerance",
        "600",
    ]);

    // Malformed headers.
    let r = fails(&["verify", "stripe", "--secret", SECRET, "--header", "v1=abc", "--payload", &p, "--now", &now], 1);
    assert!(r.stderr.contains("(malformed_signature)"), "{}", r.stderr);
    let v0 = header.replace("v1=", "v0=");
    let r = fails(&["verify", "stripe", "--secret", SECRET, "--header", &v0, "--payload", &p, "--now", &now], 1);
    assert!(r.stderr.contains("(no_v1_signature)"), "{}", r.stderr);
    let r = fails(&["verify", "stripe", "--secret", SECRET, "--header", "", "--payload", &p, "--now", &now], 1);
    assert!(r.stderr.contains("(missing_signature)"), "{}", r.stderr);
    // A secret with a stray space is refused before anything is checked.
    let r =
        fails(&["verify", "stripe", "--secret", "whsec_x ", "--header", &header, "--payload", &p, "--now", &now], 1);
    assert!(r.stderr.contains("contains whitespace"), "{}", r.stderr);
}

#[test]
fn verify_razorpay_accepts_and_rejects() {
    let payload = std::fs::read(data("razorpay-charged.json")).unwrap();
    let sig = sign_razorpay(&payload, "rzp_secret");
    let p = data("razorpay-charged.json");
    let r = ok(&["verify", "razorpay", "--secret", "rzp_secret", "--signature", &sig, "--payload", &p]);
    assert_eq!(r.stdout, "valid\n");
    ok(&["verify", "razorpay", "--secret", "old,rzp_secret", "--signature", &sig, "--payload", &p]);
    let r = fails(&["verify", "razorpay", "--secret", "other", "--signature", &sig, "--payload", &p], 1);
    assert!(
        r.stderr.contains("invalid Razorpay signature") && r.stderr.contains("(signature_mismatch)"),
        "{}",
        r.stderr
    );
    let r = fails(&["verify", "razorpay", "--secret", "rzp_secret", "--signature", "xyz", "--payload", &p], 1);
    assert!(r.stderr.contains("(malformed_signature)"), "{}", r.stderr);
}

#[test]
fn sign_prints_what_the_core_signer_makes_and_verify_accepts_it() {
    let p = data("stripe-event.json");
    let payload = std::fs::read(&p).unwrap();
    let r = ok(&["sign", "stripe", "--secret", SECRET, "--payload", &p, "--now", "2026-03-01T00:00:00Z"]);
    let header = r.stdout.trim_end();
    assert_eq!(header, sign_stripe(&payload, SECRET, Timestamp::from_unix(T0)));
    assert!(header.starts_with(&format!("t={T0},v1=")), "{header}");
    let two = ok(&["sign", "stripe", "--secret", "a,b", "--payload", &p, "--now", &T0.to_string()]);
    assert_eq!(two.stdout.trim_end(), sign_stripe_rotating(&payload, &["a", "b"], Timestamp::from_unix(T0)));
    ok(&["verify", "stripe", "--secret", SECRET, "--header", header, "--payload", &p, "--now", &T0.to_string()]);

    // Signed at the system clock, verified at the system clock.
    let fresh = ok(&["sign", "stripe", "--secret", SECRET, "--payload", &p]).stdout;
    ok(&["verify", "stripe", "--secret", SECRET, "--header", fresh.trim_end(), "--payload", &p]);

    let r = ok(&["sign", "razorpay", "--secret", "rzp_secret", "--payload", &p]);
    assert_eq!(r.stdout.trim_end(), sign_razorpay(&payload, "rzp_secret"));
}

// ------------------------------------------------------------------ help and bad arguments

#[test]
fn every_subcommand_has_help() {
    let cases: [(&[&str], &str); 10] = [
        (&["--help"], "Usage: tollgate <COMMAND>"),
        (&["catalog", "--help"], "Usage: tollgate catalog <COMMAND>"),
        (&["catalog", "check", "--help"], "Usage: tollgate catalog check [OPTIONS] <FILE>"),
        (&["quote", "--help"], "--seconds <S>"),
        (&["replay", "--help"], "Usage: tollgate replay [OPTIONS] --catalog <FILE> <EVENTS>..."),
        (&["verify", "--help"], "Usage: tollgate verify <COMMAND>"),
        (&["verify", "stripe", "--help"], "--tolerance <SECS>"),
        (&["verify", "razorpay", "--help"], "--signature <SIG>"),
        (&["sign", "stripe", "--help"], "Usage: tollgate sign stripe"),
        (&["sign", "razorpay", "--help"], "Usage: tollgate sign razorpay"),
    ];
    for (args, want) in cases {
        let r = ok(args);
        assert!(r.stdout.contains(want), "tollgate {args:?}: missing {want:?} in\n{}", r.stdout);
    }
    let r = ok(&["help", "replay"]);
    assert!(r.stdout.contains("JSON lines"), "{}", r.stdout);
    let r = ok(&["--version"]);
    assert!(r.stdout.starts_with("tollgate "), "{}", r.stdout);
}

#[test]
fn bad_arguments_exit_2_with_a_helpful_message() {
    let r = fails(&[], 2);
    assert!(r.stderr.contains("Usage: tollgate <COMMAND>"), "{}", r.stderr);
    let r = fails(&["frobnicate"], 2);
    assert!(r.stderr.contains("unrecognized subcommand 'frobnicate'"), "{}", r.stderr);
    let r = fails(&["replay", "--catalog", &catalog("video-studio")], 2);
    assert!(r.stderr.contains("<EVENTS>..."), "{}", r.stderr);
    let r =
        fails(&["replay", "--catalog", &catalog("video-studio"), "--now", "yesterday", &data("stripe-event.json")], 2);
    assert!(r.stderr.contains("invalid value 'yesterday' for '--now <T>'"), "{}", r.stderr);
    assert!(r.stderr.contains("RFC 3339"), "{}", r.stderr);
    let r = fails(&["quote", "--model", "pro"], 2);
    assert!(r.stderr.contains("--catalog <FILE>"), "{}", r.stderr);
    let r = fails(&["verify", "stripe", "--header", "t=1,v1=00", "--payload", &data("stripe-event.json")], 2);
    assert!(r.stderr.contains("--secret <S>"), "{}", r.stderr);
    let r = fails(
        &["verify", "stripe", "--secret", "s", "--header", "h", "--payload", "p", "--now", "1", "--no-timestamp-check"],
        2,
    );
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    let r = fails(&["catalog", "check"], 2);
    assert!(r.stderr.contains("<FILE>"), "{}", r.stderr);
}

#[test]
fn stripe_fixtures_create_a_product_and_a_price_per_offer_with_its_key_as_lookup_key() {
    let out = ok(&["stripe", "fixtures", &catalog("video-studio")]);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["_meta"]["template_version"], 0);
    let fx = v["fixtures"].as_array().unwrap();
    let price = fx.iter().find(|f| f["params"]["lookup_key"] == "VIDEO_TOKENS_30_MIN").expect("the top-up's price");
    assert_eq!((price["path"].as_str(), price["method"].as_str()), (Some("/v1/prices"), Some("post")));
    assert_eq!(price["params"]["unit_amount"], 1900);
    assert!(price["params"].get("recurring").is_none(), "a one-time price");
    let product = price["params"]["product"].as_str().unwrap();
    let name = product.trim_start_matches("${").trim_end_matches(":id}");
    assert!(fx.iter().any(|f| f["name"] == name && f["path"] == "/v1/products"), "{product} is created first");
    fails(&["stripe", "fixtures", &data("does-not-exist.toml")], 1);
}

// ------------------------------------------------------------------ catalog push (no store)

#[test]
fn an_invalid_push_is_refused_with_the_cores_error_before_any_call() {
    // Nothing listens on port 9: a call would fail with "cannot reach"; the core refuses first.
    let bad = scratch("bad-push.toml", b"[catalog]\nid = \"x\"\nname = \"X\"\ncurrency = \"usd\"\n\n[[products]]\nid = \"p\"\ntiers = []\n");
    let r = fails(&["catalog", "push", &bad, "--url", "http://127.0.0.1:9", "--service-key", "sb_secret_x"], 1);
    assert!(r.stderr.contains("bad-push.toml:1: catalog error at catalog: missing field `version`"), "{}", r.stderr);
    assert!(!r.stderr.contains("cannot reach"), "no call was made: {}", r.stderr);
    // A valid file goes on to the store, which is not there.
    let r = fails(&["catalog", "push", &catalog("org-seats"), "--url", "http://127.0.0.1:9", "--service-key", "sb_secret_x"], 1);
    assert!(r.stderr.contains("cannot reach the store"), "{}", r.stderr);
    let r = fails(&["catalog", "push", &catalog("org-seats"), "--url", "ftp://x", "--service-key", "k"], 1);
    assert!(r.stderr.contains("must start with https://"), "{}", r.stderr);
    // The store's address is required.
    let r = run(&["catalog", "list"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

// ------------------------------------------------------------------ catalog diff

#[test]
fn catalog_diff_names_what_changed_and_exactly_the_subjects_it_affects() {
    let base = std::fs::read_to_string(catalog("video-studio")).unwrap();
    let cap = "\n[[capabilities]]\nid = \"priority_render\"\nproduct = \"video\"\nmin_tier = \"TIER\"\n";
    let old = scratch("diff-old.toml", format!("{base}{}", cap.replace("TIER", "pro")).as_bytes());
    // A price raised, a period's credits raised, the capability moved from Pro to Agency.
    let new_text = format!("{base}{}", cap.replace("TIER", "agency"))
        .replace("price = { amount = 7900, currency = \"usd\", interval = \"month\" }", "price = { amount = 8900, currency = \"usd\", interval = \"month\" }")
        .replace("credits = [{ pool = \"video_seconds\", amount = 7200, per = \"period\" }]", "credits = [{ pool = \"video_seconds\", amount = 9000, per = \"period\" }]");
    let new = scratch("diff-new.toml", new_text.as_bytes());
    let r = ok(&["catalog", "diff", &old, &new]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("price VIDEO_PRO_MONTHLY: {") && l.contains("7900") && l.contains("8900")), "{}", r.stdout);
    assert!(lines.iter().any(|l| l.starts_with("offer VIDEO_PRO_MONTHLY: ")), "{}", r.stdout);
    assert!(lines.iter().any(|l| l.starts_with("capability priority_render: ")), "{}", r.stdout);
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert_eq!(ok(&["catalog", "diff", &old, &old]).stdout.trim(), "no change");

    // u_alice bought Pro (and a token pack) in the lifecycle events: she alone may be
    // affected. The new offer's migration policy counts: she keeps the capability (`keep`,
    // the default), loses it at once (`now`), or at her renewal (`at_renewal`). Her balance
    // does not change: what her paid periods were sold with stays theirs (a host folds
    // them under the version they were read under), the new period credits come with her
    // next renewal.
    type Row = (String, String, Value, Value);
    let rows = |v: &Value| -> Vec<Row> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| (c["section"].as_str().unwrap().into(), c["id"].as_str().unwrap().into(), c["before"].clone(), c["after"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let impact = |new: &str| -> (Vec<Row>, Vec<Row>) {
        let r = ok(&["catalog", "diff", &old, new, "--facts", &data("stripe-lifecycle.jsonl"), "--now", NOW, "--json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let subjects = v["subjects"].as_array().unwrap();
        if subjects.is_empty() {
            return (Vec::new(), Vec::new());
        }
        assert_eq!(subjects.len(), 1, "{}", r.stdout);
        assert_eq!(subjects[0]["subject"], "user:u_alice");
        (rows(&subjects[0]["changes"]), rows(&subjects[0]["at_renewal"]))
    };
    let lost = ("access".to_string(), "priority_render".to_string(), Value::Bool(true), Value::Bool(false));
    let (changes, later) = impact(&new);
    assert!(changes.is_empty() && later.is_empty(), "keep: nothing changes for her {changes:?} {later:?}");
    let policy = |p: &str| {
        let text = new_text.replace("key = \"VIDEO_PRO_MONTHLY\"\n", &format!("key = \"VIDEO_PRO_MONTHLY\"\nmigration = \"{p}\"\n"));
        assert_ne!(text, new_text);
        scratch(&format!("diff-new-{p}.toml"), text.as_bytes())
    };
    let (changes, later) = impact(&policy("now"));
    assert_eq!(changes, vec![lost.clone()], "{changes:?}");
    assert!(later.is_empty(), "{later:?}");
    let (changes, later) = impact(&policy("at_renewal"));
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(later, vec![lost], "at her renewal");
}

#[test]
fn init_writes_a_starter_catalog_that_checks_and_types_and_is_never_overwritten() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tollgate-cli-init");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("catalog.toml").display().to_string();
    let r = ok(&["init", &file]);
    // The schema beside it, the one `catalog schema` prints, which the catalog points at.
    let schema = std::fs::read_to_string(dir.join("catalog.schema.json")).unwrap();
    assert_eq!(schema, ok(&["catalog", "schema"]).stdout);
    assert!(std::fs::read_to_string(&file).unwrap().starts_with("#:schema ./catalog.schema.json\n"));
    assert!(r.stdout.contains("tollgate catalog check") && r.stdout.contains("tollgate catalog push"), "{}", r.stdout);
    // Valid as written: check summarises it, types lists its ids.
    let r = ok(&["catalog", "check", &file]);
    assert!(r.stdout.contains("my-app"), "{}", r.stdout);
    let r = ok(&["catalog", "types", &file]);
    assert!(r.stdout.contains(r#"export type OfferKey = "PRO_MONTHLY" | "PRO_YEARLY" | "TEAM_MONTHLY" | "AI_CREDITS_1000";"#), "{}", r.stdout);
    // A second init does not overwrite what the user has edited.
    std::fs::write(&file, "# mine\n").unwrap();
    let r = fails(&["init", &file], 1);
    assert!(r.stderr.contains("exists") && r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
    ok(&["init", &file, "--force"]);
    ok(&["catalog", "check", &file]);
}

#[test]
fn the_catalog_json_schema_is_the_committed_one_and_every_example_catalog_meets_it() {
    let printed = ok(&["catalog", "schema"]).stdout;
    let committed = std::fs::read_to_string(repo().join("catalogs").join("catalog.schema.json")).unwrap();
    assert_eq!(printed, committed, "catalogs/catalog.schema.json is stale: tollgate catalog schema > catalogs/catalog.schema.json");
    let schema: Value = serde_json::from_str(&printed).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for name in ["vcm-suite", "video-studio", "razorpay-ai", "org-seats"] {
        let text = std::fs::read_to_string(catalog(name)).unwrap();
        assert!(text.starts_with("#:schema ./catalog.schema.json\n"), "{name}: editors are pointed at the schema");
        let doc: Value = toml::from_str(&text).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    // What an editor flags: an unknown field (a typo) and a limit that is neither a whole
    // number nor "unlimited", as the core refuses them.
    let mut doc: Value = toml::from_str(&std::fs::read_to_string(catalog("vcm-suite")).unwrap()).unwrap();
    doc["offers"][0]["pricee"] = Value::from(1);
    assert!(!validator.is_valid(&doc));
    let mut doc: Value = toml::from_str(&std::fs::read_to_string(catalog("vcm-suite")).unwrap()).unwrap();
    doc["limits"][0]["values"]["starter"] = Value::from("lots");
    assert!(!validator.is_valid(&doc));
    doc["limits"][0]["values"]["starter"] = Value::from("unlimited");
    assert!(validator.is_valid(&doc));
}
