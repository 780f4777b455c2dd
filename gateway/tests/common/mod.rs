//! Shared harness for the gateway's integration tests: a throwaway PostgreSQL cluster on
//! a free port (through the local-stack module, so both are exercised), the Supabase
//! bootstrap, a test schema, and the real `tollgate-gateway` binary in front of it.
//! Nothing is skipped: if PostgreSQL cannot start, the test fails with the reason.

#![allow(dead_code)]

#[path = "../../../xtask/src/stack.rs"]
pub mod stack;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "test-secret-for-the-gateway-suite-0123456789";

pub struct Env {
    pub pg: stack::Pg,
    pub gateway: Option<Supervised>,
    pub base: String,
    agent: ureq::Agent,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The PostgREST error code of an error response.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("could not set up the test stack: {what}: {e}")
}

/// Stops a cluster when dropped (tests that own their cluster directly).
pub struct StopOnDrop<'a>(pub &'a stack::Pg);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

impl Env {
    /// A fresh cluster named `name` under the target's temp dir, bootstrapped, with
    /// `schema_sql` applied as the superuser, and a gateway started with `gateway_args`.
    pub fn start(name: &str, schema_sql: &str, gateway_args: &[&str]) -> Env {
        let root = stack::repo_root().unwrap_or_else(|e| fail("finding the repository", e));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("gateway-{name}"));
        let port = stack::free_port().unwrap_or_else(|e| fail("free port", e));
        let pg = stack::Pg::new(&dir, port).unwrap_or_else(|e| fail("PostgreSQL", e));
        pg.reset()
            .unwrap_or_else(|e| fail("starting PostgreSQL", e));
        let mut env = Env {
            pg,
            gateway: None,
            base: String::new(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        };
        // From here on the cluster is stopped when the environment goes away.
        env.pg
            .psql_file(&root.join("supabase/bootstrap/00_supabase_local.sql"))
            .unwrap_or_else(|e| fail("bootstrap", e));
        let file = env.pg.dir.join("schema.sql");
        std::fs::write(&file, schema_sql).unwrap_or_else(|e| fail("writing schema.sql", e));
        env.pg
            .psql_file(&file)
            .unwrap_or_else(|e| fail("test schema", e));
        let gw = spawn_gateway(&env.pg, gateway_args, true);
        env.base = gw.url("/rest/v1");
        env.gateway = Some(gw);
        env
    }

    /// Sends `method path` with `headers` and an optional JSON body.
    pub fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        macro_rules! with_headers {
            ($b:expr) => {{
                let mut b = $b;
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                b
            }};
        }
        let result = match method {
            "GET" => with_headers!(self.agent.get(&url)).call(),
            "HEAD" => with_headers!(self.agent.head(&url)).call(),
            "DELETE" => with_headers!(self.agent.delete(&url)).call(),
            "POST" => with_headers!(self
                .agent
                .post(&url)
                .header("Content-Type", "application/json"))
            .send(body.unwrap_or("")),
            "PATCH" => with_headers!(self
                .agent
                .patch(&url)
                .header("Content-Type", "application/json"))
            .send(body.unwrap_or("")),
            other => panic!("method {other} not used by the tests"),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.req("GET", path, headers, None)
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.req("POST", path, headers, Some(body))
    }

    /// Runs SQL as the superuser (bypassing the gateway) and returns psql's output.
    pub fn sql(&self, sql: &str) -> String {
        self.pg.psql(sql).unwrap_or_else(|e| panic!("psql: {e}"))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        drop(self.gateway.take());
        let _ = self.pg.stop();
    }
}

/// A gateway run under a supervisor `sh`. The supervisor is the gateway's parent (so the
/// gateway's pid cannot be reused while the supervisor waits for it) and reads a pipe
/// from this test process. When the pipe closes (this value dropped, or the test binary
/// exited: how tests sharing a static environment clean up) it stops the gateway and,
/// for an environment's main gateway, the cluster.
pub struct Supervised {
    pub listen: String,
    pub log_file: PathBuf,
    pipe: Option<ChildStdin>,
    supervisor: Child,
}

impl Supervised {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        drop(self.pipe.take());
        let _ = self.supervisor.wait();
    }
}

const SUPERVISOR: &str = r#"
"$GATEWAY" "$@" </dev/null >"$LOG" 2>&1 &
gw=$!
cat >/dev/null
kill -TERM "$gw" 2>/dev/null
wait "$gw"
if [ -n "$PGSTOP" ]; then sh -c "$PGSTOP" >/dev/null 2>&1; fi
"#;

/// Starts the gateway binary in front of `pg` on a free port with `extra` arguments and
/// waits until it answers. `stops_cluster`: the supervisor also stops the cluster.
pub fn spawn_gateway(pg: &stack::Pg, extra: &[&str], stops_cluster: bool) -> Supervised {
    let port = stack::free_port().unwrap_or_else(|e| fail("free port", e));
    let listen = format!("127.0.0.1:{port}");
    let state = pg.dir.join(format!("gw-{port}"));
    std::fs::create_dir_all(&state).unwrap_or_else(|e| fail("gateway state dir", e));
    let log_file = state.join("gateway.log");
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("tollgate-gateway-supervisor")
        .args([
            "--listen",
            &listen,
            "--db-uri",
            &pg.url("authenticator"),
            "--pool-size",
            "8",
        ])
        .args(extra)
        .env("GATEWAY", env!("CARGO_BIN_EXE_tollgate-gateway"))
        .env("LOG", &log_file)
        .env("PGRST_JWT_SECRET", SECRET)
        .env(
            "PGSTOP",
            if stops_cluster {
                pg.stop_shell_command()
            } else {
                String::new()
            },
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail("gateway supervisor", e));
    let pipe = supervisor.stdin.take();
    let gw = Supervised {
        listen,
        log_file,
        pipe,
        supervisor,
    };
    let mut ready = gw.url("/rest/v1/");
    if extra.contains(&"--require-apikey") {
        ready = format!(
            "{ready}?apikey={}",
            jwt(serde_json::json!({"role": "anon"}))
        );
    }
    stack::wait_ready(&ready, Duration::from_secs(20)).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(&gw.log_file).unwrap_or_default();
        fail("gateway not ready", format!("{e}\n{log}"))
    });
    gw
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 JWT over `claims`, signed with `secret`.
pub fn jwt_with(claims: Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn jwt(claims: Value) -> String {
    jwt_with(claims, SECRET)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
