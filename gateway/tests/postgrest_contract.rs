//! Where the stand-in must answer exactly as PostgREST (Supabase's REST API) does, checked
//! against PostgREST's own sources and documentation (v12.2 / v14.5):
//!
//! - access mode of RPC transactions (docs: references/transactions, "Access Mode on
//!   Functions"; src/PostgREST/Plan.hs `txMode`): POST to a STABLE or IMMUTABLE function
//!   runs READ ONLY;
//! - result shapes (src/PostgREST/SchemaCache.hs `rettype_is_composite`: any OUT, INOUT or
//!   TABLE argument makes the result a row; test/spec/Feature/Query/RpcSpec.hs
//!   "single_out_param", "single_inout_param", "single_column_table_return");
//! - argument types (SchemaCache.hs: `character` and `bit` parameters are read as
//!   `character varying` / `bit varying`; RpcSpec.hs "a proc with bit and char parameters");
//!   arguments read with `json_to_record` over the body as `json`, not `jsonb`
//!   (src/PostgREST/Query/SqlFragment.hs `fromJsonBodyF`);
//! - `response.status` / `response.headers` set by a function (Response.hs
//!   `overrideStatusHeaders`; RpcSpec.hs "send_body_status_403");
//! - `Prefer: count=exact` on RPC (RpcSpec.hs "includes exact count if requested");
//! - the `in` grammar (src/PostgREST/ApiRequest/QueryParams.hs `pListElement`: unquoted
//!   elements are taken verbatim, spaces included);
//! - the error status table (src/PostgREST/Error.hs `pgErrorStatus`) on the paths the
//!   worker depends on, the exact request shapes worker/src/supabase.rs sends, Supabase's
//!   API keys (supabase docs guides/api/api-keys, "Known limitations"), and numbers and
//!   timestamps as PostgreSQL's JSON renders them.
//!
//! One cluster and one gateway for the file (started on first use); tests use their own
//! rows.

mod common;

use common::{bearer, jwt, stack, Env};
use serde_json::{json, Value};
use std::sync::OnceLock;

const SECRET_KEY: &str = "sb_secret_h5_contract_0000000000000000";
const PUBLISHABLE_KEY: &str = "sb_publishable_h5_contract_00000000000";

const SCHEMA: &str = r#"
create table h5_log (id bigserial primary key, tag text not null);
create sequence h5_seq;

create function h5_log_write(p_tag text) returns bigint language sql volatile
  as $$ insert into h5_log (tag) values (p_tag) returning id $$;
-- Declared STABLE / IMMUTABLE but reaching a write through a volatile callee: PostgreSQL
-- lets that through in a read-write transaction, PostgREST's READ ONLY one refuses it.
create function h5_stable_but_writes(p_tag text) returns bigint language plpgsql stable
  as $$ begin return h5_log_write(p_tag); end $$;
create function h5_immutable_nextval() returns bigint language sql immutable
  as $$ select nextval('h5_seq') $$;

create function h5_one_out(x int, out doubled int) language sql immutable as $$ select x * 2 $$;
create function h5_inout(inout x int) language sql immutable as $$ select x + 1 $$;
create function h5_one_col(n int) returns table (k int) language sql immutable
  as $$ select generate_series(1, n) $$;

create function h5_char(p_code character) returns text language sql immutable
  as $$ select p_code::text $$;
create function h5_bit(p_bits bit) returns text language sql immutable
  as $$ select p_bits::text $$;

create function h5_json_keys(p json) returns json language sql immutable
  as $$ select json_agg(k) from json_object_keys(p) as k $$;

create function h5_accepted(p_id int) returns json language plpgsql as $$
begin
  perform set_config('response.status', '202', true);
  perform set_config('response.headers', '[{"X-Queue": "queued"}]', true);
  return json_build_object('id', p_id);
end $$;

create function h5_series(n int) returns setof int language sql immutable
  as $$ select generate_series(1, n) $$;

create table h5_names (id int primary key, name text not null);
insert into h5_names values (1, 'apple'), (2, 'banana'), (3, 'a"b\c'), (4, 'x,y'), (5, 'p(q)'),
  (6, 'a b+c&d%e'), (7, 'ünï.cödé*'), (8, ' banana');

-- The conflicts the worker tells apart (worker/src/supabase.rs StoreError::conflict).
create table h5_keys (k text primary key);
create table h5_refs (id bigserial primary key, k text not null references h5_keys (k));
insert into h5_keys values ('taken');
create function h5_apply(p_expected bigint, p_actual bigint) returns json language plpgsql as $$
begin
  insert into h5_log (tag) values ('h5_apply');
  if p_expected <> p_actual then
    raise sqlstate 'PT409' using message = 'billing state changed concurrently',
      detail = format('expected %s, found %s', p_expected, p_actual), hint = 'fold_stale';
  end if;
  return json_build_object('status', 'applied');
end $$;
create function h5_take_key(p_k text) returns void language sql as $$ insert into h5_keys values (p_k) $$;
create function h5_ref(p_k text) returns void language sql as $$ insert into h5_refs (k) values (p_k) $$;
create function h5_refuse() returns void language plpgsql as $$ begin raise exception 'no such subject'; end $$;
create function h5_strict_miss() returns int language plpgsql as $$
declare v int;
begin select id into strict v from h5_names where id = -1; return v; end $$;

-- Numbers past 2^53 and timestamps, as PostgreSQL's JSON renders them.
create table h5_big (id int primary key, n bigint not null, at timestamptz not null, amount numeric not null);
insert into h5_big values (1, 9007199254740993, '2026-01-02 03:04:05.123456+00', 123456789012345678901234567890.5);
create function h5_echo_big(p_n bigint, p_at timestamptz) returns json language sql immutable
  as $$ select json_build_object('n', p_n, 'at', p_at, 'next', p_n - 1) $$;

-- RLS: a secret key bypasses it, a publishable key does not.
create table h5_private (id int primary key, owner uuid not null, v text);
alter table h5_private enable row level security;
create policy h5_private_own on h5_private for select to anon, authenticated using (owner = auth.uid());
insert into h5_private values (1, 'aaaaaaaa-0000-4000-8000-000000000001', 'one'), (2, 'bbbbbbbb-0000-4000-8000-000000000002', 'two');
create function h5_whoami() returns text language sql stable as $$ select current_user::text $$;
"#;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        Env::start(
            "postgrest-contract",
            SCHEMA,
            &[
                "--secret-key",
                SECRET_KEY,
                "--publishable-key",
                PUBLISHABLE_KEY,
                "--quiet",
            ],
        )
    })
}

fn service() -> String {
    bearer(&jwt(json!({"role": "service_role"})))
}

/// worker/src/supabase.rs `encode_query`, copied (the gateway's tests cannot depend on the
/// worker crate): RFC 3986 unreserved characters plus `*` and `,` pass, the rest is
/// percent-encoded.
fn encode_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// worker/src/supabase.rs `quote_in`, copied.
fn quote_in(v: &str) -> String {
    encode_query(&format!(
        "\"{}\"",
        v.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

fn ids(r: &common::Resp) -> Vec<i64> {
    assert_eq!(r.status, 200, "{}", r.body);
    let mut v: Vec<i64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Transaction access mode
// ---------------------------------------------------------------------------------------

/// PostgREST runs `POST /rpc/f` READ ONLY when `f` is STABLE or IMMUTABLE (docs,
/// references/transactions "Access Mode on Functions": POST + STABLE/IMMUTABLE = READ
/// ONLY; Plan.hs `(Inv, Routine.Stable) -> SQL.Read`). A function mislabelled STABLE that
/// writes through a volatile callee is refused there with 405 / 25006; the stand-in must
/// not let it write, or the mistake only shows in production.
#[test]
fn rpc_post_to_stable_or_immutable_function_runs_read_only() {
    let e = env();
    let s = service();
    let r = e.post(
        "/rpc/h5_stable_but_writes",
        &[("Authorization", &s)],
        r#"{"p_tag":"stable-post"}"#,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (405, "25006"),
        "POST to a STABLE function must run in a READ ONLY transaction: {}",
        r.body
    );
    assert_eq!(
        e.sql("select count(*) from h5_log where tag = 'stable-post'"),
        "0"
    );
    let r = e.post("/rpc/h5_immutable_nextval", &[("Authorization", &s)], "{}");
    assert_eq!(
        (r.status, r.code().as_str()),
        (405, "25006"),
        "POST to an IMMUTABLE function must run in a READ ONLY transaction: {}",
        r.body
    );
}

/// The converse: a VOLATILE function called with POST writes (the worker's writes all go
/// through such functions), and GET stays read only.
#[test]
fn rpc_post_to_volatile_function_writes_and_get_does_not() {
    let e = env();
    let s = service();
    let r = e.post(
        "/rpc/h5_log_write",
        &[("Authorization", &s)],
        r#"{"p_tag":"volatile-post"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().as_i64().is_some_and(|id| id > 0), "{}", r.body);
    assert_eq!(
        e.sql("select count(*) from h5_log where tag = 'volatile-post'"),
        "1"
    );
    let r = e.get(
        "/rpc/h5_log_write?p_tag=volatile-get",
        &[("Authorization", &s)],
    );
    assert_eq!((r.status, r.code().as_str()), (405, "25006"), "{}", r.body);
}

// ---------------------------------------------------------------------------------------
// Result shapes and argument types
// ---------------------------------------------------------------------------------------

/// PostgREST treats a function with any OUT, INOUT or TABLE argument as returning a row
/// (SchemaCache.hs: `proargmodes::text[] && '{t,b,o}'`), even with a single one:
/// `{"doubled": 6}`, not `6` (RpcSpec.hs "returns an object result when there is a single
/// OUT param" / "... single INOUT param").
#[test]
fn rpc_single_out_or_inout_parameter_returns_an_object() {
    let e = env();
    let r = e.post("/rpc/h5_one_out", &[], r#"{"x":3}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"doubled": 6}));
    let r = e.post("/rpc/h5_inout", &[], r#"{"x":1}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"x": 2}));
}

/// `RETURNS TABLE (k int)`: an array of objects `[{"k":1},{"k":2}]` (RpcSpec.hs "returns
/// an object result when there is a single-column TABLE return type").
#[test]
fn rpc_returns_table_with_one_column_returns_objects() {
    let e = env();
    let r = e.post("/rpc/h5_one_col", &[], r#"{"n":2}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!([{"k": 1}, {"k": 2}]));
}

/// A `character` / `bit` parameter has no length; PostgREST reads the argument as
/// `character varying` / `bit varying` (SchemaCache.hs, the CASE on 'character'::regtype
/// and 'bit'::regtype; RpcSpec.hs "modifies the param type from character to character
/// varying"), so the whole value arrives. Read as `character` it is `character(1)`.
#[test]
fn rpc_character_and_bit_parameters_take_values_of_any_length() {
    let e = env();
    let r = e.post("/rpc/h5_char", &[], r#"{"p_code":"abcdefg"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!("abcdefg"));
    let r = e.post("/rpc/h5_bit", &[], r#"{"p_bits":"101010"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!("101010"));
}

/// PostgREST reads RPC arguments with `json_to_record` over the body typed `json`
/// (SqlFragment.hs `fromJsonBodyF`, `includeDefaults = False` for calls), so a `json`
/// parameter receives the object as sent: key order (and duplicates) kept. `jsonb`
/// re-sorts the keys. Judgement call: only visible to functions taking `json`.
#[test]
fn rpc_json_parameter_receives_the_object_as_sent() {
    let e = env();
    let r = e.post("/rpc/h5_json_keys", &[], r#"{"p":{"zeta":1,"alpha":2,"mid":3}}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!(["zeta", "alpha", "mid"]));
}

/// A function may set `response.status` and `response.headers` (PostgREST's Response.hs
/// `overrideStatusHeaders`; RpcSpec.hs "send_body_status_403"). The stand-in's README
/// says unsupported features are refused, never silently ignored; this one is ignored.
#[test]
fn rpc_response_status_and_headers_set_by_the_function_are_honoured() {
    let e = env();
    let r = e.post("/rpc/h5_accepted", &[], r#"{"p_id":7}"#);
    assert_eq!(r.json(), json!({"id": 7}));
    assert_eq!(r.status, 202, "response.status GUC ignored");
    assert_eq!(r.header("x-queue"), Some("queued"), "response.headers GUC ignored");
}

/// `Prefer: count=exact` on a set-returning function: the total in Content-Range
/// (RpcSpec.hs "includes exact count if requested": `0-4/5`). Minor: the worker does not
/// ask for counts.
#[test]
fn rpc_count_exact_sets_the_total_in_content_range() {
    let e = env();
    let r = e.post("/rpc/h5_series", &[("Prefer", "count=exact")], r#"{"n":3}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!([1, 2, 3]));
    assert_eq!(r.header("content-range"), Some("0-2/3"));
}

// ---------------------------------------------------------------------------------------
// Errors on the worker's paths
// ---------------------------------------------------------------------------------------

/// The statuses and bodies worker/src/supabase.rs sorts errors by: PT409 + hint ->
/// Conflict (FoldStale etc.), 23505 / 23503 -> 409 Conflict::Other, P0001 -> 400
/// Rejected, other P0 -> 500 Unavailable (Error.hs `pgErrorStatus`). Each rolls back.
#[test]
fn worker_error_paths_have_postgrests_status_code_and_body() {
    let e = env();
    let s = service();
    let h = [("Authorization", s.as_str()), ("apikey", s.as_str()), ("Accept", "application/json")];
    let r = e.post("/rpc/h5_apply", &h, r#"{"p_expected":4,"p_actual":5}"#);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"code": "PT409", "message": "billing state changed concurrently",
               "details": "expected 4, found 5", "hint": "fold_stale"})
    );
    assert_eq!(
        e.sql("select count(*) from h5_log where tag = 'h5_apply'"),
        "0",
        "a raised PT409 must roll the function's writes back"
    );
    let r = e.post("/rpc/h5_apply", &h, r#"{"p_expected":5,"p_actual":5}"#);
    assert_eq!((r.status, r.json()), (200, json!({"status": "applied"})));

    let r = e.post("/rpc/h5_take_key", &h, r#"{"p_k":"taken"}"#);
    assert_eq!((r.status, r.code().as_str()), (409, "23505"), "{}", r.body);
    let r = e.post("/rpc/h5_ref", &h, r#"{"p_k":"missing"}"#);
    assert_eq!((r.status, r.code().as_str()), (409, "23503"), "{}", r.body);
    let r = e.post("/rpc/h5_refuse", &h, "{}");
    assert_eq!((r.status, r.code().as_str()), (400, "P0001"), "{}", r.body);
    assert_eq!(r.json()["message"], "no such subject");
    let r = e.post("/rpc/h5_strict_miss", &h, "{}");
    assert_eq!((r.status, r.code().as_str()), (500, "P0002"), "{}", r.body);
    // A void function answers 204 with no body (the worker reads an empty 2xx as null).
    let r = e.post("/rpc/h5_take_key", &h, r#"{"p_k":"fresh-key"}"#);
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    // Unknown function / argument names: 404 PGRST202 (the worker's Rejected).
    let r = e.post("/rpc/h5_apply", &h, r#"{"p_expected":1}"#);
    assert_eq!((r.status, r.code().as_str()), (404, "PGRST202"), "{}", r.body);
    let v = r.json();
    for k in ["code", "message", "details", "hint"] {
        assert!(v.get(k).is_some(), "{k} missing from {v}");
    }
}

// ---------------------------------------------------------------------------------------
// GET filters as the worker writes them
// ---------------------------------------------------------------------------------------

/// `eq.` with the worker's percent-encoding: reserved characters, `+`, `&`, `%`, dots,
/// `*` and unicode reach the comparison unchanged (PostgREST's `pSingleVal` takes the rest
/// of the value verbatim after `parseQueryReplacePlus`).
#[test]
fn worker_eq_filters_match_the_exact_value() {
    let e = env();
    let s = service();
    for (id, name) in [
        (3, "a\"b\\c"),
        (4, "x,y"),
        (5, "p(q)"),
        (6, "a b+c&d%e"),
        (7, "ünï.cödé*"),
        (8, " banana"),
    ] {
        let url = format!(
            "/h5_names?select={}&{}=eq.{}",
            encode_query("id,name"),
            encode_query("name"),
            encode_query(name)
        );
        let r = e.get(&url, &[("Authorization", &s), ("apikey", &s)]);
        assert_eq!(ids(&r), vec![id], "eq.{name:?} via {url}");
        assert_eq!(r.json()[0]["name"], name);
    }
}

/// `in.(...)` with the worker's quoting (`"` and `\` escaped with a backslash, every value
/// quoted): commas, quotes, backslashes and parentheses inside values (QueryParams.hs
/// `pQuotedValue`).
#[test]
fn worker_in_filters_with_quoted_values() {
    let e = env();
    let s = service();
    let values = ["a\"b\\c", "x,y", "p(q)", "apple", " banana", "nope"];
    let list: Vec<String> = values.iter().map(|v| quote_in(v)).collect();
    let url = format!("/h5_names?select=id,name&name=in.({})", list.join(","));
    let r = e.get(&url, &[("Authorization", &s)]);
    assert_eq!(ids(&r), vec![1, 3, 4, 5, 8], "{url}");
    // An empty list matches nothing (PostgREST: `= ANY('{}')`).
    let r = e.get("/h5_names?name=in.()", &[("Authorization", &s)]);
    assert_eq!(ids(&r), Vec::<i64>::new());
}

/// Unquoted `in` elements are taken verbatim by PostgREST, spaces included
/// (QueryParams.hs `pListElement = ... many (noneOf ",)")`, no trimming): `in.(apple, banana)`
/// asks for "apple" and " banana". The stand-in trims, so a client that puts spaces
/// after the commas gets other rows locally than in production. Judgement call (the worker
/// quotes every value and sends no spaces).
#[test]
fn in_list_unquoted_elements_keep_their_spaces() {
    let e = env();
    let s = service();
    let r = e.get(
        "/h5_names?select=id&name=in.(apple,%20banana)",
        &[("Authorization", &s)],
    );
    assert_eq!(ids(&r), vec![1, 8], "' banana' (id 8), not 'banana' (id 2)");
}

// ---------------------------------------------------------------------------------------
// Keys and roles
// ---------------------------------------------------------------------------------------

/// Supabase's keys as the worker sends them: a secret key in `apikey` alone runs as
/// `service_role` (RLS bypassed); a legacy service-role JWT goes in both headers; a
/// publishable key is `anon` (RLS applies); a secret key also sent as the bearer is
/// forwarded and refused as not a JWT (Supabase docs, API keys, "Known limitations").
#[test]
fn api_keys_map_to_roles_like_supabase() {
    let e = env();
    let who = |h: &[(&str, &str)]| {
        let r = e.post("/rpc/h5_whoami", h, "{}");
        (r.status, r.body)
    };
    assert_eq!(who(&[("apikey", SECRET_KEY)]), (200, "\"service_role\"".into()));
    let legacy = jwt(json!({"role": "service_role", "iss": "supabase", "exp": common::now() + 3600}));
    let b = bearer(&legacy);
    assert_eq!(
        who(&[("apikey", &legacy), ("Authorization", &b)]),
        (200, "\"service_role\"".into())
    );
    assert_eq!(who(&[("apikey", PUBLISHABLE_KEY)]), (200, "\"anon\"".into()));

    let rows = |h: &[(&str, &str)]| ids(&e.get("/h5_private?select=id", h));
    assert_eq!(rows(&[("apikey", SECRET_KEY)]), vec![1, 2], "service_role bypasses RLS");
    assert_eq!(rows(&[("apikey", PUBLISHABLE_KEY)]), Vec::<i64>::new(), "anon is under RLS");
    let user = bearer(&jwt(json!({"role": "authenticated", "sub": "aaaaaaaa-0000-4000-8000-000000000001", "exp": common::now() + 600})));
    assert_eq!(
        rows(&[("apikey", PUBLISHABLE_KEY), ("Authorization", &user)]),
        vec![1],
        "the user's token decides"
    );

    let as_bearer = bearer(SECRET_KEY);
    let r = e.post(
        "/rpc/h5_whoami",
        &[("apikey", SECRET_KEY), ("Authorization", &as_bearer)],
        "{}",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = e.post(
        "/rpc/h5_whoami",
        &[("apikey", SECRET_KEY), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")],
        "{}",
    );
    assert_eq!(r.status, 401, "secret keys are refused from browsers: {}", r.body);
    let r = e.post("/rpc/h5_whoami", &[("apikey", "sb_secret_not_a_configured_key")], "{}");
    assert_eq!(r.status, 401, "{}", r.body);
}

// ---------------------------------------------------------------------------------------
// Numbers and timestamps
// ---------------------------------------------------------------------------------------

/// JSON numbers past 2^53 and timestamps come out as PostgreSQL's JSON renders them
/// (PostgREST aggregates with json_agg / to_json in the database): exact digits, ISO 8601
/// with the session time zone offset (UTC on Supabase). Arguments: a bigint past 2^53
/// reaches the function exactly; past i64 it is 22003, 400.
#[test]
fn big_numbers_and_timestamps_round_trip_exactly() {
    let e = env();
    let s = service();
    let r = e.get("/h5_big?select=n,at,amount&id=eq.1", &[("Authorization", &s)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("9007199254740993") && r.body.contains("123456789012345678901234567890.5"),
        "digits lost: {}",
        r.body
    );
    assert_eq!(r.json()[0]["n"].as_u64(), Some(9007199254740993));
    assert_eq!(r.json()[0]["at"], "2026-01-02T03:04:05.123456+00:00");

    let r = e.post(
        "/rpc/h5_echo_big",
        &[("Authorization", &s)],
        r#"{"p_n":9223372036854775807,"p_at":"2026-03-04T05:06:07Z"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = r.json();
    assert_eq!(v["n"].as_i64(), Some(i64::MAX));
    assert_eq!(v["next"].as_i64(), Some(i64::MAX - 1));
    assert_eq!(v["at"], "2026-03-04T05:06:07+00:00");
    let r = e.post(
        "/rpc/h5_echo_big",
        &[("Authorization", &s)],
        r#"{"p_n":9223372036854775808,"p_at":"2026-03-04T05:06:07Z"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "22003"), "{}", r.body);
}

// ---------------------------------------------------------------------------------------
// The project's own functions
// ---------------------------------------------------------------------------------------

/// With every migration applied, each function the worker calls by name resolves to one
/// function for PostgREST: a name with several overloads that the worker's argument names
/// could both match would be 300 PGRST203 in production. And none of the worker's RPCs is
/// declared STABLE/IMMUTABLE while reaching a volatile function of the schema (it would
/// run READ ONLY under PostgREST; see the first test).
#[test]
fn worker_rpcs_are_unambiguous_and_stable_ones_do_not_reach_volatile_functions() {
    // A cluster of its own: the migrations change privileges the other tests rely on.
    let e = Env::start("contract-migrations", "select 1;", &["--quiet"]);
    let root = stack::repo_root().unwrap();
    stack::apply_all(&e.pg, &root, 1).unwrap_or_else(|err| panic!("migrations: {err}"));
    let store = std::fs::read_to_string(root.join("worker/src/store.rs")).unwrap();
    let mut names: Vec<String> = store
        .split(".rpc(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() > 20, "{names:?}");
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(",");
    let missing = e.sql(&format!(
        "select coalesce(string_agg(n, ','), '') from unnest(array[{list}]) n \
         where not exists (select 1 from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = n)"
    ));
    assert_eq!(missing, "", "functions the worker calls that do not exist");
    let overloaded = e.sql(&format!(
        "select coalesce(string_agg(proname || '/' || n, ','), '') from (select proname, count(*) n from pg_proc \
         where pronamespace = 'public'::regnamespace and proname in ({list}) group by proname having count(*) > 1) x"
    ));
    assert_eq!(overloaded, "", "overloaded worker RPCs (ambiguous for PostgREST)");
    // Non-volatile worker RPCs whose body names a volatile function of the schema.
    let risky = e.sql(&format!(
        "select coalesce(string_agg(distinct p.proname, ','), '') from pg_proc p, pg_proc v \
         where p.pronamespace = 'public'::regnamespace and v.pronamespace = 'public'::regnamespace \
           and p.proname in ({list}) and p.provolatile <> 'v' and v.provolatile = 'v' \
           and v.prorettype <> 'trigger'::regtype and p.prosrc ~ ('\\m' || v.proname || '\\M')"
    ));
    assert_eq!(risky, "", "STABLE/IMMUTABLE worker RPCs calling volatile functions");
}
