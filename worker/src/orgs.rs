//! Organizations run by their members: `POST /v1/orgs`, `GET /v1/orgs/{id}`,
//! `GET|POST /v1/orgs/{id}/invites`, `DELETE /v1/orgs/{id}/invites/{invite}`,
//! `POST /v1/invites/{token}/accept`, `POST /v1/orgs/{id}/seats`,
//! `PATCH|DELETE /v1/orgs/{id}/members/{user}`.
//!
//! Each reads the organization in one store call ([`Store::org`]), asks the core
//! ([`tollgate::orgs`]) whether the caller may and what it comes to, and writes the
//! effect: a seat is a fact folded with the organization's other facts (so a later
//! quantity change or cancellation folds with it in any order, and the fold decides
//! whether a seat is left), anything else one `tollgate_org_change` call that checks,
//! under the organization's lock, that the organization is still what the decision read
//! (else the route reads and decides again).

use serde_json::{json, Value};

use tollgate::orgs::{self, OrgRefusal, RefusalCode, SeatMove};
use tollgate::time::Timestamp;

use crate::auth::Claims;
use crate::ctx::Ctx;
use crate::http::{AppResponse, InRequest, Method, Transport};
use crate::respond::{error, error_json, idempotency_key, json_body, store_error};
use crate::state::is_uuid;
use crate::store::{Conflict, OrgChange, OrgRead, Store, StoreError};

/// How often a change is decided again when the organization changed under it.
const ATTEMPTS: usize = 4;

/// The HTTP answer of a refusal.
pub(crate) fn refused(r: OrgRefusal) -> AppResponse {
    let status = match r.code {
        RefusalCode::UnknownOrganization | RefusalCode::NotAMember | RefusalCode::UnknownInvite => 404,
        RefusalCode::NotOrgAdmin | RefusalCode::OwnerOnly | RefusalCode::WrongEmail => 403,
        RefusalCode::InvalidEmail | RefusalCode::InvalidRole | RefusalCode::InvalidName => 400,
        RefusalCode::InviteExpired => 410,
        RefusalCode::NoSeat
        | RefusalCode::LastOwner
        | RefusalCode::AlreadyMember
        | RefusalCode::AlreadyInvited
        | RefusalCode::InviteUsed
        | RefusalCode::InviteRevoked => 409,
    };
    match r.seats {
        Some(s) => error_json(status, r.code.as_str(), r.message, json!({"seats": s})),
        None => error(status, r.code.as_str(), r.message),
    }
}

fn unknown_org(id: &str) -> AppResponse {
    error(404, "unknown_organization", format!("no organization {id} you belong to"))
}

fn busy() -> AppResponse {
    error(409, "concurrent_change", "the organization kept changing while this request was decided; send it again")
}

fn no_random() -> AppResponse {
    error(500, "no_random_source", "the runtime gave no random bytes")
}

/// The organization `id` (a UUID), or the answer a caller gets when there is none.
async fn read<T: Transport, S: Store>(ctx: &Ctx<T, S>, id: &str) -> Result<OrgRead, AppResponse> {
    if !is_uuid(id) {
        return Err(unknown_org(id));
    }
    match ctx.store.org(id).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(unknown_org(id)),
        Err(e) => Err(store_error(&e)),
    }
}

fn stale(e: &StoreError) -> bool {
    e.conflict() == Some(Conflict::OrgStale)
}

/// A string field of a JSON body, or a 400.
fn field<'a>(body: &'a Value, k: &str) -> Result<&'a str, AppResponse> {
    body.get(k).and_then(Value::as_str).ok_or_else(|| error(400, "invalid_body", format!("`{k}` is required, as a string")))
}

/// Folds a seat fact (given or taken by `by`) and answers whether `user` holds a seat now.
async fn fold_seat<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    org: &str,
    user: &str,
    give: bool,
    by: &str,
    request_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let fact = orgs::seat_fact(org, user, give, by, request_id, now);
    crate::webhook::apply_facts(ctx, None, vec![fact], now).await?;
    ctx.store.seat_held(org, user).await
}

/// `POST /v1/orgs` `{"name"}`: a new organization with the caller as its owner. 201.
pub async fn create<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, claims: &Claims) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = match orgs::new_organization(body.get("name").and_then(Value::as_str).unwrap_or("")) {
        Ok(n) => n,
        Err(r) => return refused(r),
    };
    let key = match idempotency_key(req, false) {
        Ok(k) => k,
        Err(r) => return r,
    };
    // With an Idempotency-Key the organization's id is the caller's and the key's (a retry
    // names the same one, which the store's key refuses to make twice); without, a new one.
    let id = if key.is_empty() {
        let Some(id) = crate::random::uuid() else { return no_random() };
        id
    } else {
        keyed_uuid(&claims.sub, key)
    };
    let made = AppResponse::json(201, &json!({"id": id, "name": name, "role": "owner"}));
    let change = OrgChange::Create { id: id.clone(), name: name.clone(), by: claims.sub.clone() };
    match ctx.store.org_change(&change).await {
        Ok(_) => made,
        // Made before under this key: a retry is answered as the first request was while the
        // organization is the one it asked for (its name, the caller a member of it).
        Err(e) if !key.is_empty() && e.conflict() == Some(Conflict::Other) => match read(ctx, &id).await {
            Ok(o) if o.org.name == name && o.org.members.iter().any(|m| m.user_id == claims.sub) => made,
            Ok(_) => error(409, "idempotency_key_reused", "this Idempotency-Key made another organization: use a new key"),
            Err(r) => r,
        },
        Err(e) => store_error(&e),
    }
}

/// The id of the organization `user` creates under Idempotency-Key `key`: a UUID (version
/// 8, made from a SHA-256 of the two) no other user's key can name.
fn keyed_uuid(user: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    // A user id and a key hold no line feed (a key has no control character), so the two
    // are read back from the text unambiguously.
    let d = Sha256::digest(format!("tollgate:organization\n{user}\n{key}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    crate::random::uuid_of(b, 8)
}

/// `GET /v1/orgs/{id}`: the organization as the caller may see it (the core's view).
pub async fn get<T: Transport, S: Store>(ctx: &Ctx<T, S>, id: &str, claims: &Claims, now: Timestamp) -> AppResponse {
    let o = match read(ctx, id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    // What the organization's plan gives, under the terms its grants are held under (as
    // POST /v1/check for the organization decides).
    let (catalog, _) = ctx.catalog_for(&o.org.grants, now).await;
    match orgs::view(&catalog, &o.org, &claims.sub, now) {
        Ok(v) => AppResponse::json(200, &serde_json::to_value(&v).unwrap_or_default()),
        Err(r) => refused(r),
    }
}

/// `GET /v1/orgs/{id}/invites` (owners, admins): the open invites. `POST` `{"email",
/// "role": "member" | "admin", "seat": bool}`: a new invite with a single-use token
/// (answered once, here) that expires; 409 `no_seat` when a seat is asked and none is free.
pub async fn invites<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, id: &str, claims: &Claims, now: Timestamp) -> AppResponse {
    if req.method == Method::Get {
        let o = match read(ctx, id).await {
            Ok(o) => o,
            Err(r) => return r,
        };
        return match orgs::view(&ctx.catalog(), &o.org, &claims.sub, now) {
            Ok(v) if v.invites.is_some() => AppResponse::json(200, &json!({"invites": v.invites})),
            Ok(_) => refused(OrgRefusal {
                code: RefusalCode::NotOrgAdmin,
                message: "only an owner or an admin of the organization sees its invites".into(),
                seats: None,
            }),
            Err(r) => refused(r),
        };
    }
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let email = match field(&body, "email") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let role = match crate::respond::opt_str(&body, "role", "invalid_role").map(|r| r.unwrap_or("member")) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let seat = match body.get("seat") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return error(400, "invalid_body", "`seat` must be true or false"),
    };
    let Some(raw) = crate::random::bytes::<32>() else { return no_random() };
    let token = tollgate::snapshot::encode_b64url(&raw);
    for _ in 0..ATTEMPTS {
        let o = match read(ctx, id).await {
            Ok(o) => o,
            Err(r) => return r,
        };
        let new = match orgs::invite(&o.org, &claims.sub, email, role, seat, now) {
            Ok(n) => n,
            Err(r) => return refused(r),
        };
        let change = OrgChange::Invite {
            org: new.organization_id.clone(),
            email: new.email.clone(),
            role: new.role,
            seat: new.seat,
            token_digest: orgs::token_digest(&token),
            expires_at: new.expires_at,
            by: new.created_by.clone(),
            stamp: o.stamp.clone(),
        };
        match ctx.store.org_change(&change).await {
            Ok(v) => {
                return AppResponse::json(
                    201,
                    &json!({
                        "id": v["id"], "organization_id": new.organization_id, "email": new.email, "role": new.role,
                        "seat": new.seat, "expires_at": new.expires_at, "token": token,
                        "accept": format!("/v1/invites/{token}/accept"),
                    }),
                )
            }
            Err(e) if stale(&e) => continue,
            Err(e) => return store_error(&e),
        }
    }
    busy()
}

/// `DELETE /v1/orgs/{id}/invites/{invite}` (owners, admins): the invite can no longer be
/// accepted, and its seat is free again. A second revoke answers the same.
pub async fn revoke<T: Transport, S: Store>(ctx: &Ctx<T, S>, id: &str, invite: &str, claims: &Claims, now: Timestamp) -> AppResponse {
    let o = match read(ctx, id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    // The organization lists its open invites; one accepted or revoked already is read
    // on its own (the core answers it: `invite_used`, or revoked again).
    let found = match o.org.invites.iter().find(|i| i.id == invite) {
        Some(i) => Some(i.clone()),
        None if is_uuid(invite) => match ctx.store.org_invite(id, invite).await {
            Ok(i) => i,
            Err(e) => return store_error(&e),
        },
        None => None,
    };
    if let Err(r) = orgs::revoke(&o.org, &claims.sub, found.as_ref(), now) {
        return refused(r);
    }
    let change = OrgChange::Revoke { org: id.to_string(), invite: invite.to_string(), by: claims.sub.clone() };
    match ctx.store.org_change(&change).await {
        // Nothing revoked: the invite was closed between the read and the write. Revoked
        // (a second revoke) it answers the same; accepted meanwhile, the core says so, as it
        // would have on a later read, instead of a 200 for a member who stays.
        Ok(v) if v.get("revoked") == Some(&Value::Bool(false)) => match ctx.store.org_invite(id, invite).await {
            Ok(now_found) => match orgs::revoke(&o.org, &claims.sub, now_found.as_ref(), now) {
                Err(r) => refused(r),
                Ok(_) => AppResponse::json(200, &json!({"id": invite, "status": "revoked"})),
            },
            Err(e) => store_error(&e),
        },
        Ok(_) => AppResponse::json(200, &json!({"id": invite, "status": "revoked"})),
        Err(e) => store_error(&e),
    }
}

/// `POST /v1/invites/{token}/accept` by the signed-in invitee: membership with the
/// invite's role, and the seat it reserved. Once only, before it expires, by the address
/// it was sent to.
pub async fn accept<T: Transport, S: Store>(ctx: &Ctx<T, S>, token: &str, claims: &Claims, now: Timestamp) -> AppResponse {
    let unknown = || error(404, "unknown_invite", "no invite has this token");
    let (invite, org) = match ctx.store.invite(&orgs::token_digest(token)).await {
        Ok(Some((i, Some(o)))) => (i, o),
        Ok(_) => return unknown(),
        Err(e) => return store_error(&e),
    };
    let a = match orgs::accept(&org.org, &invite, &claims.sub, claims.email.as_deref(), now) {
        Ok(a) => a,
        Err(r) => return refused(r),
    };
    let change = OrgChange::Accept {
        org: a.organization_id.clone(),
        invite: a.invite_id.clone(),
        user: a.user_id.clone(),
        role: a.role,
        now,
    };
    // Accepted before by this invitee (a retry): the membership is written; the seat is
    // given below, once (its request id is the invite's).
    if !a.again {
        match ctx.store.org_change(&change).await {
            Ok(_) => {}
            Err(e) if e.conflict() == Some(Conflict::InviteClosed) => {
                return error(409, "invite_used", "this invite was accepted, revoked or expired meanwhile")
            }
            Err(e) => return store_error(&e),
        }
    }
    let seat = if a.seat {
        // The seat the invite reserved, given by whoever sent it.
        let by = a.invited_by.as_deref().unwrap_or(&a.user_id);
        match fold_seat(ctx, &a.organization_id, &a.user_id, true, by, &format!("invite:{}", a.invite_id), now).await {
            Ok(held) => held,
            Err(e) => return store_error(&e),
        }
    } else {
        false
    };
    AppResponse::json(
        200,
        &json!({"organization_id": a.organization_id, "user_id": a.user_id, "role": a.role, "seat": seat,
                "seat_reserved": a.seat}),
    )
}

/// `POST /v1/orgs/{id}/seats` `{"user_id", "action": "give" | "take"}` (owners, admins).
pub async fn seats<T: Transport, S: Store>(ctx: &Ctx<T, S>, req: &InRequest, id: &str, claims: &Claims, now: Timestamp) -> AppResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let user = match field(&body, "user_id") {
        Ok(u) => u,
        Err(r) => return r,
    };
    // Taking asks no membership (the core frees any place the seat book holds), so the id
    // is checked here: anything but a user's id (a UUID) would be folded as a seat fact of
    // a subject that cannot exist, and one in capitals would free nobody's seat.
    if !is_uuid(user) {
        return error(400, "invalid_user_id", "`user_id` must be a user's id (a UUID)");
    }
    let user = user.to_ascii_lowercase();
    let user = user.as_str();
    let give = match body.get("action").and_then(Value::as_str) {
        Some("give") => true,
        Some("take") => false,
        _ => return error(400, "invalid_action", "`action` must be give or take"),
    };
    let o = match read(ctx, id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let answer = |seat: bool, status: &str| {
        AppResponse::json(200, &json!({"organization_id": id, "user_id": user, "seat": seat, "status": status}))
    };
    match orgs::seat(&o.org, &claims.sub, user, give, now) {
        Err(r) => refused(r),
        Ok(SeatMove::Unchanged) => answer(true, "unchanged"),
        Ok(m) => {
            let Some(nonce) = crate::random::bytes::<12>() else { return no_random() };
            let request_id = format!("{}:{}", claims.sub, hex::encode(nonce));
            match fold_seat(ctx, id, user, m == SeatMove::Give, &claims.sub, &request_id, now).await {
                Ok(true) if give => answer(true, "given"),
                Ok(false) if !give => answer(false, "taken"),
                // The fold found no seat at the time of the change: the seat count changed
                // after the organization was read (the core, asked again, says so, with the
                // seats), or a take of this member's seat on a clock ahead of this request's
                // (another isolate's) folded after the give, and a seat is free: sent again,
                // it is given. "No seat left" would send the caller to buy one.
                Ok(false) => match read(ctx, id).await.map(|o| orgs::seat(&o.org, &claims.sub, user, true, now)) {
                    Ok(Ok(SeatMove::Give)) => busy(),
                    Ok(Err(r)) => refused(r),
                    Ok(Ok(SeatMove::Take | SeatMove::Unchanged)) | Err(_) => refused(OrgRefusal {
                        code: RefusalCode::NoSeat,
                        message: "the organization has no seat left for this member".into(),
                        seats: None,
                    }),
                },
                Ok(true) => error(409, "still_seated", "the seat could not be taken"),
                Err(e) => store_error(&e),
            }
        }
    }
}

/// `PATCH /v1/orgs/{id}/members/{user}` `{"role"}` (owners only; the organization keeps
/// an owner). `DELETE` removes the member (owners, admins; a member may leave), seat
/// and all.
pub async fn member<T: Transport, S: Store>(
    ctx: &Ctx<T, S>,
    req: &InRequest,
    id: &str,
    user: &str,
    claims: &Claims,
    now: Timestamp,
) -> AppResponse {
    let role = if req.method == Method::Patch {
        let body = match json_body(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        match field(&body, "role") {
            Ok(r) => Some(r.to_string()),
            Err(r) => return r,
        }
    } else {
        None
    };
    let Some(nonce) = crate::random::bytes::<12>() else { return no_random() };
    let request_id = format!("{}:{}", claims.sub, hex::encode(nonce));
    for _ in 0..ATTEMPTS {
        let o = match read(ctx, id).await {
            Ok(o) => o,
            Err(r) => return r,
        };
        let change = match &role {
            Some(role) => match orgs::set_role(&o.org, &claims.sub, user, role) {
                Ok(c) => OrgChange::Role { org: id.into(), user: user.into(), role: c.to, by: claims.sub.clone(), stamp: o.stamp },
                Err(r) => return refused(r),
            },
            None => match orgs::remove(&o.org, &claims.sub, user) {
                Ok(r) => {
                    // The seat goes first, through the fold (whose seat holders are members),
                    // then the membership; a stamp that moved with the seat is read again.
                    // A seat given after this request's time (another isolate's clock) is
                    // not taken by it: the member stays, and says so, rather than coming
                    // back seated at the next fold.
                    match fold_seat(ctx, id, user, false, &claims.sub, &request_id, now).await {
                        Ok(false) => {}
                        Ok(true) => {
                            return error(409, "still_seated", "the member's seat was given after this request: send it again")
                        }
                        Err(e) => return store_error(&e),
                    }
                    OrgChange::Remove { org: id.into(), user: user.into(), by: claims.sub.clone(), left: r.left, stamp: o.stamp }
                }
                Err(r) => return refused(r),
            },
        };
        match ctx.store.org_change(&change).await {
            Ok(_) => {
                return match &change {
                    OrgChange::Role { role, .. } => {
                        AppResponse::json(200, &json!({"organization_id": id, "user_id": user, "role": role}))
                    }
                    _ => AppResponse::json(200, &json!({"organization_id": id, "user_id": user, "status": "removed"})),
                }
            }
            Err(e) if stale(&e) => continue,
            Err(e) => return store_error(&e),
        }
    }
    busy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_4xx() {
        for code in [
            RefusalCode::UnknownOrganization,
            RefusalCode::NotOrgAdmin,
            RefusalCode::OwnerOnly,
            RefusalCode::NotAMember,
            RefusalCode::NoSeat,
            RefusalCode::LastOwner,
            RefusalCode::InviteExpired,
            RefusalCode::WrongEmail,
        ] {
            let r = refused(OrgRefusal { code, message: "m".into(), seats: None });
            assert!((400..500).contains(&r.status), "{code:?}");
            assert_eq!(r.body_json()["error"]["code"], code.as_str());
        }
    }
}
