//! What a user's own catalog may not say, and what comparing and grandfathering keep: a
//! catalog that would misbehave later (an amount that overflows, a bundle nobody can choose,
//! a feature id naming two things, a limit id that is another limit's scoped counter, a
//! currency that is not ISO 4217) is refused with its field; `catalog_diff::impact` sees a
//! limit's window and folds as a host does; a grant held under older terms keeps its
//! limit's window.

#[path = "events/support.rs"]
mod support;

use std::collections::BTreeMap;

use support::*;
use tollgate::catalog_diff::{diff, impact};
use tollgate::{grandfather, meter, Catalog, Entitlements};

/// A small valid catalog that the cases below edit.
const BASE: &str = r#"[catalog]
id = "rules"
name = "Rules"
version = "1"
currency = "usd"

[[products]]
id = "video"
tiers = ["free", "basic", "pro"]
default_tier = "free"

[[products]]
id = "plan"
tiers = ["free", "pro"]
default_tier = "free"

[[credit_pools]]
id = "seconds"
unit = "second"

[[offers]]
key = "VIDEO_BASIC"
label = "Video Basic"
price = { amount = 1900, currency = "usd", interval = "month" }
grants = [{ product = "video", tier = "basic" }]

[[offers]]
key = "VIDEO_PRO"
label = "Video Pro"
price = { amount = 4900, currency = "usd", interval = "month" }
grants = [{ product = "video", tier = "pro" }]
"#;

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

/// Runs `f`, turning a panic into `Err(panic message)`.
fn no_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    std::panic::catch_unwind(f).map_err(|p| {
        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
    })
}

/// A yearly price near `i64::MAX` is refused at its field (ranking offers computes a
/// monthly equivalent, which would overflow), and loading never panics.
#[test]
fn a_yearly_price_near_i64_max_is_refused_not_a_panic_at_load() {
    let src = with(
        r#"
[[offers]]
key = "VIDEO_PRO_YEARLY"
label = "Video Pro yearly"
price = { amount = 9223372036854775807, currency = "usd", interval = "year" }
grants = [{ product = "video", tier = "pro" }]
"#,
    );
    let got = no_panic(move || Catalog::parse(&src).map(|_| ()));
    match got {
        Err(panic) => panic!("Catalog::parse panicked on a catalog with a huge yearly price: {panic}"),
        Ok(Ok(())) => panic!("a yearly price of i64::MAX minor units was accepted"),
        Ok(Err(e)) => assert_eq!(e.path, "offers[2].price.amount", "{e}"),
    }
}

/// A bundle nobody could ever buy is refused: `from` listing a product twice, or `choose`
/// grants asking for more distinct products than they can be chosen from together
/// (checkout and the providers' parsers want that many distinct products).
#[test]
fn a_bundle_that_can_never_be_chosen_is_refused() {
    let cases = [
        (
            "from repeats a product",
            r#"grants = [{ choose = 2, from = ["video", "video"], tier = "pro" }]"#,
        ),
        (
            "two choose grants from one product",
            r#"grants = [{ choose = 1, from = ["video"], tier = "pro" }, { choose = 1, from = ["video"], tier = "basic" }]"#,
        ),
    ];
    let mut accepted = Vec::new();
    for (what, grants) in cases {
        let src = with(&format!(
            "\n[[offers]]\nkey = \"BUNDLE\"\nlabel = \"Bundle\"\nprice = {{ amount = 5900, currency = \"usd\", interval = \"month\" }}\n{grants}\n"
        ));
        match Catalog::parse(&src) {
            Ok(_) => accepted.push(what),
            Err(e) => assert!(e.path.starts_with("offers[2].grants"), "{what}: {e}"),
        }
    }
    assert!(accepted.is_empty(), "unsellable bundles accepted: {accepted:?}");
}

/// `from` belongs to a bundle (`choose = N`): on an `all_products = true` grant, which
/// gives every product with the tier, it is refused rather than silently ignored.
#[test]
fn from_on_an_all_products_grant_is_not_silently_ignored() {
    let src = with(
        r#"
[[offers]]
key = "VIDEO_ALL_PRO"
label = "Video, all pro"
price = { amount = 2900, currency = "usd", interval = "month" }
grants = [{ all_products = true, from = ["video"], tier = "pro" }]
"#,
    );
    match Catalog::parse(&src) {
        Err(e) => assert!(e.path.starts_with("offers[2].grants[0]"), "{e}"),
        Ok(c) => {
            let o = c.offer("VIDEO_ALL_PRO").unwrap();
            assert_eq!(
                c.offer_tier_for(o, "plan"),
                None,
                "`from = [\"video\"]` was ignored: the offer also grants plan:pro ({:?})",
                c.offer_gives(o, &[])
            );
        }
    }
}

/// A feature id (`/v1/check`, `track`, the package's `checkFeature`) names one capability,
/// limit or credit pool: the same id in two sections is refused (one would hide the other:
/// a capability `export` would answer for the limit `export`, never enforcing it).
#[test]
fn a_feature_id_shared_by_a_capability_a_limit_or_a_pool_is_refused() {
    let cap_and_limit = with(
        r#"
[[capabilities]]
id = "export"
product = "video"
min_tier = "basic"

[[limits]]
id = "export"
product = "video"
period = "day"
values = { free = 0, basic = 3, pro = 100 }
"#,
    );
    // Show the damage: a Basic subscriber who has exported 50 times today is still allowed.
    if let Ok(c) = Catalog::parse(&cap_and_limit) {
        let g = tollgate::Grant {
            id: "g1".into(),
            product: "video".into(),
            tier: "basic".into(),
            source: tollgate::Source::Stripe,
            status: tollgate::Status::Active,
            valid_from: t(T0),
            valid_to: Some(t(P1E)),
            past_due_since: None,
            offer: Some("VIDEO_BASIC".into()),
            source_ref: Some("stripe:sub_1".into()),
            catalog_version: None,
            renewal_version: None,
            period_start: None,
            paused_since: None,
        };
        let ents = Entitlements::new(vec![g]);
        let chk = meter::check(&c, &ents, "export", 1, 50, t(T0 + DAY)).unwrap();
        assert!(!chk.allowed, "the limit `export` (3 a day) is shadowed by the capability `export`: 51st export allowed");
    }
    let limit_and_pool = with(
        r#"
[[limits]]
id = "seconds"
product = "video"
values = { free = 0, basic = 60, pro = 600 }
"#,
    );
    let mut accepted = Vec::new();
    if Catalog::parse(&cap_and_limit).is_ok() {
        accepted.push("capability `export` and limit `export`");
    }
    if Catalog::parse(&limit_and_pool).is_ok() {
        accepted.push("limit `seconds` and credit pool `seconds`");
    }
    assert!(accepted.is_empty(), "ambiguous feature ids accepted: {accepted:?}");
}

/// A limit id has no `:`, the separator of a scoped counter (`<limit>:<scope>`), so no
/// two limits ever count in one counter.
#[test]
fn a_limit_id_cannot_collide_with_another_limits_scoped_counter() {
    let src = with(
        r#"
[[limits]]
id = "students"
product = "video"
values = { free = 5, basic = 50, pro = 500 }

[[limits]]
id = "students:c1"
product = "video"
values = { free = 1, basic = 2, pro = 3 }
"#,
    );
    let Ok(c) = Catalog::parse(&src) else { return };
    let scoped = meter::counter_of(&c, "students", Some("c1")).unwrap();
    let other = meter::counter_of(&c, "students:c1", None).unwrap();
    assert_ne!(scoped, other, "two different limits count in the same counter");
}

/// A currency that is not ISO 4217 (`uds` for `usd`) is refused at its field, not first by
/// the provider at checkout.
#[test]
fn a_currency_that_is_not_iso_4217_is_refused() {
    let src = BASE.replacen(
        r#"price = { amount = 1900, currency = "usd""#,
        r#"price = { amount = 1900, currency = "uds""#,
        1,
    );
    assert!(src.contains("\"uds\""));
    match Catalog::parse(&src) {
        Ok(_) => panic!("currency `uds` (a typo of `usd`) was accepted as ISO 4217"),
        Err(e) => assert_eq!(e.path, "offers[0].price.currency", "{e}"),
    }
}

/// The events' test catalog with a daily export limit (`period` given), Basic's offer
/// following `migration` when given.
fn studio_with_limit(period: &str, migration: Option<&str>) -> Catalog {
    let mut src = format!(
        "{}\n[[limits]]\nid = \"exports\"\nproduct = \"studio\"\nperiod = \"{period}\"\nvalues = {{ free = 0, basic = 10, pro = 100 }}\n",
        event("catalog.toml")
    );
    if let Some(m) = migration {
        let basic = "key = \"STUDIO_BASIC_MONTHLY\"\n";
        assert!(src.contains(basic));
        src = src.replacen(basic, &format!("{basic}migration = \"{m}\"\n"), 1);
    }
    Catalog::parse(&src).expect("valid")
}

/// `catalog_diff::impact` compares a limit's window as well as its value: 10 exports a day
/// becoming 10 a month (`migration = "now"`) is reported for the subscriber.
#[test]
fn impact_reports_a_limit_whose_window_changes() {
    let old = studio_with_limit("day", None);
    let new = studio_with_limit("month", Some("now"));
    assert!(diff(&old, &new).iter().any(|c| c.section == "limit" && c.id == "exports"));
    let fs = facts(&old, FIRST_PERIOD);
    let at = P1E - DAY;
    // The subscriber holds Basic: 10 exports a day under the old catalog.
    let st = fold(&old, &fs, at);
    let ents = st.entitlements_for(USER);
    assert!(decide_limit_is(&old, &ents, at, 10));
    let out = impact(&old, &new, &fs, t(at));
    let mine = out.iter().find(|s| s.subject == USER);
    assert!(
        mine.is_some_and(|s| s.changes.iter().any(|c| c.section == "limit" && c.id == "exports")),
        "10 exports a day became 10 a month for {USER}, but impact reports {out:#?}"
    );
}

fn decide_limit_is(c: &Catalog, ents: &Entitlements, at: i64, n: u64) -> bool {
    tollgate::decide::limit(c, ents, "exports", t(at)).unwrap().limit == tollgate::LimitValue::Limited(n)
}

/// A grant held under an older version's terms (`keep`) is counted in that version's limit
/// window too: 10 exports a day bought stays 10 a day after a version counting monthly.
#[test]
fn keep_holds_a_limits_window_as_well_as_its_value() {
    let v1 = studio_with_limit("day", None).with_version(1);
    let v2 = studio_with_limit("month", None).with_version(2);
    let fs = facts(&v1, FIRST_PERIOD);
    let at = P1E - 3 * DAY;
    let st = fold(&v2, &fs, at);
    let ents = st.entitlements_for(USER);
    assert!(ents.grants.iter().any(|g| g.catalog_version == Some(1)), "the grant was sold under version 1");
    let versions: BTreeMap<u32, Catalog> = [(1, v1.clone())].into();
    let (cat, terms) = grandfather::catalog_for(&v2, &versions, &ents.grants, t(at));
    assert!(!terms.is_empty(), "the grant is held under version 1's terms");
    let chk = meter::check(&cat, &ents, "exports", 1, 0, t(at)).unwrap();
    let day_end = (at / DAY + 1) * DAY;
    assert_eq!(
        chk.resets_at,
        Some(t(day_end)),
        "kept terms say 10 exports a day, but the window is the month's (limit {:?})",
        chk.limit
    );
}

/// `catalog_diff::impact` folds as a host does once the new version is active
/// (`billing::reduce_sold`: an offer the new version dropped is kept, hidden, for what was
/// bought under it): retiring a plan's offer changes nothing for its subscriber, as the
/// worker keeps them.
#[test]
fn impact_of_retiring_an_offer_matches_what_the_worker_keeps() {
    let cap = "\n[[capabilities]]\nid = \"hd_export\"\nproduct = \"studio\"\nmin_tier = \"basic\"\n";
    let old_src = format!("{}{cap}", event("catalog.toml"));
    let start = old_src.find("[[offers]]\nkey = \"STUDIO_BASIC_MONTHLY\"").expect("the Basic offer");
    let end = start + 1 + old_src[start + 1..].find("[[offers]]").expect("the next offer");
    let new_src = format!("{}{}", &old_src[..start], &old_src[end..]);
    let old = Catalog::parse(&old_src).expect("old is valid");
    let new = Catalog::parse(&new_src).expect("new is valid");
    assert!(new.offer("STUDIO_BASIC_MONTHLY").is_none());
    let at = P1E - DAY;

    // What the worker decides once `new` is the active version 2 and the grant was sold
    // under version 1: the retired offer's subscriber keeps hd_export.
    let (v1, v2) = (old.clone().with_version(1), new.clone().with_version(2));
    let sold: BTreeMap<u32, Catalog> = [(1, v1.clone())].into();
    let fs_v1 = facts(&v1, FIRST_PERIOD);
    let st = tollgate::billing::reduce_sold(&v2, &sold, &fs_v1, &Default::default(), t(at));
    let ents = st.entitlements_for(USER);
    let (cat, _) = grandfather::catalog_for(&v2, &sold, &ents.grants, t(at));
    assert!(
        tollgate::decide::can(&cat, &ents, "hd_export", t(at)).unwrap().allowed,
        "the worker keeps the retired plan's subscriber on hd_export"
    );

    let fs = facts(&old, FIRST_PERIOD);
    let out = impact(&old, &new, &fs, t(at));
    let lost: Vec<_> = out
        .iter()
        .filter(|s| s.subject == USER)
        .flat_map(|s| &s.changes)
        .filter(|c| c.section == "access" && c.id == "hd_export")
        .collect();
    assert!(lost.is_empty(), "impact says {USER} loses hd_export, the worker keeps it: {lost:#?}");
}

/// A JSON catalog's type error names its field, as a TOML one does (JSON is what the
/// package and the worker read); a field missing names the object it is missing from.
#[test]
fn a_json_catalog_type_error_names_the_field() {
    let good = Catalog::parse(BASE).unwrap().to_json();
    let bad = good.replacen(r#""amount":1900"#, r#""amount":19.99"#, 1);
    assert_ne!(good, bad);
    let toml_err = Catalog::parse(&BASE.replacen("amount = 1900", "amount = 19.99", 1)).unwrap_err();
    assert_eq!(toml_err.path, "offers[0].price.amount");
    let e = Catalog::from_json(&bad).unwrap_err();
    assert_eq!(e.path, "offers[0].price.amount", "{e}");
    let missing = good.replacen(r#""version":"1","#, "", 1);
    assert_ne!(good, missing);
    assert_eq!(Catalog::from_json(&missing).unwrap_err().path, "catalog");
    // Pretty-printed, over several lines, and nested deep: the same field.
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&bad).unwrap()).unwrap();
    assert_eq!(Catalog::from_json(&pretty).unwrap_err().path, "offers[0].price.amount");
    let deep = format!("{{\"catalog\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Catalog::from_json(&deep).is_err(), "refused without overflowing the stack");
}
