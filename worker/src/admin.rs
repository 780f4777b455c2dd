//! `POST /v1/admin/grants` (admin secret): manual_grant and promotion grants, with an
//! expiry, and optional credits.
//!
//! ```json
//! { "user_id": "<uuid>"            (or "organization_id"),
//!   "grants": [ { "product": "video", "tier": "pro", "source": "promotion",
//!                 "valid_from": "2026-03-01T00:00:00Z", "valid_to": "2026-04-01T00:00:00Z",
//!                 "id": "spring-2026" } ],
//!   "credits": [ { "pool": "video_seconds", "amount": 600, "id": "compensation-42",
//!                  "valid_to": null } ] }
//! ```
//! Products, tiers and pools are checked against the catalog. Each grant and credit is a
//! fact (`GrantGiven`, `CreditAdjustment`) folded with the subject's other facts, so a
//! later fold keeps them and never charges anything twice. A grant is identified by its
//! source and id: sending it again with other values updates it; a grant whose window
//! has ended is closed by the fold. A credit id gives its credit once: the same credit
//! again changes nothing, the same id with other values is a 409 (given twice in one
//! request, a 400: a request applies whole or not at all). A pool's balance is brought to
//! at most `MAX_BALANCE`. 201 on success; 404 for a subject the database does not know.
//! Every admin body naming a field twice in one object is a 400 (`repeated_field`).

use serde_json::{json, Value};

use tollgate::billing::facts::{CreditAdjustment, Fact, FactBody, GrantGiven};
use tollgate::model::Source;
use tollgate::time::Timestamp;

use crate::ctx::Ctx;
use crate::respond::{error, error_json, json_body, store_error};
use crate::store::Store;
use crate::http::{AppResponse, InRequest, Transport};
use crate::state::{is_uuid, Subject};
use crate::webhook::Outcome;

fn time_field(v: &Value, k: &str) -> Result<Option<Timestamp>, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Timestamp::parse(s).map(Some).map_err(|e| format!("{k}: {e}")),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(s) => Timestamp::checked(s).map(Some).map_err(|e| format!("{k}: {e}")),
            None => Err(format!("{k}: not an integer")),
        },
        Some(_) => Err(format!("{k}: expected an RFC 3339 string or unix seconds")),
    }
}

/// The subject of an operator's request: exactly one of `user_id` and `organization_id`, a
/// UUID, in the one spelling the store writes (lower case: an upper-case id is the same
/// subject). A field that is there and is not text (a number, `false`) is not taken for a
/// missing one: `{"user_id": 5, "organization_id": ...}` names two subjects, not the
/// organization. `null` is absent.
pub(crate) fn subject_of(body: &Value) -> Result<Subject, AppResponse> {
    let field = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_uuid(s) => Ok(Some(s.to_ascii_lowercase())),
        Some(_) => Err(()),
    };
    match (field("user_id"), field("organization_id")) {
        (Ok(Some(u)), Ok(None)) => Ok(Subject::User(u)),
        (Ok(None), Ok(Some(o))) => Ok(Subject::Org(o)),
        _ => Err(error(400, "invalid_subject", "give exactly one of user_id and organization_id, as a UUID")),
    }
}

/// The array `field` of an operator's body (`null` or absent: none). Anything else, a lone
/// object an operator forgot to put in brackets included, is a 400 `code`: skipped, the
/// rest of the request would be granted and answered 201 without it.
fn list<'a>(body: &'a Value, field: &str, code: &str) -> Result<&'a [Value], AppResponse> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(error(400, code, format!("`{field}` must be an array"))),
    }
}

/// A grant or credit named twice in one request must say the same thing both times: a
/// credit id with two amounts (or a grant id with two tiers) is refused before anything is
/// written, so a request is applied whole or not at all (the store would keep the first and
/// answer 409 with the rest of the request already applied).
fn once_in_request(facts: &[Fact], fact: &Fact) -> Result<(), String> {
    let same_id = |f: &&Fact| match (&f.body, &fact.body) {
        (FactBody::GrantGiven(a), FactBody::GrantGiven(b)) => (&a.source, &a.id) == (&b.source, &b.id),
        _ => f.key == fact.key,
    };
    match facts.iter().find(same_id) {
        Some(f) if f.body != fact.body => Err("this id is given twice in the request with other values".into()),
        _ => Ok(()),
    }
}

pub async fn grants<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest, now: Timestamp) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let subject = match subject_of(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let core_subject = subject.to_core();
    let (grant_list, credit_list) = match (list(&body, "grants", "invalid_grant"), list(&body, "credits", "invalid_credit")) {
        (Ok(g), Ok(c)) => (g, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut facts = Vec::new();
    let mut given = Vec::new();
    for (i, g) in grant_list.iter().enumerate() {
        let bad = |m: String| error(400, "invalid_grant", format!("grants[{i}]: {m}"));
        let product = g.get("product").and_then(Value::as_str).unwrap_or("");
        let tier = g.get("tier").and_then(Value::as_str).unwrap_or("");
        if app.catalog().product(product).is_none() {
            return bad(format!(
                "unknown product `{product}` in catalog `{}`",
                app.catalog().meta().id
            ));
        }
        if app.catalog().tier_index(product, tier).is_none() {
            return bad(format!("product `{product}` has no tier `{tier}`"));
        }
        let source = match crate::respond::opt_str(g, "source", "invalid_grant").map(|s| s.unwrap_or("manual_grant")) {
            Ok(s) => s,
            Err(_) => return bad("`source` must be a string".into()),
        };
        let source = match source {
            "manual_grant" => Source::ManualGrant,
            "promotion" => Source::Promotion,
            other => return bad(format!("source `{other}`: admin grants are manual_grant or promotion")),
        };
        let valid_from = match time_field(g, "valid_from") {
            Ok(t) => t.unwrap_or(now),
            Err(m) => return bad(m),
        };
        let valid_to = match time_field(g, "valid_to") {
            Ok(t) => t,
            Err(m) => return bad(m),
        };
        if valid_to.is_some_and(|t| t <= valid_from) {
            return bad("valid_to must be after valid_from".into());
        }
        // Only a missing id is the product's: a number there is refused, not read as none
        // (two grants with numeric ids would both be the product's grant, the second
        // replacing the first).
        let id = match crate::respond::opt_str(g, "id", "invalid_grant") {
            Ok(id) => id.unwrap_or(product),
            Err(_) => return bad("`id` must be a string".into()),
        };
        if id.is_empty() || id.len() > 200 {
            return bad("id must be 1 to 200 characters".into());
        }
        let grant = GrantGiven {
            id: id.to_string(),
            subject: core_subject.clone(),
            product: product.to_string(),
            tier: tier.to_string(),
            source,
            valid_from,
            valid_to,
        };
        given.push(json!({"id": format!("{}:{id}", source.as_str()), "product": product, "tier": tier,
                          "source": source.as_str(), "valid_from": valid_from, "valid_to": valid_to}));
        let fact = Fact::grant_given(grant, now);
        if let Err(m) = once_in_request(&facts, &fact) {
            return bad(m);
        }
        facts.push(fact);
    }
    let mut credits = Vec::new();
    // (pool, lot, units) of each credit, for the balance bound below.
    let mut adding: Vec<(String, String, i64)> = Vec::new();
    for (i, c) in credit_list.iter().enumerate() {
        let bad = |m: String| error(400, "invalid_credit", format!("credits[{i}]: {m}"));
        let pool = c.get("pool").and_then(Value::as_str).unwrap_or("");
        if app.catalog().pool(pool).is_none() {
            return bad(format!("unknown credit pool `{pool}`"));
        }
        let max = tollgate::credits::MAX_CREDIT;
        let Some(amount) = c.get("amount").and_then(Value::as_i64).filter(|a| *a > 0 && *a <= max) else {
            return bad(format!("amount must be a whole number from 1 to {max}"));
        };
        let Some(id) = c.get("id").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 200) else {
            return bad("id is required, 1 to 200 characters (it makes the credit idempotent)".into());
        };
        let valid_to = match time_field(c, "valid_to") {
            Ok(t) => t,
            Err(m) => return bad(m),
        };
        if valid_to.is_some_and(|t| t <= now) {
            return bad("valid_to must be in the future".into());
        }
        let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
        let adjustment = CreditAdjustment::by_operator(core_subject.clone(), id, pool, amount, reason, valid_to);
        let lot = adjustment.lot_key();
        credits.push(json!({"id": id, "pool": pool, "amount": amount, "valid_to": valid_to, "lot": lot}));
        let fact = Fact::credit_adjustment(adjustment, now);
        if let Err(m) = once_in_request(&facts, &fact) {
            return bad(m);
        }
        if !facts.iter().any(|f| f.key == fact.key) {
            adding.push((pool.to_string(), lot, amount));
        }
        facts.push(fact);
    }
    if facts.is_empty() {
        return error(400, "nothing_to_grant", "give at least one of `grants` and `credits`");
    }
    match app.store.subject_exists(&subject).await {
        Ok(true) => {}
        Ok(false) => return error(404, "unknown_subject", format!("no such user or organization: {}", subject.key())),
        Err(e) => return store_error(&e),
    }
    if !adding.is_empty() {
        // What the credits bring each pool to, those given before (a retry) left out: at
        // most MAX_BALANCE.
        let wallet = match app.store.subject_state(&subject, None).await {
            Ok(st) => st.wallet,
            Err(e) => return store_error(&e),
        };
        if let Some((pool, _)) = wallet.past_max_balance(adding.iter().map(|(p, l, a)| (p.as_str(), l.as_str(), *a))) {
            let max = tollgate::credits::MAX_BALANCE;
            return error(
                400,
                "balance_too_large",
                format!("these credits would bring `{pool}` past {max} units, the most a balance may hold"),
            );
        }
    }
    match crate::webhook::apply_whole(app, facts, now).await {
        Ok(Outcome::Applied { conflicts, .. }) if !conflicts.is_empty() => error_json(
            409,
            "already_granted",
            "a credit with this id was given before with other values; use a new id",
            json!({"facts": conflicts}),
        ),
        Ok(_) => AppResponse::json(
            201,
            &json!({"status": "granted", "subject": subject.key(), "grants": given, "credits": credits}),
        ),
        Err(e) if e.conflict() == Some(crate::store::Conflict::FactConflict) => error(
            409,
            "already_granted",
            "a credit or grant with this id was given before with other values; use a new id",
        ),
        Err(e) => store_error(&e),
    }
}

/// `POST /v1/admin/seats` (admin secret): gives a member of an organization a seat, or
/// takes it back. `{"organization_id", "user_id", "action": "assign" | "release",
/// "request_id"?}`. Only a member is given a seat (the core's `orgs::operator_seat`, read
/// from the organization as it stands): 404 `not_a_member` for anyone else, 404
/// `unknown_organization` for no organization; taking one back asks nothing. The seat is
/// a fact like any other: the core's fold decides whether the organization has a seat
/// left (its seat count follows the subscription quantity), and the answer says what it
/// decided: 200 with the seat, or 409 with the refusal.
pub async fn seats<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest, now: Timestamp) -> AppResponse {
    use tollgate::billing::facts::{Fact, Subject as CoreSubject};
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let org = body.get("organization_id").and_then(Value::as_str).unwrap_or("");
    let user = body.get("user_id").and_then(Value::as_str).unwrap_or("");
    if !is_uuid(org) || !is_uuid(user) {
        return error(400, "invalid_subject", "organization_id and user_id must be UUIDs");
    }
    let (org, user) = (org.to_ascii_lowercase(), user.to_ascii_lowercase());
    let (org, user) = (org.as_str(), user.as_str());
    let action = match crate::respond::opt_str(&body, "action", "invalid_action").map(|a| a.unwrap_or("assign")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    // The operator's own id goes in its own space (`admin:` and the id escaped), so it can
    // never be a key the system writes: an invite's seat (`invite:<id>`), a member's move
    // (`<user>:<nonce>`) or an unnamed operator request (`<action>:<time>`).
    // A request id that is not text is refused, not read as none: it would be given the
    // time's id, so a retry a second later would be another change.
    let request_id = match crate::respond::opt_str(&body, "request_id", "invalid_request_id") {
        Ok(id) => id
            .map(|id| format!("admin:{}", tollgate::billing::facts::key_part(id)))
            .unwrap_or_else(|| format!("{action}:{}", now.unix())),
        Err(r) => return r,
    };
    let (o, u) = (CoreSubject::org(org), CoreSubject::user(user));
    if action == "assign" || action == "release" {
        // Taking a seat back asks nothing of the member (a removed member's seat is taken
        // back too), but it needs an organization: a fold of a seat of none would write
        // an organization's rows for an id no one created.
        let read = match app.store.org(org).await {
            Ok(Some(r)) => r,
            Ok(None) => return error(404, "unknown_organization", format!("no organization {org}")),
            Err(e) => return store_error(&e),
        };
        if action == "assign" {
            if let Err(r) = tollgate::orgs::operator_seat(&read.org, user, true) {
                return crate::orgs::refused(r);
            }
        }
    }
    let fact = match action {
        "assign" => Fact::seat_assigned(o, u, &request_id, now),
        "release" => Fact::seat_released(o, u, &request_id, now),
        other => {
            return error(
                400,
                "invalid_action",
                format!("action `{other}`: use assign or release"),
            )
        }
    };
    if let Err(e) = crate::webhook::apply_facts(app, None, vec![fact], now).await {
        return store_error(&e);
    }
    let held = match app.store.seat_held(org, user).await {
        Ok(h) => h,
        Err(e) => return store_error(&e),
    };
    match (action, held) {
        ("assign", true) | ("release", false) => AppResponse::json(
            200,
            &json!({"status": if held { "seated" } else { "released" }, "organization_id": org, "user_id": user}),
        ),
        ("assign", false) => error(
            409,
            "no_seat",
            "the organization has no seat left for this user (see its seat count)",
        ),
        _ => error(409, "still_seated", "the seat could not be released"),
    }
}

/// Is `a` a failed payments cursor as the store writes them: the first failure's instant in
/// RFC 3339 (`2027-01-15T08:00:00Z`, as the store prints it), `|`, and the row's id? What
/// else reached the SQL store would fail its cast there, a 500 where the operator should
/// read a 400.
fn is_cursor(a: &str) -> bool {
    let Some((at, id)) = a.split_once('|') else { return false };
    a.len() <= 300 && !id.is_empty() && Timestamp::parse(at).is_ok_and(|t| t.to_rfc3339() == at)
}

/// `GET /v1/admin/failed-payments?status=open|resolved|all&after=&limit=`: the failed
/// subscription payments (what is due, attempts, next retry, grace end; settled ones with
/// when and how), oldest first failure first, `limit` (1 to 200, default 50) at a time;
/// `next` is the `after` of the next page (`null` at the end).
pub async fn failed_payments<T: Transport, S: Store>(app: &Ctx<T, S>, req: &InRequest) -> AppResponse {
    let open = match req.query_param("status").as_deref() {
        None | Some("") | Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some("all") => None,
        Some(s) => return error(400, "invalid_status", format!("status `{s}`: use open, resolved or all")),
    };
    let limit = match req.query_param("limit").filter(|l| !l.is_empty()) {
        None => 50,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return error(400, "invalid_limit", "limit: 1 to 200"),
        },
    };
    let after = req.query_param("after").filter(|a| !a.is_empty());
    if after.as_deref().is_some_and(|a| !is_cursor(a)) {
        return error(400, "invalid_cursor", "after: the `next` of the previous page");
    }
    match app.store.failed_payments(open, after.as_deref(), limit).await {
        Ok(rows) => {
            let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r["cursor"].clone())).flatten();
            AppResponse::json(200, &json!({"failed_payments": rows, "next": next}))
        }
        Err(e) => store_error(&e),
    }
}

/// A 400 `repeated_field` for an operator's JSON body that names a field twice in one
/// object (`{"amount": 1000000, "amount": 10}`): JSON readers disagree on which of the two
/// counts (this one reads the last, a log or a proxy may show the first), and in a request
/// that moves money or seats no guess is taken. Bodies that are not JSON are left to the
/// route, which answers them as it does any other.
pub fn repeated_field(req: &InRequest) -> Option<AppResponse> {
    let Repeated(field) = serde_json::from_slice(&req.body).ok()?;
    field.map(|f| error(400, "repeated_field", format!("the field `{f}` is given twice in one object; give it once")))
}

/// The first key written twice in one object of a JSON value, anywhere in it.
struct Repeated(Option<String>);

impl<'de> serde::Deserialize<'de> for Repeated {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RepeatedVisitor)
    }
}

struct RepeatedVisitor;

impl<'de> serde::de::Visitor<'de> for RepeatedVisitor {
    type Value = Repeated;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
    fn visit_unit<E>(self) -> Result<Repeated, E> {
        Ok(Repeated(None))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Repeated, A::Error> {
        let mut found = None;
        while let Some(Repeated(r)) = s.next_element()? {
            found = found.or(r);
        }
        Ok(Repeated(found))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Repeated, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        let mut found = None;
        while let Some(k) = m.next_key::<String>()? {
            let Repeated(r) = m.next_value()?;
            if seen.contains(&k) {
                found = found.or(Some(k));
            } else {
                found = found.or(r);
                seen.insert(k);
            }
        }
        Ok(Repeated(found))
    }
}
