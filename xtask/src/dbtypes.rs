//! TypeScript types of tollgate's tables and functions, in the shape Supabase's
//! `supabase gen types typescript` writes (`Database["public"]["Tables"][name]["Row"]`, ...),
//! read from the local database after the migrations ran. `cargo xtask types` writes them
//! to `supabase/database.types.ts`; `cargo xtask test` checks that the committed file is
//! what the migrations give, so the types never drift from the schema.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::stack::Pg;
use crate::util::Result;

/// The committed file, relative to the repository.
pub const TYPES_FILE: &str = "supabase/database.types.ts";

/// The schema of `public`: columns (of tables and views), foreign keys and functions, as
/// one JSON value.
const QUERY: &str = r#"
select json_build_object(
  'columns', (select coalesce(json_agg(json_build_object(
      'table', c.table_name, 'column', c.column_name, 'type', c.udt_name,
      'nullable', c.is_nullable = 'YES',
      'default', c.column_default is not null or c.is_identity = 'YES',
      'generated', c.is_generated = 'ALWAYS',
      'view', t.table_type = 'VIEW') order by c.table_name, c.ordinal_position), '[]'::json)
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
   where c.table_schema = 'public' and t.table_type in ('BASE TABLE', 'VIEW')),
  'fkeys', (select coalesce(json_agg(json_build_object(
      'table', tc.table_name, 'name', tc.constraint_name, 'column', kcu.column_name,
      'ref_table', ccu.table_name, 'ref_column', ccu.column_name,
      -- One to one: the key's column alone is the table's primary key or a unique key.
      'one_to_one', exists (
        select 1 from information_schema.table_constraints u
          join information_schema.key_column_usage k
            on k.constraint_name = u.constraint_name and k.table_schema = u.table_schema
         where u.table_schema = 'public' and u.table_name = tc.table_name
           and u.constraint_type in ('PRIMARY KEY', 'UNIQUE') and k.column_name = kcu.column_name
           and (select count(*) from information_schema.key_column_usage k2
                 where k2.constraint_name = u.constraint_name and k2.table_schema = u.table_schema) = 1))
      order by tc.table_name, tc.constraint_name), '[]'::json)
    from information_schema.table_constraints tc
    join information_schema.key_column_usage kcu
      on kcu.constraint_name = tc.constraint_name and kcu.table_schema = tc.table_schema
    join information_schema.constraint_column_usage ccu
      on ccu.constraint_name = tc.constraint_name
   where tc.table_schema = 'public' and tc.constraint_type = 'FOREIGN KEY' and ccu.table_schema = 'public'),
  'functions', (select coalesce(json_agg(json_build_object(
      'name', p.proname,
      'args', (select coalesce(json_agg(json_build_object('name', a.name, 'type', format_type(a.type, null), 'optional', a.ord > p.pronargs - p.pronargdefaults) order by a.ord), '[]'::json)
                 from unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) with ordinality as a(name, type, ord)),
      'returns', format_type(p.prorettype, null)) order by p.proname), '[]'::json)
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and p.prokind = 'f' and p.prorettype <> 'trigger'::regtype)
)
"#;

/// A PostgreSQL type as TypeScript (the mapping `supabase gen types` uses).
fn ts_type(pg: &str) -> String {
    let t = pg.trim_start_matches('_');
    let base = match t {
        "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" | "smallint" | "integer" | "bigint"
        | "real" | "double precision" => "number",
        "bool" | "boolean" => "boolean",
        "json" | "jsonb" => "Json",
        "text" | "varchar" | "uuid" | "timestamptz" | "timestamp" | "date" | "time" | "timetz" | "bpchar"
        | "character varying" | "timestamp with time zone" | "timestamp without time zone" => "string",
        "void" => "undefined",
        _ => "unknown",
    };
    if pg.starts_with('_') || pg.ends_with("[]") {
        format!("{}[]", if pg.ends_with("[]") { ts_type(pg.trim_end_matches("[]")) } else { base.to_string() })
    } else {
        base.to_string()
    }
}

/// The file's text for a schema read with [`QUERY`].
pub fn render(schema: &Value) -> String {
    let mut tables: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut views: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for c in schema["columns"].as_array().into_iter().flatten() {
        let into = if c["view"] == true { &mut views } else { &mut tables };
        into.entry(c["table"].as_str().unwrap_or("").to_string()).or_default().push(c);
    }
    let mut fkeys: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for f in schema["fkeys"].as_array().into_iter().flatten() {
        fkeys.entry(f["table"].as_str().unwrap_or("").to_string()).or_default().push(f);
    }
    let mut out = String::from(
        "// Generated by `cargo xtask types` from supabase/migrations (checked by `cargo xtask test`).\n\
         // The shape of `supabase gen types typescript`: import { Database } and use\n\
         // Database[\"public\"][\"Views\"][\"credit_lots\"][\"Row\"], or pass it to createClient<Database>().\n\n\
         export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];\n\n\
         export type Database = {\n  public: {\n    Tables: {\n",
    );
    for (table, cols) in &tables {
        out.push_str(&format!("      {table}: {{\n"));
        for (part, optional_all) in [("Row", None), ("Insert", Some(false)), ("Update", Some(true))] {
            out.push_str(&format!("        {part}: {{\n"));
            for c in cols {
                if part != "Row" && c["generated"] == true {
                    continue;
                }
                let name = c["column"].as_str().unwrap_or("");
                let nullable = c["nullable"] == true;
                let ty = ts_type(c["type"].as_str().unwrap_or(""));
                let ty = if nullable { format!("{ty} | null") } else { ty };
                let optional = match optional_all {
                    None => false,
                    Some(true) => true,
                    Some(false) => nullable || c["default"] == true,
                };
                out.push_str(&format!("          {name}{}: {ty};\n", if optional { "?" } else { "" }));
            }
            out.push_str("        };\n");
        }
        let keys = fkeys.get(table).map(Vec::as_slice).unwrap_or_default();
        if keys.is_empty() {
            out.push_str("        Relationships: [];\n      };\n");
            continue;
        }
        out.push_str("        Relationships: [\n");
        for f in keys {
            out.push_str(&format!(
                "          {{\n            foreignKeyName: \"{}\";\n            columns: [\"{}\"];\n            isOneToOne: {};\n            referencedRelation: \"{}\";\n            referencedColumns: [\"{}\"];\n          }},\n",
                f["name"].as_str().unwrap_or(""),
                f["column"].as_str().unwrap_or(""),
                f["one_to_one"] == true,
                f["ref_table"].as_str().unwrap_or(""),
                f["ref_column"].as_str().unwrap_or("")
            ));
        }
        out.push_str("        ];\n      };\n");
    }
    out.push_str("    };\n    Views: {\n");
    if views.is_empty() {
        out.push_str("      [_ in never]: never;\n");
    }
    // Views are read only here (none is updatable): their rows, as a table's.
    for (view, cols) in &views {
        out.push_str(&format!("      {view}: {{\n        Row: {{\n"));
        for c in cols {
            let ty = ts_type(c["type"].as_str().unwrap_or(""));
            let ty = if c["nullable"] == true { format!("{ty} | null") } else { ty };
            out.push_str(&format!("          {}: {ty};\n", c["column"].as_str().unwrap_or("")));
        }
        out.push_str("        };\n        Relationships: [];\n      };\n");
    }
    out.push_str("    };\n    Functions: {\n");
    let mut seen = std::collections::BTreeSet::new();
    for f in schema["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or("");
        if !seen.insert(name.to_string()) {
            continue; // one signature a name (tollgate has no overloads)
        }
        out.push_str(&format!("      {name}: {{\n        Args: {{\n"));
        for a in f["args"].as_array().into_iter().flatten() {
            let optional = if a["optional"] == true { "?" } else { "" };
            out.push_str(&format!(
                "          {}{optional}: {};\n",
                a["name"].as_str().unwrap_or(""),
                ts_type(a["type"].as_str().unwrap_or(""))
            ));
        }
        out.push_str(&format!("        }};\n        Returns: {};\n      }};\n", ts_type(f["returns"].as_str().unwrap_or(""))));
    }
    out.push_str("    };\n    Enums: {\n      [_ in never]: never;\n    };\n    CompositeTypes: {\n      [_ in never]: never;\n    };\n  };\n};\n");
    out
}

/// The types the migrations give, read from the running database.
pub fn generate(pg: &Pg) -> Result<String> {
    let raw = pg.psql(QUERY).map_err(|e| e.to_string())?;
    let schema: Value = serde_json::from_str(raw.trim()).map_err(|e| format!("schema query: {e}"))?;
    Ok(render(&schema))
}

/// Fails, naming the command that fixes it, when the committed types are not what the
/// migrations give.
pub fn check(root: &Path, pg: &Pg) -> Result<()> {
    let fresh = generate(pg)?;
    let path = root.join(TYPES_FILE);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        return Err(format!(
            "{TYPES_FILE} is not what the migrations give: run `cargo xtask types` and commit the file"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_types_map_as_supabase_maps_them() {
        assert_eq!(ts_type("int8"), "number");
        assert_eq!(ts_type("uuid"), "string");
        assert_eq!(ts_type("jsonb"), "Json");
        assert_eq!(ts_type("_text"), "string[]");
        assert_eq!(ts_type("text[]"), "string[]");
        assert_eq!(ts_type("timestamp with time zone"), "string");
        let schema = serde_json::json!({
            "columns": [
                {"table": "t", "column": "id", "type": "int8", "nullable": false, "default": true, "generated": false},
                {"table": "t", "column": "note", "type": "text", "nullable": true, "default": false, "generated": false},
                {"table": "v", "column": "n", "type": "int8", "nullable": true, "default": false, "generated": false, "view": true},
            ],
            "fkeys": [],
            "functions": [{"name": "f", "args": [{"name": "p_a", "type": "jsonb", "optional": true}], "returns": "jsonb"}],
        });
        let ts = render(&schema);
        assert!(ts.contains("        Row: {\n          id: number;\n          note: string | null;\n"), "{ts}");
        assert!(ts.contains("        Insert: {\n          id?: number;\n          note?: string | null;\n"), "{ts}");
        assert!(ts.contains("          p_a?: Json;\n        };\n        Returns: Json;"), "{ts}");
        assert!(ts.contains("    Views: {\n      v: {\n        Row: {\n          n: number | null;\n        };"), "{ts}");
        assert!(!ts.contains("      v: {\n        Row: {\n          n: number | null;\n        };\n        Insert"), "{ts}");
    }
}
