//! Kept events, on the in-memory store through the worker's routes and its scheduled run:
//! every run retries every kept event (those only an operator can settle never hide the
//! ones behind them); a fact told twice while kept leaves neither telling kept once it is
//! applied; an organization's plan is never attributed to a user.

mod common;

use serde_json::{json, Value};

use common::{block, config, hmac, NoNetwork, ADMIN_SECRET, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;
const U1: &str = "00000000-0000-4000-8000-0000000000b1";
const U2: &str = "00000000-0000-4000-8000-0000000000b2";
const U3: &str = "00000000-0000-4000-8000-0000000000b3";

struct T {
    app: App<NoNetwork, MemoryStore>,
}

impl T {
    fn new() -> T {
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "vcm-suite"), NoNetwork, MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        app.ctx.store.add_user(U2);
        T { app }
    }

    async fn call(&self, method: Method, path: &str, query: &str, headers: Headers, body: Vec<u8>, now: i64) -> (u16, Value) {
        let req = InRequest { method, path: path.into(), query: query.into(), headers, body };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn stripe_at(&self, event: &Value, now: i64) -> (u16, Value) {
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{payload}")));
        let headers = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
        self.call(Method::Post, "/webhooks/stripe", "", headers, payload.into_bytes(), now).await
    }

    async fn stripe(&self, event: &Value) -> (u16, Value) {
        self.stripe_at(event, NOW).await
    }

    fn admin_headers() -> Headers {
        Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
    }

    async fn attribute(&self, body: Value) -> (u16, Value) {
        self.call(Method::Post, "/v1/admin/attribute", "", T::admin_headers(), body.to_string().into_bytes(), NOW).await
    }

    fn grants(&self, uid: &str) -> Vec<Value> {
        self.app.ctx.store.grants(&Subject::user(uid))
    }

    fn kept_ids(&self) -> Vec<String> {
        self.app.ctx.store.kept().into_iter().map(|(_, e, _)| e).collect()
    }
}

fn envelope(id: &str, ty: &str, at: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
           "data": {"object": object}})
}

/// A subscription checkout of the suite's Pro plan, as Stripe sends it (no line items).
fn checkout(n: &str, metadata: Value, client_reference_id: Option<&str>) -> Value {
    envelope(
        &format!("evt_cs_{n}"),
        "checkout.session.completed",
        NOW - 60,
        json!({"id": format!("cs_{n}"), "object": "checkout.session", "mode": "subscription", "status": "complete",
               "payment_status": "paid", "customer": format!("cus_{n}"), "subscription": format!("sub_{n}"),
               "client_reference_id": client_reference_id, "metadata": metadata,
               "amount_total": 5900, "currency": "usd", "created": NOW - 60}),
    )
}

/// A kept event behind a hundred that only an operator can settle (they name no buyer) is
/// retried and applied on the first scheduled run after its user exists: every run pages
/// through every kept event.
#[test]
fn a_kept_event_behind_a_hundred_unattributable_ones_is_never_retried() {
    block(async {
        let t = T::new();
        // A hundred paid checkouts naming no buyer: each waits for an operator.
        for i in 0..100 {
            let (status, v) = t.stripe(&checkout(&format!("anon{i:03}"), json!({"offer_key": "SUITE_PRO_MONTHLY"}), None)).await;
            assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        }
        // Then a checkout naming a user who has not signed up yet: kept, waiting for the user.
        let (status, v) = t.stripe(&checkout("u3", json!({"offer_key": "SUITE_PRO_MONTHLY"}), Some(U3))).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert!(v["waiting_for"].to_string().contains(U3), "{v}");
        // The user signs up; the scheduled runs come.
        t.app.ctx.store.add_user(U3);
        for run in 1..=3 {
            t.app.scheduled(Timestamp(NOW + run * 600)).await.expect("scheduled run");
        }
        let g = t.grants(U3);
        assert_eq!(g.len(), 1, "U3 paid for the suite's Pro plan and holds nothing after three runs: {g:?}");
        assert_eq!((g[0]["cloud_id"].as_str(), g[0]["tier"].as_str()), (Some("suite"), Some("pro")), "{g:?}");
        assert!(!t.kept_ids().contains(&"evt_cs_u3".to_string()), "the checkout is still kept");
    })
}

/// U1's one-time purchase of Video Studio's 30-minute pack (`cs_<n>`, payment `pi_<n>`),
/// naming `buyer` (or nobody), told at `at`.
fn pack_checkout(n: &str, buyer: Option<&str>, at: i64) -> Value {
    envelope(
        &format!("evt_cs_{n}"),
        "checkout.session.completed",
        at,
        json!({"id": format!("cs_{n}"), "object": "checkout.session", "mode": "payment", "status": "complete",
               "payment_status": "paid", "customer": format!("cus_{n}"), "subscription": null,
               "payment_intent": format!("pi_{n}"), "client_reference_id": buyer,
               "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"}, "amount_total": 1900, "currency": "usd", "created": at}),
    )
}

/// An open dispute of the pack's charge, as event `id` of type `ty` tells it at `at`.
fn open_dispute(id: &str, ty: &str, n: &str, at: i64) -> Value {
    envelope(
        id,
        ty,
        at,
        json!({"id": format!("dp_{n}"), "object": "dispute", "charge": format!("ch_{n}"), "payment_intent": format!("pi_{n}"),
               "amount": 1900, "currency": "usd", "status": "needs_response", "created": at}),
    )
}

/// `charge.dispute.created` and `.updated` of a payment not known yet are both kept (one
/// fact at its earliest telling). Once the payment arrives and the dispute applies, the
/// later telling is settled too when it is tried again: neither stays kept.
#[test]
fn a_dispute_told_twice_before_its_payment_leaves_its_second_telling_kept_forever() {
    block(async {
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        let t = T { app };
        let (_, v) = t.stripe(&open_dispute("evt_dp_created", "charge.dispute.created", "d1", NOW - 50)).await;
        assert_eq!(v["status"], "kept", "the payment it reverses is not known yet: {v}");
        let (_, v) = t.stripe(&open_dispute("evt_dp_updated", "charge.dispute.updated", "d1", NOW - 40)).await;
        assert_eq!(v["status"], "kept", "{v}");
        // The paid checkout arrives: the pack is credited and the open dispute takes it back.
        let (_, v) = t.stripe(&pack_checkout("d1", Some(U1), NOW - 60)).await;
        assert_eq!(v["status"], "applied", "{v}");
        assert_eq!(t.app.ctx.store.balance(&Subject::user(U1), "video_seconds"), 0, "the open dispute took the pack back");
        for run in 1..=2 {
            t.app.scheduled(Timestamp(NOW + run * 600)).await.expect("scheduled run");
        }
        let kept = t.kept_ids();
        assert!(kept.is_empty(), "the dispute is applied, yet these deliveries stay kept: {kept:?}");
    })
}

/// A kept checkout of an offer sold to organizations (Org Seats' `ORG_PROFESSIONAL_MONTHLY`)
/// attributed to a user is refused (409 `invalid_offer`, as `/v1/checkout` refuses the
/// pairing) and stays kept for the organization.
#[test]
fn an_organizations_plan_kept_for_want_of_a_buyer_is_attributed_to_a_user() {
    block(async {
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "org-seats"), NoNetwork, MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        let t = T { app };
        let ev = envelope(
            "evt_cs_org1",
            "checkout.session.completed",
            NOW - 60,
            json!({"id": "cs_org1", "object": "checkout.session", "mode": "subscription", "status": "complete",
                   "payment_status": "paid", "customer": "cus_org1", "subscription": "sub_org1",
                   "client_reference_id": null, "metadata": {"offer_key": "ORG_PROFESSIONAL_MONTHLY", "quantity": "5"},
                   "amount_total": 12500, "currency": "cad", "created": NOW - 60}),
        );
        let (status, v) = t.stripe(&ev).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_cs_org1", "user_id": U1})).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("invalid_offer")),
            "an organization's plan was attributed to a user: {v}; U1's grants: {:?}",
            t.grants(U1)
        );
    })
}
