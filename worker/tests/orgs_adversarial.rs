//! An adversarial pass over the organization routes, as signed-in users of the app (on the
//! in-memory store): an owner or admin of one organization acting on another, a member
//! escalating itself, a removed member's still-valid token, invite tokens stolen, reused,
//! replayed after a revoke or guessed, ids in paths that are not UUIDs (or are, in
//! capitals), bodies of every wrong shape, the last owner leaving, requests decided on the
//! same read (clocks behind), Idempotency-Keys shared across members and routes, wrong
//! methods. Every refusal is a 4xx with a JSON error and a clear code that says nothing of
//! the store's insides, and changes nothing.

mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use common::{block, ANN, BOB, CAT, EVE, OWNER};
use tollgate::time::Timestamp;
use tollgate_worker::app::App;
use tollgate_worker::http::{AppResponse, Headers, InRequest, Method};
use tollgate_worker::memory::MemoryStore;
use tollgate_worker::store::Store;

const ISSUER: &str = "http://127.0.0.1:1/auth/v1";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
/// Another organization's owner.
const ZED: &str = "00000000-0000-4000-8000-000000000006";
/// A user whose id has letters (which a path may write in capitals).
const DEE: &str = "dddddddd-abcd-4ef0-8abc-00000000000d";
/// No organization has this id.
const NOWHERE: &str = "00000000-0000-4000-8000-0000000000ff";

use common::email_of as email;

struct T {
    app: App<common::NoNetwork, MemoryStore>,
    now: std::cell::Cell<i64>,
}

/// Words a store's error carries (PostgREST codes, constraint and table names) that no
/// caller is ever shown in a 4xx.
const INSIDES: [&str; 8] = ["PT4", "PT5", "constraint", "duplicate key", "organization_invites", "store ", "sqlstate", "uuid:"];

/// `r` is a 4xx whose body is `{"error": {"code", "message"}}`, the code a plain
/// snake_case word, the message free of the store's insides.
fn assert_refused(status: u16, v: &Value, what: &str) {
    assert!((400..500).contains(&status), "{what}: expected a 4xx, got {status} {v}");
    let code = v["error"]["code"].as_str().unwrap_or_else(|| panic!("{what}: no error code in {v}"));
    assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{what}: code `{code}`");
    let message = v["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: no message in {v}"));
    for w in INSIDES {
        assert!(!message.to_lowercase().contains(&w.to_lowercase()), "{what}: the store's insides (`{w}`) in {message}");
    }
}

/// The first characters of `s`, for a failure's message.
fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

impl T {
    fn new() -> T {
        let mut config = common::config("http://127.0.0.1:1", "svc", "org-seats");
        config.snapshot_secret = Some([5u8; 32]);
        let app = App::with_store(config, common::NoNetwork, MemoryStore::new()).expect("app");
        for u in [OWNER, ANN, BOB, CAT, EVE, ZED, DEE] {
            app.ctx.store.add_user_with_email(u, &email(u));
        }
        T { app, now: std::cell::Cell::new(T0) }
    }

    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }

    async fn raw_at(&self, now: i64, method: Method, path: &str, uid: &str, key: Option<&str>, body: Vec<u8>) -> AppResponse {
        let mut h = Headers::new().with("authorization", format!("Bearer {}", common::token_with_email(uid, ISSUER, now)));
        if let Some(k) = key {
            h = h.with("idempotency-key", k);
        }
        let req = InRequest { method, path: path.into(), query: String::new(), headers: h, body };
        self.app.handle(req, Timestamp(now)).await
    }

    /// `uid`'s request with a raw body: the status and the JSON answer (null if not JSON).
    async fn raw(&self, method: Method, path: &str, uid: &str, body: &[u8]) -> (u16, Value) {
        let now = self.tick();
        let r = self.raw_at(now, method, path, uid, None, body.to_vec()).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        let now = self.tick();
        self.call_at(now, method, path, uid, None, body).await
    }

    /// A request made at `now` (another isolate's clock, possibly behind the last one's).
    async fn call_at(&self, now: i64, method: Method, path: &str, uid: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let r = self.raw_at(now, method, path, uid, key, body).await;
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    async fn stripe(&self, event: Value) {
        let now = self.tick();
        common::stripe_taken(&self.app, &event, now).await;
    }

    /// A new organization of `owner`: its id.
    async fn org_of(&self, owner: &str, name: &str) -> String {
        let (s, v) = self.call(Method::Post, "/v1/orgs", owner, Some(json!({"name": name}))).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Acme (the owner's) on the Business plan with `quantity` seats, subscription `sub`.
    async fn subscribed(&self, owner: &str, sub: &str, quantity: u32) -> String {
        let org = self.org_of(owner, "Acme").await;
        self.stripe(subscription(&org, sub, quantity, self.now.get() + 1)).await;
        org
    }

    async fn invite(&self, org: &str, by: &str, who: &str, role: &str, seat: bool) -> (u16, Value) {
        let body = json!({"email": email(who), "role": role, "seat": seat});
        self.call(Method::Post, &format!("/v1/orgs/{org}/invites"), by, Some(body)).await
    }

    async fn accept(&self, token: &str, uid: &str) -> (u16, Value) {
        self.call(Method::Post, &format!("/v1/invites/{token}/accept"), uid, None).await
    }

    /// `who` invited by `by` as `role` (with a seat when `seat`) and accepted: the invite.
    async fn join(&self, org: &str, by: &str, who: &str, role: &str, seat: bool) -> Value {
        let (s, inv) = self.invite(org, by, who, role, seat).await;
        assert_eq!(s, 201, "{inv}");
        let (s, v) = self.accept(inv["token"].as_str().unwrap(), who).await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(seat)), "{v}");
        inv
    }

    async fn seat(&self, org: &str, by: &str, user: &str, action: &str) -> (u16, Value) {
        self.call(Method::Post, &format!("/v1/orgs/{org}/seats"), by, Some(json!({"user_id": user, "action": action}))).await
    }

    async fn held(&self, org: &str, user: &str) -> bool {
        self.app.ctx.store.seat_held(org, user).await.unwrap()
    }

    /// What the owner's view and the store say of the organization: members with roles and
    /// seats, open invites, the history's length.
    async fn picture(&self, org: &str, owner: &str) -> (Value, Value, usize, usize) {
        let (s, v) = self.call(Method::Get, &format!("/v1/orgs/{org}"), owner, None).await;
        assert_eq!(s, 200, "{v}");
        (v["members"].clone(), v["invites"].clone(), self.app.ctx.store.org_history(org).len(), self.app.ctx.store.invites(org).len())
    }

    /// The organization's stored facts' keys.
    async fn fact_keys(&self, org: &str) -> Vec<String> {
        let refs: BTreeSet<String> = [format!("org:{org}")].into_iter().collect();
        self.app.ctx.store.fold_input(&refs).await.unwrap().facts.into_iter().map(|f| f.key).collect()
    }
}

fn subscription(org: &str, sub: &str, quantity: u32, at: i64) -> Value {
    json!({"id": format!("evt_{sub}_{at}"), "object": "event", "api_version": "2025-03-31.basil", "created": at,
           "type": "customer.subscription.created", "livemode": false, "data": {"object": {
        "id": sub, "object": "subscription", "customer": format!("cus_{sub}"), "status": "active",
        "cancel_at_period_end": false, "start_date": T0, "created": T0,
        "metadata": {"organization_id": org, "offer_key": "ORG_BUSINESS_MONTHLY"},
        "items": {"object": "list", "data": [{"id": format!("si_{sub}"), "object": "subscription_item", "quantity": quantity,
            "price": {"id": "price_org_business", "object": "price", "lookup_key": "ORG_BUSINESS_MONTHLY", "metadata": {}},
            "current_period_start": T0, "current_period_end": T0 + 30 * DAY}]}}}})
}

/// Zed owns Globex; Acme's owner, admin (Bob) and member (Ann) are strangers to it, and
/// Zed is one to Acme. Every route Zed sends about Acme (and every route Acme's people
/// send about Globex) is 404 `unknown_organization`, worded exactly as for an
/// organization that does not exist (no one learns which ids exist), and changes nothing;
/// an invite of one organization is unknown under the other's path.
#[test]
fn another_organizations_owner_sees_and_changes_nothing() {
    block(async {
        let t = T::new();
        let acme = t.subscribed(OWNER, "sub_acme", 3).await;
        t.join(&acme, OWNER, BOB, "admin", true).await;
        t.join(&acme, OWNER, ANN, "member", true).await;
        let (_, acme_invite) = t.invite(&acme, OWNER, CAT, "member", true).await;
        let globex = t.subscribed(ZED, "sub_globex", 2).await;
        let (_, globex_invite) = t.invite(&globex, ZED, EVE, "admin", true).await;
        let before = (t.picture(&acme, OWNER).await, t.picture(&globex, ZED).await, t.fact_keys(&acme).await);

        let attempts = |org: &str, member: &str, invite: &str| -> Vec<(Method, String, Option<Value>)> {
            vec![
                (Method::Get, format!("/v1/orgs/{org}"), None),
                (Method::Get, format!("/v1/orgs/{org}/invites"), None),
                (Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "x@example.com", "role": "admin", "seat": true}))),
                (Method::Delete, format!("/v1/orgs/{org}/invites/{invite}"), None),
                (Method::Post, format!("/v1/orgs/{org}/seats"), Some(json!({"user_id": member, "action": "take"}))),
                (Method::Post, format!("/v1/orgs/{org}/seats"), Some(json!({"user_id": member, "action": "give"}))),
                (Method::Patch, format!("/v1/orgs/{org}/members/{member}"), Some(json!({"role": "owner"}))),
                (Method::Patch, format!("/v1/orgs/{org}/members/{member}"), Some(json!({"role": "nonsense"}))),
                (Method::Delete, format!("/v1/orgs/{org}/members/{member}"), None),
            ]
        };
        let acme_invite_id = acme_invite["id"].as_str().unwrap();
        let globex_invite_id = globex_invite["id"].as_str().unwrap();
        for (caller, org, member, invite) in [
            (ZED, acme.as_str(), ANN, acme_invite_id),
            (ZED, acme.as_str(), OWNER, acme_invite_id),
            (OWNER, globex.as_str(), ZED, globex_invite_id),
            (BOB, globex.as_str(), ZED, globex_invite_id),
            (ANN, globex.as_str(), ZED, globex_invite_id),
        ] {
            for (method, path, body) in attempts(org, member, invite) {
                let (s, v) = t.call(method, &path, caller, body.clone()).await;
                let what = format!("{} {path} by {caller}", method.as_str());
                assert_refused(s, &v, &what);
                assert_eq!((s, code(&v)), (404, "unknown_organization"), "{what}: {v}");
                // An organization that does not exist answers the same words.
                let nowhere = path.replace(org, NOWHERE);
                let (s2, v2) = t.call(method, &nowhere, caller, body).await;
                assert_eq!((s2, v2["error"]["message"].as_str().map(|m| m.replace(NOWHERE, org))), (s, v["error"]["message"].as_str().map(str::to_string)), "{what}");
            }
        }
        // An invite of Globex is no invite of Acme, under Acme's own owner.
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{acme}/invites/{globex_invite_id}"), OWNER, None).await;
        assert_eq!((s, code(&v)), (404, "unknown_invite"), "{v}");
        // Giving a seat of Acme to a stranger (Globex's owner) is refused.
        let (s, v) = t.seat(&acme, OWNER, ZED, "give").await;
        assert_eq!((s, code(&v)), (404, "not_a_member"), "{v}");
        let after = (t.picture(&acme, OWNER).await, t.picture(&globex, ZED).await, t.fact_keys(&acme).await);
        assert_eq!(before, after, "a refused request changed something");
        // Eve's Globex invite does not let her into Acme.
        let (s, v) = t.accept(globex_invite["token"].as_str().unwrap(), EVE).await;
        assert_eq!((s, v["organization_id"].as_str()), (200, Some(globex.as_str())), "{v}");
        assert_eq!(t.call(Method::Get, &format!("/v1/orgs/{acme}"), EVE, None).await.0, 404);
    });
}

/// A member cannot make itself more: neither a role (its own nor anyone's), nor a seat, nor
/// an invite (to an address of its own, as an admin); an admin cannot make itself or
/// anyone an owner, invite an owner, or demote or remove the owner.
#[test]
fn members_and_admins_cannot_escalate() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 3).await;
        t.join(&org, OWNER, ANN, "member", false).await;
        t.join(&org, OWNER, BOB, "admin", false).await;
        let before = t.picture(&org, OWNER).await;
        let member = |u: &str| format!("/v1/orgs/{org}/members/{u}");
        for (who, method, path, body, status, want) in [
            (ANN, Method::Patch, member(ANN), Some(json!({"role": "admin"})), 403, "owner_only"),
            (ANN, Method::Patch, member(ANN), Some(json!({"role": "owner"})), 403, "owner_only"),
            (ANN, Method::Patch, member(BOB), Some(json!({"role": "member"})), 403, "owner_only"),
            (ANN, Method::Delete, member(BOB), None, 403, "not_org_admin"),
            (ANN, Method::Delete, member(OWNER), None, 403, "not_org_admin"),
            (ANN, Method::Post, format!("/v1/orgs/{org}/seats"), Some(json!({"user_id": ANN, "action": "give"})), 403, "not_org_admin"),
            (ANN, Method::Post, format!("/v1/orgs/{org}/seats"), Some(json!({"user_id": BOB, "action": "take"})), 403, "not_org_admin"),
            (ANN, Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "ann2@example.com", "role": "admin"})), 403, "not_org_admin"),
            (ANN, Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "ann2@example.com"})), 403, "not_org_admin"),
            (ANN, Method::Get, format!("/v1/orgs/{org}/invites"), None, 403, "not_org_admin"),
            (BOB, Method::Patch, member(BOB), Some(json!({"role": "owner"})), 403, "owner_only"),
            (BOB, Method::Patch, member(ANN), Some(json!({"role": "admin"})), 403, "owner_only"),
            (BOB, Method::Patch, member(OWNER), Some(json!({"role": "member"})), 403, "owner_only"),
            (BOB, Method::Delete, member(OWNER), None, 403, "owner_only"),
            (BOB, Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "bob2@example.com", "role": "owner"})), 400, "invalid_role"),
            (BOB, Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "bob2@example.com", "role": "Owner"})), 400, "invalid_role"),
            (BOB, Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "bob2@example.com", "role": " admin"})), 400, "invalid_role"),
        ] {
            let (s, v) = t.call(method, &path, who, body).await;
            let what = format!("{} {path} by {who}", method.as_str());
            assert_refused(s, &v, &what);
            assert_eq!((s, code(&v)), (status, want), "{what}: {v}");
        }
        assert_eq!(t.picture(&org, OWNER).await, before, "a refused request changed something");
        // A member sees neither the members nor the invites.
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!((s, v.get("members"), v.get("invites")), (200, None, None), "{v}");
        // Demoted, an admin's token is a member's at once.
        let (s, v) = t.call(Method::Patch, &member(BOB), OWNER, Some(json!({"role": "member"}))).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("member")), "{v}");
        let (s, v) = t.invite(&org, BOB, EVE, "member", false).await;
        assert_eq!((s, code(&v)), (403, "not_org_admin"), "{v}");
    });
}

/// A removed admin keeps a token that is still valid: with it, every route about the
/// organization is 404 (a stranger's answer), retrying the acceptance of its own invite
/// is `invite_used` and gives no membership nor seat back, and the invites it sent
/// before it was removed can still be revoked by the owner.
#[test]
fn a_removed_members_token_opens_nothing() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 3).await;
        let bobs = t.join(&org, OWNER, BOB, "admin", true).await;
        t.join(&org, OWNER, ANN, "member", true).await;
        let (s, sent) = t.invite(&org, BOB, CAT, "member", true).await;
        assert_eq!(s, 201, "{sent}");
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{BOB}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        assert!(!t.held(&org, BOB).await);
        let before = (t.picture(&org, OWNER).await, t.fact_keys(&org).await);
        let cat_invite = sent["id"].as_str().unwrap();
        for (method, path, body) in [
            (Method::Get, format!("/v1/orgs/{org}"), None),
            (Method::Get, format!("/v1/orgs/{org}/invites"), None),
            (Method::Post, format!("/v1/orgs/{org}/invites"), Some(json!({"email": "bob2@example.com", "role": "admin", "seat": true}))),
            (Method::Delete, format!("/v1/orgs/{org}/invites/{cat_invite}"), None),
            (Method::Post, format!("/v1/orgs/{org}/seats"), Some(json!({"user_id": BOB, "action": "give"}))),
            (Method::Post, format!("/v1/orgs/{org}/seats"), Some(json!({"user_id": ANN, "action": "take"}))),
            (Method::Patch, format!("/v1/orgs/{org}/members/{BOB}"), Some(json!({"role": "admin"}))),
            (Method::Delete, format!("/v1/orgs/{org}/members/{ANN}"), None),
            (Method::Delete, format!("/v1/orgs/{org}/members/{BOB}"), None),
        ] {
            let (s, v) = t.call(method, &path, BOB, body).await;
            let what = format!("{} {path}", method.as_str());
            assert_refused(s, &v, &what);
            assert_eq!(s, 404, "{what}: {v}");
        }
        let (s, v) = t.accept(bobs["token"].as_str().unwrap(), BOB).await;
        assert_eq!((s, code(&v)), (409, "invite_used"), "{v}");
        assert_eq!((t.picture(&org, OWNER).await, t.fact_keys(&org).await), before, "the removed admin changed something");
        assert!(!t.held(&org, BOB).await);
        // The invite Bob sent is still the organization's, and its owner revokes it.
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{cat_invite}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
        let (s, v) = t.accept(sent["token"].as_str().unwrap(), CAT).await;
        assert_eq!((s, code(&v)), (409, "invite_revoked"), "{v}");
    });
}

/// An invite's token works once, for its address: another signed-in user holding the
/// token is refused (and does not use it up), a revoked one stays revoked however often it
/// is sent, a used one is used for everyone, and anything that is not the token (its
/// invite id, its digest, the token changed in case, padded, percent-encoded, cut or
/// lengthened, enormous, unicode) is 404 `unknown_invite`.
#[test]
fn invite_tokens_are_not_stolen_reused_or_guessed() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 3).await;
        let (_, a) = t.invite(&org, OWNER, ANN, "admin", true).await;
        let tok = a["token"].as_str().unwrap().to_string();
        for thief in [EVE, BOB, OWNER] {
            let (s, v) = t.accept(&tok, thief).await;
            assert_refused(s, &v, thief);
            assert_eq!((s, code(&v)), (403, "wrong_email"), "{thief}: {v}");
        }
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert_eq!((s, v["seats"]["reserved"].as_u64(), v["members"].as_array().map(Vec::len)), (200, Some(1), Some(1)), "{v}");

        let flipped: String = tok.chars().map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        let digest = tollgate::orgs::token_digest(&tok);
        let guesses = [
            a["id"].as_str().unwrap().to_string(),
            digest.clone(),
            flipped,
            format!("{tok}="),
            format!("{tok}%3D"),
            tok.replace('-', "%2D"),
            tok[..tok.len() - 1].to_string(),
            format!("{tok}A"),
            format!(" {tok}"),
            "A".repeat(100_000),
            "😀".repeat(100),
            "%00".into(),
            "..".into(),
        ];
        // (A guess that is the token itself, as a token without a `-` percent-encoded is,
        // is no guess.)
        for g in guesses.iter().filter(|g| **g != tok) {
            let (s, v) = t.accept(g, ANN).await;
            assert_refused(s, &v, g);
            assert_eq!((s, code(&v)), (404, "unknown_invite"), "{}: {v}", short(g));
        }
        // The right user: a member with the admin role and the reserved seat.
        let (s, v) = t.accept(&tok, ANN).await;
        assert_eq!((s, v["role"].as_str(), v["seat"].as_bool()), (200, Some("admin"), Some(true)), "{v}");
        // Used: refused to anyone else, whatever their address.
        for other in [EVE, BOB] {
            let (s, v) = t.accept(&tok, other).await;
            assert_refused(s, &v, other);
            assert_eq!(s, 409, "{other}: {v}");
        }
        // Revoked: accepted by nobody, however often sent, also after a second revoke.
        let (_, b) = t.invite(&org, OWNER, BOB, "member", true).await;
        let bid = b["id"].as_str().unwrap();
        for _ in 0..2 {
            let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{bid}"), OWNER, None).await;
            assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
        }
        for _ in 0..2 {
            let (s, v) = t.accept(b["token"].as_str().unwrap(), BOB).await;
            assert_eq!((s, code(&v)), (409, "invite_revoked"), "{v}");
        }
        // An accepted invite is not revoked (the answer says so).
        let aid = a["id"].as_str().unwrap();
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{aid}"), OWNER, None).await;
        assert_eq!((s, code(&v)), (409, "invite_used"), "{v}");
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert_eq!((s, v["seats"]["used"].as_u64(), v["seats"]["reserved"].as_u64()), (200, Some(1), Some(0)), "{v}");
        // No answer, list or view carries a token or its digest.
        let (_, list) = t.call(Method::Get, &format!("/v1/orgs/{org}/invites"), OWNER, None).await;
        for shown in [list.to_string(), v.to_string()] {
            assert!(!shown.contains(&digest) && !shown.contains(&tok) && !shown.contains("token"), "{shown}");
        }
    });
}

/// The invitee's acceptance retried after its seat was taken (its answer lost, or
/// replayed on purpose, with a clock behind or ahead) answers as it was and gives the
/// seat back to nobody; nor does it after the member left and joined again without one.
#[test]
fn a_replayed_acceptance_gives_no_seat_back() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 2).await;
        let accepted_at = t.now.get() + 2;
        let inv = t.join(&org, OWNER, ANN, "member", true).await;
        let tok = inv["token"].as_str().unwrap().to_string();
        let (s, v) = t.seat(&org, OWNER, ANN, "take").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        let accept = format!("/v1/invites/{tok}/accept");
        for at in [t.tick(), accepted_at - 5, accepted_at, t.tick() + 3600] {
            let (s, v) = t.call_at(at, Method::Post, &accept, ANN, None, None).await;
            assert_eq!((s, v["seat"].as_bool(), v["seat_reserved"].as_bool()), (200, Some(false), Some(true)), "at {at}: {v}");
            assert!(!t.held(&org, ANN).await, "a replayed acceptance at {at} gave Ann her seat back");
        }
        // Left, invited again without a seat: the first invite's seat stays taken.
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/members/{ANN}"), ANN, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        let (s, v) = t.accept(&tok, ANN).await;
        assert_eq!((s, code(&v)), (409, "invite_used"), "a former member's replay: {v}");
        t.join(&org, OWNER, ANN, "member", false).await;
        let (s, v) = t.accept(&tok, ANN).await;
        assert_eq!((s, v["seat"].as_bool()), (200, Some(false)), "{v}");
        assert!(!t.held(&org, ANN).await, "the first invite's replay gave the member rejoined without a seat one");
        let (_, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert_eq!(v["seats"]["used"], json!(0), "{v}");
    });
}

/// Ids in paths that are not UUIDs (or not one: too long, too short, unicode, percent-
/// encoded, with spaces or a second segment) are 404 with the route's own code, never a
/// store error, and reach no change; a trailing slash is the same path.
#[test]
fn ids_in_paths_that_are_not_uuids_are_404() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 2).await;
        t.join(&org, OWNER, ANN, "member", true).await;
        let before = (t.picture(&org, OWNER).await, t.fact_keys(&org).await);
        let long = "a".repeat(20_000);
        let bad_ids = [
            "not-a-uuid".to_string(),
            format!("{org}x"),
            org[..35].to_string(),
            format!("{org}%00"),
            org.replacen('-', "%2D", 1),
            format!("{}é", &org[..35]),
            "😀".repeat(9),
            long.clone(),
            format!(" {}", &org[..35]),
            "00000000-0000-4000-8000-00000000000g".into(),
            "' or 1=1 --".replace(' ', "%20"),
            "*".into(),
        ];
        for bad in &bad_ids {
            for (method, path, body, want) in [
                (Method::Get, format!("/v1/orgs/{bad}"), None, "unknown_organization"),
                (Method::Get, format!("/v1/orgs/{bad}/invites"), None, "unknown_organization"),
                (Method::Post, format!("/v1/orgs/{bad}/invites"), Some(json!({"email": "x@example.com"})), "unknown_organization"),
                (Method::Post, format!("/v1/orgs/{bad}/seats"), Some(json!({"user_id": ANN, "action": "take"})), "unknown_organization"),
                (Method::Delete, format!("/v1/orgs/{bad}/members/{ANN}"), None, "unknown_organization"),
                (Method::Delete, format!("/v1/orgs/{bad}/invites/{ANN}"), None, "unknown_organization"),
                (Method::Delete, format!("/v1/orgs/{org}/members/{bad}"), None, "not_a_member"),
                (Method::Patch, format!("/v1/orgs/{org}/members/{bad}"), Some(json!({"role": "admin"})), "not_a_member"),
                (Method::Delete, format!("/v1/orgs/{org}/invites/{bad}"), None, "unknown_invite"),
            ] {
                let (s, v) = t.call(method, &path, OWNER, body).await;
                let what = format!("{} {}", method.as_str(), short(&path));
                assert_refused(s, &v, &what);
                assert_eq!((s, code(&v)), (404, want), "{what}: {v}");
            }
        }
        assert_eq!((t.picture(&org, OWNER).await, t.fact_keys(&org).await), before);
        // A trailing slash (or several) is the same path.
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}//"), ANN, None).await;
        assert_eq!((s, v["id"].as_str()), (200, Some(org.as_str())), "{v}");
        // An empty segment is no id: no route.
        let (s, v) = t.call(Method::Get, "/v1/orgs//invites", OWNER, None).await;
        assert_eq!((s, code(&v)), (404, "not_found"), "{v}");
    });
}

/// A UUID written in capitals is the same UUID (the SQL store reads both as one): every
/// route about the organization, its members and its invites acts on the one organization,
/// and a seat given or taken under such a path (or for such a `user_id`) is the member's
/// own seat, never another subject's.
#[test]
fn an_id_in_capitals_is_the_same_id() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 2).await;
        t.join(&org, OWNER, DEE, "member", false).await;
        let up = org.to_uppercase();
        let dee = DEE.to_uppercase();
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{up}"), DEE, None).await;
        assert_eq!((s, v["id"].as_str()), (200, Some(org.as_str())), "{v}");
        let (s, v) = t.seat(&up, OWNER, &dee, "give").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        assert!(t.held(&org, DEE).await, "the seat given under capitals is not Dee's");
        let (s, v) = t.seat(&org, OWNER, &dee, "take").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        assert!(!t.held(&org, DEE).await, "answered `taken`, Dee still holds her seat");
        let (s, v) = t.seat(&up, OWNER, DEE, "give").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        assert!(t.held(&org, DEE).await);
        assert!(t.fact_keys(&org).await.iter().all(|k| !k.contains(&up) && !k.contains(&dee)), "{:?}", t.fact_keys(&org).await);
        let (_, inv) = t.invite(&up, OWNER, BOB, "member", true).await;
        let id = inv["id"].as_str().unwrap().to_uppercase();
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{up}/invites/{id}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
        let (s, v) = t.accept(inv["token"].as_str().unwrap(), BOB).await;
        assert_eq!((s, code(&v)), (409, "invite_revoked"), "{v}");
        let (s, v) = t.call(Method::Patch, &format!("/v1/orgs/{up}/members/{dee}"), OWNER, Some(json!({"role": "admin"}))).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{up}/members/{dee}"), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        assert!(!t.held(&org, DEE).await, "removed under capitals, Dee keeps her seat");
        assert_eq!(t.call(Method::Get, &format!("/v1/orgs/{org}"), DEE, None).await.0, 404);
    });
}

/// A seat is taken only from a user's id: a `user_id` that is no UUID (a name, an
/// enormous string, unicode) is refused 400 before anything is folded, so no fact of a
/// subject that cannot exist is ever written.
#[test]
fn a_seat_is_given_or_taken_only_for_a_user_id() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 2).await;
        t.join(&org, OWNER, ANN, "member", true).await;
        let before = (t.picture(&org, OWNER).await, t.fact_keys(&org).await);
        for bad in ["ann".to_string(), "x".repeat(200_000), "😀".into(), format!("{ANN} "), format!("user:{ANN}"), String::new()] {
            for action in ["take", "give"] {
                let (s, v) = t.seat(&org, OWNER, &bad, action).await;
                let what = format!("{action} {}", short(&bad));
                assert_refused(s, &v, &what);
                assert!(v.to_string().len() < 1_000, "{what}: the answer repeats the input: {} bytes", v.to_string().len());
            }
        }
        assert_eq!((t.picture(&org, OWNER).await, t.fact_keys(&org).await), before, "a refused seat wrote something");
        assert!(t.held(&org, ANN).await);
    });
}

/// Bodies of every wrong shape (none, not JSON, not an object, fields of the wrong type,
/// enormous strings, duplicate fields) are 400 with a code, and write nothing.
#[test]
fn bodies_of_every_wrong_shape_are_400() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 2).await;
        t.join(&org, OWNER, ANN, "member", false).await;
        let before = (t.picture(&org, OWNER).await, t.fact_keys(&org).await);
        let huge = "a".repeat(300_000);
        let routes = [
            (Method::Post, "/v1/orgs".to_string()),
            (Method::Post, format!("/v1/orgs/{org}/invites")),
            (Method::Post, format!("/v1/orgs/{org}/seats")),
            (Method::Patch, format!("/v1/orgs/{org}/members/{ANN}")),
        ];
        let shapes: Vec<Vec<u8>> = vec![
            vec![],
            b"not json".to_vec(),
            b"{\"email\": ".to_vec(),
            b"[]".to_vec(),
            b"[{\"name\": \"Acme\"}]".to_vec(),
            b"\"Acme\"".to_vec(),
            b"42".to_vec(),
            b"null".to_vec(),
            b"true".to_vec(),
            b"{}".to_vec(),
            vec![0xff, 0xfe, b'{', b'}'],
        ];
        for (method, path) in &routes {
            for body in &shapes {
                let (s, v) = t.raw(*method, path, OWNER, body).await;
                let what = format!("{} {path} {:?}", method.as_str(), String::from_utf8_lossy(body));
                assert_refused(s, &v, &what);
                assert_eq!(s, 400, "{what}: {v}");
            }
        }
        let typed = [
            (Method::Post, "/v1/orgs".to_string(), json!({"name": 7})),
            (Method::Post, "/v1/orgs".to_string(), json!({"name": ["Acme"]})),
            (Method::Post, "/v1/orgs".to_string(), json!({"name": huge})),
            (Method::Post, "/v1/orgs".to_string(), json!({"name": "\u{202E}emcA"})),
            (Method::Post, "/v1/orgs".to_string(), json!({"name": "\u{200B}\u{FEFF}"})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": 7})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": ["x@example.com"]})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": format!("{huge}@example.com")})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": "x@example.com", "role": 1})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": "x@example.com", "role": huge})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": "x@example.com", "role": ["admin"]})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": "x@example.com", "seat": "true"})),
            (Method::Post, format!("/v1/orgs/{org}/invites"), json!({"email": "x@example.com", "seat": 1})),
            (Method::Post, format!("/v1/orgs/{org}/seats"), json!({"user_id": ANN})),
            (Method::Post, format!("/v1/orgs/{org}/seats"), json!({"user_id": ANN, "action": true})),
            (Method::Post, format!("/v1/orgs/{org}/seats"), json!({"user_id": ANN, "action": "GIVE"})),
            (Method::Post, format!("/v1/orgs/{org}/seats"), json!({"user_id": [ANN], "action": "give"})),
            (Method::Post, format!("/v1/orgs/{org}/seats"), json!({"user_id": 2, "action": "give"})),
            (Method::Patch, format!("/v1/orgs/{org}/members/{ANN}"), json!({"role": null})),
            (Method::Patch, format!("/v1/orgs/{org}/members/{ANN}"), json!({"role": 1})),
            (Method::Patch, format!("/v1/orgs/{org}/members/{ANN}"), json!({"role": huge})),
            (Method::Patch, format!("/v1/orgs/{org}/members/{ANN}"), json!({"role": "ADMIN"})),
        ];
        for (method, path, body) in typed {
            let (s, v) = t.call(method, &path, OWNER, Some(body.clone())).await;
            let shown = body.to_string();
            let what = format!("{} {path} {}", method.as_str(), short(&shown));
            assert_refused(s, &v, &what);
            assert_eq!(s, 400, "{what}: {v}");
        }
        // A duplicate field counts once (the last), as JSON parsers read it: the invite is
        // a member's, its role the last one written, never both.
        let (s, v) = t.raw(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER, br#"{"email": "dup@example.com", "role": "admin", "role": "owner"}"#).await;
        assert_eq!((s, code(&v)), (400, "invalid_role"), "{v}");
        let (s, v) = t.raw(Method::Patch, &format!("/v1/orgs/{org}/members/{ANN}"), ANN, br#"{"role": "member", "role": "owner"}"#).await;
        assert_eq!((s, code(&v)), (403, "owner_only"), "{v}");
        assert_eq!((t.picture(&org, OWNER).await, t.fact_keys(&org).await), before, "a refused body wrote something");
        // Extra fields are ignored, and never read as something they are not.
        let (s, v) = t.call(Method::Post, &format!("/v1/orgs/{org}/invites"), OWNER,
            Some(json!({"email": "x@example.com", "role": "member", "organization_id": NOWHERE, "created_by": ANN, "expires_at": "2100-01-01T00:00:00Z", "token": "mine"}))).await;
        assert_eq!((s, v["organization_id"].as_str(), v["role"].as_str()), (201, Some(org.as_str()), Some("member")), "{v}");
        assert_ne!(v["token"], json!("mine"));
        assert_eq!(v["expires_at"], json!(Timestamp(t.now.get()).plus_days(7)), "{v}");
        let (s, v) = t.call(Method::Post, "/v1/orgs", ANN, Some(json!({"name": "Mine", "id": org, "role": "member"}))).await;
        assert_eq!((s, v["role"].as_str()), (201, Some("owner")), "{v}");
        assert_ne!(v["id"].as_str(), Some(org.as_str()), "a body chose the id of an existing organization");
    });
}

/// The organization always keeps an owner: the last one can neither leave, nor step down,
/// nor be removed; with two owners, the first to leave leaves and the second stays; an
/// ownership handed over lets the former owner go. Two owners removing each other at the
/// same second (clocks alike): one goes, the other stays.
#[test]
fn the_last_owner_stays() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 2).await;
        t.join(&org, OWNER, ANN, "admin", true).await;
        let member = |u: &str| format!("/v1/orgs/{org}/members/{u}");
        for (method, body) in [(Method::Delete, None), (Method::Patch, Some(json!({"role": "admin"}))), (Method::Patch, Some(json!({"role": "member"})))] {
            let (s, v) = t.call(method, &member(OWNER), OWNER, body).await;
            assert_eq!((s, code(&v)), (409, "last_owner"), "{v}");
        }
        let (s, v) = t.call(Method::Delete, &member(OWNER), ANN, None).await;
        assert_eq!((s, code(&v)), (403, "owner_only"), "{v}");
        // An owner making itself owner again changes nothing and keeps the organization's owner.
        let (s, v) = t.call(Method::Patch, &member(OWNER), OWNER, Some(json!({"role": "owner"}))).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("owner")), "{v}");

        // Two owners remove each other in the same second: one removal goes through.
        let (s, _) = t.call(Method::Patch, &member(ANN), OWNER, Some(json!({"role": "owner"}))).await;
        assert_eq!(s, 200);
        let at = t.tick();
        let (s1, v1) = t.call_at(at, Method::Delete, &member(ANN), OWNER, None, None).await;
        let (s2, v2) = t.call_at(at, Method::Delete, &member(OWNER), ANN, None, None).await;
        assert_eq!((s1, v1["status"].as_str()), (200, Some("removed")), "{v1}");
        assert_eq!(s2, 404, "Ann, removed, removes the owner: {v2}");
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("owner")), "{v}");
        assert!(!t.held(&org, ANN).await);

        // Ownership handed over: the former owner leaves; the new one is the last.
        t.join(&org, OWNER, BOB, "member", false).await;
        let (s, _) = t.call(Method::Patch, &member(BOB), OWNER, Some(json!({"role": "owner"}))).await;
        assert_eq!(s, 200);
        let (s, v) = t.call(Method::Delete, &member(OWNER), OWNER, None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("removed")), "{v}");
        let (s, v) = t.call(Method::Delete, &member(BOB), BOB, None).await;
        assert_eq!((s, code(&v)), (409, "last_owner"), "{v}");
        let (s, v) = t.call(Method::Get, &format!("/v1/orgs/{org}"), BOB, None).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("owner")), "{v}");
    });
}

/// Requests decided at the same second, or on clocks behind each other (other isolates):
/// two admins giving the last seat to two members give it once; a seat taken on a clock
/// behind its give is not answered `taken` while it is held; a give on a clock behind a
/// take of the same member, with the seat free, is answered "send it again", not
/// `no_seat`.
#[test]
fn requests_on_clocks_behind_each_other_answer_what_the_store_holds() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 1).await;
        t.join(&org, OWNER, ANN, "member", false).await;
        t.join(&org, OWNER, BOB, "admin", false).await;
        t.join(&org, OWNER, CAT, "member", false).await;
        let seats = format!("/v1/orgs/{org}/seats");
        let at = t.tick();
        let (s1, v1) = t.call_at(at, Method::Post, &seats, OWNER, None, Some(json!({"user_id": ANN, "action": "give"}))).await;
        let (s2, v2) = t.call_at(at, Method::Post, &seats, BOB, None, Some(json!({"user_id": CAT, "action": "give"}))).await;
        assert_eq!((s1, v1["status"].as_str()), (200, Some("given")), "{v1}");
        assert_eq!((s2, code(&v2)), (409, "no_seat"), "{v2}");
        assert!(t.held(&org, ANN).await && !t.held(&org, CAT).await);

        // Ann's seat taken on a clock behind its give: folded before it, so still held,
        // and answered so (sent again, it is taken).
        let given = at;
        let (s, v) = t.call_at(given - 1, Method::Post, &seats, BOB, None, Some(json!({"user_id": ANN, "action": "take"}))).await;
        assert_refused(s, &v, "a take behind the give");
        assert_eq!((s, code(&v)), (409, "still_seated"), "{v}");
        assert!(t.held(&org, ANN).await);
        let (s, v) = t.seat(&org, OWNER, ANN, "take").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        assert!(!t.held(&org, ANN).await);
        let taken = t.now.get();
        // Given back on a clock behind the take: folded before it, so not held, while the
        // organization's one seat is free: the answer is to send it again, never
        // `no_seat` (which sends the caller to buy seats).
        let (s, v) = t.call_at(taken - 1, Method::Post, &seats, BOB, None, Some(json!({"user_id": ANN, "action": "give"}))).await;
        assert!(!t.held(&org, ANN).await);
        assert_refused(s, &v, "a give behind the take");
        assert_eq!((s, code(&v)), (409, "concurrent_change"), "{v}");
        let (s, v) = t.seat(&org, BOB, ANN, "give").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "sent again: {v}");
        // With no seat free, the refusal is `no_seat` with the seats as they are.
        let (s, v) = t.call_at(taken - 1, Method::Post, &seats, BOB, None, Some(json!({"user_id": CAT, "action": "give"}))).await;
        assert_eq!((s, code(&v), v["error"]["seats"]["available"].as_u64()), (409, "no_seat", Some(0)), "{v}");
        let (_, view) = t.call(Method::Get, &format!("/v1/orgs/{org}"), OWNER, None).await;
        assert!(view["seats"]["used"].as_u64().unwrap() <= 1, "more seats held than paid for: {view}");
    });
}

/// The organization routes take no Idempotency-Key of their own: the same key sent by two
/// admins makes two invites, sent again by one makes nothing the second time but what
/// the route decides (`already_invited`), and a member's key used on an organization route
/// is still free for its own use on `/v1/track`.
#[test]
fn idempotency_keys_are_nobody_elses_on_org_routes() {
    block(async {
        let t = T::new();
        let org = t.subscribed(OWNER, "sub_acme", 3).await;
        t.join(&org, OWNER, BOB, "admin", true).await;
        let invites = format!("/v1/orgs/{org}/invites");
        let body = |who: &str| Some(json!({"email": email(who), "role": "member", "seat": true}));
        let at = t.tick();
        let (s, a) = t.call_at(at, Method::Post, &invites, OWNER, Some("k-1"), body(ANN)).await;
        assert_eq!(s, 201, "{a}");
        let (s, b) = t.call_at(at, Method::Post, &invites, BOB, Some("k-1"), body(CAT)).await;
        assert_eq!(s, 201, "Bob's invite under the owner's key: {b}");
        assert_ne!((a["id"].clone(), a["token"].clone()), (b["id"].clone(), b["token"].clone()));
        let (s, v) = t.call_at(at, Method::Post, &invites, OWNER, Some("k-1"), body(ANN)).await;
        assert_eq!((s, code(&v)), (409, "already_invited"), "{v}");
        // The same key on another route of the same members.
        let (s, v) = t.call_at(at, Method::Post, &format!("/v1/orgs/{org}/seats"), BOB, Some("k-1"), Some(json!({"user_id": BOB, "action": "take"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("taken")), "{v}");
        let (s, v) = t.call_at(at + 1, Method::Post, &format!("/v1/orgs/{org}/seats"), OWNER, Some("k-1"), Some(json!({"user_id": BOB, "action": "give"}))).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("given")), "{v}");
        let courses = json!({"feature": "max_courses_authored", "organization_id": org});
        let (s, v) = t.call_at(at + 2, Method::Post, "/v1/track", BOB, Some("k-1"), Some(courses)).await;
        assert_eq!((s, v["replayed"].as_bool()), (200, Some(false)), "{v}");
        // A bad key is no reason to refuse an organization route (it reads none).
        let (s, v) = t.call_at(at + 3, Method::Get, &format!("/v1/orgs/{org}"), BOB, Some(&"k".repeat(500)), None).await;
        assert_eq!(s, 200, "{v}");
    });
}

/// Every organization path answers the methods its table names: another method is 405
/// with `allow` and a JSON error (before any token is read), an unknown path under
/// `/v1/orgs` or `/v1/invites` 404, and OPTIONS 204.
#[test]
fn org_paths_answer_405_for_other_methods_and_404_for_unknown_paths() {
    block(async {
        let t = T::new();
        let org = t.org_of(OWNER, "Acme").await;
        let all = [Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Other];
        for (path, allowed, allow) in [
            ("/v1/orgs".to_string(), vec![Method::Post], "POST, OPTIONS"),
            (format!("/v1/orgs/{org}"), vec![Method::Get], "GET, OPTIONS"),
            (format!("/v1/orgs/{org}/invites"), vec![Method::Get, Method::Post], "GET, POST, OPTIONS"),
            (format!("/v1/orgs/{org}/invites/{ANN}"), vec![Method::Delete], "DELETE, OPTIONS"),
            (format!("/v1/orgs/{org}/seats"), vec![Method::Post], "POST, OPTIONS"),
            (format!("/v1/orgs/{org}/members/{ANN}"), vec![Method::Patch, Method::Delete], "PATCH, DELETE, OPTIONS"),
            ("/v1/invites/some-token/accept".to_string(), vec![Method::Post], "POST, OPTIONS"),
        ] {
            for m in all.iter().copied().filter(|m| !allowed.contains(m)) {
                for p in [path.clone(), format!("{path}/")] {
                    let req = InRequest { method: m, path: p.clone(), query: String::new(), headers: Headers::new(), body: vec![] };
                    let r = t.app.handle(req, Timestamp(t.tick())).await;
                    assert_eq!((r.status, r.headers.get("allow")), (405, Some(allow)), "{} {p}", m.as_str());
                    if m != Method::Head {
                        let v = r.body_json();
                        assert_refused(r.status, &v, &p);
                        assert_eq!(code(&v), "method_not_allowed");
                    }
                }
            }
            let req = InRequest { method: Method::Options, path: path.clone(), query: String::new(), headers: Headers::new(), body: vec![] };
            assert_eq!(t.app.handle(req, Timestamp(t.tick())).await.status, 204, "{path}");
        }
        for path in [
            format!("/v1/orgs/{org}/members"),
            format!("/v1/orgs/{org}/members/{ANN}/role"),
            format!("/v1/orgs/{org}/seats/{ANN}"),
            format!("/v1/orgs/{org}/invites/{ANN}/accept"),
            format!("/v1/orgs/{org}/extra"),
            "/v1/invites/some-token".into(),
            "/v1/invites".into(),
            "/v1/invites//accept".into(),
            "/v1/org".into(),
            "/v1/ORGS".into(),
        ] {
            for m in [Method::Get, Method::Post, Method::Delete] {
                let (s, v) = t.call(m, &path, OWNER, Some(json!({}))).await;
                assert_refused(s, &v, &path);
                assert_eq!((s, code(&v)), (404, "not_found"), "{} {path}: {v}", m.as_str());
            }
        }
        // Without a token, a known path with its own method is 401, never a store read.
        let req = InRequest { method: Method::Get, path: format!("/v1/orgs/{org}"), query: String::new(), headers: Headers::new(), body: vec![] };
        let r = t.app.handle(req, Timestamp(t.tick())).await;
        assert_refused(r.status, &r.body_json(), "no token");
        assert_eq!(r.status, 401);
    });
}

/// An invite accepted by its invitee after a revoke read it open and before the revoke's
/// write is answered `invite_used` (the member stays, and the admin is told so), not 200
/// `revoked`; a second revoke of a revoked invite still answers as the first.
#[test]
fn a_revoke_that_finds_the_invite_accepted_meanwhile_says_so() {
    block(async {
        let t = T::new();
        let org = t.org_of(OWNER, "Acme").await;
        let (s, inv) = t.invite(&org, OWNER, ANN, "member", false).await;
        assert_eq!(s, 201, "{inv}");
        let id = inv["id"].as_str().unwrap().to_string();
        let accepted = id.clone();
        t.app.ctx.store.before_next_org_change(move |store| store.accept_invite_now(&accepted, ANN));
        let (s, v) = t.call(Method::Delete, &format!("/v1/orgs/{org}/invites/{id}"), OWNER, None).await;
        assert_eq!((s, code(&v)), (409, "invite_used"), "{v}");

        let (s, other) = t.invite(&org, OWNER, BOB, "member", false).await;
        assert_eq!(s, 201, "{other}");
        let path = format!("/v1/orgs/{org}/invites/{}", other["id"].as_str().unwrap());
        let (s, first) = t.call(Method::Delete, &path, OWNER, None).await;
        assert_eq!((s, first["status"].as_str()), (200, Some("revoked")), "{first}");
        let (s, again) = t.call(Method::Delete, &path, OWNER, None).await;
        assert_eq!((s, &again), (200, &first));
    });
}

/// An acceptance decided before its invitee became a member (another invite of the same
/// organization, accepted at the same moment) keeps the role that member holds: an old
/// admin invite promotes nobody, an old member invite demotes nobody.
#[test]
fn an_acceptance_landing_on_a_membership_keeps_its_role() {
    block(async {
        let t = T::new();
        let org = t.org_of(OWNER, "Acme").await;
        let (s, inv) = t.invite(&org, OWNER, ANN, "admin", false).await;
        assert_eq!(s, 201, "{inv}");
        let joined = org.clone();
        t.app.ctx.store.before_next_org_change(move |store| store.add_member(&joined, ANN, "member"));
        let (s, v) = t.accept(inv["token"].as_str().unwrap(), ANN).await;
        assert_eq!(s, 200, "{v}");
        let (_, view) = t.call(Method::Get, &format!("/v1/orgs/{org}"), ANN, None).await;
        assert_eq!(view["role"].as_str(), Some("member"), "the admin invite promoted a member: {view}");
    });
}

/// A create retried with its Idempotency-Key (the answer lost on the way) is answered as the
/// first and makes no second organization; the same key for another name is refused; another
/// user's same key, or no key, makes a new one.
#[test]
fn a_create_retried_with_its_key_makes_one_organization() {
    block(async {
        let t = T::new();
        let create = |uid: &'static str, key: Option<&'static str>, name: &'static str| {
            let t = &t;
            async move { t.call_at(t.tick(), Method::Post, "/v1/orgs", uid, key, Some(json!({"name": name}))).await }
        };
        let (s, first) = create(OWNER, Some("org-1"), "Acme").await;
        assert_eq!(s, 201, "{first}");
        let (s, again) = create(OWNER, Some("org-1"), "Acme").await;
        assert_eq!((s, &again), (201, &first), "a retry is the first answer");
        let (s, other) = create(OWNER, Some("org-1"), "Other name").await;
        assert_eq!((s, code(&other)), (409, "idempotency_key_reused"), "{other}");
        let (s, theirs) = create(ANN, Some("org-1"), "Acme").await;
        assert_eq!(s, 201, "{theirs}");
        assert_ne!(theirs["id"], first["id"], "another user's key names another organization");
        let (s, fresh) = create(OWNER, None, "Acme").await;
        assert_eq!(s, 201, "{fresh}");
        assert_ne!(fresh["id"], first["id"]);
        let history = t.app.ctx.store.org_history(first["id"].as_str().unwrap());
        assert_eq!(history.iter().filter(|h| h.kind == "created").count(), 1, "one organization made under the key");
    });
}
