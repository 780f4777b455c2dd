//! The `tollgate` CLI's catalog commands on odd input files: an amount past what a catalog
//! may name is refused with exit 1 and the field (no panic, no call to the store), and a
//! JSON catalog saved with a byte order mark checks like its TOML twin.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn catalog(name: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    repo.join("catalogs").join(format!("{name}.toml")).display().to_string()
}

/// A scratch file under the target directory, unique per test.
fn scratch(name: &str, contents: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tollgate-catalog-files");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.display().to_string()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("TOLLGATE_SUPABASE_URL")
        .env_remove("TOLLGATE_SERVICE_KEY")
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A yearly price near `i64::MAX` minor units: `catalog check` and `catalog push` refuse the
/// file locally (exit 1, the field and line), and `push` calls no store.
#[test]
fn a_catalog_with_an_overflowing_price_is_refused_with_exit_1_not_a_panic() {
    let src = std::fs::read_to_string(catalog("video-studio")).unwrap();
    let huge = format!(
        "{src}\n[[offers]]\nkey = \"ZZ_HUGE_YEARLY\"\nlabel = \"Huge\"\n\
         price = {{ amount = 9223372036854775807, currency = \"usd\", interval = \"year\" }}\n\
         grants = [{{ product = \"video\", tier = \"pro\" }}]\n"
    );
    let offers = huge.matches("[[offers]]").count();
    let path = scratch("huge-yearly.toml", huge.as_bytes());
    let field = format!("offers[{}].price.amount", offers - 1);

    let check = run(&["catalog", "check", &path]);
    let push = run(&["catalog", "push", &path, "--url", "http://127.0.0.1:9", "--service-key", "sb_secret_x"]);
    let mut problems = Vec::new();
    for (what, r) in [("catalog check", &check), ("catalog push", &push)] {
        if r.code != Some(1) || !r.stderr.contains(&field) || r.stderr.contains("panicked") {
            problems.push(format!(
                "{what}: exit {:?}, want 1 with the error at {field}\nstdout: {}\nstderr: {}",
                r.code,
                r.stdout.trim(),
                r.stderr.lines().take(3).collect::<Vec<_>>().join("\n")
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

/// A JSON catalog that starts with a UTF-8 byte order mark (what some editors and
/// PowerShell write) checks as it would without one, like its TOML twin.
#[test]
fn a_json_catalog_with_a_byte_order_mark_checks_like_its_toml_twin() {
    let toml_src = std::fs::read_to_string(catalog("video-studio")).unwrap();
    let toml_bom = scratch("bom.toml", format!("\u{feff}{toml_src}").as_bytes());
    let r = run(&["catalog", "check", &toml_bom]);
    assert_eq!(r.code, Some(0), "the TOML twin with a BOM checks ok: {}", r.stderr);

    let json = run(&["catalog", "check", &catalog("video-studio"), "--json"]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let json_bom = scratch("bom.json", format!("\u{feff}{}", json.stdout).as_bytes());
    let r = run(&["catalog", "check", &json_bom]);
    assert_eq!(r.code, Some(0), "a valid JSON catalog with a BOM was refused:\n{}", r.stderr);
}
