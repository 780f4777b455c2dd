//! The worker's configuration, read from its environment (wrangler `[vars]` and secrets;
//! `.dev.vars` for local runs) through a lookup function, so it is tested natively.
//!
//! | name | what | required |
//! |---|---|---|
//! | `STRIPE_WEBHOOK_SECRETS` (or `STRIPE_WEBHOOK_SECRET`) | one or more `whsec_...` endpoint secrets, comma/space separated (rotation) | for `/webhooks/stripe` |
//! | `STRIPE_TOLERANCE_SECONDS` | signature timestamp tolerance, default 300 | no |
//! | `RAZORPAY_WEBHOOK_SECRET` | Razorpay webhook secret(s) | for `/webhooks/razorpay` |
//! | `SUPABASE_URL` | project URL (or the local gateway) | yes |
//! | `SUPABASE_SECRET_KEY` | a secret API key (`sb_secret_...`): the worker is the only writer | this or the next |
//! | `SUPABASE_SERVICE_ROLE_KEY` | the legacy service-role key (a JWT), used when there is no secret key | this or the previous |
//! | `SUPABASE_JWT_SECRET` | legacy HS256 secret for users' access tokens | one of these two |
//! | `SUPABASE_JWKS_URL` | JWKS of the project's asymmetric signing keys | one of these two |
//! | `SUPABASE_JWT_AUDIENCE` | expected `aud`, default `authenticated` | no |
//! | `SUPABASE_JWT_ISSUER` | expected `iss`, default `<SUPABASE_URL>/auth/v1` (Supabase Auth's) | no |
//! | `SNAPSHOT_SIGNING_KEY` | Ed25519 secret key, 32 bytes as hex or base64 | for `/v1/entitlements` |
//! | `SNAPSHOT_KEY_ID` | key id published with snapshots | no (`default`) |
//! | `SNAPSHOT_TTL_SECONDS` | snapshot lifetime, default 3600 | no |
//! | `ADMIN_SECRET` | shared secret for `/v1/admin/*` | for admin routes |
//! | `CATALOG` | the catalog id served: its active version in the store (`tollgate catalog push`), else the embedded `catalogs/<name>.toml` | no (`vcm-suite`) |
//! | `CATALOG_REFRESH_SECONDS` | how long an isolate serves its cached catalog before checking the store's active version, default 60 | no |
//! | `STRIPE_SECRET_KEY` | Stripe API key (`sk_...` or a restricted `rk_...`); its mode (live or test) is the mode whose webhook events are applied (an event of the other mode is kept, not applied) | for checkout, portal and subscription changes of Stripe offers |
//! | `STRIPE_API_BASE` | Stripe's API root, default `https://api.stripe.com` | no |
//! | `RAZORPAY_KEY_ID` / `RAZORPAY_KEY_SECRET` | Razorpay API key | for checkout and cancellation of Razorpay offers |
//! | `RAZORPAY_API_BASE` | Razorpay's API root, default `https://api.razorpay.com` | no |
//! | `PROVIDER_TIMEOUT_SECONDS` | how long a provider call may take before the route answers 504, default 20 | no |
//! | `SUBREQUESTS` | the requests one invocation may make, the plan's subrequest limit: default 50 (Workers Free); up to 10,000 on Workers Paid. A scheduled run shares them between its kinds of work and leaves the rest to the next run | no |

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::fmt;

/// The fewest `SUBREQUESTS` a deployment may name: room for each kind of a scheduled run's
/// work to make a few requests.
pub const MIN_SUBREQUESTS: i64 = 20;

#[derive(Clone)]
pub struct Config {
    pub stripe_secrets: Vec<String>,
    pub stripe_tolerance_secs: u64,
    pub razorpay_secrets: Vec<String>,
    pub supabase_url: String,
    pub service_role_key: String,
    pub jwt_secret: Option<String>,
    pub jwks_url: Option<String>,
    pub jwt_audience: Option<String>,
    /// The `iss` every user's access token must carry: `SUPABASE_JWT_ISSUER`, else
    /// `<SUPABASE_URL without trailing slashes>/auth/v1`, as Supabase Auth issues them.
    pub jwt_issuer: String,
    pub snapshot_secret: Option<[u8; 32]>,
    pub snapshot_key_id: String,
    pub snapshot_ttl_secs: i64,
    pub admin_secret: Option<String>,
    pub catalog: String,
    /// How long a cached catalog is served before the store's active version is checked.
    pub catalog_refresh_secs: i64,
    pub stripe_secret_key: Option<String>,
    pub stripe_api_base: String,
    /// (key id, key secret)
    pub razorpay_key: Option<(String, String)>,
    pub razorpay_api_base: String,
    pub provider_timeout_secs: u32,
    /// How many requests one invocation may make (`SUBREQUESTS`, see [`crate::budget`]).
    pub subrequests: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        f.debug_struct("Config")
            .field("stripe_secrets", &self.stripe_secrets.len())
            .field("razorpay_secrets", &self.razorpay_secrets.len())
            .field("supabase_url", &self.supabase_url)
            .field("jwt_secret", &self.jwt_secret.is_some())
            .field("jwks_url", &self.jwks_url)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("snapshot_key_id", &self.snapshot_key_id)
            .field("snapshot_ttl_secs", &self.snapshot_ttl_secs)
            .field("admin_secret", &self.admin_secret.is_some())
            .field("catalog", &self.catalog)
            .field("stripe_secret_key", &self.stripe_secret_key.is_some())
            .field("stripe_api_base", &self.stripe_api_base)
            .field("razorpay_key", &self.razorpay_key.as_ref().map(|(id, _)| id))
            .field("razorpay_api_base", &self.razorpay_api_base)
            .field("provider_timeout_secs", &self.provider_timeout_secs)
            .field("subrequests", &self.subrequests)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration {}: {}", self.name, self.message)
    }
}
impl std::error::Error for ConfigError {}

fn list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Decodes a 32-byte Ed25519 secret key written as hex (64 digits) or base64 / base64url.
pub fn decode_secret(s: &str) -> Result<[u8; 32], String> {
    let t = s.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|e| e.to_string())?
    } else {
        STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map_err(|_| "not hex or base64".to_string())?
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes, expected 32", b.len()))
}

impl Config {
    /// The Stripe mode the worker serves: its `STRIPE_SECRET_KEY`'s (`sk_live_`/`rk_live_`
    /// or `sk_test_`/`rk_test_`); with no such key, events of either mode are read.
    pub fn stripe_mode(&self) -> Option<tollgate::billing::StripeMode> {
        self.stripe_secret_key.as_deref().and_then(tollgate::billing::StripeMode::of_key)
    }

    /// Reads the configuration through `get` (an env var / binding lookup).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let opt = |n: &str| get(n).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let req = |n: &'static str| {
            opt(n).ok_or(ConfigError {
                name: n,
                message: "is required".into(),
            })
        };
        let num = |n: &'static str, default: i64| -> Result<i64, ConfigError> {
            match opt(n) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|x| *x > 0).ok_or(ConfigError {
                    name: n,
                    message: format!("`{v}` is not a positive integer"),
                }),
            }
        };
        let stripe_secrets = opt("STRIPE_WEBHOOK_SECRETS")
            .or_else(|| opt("STRIPE_WEBHOOK_SECRET"))
            .map(|v| list(&v))
            .unwrap_or_default();
        let razorpay_secrets = opt("RAZORPAY_WEBHOOK_SECRET").map(|v| list(&v)).unwrap_or_default();
        let supabase_url = req("SUPABASE_URL")?;
        if !(supabase_url.starts_with("https://") || supabase_url.starts_with("http://")) {
            return Err(ConfigError {
                name: "SUPABASE_URL",
                message: "must start with https:// (or http:// locally)".into(),
            });
        }
        let jwt_issuer = opt("SUPABASE_JWT_ISSUER")
            .unwrap_or_else(|| format!("{}/auth/v1", supabase_url.trim_end_matches('/')));
        let jwt_secret = opt("SUPABASE_JWT_SECRET");
        let jwks_url = opt("SUPABASE_JWKS_URL");
        if jwt_secret.is_none() && jwks_url.is_none() {
            return Err(ConfigError {
                name: "SUPABASE_JWT_SECRET",
                message: "set SUPABASE_JWT_SECRET (HS256) and/or SUPABASE_JWKS_URL (asymmetric keys) to verify users"
                    .into(),
            });
        }
        let snapshot_secret = match opt("SNAPSHOT_SIGNING_KEY") {
            None => None,
            Some(v) => Some(decode_secret(&v).map_err(|m| ConfigError {
                name: "SNAPSHOT_SIGNING_KEY",
                message: m,
            })?),
        };
        let base = |n: &'static str, default: &str| -> Result<String, ConfigError> {
            let v = opt(n).unwrap_or_else(|| default.to_string());
            if !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err(ConfigError { name: n, message: format!("`{v}` must start with https:// (or http:// locally)") });
            }
            Ok(v.trim_end_matches('/').to_string())
        };
        let razorpay_key = match (opt("RAZORPAY_KEY_ID"), opt("RAZORPAY_KEY_SECRET")) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError { name: "RAZORPAY_KEY_SECRET", message: "is required with RAZORPAY_KEY_ID".into() }),
            (None, Some(_)) => return Err(ConfigError { name: "RAZORPAY_KEY_ID", message: "is required with RAZORPAY_KEY_SECRET".into() }),
        };
        Ok(Config {
            stripe_secret_key: opt("STRIPE_SECRET_KEY"),
            stripe_api_base: base("STRIPE_API_BASE", "https://api.stripe.com")?,
            razorpay_key,
            razorpay_api_base: base("RAZORPAY_API_BASE", "https://api.razorpay.com")?,
            provider_timeout_secs: u32::try_from(num("PROVIDER_TIMEOUT_SECONDS", 20)?.min(300)).unwrap_or(20),
            subrequests: match num("SUBREQUESTS", 50)? {
                n if n < MIN_SUBREQUESTS => {
                    return Err(ConfigError {
                        name: "SUBREQUESTS",
                        message: format!("{n} is too few for a scheduled run: at least {MIN_SUBREQUESTS} (Workers Free allows 50)"),
                    })
                }
                n => n as u64,
            },
            stripe_secrets,
            stripe_tolerance_secs: num("STRIPE_TOLERANCE_SECONDS", 300)? as u64,
            razorpay_secrets,
            supabase_url,
            service_role_key: match opt("SUPABASE_SECRET_KEY") {
                Some(k) if !k.starts_with("sb_secret_") => {
                    return Err(ConfigError {
                        name: "SUPABASE_SECRET_KEY",
                        message: "a secret API key starts with `sb_secret_` (a JWT goes in SUPABASE_SERVICE_ROLE_KEY)".into(),
                    })
                }
                Some(k) => k,
                None => req("SUPABASE_SERVICE_ROLE_KEY").map_err(|_| ConfigError {
                    name: "SUPABASE_SECRET_KEY",
                    message: "set SUPABASE_SECRET_KEY (`sb_secret_...`) or the legacy SUPABASE_SERVICE_ROLE_KEY".into(),
                })?,
            },
            jwt_secret,
            jwks_url,
            jwt_audience: Some(opt("SUPABASE_JWT_AUDIENCE").unwrap_or_else(|| "authenticated".into())),
            jwt_issuer,
            snapshot_secret,
            snapshot_key_id: opt("SNAPSHOT_KEY_ID").unwrap_or_else(|| "default".into()),
            snapshot_ttl_secs: num("SNAPSHOT_TTL_SECONDS", 3600)?,
            admin_secret: opt("ADMIN_SECRET"),
            catalog: opt("CATALOG").unwrap_or_else(|| "vcm-suite".into()),
            catalog_refresh_secs: num("CATALOG_REFRESH_SECONDS", 60)?,
        })
    }
}

/// The fewest characters an `ADMIN_SECRET` may have: the admin routes move money, and a
/// short secret can be guessed. A shorter one keeps the admin routes closed (500
/// `not_configured`); the other routes work on.
pub const MIN_ADMIN_SECRET: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }
    const BASE: &[(&str, &str)] = &[
        ("SUPABASE_URL", "http://127.0.0.1:54321"),
        ("SUPABASE_SERVICE_ROLE_KEY", "svc"),
        ("SUPABASE_JWT_SECRET", "jwt"),
    ];

    #[test]
    fn reads_lists_defaults_and_keys() {
        let mut p = BASE.to_vec();
        p.push(("STRIPE_WEBHOOK_SECRETS", "whsec_a, whsec_b"));
        p.push((
            "SNAPSHOT_SIGNING_KEY",
            "0101010101010101010101010101010101010101010101010101010101010101",
        ));
        let c = Config::from_lookup(env(&p)).unwrap();
        assert_eq!(c.stripe_secrets, vec!["whsec_a", "whsec_b"]);
        assert_eq!(c.stripe_tolerance_secs, 300);
        assert_eq!(c.snapshot_secret, Some([1u8; 32]));
        assert_eq!(c.snapshot_ttl_secs, 3600);
        assert_eq!(c.catalog, "vcm-suite");
        assert_eq!(c.subrequests, 50, "Workers Free's limit unless told");
        assert!(!format!("{c:?}").contains("svc"), "Debug must not print secrets");
    }

    #[test]
    fn the_issuer_is_supabase_auth_of_the_project_unless_set() {
        let c = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(c.jwt_issuer, "http://127.0.0.1:54321/auth/v1");
        let mut p = BASE.to_vec();
        p[0] = ("SUPABASE_URL", "https://abcd.supabase.co//");
        assert_eq!(Config::from_lookup(env(&p)).unwrap().jwt_issuer, "https://abcd.supabase.co/auth/v1");
        p.push(("SUPABASE_JWT_ISSUER", " https://auth.example.com/auth/v1 "));
        assert_eq!(Config::from_lookup(env(&p)).unwrap().jwt_issuer, "https://auth.example.com/auth/v1");
        // Empty is unset.
        let mut p = BASE.to_vec();
        p.push(("SUPABASE_JWT_ISSUER", " "));
        assert_eq!(Config::from_lookup(env(&p)).unwrap().jwt_issuer, "http://127.0.0.1:54321/auth/v1");
    }

    #[test]
    fn names_what_is_missing_or_wrong() {
        let e = Config::from_lookup(env(&[("SUPABASE_URL", "http://x")])).unwrap_err();
        assert_eq!(e.name, "SUPABASE_JWT_SECRET");
        let e = Config::from_lookup(env(&BASE[..1])).unwrap_err();
        assert!(e.to_string().contains("SUPABASE_JWT_SECRET"));
        let mut p = BASE.to_vec();
        p.push(("SNAPSHOT_SIGNING_KEY", "abcd"));
        assert_eq!(Config::from_lookup(env(&p)).unwrap_err().name, "SNAPSHOT_SIGNING_KEY");
        let mut p = BASE.to_vec();
        p.push(("SNAPSHOT_TTL_SECONDS", "-5"));
        assert_eq!(Config::from_lookup(env(&p)).unwrap_err().name, "SNAPSHOT_TTL_SECONDS");
        assert_eq!(decode_secret(&STANDARD.encode([9u8; 32])).unwrap(), [9u8; 32]);
        for (v, ok) in [("10000", Some(10_000)), ("20", Some(20)), ("19", None), ("0", None), ("many", None)] {
            let mut p = BASE.to_vec();
            p.push(("SUBREQUESTS", v));
            match (Config::from_lookup(env(&p)), ok) {
                (Ok(c), Some(n)) => assert_eq!(c.subrequests, n),
                (Err(e), None) => assert_eq!(e.name, "SUBREQUESTS", "{e}"),
                (r, _) => panic!("SUBREQUESTS={v}: {:?}", r.map(|c| c.subrequests)),
            }
        }
    }

    #[test]
    fn a_secret_api_key_or_the_legacy_service_role_key() {
        let without: Vec<(&str, &str)> = BASE.iter().copied().filter(|(k, _)| *k != "SUPABASE_SERVICE_ROLE_KEY").collect();
        let e = Config::from_lookup(env(&without)).unwrap_err();
        assert_eq!(e.name, "SUPABASE_SECRET_KEY");
        assert!(e.to_string().contains("SUPABASE_SERVICE_ROLE_KEY"), "{e}");
        let mut p = without.clone();
        p.push(("SUPABASE_SECRET_KEY", "sb_secret_123"));
        assert_eq!(Config::from_lookup(env(&p)).unwrap().service_role_key, "sb_secret_123");
        let mut p = BASE.to_vec();
        p.push(("SUPABASE_SECRET_KEY", "sb_secret_new"));
        assert_eq!(Config::from_lookup(env(&p)).unwrap().service_role_key, "sb_secret_new", "the secret key wins");
        let mut p = without;
        p.push(("SUPABASE_SECRET_KEY", "eyJhbGciOi.not.a.secret.key"));
        assert_eq!(Config::from_lookup(env(&p)).unwrap_err().name, "SUPABASE_SECRET_KEY");
    }
}
