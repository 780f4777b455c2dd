//! What parsing a provider event gives, and how it fails. Helpers shared by
//! the Stripe and Razorpay parsers.

use serde::Serialize;
use std::fmt;

use super::facts::{Fact, Provider, Subject};
use super::json::At;
use crate::catalog::{Catalog, Offer, SubjectKind};
use crate::time::Timestamp;

/// A malformed event: which field is missing or wrong, and why. The worker never
/// answers a correctly signed event with a 4xx (a provider retries any non-2xx, Stripe
/// for up to three days, and then drops the event): it keeps the body with this reason
/// (200 `kept`) for an operator. Metadata the app wrote (an offer key, a bundle's
/// products, the buyer) is never a reason to refuse an event: a wrong value is a
/// warning, and what the prices say wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ParseError {
    /// Not JSON at all.
    InvalidJson { message: String },
    /// A required field is missing or `null`.
    MissingField { path: String },
    /// A field has the wrong JSON type.
    WrongType { path: String, expected: String },
    /// A field has a value tollgate cannot use.
    InvalidValue { path: String, message: String },
    /// The event names an offer the catalog does not have.
    UnknownOffer { path: String, offer: String },
    /// The event is of the provider account's other mode (Stripe's `livemode`) than the
    /// one the endpoint serves: `event` and `endpoint` are `live` or `test`.
    WrongMode { event: &'static str, endpoint: &'static str },
}

impl ParseError {
    /// A stable snake_case code for JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::InvalidJson { .. } => "invalid_json",
            ParseError::MissingField { .. } => "missing_field",
            ParseError::WrongType { .. } => "wrong_type",
            ParseError::InvalidValue { .. } => "invalid_value",
            ParseError::UnknownOffer { .. } => "unknown_offer",
            ParseError::WrongMode { .. } => "wrong_mode",
        }
    }
    /// The field it is about (empty for invalid JSON).
    pub fn path(&self) -> &str {
        match self {
            ParseError::InvalidJson { .. } => "",
            ParseError::WrongMode { .. } => "livemode",
            ParseError::MissingField { path }
            | ParseError::WrongType { path, .. }
            | ParseError::InvalidValue { path, .. }
            | ParseError::UnknownOffer { path, .. } => path,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::InvalidJson { message } => write!(f, "the body is not valid JSON: {message}"),
            ParseError::MissingField { path } => write!(f, "missing field `{path}`"),
            ParseError::WrongType { path, expected } => write!(f, "field `{path}` must be {expected}"),
            ParseError::InvalidValue { path, message } => write!(f, "field `{path}`: {message}"),
            ParseError::UnknownOffer { path, offer } => {
                write!(f, "field `{path}`: offer `{offer}` is not in the catalog")
            }
            ParseError::WrongMode { event, endpoint } => write!(
                f,
                "a {event}-mode event at an endpoint that serves {endpoint} mode (the mode of the worker's STRIPE_SECRET_KEY): \
                 it changes nothing here; kept in case the mode was set up wrong"
            ),
        }
    }
}
impl std::error::Error for ParseError {}

/// The envelope of a provider event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventInfo {
    pub provider: Provider,
    /// The provider's event id (`evt_...`; Razorpay's `x-razorpay-event-id`, or a
    /// digest of the body when that header is not given).
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: Timestamp,
}

/// What an event means for billing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Parsed {
    /// Facts to store and fold (one event may give several), and what was wrong with the
    /// event's metadata and set aside (an unknown offer key, a bundle choice that does not
    /// fit the offer, a malformed buyer).
    Facts {
        event: EventInfo,
        facts: Vec<Fact>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// Understood and deliberately not used: acknowledge it (2xx) and move on.
    Ignored { event: EventInfo, reason: String },
}

impl Parsed {
    pub fn event(&self) -> &EventInfo {
        match self {
            Parsed::Facts { event, .. } | Parsed::Ignored { event, .. } => event,
        }
    }
    pub fn facts(&self) -> &[Fact] {
        match self {
            Parsed::Facts { facts, .. } => facts,
            Parsed::Ignored { .. } => &[],
        }
    }
    /// What was wrong with the event's metadata and set aside.
    pub fn warnings(&self) -> &[String] {
        match self {
            Parsed::Facts { warnings, .. } => warnings,
            Parsed::Ignored { .. } => &[],
        }
    }
    pub fn into_facts(self) -> Vec<Fact> {
        match self {
            Parsed::Facts { facts, .. } => facts,
            Parsed::Ignored { .. } => Vec::new(),
        }
    }
}

pub(crate) fn parse_json(raw: &str) -> Result<serde_json::Value, ParseError> {
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| ParseError::InvalidJson { message: e.to_string() })?;
    if !v.is_object() {
        return Err(ParseError::WrongType { path: "(body)".into(), expected: "a JSON object".into() });
    }
    Ok(v)
}

/// Looks up an offer named in metadata; an unknown key is an error (the
/// integration and the catalog disagree), not something to ignore.
/// The offer an app's metadata names, or `None` with a warning when the catalog has no
/// such offer (the event's prices may still say what was sold).
pub(crate) fn offer_or_warn<'c>(
    catalog: &'c Catalog,
    key: Option<String>,
    path: String,
    warnings: &mut Vec<String>,
) -> Option<&'c Offer> {
    let key = key?;
    match catalog.offer(&key) {
        Some(o) => Some(o),
        None => {
            warnings.push(ParseError::UnknownOffer { path, offer: key }.to_string());
            None
        }
    }
}

/// [`subject_from`], with a malformed buyer set aside as a warning: the event then waits
/// for an operator to attribute it.
pub(crate) fn subject_or_warn(
    obj: &At<'_>,
    map: &str,
    fallback_id: Option<&str>,
    offer: Option<&Offer>,
    warnings: &mut Vec<String>,
) -> Result<Option<Subject>, ParseError> {
    match subject_from(obj, map, fallback_id, offer) {
        Ok(s) => Ok(s),
        Err(e @ ParseError::InvalidValue { .. }) => {
            warnings.push(e.to_string());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A bundle's chosen products, checked against the offer: a choice that does not fit is
/// set aside with a warning (the purchase still stands, and an operator may choose).
pub(crate) fn clouds_or_warn(
    catalog: &Catalog,
    offer: Option<&Offer>,
    clouds: Vec<String>,
    path: &str,
    paid: bool,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let Some(o) = offer.filter(|o| bundle_size(o) > 0) else { return clouds };
    if clouds.is_empty() {
        if paid {
            warnings.push(format!(
                "{}; offer `{}` is a bundle and no products were chosen",
                ParseError::MissingField { path: path.to_string() },
                o.key
            ));
        }
        return clouds;
    }
    match check_clouds(catalog, o, &clouds, path) {
        Ok(()) => clouds,
        Err(e) => {
            warnings.push(e.to_string());
            Vec::new()
        }
    }
}

/// A whole number the app wrote in metadata (`quantity`), or `None` with a warning.
pub(crate) fn meta_count(a: &At<'_>, map: &str, k: &str, warnings: &mut Vec<String>) -> Result<Option<u32>, ParseError> {
    let Some(q) = a.meta(map, k)? else { return Ok(None) };
    match q.trim().parse::<u32>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => {
            warnings.push(format!("field `{}`: `{q}` is not a whole number", a.field_path(&format!("{map}.{k}"))));
            Ok(None)
        }
    }
}


/// The subject named by a metadata / notes map: `subject` (`user:..` / `org:..`),
/// `org_id` / `organization_id`, or `user_id`; `fallback_id` (Stripe's
/// `client_reference_id`) when none is set. An offer sold to organizations
/// reads a bare id as an organization.
pub(crate) fn subject_from(
    obj: &At<'_>,
    map: &str,
    fallback_id: Option<&str>,
    offer: Option<&Offer>,
) -> Result<Option<Subject>, ParseError> {
    if let Some(s) = obj.meta(map, "subject")? {
        return Subject::parse(&s)
            .map(Some)
            .map_err(|m| ParseError::InvalidValue { path: obj.field_path(&format!("{map}.subject")), message: m });
    }
    let org = match obj.meta(map, "org_id")? {
        Some(o) => Some(o),
        None => obj.meta(map, "organization_id")?,
    };
    // Every buyer id is read as a subject is (trimmed, at most 256 characters, no control
    // characters), so what is stored reads back as the same subject.
    let checked = |text: String, field: &str| {
        Subject::parse(&text).map(Some).map_err(|m| ParseError::InvalidValue { path: obj.field_path(field), message: m })
    };
    if let Some(o) = org {
        return checked(format!("org:{o}"), map);
    }
    let id = match fallback_id {
        Some(f) => Some(f.to_string()),
        None => obj.meta(map, "user_id")?,
    };
    let Some(id) = id else { return Ok(None) };
    let kind = offer.map(|o| o.subject).unwrap_or(SubjectKind::User);
    if id.starts_with("org:") || id.starts_with("user:") {
        return checked(id, map);
    }
    let prefix = if kind == SubjectKind::Organization { "org" } else { "user" };
    checked(format!("{prefix}:{id}"), map)
}

/// `metadata.clouds = "video,writing"` -> `["video", "writing"]`.
pub(crate) fn split_clouds(s: Option<String>) -> Vec<String> {
    s.map(|s| s.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()).unwrap_or_default()
}

/// How many products a bundle offer lets the buyer choose (0: not a bundle).
pub(crate) fn bundle_size(offer: &Offer) -> u32 {
    offer.grants.iter().filter_map(|g| g.choose).sum()
}

/// Checks the chosen products of a bundle: exactly as many as the offer
/// chooses, each one eligible, none twice.
pub(crate) fn check_clouds(catalog: &Catalog, offer: &Offer, clouds: &[String], path: &str) -> Result<(), ParseError> {
    let n = bundle_size(offer);
    if n == 0 {
        return Ok(());
    }
    let invalid = |message: String| ParseError::InvalidValue { path: path.to_string(), message };
    if clouds.len() != n as usize {
        return Err(invalid(format!(
            "offer `{}` is a bundle of {n} products, chosen as a comma-separated list such as \"video,writing\"; got {} ({})",
            offer.key,
            clouds.len(),
            clouds.join(",")
        )));
    }
    for (i, c) in clouds.iter().enumerate() {
        if clouds[..i].contains(c) {
            return Err(invalid(format!("`{c}` is chosen twice")));
        }
        let eligible = offer.grants.iter().filter(|g| g.choose.is_some()).any(|g| {
            if g.from.is_empty() {
                catalog.tier_index(c, &g.tier).is_some()
            } else {
                g.from.iter().any(|f| f == c)
            }
        });
        if !eligible {
            let from: Vec<&str> = offer
                .grants
                .iter()
                .filter(|g| g.choose.is_some())
                .flat_map(|g| g.from.iter().map(|s| s.as_str()))
                .collect();
            return Err(invalid(format!(
                "`{c}` cannot be chosen in offer `{}`{}",
                offer.key,
                if from.is_empty() { String::new() } else { format!(" (choose from: {})", from.join(", ")) }
            )));
        }
    }
    Ok(())
}

/// A non-negative integer that fits a `u32` (quantities, attempts).
pub(crate) fn count(a: &At<'_>, k: &str, default: u32) -> Result<u32, ParseError> {
    match a.opt_i64(k)? {
        None => Ok(default),
        Some(n) => u32::try_from(n).map_err(|_| ParseError::InvalidValue {
            path: a.field_path(k),
            message: format!("{n} is not a valid count"),
        }),
    }
}
