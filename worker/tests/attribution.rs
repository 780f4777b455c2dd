//! Attribution never lost, through the worker's own routes on the in-memory store (the VCM
//! Suite's catalog): a paid event with wrong metadata is granted from its price; one that
//! names no buyer, or no offer the catalog has, is kept (200), listed by
//! `GET /v1/admin/unattributed` and applied by `POST /v1/admin/attribute`, once; every
//! bad request's answer; every scheduled run retries every kept event; a fact told twice
//! while kept leaves neither telling kept once applied; an organization's plan is never
//! attributed to a user; a link to a user the store has no record of gives way to the
//! operator's attribution, one to a user it knows does not. (The same routes run against PostgreSQL under `wrangler dev` in
//! tests/e2e/webhooks.test.mjs.)

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
const DAY: i64 = 86_400;
const U1: &str = "00000000-0000-4000-8000-0000000000a1";
const U2: &str = "00000000-0000-4000-8000-0000000000a2";
const U3: &str = "00000000-0000-4000-8000-0000000000a3";

struct T {
    app: App<NoNetwork, MemoryStore>,
}

impl T {
    fn new() -> T {
        let t = T::on("vcm-suite");
        t.app.ctx.store.add_user(U1);
        t.app.ctx.store.add_user(U2);
        t
    }

    /// The app on `catalog`, with no user yet.
    fn on(catalog: &str) -> T {
        T { app: App::with_store(config("http://127.0.0.1:1", "svc", catalog), NoNetwork, MemoryStore::new()).expect("app") }
    }

    async fn call(&self, method: Method, path: &str, query: &str, headers: Headers, body: Vec<u8>) -> (u16, Value) {
        self.call_at(method, path, query, headers, body, NOW).await
    }

    async fn call_at(&self, method: Method, path: &str, query: &str, headers: Headers, body: Vec<u8>, now: i64) -> (u16, Value) {
        let req = InRequest { method, path: path.into(), query: query.into(), headers, body };
        let r = self.app.handle(req, Timestamp(now)).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn stripe(&self, event: &Value) -> (u16, Value) {
        self.stripe_at(event, NOW).await
    }

    async fn stripe_at(&self, event: &Value, now: i64) -> (u16, Value) {
        let payload = event.to_string();
        let sig = hex::encode(hmac(STRIPE_SECRET, &format!("{now}.{payload}")));
        let headers = Headers::new().with("stripe-signature", format!("t={now},v1={sig}"));
        self.call_at(Method::Post, "/webhooks/stripe", "", headers, payload.into_bytes(), now).await
    }

    /// The kept deliveries still open, by event id.
    fn kept_ids(&self) -> Vec<String> {
        self.app.ctx.store.kept().into_iter().map(|(_, e, _)| e).collect()
    }

    fn admin_headers() -> Headers {
        Headers::new().with("authorization", format!("Bearer {ADMIN_SECRET}"))
    }

    async fn unattributed(&self, query: &str) -> (u16, Value) {
        self.call(Method::Get, "/v1/admin/unattributed", query, T::admin_headers(), vec![]).await
    }

    async fn attribute(&self, body: Value) -> (u16, Value) {
        self.call(Method::Post, "/v1/admin/attribute", "", T::admin_headers(), body.to_string().into_bytes()).await
    }

    fn grants(&self, uid: &str) -> Vec<Value> {
        self.app.ctx.store.grants(&Subject::user(uid))
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

fn subscription(n: &str, price: &str, metadata: Value) -> Value {
    envelope(
        &format!("evt_sub_{n}"),
        "customer.subscription.created",
        NOW - 61,
        json!({"id": format!("sub_{n}"), "object": "subscription", "customer": format!("cus_{n}"), "status": "active",
               "cancel_at_period_end": false, "start_date": NOW - 61, "created": NOW - 61, "metadata": metadata,
               "items": {"object": "list", "data": [{"id": format!("si_{n}"), "object": "subscription_item", "quantity": 1,
                   "price": {"id": price, "object": "price", "metadata": {}},
                   "current_period_start": NOW - 61, "current_period_end": NOW - 61 + 30 * DAY}]}}),
    )
}

#[test]
fn wrong_metadata_is_granted_from_the_price_with_a_warning() {
    block(async {
        let t = T::new();
        let (status, v) = t.stripe(&subscription("w1", "price_vcm_pro_monthly", json!({"offer_key": "SUITE_PRO_MONTLY"}))).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "kept", "the subscription waits for its buyer: {v}");
        let (status, v) =
            t.stripe(&checkout("w1", json!({"offer_key": "SUITE_PRO_MONTLY", "clouds": "nope"}), Some(U1))).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("applied")), "{v}");
        let w = v["warnings"].to_string();
        assert!(w.contains("SUITE_PRO_MONTLY") && w.contains("not in the catalog"), "{v}");
        let g = t.grants(U1);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!((g[0]["cloud_id"].as_str(), g[0]["tier"].as_str()), (Some("suite"), Some("pro")), "{g:?}");
        assert_eq!(g[0]["offer_key"], "SUITE_PRO_MONTHLY");
        // Nothing is left waiting.
        let (status, v) = t.unattributed("").await;
        assert_eq!((status, v["events"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    })
}

#[test]
fn a_checkout_naming_no_buyer_is_kept_listed_and_applied_by_the_operator_once() {
    block(async {
        let t = T::new();
        let (status, v) = t.stripe(&checkout("a1", json!({"offer_key": "SUITE_PRO_MONTHLY"}), None)).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert!(v["waiting_for"].to_string().contains("stripe:cus_a1"), "{v}");
        let (status, v) = t.stripe(&subscription("a1", "price_vcm_pro_monthly", json!({}))).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert!(t.grants(U1).is_empty());

        // Listed, with what the core reads in each.
        let (status, v) = t.unattributed("").await;
        assert_eq!(status, 200, "{v}");
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{v}");
        let cs = events.iter().find(|e| e["event"] == "evt_cs_a1").expect("the checkout is listed");
        assert_eq!(cs["type"], "checkout.session.completed");
        assert_eq!(cs["provider"], "stripe");
        assert_eq!(cs["readable"], true);
        assert_eq!(cs["known"]["customer"], "stripe:cus_a1");
        assert_eq!(cs["known"]["subscription"], "stripe:sub_a1");
        assert_eq!(cs["known"]["payment"], "stripe:cs_a1");
        assert_eq!(cs["known"]["offer"], "SUITE_PRO_MONTHLY");
        assert_eq!((cs["known"]["amount"].as_i64(), cs["known"]["currency"].as_str()), (Some(5900), Some("usd")));
        assert!(cs["reason"].as_str().unwrap().contains("not linked"), "{cs}");
        let sub = events.iter().find(|e| e["event"] == "evt_sub_a1").unwrap();
        assert_eq!(sub["known"]["prices"], json!(["price_vcm_pro_monthly"]));
        // Paging: one at a time, `next` leads on, and ends.
        let (_, p1) = t.unattributed("limit=1").await;
        assert_eq!(p1["events"].as_array().unwrap().len(), 1);
        let next = p1["next"].as_i64().expect("a next page");
        let (_, p2) = t.unattributed(&format!("limit=1&after={next}")).await;
        assert_eq!(p2["events"].as_array().unwrap().len(), 1);
        assert_ne!(p1["events"][0]["event"], p2["events"][0]["event"]);
        let (_, p3) = t.unattributed(&format!("limit=1&after={}", p2["next"].as_i64().unwrap())).await;
        assert_eq!((p3["events"].as_array().unwrap().len(), &p3["next"]), (0, &Value::Null));
        let (_, rz) = t.unattributed("provider=razorpay").await;
        assert_eq!(rz["events"], json!([]));

        // The operator attributes the checkout: the grant appears, both kept events resolve.
        let (status, v) = t.attribute(json!({"event": "evt_cs_a1", "user_id": U1, "by": "ops@example.com"})).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!((v["status"].as_str(), v["subject"].as_str()), (Some("attributed"), Some(format!("user:{U1}").as_str())));
        assert!(v["fact"].as_str().unwrap().starts_with("attributed:"), "{v}");
        let g = t.grants(U1);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!((g[0]["cloud_id"].as_str(), g[0]["tier"].as_str(), g[0]["status"].as_str()), (Some("suite"), Some("pro"), Some("active")));
        assert_eq!(g[0]["valid_to"], json!(Timestamp(NOW - 61 + 30 * DAY)), "the subscription's period: {g:?}");
        let (_, v) = t.unattributed("").await;
        assert_eq!(v["events"], json!([]), "the subscription's event was applied with it");
        assert!(t.app.ctx.store.kept().is_empty());

        // A retry answers the same and changes nothing; another subject is refused.
        let (status, v) = t.attribute(json!({"event": "evt_cs_a1", "user_id": U1})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("already_attributed")), "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_sub_a1", "user_id": U1})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("already_attributed")), "{v}");
        assert_eq!(t.grants(U1).len(), 1);
        let (status, v) = t.attribute(json!({"event": "evt_cs_a1", "user_id": U2})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("attributed_to_other")), "{v}");
        assert!(t.grants(U2).is_empty());
        // Later events of that customer apply at once.
        let mut renewal = subscription("a1", "price_vcm_pro_monthly", json!({}));
        renewal["id"] = json!("evt_sub_a1_renewed");
        renewal["type"] = json!("customer.subscription.updated");
        let (_, v) = t.stripe(&renewal).await;
        assert_eq!(v["status"], "applied", "{v}");
    })
}

#[test]
fn a_price_the_catalog_lacks_waits_until_the_operator_names_the_offer() {
    block(async {
        let t = T::new();
        let (_, v) = t.stripe(&subscription("o1", "price_from_2019", json!({"user_id": U2}))).await;
        assert_eq!(v["status"], "kept", "{v}");
        let (_, list) = t.unattributed("").await;
        let e = &list["events"][0];
        assert!(e["reason"].as_str().unwrap().contains("price_from_2019"), "{e}");
        assert_eq!(e["known"]["offer"], Value::Null);
        // Attributed without an offer it would still wait: refused, saying why.
        let (status, v) = t.attribute(json!({"event": "evt_sub_o1", "user_id": U2})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("still_waiting")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("price_from_2019"), "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_sub_o1", "user_id": U2, "offer": "NOPE"})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("invalid_offer")), "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_sub_o1", "user_id": U2, "offer": "SUITE_BASIC_MONTHLY"})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("attributed")), "{v}");
        let g = t.grants(U2);
        assert_eq!((g.len(), g[0]["tier"].as_str(), g[0]["offer_key"].as_str()), (1, Some("basic"), Some("SUITE_BASIC_MONTHLY")), "{g:?}");
    })
}

#[test]
fn unreadable_and_unknown_events_and_bad_bodies_are_refused_clearly() {
    block(async {
        let t = T::new();
        // A correctly signed body the core cannot read: kept, listed as unreadable.
        let broken = json!({"id": "evt_broken", "object": "event", "type": "checkout.session.completed", "created": NOW, "data": {}});
        let (status, v) = t.stripe(&broken).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        let (_, list) = t.unattributed("").await;
        let e = &list["events"][0];
        assert_eq!((e["event"].as_str(), e["readable"].as_bool(), &e["known"]), (Some("evt_broken"), Some(false), &Value::Null), "{e}");
        assert!(!e["reason"].as_str().unwrap().is_empty());
        let (status, v) = t.attribute(json!({"event": "evt_broken", "user_id": U1})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("unreadable")), "{v}");

        let (status, v) = t.attribute(json!({"event": "evt_never_seen", "user_id": U1})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (404, Some("unknown_event")), "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_broken", "provider": "razorpay", "user_id": U1})).await;
        assert_eq!(status, 404, "another provider's event: {v}");
        let (_, v) = t.stripe(&checkout("u1", json!({"offer_key": "SUITE_PRO_MONTHLY"}), None)).await;
        assert_eq!(v["status"], "kept");
        let stranger = "00000000-0000-4000-8000-0000000000ff";
        let (status, v) = t.attribute(json!({"event": "evt_cs_u1", "user_id": stranger})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (404, Some("unknown_subject")), "{v}");

        for (body, code) in [
            (json!({"user_id": U1}), "invalid_event"),
            (json!({"event": "evt_cs_u1"}), "invalid_subject"),
            (json!({"event": "evt_cs_u1", "user_id": "not-a-uuid"}), "invalid_subject"),
            (json!({"event": "evt_cs_u1", "user_id": U1, "organization_id": U2}), "invalid_subject"),
            (json!({"event": "evt_cs_u1", "user_id": U1, "provider": "paypal"}), "invalid_provider"),
            (json!({"event": "evt_cs_u1", "user_id": U1, "offer": 7}), "invalid_offer"),
            (json!({"event": "evt_cs_u1", "user_id": U1, "clouds": "video"}), "invalid_clouds"),
            (json!({"event": "evt_cs_u1", "user_id": U1, "by": ""}), "invalid_by"),
        ] {
            let (status, v) = t.attribute(body.clone()).await;
            assert_eq!((status, v["error"]["code"].as_str()), (400, Some(code)), "{body}: {v}");
        }
        let (status, v) = t.call(Method::Post, "/v1/admin/attribute", "", T::admin_headers(), b"{nope".to_vec()).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("malformed_json")));
        for q in ["limit=0", "limit=201", "after=x", "provider=paypal"] {
            let (status, v) = t.unattributed(q).await;
            assert_eq!(status, 400, "{q}: {v}");
        }
        // The admin secret is required for both.
        let (status, _) = t.call(Method::Get, "/v1/admin/unattributed", "", Headers::new(), vec![]).await;
        assert_eq!(status, 401);
        let wrong = Headers::new().with("authorization", "Bearer not-the-secret");
        let (status, _) = t.call(Method::Post, "/v1/admin/attribute", "", wrong, b"{}".to_vec()).await;
        assert_eq!(status, 401);
        assert_eq!(t.grants(U1), Vec::<Value>::new(), "nothing was applied");
    })
}

/// A kept event behind a hundred that only an operator can settle (they name no buyer) is
/// retried and applied once its user exists, within the runs it takes to try everything
/// kept before it on Workers Free's 50 subrequests a run: every run pages through the kept
/// events, least recently tried first, as far as its budget goes.
#[test]
fn a_kept_event_behind_a_hundred_unattributable_ones_is_retried() {
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
        let mut tries = Vec::new();
        while t.grants(U3).is_empty() && tries.len() < 100 {
            let r = t.app.scheduled(Timestamp(NOW + 600 * (tries.len() as i64 + 1))).await.expect("scheduled run");
            assert!(r["requests"].as_u64().is_some_and(|n| n <= 50), "{r}");
            tries.push(r["pending_retried"].as_u64().unwrap_or(0));
        }
        let fewest = tries.iter().copied().min().unwrap_or(0);
        assert!(fewest > 0, "every run tried some: {tries:?}");
        assert!(tries.len() as u64 <= 101u64.div_ceil(fewest), "{} runs, trying {tries:?}", tries.len());
        let g = t.grants(U3);
        assert_eq!(g.len(), 1, "U3 paid for the suite's Pro plan and holds nothing after {} runs: {g:?}", tries.len());
        assert_eq!((g[0]["cloud_id"].as_str(), g[0]["tier"].as_str()), (Some("suite"), Some("pro")), "{g:?}");
        assert!(!t.kept_ids().contains(&"evt_cs_u3".to_string()), "the checkout is still kept");
    })
}

/// The subrequests of the runs below: more kept events wait than one run can try.
const RUN_BUDGET: u64 = 1000;

/// The `i`th user id nobody ever signs up with (each kept checkout waits for its own).
fn never_user(i: usize) -> String {
    format!("00000000-0000-4000-9000-{i:012x}")
}

/// The attempts of every open kept event, through the operator's listing (every page).
async fn attempts(t: &T) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut query = "limit=200".to_string();
    loop {
        let (status, v) = t.unattributed(&query).await;
        assert_eq!(status, 200, "{v}");
        for e in v["events"].as_array().expect("events") {
            out.push((e["event"].as_str().unwrap_or("").to_string(), e["attempts"].as_u64().unwrap_or(0)));
        }
        match v["next"].as_i64() {
            Some(n) => query = format!("limit=200&after={n}"),
            None => return out,
        }
    }
}

/// The `i`th correctly signed event the core cannot read: kept until an operator acts.
fn unreadable(i: usize) -> Value {
    json!({"id": format!("evt_broken{i:05}"), "object": "event", "type": "checkout.session.completed", "created": NOW - 60,
           "data": {}})
}

/// More kept events wait than one run tries (4,100 the core cannot read, which never leave
/// unless an operator acts, against runs of 1,000 subrequests), and a paid checkout is kept
/// after all of them: its user signs up, and it is applied within ceil(N / T) runs, T being
/// what the first run tried, because every run tries the kept events least recently tried
/// first; by then every kept event was tried.
#[test]
fn a_paid_event_kept_behind_more_than_one_runs_worth_is_applied_within_the_bounded_runs() {
    block(async {
        let mut t = T::on("video-studio");
        t.app.ctx.config.subrequests = RUN_BUDGET;
        let ahead = 4100;
        for i in 0..ahead {
            let (status, v) = t.stripe(&unreadable(i)).await;
            assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        }
        // Kept last: a paid checkout naming U3, who has not signed up yet.
        let (status, v) = t.stripe(&pack_checkout("u3", Some(U3), NOW - 60)).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        t.app.ctx.store.add_user(U3);
        let kept = ahead as u64 + 1;
        let first = t.app.scheduled(Timestamp(NOW + 600)).await.expect("scheduled run");
        let per_run = first["pending_retried"].as_u64().unwrap_or(0);
        assert!(per_run > 0 && per_run < kept, "one run tries some, not all: {first}");
        let runs = kept.div_ceil(per_run) as i64;
        for run in 2..=runs {
            let r = t.app.scheduled(Timestamp(NOW + run * 600)).await.expect("scheduled run");
            assert!(r["requests"].as_u64().is_some_and(|n| n <= RUN_BUDGET), "{r}");
        }
        assert_eq!(
            t.app.ctx.store.balance(&Subject::user(U3), "video_seconds"),
            1800,
            "U3 paid for the 30-minute pack, kept behind {ahead} events, and holds nothing after {runs} runs"
        );
        assert!(!t.kept_ids().contains(&"evt_cs_u3".to_string()), "the checkout is still kept");
        let tried = attempts(&t).await;
        assert_eq!(tried.len(), ahead, "the events naming the unknown user stay kept");
        let never: Vec<&String> = tried.iter().filter(|(_, n)| *n == 0).map(|(e, _)| e).collect();
        assert!(never.is_empty(), "{} kept events were never tried in {runs} runs, e.g. {:?}", never.len(), never.first());
    })
}

/// One run tries each kept event at most once, however many pages it reads: an event tried
/// in this run goes to the back of the order and the run stops there.
#[test]
fn a_run_tries_each_kept_event_once() {
    block(async {
        let mut t = T::on("video-studio");
        t.app.ctx.config.subrequests = common::PAID;
        for i in 0..300 {
            let (_, v) = t.stripe(&pack_checkout(&format!("gone{i:03}"), Some(&never_user(i)), NOW - 60)).await;
            assert_eq!(v["status"], "kept", "{v}");
        }
        let r = t.app.scheduled(Timestamp(NOW + 600)).await.expect("scheduled run");
        assert_eq!(r["pending_retried"], 300, "{r}");
        let tried = attempts(&t).await;
        assert_eq!(tried.len(), 300);
        assert!(tried.iter().all(|(_, n)| *n == 1), "{:?}", tried.iter().filter(|(_, n)| *n != 1).take(3).collect::<Vec<_>>());
        // The next run tries them all again, once.
        let r = t.app.scheduled(Timestamp(NOW + 1200)).await.expect("scheduled run");
        assert_eq!(r["pending_retried"], 300, "{r}");
        assert!(attempts(&t).await.iter().all(|(_, n)| *n == 2));
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
fn a_dispute_told_twice_before_its_payment_leaves_neither_telling_kept() {
    block(async {
        let t = T::on("video-studio");
        t.app.ctx.store.add_user(U1);
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
fn an_organizations_plan_kept_for_want_of_a_buyer_is_never_a_users() {
    block(async {
        let t = T::on("org-seats");
        t.app.ctx.store.add_user(U1);
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

/// A user id the store has no record of, and never will before the operator acts (a
/// deleted account, another environment's id).
const GONE: &str = "00000000-0000-4000-8000-0000000000dd";

/// The kept one-time checkout names a user the store has no record of: the operator
/// attributes it to the buyer, who is credited once; the kept event is resolved; the named
/// user signing up later gets nothing of it, however often the event is folded again.
#[test]
fn an_operator_attributes_a_kept_checkout_naming_an_unknown_user() {
    block(async {
        let t = T::on("video-studio");
        t.app.ctx.store.add_user(U1);
        t.app.ctx.store.add_user(U2);
        let (status, v) = t.stripe(&pack_checkout("gone1", Some(GONE), NOW - 60)).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("kept")), "{v}");
        assert!(v["waiting_for"].to_string().contains(GONE), "{v}");
        assert_eq!(t.kept_ids(), ["evt_cs_gone1"]);

        let (status, v) = t.attribute(json!({"event": "evt_cs_gone1", "user_id": U1, "by": "ops@example.com"})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("attributed")), "{v}");
        assert_eq!(v["subject"], format!("user:{U1}"));
        let buyer = Subject::user(U1);
        assert_eq!(t.app.ctx.store.balance(&buyer, "video_seconds"), 1800, "the buyer holds the pack's 30 minutes");
        assert_eq!(t.app.ctx.store.lots(&buyer).len(), 1, "{:?}", t.app.ctx.store.lots(&buyer));
        assert!(t.kept_ids().is_empty(), "the kept checkout is resolved: {:?}", t.kept_ids());
        let (_, list) = t.unattributed("").await;
        assert_eq!(list["events"], json!([]), "{list}");

        // A retry answers the same; the buyer is a user the store knows: nobody else may
        // take the purchase now.
        let (status, v) = t.attribute(json!({"event": "evt_cs_gone1", "user_id": U1})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("already_attributed")), "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_cs_gone1", "user_id": U2})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("attributed_to_other")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(U1), "{v}");

        // The named user signs up after all: the scheduled runs, a redelivery and a fold of
        // that user's own facts (an admin credit) leave the purchase with the buyer, once.
        t.app.ctx.store.add_user(GONE);
        for run in 1..=2 {
            t.app.scheduled(Timestamp(NOW + run * 600)).await.expect("scheduled run");
        }
        let (status, v) = t.stripe(&pack_checkout("gone1", Some(GONE), NOW - 60)).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("duplicate")), "{v}");
        let credit = json!({"user_id": GONE, "credits": [{"pool": "video_seconds", "amount": 5, "id": "welcome"}]});
        let (status, v) = t.call(Method::Post, "/v1/admin/grants", "", T::admin_headers(), credit.to_string().into_bytes()).await;
        assert_eq!(status, 201, "{v}");
        let gone = Subject::user(GONE);
        assert_eq!(t.app.ctx.store.balance(&gone, "video_seconds"), 5, "only the admin credit: {:?}", t.app.ctx.store.lots(&gone));
        assert_eq!(t.app.ctx.store.balance(&buyer, "video_seconds"), 1800, "{:?}", t.app.ctx.store.lots(&buyer));
        assert_eq!(t.app.ctx.store.lots(&buyer).len(), 1);
        assert!(t.kept_ids().is_empty(), "{:?}", t.kept_ids());
    })
}

/// A subscription whose checkout and subscription events both name a user the store has
/// no record of: attributed by the operator, the plan is the buyer's, and so is every
/// later event of that subscription; the named user signing up later holds nothing.
#[test]
fn a_kept_subscription_naming_an_unknown_user_is_the_operators_buyers_with_its_renewals() {
    block(async {
        let t = T::new();
        let (_, v) = t.stripe(&subscription("gone2", "price_vcm_pro_monthly", json!({"user_id": GONE}))).await;
        assert_eq!(v["status"], "kept", "{v}");
        let (_, v) = t.stripe(&checkout("gone2", json!({"offer_key": "SUITE_PRO_MONTHLY"}), Some(GONE))).await;
        assert_eq!(v["status"], "kept", "{v}");
        assert_eq!(t.kept_ids().len(), 2, "{:?}", t.kept_ids());

        let (status, v) = t.attribute(json!({"event": "evt_sub_gone2", "user_id": U1})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("attributed")), "{v}");
        let g = t.grants(U1);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!((g[0]["cloud_id"].as_str(), g[0]["tier"].as_str(), g[0]["status"].as_str()), (Some("suite"), Some("pro"), Some("active")));
        assert!(t.kept_ids().is_empty(), "both deliveries are resolved: {:?}", t.kept_ids());
        // The checkout's own attribution is the same buyer's already.
        let (status, v) = t.attribute(json!({"event": "evt_cs_gone2", "user_id": U1})).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("already_attributed")), "{v}");

        // The named user signs up; a renewal still naming them in its metadata comes.
        t.app.ctx.store.add_user(GONE);
        let mut renewal = subscription("gone2", "price_vcm_pro_monthly", json!({"user_id": GONE}));
        renewal["id"] = json!("evt_sub_gone2_renewed");
        renewal["type"] = json!("customer.subscription.updated");
        renewal["data"]["object"]["items"]["data"][0]["current_period_start"] = json!(NOW - 61 + 30 * DAY);
        renewal["data"]["object"]["items"]["data"][0]["current_period_end"] = json!(NOW - 61 + 60 * DAY);
        let (_, v) = t.stripe_at(&renewal, NOW + 30 * DAY).await;
        assert_eq!(v["status"], "applied", "{v}");
        t.app.scheduled(Timestamp(NOW + 30 * DAY + 600)).await.expect("scheduled run");
        let g = t.grants(U1);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0]["valid_to"], json!(Timestamp(NOW - 61 + 60 * DAY)), "renewed for the buyer: {g:?}");
        assert!(t.grants(GONE).is_empty(), "{:?}", t.grants(GONE));
        assert!(t.kept_ids().is_empty(), "{:?}", t.kept_ids());
    })
}

/// An event linked to a user the store knows stays theirs: attributing it to another is
/// refused (409 `attributed_to_other`), whether the user was known when it came or signed
/// up before the operator acted; the latter's purchase then applies to them.
#[test]
fn attribution_is_still_refused_when_the_linked_user_exists() {
    block(async {
        let t = T::new();
        // U2 exists; the checkout names an offer the catalog lacks, so it waits for the
        // subscription's prices.
        let (_, v) = t.stripe(&checkout("k1", json!({"offer_key": "NOT_AN_OFFER"}), Some(U2))).await;
        assert_eq!(v["status"], "kept", "{v}");
        let (status, v) = t.attribute(json!({"event": "evt_cs_k1", "user_id": U1})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("attributed_to_other")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(U2), "{v}");
        assert!(t.grants(U1).is_empty());
        assert!(t.kept_ids().contains(&"evt_cs_k1".to_string()));

        // U3 is unknown when the checkout comes, and signs up before the operator acts.
        let (_, v) = t.stripe(&checkout("k3", json!({"offer_key": "SUITE_PRO_MONTHLY"}), Some(U3))).await;
        assert_eq!(v["status"], "kept", "{v}");
        t.app.ctx.store.add_user(U3);
        let (status, v) = t.attribute(json!({"event": "evt_cs_k3", "user_id": U1})).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("attributed_to_other")), "{v}");
        assert!(t.grants(U1).is_empty(), "{:?}", t.grants(U1));
        t.app.scheduled(Timestamp(NOW + 600)).await.expect("scheduled run");
        let g = t.grants(U3);
        assert_eq!((g.len(), g.first().and_then(|g| g["tier"].as_str())), (1, Some("pro")), "{g:?}");
        assert!(!t.kept_ids().contains(&"evt_cs_k3".to_string()), "{:?}", t.kept_ids());
    })
}
