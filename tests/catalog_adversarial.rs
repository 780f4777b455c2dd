//! Adversarial catalogs: every document, however hostile or mistaken, either loads into a
//! catalog whose every later question (decisions, offers, quotes, checkout) answers without
//! panicking, or is refused with a typed `CatalogError` naming the field. Mutations of the
//! shipped catalogs (removed and repeated ids, dangling references, huge and negative
//! amounts, empty lists, hostile names) and random ones (proptest, deterministic).

#[path = "events/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::{json, Value};
use support::shipped;
use tollgate::billing::{
    reduce, Fact, FactBody, Provider as FactProvider, Purchase as FactPurchase, PurchaseMode,
    PurchaseOutcome, Subject,
};
use tollgate::catalog::{LimitValue, Provider};
use tollgate::checkout::{self, Account, Held, Purchase};
use tollgate::decide::{self, Ask, Usage};
use tollgate::{
    alerts, catalog_diff, grandfather, meter, usage, Catalog, CatalogError, Entitlements, Grant,
    Source, Status, Timestamp,
};

/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200;
const DAY: i64 = 86_400;
/// `validate::MAX_AMOUNT` (private): the largest amount a catalog may name.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

const SHIPPED: [&str; 4] = ["org-seats", "razorpay-ai", "vcm-suite", "video-studio"];

/// A shipped catalog as a JSON value, to mutate.
fn shipped_json(name: &str) -> Value {
    serde_json::from_str(&shipped(name).to_json()).unwrap()
}

fn load_value(v: &Value) -> Result<Catalog, CatalogError> {
    Catalog::from_json(&serde_json::to_string(v).unwrap())
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `f`, turning a panic into `Err(panic message)`.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_text)
}

/// A small valid catalog the cases below edit (TOML).
const BASE: &str = r#"[catalog]
id = "adv"
name = "Adversarial"
version = "1"
currency = "usd"
grace_period_days = 3

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
rollover = "capped"

[[offers]]
key = "VIDEO_BASIC"
label = "Video Basic"
price = { amount = 1900, currency = "usd", interval = "month" }
grants = [{ product = "video", tier = "basic" }]
credits = [{ pool = "seconds", amount = 600, per = "period" }]

[[offers]]
key = "VIDEO_PRO"
label = "Video Pro"
price = { amount = 4900, currency = "usd", interval = "month" }
grants = [{ product = "video", tier = "pro" }]

[[offers]]
key = "TOKENS"
label = "Tokens"
price = { amount = 900, currency = "usd", interval = "one_time" }
credits = [{ pool = "seconds", amount = 100, per = "once" }]

[[capabilities]]
id = "hd"
product = "video"
min_tier = "basic"

[[limits]]
id = "exports"
product = "video"
period = "day"
values = { free = 1, basic = 10, pro = "unlimited" }

[[tools]]
id = "editor"
label = "Editor"
requires = { product = "video", tier = "basic", capability = "hd", limit = "exports" }

[[alerts]]
feature = "exports"
percent_used = [80]

[usage]
pool = "seconds"
currency = "usd"
overage_multiplier = "1.5"
default_overage_limit = 10000
rates = [{ model = "std", quality = "hd", base_price_per_second = "0.02", multiplier = "1.5" }]
"#;

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

fn grant(
    id: &str,
    product: &str,
    tier: &str,
    status: Status,
    offer: Option<&str>,
    sref: Option<&str>,
) -> Grant {
    Grant {
        id: id.into(),
        product: product.into(),
        tier: tier.into(),
        source: Source::Stripe,
        status,
        valid_from: Timestamp(T0),
        valid_to: Some(Timestamp(T0 + 30 * DAY)),
        past_due_since: if status == Status::PastDue {
            Some(Timestamp(T0 + DAY))
        } else {
            None
        },
        offer: offer.map(Into::into),
        source_ref: sref.map(Into::into),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

/// The products a bundle offer's buyer would pick first: the eligible ones, in order.
fn first_choices(c: &Catalog, oi: usize) -> Vec<String> {
    let o = c.offer_at(oi);
    let n = c.offer_choices_at(oi) as usize;
    let eligible: Vec<String> = c
        .products()
        .iter()
        .filter(|p| c.offer_tiers_on(o, &p.id).1.is_some())
        .map(|p| p.id.clone())
        .collect();
    eligible.into_iter().take(n).collect()
}

/// Entitlement pictures to ask questions with: nothing; every tier of every product
/// (active, and past due); what each offer gives.
fn pictures(c: &Catalog, full: bool) -> Vec<Entitlements> {
    let mut out = vec![Entitlements::new(vec![])];
    for p in c.products() {
        for (ti, t) in p.tiers.iter().enumerate() {
            if !full && ti + 1 != p.tiers.len() {
                continue;
            }
            out.push(Entitlements::new(vec![grant(
                &format!("g:{}", p.id),
                &p.id,
                t,
                Status::Active,
                None,
                None,
            )]));
            if full {
                out.push(Entitlements::new(vec![grant(
                    &format!("g:{}", p.id),
                    &p.id,
                    t,
                    Status::PastDue,
                    None,
                    None,
                )]));
            }
        }
    }
    for (oi, o) in c.offers().iter().enumerate() {
        if !full && oi > 3 {
            break;
        }
        let gives = c.offer_gives(o, &first_choices(c, oi));
        let sref = format!("stripe:sub_{oi}");
        let gs = gives
            .iter()
            .map(|(p, t)| {
                grant(
                    &format!("{sref}:{p}"),
                    p,
                    &c.products()[c.product_index(p).unwrap()].tiers[*t],
                    Status::Active,
                    Some(&o.key),
                    Some(&sref),
                )
            })
            .collect();
        out.push(Entitlements::new(gs));
    }
    out
}

fn accounts(c: &Catalog, ents: &Entitlements) -> Vec<Account> {
    let subs: Vec<Held> = ents
        .grants
        .iter()
        .filter_map(|g| {
            Some(Held {
                provider: Provider::Stripe,
                id: g
                    .source_ref
                    .clone()?
                    .trim_start_matches("stripe:")
                    .to_string(),
                offer: g.offer.clone(),
                status: tollgate::billing::facts::SubStatus::Active,
                quantity: 1,
                cancel_at_period_end: false,
                current_period_end: g.valid_to,
                products: vec![(g.product.clone(), g.tier.clone())],
            })
        })
        .collect();
    let _ = c;
    [Subject::user("u1"), Subject::org("o1")]
        .into_iter()
        .map(|s| Account {
            role: if s.is_org() {
                Some(checkout::Role::Owner)
            } else {
                None
            },
            subject: s,
            subscriptions: subs.clone(),
            customers: vec![(Provider::Stripe, "cus_1".into())],
            seats_used: 2,
            email: Some("a@example.com".into()),
        })
        .collect()
}

/// Asks a loaded catalog every question there is (decisions, offers, limits, tools,
/// quotes, checkout, changes, alerts, diff, JSON round trip); panics on the first panic,
/// naming what was asked.
fn exercise(c: &Catalog, full: bool) {
    let r = no_panic(|| exercise_inner(c, full));
    if let Err(p) = r {
        panic!(
            "a catalog that loaded panics later: {p}\ncatalog: {}",
            c.to_json()
        );
    }
}

fn exercise_inner(c: &Catalog, full: bool) {
    let nows: &[i64] = if full {
        &[T0 - 1, T0 + DAY / 2, T0 + 31 * DAY, T0 + 400 * DAY]
    } else {
        &[T0 + DAY / 2]
    };
    // The JSON form loads back to the same document.
    let back = Catalog::from_json(&c.to_json()).expect("a loaded catalog's JSON form loads");
    assert_eq!(back.doc, c.doc, "JSON round trip changed the catalog");
    let _ = catalog_diff::diff(c, &back);
    let _ = checkout::stripe_fixtures(c);
    let _ = alerts::all_pool_checks(c);
    for pics in pictures(c, full) {
        for &now in nows {
            let now = Timestamp(now);
            let _ = decide::next_change(c, &pics, now);
            let _ = decide::export_policy(c, &pics, now);
            for p in c.products() {
                let _ = decide::effective(c, &pics, &p.id, now);
                for t in &p.tiers {
                    let d = decide::has_access(c, &pics, &p.id, t, now)
                        .expect("known product and tier");
                    let _ = d;
                    let _ = decide::offers_unlocking(
                        c,
                        &pics,
                        Ask::Access {
                            product: &p.id,
                            tier: t,
                        },
                        now,
                    )
                    .unwrap();
                }
            }
            for cap in &c.doc.capabilities {
                decide::can(c, &pics, &cap.id, now).expect("known capability");
                let _ = decide::offers_unlocking(c, &pics, Ask::Capability(&cap.id), now).unwrap();
            }
            for l in &c.doc.limits {
                let ans = decide::limit(c, &pics, &l.id, now).expect("known limit");
                let mut used = vec![0u64, 1, u64::MAX];
                if let LimitValue::Limited(n) = ans.limit {
                    used.extend([n.saturating_sub(1), n, n.saturating_add(1)]);
                }
                for &u in &used {
                    decide::check_limit(c, &pics, &l.id, u, now).unwrap();
                    let _ = decide::offers_unlocking(
                        c,
                        &pics,
                        Ask::Limit {
                            limit: &l.id,
                            used: u,
                        },
                        now,
                    )
                    .unwrap();
                    let _ = meter::check(c, &pics, &l.id, 1, u, now);
                    let _ = meter::check(c, &pics, &l.id, u64::MAX, u, now);
                    if let LimitValue::Limited(n) = ans.limit {
                        let _ = alerts::limit_checks(
                            c,
                            &l.id,
                            &l.id,
                            now,
                            Some(now.plus_seconds(DAY)),
                            n,
                        );
                    }
                }
                let _ = meter::limit_alert_checks(c, &pics, &l.id, &l.id, now);
            }
            for pool in &c.doc.credit_pools {
                let _ = meter::check(c, &pics, &pool.id, 1, 0, now);
                let _ = alerts::pool_checks(c, &pool.id);
            }
            let full_usage: Usage = c
                .doc
                .limits
                .iter()
                .map(|l| (l.id.clone(), u64::MAX))
                .collect();
            for usage in [Usage::new(), full_usage] {
                for t in c.tools() {
                    decide::tool_state(c, &pics, &t.id, &usage, now).expect("known tool");
                    let _ = decide::offers_unlocking(
                        c,
                        &pics,
                        Ask::Tool {
                            tool: &t.id,
                            usage: &usage,
                        },
                        now,
                    )
                    .unwrap();
                }
                let _ = decide::page_state(c, &pics, None, &usage, now).unwrap();
            }
            let _ = tollgate::orgs::features(c, &pics, now);
            let _ = tollgate::orgs::limits(c, &pics, now);
            let versions: BTreeMap<u32, Catalog> = [(1, c.clone().with_version(1))].into();
            let active = c.clone().with_version(u32::MAX);
            let _ = grandfather::catalog_for(&active, &versions, &pics.grants, now);
            let _ = grandfather::keeping_sold(&active, &versions);
            for acct in accounts(c, &pics) {
                for (oi, o) in c.offers().iter().enumerate() {
                    let clouds = first_choices(c, oi);
                    for q in [None, Some(0), Some(1), Some(10_000), Some(u32::MAX)] {
                        let purchase = Purchase {
                            offer: o.key.clone(),
                            quantity: q,
                            clouds: clouds.clone(),
                            success_url: "https://example.com/ok".into(),
                            cancel_url: "https://example.com/no".into(),
                            price: None,
                        };
                        if let Ok(call) = checkout::checkout(c, &purchase, &acct, now) {
                            let _ = call.body();
                        }
                    }
                    let _ = checkout::price_lookup(c, &o.key);
                    let _ = checkout::seats_for(o, u32::MAX);
                    if let Ok(ch) = checkout::change(c, &acct, None, &o.key, &clouds) {
                        let sub = json!({"items": {"data": [{"id": "si_1", "quantity": 3, "price": {"product": "prod_1"}}]}});
                        let _ = ch.next(c, std::slice::from_ref(&sub));
                        let _ = ch.next(
                            c,
                            &[sub.clone(), json!({"id": "sub_sched_1", "phases": []})],
                        );
                    }
                }
            }
        }
    }
    if let Some(u) = &c.doc.usage {
        for r in &u.rates {
            for s in [
                0,
                u.min_units,
                u.max_units,
                u.max_units.saturating_add(1),
                u64::MAX,
            ] {
                let _ = usage::quote(c, &r.model, &r.quality, s);
                let _ = usage::overage_cost(c, &r.model, &r.quality, s);
            }
        }
    }
}

/// The load of `src` must not panic; returns what it gave.
fn parse_no_panic(src: &str) -> Result<Catalog, CatalogError> {
    match no_panic(|| Catalog::parse(src)) {
        Ok(r) => r,
        Err(p) => panic!("Catalog::parse panicked: {p}\n{src}"),
    }
}

/// `src` must be refused, at `path` (exactly, or the start of it when it ends with `*`).
fn refused_at(what: &str, src: &str, path: &str) -> Result<(), String> {
    match parse_no_panic(src) {
        Ok(c) => {
            exercise(&c, false);
            Err(format!("{what}: accepted (expected an error at {path})"))
        }
        Err(e) => {
            let ok = match path.strip_suffix('*') {
                Some(prefix) => e.path.starts_with(prefix),
                None => e.path == path,
            };
            if !ok {
                return Err(format!(
                    "{what}: refused at `{}` (expected `{path}`): {e}",
                    e.path
                ));
            }
            if e.message.trim().is_empty() {
                return Err(format!("{what}: refused without a message"));
            }
            Ok(())
        }
    }
}

fn all_refused(cases: &[(&str, String, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(w, s, p)| refused_at(w, s, p).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) not refused at their field:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn replace_once(src: &str, from: &str, to: &str) -> String {
    assert!(src.contains(from), "the base has no `{from}`");
    src.replacen(from, to, 1)
}

/// A case for [`all_refused`]: the base with `from` replaced by `to`, refused at `path`.
fn edit<'a>(what: &'a str, from: &str, to: &str, path: &'a str) -> (&'a str, String, &'a str) {
    (what, replace_once(BASE, from, to), path)
}

// ------------------------------------------------------------------------------------------
// Baselines
// ------------------------------------------------------------------------------------------

#[test]
fn every_shipped_catalog_and_the_base_answer_every_question_without_panicking() {
    for name in SHIPPED {
        let c = shipped(name);
        exercise(&c, name != "vcm-suite");
    }
    exercise(&Catalog::parse(BASE).unwrap(), true);
}

// ------------------------------------------------------------------------------------------
// Names: hostile ids, duplicates, dangling references
// ------------------------------------------------------------------------------------------

#[test]
fn hostile_ids_are_refused_at_their_field() {
    let long = "a".repeat(129);
    let hostile = [
        "",
        " ",
        "vidéo",
        "vi\u{0}deo",
        "vi\ndeo",
        "ви",
        "\u{202e}evil",
        "a b",
        "a/b",
        "\u{feff}x",
        &long,
    ];
    let mut cases = Vec::new();
    for h in hostile {
        let q = serde_json::to_string(h).unwrap();
        let q = q.as_str();
        cases.push(edit("catalog id", r#"id = "adv""#, &format!("id = {q}"), "catalog.id"));
        cases.push((
            "product id",
            BASE.replace(r#"id = "plan""#, &format!("id = {q}")),
            "products[1].id",
        ));
        cases.push(edit(
            "tier",
            r#"tiers = ["free", "pro"]"#,
            &format!(r#"tiers = ["free", {q}]"#),
            "products[1].tiers[1]",
        ));
        cases.push(edit("offer key", r#"key = "TOKENS""#, &format!("key = {q}"), "offers[2].key"));
        cases.push((
            "pool",
            with(&format!("[[credit_pools]]\nid = {q}\nunit = \"x\"\n")),
            "credit_pools[1].id",
        ));
        cases.push((
            "capability",
            with(&format!(
                "[[capabilities]]\nid = {q}\nproduct = \"video\"\nmin_tier = \"pro\"\n"
            )),
            "capabilities[1].id",
        ));
        cases.push((
            "limit",
            with(&format!(
                "[[limits]]\nid = {q}\nproduct = \"plan\"\nvalues = {{ free = 1, pro = 2 }}\n"
            )),
            "limits[1].id",
        ));
        cases.push((
            "tool",
            with(&format!(
                "[[tools]]\nid = {q}\nlabel = \"T\"\nrequires = {{ capability = \"hd\" }}\n"
            )),
            "tools[1].id",
        ));
    }
    all_refused(&cases);
    // The longest name allowed loads, and is asked about.
    let ok = "b".repeat(128);
    let c = Catalog::parse(&BASE.replace(r#"id = "plan""#, &format!("id = \"{ok}\""))).unwrap();
    exercise(&c, true);
}

#[test]
fn every_duplicate_is_refused_at_the_second_one() {
    let cases = vec![
        ("product", with("[[products]]\nid = \"video\"\ntiers = [\"x\"]\n"), "products[2].id"),
        ("tier", replace_once(BASE, r#"tiers = ["free", "pro"]"#, r#"tiers = ["free", "pro", "free"]"#), "products[1].tiers[2]"),
        (
            "offer key",
            with("[[offers]]\nkey = \"VIDEO_PRO\"\nlabel = \"x\"\nprice = { amount = 1, currency = \"usd\", interval = \"month\" }\ngrants = [{ product = \"plan\", tier = \"pro\" }]\n"),
            "offers[3].key",
        ),
        ("pool", with("[[credit_pools]]\nid = \"seconds\"\nunit = \"x\"\n"), "credit_pools[1].id"),
        ("capability", with("[[capabilities]]\nid = \"hd\"\nproduct = \"plan\"\nmin_tier = \"pro\"\n"), "capabilities[1].id"),
        ("limit", with("[[limits]]\nid = \"exports\"\nproduct = \"plan\"\nvalues = { free = 1, pro = 2 }\n"), "limits[1].id"),
        ("tool", with("[[tools]]\nid = \"editor\"\nlabel = \"x\"\nrequires = { capability = \"hd\" }\n"), "tools[1].id"),
        (
            "limit named as a pool",
            with("[[limits]]\nid = \"seconds\"\nproduct = \"plan\"\nvalues = { free = 1, pro = 2 }\n"),
            "credit_pools[0].id",
        ),
        (
            "capability named as a limit",
            with("[[capabilities]]\nid = \"exports\"\nproduct = \"plan\"\nmin_tier = \"pro\"\n"),
            "limits[0].id",
        ),
        edit(
            "rate",
            r#"rates = [{ model = "std", quality = "hd", base_price_per_second = "0.02", multiplier = "1.5" }]"#,
            r#"rates = [{ model = "std", quality = "hd", base_price_per_second = "0.02", multiplier = "1.5" }, { model = "std", quality = "hd", base_price_per_second = "9", multiplier = "1" }]"#,
            "usage.rates[1]",
        ),
        (
            "stripe price id in two offers",
            replace_once(
                &replace_once(BASE, "key = \"VIDEO_PRO\"\n", "key = \"VIDEO_PRO\"\nstripe_price_ids = [\"price_1\"]\n"),
                "key = \"VIDEO_BASIC\"\n",
                "key = \"VIDEO_BASIC\"\nstripe_price_ids = [\"price_1\"]\n",
            ),
            "offers[1].stripe_price_ids[0]",
        ),
        edit(
            "stripe price id and razorpay plan id alike",
            "key = \"VIDEO_PRO\"\n",
            "key = \"VIDEO_PRO\"\nstripe_price_ids = [\"p_1\"]\nrazorpay_plan_ids = [\"p_1\"]\n",
            "offers[1].razorpay_plan_ids[0]",
        ),
        (
            "bundle from twice",
            with("[[offers]]\nkey = \"B\"\nlabel = \"B\"\nprice = { amount = 1, currency = \"usd\", interval = \"month\" }\ngrants = [{ choose = 1, from = [\"video\", \"video\"], tier = \"pro\" }]\n"),
            "offers[3].grants[0].from[1]",
        ),
    ];
    all_refused(&cases);
}

/// JSON objects may repeat a key; serde reads a struct's repeated field as an error, but a
/// map (a limit's `values`) keeps the last one. A limit that says `free = 1` and then
/// `free = 100` must not silently become 100 free exports a day.
#[test]
fn a_json_limit_naming_one_tier_twice_is_refused_not_last_wins() {
    let json = Catalog::parse(BASE).unwrap().to_json();
    let once = r#""values":{"basic":10,"free":1,"pro":"unlimited"}"#;
    assert!(json.contains(once), "{json}");
    let twice = json.replacen(
        once,
        r#""values":{"basic":10,"free":1,"pro":"unlimited","free":100}"#,
        1,
    );
    // A struct field twice is refused (serde): the same rule should hold for a map.
    let struct_twice = json.replacen(
        r#""grace_period_days":3"#,
        r#""grace_period_days":3,"grace_period_days":300"#,
        1,
    );
    assert!(
        Catalog::from_json(&struct_twice).is_err(),
        "a repeated struct field is refused"
    );
    match no_panic(|| Catalog::from_json(&twice)).unwrap() {
        Err(e) => assert!(
            e.path.starts_with("limits[0].values"),
            "refused at the wrong place: {e}"
        ),
        Ok(c) => {
            let free = c.limit("exports").unwrap().values["free"];
            panic!("a limit naming tier `free` twice (1, then 100) was accepted; the second silently wins: free = {free:?}");
        }
    }
}

#[test]
fn a_reference_to_anything_unknown_is_refused_at_the_reference() {
    let cases = vec![
        edit(
            "default tier",
            r#"default_tier = "free""#,
            r#"default_tier = "gold""#,
            "products[0].default_tier",
        ),
        edit(
            "plan product",
            "grace_period_days = 3\n",
            "grace_period_days = 3\nplan_product = \"nope\"\n",
            "catalog.plan_product",
        ),
        edit(
            "grant product",
            r#"grants = [{ product = "video", tier = "pro" }]"#,
            r#"grants = [{ product = "audio", tier = "pro" }]"#,
            "offers[1].grants[0].product",
        ),
        edit(
            "grant tier",
            r#"grants = [{ product = "video", tier = "pro" }]"#,
            r#"grants = [{ product = "video", tier = "gold" }]"#,
            "offers[1].grants[0].tier",
        ),
        edit(
            "grant tier of another product",
            r#"grants = [{ product = "video", tier = "basic" }]"#,
            r#"grants = [{ product = "plan", tier = "basic" }]"#,
            "offers[0].grants[0].tier",
        ),
        edit(
            "all products tier",
            r#"grants = [{ product = "video", tier = "pro" }]"#,
            r#"grants = [{ all_products = true, tier = "gold" }]"#,
            "offers[1].grants[0].tier",
        ),
        edit(
            "bundle from",
            r#"grants = [{ product = "video", tier = "pro" }]"#,
            r#"grants = [{ choose = 1, from = ["audio"], tier = "pro" }]"#,
            "offers[1].grants[0].from[0]",
        ),
        edit(
            "bundle tier",
            r#"grants = [{ product = "video", tier = "pro" }]"#,
            r#"grants = [{ choose = 1, from = ["video"], tier = "basic2" }]"#,
            "offers[1].grants[0].from[0]",
        ),
        edit(
            "credit pool",
            r#"{ pool = "seconds", amount = 100, per = "once" }"#,
            r#"{ pool = "minutes", amount = 100, per = "once" }"#,
            "offers[2].credits[0].pool",
        ),
        edit(
            "capability product",
            "id = \"hd\"\nproduct = \"video\"",
            "id = \"hd\"\nproduct = \"audio\"",
            "capabilities[0].product",
        ),
        edit(
            "capability min tier",
            r#"min_tier = "basic""#,
            r#"min_tier = "gold""#,
            "capabilities[0].min_tier",
        ),
        edit(
            "capability tiers",
            r#"min_tier = "basic""#,
            r#"tiers = ["pro", "gold"]"#,
            "capabilities[0].tiers[1]",
        ),
        edit(
            "capability both",
            r#"min_tier = "basic""#,
            "min_tier = \"basic\"\ntiers = [\"pro\"]",
            "capabilities[0]",
        ),
        edit("capability neither", "min_tier = \"basic\"\n", "", "capabilities[0]"),
        edit(
            "limit product",
            "id = \"exports\"\nproduct = \"video\"",
            "id = \"exports\"\nproduct = \"audio\"",
            "limits[0].product",
        ),
        edit(
            "limit unknown tier",
            r#"pro = "unlimited" }"#,
            r#"pro = "unlimited", gold = 3 }"#,
            "limits[0].values.gold",
        ),
        edit(
            "limit missing tier",
            r#"values = { free = 1, basic = 10, pro = "unlimited" }"#,
            r#"values = { free = 1, pro = "unlimited" }"#,
            "limits[0].values",
        ),
        edit(
            "limit no values",
            r#"values = { free = 1, basic = 10, pro = "unlimited" }"#,
            "values = {}",
            "limits[0].values",
        ),
        edit(
            "usage pool",
            "pool = \"seconds\"\ncurrency",
            "pool = \"minutes\"\ncurrency",
            "usage.pool",
        ),
        edit(
            "tool tier",
            r#"tier = "basic", capability"#,
            r#"tier = "gold", capability"#,
            "tools[0].requires.tier",
        ),
        edit(
            "tool product",
            r#"requires = { product = "video""#,
            r#"requires = { product = "audio""#,
            "tools[0].requires.tier",
        ),
        edit(
            "tool capability",
            r#"capability = "hd""#,
            r#"capability = "4k""#,
            "tools[0].requires.capability",
        ),
        edit(
            "tool limit",
            r#"limit = "exports" }"#,
            r#"limit = "imports" }"#,
            "tools[0].requires.limit",
        ),
        edit(
            "tool product without tier",
            r#"tier = "basic", capability"#,
            "capability",
            "tools[0].requires.tier",
        ),
        edit(
            "tool tier without product",
            r#"product = "video", tier = "basic", capability"#,
            r#"tier = "basic", capability"#,
            "tools[0].requires.product",
        ),
        edit(
            "tool requires nothing",
            r#"requires = { product = "video", tier = "basic", capability = "hd", limit = "exports" }"#,
            "requires = {}",
            "tools[0].requires",
        ),
        edit(
            "alert feature",
            "feature = \"exports\"",
            "feature = \"imports\"",
            "alerts[0].feature",
        ),
        edit(
            "alert feature is a capability",
            "feature = \"exports\"",
            "feature = \"hd\"",
            "alerts[0].feature",
        ),
    ];
    all_refused(&cases);
}

// ------------------------------------------------------------------------------------------
// Amounts and ranges
// ------------------------------------------------------------------------------------------

#[test]
fn amounts_out_of_range_are_refused_at_their_field() {
    let big = (MAX_AMOUNT + 1).to_string();
    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    for (what, v) in [
        ("negative", "-1"),
        ("i64::MIN", "-9223372036854775808"),
        ("i64::MAX", "9223372036854775807"),
        ("above max", big.as_str()),
    ] {
        cases.push(edit(what, "amount = 4900", &format!("amount = {v}"), "offers[1].price.amount"));
        if v != "-1" && v != "-9223372036854775808" {
            cases.push(edit(
                what,
                "amount = 100, per",
                &format!("amount = {v}, per"),
                "offers[2].credits[0].amount",
            ));
        }
        cases.push(edit(
            what,
            "unit = \"second\"\n",
            &format!("unit = \"second\"\nfree_amount = {v}\n"),
            "credit_pools[0].free_amount",
        ));
        cases.push(edit(
            what,
            "default_overage_limit = 10000",
            &format!("default_overage_limit = {v}"),
            "usage.default_overage_limit",
        ));
    }
    cases.push(edit(
        "zero credits",
        "amount = 100, per",
        "amount = 0, per",
        "offers[2].credits[0].amount",
    ));
    cases.push(edit(
        "negative credits",
        "amount = 100, per",
        "amount = -100, per",
        "offers[2].credits[0].amount",
    ));
    cases.push(edit("float price", "amount = 4900", "amount = 49.00", "offers[1].price.amount"));
    cases.push(edit(
        "string price",
        "amount = 4900",
        "amount = \"4900\"",
        "offers[1].price.amount",
    ));
    // A trial longer than Stripe gives (two years) could never be sold.
    cases.push(edit(
        "trial of 731 days",
        "key = \"VIDEO_PRO\"\n",
        "key = \"VIDEO_PRO\"\ntrial_days = 731\n",
        "offers[1].trial_days",
    ));
    cases.push(edit(
        "float rate",
        r#"base_price_per_second = "0.02""#,
        "base_price_per_second = 0.02",
        "usage.rates[0].base_price_per_second",
    ));
    cases.push(edit(
        "negative rate",
        r#"base_price_per_second = "0.02""#,
        r#"base_price_per_second = "-0.02""#,
        "usage.rates[0].base_price_per_second",
    ));
    cases.push(edit(
        "ten decimals",
        r#"base_price_per_second = "0.02""#,
        r#"base_price_per_second = "0.0000000002""#,
        "usage.rates[0].base_price_per_second",
    ));
    cases.push(edit(
        "rate beyond u64",
        r#"base_price_per_second = "0.02""#,
        r#"base_price_per_second = "99999999999999999999""#,
        "usage.rates[0].base_price_per_second",
    ));
    cases.push(edit(
        "zero multiplier",
        r#"multiplier = "1.5" }"#,
        r#"multiplier = "0.000" }"#,
        "usage.rates[0].multiplier",
    ));
    cases.push(edit(
        "zero overage multiplier",
        r#"overage_multiplier = "1.5""#,
        r#"overage_multiplier = "0""#,
        "usage.overage_multiplier",
    ));
    cases.push(edit(
        "zero min units",
        "default_overage_limit = 10000",
        "default_overage_limit = 10000\nmin_units = 0",
        "usage.min_units",
    ));
    cases.push(edit(
        "min above max",
        "default_overage_limit = 10000",
        "default_overage_limit = 10000\nmin_units = 10\nmax_units = 9",
        "usage.min_units",
    ));
    cases.push(("no rates", replace_once(BASE, r#"rates = [{ model = "std", quality = "hd", base_price_per_second = "0.02", multiplier = "1.5" }]"#, "rates = []"), "usage.rates"));
    cases.push(edit(
        "bad usage currency",
        "pool = \"seconds\"\ncurrency = \"usd\"",
        "pool = \"seconds\"\ncurrency = \"USD\"",
        "usage.currency",
    ));
    cases.push(edit(
        "bad catalog currency",
        "currency = \"usd\"\ngrace",
        "currency = \"xxx\"\ngrace",
        "catalog.currency",
    ));
    cases.push(edit(
        "test currency",
        "amount = 4900, currency = \"usd\"",
        "amount = 4900, currency = \"xts\"",
        "offers[1].price.currency",
    ));
    cases.push(edit(
        "empty currency",
        "amount = 4900, currency = \"usd\"",
        "amount = 4900, currency = \"\"",
        "offers[1].price.currency",
    ));
    cases.push(edit(
        "negative limit",
        "free = 1, basic = 10",
        "free = -1, basic = 10",
        "limits[0].values*",
    ));
    cases.push(edit(
        "limit as float",
        "free = 1, basic = 10",
        "free = 1.5, basic = 10",
        "limits[0].values*",
    ));
    cases.push(edit(
        "limit as word",
        "free = 1, basic = 10",
        "free = \"infinite\", basic = 10",
        "limits[0].values*",
    ));
    cases.push(edit(
        "negative trial",
        "key = \"VIDEO_PRO\"\n",
        "key = \"VIDEO_PRO\"\ntrial_days = -1\n",
        "offers[1].trial_days",
    ));
    cases.push(edit(
        "negative grace",
        "grace_period_days = 3",
        "grace_period_days = -3",
        "catalog.grace_period_days",
    ));
    cases.push(edit(
        "zero seats",
        "key = \"VIDEO_PRO\"\n",
        "key = \"VIDEO_PRO\"\nseats = { included = 0 }\n",
        "offers[1].seats.included",
    ));
    all_refused(&cases);
}

#[test]
fn alert_rules_out_of_range_are_refused() {
    let alert = |body: &str| {
        replace_once(
            BASE,
            "[[alerts]]\nfeature = \"exports\"\npercent_used = [80]\n",
            &format!("[[alerts]]\n{body}\n"),
        )
    };
    let cases = vec![
        (
            "0%",
            alert("feature = \"exports\"\npercent_used = [0]"),
            "alerts[0].percent_used",
        ),
        (
            "101%",
            alert("feature = \"exports\"\npercent_used = [101]"),
            "alerts[0].percent_used",
        ),
        (
            "u32::MAX %",
            alert("feature = \"exports\"\npercent_used = [4294967295]"),
            "alerts[0].percent_used",
        ),
        (
            "negative %",
            alert("feature = \"exports\"\npercent_used = [-5]"),
            "alerts[0].percent_used*",
        ),
        (
            "0 left",
            alert("feature = \"exports\"\nunits_left = [0]"),
            "alerts[0].units_left",
        ),
        (
            "negative left",
            alert("feature = \"exports\"\nunits_left = [-1]"),
            "alerts[0].units_left",
        ),
        ("no threshold", alert("feature = \"exports\""), "alerts[0]"),
        (
            "pool percent",
            alert("feature = \"seconds\"\npercent_used = [50]"),
            "alerts[0].percent_used",
        ),
        (
            "days on feature",
            alert("feature = \"exports\"\npercent_used = [50]\ndays = 3"),
            "alerts[0].days",
        ),
        (
            "trial 0 days",
            alert("event = \"trial_ending\"\ndays = 0"),
            "alerts[0].days",
        ),
        (
            "trial 367 days",
            alert("event = \"trial_ending\"\ndays = 367"),
            "alerts[0].days",
        ),
        (
            "trial no days",
            alert("event = \"trial_ending\""),
            "alerts[0].days",
        ),
        (
            "days on payment_failed",
            alert("event = \"payment_failed\"\ndays = 2"),
            "alerts[0].days",
        ),
        (
            "event with threshold",
            alert("event = \"payment_failed\"\nunits_left = [5]"),
            "alerts[0]",
        ),
        (
            "both",
            alert("event = \"payment_failed\"\nfeature = \"exports\"\npercent_used = [5]"),
            "alerts[0]",
        ),
        ("neither", alert("percent_used = [5]"), "alerts[0]"),
        (
            "unknown event",
            alert("event = \"trial_ended\""),
            "alerts[0].event",
        ),
    ];
    all_refused(&cases);
}

/// The largest amounts a catalog may name load, and every question about them (checkout
/// at any quantity, upgrades, yearly ranking, credits times quantity) answers without an
/// overflow.
#[test]
fn the_largest_amounts_allowed_answer_every_question() {
    let m = MAX_AMOUNT;
    // The most seconds a request may name with the dearest rate (0.02 x 1.5, overage x 1.5:
    // 4.5 cents a second) priced within MAX_AMOUNT.
    const MAX_UNITS: u64 = 100_000_000_000;
    let src = BASE
        .replace("amount = 4900, currency = \"usd\", interval = \"month\"", &format!("amount = {m}, currency = \"usd\", interval = \"year\""))
        .replace("amount = 1900", &format!("amount = {m}"))
        .replace("amount = 900", &format!("amount = {m}"))
        .replace("amount = 100, per", &format!("amount = {m}, per"))
        .replace("amount = 600, per", &format!("amount = {m}, per"))
        .replace("default_overage_limit = 10000", &format!("default_overage_limit = {m}\nmax_units = {MAX_UNITS}"))
        .replace("unit = \"second\"\n", &format!("unit = \"second\"\nfree_amount = {m}\n"))
        .replace("grace_period_days = 3", "grace_period_days = 4294967295\nhold_minutes = 4294967295")
        .replace("key = \"VIDEO_PRO\"\n", "key = \"VIDEO_PRO\"\ntrial_days = 730\nseats = { included = 4294967295 }\nsubject = \"organization\"\n")
        // The largest limit the store counts (PostgreSQL's bigint; TOML's integers too).
        .replace("free = 1, basic = 10", "free = 9223372036854775807, basic = 10");
    let c = parse_no_panic(&src).expect("every amount is at most MAX_AMOUNT");
    exercise(&c, true);
    // A Razorpay order of the largest one-time price at the largest quantity.
    let mut v: Value = serde_json::from_str(&c.to_json()).unwrap();
    v["catalog"]["provider"] = json!("razorpay");
    let c = load_value(&v).unwrap();
    exercise(&c, false);
}

/// What `usage` declares it prices (`min_units` to `max_units` seconds of every rate) can
/// be quoted: a rate whose price of `max_units` seconds (or its overage price) does not fit
/// in i64 minor units is refused at load, as every other amount above `MAX_AMOUNT` is,
/// rather than every quote of it failing at request time with `overflow`.
#[test]
fn usage_that_cannot_be_quoted_within_its_declared_range_is_refused() {
    let cases = [
        (
            "huge base price",
            r#"base_price_per_second = "18446744073709551615""#,
            "1.5",
            86_400u64,
        ),
        (
            "huge multiplier",
            r#"base_price_per_second = "0.02""#,
            "18446744073709551615",
            86_400,
        ),
        (
            "max_units of u64::MAX",
            r#"base_price_per_second = "0.02""#,
            "1.5",
            u64::MAX,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, base, mult, max) in cases {
        let src = replace_once(BASE, r#"base_price_per_second = "0.02""#, base).replacen(
            r#"multiplier = "1.5" }"#,
            &format!(r#"multiplier = "{mult}" }}"#),
            1,
        );
        let mut v: Value = match parse_no_panic(&src) {
            Err(e) => {
                assert!(e.path.starts_with("usage"), "{what}: {e}");
                continue;
            }
            Ok(c) => serde_json::from_str(&c.to_json()).unwrap(),
        };
        v["usage"]["max_units"] = json!(max);
        let c = match load_value(&v) {
            Err(e) => {
                assert!(e.path.starts_with("usage"), "{what}: {e}");
                continue;
            }
            Ok(c) => c,
        };
        exercise(&c, false);
        let u = c.doc.usage.as_ref().unwrap();
        for s in [u.min_units, u.max_units] {
            if let Err(e) = usage::quote(&c, "std", "hd", s) {
                wrong.push(format!(
                    "{what}: loaded, but quoting {s} s (within {}..={}) fails: {e}",
                    u.min_units, u.max_units
                ));
                break;
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ------------------------------------------------------------------------------------------
// Bundles, grants, empty lists
// ------------------------------------------------------------------------------------------

#[test]
fn bundles_that_can_never_be_bought_are_refused() {
    let bundle = |grants: &str| {
        with(&format!("[[offers]]\nkey = \"B\"\nlabel = \"B\"\nprice = {{ amount = 5900, currency = \"usd\", interval = \"month\" }}\ngrants = {grants}\n"))
    };
    let cases = vec![
        (
            "choose 0",
            bundle(r#"[{ choose = 0, tier = "pro" }]"#),
            "offers[3].grants[0].choose",
        ),
        (
            "choose more than exist",
            bundle(r#"[{ choose = 3, tier = "pro" }]"#),
            "offers[3].grants[0].choose",
        ),
        (
            "choose u32::MAX",
            bundle(r#"[{ choose = 4294967295, tier = "pro" }]"#),
            "offers[3].grants[0].choose",
        ),
        (
            "choose more than from",
            bundle(r#"[{ choose = 2, from = ["video"], tier = "pro" }]"#),
            "offers[3].grants[0].choose",
        ),
        (
            "choose a tier only one has",
            bundle(r#"[{ choose = 2, tier = "basic" }]"#),
            "offers[3].grants[0].choose",
        ),
        (
            "two grants, one product",
            bundle(
                r#"[{ choose = 1, from = ["video"], tier = "pro" }, { choose = 1, from = ["video"], tier = "basic" }]"#,
            ),
            "offers[3].grants",
        ),
        (
            "many grants overflow",
            bundle(&format!(
                "[{}]",
                [r#"{ choose = 2, tier = "pro" }"#; 3].join(", ")
            )),
            "offers[3].grants",
        ),
        (
            "negative choose",
            bundle(r#"[{ choose = -1, tier = "pro" }]"#),
            "offers[3].grants[0].choose",
        ),
        (
            "no kind",
            bundle(r#"[{ tier = "pro" }]"#),
            "offers[3].grants[0]",
        ),
        (
            "two kinds",
            bundle(r#"[{ product = "video", choose = 1, tier = "pro" }]"#),
            "offers[3].grants[0]",
        ),
        (
            "from on all products",
            bundle(r#"[{ all_products = true, from = ["video"], tier = "pro" }]"#),
            "offers[3].grants[0].from",
        ),
        ("grants nothing", bundle("[]"), "offers[3].grants"),
        (
            "empty from list is every product",
            bundle(r#"[{ choose = 1, from = [], tier = "gold" }]"#),
            "offers[3].grants[0].tier",
        ),
    ];
    all_refused(&cases);
    // A bundle that can be bought loads, and checkout sells it with its choice.
    let c = Catalog::parse(&bundle(r#"[{ choose = 2, tier = "pro" }]"#)).unwrap();
    exercise(&c, true);
}

/// `from` lists a bundle's choices (`choose = N`). On a grant naming one `product` it has
/// no meaning, and is ignored: `{ product = "video", from = ["plan"] }` reads as if the
/// author meant something `from` never does. It is refused at its field, as it is on an
/// `all_products = true` grant.
#[test]
fn from_on_a_single_product_grant_is_not_silently_ignored() {
    let src = replace_once(
        BASE,
        r#"grants = [{ product = "video", tier = "pro" }]"#,
        r#"grants = [{ product = "video", from = ["plan"], tier = "pro" }]"#,
    );
    match parse_no_panic(&src) {
        Err(e) => assert!(e.path.starts_with("offers[1].grants[0]"), "{e}"),
        Ok(c) => {
            exercise(&c, false);
            let o = c.offer("VIDEO_PRO").unwrap();
            panic!(
                "`from = [\"plan\"]` on a `product = \"video\"` grant was accepted and ignored: the offer gives {:?}",
                c.offer_gives(o, &["plan".to_string()])
            );
        }
    }
}

#[test]
fn empty_lists_are_refused() {
    let cases = vec![
        (
            "no products",
            format!(
                "products = []\n{}",
                BASE.split("[[products]]").next().unwrap()
            ),
            "products",
        ),
        edit("no tiers", r#"tiers = ["free", "pro"]"#, "tiers = []", "products[1].tiers"),
        edit("empty version", "version = \"1\"", "version = \"\"", "catalog.version"),
        edit("blank version", "version = \"1\"", "version = \" \\t\\n \"", "catalog.version"),
        edit("missing version", "version = \"1\"\n", "", "catalog*"),
    ];
    all_refused(&cases);
}

/// A capability listed at no tier (`tiers = []`) and not held without a tier either is a
/// capability no subject can ever hold: every tool requiring it is locked for good, and no
/// offer unlocks it. Like a bundle that can never be bought, it is refused at its field.
#[test]
fn a_capability_no_tier_can_ever_hold_is_refused() {
    let src = replace_once(BASE, r#"min_tier = "basic""#, "tiers = []");
    match parse_no_panic(&src) {
        Err(e) => assert!(e.path.starts_with("capabilities[0]"), "{e}"),
        Ok(c) => {
            exercise(&c, true);
            let top =
                Entitlements::new(vec![grant("g", "video", "pro", Status::Active, None, None)]);
            let d = decide::can(&c, &top, "hd", Timestamp(T0 + DAY)).unwrap();
            panic!(
                "capability `hd` with `tiers = []` loaded; held at the top tier: {}, upgrade: {:?}",
                d.allowed, d.upgrade
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Credits, price ids, alerts: duplicates that load and then misbehave
// ------------------------------------------------------------------------------------------

fn one_time_purchase(offer: &str, quantity: u32) -> Fact {
    Fact {
        key: "purchase:stripe:cs_1".into(),
        provider: FactProvider::Stripe,
        event: "evt_1".into(),
        at: Timestamp(T0),
        body: FactBody::Purchase(FactPurchase {
            id: "stripe:cs_1".into(),
            mode: PurchaseMode::Payment,
            outcome: PurchaseOutcome::Paid,
            subject: Some(Subject::user("u1")),
            customer: Some("stripe:cus_1".into()),
            subscription: None,
            offer: Some(offer.into()),
            quantity,
            clouds: vec![],
            payment_refs: vec!["stripe:pi_1".into()],
            amount: 900,
            currency: "usd".into(),
            no_payment_required: false,
        }),
        catalog_version: None,
    }
}

/// An offer's `credits` naming one pool twice: a subscription's invoice adds the two up
/// (per pool), but a one-time purchase keys its lot by pool (`purchase:<id>:<pool>`), so the
/// second entry is silently dropped. Either the catalog is refused at the second entry, or
/// the buyer gets both.
#[test]
fn a_one_time_offer_crediting_one_pool_twice_gives_both_or_is_refused() {
    let src = replace_once(
        BASE,
        r#"credits = [{ pool = "seconds", amount = 100, per = "once" }]"#,
        r#"credits = [{ pool = "seconds", amount = 100, per = "once" }, { pool = "seconds", amount = 50, per = "once" }]"#,
    );
    match parse_no_panic(&src) {
        Err(e) => assert!(e.path.starts_with("offers[2].credits"), "{e}"),
        Ok(c) => {
            let st = reduce(&c, &[one_time_purchase("TOKENS", 1)], Timestamp(T0 + DAY));
            let got = st.balance("user:u1", "seconds");
            let single = reduce(
                &Catalog::parse(BASE).unwrap(),
                &[one_time_purchase("TOKENS", 1)],
                Timestamp(T0 + DAY),
            )
            .balance("user:u1", "seconds");
            assert_eq!(
                got - single,
                150 - 100,
                "TOKENS credits 100 + 50 seconds; the buyer got {got} (the catalog with 100 only gives {single}): the second entry was silently dropped"
            );
        }
    }
}

/// A Stripe price id or Razorpay plan id that is empty names no price: checkout would send
/// `line_items[0][price]=` and a webhook with no price would resolve to this offer.
#[test]
fn an_empty_price_id_is_refused() {
    let cases = vec![
        edit(
            "empty stripe price",
            "key = \"VIDEO_PRO\"\n",
            "key = \"VIDEO_PRO\"\nstripe_price_ids = [\"\"]\n",
            "offers[1].stripe_price_ids[0]",
        ),
        edit(
            "blank stripe price",
            "key = \"VIDEO_PRO\"\n",
            "key = \"VIDEO_PRO\"\nstripe_price_ids = [\" \"]\n",
            "offers[1].stripe_price_ids[0]",
        ),
        edit(
            "empty razorpay plan",
            "key = \"VIDEO_PRO\"\n",
            "key = \"VIDEO_PRO\"\nrazorpay_plan_ids = [\"\"]\n",
            "offers[1].razorpay_plan_ids[0]",
        ),
    ];
    let mut accepted = Vec::new();
    for (what, src, path) in &cases {
        if let Err(m) = refused_at(what, src, path) {
            accepted.push(m);
        }
    }
    if !accepted.is_empty() {
        let c = Catalog::parse(&cases[0].1).unwrap();
        let acct = &accounts(&c, &Entitlements::new(vec![]))[0];
        let p = Purchase {
            offer: "VIDEO_PRO".into(),
            quantity: None,
            clouds: vec![],
            success_url: "https://example.com/ok".into(),
            cancel_url: "https://example.com/no".into(),
            price: None,
        };
        let call = checkout::checkout(&c, &p, acct, Timestamp(T0)).unwrap();
        panic!(
            "{}\ncheckout then sells VIDEO_PRO at price {:?}; offer_by_price_id(\"\") = {:?}",
            accepted.join("\n"),
            call.field("line_items[0][price]"),
            c.offer_by_price_id("").map(|o| &o.key)
        );
    }
}

/// Each alert threshold is one rule (`limit:<counter>:<n>%`), crossed once a window: a
/// threshold written twice (in one rule or in two) gives checks of one rule id that say the
/// same (the store opens an alert once per rule and episode, so they count once).
#[test]
fn an_alert_threshold_written_twice_checks_one_rule_alike() {
    let cases = [
        ("twice in one rule", "[[alerts]]\nfeature = \"exports\"\npercent_used = [80, 80]\n"),
        ("in two rules", "[[alerts]]\nfeature = \"exports\"\npercent_used = [80]\n\n[[alerts]]\nfeature = \"exports\"\npercent_used = [80]\n"),
        ("units left twice", "[[alerts]]\nfeature = \"exports\"\nunits_left = [2, 2]\n"),
        ("percent and units meeting", "[[alerts]]\nfeature = \"exports\"\npercent_used = [80]\nunits_left = [3]\n"),
    ];
    for (what, alerts_src) in cases {
        let src = replace_once(
            BASE,
            "[[alerts]]\nfeature = \"exports\"\npercent_used = [80]\n",
            alerts_src,
        );
        let Ok(c) = parse_no_panic(&src) else {
            continue;
        };
        for limit in [0, 1, 10, u64::MAX] {
            let checks = alerts::limit_checks(
                &c,
                "exports",
                "exports",
                Timestamp(T0),
                Some(Timestamp(T0 + DAY)),
                limit,
            );
            for a in &checks {
                for b in checks.iter().filter(|b| b.rule == a.rule) {
                    assert_eq!(
                        (&a.episode, &a.alert),
                        (&b.episode, &b.alert),
                        "{what}: rule {} checked two ways",
                        a.rule
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Versions, encodings, errors' places
// ------------------------------------------------------------------------------------------

/// The document's version is free text (a date, a semver); the store's version number is
/// any u32. Far-future and far-past versions, and grandfathering between them, answer.
#[test]
fn catalog_versions_in_the_future_or_the_past_answer() {
    for v in [
        "0",
        "9999.12.31",
        "-1",
        "1970-01-01",
        "v\u{1F600}",
        &"9".repeat(10_000),
    ] {
        let src = replace_once(
            BASE,
            "version = \"1\"",
            &format!("version = {}", serde_json::to_string(v).unwrap()),
        );
        let c = parse_no_panic(&src).unwrap_or_else(|e| panic!("version `{v}`: {e}"));
        assert_eq!(c.meta().version, v);
    }
    let old = Catalog::parse(BASE).unwrap().with_version(u32::MAX);
    let new = Catalog::parse(
        &BASE
            .replace("free = 1, basic = 10", "free = 0, basic = 2")
            .replace(
                "key = \"VIDEO_BASIC\"\n",
                "key = \"VIDEO_BASIC\"\nmigration = \"now\"\n",
            ),
    )
    .unwrap()
    .with_version(0);
    let mut g = grant(
        "stripe:sub_1:video",
        "video",
        "basic",
        Status::Active,
        Some("VIDEO_BASIC"),
        Some("stripe:sub_1"),
    );
    g.catalog_version = Some(u32::MAX);
    g.renewal_version = Some(u32::MAX);
    let versions: BTreeMap<u32, Catalog> = [(u32::MAX, old.clone())].into();
    for now in [T0 - DAY, T0 + DAY, i64::MAX / 2] {
        let r = no_panic(|| {
            let (cat, _) =
                grandfather::catalog_for(&new, &versions, std::slice::from_ref(&g), Timestamp(now));
            let _ = grandfather::versions_needed(&new, std::slice::from_ref(&g));
            decide::limit(
                &cat,
                &Entitlements::new(vec![g.clone()]),
                "exports",
                Timestamp(now),
            )
            .unwrap()
        });
        r.unwrap_or_else(|p| panic!("grandfathering from version u32::MAX to 0 panicked: {p}"));
    }
    let _ = catalog_diff::diff(&old, &new);
}

#[test]
fn encodings_and_syntax_errors_never_panic() {
    let json = Catalog::parse(BASE).unwrap().to_json();
    let hostile = [
        String::new(),
        " ".into(),
        "{".into(),
        "}".into(),
        "[".into(),
        "\u{feff}".into(),
        "\u{feff}{".into(),
        "{\"catalog\":".into(),
        "{\"catalog\":\"\\".into(),
        "{\"\\".into(),
        "{\"a\\\"\":1}".into(),
        "\"\\u0000\"".into(),
        format!("{json}x"),
        json[..json.len() / 2].to_string(),
        json.replace("\"usd\"", "\"\\u0000sd\""),
        json.replace("\"adv\"", "\"\\ud800\""),
        BASE.replace("[[products]]", "[[products]"),
        BASE.replace("amount = 4900", "amount = 4_900_"),
        BASE.replace("tiers = [\"free\", \"pro\"]", "tiers = [\"free\", \"pro\""),
        "\n".repeat(10_000) + "[catalog]\nid = 1",
        "a = ".repeat(1000),
        "[".repeat(10_000),
        format!("{{{}}}", "\"catalog\":1,".repeat(10_000)),
    ];
    for src in &hostile {
        if let Ok(c) = parse_no_panic(src) {
            panic!("garbage loaded: {:?}", c.doc);
        }
        let _ = no_panic(|| Catalog::from_json(src))
            .unwrap_or_else(|p| panic!("from_json panicked on {src:.80?}: {p}"));
        let _ = no_panic(|| Catalog::from_toml(src))
            .unwrap_or_else(|p| panic!("from_toml panicked on {src:.80?}: {p}"));
    }
    // A byte order mark, as editors save it, is no part of either form.
    let bom_json = format!("\u{feff}{json}");
    Catalog::parse(&bom_json).expect("JSON with a byte order mark loads");
    Catalog::parse(&format!("\u{feff}{BASE}"))
        .expect("TOML with a byte order mark loads (JSON does)");
}

/// A JSON type error names its field (`Catalog::from_json`: "a type error (a float for an
/// amount, a misspelt field) names its field, as TOML's do; a syntax error has none"). An
/// enum field (`interval`, `period`, `per`, `rollover`, `subject`, `migration`, `provider`)
/// given a number, a boolean, an array or null is a type error of that field, as it is in
/// TOML, not a syntax error without a place.
#[test]
fn a_json_enum_field_of_the_wrong_type_names_its_field() {
    let json = Catalog::parse(BASE).unwrap().to_json();
    let interval = r#""interval":"month""#;
    assert!(json.contains(interval));
    let mut wrong = Vec::new();
    for bad in ["12", "true", "[\"month\"]", "null", "1.5"] {
        let src = json.replacen(interval, &format!(r#""interval":{bad}"#), 1);
        let e = Catalog::from_json(&src).unwrap_err();
        if e.path != "offers[0].price.interval" {
            wrong.push(format!(
                "`\"interval\": {bad}` refused at `{}`: {e}",
                e.path
            ));
        }
    }
    let period = r#""period":"day""#;
    assert!(json.contains(period));
    let e = Catalog::from_json(&json.replacen(period, r#""period":1"#, 1)).unwrap_err();
    if e.path != "limits[0].period" {
        wrong.push(format!("`\"period\": 1` refused at `{}`: {e}", e.path));
    }
    // The same mistakes in TOML name the field, and so does an unknown name in JSON.
    let e = Catalog::parse(&replace_once(
        BASE,
        r#"interval = "month" }"#,
        "interval = 12 }",
    ))
    .unwrap_err();
    assert_eq!(e.path, "offers[0].price.interval", "{e}");
    let e = Catalog::from_json(&json.replacen(interval, r#""interval":"monthly""#, 1)).unwrap_err();
    assert_eq!(e.path, "offers[0].price.interval", "{e}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Errors in a TOML file name the field and its line.
#[test]
fn toml_errors_name_the_field_and_its_line() {
    let src = replace_once(BASE, r#"min_tier = "basic""#, r#"min_tier = "gold""#);
    let e = Catalog::parse(&src).unwrap_err();
    let line = src
        .lines()
        .position(|l| l.contains("min_tier = \"gold\""))
        .unwrap()
        + 1;
    assert_eq!(
        (e.path.as_str(), e.line),
        ("capabilities[0].min_tier", Some(line)),
        "{e}"
    );
    let src = replace_once(BASE, "amount = 4900", "amount = -4900");
    let e = Catalog::parse(&src).unwrap_err();
    let line = src
        .lines()
        .position(|l| l.contains("amount = -4900"))
        .unwrap()
        + 1;
    assert_eq!(
        (e.path.as_str(), e.line),
        ("offers[1].price.amount", Some(line)),
        "{e}"
    );
    assert!(e.to_string().contains("offers[1].price.amount"), "{e}");
    // A misspelt field is refused (deny_unknown_fields), naming where.
    let src = replace_once(BASE, "grace_period_days = 3", "grace_period_dayz = 3");
    let e = Catalog::parse(&src).unwrap_err();
    assert!(e.message.contains("grace_period_dayz"), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
}

// ------------------------------------------------------------------------------------------
// Random mutations of the shipped catalogs
// ------------------------------------------------------------------------------------------

/// Every JSON path (as pointer segments) of a value.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                at.push(k.clone());
                paths(c, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                at.push(i.to_string());
                paths(c, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer(p: &[String]) -> String {
    p.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// One hostile value a field may be replaced with.
fn hostile_value(k: usize, old: &Value, v: &Value) -> Value {
    match k % 22 {
        0 => json!(i64::MAX),
        1 => json!(i64::MIN),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(u64::MAX),
        5 => json!(MAX_AMOUNT),
        6 => json!(MAX_AMOUNT + 1),
        7 => json!(""),
        8 => json!("unlimited"),
        9 => json!("\u{0}\u{202e}é"),
        10 => json!("x".repeat(5000)),
        11 => json!([]),
        12 => json!({}),
        13 => json!(null),
        14 => json!(true),
        15 => json!(1.5),
        16 => json!("0.000000001"),
        17 => json!(u32::MAX),
        // Another field's value: a name from elsewhere in the document (a dangling or
        // crossed reference).
        18 | 19 => {
            let mut all = Vec::new();
            paths(v, &mut Vec::new(), &mut all);
            let leaves: Vec<Value> = all
                .iter()
                .filter_map(|p| v.pointer(&pointer(p)))
                .filter(|x| x.is_string())
                .cloned()
                .collect();
            leaves
                .get(k / 22 % leaves.len().max(1))
                .cloned()
                .unwrap_or(Value::Null)
        }
        20 => json!(old.as_str().map(|s| format!("{s}_")).unwrap_or_default()),
        _ => json!(4294967296u64),
    }
}

/// Applies mutation `k` at path `p` of `v`: replace, remove, or repeat an element.
fn mutate(v: &mut Value, p: &[String], k: usize) -> String {
    let ptr = pointer(p);
    let (parent_p, last) = match p.split_last() {
        Some((l, rest)) => (pointer(rest), l.clone()),
        None => return "root".into(),
    };
    let old = v.pointer(&ptr).cloned().unwrap_or(Value::Null);
    match k % 5 {
        0 => {
            // Remove it.
            match v.pointer_mut(&parent_p) {
                Some(Value::Object(m)) => {
                    m.remove(&last);
                }
                Some(Value::Array(a)) => {
                    let i: usize = last.parse().unwrap();
                    a.remove(i);
                }
                _ => {}
            }
            format!("remove {ptr}")
        }
        1 => {
            // Repeat it (an array element: a duplicate id, a tier twice, an offer twice).
            if let Some(Value::Array(a)) = v.pointer_mut(&parent_p) {
                let i: usize = last.parse().unwrap();
                a.insert(i + 1, old);
                return format!("repeat {ptr}");
            }
            let h = hostile_value(k / 5, &old, v);
            *v.pointer_mut(&ptr).unwrap() = h.clone();
            format!("set {ptr} = {h:.60}")
        }
        _ => {
            let h = hostile_value(k / 5, &old, v);
            *v.pointer_mut(&ptr).unwrap() = h.clone();
            format!("set {ptr} = {h:.60}")
        }
    }
}

/// Properties of a catalog that loaded, whatever it was mutated from: money in range,
/// currencies ISO 4217, names unique, references resolved.
fn sane(c: &Catalog) -> Result<(), String> {
    let d = &c.doc;
    for o in &d.offers {
        if !(0..=MAX_AMOUNT).contains(&o.price.amount) {
            return Err(format!("offer {} priced {}", o.key, o.price.amount));
        }
        if !tollgate::money::is_currency(&o.price.currency) {
            return Err(format!("offer {} in `{}`", o.key, o.price.currency));
        }
        for cr in &o.credits {
            if !(1..=MAX_AMOUNT).contains(&cr.amount) || c.pool(&cr.pool).is_none() {
                return Err(format!(
                    "offer {} credits {} of `{}`",
                    o.key, cr.amount, cr.pool
                ));
            }
        }
        for g in &o.grants {
            if let Some(p) = &g.product {
                if c.tier_index(p, &g.tier).is_none() {
                    return Err(format!("offer {} grants {}:{}", o.key, p, g.tier));
                }
            }
        }
        if o.grants.is_empty() && o.credits.is_empty() {
            return Err(format!("offer {} gives nothing", o.key));
        }
    }
    let unique = |what: &str, ids: Vec<&String>| -> Result<(), String> {
        let mut s = ids.clone();
        s.sort();
        s.dedup();
        if s.len() != ids.len() {
            return Err(format!("{what} ids repeat: {ids:?}"));
        }
        Ok(())
    };
    unique("product", d.products.iter().map(|p| &p.id).collect())?;
    unique("offer", d.offers.iter().map(|p| &p.key).collect())?;
    unique("capability", d.capabilities.iter().map(|p| &p.id).collect())?;
    unique("limit", d.limits.iter().map(|p| &p.id).collect())?;
    unique("pool", d.credit_pools.iter().map(|p| &p.id).collect())?;
    unique("tool", d.tools.iter().map(|p| &p.id).collect())?;
    for p in &d.products {
        unique("tier", p.tiers.iter().collect())?;
        if p.tiers.is_empty() {
            return Err(format!("product {} has no tiers", p.id));
        }
    }
    for l in &d.limits {
        let p = c.product(&l.product).ok_or("limit of an unknown product")?;
        if p.tiers.len() != l.values.len() {
            return Err(format!(
                "limit {} values {:?} for tiers {:?}",
                l.id, l.values, p.tiers
            ));
        }
    }
    if !tollgate::money::is_currency(&d.catalog.currency) {
        return Err(format!("catalog currency `{}`", d.catalog.currency));
    }
    Ok(())
}

#[test]
fn random_mutations_of_the_shipped_catalogs_load_sanely_or_are_refused_with_a_place() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let bases: Vec<(Value, Vec<Vec<String>>)> = SHIPPED
        .iter()
        .map(|n| {
            let v = shipped_json(n);
            let mut all = Vec::new();
            paths(&v, &mut Vec::new(), &mut all);
            all.retain(|p| !p.is_empty());
            (v, all)
        })
        .collect();
    let config = Config {
        cases: 200,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (0..SHIPPED.len(), any::<usize>(), any::<usize>(), 1usize..=3);
    let result = runner.run(&strategy, |(b, pick, kind, n)| {
        let (base, all) = &bases[b];
        let mut v = base.clone();
        let mut done = Vec::new();
        for i in 0..n {
            let mut now = Vec::new();
            paths(&v, &mut Vec::new(), &mut now);
            now.retain(|p| !p.is_empty());
            let p = if now.is_empty() {
                continue;
            } else {
                now[(pick.wrapping_add(i * 7919)) % now.len()].clone()
            };
            done.push(mutate(&mut v, &p, kind.wrapping_add(i * 31)));
        }
        let _ = all;
        let src = serde_json::to_string(&v).unwrap();
        let loaded = no_panic(|| Catalog::from_json(&src))
            .map_err(|p| TestCaseError::fail(format!("{done:?}: from_json panicked: {p}")))?;
        match loaded {
            Err(e) => {
                prop_assert!(
                    !e.message.trim().is_empty(),
                    "{done:?}: an error without a message"
                );
                // Only a field missing from the document itself has no place below the root.
                // (A non-string at an enum field, `"period": 1`, is refused without a place:
                // `a_json_enum_field_of_the_wrong_type_names_its_field` shows it; left out here
                // so the other properties are still checked.)
                let enum_of_wrong_type = e
                    .message
                    .starts_with("invalid JSON catalog: expected value at line 1 column");
                prop_assert!(
                    !e.path.is_empty() || e.message.contains("missing field") || enum_of_wrong_type,
                    "{done:?}: refused without naming the place: {e}"
                );
            }
            Ok(c) => {
                sane(&c).map_err(|m| {
                    TestCaseError::fail(format!("{done:?}: loaded a wrong catalog: {m}"))
                })?;
                no_panic(|| exercise_inner(&c, false)).map_err(|p| {
                    TestCaseError::fail(format!("{done:?}: loaded, then panicked: {p}"))
                })?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A limit the store could not count (PostgreSQL's bigint) is refused at its field, in a
/// tier's value and in the value without an entitlement; the largest it can count loads.
#[test]
fn a_limit_past_what_the_store_counts_is_refused() {
    let doc = shipped_json("org-seats");
    let tier = doc["limits"][0]["values"].as_object().unwrap().keys().next().unwrap().clone();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        load_value(&d)
    };
    let e = with(&|d| d["limits"][0]["values"][&tier] = json!(u64::MAX)).unwrap_err().to_string();
    assert!(e.contains(&format!("limits[0].values.{tier}")) && e.contains("unlimited"), "{e}");
    let e = with(&|d| d["limits"][0]["without_entitlement"] = json!(u64::MAX)).unwrap_err().to_string();
    assert!(e.contains("limits[0].without_entitlement"), "{e}");
    with(&|d| d["limits"][0]["values"][&tier] = json!(i64::MAX)).expect("the largest count the store holds loads");
}
