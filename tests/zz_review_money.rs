//! Review of the money rules around refunds, disputes, expiry and Razorpay: each test
//! states what is right and why; each fails on the code as it is.

#[path = "events/support.rs"]
mod support;

use serde_json::json;
use support::*;

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
