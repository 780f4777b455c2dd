//! Adversarial tests of signed entitlement snapshots (src/snapshot.rs) and the notices read
//! from them (src/notices.rs): tampering, token syntax, keys, duplicate JSON keys, times,
//! expiry, decisions made through a snapshot, and independence from the order of its lists.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};
use tollgate::model::{Entitlements, Grant, Source, Status};
use tollgate::notices::{notices, DuePayment, ShownAlert};
use tollgate::snapshot::{
    check_public_key, encode_b64url, verify, verify_for_subject, Account, Snapshot, SnapshotError, SnapshotSigner,
    ISSUED_AT_SKEW_SECS,
};
use tollgate::time::Timestamp;
use tollgate::Catalog;

const KID: &str = "adv-k1";
const KID2: &str = "adv-k2";
const SUBJECT: &str = "user:adv-1";
/// 2026-03-01T00:00:00Z
const NOW: i64 = 1_772_323_200;
const TTL: u32 = 900;
const DAY: i64 = 86_400;

fn ts(s: i64) -> Timestamp {
    Timestamp::from_unix(s)
}

fn signer() -> &'static SnapshotSigner {
    static S: OnceLock<SnapshotSigner> = OnceLock::new();
    S.get_or_init(|| SnapshotSigner::from_secret(KID, &[0x11; 32]).unwrap())
}

fn signer2() -> &'static SnapshotSigner {
    static S: OnceLock<SnapshotSigner> = OnceLock::new();
    S.get_or_init(|| SnapshotSigner::from_secret(KID2, &[0x22; 32]).unwrap())
}

fn keys() -> Vec<(&'static str, [u8; 32])> {
    vec![(KID, signer().public_key())]
}

fn vcm() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog::from_toml(include_str!("../catalogs/vcm-suite.toml")).unwrap())
}

fn rzp() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog::from_toml(include_str!("../catalogs/razorpay-ai.toml")).unwrap())
}

fn grant(id: &str, tier: &str, status: Status, from: i64, to: Option<i64>) -> Grant {
    Grant {
        id: id.into(),
        product: "suite".into(),
        tier: tier.into(),
        source: Source::Stripe,
        status,
        valid_from: ts(from),
        valid_to: to.map(ts),
        past_due_since: None,
        offer: None,
        source_ref: None,
        catalog_version: None,
        renewal_version: None,
        period_start: None,
        paused_since: None,
    }
}

fn ents(grants: Vec<Grant>) -> Entitlements {
    let mut e = Entitlements::new(grants);
    e.subject = SUBJECT.into();
    e.balances.insert("ai_credits".into(), 1_250);
    e.balances.insert("video_seconds".into(), 0);
    e
}

fn base_grants() -> Vec<Grant> {
    vec![
        grant("stripe:sub_1:suite", "pro", Status::Active, NOW - DAY, Some(NOW + 29 * DAY)),
        grant("promo:x:suite", "basic", Status::Trial, NOW - 3600, None),
    ]
}

/// One signed token, made once.
fn token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| signer().issue(&ents(base_grants()), vcm().meta(), ts(NOW), TTL).unwrap().token)
}

fn payload_json() -> Value {
    let (p, _) = token().split_once('.').unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn payload_text() -> String {
    let (p, _) = token().split_once('.').unwrap();
    String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn code(r: &Result<Snapshot, SnapshotError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn check(text: &str) -> Result<Snapshot, SnapshotError> {
    verify(&signer().sign_payload(text.as_bytes()), &keys(), ts(NOW))
}

/// A deterministic property runner (fixed RNG, no files written).
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_index(c: u8) -> usize {
    B64.iter().position(|&x| x == c).unwrap()
}

// ------------------------------------------------------------------ baseline

#[test]
fn the_base_token_verifies_for_its_subject() {
    let s = verify_for_subject(token(), &keys(), SUBJECT, ts(NOW)).unwrap();
    assert_eq!(s.subject, SUBJECT);
    assert_eq!(s.expires_at, ts(NOW + i64::from(TTL)));
}

// ------------------------------------------------------------------ tampering

#[test]
fn prop_any_single_character_change_of_the_token_is_refused() {
    let t = token();
    run(512, (0..t.len(), any::<char>()), |(i, c)| {
        let orig = t.as_bytes()[i] as char;
        prop_assume!(c != orig);
        let mut changed = String::with_capacity(t.len() + 4);
        changed.push_str(&t[..i]);
        changed.push(c);
        changed.push_str(&t[i + 1..]);
        let r = verify(&changed, &keys(), ts(NOW));
        prop_assert!(r.is_err(), "changing byte {i} from {orig:?} to {c:?} was accepted");
        Ok(())
    });
}

#[test]
fn prop_any_bit_flip_in_the_decoded_payload_or_signature_is_refused() {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (p, s) = token().split_once('.').unwrap();
    let (p, s) = (e.decode(p).unwrap(), e.decode(s).unwrap());
    let total = p.len() + s.len();
    run(512, (0..total, 1u8..=255), |(i, mask)| {
        let (mut p2, mut s2) = (p.clone(), s.clone());
        if i < p.len() {
            p2[i] ^= mask;
        } else {
            s2[i - p.len()] ^= mask;
        }
        let changed = format!("{}.{}", encode_b64url(&p2), encode_b64url(&s2));
        let r = verify(&changed, &keys(), ts(NOW));
        prop_assert!(r.is_err(), "xor {mask:#x} at decoded byte {i} was accepted");
        Ok(())
    });
}

#[test]
fn prop_inserting_or_deleting_one_character_is_refused() {
    let t = token();
    run(256, (0..=t.len(), prop::sample::select(b"A-_.= \n\t+/".to_vec()), any::<bool>()), |(i, c, insert)| {
        let mut changed = t.to_string();
        if insert {
            changed.insert(i, c as char);
        } else if i < t.len() {
            changed.remove(i);
        } else {
            changed.pop();
        }
        prop_assert!(verify(&changed, &keys(), ts(NOW)).is_err(), "{} {:?} at {i} accepted", if insert { "inserting" } else { "deleting" }, c as char);
        Ok(())
    });
}

#[test]
fn token_syntax_variants_are_malformed() {
    let t = token();
    let (p, s) = t.split_once('.').unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("leading space", format!(" {t}")),
        ("trailing newline", format!("{t}\n")),
        ("trailing CRLF", format!("{t}\r\n")),
        ("tab in the signature", format!("{p}.{}\t{}", &s[..10], &s[10..])),
        ("space after the dot", format!("{p}. {s}")),
        ("signature padded ==", format!("{p}.{s}==")),
        ("signature padded =", format!("{p}.{s}=")),
        ("extra trailing dot", format!("{t}.")),
        ("leading dot", format!(".{t}")),
        ("three parts", format!("{p}.{s}.{s}")),
        ("two dots", format!("{p}..{s}")),
        ("standard alphabet signature", format!("{p}.{}", s.replace('-', "+").replace('_', "/"))),
        ("NUL at the end", format!("{t}\0")),
        ("signature twice", format!("{p}.{s}{s}")),
    ];
    for (name, variant) in cases {
        if variant == t {
            continue;
        }
        let r = verify(&variant, &keys(), ts(NOW));
        assert_eq!(code(&r), "malformed_snapshot", "{name}: {r:?}");
    }
}

#[test]
fn non_canonical_base64_of_the_signature_is_refused() {
    let (p, s) = token().split_once('.').unwrap();
    assert_eq!(s.len(), 86);
    let last = *s.as_bytes().last().unwrap();
    // 64 bytes: the last character carries 2 bits, its 4 low bits are unused and zero.
    for low in 1..16 {
        let c = B64[b64_index(last) | low] as char;
        let variant = format!("{p}.{}{c}", &s[..85]);
        let r = verify(&variant, &keys(), ts(NOW));
        assert_eq!(code(&r), "malformed_snapshot", "last character {c:?}: {r:?}");
    }
}

#[test]
fn non_canonical_base64_of_the_payload_is_refused() {
    // Make payloads of each length mod 3 and set the unused low bits of the last character.
    for pad in 0..3 {
        let mut v = payload_json();
        v["note"] = json!("x".repeat(pad));
        let text = v.to_string();
        let t = signer().sign_payload(text.as_bytes());
        assert_eq!(code(&verify(&t, &keys(), ts(NOW))), "ok");
        let unused = match text.len() % 3 {
            0 => continue,
            1 => 4,
            _ => 2,
        };
        let (p, s) = t.split_once('.').unwrap();
        let last = *p.as_bytes().last().unwrap();
        for low in 1..(1usize << unused) {
            let c = B64[b64_index(last) | low] as char;
            let variant = format!("{}{c}.{s}", &p[..p.len() - 1]);
            let r = verify(&variant, &keys(), ts(NOW));
            assert_eq!(code(&r), "malformed_snapshot", "payload last char {c:?}: {r:?}");
        }
    }
}

#[test]
fn a_signature_with_s_plus_l_is_refused() {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (p, s) = token().split_once('.').unwrap();
    let mut sig = e.decode(s).unwrap();
    // l = 2^252 + 27742317777372353535851937790883648493, little endian.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let x = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        sig[32 + i] = x as u8;
        carry = x >> 8;
    }
    let variant = format!("{p}.{}", encode_b64url(&sig));
    let r = verify(&variant, &keys(), ts(NOW));
    assert!(r.is_err(), "a malleated signature (S + l) was accepted");
}

#[test]
fn prop_the_signature_of_one_payload_never_verifies_another() {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (_, s) = token().split_once('.').unwrap();
    let sig = e.decode(s).unwrap();
    run(128, (0u32..5_000_000, "[a-z0-9:-]{1,20}"), |(extra_secs, subject)| {
        let mut v = payload_json();
        v["subject"] = json!(subject);
        v["expires_at"] = json!(ts(NOW + i64::from(TTL) + i64::from(extra_secs)));
        let forged = format!("{}.{}", encode_b64url(v.to_string().as_bytes()), encode_b64url(&sig));
        prop_assert!(verify(&forged, &keys(), ts(NOW)).is_err());
        Ok(())
    });
}

// ------------------------------------------------------------------ keys and rotation

#[test]
fn weak_or_invalid_listed_keys_are_refused_as_invalid_keys() {
    let mut weak: Vec<[u8; 32]> = Vec::new();
    // Identity, the order-2 point (y = -1), the order-4 point (y = 0), identity written y = p + 1.
    let mut id = [0u8; 32];
    id[0] = 1;
    weak.push(id);
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    weak.push(minus_one);
    weak.push([0u8; 32]);
    let mut p_plus_one = [0xffu8; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0x7f;
    weak.push(p_plus_one);
    // And some 32-byte strings that are no point at all.
    for b in 0..=255u8 {
        let k = [b; 32];
        if check_public_key(&k).is_err() {
            weak.push(k);
        }
    }
    assert!(weak.len() > 5);
    for k in weak {
        assert!(check_public_key(&k).is_err(), "{k:?}");
        let r = verify(token(), &[(KID, k)], ts(NOW));
        assert_eq!(code(&r), "invalid_key", "key {:?}: {r:?}", hex::encode(k));
    }
}

#[test]
fn rotation_unknown_kids_and_kid_swaps() {
    let t2 = signer2().issue(&ents(base_grants()), vcm().meta(), ts(NOW), TTL).unwrap().token;
    let both = vec![(KID, signer().public_key()), (KID2, signer2().public_key())];
    let both_rev: Vec<_> = both.iter().rev().cloned().collect();
    // New key only listed after rotation: old key unknown.
    assert_eq!(code(&verify(&t2, &keys(), ts(NOW))), "unknown_key");
    assert_eq!(code(&verify(token(), &[(KID2, signer2().public_key())], ts(NOW))), "unknown_key");
    for ks in [&both, &both_rev] {
        assert_eq!(code(&verify(&t2, ks, ts(NOW))), "ok");
        assert_eq!(code(&verify(token(), ks, ts(NOW))), "ok");
    }
    // A payload naming k1 signed by k2's secret key: bad signature, whatever the order.
    let mut v = payload_json();
    v["kid"] = json!(KID);
    let swapped = signer2().sign_payload(v.to_string().as_bytes());
    for ks in [&both, &both_rev] {
        assert_eq!(code(&verify(&swapped, ks, ts(NOW))), "bad_signature");
    }
    // The kid is matched exactly: no case folding, no trimming.
    for kid in ["ADV-K1", "adv-k1 ", " adv-k1", "adv-k", "adv-k1\u{0}"] {
        let mut v = payload_json();
        v["kid"] = json!(kid);
        let t = signer().sign_payload(v.to_string().as_bytes());
        assert_eq!(code(&verify(&t, &keys(), ts(NOW))), "unknown_key", "{kid:?}");
    }
    // No keys at all.
    let none: Vec<(&str, [u8; 32])> = Vec::new();
    assert_eq!(code(&verify(token(), &none, ts(NOW))), "unknown_key");
}

#[test]
fn the_subject_must_match_exactly() {
    for other in ["USER:ADV-1", "user:adv-1 ", " user:adv-1", "user:adv-", "user:adv-10", ""] {
        let r = verify_for_subject(token(), &keys(), other, ts(NOW));
        assert_eq!(code(&r), "wrong_subject", "{other:?}");
    }
}

// ------------------------------------------------------------------ duplicate JSON keys

fn with_duplicate(key_text: &str, inject: &str) -> String {
    let p = payload_text();
    assert!(p.contains(key_text), "{key_text} in {p}");
    p.replacen(key_text, &format!("{inject}{key_text}"), 1)
}

#[test]
fn a_duplicated_top_level_field_is_refused() {
    for (key, inject) in [
        ("\"subject\":", "\"subject\":\"user:someone-else\","),
        ("\"kid\":", "\"kid\":\"adv-k2\","),
        ("\"expires_at\":", "\"expires_at\":\"2099-01-01T00:00:00Z\","),
        ("\"grants\":", "\"grants\":[],"),
        ("\"v\":", "\"v\":1,"),
    ] {
        let r = check(&with_duplicate(key, inject));
        assert_eq!(code(&r), "malformed_snapshot", "duplicate {key}: {r:?}");
    }
}

#[test]
fn a_duplicated_field_inside_a_grant_is_refused() {
    let r = check(&with_duplicate("\"tier\":\"pro\"", "\"tier\":\"basic\","));
    assert_eq!(code(&r), "malformed_snapshot", "{r:?}");
}

/// `balances` is a JSON object: a pool written twice is a duplicate key. The first value
/// and the last are two readings of the same signed bytes (a host whose JSON reader keeps
/// the first sees another balance); the payload must be refused.
#[test]
fn a_duplicated_balance_pool_is_refused() {
    let text = with_duplicate("\"ai_credits\":1250", "\"ai_credits\":999999,");
    let r = check(&text);
    assert_eq!(code(&r), "malformed_snapshot", "duplicate balances key accepted: {:?}", r.map(|s| s.balances));
}

#[test]
fn a_duplicated_refill_pool_is_refused() {
    let mut v = payload_json();
    v["refills"] = json!({"ai_credits": "2026-03-10T00:00:00Z"});
    let text = v.to_string().replacen(
        "\"ai_credits\":\"2026-03-10T00:00:00Z\"",
        "\"ai_credits\":\"2099-01-01T00:00:00Z\",\"ai_credits\":\"2026-03-10T00:00:00Z\"",
        1,
    );
    let r = check(&text);
    assert_eq!(code(&r), "malformed_snapshot", "duplicate refills key accepted: {:?}", r.map(|s| s.refills));
}

// ------------------------------------------------------------------ times

fn with_times(issued: Value, expires: Value) -> String {
    let mut v = payload_json();
    v["issued_at"] = issued;
    v["expires_at"] = expires;
    v.to_string()
}

#[test]
fn rfc3339_utc_times_pass() {
    let later = json!("2026-03-01T00:15:00Z");
    for issued in ["2026-03-01T00:00:00Z", "2026-03-01T00:00:00+00:00", "2026-03-01T00:00:00.5Z"] {
        let r = check(&with_times(json!(issued), later.clone()));
        assert_eq!(code(&r), "ok", "{issued}");
    }
}

/// RFC 3339 text has no surrounding whitespace; the reader of times trims it, and the UTC
/// check only looks at the end of the text.
#[test]
fn times_with_surrounding_whitespace_are_malformed() {
    let later = json!("2026-03-01T00:15:00Z");
    for issued in [" 2026-03-01T00:00:00Z", "\t2026-03-01T00:00:00Z", "\u{a0}2026-03-01T00:00:00Z", "\n2026-03-01T00:00:00+00:00"] {
        let r = check(&with_times(json!(issued), later.clone()));
        assert_eq!(code(&r), "malformed_snapshot", "issued_at {issued:?}: {r:?}");
    }
    for expires in [" 2026-03-01T00:15:00Z", "\u{2003}2026-03-01T00:15:00Z"] {
        let r = check(&with_times(json!("2026-03-01T00:00:00Z"), json!(expires)));
        assert_eq!(code(&r), "malformed_snapshot", "expires_at {expires:?}: {r:?}");
    }
}

#[test]
fn times_not_in_utc_or_not_rfc3339_are_malformed() {
    let later = json!("2026-03-01T00:15:00Z");
    for issued in [
        json!("2026-03-01T00:00:00-00:00"),
        json!("2026-03-01T01:00:00+01:00"),
        json!("1772323200"),
        json!(1772323200),
        json!(1772323200.0),
        json!("2026-03-01"),
        json!("2026-03-01T00:00Z"),
        json!(""),
        json!([]),
        json!({}),
    ] {
        let r = check(&with_times(issued.clone(), later.clone()));
        assert_eq!(code(&r), "malformed_snapshot", "issued_at {issued}: {r:?}");
    }
}

#[test]
fn prop_expiry_and_skew_boundaries() {
    let e = ents(base_grants());
    let meta = vcm().meta().clone();
    run(96, (0i64..400 * DAY, 1u32..200_000, -400i64..400, 0u8..3), |(issued_off, ttl, d, anchor)| {
        let issued = NOW + issued_off;
        let exp = issued + i64::from(ttl);
        // Around the issue time minus the skew, around the expiry, or anywhere inside.
        let now = match anchor {
            0 => issued - ISSUED_AT_SKEW_SECS + d,
            1 => exp + d,
            _ => issued + (d.abs() * i64::from(ttl)) / 400,
        };
        let signed = signer().issue(&e, &meta, ts(issued), ttl).unwrap();
        let r = verify_for_subject(&signed.token, &keys(), SUBJECT, ts(now));
        let want = if now >= exp {
            "expired"
        } else if issued > now + ISSUED_AT_SKEW_SECS {
            "not_yet_valid"
        } else {
            "ok"
        };
        prop_assert_eq!(code(&r), want, "issued {} ttl {} now {}", issued, ttl, now);
        if let Ok(s) = r {
            prop_assert!(!s.is_expired(ts(now)));
            prop_assert_eq!(s, signed.snapshot);
        }
        Ok(())
    });
}

#[test]
fn extreme_now_values_do_not_panic() {
    for now in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        let r = verify(token(), &keys(), ts(now));
        assert!(r.is_err(), "now {now}: {r:?}");
    }
}

// ------------------------------------------------------------------ decisions through a snapshot

fn snapshot_of(grants: Vec<Grant>) -> Snapshot {
    let signed = signer().issue(&ents(grants), vcm().meta(), ts(NOW), TTL).unwrap();
    verify_for_subject(&signed.token, &keys(), SUBJECT, ts(NOW)).unwrap()
}

fn decide_both(grants: Vec<Grant>, cap: &str, now: i64) -> (tollgate::Decision, tollgate::Decision) {
    let c = vcm();
    let core = tollgate::decide::can(c, &ents(grants.clone()), cap, ts(now)).unwrap();
    let snap = snapshot_of(grants);
    let kept = snap.entitlements(&snap.catalog(c)).unwrap();
    let through = tollgate::decide::can(c, &kept, cap, ts(now)).unwrap();
    (core, through)
}

/// What a decision answers: whether it is allowed, why, and at which tier.
fn answer(d: &tollgate::Decision) -> (bool, tollgate::decide::Reason, Option<String>) {
    (d.allowed, d.reason, d.tier.clone())
}

/// `use_ai` a minute from now with only `g`: nothing in the core, and the same answer
/// through a snapshot.
fn gives_nothing_through_a_snapshot(g: Grant) {
    let (core, through) = decide_both(vec![g], "use_ai", NOW + 60);
    assert!(!core.allowed, "{core:?}");
    assert_eq!(answer(&through), answer(&core), "through the snapshot: {through:?}");
}

/// A grant canceled with no end (`valid_to: null`) gives nothing in the core
/// (`canceled` counts only until a known end). Through a snapshot it gave the plan.
#[test]
fn a_canceled_grant_without_an_end_gives_nothing_through_a_snapshot() {
    gives_nothing_through_a_snapshot(grant("stripe:sub_c:suite", "pro", Status::Canceled, NOW - 10 * DAY, None));
}

/// A past-due grant with neither `valid_to` nor `past_due_since`: its grace runs from
/// `valid_from` (decide::grace_end) and ended long ago. Through a snapshot it gave the plan.
#[test]
fn a_past_due_grant_whose_grace_ended_gives_nothing_through_a_snapshot() {
    gives_nothing_through_a_snapshot(grant("stripe:sub_p:suite", "pro", Status::PastDue, NOW - 30 * DAY, None));
}

fn arb_grant() -> impl Strategy<Value = Grant> {
    (
        0u8..4,
        prop::sample::select(vec!["free", "starter", "basic", "pro"]),
        -40i64..2,
        prop::option::of(-40i64..40),
        prop::option::of(-10i64..2),
        prop::sample::select(vec!["g1", "g2", "g3"]),
    )
        .prop_map(|(st, tier, from_d, to_d, pds_d, id)| {
            let status = [Status::Active, Status::Trial, Status::PastDue, Status::Canceled][st as usize];
            let mut g = grant(id, tier, status, NOW + from_d * DAY, to_d.map(|d| NOW + d * DAY));
            if status == Status::PastDue {
                g.past_due_since = pds_d.map(|d| ts(NOW + d * DAY));
            }
            g
        })
}

/// The capabilities the property tests ask about.
const CAPS: [&str; 3] = ["use_ai", "export_full_res", "watermark_exports"];

/// For up to 3 grants of `grants`, at any instant of the snapshot's validity and for any of
/// [`CAPS`], the answer through a snapshot is the core's.
fn decisions_match_the_core(grants: impl Strategy<Value = Grant>) {
    run(160, (prop::collection::vec(grants, 0..4), 0i64..i64::from(TTL), prop::sample::select(CAPS.to_vec())), |(grants, off, cap)| {
        let (core, through) = decide_both(grants, cap, NOW + off);
        prop_assert_eq!(answer(&through), answer(&core));
        Ok(())
    });
}

/// Inside the snapshot's validity, whether a capability is allowed, why, and at which
/// tier are what the core answers for the same grants.
#[test]
fn prop_decisions_through_a_snapshot_match_the_core() {
    decisions_match_the_core(arb_grant());
}

/// Reordering a snapshot's grants changes no decision.
#[test]
fn prop_decisions_are_independent_of_the_order_of_the_grants() {
    let strat = prop::collection::vec(arb_grant(), 1..5).prop_flat_map(|g| (Just(g.clone()), Just(g).prop_shuffle(), 0i64..i64::from(TTL)));
    run(96, strat, |(grants, shuffled, off)| {
        let c = vcm();
        let a = snapshot_of(grants);
        let b = snapshot_of(shuffled);
        let (ka, kb) = (a.entitlements(c).unwrap(), b.entitlements(c).unwrap());
        for cap in CAPS {
            let (da, db) = (tollgate::decide::can(c, &ka, cap, ts(NOW + off)).unwrap(), tollgate::decide::can(c, &kb, cap, ts(NOW + off)).unwrap());
            prop_assert_eq!(da, db, "{}", cap);
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ notices

fn due(provider: &str, invoice: &str, amount: i64, currency: &str, grace_days: Option<i64>) -> DuePayment {
    DuePayment {
        provider: provider.into(),
        invoice: invoice.into(),
        subscription: format!("sub_{invoice}"),
        amount_due: amount,
        currency: currency.into(),
        attempts: 1,
        next_retry: None,
        first_failed_at: ts(NOW - DAY),
        grace_until: grace_days.map(|d| ts(NOW + d * DAY)),
    }
}

fn alert(rule: &str, kind: &str, crossed: i64) -> ShownAlert {
    ShownAlert {
        rule: rule.into(),
        kind: kind.into(),
        crossed_at: ts(crossed),
        feature: None,
        percent_used: None,
        units_left: None,
        limit: None,
        ends_at: None,
        subscription: None,
        invoice: None,
    }
}

/// Signs a snapshot of the Razorpay AI catalog carrying `alerts` and `payments`, verifies
/// it, and reads its notices at `now` as a host holding only the snapshot does.
fn notices_of(alerts: Vec<ShownAlert>, payments: Vec<DuePayment>, now: i64) -> tollgate::notices::Notices {
    let c = rzp();
    let mut e = Entitlements { subject: SUBJECT.into(), ..Entitlements::default() };
    e.balances.insert("ai_credits".into(), 50);
    let account = Account { alerts, failed_payments: payments, ..Account::default() };
    let signed = signer().issue_with_account(&e, Vec::new(), account, c.meta(), ts(NOW), 7 * DAY as u32).unwrap();
    let s = verify_for_subject(&signed.token, &keys(), SUBJECT, ts(now)).unwrap();
    let kept = s.entitlements(c).unwrap();
    notices(&s.catalog(c), &kept, &s.alerts, &s.failed_payments, &BTreeMap::new(), ts(now))
}

#[test]
fn notices_do_not_depend_on_the_order_of_the_payments_due() {
    let a = due("razorpay", "sub_1@1", 49_900, "inr", Some(3));
    let b = due("stripe", "in_2", 1_500, "usd", Some(2));
    let one = notices_of(Vec::new(), vec![a.clone(), b.clone()], NOW + 60);
    let other = notices_of(Vec::new(), vec![b, a], NOW + 60);
    let invoices = |n: &tollgate::notices::Notices| n.payments.iter().map(|p| p.invoice.clone()).collect::<Vec<_>>();
    assert_eq!(invoices(&one), invoices(&other), "payment notices follow the snapshot's list order");
    assert_eq!(one, other);
}

#[test]
fn a_payment_listed_twice_is_told_once() {
    let a = due("razorpay", "sub_1@1", 49_900, "inr", Some(3));
    let n = notices_of(Vec::new(), vec![a.clone(), a], NOW + 60);
    let told = n.payments.iter().filter(|p| p.invoice == "sub_1@1").count();
    assert_eq!(told, 1, "{:?}", n.payments.iter().map(|p| &p.message).collect::<Vec<_>>());
}

#[test]
fn notices_never_show_a_negative_amount() {
    let n = notices_of(Vec::new(), vec![due("stripe", "in_neg", -500, "usd", Some(3))], NOW + 60);
    for p in &n.payments {
        assert!(p.amount_due.amount >= 0 && !p.amount_display.contains('-'), "{}: {}", p.amount_display, p.message);
    }
}

#[test]
fn notices_use_each_currencys_minor_units() {
    let cases = [
        ("jpy", 500, "500 JPY"),
        ("kwd", 1_234, "1.234 KWD"),
        ("inr", 49_900, "₹499.00"),
        ("usd", 5, "$0.05"),
    ];
    for (cur, amount, want) in cases {
        let n = notices_of(Vec::new(), vec![due("stripe", "in_1", amount, cur, Some(3))], NOW + 60);
        assert_eq!(n.payments[0].amount_display, want, "{cur}");
        assert!(n.payments[0].message.contains(want), "{}", n.payments[0].message);
    }
}

/// A provider's upper-case currency code (Razorpay writes `INR`, `JPY`): the snapshot
/// verifies, and its amount must still be read in that currency's minor units.
#[test]
fn an_upper_case_currency_is_shown_in_its_own_minor_units() {
    let n = notices_of(Vec::new(), vec![due("stripe", "in_1", 500, "JPY", Some(3))], NOW + 60);
    let shown = &n.payments[0].amount_display;
    assert!(shown == "500 JPY" || shown == "¥500", "500 yen shown as {shown}");
}

#[test]
fn grace_boundaries_in_payment_notices() {
    let p = due("razorpay", "sub_1@1", 49_900, "inr", Some(3));
    let g = NOW + 3 * DAY;
    let before = notices_of(Vec::new(), vec![p.clone()], g - 1);
    assert!(before.payments[0].in_grace);
    let at = notices_of(Vec::new(), vec![p.clone()], NOW + 6 * DAY);
    assert!(!at.payments[0].in_grace);
    // The catalog's grace_ending (1 day): not before the last day, once inside it.
    let early = notices_of(Vec::new(), vec![p.clone()], g - DAY - 1);
    assert!(early.warnings.iter().all(|w| w.kind != "grace_ending"), "{:?}", early.warnings);
    let late = notices_of(Vec::new(), vec![p], g - DAY + 1);
    assert_eq!(late.warnings.iter().filter(|w| w.kind == "grace_ending").count(), 1, "{:?}", late.warnings);
}

#[test]
fn a_payment_failed_alert_and_its_payment_are_told_once() {
    let p = due("razorpay", "sub_1@1", 49_900, "inr", Some(3));
    let mut a = alert("payment_failed:0:razorpay:sub_1@1", "payment_failed", NOW - DAY);
    a.invoice = Some("razorpay:sub_1@1".into());
    let n = notices_of(vec![a.clone(), a], vec![p], NOW + 60);
    let told = n.warnings.iter().map(|w| w.message.as_str()).chain(n.payments.iter().map(|p| p.message.as_str()));
    assert_eq!(told.filter(|m| m.contains("₹499.00")).count(), 1);
}

fn arb_alert() -> impl Strategy<Value = ShownAlert> {
    (
        prop::sample::select(vec![
            ("limit:monthly_ai_credits:80%", "limit"),
            ("limit:monthly_ai_credits:100%", "limit"),
            ("pool:ai_credits:100left", "pool"),
            ("subscription_canceled:0:razorpay:sub_1", "subscription_canceled"),
            ("trial_ending:3:razorpay:sub_1", "trial_ending"),
        ]),
        -5i64..0,
        prop::option::of(80u32..101),
    )
        .prop_map(|((rule, kind), d, pct)| {
            let mut a = alert(rule, kind, NOW + d * DAY);
            if kind == "limit" {
                a.feature = Some("monthly_ai_credits".into());
                a.percent_used = pct;
                a.limit = Some(2000);
            } else if kind == "pool" {
                a.feature = Some("ai_credits".into());
                a.units_left = Some(100);
            }
            a
        })
}

fn arb_payment() -> impl Strategy<Value = DuePayment> {
    (prop::sample::select(vec!["p1", "p2", "p3"]), 0i64..100_000, prop::sample::select(vec!["inr", "usd", "jpy"]), prop::option::of(-2i64..4))
        .prop_map(|(inv, amt, cur, g)| due("razorpay", inv, amt, cur, g))
}

/// The snapshot's alerts and payments in any order: the same notices; warnings unique by
/// rule and ordered critical first then by rule.
#[test]
fn prop_notices_are_independent_of_the_order_of_the_snapshots_lists() {
    let strat = (prop::collection::vec(arb_alert(), 0..5), prop::collection::vec(arb_payment(), 0..4))
        .prop_flat_map(|(a, p)| (Just(a.clone()), Just(a).prop_shuffle(), Just(p.clone()), Just(p).prop_shuffle(), 0i64..3 * DAY));
    run(96, strat, |(alerts, alerts2, pays, pays2, off)| {
        let one = notices_of(alerts, pays, NOW + off);
        let other = notices_of(alerts2, pays2, NOW + off);
        let rules: Vec<_> = one.warnings.iter().map(|w| (w.severity, w.rule.clone())).collect();
        let mut sorted = rules.clone();
        sorted.sort();
        sorted.dedup_by(|a, b| a.1 == b.1);
        prop_assert_eq!(&rules, &sorted, "warnings not unique and ordered");
        prop_assert_eq!(one, other);
        Ok(())
    });
}

/// Without duplicates, the payment notices are unique per invoice and amounts never negative.
#[test]
fn prop_warnings_unique_and_ordered_without_duplicates() {
    let strat = (prop::collection::btree_set(0usize..5, 0..5), 0i64..3 * DAY);
    let rules = [
        ("limit:monthly_ai_credits:80%", "limit"),
        ("limit:monthly_ai_credits:100%", "limit"),
        ("pool:ai_credits:100left", "pool"),
        ("subscription_canceled:0:razorpay:sub_1", "subscription_canceled"),
        ("trial_ending:3:razorpay:sub_1", "trial_ending"),
    ];
    run(48, strat, |(pick, off)| {
        let alerts: Vec<ShownAlert> = pick.iter().map(|&i| alert(rules[i].0, rules[i].1, NOW - DAY)).collect();
        let n = notices_of(alerts, vec![due("razorpay", "p1", 100, "inr", Some(2))], NOW + off);
        let keys: Vec<_> = n.warnings.iter().map(|w| (w.severity, w.rule.clone())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup_by(|a, b| a.1 == b.1);
        prop_assert_eq!(keys, sorted);
        prop_assert_eq!(n.payments.len(), 1);
        Ok(())
    });
}

/// [`prop_decisions_through_a_snapshot_match_the_core`] with every grant dated (a `valid_to`,
/// and a past-due one's `past_due_since`): the shapes the reducer writes.
#[test]
fn prop_decisions_through_a_snapshot_match_the_core_for_dated_grants() {
    let dated = arb_grant().prop_map(|mut g| {
        if g.valid_to.is_none() {
            g.valid_to = Some(g.valid_from.plus_days(30));
        }
        if g.status == Status::PastDue && g.past_due_since.is_none() {
            g.past_due_since = g.valid_to;
        }
        g
    });
    decisions_match_the_core(dated);
}

/// The same rule listed twice (crossed at two instants): which one is shown must not
/// depend on the order of the snapshot's `alerts`.
#[test]
fn an_alert_listed_twice_is_shown_the_same_whatever_the_order() {
    let mut a = alert("limit:monthly_ai_credits:80%", "limit", NOW - 2 * DAY);
    a.feature = Some("monthly_ai_credits".into());
    a.percent_used = Some(80);
    a.limit = Some(2000);
    let b = ShownAlert { crossed_at: ts(NOW - DAY), ..a.clone() };
    let one = notices_of(vec![a.clone(), b.clone()], Vec::new(), NOW + 60);
    let other = notices_of(vec![b, a], Vec::new(), NOW + 60);
    assert_eq!(one.warnings.iter().filter(|w| w.kind == "limit").count(), 1);
    assert_eq!(one, other);
}
