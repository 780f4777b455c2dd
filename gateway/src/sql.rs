//! Building the one statement each request runs. Identifiers come only from the schema
//! cache and are quoted; every value from the request is a bound text parameter, cast to
//! the column's (or the parameter's) type by PostgreSQL, so the database parses values
//! exactly as PostgREST lets it. Each statement returns one row:
//! `(body text, rows bigint, inserted bool, total bigint)`.

use crate::error::ApiError;
use crate::request::{Filter, IsValue, Op, OrderTerm, Resolution, SelectItem};
use crate::schema::{Function, Param, Returns, Table};

/// `"name"` with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<String>,
}

#[derive(Default)]
struct Binder {
    params: Vec<String>,
}

impl Binder {
    /// Binds `value` and returns the placeholder, typed text.
    fn bind(&mut self, value: impl Into<String>) -> String {
        self.params.push(value.into());
        format!("${}::text", self.params.len())
    }
}

/// What the client gets back from a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// No body (return=minimal).
    None,
    /// A JSON array of the selected columns.
    Array,
    /// The first row as a JSON object (Accept: application/vnd.pgrst.object+json).
    Object,
}

fn qualified(schema: &str, table: &Table) -> String {
    format!("{}.{}", ident(schema), ident(&table.name))
}

fn unknown_column(table: &Table, column: &str) -> ApiError {
    ApiError::new(
        400,
        "42703",
        format!("column {}.{} does not exist", table.name, column),
    )
    .miss()
}

fn column_type<'a>(table: &'a Table, column: &str) -> Result<&'a str, ApiError> {
    table
        .column(column)
        .map(|c| c.ty.as_str())
        .ok_or_else(|| unknown_column(table, column))
}

/// The select list over `qual` (a table or CTE name, already quoted).
fn select_list(table: &Table, items: &[SelectItem], qual: &str) -> Result<String, ApiError> {
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::Star => out.extend(
                table
                    .columns
                    .iter()
                    .map(|c| format!("{qual}.{}", ident(&c.name))),
            ),
            SelectItem::Column { name, alias } => {
                column_type(table, name)?;
                match alias {
                    Some(a) => out.push(format!("{qual}.{} as {}", ident(name), ident(a))),
                    None => out.push(format!("{qual}.{}", ident(name))),
                }
            }
        }
    }
    if out.is_empty() {
        // A table without columns still has rows.
        return Ok("null::text as \"_pgrst_empty\"".into());
    }
    Ok(out.join(", "))
}

fn where_clause(
    table: &Table,
    filters: &[Filter],
    qual: &str,
    b: &mut Binder,
) -> Result<String, ApiError> {
    let mut conds = Vec::new();
    for f in filters {
        let ty = column_type(table, &f.column)?;
        let col = format!("{qual}.{}", ident(&f.column));
        let cond = match &f.op {
            Op::Cmp(op @ ("like" | "ilike"), v) => format!("{col} {op} {}", b.bind(v.clone())),
            Op::Cmp(op, v) => format!("{col} {op} {}::{ty}", b.bind(v.clone())),
            Op::In(values) if values.is_empty() => "false".to_string(),
            Op::In(values) => {
                let list: Vec<String> = values
                    .iter()
                    .map(|v| format!("{}::{ty}", b.bind(v.clone())))
                    .collect();
                format!("{col} in ({})", list.join(", "))
            }
            Op::Is(v) => format!(
                "{col} {}",
                match v {
                    IsValue::Null => "is null",
                    IsValue::NotNull => "is not null",
                    IsValue::True => "is true",
                    IsValue::False => "is false",
                    IsValue::Unknown => "is unknown",
                }
            ),
        };
        conds.push(if f.negate {
            format!("not ({cond})")
        } else {
            cond
        });
    }
    Ok(if conds.is_empty() {
        String::new()
    } else {
        format!(" where {}", conds.join(" and "))
    })
}

fn order_clause(table: &Table, order: &[OrderTerm], qual: &str) -> Result<String, ApiError> {
    let mut terms = Vec::new();
    for t in order {
        column_type(table, &t.column)?;
        let mut s = format!(
            "{qual}.{} {}",
            ident(&t.column),
            if t.desc { "desc" } else { "asc" }
        );
        match t.nulls_first {
            Some(true) => s.push_str(" nulls first"),
            Some(false) => s.push_str(" nulls last"),
            None => {}
        }
        terms.push(s);
    }
    Ok(if terms.is_empty() {
        String::new()
    } else {
        format!(" order by {}", terms.join(", "))
    })
}

pub struct ReadSpec<'a> {
    pub schema: &'a str,
    pub table: &'a Table,
    pub select: &'a [SelectItem],
    pub filters: &'a [Filter],
    pub order: &'a [OrderTerm],
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub count_exact: bool,
    pub object: bool,
}

/// `GET /<table>`.
pub fn read(s: &ReadSpec<'_>) -> Result<Stmt, ApiError> {
    let mut b = Binder::default();
    let qual = qualified(s.schema, s.table);
    let list = select_list(s.table, s.select, &qual)?;
    let wh = where_clause(s.table, s.filters, &qual, &mut b)?;
    let ord = order_clause(s.table, s.order, &qual)?;
    let mut page = String::new();
    if let Some(n) = s.limit {
        page.push_str(&format!(" limit {}::bigint", b.bind(n.to_string())));
    }
    if let Some(n) = s.offset {
        page.push_str(&format!(" offset {}::bigint", b.bind(n.to_string())));
    }
    let body = if s.object {
        "(json_agg(_pgrst_t) -> 0)::text"
    } else {
        "coalesce(json_agg(_pgrst_t), '[]')::text"
    };
    let total = if s.count_exact {
        format!("(select count(*) from {qual}{wh})")
    } else {
        "null::bigint".into()
    };
    Ok(Stmt {
        sql: format!(
            "select {body}, count(*), false, {total} from (select {list} from {qual}{wh}{ord}{page}) _pgrst_t"
        ),
        params: b.params,
    })
}

/// The final select over the `_pgrst_m` CTE of a mutation.
fn mutation_result(
    table: &Table,
    select: &[SelectItem],
    output: Output,
    inserted: &str,
) -> Result<String, ApiError> {
    let body = match output {
        Output::None => "null::text".to_string(),
        Output::Array | Output::Object => {
            let list = select_list(table, select, "_pgrst_m")?;
            let agg = if output == Output::Object {
                "(json_agg(_pgrst_t) -> 0)::text"
            } else {
                "coalesce(json_agg(_pgrst_t), '[]')::text"
            };
            format!("(select {agg} from (select {list} from _pgrst_m) _pgrst_t)")
        }
    };
    Ok(format!(
        "select {body}, (select count(*) from _pgrst_m), {inserted}, null::bigint"
    ))
}

fn returning(schema: &str, table: &Table, output: Output) -> String {
    match output {
        // No column of the row is read, so a write-only table (no SELECT policy) works.
        Output::None => "returning 1 as _pgrst_one".to_string(),
        _ => format!("returning {}.*", qualified(schema, table)),
    }
}

pub struct InsertSpec<'a> {
    pub schema: &'a str,
    pub table: &'a Table,
    /// Columns to insert (payload keys, or `?columns=`), checked against the table.
    pub columns: &'a [String],
    /// The rows as a JSON array (the raw request body, wrapped in [] for an object).
    pub rows_json: String,
    pub resolution: Option<Resolution>,
    /// Conflict target for upserts: `?on_conflict=` or the primary key.
    pub on_conflict: Option<&'a [String]>,
    pub select: &'a [SelectItem],
    pub output: Output,
}

/// `POST /<table>`, with `Prefer: resolution=...` an upsert.
pub fn insert(s: &InsertSpec<'_>) -> Result<Stmt, ApiError> {
    let mut b = Binder::default();
    let qual = qualified(s.schema, s.table);
    for c in s.columns {
        if s.table.column(c).is_none() {
            return Err(ApiError::new(
                400,
                "PGRST204",
                format!(
                    "Could not find the '{c}' column of '{}' in the schema cache",
                    s.table.name
                ),
            )
            .miss());
        }
    }
    let cols: Vec<String> = s.columns.iter().map(|c| ident(c)).collect();
    let rows = b.bind(s.rows_json.clone());
    let mut sql = format!(
        "with _pgrst_m as (insert into {qual} ({cols}) select {cols} from jsonb_populate_recordset(null::{qual}, {rows}::jsonb) _pgrst_r",
        cols = cols.join(", ")
    );
    if cols.is_empty() {
        // Every column takes its default.
        sql = format!("with _pgrst_m as (insert into {qual} select from jsonb_populate_recordset(null::{qual}, {rows}::jsonb) _pgrst_r");
    }
    let mut inserted = "true".to_string();
    let mut ret = returning(s.schema, s.table, s.output);
    if let (Some(res), Some(target)) = (s.resolution, s.on_conflict) {
        for c in target {
            column_type(s.table, c)?;
        }
        let target: Vec<String> = target.iter().map(|c| ident(c)).collect();
        sql.push_str(&format!(" on conflict ({})", target.join(", ")));
        if res == Resolution::MergeDuplicates && !cols.is_empty() {
            let sets: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
            sql.push_str(&format!(" do update set {}", sets.join(", ")));
            // xmax is 0 on a row this statement inserted (not on one it updated).
            ret.push_str(&format!(", ({qual}.xmax = 0) as _pgrst_inserted"));
            inserted = "(select coalesce(bool_or(_pgrst_inserted), false) from _pgrst_m)".into();
        } else {
            sql.push_str(" do nothing");
        }
    }
    sql.push_str(&format!(" {ret}) "));
    sql.push_str(&mutation_result(s.table, s.select, s.output, &inserted)?);
    Ok(Stmt {
        sql,
        params: b.params,
    })
}

pub struct UpdateSpec<'a> {
    pub schema: &'a str,
    pub table: &'a Table,
    pub columns: &'a [String],
    /// The new values as a JSON object (the raw request body).
    pub row_json: String,
    pub filters: &'a [Filter],
    pub select: &'a [SelectItem],
    pub output: Output,
}

/// `PATCH /<table>?<filters>`.
pub fn update(s: &UpdateSpec<'_>) -> Result<Stmt, ApiError> {
    let mut b = Binder::default();
    let qual = qualified(s.schema, s.table);
    for c in s.columns {
        if s.table.column(c).is_none() {
            return Err(ApiError::new(
                400,
                "PGRST204",
                format!(
                    "Could not find the '{c}' column of '{}' in the schema cache",
                    s.table.name
                ),
            )
            .miss());
        }
    }
    if s.columns.is_empty() {
        // Nothing to set: nothing is touched (filters are still checked).
        where_clause(s.table, s.filters, &qual, &mut Binder::default())?;
        let body = if s.output == Output::None {
            "null::text"
        } else {
            "'[]'::text"
        };
        return Ok(Stmt {
            sql: format!("select {body}, 0::bigint, false, null::bigint"),
            params: vec![],
        });
    }
    let row = b.bind(s.row_json.clone());
    let sets: Vec<String> = s
        .columns
        .iter()
        .map(|c| format!("{} = _pgrst_p.{}", ident(c), ident(c)))
        .collect();
    let wh = where_clause(s.table, s.filters, &qual, &mut b)?;
    let sql = format!(
        "with _pgrst_m as (update {qual} set {sets} from (select * from jsonb_populate_record(null::{qual}, {row}::jsonb)) _pgrst_p{wh} {ret}) {result}",
        sets = sets.join(", "),
        ret = returning(s.schema, s.table, s.output),
        result = mutation_result(s.table, s.select, s.output, "false")?
    );
    Ok(Stmt {
        sql,
        params: b.params,
    })
}

/// `DELETE /<table>?<filters>`.
pub fn delete(
    schema: &str,
    table: &Table,
    filters: &[Filter],
    select: &[SelectItem],
    output: Output,
) -> Result<Stmt, ApiError> {
    let mut b = Binder::default();
    let qual = qualified(schema, table);
    let wh = where_clause(table, filters, &qual, &mut b)?;
    let sql = format!(
        "with _pgrst_m as (delete from {qual}{wh} {ret}) {result}",
        ret = returning(schema, table, output),
        result = mutation_result(table, select, output, "false")?
    );
    Ok(Stmt {
        sql,
        params: b.params,
    })
}

/// How the arguments reach the function.
pub enum Args<'a> {
    /// Named arguments: these parameters, read from the JSON object `json`.
    Named {
        params: Vec<&'a Param>,
        json: String,
    },
    /// A single unnamed json/jsonb parameter receiving the whole body.
    WholeBody(String),
}

/// `POST|GET /rpc/<function>`: calls the function with named notation,
/// `fn(a => _a.a, ...)`, the values typed by `json_to_record` (the body as `json`, as PostgREST reads it) with the parameters'
/// own types. `object` asks for the single row of a set-returning function.
pub fn call(schema: &str, f: &Function, args: &Args<'_>, object: bool) -> Stmt {
    let mut b = Binder::default();
    let name = format!("{}.{}", ident(schema), ident(&f.name));
    let (call, from) = match args {
        Args::WholeBody(json) => (
            format!("{name}({}::{})", b.bind(json.clone()), f.params[0].ty),
            None,
        ),
        Args::Named { params, .. } if params.is_empty() => (format!("{name}()"), None),
        Args::Named { params, json } => {
            let json = b.bind(json.clone());
            let defs: Vec<String> = params
                .iter()
                .map(|p| format!("{} {}", ident(&p.name), p.ty))
                .collect();
            let named: Vec<String> = params
                .iter()
                .map(|p| {
                    format!(
                        "{}{} => _pgrst_a.{}",
                        if p.variadic { "variadic " } else { "" },
                        ident(&p.name),
                        ident(&p.name)
                    )
                })
                .collect();
            (
                format!("{name}({})", named.join(", ")),
                Some(format!(
                    "json_to_record({json}::json) as _pgrst_a({})",
                    defs.join(", ")
                )),
            )
        }
    };
    let agg = |expr: &str| {
        if object {
            format!("(json_agg({expr}) -> 0)::text")
        } else {
            format!("coalesce(json_agg({expr}), '[]')::text")
        }
    };
    let sql = match (f.returns, from) {
        (Returns::Void, None) => format!("select null::text, count(*), false, null::bigint from (select {call}) _pgrst_v"),
        (Returns::Void, Some(from)) => format!("select null::text, count(*), false, null::bigint from (select {call} from {from}) _pgrst_v"),
        (Returns::Scalar { set: false }, None) => format!("select to_json({call})::text, 1::bigint, false, null::bigint"),
        (Returns::Scalar { set: false }, Some(from)) => format!("select to_json({call})::text, 1::bigint, false, null::bigint from {from}"),
        (Returns::Scalar { set: true }, from) => format!(
            "select {}, count(*), false, null::bigint from {}{call} as _pgrst_r(_pgrst_v)",
            agg("_pgrst_r._pgrst_v"),
            from.map(|f| format!("{f}, ")).unwrap_or_default()
        ),
        // Through `_pgrst_r.*` in a subquery: a function with a single OUT (or TABLE)
        // column returns a base type, whose whole-row reference would be the bare value.
        (Returns::Composite { set: false }, from) => format!(
            "select to_json(_pgrst_t)::text, 1::bigint, false, null::bigint from (select _pgrst_r.* from {}{call} as _pgrst_r) _pgrst_t",
            from.map(|f| format!("{f}, ")).unwrap_or_default()
        ),
        (Returns::Composite { set: true }, from) => format!(
            "select {}, count(*), false, null::bigint from (select _pgrst_r.* from {}{call} as _pgrst_r) _pgrst_t",
            agg("_pgrst_t"),
            from.map(|f| format!("{f}, ")).unwrap_or_default()
        ),
    };
    Stmt {
        sql,
        params: b.params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_filter;
    use crate::schema::Column;

    fn table() -> Table {
        Table {
            name: "items".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: "bigint".into(),
                },
                Column {
                    name: "name".into(),
                    ty: "text".into(),
                },
                Column {
                    name: "we\"ird".into(),
                    ty: "public.mood".into(),
                },
            ],
            pk: vec!["id".into()],
        }
    }

    #[test]
    fn identifiers_are_quoted_and_values_bound() {
        let t = table();
        let filters = vec![
            parse_filter("name", "eq.x' or 1=1 --").unwrap(),
            parse_filter("we\"ird", "in.(a,b)").unwrap(),
        ];
        let s = read(&ReadSpec {
            schema: "public",
            table: &t,
            select: &[SelectItem::Star],
            filters: &filters,
            order: &[],
            limit: Some(5),
            offset: None,
            count_exact: false,
            object: false,
        })
        .unwrap();
        assert!(!s.sql.contains("or 1=1"));
        assert!(
            s.sql.contains(
                r#""public"."items"."we""ird" in ($2::text::public.mood, $3::text::public.mood)"#
            ),
            "{}",
            s.sql
        );
        assert_eq!(s.params, vec!["x' or 1=1 --", "a", "b", "5"]);
    }

    #[test]
    fn unknown_names_never_reach_sql() {
        let t = table();
        let filters = vec![parse_filter("nope", "eq.1").unwrap()];
        let e = read(&ReadSpec {
            schema: "public",
            table: &t,
            select: &[SelectItem::Star],
            filters: &filters,
            order: &[],
            limit: None,
            offset: None,
            count_exact: false,
            object: false,
        })
        .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "42703"));
        assert!(e.cache_miss);
        let e = insert(&InsertSpec {
            schema: "public",
            table: &t,
            columns: &["id".into(), "evil\"); drop table x; --".into()],
            rows_json: "[]".into(),
            resolution: None,
            on_conflict: None,
            select: &[SelectItem::Star],
            output: Output::None,
        })
        .unwrap_err();
        assert_eq!(e.code, "PGRST204");
    }

    #[test]
    fn upsert_shapes() {
        let t = table();
        let cols = vec!["id".to_string(), "name".to_string()];
        let pk = t.pk.clone();
        let s = insert(&InsertSpec {
            schema: "public",
            table: &t,
            columns: &cols,
            rows_json: r#"[{"id":1,"name":"a"}]"#.into(),
            resolution: Some(Resolution::MergeDuplicates),
            on_conflict: Some(&pk),
            select: &[SelectItem::Star],
            output: Output::Array,
        })
        .unwrap();
        assert!(s.sql.contains(
            r#"on conflict ("id") do update set "id" = excluded."id", "name" = excluded."name""#
        ));
        assert!(s.sql.contains("xmax = 0"));
        let s = insert(&InsertSpec {
            schema: "public",
            table: &t,
            columns: &cols,
            rows_json: "[]".into(),
            resolution: Some(Resolution::IgnoreDuplicates),
            on_conflict: Some(&pk),
            select: &[SelectItem::Star],
            output: Output::None,
        })
        .unwrap();
        assert!(s.sql.contains("do nothing returning 1"));
        assert!(!s.sql.contains("xmax"));
    }
}
