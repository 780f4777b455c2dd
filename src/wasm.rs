//! The WebAssembly boundary: the only module that knows `JsValue`.
//!
//! Thin by design: parse what JavaScript hands over, call the core, convert
//! the answer. Objects cross as JSON text (the JS wrapper in `pkg/` does the
//! `JSON.stringify`/`JSON.parse`): serde_json is already in the core for JSON
//! catalogs, so this adds no second serialiser, and one string crossing beats
//! a boundary call per field. `now` crosses as epoch milliseconds (`f64`), read
//! by the JS wrapper, never here.
//!
//! Every failure becomes a JS `Error` with the core's message; catalog errors
//! also carry `path` and `line` properties. Nothing here panics on input: the
//! hot path [`EngineHandle::check`] takes plain numbers, allocates nothing and
//! answers `false` for indices out of range.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::catalog::{Catalog, CatalogError, LimitValue};
use crate::decide::{self, Usage};
use crate::engine::Engine;
use crate::model::{Entitlements, Grant};
use crate::seed::{self, CloudEntitlementRow, PlanUser};
use crate::time::Timestamp;

// ---------------------------------------------------------------- errors

fn js_error(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

fn fail(e: impl fmt::Display) -> JsValue {
    js_error(&e.to_string())
}

/// A catalog error as a JS `Error` whose message is the core's, with the
/// field path and (when known) the line as properties.
fn catalog_error(e: &CatalogError) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    let _ = js_sys::Reflect::set(&err, &"path".into(), &e.path.as_str().into());
    let line = e.line.map_or(JsValue::NULL, |l| JsValue::from_f64(l as f64));
    let _ = js_sys::Reflect::set(&err, &"line".into(), &line);
    err.into()
}

// ---------------------------------------------------------------- inputs

/// Largest epoch-ms value accepted for `now` (about year 275760, JS `Date`'s own limit).
const MAX_MS: f64 = 8.64e15;

fn now_of(ms: f64) -> Result<Timestamp, JsValue> {
    if !ms.is_finite() || ms.abs() > MAX_MS {
        return Err(js_error("`now` must be a Date, an RFC 3339 string or finite epoch milliseconds"));
    }
    Ok(Timestamp((ms / 1000.0).floor() as i64))
}

/// A whole, non-negative count such as `used` or `runsToday`.
fn count_of(what: &str, v: f64) -> Result<u64, JsValue> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        // (No float formatting here: it would pull core's float printer into the wasm.)
        Err(js_error(&format!("`{what}` must be a whole number >= 0")))
    }
}

/// serde_json appends "at line L column C"; inside a list the index says more.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// What a list element is called in error messages.
trait Item: DeserializeOwned {
    const LIST: &'static str;
}
impl Item for Grant {
    const LIST: &'static str = "grants";
}
impl Item for CloudEntitlementRow {
    const LIST: &'static str = "rows";
}

/// A list whose errors name the failing element: `grants[2]: missing field `tier``.
struct Listed<T>(Vec<T>);

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed(Vec::new())
    }
}

impl<'de, T: Item> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Item> Visitor<'de> for V<T> {
            type Value = Listed<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of {}", T::LIST)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                loop {
                    let i = out.len();
                    match seq.next_element::<T>() {
                        Ok(Some(x)) => out.push(x),
                        Ok(None) => return Ok(Listed(out)),
                        Err(e) => {
                            let msg = e.to_string();
                            return Err(de::Error::custom(format_args!(
                                "{}[{i}]: {}",
                                T::LIST,
                                strip_position(&msg)
                            )));
                        }
                    }
                }
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(rename = "Entitlements")]
struct EntitlementsIn {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    grants: Listed<Grant>,
    #[serde(default)]
    balances: BTreeMap<String, i64>,
}

fn json_error(what: &str, e: serde_json::Error) -> JsValue {
    js_error(&format!("invalid {what}: {e}"))
}

/// Entitlements as `{ subject?, grants, balances? }`, or a bare list of grants.
fn entitlements_of(json: &str) -> Result<Entitlements, JsValue> {
    let t = json.trim_start();
    if t.starts_with('[') {
        let Listed(grants) = serde_json::from_str::<Listed<Grant>>(t).map_err(|e| json_error("entitlements", e))?;
        return Ok(Entitlements::new(grants));
    }
    if t.starts_with("null") {
        return Ok(Entitlements::default());
    }
    let e: EntitlementsIn = serde_json::from_str(t).map_err(|e| json_error("entitlements", e))?;
    Ok(Entitlements { subject: e.subject, grants: e.grants.0, balances: e.balances })
}

fn rows_of(json: &str) -> Result<Vec<CloudEntitlementRow>, JsValue> {
    if json.trim_start().starts_with("null") {
        return Ok(Vec::new());
    }
    serde_json::from_str::<Listed<CloudEntitlementRow>>(json)
        .map(|l| l.0)
        .map_err(|e| json_error("cloud_entitlements rows", e))
}

/// Seed 001's user; its grants, when present, decide the tier.
#[derive(Deserialize)]
#[serde(rename = "User")]
struct UserIn {
    #[serde(default)]
    subscription_tier: Option<String>,
    #[serde(default)]
    entitlements: Option<Listed<Grant>>,
}

fn user_of(json: Option<String>) -> Result<Option<PlanUser>, JsValue> {
    let Some(s) = json else { return Ok(None) };
    let u = serde_json::from_str::<Option<UserIn>>(&s).map_err(|e| json_error("user", e))?;
    Ok(u.map(|u| PlanUser { subscription_tier: u.subscription_tier, entitlements: u.entitlements.map(|l| l.0) }))
}

fn usage_of(json: Option<String>) -> Result<Usage, JsValue> {
    match json {
        None => Ok(Usage::new()),
        Some(s) => serde_json::from_str::<Option<Usage>>(&s)
            .map(Option::unwrap_or_default)
            .map_err(|e| json_error("usage (limit id -> whole number used)", e)),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, JsValue> {
    serde_json::to_string(v).map_err(fail)
}

// ---------------------------------------------------------------- time

/// Parses an RFC 3339 timestamp (or integer Unix seconds) into epoch milliseconds.
#[wasm_bindgen(js_name = parseTime)]
pub fn parse_time(s: &str) -> Result<f64, JsValue> {
    Timestamp::parse(s).map(|t| t.0 as f64 * 1000.0).map_err(|e| js_error(&e))
}

// ---------------------------------------------------------------- catalog

/// A validated catalog, loaded once.
#[wasm_bindgen]
pub struct CatalogHandle {
    inner: Catalog,
}

#[wasm_bindgen]
impl CatalogHandle {
    /// Parses and validates a JSON catalog (this build has no TOML reader).
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(src: &str) -> Result<CatalogHandle, JsValue> {
        Catalog::parse(src).map(|inner| CatalogHandle { inner }).map_err(|e| catalog_error(&e))
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.meta().id.clone()
    }
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.meta().name.clone()
    }
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> String {
        self.inner.meta().version.clone()
    }
}

// ---------------------------------------------------------------- engine

/// Catalog + entitlements loaded once; answers by name or, on the hot path, by index.
#[wasm_bindgen]
pub struct EngineHandle {
    inner: Engine,
}

#[wasm_bindgen]
impl EngineHandle {
    #[wasm_bindgen(constructor)]
    pub fn new(catalog: &CatalogHandle, entitlements: Option<String>) -> Result<EngineHandle, JsValue> {
        let ents = match entitlements {
            Some(j) => entitlements_of(&j)?,
            None => Entitlements::default(),
        };
        Ok(EngineHandle { inner: Engine::new(catalog.inner.clone(), ents) })
    }

    #[wasm_bindgen(js_name = setEntitlements)]
    pub fn set_entitlements(&mut self, entitlements: &str) -> Result<(), JsValue> {
        let ents = entitlements_of(entitlements)?;
        self.inner.set_entitlements(ents);
        Ok(())
    }

    /// The hot path: does the subject hold at least tier `tier_ix` of product
    /// `product_ix` at `now_ms`? No strings, no allocation once cached; out-of-range
    /// indices and a non-finite `now_ms` answer `false`.
    pub fn check(&self, product_ix: u32, tier_ix: u32, now_ms: f64) -> bool {
        if !now_ms.is_finite() || now_ms.abs() > MAX_MS {
            return false;
        }
        self.inner.check(product_ix as usize, tier_ix as usize, Timestamp((now_ms / 1000.0).floor() as i64))
    }

    #[wasm_bindgen(js_name = productIndex)]
    pub fn product_index(&self, product: &str) -> Result<u32, JsValue> {
        self.inner.product_index(product).map(|i| i as u32).map_err(fail)
    }

    #[wasm_bindgen(js_name = tierIndex)]
    pub fn tier_index(&self, product: &str, tier: &str) -> Result<u32, JsValue> {
        self.inner.product_index(product).map_err(fail)?;
        self.inner.tier_index(product, tier).map(|i| i as u32).map_err(fail)
    }

    #[wasm_bindgen(js_name = hasAccess)]
    pub fn has_access(&self, product: &str, tier: &str, now_ms: f64) -> Result<String, JsValue> {
        to_json(&self.inner.has_access(product, tier, now_of(now_ms)?).map_err(fail)?)
    }

    pub fn can(&self, capability: &str, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        to_json(&decide::can(e.catalog(), e.entitlements(), capability, now_of(now_ms)?).map_err(fail)?)
    }

    /// `{ limit, tier, holds_until }`, `limit` a number or "unlimited".
    pub fn limit(&self, name: &str, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        to_json(&decide::limit(e.catalog(), e.entitlements(), name, now_of(now_ms)?).map_err(fail)?)
    }

    #[wasm_bindgen(js_name = checkLimit)]
    pub fn check_limit(&self, name: &str, used: f64, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        let used = count_of("used", used)?;
        to_json(&decide::check_limit(e.catalog(), e.entitlements(), name, used, now_of(now_ms)?).map_err(fail)?)
    }

    #[wasm_bindgen(js_name = exportPolicy)]
    pub fn export_policy(&self, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        to_json(&decide::export_policy(e.catalog(), e.entitlements(), now_of(now_ms)?).map_err(fail)?)
    }

    #[wasm_bindgen(js_name = toolState)]
    pub fn tool_state(&self, tool: &str, usage: Option<String>, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        let usage = usage_of(usage)?;
        to_json(&decide::tool_state(e.catalog(), e.entitlements(), tool, &usage, now_of(now_ms)?).map_err(fail)?)
    }

    /// Every tool of `page` (every tool when `page` is absent) at once.
    #[wasm_bindgen(js_name = pageState)]
    pub fn page_state(&self, page: Option<String>, usage: Option<String>, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        let usage = usage_of(usage)?;
        let now = now_of(now_ms)?;
        to_json(&decide::page_state(e.catalog(), e.entitlements(), page.as_deref(), &usage, now).map_err(fail)?)
    }

    /// The next instant any answer can change, as RFC 3339 (None: never, until the entitlements change).
    #[wasm_bindgen(js_name = nextChange)]
    pub fn next_change(&self, now_ms: f64) -> Result<Option<String>, JsValue> {
        let e = &self.inner;
        Ok(decide::next_change(e.catalog(), e.entitlements(), now_of(now_ms)?).map(|t| t.to_rfc3339()))
    }
}

// ---------------------------------------------------------------- seed-compatible helpers

/// Seed 000's `hasAccess` over `cloud_entitlements` rows (JSON), as a boolean.
#[wasm_bindgen(js_name = seedHasAccess)]
pub fn seed_has_access(catalog: &CatalogHandle, rows: &str, cloud: &str, required: &str, now_ms: f64) -> Result<bool, JsValue> {
    let now = now_of(now_ms)?;
    seed::has_access_rows(&catalog.inner, rows_of(rows)?, cloud, required, now).map(|d| d.allowed).map_err(fail)
}

/// Seed 000's `hasAccess` with its explanation (a Decision as JSON).
#[wasm_bindgen(js_name = seedExplainAccess)]
pub fn seed_explain_access(catalog: &CatalogHandle, rows: &str, cloud: &str, required: &str, now_ms: f64) -> Result<String, JsValue> {
    let now = now_of(now_ms)?;
    to_json(&seed::has_access_rows(&catalog.inner, rows_of(rows)?, cloud, required, now).map_err(fail)?)
}

/// Seed 001's `resolveUserTier`; `user` is JSON (`null` or absent: no user).
#[wasm_bindgen(js_name = resolveUserTier)]
pub fn resolve_user_tier(catalog: &CatalogHandle, user: Option<String>, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    seed::resolve_user_tier(&catalog.inner, user.as_ref(), now_of(now_ms)?).map_err(fail)
}

/// Seed 001's capability helpers (`canUseAI` ...) as a Decision (JSON).
#[wasm_bindgen(js_name = userCan)]
pub fn user_can(catalog: &CatalogHandle, user: Option<String>, capability: &str, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    to_json(&seed::user_can(&catalog.inner, user.as_ref(), capability, now_of(now_ms)?).map_err(fail)?)
}

/// The same as [`user_can`], as a boolean.
#[wasm_bindgen(js_name = userAllowed)]
pub fn user_allowed(catalog: &CatalogHandle, user: Option<String>, capability: &str, now_ms: f64) -> Result<bool, JsValue> {
    let user = user_of(user)?;
    seed::user_can(&catalog.inner, user.as_ref(), capability, now_of(now_ms)?).map(|d| d.allowed).map_err(fail)
}

/// Seed 001's export policy for a user (JSON: `{ policy, message?, upgrade? }`).
#[wasm_bindgen(js_name = userExportPolicy)]
pub fn user_export_policy(catalog: &CatalogHandle, user: Option<String>, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    to_json(&seed::user_export_policy(&catalog.inner, user.as_ref(), now_of(now_ms)?).map_err(fail)?)
}

/// Seed 001's workflow rule: may another run start, given the runs today? (a Decision as JSON)
#[wasm_bindgen(js_name = workflowRunAllowed)]
pub fn workflow_run_allowed(catalog: &CatalogHandle, user: Option<String>, runs_today: f64, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    let runs = count_of("runsToday", runs_today)?;
    to_json(&seed::workflow_run_allowed(&catalog.inner, user.as_ref(), runs, now_of(now_ms)?).map_err(fail)?)
}

/// A user's limit: a whole number, or `-1` for unlimited.
#[wasm_bindgen(js_name = userLimit)]
pub fn user_limit(catalog: &CatalogHandle, user: Option<String>, name: &str, now_ms: f64) -> Result<f64, JsValue> {
    let user = user_of(user)?;
    Ok(match seed::user_limit(&catalog.inner, user.as_ref(), name, now_of(now_ms)?).map_err(fail)? {
        LimitValue::Limited(n) => n as f64,
        LimitValue::Unlimited => -1.0,
    })
}
