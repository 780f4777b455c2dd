//! `cargo xtask demo`, part 3: the whole local stack, running, with a purchase made
//! against it the way the app makes one.
//!
//! Builds what is needed (the npm package, the worker, the React layer and the www
//! app), starts PostgreSQL, the REST gateway, four workers (the VCM Suite catalog for
//! gating, the video-studio catalog for usage and holds, the razorpay-ai catalog for
//! free drafts and AI credits, the org-seats catalog for organizations) and `next start`,
//! then:
//! 1. signs a user in through the app's local sign-in (the Supabase Auth stand-in);
//! 2. reads their signed snapshot from the worker, verifies it with the public key
//!    alone (the core's verifier) and shows which tools are locked;
//! 3. buys as the app does: the worker builds the Checkout Session (`POST /v1/checkout`),
//!    and the www app's local stand-in for Stripe pays exactly that session, sending
//!    Stripe's webhooks for it, signed with the endpoint secret as Stripe signs them, to
//!    `/webhooks/stripe`;
//! 4. reads the snapshot again and renders the demo tool page on the server as that
//!    user: the tool is unlocked;
//! 5. buys video seconds on the video-studio worker the same way, quotes and consumes a
//!    generation with an idempotency key, and retries it (charged once).
//!
//! Then it keeps everything running for the person at the keyboard until Ctrl-C (or
//! exits at once with `--no-wait` / `CI=true`), and stops every process it started.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tollgate::catalog::Catalog;
use tollgate::decide;
use tollgate::time::Timestamp;

use crate::lifecycle::{money, Ids};
use crate::local::{Local, Ports};
use crate::package::catalogs;
use crate::util::{http, interrupted, note, step, Response, Result, Stages};
use crate::{package, worker, www};

const DEMO_EMAIL: &str = "ana@example.com";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn catalog(root: &Path, name: &str) -> Result<Catalog> {
    catalogs(root)?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, c)| c)
        .ok_or_else(|| format!("catalogs/{name}.toml is missing"))
}

fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Result<Response> {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    http("POST", url, &h, Some(body.to_string().as_bytes()))
}

/// A purchase as the app makes one: `POST /v1/checkout` at the worker (which sends the
/// Checkout Session it builds to the www app's Stripe stand-in), then "Pay" on the
/// stand-in, which sends Stripe's webhooks for exactly that session to the worker.
fn buy(www_url: &str, worker_url: &str, token: &str, offer: &str) -> Result<()> {
    let auth = format!("Bearer {token}");
    let body = json!({ "offer": offer, "success_url": format!("{www_url}/tools/demo"), "cancel_url": format!("{www_url}/tools") });
    let r = post_json(&format!("{worker_url}/v1/checkout"), &[("authorization", &auth)], &body)?;
    if r.status != 200 {
        return Err(format!("POST /v1/checkout: HTTP {} {}", r.status, r.body));
    }
    let session = r.json()?;
    let id = session["id"].as_str().ok_or("the checkout has no id")?;
    note(format!("  POST {worker_url}/v1/checkout → {} {id}", session["provider"].as_str().unwrap_or("?")));
    note(format!("  its page: {}", session["url"].as_str().unwrap_or("(none)")));
    let r = post_json(&format!("{www_url}/api/dev/checkout/{id}"), &[], &json!({ "email": DEMO_EMAIL }))?;
    let v = r.json()?;
    for d in v["deliveries"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let answer: Value = d["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        note(format!(
            "  Pay → {:<30} → {} {}",
            d["type"].as_str().unwrap_or("?"),
            d["status"],
            answer["status"].as_str().unwrap_or("")
        ));
    }
    if r.status != 200 {
        return Err(format!("paying {id} on the stand-in: HTTP {} {}", r.status, r.body));
    }
    Ok(())
}

/// GET /v1/entitlements, the token verified with the trusted public key alone.
fn snapshot(local: &Local, worker_url: &str, token: &str) -> Result<tollgate::snapshot::Snapshot> {
    let r = http("GET", &format!("{worker_url}/v1/entitlements"), &[("authorization", &format!("Bearer {token}"))], None)?;
    if r.status != 200 {
        return Err(format!("GET /v1/entitlements: HTTP {} {}", r.status, r.body));
    }
    let v = r.json()?;
    let signed = v["token"].as_str().ok_or("no token in the answer")?;
    let keys = local.snapshot_public_keys()?;
    let (kid, key) = keys.split_once(':').ok_or("bad key list")?;
    let key = tollgate::snapshot::parse_public_key(key).map_err(|e| e.to_string())?;
    tollgate::snapshot::verify(signed, &[(kid, key)], Timestamp(now())).map_err(|e| format!("the snapshot does not verify: {e}"))
}

fn show_tools(cat: &Catalog, snap: &tollgate::snapshot::Snapshot, ids: &[&str]) -> Result<()> {
    let ents = snap.entitlements(cat).map_err(|e| e.to_string())?;
    let page = decide::page_state(cat, &ents, None, &Default::default(), Timestamp(now())).map_err(|e| e.to_string())?;
    let locked = page.iter().filter(|t| t.locked).count();
    note(format!(
        "  snapshot verified (Ed25519, key `{}`): {} grant(s); {locked} of {} tools locked",
        snap.kid,
        snap.grants.len(),
        page.len()
    ));
    for id in ids {
        if let Some(t) = page.iter().find(|t| t.tool == *id) {
            let why = if t.locked {
                let up = t.decision.upgrade.as_ref().map(|u| format!(", cheapest upgrade {}", u.display)).unwrap_or_default();
                format!("locked ({}{up})", t.decision.reason.as_str())
            } else {
                format!("open ({})", t.decision.reason.as_str())
            };
            note(format!("  {:<22} {why}", t.label));
        }
    }
    Ok(())
}

/// The demo tool page rendered on the server for this user (`cookie`: the session
/// cookie the sign-in set): which part it shows.
fn demo_page(www_url: &str, cookie: &str) -> Result<&'static str> {
    let r = http("GET", &format!("{www_url}/tools/demo"), &[("cookie", cookie)], None)?;
    if r.status != 200 {
        return Err(format!("GET /tools/demo: HTTP {}", r.status));
    }
    Ok(if r.body.contains("data-testid=\"pro-tool\"") {
        "the pro part (server-rendered)"
    } else if r.body.contains("data-testid=\"upgrade-banner\"") {
        "the free part and an upgrade banner (server-rendered)"
    } else {
        "the free part only"
    })
}

fn scenario(root: &Path, local: &Local) -> Result<String> {
    let started = std::time::Instant::now();
    let vcm = catalog(root, "vcm-suite")?;
    let www_url = local.www().ok_or("www is not running")?.url.clone();
    let worker_url = local.worker_url("vcm-suite").ok_or("no VCM Suite worker")?;
    let studio_url = local.worker_url("video-studio").ok_or("no video-studio worker")?;
    let t = now();
    let mut ids = Ids { n: 0, tag: format!("{t:x}") };

    step(format!("1. {DEMO_EMAIL} signs in (the app's local stand-in for Supabase Auth)"));
    let r = post_json(&format!("{www_url}/api/dev/signin"), &[], &json!({ "email": DEMO_EMAIL }))?;
    if r.status != 200 {
        return Err(format!("POST /api/dev/signin: HTTP {} {}", r.status, r.body));
    }
    let me = r.json()?;
    let uid = me["user_id"].as_str().ok_or("no user_id")?.to_string();
    let token = me["access_token"].as_str().ok_or("no access_token")?.to_string();
    let session = r.cookie_header();
    note(format!("  user {uid}; access token signed with the local JWT secret (HS256), kept in the Supabase session cookie"));

    step("2. their entitlements, from the worker's signed snapshot");
    let snap = snapshot(local, &worker_url, &token)?;
    show_tools(&vcm, &snap, &["bg-remover", "thumbnail-maker", "ai-blog-writer"])?;
    note(format!("  /tools/demo shows {}", demo_page(&www_url, &session)?));

    let offer = vcm.offer("CLOUD_CREATION_PRO_MONTHLY").ok_or("offer CLOUD_CREATION_PRO_MONTHLY is missing")?;
    step(format!(
        "3. checkout: {} at {}/month, built by the worker, paid on the local stand-in for Stripe",
        offer.label,
        money(offer.price.amount, &offer.price.currency)
    ));
    buy(&www_url, &worker_url, &token, &offer.key)?;

    step("4. the new snapshot, and the page rendered on the server");
    let snap = snapshot(local, &worker_url, &token)?;
    show_tools(&vcm, &snap, &["bg-remover", "thumbnail-maker", "ai-blog-writer"])?;
    let page = demo_page(&www_url, &session)?;
    note(format!("  /tools/demo now shows {page}"));
    if !page.starts_with("the pro part") {
        return Err("the purchase did not unlock the demo tool page".into());
    }

    step(format!("5. video seconds on the video-studio worker ({studio_url})"));
    buy(&www_url, &studio_url, &token, "VIDEO_TOKENS_30_MIN")?;
    let auth = format!("Bearer {token}");
    let body = json!({ "model": "pro", "quality": "hd", "seconds": 60 });
    let q = post_json(&format!("{studio_url}/v1/usage/quote"), &[("authorization", &auth)], &body)?;
    let qv = q.json()?;
    let plan = &qv["charge"];
    let from = if plan["outcome"] == "charge" {
        format!(
            "would take {} s of allowance and {} s purchased",
            plan["from_allowance"].as_i64().unwrap_or(0),
            plan["from_purchased"].as_i64().unwrap_or(0)
        )
    } else {
        format!("would be refused ({})", plan["reason"].as_str().unwrap_or("?"))
    };
    note(format!(
        "  quote 60 s pro × hd (HTTP {}): {}, {from}",
        q.status,
        money(qv["quote"]["cost"]["amount"].as_i64().unwrap_or(0), qv["quote"]["cost"]["currency"].as_str().unwrap_or("usd")),
    ));
    let key = ids.next("idem");
    for attempt in ["consume", "retry with the same Idempotency-Key"] {
        let r = post_json(
            &format!("{studio_url}/v1/usage/consume"),
            &[("authorization", &auth), ("idempotency-key", &key)],
            &body,
        )?;
        let v = r.json()?;
        note(format!("  {attempt}: HTTP {} {} → balances {}", r.status, v["status"].as_str().unwrap_or("?"), v["balances"]));
    }
    let short = post_json(
        &format!("{studio_url}/v1/usage/consume"),
        &[("authorization", &auth), ("idempotency-key", &ids.next("idem"))],
        &json!({ "model": "standard", "quality": "standard", "seconds": 5000 }),
    )?;
    let sv = short.json()?;
    note(format!(
        "  5000 s more: HTTP {} {} (available {}, required {})",
        short.status,
        sv["error"]["code"].as_str().unwrap_or("?"),
        sv["error"]["available"],
        sv["error"]["required"]
    ));
    let rows = local.pg().psql(&format!(
        "select count(*) || ' grant row(s), ' || (select count(*) from credit_ledger where user_id = '{uid}') || ' ledger entries' \
         from cloud_entitlements where user_id = '{uid}'"
    ));
    if let Ok(rows) = rows {
        note(format!("  in PostgreSQL for this user: {rows}"));
    }
    note(format!("  scenario done in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(uid)
}

fn walkthrough(local: &Local) -> Result<()> {
    let www = local.www().ok_or("www is not running")?;
    let p = local.ports;
    println!();
    step("the local stack is running");
    let rows = [
        ("www app", www.url.clone(), "Next.js: /tools, /tools/demo, /generate, /drafts, /orgs, /account, /signin"),
        ("worker (VCM Suite)", local.worker_url("vcm-suite").unwrap_or_default(), "wrangler dev: /healthz, /v1/catalog, /v1/entitlements, /webhooks/stripe"),
        ("worker (video studio)", local.worker_url("video-studio").unwrap_or_default(), "usage: /v1/usage/quote, /v1/usage/consume, holds"),
        ("worker (Razorpay AI)", local.worker_url("razorpay-ai").unwrap_or_default(), "credit pools: /v1/check, /v1/track"),
        ("worker (Org Seats)", local.worker_url("org-seats").unwrap_or_default(), "organizations: /v1/orgs, invites, seats"),
        ("REST gateway", format!("{}/rest/v1/", local.rest_url()), "local stand-in for Supabase's PostgREST"),
        ("PostgreSQL", local.db_url(), "psql it: tables cloud_entitlements, credit_ledger, webhook_events, ..."),
    ];
    for (what, url, about) in rows {
        note(format!("{what:<22} {url:<46} {about}"));
    }
    println!();
    step("walkthrough");
    let w = &www.url;
    for line in [
        format!("1. {w}/signin: sign in as {DEMO_EMAIL} (just bought Creation Cloud Pro above), or as any new"),
        "   email to start without a plan (sign-in and checkout are labelled local stand-ins).".to_string(),
        format!("2. {w}/tools: locked tools say why; click one for the upgrade modal (offers and prices from"),
        "   the catalog). \"Buy\": the worker builds the checkout, paid on the labelled stand-in page; back".to_string(),
        "   on the app, the page unlocks once Stripe's webhook (signed as Stripe signs it) has reached the worker.".to_string(),
        format!("3. {w}/tools/demo: the VCM Suite's demo tool, rendered on the server from the signed snapshot."),
        format!("4. {w}/generate: live quote from the core; submit holds video seconds at the worker, then"),
        "   captures them, or releases them when the simulated generation fails.".to_string(),
        format!("5. {w}/drafts: the Razorpay AI app: two free drafts for anyone signed in, then AI credits."),
        format!("6. {w}/account: subscriptions (cancel at period end keeps access until it ends, resume,"),
        "   manage billing on the portal stand-in) and entitlements over time.".to_string(),
        format!("7. {w}/orgs: Org Seats: create an organization, buy seats, invite by link (/invites/<token>),"),
        "   give and take seats, change roles; a member without a seat sees the plan's features locked.".to_string(),
        format!(
            "Ports: PostgreSQL {}, REST {}, workers {}, {}, {} and {}, www {} (TOLLGATE_*_PORT to move them).",
            p.pg, p.rest, p.worker, p.studio, p.razorpay, p.org, p.www
        ),
    ] {
        note(line);
    }
    Ok(())
}

/// The live part of the demo, as stages of the demo command.
pub fn run(root: &Path, stages: &mut Stages, no_wait: bool) -> Result<()> {
    let ports = Ports::from_env()?;
    stages.run("build: the npm package (the core as wasm)", || package::build(root))?;
    stages.run("build: the worker (worker-build)", || worker::build(root).map(|_| ()).map_err(|e| e.to_string()))?;
    stages.run("build: the React layer and the www app (next build)", || {
        www::install(root)?;
        www::next_build(root)
    })?;
    let mut local = stages.run(
        &format!("start: PostgreSQL on :{} and the REST gateway on :{}", ports.pg, ports.rest),
        || Local::database(root, ports),
    )?;
    stages.run(
        &format!(
            "start: workers on :{} (VCM Suite), :{} (video studio), :{} (Razorpay AI app) and :{} (Org Seats), www on :{}",
            ports.worker, ports.studio, ports.razorpay, ports.org, ports.www
        ),
        || {
            local.start_app_workers()?;
            local.start_www().map(|_| ())
        },
    )?;
    walkthrough(&local)?;
    stages.run("scenario: a purchase through the worker's checkout and the Stripe stand-in, against the running stack", || scenario(root, &local))?;
    if no_wait {
        note("--no-wait (or CI=true): not waiting for Ctrl-C");
    } else {
        println!();
        step(format!(
            "everything is running: open {} — press Ctrl-C to stop it all",
            local.www().map(|w| w.url.clone()).unwrap_or_default()
        ));
        while !interrupted() {
            std::thread::sleep(Duration::from_millis(250));
            if let Err(e) = local.check_alive() {
                return Err(e);
            }
        }
        println!();
        note("Ctrl-C: shutting down");
    }
    stages.run_always("shutdown: stop every process of the local stack", || local.stop())
}
