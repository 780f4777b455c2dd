//! The `tollgate` binary as a careless or hostile user meets it: wrong arguments, files that
//! are missing, directories, empty, binary, not UTF-8, with a byte order mark, TOML and JSON
//! mixed up, broken catalogs, hostile amounts and times, malformed events, standard input
//! named twice, a full disk on stdout, and `init` over existing files. Every case must end
//! with a clear message (`error: ...` on stderr naming the file and the field), exit 1 for
//! refused input or 2 for a malformed command line, and never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const NOW: &str = "2026-03-20T00:00:00Z";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

fn catalog(name: &str) -> String {
    repo()
        .join("catalogs")
        .join(format!("{name}.toml"))
        .display()
        .to_string()
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

/// A fresh scratch directory for one test, under the system's temporary directory.
fn tmp(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-adversarial-{}-{test}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.display().to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("TOLLGATE_STRIPE_SECRET")
        .env_remove("TOLLGATE_RAZORPAY_SECRET")
        .env_remove("TOLLGATE_SUPABASE_URL")
        .env_remove("TOLLGATE_SERVICE_KEY");
    c
}

/// Runs the binary with `stdin` as its standard input; checks that it never panics.
fn run_in(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    // The binary may exit before reading (a bad command line): a closed pipe is fine.
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "tollgate {args:?} panicked:\n{}",
        r.stderr
    );
    assert_ne!(
        r.code, 101,
        "tollgate {args:?} exited as a panic does:\n{}",
        r.stderr
    );
    r
}

fn run(args: &[&str]) -> Run {
    run_in(args, b"")
}

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, 0,
        "tollgate {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Exits with `code`, an `error:` on stderr and nothing on stdout.
fn fails(args: &[&str], code: i32) -> Run {
    fails_in(args, b"", code)
}

fn fails_in(args: &[&str], stdin: &[u8], code: i32) -> Run {
    let r = run_in(args, stdin);
    assert_eq!(
        r.code, code,
        "tollgate {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.starts_with("error: "),
        "tollgate {args:?}: no `error:` on stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "tollgate {args:?}: a refusal printed a result:\n{}",
        r.stdout
    );
    r
}

fn video_json() -> String {
    ok(&["catalog", "check", "--json", &catalog("video-studio")]).stdout
}

// ------------------------------------------------------------------ files that are not catalogs

#[test]
fn missing_directory_empty_binary_and_utf16_catalogs_are_named_errors() {
    let dir = tmp("bad-files");
    let missing = dir.join("nope.toml").display().to_string();
    let r = fails(&["catalog", "check", &missing], 1);
    assert!(
        r.stderr.contains(&format!("cannot read {missing}")),
        "{}",
        r.stderr
    );

    let d = dir.display().to_string();
    let r = fails(&["catalog", "check", &d], 1);
    assert!(
        r.stderr.contains(&format!("cannot read {d}")),
        "{}",
        r.stderr
    );

    for name in ["empty.toml", "empty.json", "empty"] {
        let p = write(&dir, name, b"");
        let r = fails(&["catalog", "check", &p], 1);
        assert!(
            r.stderr.contains(name) && r.stderr.contains("catalog error"),
            "{}",
            r.stderr
        );
    }
    let p = write(&dir, "blank.toml", b"  \n\n\t\n");
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr
            .contains("blank.toml:1: catalog error: missing field `catalog`"),
        "{}",
        r.stderr
    );

    let p = write(
        &dir,
        "binary.toml",
        &[0x7f, 0x45, 0x4c, 0x46, 0x00, 0xff, 0xfe, 0x80],
    );
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr
            .contains("binary.toml is not UTF-8 text (invalid byte at offset 5)"),
        "{}",
        r.stderr
    );

    // Latin-1 text: valid up to the first accented byte.
    let p = write(&dir, "latin1.toml", b"[catalog]\nname = \"Caf\xe9\"\n");
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr
            .contains("latin1.toml is not UTF-8 text (invalid byte at offset 21)"),
        "{}",
        r.stderr
    );

    // What PowerShell's `>` writes: UTF-16 with its byte order mark.
    let utf16: Vec<u8> = "\u{feff}[catalog]\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let p = write(&dir, "utf16.toml", &utf16);
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains("utf16.toml is UTF-16 text") && r.stderr.contains("save it as UTF-8"),
        "{}",
        r.stderr
    );

    // The other commands that read a catalog say the same.
    for args in [
        vec!["catalog", "types", &missing],
        vec!["catalog", "diff", &missing, &missing],
        vec!["stripe", "fixtures", &missing],
        vec![
            "quote",
            "--catalog",
            &missing,
            "--model",
            "m",
            "--quality",
            "q",
            "--seconds",
            "1",
        ],
        vec!["replay", "--catalog", &missing, "--now", NOW, "/dev/null"],
    ] {
        let r = fails(&args, 1);
        assert!(
            r.stderr.contains(&format!("cannot read {missing}")),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_catalog_with_a_byte_order_mark_checks_in_toml_and_json() {
    let dir = tmp("bom-catalog");
    let toml = std::fs::read(catalog("video-studio")).unwrap();
    let p = write(
        &dir,
        "bom.toml",
        &[b"\xef\xbb\xbf".as_slice(), &toml].concat(),
    );
    assert!(ok(&["catalog", "check", &p])
        .stdout
        .trim_end()
        .ends_with("ok"));
    let p = write(
        &dir,
        "bom.json",
        &[b"\xef\xbb\xbf".as_slice(), video_json().as_bytes()].concat(),
    );
    assert_eq!(ok(&["catalog", "check", "--json", &p]).stdout, video_json());
    // Without an extension the content decides, BOM or not.
    let p = write(
        &dir,
        "bom-catalog",
        &[b"\xef\xbb\xbf".as_slice(), video_json().as_bytes()].concat(),
    );
    assert_eq!(ok(&["catalog", "check", "--json", &p]).stdout, video_json());
}

#[test]
fn toml_saved_as_json_and_json_saved_as_toml_say_what_the_content_looks_like() {
    let dir = tmp("mixups");
    let p = write(
        &dir,
        "really-toml.json",
        &std::fs::read(catalog("video-studio")).unwrap(),
    );
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr
            .contains("really-toml.json:1: catalog error: invalid JSON catalog"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("if it is TOML, name it .toml"),
        "{}",
        r.stderr
    );

    let p = write(&dir, "really-json.toml", video_json().as_bytes());
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains("really-json.toml:1: catalog error"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("if it is JSON, name it .json"),
        "{}",
        r.stderr
    );

    // An extension in capitals is still the extension.
    let p = write(&dir, "upper.JSON", video_json().as_bytes());
    ok(&["catalog", "check", &p]);
    // No extension: the content decides, either way.
    let p = write(
        &dir,
        "catalog-toml",
        &std::fs::read(catalog("video-studio")).unwrap(),
    );
    ok(&["catalog", "check", &p]);
    let p = write(&dir, "catalog-json", video_json().as_bytes());
    ok(&["catalog", "check", &p]);
    // A file that fails for its own reasons gets no hint.
    let p = write(&dir, "broken.json", b"{\"catalog\": ");
    let r = fails(&["catalog", "check", &p], 1);
    assert!(!r.stderr.contains("name it"), "{}", r.stderr);
}

// ------------------------------------------------------------------ catalogs with errors

#[test]
fn broken_catalogs_name_the_file_the_line_and_the_field() {
    let dir = tmp("broken");
    let src = std::fs::read_to_string(catalog("video-studio")).unwrap();
    let line_of = |needle: &str| src.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let cases = [
        (
            "amount = 7900",
            "amount = -7900",
            "offers[1].price.amount",
            "cannot be negative",
        ),
        (
            "amount = 2900",
            "amount = 29.00",
            "offers[0].price.amount",
            "expected i64",
        ),
        (
            "amount = 2900",
            "amount = 99999999999999999999999",
            "offers[0].price.amount",
            "expected i64",
        ),
        (
            "currency = \"usd\"",
            "currency = \"US$\"",
            "catalog.currency",
            "ISO 4217",
        ),
        (
            "base_price_per_second = \"0.015\"",
            "base_price_per_second = \"-0.015\"",
            "usage.rates[1].base_price_per_second",
            "is not a decimal",
        ),
        (
            "base_price_per_second = \"0.015\"",
            "base_price_per_second = 0.015",
            "usage.rates[1].base_price_per_second",
            "write decimals as strings",
        ),
        (
            "base_price_per_second = \"0.015\"",
            "base_price_per_second = \"99999999999999999999\"",
            "usage.rates[1].base_price_per_second",
            "too large",
        ),
    ];
    for (from, to, field, words) in cases {
        let line = line_of(from);
        let p = write(&dir, "broken.toml", src.replacen(from, to, 1).as_bytes());
        let r = fails(&["catalog", "check", &p], 1);
        assert!(
            r.stderr
                .contains(&format!("broken.toml:{line}: catalog error at {field}: "))
                && r.stderr.contains(words),
            "{to}: {}",
            r.stderr
        );
        // Every command that reads a catalog refuses it the same way.
        let r = fails(
            &[
                "quote",
                "--catalog",
                &p,
                "--model",
                "standard",
                "--quality",
                "standard",
                "--seconds",
                "7",
            ],
            1,
        );
        assert!(
            r.stderr
                .contains(&format!("broken.toml:{line}: catalog error at {field}")),
            "{}",
            r.stderr
        );
        let r = fails(&["catalog", "types", &p], 1);
        assert!(
            r.stderr.contains(&format!("broken.toml:{line}")),
            "{}",
            r.stderr
        );
    }

    // Duplicate tables and keys: the line of the second.
    let p = write(
        &dir,
        "dup.toml",
        b"[catalog]\nid = \"a\"\n[catalog]\nid = \"b\"\n",
    );
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains("dup.toml:3: catalog error"),
        "{}",
        r.stderr
    );

    // JSON: an unknown field and a wrong type carry the line; a rule of the core the field.
    let mut v: Value = serde_json::from_str(&video_json()).unwrap();
    v["offers"][0]["price"]["amount"] = Value::from(12.5);
    let p = write(
        &dir,
        "float.json",
        serde_json::to_string_pretty(&v).unwrap().as_bytes(),
    );
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains("float.json:") && r.stderr.contains("at offers[0].price.amount"),
        "{}",
        r.stderr
    );
    let mut v: Value = serde_json::from_str(&video_json()).unwrap();
    v["offers"][1]["grants"][0]["tier"] = Value::from("platinum");
    let p = write(
        &dir,
        "tier.json",
        serde_json::to_string_pretty(&v).unwrap().as_bytes(),
    );
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains(
            "tier.json: catalog error at offers[1].grants[0].tier: `platinum` is not a tier"
        ),
        "{}",
        r.stderr
    );
    for (name, text) in [
        ("null.json", "null"),
        ("array.json", "[]"),
        ("number.json", "42"),
        ("cut.json", "{\"catalog\": {"),
    ] {
        let p = write(&dir, name, text.as_bytes());
        let r = fails(&["catalog", "check", &p], 1);
        assert!(
            r.stderr.contains(&format!("{name}:1: catalog error")),
            "{}",
            r.stderr
        );
    }

    // Nesting deeper than any catalog: the parsers' limits, not a stack overflow.
    let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let p = write(&dir, "deep.toml", deep.as_bytes());
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains("deep.toml:1: catalog error"),
        "{}",
        r.stderr
    );
    let p = write(
        &dir,
        "deep.json",
        format!(
            "{{\"catalog\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .as_bytes(),
    );
    let r = fails(&["catalog", "check", &p], 1);
    assert!(
        r.stderr.contains("deep.json:1: catalog error"),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------------------------ stdin and stdout

#[test]
fn catalogs_read_from_standard_input_in_either_format() {
    let toml = std::fs::read(catalog("video-studio")).unwrap();
    let r = run_in(&["catalog", "check", "-"], &toml);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("<stdin>: catalog `video-studio`"),
        "{}",
        r.stdout
    );
    let r = run_in(
        &["catalog", "check", "--json", "-"],
        video_json().as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, video_json());
    let r = fails_in(&["catalog", "check", "-"], b"", 1);
    assert!(
        r.stderr
            .contains("<stdin>:1: catalog error: missing field `catalog`"),
        "{}",
        r.stderr
    );
}

#[test]
fn standard_input_named_twice_is_refused_not_read_as_empty() {
    let toml = std::fs::read(catalog("video-studio")).unwrap();
    // Before: the second `-` read nothing and was reported as a catalog without `[catalog]`.
    let r = fails_in(&["catalog", "diff", "-", "-"], &toml, 1);
    assert!(
        r.stderr
            .contains("`-` (standard input) is given more than once"),
        "{}",
        r.stderr
    );
    let events = std::fs::read(data("stripe-lifecycle.jsonl")).unwrap();
    let r = fails_in(
        &[
            "replay",
            "--catalog",
            &catalog("video-studio"),
            "--now",
            NOW,
            "-",
            "-",
        ],
        &events,
        1,
    );
    assert!(r.stderr.contains("more than once"), "{}", r.stderr);
    let r = fails_in(&["replay", "--catalog", "-", "--now", NOW, "-"], &toml, 1);
    assert!(r.stderr.contains("more than once"), "{}", r.stderr);
    // Once is fine, in any position.
    let r = run_in(
        &[
            "replay",
            "--catalog",
            &catalog("video-studio"),
            "--now",
            NOW,
            "-q",
            "-",
        ],
        &events,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run_in(&["catalog", "diff", &catalog("video-studio"), "-"], &toml);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "no change\n"),
        "{}",
        r.stderr
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_result_that_cannot_be_written_is_an_error_not_a_panic() {
    let cat = catalog("video-studio");
    let payload = data("stripe-event.json");
    for args in [
        vec!["catalog", "schema"],
        vec!["catalog", "check", cat.as_str()],
        vec!["catalog", "check", "--json", cat.as_str()],
        vec!["catalog", "types", cat.as_str()],
        vec!["catalog", "diff", cat.as_str(), cat.as_str()],
        vec!["stripe", "fixtures", cat.as_str()],
        vec![
            "quote",
            "--catalog",
            cat.as_str(),
            "--model",
            "standard",
            "--quality",
            "standard",
            "--seconds",
            "7",
        ],
        vec![
            "replay",
            "--catalog",
            cat.as_str(),
            "--now",
            NOW,
            "-q",
            payload.as_str(),
        ],
        vec![
            "sign",
            "stripe",
            "--secret",
            "whsec_x",
            "--payload",
            payload.as_str(),
            "--now",
            "1",
        ],
        vec![
            "sign",
            "razorpay",
            "--secret",
            "rzp_x",
            "--payload",
            payload.as_str(),
        ],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = command(&args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        assert_eq!(out.status.code(), Some(1), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains("error: cannot write to standard output: "),
            "{args:?}:\n{stderr}"
        );
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // `tollgate catalog schema | head -1`: the reader goes away at once.
    let mut child = command(&["catalog", "schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn json_outputs_are_valid_and_the_same_on_every_run() {
    let cat = catalog("video-studio");
    let other = catalog("org-seats");
    for args in [
        vec!["catalog", "schema"],
        vec!["catalog", "check", "--json", cat.as_str()],
        vec!["catalog", "diff", "--json", cat.as_str(), other.as_str()],
        vec!["stripe", "fixtures", other.as_str()],
        vec![
            "quote",
            "--json",
            "--catalog",
            cat.as_str(),
            "--model",
            "pro",
            "--quality",
            "hd",
            "--seconds",
            "61",
        ],
    ] {
        let first = ok(&args).stdout;
        serde_json::from_str::<Value>(&first)
            .unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}):\n{first}"));
        assert_eq!(first, ok(&args).stdout, "{args:?} is not stable");
    }
}

// ------------------------------------------------------------------ quote

#[test]
fn hostile_seconds_are_command_line_errors_that_say_what_is_wrong() {
    let cat = catalog("video-studio");
    for (s, words) in [
        ("-5", "cannot be negative"),
        ("-0", "cannot be negative"),
        ("1.5", "whole number"),
        ("1e3", "whole number"),
        (
            "18446744073709551616",
            "more than the largest number of seconds",
        ),
        ("seven", "not a whole number of seconds"),
        ("", "not a whole number of seconds"),
        (" 7", "not a whole number of seconds"),
    ] {
        let r = fails(
            &[
                "quote",
                "--catalog",
                &cat,
                "--model",
                "standard",
                "--quality",
                "standard",
                "--seconds",
                s,
            ],
            2,
        );
        assert!(
            r.stderr
                .contains(&format!("invalid value '{s}' for '--seconds <S>': ")),
            "{s}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(words), "{s}: {}", r.stderr);
        assert!(!r.stderr.contains("invalid digit"), "{s}: {}", r.stderr);
    }
}

#[test]
fn quotes_outside_the_range_or_the_rates_are_refused_with_the_reason() {
    let cat = catalog("video-studio");
    let q = |model: &str, quality: &str, s: &str| {
        vec![
            "quote".to_string(),
            "--catalog".into(),
            cat.clone(),
            "--model".into(),
            model.into(),
            "--quality".into(),
            quality.into(),
            "--seconds".into(),
            s.into(),
        ]
    };
    for (args, words) in [
        (
            q("standard", "standard", "0"),
            "0 seconds is outside the allowed range 1..=86400 (out_of_range)",
        ),
        (
            q("standard", "standard", "86401"),
            "86401 seconds is outside the allowed range 1..=86400",
        ),
        (
            q("standard", "standard", "18446744073709551615"),
            "outside the allowed range",
        ),
        (
            q("", "standard", "7"),
            "no price for model `` at quality `standard`; priced combinations: ",
        ),
        (q("STANDARD", "standard", "7"), "(unknown_rate)"),
        (q("standard", "studio", "7"), "(unknown_rate)"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = fails(&args, 1);
        assert!(
            r.stderr.contains("cannot quote: ") && r.stderr.contains(words),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = fails(
        &[
            "quote",
            "--catalog",
            &catalog("org-seats"),
            "--model",
            "standard",
            "--quality",
            "standard",
            "--seconds",
            "7",
        ],
        1,
    );
    assert!(
        r.stderr.contains("no usage pricing") && r.stderr.contains("(no_usage_pricing)"),
        "{}",
        r.stderr
    );
    // The top of the range is priced exactly: 86400 x 0.015 x 1.2 = 1555.20 USD.
    let r = ok(&[
        "quote",
        "--json",
        "--catalog",
        &cat,
        "--model",
        "standard",
        "--quality",
        "standard",
        "--seconds",
        "86400",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["cost"].as_i64(), v["overage_cost"].as_i64()),
        (Some(155_520), Some(233_280)),
        "{v}"
    );
}

#[test]
fn quotes_in_other_currencies_round_in_their_own_minor_units() {
    let dir = tmp("currencies");
    let src = std::fs::read_to_string(catalog("video-studio")).unwrap();
    // 7 x 0.015 x 1.2 = 0.126 of the major unit, rounded up once in the currency's minor units.
    for (currency, digits, cost, overage) in [
        ("jpy", 1, 1, 1),
        ("bhd", 1000, 126, 189),
        ("eur", 100, 13, 19),
    ] {
        let p = write(
            &dir,
            &format!("{currency}.toml"),
            src.replace("currency = \"usd\"", &format!("currency = \"{currency}\""))
                .as_bytes(),
        );
        let r = ok(&[
            "quote",
            "--json",
            "--catalog",
            &p,
            "--model",
            "standard",
            "--quality",
            "standard",
            "--seconds",
            "7",
        ]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["currency"], currency, "{v}");
        assert_eq!(
            (v["cost"].as_i64(), v["overage_cost"].as_i64()),
            (Some(cost), Some(overage)),
            "{v}"
        );
        assert!(
            v["rounding"]
                .as_str()
                .unwrap()
                .contains(&format!("(1/{digits} of the major unit)")),
            "{v}"
        );
    }
    // A rate whose dearest request cannot be priced is refused when the catalog is read.
    let p = write(
        &dir,
        "dear.toml",
        src.replace(
            "base_price_per_second = \"0.015\"",
            "base_price_per_second = \"9999999999.999999999\"",
        )
        .as_bytes(),
    );
    let r = fails(
        &[
            "quote",
            "--catalog",
            &p,
            "--model",
            "standard",
            "--quality",
            "standard",
            "--seconds",
            "1",
        ],
        1,
    );
    assert!(
        r.stderr.contains("dear.toml:") && r.stderr.contains("catalog error at usage"),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------------------------ replay

#[test]
fn malformed_event_files_name_the_file_and_the_place() {
    let dir = tmp("events");
    let cat = catalog("video-studio");
    let cases: [(&str, &[u8], &str); 11] = [
        ("garbage.json", b"{\"object\": \"event\"} xyz", "garbage.json:1:21: not JSON"),
        ("cut.json", b"[{\"object\": \"event\"},", "cut.json:1:21: not JSON"),
        ("numbers.json", b"[1, 2]", "numbers.json:1 (array index 0): not a JSON object"),
        ("string.json", b"\"evt_1\"", "string.json:1: not a JSON object"),
        ("nested.json", b"[[{\"object\": \"event\"}]]", "nested.json:1 (array index 0): not a JSON object"),
        ("nobody.json", b"{}", "nobody.json:1: an object that is neither a Stripe event"),
        ("noid.json", b"{\"object\": \"event\"}", "noid.json:1: stripe event: missing field `id`"),
        (
            "early.json",
            b"{\"object\":\"event\",\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"created\":-99999999999999,\"data\":{\"object\":{}}}",
            "early.json:1: stripe event evt_1 (invoice.paid): field `created`",
        ),
        (
            "late.json",
            b"{\"object\":\"event\",\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"created\":99999999999999999,\"data\":{\"object\":{}}}",
            "late.json:1: stripe event evt_1 (invoice.paid): field `created`",
        ),
        ("latin1.json", b"{\"object\": \"event\", \"id\": \"\xe9\"}", "latin1.json is not UTF-8 text"),
        ("fact.json", b"{\"key\": \"k\", \"type\": \"usage\"}", "fact.json:1: fact k: "),
    ];
    for (name, body, words) in cases {
        let p = write(&dir, name, body);
        let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &p], 1);
        assert!(r.stderr.contains(words), "{name}: {}", r.stderr);
    }
    // A directory, a missing file: named.
    let d = dir.display().to_string();
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &d], 1);
    assert!(
        r.stderr.contains(&format!("cannot read {d}")),
        "{}",
        r.stderr
    );
    // Empty and blank files hold no events: a warning, and the empty state.
    for name in ["empty.jsonl", "blank.jsonl"] {
        let p = write(
            &dir,
            name,
            if name == "empty.jsonl" {
                b""
            } else {
                b" \n\n\t"
            },
        );
        let r = ok(&["replay", "--catalog", &cat, "--now", NOW, &p]);
        assert!(
            r.stderr.contains(&format!("warning: {p}: no events")),
            "{}",
            r.stderr
        );
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["facts"]["unique"], 0, "{v}");
    }
    // --skip-invalid goes past every one of them.
    let good = std::fs::read_to_string(data("stripe-lifecycle.jsonl")).unwrap();
    let mixed = format!("{good}{{}}\n[1]\n{{\"object\": \"event\"}}\n");
    let p = write(&dir, "mixed.jsonl", mixed.as_bytes());
    let r = ok(&[
        "replay",
        "--catalog",
        &cat,
        "--now",
        NOW,
        "--skip-invalid",
        &p,
    ]);
    assert!(r.stderr.contains("3 invalid skipped"), "{}", r.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(&r.stdout).unwrap()["subjects"]["user:u_alice"]["grants"][0]
            ["tier"],
        "pro"
    );
}

#[test]
fn an_event_file_with_a_byte_order_mark_replays_as_without_it() {
    let dir = tmp("bom-events");
    let cat = catalog("video-studio");
    let plain = ok(&[
        "replay",
        "--catalog",
        &cat,
        "--now",
        NOW,
        "-q",
        "--compact",
        &data("stripe-lifecycle.jsonl"),
    ])
    .stdout;
    let events = std::fs::read(data("stripe-lifecycle.jsonl")).unwrap();
    // Before: `not JSON ... expected value at line 1 column 1`, with nothing to see there.
    let p = write(
        &dir,
        "bom.jsonl",
        &[b"\xef\xbb\xbf".as_slice(), &events].concat(),
    );
    assert_eq!(
        ok(&[
            "replay",
            "--catalog",
            &cat,
            "--now",
            NOW,
            "-q",
            "--compact",
            &p
        ])
        .stdout,
        plain
    );
    let r = run_in(
        &[
            "replay",
            "--catalog",
            &cat,
            "--now",
            NOW,
            "-q",
            "--compact",
            "-",
        ],
        &[b"\xef\xbb\xbf".as_slice(), &events].concat(),
    );
    assert_eq!((r.code, r.stdout), (0, plain), "{}", r.stderr);
    // Line numbers still count from the first line.
    let broken = std::fs::read(data("stripe-broken.jsonl")).unwrap();
    let p = write(
        &dir,
        "bom-broken.jsonl",
        &[b"\xef\xbb\xbf".as_slice(), &broken].concat(),
    );
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &p], 1);
    assert!(
        r.stderr
            .contains("bom-broken.jsonl:2: stripe event evt_cli_2"),
        "{}",
        r.stderr
    );
    // The same for `catalog diff --facts`.
    let p = write(
        &dir,
        "bom-facts.jsonl",
        &[b"\xef\xbb\xbf".as_slice(), &events].concat(),
    );
    ok(&["catalog", "diff", &cat, &cat, "--facts", &p, "--now", NOW]);
    // UTF-16 events are told as such.
    let utf16: Vec<u8> = "\u{feff}{}"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let p = write(&dir, "utf16.json", &utf16);
    let r = fails(&["replay", "--catalog", &cat, "--now", NOW, &p], 1);
    assert!(
        r.stderr.contains("utf16.json is UTF-16 text"),
        "{}",
        r.stderr
    );
}

#[test]
fn replay_command_line_mistakes_exit_2() {
    let cat = catalog("video-studio");
    let ev = data("stripe-event.json");
    for (args, words) in [
        (vec!["replay", ev.as_str()], "--catalog <FILE>"),
        (vec!["replay", "--catalog", cat.as_str()], "<EVENTS>..."),
        (
            vec![
                "replay",
                "--catalog",
                cat.as_str(),
                "--now",
                "2026-02-30T00:00:00Z",
                ev.as_str(),
            ],
            "--now <T>",
        ),
        (
            vec![
                "replay",
                "--catalog",
                cat.as_str(),
                "--until",
                "10000-01-01T00:00:00Z",
                ev.as_str(),
            ],
            "--until <T>",
        ),
        (
            vec![
                "replay",
                "--catalog",
                cat.as_str(),
                "--now",
                "253402300800",
                ev.as_str(),
            ],
            "outside the years",
        ),
        (
            vec!["replay", "--catalog", cat.as_str(), "--compat", ev.as_str()],
            "--compact",
        ),
        (
            vec![
                "replay",
                "--catalog",
                cat.as_str(),
                "--catalog",
                cat.as_str(),
                ev.as_str(),
            ],
            "cannot be used multiple times",
        ),
    ] {
        let r = fails(&args, 2);
        assert!(r.stderr.contains(words), "{args:?}: {}", r.stderr);
    }
}

// ------------------------------------------------------------------ diff

#[test]
fn diff_of_a_catalog_with_itself_is_no_change_in_every_form() {
    let dir = tmp("diff-same");
    let cat = catalog("video-studio");
    assert_eq!(ok(&["catalog", "diff", &cat, &cat]).stdout, "no change\n");
    // The same catalog in TOML and in JSON.
    let json = write(&dir, "video.json", video_json().as_bytes());
    assert_eq!(ok(&["catalog", "diff", &cat, &json]).stdout, "no change\n");
    let v: Value =
        serde_json::from_str(&ok(&["catalog", "diff", "--json", &json, &cat]).stdout).unwrap();
    assert_eq!(v, serde_json::json!({"changes": [], "subjects": null}));
    // With facts: nobody is affected.
    let r = ok(&[
        "catalog",
        "diff",
        "--json",
        &cat,
        &json,
        "--facts",
        &data("stripe-lifecycle.jsonl"),
        "--now",
        NOW,
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"changes": [], "subjects": []}));
}

#[test]
fn diff_of_catalogs_that_differ_everywhere_lists_every_change_as_valid_json() {
    let a = catalog("video-studio");
    let b = catalog("org-seats");
    let facts = data("stripe-lifecycle.jsonl");
    let args = [
        "catalog",
        "diff",
        "--json",
        a.as_str(),
        b.as_str(),
        "--facts",
        facts.as_str(),
        "--now",
        NOW,
    ];
    let r = ok(&args);
    assert_eq!(r.stdout, ok(&args).stdout, "the order is stable");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    for section in [
        "catalog",
        "product",
        "offer",
        "credit_pool",
        "usage",
        "capability",
    ] {
        assert!(
            changes.iter().any(|c| c["section"] == section),
            "no {section} change in {v}"
        );
    }
    for c in changes {
        assert!(c["id"].is_string() && c["kind"].is_string(), "{c}");
    }
    // The subject loses what video-studio gave it.
    assert!(
        v["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["subject"] == "user:u_alice"),
        "{v}"
    );
    // Text: one line per change, the reverse direction too.
    let text = ok(&["catalog", "diff", &b, &a]).stdout;
    assert!(
        text.lines().any(|l| l == "product video: added")
            && text.lines().any(|l| l == "product org: removed"),
        "{text}"
    );
}

#[test]
fn diff_refuses_missing_or_malformed_facts_and_bad_flags() {
    let dir = tmp("diff-facts");
    let cat = catalog("video-studio");
    let missing = dir.join("nope.jsonl").display().to_string();
    let r = fails(&["catalog", "diff", &cat, &cat, "--facts", &missing], 1);
    assert!(
        r.stderr.contains(&format!("cannot read {missing}")),
        "{}",
        r.stderr
    );
    let r = fails(
        &[
            "catalog",
            "diff",
            &cat,
            &cat,
            "--facts",
            &data("stripe-broken.jsonl"),
        ],
        1,
    );
    assert!(
        r.stderr
            .contains("stripe-broken.jsonl:2: stripe event evt_cli_2"),
        "{}",
        r.stderr
    );
    let p = write(&dir, "garbage.jsonl", b"not json\n");
    let r = fails(&["catalog", "diff", &cat, &cat, "--facts", &p], 1);
    assert!(
        r.stderr.contains("garbage.jsonl:1:") && r.stderr.contains("not JSON"),
        "{}",
        r.stderr
    );
    // The second catalog broken: named.
    let bad = write(&dir, "bad.toml", b"[catalog]\n");
    let r = fails(&["catalog", "diff", &cat, &bad], 1);
    assert!(r.stderr.contains("bad.toml:"), "{}", r.stderr);
    // Command-line mistakes.
    fails(&["catalog", "diff", &cat], 2);
    fails(&["catalog", "diff", &cat, &cat, &cat], 2);
    let r = fails(
        &[
            "catalog",
            "diff",
            &cat,
            &cat,
            "--facts",
            &p,
            "--url",
            "http://127.0.0.1:9",
        ],
        2,
    );
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

// ------------------------------------------------------------------ sign and verify

#[test]
fn signing_times_before_1970_are_refused_and_every_other_signature_verifies() {
    let payload = data("stripe-event.json");
    for now in [
        "0",
        "1",
        "1970-01-01T00:00:00Z",
        "2026-03-01T00:00:00+05:30",
        "9999-12-31T23:59:59Z",
    ] {
        let header = ok(&[
            "sign",
            "stripe",
            "--secret",
            "whsec_x",
            "--payload",
            &payload,
            "--now",
            now,
        ])
        .stdout;
        let header = header.trim_end();
        ok(&[
            "verify",
            "stripe",
            "--secret",
            "whsec_x",
            "--header",
            header,
            "--payload",
            &payload,
            "--now",
            now,
        ]);
    }
    // Before: `t=-62167219200,...`, which `verify stripe` refuses as malformed.
    for now in ["0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "--now=-1"] {
        let now_arg = if now.starts_with("--") {
            now.to_string()
        } else {
            format!("--now={now}")
        };
        let r = fails(
            &[
                "sign",
                "stripe",
                "--secret",
                "whsec_x",
                "--payload",
                &payload,
                &now_arg,
            ],
            1,
        );
        assert!(
            r.stderr.contains("cannot sign at ") && r.stderr.contains("1970-01-01T00:00:00Z on"),
            "{}",
            r.stderr
        );
    }
    for (now, words) in [
        ("253402300800", "outside the years 0000 to 9999"),
        ("99999999999999999999999", "not a valid Unix timestamp"),
        ("2026-03-01", "RFC 3339"),
        ("1772323200.5", "RFC 3339"),
        ("", "RFC 3339"),
    ] {
        let r = fails(
            &[
                "sign",
                "stripe",
                "--secret",
                "whsec_x",
                "--payload",
                &payload,
                "--now",
                now,
            ],
            2,
        );
        assert!(
            r.stderr.contains("--now <T>") && r.stderr.contains(words),
            "{now}: {}",
            r.stderr
        );
    }
}

#[test]
fn odd_secrets_are_refused_alike_by_sign_and_verify() {
    let payload = data("stripe-event.json");
    for (secret, words) in [
        ("", "secret #1 is empty"),
        ("whsec_a,", "secret #2 is empty"),
        (",", "is empty"),
        (" ", "contains whitespace"),
        ("whsec_a b", "contains whitespace"),
    ] {
        let r = fails(
            &[
                "sign",
                "stripe",
                "--secret",
                secret,
                "--payload",
                &payload,
                "--now",
                "1",
            ],
            1,
        );
        assert!(r.stderr.contains(words), "{secret:?}: {}", r.stderr);
        let r = fails(
            &[
                "verify",
                "stripe",
                "--secret",
                secret,
                "--header",
                "t=1,v1=00",
                "--payload",
                &payload,
                "--now",
                "1",
            ],
            1,
        );
        assert!(r.stderr.contains(words), "{secret:?}: {}", r.stderr);
    }
    // Non-ASCII secrets sign and verify.
    let header = ok(&[
        "sign",
        "stripe",
        "--secret",
        "whsec_é✓",
        "--payload",
        &payload,
        "--now",
        "1",
    ])
    .stdout;
    ok(&[
        "verify",
        "stripe",
        "--secret",
        "whsec_é✓",
        "--header",
        header.trim_end(),
        "--payload",
        &payload,
        "--now",
        "1",
    ]);
    // Razorpay: `verify` splits secrets on commas, so `sign` cannot take one with a comma
    // (before: it signed with `a,b` as one secret, and verify with the same flag refused it).
    let r = fails(
        &["sign", "razorpay", "--secret", "a,b", "--payload", &payload],
        1,
    );
    assert!(r.stderr.contains("contains a comma"), "{}", r.stderr);
    let r = fails(
        &["sign", "razorpay", "--secret", "", "--payload", &payload],
        1,
    );
    assert!(r.stderr.contains("is empty"), "{}", r.stderr);
    let sig = ok(&[
        "sign",
        "razorpay",
        "--secret",
        "rzp_é",
        "--payload",
        &payload,
    ])
    .stdout;
    ok(&[
        "verify",
        "razorpay",
        "--secret",
        "other,rzp_é",
        "--signature",
        sig.trim_end(),
        "--payload",
        &payload,
    ]);
    // The payload is read byte for byte, even when it is not text.
    let dir = tmp("sign-binary");
    let bin = write(&dir, "body.bin", &[0, 0xff, 0xfe, b'\n', 0x80]);
    let sig = ok(&["sign", "razorpay", "--secret", "k", "--payload", &bin]).stdout;
    ok(&[
        "verify",
        "razorpay",
        "--secret",
        "k",
        "--signature",
        sig.trim_end(),
        "--payload",
        &bin,
    ]);
    let r = fails(
        &[
            "verify",
            "razorpay",
            "--secret",
            "k",
            "--signature",
            sig.trim_end(),
            "--payload",
            &payload,
        ],
        1,
    );
    assert!(r.stderr.contains("(signature_mismatch)"), "{}", r.stderr);
    // Empty, garbage and oversized headers are refusals, not crashes.
    for header in [
        "",
        "Stripe-Signature:",
        "garbage",
        "t=,v1=",
        "t=99999999999999999999999,v1=00",
        "v1=00",
    ] {
        let r = fails(
            &[
                "verify",
                "stripe",
                "--secret",
                "whsec_x",
                "--header",
                header,
                "--payload",
                &payload,
                "--now",
                "1",
            ],
            1,
        );
        assert!(
            r.stderr.contains("invalid Stripe signature: "),
            "{header:?}: {}",
            r.stderr
        );
    }
    let r = fails(
        &[
            "verify",
            "stripe",
            "--secret",
            "s",
            "--header",
            "h",
            "--payload",
            &payload,
            "--tolerance",
            "-1",
        ],
        2,
    );
    assert!(r.stderr.contains("-1"), "{}", r.stderr);
    let missing = dir.join("nope").display().to_string();
    let r = fails(
        &["sign", "razorpay", "--secret", "k", "--payload", &missing],
        1,
    );
    assert!(
        r.stderr.contains(&format!("cannot read {missing}")),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------------------------ init

#[test]
fn init_never_replaces_a_users_files_unless_asked() {
    let dir = tmp("init-existing");
    let file = dir.join("catalog.toml");
    let schema = dir.join("catalog.schema.json");
    std::fs::write(&file, "# mine\n").unwrap();
    let r = fails(&["init", &file.display().to_string()], 1);
    assert!(r.stderr.contains("exists; pass --force"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
    assert!(!schema.exists(), "nothing written when refused");

    // The user's own catalog.schema.json beside a new catalog: refused, and left alone.
    std::fs::write(&schema, "{\"mine\": true}").unwrap();
    let other = dir.join("other.toml").display().to_string();
    let r = fails(&["init", &other], 1);
    assert!(
        r.stderr
            .contains("catalog.schema.json exists and is not the schema init writes"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("name another file"),
        "naming another file would not help: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&schema).unwrap(),
        "{\"mine\": true}"
    );
    assert!(!dir.join("other.toml").exists());
    // Asked: replaced.
    ok(&["init", &other, "--force"]);
    assert_eq!(
        std::fs::read_to_string(&schema).unwrap(),
        ok(&["catalog", "schema"]).stdout
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# mine\n",
        "--force replaces only what it writes"
    );
}

#[test]
fn a_second_catalog_beside_the_first_shares_its_schema() {
    let dir = tmp("init-second");
    ok(&["init", &dir.join("a.toml").display().to_string()]);
    // Before: refused, because a.toml's init wrote catalog.schema.json.
    let b = dir.join("b.toml").display().to_string();
    let r = ok(&["init", &b]);
    assert!(r.stdout.starts_with(&format!("wrote {b}")), "{}", r.stdout);
    ok(&["catalog", "check", &b]);
}

#[test]
fn init_into_a_directory_writes_the_default_name_inside_it() {
    let dir = tmp("init-dir");
    let sub = dir.join("app");
    std::fs::create_dir(&sub).unwrap();
    // Before: `app exists; pass --force to replace it`, and --force failed on the directory.
    let r = ok(&["init", &sub.display().to_string()]);
    assert!(r.stdout.contains("catalog.toml"), "{}", r.stdout);
    ok(&[
        "catalog",
        "check",
        &sub.join("catalog.toml").display().to_string(),
    ]);
    assert!(sub.join("catalog.schema.json").exists());
    // A second time: the file inside exists now.
    let r = fails(&["init", &sub.display().to_string()], 1);
    assert!(r.stderr.contains("catalog.toml exists"), "{}", r.stderr);
}

#[test]
fn init_refuses_dash_and_missing_directories_clearly() {
    let dir = tmp("init-dash");
    // Before: wrote a file named `-` and reported `wrote <stdin>`.
    let r = Command::new(BIN)
        .args(["init", "-"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("name the catalog file, not `-`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );

    let nested = dir
        .join("no")
        .join("such")
        .join("catalog.toml")
        .display()
        .to_string();
    let r = fails(&["init", &nested], 1);
    assert!(
        r.stderr.contains(&format!("cannot write {nested}")),
        "{}",
        r.stderr
    );
    let r = fails(&["init", "a.toml", "b.toml"], 2);
    assert!(r.stderr.contains("unexpected argument"), "{}", r.stderr);
}

// ------------------------------------------------------------------ no input panics

#[test]
fn no_command_line_panics() {
    let dir = tmp("no-panics");
    let cat = catalog("video-studio");
    let empty = write(&dir, "empty", b"");
    let bin = write(&dir, "bin", &[0xff; 64]);
    let d = dir.display().to_string();
    let inputs = [
        cat.as_str(),
        empty.as_str(),
        bin.as_str(),
        d.as_str(),
        "-",
        "",
        "--",
        "-x",
        "\u{1F600}",
    ];
    for x in inputs {
        for args in [
            vec!["catalog", "check", x],
            vec!["catalog", "check", "--json", x],
            vec!["catalog", "types", x],
            vec!["catalog", "types", "--no-register", x],
            vec!["catalog", "diff", x, cat.as_str()],
            vec!["catalog", "diff", cat.as_str(), cat.as_str(), "--facts", x],
            vec!["stripe", "fixtures", x],
            vec![
                "quote",
                "--catalog",
                x,
                "--model",
                x,
                "--quality",
                x,
                "--seconds",
                "7",
            ],
            vec!["replay", "--catalog", cat.as_str(), "--now", NOW, x],
            vec!["replay", "--catalog", x, "--now", NOW, empty.as_str()],
            vec![
                "replay",
                "--catalog",
                cat.as_str(),
                "--now",
                x,
                empty.as_str(),
            ],
            vec![
                "sign",
                "stripe",
                "--secret",
                "s",
                "--payload",
                empty.as_str(),
                "--now",
                x,
            ],
            vec![
                "sign",
                "razorpay",
                "--secret",
                x,
                "--payload",
                empty.as_str(),
            ],
            vec![
                "verify",
                "stripe",
                "--secret",
                "s",
                "--header",
                x,
                "--payload",
                x,
                "--now",
                "1",
            ],
            vec![
                "verify",
                "razorpay",
                "--secret",
                "s",
                "--signature",
                x,
                "--payload",
                empty.as_str(),
            ],
            vec!["catalog", "activate", x],
            vec!["catalog", x],
            vec![x],
        ] {
            let r = run_in(&args, b"\xef\xbb\xbf{\"catalog\": 1}");
            assert!(
                matches!(r.code, 0..=2),
                "{args:?}: exit {}\n{}",
                r.code,
                r.stderr
            );
            if r.code != 0 {
                assert!(
                    !r.stderr.is_empty(),
                    "{args:?}: a failure without a message"
                );
            }
        }
    }
}

/// A warning told to a standard error nobody reads any more (`2>&1 | head` once the reader
/// has gone) is dropped: the command ends as it would have, not with a panic's 101.
#[test]
fn warnings_to_a_closed_standard_error_change_nothing() {
    let dir = tmp("closed_stderr");
    let cat = catalog("video-studio");
    let empty = write(&dir, "empty.jsonl", b"");
    let mut child = command(&["replay", "--catalog", &cat, "--now", NOW, &empty, &empty])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stderr.take());
    let out = child.wait_with_output().expect("it ends");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).expect("the state, in JSON");
    assert_eq!(v["facts"]["unique"], 0, "{v}");
}
