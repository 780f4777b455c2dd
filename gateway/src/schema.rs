//! The schema cache: the tables, views and functions of the exposed schema, read from
//! pg_catalog (information_schema would hide everything from the connecting role, which
//! on purpose holds no privileges of its own). Every identifier a request names is
//! checked here before any SQL is built, so nothing unknown reaches the database; type
//! names used in casts come from PostgreSQL's own `format_type`.

use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`, schema-qualified where needed.
    pub ty: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary key columns in key order (empty for views and keyless tables).
    pub pk: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Void,
    /// A base type (or domain, array, record without columns): the value itself.
    Scalar {
        set: bool,
    },
    /// A row type (table type, composite, OUT parameters, RETURNS TABLE).
    Composite {
        set: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Empty for an unnamed parameter.
    pub name: String,
    pub ty: String,
    pub variadic: bool,
    pub has_default: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    /// Input parameters (IN, INOUT, VARIADIC) in declaration order.
    pub params: Vec<Param>,
    pub returns: Returns,
    /// VOLATILE (PostgREST runs POST calls of STABLE/IMMUTABLE functions READ ONLY).
    pub volatile: bool,
}

impl Function {
    /// Whether the function can be called with exactly these named arguments: every key
    /// is a parameter and every parameter without a default is given.
    pub fn accepts(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| {
            self.params
                .iter()
                .any(|p| !p.name.is_empty() && p.name == *k)
        }) && self
            .params
            .iter()
            .all(|p| p.has_default || (!p.name.is_empty() && keys.contains(&p.name.as_str())))
    }

    /// A single unnamed json/jsonb parameter: the whole body is passed to it.
    pub fn takes_whole_body(&self) -> bool {
        self.params.len() == 1
            && self.params[0].name.is_empty()
            && matches!(self.params[0].ty.as_str(), "json" | "jsonb")
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaCache {
    pub schema: String,
    pub tables: HashMap<String, Table>,
    pub functions: HashMap<String, Vec<Function>>,
}

const TABLES_SQL: &str = r#"
select coalesce(json_agg(json_build_object(
         'name', c.relname,
         'columns', (select coalesce(json_agg(json_build_object('name', a.attname, 'ty', format_type(a.atttypid, a.atttypmod))
                                              order by a.attnum), '[]')
                       from pg_attribute a
                      where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
         'pk', (select coalesce(json_agg(a.attname order by k.ord), '[]')
                  from pg_index i
                  cross join unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                 where i.indrelid = c.oid and i.indisprimary)
       )), '[]')::text
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = $1::text and c.relkind in ('r', 'v', 'm', 'f', 'p')
"#;

const FUNCTIONS_SQL: &str = r#"
select coalesce(json_agg(json_build_object(
         'name', p.proname,
         'set', p.proretset,
         'void', p.prorettype = 'void'::regtype,
         'volatile', p.provolatile = 'v',
         -- As PostgREST: any OUT, INOUT or TABLE argument makes the result a row, even one.
         'composite', rt.typtype = 'c'
                      or coalesce(p.proargmodes && array['o', 't', 'b']::"char"[], false),
         'ndefaults', p.pronargdefaults,
         'args', (select coalesce(json_agg(json_build_object('name', coalesce(x.name, ''),
                                                             'ty', case x.ty
                                                                     -- as PostgREST: no length limit
                                                                     when 'bpchar'::regtype then 'character varying'
                                                                     when 'bpchar[]'::regtype then 'character varying[]'
                                                                     when 'bit'::regtype then 'bit varying'
                                                                     when 'bit[]'::regtype then 'bit varying[]'
                                                                     else format_type(x.ty, null) end,
                                                             'mode', x.mode::text) order by x.ord), '[]')
                    from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                                coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs::int])),
                                p.proargnames) with ordinality as x(ty, mode, name, ord))
       )), '[]')::text
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type rt on rt.oid = p.prorettype
 where n.nspname = $1::text and p.prokind = 'f'
"#;

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Reads the cache for `schema`. Runs in its own read-only transaction with an empty
/// search_path, so `format_type` qualifies every type outside pg_catalog.
pub async fn load(client: &mut Client, schema: &str) -> Result<SchemaCache, tokio_postgres::Error> {
    let tx = client.build_transaction().read_only(true).start().await?;
    tx.batch_execute("set local search_path = ''").await?;
    let tables: String = tx.query_one(TABLES_SQL, &[&schema]).await?.get(0);
    let functions: String = tx.query_one(FUNCTIONS_SQL, &[&schema]).await?.get(0);
    tx.commit().await?;
    Ok(parse(schema, &tables, &functions))
}

fn parse(schema: &str, tables: &str, functions: &str) -> SchemaCache {
    let mut cache = SchemaCache {
        schema: schema.to_string(),
        ..SchemaCache::default()
    };
    let tables: Value = serde_json::from_str(tables).unwrap_or(Value::Null);
    for t in tables.as_array().into_iter().flatten() {
        let table = Table {
            name: text(t, "name"),
            columns: array(t, "columns")
                .iter()
                .map(|c| Column {
                    name: text(c, "name"),
                    ty: text(c, "ty"),
                })
                .collect(),
            pk: array(t, "pk")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        };
        cache.tables.insert(table.name.clone(), table);
    }
    let functions: Value = serde_json::from_str(functions).unwrap_or(Value::Null);
    for f in functions.as_array().into_iter().flatten() {
        let set = f.get("set").and_then(Value::as_bool).unwrap_or(false);
        let returns = if f.get("void").and_then(Value::as_bool).unwrap_or(false) {
            Returns::Void
        } else if f.get("composite").and_then(Value::as_bool).unwrap_or(false) {
            Returns::Composite { set }
        } else {
            Returns::Scalar { set }
        };
        let mut params: Vec<Param> = array(f, "args")
            .iter()
            .filter(|a| matches!(text(a, "mode").as_str(), "i" | "b" | "v"))
            .map(|a| Param {
                name: text(a, "name"),
                ty: text(a, "ty"),
                variadic: text(a, "mode") == "v",
                has_default: false,
            })
            .collect();
        // pronargdefaults counts the trailing input parameters that have defaults.
        let ndefaults = f.get("ndefaults").and_then(Value::as_u64).unwrap_or(0) as usize;
        let n = params.len();
        for p in params.iter_mut().skip(n.saturating_sub(ndefaults)) {
            p.has_default = true;
        }
        let function = Function {
            name: text(f, "name"),
            params,
            returns,
            volatile: f.get("volatile").and_then(Value::as_bool).unwrap_or(true),
        };
        cache
            .functions
            .entry(function.name.clone())
            .or_default()
            .push(function);
    }
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_catalog_json() {
        let c = parse(
            "public",
            r#"[{"name":"t","columns":[{"name":"id","ty":"bigint"},{"name":"v","ty":"text"}],"pk":["id"]}]"#,
            r#"[{"name":"f","set":false,"void":false,"composite":false,"ndefaults":1,
                 "args":[{"name":"a","ty":"integer","mode":"i"},{"name":"b","ty":"text","mode":"i"},{"name":"r","ty":"integer","mode":"o"}]}]"#,
        );
        let t = &c.tables["t"];
        assert_eq!(t.pk, vec!["id"]);
        assert_eq!(t.column("v").unwrap().ty, "text");
        let f = &c.functions["f"][0];
        assert_eq!(f.params.len(), 2);
        assert!(!f.params[0].has_default && f.params[1].has_default);
        assert!(f.accepts(&["a"]) && f.accepts(&["a", "b"]));
        assert!(!f.accepts(&["b"]) && !f.accepts(&["a", "r"]) && !f.accepts(&[]));
        assert_eq!(f.returns, Returns::Scalar { set: false });
    }
}
