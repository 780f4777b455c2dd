//! Failed payments through the worker's own routes on the in-memory store (the VCM Suite's
//! catalog): a failed Stripe invoice is kept with what is due, a redelivery changes
//! nothing, the paid retry settles it, and the operator lists them
//! (`GET /v1/admin/failed-payments`). The same routes run against PostgreSQL in
//! tests/e2e/failed_payments.test.mjs.

mod common;

use serde_json::{json, Value};

use common::{block, config, hmac, user_token, NoNetwork, ADMIN_SECRET, STRIPE_SECRET};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;

const NOW: i64 = 1_800_007_200;
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000b1";

struct T {
    app: App<NoNetwork, MemoryStore>,
}

impl T {
    fn new() -> T {
        let mut config = config("http://127.0.0.1:1", "svc", "vcm-suite");
        config.snapshot_secret = Some([7u8; 32]);
        let app = App::with_store(config, NoNetwork, MemoryStore::new()).expect("app");
        app.ctx.store.add_user(U1);
        T { app }
    }
    async fn call(&self, method: Method, path: &str, query: &str, headers: Headers, body: Vec<u8>) -> (u16, Value) {
        let req = InRequest { method, path: path.into(), query: query.into(), headers, body };
        let r = self.app.handle(req, Timestamp(NOW)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }
    async fn stripe(&self, event: &Value) -> Value {
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{NOW}.{payload}")));
        let headers = Headers::new().with("stripe-signature", format!("t={NOW},v1={sig}"));
        let (status, v) = self.call(Method::Post, "/webhooks/stripe", "", headers, payload.into_bytes()).await;
        assert_eq!(status, 200, "{v}");
        v
    }
    async fn listed(&self, query: &str) -> (u16, Value) {
        let h = Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"));
        self.call(Method::Get, "/v1/admin/failed-payments", query, h, vec![]).await
    }
    /// The user's signed snapshot.
    async fn snapshot(&self) -> Value {
        let h = Headers::new().with("authorization", format!("Bearer {}", user_token(U1, "http://127.0.0.1:1/auth/v1", NOW)));
        let (status, v) = self.call(Method::Get, "/v1/entitlements", "", h, vec![]).await;
        assert_eq!(status, 200, "{v}");
        v["snapshot"].clone()
    }
    fn mine(&self) -> Vec<Value> {
        self.app.ctx.store.failed_payments_of(&Subject::user(U1))
    }
}

fn envelope(id: &str, ty: &str, at: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": ty,
           "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
           "data": {"object": object}})
}

fn invoice(id: &str, paid: bool, attempt: u32, at: i64, next: Option<i64>) -> Value {
    let ty = if paid { "invoice.paid" } else { "invoice.payment_failed" };
    envelope(
        &format!("evt_{id}_{ty}_{attempt}"),
        ty,
        at,
        json!({"id": id, "object": "invoice", "customer": "cus_f1", "status": if paid { "paid" } else { "open" },
               "amount_due": 5900, "amount_paid": if paid { 5900 } else { 0 }, "amount_remaining": if paid { 0 } else { 5900 },
               "attempt_count": attempt, "next_payment_attempt": next, "currency": "usd", "created": at,
               "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_f1", "metadata": {}}},
               "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item", "amount": 5900, "currency": "usd",
                   "quantity": 1, "period": {"start": NOW - 2 * DAY, "end": NOW + 28 * DAY},
                   "pricing": {"type": "price_details", "price_details": {"price": "price_vcm_pro_monthly", "product": "prod_x"}}}]}}),
    )
}

fn subscribed() -> Value {
    envelope(
        "evt_cs_f1",
        "checkout.session.completed",
        NOW - 40 * DAY,
        json!({"id": "cs_f1", "object": "checkout.session", "mode": "subscription", "status": "complete",
               "payment_status": "paid", "customer": "cus_f1", "subscription": "sub_f1",
               "client_reference_id": U1, "metadata": {"offer_key": "SUITE_PRO_MONTHLY"},
               "amount_total": 5900, "currency": "usd", "created": NOW - 40 * DAY}),
    )
}

#[test]
fn a_failed_invoice_is_kept_until_the_paid_retry() {
    block(async {
        let t = T::new();
        t.stripe(&subscribed()).await;
        let v = t.stripe(&invoice("in_f1", false, 1, NOW - 2 * DAY, Some(NOW + DAY))).await;
        assert_eq!(v["status"], "applied", "{v}");
        let rows = t.mine();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!((r["provider"].as_str(), r["invoice_id"].as_str(), r["subscription_id"].as_str()), (Some("stripe"), Some("in_f1"), Some("sub_f1")));
        assert_eq!((r["amount_due"].as_i64(), r["currency"].as_str(), r["attempt_count"].as_u64()), (Some(5900), Some("usd"), Some(1)));
        assert_eq!(r["next_retry_at"], json!(Timestamp(NOW + DAY)));
        assert_eq!(r["resolved_at"], Value::Null);
        assert!(r["grace_until"].is_string(), "{r}");

        // A second attempt fails; its redelivery changes nothing.
        t.stripe(&invoice("in_f1", false, 2, NOW - DAY, Some(NOW + 2 * DAY))).await;
        let v = t.stripe(&invoice("in_f1", false, 2, NOW - DAY, Some(NOW + 2 * DAY))).await;
        assert_eq!(v["status"], "duplicate", "{v}");
        let r = &t.mine()[0];
        assert_eq!((r["attempt_count"].as_u64(), r["next_retry_at"].clone()), (Some(2), json!(Timestamp(NOW + 2 * DAY))));

        let (status, v) = t.listed("").await;
        assert_eq!(status, 200, "{v}");
        let open = v["failed_payments"].as_array().unwrap();
        assert_eq!(open.len(), 1, "{v}");
        assert_eq!(open[0]["subject"], json!({"user_id": U1}));
        assert_eq!(open[0]["amount_due"], 5900);

        // The retry is paid: settled, no longer open.
        t.stripe(&invoice("in_f1", true, 3, NOW - 3600, None)).await;
        let r = &t.mine()[0];
        assert_eq!((r["resolution"].as_str(), r["resolved_by"].as_str()), (Some("paid"), Some("in_f1")), "{r}");
        assert_eq!(r["resolved_at"], json!(Timestamp(NOW - 3600)));
        assert_eq!((r["next_retry_at"].clone(), r["grace_until"].clone()), (Value::Null, Value::Null));
        let (_, v) = t.listed("status=open").await;
        assert_eq!(v["failed_payments"].as_array().map(Vec::len), Some(0), "{v}");
        let (_, v) = t.listed("status=resolved").await;
        assert_eq!(v["failed_payments"].as_array().map(Vec::len), Some(1), "{v}");
        let (_, v) = t.listed("status=all&limit=1").await;
        assert_eq!(v["failed_payments"].as_array().map(Vec::len), Some(1), "{v}");
        assert!(v["next"].is_string(), "{v}");
        let (_, v2) = t.listed(&format!("status=all&after={}", v["next"].as_str().unwrap())).await;
        assert_eq!(v2["failed_payments"].as_array().map(Vec::len), Some(0), "{v2}");
    })
}

#[test]
fn bad_listing_requests_are_400_and_need_the_admin_secret() {
    block(async {
        let t = T::new();
        for q in ["status=maybe", "limit=0", "limit=500", "after=nocursor"] {
            let (status, v) = t.listed(q).await;
            assert_eq!(status, 400, "{q}: {v}");
            assert!(v["error"]["code"].is_string(), "{v}");
        }
        let (status, _) = t.call(Method::Get, "/v1/admin/failed-payments", "", Headers::new(), vec![]).await;
        assert_eq!(status, 401);
    })
}

#[test]
fn the_snapshot_carries_the_payment_due_until_it_is_paid() {
    block(async {
        let t = T::new();
        t.stripe(&subscribed()).await;
        assert!(t.snapshot().await.get("failed_payments").is_none(), "nothing due: left out");
        t.stripe(&invoice("in_f1", false, 1, NOW - 2 * DAY, Some(NOW + DAY))).await;
        let s = t.snapshot().await;
        let due = s["failed_payments"].as_array().expect("a payment due");
        assert_eq!(due.len(), 1, "{s}");
        assert_eq!((due[0]["provider"].as_str(), due[0]["invoice"].as_str(), due[0]["subscription"].as_str()), (Some("stripe"), Some("in_f1"), Some("sub_f1")));
        assert_eq!((due[0]["amount_due"].as_i64(), due[0]["currency"].as_str(), due[0]["attempts"].as_u64()), (Some(5900), Some("usd"), Some(1)));
        assert_eq!(due[0]["next_retry"], json!(Timestamp(NOW + DAY)));
        assert_eq!(due[0]["grace_until"], t.mine()[0]["grace_until"]);
        t.stripe(&invoice("in_f1", true, 2, NOW - 3600, None)).await;
        assert!(t.snapshot().await.get("failed_payments").is_none(), "paid: no longer due");
    })
}
