//! Catalogs as data, through the worker's routes on the in-memory store: with no version in
//! the store the embedded catalog is served; a pushed version is served (at once by
//! `GET /v1/catalog`, within CATALOG_REFRESH_SECONDS by any other route) with no new app;
//! an activation of an older version is a rollback; a warm isolate asks the store nothing
//! until its refresh time, then one version check; `ETag` / `If-None-Match` (304). (The
//! same against PostgreSQL under `wrangler dev`: tests/e2e/catalogs.test.mjs.)

mod common;

use serde_json::Value;

use common::{block, config, NoNetwork};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;

/// 2027-01-15T10:00:00Z
const NOW: i64 = 1_800_007_200;

fn app() -> App<NoNetwork, MemoryStore> {
    App::with_store(config("http://127.0.0.1:1", "svc", "org-seats"), NoNetwork, MemoryStore::new()).expect("app")
}

struct Answer {
    status: u16,
    headers: Headers,
    body: Value,
}

async fn get(app: &App<NoNetwork, MemoryStore>, path: &str, headers: Headers, at: i64) -> Answer {
    let req = InRequest { method: Method::Get, path: path.into(), query: String::new(), headers, body: vec![] };
    let r = app.handle(req, Timestamp(at)).await;
    Answer { status: r.status, body: serde_json::from_slice(&r.body).unwrap_or(Value::Null), headers: r.headers }
}

/// The Org Seats catalog with its professional plan at another monthly price.
fn repriced(amount: i64) -> Value {
    let c = tollgate_worker::ctx::embedded_catalog("org-seats").expect("embedded");
    let mut doc: Value = serde_json::from_str(&c.to_json()).unwrap();
    for o in doc["offers"].as_array_mut().unwrap() {
        if o["key"] == "ORG_PROFESSIONAL_MONTHLY" {
            o["price"]["amount"] = amount.into();
        }
    }
    doc
}

fn price(doc: &Value) -> i64 {
    doc["offers"].as_array().unwrap().iter().find(|o| o["key"] == "ORG_PROFESSIONAL_MONTHLY").unwrap()["price"]["amount"]
        .as_i64()
        .unwrap()
}

#[test]
fn the_embedded_catalog_is_served_when_the_store_has_none() {
    block(async {
        let app = app();
        let a = get(&app, "/v1/catalog", Headers::new(), NOW).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["catalog"]["id"], "org-seats");
        assert_eq!(price(&a.body), 2500);
        assert_eq!(a.headers.get("tollgate-catalog-version"), Some("embedded"));
        let etag = a.headers.get("etag").expect("etag").to_string();
        assert!(etag.starts_with("\"org-seats-embedded-"), "{etag}");
        let b = get(&app, "/v1/catalog", Headers::new().with("if-none-match", etag.clone()), NOW).await;
        assert_eq!(b.status, 304);
        assert_eq!(b.headers.get("etag"), Some(etag.as_str()));
        let c = get(&app, "/v1/catalog", Headers::new().with("if-none-match", "\"other\""), NOW).await;
        assert_eq!(c.status, 200);
        let h = get(&app, "/healthz", Headers::new(), NOW).await;
        assert_eq!(h.body["catalog"]["store_version"], Value::Null);
    });
}

#[test]
fn a_pushed_version_is_served_and_an_older_one_activated_again_at_once() {
    block(async {
        let app = app();
        let before = get(&app, "/v1/catalog", Headers::new(), NOW).await;
        let etag0 = before.headers.get("etag").unwrap().to_string();
        assert_eq!(app.ctx.store.push_catalog(repriced(2900), true), 1);
        assert_eq!(app.ctx.store.push_catalog(repriced(2900), true), 1, "the same content is the same version");
        // GET /v1/catalog checks the version at once.
        let a = get(&app, "/v1/catalog", Headers::new(), NOW + 1).await;
        assert_eq!(a.status, 200);
        assert_eq!(price(&a.body), 2900);
        assert_eq!(a.headers.get("tollgate-catalog-version"), Some("1"));
        let etag1 = a.headers.get("etag").unwrap().to_string();
        assert!(etag1.starts_with("\"org-seats@1-"), "{etag1}");
        let stale = get(&app, "/v1/catalog", Headers::new().with("if-none-match", etag0), NOW + 1).await;
        assert_eq!(stale.status, 200, "the old ETag no longer matches");

        assert_eq!(app.ctx.store.push_catalog(repriced(3900), true), 2);
        let b = get(&app, "/v1/catalog", Headers::new(), NOW + 2).await;
        assert_eq!(price(&b.body), 3900);
        assert_eq!(b.headers.get("tollgate-catalog-version"), Some("2"));
        // Rollback.
        assert!(app.ctx.store.activate_catalog("org-seats", 1));
        let c = get(&app, "/v1/catalog", Headers::new().with("if-none-match", etag1.clone()), NOW + 3).await;
        assert_eq!(c.status, 304, "version 1 again: its ETag matches");
        assert!(!app.ctx.store.activate_catalog("org-seats", 9));
    });
}

#[test]
fn a_warm_isolate_asks_nothing_until_its_refresh_time_then_checks_the_version_alone() {
    block(async {
        let app = app();
        app.ctx.store.push_catalog(repriced(2900), true);
        // Cold: one full read.
        let h = get(&app, "/healthz", Headers::new(), NOW).await;
        assert_eq!(h.body["catalog"]["store_version"], 1);
        assert_eq!(app.ctx.store.catalog_reads.get(), (1, 0));
        // Warm: nothing for a minute.
        for s in 1..60 {
            get(&app, "/healthz", Headers::new(), NOW + s).await;
        }
        assert_eq!(app.ctx.store.catalog_reads.get(), (1, 0));
        // A new activation is noticed within the minute: one version check, then the document.
        app.ctx.store.push_catalog(repriced(3900), true);
        let h = get(&app, "/healthz", Headers::new(), NOW + 59).await;
        assert_eq!(h.body["catalog"]["store_version"], 1, "not yet");
        let h = get(&app, "/healthz", Headers::new(), NOW + 60).await;
        assert_eq!(h.body["catalog"]["store_version"], 2);
        assert_eq!(app.ctx.store.catalog_reads.get(), (2, 1));
        // Unchanged: a version check only, once a minute.
        get(&app, "/healthz", Headers::new(), NOW + 120).await;
        get(&app, "/healthz", Headers::new(), NOW + 121).await;
        assert_eq!(app.ctx.store.catalog_reads.get(), (2, 2));
    });
}
