//! A token pack credits what the catalog it was sold under sold, on the in-memory store
//! (Video Studio): a pack bought while the worker served its embedded catalog keeps its
//! 1800 seconds after an operator pushes a first version that sells the pack with 600,
//! and a pack bought under that version gives 600.

mod common;

use serde_json::{json, Value};

use common::{block, config, stripe, NoNetwork};
use tollgate_worker::app::App;
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::state::Subject;

const NOW: i64 = 1_800_007_200;
const U1: &str = "00000000-0000-4000-8000-000000000001";

/// U1 buys the 30-minute token pack (`cs_<n>`, payment `pi_<n>`) at `at`.
fn token_checkout(n: u32, at: i64) -> Value {
    json!({
        "id": format!("evt_cs_{n}"), "object": "event", "api_version": "2025-03-31.basil", "created": at, "type": "checkout.session.completed",
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("cs_{n}"), "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
            "customer": "cus_1", "subscription": null, "payment_intent": format!("pi_{n}"),
            "client_reference_id": U1, "metadata": {"offer_key": "VIDEO_TOKENS_30_MIN"},
            "amount_total": 1900, "currency": "usd", "created": at,
        }},
    })
}

#[test]
fn a_first_catalog_version_keeps_what_the_embedded_catalog_sold() {
    block(async {
        let app = App::with_store(config("http://127.0.0.1:1", "svc", "video-studio"), NoNetwork, MemoryStore::new()).unwrap();
        app.ctx.store.add_user(U1);
        let seconds = |app: &App<NoNetwork, MemoryStore>| app.ctx.store.balance(&Subject::user(U1), "video_seconds");
        let (s, v) = stripe(&app, &token_checkout(1, NOW), NOW).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app), 1800);
        // Version 1: the 30-minute pack now gives 600 seconds.
        let mut doc: Value = serde_json::from_str(&tollgate_worker::ctx::embedded_catalog("video-studio").unwrap().to_json()).unwrap();
        for o in doc["offers"].as_array_mut().unwrap() {
            if o["key"] == "VIDEO_TOKENS_30_MIN" {
                o["credits"][0]["amount"] = json!(600);
            }
        }
        assert_eq!(app.ctx.store.push_catalog(doc, true), 1);
        // A second pack, bought under version 1, folds the first one again.
        let (s, v) = stripe(&app, &token_checkout(2, NOW + 3600), NOW + 3600).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(seconds(&app), 1800 + 600, "{:#?}", app.ctx.store.lots(&Subject::user(U1)));
    });
}
