//! The shipped catalogs load and validate; JSON round-trips; broken catalogs
//! are refused with an error that names the field path and the TOML line.

use std::path::PathBuf;

use tollgate::catalog::{Interval, Rollover};
use tollgate::{Catalog, CatalogError, LimitValue};

fn catalog_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("catalogs")
}

fn shipped() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(catalog_dir())
        .expect("catalogs/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("readable catalog"))
        })
        .collect();
    out.sort();
    out
}

fn load(name: &str) -> Catalog {
    let src = std::fs::read_to_string(catalog_dir().join(format!("{name}.toml"))).unwrap();
    Catalog::from_toml(&src).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_shipped_catalog_validates_and_is_named_after_its_file() {
    let all = shipped();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["org-seats", "razorpay-ai", "vcm-suite", "video-studio"] {
        assert!(
            names.contains(&expected),
            "catalogs/{expected}.toml is missing (found {names:?})"
        );
    }
    for (name, src) in &all {
        let cat = Catalog::from_toml(src).unwrap_or_else(|e| panic!("catalogs/{name}.toml: {e}"));
        assert_eq!(&cat.meta().id, name, "catalog id must match the file name");
        assert!(!cat.meta().name.is_empty() && !cat.meta().version.is_empty());
        // `parse` picks TOML for these files too.
        assert_eq!(Catalog::parse(src).unwrap().doc, cat.doc);
    }
}

#[test]
fn json_round_trip_is_lossless() {
    for (name, src) in shipped() {
        let cat = Catalog::from_toml(&src).unwrap();
        let json = cat.to_json();
        let back = Catalog::from_json(&json)
            .unwrap_or_else(|e| panic!("{name}: JSON form does not load: {e}"));
        assert_eq!(
            back.doc, cat.doc,
            "{name}: JSON round trip changed the catalog"
        );
        assert_eq!(back.to_json(), json, "{name}: JSON form is not stable");
        // `parse` picks JSON by the opening brace.
        assert_eq!(Catalog::parse(&json).unwrap().doc, cat.doc);
    }
}

#[test]
fn vcm_suite_holds_the_apps_numbers() {
    let c = load("vcm-suite");
    let clouds = [
        "creation",
        "video",
        "writing",
        "file",
        "monetization",
        "intelligence",
        "music",
        "growth",
        "shopping",
        "advertising",
    ];
    for cloud in clouds {
        let p = c.product(cloud).unwrap_or_else(|| panic!("cloud {cloud}"));
        assert_eq!(p.tiers, ["free", "basic", "pro", "enterprise"]);
        assert_eq!(p.default_tier.as_deref(), Some("free"));
    }
    let suite = c.product("suite").unwrap();
    assert_eq!(suite.tiers, ["free", "starter", "basic", "pro"]);
    assert_eq!(c.meta().plan_product.as_deref(), Some("suite"));
    // The VCM Suite's OFFERS_REGISTRY, in cents, with its price ids.
    for (price_id, cents) in [
        ("price_vcm_starter_monthly", 999),
        ("price_vcm_basic_monthly", 2900),
        ("price_vcm_pro_monthly", 5900),
        ("price_vcm_pro_two_clouds", 9900),
        ("price_vcm_pro_three_clouds", 12000),
        ("price_vcm_pro_all_clouds", 19900),
    ] {
        let o = c
            .offer_by_price_id(price_id)
            .unwrap_or_else(|| panic!("{price_id}"));
        assert_eq!(
            (o.price.amount, o.price.interval, o.price.currency.as_str()),
            (cents, Interval::Month, "usd")
        );
    }
    // Bundles: choose N clouds (never the plan itself); all clouds: every product.
    let two = c.offer_by_price_id("price_vcm_pro_two_clouds").unwrap();
    assert!(two
        .grants
        .iter()
        .any(|g| g.choose == Some(2) && g.from.len() == 10 && g.tier == "pro"));
    let three = c.offer_by_price_id("price_vcm_pro_three_clouds").unwrap();
    assert!(three
        .grants
        .iter()
        .any(|g| g.choose == Some(3) && g.tier == "pro"));
    let all = c.offer("CLOUD_ALL_PRO_MONTHLY").unwrap();
    assert!(all.grants.iter().all(|g| g.all_products && g.tier == "pro"));
    for cloud in clouds {
        assert_eq!(c.offer_tier_for(all, cloud), c.tier_index(cloud, "pro"));
    }
    // The VCM Suite's cloud offer keys.
    for (key, product, tier) in [
        ("CLOUD_CREATION_BASIC_MONTHLY", "creation", "basic"),
        ("CLOUD_CREATION_PRO_MONTHLY", "creation", "pro"),
        ("CLOUD_VIDEO_PRO_MONTHLY", "video", "pro"),
        ("CLOUD_WRITING_PRO_MONTHLY", "writing", "pro"),
    ] {
        let o = c.offer(key).unwrap_or_else(|| panic!("{key}"));
        assert_eq!(
            c.offer_tier_for(o, product),
            c.tier_index(product, tier),
            "{key}"
        );
    }
    // The capability ids the VCM Suite-compatible helpers depend on.
    for cap in [
        "use_ai",
        "export_full_res",
        "watermark_exports",
        "heavy_tools",
        "multi_step_heavy_tools",
    ] {
        assert_eq!(
            c.capability(cap).unwrap_or_else(|| panic!("{cap}")).product,
            "suite"
        );
    }
    assert_eq!(
        c.capability("watermark_exports").unwrap().tiers.as_deref(),
        Some(&["starter".to_string()][..])
    );
    let runs = c.limit("workflow_runs_per_day").unwrap();
    assert_eq!(runs.values["starter"], LimitValue::Limited(3));
    assert_eq!(runs.values["basic"], LimitValue::Unlimited);
    assert_eq!(runs.values["pro"], LimitValue::Unlimited);
    // The benchmark's page of 30 tools, spread over pages named after clouds.
    assert_eq!(c.tools().len(), 30);
    for t in c.tools() {
        assert!(
            clouds.contains(&t.page.as_str()),
            "tool {} is on page {}",
            t.id,
            t.page
        );
    }
    assert!(c.meta().grace_period_days > 0);
}

#[test]
fn video_studio_holds_the_apps_numbers() {
    let c = load("video-studio");
    assert_eq!(
        c.product("video").unwrap().tiers,
        ["creator", "pro", "agency", "studio"]
    );
    let pool = c.pool("video_seconds").unwrap();
    assert_eq!(
        (pool.unit.as_str(), pool.rollover),
        ("second", Rollover::Capped)
    );
    for (tier, cents, seconds) in [
        ("creator", 2900, 1800),
        ("pro", 7900, 7200),
        ("agency", 19900, 18000),
        ("studio", 39900, 36000),
    ] {
        let o = c
            .offers()
            .iter()
            .find(|o| c.offer_tier_for(o, "video") == c.tier_index("video", tier))
            .unwrap_or_else(|| panic!("plan {tier}"));
        assert_eq!(
            (o.price.amount, o.price.interval),
            (cents, Interval::Month),
            "{tier}"
        );
        assert_eq!(o.credits.len(), 1);
        assert_eq!(
            (o.credits[0].pool.as_str(), o.credits[0].amount),
            ("video_seconds", seconds)
        );
    }
    let mut bundles: Vec<(i64, i64)> = c
        .offers()
        .iter()
        .filter(|o| o.price.interval == Interval::OneTime)
        .map(|o| (o.price.amount, o.credits[0].amount))
        .collect();
    bundles.sort();
    assert_eq!(bundles, [(1900, 1800), (5900, 7200), (12900, 18000)]);
    let u = c.doc.usage.as_ref().unwrap();
    assert_eq!(
        (
            u.pool.as_str(),
            u.currency.as_str(),
            u.default_overage_limit
        ),
        ("video_seconds", "usd", 10000)
    );
    assert_eq!(u.overage_multiplier.to_string(), "1.5");
    let rates: Vec<String> = u
        .rates
        .iter()
        .map(|r| {
            format!(
                "{}/{}={}x{}",
                r.model, r.quality, r.base_price_per_second, r.multiplier
            )
        })
        .collect();
    assert_eq!(
        rates,
        [
            "standard/watermark=0.01x1.0",
            "standard/standard=0.015x1.2",
            "standard/hd=0.02x1.5",
            "pro/watermark=0.02x1.0",
            "pro/standard=0.03x1.2",
            "pro/hd=0.04x1.5",
            "pro/ultra_hd=0.06x2.0",
            "ultra/standard=0.05x1.0",
            "ultra/hd=0.07x1.3",
            "ultra/ultra_hd=0.10x1.8",
            "ultra/studio=0.15x2.5",
        ]
    );
}

#[test]
fn razorpay_ai_holds_the_apps_numbers() {
    let c = load("razorpay-ai");
    let p = c.product("premium").unwrap();
    assert_eq!(p.tiers, ["FREE", "PREMIUM", "ENTERPRISE"]);
    assert_eq!(p.default_tier.as_deref(), Some("FREE"));
    assert_eq!(c.meta().currency, "inr");
    assert_eq!(c.pool("ai_credits").unwrap().rollover, Rollover::Reset);
    assert_eq!(c.pool("free_drafts").unwrap().free_amount, 2);
    let topup = c
        .offers()
        .iter()
        .find(|o| o.price.interval == Interval::OneTime)
        .unwrap();
    assert_eq!((topup.price.amount, topup.credits[0].amount), (9900, 500));
    assert!(topup.grants.is_empty());
    let ent = c
        .offers()
        .iter()
        .find(|o| c.offer_tier_for(o, "premium") == Some(2))
        .unwrap();
    assert_eq!((ent.price.amount, ent.credits[0].amount), (99900, 5000));
    let monthly = c.offer("PREMIUM_MONTHLY").unwrap();
    assert_eq!(monthly.credits[0].amount, 2000);
    for o in c.offers().iter().filter(|o| !o.grants.is_empty()) {
        assert!(
            !o.razorpay_plan_ids.is_empty(),
            "{} has no Razorpay plan id",
            o.key
        );
    }
    assert_eq!(c.meta().grace_period_days, 3);
}

#[test]
fn org_seats_holds_the_apps_numbers() {
    use tollgate::catalog::SubjectKind;
    let c = load("org-seats");
    assert_eq!(
        c.product("org").unwrap().tiers,
        [
            "FREE",
            "PROFESSIONAL",
            "BUSINESS",
            "BUSINESS_PLUS",
            "ENTERPRISE"
        ]
    );
    for o in c.offers() {
        assert_eq!(o.subject, SubjectKind::Organization, "{}", o.key);
        let s = o
            .seats
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no seats", o.key));
        assert!(s.included == 1 && s.per_quantity);
        assert_eq!(o.price.currency, "cad");
    }
    let l = |id: &str, tier: &str| c.limit_value(c.limit(id).unwrap(), c.tier_index("org", tier));
    let n = LimitValue::Limited;
    assert_eq!(
        [
            "FREE",
            "PROFESSIONAL",
            "BUSINESS",
            "BUSINESS_PLUS",
            "ENTERPRISE"
        ]
        .map(|t| l("max_courses_authored", t)),
        [n(1), n(10), n(50), n(200), LimitValue::Unlimited]
    );
    assert_eq!(
        [
            "FREE",
            "PROFESSIONAL",
            "BUSINESS",
            "BUSINESS_PLUS",
            "ENTERPRISE"
        ]
        .map(|t| l("max_students_per_course", t)),
        [n(10), n(100), n(500), n(2000), LimitValue::Unlimited]
    );
    // getTierFeatures' booleans, tier by tier.
    let table = [
        ("ai_assistant_access", [false, true, true, true, true]),
        ("ai_coach_access", [false, true, true, true, true]),
        ("advanced_analytics", [false, true, true, true, true]),
        ("custom_branding", [false, false, true, true, true]),
        ("sso_enabled", [false, false, true, true, true]),
        ("priority_support", [false, false, true, true, true]),
    ];
    for (cap, row) in table {
        let capability = c.capability(cap).unwrap_or_else(|| panic!("{cap}"));
        let got: Vec<bool> = (0..5)
            .map(|t| c.capability_holds(capability, Some(t)))
            .collect();
        assert_eq!(got, row, "{cap}");
    }
}

// ---------------------------------------------------------------------------------------------
// Broken catalogs: each must fail with the field path and the line in the TOML source.
// ---------------------------------------------------------------------------------------------

/// A small valid catalog the broken cases start from.
const BASE: &str = r#"[catalog]
id = "test"
name = "Test"
version = "1"
currency = "usd"
plan_product = "plan"

[[products]]
id = "video"
tiers = ["free", "basic", "pro"]
default_tier = "free"

[[products]]
id = "plan"
tiers = ["free", "pro"]

[[credit_pools]]
id = "seconds"
unit = "second"

[[offers]]
key = "VIDEO_BASIC"
label = "Video Basic"
price = { amount = 1900, currency = "usd", interval = "month" }
stripe_price_ids = ["price_basic"]
grants = [{ product = "video", tier = "basic" }]

[[offers]]
key = "VIDEO_PRO"
label = "Video Pro"
price = { amount = 4900, currency = "usd", interval = "month" }
stripe_price_ids = ["price_pro"]
grants = [
  { product = "video", tier = "pro" },
  { product = "plan", tier = "pro" },
]

[[offers]]
key = "BUNDLE"
label = "Bundle"
price = { amount = 9900, currency = "usd", interval = "month" }
grants = [{ choose = 2, from = ["video", "plan"], tier = "pro" }]

[[capabilities]]
id = "use_ai"
product = "plan"
min_tier = "pro"

[[limits]]
id = "runs"
product = "video"
values = { free = 0, basic = 3, pro = "unlimited" }

[usage]
pool = "seconds"
currency = "usd"
overage_multiplier = "1.5"

[[usage.rates]]
model = "standard"
quality = "hd"
base_price_per_second = "0.02"
multiplier = "1.5"

[[usage.rates]]
model = "pro"
quality = "hd"
base_price_per_second = "0.04"
multiplier = "1.5"

[[tools]]
id = "trimmer"
label = "Trimmer"
page = "video"
requires = { product = "video", tier = "basic" }
"#;

/// One broken catalog: replace `from` in BASE with `to`; the error must name
/// `path` and point at the line holding `at` (searched in the broken source).
struct Broken {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    path: &'static str,
    message: &'static str,
    at: &'static str,
}

const BROKEN: &[Broken] = &[
    Broken {
        what: "unknown product in an offer grant",
        from: r#"grants = [{ product = "video", tier = "basic" }]"#,
        to: r#"grants = [{ product = "vidoe", tier = "basic" }]"#,
        path: "offers[0].grants[0].product",
        message: "unknown product `vidoe`",
        at: r#""vidoe""#,
    },
    Broken {
        what: "unknown tier in a multi-line grant list",
        from: r#"  { product = "plan", tier = "pro" },"#,
        to: r#"  { product = "plan", tier = "platinum" },"#,
        path: "offers[1].grants[1].tier",
        message: "`platinum` is not a tier of product `plan`",
        at: "platinum",
    },
    Broken {
        what: "duplicate offer key",
        from: r#"key = "BUNDLE""#,
        to: r#"key = "VIDEO_PRO""#,
        path: "offers[2].key",
        message: "offer key `VIDEO_PRO` is defined twice",
        at: "key = \"VIDEO_PRO\"\nlabel = \"Bundle\"",
    },
    Broken {
        what: "limit missing a tier",
        from: r#"values = { free = 0, basic = 3, pro = "unlimited" }"#,
        to: r#"values = { free = 0, pro = "unlimited" }"#,
        path: "limits[0].values",
        message: "no value for tier `basic`",
        at: "values = { free = 0, pro",
    },
    Broken {
        what: "limit for a tier the product does not have",
        from: r#"values = { free = 0, basic = 3, pro = "unlimited" }"#,
        to: r#"values = { free = 0, basic = 3, pro = "unlimited", gold = 9 }"#,
        path: "limits[0].values.gold",
        message: "`gold` is not a tier of product `video`",
        at: "gold",
    },
    Broken {
        what: "negative limit (the -1 'unlimited' sentinel)",
        from: r#"values = { free = 0, basic = 3, pro = "unlimited" }"#,
        to: r#"values = { free = 0, basic = 3, pro = -1 }"#,
        path: "limits[0].values.pro",
        message: "write \"unlimited\"",
        at: "pro = -1",
    },
    Broken {
        what: "negative price",
        from: "price = { amount = 4900,",
        to: "price = { amount = -4900,",
        path: "offers[1].price.amount",
        message: "a price cannot be negative",
        at: "-4900",
    },
    Broken {
        what: "TOML syntax error: bare word value",
        from: r#"key = "BUNDLE""#,
        to: "key = BUNDLE",
        path: "",
        message: "",
        at: "key = BUNDLE",
    },
    Broken {
        what: "TOML syntax error: unclosed array, reported where the parser finds it",
        from: r#"tiers = ["free", "pro"]"#,
        to: r#"tiers = ["free", "pro""#,
        path: "",
        message: "expected `,`",
        at: "[[credit_pools]]",
    },
    Broken {
        what: "float where a decimal string is required",
        from: "base_price_per_second = \"0.04\"\nmultiplier = \"1.5\"",
        to: "base_price_per_second = \"0.04\"\nmultiplier = 1.5",
        path: "usage.rates[1].multiplier",
        message: "write decimals as strings",
        at: "multiplier = 1.5",
    },
    Broken {
        what: "float price (money is integer minor units)",
        from: "price = { amount = 1900,",
        to: "price = { amount = 19.99,",
        path: "offers[0].price.amount",
        message: "floating point",
        at: "19.99",
    },
    Broken {
        what: "float overage multiplier",
        from: r#"overage_multiplier = "1.5""#,
        to: "overage_multiplier = 1.5",
        path: "usage.overage_multiplier",
        message: "write decimals as strings",
        at: "overage_multiplier = 1.5",
    },
    Broken {
        what: "misspelt field",
        from: r#"min_tier = "pro""#,
        to: r#"min_teir = "pro""#,
        path: "capabilities[0].min_teir",
        message: "min_teir",
        at: "min_teir",
    },
    Broken {
        what: "missing required field",
        from: "label = \"Bundle\"\n",
        to: "",
        path: "offers[2]",
        message: "label",
        at: "[[offers]]\nkey = \"BUNDLE\"",
    },
    Broken {
        what: "default tier that is not a tier",
        from: r#"default_tier = "free""#,
        to: r#"default_tier = "gratis""#,
        path: "products[0].default_tier",
        message: "`gratis` is not a tier of product `video`",
        at: "gratis",
    },
    Broken {
        what: "duplicate product",
        from: "id = \"plan\"\ntiers",
        to: "id = \"video\"\ntiers",
        path: "products[1].id",
        message: "product `video` is defined twice",
        at: "id = \"video\"\ntiers = [\"free\", \"pro\"]",
    },
    Broken {
        what: "unknown plan product",
        from: r#"plan_product = "plan""#,
        to: r#"plan_product = "suite""#,
        path: "catalog.plan_product",
        message: "unknown product `suite`",
        at: "plan_product",
    },
    Broken {
        what: "capability at an unknown tier",
        from: r#"min_tier = "pro""#,
        to: r#"min_tier = "basic""#,
        path: "capabilities[0].min_tier",
        message: "`basic` is not a tier of product `plan`",
        at: r#"min_tier = "basic""#,
    },
    Broken {
        what: "bundle choosing more products than it offers",
        from: "choose = 2,",
        to: "choose = 3,",
        path: "offers[2].grants[0].choose",
        message: "between 1 and 2 products",
        at: "choose = 3",
    },
    Broken {
        what: "price id on two offers",
        from: r#"stripe_price_ids = ["price_pro"]"#,
        to: r#"stripe_price_ids = ["price_basic"]"#,
        path: "offers[1].stripe_price_ids[0]",
        message: "price id `price_basic` belongs to two offers",
        at: "stripe_price_ids = [\"price_basic\"]\ngrants = [\n",
    },
    Broken {
        what: "upper-case currency",
        from: r#"price = { amount = 1900, currency = "usd""#,
        to: r#"price = { amount = 1900, currency = "USD""#,
        path: "offers[0].price.currency",
        message: "ISO 4217",
        at: "\"USD\"",
    },
    Broken {
        what: "usage drawing on an unknown pool",
        from: r#"pool = "seconds""#,
        to: r#"pool = "minutes""#,
        path: "usage.pool",
        message: "unknown credit pool `minutes`",
        at: r#"pool = "minutes""#,
    },
    Broken {
        what: "tool needing an unknown capability",
        from: r#"requires = { product = "video", tier = "basic" }"#,
        to: r#"requires = { capability = "use_magic" }"#,
        path: "tools[0].requires.capability",
        message: "unknown capability `use_magic`",
        at: "use_magic",
    },
    Broken {
        what: "duplicate usage rate",
        from: "model = \"pro\"\nquality = \"hd\"",
        to: "model = \"standard\"\nquality = \"hd\"",
        path: "usage.rates[1]",
        message: "rate standard x hd is defined twice",
        at: "[[usage.rates]]\nmodel = \"standard\"\nquality = \"hd\"\nbase_price_per_second = \"0.04\"",
    },
    Broken {
        what: "unknown interval",
        from: r#"currency = "usd", interval = "month" }
stripe_price_ids = ["price_basic"]"#,
        to: r#"currency = "usd", interval = "weekly" }
stripe_price_ids = ["price_basic"]"#,
        path: "offers[0].price.interval",
        message: "weekly",
        at: "weekly",
    },
];

fn line_of(src: &str, needle: &str) -> usize {
    let at = src
        .find(needle)
        .unwrap_or_else(|| panic!("marker {needle:?} not in the broken source"));
    src[..at].matches('\n').count() + 1
}

fn broken_source(b: &Broken) -> String {
    assert_eq!(
        BASE.matches(b.from).count(),
        1,
        "{}: `from` must occur exactly once in BASE",
        b.what
    );
    BASE.replacen(b.from, b.to, 1)
}

#[test]
fn the_base_catalog_is_valid() {
    let c = Catalog::from_toml(BASE).unwrap();
    assert_eq!(c.products().len(), 2);
}

#[test]
fn broken_catalogs_name_the_field_and_the_line() {
    let mut failures = Vec::new();
    for b in BROKEN {
        let src = broken_source(b);
        let err: CatalogError = match Catalog::from_toml(&src) {
            Ok(_) => {
                failures.push(format!("{}: was accepted", b.what));
                continue;
            }
            Err(e) => e,
        };
        let want_line = line_of(&src, b.at);
        let shown = err.to_string();
        if err.path != b.path {
            failures.push(format!(
                "{}: path `{}`, want `{}` ({shown})",
                b.what, err.path, b.path
            ));
        }
        if err.line != Some(want_line) {
            failures.push(format!(
                "{}: line {:?}, want {want_line} ({shown})",
                b.what, err.line
            ));
        }
        if !err.message.contains(b.message) {
            failures.push(format!(
                "{}: message {:?} lacks {:?}",
                b.what, err.message, b.message
            ));
        }
        // The human form carries both.
        if !shown.contains(&format!("line {want_line}")) || !shown.contains(b.path) {
            failures.push(format!(
                "{}: display {shown:?} lacks the path or the line",
                b.what
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn broken_json_catalogs_name_the_field() {
    let good = Catalog::from_toml(BASE).unwrap().to_json();
    // A validation error in JSON names the path (JSON has no line for a semantic error).
    let bad = good.replacen(r#""tier":"basic""#, r#""tier":"gold""#, 1);
    let e = Catalog::from_json(&bad).unwrap_err();
    assert_eq!(e.path, "offers[0].grants[0].tier", "{e}");
    // A syntax error carries the line.
    let e = Catalog::from_json("{\n  \"catalog\": {\n    \"id\": \n}").unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    // A float for a decimal is refused in JSON too.
    let bad = good.replacen(
        r#""overage_multiplier":"1.5""#,
        r#""overage_multiplier":1.5"#,
        1,
    );
    assert!(Catalog::from_json(&bad)
        .unwrap_err()
        .message
        .contains("write decimals as strings"));
}
