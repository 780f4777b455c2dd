//! Verifying Supabase access tokens (the `Authorization: Bearer <jwt>` of a signed-in
//! user), and the admin secret.
//!
//! Supabase signs access tokens either with the project's legacy JWT secret (HS256) or
//! with asymmetric signing keys whose public halves it publishes as a JWKS at
//! `<project>/auth/v1/.well-known/jwks.json`. Both are accepted here: HS256 with
//! `SUPABASE_JWT_SECRET`, ES256 (P-256, Supabase's default asymmetric key) with keys from
//! `SUPABASE_JWKS_URL`, fetched and cached by the app. RS256 keys are skipped with a
//! clear error (not supported by this build).
//!
//! Checks, in order: three base64url parts; a supported `alg`; the signature; `exp`
//! (required, with a small leeway) and `nbf`; `role` must be `authenticated` and `sub`
//! present (an anon or service key is not a user); `aud`, when configured.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed(String),
    UnsupportedAlgorithm(String),
    UnknownKey(String),
    BadSignature,
    Expired,
    NotYetValid,
    NotAUser(String),
    WrongAudience,
    /// No way to verify tokens is configured (neither secret nor JWKS).
    NotConfigured,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::NotAUser(_) => "not_a_user_token",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::NotConfigured => "auth_not_configured",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => {
                f.write_str("missing access token: send Authorization: Bearer <Supabase access token>")
            }
            AuthError::Malformed(m) => write!(f, "malformed access token: {m}"),
            AuthError::UnsupportedAlgorithm(a) => write!(f, "access tokens signed with {a} are not accepted"),
            AuthError::UnknownKey(k) => write!(f, "access token signed by unknown key `{k}`"),
            AuthError::BadSignature => f.write_str("access token signature does not verify"),
            AuthError::Expired => f.write_str("access token has expired"),
            AuthError::NotYetValid => f.write_str("access token is not valid yet"),
            AuthError::NotAUser(m) => write!(f, "not a signed-in user's token: {m}"),
            AuthError::WrongAudience => f.write_str("access token has the wrong audience"),
            AuthError::NotConfigured => f.write_str("the worker has no SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL"),
        }
    }
}
impl std::error::Error for AuthError {}

/// The claims tollgate uses from a Supabase access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The user id (auth.users.id).
    pub sub: String,
    pub role: String,
    pub exp: i64,
    pub email: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// One P-256 public key from a JWKS (affine coordinates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcKey {
    pub kid: Option<String>,
    pub x: [u8; 32],
    pub y: [u8; 32],
}

/// Public keys from a JWKS document (ES256 / P-256 only).
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<EcKey>,
    /// Keys present in the document but not usable here (kid, reason).
    pub skipped: Vec<(String, String)>,
}

impl KeySet {
    pub fn parse(jwks: &str) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_str(jwks).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS has no `keys` array")?;
        let mut set = KeySet::default();
        for k in keys {
            let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
            let s = |n: &str| k.get(n).and_then(Value::as_str).unwrap_or("");
            if s("kty") != "EC" || s("crv") != "P-256" {
                set.skipped.push((
                    kid.unwrap_or_default(),
                    format!("kty {} crv {} not supported", s("kty"), s("crv")),
                ));
                continue;
            }
            let x = URL_SAFE_NO_PAD.decode(s("x")).map_err(|e| format!("bad x: {e}"))?;
            let y = URL_SAFE_NO_PAD.decode(s("y")).map_err(|e| format!("bad y: {e}"))?;
            let (Ok(x), Ok(y)) = (<[u8; 32]>::try_from(x), <[u8; 32]>::try_from(y)) else {
                return Err("P-256 coordinates must be 32 bytes".into());
            };
            ec::check_point(&x, &y)?;
            set.keys.push(EcKey { kid, x, y });
        }
        Ok(set)
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn has_kid(&self, kid: Option<&str>) -> bool {
        self.keys.iter().any(|k| kid.is_none() || k.kid.as_deref() == kid)
    }
}

/// Which key a token names, read without verifying anything (to pick or fetch keys).
pub fn token_alg_kid(token: &str) -> Result<(String, Option<String>), AuthError> {
    let h = token
        .split('.')
        .next()
        .ok_or_else(|| AuthError::Malformed("empty".into()))?;
    let header: Header = decode_part(h)?;
    Ok((header.alg, header.kid))
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| AuthError::Malformed(format!("not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed(format!("not JSON: {e}")))
}

/// Verifies a Supabase access token at `now` (unix seconds).
pub async fn verify_access_token(
    token: &str,
    hs256_secret: Option<&str>,
    keys: Option<&KeySet>,
    audience: Option<&str>,
    now: i64,
) -> Result<Claims, AuthError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(AuthError::Malformed("expected three dot-separated parts".into()));
    }
    let header: Header = decode_part(parts[0])?;
    if !matches!(header.alg.as_str(), "HS256" | "ES256") {
        return Err(AuthError::UnsupportedAlgorithm(header.alg));
    }
    let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| AuthError::Malformed(format!("signature not base64url: {e}")))?;
    match header.alg.as_str() {
        "HS256" => {
            let secret =
                hs256_secret.ok_or_else(|| AuthError::UnsupportedAlgorithm("HS256 (no SUPABASE_JWT_SECRET)".into()))?;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
            mac.update(signing_input.as_bytes());
            let expected = mac.finalize().into_bytes();
            if expected.len() != sig.len() || !bool::from(expected.as_slice().ct_eq(&sig)) {
                return Err(AuthError::BadSignature);
            }
        }
        "ES256" => {
            let set = keys.ok_or_else(|| AuthError::UnsupportedAlgorithm("ES256 (no SUPABASE_JWKS_URL)".into()))?;
            if sig.len() != 64 {
                return Err(AuthError::BadSignature);
            }
            let candidates: Vec<&EcKey> = set
                .keys
                .iter()
                .filter(|k| header.kid.is_none() || k.kid.as_deref() == header.kid.as_deref())
                .collect();
            if candidates.is_empty() {
                return Err(AuthError::UnknownKey(header.kid.unwrap_or_default()));
            }
            let mut ok = false;
            for k in candidates {
                if ec::verify(k, signing_input.as_bytes(), &sig).await {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(AuthError::BadSignature);
            }
        }
        other => return Err(AuthError::UnsupportedAlgorithm(other.to_string())),
    }
    let claims: Value = decode_part(parts[1])?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| AuthError::Malformed("no exp claim".into()))?;
    if now > exp + LEEWAY_SECS {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        if now + LEEWAY_SECS < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    let role = claims.get("role").and_then(Value::as_str).unwrap_or("").to_string();
    if role != "authenticated" {
        return Err(AuthError::NotAUser(format!("role is `{role}`")));
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("").to_string();
    if sub.is_empty() {
        return Err(AuthError::NotAUser("no sub claim".into()));
    }
    if let Some(aud) = audience {
        let ok = match claims.get("aud") {
            Some(Value::String(s)) => s == aud,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(aud)),
            _ => false,
        };
        if !ok {
            return Err(AuthError::WrongAudience);
        }
    }
    let email = claims.get("email").and_then(Value::as_str).map(str::to_string);
    Ok(Claims { sub, role, exp, email })
}

/// ES256 signature checks: the `p256` crate natively, the runtime's WebCrypto
/// (`crypto.subtle`) in the worker, which keeps elliptic-curve arithmetic out of the bundle.
#[cfg(not(target_arch = "wasm32"))]
mod ec {
    use super::EcKey;
    use p256::ecdsa::signature::Verifier;

    fn key(x: &[u8; 32], y: &[u8; 32]) -> Result<p256::ecdsa::VerifyingKey, String> {
        let point = p256::EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
        p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(|e| format!("bad P-256 key: {e}"))
    }
    pub fn check_point(x: &[u8; 32], y: &[u8; 32]) -> Result<(), String> {
        key(x, y).map(|_| ())
    }
    pub async fn verify(k: &EcKey, msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(vk), Ok(s)) = (key(&k.x, &k.y), p256::ecdsa::Signature::from_slice(sig)) else {
            return false;
        };
        vk.verify(msg, &s).is_ok()
    }
}

#[cfg(target_arch = "wasm32")]
mod ec {
    use super::EcKey;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};

    /// WebCrypto checks the point when the key is imported.
    pub fn check_point(_x: &[u8; 32], _y: &[u8; 32]) -> Result<(), String> {
        Ok(())
    }

    fn obj(pairs: &[(&str, JsValue)]) -> Result<Object, JsValue> {
        let o = Object::new();
        for (k, v) in pairs {
            Reflect::set(&o, &JsValue::from_str(k), v)?;
        }
        Ok(o)
    }

    async fn call(subtle: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let f: Function = Reflect::get(subtle, &JsValue::from_str(method))?.dyn_into()?;
        let promise: Promise = f.apply(subtle, &args.iter().collect::<Array>())?.dyn_into()?;
        js_sys::futures::JsFuture::from(promise).await
    }

    async fn try_verify(k: &EcKey, msg: &[u8], sig: &[u8]) -> Result<bool, JsValue> {
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
        let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?;
        let jwk = obj(&[
            ("kty", "EC".into()),
            ("crv", "P-256".into()),
            ("x", URL_SAFE_NO_PAD.encode(k.x).into()),
            ("y", URL_SAFE_NO_PAD.encode(k.y).into()),
            ("ext", true.into()),
        ])?;
        let alg = obj(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?;
        let usages: Array = [JsValue::from_str("verify")].iter().collect();
        let key = call(
            &subtle,
            "importKey",
            &["jwk".into(), jwk.into(), alg.into(), false.into(), usages.into()],
        )
        .await?;
        let params = obj(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])?;
        let ok = call(
            &subtle,
            "verify",
            &[
                params.into(),
                key,
                Uint8Array::from(sig).into(),
                Uint8Array::from(msg).into(),
            ],
        )
        .await?;
        Ok(ok.as_bool().unwrap_or(false))
    }

    pub async fn verify(k: &EcKey, msg: &[u8], sig: &[u8]) -> bool {
        try_verify(k, msg, sig).await.unwrap_or(false)
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let h = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(AuthError::Missing)?;
    let (scheme, token) = h
        .split_once(' ')
        .ok_or_else(|| AuthError::Malformed("expected `Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed("expected `Bearer <token>`".into()));
    }
    Ok(token.trim())
}

/// Constant-time comparison of a presented admin secret with the configured one.
pub fn admin_secret_matches(presented: Option<&str>, configured: &str) -> bool {
    match presented {
        Some(p) if !configured.is_empty() => {
            let a = Sha256::digest_pair(p.as_bytes());
            let b = Sha256::digest_pair(configured.as_bytes());
            bool::from(a.ct_eq(&b))
        }
        _ => false,
    }
}

trait DigestPair {
    fn digest_pair(data: &[u8]) -> [u8; 32];
}
impl DigestPair for Sha256 {
    fn digest_pair(data: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        Sha256::digest(data).into()
    }
}

/// Makes an HS256 token (tests and the local stack's tooling sign users' tokens with it).
pub fn sign_hs256(claims: &Value, secret: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{h}.{p}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The async verifier, driven to completion (ES256 goes through `ec::verify`).
    fn verify_access_token(
        t: &str,
        secret: Option<&str>,
        keys: Option<&KeySet>,
        aud: Option<&str>,
        now: i64,
    ) -> Result<Claims, AuthError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(super::verify_access_token(t, secret, keys, aud, now))
    }

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
    const NOW: i64 = 1_800_000_000;

    fn user(exp: i64) -> Value {
        json!({"sub": "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e", "role": "authenticated", "aud": "authenticated", "exp": exp, "email": "a@example.com"})
    }

    #[test]
    fn hs256_user_tokens_verify() {
        let t = sign_hs256(&user(NOW + 3600), SECRET);
        let c = verify_access_token(&t, Some(SECRET), None, Some("authenticated"), NOW).unwrap();
        assert_eq!(c.sub, "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e");
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn expired_wrongly_signed_and_non_user_tokens_fail() {
        let t = sign_hs256(&user(NOW - LEEWAY_SECS - 1), SECRET);
        assert_eq!(
            verify_access_token(&t, Some(SECRET), None, None, NOW),
            Err(AuthError::Expired)
        );
        let t = sign_hs256(&user(NOW + 60), "another-secret");
        assert_eq!(
            verify_access_token(&t, Some(SECRET), None, None, NOW),
            Err(AuthError::BadSignature)
        );
        let t = sign_hs256(&json!({"role": "anon", "exp": NOW + 60}), SECRET);
        assert!(matches!(
            verify_access_token(&t, Some(SECRET), None, None, NOW),
            Err(AuthError::NotAUser(_))
        ));
        let t = sign_hs256(&user(NOW + 60), SECRET);
        assert_eq!(
            verify_access_token(&t, Some(SECRET), None, Some("other"), NOW),
            Err(AuthError::WrongAudience)
        );
        // Tampered payload, original signature.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut claims = user(NOW + 60);
        claims["sub"] = json!("someone-else");
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert_eq!(
            verify_access_token(&parts.join("."), Some(SECRET), None, None, NOW),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            verify_access_token("abc", Some(SECRET), None, None, NOW),
            Err(AuthError::Malformed(_))
        ));
        // alg "none" is never accepted.
        let none = format!(
            "{}.{}.x",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        assert!(matches!(
            verify_access_token(&none, Some(SECRET), None, None, NOW),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn es256_tokens_verify_against_a_jwks() {
        use p256::ecdsa::{signature::Signer, Signature, SigningKey};
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "old", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
             "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}
        ]});
        let set = KeySet::parse(&jwks.to_string()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped.len(), 1);
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&user(NOW + 60)).unwrap());
        let input = format!("{h}.{p}");
        let sig: Signature = sk.sign(input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        assert_eq!(
            token_alg_kid(&token).unwrap(),
            ("ES256".to_string(), Some("k1".to_string()))
        );
        assert!(verify_access_token(&token, None, Some(&set), Some("authenticated"), NOW).is_ok());
        // HS256 is refused when only a JWKS is configured.
        let hs = sign_hs256(&user(NOW + 60), SECRET);
        assert!(matches!(
            verify_access_token(&hs, None, Some(&set), None, NOW),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
        // A different key id is unknown.
        let h2 = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k2"}"#);
        let t2 = format!("{h2}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        assert!(matches!(
            verify_access_token(&t2, None, Some(&set), None, NOW),
            Err(AuthError::UnknownKey(_))
        ));
    }

    #[test]
    fn bearer_and_admin_secret() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(admin_secret_matches(Some("s3cret"), "s3cret"));
        assert!(!admin_secret_matches(Some("s3cre"), "s3cret"));
        assert!(!admin_secret_matches(None, "s3cret"));
        assert!(!admin_secret_matches(Some(""), ""));
    }
}
