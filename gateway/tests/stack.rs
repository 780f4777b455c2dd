//! The local-stack module on the project's own SQL: the bootstrap and every migration
//! apply to an empty cluster and again on top of themselves, and the gateway then serves
//! the resulting schema.

mod common;

use common::stack;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn bootstrap_and_migrations_apply_twice_and_are_served() {
    let root = stack::repo_root().unwrap_or_else(|e| panic!("{e}"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gateway-stack");
    let pg = stack::Pg::new(&dir, stack::free_port().unwrap()).unwrap();
    let _stop = common::StopOnDrop(&pg);
    pg.reset()
        .unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}"));
    // Starting again is a no-op.
    stack::pg_start(&dir, pg.port).unwrap();

    let files = stack::apply_all(&pg, &root, 2).unwrap_or_else(|e| panic!("{e}"));
    assert!(files[0].ends_with("supabase/bootstrap/00_supabase_local.sql"));
    let migrations: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.starts_with(root.join(stack::MIGRATIONS_DIR)))
        .collect();
    let mut sorted = migrations.clone();
    sorted.sort();
    assert_eq!(migrations, sorted, "migrations apply in file-name order");

    // The roles and auth pieces exist.
    assert_eq!(
        pg.psql("select string_agg(rolname, ',' order by rolname) from pg_roles where rolname in ('anon','authenticated','service_role','authenticator')")
            .unwrap(),
        "anon,authenticated,authenticator,service_role"
    );
    assert_eq!(
        pg.psql("select rolbypassrls from pg_roles where rolname = 'service_role'")
            .unwrap(),
        "t"
    );
    assert_eq!(pg.psql("select auth.uid() is null").unwrap(), "t");

    // The gateway serves every table of schema public.
    let mut opts = stack::GatewayOptions::local(&pg);
    opts.listen = format!("127.0.0.1:{}", stack::free_port().unwrap());
    let gw = stack::gateway_start(
        std::path::Path::new(env!("CARGO_BIN_EXE_tollgate-gateway")),
        &opts,
        &dir.join("gw"),
    )
    .unwrap();
    stack::wait_ready(&gw.url("/rest/v1/"), Duration::from_secs(20)).unwrap();
    let (status, body) = stack::http_get(&gw.url("/rest/v1/"), Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tables = pg.psql("select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'").unwrap();
    for t in tables.split(',').filter(|t| !t.is_empty()) {
        assert!(
            listed["tables"].as_array().unwrap().iter().any(|v| v == t),
            "{t} missing from {body}"
        );
    }
    gw.stop().unwrap();
    stack::pg_stop(&dir).unwrap();
    assert!(!pg.is_running());
}
