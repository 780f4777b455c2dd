//! Credit lots through refunds, upgrades and operators' adjustments: each lot adds up
//! (granted = remaining + used + revoked + expired) and what was paid for is credited.

#[path = "events/support.rs"]
mod support;

use support::*;
use tollgate::billing::*;

const C: &str = "user:c";

fn link(cus: &str, user: &str, at: i64) -> Fact {
    Fact::customer_link(Provider::Stripe, cus, Subject::user(user), t(at))
}

/// A paid invoice `k` of `sub` for the period `[ps, pe)` with one item of `offer`, paid at `at`.
fn paid_at(sub: &str, k: usize, offer: &str, ps: i64, pe: i64, at: i64, amount: i64) -> Fact {
    Fact {
        key: format!("stripe:invoice:in_{sub}_{k}:paid"),
        provider: Provider::Stripe,
        event: format!("evt_{sub}_{k}"),
        at: t(at),
        body: FactBody::InvoicePaid(InvoicePaid {
            id: format!("stripe:in_{sub}_{k}"),
            subscription: format!("stripe:{sub}"),
            customer: Some("stripe:cus_c".into()),
            items: vec![Item { price: None, offer: Some(offer.into()), quantity: 1 }],
            period_start: Some(t(ps)),
            period_end: Some(t(pe)),
            amount,
            currency: "usd".into(),
            payment_refs: vec![format!("stripe:pi_{sub}_{k}")],
        }),
        catalog_version: None,
    }
}

fn use_(id: &str, pool: &str, units: u64, at: i64) -> Fact {
    Fact::usage(
        UsageFact {
            request_id: id.into(),
            subject: Subject::user("c"),
            pool: pool.into(),
            units,
            model: Some("standard".into()),
            quality: Some("standard".into()),
            takes: None,
            overage_units: 0,
            overage_cost: 0,
            currency: String::new(),
        },
        t(at),
    )
}

fn refund(id: &str, payment: &str, amount: i64, reversed: i64, at: i64) -> Fact {
    Fact {
        key: format!("stripe:refund:{id}:{reversed}"),
        provider: Provider::Stripe,
        event: format!("evt_{id}_{reversed}"),
        at: t(at),
        body: FactBody::Refund(Reversal {
            id: format!("stripe:{id}"),
            payment_refs: vec![payment.to_string()],
            amount,
            reversed,
            currency: "usd".into(),
            outcome: None,
        }),
        catalog_version: None,
    }
}

/// A small goodwill refund of a period's invoice after its allowance was used up leaves the
/// lot empty and closed; an upgrade paid later in the same period still tops it up (the
/// 5400 seconds it paid for were credited to no lot).
#[test]
fn a_partial_refund_of_a_spent_allowance_blocks_the_upgrade_top_up() {
    let cat = catalog();
    let fs = vec![
        link("cus_c", "c", T0),
        paid_at("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 60, 2900),
        use_("all", "video_seconds", 1800, T0 + DAY),
        // $1 goodwill refund of the period's invoice.
        refund("re_1", "stripe:pi_sub_c_0", 2900, 100, T0 + 2 * DAY),
        // Upgrade to Pro within the same period: the proration tops up the allowance.
        paid_at("sub_c", 1, "STUDIO_PRO_MONTHLY", T0, P1E, T0 + 10 * DAY, 5000),
    ];
    let st = fold(&cat, &fs, T0 + 11 * DAY);
    let w = &st.subject(C).unwrap().wallet;
    let lots: Vec<_> = w.lots.iter().filter(|l| l.pool == "video_seconds").collect();
    assert_eq!(
        st.balance(C, "video_seconds"),
        7200 - 1800,
        "the upgrade's allowance (7200) less the 1800 s already used: {lots:#?}"
    );
}

/// An operator's credit whose validity ended before it was given gives nothing (it was
/// credited as a lot that never expired).
#[test]
fn an_adjustment_already_expired_becomes_credits_that_never_expire() {
    let cat = catalog();
    let fs = vec![Fact::credit_adjustment(
        CreditAdjustment {
            id: "promo_1".into(),
            subject: Subject::user("c"),
            pool: "video_seconds".into(),
            amount: 500,
            reason: "promotion".into(),
            valid_to: Some(t(T0 - DAY)),
        },
        t(T0),
    )];
    let st = fold(&cat, &fs, T0 + 400 * DAY);
    let lot = st.subject(C).unwrap().wallet.lot("adjustment:promo_1").cloned();
    assert_eq!(st.balance(C, "video_seconds"), 0, "credits that expired before they were given: {lot:#?}");
}

/// An operator's debit (a negative `CreditAdjustment`) is counted as revoked on the lots it
/// takes from, so each still adds up (it lowered `remaining` and counted the units nowhere).
#[test]
fn a_debit_adjustment_breaks_the_lot_identity() {
    let cat = catalog();
    let adj = |id: &str, amount: i64, at: i64| {
        Fact::credit_adjustment(
            CreditAdjustment {
                id: id.into(),
                subject: Subject::user("c"),
                pool: "video_seconds".into(),
                amount,
                reason: "fix".into(),
                valid_to: None,
            },
            t(at),
        )
    };
    let st = fold(&cat, &[adj("give", 500, T0), adj("take", -200, T0 + 1)], T0 + DAY);
    let l = st.subject(C).unwrap().wallet.lot("adjustment:give").cloned().unwrap();
    assert_eq!(st.balance(C, "video_seconds"), 300);
    assert_eq!(l.granted, l.remaining + l.used + l.revoked + l.expired, "200 units unaccounted: {l:#?}");
}
