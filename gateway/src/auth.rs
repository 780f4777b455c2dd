//! Who is calling: the JWT from `Authorization: Bearer ...` (or, as Supabase's API gateway
//! does, from the `apikey` header when there is no Authorization header), verified with
//! the HS256/384/512 secret. The `role` claim names the database role; without a JWT the
//! request runs as the anonymous role. Errors follow PostgREST: PGRST301 for a token that
//! cannot be verified, PGRST303 for claims that fail validation (expired, ...), both 401.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ApiError;

/// PostgREST allows this much clock skew on `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW_SECS: u64 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// The database role the request runs as.
    pub role: String,
    /// The claims, as set into `request.jwt.claims` (`{"role": <anon>}` without a JWT).
    pub claims: Map<String, Value>,
    /// Whether the request ran as the anonymous role (42501 is then 401, not 403).
    pub anon: bool,
}

/// Header lookup, case-insensitive by name (the handler passes hyper's HeaderMap).
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for hyper::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        hyper::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The token a request carries, if any: `Authorization: Bearer <jwt>`, else the `apikey`
/// header (Supabase's gateway forwards the API key as the bearer token when the client
/// sent no Authorization header).
pub fn token_of(headers: &impl Headers) -> Option<&str> {
    match headers.get("authorization") {
        Some(v) => bearer(v),
        None => headers.get("apikey").map(str::trim),
    }
}

fn jwt_error(code: &str, message: &str) -> ApiError {
    ApiError::new(401, code, message).header(
        "WWW-Authenticate",
        format!("Bearer error=\"invalid_token\", error_description=\"{message}\""),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verifies `token` and returns its claims.
pub fn verify(token: &str, secret: &str) -> Result<Map<String, Value>, ApiError> {
    if token.is_empty() {
        return Err(jwt_error(
            "PGRST301",
            "Empty JWT is sent in Authorization header",
        ));
    }
    let parts = token.split('.').count();
    if parts != 3 {
        return Err(jwt_error(
            "PGRST301",
            &format!("Expected 3 parts in JWT; got {parts}"),
        ));
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
    validation.leeway = CLOCK_SKEW_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // PostgREST checks `aud` only when configured to; Supabase tokens carry one.
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => jwt_error("PGRST303", "JWT expired"),
        ErrorKind::ImmatureSignature => jwt_error("PGRST303", "JWT not yet valid"),
        ErrorKind::InvalidSignature => jwt_error("PGRST301", "JWT cryptographic operation failed"),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => {
            jwt_error("PGRST301", "Wrong or unsupported encoding algorithm")
        }
        ErrorKind::Json(_) => jwt_error("PGRST303", "Parsing claims failed"),
        _ => jwt_error("PGRST301", "JWT couldn't be decoded"),
    })?;
    let Value::Object(claims) = data.claims else {
        return Err(jwt_error("PGRST303", "Parsing claims failed"));
    };
    for name in ["exp", "nbf", "iat"] {
        if claims.get(name).is_some_and(|v| !v.is_number()) {
            return Err(jwt_error(
                "PGRST303",
                &format!("The JWT '{name}' claim must be a number"),
            ));
        }
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_f64) {
        if iat > (now_secs() + CLOCK_SKEW_SECS) as f64 {
            return Err(jwt_error("PGRST303", "JWT issued at future"));
        }
    }
    Ok(claims)
}

/// Supabase's API keys that are not JWTs, as configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiKeys<'a> {
    pub secret: &'a [String],
    pub publishable: &'a [String],
}

impl ApiKeys<'_> {
    fn is_secret(&self, k: &str) -> bool {
        self.secret.iter().any(|s| s == k)
    }
    fn is_publishable(&self, k: &str) -> bool {
        self.publishable.iter().any(|s| s == k)
    }
}

/// A browser, as Supabase's gateway tells one (by its `User-Agent`): secret keys are
/// refused from browsers.
fn from_browser(headers: &impl Headers) -> bool {
    headers.get("user-agent").is_some_and(|ua| ua.starts_with("Mozilla/"))
}

/// Resolves the caller of a request. Without an Authorization header, a secret API key in
/// `apikey` runs the request as `service_role` and a publishable one as the anon role; an
/// unknown `sb_` key is refused. A bearer token is always a JWT.
pub fn authenticate(
    headers: &impl Headers,
    secret: Option<&str>,
    anon_role: &str,
    keys: ApiKeys<'_>,
) -> Result<Auth, ApiError> {
    if headers.get("authorization").is_none() {
        if let Some(k) = headers.get("apikey").map(str::trim).filter(|k| k.starts_with("sb_")) {
            let role = if keys.is_secret(k) {
                if from_browser(headers) {
                    return Err(ApiError::new(401, "", "Secret API keys can only be used from a server, not a browser"));
                }
                "service_role".to_string()
            } else if keys.is_publishable(k) {
                anon_role.to_string()
            } else {
                return Err(ApiError::new(401, "", "Invalid API key"));
            };
            let mut claims = Map::new();
            claims.insert("role".into(), Value::String(role.clone()));
            return Ok(Auth { anon: role == anon_role, role, claims });
        }
    }
    let Some(token) = token_of(headers) else {
        let mut claims = Map::new();
        claims.insert("role".into(), Value::String(anon_role.to_string()));
        return Ok(Auth {
            role: anon_role.to_string(),
            claims,
            anon: true,
        });
    };
    let Some(secret) = secret else {
        return Err(ApiError::new(500, "PGRST300", "Server lacks JWT secret"));
    };
    let claims = verify(token, secret)?;
    let role = match claims.get("role") {
        Some(Value::String(r)) if !r.is_empty() => r.clone(),
        _ => anon_role.to_string(),
    };
    Ok(Auth {
        anon: role == anon_role,
        role,
        claims,
    })
}

/// Supabase's API gateway (not PostgREST) requires an `apikey` header (or `apikey` query
/// parameter) holding one of the project's keys. With `--require-apikey` the stand-in
/// checks that it is a JWT signed with the secret, answering as that gateway does.
pub fn check_apikey(
    headers: &impl Headers,
    query_apikey: Option<&str>,
    secret: &str,
    keys: ApiKeys<'_>,
) -> Result<(), ApiError> {
    let key = headers.get("apikey").or(query_apikey);
    let reject = |message: &str, hint: &str| {
        let mut e = ApiError::new(401, "", message);
        e.raw_body = Some(serde_json::json!({ "message": message, "hint": hint }));
        e
    };
    match key {
        None => Err(reject(
            "No API key found in request",
            "No `apikey` request header or url param was found.",
        )),
        Some(k) if keys.is_secret(k.trim()) || keys.is_publishable(k.trim()) => Ok(()),
        Some(k) if verify(k.trim(), secret).is_err() => Err(reject(
            "Invalid API key",
            "Double check your Supabase `anon` or `service_role` API key.",
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::collections::HashMap;

    const SECRET: &str = "a-test-secret-that-is-at-least-32-chars";

    struct H(HashMap<&'static str, &'static str>);
    impl Headers for H {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).copied()
        }
    }

    fn sign(claims: Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn no_token_is_anon() {
        let a = authenticate(&H(HashMap::new()), Some(SECRET), "anon", ApiKeys::default()).unwrap();
        assert_eq!(a.role, "anon");
        assert!(a.anon);
        assert_eq!(Value::Object(a.claims), json!({"role": "anon"}));
    }

    #[test]
    fn role_claim_and_apikey_fallback() {
        let t: &'static str =
            Box::leak(sign(json!({"role": "service_role"}), SECRET).into_boxed_str());
        let a = authenticate(&H(HashMap::from([("apikey", t)])), Some(SECRET), "anon", ApiKeys::default()).unwrap();
        assert_eq!(a.role, "service_role");
        assert!(!a.anon);
        // Authorization wins over apikey.
        let bearer: &'static str = Box::leak(
            format!(
                "Bearer {}",
                sign(json!({"role": "authenticated", "sub": "u1"}), SECRET)
            )
            .into_boxed_str(),
        );
        let a = authenticate(
            &H(HashMap::from([("apikey", t), ("authorization", bearer)])),
            Some(SECRET),
            "anon",
            ApiKeys::default(),
        )
        .unwrap();
        assert_eq!(a.role, "authenticated");
        assert_eq!(a.claims["sub"], "u1");
    }

    #[test]
    fn bad_tokens() {
        let wrong = sign(
            json!({"role": "authenticated"}),
            "another-secret-that-is-32-chars-long!!",
        );
        let e = verify(&wrong, SECRET).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (401, "PGRST301", "JWT cryptographic operation failed")
        );
        let expired = sign(
            json!({"role": "authenticated", "exp": now_secs() - 120}),
            SECRET,
        );
        let e = verify(&expired, SECRET).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("PGRST303", "JWT expired")
        );
        // Within the 30 s skew it still passes.
        assert!(verify(&sign(json!({"exp": now_secs() - 10}), SECRET), SECRET).is_ok());
        let e = verify("abc.def", SECRET).unwrap_err();
        assert_eq!(e.message, "Expected 3 parts in JWT; got 2");
        let e = verify(&sign(json!({"exp": "soon"}), SECRET), SECRET).unwrap_err();
        assert_eq!(e.message, "The JWT 'exp' claim must be a number");
        let e = verify(&sign(json!({"iat": now_secs() + 3600}), SECRET), SECRET).unwrap_err();
        assert_eq!(e.message, "JWT issued at future");
        assert!(e
            .headers
            .iter()
            .any(|(k, v)| k == "WWW-Authenticate" && v.contains("invalid_token")));
        let e = authenticate(
            &H(HashMap::from([("authorization", "Bearer ")])),
            Some(SECRET),
            "anon",
            ApiKeys::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "PGRST301");
    }

    #[test]
    fn apikey_check() {
        let ok: &'static str = Box::leak(sign(json!({"role": "anon"}), SECRET).into_boxed_str());
        assert!(check_apikey(&H(HashMap::from([("apikey", ok)])), None, SECRET, ApiKeys::default()).is_ok());
        assert!(check_apikey(&H(HashMap::new()), Some(ok), SECRET, ApiKeys::default()).is_ok());
        let e = check_apikey(&H(HashMap::new()), None, SECRET, ApiKeys::default()).unwrap_err();
        assert_eq!(e.status, 401);
        assert!(e.body().contains("No API key found"));
        assert!(check_apikey(&H(HashMap::from([("apikey", "nope")])), None, SECRET, ApiKeys::default()).is_err());
    }

    #[test]
    fn secret_and_publishable_api_keys() {
        let secret = vec!["sb_secret_abc".to_string()];
        let publishable = vec!["sb_publishable_xyz".to_string()];
        let keys = ApiKeys { secret: &secret, publishable: &publishable };
        let a = authenticate(&H(HashMap::from([("apikey", "sb_secret_abc")])), Some(SECRET), "anon", keys).unwrap();
        assert_eq!((a.role.as_str(), a.anon), ("service_role", false));
        let a = authenticate(&H(HashMap::from([("apikey", "sb_publishable_xyz")])), Some(SECRET), "anon", keys).unwrap();
        assert_eq!((a.role.as_str(), a.anon), ("anon", true));
        let browser = H(HashMap::from([("apikey", "sb_secret_abc"), ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")]));
        assert_eq!(authenticate(&browser, Some(SECRET), "anon", keys).unwrap_err().status, 401, "never from a browser");
        let unknown = H(HashMap::from([("apikey", "sb_secret_other")]));
        assert_eq!(authenticate(&unknown, Some(SECRET), "anon", keys).unwrap_err().status, 401);
        // A key is not a JWT: as a bearer token it is refused.
        let bearer = H(HashMap::from([("apikey", "sb_secret_abc"), ("authorization", "Bearer sb_secret_abc")]));
        assert_eq!(authenticate(&bearer, Some(SECRET), "anon", keys).unwrap_err().status, 401);
        // A user's token with a publishable key: the user.
        let t = sign(json!({"role": "authenticated", "sub": "u1"}), SECRET);
        let b = format!("Bearer {t}");
        let user = H(HashMap::from([("apikey", "sb_publishable_xyz"), ("authorization", b.leak() as &str)]));
        assert_eq!(authenticate(&user, Some(SECRET), "anon", keys).unwrap().role, "authenticated");
        assert!(check_apikey(&H(HashMap::from([("apikey", "sb_secret_abc")])), None, SECRET, keys).is_ok());
        assert!(check_apikey(&H(HashMap::from([("apikey", "sb_secret_no")])), None, SECRET, keys).is_err());
    }
}
