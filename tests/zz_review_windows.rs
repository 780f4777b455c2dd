//! Review of time windows and refills: failing tests, one per bug found.

use serde_json::{json, Value};
use tollgate::billing::facts::Fact;
use tollgate::billing::reduce;
use tollgate::meter;
use tollgate::{Catalog, Timestamp};

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn fact(v: Value) -> Fact {
    serde_json::from_value(v).unwrap()
}

/// A Stripe snapshot of `stripe:sub_1` (Razorpay AI app's Premium monthly) for `[ps, pe)`.
fn snapshot(key: &str, at: &str, ps: &str, pe: &str) -> Fact {
    fact(json!({"key": key, "provider": "stripe", "at": at, "type": "subscription", "id": "stripe:sub_1",
        "status": "active", "items": [{"offer": "PREMIUM_MONTHLY", "quantity": 1}], "period_start": ps,
        "period_end": pe, "started_at": "2026-01-31T00:00:00Z", "subject": "user:u1"}))
}

/// Stripe's `invoice.paid` of `stripe:sub_1` for `[ps, pe)`.
fn invoice_paid(key: &str, at: &str, inv: &str, ps: &str, pe: &str) -> Fact {
    fact(json!({"key": key, "provider": "stripe", "at": at, "type": "invoice_paid", "id": inv,
        "subscription": "stripe:sub_1", "items": [{"offer": "PREMIUM_MONTHLY", "quantity": 1}],
        "period_start": ps, "period_end": pe, "amount": 49900, "currency": "inr",
        "payment_refs": [format!("{inv}:pi")]}))
}

/// A Premium (monthly) subscriber of the Razorpay AI app billed on the 31st: its first
/// period Jan 31 -> Feb 28 is told by the subscription's snapshot and its invoice; its
/// renewal Feb 28 -> Mar 31 by the renewal's `invoice.paid` alone (Stripe does not order
/// deliveries; the `customer.subscription.updated` of the renewal is late or retried).
///
/// Expected: on March 5th the subscription's current paid period is Feb 28 -> Mar 31,
/// which the paid invoice says; the grant's `period_start` ("the start of its current paid
/// period", ARCHITECTURE.md / model.rs) is Feb 28, the monthly limit `monthly_ai_credits`
/// (anchor = subscription) counts from Feb 28 and the subscription's period (what the
/// store's `current_period_start` and so the overage cap's window come from) starts then.
/// Billing state is a pure function of the set of facts: this set says the renewal was paid.
///
/// Actual: `on_invoice_paid` moves `paid_through`/`period_end` to Mar 31 but keeps
/// `period_start = e.period_start.or(i.period_start)` (the old Jan 31), so the grant runs
/// Jan 31 -> Mar 31 with `period_start` Jan 31 and `limit_window` answers one window of two
/// months, [Jan 31, Mar 31): February's uses still count in March (no reset on Feb 28) and
/// `resets_at` is Mar 31 for a window that should have turned already.
#[test]
fn a_renewal_told_by_its_paid_invoice_turns_the_monthly_window() {
    let c = Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap();
    let li = c.limit_index("monthly_ai_credits").unwrap();
    let facts = vec![
        snapshot("s1", "2026-01-31T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
        invoice_paid("p1", "2026-01-31T00:00:01Z", "stripe:in_1", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
        invoice_paid("p2", "2026-02-28T01:00:00Z", "stripe:in_2", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"),
    ];
    let now = ts("2026-03-05T00:00:00Z");
    let st = reduce(&c, &facts, now);
    let ents = st.entitlements_for("user:u1");
    let g = ents.grants.iter().find(|g| g.product == "premium").expect("the renewal was paid: Premium holds");
    assert_eq!(g.valid_to, Some(ts("2026-03-31T00:00:00Z")), "setup: the renewal was folded");
    let w = meter::limit_window(&c, &ents, li, now);
    assert_eq!(
        (w.start, w.resets_at),
        (ts("2026-02-28T00:00:00Z"), Some(ts("2026-03-31T00:00:00Z"))),
        "the monthly window on March 5th is the paid period Feb 28 -> Mar 31, not Jan 31 -> Mar 31"
    );
    assert_eq!(g.period_start, Some(ts("2026-02-28T00:00:00Z")), "the grant's current paid period starts Feb 28");
    let s = st.subscriptions.get("stripe:sub_1").expect("the subscription");
    assert_eq!(s.period_start, Some(ts("2026-02-28T00:00:00Z")), "the subscription's current period (the overage cap's) starts Feb 28");
}

/// The Org Seats app with one credit pool that its Professional (monthly) plan, an
/// organization's plan, fills every period: the organization's allowance. A member holding
/// a seat has the organization's grant lent to it (`org:<id>:...`) for access and
/// capabilities only, and holds no lot of the pool itself.
///
/// Expected: the member's own pool never refills (the allowance goes to the organization's
/// lots, never to the member's), so a pool check of the member says `resets_at: null`, and
/// a snapshot's `refills` leaves the pool out: "a pool left out does not refill". Lent grants
/// are left out of every other per-subject rule (limits: `effective_for_limit`; paused:
/// `paused_product`; `usage.rs` skips `lent_by_seat()` for credit offers).
///
/// Actual: `meter::pool_refill` reads every grant of the entitlements, the lent ones too,
/// and answers the organization's period end (Apr 1) as when the member's pool refills.
/// The worker's `POST /v1/check` on a pool and the snapshot's `refills` pass the merged
/// entitlements (`entitlements_for_snapshot`), so the app tells the member credits will
/// come on April 1st that never come.
#[test]
fn a_members_pool_does_not_refill_with_its_organizations_plan() {
    let src = include_str!("../catalogs/org-seats.toml")
        .replace("trial_days = 14\n", "trial_days = 14\ncredits = [{ pool = \"ai_minutes\", amount = 100, per = \"period\" }]\n")
        + "\n[[credit_pools]]\nid = \"ai_minutes\"\nlabel = \"AI minutes\"\nunit = \"minute\"\n";
    let c = Catalog::from_toml(&src).unwrap();
    let org_grant = tollgate::Grant {
        id: "stripe:sub_org:org".into(),
        product: "org".into(),
        tier: "PROFESSIONAL".into(),
        source: tollgate::Source::Stripe,
        status: tollgate::Status::Active,
        valid_from: ts("2026-03-01T00:00:00Z"),
        valid_to: Some(ts("2026-04-01T00:00:00Z")),
        past_due_since: None,
        offer: Some("ORG_PROFESSIONAL_MONTHLY".into()),
        source_ref: Some("stripe:sub_org".into()),
        catalog_version: None,
        renewal_version: None,
        period_start: Some(ts("2026-03-01T00:00:00Z")),
        paused_since: None,
    };
    let member = tollgate::seats::merge_seated_grants(tollgate::Entitlements::default(), &[("o1".into(), true, vec![org_grant])]);
    assert!(member.grants[0].lent_by_seat(), "setup: the organization's grant is lent");
    let now = ts("2026-03-10T00:00:00Z");
    assert_eq!(meter::pool_refill(&c, &member, "ai_minutes", now), None, "the member's own pool is not refilled by the organization's plan");
    assert_eq!(meter::check_feature(&c, &member, "ai_minutes", 1, 0, now).unwrap().resets_at, None);
    assert!(meter::pool_refills(&c, &member, now).is_empty(), "a snapshot's `refills` names no pool of the member");
}
