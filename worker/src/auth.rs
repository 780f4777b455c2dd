//! Verifying Supabase access tokens (the `Authorization: Bearer <jwt>` of a signed-in
//! user), and the admin secret.
//!
//! Supabase signs access tokens either with the project's legacy JWT secret (HS256) or
//! with asymmetric signing keys whose public halves it publishes as a JWKS at
//! `<project>/auth/v1/.well-known/jwks.json`. All of these are accepted here: HS256 with
//! `SUPABASE_JWT_SECRET`; from the keys of `SUPABASE_JWKS_URL` (fetched and cached by the
//! app), ES256 (`kty: "EC"`, P-256, Supabase's default asymmetric key) and RS256
//! (`kty: "RSA"`, RSASSA-PKCS1-v1_5 with SHA-256). RSA keys must have a modulus of
//! [`RSA_MIN_BITS`] to [`RSA_MAX_BITS`] bits and an odd public exponent of at most 33
//! bits; a smaller key is kept out of the key set with its reason, and a token that names
//! it fails with `unusable_key`. Natively the `p256` and `rsa` crates check signatures;
//! inside the worker the runtime's WebCrypto (`crypto.subtle`) does, which keeps
//! elliptic-curve and big-number arithmetic out of the bundle.
//!
//! Checks, in order: three base64url parts; a supported `alg`; the signature (by a key of
//! the algorithm's own type only: an RS256 token is never checked against an EC key nor
//! the other way round); `exp` (required, with a small leeway) and `nbf`; `role` must be
//! `authenticated` and `sub` present (an anon or service key is not a user); `aud`, when
//! configured; `iss`, when configured (the worker always configures it: Supabase Auth
//! issues its tokens as `<SUPABASE_URL>/auth/v1`, see `SUPABASE_JWT_ISSUER`), so a token
//! another issuer signed with a shared secret or key is refused.

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
    /// The token names a key the JWKS publishes but this worker refuses (kid, reason),
    /// such as an RSA key under [`RSA_MIN_BITS`] bits.
    UnusableKey(String, String),
    BadSignature,
    Expired,
    NotYetValid,
    NotAUser(String),
    WrongAudience,
    /// The `iss` claim is missing or is not the configured issuer.
    BadIssuer {
        /// The token's `iss`, if it has one (as JSON text when it is not a string).
        found: Option<String>,
        expected: String,
    },
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
            AuthError::UnusableKey(..) => "unusable_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::NotAUser(_) => "not_a_user_token",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::BadIssuer { .. } => "bad_issuer",
            AuthError::NotConfigured => "auth_not_configured",
        }
    }
}

/// A value from a token, as an error message names it: at most 200 characters.
fn clip(s: &str) -> &str {
    crate::respond::cut(s, 200).unwrap_or(s)
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => {
                f.write_str("missing access token: send Authorization: Bearer <Supabase access token>")
            }
            AuthError::Malformed(m) => write!(f, "malformed access token: {}", clip(m)),
            AuthError::UnsupportedAlgorithm(a) => write!(f, "access tokens signed with {} are not accepted", clip(a)),
            AuthError::UnknownKey(k) => write!(f, "access token signed by unknown key `{}`", clip(k)),
            AuthError::UnusableKey(k, why) => write!(f, "access token signed by key `{}`, which is not accepted: {why}", clip(k)),
            AuthError::BadSignature => f.write_str("access token signature does not verify"),
            AuthError::Expired => f.write_str("access token has expired"),
            AuthError::NotYetValid => f.write_str("access token is not valid yet"),
            AuthError::NotAUser(m) => write!(f, "not a signed-in user's token: {}", clip(m)),
            AuthError::WrongAudience => f.write_str("access token has the wrong audience"),
            AuthError::BadIssuer { found: None, expected } => {
                write!(f, "access token has no iss claim; tokens issued by `{expected}` are accepted")
            }
            AuthError::BadIssuer { found: Some(iss), expected } => {
                write!(f, "access token was issued by `{}`; only tokens issued by `{expected}` are accepted", clip(iss))
            }
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

/// RSA keys smaller than this (modulus bits) are refused.
pub const RSA_MIN_BITS: usize = 2048;
/// RSA keys larger than this are refused too (verification cost grows with the size).
pub const RSA_MAX_BITS: usize = 8192;

/// One RSA public key from a JWKS: modulus and public exponent, big-endian, without
/// leading zero bytes (so `n.len()` is the signature length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaKey {
    pub kid: Option<String>,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl RsaKey {
    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.n.first().map_or(0, |b| self.n.len() * 8 - b.leading_zeros() as usize)
    }
}

/// Public keys from a JWKS document: P-256 keys for ES256, RSA keys for RS256.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    ec: Vec<EcKey>,
    rsa: Vec<RsaKey>,
    /// Keys present in the document but not usable here (kid, reason).
    pub skipped: Vec<(String, String)>,
}

fn b64_field(k: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = k.get(name).and_then(Value::as_str).unwrap_or("");
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| format!("bad {name}: {e}"))
}

/// An RSA key from its JWK, or why it is left out of the set.
fn rsa_key(k: &Value, kid: Option<String>) -> Result<RsaKey, String> {
    let strip = |mut v: Vec<u8>| {
        let zeros = v.iter().take_while(|b| **b == 0).count();
        v.drain(..zeros);
        v
    };
    let key = RsaKey {
        kid,
        n: strip(b64_field(k, "n")?),
        e: strip(b64_field(k, "e")?),
    };
    if let Some(alg) = k.get("alg").and_then(Value::as_str) {
        if alg != "RS256" {
            return Err(format!("RSA key for {alg}: only RS256 is supported"));
        }
    }
    let bits = key.bits();
    if bits < RSA_MIN_BITS {
        return Err(format!("RSA key of {bits} bits is too small (at least {RSA_MIN_BITS} bits are required)"));
    }
    if bits > RSA_MAX_BITS {
        return Err(format!("RSA key of {bits} bits is too large (at most {RSA_MAX_BITS} bits)"));
    }
    let e_odd = key.e.last().is_some_and(|b| b & 1 == 1);
    let e_bits = key.e.first().map_or(0, |b| key.e.len() * 8 - b.leading_zeros() as usize);
    if !e_odd || key.e == [1] || e_bits > 33 {
        return Err("RSA public exponent must be odd, above 1 and at most 33 bits".into());
    }
    rs::check_key(&key)?;
    Ok(key)
}

enum Key {
    Ec(EcKey),
    Rsa(RsaKey),
}

/// One JWK as a signature-verification key, or why it is not one.
fn key_of(k: &Value, kid: Option<String>) -> Result<Key, String> {
    let s = |n: &str| k.get(n).and_then(Value::as_str).unwrap_or("");
    if let Some(u) = k.get("use") {
        if u.as_str() != Some("sig") {
            return Err(format!("key for use {u}, not sig"));
        }
    }
    if let Some(ops) = k.get("key_ops") {
        if !ops.as_array().is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify"))) {
            return Err(format!("key_ops {ops} has no verify"));
        }
    }
    if s("kty") == "RSA" {
        return rsa_key(k, kid).map(Key::Rsa);
    }
    if s("kty") != "EC" || s("crv") != "P-256" {
        return Err(format!("kty {} crv {} not supported", s("kty"), s("crv")));
    }
    if let Some(alg) = k.get("alg") {
        if alg.as_str() != Some("ES256") {
            return Err(format!("P-256 key for {alg}: only ES256 is supported"));
        }
    }
    let x = URL_SAFE_NO_PAD.decode(s("x")).map_err(|e| format!("bad x: {e}"))?;
    let y = URL_SAFE_NO_PAD.decode(s("y")).map_err(|e| format!("bad y: {e}"))?;
    let (Ok(x), Ok(y)) = (<[u8; 32]>::try_from(x), <[u8; 32]>::try_from(y)) else {
        return Err("P-256 coordinates must be 32 bytes".into());
    };
    ec::check_point(&x, &y)?;
    Ok(Key::Ec(EcKey { kid, x, y }))
}

impl KeySet {
    pub fn parse(jwks: &str) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_str(jwks).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS has no `keys` array")?;
        let mut set = KeySet::default();
        // RFC 7517 §5: a key that is malformed, not understood or not for signatures is
        // left out (with its reason), never the whole set.
        for k in keys {
            let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
            match key_of(k, kid.clone()) {
                Ok(Key::Ec(key)) => set.ec.push(key),
                Ok(Key::Rsa(key)) => set.rsa.push(key),
                Err(why) => set.skipped.push((kid.unwrap_or_default(), why)),
            }
        }
        Ok(set)
    }
    /// Usable keys (EC and RSA).
    pub fn len(&self) -> usize {
        self.ec.len() + self.rsa.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The usable RSA keys.
    pub fn rsa_keys(&self) -> &[RsaKey] {
        &self.rsa
    }
    pub fn has_kid(&self, kid: Option<&str>) -> bool {
        let named = |k: Option<&str>| kid.is_none() || k == kid;
        self.ec.iter().any(|k| named(k.kid.as_deref())) || self.rsa.iter().any(|k| named(k.kid.as_deref()))
    }
    /// The keys of one kind a token may be signed with: those under its `kid`, or all of
    /// them when it names none. None at all: [`KeySet::missing`].
    fn candidates<'a, K>(
        &self,
        keys: &'a [K],
        kid_of: fn(&K) -> Option<&str>,
        kid: Option<String>,
    ) -> Result<impl Iterator<Item = &'a K> + 'a, AuthError> {
        let wanted = kid.as_deref();
        if !keys.iter().any(|k| wanted.is_none() || kid_of(k) == wanted) {
            return Err(self.missing(kid));
        }
        Ok(keys.iter().filter(move |k| kid.is_none() || kid_of(k) == kid.as_deref()))
    }
    /// A token's key was not found among the usable keys: name the refused key if the
    /// document had one under that kid, else the kid is unknown.
    fn missing(&self, kid: Option<String>) -> AuthError {
        let kid = kid.unwrap_or_default();
        match self.skipped.iter().find(|(k, _)| !kid.is_empty() && *k == kid) {
            Some((_, why)) => AuthError::UnusableKey(kid, why.clone()),
            None => AuthError::UnknownKey(kid),
        }
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

/// Verifies a Supabase access token at `now` (unix seconds). `audience` and `issuer`,
/// when given, must match the token's `aud` (one of them, if a list) and `iss` exactly.
pub async fn verify_access_token(
    token: &str,
    hs256_secret: Option<&str>,
    keys: Option<&KeySet>,
    audience: Option<&str>,
    issuer: Option<&str>,
    now: i64,
) -> Result<Claims, AuthError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(AuthError::Malformed("expected three dot-separated parts".into()));
    }
    let header: Header = decode_part(parts[0])?;
    if !matches!(header.alg.as_str(), "HS256" | "ES256" | "RS256") {
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
            let mut ok = false;
            for k in set.candidates(&set.ec, |k| k.kid.as_deref(), header.kid)? {
                if ec::verify(k, signing_input.as_bytes(), &sig).await {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(AuthError::BadSignature);
            }
        }
        "RS256" => {
            let set = keys.ok_or_else(|| AuthError::UnsupportedAlgorithm("RS256 (no SUPABASE_JWKS_URL)".into()))?;
            let mut ok = false;
            // A PKCS #1 v1.5 signature is exactly as long as the key's modulus.
            for k in set.candidates(&set.rsa, |k| k.kid.as_deref(), header.kid)?.filter(|k| k.n.len() == sig.len()) {
                if rs::verify(k, signing_input.as_bytes(), &sig).await {
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
    // NumericDates may carry a fraction (RFC 7519); a claim present in another form is
    // malformed, never ignored.
    let date = |k: &str| match claims.get(k) {
        None => Ok(None),
        Some(v) => v.as_f64().filter(|x| x.is_finite()).map(Some).ok_or_else(|| AuthError::Malformed(format!("{k} is not a number"))),
    };
    let exp = date("exp")?.ok_or_else(|| AuthError::Malformed("no exp claim".into()))?;
    if now as f64 > exp + LEEWAY_SECS as f64 {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = date("nbf")? {
        if ((now + LEEWAY_SECS) as f64) < nbf {
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
    if let Some(expected) = issuer {
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == expected => {}
            other => {
                return Err(AuthError::BadIssuer {
                    found: other.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
                    expected: expected.to_string(),
                })
            }
        }
    }
    let email = claims.get("email").and_then(Value::as_str).map(str::to_string);
    Ok(Claims { sub, role, exp: exp.floor() as i64, email })
}

/// ES256 signature checks natively: the `p256` crate.
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

/// RS256 signature checks natively: the `rsa` crate (RSASSA-PKCS1-v1_5 over SHA-256).
#[cfg(not(target_arch = "wasm32"))]
mod rs {
    use super::{RsaKey, RSA_MAX_BITS};
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use rsa::{BigUint, RsaPublicKey};

    fn key(k: &RsaKey) -> Result<RsaPublicKey, String> {
        RsaPublicKey::new_with_max_size(BigUint::from_bytes_be(&k.n), BigUint::from_bytes_be(&k.e), RSA_MAX_BITS)
            .map_err(|e| format!("bad RSA key: {e}"))
    }
    pub fn check_key(k: &RsaKey) -> Result<(), String> {
        key(k).map(|_| ())
    }
    pub async fn verify(k: &RsaKey, msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(pk), Ok(s)) = (key(k), Signature::try_from(sig)) else {
            return false;
        };
        VerifyingKey::<sha2::Sha256>::new(pk).verify(msg, &s).is_ok()
    }
}

/// Signature checks inside the worker: the runtime's WebCrypto (`crypto.subtle`), which
/// imports the key from its JWK form (checking it) and verifies.
#[cfg(target_arch = "wasm32")]
mod webcrypto {
    use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};

    pub fn obj(pairs: &[(&str, JsValue)]) -> Result<Object, JsValue> {
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

    /// `importKey("jwk", jwk, import, false, ["verify"])`, then `verify(params, key, sig, msg)`.
    pub async fn verify(jwk: Object, import: Object, params: Object, msg: &[u8], sig: &[u8]) -> Result<bool, JsValue> {
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
        let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?;
        let usages: Array = [JsValue::from_str("verify")].iter().collect();
        let key = call(
            &subtle,
            "importKey",
            &["jwk".into(), jwk.into(), import.into(), false.into(), usages.into()],
        )
        .await?;
        let ok = call(
            &subtle,
            "verify",
            &[params.into(), key, Uint8Array::from(sig).into(), Uint8Array::from(msg).into()],
        )
        .await?;
        Ok(ok.as_bool().unwrap_or(false))
    }
}

/// ES256 in the worker: ECDSA P-256 through WebCrypto.
#[cfg(target_arch = "wasm32")]
mod ec {
    use super::webcrypto::{obj, verify as subtle_verify};
    use super::EcKey;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use wasm_bindgen::JsValue;

    /// WebCrypto checks the point when the key is imported.
    pub fn check_point(_x: &[u8; 32], _y: &[u8; 32]) -> Result<(), String> {
        Ok(())
    }

    async fn try_verify(k: &EcKey, msg: &[u8], sig: &[u8]) -> Result<bool, JsValue> {
        let jwk = obj(&[
            ("kty", "EC".into()),
            ("crv", "P-256".into()),
            ("x", URL_SAFE_NO_PAD.encode(k.x).into()),
            ("y", URL_SAFE_NO_PAD.encode(k.y).into()),
            ("ext", true.into()),
        ])?;
        let import = obj(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?;
        let params = obj(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])?;
        subtle_verify(jwk, import, params, msg, sig).await
    }

    pub async fn verify(k: &EcKey, msg: &[u8], sig: &[u8]) -> bool {
        try_verify(k, msg, sig).await.unwrap_or(false)
    }
}

/// RS256 in the worker: RSASSA-PKCS1-v1_5 with SHA-256 through WebCrypto.
#[cfg(target_arch = "wasm32")]
mod rs {
    use super::webcrypto::{obj, verify as subtle_verify};
    use super::RsaKey;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use wasm_bindgen::JsValue;

    /// WebCrypto checks the key when it is imported; sizes are checked when parsing.
    pub fn check_key(_k: &RsaKey) -> Result<(), String> {
        Ok(())
    }

    async fn try_verify(k: &RsaKey, msg: &[u8], sig: &[u8]) -> Result<bool, JsValue> {
        let jwk = obj(&[
            ("kty", "RSA".into()),
            ("n", URL_SAFE_NO_PAD.encode(&k.n).into()),
            ("e", URL_SAFE_NO_PAD.encode(&k.e).into()),
            ("alg", "RS256".into()),
            ("ext", true.into()),
        ])?;
        let import = obj(&[("name", "RSASSA-PKCS1-v1_5".into()), ("hash", "SHA-256".into())])?;
        let params = obj(&[("name", "RSASSA-PKCS1-v1_5".into())])?;
        subtle_verify(jwk, import, params, msg, sig).await
    }

    pub async fn verify(k: &RsaKey, msg: &[u8], sig: &[u8]) -> bool {
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

    /// The async verifier, driven to completion (ES256 goes through `ec::verify`), with
    /// the issuer the worker expects of a project at `http://127.0.0.1:54321`.
    fn verify_access_token(
        t: &str,
        secret: Option<&str>,
        keys: Option<&KeySet>,
        aud: Option<&str>,
        now: i64,
    ) -> Result<Claims, AuthError> {
        verify_with_issuer(t, secret, keys, aud, Some(ISS), now)
    }

    fn verify_with_issuer(
        t: &str,
        secret: Option<&str>,
        keys: Option<&KeySet>,
        aud: Option<&str>,
        iss: Option<&str>,
        now: i64,
    ) -> Result<Claims, AuthError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(super::verify_access_token(t, secret, keys, aud, iss, now))
    }

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "http://127.0.0.1:54321/auth/v1";

    fn user(exp: i64) -> Value {
        json!({"sub": "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e", "role": "authenticated", "aud": "authenticated", "iss": ISS, "exp": exp, "email": "a@example.com"})
    }

    #[test]
    fn tokens_of_another_issuer_or_without_one_are_refused() {
        let ok = sign_hs256(&user(NOW + 60), SECRET);
        assert!(verify_with_issuer(&ok, Some(SECRET), None, Some("authenticated"), Some(ISS), NOW).is_ok());
        let mut claims = user(NOW + 60);
        claims["iss"] = json!("https://attacker.example/auth/v1");
        let other = sign_hs256(&claims, SECRET);
        let err = verify_with_issuer(&other, Some(SECRET), None, Some("authenticated"), Some(ISS), NOW).unwrap_err();
        assert_eq!(
            err,
            AuthError::BadIssuer {
                found: Some("https://attacker.example/auth/v1".into()),
                expected: ISS.into()
            }
        );
        assert_eq!(err.code(), "bad_issuer");
        assert!(err.to_string().contains("https://attacker.example/auth/v1"), "{err}");
        assert!(err.to_string().contains(ISS), "{err}");
        // Missing, not a string, or only almost the same (a trailing slash) is refused too.
        claims.as_object_mut().unwrap().remove("iss");
        let missing = sign_hs256(&claims, SECRET);
        let err = verify_with_issuer(&missing, Some(SECRET), None, None, Some(ISS), NOW).unwrap_err();
        assert_eq!(err, AuthError::BadIssuer { found: None, expected: ISS.into() });
        assert!(err.to_string().contains("no iss claim"), "{err}");
        claims["iss"] = json!(42);
        let number = sign_hs256(&claims, SECRET);
        assert_eq!(
            verify_with_issuer(&number, Some(SECRET), None, None, Some(ISS), NOW).unwrap_err().code(),
            "bad_issuer"
        );
        claims["iss"] = json!(format!("{ISS}/"));
        let slash = sign_hs256(&claims, SECRET);
        assert_eq!(
            verify_with_issuer(&slash, Some(SECRET), None, None, Some(ISS), NOW).unwrap_err().code(),
            "bad_issuer"
        );
        // The issuer is checked after the signature: a forged token is a bad signature.
        let forged = sign_hs256(&user(NOW + 60), "another-secret");
        assert_eq!(
            verify_with_issuer(&forged, Some(SECRET), None, None, Some("https://x.example/auth/v1"), NOW),
            Err(AuthError::BadSignature)
        );
        // Without a configured issuer any iss passes (the worker always configures one).
        assert!(verify_with_issuer(&missing, Some(SECRET), None, None, None, NOW).is_ok());
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

    /// An RSA key pair made from a deterministic generator (the same key on every run).
    fn rsa_pair(bits: usize, start: u64) -> rsa::RsaPrivateKey {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(start);
        rsa::RsaPrivateKey::new(&mut rng, bits).unwrap()
    }

    fn rsa_jwk(key: &rsa::RsaPrivateKey, kid: &str) -> Value {
        use rsa::traits::PublicKeyParts;
        json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
               "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())})
    }

    fn rs256(claims: &Value, kid: &str, key: &rsa::RsaPrivateKey) -> String {
        use rsa::signature::{SignatureEncoding, Signer};
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": "RS256", "typ": "JWT", "kid": kid})).unwrap());
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let input = format!("{h}.{p}");
        let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn ec_jwk(byte: u8, kid: &str) -> Value {
        let sk = p256::ecdsa::SigningKey::from_slice(&[byte; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
               "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())})
    }

    #[test]
    fn rs256_tokens_verify_against_a_jwks_with_ec_and_rsa_keys() {
        let key = rsa_pair(2048, 1);
        let set = KeySet::parse(&json!({"keys": [ec_jwk(7, "ec1"), rsa_jwk(&key, "rsa1")]}).to_string()).unwrap();
        assert_eq!((set.len(), set.rsa_keys().len(), set.skipped.len()), (2, 1, 0));
        assert_eq!(set.rsa_keys()[0].bits(), 2048);
        let token = rs256(&user(NOW + 60), "rsa1", &key);
        assert_eq!(token_alg_kid(&token).unwrap(), ("RS256".to_string(), Some("rsa1".to_string())));
        let c = verify_access_token(&token, None, Some(&set), Some("authenticated"), NOW).unwrap();
        assert_eq!(c.sub, "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e");
        // Without a kid every RSA key is tried.
        let no_kid = {
            use rsa::signature::{SignatureEncoding, Signer};
            let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&user(NOW + 60)).unwrap());
            let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(format!("{h}.{p}").as_bytes());
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
        };
        assert!(verify_access_token(&no_kid, None, Some(&set), None, NOW).is_ok());
        // Signed by another RSA key under the published kid.
        let other = rsa_pair(2048, 2);
        assert_eq!(
            verify_access_token(&rs256(&user(NOW + 60), "rsa1", &other), None, Some(&set), None, NOW),
            Err(AuthError::BadSignature)
        );
        // Tampered payload, original signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut claims = user(NOW + 60);
        claims["sub"] = json!("someone-else");
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert_eq!(
            verify_access_token(&parts.join("."), None, Some(&set), None, NOW),
            Err(AuthError::BadSignature)
        );
        // Expiry is checked after the signature as for every algorithm.
        assert_eq!(
            verify_access_token(&rs256(&user(NOW - 3600), "rsa1", &key), None, Some(&set), None, NOW),
            Err(AuthError::Expired)
        );
        // A key is used only for its own algorithm: RS256 naming the EC key is unknown,
        // and an ES256 signature is never checked against the RSA key.
        assert_eq!(
            verify_access_token(&rs256(&user(NOW + 60), "ec1", &key), None, Some(&set), None, NOW),
            Err(AuthError::UnknownKey("ec1".into()))
        );
        let es = {
            use p256::ecdsa::{signature::Signer, Signature, SigningKey};
            let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
            let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"rsa1"}"#);
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&user(NOW + 60)).unwrap());
            let sig: Signature = sk.sign(format!("{h}.{p}").as_bytes());
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
        };
        assert_eq!(
            verify_access_token(&es, None, Some(&set), None, NOW),
            Err(AuthError::UnknownKey("rsa1".into()))
        );
        // RS256 needs the JWKS; the HS256 secret alone does not verify it.
        assert!(matches!(
            verify_access_token(&token, Some(SECRET), None, None, NOW),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_refused_with_their_reason() {
        let weak = rsa_pair(1024, 3);
        let strong = rsa_pair(2048, 1);
        let set = KeySet::parse(&json!({"keys": [rsa_jwk(&weak, "weak"), rsa_jwk(&strong, "strong")]}).to_string()).unwrap();
        assert_eq!(set.rsa_keys().len(), 1);
        assert_eq!(set.skipped.len(), 1);
        assert_eq!(set.skipped[0].0, "weak");
        assert!(set.skipped[0].1.contains("1024 bits is too small"), "{}", set.skipped[0].1);
        let err = verify_access_token(&rs256(&user(NOW + 60), "weak", &weak), None, Some(&set), None, NOW).unwrap_err();
        assert_eq!(err.code(), "unusable_key");
        assert!(err.to_string().contains("at least 2048 bits"), "{err}");
        // A key published for another algorithm, and bad exponents, are refused too.
        let mut rs512 = rsa_jwk(&strong, "rs512");
        rs512["alg"] = json!("RS512");
        let mut even = rsa_jwk(&strong, "even");
        even["e"] = json!(URL_SAFE_NO_PAD.encode([1u8, 0, 0]));
        let mut one = rsa_jwk(&strong, "one");
        one["e"] = json!(URL_SAFE_NO_PAD.encode([1u8]));
        let set = KeySet::parse(&json!({"keys": [rs512, even, one]}).to_string()).unwrap();
        assert!(set.is_empty());
        let reasons: Vec<&str> = set.skipped.iter().map(|(_, r)| r.as_str()).collect();
        assert!(reasons[0].contains("only RS256"), "{reasons:?}");
        assert!(reasons[1].contains("odd") && reasons[2].contains("odd"), "{reasons:?}");
        // Broken base64 leaves that key out (RFC 7517 §5), not the whole document.
        let set = KeySet::parse(r#"{"keys":[{"kty":"RSA","kid":"b","n":"*","e":"AQAB"}]}"#).unwrap();
        assert!(set.is_empty());
        assert!(set.skipped[0].1.contains("bad n"), "{:?}", set.skipped);
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
