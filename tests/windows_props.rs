//! Property tests of the windows the core gives with its answers: a decision's
//! `holds_until`, the per-product tier window (`decide::effective`: `since`..`until`, what
//! the engine's cache and the npm package's `window()` keep), `next_change` (what the React
//! provider re-renders at and what the package keeps a denial for) and the snapshot's end
//! (`snapshot::entitlements_under`).
//!
//! The rule checked everywhere: an answer handed out again at any instant inside the window
//! it came with equals the answer asked fresh at that instant. The instants looked at are
//! the ones where anything can change (every grant's start, end and grace end, one second
//! before each, the window's last second), so a failure names the instant where a cached
//! answer goes stale.
//!
//! Runs write no regression files. A denial's offer is not held to `holds_until`: it may
//! change at another product's boundary (the package keeps a denial only until `next_change`).

#[path = "events/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::Config;
use support::shipped;
use tollgate::decide::{self, Ask, Usage};
use tollgate::vcm::{self, CloudEntitlementRow};
use tollgate::{Catalog, Engine, Entitlements, Grant, Source, Status, Timestamp};

const NOW0: i64 = 1_800_000_000;
const H: i64 = 3600;
const DAY: i64 = support::DAY;
const EXAMPLES: [&str; 4] = ["vcm-suite", "video-studio", "razorpay-ai", "org-seats"];

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, max_shrink_iters: 4000, ..Config::default() }
}

fn catalogs() -> &'static [(String, Arc<Catalog>)] {
    static C: std::sync::OnceLock<Vec<(String, Arc<Catalog>)>> = std::sync::OnceLock::new();
    C.get_or_init(|| EXAMPLES.iter().map(|n| (n.to_string(), Arc::new(shipped(n)))).collect())
}

// ------------------------------------------------------------------ generated entitlements

/// An instant: mostly on a 6-hour grid around NOW0 (so grants start and end together,
/// and grace periods of whole days land on the grid), sometimes a second off it.
fn instant() -> BoxedStrategy<i64> {
    prop_oneof![
        6 => (-40i64..=40).prop_map(|k| NOW0 + k * 6 * H),
        2 => ((-40i64..=40), (-1i64..=1)).prop_map(|(k, d)| NOW0 + k * 6 * H + d),
        1 => (-12i64..=12).prop_map(|k| NOW0 + k * DAY),
    ]
    .boxed()
}

/// Instants including the ends of the representable range.
fn hostile_instant() -> BoxedStrategy<i64> {
    prop_oneof![
        4 => instant(),
        1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MIN + DAY, i64::MAX - DAY, i64::MAX - 1, i64::MAX]),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct Spec {
    product: usize,
    /// Tier index; one past the last: a tier the product does not have.
    tier: usize,
    /// 0 active, 1 trial, 2 past due, 3 canceled (until its period end), 4 paused.
    status: u8,
    from: i64,
    to: Option<i64>,
    past_due_since: Option<i64>,
    /// Which of the offers that give the product (None: no offer).
    offer: Option<usize>,
    /// Which subscription it belongs to (None: no source_ref).
    sub: Option<u8>,
    /// Lent by an organization through a seat.
    lent: bool,
}

fn spec(t: BoxedStrategy<i64>) -> impl Strategy<Value = Spec> {
    (
        0usize..16,
        0usize..6,
        0u8..5,
        t.clone(),
        prop::option::weighted(0.7, t.clone()),
        prop::option::weighted(0.4, t),
        prop::option::weighted(0.7, 0usize..8),
        prop::option::weighted(0.7, 0u8..3),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(product, tier, status, from, to, past_due_since, offer, sub, lent)| Spec {
            product,
            tier,
            status,
            from,
            to,
            past_due_since,
            offer,
            sub,
            lent,
        })
}

fn grants_of(c: &Catalog, specs: &[Spec]) -> Entitlements {
    let products = c.products();
    let grants = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = &products[s.product % products.len()];
            let tier = if s.tier % (p.tiers.len() + 1) == p.tiers.len() { "retired".to_string() } else { p.tiers[s.tier % (p.tiers.len() + 1)].clone() };
            let giving: Vec<&str> =
                c.offers().iter().filter(|o| c.offer_tier_for(o, &p.id).is_some()).map(|o| o.key.as_str()).collect();
            let offer = s.offer.and_then(|k| (!giving.is_empty()).then(|| giving[k % giving.len()].to_string()));
            let (status, paused_since, to) = match s.status {
                0 => (Status::Active, None, s.to),
                1 => (Status::Trial, None, s.to),
                2 => (Status::PastDue, None, s.to),
                3 => (Status::Canceled, None, s.to),
                // Paused: the grant ends at the pause.
                _ => {
                    let at = s.to.unwrap_or(s.from);
                    (Status::Active, Some(at), Some(at))
                }
            };
            let own = match s.sub {
                Some(k) => format!("sub_{k}:{}:{i}", p.id),
                None => format!("manual_grant:{}:{i}", p.id),
            };
            Grant {
                id: if s.lent { format!("org:o1:{own}") } else { own },
                product: p.id.clone(),
                tier,
                source: if s.sub.is_some() { Source::Stripe } else { Source::ManualGrant },
                status,
                valid_from: Timestamp(s.from),
                valid_to: to.map(Timestamp),
                past_due_since: if status == Status::PastDue { s.past_due_since.map(Timestamp) } else { None },
                offer,
                source_ref: s.sub.map(|k| format!("stripe:sub_{k}")),
                catalog_version: None,
                renewal_version: None,
                period_start: None,
                paused_since: paused_since.map(Timestamp),
            }
        })
        .collect();
    Entitlements::new(grants)
}

fn case() -> impl Strategy<Value = (usize, Vec<Spec>, i64, u64)> {
    (0usize..EXAMPLES.len(), prop::collection::vec(spec(instant()), 0..6), instant(), prop::sample::select(vec![0u64, 1, 2, 3, 5, 100]))
}

fn hostile_case() -> impl Strategy<Value = (usize, Vec<Spec>, i64, u64)> {
    (
        0usize..EXAMPLES.len(),
        prop::collection::vec(spec(hostile_instant()), 0..5),
        hostile_instant(),
        prop::sample::select(vec![0u64, 3, u64::MAX]),
    )
}

// ------------------------------------------------------------------ questions and answers

#[derive(Clone, Debug)]
enum Q {
    Access(String, String),
    Can(String),
    Limit(String),
    CheckLimit(String, u64),
    Tool(String),
    Page(Option<String>),
}

fn questions(c: &Catalog, used: u64) -> Vec<Q> {
    let mut qs = Vec::new();
    for p in c.products() {
        for t in &p.tiers {
            qs.push(Q::Access(p.id.clone(), t.clone()));
        }
    }
    qs.extend(c.doc.capabilities.iter().map(|x| Q::Can(x.id.clone())));
    for l in &c.doc.limits {
        qs.push(Q::Limit(l.id.clone()));
        qs.push(Q::CheckLimit(l.id.clone(), used));
    }
    qs.extend(c.tools().iter().map(|t| Q::Tool(t.id.clone())));
    let pages: BTreeSet<String> = c.tools().iter().map(|t| t.page.clone()).collect();
    qs.push(Q::Page(None));
    qs.extend(pages.into_iter().map(|p| Q::Page(Some(p))));
    qs
}

fn usage_of(c: &Catalog, used: u64) -> Usage {
    c.doc.limits.iter().map(|l| (l.id.clone(), used)).collect()
}

/// An answer: what access it gives (`access`: allowed, reason, tier, deciding grant; a
/// limit's value), the whole of it as handed to the app (`full`: with the offer a denial
/// names) and the window it says it holds for.
struct Answer {
    access: String,
    /// `access` without the deciding grant (which grant explains it).
    verdict: String,
    full: String,
    holds_until: Option<Timestamp>,
}

fn d_access(d: &tollgate::Decision) -> String {
    format!("{} {:?} {:?} {:?}", d.allowed, d.reason, d.tier, d.grant)
}

fn d_verdict(d: &tollgate::Decision) -> String {
    format!("{} {:?} {:?}", d.allowed, d.reason, d.tier)
}

fn d_full(d: &tollgate::Decision) -> String {
    format!("{} upgrade={:?}", d_access(d), d.upgrade.as_ref().map(|u| &u.offer))
}

fn ask(c: &Catalog, e: &Entitlements, q: &Q, used: u64, t: Timestamp) -> Answer {
    let one = |d: tollgate::Decision| Answer { access: d_access(&d), verdict: d_verdict(&d), full: d_full(&d), holds_until: d.holds_until };
    match q {
        Q::Access(p, tier) => one(decide::has_access(c, e, p, tier, t).unwrap()),
        Q::Can(x) => one(decide::can(c, e, x, t).unwrap()),
        Q::CheckLimit(x, u) => one(decide::check_limit(c, e, x, *u, t).unwrap()),
        Q::Limit(x) => {
            let l = decide::limit(c, e, x, t).unwrap();
            let s = format!("{:?} {:?}", l.limit, l.tier);
            Answer { access: s.clone(), verdict: s.clone(), full: s, holds_until: l.holds_until }
        }
        Q::Tool(x) => {
            let s = decide::tool_state(c, e, x, &usage_of(c, used), t).unwrap();
            Answer { access: format!("{} {}", s.locked, d_access(&s.decision)), verdict: d_verdict(&s.decision), full: d_full(&s.decision), holds_until: s.decision.holds_until }
        }
        Q::Page(p) => {
            let all = decide::page_state(c, e, p.as_deref(), &usage_of(c, used), t).unwrap();
            Answer {
                access: all.iter().map(|s| format!("{}:{} {}", s.tool, s.locked, d_access(&s.decision))).collect::<Vec<_>>().join("; "),
                verdict: all.iter().map(|s| format!("{}:{}", s.tool, d_verdict(&s.decision))).collect::<Vec<_>>().join("; "),
                full: all.iter().map(|s| format!("{}:{}", s.tool, d_full(&s.decision))).collect::<Vec<_>>().join("; "),
                // A page is kept as long as every tool on it holds.
                holds_until: all.iter().filter_map(|s| s.decision.holds_until).min(),
            }
        }
    }
}

/// Every answer of the subject at `t` that holds until `next_change` (every question,
/// with its offer, the export policy when the catalog has it, and the offers of the
/// upgrade dialog for every denied access question).
fn everything(c: &Catalog, e: &Entitlements, used: u64, t: Timestamp) -> Vec<String> {
    let mut out: Vec<String> = questions(c, used).iter().map(|q| format!("{q:?} => {}", ask(c, e, q, used, t).full)).collect();
    if let Ok(x) = decide::export_policy(c, e, t) {
        out.push(format!("export {x:?}"));
    }
    for p in c.products() {
        for tier in &p.tiers {
            let list = decide::offers_unlocking(c, e, Ask::Access { product: &p.id, tier }, t).unwrap();
            out.push(format!("unlock {}:{tier} {:?}", p.id, list.iter().map(|u| (&u.upgrade.offer, &u.clouds, &u.replaces)).collect::<Vec<_>>()));
        }
    }
    out
}

/// Every instant at which any grant's standing can change.
fn boundaries(c: &Catalog, e: &Entitlements) -> BTreeSet<i64> {
    let grace = c.meta().grace_period_days as i64;
    let mut b = BTreeSet::new();
    for g in &e.grants {
        b.insert(g.valid_from.0);
        if let Some(t) = g.valid_to {
            b.insert(t.0);
        }
        if g.status == Status::PastDue {
            b.insert(decide::grace_end(g, grace as u32).0);
        }
    }
    b
}

/// The instants of `[lo, hi)` to look at: `lo`, `lo + 1`, `hi - 1`, and every boundary
/// inside with the second before it; `hi` None: open (a point far after the last boundary too).
fn probes(c: &Catalog, e: &Entitlements, lo: i64, hi: Option<i64>) -> Vec<i64> {
    let end = hi.unwrap_or(i64::MAX);
    let mut v = BTreeSet::new();
    v.insert(lo);
    for x in [lo.saturating_add(1), end.saturating_sub(1)] {
        v.insert(x);
    }
    for b in boundaries(c, e) {
        v.insert(b);
        v.insert(b.saturating_sub(1));
        v.insert(b.saturating_add(1));
    }
    if hi.is_none() {
        let last = boundaries(c, e).into_iter().max().unwrap_or(lo).max(lo);
        v.insert(last.saturating_add(1000 * DAY));
    }
    v.into_iter().filter(|&t| t >= lo && t < end).collect()
}

fn render(e: &Entitlements) -> String {
    e.grants
        .iter()
        .map(|g| {
            format!(
                "{{id {} {}:{} {:?} from {} to {:?} pds {:?} paused {:?} offer {:?} ref {:?}}}",
                g.id,
                g.product,
                g.tier,
                g.status,
                g.valid_from.0,
                g.valid_to.map(|t| t.0),
                g.past_due_since.map(|t| t.0),
                g.paused_since.map(|t| t.0),
                g.offer,
                g.source_ref
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Checks that every answer asked at `now` equals the answer asked fresh at each instant of
/// its window (`full`: the whole answer, with the offer; else the access it gives).
fn window_holds(c: &Catalog, e: &Entitlements, used: u64, now: i64, full: bool) -> Result<(), TestCaseError> {
    for q in questions(c, used) {
        let a = ask(c, e, &q, used, Timestamp(now));
        if let Some(w) = a.holds_until {
            prop_assert!(w.0 > now, "{q:?}: a window that ends at {} before or at now {now}", w.0);
        }
        for t in probes(c, e, now, a.holds_until.map(|w| w.0)) {
            let b = ask(c, e, &q, used, Timestamp(t));
            let (x, y) = if full { (&a.full, &b.full) } else { (&a.access, &b.access) };
            prop_assert_eq!(
                x,
                y,
                "{:?} asked at now={} holds until {:?}, but fresh at t={} it differs\n  {}",
                q,
                now,
                a.holds_until.map(|w| w.0),
                t,
                render(e)
            );
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(config(1000))]

    /// (1) The access an answer gives holds for its whole window (`holds_until`), for every
    /// question of every shipped catalog: tier access, capability, limit value and check,
    /// tool, page.
    #[test]
    fn access_holds_for_its_window((ci, specs, now, used) in case()) {
        let (_, c) = &catalogs()[ci];
        let e = grants_of(c, &specs);
        window_holds(c, &e, used, now, false)?;
    }

    /// (3) The per-product tier window (`effective`: `since <= now < until`), which the engine
    /// and the npm package's `window()` cache: the tier and the deciding grant are the same at
    /// every instant of it, before `now` as well as after.
    #[test]
    fn tier_window_holds_both_ways((ci, specs, now, _used) in case()) {
        let (_, c) = &catalogs()[ci];
        let e = grants_of(c, &specs);
        for p in c.products() {
            let a = decide::effective(c, &e, &p.id, Timestamp(now)).unwrap();
            let lo = a.since.map_or(i64::MIN, |s| s.0);
            prop_assert!(lo <= now && a.until.is_none_or(|u| u.0 > now), "{}: window [{lo}, {:?}) misses now {now}", p.id, a.until);
            let mut ts = probes(c, &e, lo, a.until.map(|u| u.0));
            ts.push(now);
            for t in ts {
                let b = decide::effective(c, &e, &p.id, Timestamp(t)).unwrap();
                prop_assert_eq!(
                    (a.tier, a.grant.map(|g| &g.id), a.reason, a.lapsed),
                    (b.tier, b.grant.map(|g| &g.id), b.reason, b.lapsed),
                    "{} at now={} window [{}, {:?}), fresh at {}\n  {}", p.id, now, lo, a.until.map(|u| u.0), t, render(&e)
                );
            }
        }
    }

    /// (1)+(4) `next_change`: every answer (with its offer, the export policy and the upgrade
    /// dialog's list) is the same at every instant before it; none means no grant changes
    /// later, and it is never at or before now.
    #[test]
    fn nothing_changes_before_next_change((ci, specs, now, used) in case()) {
        let (_, c) = &catalogs()[ci];
        let e = grants_of(c, &specs);
        let next = decide::next_change(c, &e, Timestamp(now));
        if let Some(n) = next {
            prop_assert!(n.0 > now);
        } else {
            prop_assert!(boundaries(c, &e).iter().all(|&b| b <= now), "next_change None while a grant changes later");
        }
        let a = everything(c, &e, used, Timestamp(now));
        for t in probes(c, &e, now, next.map(|n| n.0)) {
            let b = everything(c, &e, used, Timestamp(t));
            for (x, y) in a.iter().zip(&b) {
                prop_assert_eq!(x, y, "now={} next_change={:?} fresh at {}\n  {}", now, next.map(|n| n.0), t, render(&e));
            }
        }
    }

    /// (4) With hostile times: no window ends at or before now, `next_change` is after now,
    /// and no decision's window ends before the subject's next change (it is one of them).
    #[test]
    fn windows_never_end_before_now((ci, specs, now, used) in hostile_case()) {
        let (_, c) = &catalogs()[ci];
        let e = grants_of(c, &specs);
        let next = decide::next_change(c, &e, Timestamp(now));
        prop_assert!(next.is_none_or(|n| n.0 > now));
        for q in questions(c, used) {
            let a = ask(c, &e, &q, used, Timestamp(now));
            prop_assert!(a.holds_until.is_none_or(|w| w.0 > now), "{q:?}: holds_until {:?} <= now {now}", a.holds_until);
            prop_assert!(a.holds_until.is_none_or(|w| next.is_some_and(|n| n <= w)), "{q:?}: holds_until {:?} before next_change {next:?}", a.holds_until);
        }
    }

    /// (1) With times at the ends of i64, grants ending before they start, grants ending
    /// exactly at now: the access part still holds for its window.
    #[test]
    fn hostile_times_keep_windows((ci, specs, now, used) in hostile_case()) {
        let (_, c) = &catalogs()[ci];
        let e = grants_of(c, &specs);
        window_holds(c, &e, used, now, false)?;
        for p in c.products() {
            let a = decide::effective(c, &e, &p.id, Timestamp(now)).unwrap();
            for t in probes(c, &e, now, a.until.map(|u| u.0)) {
                prop_assert_eq!(a.tier, decide::effective(c, &e, &p.id, Timestamp(t)).unwrap().tier, "{} now={} t={}\n  {}", p.id, now, t, render(&e));
            }
        }
    }

    /// The engine's per-product cache (`Engine::check`, `effective_tier`), asked at instants
    /// in any order (a clock going back included), answers as a fresh `has_access` does.
    #[test]
    fn engine_cache_answers_fresh((ci, specs, times) in (0usize..EXAMPLES.len(), prop::collection::vec(spec(hostile_instant()), 0..6), prop::collection::vec(hostile_instant(), 1..12))) {
        let (_, c) = &catalogs()[ci];
        let e = grants_of(c, &specs);
        let engine = Engine::shared(Arc::clone(c), e.clone());
        for &t in &times {
            for (pi, p) in c.products().iter().enumerate() {
                let fresh = decide::effective(c, &e, &p.id, Timestamp(t)).unwrap().tier;
                prop_assert_eq!(engine.effective_tier(pi, Timestamp(t)), fresh, "{} at {} (times {:?})\n  {}", p.id, t, times, render(&e));
                for ti in 0..p.tiers.len() {
                    let d = decide::has_access(c, &e, &p.id, &p.tiers[ti], Timestamp(t)).unwrap();
                    prop_assert_eq!(engine.check(pi, ti, Timestamp(t)), d.allowed);
                }
            }
        }
    }

    /// The VCM Suite rows path (`hasAccess(rows, cloud, tier)` in the package): the window is
    /// computed from the rows of the one cloud (`rowsWindow`), the answer from all rows; the
    /// answer at every instant of the window is the fresh one.
    #[test]
    fn rows_window_holds((specs, now, created) in (prop::collection::vec(spec(hostile_instant()), 0..6), instant(), prop::option::of(hostile_instant()))) {
        let c = &catalogs()[0].1;
        let e = grants_of(c, &specs);
        let rows = |keep_from: bool| -> Vec<CloudEntitlementRow> {
            e.grants.iter().enumerate().map(|(i, g)| CloudEntitlementRow {
                id: Some(g.id.clone()),
                user_id: None,
                cloud_id: g.product.clone(),
                tier: g.tier.clone(),
                source: g.source,
                status: g.status,
                // Every other row without `valid_from`: its `created_at`, else the distant past.
                valid_from: if keep_from || i % 2 == 0 { Some(g.valid_from) } else { None },
                valid_to: g.valid_to,
                created_at: created.map(Timestamp),
                updated_at: g.past_due_since,
                past_due_since: None,
                offer_key: g.offer.clone(),
                source_ref: g.source_ref.clone(),
            }).collect()
        };
        let all = rows(false);
        for p in c.products() {
            let mine: Vec<Grant> = all.iter().filter(|r| r.cloud_id == p.id).cloned().map(CloudEntitlementRow::into_grant).collect();
            let only = Entitlements::new(mine);
            let w = decide::effective(c, &only, &p.id, Timestamp(now)).unwrap();
            let lo = w.since.map_or(i64::MIN, |s| s.0);
            let every = Entitlements::new(all.iter().cloned().map(CloudEntitlementRow::into_grant).collect());
            for t in probes(c, &every, lo, w.until.map(|u| u.0)) {
                for tier in &p.tiers {
                    let fresh = vcm::has_access_rows(c, all.clone(), &p.id, tier, Timestamp(t)).unwrap().allowed;
                    prop_assert_eq!(w.tier.is_some_and(|x| x >= c.tier_index(&p.id, tier).unwrap()), fresh, "{}:{} window [{}, {:?}) at {}", p.id, tier, lo, w.until.map(|u| u.0), t);
                }
            }
        }
    }

    /// (3) A snapshot's end (`entitlements_under`, what the package and the React provider
    /// decide on): before it, every access answer is the subject's own (allowed, reason,
    /// tier; the grant named as the reason may differ: ending an open grant at the snapshot's
    /// end changes which of two equal grants explains it); from it on, no
    /// grant gives anything, so `next_change` never runs past it while a grant gave access.
    #[test]
    // (The snapshot's end on the ordinary grid, the grants anywhere: an end at the very start
    // of time is `snapshot_end_near_i64_min_still_ends_a_past_due_grace`.)
    fn snapshot_end_gives_the_same_before_and_nothing_after((ci, specs, end, used) in (0usize..EXAMPLES.len(), prop::collection::vec(spec(hostile_instant()), 0..5), instant(), prop::sample::select(vec![0u64, 3]))) {
        let (_, c) = &catalogs()[ci];
        let own = grants_of(c, &specs);
        let under = tollgate::snapshot::entitlements_under(c, None, Some(Timestamp(end)), own.clone()).unwrap();
        let grace = c.meta().grace_period_days;
        let mut ts: Vec<i64> = boundaries(c, &own).into_iter().chain(boundaries(c, &under)).flat_map(|b| [b.saturating_sub(1), b, b.saturating_add(1)]).collect();
        ts.extend([end.saturating_sub(1), end, end.saturating_add(1)]);
        for t in ts {
            if t < end {
                for q in questions(c, used) {
                    prop_assert_eq!(ask(c, &own, &q, used, Timestamp(t)).verdict, ask(c, &under, &q, used, Timestamp(t)).verdict, "{:?} at {} (end {})\n  {}", q, t, end, render(&own));
                }
            } else {
                for g in &under.grants {
                    prop_assert!(!decide::counts(g, grace, Timestamp(t)), "grant {} still counts at {t}, after the snapshot's end {end}\n  {}", g.id, render(&under));
                }
            }
        }
    }
}

/// The VCM Suite catalog as version 2 (active) and an older version 1 whose plan gave more:
/// AI from Basic, full-resolution export from Starter, 7 workflow runs a day on Starter.
fn vcm_versions() -> &'static (Catalog, std::collections::BTreeMap<u32, Catalog>) {
    static V: std::sync::OnceLock<(Catalog, std::collections::BTreeMap<u32, Catalog>)> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let src = std::fs::read_to_string(format!("{}/catalogs/vcm-suite.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let active = Catalog::parse(&src).unwrap().with_version(2);
        let old_src = src
            .replacen("id = \"use_ai\"\nlabel = \"Use AI tools\"\nproduct = \"suite\"\nmin_tier = \"pro\"", "id = \"use_ai\"\nlabel = \"Use AI tools\"\nproduct = \"suite\"\nmin_tier = \"basic\"", 1)
            .replacen("free = 0, starter = 3,", "free = 0, starter = 7,", 1);
        assert_ne!(old_src, src, "the old version differs");
        let old = Catalog::parse(&old_src).unwrap().with_version(1);
        (active, [(1u32, old)].into_iter().collect())
    })
}

proptest! {
    #![proptest_config(config(300))]

    /// (3) A snapshot carries the grandfathered terms of `now` and expires at `terms_until`:
    /// every access answer made on the active catalog with those terms holds, for the window
    /// it gives (and before the snapshot expires), as the answer made fresh on the terms of
    /// that instant.
    #[test]
    fn grandfathered_terms_hold_for_the_window((specs, old, now, used) in (prop::collection::vec(spec(instant()), 0..6), prop::collection::vec(any::<bool>(), 6), instant(), prop::sample::select(vec![0u64, 3, 5, 7]))) {
        let (active, versions) = vcm_versions();
        let mut e = grants_of(active, &specs);
        for (g, o) in e.grants.iter_mut().zip(&old) {
            if *o {
                g.catalog_version = Some(1);
                g.renewal_version = Some(1);
            }
        }
        let at_now = tollgate::grandfather::terms(active, versions, &e.grants, Timestamp(now));
        let c_now = tollgate::grandfather::apply(active, &at_now);
        let expires = tollgate::grandfather::terms_until(active, &e.grants, Timestamp(now));
        prop_assert!(expires.is_none_or(|x| x.0 > now));
        for q in questions(active, used) {
            let a = ask(&c_now, &e, &q, used, Timestamp(now));
            let w = match (a.holds_until, expires) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            for t in probes(active, &e, now, w.map(|x| x.0)) {
                let (c_t, _) = tollgate::grandfather::catalog_for(active, versions, &e.grants, Timestamp(t));
                let b = ask(&c_t, &e, &q, used, Timestamp(t));
                prop_assert_eq!(&a.access, &b.access, "{:?} at now={} window {:?} (terms until {:?}), fresh at {}\n  {}", q, now, a.holds_until.map(|x| x.0), expires.map(|x| x.0), t, render(&e));
            }
        }
    }
}

// ------------------------------------------------------------------ counterexamples, pinned

fn grant(id: &str, product: &str, tier: &str, status: Status, from: i64, to: Option<i64>) -> Grant {
    Grant {
        id: id.into(),
        product: product.into(),
        tier: tier.into(),
        source: Source::Stripe,
        status,
        valid_from: Timestamp(from),
        valid_to: to.map(Timestamp),
        past_due_since: None,
        offer: None,
        source_ref: None,
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

/// Hostile values with a known answer: a grant ending exactly at now gives nothing now and its
/// window is not reported as holding past now; a grant ending before it starts gives
/// nothing at any instant; open ends at i64::MAX.
#[test]
fn hostile_edges_by_hand() {
    let c = shipped("vcm-suite");
    let now = NOW0;
    let ending = Entitlements::new(vec![grant("a", "suite", "pro", Status::Active, now - DAY, Some(now))]);
    let d = decide::has_access(&c, &ending, "suite", "pro", Timestamp(now)).unwrap();
    assert!(!d.allowed);
    assert_eq!(d.holds_until, None, "nothing of `suite` changes after now");
    let d = decide::has_access(&c, &ending, "suite", "pro", Timestamp(now - 1)).unwrap();
    assert!(d.allowed);
    assert_eq!(d.holds_until, Some(Timestamp(now)));

    let backwards = Entitlements::new(vec![grant("b", "suite", "pro", Status::Active, now, Some(now - DAY))]);
    for t in [now - DAY - 1, now - DAY, now - 1, now, now + 1, i64::MAX] {
        assert!(!decide::has_access(&c, &backwards, "suite", "pro", Timestamp(t)).unwrap().allowed, "at {t}");
    }

    let open = Entitlements::new(vec![grant("c", "suite", "pro", Status::Active, i64::MIN, None)]);
    for t in [i64::MIN, 0, i64::MAX - 1, i64::MAX] {
        let d = decide::has_access(&c, &open, "suite", "pro", Timestamp(t)).unwrap();
        assert!(d.allowed && d.holds_until.is_none(), "at {t}: {d:?}");
    }

    let mut pd = grant("d", "suite", "pro", Status::PastDue, i64::MIN, None);
    pd.past_due_since = Some(Timestamp(i64::MAX - 10));
    let pd = Entitlements::new(vec![pd]);
    let d = decide::has_access(&c, &pd, "suite", "pro", Timestamp(i64::MAX - 1)).unwrap();
    assert!(d.allowed);
    assert_eq!(d.holds_until, Some(Timestamp(i64::MAX)));
    assert_eq!(decide::next_change(&c, &pd, Timestamp(i64::MAX - 1)), Some(Timestamp(i64::MAX)));
}
