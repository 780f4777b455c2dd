//! The WebAssembly boundary: the only module that knows `JsValue`.
//!
//! Thin by design: read what JavaScript hands over, call the core, convert the
//! answer. Measured on the package (see `cargo xtask bench`), the two ways of
//! moving objects split like this:
//! - into Rust, everything crosses as JSON text read by serde_json, the reader
//!   the snapshot verifier needs anyway for the exact signed bytes: the catalog
//!   (an object is `JSON.stringify`'d by the wrapper), and what a signed snapshot
//!   holds (grants, balances, memberships, alerts, payments), and with it rows,
//!   users and usage: one deserializer per type in the module, not two.
//!   The hot calls cross no object at all: rows travel packed in one string,
//!   engines are made once.
//! - out of Rust, answers are JSON text that the wrapper turns into objects
//!   with `JSON.parse`: one string crossing per answer instead of a boundary
//!   call per field. The text is written by [`Json`], which gives serde_json's
//!   output for these shapes at about twice its speed in this size-optimised
//!   build. The batch and hot answers are numbers instead: a page of tools as
//!   [`decide::Verdict`]s by index (`pageVerdicts`), named by the wrapper from
//!   tables the catalog gives once (`CatalogHandle::tables`); a product's tier
//!   with the window it holds for (`window`, `rowsWindowPacked`).
//!
//! `now` crosses as epoch milliseconds (`f64`), read by the JS wrapper, never
//! here. Every failure becomes a JS `Error` with the core's message; catalog
//! errors also carry `path` and `line` properties. Nothing here panics on
//! input: the hot path [`EngineHandle::check`] takes plain numbers, allocates
//! nothing and answers `false` for indices out of range.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::catalog::{
    Capability, Catalog, CatalogDoc, CatalogError, CatalogMeta, CreditPool, Limit, Offer, Product, Tool, UsagePricing,
};
use crate::decide::{self, Reason, Usage, Verdict};
use crate::engine::Engine;
use crate::meter;
use crate::model::{Entitlements, Grant};
use crate::vcm::{self, CloudEntitlementRow, PlanUser};
use crate::snapshot;
use crate::time::Timestamp;
use crate::usage;

// ---------------------------------------------------------------- errors

fn js_error(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

fn fail(e: impl fmt::Display) -> JsValue {
    js_error(&e.to_string())
}

/// A JS `Error` with the core's message and its stable error code as `code`.
fn coded_error(e: impl fmt::Display, code: &str) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    err.into()
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
                        Err(e) => return Err(de::Error::custom(format_args!("{}[{i}]: {e}", T::LIST))),
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
    /// A pool named twice is refused, as in a signed snapshot's payload: JSON text handed
    /// over as it is could otherwise mean either balance.
    #[serde(default, deserialize_with = "crate::catalog::unique_keys")]
    balances: BTreeMap<String, i64>,
    /// A snapshot's terms (see `tollgate::grandfather`).
    #[serde(default)]
    terms: Vec<crate::grandfather::Terms>,
    /// A snapshot's catalog: entitlements of another catalog are refused.
    #[serde(default)]
    catalog_id: Option<String>,
    /// A snapshot's end: its grants give nothing from then on.
    #[serde(default)]
    expires_at: Option<Timestamp>,
}

/// A serde_json error without its " at line L column C" (the text is the wrapper's
/// `JSON.stringify` of an object, where lines mean nothing to the caller).
fn plain(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    s.strip_suffix(&tail).map(str::to_string).unwrap_or(s)
}

/// Reads JSON text (the wrapper's `JSON.stringify`, or the app's own text) with
/// serde_json. Grants, balances, memberships, alerts and payments are what a signed
/// snapshot holds, which the verifier reads with serde_json anyway: read the same
/// way here, they need no second deserializer in the module.
fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, JsValue> {
    serde_json::from_slice(text.as_bytes()).map_err(|e| js_error(&format!("invalid {what}: {}", plain(&e))))
}

/// Entitlements as `{ subject?, grants, balances?, terms? }` (a verified snapshot among
/// them), or a bare list of grants (JSON text), for `catalog`, with the terms a snapshot
/// carries (`terms`, when it has any); a snapshot's catalog and end as the core rules
/// ([`snapshot::entitlements_under`]: `wrong_catalog` for another catalog's).
fn entitlements_with_terms(catalog: &Catalog, v: Option<String>) -> Result<(Entitlements, Vec<crate::grandfather::Terms>), JsValue> {
    let Some(text) = v else { return Ok((Entitlements::default(), Vec::new())) };
    if text.trim_start().starts_with('[') {
        let Listed(grants) = from_json::<Listed<Grant>>("entitlements", &text)?;
        return Ok((Entitlements::new(grants), Vec::new()));
    }
    let e: EntitlementsIn = from_json("entitlements", &text)?;
    let ents = Entitlements { subject: e.subject, grants: e.grants.0, balances: e.balances, until: None };
    let ents = snapshot::entitlements_under(catalog, e.catalog_id.as_deref(), e.expires_at, ents)
        .map_err(|w| coded_error(&w, w.code()))?;
    Ok((ents, e.terms))
}

/// An engine over `catalog` with the snapshot's terms put in (the catalog itself, shared,
/// when there are none).
fn engine_with_terms(catalog: &Arc<Catalog>, ents: Entitlements, terms: &[crate::grandfather::Terms]) -> Engine {
    match crate::grandfather::apply(catalog, terms) {
        std::borrow::Cow::Borrowed(_) => Engine::shared(Arc::clone(catalog), ents),
        std::borrow::Cow::Owned(c) => Engine::new(c, ents),
    }
}

fn rows_of(v: Option<String>) -> Result<Vec<CloudEntitlementRow>, JsValue> {
    let Some(text) = v else { return Ok(Vec::new()) };
    from_json::<Listed<CloudEntitlementRow>>("cloud_entitlements rows", &text).map(|l| l.0)
}

/// The VCM Suite app's user; its grants, when present, decide the tier.
#[derive(Deserialize)]
#[serde(rename = "User")]
struct UserIn {
    #[serde(default)]
    subscription_tier: Option<String>,
    #[serde(default)]
    entitlements: Option<Listed<Grant>>,
}

fn user_of(v: Option<String>) -> Result<Option<PlanUser>, JsValue> {
    let Some(text) = v else { return Ok(None) };
    let u: UserIn = from_json("user", &text)?;
    Ok(Some(PlanUser { subscription_tier: u.subscription_tier, entitlements: u.entitlements.map(|l| l.0) }))
}

/// A map of counts by id whose every key is written once: in JSON text a limit named twice
/// could mean either count (readers disagree on which one stands), so it is refused.
#[derive(Deserialize)]
#[serde(bound = "V: Deserialize<'de>")]
struct Counts<V>(#[serde(deserialize_with = "crate::catalog::unique_keys")] BTreeMap<String, V>);

fn usage_of(v: Option<String>) -> Result<Usage, JsValue> {
    let Some(text) = v else { return Ok(Usage::new()) };
    from_json::<Counts<u64>>("usage (limit id -> whole number used)", &text).map(|c| c.0)
}

/// The catalog document from JSON text; when it does not read, the failing section or
/// element is found by reading each on its own (from its own slice of the text, with the
/// same reader, so no second deserializer is compiled in), so the error can name it.
fn catalog_doc_of(text: &str) -> Result<CatalogDoc, CatalogError> {
    use serde_json::value::RawValue;
    let whole = match serde_json::from_slice::<CatalogDoc>(text.as_bytes()) {
        Ok(doc) => return Ok(doc),
        Err(e) => plain(&e),
    };
    let fail = |path: String, message: String| CatalogError { path, message, line: None };
    #[derive(Deserialize)]
    struct Sections<'a> {
        #[serde(borrow)]
        catalog: Option<&'a RawValue>,
        #[serde(borrow)]
        products: Option<&'a RawValue>,
        #[serde(borrow)]
        offers: Option<&'a RawValue>,
        #[serde(borrow)]
        capabilities: Option<&'a RawValue>,
        #[serde(borrow)]
        limits: Option<&'a RawValue>,
        #[serde(borrow)]
        credit_pools: Option<&'a RawValue>,
        #[serde(borrow)]
        tools: Option<&'a RawValue>,
        #[serde(borrow)]
        usage: Option<&'a RawValue>,
    }
    let Ok(sections) = serde_json::from_slice::<Sections>(text.as_bytes()) else { return Err(fail(String::new(), whole)) };
    fn present(raw: Option<&RawValue>) -> Option<&str> {
        raw.map(RawValue::get).filter(|r| *r != "null")
    }
    fn each<T: DeserializeOwned>(name: &str, raw: Option<&str>) -> Option<(String, String)> {
        let list = serde_json::from_slice::<Vec<&RawValue>>(raw?.as_bytes());
        let Ok(list) = list else { return Some((name.to_string(), format!("`{name}` must be a list"))) };
        list.iter().enumerate().find_map(|(i, el)| {
            serde_json::from_slice::<T>(el.get().as_bytes()).err().map(|e| (format!("{name}[{i}]"), plain(&e)))
        })
    }
    fn one<T: DeserializeOwned>(name: &str, raw: Option<&str>) -> Option<(String, String)> {
        serde_json::from_slice::<T>(raw?.as_bytes()).err().map(|e| (name.to_string(), plain(&e)))
    }
    let found = one::<CatalogMeta>("catalog", present(sections.catalog))
        .or_else(|| each::<Product>("products", present(sections.products)))
        .or_else(|| each::<Offer>("offers", present(sections.offers)))
        .or_else(|| each::<Capability>("capabilities", present(sections.capabilities)))
        .or_else(|| each::<Limit>("limits", present(sections.limits)))
        .or_else(|| each::<CreditPool>("credit_pools", present(sections.credit_pools)))
        .or_else(|| each::<Tool>("tools", present(sections.tools)))
        .or_else(|| one::<UsagePricing>("usage", present(sections.usage)));
    match found {
        Some((path, message)) => Err(fail(path, message)),
        None => Err(fail(String::new(), whole)),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, JsValue> {
    let mut out = Vec::with_capacity(256);
    v.serialize(Json(&mut out)).map_err(fail)?;
    // SAFETY: `Json` writes only whole `&str`s and ASCII bytes, so `out` is UTF-8.
    Ok(unsafe { String::from_utf8_unchecked(out) })
}

// ---------------------------------------------------------------- JSON out

/// A JSON writer for the answers, giving byte for byte what `serde_json`
/// writes for the same values (compact, keys in field order, the same string
/// escapes), for the shapes the core's answers use: booleans, integers,
/// strings, options, unit variants, lists, string-keyed maps, structs. Its
/// string escape copies unescaped runs whole, where serde_json's generic one
/// goes byte by byte: in this size-optimised wasm that made serialising a page
/// of 30 tools most of the call's time. Any other shape is an error, never
/// wrong JSON.
struct Json<'a>(&'a mut Vec<u8>);

/// Why a value could not be written.
#[derive(Debug)]
struct JsonError(String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for JsonError {}
impl serde::ser::Error for JsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        JsonError(msg.to_string())
    }
}

fn unsupported(what: &str) -> JsonError {
    JsonError(format!("cannot write {what} as JSON"))
}

fn push_str_json(out: &mut Vec<u8>, s: &str) {
    // Index loops and byte pushes: at this wasm's opt-level, iterator adaptors
    // stay calls per byte.
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[run..i - 1]);
        run = i;
        out.push(b'\\');
        match b {
            b'"' | b'\\' => out.push(b),
            b'\n' => out.push(b'n'),
            b'\r' => out.push(b'r'),
            b'\t' => out.push(b't'),
            0x08 => out.push(b'b'),
            0x0c => out.push(b'f'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A list, map or struct being written: `first` until its first element.
struct JsonCompound<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    close: u8,
}

impl JsonCompound<'_> {
    fn comma(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }
    fn element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), JsonError> {
        self.comma();
        v.serialize(Json(self.out))
    }
    fn field<T: ?Sized + Serialize>(&mut self, key: &str, v: &T) -> Result<(), JsonError> {
        self.comma();
        push_str_json(self.out, key);
        self.out.push(b':');
        v.serialize(Json(self.out))
    }
    fn finish(self) -> Result<(), JsonError> {
        self.out.push(self.close);
        Ok(())
    }
}

impl<'a> Json<'a> {
    fn open(self, open: u8, close: u8) -> JsonCompound<'a> {
        self.0.push(open);
        JsonCompound { out: self.0, first: true, close }
    }
}

impl<'a> serde::Serializer for Json<'a> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = JsonCompound<'a>;
    type SerializeTuple = JsonCompound<'a>;
    type SerializeTupleStruct = JsonCompound<'a>;
    type SerializeTupleVariant = serde::ser::Impossible<(), JsonError>;
    type SerializeMap = JsonCompound<'a>;
    type SerializeStruct = JsonCompound<'a>;
    type SerializeStructVariant = serde::ser::Impossible<(), JsonError>;

    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), JsonError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), JsonError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), JsonError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), JsonError> {
        if v < 0 {
            self.0.push(b'-');
        }
        push_u64(self.0, v.unsigned_abs());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), JsonError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), JsonError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), JsonError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), JsonError> {
        push_u64(self.0, v);
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), JsonError> {
        Err(unsupported("a float"))
    }
    fn serialize_f64(self, _: f64) -> Result<(), JsonError> {
        Err(unsupported("a float"))
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        push_str_json(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        push_str_json(self.0, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), JsonError> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), JsonError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), JsonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<(), JsonError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), JsonError> {
        Err(unsupported("a newtype variant"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<JsonCompound<'a>, JsonError> {
        Ok(self.open(b'[', b']'))
    }
    fn serialize_tuple(self, _: usize) -> Result<JsonCompound<'a>, JsonError> {
        Ok(self.open(b'[', b']'))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<JsonCompound<'a>, JsonError> {
        Ok(self.open(b'[', b']'))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, JsonError> {
        Err(unsupported("a tuple variant"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<JsonCompound<'a>, JsonError> {
        Ok(self.open(b'{', b'}'))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<JsonCompound<'a>, JsonError> {
        Ok(self.open(b'{', b'}'))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, JsonError> {
        Err(unsupported("a struct variant"))
    }
}

impl serde::ser::SerializeSeq for JsonCompound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), JsonError> {
        self.element(v)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}
impl serde::ser::SerializeTuple for JsonCompound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), JsonError> {
        self.element(v)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}
impl serde::ser::SerializeTupleStruct for JsonCompound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), JsonError> {
        self.element(v)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}
impl serde::ser::SerializeMap for JsonCompound<'_> {
    type Ok = ();
    type Error = JsonError;
    /// Keys must be strings (JSON has no other kind): anything else is an error.
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), JsonError> {
        self.comma();
        let at = self.out.len();
        key.serialize(Json(self.out))?;
        if self.out.get(at) != Some(&b'"') {
            return Err(unsupported("a map key that is not a string"));
        }
        self.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), JsonError> {
        v.serialize(Json(self.out))
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
}
impl serde::ser::SerializeStruct for JsonCompound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, v: &T) -> Result<(), JsonError> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish()
    }
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
    /// Shared by every engine made from it (never copied).
    inner: Arc<Catalog>,
}

#[wasm_bindgen]
impl CatalogHandle {
    /// Reads and validates a catalog document (JSON text; this build has no TOML
    /// reader).
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(text: &str) -> Result<CatalogHandle, JsValue> {
        let doc = catalog_doc_of(text).map_err(|e| catalog_error(&e))?;
        Catalog::from_doc(doc).map(|c| CatalogHandle { inner: Arc::new(c) }).map_err(|e| catalog_error(&e))
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

    /// The names compact answers refer to by index, as JSON, read once per catalog
    /// by the wrapper: `{ products: [{ id, tiers }], tools: [{ id, label }],
    /// upgrades: [Upgrade per offer], reasons: [reason per code] }`.
    pub fn tables(&self) -> Result<String, JsValue> {
        #[derive(Serialize)]
        struct ProductNames<'a> {
            id: &'a str,
            tiers: &'a [String],
        }
        #[derive(Serialize)]
        struct ToolNames<'a> {
            id: &'a str,
            label: &'a str,
        }
        #[derive(Serialize)]
        struct Tables<'a> {
            products: Vec<ProductNames<'a>>,
            tools: Vec<ToolNames<'a>>,
            upgrades: Vec<&'a crate::catalog::Upgrade>,
            reasons: Vec<&'static str>,
        }
        let c = &self.inner;
        to_json(&Tables {
            products: c.products().iter().map(|p| ProductNames { id: &p.id, tiers: &p.tiers }).collect(),
            tools: c.tools().iter().map(|t| ToolNames { id: &t.id, label: &t.label }).collect(),
            upgrades: (0..c.offers().len()).map(|o| c.upgrade_at(o)).collect(),
            reasons: Reason::ALL.iter().map(|r| r.as_str()).collect(),
        })
    }
}

// ---------------------------------------------------------------- engine

/// Catalog + entitlements loaded once; answers by name or, on the hot path, by index.
#[wasm_bindgen]
pub struct EngineHandle {
    inner: Engine,
    /// The catalog given, before any snapshot's terms.
    base: Arc<Catalog>,
}

#[wasm_bindgen]
impl EngineHandle {
    #[wasm_bindgen(constructor)]
    pub fn new(catalog: &CatalogHandle, entitlements: Option<String>) -> Result<EngineHandle, JsValue> {
        let (ents, terms) = entitlements_with_terms(&catalog.inner, entitlements)?;
        let base = Arc::clone(&catalog.inner);
        Ok(EngineHandle { inner: engine_with_terms(&base, ents, &terms), base })
    }

    #[wasm_bindgen(js_name = setEntitlements)]
    pub fn set_entitlements(&mut self, entitlements: Option<String>) -> Result<(), JsValue> {
        let (ents, terms) = entitlements_with_terms(&self.base, entitlements)?;
        if terms.is_empty() && std::ptr::eq(self.inner.catalog(), &*self.base) {
            self.inner.set_entitlements(ents);
        } else {
            self.inner = engine_with_terms(&self.base, ents, &terms);
        }
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

    /// The number of products (the size of the wrapper's per-product cache).
    #[wasm_bindgen(getter, js_name = productCount)]
    pub fn product_count(&self) -> u32 {
        self.inner.catalog().products().len() as u32
    }

    /// The effective tier of product `product_ix` at `now_ms` and the window
    /// the answer holds for: `[tier + 1 (0: none), from_ms, until_ms]`, the
    /// bounds ±Infinity when open. The JS wrapper keeps these per product and
    /// answers `check` without crossing the boundary while the window lasts
    /// (the same rule as the core engine's cache, one side earlier).
    /// An unknown product or a non-finite `now_ms` gives `[0, NaN, NaN]`: never cached.
    pub fn window(&self, product_ix: u32, now_ms: f64) -> Vec<f64> {
        window_of(self.inner.catalog(), self.inner.entitlements(), product_ix as usize, now_ms)
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

    /// A metered decision on any capability, limit or credit pool (`meter::check_feature`,
    /// the rule behind the worker's `POST /v1/check`): a Check as JSON; a malformed
    /// question is an `Error` whose `code` is the core's (`unknown_feature`, `invalid_quantity`).
    #[wasm_bindgen(js_name = checkFeature)]
    pub fn check_feature(&self, feature: &str, quantity: f64, used: f64, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        let quantity = count_of("quantity", quantity).map_err(|_| {
            coded_error(
                format_args!("quantity must be a whole number from 1 to {}", meter::MAX_QUANTITY),
                meter::MeterErrorCode::InvalidQuantity.as_str(),
            )
        })?;
        let used = count_of("used", used)?;
        let now = now_of(now_ms)?;
        to_json(
            &meter::check_feature(e.catalog(), e.entitlements(), feature, quantity, used, now)
                .map_err(|e| coded_error(&e, e.code()))?,
        )
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

    /// Every offer that would allow a denied question, cheapest first, as JSON
    /// `Unlock[]` (`decide::offers_unlocking`): `kind` `product` (`name`, `tier`),
    /// `capability` (`name`), `limit` (`name`, `used`) or `tool` (`name`, `usage`).
    #[wasm_bindgen(js_name = offersUnlocking)]
    pub fn offers_unlocking(
        &self,
        kind: &str,
        name: &str,
        tier: &str,
        used: f64,
        usage: Option<String>,
        now_ms: f64,
    ) -> Result<String, JsValue> {
        let e = &self.inner;
        let usage = usage_of(usage)?;
        let ask = match kind {
            "product" => decide::Ask::Access { product: name, tier },
            "capability" => decide::Ask::Capability(name),
            "limit" => decide::Ask::Limit { limit: name, used: count_of("used", used)? },
            "tool" => decide::Ask::Tool { tool: name, usage: &usage },
            _ => return Err(fail(format_args!("a question is about a product, a capability, a limit or a tool, not `{kind}`"))),
        };
        to_json(&decide::offers_unlocking(e.catalog(), e.entitlements(), ask, now_of(now_ms)?).map_err(fail)?)
    }

    /// Every tool of `page` (every tool when `page` is absent) at once.
    #[wasm_bindgen(js_name = pageState)]
    pub fn page_state(&self, page: Option<String>, usage: Option<String>, now_ms: f64) -> Result<String, JsValue> {
        let e = &self.inner;
        let usage = usage_of(usage)?;
        let now = now_of(now_ms)?;
        to_json(&decide::page_state(e.catalog(), e.entitlements(), page.as_deref(), &usage, now).map_err(fail)?)
    }

    /// [`Self::page_state`] as numbers, [`VERDICT_WIDTH`] per tool: `[tool index,
    /// allowed (0/1), reason code, product index, tier index + 1 (0: none), grant
    /// index + 1 (0: none), holds_until ms (NaN: none), offer index + 1 of the
    /// upgrade (0: none)]`. The wrapper reads the names from `CatalogHandle::tables`
    /// and `grantIds`: one crossing, no text, however many tools.
    #[wasm_bindgen(js_name = pageVerdicts)]
    pub fn page_verdicts(&self, page: Option<String>, usage: Option<String>, now_ms: f64) -> Result<Vec<f64>, JsValue> {
        let e = &self.inner;
        let usage = usage_of(usage)?;
        let now = now_of(now_ms)?;
        let verdicts = decide::page_verdicts(e.catalog(), e.entitlements(), page.as_deref(), &usage, now);
        let mut out = Vec::with_capacity(verdicts.len() * VERDICT_WIDTH);
        for (ti, v) in &verdicts {
            out.push(*ti as f64);
            push_verdict(&mut out, e.entitlements(), v);
        }
        Ok(out)
    }

    /// The ids of the entitlements' grants, in order (what grant indices name).
    #[wasm_bindgen(js_name = grantIds)]
    pub fn grant_ids(&self) -> Vec<String> {
        self.inner.entitlements().grants.iter().map(|g| g.id.clone()).collect()
    }

    /// The next instant any answer can change, as RFC 3339 (None: never, until the entitlements change).
    #[wasm_bindgen(js_name = nextChange)]
    pub fn next_change(&self, now_ms: f64) -> Result<Option<String>, JsValue> {
        let e = &self.inner;
        Ok(decide::next_change(e.catalog(), e.entitlements(), now_of(now_ms)?).map(|t| t.to_rfc3339()))
    }
}

/// [`EngineHandle::window`]: `[tier + 1 (0: none), from_ms, until_ms]`, or `[0, NaN, NaN]`.
fn window_of(catalog: &Catalog, ents: &Entitlements, product_ix: usize, now_ms: f64) -> Vec<f64> {
    let (Some(_), true) = (catalog.products().get(product_ix), now_ms.is_finite() && now_ms.abs() <= MAX_MS) else {
        return vec![0.0, f64::NAN, f64::NAN];
    };
    let now = Timestamp((now_ms / 1000.0).floor() as i64);
    let eff = decide::effective_at(catalog, ents, product_ix, now);
    vec![
        eff.tier.map_or(0.0, |t| t as f64 + 1.0),
        eff.since.map_or(f64::NEG_INFINITY, |s| s.0 as f64 * 1000.0),
        eff.until.map_or(f64::INFINITY, |u| u.0 as f64 * 1000.0),
    ]
}

/// Numbers per tool in [`EngineHandle::page_verdicts`].
const VERDICT_WIDTH: usize = 8;

/// A verdict's seven numbers (after the tool index), as documented on `pageVerdicts`.
fn push_verdict(out: &mut Vec<f64>, ents: &Entitlements, v: &Verdict) {
    let ix = |x: Option<usize>| x.map_or(0.0, |i| i as f64 + 1.0);
    let reason = Reason::ALL.iter().position(|r| *r == v.reason).unwrap_or(0);
    let grant = v.grant.and_then(|g| ents.grants.iter().position(|x| std::ptr::eq(x, g)));
    out.extend_from_slice(&[
        if v.allowed { 1.0 } else { 0.0 },
        reason as f64,
        v.product as f64,
        ix(v.tier),
        ix(grant),
        v.holds_until.map_or(f64::NAN, |t| t.0 as f64 * 1000.0),
        ix(v.upgrade),
    ]);
}

/// An instant (epoch ms, whole seconds) as the core writes it in answers (RFC 3339, UTC).
#[wasm_bindgen(js_name = formatTime)]
pub fn format_time(ms: f64) -> Result<String, JsValue> {
    Ok(now_of(ms)?.to_rfc3339())
}

// ---------------------------------------------------------------- the VCM Suite's rows, converted once

/// The fields of a `cloud_entitlements` row that [`CloudEntitlementRow::into_grant`]
/// reads, in the order the wrapper packs them.
const ROW_FIELDS: usize = 12;

/// One packed field: empty is null, `=` and text is a string; anything else is
/// not what the wrapper writes.
fn packed_field(f: &str) -> Result<Option<&str>, ()> {
    match f.as_bytes().first() {
        None => Ok(None),
        Some(b'=') => Ok(Some(&f[1..])),
        Some(_) => Err(()),
    }
}

/// `n` rows packed by the wrapper as UTF-8: each field (see [`ROW_FIELDS`]) after
/// a U+001F. `Err` whenever the text is not exactly that with every value readable
/// (a value that holds U+001F itself changes the count): the wrapper then hands the
/// objects over as they are, and their reading names the error. (Byte loops: at
/// this wasm's opt-level, `str::split` is a call per character.)
fn unpack_rows(packed: &[u8], n: usize) -> Result<Vec<PackedRow<'_>>, ()> {
    use serde::de::value::{Error as DeError, StrDeserializer};
    const SEP: u8 = 0x1f;
    // Checked as UTF-8 once; U+001F is one byte, so fields split at character boundaries.
    let text = std::str::from_utf8(packed).map_err(|_| ())?;
    let mut at = 0;
    let mut next = || -> Result<&str, ()> {
        if packed.get(at) != Some(&SEP) {
            return Err(());
        }
        let start = at + 1;
        let mut end = start;
        while end < packed.len() && packed[end] != SEP {
            end += 1;
        }
        at = end;
        text.get(start..end).ok_or(())
    };
    let time = |f: Option<&str>| f.map(Timestamp::parse).transpose().map_err(|_| ());
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let mut f = [None; ROW_FIELDS];
        for slot in &mut f {
            *slot = packed_field(next()?)?;
        }
        let [id, cloud_id, tier, source, status, valid_from, valid_to, created_at, updated_at, past_due_since, offer_key, source_ref] = f;
        let source = crate::model::Source::deserialize(StrDeserializer::<DeError>::new(source.ok_or(())?)).map_err(|_| ())?;
        let status = crate::model::Status::deserialize(StrDeserializer::<DeError>::new(status.ok_or(())?)).map_err(|_| ())?;
        rows.push(PackedRow {
            id,
            cloud_id: cloud_id.ok_or(())?,
            tier: tier.ok_or(())?,
            source,
            status,
            valid_from: time(valid_from)?,
            valid_to: time(valid_to)?,
            created_at: time(created_at)?,
            updated_at: time(updated_at)?,
            past_due_since: time(past_due_since)?,
            offer_key,
            source_ref,
        });
    }
    if at != packed.len() {
        return Err(());
    }
    Ok(rows)
}

/// A row read from the packed text, its text still borrowed from it.
struct PackedRow<'a> {
    id: Option<&'a str>,
    cloud_id: &'a str,
    tier: &'a str,
    source: crate::model::Source,
    status: crate::model::Status,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
    created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    past_due_since: Option<Timestamp>,
    offer_key: Option<&'a str>,
    source_ref: Option<&'a str>,
}

impl PackedRow<'_> {
    fn owned(&self) -> CloudEntitlementRow {
        let text = |f: Option<&str>| f.map(str::to_string);
        CloudEntitlementRow {
            id: text(self.id),
            user_id: None,
            cloud_id: self.cloud_id.to_string(),
            tier: self.tier.to_string(),
            source: self.source,
            status: self.status,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            created_at: self.created_at,
            updated_at: self.updated_at,
            past_due_since: self.past_due_since,
            offer_key: text(self.offer_key),
            source_ref: text(self.source_ref),
        }
    }
}

/// [`EngineHandle::window`] over the grants of VCM Suite rows.
fn rows_window(catalog: &CatalogHandle, rows: Vec<CloudEntitlementRow>, product_ix: u32, now_ms: f64) -> Vec<f64> {
    let Some(p) = catalog.inner.products().get(product_ix as usize) else {
        return vec![0.0, f64::NAN, f64::NAN];
    };
    // Only this product's rows can move its tier (the rest were read to check them).
    let grants = rows.into_iter().filter(|r| r.cloud_id == p.id).map(CloudEntitlementRow::into_grant).collect();
    window_of(&catalog.inner, &Entitlements::new(grants), product_ix as usize, now_ms)
}

/// For the VCM Suite app's `hasAccess` over rows, converted by the core on every call
/// of the wrapper that finds no answer of its own: the effective tier of product
/// `product_ix` over the rows' grants at `now_ms`, with the window it holds for
/// (see [`EngineHandle::window`]), from the wrapper's packed text (UTF-8 bytes). Empty when the
/// text is not exactly `n` readable rows (then [`rows_window`] reads the objects
/// and names the error).
#[wasm_bindgen(js_name = rowsWindowPacked)]
pub fn rows_window_packed(catalog: &CatalogHandle, packed: &[u8], n: u32, product_ix: u32, now_ms: f64) -> Vec<f64> {
    let Ok(rows) = unpack_rows(packed, n as usize) else { return Vec::new() };
    // Only this product's rows can move its tier (the rest were read to check them).
    let product = catalog.inner.products().get(product_ix as usize).map(|p| p.id.as_str());
    let grants = rows.iter().filter(|r| Some(r.cloud_id) == product).map(|r| r.owned().into_grant()).collect();
    window_of(&catalog.inner, &Entitlements::new(grants), product_ix as usize, now_ms)
}

/// [`rows_window_packed`] from the row objects; malformed rows are an `Error`
/// naming the row and field.
#[wasm_bindgen(js_name = rowsWindow)]
pub fn rows_window_of(catalog: &CatalogHandle, rows: Option<String>, product_ix: u32, now_ms: f64) -> Result<Vec<f64>, JsValue> {
    Ok(rows_window(catalog, rows_of(rows)?, product_ix, now_ms))
}

// ---------------------------------------------------------------- helpers with the example apps' own signatures

/// The VCM Suite app's `hasAccess` over `cloud_entitlements` rows (JSON), as a boolean.
#[wasm_bindgen(js_name = rowsHasAccess)]
pub fn rows_has_access(
    catalog: &CatalogHandle,
    rows: Option<String>,
    cloud: &str,
    required: &str,
    now_ms: f64,
) -> Result<bool, JsValue> {
    let now = now_of(now_ms)?;
    vcm::has_access_rows(&catalog.inner, rows_of(rows)?, cloud, required, now).map(|d| d.allowed).map_err(fail)
}

/// The VCM Suite app's `hasAccess` with its explanation (a Decision as JSON).
#[wasm_bindgen(js_name = rowsExplainAccess)]
pub fn rows_explain_access(
    catalog: &CatalogHandle,
    rows: Option<String>,
    cloud: &str,
    required: &str,
    now_ms: f64,
) -> Result<String, JsValue> {
    let now = now_of(now_ms)?;
    to_json(&vcm::has_access_rows(&catalog.inner, rows_of(rows)?, cloud, required, now).map_err(fail)?)
}

/// The VCM Suite app's `resolveUserTier`; `user` is JSON (`null` or absent: no user).
#[wasm_bindgen(js_name = resolveUserTier)]
pub fn resolve_user_tier(catalog: &CatalogHandle, user: Option<String>, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    vcm::resolve_user_tier(&catalog.inner, user.as_ref(), now_of(now_ms)?).map_err(fail)
}

/// The VCM Suite app's capability helpers (`canUseAI` ...) as a Decision (JSON).
#[wasm_bindgen(js_name = userCan)]
pub fn user_can(catalog: &CatalogHandle, user: Option<String>, capability: &str, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    to_json(&vcm::user_can(&catalog.inner, user.as_ref(), capability, now_of(now_ms)?).map_err(fail)?)
}

/// The same as [`user_can`], as a boolean.
#[wasm_bindgen(js_name = userAllowed)]
pub fn user_allowed(catalog: &CatalogHandle, user: Option<String>, capability: &str, now_ms: f64) -> Result<bool, JsValue> {
    let user = user_of(user)?;
    vcm::user_can(&catalog.inner, user.as_ref(), capability, now_of(now_ms)?).map(|d| d.allowed).map_err(fail)
}

/// The VCM Suite app's export policy for a user (JSON: `{ policy, message?, upgrade? }`).
#[wasm_bindgen(js_name = userExportPolicy)]
pub fn user_export_policy(catalog: &CatalogHandle, user: Option<String>, now_ms: f64) -> Result<String, JsValue> {
    let user = user_of(user)?;
    to_json(&vcm::user_export_policy(&catalog.inner, user.as_ref(), now_of(now_ms)?).map_err(fail)?)
}

/// The VCM Suite app's workflow rule: may another run start, given the runs today?
/// (a Decision as JSON)
#[wasm_bindgen(js_name = workflowRunAllowed)]
pub fn workflow_run_allowed(
    catalog: &CatalogHandle,
    user: Option<String>,
    runs_today: f64,
    now_ms: f64,
) -> Result<String, JsValue> {
    let user = user_of(user)?;
    let runs = count_of("runsToday", runs_today)?;
    to_json(&vcm::workflow_run_allowed(&catalog.inner, user.as_ref(), runs, now_of(now_ms)?).map_err(fail)?)
}

// ---------------------------------------------------------------- usage pricing

/// The Video Studio app's usage price of `seconds` of `model` at `quality`: the core's
/// `usage::quote`, the same function the worker charges with. A Quote as JSON;
/// a malformed question is an `Error` whose `code` is the core's
/// (`no_usage_pricing`, `unknown_rate`, `out_of_range`, `overflow`).
#[wasm_bindgen]
pub fn quote(catalog: &CatalogHandle, model: &str, quality: &str, seconds: f64) -> Result<String, JsValue> {
    let seconds = count_of("seconds", seconds)?;
    to_json(&usage::quote(&catalog.inner, model, quality, seconds).map_err(|e| coded_error(&e, e.code()))?)
}

// ---------------------------------------------------------------- organizations

/// A member's entitlements through one organization of its snapshot (an entry of the
/// snapshot's `organizations`), decided by the core at `now` (`orgs::org_entitlements`):
/// JSON in the Org Seats app's shape (`tier`, `status`, `seatCount`, `seatsUsed`,
/// `seatsAvailable`, `hasSeat`, `inGracePeriod`, `gracePeriodEndsAt`, `features`, ...).
/// `catalog_id` and `expires_at` are the snapshot's: the entry's grants give nothing from
/// its end on, and an entry of another catalog's snapshot is refused (`wrong_catalog`;
/// `snapshot::membership_under`).
#[wasm_bindgen(js_name = orgEntitlements)]
pub fn org_entitlements(
    catalog: &CatalogHandle,
    membership: &str,
    catalog_id: Option<String>,
    expires_at: Option<String>,
    now_ms: f64,
) -> Result<String, JsValue> {
    let m = membership_of(catalog, membership, catalog_id, expires_at)?;
    to_json(&crate::orgs::org_entitlements(&catalog.inner, &m, now_of(now_ms)?))
}

/// May the member use `feature` (a capability) through that organization now
/// (`orgs::has_feature_access`: only with a seat, only what its tier gives)? The entry as
/// for [`org_entitlements`].
#[wasm_bindgen(js_name = orgFeatureAccess)]
pub fn org_feature_access(
    catalog: &CatalogHandle,
    membership: &str,
    catalog_id: Option<String>,
    expires_at: Option<String>,
    feature: &str,
    now_ms: f64,
) -> Result<bool, JsValue> {
    let m = membership_of(catalog, membership, catalog_id, expires_at)?;
    crate::orgs::has_feature_access(&catalog.inner, &m, feature, now_of(now_ms)?).map_err(fail)
}

fn membership_of(
    catalog: &CatalogHandle,
    membership: &str,
    catalog_id: Option<String>,
    expires_at: Option<String>,
) -> Result<crate::orgs::OrgMembership, JsValue> {
    let m: crate::orgs::OrgMembership = from_json("organization membership", membership)?;
    let end = expires_at
        .map(|t| Timestamp::parse(&t).map_err(|e| js_error(&format!("invalid snapshot expires_at: {e}"))))
        .transpose()?;
    snapshot::membership_under(&catalog.inner, catalog_id.as_deref(), end, m).map_err(|w| coded_error(&w, w.code()))
}

// ---------------------------------------------------------------- signed snapshots

/// Verifies a signed entitlement snapshot with the core's `snapshot::verify`
/// (or `verify_for_subject` when `subject` is given) against the trusted public
/// keys, `kids[i]` naming `keys[i]` (64 hex digits or base64url). The snapshot
/// as JSON; a refusal is an `Error` whose `code` is the core's
/// (`malformed_snapshot`, `bad_signature`, `unknown_key`, `invalid_key`,
/// `expired`, `not_yet_valid`, `wrong_subject`).
#[wasm_bindgen(js_name = verifySnapshot)]
pub fn verify_snapshot(
    token: &str,
    kids: Vec<String>,
    keys: Vec<String>,
    subject: Option<String>,
    now_ms: f64,
) -> Result<String, JsValue> {
    let now = now_of(now_ms)?;
    // A key is read only when the token names it: a broken or unset key under another id
    // (one being rotated out) refuses nothing signed with a good one.
    let mut trusted = Vec::with_capacity(kids.len());
    let mut broken = Vec::new();
    for (kid, text) in kids.into_iter().zip(&keys) {
        match snapshot::decode_key(text) {
            Ok(key) => trusted.push((kid, key)),
            Err(e) => broken.push((kid, e)),
        }
    }
    let verified = match &subject {
        Some(s) => snapshot::verify_for_subject(token, &trusted, s, now),
        None => snapshot::verify(token, &trusted, now),
    };
    match verified {
        Ok(v) => to_json(&v),
        Err(snapshot::SnapshotError::UnknownKey { kid }) if broken.iter().any(|(k, _)| *k == kid) => {
            let e = broken.iter().find(|(k, _)| *k == kid).map(|(_, e)| e.to_string()).unwrap_or_default();
            Err(coded_error(format_args!("trusted public key `{kid}`: {e}"), snapshot::SnapshotErrorCode::InvalidKey.as_str()))
        }
        Err(e) => Err(coded_error(&e, e.code())),
    }
}

// ---------------------------------------------------------------- money

/// A currency code as the core keys it (ISO 4217, lower case).
fn currency_of(currency: &str) -> Result<String, JsValue> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(currency.to_ascii_lowercase())
    } else {
        Err(js_error("`currency` must be a three-letter ISO 4217 code such as \"usd\""))
    }
}

/// An amount in integer minor units as people read it: the core's `Money::display`,
/// the text of every upgrade's `display` ("$59.00", "₹499.00", "1.500 KWD", "500 JPY").
#[wasm_bindgen(js_name = formatMoney)]
pub fn format_money(amount: f64, currency: &str) -> Result<String, JsValue> {
    if !(amount.is_finite() && amount.fract() == 0.0 && amount.abs() <= 9_007_199_254_740_991.0) {
        return Err(js_error("`amount` must be a whole number of minor units"));
    }
    Ok(crate::money::Money { amount: amount as i64, currency: currency_of(currency)? }.display())
}

/// Digits of a currency's minor unit (`money::minor_digits`): 0, 2 or 3.
#[wasm_bindgen(js_name = minorDigits)]
pub fn minor_digits(currency: &str) -> Result<u32, JsValue> {
    Ok(crate::money::minor_digits(&currency_of(currency)?))
}

// ---------------------------------------------------------------- notices

/// What a snapshot tells its subject, as `notices` reads it: the verified snapshot (or any
/// object with its fields).
#[derive(Deserialize)]
#[serde(rename = "Snapshot")]
struct NoticesIn {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    grants: Listed<Grant>,
    /// A pool named twice is refused (see [`EntitlementsIn`]).
    #[serde(default, deserialize_with = "crate::catalog::unique_keys")]
    balances: BTreeMap<String, i64>,
    #[serde(default)]
    alerts: Vec<crate::notices::ShownAlert>,
    #[serde(default)]
    failed_payments: Vec<crate::notices::DuePayment>,
    #[serde(default)]
    terms: Vec<crate::grandfather::Terms>,
    #[serde(default)]
    catalog_id: Option<String>,
    #[serde(default)]
    expires_at: Option<Timestamp>,
}

/// The warnings and payment notices of a snapshot at `now` (the core's `notices`):
/// its open alerts, and the catalog's thresholds its numbers cross now. `used`: what
/// each limit's current window used so far (limit id -> whole number), where known. The
/// snapshot's numbers hold no longer than it does, and another catalog's snapshot is
/// refused (`wrong_catalog`; [`snapshot::entitlements_under`]).
#[wasm_bindgen]
pub fn notices(catalog: &CatalogHandle, snapshot: &str, used: Option<String>, now_ms: f64) -> Result<String, JsValue> {
    let now = now_of(now_ms)?;
    let s: NoticesIn = from_json("snapshot", snapshot)?;
    let used: BTreeMap<String, u64> = match used {
        None => BTreeMap::new(),
        Some(text) => from_json::<Counts<u64>>("used (limit id -> whole number used)", &text)?.0,
    };
    let ents = Entitlements { subject: s.subject, grants: s.grants.0, balances: s.balances, until: None };
    let ents = snapshot::entitlements_under(&catalog.inner, s.catalog_id.as_deref(), s.expires_at, ents)
        .map_err(|w| coded_error(&w, w.code()))?;
    let decided_on = crate::grandfather::apply(&catalog.inner, &s.terms);
    to_json(&crate::notices::notices(&decided_on, &ents, &s.alerts, &s.failed_payments, &used, now))
}
