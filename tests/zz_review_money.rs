//! Review of the money rules around refunds, disputes, expiry and Razorpay: each test
//! states what is right and why; each fails on the code as it is.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;
use tollgate::billing::*;

const C: &str = "user:c";

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

/// Stripe's `charge.refunded` as the core reads it: `reversed` is the charge's
/// `amount_refunded` so far (cumulative), one fact per amount.
fn refund(id: &str, payment: &str, amount: i64, reversed: i64, at: i64) -> Fact {
    Fact {
        key: format!("stripe:charge:{id}:refunded:{reversed}"),
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

/// Period 1 (invoice 0) leaves its 1800 s unused: they roll into period 2. Period 2 uses
/// 1800 s, which its own allowance covers (allowance is spent before rollover), so the
/// 1800 s carried from period 1 are still unused at the next renewal and roll on into
/// period 3. Invoice 0 is then refunded in full, either a day after the first renewal or a
/// day after the second one.
///
/// Expected: the same balance both ways (1800 s: period 3's allowance only). The refund of
/// invoice 0 takes back what it paid for wherever the renewals carried it, as the project's
/// own rule says for one renewal (`a_refund_after_the_renewal_takes_back_what_rolled_over`:
/// a refund told after the renewal takes back what the renewal carried over). After two
/// renewals the refund follows only one hop of the carry (`carried` maps the allowance lot to
/// period 2's rollover lot, already closed and carried on into period 3's), so it takes
/// nothing: the customer keeps 1800 s of a payment refunded in full.
#[test]
fn a_refund_after_two_renewals_takes_back_what_rolled_over_twice() {
    let cat = catalog();
    let base = vec![
        link("cus_c", "c", T0),
        paid_at("sub_c", 0, "STUDIO_BASIC_MONTHLY", T0, P1E, T0 + 60, 2900),
        paid_at("sub_c", 1, "STUDIO_BASIC_MONTHLY", P1E, P2E, P1E + 60, 2900),
        paid_at("sub_c", 2, "STUDIO_BASIC_MONTHLY", P2E, P3E, P2E + 60, 2900),
        use_("p2", "video_seconds", 1800, P1E + 2 * DAY),
    ];
    let now = P2E + 3 * DAY;
    let mut early = base.clone();
    early.push(refund("ch_0", "stripe:pi_sub_c_0", 2900, 2900, P1E + DAY));
    let e = fold(&cat, &early, now);
    let mut late = base.clone();
    late.push(refund("ch_0", "stripe:pi_sub_c_0", 2900, 2900, P2E + 2 * DAY));
    let l = fold(&cat, &late, now);
    let lots = |st: &BillingState| {
        st.subject(C).unwrap().wallet.lots.iter().map(|l| (l.key.clone(), l.granted, l.remaining, l.revoked, l.expired)).collect::<Vec<_>>()
    };
    assert_eq!(e.balance(C, "video_seconds"), 1800, "refunded after one renewal: {:#?}", lots(&e));
    assert_eq!(l.balance(C, "video_seconds"), 1800, "refunded after two renewals, period 1's seconds are kept: {:#?}", lots(&l));
}

/// A Razorpay dispute of part of a payment: the Razorpay AI app's 500-credit top-up paid
/// ₹199 (19900 paise), a chargeback of ₹99.50 (9950 paise) lost. Razorpay's dispute entity
/// carries the disputed `amount`, which may be less than the payment's.
///
/// Expected: the lost dispute takes back the disputed share of the credits (250 of 500), as
/// a refund of the same amount does; the customer got ₹99.50 back, not ₹199. The core takes
/// every dispute as the whole payment (`reverse_payment`: `full = dispute || ...`, and the
/// Razorpay parser sets `reversed = amount` of the dispute, so even its own share is lost),
/// so all 500 credits go for half the money.
#[test]
fn a_lost_partial_razorpay_dispute_takes_back_only_the_disputed_share() {
    let cat = catalog();
    let buy = rzp_facts(&cat, &event("razorpay/payment.captured.json"));
    let lost = rzp_facts(
        &cat,
        &edit("razorpay/payment.dispute.created.json", |v| {
            v["event"] = json!("payment.dispute.lost");
            v["created_at"] = json!(T0 + 20 * DAY);
            let d = &mut v["payload"]["dispute"]["entity"];
            d["payment_id"] = json!("pay_00000000000009");
            d["amount"] = json!(9950);
            d["status"] = json!("lost");
        }),
    );
    let now = T0 + 21 * DAY;
    assert_eq!(fold(&cat, &buy, now).balance("user:u_456", "ai_credits"), 500);
    let st = fold(&cat, &[buy, lost].concat(), now);
    assert_eq!(st.balance("user:u_456", "ai_credits"), 250, "half the payment disputed and lost");
}
