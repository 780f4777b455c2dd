//! Signed entitlement snapshots: round trip, every way a token can be wrong, and
//! a fixed vector (tests/vectors/snapshot.json) that other hosts check byte for
//! byte (tests/vectors/gen/snapshot.test.mjs verifies it with node:crypto alone).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{json, Value};
use tollgate::catalog::CatalogMeta;
use tollgate::model::{Entitlements, Grant, Source, Status};
use tollgate::snapshot::{
    check_public_key, decode_key, encode_b64url, parse_public_key, public_key_of, verify, verify_for_subject,
    KeyError, SignError, Signed, Snapshot, SnapshotError, SnapshotSigner, ISSUED_AT_SKEW_SECS, MAX_TOKEN_LEN,
};
use tollgate::time::Timestamp;

/// RFC 8032 section 7.1, test 1: the 32 secret key bytes and the public key.
const RFC8032_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// Its signature of the empty message.
const RFC8032_SIG_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

const KID: &str = "snap-2026-03";
const SUBJECT: &str = "6f1c2a4e-3b5d-4c7e-9f80-1a2b3c4d5e6f";
/// 2026-03-01T00:00:00Z
const NOW: i64 = 1_772_323_200;
const TTL: u32 = 900;

fn ts(s: i64) -> Timestamp {
    Timestamp::from_unix(s)
}

fn secret() -> [u8; 32] {
    decode_key(RFC8032_SECRET).unwrap()
}

// Key derivation and signing are slow in unoptimised test builds: do them once.
fn signer() -> &'static SnapshotSigner {
    static SIGNER: OnceLock<SnapshotSigner> = OnceLock::new();
    SIGNER.get_or_init(|| SnapshotSigner::from_secret(KID, &secret()).unwrap())
}

fn other_signer(kid: &str) -> SnapshotSigner {
    SnapshotSigner::from_secret(kid, &[7u8; 32]).unwrap()
}

fn keys() -> Vec<(&'static str, [u8; 32])> {
    static PUBLIC: OnceLock<[u8; 32]> = OnceLock::new();
    vec![(KID, *PUBLIC.get_or_init(|| signer().public_key()))]
}

fn catalog() -> CatalogMeta {
    serde_json::from_value(json!({
        "id": "vcm-suite", "name": "VCM Suite", "version": "2026.03.1", "currency": "usd", "grace_period_days": 7
    }))
    .unwrap()
}

fn entitlements() -> Entitlements {
    let grant = |id: &str, product: &str, tier: &str, source, status, from: i64, to: Option<i64>| Grant {
        id: id.into(),
        product: product.into(),
        tier: tier.into(),
        source,
        status,
        valid_from: ts(from),
        valid_to: to.map(ts),
        past_due_since: None,
        offer: Some("SUITE_PRO_MONTHLY".into()),
        source_ref: Some("sub_1Qv0Tollgate".into()),
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    };
    let mut past_due = grant(
        "stripe:sub_2:video",
        "video",
        "starter",
        Source::Stripe,
        Status::PastDue,
        NOW - 40 * 86_400,
        Some(NOW - 86_400),
    );
    past_due.past_due_since = Some(ts(NOW - 86_400));
    past_due.offer = None;
    Entitlements {
        subject: SUBJECT.into(),
        grants: vec![
            grant(
                "stripe:sub_1:suite",
                "suite",
                "pro",
                Source::Stripe,
                Status::Active,
                NOW - 86_400,
                Some(NOW + 29 * 86_400),
            ),
            past_due,
            Grant {
                id: "promo:launch:creation".into(),
                product: "creation".into(),
                tier: "pro".into(),
                source: Source::Promotion,
                status: Status::Trial,
                valid_from: ts(NOW - 3600),
                valid_to: None,
                past_due_since: None,
                offer: None,
                source_ref: None,
                catalog_version: None,
                renewal_version: None,
                period_start: None,
                paused_since: None,
            },
        ],
        balances: BTreeMap::from([("ai_credits".to_string(), 1_250), ("video_seconds".to_string(), 0)]),
        until: None,
    }
}

fn issue_at(now: i64) -> Signed {
    signer().issue(&entitlements(), &catalog(), ts(now), TTL).unwrap()
}

/// The snapshot issued at `NOW`, signed once.
fn issued() -> &'static Signed {
    static ISSUED: OnceLock<Signed> = OnceLock::new();
    ISSUED.get_or_init(|| issue_at(NOW))
}

fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    let (p, s) = token.split_once('.').unwrap();
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (e.decode(p).unwrap(), e.decode(s).unwrap())
}

fn join(payload: &[u8], signature: &[u8]) -> String {
    format!("{}.{}", encode_b64url(payload), encode_b64url(signature))
}

fn code(r: Result<Snapshot, SnapshotError>) -> &'static str {
    r.map(|_| "ok").unwrap_or_else(|e| e.code())
}

// ------------------------------------------------------------ keys

#[test]
fn rfc8032_test_1_holds() {
    assert_eq!(hex::encode(public_key_of(&secret())), RFC8032_PUBLIC);
    let token = signer().sign_payload(b"");
    let (_, sig) = token.split_once('.').unwrap();
    assert_eq!(hex::encode(decode_sig(sig)), RFC8032_SIG_EMPTY);
}

fn decode_sig(b64: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()
}

#[test]
fn keys_read_from_hex_and_base64url() {
    let public = signer().public_key();
    assert_eq!(signer().public_key_b64url().len(), 43);
    assert_eq!(parse_public_key(RFC8032_PUBLIC), Ok(public));
    assert_eq!(parse_public_key(&signer().public_key_b64url()), Ok(public));
    let from_text = SnapshotSigner::from_secret_text(KID, &encode_b64url(&secret())).unwrap();
    assert_eq!(from_text.public_key(), public);
    assert_eq!(SnapshotSigner::from_secret_text(KID, RFC8032_SECRET).unwrap().public_key(), public);
    assert_eq!(decode_key("AAAA"), Err(KeyError::Length { bytes: 3 }));
    assert_eq!(decode_key("%%%"), Err(KeyError::Encoding));
    // The identity point is a valid encoding but a small-order (weak) key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(check_public_key(&identity), Err(KeyError::NotAPublicKey));
    assert!(SnapshotSigner::from_secret("bad kid", &secret()).unwrap_err().to_string().contains("key id"));
}

#[test]
fn signer_debug_shows_the_public_key_only() {
    let shown = format!("{:?}", signer());
    assert!(shown.contains(KID) && shown.contains(&signer().public_key_b64url()), "{shown}");
    assert!(!shown.contains(RFC8032_SECRET) && !shown.contains(&encode_b64url(&secret())), "{shown}");
}

// ------------------------------------------------------------ round trip

#[test]
fn round_trip_returns_the_same_snapshot() {
    let Signed { snapshot, token } = issued().clone();
    assert_eq!(snapshot.v, 1);
    assert_eq!(snapshot.kid, KID);
    assert_eq!(snapshot.subject, SUBJECT);
    assert_eq!((snapshot.catalog_id.as_str(), snapshot.catalog_version.as_str()), ("vcm-suite", "2026.03.1"));
    assert_eq!((snapshot.issued_at, snapshot.expires_at), (ts(NOW), ts(NOW + i64::from(TTL))));
    let verified = verify(&token, &keys(), ts(NOW + 60)).unwrap();
    assert_eq!(verified, snapshot);
    // Decided over its catalog, its grants end no later than it does (a past-due one's grace
    // too); over another, refused.
    let vcm = tollgate::Catalog::from_toml(include_str!("../catalogs/vcm-suite.toml")).unwrap();
    let grace = i64::from(vcm.meta().grace_period_days) * 86_400;
    let mut held = entitlements();
    for g in &mut held.grants {
        g.valid_to = Some(g.valid_to.map_or(snapshot.expires_at, |t| t.min(snapshot.expires_at)));
        if g.status == Status::PastDue {
            g.past_due_since = g.past_due_since.map(|p| p.min(snapshot.expires_at.plus_seconds(-grace)));
        }
    }
    assert!(held.grants.iter().any(|g| g.status == Status::PastDue && g.past_due_since == Some(snapshot.expires_at.plus_seconds(-grace))));
    held.until = Some(snapshot.expires_at);
    assert_eq!(verified.entitlements(&vcm).unwrap(), held);
    let other = tollgate::Catalog::from_toml(include_str!("../catalogs/org-seats.toml")).unwrap();
    assert_eq!(verified.entitlements(&other).unwrap_err().code(), "wrong_catalog");
    assert_eq!(verify_for_subject(&token, &keys(), SUBJECT, ts(NOW)).unwrap(), snapshot);
}

#[test]
fn token_is_compact_url_safe_and_deterministic() {
    let token = issued().token.clone();
    assert_eq!(token, issue_at(NOW).token, "Ed25519 signing is deterministic");
    assert_eq!(token.matches('.').count(), 1);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')), "{token}");
    let (payload, sig) = parts(&token);
    assert_eq!(sig.len(), 64);
    assert_eq!(token.split_once('.').unwrap().1.len(), 86);
    // The payload is the snapshot's JSON with the documented field order.
    let text = String::from_utf8(payload).unwrap();
    let order = [
        "\"v\":1",
        "\"kid\":",
        "\"subject\":",
        "\"catalog_id\":",
        "\"catalog_version\":",
        "\"issued_at\":\"2026-03-01T00:00:00Z\"",
        "\"expires_at\":\"2026-03-01T00:15:00Z\"",
        "\"grants\":",
        "\"balances\":",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn rotation_trusts_old_and_new_keys_by_kid() {
    let new = other_signer("snap-2026-04");
    let keyset = vec![(KID, signer().public_key()), ("snap-2026-04", new.public_key())];
    let old_token = issue_at(NOW).token;
    let new_token = new.issue(&entitlements(), &catalog(), ts(NOW), TTL).unwrap().token;
    assert_eq!(verify(&old_token, &keyset, ts(NOW)).unwrap().kid, KID);
    assert_eq!(verify(&new_token, &keyset, ts(NOW)).unwrap().kid, "snap-2026-04");
    // Owned key lists work too.
    let owned: Vec<(String, [u8; 32])> = keyset.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert!(verify(&new_token, &owned, ts(NOW)).is_ok());
}

// ------------------------------------------------------------ tampering

#[test]
fn tampered_payload_fails_the_signature() {
    let token = issued().token.clone();
    let (payload, sig) = parts(&token);
    let text = String::from_utf8(payload).unwrap();
    for (from, to) in [
        ("\"tier\":\"starter\"", "\"tier\":\"pro\""),
        ("1250", "9999"),
        (SUBJECT, "00000000-0000-0000-0000-000000000000"),
        ("2026-03-01T00:15:00Z", "2036-03-01T00:15:00Z"),
    ] {
        let forged = text.replacen(from, to, 1);
        assert_ne!(forged, text, "{from}");
        let t = join(forged.as_bytes(), &sig);
        assert_eq!(verify(&t, &keys(), ts(NOW)), Err(SnapshotError::BadSignature), "{from} -> {to}");
    }
    // Same content, other bytes (re-serialised with spaces): also refused.
    let reformatted = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    assert_eq!(verify(&join(reformatted.as_bytes(), &sig), &keys(), ts(NOW)), Err(SnapshotError::BadSignature));
}

#[test]
fn tampered_signature_fails() {
    let token = issued().token.clone();
    let (payload, sig) = parts(&token);
    for i in [0, 31, 32, 63] {
        let mut bad = sig.clone();
        bad[i] ^= 0x80;
        let got = verify(&join(&payload, &bad), &keys(), ts(NOW));
        assert!(matches!(got, Err(SnapshotError::BadSignature)), "byte {i}: {got:?}");
    }
}

#[test]
fn no_single_character_change_yields_a_valid_token() {
    // A sample of positions across both parts (each check costs a signature
    // verification, slow in unoptimised test builds).
    let token = issued().token.clone();
    let bytes = token.as_bytes();
    let dot = token.find('.').unwrap();
    let payload_positions = (0..dot).step_by(dot / 24 + 1);
    let signature_positions = (dot..bytes.len()).step_by(6);
    let mut checked = 0;
    for i in payload_positions.chain(signature_positions) {
        let replacement = if bytes[i] == b'A' { b'B' } else { b'A' };
        let mut t = bytes.to_vec();
        t[i] = replacement;
        let t = String::from_utf8(t).unwrap();
        assert!(verify(&t, &keys(), ts(NOW)).is_err(), "position {i}");
        checked += 1;
    }
    assert!(checked >= 35, "{checked}");
}

#[test]
fn wrong_key_under_the_same_kid_fails_the_signature() {
    let token = issued().token.clone();
    let imposter = vec![(KID, other_signer(KID).public_key())];
    assert_eq!(verify(&token, &imposter, ts(NOW)), Err(SnapshotError::BadSignature));
    // A token signed by another key that claims our kid fails against our key.
    let forged = other_signer(KID).issue(&entitlements(), &catalog(), ts(NOW), TTL).unwrap().token;
    assert_eq!(verify(&forged, &keys(), ts(NOW)), Err(SnapshotError::BadSignature));
}

#[test]
fn unknown_kid_is_named() {
    let token = other_signer("someone-else").issue(&entitlements(), &catalog(), ts(NOW), TTL).unwrap().token;
    let err = verify(&token, &keys(), ts(NOW)).unwrap_err();
    assert_eq!(err, SnapshotError::UnknownKey { kid: "someone-else".into() });
    assert!(err.to_string().contains("someone-else"));
    let none: Vec<(&str, [u8; 32])> = vec![];
    assert_eq!(code(verify(&token, &none, ts(NOW))), "unknown_key");
}

#[test]
fn an_unusable_configured_key_is_a_configuration_error() {
    let token = issued().token.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let err = verify(&token, &[(KID, identity)], ts(NOW)).unwrap_err();
    assert_eq!(err, SnapshotError::InvalidKey { kid: KID.into() });
    assert!(err.to_string().contains("configuration"));
}

// ------------------------------------------------------------ time

#[test]
fn expires_at_expires_at() {
    let Signed { snapshot, token } = issued().clone();
    let end = snapshot.expires_at.unix();
    assert!(verify(&token, &keys(), ts(end - 1)).is_ok());
    assert!(!snapshot.is_expired(ts(end - 1)) && snapshot.is_expired(ts(end)));
    for now in [end, end + 86_400] {
        let err = verify(&token, &keys(), ts(now)).unwrap_err();
        assert_eq!(err, SnapshotError::Expired { expires_at: ts(end), now: ts(now) });
        assert!(err.to_string().contains("expired at 2026-03-01T00:15:00Z"), "{err}");
    }
}

#[test]
fn issued_in_the_future_beyond_the_skew_is_not_yet_valid() {
    let token = issued().token.clone();
    assert_eq!(ISSUED_AT_SKEW_SECS, 120);
    assert!(verify(&token, &keys(), ts(NOW - ISSUED_AT_SKEW_SECS)).is_ok());
    let err = verify(&token, &keys(), ts(NOW - ISSUED_AT_SKEW_SECS - 1)).unwrap_err();
    assert_eq!(err, SnapshotError::NotYetValid { issued_at: ts(NOW), now: ts(NOW - 121) });
    assert!(err.to_string().contains("clock"), "{err}");
}

#[test]
fn another_subjects_snapshot_is_refused_for_this_subject() {
    let token = issued().token.clone();
    let err = verify_for_subject(&token, &keys(), "someone-else", ts(NOW)).unwrap_err();
    assert_eq!(err, SnapshotError::WrongSubject { expected: "someone-else".into(), found: SUBJECT.into() });
}

// ------------------------------------------------------------ malformed

#[test]
fn malformed_tokens_are_malformed() {
    let token = issued().token.clone();
    let (p, s) = token.split_once('.').unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("no dot", p.to_string()),
        ("three parts", format!("{token}.{s}")),
        ("empty payload", format!(".{s}")),
        ("empty signature", format!("{p}.")),
        ("padding", format!("{p}=.{s}")),
        ("standard alphabet", format!("{}.{s}", p.replace('-', "+").replace('_', "/") + "+")),
        ("whitespace", format!("{p} .{s}")),
        ("short signature", format!("{p}.{}", &s[..40])),
        ("not base64", format!("{p}.!!!!")),
    ];
    for (name, t) in cases {
        let err = verify(&t, &keys(), ts(NOW)).unwrap_err();
        assert!(matches!(err, SnapshotError::Malformed { .. }), "{name}: {err:?}");
        assert_eq!(err.code(), "malformed_snapshot");
    }
    let huge = "A".repeat(MAX_TOKEN_LEN + 1);
    assert!(verify(&huge, &keys(), ts(NOW)).unwrap_err().to_string().contains("longer than"));
}

#[test]
fn payloads_that_are_not_snapshots_are_malformed() {
    let s = signer();
    let valid = String::from_utf8(parts(&issued().token).0).unwrap();
    let cases = [
        ("not JSON", "snapshot please".to_string()),
        ("JSON array", "[1,2]".to_string()),
        ("no kid", r#"{"v":1}"#.to_string()),
        ("version 2", valid.replacen("\"v\":1", "\"v\":2", 1)),
        ("signed but missing grants", valid.replacen("\"grants\":", "\"grunts\":", 1)),
        ("signed but bad status", valid.replacen("\"status\":\"active\"", "\"status\":\"lifetime\"", 1)),
        ("expires before issue", valid.replacen("2026-03-01T00:15:00Z", "2026-02-28T00:00:00Z", 1)),
    ];
    for (name, payload) in cases {
        let err = verify(&s.sign_payload(payload.as_bytes()), &keys(), ts(NOW)).unwrap_err();
        assert!(matches!(err, SnapshotError::Malformed { .. }), "{name}: {err:?}");
        assert!(err.to_string().starts_with("malformed entitlement snapshot:"), "{err}");
    }
    // Unknown extra fields are signed content and are ignored.
    let extended = valid.replacen("\"v\":1,", "\"v\":1,\"note\":\"future field\",", 1);
    assert!(verify(&s.sign_payload(extended.as_bytes()), &keys(), ts(NOW)).is_ok());
}

// ------------------------------------------------------------ signing rules

#[test]
fn the_signer_refuses_snapshots_it_should_not_sign() {
    let snapshot = issued().snapshot.clone();
    let s = signer();
    let with = |f: &dyn Fn(&mut Snapshot)| {
        let mut x = snapshot.clone();
        f(&mut x);
        s.sign(&x).unwrap_err()
    };
    assert_eq!(with(&|x| x.v = 2), SignError::UnsupportedVersion { v: 2 });
    assert_eq!(
        with(&|x| x.kid = "other".into()),
        SignError::KidMismatch { signer: KID.into(), snapshot: "other".into() }
    );
    assert_eq!(with(&|x| x.subject.clear()), SignError::NoSubject);
    assert!(matches!(with(&|x| x.expires_at = x.issued_at), SignError::EmptyValidity { .. }));
    assert!(matches!(s.issue(&entitlements(), &catalog(), ts(NOW), 0), Err(SignError::EmptyValidity { .. })));
    assert_eq!(s.sign(&snapshot).unwrap(), issue_at(NOW).token);
}

#[test]
fn error_codes_are_distinct() {
    let errors = [
        SnapshotError::Malformed { reason: String::new() },
        SnapshotError::BadSignature,
        SnapshotError::UnknownKey { kid: String::new() },
        SnapshotError::InvalidKey { kid: String::new() },
        SnapshotError::Expired { expires_at: ts(0), now: ts(0) },
        SnapshotError::NotYetValid { issued_at: ts(0), now: ts(0) },
        SnapshotError::WrongSubject { expected: String::new(), found: String::new() },
    ];
    let mut codes: Vec<&str> = errors.iter().map(|e| e.code()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}

// ------------------------------------------------------------ the fixed vector

/// The committed vector: the RFC 8032 test-1 key, one snapshot, and tokens that
/// must fail with a given code. Other hosts verify the same bytes.
fn vector() -> Value {
    let s = signer();
    let Signed { snapshot, token } = issued().clone();
    let (payload, sig) = parts(&token);
    let payload_text = String::from_utf8(payload.clone()).unwrap();
    let mut bad_sig = sig.clone();
    bad_sig[10] ^= 0x01;
    let forged_payload = payload_text.replacen("\"ai_credits\":1250", "\"ai_credits\":9250", 1);
    assert_ne!(forged_payload, payload_text);
    let v2 = payload_text.replacen("\"v\":1", "\"v\":2", 1);
    let foreign = other_signer("retired-2025").issue(&entitlements(), &catalog(), ts(NOW), TTL).unwrap().token;
    let (p, sg) = token.split_once('.').unwrap();
    let invalid = vec![
        ("payload changed after signing", join(forged_payload.as_bytes(), &sig), NOW, "bad_signature"),
        ("signature changed", join(&payload, &bad_sig), NOW, "bad_signature"),
        ("signed by a key that is not trusted", foreign, NOW, "unknown_key"),
        ("checked at expires_at", token.clone(), NOW + i64::from(TTL), "expired"),
        ("checked 121 s before issued_at", token.clone(), NOW - 121, "not_yet_valid"),
        ("base64 padding", format!("{p}=.{sg}"), NOW, "malformed_snapshot"),
        ("three parts", format!("{token}.{sg}"), NOW, "malformed_snapshot"),
        ("version 2", s.sign_payload(v2.as_bytes()), NOW, "malformed_snapshot"),
    ];
    let invalid: Vec<Value> = invalid
        .into_iter()
        .map(|(name, token, now, error)| {
            assert_eq!(code(verify(&token, &keys(), ts(now))), error, "{name}");
            json!({ "name": name, "token": token, "now": ts(now), "error": error })
        })
        .collect();
    json!({
        "description": "Entitlement snapshot test vector. token = base64url(payload) '.' base64url(Ed25519(secret key, payload)), no padding; the signature covers the exact payload bytes. The key is RFC 8032 section 7.1 test 1. Regenerate with TOLLGATE_WRITE_VECTORS=1 cargo test --test snapshot.",
        "secret_hex": RFC8032_SECRET,
        "secret_b64url": encode_b64url(&secret()),
        "public_key_hex": hex::encode(s.public_key()),
        "public_key_b64url": s.public_key_b64url(),
        "kid": KID,
        "now": ts(NOW),
        "payload": payload_text,
        "token": token,
        "snapshot": serde_json::to_value(&snapshot).unwrap(),
        "invalid": invalid,
    })
}

#[test]
fn committed_snapshot_vector_is_current_and_verifies() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/snapshot.json");
    let built = vector();
    if std::env::var_os("TOLLGATE_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Verify the committed bytes themselves, with the committed public key.
    let key = parse_public_key(committed["public_key_b64url"].as_str().unwrap()).unwrap();
    assert_eq!(key, parse_public_key(committed["public_key_hex"].as_str().unwrap()).unwrap());
    let keyset = [(committed["kid"].as_str().unwrap(), key)];
    let now = Timestamp::parse(committed["now"].as_str().unwrap()).unwrap();
    let token = committed["token"].as_str().unwrap();
    let snapshot = verify(token, &keyset, now).unwrap();
    assert_eq!(serde_json::to_value(&snapshot).unwrap(), committed["snapshot"]);
    assert_eq!(String::from_utf8(parts(token).0).unwrap(), committed["payload"].as_str().unwrap());
    for case in committed["invalid"].as_array().unwrap() {
        let now = Timestamp::parse(case["now"].as_str().unwrap()).unwrap();
        assert_eq!(
            code(verify(case["token"].as_str().unwrap(), &keyset, now)),
            case["error"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
    // And today's code still produces exactly these bytes.
    assert_eq!(committed, built, "regenerate with TOLLGATE_WRITE_VECTORS=1 cargo test --test snapshot");
}

// ------------------------------------------------------------------ no grant outlives its snapshot

fn org_seats() -> tollgate::catalog::Catalog {
    tollgate::catalog::Catalog::from_toml(include_str!("../catalogs/org-seats.toml")).unwrap()
}

fn business(id: &str, status: Status, past_due_since: Option<Timestamp>) -> Grant {
    Grant {
        id: id.into(),
        product: "org".into(),
        tier: "BUSINESS".into(),
        source: Source::Stripe,
        status,
        valid_from: ts(NOW - 10 * 86_400),
        valid_to: Some(ts(NOW + 20 * 86_400)),
        past_due_since,
        offer: Some("ORG_BUSINESS_MONTHLY".into()),
        source_ref: None,
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

/// A subject past due (its card failed an hour ago; the catalog's grace is 7 days) keeps
/// a one-hour snapshot. Read two days later, its grant gave the plan still (`grace_period`:
/// a past-due grant counts past its `valid_to`, until its grace ends); it gives nothing
/// from the snapshot's end, and inside the snapshot it is the grace it was.
#[test]
fn a_past_due_grant_gives_nothing_after_its_snapshot() {
    let c = org_seats();
    let mut ents = Entitlements::new(vec![business("sub_1:org", Status::PastDue, Some(ts(NOW - 3_600)))]);
    ents.subject = "user:u1".into();
    let signed = signer().issue(&ents, c.meta(), ts(NOW), 3_600).unwrap();
    let kept = signed.snapshot.entitlements(&c).unwrap();
    let inside = tollgate::decide::has_access(&c, &kept, "org", "BUSINESS", ts(NOW + 60)).unwrap();
    assert!(inside.allowed, "{inside:?}");
    assert_eq!(inside.holds_until, Some(signed.snapshot.expires_at), "the answer holds to the snapshot's end");
    let later = tollgate::decide::has_access(&c, &kept, "org", "BUSINESS", ts(NOW + 2 * 86_400)).unwrap();
    assert!(!later.allowed, "two days after its snapshot: {later:?}");
    // A grace that ends before the snapshot does is left as it was.
    let mut ents = Entitlements::new(vec![business("sub_1:org", Status::PastDue, Some(ts(NOW - 7 * 86_400 + 60)))]);
    ents.subject = "user:u1".into();
    let signed = signer().issue(&ents, c.meta(), ts(NOW), 3_600).unwrap();
    assert_eq!(signed.snapshot.entitlements(&c).unwrap().grants[0].past_due_since, Some(ts(NOW - 7 * 86_400 + 60)));
}

/// A seated member's snapshot carries its organization as an `organizations` entry. Read
/// past the snapshot's end (the seat may have been taken since), the entry gave the seat's
/// plan and every feature for as long as the organization's subscription ran: through the
/// snapshot (`Snapshot::membership`) it gives nothing from the end on, and an entry of a
/// snapshot of another catalog is refused.
#[test]
fn an_organizations_entry_gives_nothing_after_its_snapshot() {
    use tollgate::orgs::{OrgMembership, Seats};
    let c = org_seats();
    let org_grant = business("sub_org:org", Status::Active, None);
    let mut ents = Entitlements::new(vec![Grant { id: "org:o1:sub_org:org".into(), ..org_grant.clone() }]);
    ents.subject = "user:u1".into();
    let m = OrgMembership {
        id: "o1".into(),
        name: "Acme".into(),
        role: None,
        seat: true,
        seats: Seats::new(2, 1, 0),
        grants: vec![org_grant],
        terms: Vec::new(),
        ends_at: None,
    };
    let signed = signer().issue_with_account(&ents, vec![m], Default::default(), c.meta(), ts(NOW), 3_600).unwrap();
    let snap = signed.snapshot;
    let entry = snap.membership(&c, None).unwrap().expect("a member");
    assert_eq!(snap.membership(&c, Some("o2")).unwrap(), None);
    let inside = ts(NOW + 60);
    assert!(tollgate::orgs::has_feature_access(&c, &entry, "advanced_analytics", inside).unwrap());
    assert_eq!(tollgate::orgs::org_entitlements(&c, &entry, inside).tier.as_deref(), Some("BUSINESS"));
    assert_eq!(entry.grants, snap.organizations[0].grants, "what the entry shows is what was signed");
    let later = ts(NOW + 2 * 86_400);
    assert!(!tollgate::orgs::has_feature_access(&c, &entry, "advanced_analytics", later).unwrap());
    let shown = tollgate::orgs::org_entitlements(&c, &entry, later);
    assert_eq!((shown.features["advanced_analytics"], shown.tier.as_deref()), (false, Some("FREE")), "{shown:?}");
    let kept = snap.entitlements(&c).unwrap();
    assert!(!tollgate::decide::can(&c, &kept, "advanced_analytics", later).unwrap().allowed);
    let vcm = tollgate::catalog::Catalog::from_toml(include_str!("../catalogs/vcm-suite.toml")).unwrap();
    assert_eq!(snap.membership(&vcm, None).unwrap_err().code(), "wrong_catalog");
}

/// A Video Studio user's snapshot (no plan, 1,000 purchased seconds) expires: read after its
/// end, the browser's `checkFeature` allowed spending 30 seconds from it. Its balances give
/// nothing from its end on, as its grants do.
#[test]
fn a_snapshots_balances_give_nothing_after_its_end() {
    let c = tollgate::Catalog::from_toml(include_str!("../catalogs/video-studio.toml")).unwrap();
    let mut ents = Entitlements::default();
    ents.balances.insert("video_seconds".into(), 1000);
    let end = ts(NOW + 3600);
    let ents = tollgate::snapshot::entitlements_under(&c, Some(&c.meta().id), Some(end), ents).unwrap();
    let before = tollgate::meter::check_feature(&c, &ents, "video_seconds", 30, 0, ts(NOW)).unwrap();
    assert!(before.allowed, "allowed while the snapshot holds");
    let after = tollgate::meter::check_feature(&c, &ents, "video_seconds", 30, 0, end.plus_seconds(60)).unwrap();
    assert!(!after.allowed, "allowed a minute after the snapshot's end: {after:?}");
}

/// A Razorpay AI app user's kept snapshot holds 50 AI credits and expires: read a day after
/// its end, the notices warned "fewer than 100 credits left", a number the snapshot no
/// longer vouches for. Its balances give nothing after its end, and warn of nothing.
#[test]
fn a_snapshots_balance_warns_nothing_after_its_end() {
    let c = tollgate::Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap();
    let mut ents = tollgate::Entitlements::default();
    ents.balances.insert("ai_credits".into(), 50);
    let end = ts(NOW + 3600);
    let ents = tollgate::snapshot::entitlements_under(&c, Some(&c.meta().id), Some(end), ents).unwrap();
    let used = std::collections::BTreeMap::new();
    let before = tollgate::notices::notices(&c, &ents, &[], &[], &used, ts(NOW));
    assert!(before.warnings.iter().any(|w| w.kind == "pool"), "warned while the snapshot holds: {before:?}");
    let later = end.plus_days(1);
    let check = tollgate::meter::check_feature(&c, &ents, "ai_credits", 1, 0, later).unwrap();
    assert!(!check.allowed, "the pool gives nothing after the end");
    let after = tollgate::notices::notices(&c, &ents, &[], &[], &used, later);
    let pools: Vec<&str> = after.warnings.iter().filter(|w| w.kind == "pool").map(|w| w.message.as_str()).collect();
    assert!(pools.is_empty(), "a day after the snapshot's end it still warns {pools:?}");
}

/// The format's times are RFC 3339 text in UTC: a signed payload whose `issued_at` is Unix
/// seconds, or whose `expires_at` carries an offset, was accepted (another host following
/// the format refuses it); it is malformed. Fractions of a second and `+00:00` are RFC 3339
/// in UTC and pass.
#[test]
fn times_that_are_not_rfc3339_text_in_utc_are_malformed() {
    let payload = |issued: Value, expires: Value| {
        json!({
            "v": 1, "kid": KID, "subject": SUBJECT, "catalog_id": "vcm-suite", "catalog_version": "2026.03.1",
            "issued_at": issued, "expires_at": expires, "grants": [], "balances": {}
        })
    };
    let verified = |p: Value| verify(&signer().sign_payload(p.to_string().as_bytes()), &keys(), ts(NOW));
    let later = json!("2026-03-01T00:15:00Z");
    assert!(verified(payload(json!("2026-03-01T00:00:00Z"), later.clone())).is_ok());
    assert!(verified(payload(json!("2026-03-01T00:00:00.250Z"), later.clone())).is_ok());
    assert!(verified(payload(json!("2026-03-01T00:00:00+00:00"), later.clone())).is_ok());
    for (issued, expires) in [
        (json!(NOW), later.clone()),
        (json!("2026-03-01T00:00:00Z"), json!("2026-03-01T05:45:00+05:30")),
        (json!("2026-03-01T01:00:00+01:00"), later.clone()),
        (json!(null), later.clone()),
    ] {
        let r = verified(payload(issued.clone(), expires.clone()));
        assert_eq!(code(r), "malformed_snapshot", "{issued} / {expires}");
    }
}
