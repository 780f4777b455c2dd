//! `tollgate catalog schema`: the JSON Schema of a catalog file, generated from the core's
//! own types (schemars), so an editor completes and checks a catalog as the core reads it.
//! TOML editors that follow the `#:schema` directive (taplo, Even Better TOML) take it from
//! a catalog's first line: `#:schema ./catalog.schema.json`.

use tollgate::catalog::CatalogDoc;

/// The schema as pretty JSON (what `catalogs/catalog.schema.json` holds).
pub fn text() -> String {
    let mut schema = schemars::schema_for!(CatalogDoc);
    schema.insert("title".into(), "tollgate catalog".into());
    schema.insert(
        "description".into(),
        "A tollgate catalog: products and their tiers, offers, capabilities, limits, credit pools, usage pricing, tools and alerts. Amounts are integers in minor units."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
