//! The gateway against a real PostgreSQL: JWT roles, RLS through request.jwt.claims,
//! filters, upserts, return preferences, singular responses, RPC with named arguments,
//! PostgREST's error codes and statuses, one transaction per request.
//!
//! All tests share one cluster and one gateway (started on first use); each test works
//! on its own rows so they can run in parallel.

mod common;

use common::{bearer, jwt, jwt_with, now, Env};
use serde_json::{json, Value};
use std::sync::OnceLock;

const USER_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const USER_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

const SCHEMA: &str = r#"
create table items (
  id bigint primary key,
  name text not null unique,
  qty int not null default 0,
  tags text[],
  meta jsonb,
  created_at timestamptz not null default now()
);
insert into items (id, name, qty, tags) values
  (1, 'apple', 5, '{red,fruit}'), (2, 'banana', 0, null), (3, 'cherry, dark', 12, '{red}');

create table item_refs (id bigserial primary key, item_id bigint not null references items(id));

create table notes (
  id bigserial primary key,
  owner uuid not null default auth.uid(),
  body text not null
);
alter table notes enable row level security;
create policy notes_select on notes for select to authenticated using (owner = auth.uid());
create policy notes_insert on notes for insert to authenticated with check (owner = auth.uid());
create policy notes_update on notes for update to authenticated using (owner = auth.uid()) with check (owner = auth.uid());
insert into notes (owner, body) values
  ('aaaaaaaa-0000-4000-8000-000000000001', 'a1'),
  ('aaaaaaaa-0000-4000-8000-000000000001', 'a2'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'b1');

create table secrets (id int primary key, v text);
revoke all on secrets from anon, authenticated;
insert into secrets values (1, 'hidden');

create table ledger (id bigserial primary key, account text not null, amount bigint not null);

create table balances (
  account text not null,
  period text not null,
  amount bigint not null,
  note text,
  primary key (account, period)
);

create table codes (code text not null unique, label text);

create table bulk (id int primary key, label text not null);

create function add_them(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function greet(name text, punct text default '!') returns text language sql immutable
  as $$ select 'hi ' || name || punct $$;
create function squares(n int) returns setof int language sql immutable
  as $$ select i * i from generate_series(1, n) as i $$;
create function items_over(p_qty int) returns setof items language sql stable
  as $$ select * from items where qty > p_qty order by id $$;
create function item_by_id(p_id bigint) returns items language sql stable
  as $$ select * from items where id = p_id $$;
create function pair(x int, out doubled int, out label text) language sql immutable
  as $$ select x * 2, 'n' || x $$;
create function take_many(ids bigint[], who uuid, meta jsonb, at timestamptz) returns json language sql immutable
  as $$ select json_build_object('n', cardinality(ids), 'who', who, 'k', meta -> 'k', 'year', extract(year from at at time zone 'UTC')) $$;
create function whole_body(json) returns json language sql immutable as $$ select $1 $$;
create function nothing() returns void language plpgsql as $$ begin end $$;
create function ledger_add(p_account text, p_amount bigint) returns bigint language plpgsql as $$
declare new_id bigint;
begin
  insert into ledger (account, amount) values (p_account, p_amount) returning id into new_id;
  return new_id;
end $$;
create function ledger_add_then_fail(p_account text, p_amount bigint) returns void language plpgsql as $$
begin
  insert into ledger (account, amount) values (p_account, p_amount);
  raise exception 'refused after insert' using detail = 'nothing may remain', hint = 'retry later';
end $$;
create function pay_up(p_needed bigint) returns void language plpgsql as $$
begin
  raise sqlstate 'PT402' using message = 'Payment Required', detail = format('needed %s', p_needed), hint = 'buy credits';
end $$;
create function sensitive() returns text language sql as $$ select 'secret' $$;
revoke execute on function sensitive() from public, anon, authenticated;
grant execute on function sensitive() to service_role;
create function whoami() returns json language sql stable as $$
  select json_build_object(
    'uid', auth.uid(), 'role', auth.role(), 'email', auth.email(), 'current_user', current_user,
    'method', current_setting('request.method', true), 'path', current_setting('request.path', true),
    'x_test', current_setting('request.headers', true)::json ->> 'x-test',
    'cookie_k', current_setting('request.cookies', true)::json ->> 'k',
    'claims', auth.jwt())
$$;
"#;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::start("rest", SCHEMA, &[]))
}

fn user(sub: &str) -> String {
    bearer(&jwt(
        json!({"role": "authenticated", "sub": sub, "email": format!("{}@example.test", &sub[..4]), "aud": "authenticated", "exp": now() + 600}),
    ))
}

fn service() -> String {
    bearer(&jwt(json!({"role": "service_role"})))
}

#[test]
fn health_and_help() {
    let e = env();
    let r = e.get("/", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let tables = r.json()["tables"].clone();
    assert!(
        tables.as_array().unwrap().contains(&json!("items")),
        "{tables}"
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-gateway"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    assert!(text.contains("LOCAL STAND-IN for PostgREST"), "{text}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-gateway"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // Outside /rest/v1 there is nothing.
    assert_eq!(e.req("GET", "/../../elsewhere", &[], None).status, 404);
}

#[test]
fn jwt_roles() {
    let e = env();
    let who = |headers: &[(&str, &str)]| e.get("/rpc/whoami", headers);

    // No JWT: the anonymous role, claims {"role": "anon"}.
    let r = who(&[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["current_user"].as_str(), v["role"].as_str()),
        (Some("anon"), Some("anon"))
    );
    assert!(v["uid"].is_null());
    assert_eq!(v["claims"], json!({"role": "anon"}));

    let a = user(USER_A);
    let v = who(&[("Authorization", &a)]).json();
    assert_eq!(v["current_user"], "authenticated");
    assert_eq!(v["uid"], USER_A);
    assert_eq!(v["email"], "aaaa@example.test");

    let s = service();
    assert_eq!(
        who(&[("Authorization", &s)]).json()["current_user"],
        "service_role"
    );
    // Supabase's gateway: the apikey is the token when there is no Authorization header.
    let key = jwt(json!({"role": "service_role"}));
    assert_eq!(
        who(&[("apikey", &key)]).json()["current_user"],
        "service_role"
    );
    let anon_key = jwt(json!({"role": "anon"}));
    assert_eq!(
        who(&[("apikey", &anon_key), ("Authorization", &a)]).json()["current_user"],
        "authenticated"
    );
    // A token without a role claim runs as the anonymous role.
    assert_eq!(
        who(&[("Authorization", &bearer(&jwt(json!({"sub": USER_A}))))]).json()["current_user"],
        "anon"
    );

    // Wrong signature.
    let forged = bearer(&jwt_with(
        json!({"role": "service_role"}),
        "some-other-secret-that-is-long-enough-1234",
    ));
    let r = who(&[("Authorization", &forged)]);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "PGRST301"),
        "{}",
        r.body
    );
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    // Expired (beyond the 30 s clock skew).
    let expired = bearer(&jwt(
        json!({"role": "authenticated", "sub": USER_A, "exp": now() - 120}),
    ));
    let r = who(&[("Authorization", &expired)]);
    assert_eq!((r.status, r.code().as_str()), (401, "PGRST303"));
    assert_eq!(r.json()["message"], "JWT expired");
    // Not a JWT at all.
    let r = who(&[("Authorization", "Bearer not-a-jwt")]);
    assert_eq!((r.status, r.code().as_str()), (401, "PGRST301"));
    let r = who(&[("apikey", "not-a-jwt")]);
    assert_eq!(r.status, 401);
    // A role that does not exist.
    let r = who(&[("Authorization", &bearer(&jwt(json!({"role": "superhero"}))))]);
    assert_eq!((r.status, r.code().as_str()), (401, "22023"));
    // An expired token is refused before anything runs: nothing is written.
    let r = e.post(
        "/rpc/ledger_add",
        &[("Authorization", &expired)],
        r#"{"p_account":"jwt-expired","p_amount":1}"#,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        e.sql("select count(*) from ledger where account = 'jwt-expired'"),
        "0"
    );
}

#[test]
fn rls_reads_claims_through_auth_uid() {
    let e = env();
    let (a, b) = (user(USER_A), user(USER_B));
    let r = e.get(
        "/notes?select=owner,body&order=body",
        &[("Authorization", &a)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"owner": USER_A, "body": "a1"}, {"owner": USER_A, "body": "a2"}])
    );
    let r = e.get("/notes?select=body", &[("Authorization", &b)]);
    assert_eq!(r.json(), json!([{"body": "b1"}]));
    // Anonymous: no policy grants anything.
    assert_eq!(e.get("/notes", &[]).json(), json!([]));
    // The service role bypasses RLS.
    let r = e.get(
        "/notes?select=body&body=in.(a1,a2,b1)&order=body",
        &[("Authorization", &service())],
    );
    assert_eq!(
        r.json(),
        json!([{"body": "a1"}, {"body": "a2"}, {"body": "b1"}])
    );

    // Writing a row for someone else violates the policy (403 for a signed-in user).
    let r = e.post(
        "/notes",
        &[("Authorization", &a)],
        &format!(r#"{{"owner":"{USER_B}","body":"forged"}}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (403, "42501"), "{}", r.body);
    // Own rows: the owner defaults to auth.uid().
    let r = e.post(
        "/notes",
        &[("Authorization", &b), ("Prefer", "return=representation")],
        r#"{"body":"b-new"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()[0]["owner"], USER_B);
    // Someone else's rows are invisible to PATCH: nothing changes.
    let r = e.req(
        "PATCH",
        "/notes?body=eq.a1",
        &[("Authorization", &b)],
        Some(r#"{"body":"hijacked"}"#),
    );
    assert_eq!(r.status, 204);
    assert_eq!(e.sql("select count(*) from notes where body = 'a1'"), "1");
}

#[test]
fn insufficient_privilege_is_401_for_anon_and_403_when_signed_in() {
    let e = env();
    let r = e.get("/secrets", &[]);
    assert_eq!((r.status, r.code().as_str()), (401, "42501"), "{}", r.body);
    assert!(r.header("www-authenticate").is_some());
    let r = e.get("/secrets", &[("Authorization", &user(USER_A))]);
    assert_eq!((r.status, r.code().as_str()), (403, "42501"));
    let r = e.get("/secrets", &[("Authorization", &service())]);
    assert_eq!(r.json(), json!([{"id": 1, "v": "hidden"}]));
    // Functions too.
    assert_eq!(e.post("/rpc/sensitive", &[], "{}").status, 401);
    assert_eq!(
        e.post("/rpc/sensitive", &[("Authorization", &user(USER_A))], "{}")
            .status,
        403
    );
    assert_eq!(
        e.post("/rpc/sensitive", &[("Authorization", &service())], "{}")
            .json(),
        json!("secret")
    );
}

#[test]
fn filters_order_limit_select() {
    let e = env();
    let ids = |path: &str| -> Vec<i64> {
        let r = e.get(path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("/items?id=eq.2"), vec![2]);
    assert_eq!(ids("/items?id=in.(1,3)&order=id"), vec![1, 3]);
    assert_eq!(ids("/items?id=not.in.(1,3)&id=lte.3"), vec![2]);
    assert_eq!(ids("/items?id=neq.2&id=lte.3&order=id.desc"), vec![3, 1]);
    assert_eq!(ids("/items?qty=gt.0&qty=lt.10&id=lte.3"), vec![1]);
    assert_eq!(ids("/items?qty=gte.5&id=lte.3&order=qty.desc"), vec![3, 1]);
    assert_eq!(ids("/items?tags=is.null&id=lte.3"), vec![2]);
    assert_eq!(ids("/items?tags=not.is.null&id=lte.3&order=id"), vec![1, 3]);
    assert_eq!(ids("/items?name=like.b*"), vec![2]);
    assert_eq!(ids("/items?name=ilike.APP*"), vec![1]);
    // Quoted list values keep their commas.
    assert_eq!(
        ids("/items?name=in.(%22cherry,%20dark%22,apple)&order=id"),
        vec![1, 3]
    );
    assert_eq!(ids("/items?id=in.()"), Vec::<i64>::new());
    assert_eq!(ids("/items?id=lte.3&order=id&limit=1&offset=1"), vec![2]);
    // Array and JSON columns filter with their own types.
    assert_eq!(ids("/items?tags=eq.%7Bred%7D"), vec![3]);

    let r = e.get("/items?select=ident:id,name&id=eq.1", &[]);
    assert_eq!(r.json(), json!([{"ident": 1, "name": "apple"}]));
    assert_eq!(r.header("content-range"), Some("0-0/*"));
    let r = e.get(
        "/items?select=id&id=lte.3&order=id&limit=2",
        &[("Prefer", "count=exact")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("0-1/3"));
    let r = e.get("/items?id=eq.999", &[]);
    assert_eq!(
        (r.json(), r.header("content-range")),
        (json!([]), Some("*/*"))
    );
    // HEAD: same status and headers, no body.
    let r = e.req("HEAD", "/items?id=eq.1", &[], None);
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-range")),
        (200, "", Some("0-0/*"))
    );

    // Values are parameters: a hostile value is just a value.
    let r = e.get(
        "/items?name=eq.x%27)%3B%20drop%20table%20items%3B%20--",
        &[],
    );
    assert_eq!(r.json(), json!([]));
    assert_eq!(e.sql("select count(*) > 0 from items"), "t");
    // Unknown names never reach SQL.
    let r = e.get("/items?nope=eq.1", &[]);
    assert_eq!((r.status, r.code().as_str()), (400, "42703"));
    let r = e.get(
        "/items?select=id,%22name%22%22;%20drop%20table%20items;--%22",
        &[],
    );
    assert_eq!((r.status, r.code().as_str()), (400, "42703"));
    let r = e.get("/no_such_table", &[]);
    assert_eq!((r.status, r.code().as_str()), (404, "PGRST205"));
    let r = e.get("/items%22;drop%20table%20items;--", &[]);
    assert_eq!((r.status, r.code().as_str()), (404, "PGRST205"));
    // Malformed input: PostgREST's codes.
    assert_eq!(e.get("/items?id=equals.1", &[]).code(), "PGRST100");
    assert_eq!(e.get("/items?limit=ten", &[]).code(), "PGRST100");
    let r = e.get("/items?id=eq.abc", &[]);
    assert_eq!((r.status, r.code().as_str()), (400, "22P02"));
    let r = e.get("/items", &[("Accept", "text/csv")]);
    assert_eq!((r.status, r.code().as_str()), (406, "PGRST107"));
    assert_eq!(e.get("/items?select=id,refs(*)", &[]).code(), "PGRST127");
}

#[test]
fn upsert_merge_and_ignore_duplicates() {
    let e = env();
    let s = service();
    let merge = [
        ("Authorization", s.as_str()),
        (
            "Prefer",
            "resolution=merge-duplicates, return=representation",
        ),
    ];
    let r = e.post("/balances", &merge, r#"[{"account":"up-1","period":"2026-03","amount":10},{"account":"up-1","period":"2026-04","amount":20}]"#);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(
        r.header("preference-applied"),
        Some("return=representation, resolution=merge-duplicates")
    );
    // Same key again: an update (200, nothing was inserted), by the primary key.
    let r = e.post(
        "/balances",
        &merge,
        r#"{"account":"up-1","period":"2026-03","amount":11,"note":"fixed"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!([{"account": "up-1", "period": "2026-03", "amount": 11, "note": "fixed"}])
    );
    assert_eq!(e.sql("select string_agg(period || '=' || amount, ',' order by period) from balances where account = 'up-1'"), "2026-03=11,2026-04=20");

    // ignore-duplicates: existing rows stay as they are, new ones go in.
    let ignore = [
        ("Authorization", s.as_str()),
        (
            "Prefer",
            "resolution=ignore-duplicates,return=representation",
        ),
    ];
    let r = e.post("/balances?on_conflict=account,period", &ignore, r#"[{"account":"up-1","period":"2026-03","amount":99},{"account":"up-1","period":"2026-05","amount":30}]"#);
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json(),
        json!([{"account": "up-1", "period": "2026-05", "amount": 30, "note": null}])
    );
    assert_eq!(
        e.sql("select amount from balances where account = 'up-1' and period = '2026-03'"),
        "11"
    );

    // on_conflict naming a unique column of a table without a primary key.
    let m = [
        ("Authorization", s.as_str()),
        ("Prefer", "resolution=merge-duplicates"),
    ];
    assert_eq!(
        e.post(
            "/codes?on_conflict=code",
            &m,
            r#"{"code":"c-1","label":"one"}"#
        )
        .status,
        201
    );
    let r = e.post(
        "/codes?on_conflict=code",
        &m,
        r#"{"code":"c-1","label":"uno"}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(e.sql("select label from codes where code = 'c-1'"), "uno");
    // No conflict target at all is refused rather than guessed.
    assert_eq!(e.post("/codes", &m, r#"{"code":"c-2"}"#).status, 400);
    // on_conflict that is not a unique key: PostgreSQL's own error.
    let r = e.post(
        "/codes?on_conflict=label",
        &m,
        r#"{"code":"c-3","label":"x"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "42P10"));
    // Without a resolution preference a duplicate is a conflict.
    let r = e.post(
        "/codes",
        &[("Authorization", s.as_str())],
        r#"{"code":"c-1","label":"again"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (409, "23505"));
}

#[test]
fn return_minimal_and_representation() {
    let e = env();
    let s = service();
    let auth = ("Authorization", s.as_str());
    let r = e.post("/items", &[auth], r#"{"id":100,"name":"rep-minimal"}"#);
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (201, "", None)
    );
    let r = e.post(
        "/items",
        &[auth, ("Prefer", "return=minimal")],
        r#"{"id":101,"name":"rep-minimal-2"}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    assert_eq!(r.header("preference-applied"), Some("return=minimal"));
    let r = e.post(
        "/items?select=id,qty",
        &[auth, ("Prefer", "return=representation")],
        r#"[{"id":102,"name":"rep-a","qty":0},{"id":103,"name":"rep-b","qty":7}]"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json(),
        json!([{"id": 102, "qty": 0}, {"id": 103, "qty": 7}])
    );
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    // Columns the client sends are typed by the table: arrays, JSON, timestamps.
    let r = e.post(
        "/items?select=tags,meta,created_at",
        &[auth, ("Prefer", "return=representation")],
        r#"{"id":104,"name":"rep-typed","tags":["x","y"],"meta":{"k":[1,2.50]},"created_at":"2026-03-01T00:00:00Z"}"#,
    );
    assert_eq!(
        r.json(),
        json!([{"tags": ["x", "y"], "meta": {"k": [1, 2.50]}, "created_at": "2026-03-01T00:00:00+00:00"}])
    );
    // Non-uniform bulk keys are refused, unknown columns too.
    let r = e.post("/items", &[auth], r#"[{"id":105,"name":"x"},{"id":106}]"#);
    assert_eq!((r.status, r.code().as_str()), (400, "PGRST102"));
    let r = e.post("/items", &[auth], r#"{"id":105,"nam":"typo"}"#);
    assert_eq!((r.status, r.code().as_str()), (400, "PGRST204"));
    // ?columns= picks the keys (missing ones become NULL / default per column list).
    let r = e.post(
        "/items?columns=id,name&select=id,name,qty",
        &[auth, ("Prefer", "return=representation")],
        r#"[{"id":105,"name":"col-a","extra":1},{"id":106,"name":"col-b"}]"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json(),
        json!([{"id": 105, "name": "col-a", "qty": 0}, {"id": 106, "name": "col-b", "qty": 0}])
    );

    let r = e.req(
        "PATCH",
        "/items?id=eq.102",
        &[auth, ("Prefer", "return=representation")],
        Some(r#"{"qty":3}"#),
    );
    assert_eq!((r.status, r.json()[0]["qty"].clone()), (200, json!(3)));
    let r = e.req(
        "PATCH",
        "/items?id=in.(102,103)",
        &[auth],
        Some(r#"{"qty":4}"#),
    );
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(
        e.sql("select sum(qty) from items where id in (102, 103)"),
        "8"
    );
    let r = e.req(
        "DELETE",
        "/items?id=eq.102&select=id",
        &[auth, ("Prefer", "return=representation")],
        None,
    );
    assert_eq!((r.status, r.json()), (200, json!([{"id": 102}])));
    let r = e.req("DELETE", "/items?id=eq.103", &[auth], None);
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(
        e.sql("select count(*) from items where id in (102, 103)"),
        "0"
    );
}

#[test]
fn singular_responses() {
    let e = env();
    let s = service();
    let one = ("Accept", "application/vnd.pgrst.object+json");
    let r = e.get("/items?id=eq.1&select=id,name", &[one]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": 1, "name": "apple"}));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/vnd.pgrst.object+json"));
    let r = e.get("/items?id=eq.999", &[one]);
    assert_eq!((r.status, r.code().as_str()), (406, "PGRST116"));
    assert_eq!(r.json()["details"], "The result contains 0 rows");
    let r = e.get("/items?id=lte.3", &[one]);
    assert_eq!(
        (r.status, r.json()["details"].clone()),
        (406, json!("The result contains 3 rows"))
    );

    // A write that would not yield exactly one row is rolled back.
    let r = e.post(
        "/bulk",
        &[
            ("Authorization", &s),
            one,
            ("Prefer", "return=representation"),
        ],
        r#"[{"id":1,"label":"x"},{"id":2,"label":"y"}]"#,
    );
    assert_eq!(r.status, 406);
    assert_eq!(e.sql("select count(*) from bulk where id in (1, 2)"), "0");
    let r = e.post(
        "/bulk",
        &[
            ("Authorization", &s),
            one,
            ("Prefer", "return=representation"),
        ],
        r#"{"id":3,"label":"z"}"#,
    );
    assert_eq!((r.status, r.json()), (201, json!({"id": 3, "label": "z"})));
    e.sql("insert into bulk values (4, 'p'), (5, 'p')");
    let r = e.req(
        "PATCH",
        "/bulk?label=eq.p",
        &[("Authorization", &s), one],
        Some(r#"{"label":"q"}"#),
    );
    assert_eq!(r.status, 406);
    assert_eq!(e.sql("select count(*) from bulk where label = 'p'"), "2");
    // A set-returning function asked for one object.
    assert_eq!(
        e.post("/rpc/items_over", &[one], r#"{"p_qty":10}"#).json()["id"],
        3
    );
    assert_eq!(
        e.post("/rpc/items_over", &[one], r#"{"p_qty":0}"#).status,
        406
    );
}

#[test]
fn rpc_named_arguments_and_return_shapes() {
    let e = env();
    let call = |f: &str, body: &str| {
        let r = e.post(&format!("/rpc/{f}"), &[], body);
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        r.json()
    };
    // Named: the order of the keys does not matter.
    assert_eq!(call("add_them", r#"{"b":2,"a":40}"#), json!(42));
    // Defaults may be left out.
    assert_eq!(call("greet", r#"{"name":"ana"}"#), json!("hi ana!"));
    assert_eq!(
        call("greet", r#"{"name":"ana","punct":"?"}"#),
        json!("hi ana?")
    );
    assert_eq!(call("squares", r#"{"n":3}"#), json!([1, 4, 9]));
    let over = call("items_over", r#"{"p_qty":4}"#);
    assert_eq!(
        over.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"].as_i64().unwrap() <= 3)
            .count(),
        2
    );
    assert_eq!(call("item_by_id", r#"{"p_id":1}"#)["name"], "apple");
    assert_eq!(
        call("pair", r#"{"x":21}"#),
        json!({"doubled": 42, "label": "n21"})
    );
    // Arguments take the parameters' types: arrays, uuid, jsonb, timestamptz.
    assert_eq!(
        call(
            "take_many",
            &format!(
                r#"{{"ids":[1,2,3],"who":"{USER_A}","meta":{{"k":"v"}},"at":"2026-03-01T12:00:00Z"}}"#
            )
        ),
        json!({"n": 3, "who": USER_A, "k": "v", "year": 2026})
    );
    // A single unnamed json parameter receives the whole body.
    assert_eq!(
        call("whole_body", r#"{"anything":[1,{"goes":true}]}"#),
        json!({"anything": [1, {"goes": true}]})
    );
    // GET passes the arguments as query parameters.
    assert_eq!(e.get("/rpc/add_them?a=1&b=2", &[]).json(), json!(3));
    // void: 204 and no body.
    let r = e.post("/rpc/nothing", &[], "");
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    // The request settings reach the function.
    let r = e.post(
        "/rpc/whoami",
        &[("X-Test", "hello"), ("Cookie", "k=v; other=1")],
        "{}",
    );
    let v = r.json();
    assert_eq!(
        (v["method"].as_str(), v["path"].as_str()),
        (Some("POST"), Some("/rpc/whoami"))
    );
    assert_eq!(
        (v["x_test"].as_str(), v["cookie_k"].as_str()),
        (Some("hello"), Some("v"))
    );
}

#[test]
fn rpc_errors_map_to_postgrest_statuses() {
    let e = env();
    let r = e.post(
        "/rpc/ledger_add_then_fail",
        &[],
        r#"{"p_account":"err-p0001","p_amount":5}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"code": "P0001", "message": "refused after insert", "details": "nothing may remain", "hint": "retry later"})
    );
    let r = e.post("/rpc/pay_up", &[], r#"{"p_needed":30}"#);
    assert_eq!(r.status, 402);
    assert_eq!(
        r.json(),
        json!({"code": "PT402", "message": "Payment Required", "details": "needed 30", "hint": "buy credits"})
    );
    let r = e.post("/rpc/no_such_function", &[], r#"{"a":1}"#);
    assert_eq!((r.status, r.code().as_str()), (404, "PGRST202"));
    assert_eq!(
        r.json()["message"],
        "Could not find the function public.no_such_function(a) in the schema cache"
    );
    // Wrong or missing argument names: no function matches.
    let r = e.post("/rpc/add_them", &[], r#"{"a":1,"c":2}"#);
    assert_eq!((r.status, r.code().as_str()), (404, "PGRST202"));
    assert_eq!(e.post("/rpc/add_them", &[], r#"{"a":1}"#).status, 404);
    // A value of the wrong type: PostgreSQL's 22P02, 400.
    let r = e.post("/rpc/add_them", &[], r#"{"a":"one","b":2}"#);
    assert_eq!((r.status, r.code().as_str()), (400, "22P02"));
    // GET runs read-only: a function that writes is refused (25006 -> 405).
    let r = e.get("/rpc/ledger_add?p_account=err-get&p_amount=1", &[]);
    assert_eq!((r.status, r.code().as_str()), (405, "25006"));
    assert_eq!(
        e.sql("select count(*) from ledger where account = 'err-get'"),
        "0"
    );
    // Methods other than GET/POST on RPC.
    let r = e.req("PATCH", "/rpc/add_them", &[], Some("{}"));
    assert_eq!((r.status, r.code().as_str()), (405, "PGRST101"));
    // Malformed body.
    let r = e.post("/rpc/add_them", &[], "{not json");
    assert_eq!((r.status, r.code().as_str()), (400, "PGRST102"));
}

#[test]
fn one_transaction_per_request() {
    let e = env();
    // The function inserted a row before raising: the whole request rolled back.
    let r = e.post(
        "/rpc/ledger_add_then_fail",
        &[],
        r#"{"p_account":"tx-1","p_amount":5}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        e.sql("select count(*) from ledger where account = 'tx-1'"),
        "0"
    );
    // A successful call commits.
    let r = e.post(
        "/rpc/ledger_add",
        &[],
        r#"{"p_account":"tx-2","p_amount":7}"#,
    );
    assert_eq!(r.status, 200);
    assert!(r.json().as_i64().unwrap() > 0);
    assert_eq!(
        e.sql("select sum(amount) from ledger where account = 'tx-2'"),
        "7"
    );
    // A bulk insert whose second row fails leaves the first one out too.
    let s = service();
    let r = e.post(
        "/bulk",
        &[("Authorization", &s)],
        r#"[{"id":50,"label":"ok"},{"id":51,"label":null}]"#,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "23502"));
    assert_eq!(e.sql("select count(*) from bulk where id in (50, 51)"), "0");
}

#[test]
fn constraint_violations_are_409() {
    let e = env();
    let s = service();
    let r = e.post(
        "/items",
        &[("Authorization", &s)],
        r#"{"id":200,"name":"apple"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (409, "23505"));
    let v = r.json();
    assert_eq!(v["details"], "Key (name)=(apple) already exists.");
    assert!(v["message"].as_str().unwrap().contains("items_name_key"));
    assert!(v.get("hint").is_some());
    let r = e.post("/item_refs", &[("Authorization", &s)], r#"{"item_id":999}"#);
    assert_eq!((r.status, r.code().as_str()), (409, "23503"));
}

#[test]
fn schema_changes_are_picked_up() {
    let e = env();
    e.sql("create table late_table (id int primary key, v text); insert into late_table values (1, 'late');");
    assert_eq!(
        e.get("/late_table", &[]).json(),
        json!([{"id": 1, "v": "late"}])
    );
    e.sql("alter table late_table add column extra int default 9");
    assert_eq!(
        e.get("/late_table?select=extra", &[]).json(),
        json!([{"extra": 9}])
    );
    e.sql("create function late_fn(x int) returns int language sql as $$ select x + 1 $$");
    assert_eq!(e.post("/rpc/late_fn", &[], r#"{"x":1}"#).json(), json!(2));
    // NOTIFY pgrst, 'reload schema' (as migrations do) refreshes a changed return type.
    e.sql("drop function late_fn(int); create function late_fn(x int) returns text language sql as $$ select 'v' || x $$; notify pgrst, 'reload schema';");
    let mut last = Value::Null;
    for _ in 0..50 {
        last = e.post("/rpc/late_fn", &[], r#"{"x":1}"#).json();
        if last == json!("v1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(last, json!("v1"));
}

#[test]
fn apikey_required_like_supabases_gateway() {
    let e = env();
    let gw = common::spawn_gateway(&e.pg, &["--require-apikey", "--quiet"], false);
    let url = gw.url("/rest/v1/items?id=eq.1");
    let anon_key = jwt(json!({"role": "anon"}));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(&url).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["message"], "No API key found in request");
    let r = agent.get(&url).header("apikey", "nope").call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let mut r = agent.get(&url).header("apikey", &anon_key).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap()).unwrap()[0]["id"],
        1
    );
    drop(gw);
}
