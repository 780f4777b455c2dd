//! PostgreSQL going away and coming back: the gateway answers 503 (so the sender
//! retries), writes nothing, and serves again once PostgreSQL is back, without a restart.
//! A test binary of its own, since it stops the cluster.

mod common;

use common::{bearer, jwt, Env};
use serde_json::json;
use std::time::Duration;

const SCHEMA: &str = r#"
create table events (id text primary key, n int not null);
insert into events values ('before', 1);
create function record_event(p_id text) returns void language sql as $$ insert into events values (p_id, 1) $$;
create function slow_write(p_id text) returns void language sql as $$
  insert into events values (p_id, 1);
  select pg_sleep(10);
$$;
"#;

#[test]
fn postgres_stopped_is_503_and_recovers() {
    let e = Env::start("outage", SCHEMA, &["--pool-timeout", "2"]);
    let s = bearer(&jwt(json!({"role": "service_role"})));
    let auth = [("Authorization", s.as_str())];
    assert_eq!(e.get("/events", &auth).status, 200);

    // PostgreSQL stops while a request's transaction is open (fast shutdown terminates
    // the backend): 503, and the half-done write is gone.
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| e.post("/rpc/slow_write", &auth, r#"{"p_id":"mid-flight"}"#));
        std::thread::sleep(Duration::from_millis(700));
        e.pg.stop().unwrap();
        let r = slow.join().unwrap();
        assert_eq!(r.status, 503, "{}", r.body);
    });
    // Reads, writes, RPC and the health endpoint all say "unavailable, retry".
    for (method, path, body) in [
        ("GET", "/events", None),
        ("POST", "/events", Some(r#"{"id":"during","n":1}"#)),
        (
            "POST",
            "/rpc/record_event",
            Some(r#"{"p_id":"during-rpc"}"#),
        ),
        ("GET", "/", None),
    ] {
        let r = e.req(method, path, &auth, body);
        assert_eq!(r.status, 503, "{method} {path}: {}", r.body);
        let code = r.code();
        assert!(
            ["PGRST000", "PGRST001", "PGRST002"].contains(&code.as_str()),
            "{method} {path}: {code}"
        );
    }

    // Back up through the shell command other test programs use to restart it.
    let started = std::process::Command::new("sh")
        .arg("-c")
        .arg(e.pg.start_shell_command())
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(e.pg.is_running());
    common::stack::wait_ready(&format!("{}/", e.base), Duration::from_secs(20)).unwrap();
    let r = e.get("/events?order=id", &auth);
    assert_eq!(r.status, 200, "{}", r.body);
    // Nothing from the outage was written; the old row survived the restart.
    assert_eq!(r.json(), json!([{"id": "before", "n": 1}]));
    // Redelivery after the restart is applied once.
    assert_eq!(
        e.post("/rpc/record_event", &auth, r#"{"p_id":"during-rpc"}"#)
            .status,
        204
    );
    assert_eq!(
        e.sql("select string_agg(id, ',' order by id) from events"),
        "before,during-rpc"
    );
}
