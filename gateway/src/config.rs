//! Command line and environment configuration. The environment variables carry
//! PostgREST's names where PostgREST has the same setting, so the local stack's settings
//! read the same as a PostgREST deployment's.

use std::time::Duration;

pub const HELP: &str = "\
tollgate-gateway: a LOCAL STAND-IN for PostgREST (Supabase's REST API)

Serves /rest/v1 the way PostgREST documents it, for exactly the requests tollgate makes
(JWT roles, one transaction per request, filters, upsert, return preferences, RPC,
PostgREST's error JSON and status codes). It exists because no PostgREST binary can be
installed on tollgate's development and CI machines. It is not PostgREST, implements a
small subset of it, and is meant for local development and tests only: production
talks to Supabase's real REST API. See gateway/README.md for what is and is not covered.

USAGE:
    tollgate-gateway [OPTIONS]

OPTIONS (a flag wins over its environment variable):
    --listen ADDR         Address to listen on          [env TOLLGATE_GATEWAY_LISTEN]
                          default 127.0.0.1:54321
    --db-uri URI          PostgreSQL connection string  [env PGRST_DB_URI]
                          default postgres://authenticator@127.0.0.1:54322/postgres
    --jwt-secret SECRET   HS256/384/512 secret, at least 32 characters [env PGRST_JWT_SECRET]
                          (prefer the environment variable: command lines are visible)
    --schema NAME         The one exposed schema        [env PGRST_DB_SCHEMAS] default public
    --anon-role ROLE      Role for requests without a JWT [env PGRST_DB_ANON_ROLE] default anon
    --pool-size N         Database connections          [env PGRST_DB_POOL] default 10
    --pool-timeout SECS   Wait for a free connection    [env PGRST_DB_POOL_ACQUISITION_TIMEOUT]
                          default 10
    --require-apikey      Also demand Supabase's `apikey` header (a JWT signed with the
                          secret, or a key below), as Supabase's API gateway does
                          [env TOLLGATE_GATEWAY_REQUIRE_APIKEY=1]
    --secret-key KEY      A secret API key (`sb_secret_...`): sent in `apikey` with no
                          Authorization header, the request runs as service_role; refused
                          from a browser [env TOLLGATE_GATEWAY_SECRET_KEYS, comma separated]
    --publishable-key KEY A publishable API key (`sb_publishable_...`): the anon role, or the
                          user of a bearer token [env TOLLGATE_GATEWAY_PUBLISHABLE_KEYS]
    --quiet               Do not log requests to stderr
    -h, --help            Print this help

ENDPOINTS:
    GET  /rest/v1/                 health: 200 with the exposed tables and functions once
                                   PostgreSQL answers, 503 otherwise
    GET|HEAD|POST|PATCH|DELETE /rest/v1/<table>
    GET|POST /rest/v1/rpc/<function>
";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub db_uri: String,
    pub jwt_secret: Option<String>,
    pub schema: String,
    pub anon_role: String,
    pub pool_size: usize,
    pub pool_timeout: Duration,
    pub require_apikey: bool,
    pub quiet: bool,
    /// Supabase's API keys that are not JWTs: secret keys (`sb_secret_...`, the
    /// `service_role`) and publishable keys (`sb_publishable_...`, the anon role).
    pub secret_keys: Vec<String>,
    pub publishable_keys: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:54321".into(),
            db_uri: "postgres://authenticator@127.0.0.1:54322/postgres".into(),
            jwt_secret: None,
            schema: "public".into(),
            anon_role: "anon".into(),
            pool_size: 10,
            pool_timeout: Duration::from_secs(10),
            require_apikey: false,
            quiet: false,
            secret_keys: Vec::new(),
            publishable_keys: Vec::new(),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Config),
    Help,
}

impl Config {
    /// Reads the process's arguments and environment.
    pub fn from_env_and_args() -> Result<Parsed, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Config::parse(&args, |k| std::env::var(k).ok())
    }

    /// Parses `args` (without the program name) over the environment `env`.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Parsed, String> {
        let mut c = Config::default();
        if let Some(v) = env("TOLLGATE_GATEWAY_LISTEN") {
            c.listen = v;
        }
        if let Some(v) = env("PGRST_DB_URI") {
            c.db_uri = v;
        }
        c.jwt_secret = env("PGRST_JWT_SECRET").filter(|s| !s.is_empty());
        if let Some(v) = env("PGRST_DB_SCHEMAS") {
            c.schema = v;
        }
        if let Some(v) = env("PGRST_DB_ANON_ROLE") {
            c.anon_role = v;
        }
        if let Some(v) = env("PGRST_DB_POOL") {
            c.pool_size = parse_num(&v, "PGRST_DB_POOL")?;
        }
        if let Some(v) = env("PGRST_DB_POOL_ACQUISITION_TIMEOUT") {
            c.pool_timeout =
                Duration::from_secs(parse_num(&v, "PGRST_DB_POOL_ACQUISITION_TIMEOUT")? as u64);
        }
        let list = |v: String| -> Vec<String> {
            v.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect()
        };
        if let Some(v) = env("TOLLGATE_GATEWAY_SECRET_KEYS") {
            c.secret_keys = list(v);
        }
        if let Some(v) = env("TOLLGATE_GATEWAY_PUBLISHABLE_KEYS") {
            c.publishable_keys = list(v);
        }
        if let Some(v) = env("TOLLGATE_GATEWAY_REQUIRE_APIKEY") {
            c.require_apikey = matches!(v.as_str(), "1" | "true" | "yes");
        }

        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("{name} needs a value")),
                }
            };
            match flag {
                "-h" | "--help" => return Ok(Parsed::Help),
                "--listen" => c.listen = value(flag)?,
                "--db-uri" => c.db_uri = value(flag)?,
                "--jwt-secret" => c.jwt_secret = Some(value(flag)?).filter(|s| !s.is_empty()),
                "--schema" => c.schema = value(flag)?,
                "--anon-role" => c.anon_role = value(flag)?,
                "--pool-size" => c.pool_size = parse_num(&value(flag)?, flag)?,
                "--pool-timeout" => {
                    c.pool_timeout = Duration::from_secs(parse_num(&value(flag)?, flag)? as u64)
                }
                "--require-apikey" => c.require_apikey = true,
                "--secret-key" => c.secret_keys.push(value(flag)?),
                "--publishable-key" => c.publishable_keys.push(value(flag)?),
                "--quiet" => c.quiet = true,
                other => return Err(format!("unknown argument `{other}` (see --help)")),
            }
        }

        c.schema = c.schema.trim().to_string();
        if c.schema.is_empty() || c.schema.contains(',') {
            return Err(format!(
                "exactly one exposed schema is supported, got `{}`",
                c.schema
            ));
        }
        if c.pool_size == 0 {
            return Err("the pool size must be at least 1".into());
        }
        if let Some(s) = &c.jwt_secret {
            if s.len() < 32 {
                return Err("the JWT secret must be at least 32 characters long".into());
            }
        }
        if let Some(k) = c.secret_keys.iter().find(|k| !k.starts_with("sb_secret_")) {
            return Err(format!("a secret API key starts with `sb_secret_`, got `{}...`", k.chars().take(6).collect::<String>()));
        }
        if let Some(k) = c.publishable_keys.iter().find(|k| !k.starts_with("sb_publishable_")) {
            return Err(format!(
                "a publishable API key starts with `sb_publishable_`, got `{}...`",
                k.chars().take(6).collect::<String>()
            ));
        }
        if c.require_apikey && c.jwt_secret.is_none() {
            return Err("--require-apikey needs a JWT secret to check the keys with".into());
        }
        Ok(Parsed::Run(c))
    }
}

fn parse_num(v: &str, name: &str) -> Result<usize, String> {
    v.trim()
        .parse::<usize>()
        .map_err(|_| format!("{name}: `{v}` is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_win_over_env() {
        let env = |k: &str| match k {
            "PGRST_DB_URI" => Some("postgres://a@h/db".to_string()),
            "PGRST_JWT_SECRET" => Some("x".repeat(32)),
            "PGRST_DB_POOL" => Some("3".to_string()),
            _ => None,
        };
        let Parsed::Run(c) = Config::parse(
            &args(&["--db-uri=postgres://b@h/db", "--pool-size", "7"]),
            env,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.db_uri, "postgres://b@h/db");
        assert_eq!(c.pool_size, 7);
        assert_eq!(c.jwt_secret.as_deref(), Some("x".repeat(32).as_str()));
        assert_eq!(c.listen, "127.0.0.1:54321");
    }

    #[test]
    fn rejects_bad_input() {
        let none = |_: &str| None;
        assert!(Config::parse(&args(&["--bogus"]), none).is_err());
        assert!(Config::parse(&args(&["--jwt-secret", "short"]), none).is_err());
        assert!(Config::parse(&args(&["--schema", "a,b"]), none).is_err());
        assert!(Config::parse(&args(&["--pool-size"]), none).is_err());
        assert!(Config::parse(&args(&["--require-apikey"]), none).is_err());
        assert_eq!(Config::parse(&args(&["-h"]), none).unwrap(), Parsed::Help);
    }
}
