//! Offers priced in more than one currency: a rupee catalog that also sells in dollars.
//! Amounts in two currencies are never compared as numbers (1,900 US cents are not less
//! than 49,900 paise): offers in the catalog's currency rank first (`Catalog::cheaper`),
//! for a denial's offer, the offers that unlock, the credit offer of a charge; a plan
//! change across currencies is refused (a subscription bills in one currency).

use tollgate::billing::facts::{SubStatus, Subject};
use tollgate::catalog::Provider;
use tollgate::checkout::{self, Account, Held};
use tollgate::decide::{self, Ask};
use tollgate::{Catalog, Entitlements, Timestamp};

const NOW: Timestamp = Timestamp(1_800_000_000);

/// A rupee app (Razorpay) that also sells its Enterprise tier to foreign buyers in dollars
/// through Stripe: $19 is about ₹1,600, more than three times the ₹499 Premium plan.
const RUPEE_APP: &str = r#"
[catalog]
id = "rupee-app"
name = "Rupee app"
version = "1"
currency = "inr"
provider = "razorpay"

[[products]]
id = "premium"
tiers = ["FREE", "PREMIUM", "ENTERPRISE"]
default_tier = "FREE"

[[credit_pools]]
id = "ai_credits"
label = "AI credits"
unit = "credit"

[[offers]]
key = "PREMIUM_MONTHLY"
label = "Premium"
price = { amount = 49900, currency = "inr", interval = "month" }
razorpay_plan_ids = ["plan_premium_monthly"]
grants = [{ product = "premium", tier = "PREMIUM" }]

[[offers]]
key = "ENTERPRISE_MONTHLY_USD"
label = "Enterprise (international)"
price = { amount = 1900, currency = "usd", interval = "month" }
provider = "stripe"
grants = [{ product = "premium", tier = "ENTERPRISE" }]

[[offers]]
key = "CREDITS_500"
label = "500 AI credits"
price = { amount = 9900, currency = "inr", interval = "one_time" }
credits = [{ pool = "ai_credits", amount = 500, per = "once" }]

[[offers]]
key = "CREDITS_500_USD"
label = "500 AI credits (international)"
price = { amount = 500, currency = "usd", interval = "one_time" }
provider = "stripe"
credits = [{ pool = "ai_credits", amount = 500, per = "once" }]

[[capabilities]]
id = "ai_generation"
product = "premium"
min_tier = "PREMIUM"
"#;

fn rupee_app() -> Catalog {
    Catalog::from_toml(RUPEE_APP).expect("offers in two currencies are a valid catalog")
}

fn nothing() -> Entitlements {
    Entitlements { subject: "user:u1".into(), ..Entitlements::default() }
}

#[test]
fn a_denial_names_the_rupee_plan_not_a_dollar_plan_whose_smaller_number_is_a_bigger_price() {
    let c = rupee_app();
    let d = decide::can(&c, &nothing(), "ai_generation", NOW).unwrap();
    assert!(!d.allowed);
    let named = d.upgrade.as_ref().map(|u| (u.offer.as_str(), u.display.as_str()));
    assert_eq!(
        named.map(|n| n.0),
        Some("PREMIUM_MONTHLY"),
        "the denial's cheapest offer is {named:?}: 1900 (US cents) was compared with 49900 (paise)"
    );
    let d = decide::has_access(&c, &nothing(), "premium", "PREMIUM", NOW).unwrap();
    assert_eq!(d.upgrade.map(|u| u.offer), Some("PREMIUM_MONTHLY".to_string()), "has_access");
}

#[test]
fn offers_unlocking_lists_the_rupee_plan_first() {
    let c = rupee_app();
    let list = decide::offers_unlocking(&c, &nothing(), Ask::Capability("ai_generation"), NOW).unwrap();
    let keys: Vec<&str> = list.iter().map(|u| u.upgrade.offer.as_str()).collect();
    assert_eq!(keys.first().copied(), Some("PREMIUM_MONTHLY"), "ranked by raw minor units across currencies: {keys:?}");
}

#[test]
fn the_cheapest_credit_offer_is_not_decided_by_comparing_cents_with_paise() {
    let c = rupee_app();
    let o = tollgate::usage::credit_offer(&c, &nothing(), "ai_credits", 1, NOW).map(|o| o.key.as_str());
    assert_eq!(o, Some("CREDITS_500"), "500 US cents ranked below 9900 paise");
}

/// A dollar catalog on Stripe that also bills an Indian plan in rupees: moving from the
/// ₹4,999 Basic to the $99 Pro is not decided by 9900 < 499900 (a "downgrade"): a
/// subscription's currency does not change, so the change is refused, saying so.
#[test]
fn a_plan_change_across_currencies_is_not_ranked_by_raw_amounts() {
    let src = r#"
[catalog]
id = "dollar-app"
name = "Dollar app"
version = "1"
currency = "usd"

[[products]]
id = "app"
tiers = ["basic", "pro"]

[[offers]]
key = "BASIC_INR"
label = "Basic (India)"
price = { amount = 499900, currency = "inr", interval = "month" }
grants = [{ product = "app", tier = "basic" }]

[[offers]]
key = "PRO_USD"
label = "Pro"
price = { amount = 9900, currency = "usd", interval = "month" }
grants = [{ product = "app", tier = "pro" }]
"#;
    let c = Catalog::from_toml(src).unwrap();
    let account = Account {
        subject: Subject::user("u1"),
        role: None,
        subscriptions: vec![Held {
            provider: Provider::Stripe,
            id: "sub_1".into(),
            offer: Some("BASIC_INR".into()),
            status: SubStatus::Active,
            quantity: 1,
            cancel_at_period_end: false,
            current_period_end: Some(Timestamp(NOW.0 + 86_400 * 20)),
            products: vec![("app".into(), "basic".into())],
        }],
        customers: vec![(Provider::Stripe, "cus_1".into())],
        seats_used: 0,
        email: None,
    };
    let refusal = checkout::change(&c, &account, Some("sub_1"), "PRO_USD", &[]).expect_err("a change of currency");
    assert_eq!(refusal.code, checkout::RefusalCode::NotSellable);
    assert!(refusal.message.contains("INR") && refusal.message.contains("USD"), "{}", refusal.message);
}
