//! Signed entitlement snapshots: what the worker hands a signed-in user
//! (`GET /v1/entitlements`) and what the browser or a Next.js server checks with
//! the public key alone.
//!
//! A snapshot stops anyone from editing the cached entitlements, not from patching
//! the code that reads them: a browser gate built on it is a convenience, and every
//! paid action is checked again on the server.
//!
//! # Token format, version 1
//!
//! ```text
//! token     = payload_b64 "." signature_b64
//! payload_b64   = base64url(payload), RFC 4648 section 5 alphabet, no "=" padding
//! signature_b64 = base64url(Ed25519(secret key, payload)), no padding: 64 bytes -> 86 characters
//! ```
//!
//! - `payload` is a UTF-8 JSON object; the signature covers exactly these bytes
//!   (the decoded payload, not its base64 text). Verifiers must check the signature
//!   over the bytes they decoded and must not re-serialise the JSON before checking.
//! - Ed25519 is plain RFC 8032 Ed25519 (no context, no pre-hash). The signing key
//!   is a 32-byte secret key (RFC 8032's "private key"); the public key is 32 bytes.
//!   Keys travel as base64url without padding (43 characters) or 64 hex digits.
//! - Base64url is strict: no padding, no whitespace, no other alphabet, and the
//!   unused low bits of the last character must be zero (one text per byte string).
//!   A token is at most [`MAX_TOKEN_LEN`] bytes.
//! - Payload fields (the issuer writes them in this order; verifiers ignore unknown fields):
//!
//! | field             | JSON type                  | meaning |
//! |-------------------|----------------------------|---------|
//! | `v`               | integer                    | format version, `1` |
//! | `kid`             | string                     | id of the signing key, 1 to 64 of `A-Z a-z 0-9 . _ -` |
//! | `subject`         | string                     | the user or organization id the snapshot describes |
//! | `catalog_id`      | string                     | catalog the grants refer to |
//! | `catalog_version` | string                     | its version |
//! | `issued_at`       | RFC 3339 string, UTC       | e.g. `"2026-03-01T00:00:00Z"` |
//! | `expires_at`      | RFC 3339 string, UTC       | later than `issued_at` |
//! | `grants`          | array of grant objects     | [`Grant`] as serialised by the core |
//! | `balances`        | object: pool -> integer    | credit balances in the pool's units |
//! | `refills`         | object: pool -> RFC 3339 (left out when empty) | when each pool that refills by itself next does ([`crate::meter::pool_refill`]); a pool left out does not refill |
//! | `organizations`   | array (left out when empty)| [`OrgMembership`]: `id`, `name`, `role`, `seat`, `seats` {`count`, `used`, `reserved`, `available`}, `grants` |
//! | `alerts`          | array (left out when empty)| [`ShownAlert`]: the subject's open alerts: `rule`, `kind`, `crossed_at`, and as the rule has them `feature`, `percent_used`, `units_left`, `limit`, `ends_at`, `subscription`, `invoice` |
//! | `failed_payments` | array (left out when empty)| [`DuePayment`]: payments still due: `provider`, `invoice`, `subscription`, `amount_due` (minor units), `currency`, `attempts`, `next_retry`, `first_failed_at`, `grace_until` |
//!
//! A grant object has `id`, `product`, `tier`, `source` (`stripe`, `razorpay`,
//! `manual_grant`, `bundle`, `promotion`), `status` (`active`, `trial`, `past_due`,
//! `canceled`), `valid_from` and `valid_to` (RFC 3339 or `null`), and optionally
//! `past_due_since`, `offer`, `source_ref`.
//!
//! # Verifying (any host)
//! 1. Split at the single `.`; base64url-decode both parts strictly; the signature
//!    must be 64 bytes. Otherwise: malformed.
//! 2. Parse the payload as JSON; `v` must be `1` and `kid` a string. Otherwise: malformed.
//! 3. Look `kid` up among the trusted public keys. None: unknown key.
//! 4. Verify the Ed25519 signature over the payload bytes. Failure: bad signature.
//! 5. Read the remaining fields (malformed if any is missing or mistyped, if `issued_at`
//!    or `expires_at` is not RFC 3339 text in UTC, or if `expires_at <= issued_at`). With the verifier's `now`:
//!    `now >= expires_at` is expired; `issued_at > now + ISSUED_AT_SKEW_SECS`
//!    (120 s, for clocks that run a little behind) is not yet valid.
//! 6. Check that `subject` is the signed-in user ([`verify_for_subject`]): a valid
//!    snapshot of someone else is not yours.
//!
//! Error codes (stable, for JSON bodies and other hosts): see [`SnapshotError::code`].
//!
//! Rotation: publish the new public key with a new `kid` next to the old one, start
//! signing with the new secret key, and drop the old key once the longest TTL has passed.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use crate::catalog::{Catalog, CatalogMeta};
use crate::grandfather::Terms;
use crate::model::{Entitlements, Grant};
use crate::notices::{DuePayment, ShownAlert};
use crate::orgs::OrgMembership;
use crate::time::Timestamp;

/// The payload format version this module writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 256 * 1024;
/// How far in the future `issued_at` may lie (verifier clock behind the issuer's).
pub const ISSUED_AT_SKEW_SECS: i64 = 120;
/// Longest key id.
pub const MAX_KID_LEN: usize = 64;

/// The signed content: a subject's grants and balances at one moment.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub v: u32,
    pub kid: String,
    pub subject: String,
    pub catalog_id: String,
    pub catalog_version: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub grants: Vec<Grant>,
    #[serde(deserialize_with = "crate::catalog::unique_keys")]
    pub balances: BTreeMap<String, i64>,
    /// When each credit pool that refills by itself next does, as of `issued_at`
    /// ([`crate::meter::pool_refills`]: a subscription's next period for the pools its
    /// offer grants credits every period). A pool left out does not refill (one-off
    /// purchases, admin credits, free amounts). Left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "crate::catalog::unique_keys")]
    pub refills: BTreeMap<String, Timestamp>,
    /// For a user: each organization it belongs to, with its role, its seat, the seat
    /// counts and the organization's grants (from which [`crate::orgs::org_entitlements`]
    /// decides tier, status, grace and the features the member may use, at any instant).
    /// Left out when empty, so snapshots without organizations are what they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizations: Vec<OrgMembership>,
    /// The subject's open alerts still in force ([`crate::notices::shown_alerts`]), so a
    /// page shows the warning the app was sent. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<ShownAlert>,
    /// Its failed payments still due ([`crate::notices::due_payments`]): amount, currency,
    /// attempts, next retry, grace end. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_payments: Vec<DuePayment>,
    /// The terms its grants are held under where they differ from the catalog version
    /// active at `issued_at` ([`crate::grandfather`]): a host that has only the active
    /// catalog decides with [`Snapshot::catalog`] as the server does. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<Terms>,
}

impl Snapshot {
    /// The catalog its decisions are made on: `active` with the snapshot's terms put in.
    pub fn catalog<'a>(&self, active: &'a Catalog) -> Cow<'a, Catalog> {
        crate::grandfather::apply(active, &self.terms)
    }

    /// The grants and balances, ready for [`crate::Engine`] or [`crate::decide`] over
    /// `catalog` (see [`entitlements_under`]).
    pub fn entitlements(&self, catalog: &Catalog) -> Result<Entitlements, WrongCatalog> {
        let ents = Entitlements { subject: self.subject.clone(), grants: self.grants.clone(), balances: self.balances.clone(), until: None };
        entitlements_under(catalog, Some(&self.catalog_id), Some(self.expires_at), ents)
    }

    /// Its membership of organization `org` (the first when `None`), ready for
    /// [`crate::orgs::org_entitlements`] over `catalog` (see [`membership_under`]).
    pub fn membership(&self, catalog: &Catalog, org: Option<&str>) -> Result<Option<OrgMembership>, WrongCatalog> {
        let m = match org {
            None => self.organizations.first(),
            Some(id) => self.organizations.iter().find(|m| m.id == id),
        };
        m.cloned().map(|m| membership_under(catalog, Some(&self.catalog_id), Some(self.expires_at), m)).transpose()
    }

    /// True from `expires_at` on.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// A snapshot of one catalog handed to decisions over another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrongCatalog {
    /// The snapshot's catalog.
    pub snapshot: String,
    /// The catalog decided over.
    pub catalog: String,
}

impl WrongCatalog {
    pub fn code(&self) -> &'static str {
        "wrong_catalog"
    }
}

impl fmt::Display for WrongCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the entitlements are of catalog `{}`, not of `{}`: verify the snapshot this catalog's worker signed",
            self.snapshot, self.catalog
        )
    }
}

impl std::error::Error for WrongCatalog {}

/// What a snapshot's grants give decisions over `catalog`, from the snapshot or from the
/// part of it an app kept (its catalog id and its end, when it kept them). A snapshot of
/// another catalog is refused: its products are not this catalog's. Its grants hold no
/// longer than it does: from `expires_at` they give nothing, so no answer decided from it
/// holds past its end (a past-due grant's grace included; its balances neither:
/// [`Entitlements::until`]).
pub fn entitlements_under(
    catalog: &Catalog,
    catalog_id: Option<&str>,
    expires_at: Option<Timestamp>,
    mut ents: Entitlements,
) -> Result<Entitlements, WrongCatalog> {
    same_catalog(catalog, catalog_id)?;
    if let Some(end) = expires_at {
        end_by(catalog, &mut ents.grants, end);
        ents.until = Some(ents.until.map_or(end, |u| u.min(end)));
    }
    Ok(ents)
}

/// [`entitlements_under`] for an organization's entry of a member's snapshot: what the
/// organization gives through it holds no longer than the snapshot either (the seat may
/// have been taken since): the entry ends with it ([`OrgMembership::ends_at`]); its grants
/// are left as they were, for what the entry shows (paid through, the grace's end).
pub fn membership_under(
    catalog: &Catalog,
    catalog_id: Option<&str>,
    expires_at: Option<Timestamp>,
    mut m: OrgMembership,
) -> Result<OrgMembership, WrongCatalog> {
    same_catalog(catalog, catalog_id)?;
    if let Some(end) = expires_at {
        m.ends_at = Some(m.ends_at.map_or(end, |e| e.min(end)));
    }
    Ok(m)
}

fn same_catalog(catalog: &Catalog, catalog_id: Option<&str>) -> Result<(), WrongCatalog> {
    match catalog_id.filter(|id| *id != catalog.meta().id) {
        Some(id) => Err(WrongCatalog { snapshot: id.to_string(), catalog: catalog.meta().id.clone() }),
        None => Ok(()),
    }
}

/// Grants that give nothing from `end` on, and before it exactly what they gave: each
/// ends by then, and a past-due one's grace (which counts past its `valid_to`) ends by then
/// too. A canceled grant without an end gives nothing ([`crate::decide::standing`]), so it
/// keeps having none; a past-due one's grace keeps the start it had (its failure, else its
/// end, else its start) before its end is moved.
fn end_by(catalog: &Catalog, grants: &mut [Grant], end: Timestamp) {
    use crate::model::Status;
    let grace = catalog.meta().grace_period_days;
    for g in grants {
        if g.status == Status::PastDue && g.past_due_since.is_none() {
            g.past_due_since = Some(g.valid_to.unwrap_or(g.valid_from));
        }
        if !(g.status == Status::Canceled && g.valid_to.is_none()) {
            g.valid_to = Some(g.valid_to.map_or(end, |t| t.min(end)));
        }
        if g.status == Status::PastDue && crate::decide::grace_end(g, grace) > end {
            g.past_due_since = Some(end.plus_seconds(-i64::from(grace) * crate::time::DAY));
        }
    }
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a token of this format: bad structure, base64, JSON, version or fields.
    Malformed { reason: String },
    /// The signature does not match the payload under the key its `kid` names.
    BadSignature,
    /// No trusted key has this id.
    UnknownKey { kid: String },
    /// The trusted key with this id is not a usable Ed25519 public key.
    InvalidKey { kid: String },
    /// `now` is at or after `expires_at`.
    Expired { expires_at: Timestamp, now: Timestamp },
    /// `issued_at` lies further in the future than the allowed clock skew.
    NotYetValid { issued_at: Timestamp, now: Timestamp },
    /// A valid snapshot, but of another subject.
    WrongSubject { expected: String, found: String },
}

codes! {
    /// The stable code of a [`SnapshotError`].
    pub enum SnapshotErrorCode {
        MalformedSnapshot = "malformed_snapshot",
        BadSignature = "bad_signature",
        UnknownKey = "unknown_key",
        InvalidKey = "invalid_key",
        Expired = "expired",
        NotYetValid = "not_yet_valid",
        WrongSubject = "wrong_subject",
    }
}

impl SnapshotError {
    pub fn kind(&self) -> SnapshotErrorCode {
        match self {
            SnapshotError::Malformed { .. } => SnapshotErrorCode::MalformedSnapshot,
            SnapshotError::BadSignature => SnapshotErrorCode::BadSignature,
            SnapshotError::UnknownKey { .. } => SnapshotErrorCode::UnknownKey,
            SnapshotError::InvalidKey { .. } => SnapshotErrorCode::InvalidKey,
            SnapshotError::Expired { .. } => SnapshotErrorCode::Expired,
            SnapshotError::NotYetValid { .. } => SnapshotErrorCode::NotYetValid,
            SnapshotError::WrongSubject { .. } => SnapshotErrorCode::WrongSubject,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    fn malformed(reason: impl Into<String>) -> Self {
        SnapshotError::Malformed { reason: reason.into() }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Malformed { reason } => write!(f, "malformed entitlement snapshot: {reason}"),
            SnapshotError::BadSignature => {
                f.write_str("the entitlement snapshot's signature does not match its content: it was altered or forged")
            }
            SnapshotError::UnknownKey { kid } => write!(
                f,
                "the entitlement snapshot was signed with key `{kid}`, which is not among the trusted keys \
                 (an old or foreign key, or the public key list is out of date)"
            ),
            SnapshotError::InvalidKey { kid } => {
                write!(f, "the trusted public key `{kid}` is not a valid Ed25519 public key: fix the configuration")
            }
            SnapshotError::Expired { expires_at, now } => {
                write!(f, "the entitlement snapshot expired at {expires_at} (now {now}): fetch a fresh one")
            }
            SnapshotError::NotYetValid { issued_at, now } => write!(
                f,
                "the entitlement snapshot is issued at {issued_at}, after now ({now}) by more than the allowed \
                 {ISSUED_AT_SKEW_SECS} s of clock skew: check this device's clock"
            ),
            SnapshotError::WrongSubject { expected, found } => {
                write!(f, "the entitlement snapshot describes `{found}`, not the signed-in subject `{expected}`")
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// A key or key id that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Neither 64 hex digits nor base64url/base64 text.
    Encoding,
    /// Decoded, but not 32 bytes.
    Length { bytes: usize },
    /// 32 bytes that are not a usable Ed25519 public key.
    NotAPublicKey,
    /// The key id is empty, too long, or uses characters outside `A-Z a-z 0-9 . _ -`.
    BadKid { kid: String },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Encoding => {
                f.write_str("a key must be 32 bytes written as 64 hex digits or as base64url (43 characters)")
            }
            KeyError::Length { bytes } => write!(f, "a key must be 32 bytes, this one has {bytes}"),
            KeyError::NotAPublicKey => f.write_str("these 32 bytes are not a valid Ed25519 public key"),
            KeyError::BadKid { kid } => {
                write!(f, "key id `{kid}` must be 1 to {MAX_KID_LEN} characters of A-Z, a-z, 0-9, `.`, `_` and `-`")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// The signer refused to sign this snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignError {
    /// `v` is not [`SNAPSHOT_VERSION`].
    UnsupportedVersion { v: u32 },
    /// The snapshot names another key than the signer's.
    KidMismatch { signer: String, snapshot: String },
    /// The subject is empty.
    NoSubject,
    /// `expires_at` is not after `issued_at`.
    EmptyValidity { issued_at: Timestamp, expires_at: Timestamp },
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::UnsupportedVersion { v } => {
                write!(f, "snapshot version {v} is not supported (only {SNAPSHOT_VERSION})")
            }
            SignError::KidMismatch { signer, snapshot } => {
                write!(f, "snapshot names key `{snapshot}` but the signer holds key `{signer}`")
            }
            SignError::NoSubject => f.write_str("a snapshot needs a subject (the user or organization id)"),
            SignError::EmptyValidity { issued_at, expires_at } => {
                write!(
                    f,
                    "snapshot expires at {expires_at}, not after its issue time {issued_at}: the TTL must be positive"
                )
            }
        }
    }
}

impl std::error::Error for SignError {}

/// base64url without padding.
pub fn encode_b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a 32-byte key (secret or public key) written as 64 hex digits (either case)
/// or as base64url / standard base64, with or without `=` padding. Surrounding
/// whitespace is ignored.
pub fn decode_key(text: &str) -> Result<[u8; 32], KeyError> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|_| KeyError::Encoding)?
    } else {
        let normalised: String = t
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        URL_SAFE_NO_PAD.decode(normalised.as_bytes()).map_err(|_| KeyError::Encoding)?
    };
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length { bytes: bytes.len() })
}

/// Checks that 32 bytes are a usable (valid, not small-order) Ed25519 public key.
pub fn check_public_key(key: &[u8; 32]) -> Result<(), KeyError> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| KeyError::NotAPublicKey)?;
    if vk.is_weak() {
        return Err(KeyError::NotAPublicKey);
    }
    Ok(())
}

/// Reads and checks a public key (see [`decode_key`] for the accepted forms).
pub fn parse_public_key(text: &str) -> Result<[u8; 32], KeyError> {
    let key = decode_key(text)?;
    check_public_key(&key)?;
    Ok(key)
}

/// The public key belonging to a 32-byte secret key.
pub fn public_key_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadKid { kid: kid.to_string() })
    }
}

/// What a snapshot tells its subject about its account besides its entitlements (what a page
/// makes of it to show a person is [`crate::notices::Notices`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub alerts: Vec<ShownAlert>,
    pub failed_payments: Vec<DuePayment>,
    /// When its credit pools refill ([`crate::meter::pool_refills`]).
    pub refills: BTreeMap<String, Timestamp>,
    /// The terms its grants are held under ([`crate::grandfather::terms`]).
    pub terms: Vec<Terms>,
    /// Until when those terms hold ([`crate::grandfather::terms_until`]): the snapshot
    /// expires then at the latest.
    pub terms_until: Option<Timestamp>,
    /// Until when its balances hold: the first end of a lot they count
    /// ([`crate::credits::Wallet::next_end`]); the snapshot expires then at the latest.
    pub balances_until: Option<Timestamp>,
}

/// A snapshot together with its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub snapshot: Snapshot,
    pub token: String,
}

/// Signs snapshots with one Ed25519 key, known by its key id.
pub struct SnapshotSigner {
    kid: String,
    key: SigningKey,
}

impl fmt::Debug for SnapshotSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotSigner")
            .field("kid", &self.kid)
            .field("public_key", &self.public_key_b64url())
            .finish_non_exhaustive()
    }
}

impl SnapshotSigner {
    /// A signer from a 32-byte secret key (keep it secret; it is zeroised on drop).
    pub fn from_secret(kid: &str, secret: &[u8; 32]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        Ok(SnapshotSigner { kid: kid.to_string(), key: SigningKey::from_bytes(secret) })
    }

    /// A signer from a secret key written as hex or base64url (see [`decode_key`]).
    pub fn from_secret_text(kid: &str, secret: &str) -> Result<Self, KeyError> {
        let mut bytes = decode_key(secret)?;
        let signer = Self::from_secret(kid, &bytes);
        bytes.fill(0);
        signer
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as base64url without padding (43 characters).
    pub fn public_key_b64url(&self) -> String {
        encode_b64url(&self.public_key())
    }

    /// Builds and signs the snapshot of `entitlements` (its `subject`, grants and
    /// balances) for `catalog`, valid from `now` for `ttl_secs` seconds.
    pub fn issue(
        &self,
        entitlements: &Entitlements,
        catalog: &CatalogMeta,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Signed, SignError> {
        self.issue_with_account(entitlements, Vec::new(), Account::default(), catalog, now, ttl_secs)
    }

    /// [`Self::issue`], carrying the organizations the user belongs to and the subject's
    /// account: open alerts, payments due, refills and the terms of its grants (valid until
    /// those terms can change, when that comes before the TTL's end).
    pub fn issue_with_account(
        &self,
        entitlements: &Entitlements,
        organizations: Vec<OrgMembership>,
        account: Account,
        catalog: &CatalogMeta,
        now: Timestamp,
        ttl_secs: u32,
    ) -> Result<Signed, SignError> {
        let snapshot = Snapshot {
            v: SNAPSHOT_VERSION,
            kid: self.kid.clone(),
            subject: entitlements.subject.clone(),
            catalog_id: catalog.id.clone(),
            catalog_version: catalog.version.clone(),
            issued_at: now,
            expires_at: [account.terms_until, account.balances_until]
                .into_iter()
                .flatten()
                .fold(now.plus_seconds(i64::from(ttl_secs)), Timestamp::min),
            grants: entitlements.grants.clone(),
            balances: entitlements.balances.clone(),
            refills: account.refills,
            organizations,
            alerts: account.alerts,
            failed_payments: account.failed_payments,
            terms: account.terms,
        };
        let token = self.sign(&snapshot)?;
        Ok(Signed { snapshot, token })
    }

    /// Signs a snapshot as it is; it must carry version 1, this signer's key id,
    /// a subject, and `expires_at` after `issued_at`.
    pub fn sign(&self, snapshot: &Snapshot) -> Result<String, SignError> {
        if snapshot.v != SNAPSHOT_VERSION {
            return Err(SignError::UnsupportedVersion { v: snapshot.v });
        }
        if snapshot.kid != self.kid {
            return Err(SignError::KidMismatch { signer: self.kid.clone(), snapshot: snapshot.kid.clone() });
        }
        if snapshot.subject.is_empty() {
            return Err(SignError::NoSubject);
        }
        if snapshot.expires_at <= snapshot.issued_at {
            return Err(SignError::EmptyValidity { issued_at: snapshot.issued_at, expires_at: snapshot.expires_at });
        }
        let payload = serde_json::to_vec(snapshot).expect("a snapshot always serialises");
        Ok(self.sign_payload(&payload))
    }

    /// Signs arbitrary payload bytes into a token. Only for building test tokens
    /// (a payload that is not a valid snapshot fails verification as malformed).
    pub fn sign_payload(&self, payload: &[u8]) -> String {
        let signature = self.key.sign(payload);
        let mut token = encode_b64url(payload);
        token.push('.');
        token.push_str(&encode_b64url(&signature.to_bytes()));
        token
    }
}

/// The two fields needed before the signature can be checked, and the payload's times as
/// written.
#[derive(Deserialize)]
struct Envelope {
    v: u32,
    kid: String,
    /// For the check that they are RFC 3339 text in UTC (step 5).
    #[serde(default)]
    issued_at: serde_json::Value,
    #[serde(default)]
    expires_at: serde_json::Value,
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, SnapshotError> {
    if part.is_empty() {
        return Err(SnapshotError::malformed(format!("the {what} part is empty")));
    }
    URL_SAFE_NO_PAD
        .decode(part.as_bytes())
        .map_err(|_| SnapshotError::malformed(format!("the {what} part is not unpadded base64url")))
}

/// Verifies a token against the trusted public keys (`(kid, key)` pairs) at `now`
/// and returns its snapshot. See the module docs for the order of the checks.
pub fn verify<K: AsRef<str>>(token: &str, keys: &[(K, [u8; 32])], now: Timestamp) -> Result<Snapshot, SnapshotError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(SnapshotError::malformed(format!("the token is longer than {MAX_TOKEN_LEN} bytes")));
    }
    let Some((payload_b64, signature_b64)) = token.split_once('.') else {
        return Err(SnapshotError::malformed("expected two base64url parts separated by `.`"));
    };
    if signature_b64.contains('.') {
        return Err(SnapshotError::malformed("expected exactly two parts separated by `.`"));
    }
    let payload = decode_part(payload_b64, "payload")?;
    let signature = decode_part(signature_b64, "signature")?;
    let signature: [u8; 64] = signature
        .as_slice()
        .try_into()
        .map_err(|_| SnapshotError::malformed(format!("the signature is {} bytes, not 64", signature.len())))?;

    let envelope: Envelope = serde_json::from_slice(&payload)
        .map_err(|e| SnapshotError::malformed(format!("the payload is not a snapshot object ({e})")))?;
    if envelope.v != SNAPSHOT_VERSION {
        return Err(SnapshotError::malformed(format!(
            "snapshot version {} is not supported (only {SNAPSHOT_VERSION})",
            envelope.v
        )));
    }
    let Some((_, key)) = keys.iter().find(|(kid, _)| kid.as_ref() == envelope.kid) else {
        return Err(SnapshotError::UnknownKey { kid: envelope.kid });
    };
    let invalid_key = || SnapshotError::InvalidKey { kid: envelope.kid.clone() };
    let vk = VerifyingKey::from_bytes(key).map_err(|_| invalid_key())?;
    if vk.is_weak() {
        return Err(invalid_key());
    }
    vk.verify_strict(&payload, &Signature::from_bytes(&signature)).map_err(|_| SnapshotError::BadSignature)?;

    let snapshot: Snapshot = serde_json::from_slice(&payload)
        .map_err(|e| SnapshotError::malformed(format!("signed payload has bad fields ({e})")))?;
    // The format's times are RFC 3339 text in UTC; the reader of times also takes Unix
    // seconds and offsets, which another host following the format would refuse.
    for (name, raw) in [("issued_at", &envelope.issued_at), ("expires_at", &envelope.expires_at)] {
        let utc = raw
            .as_str()
            .is_some_and(|t| t.trim() == t && ["Z", "z", "+00:00"].iter().any(|z| t.ends_with(z)) && Timestamp::parse(t).is_ok());
        if !utc {
            return Err(SnapshotError::malformed(format!("{name} is not an RFC 3339 time in UTC (e.g. \"2026-03-01T00:00:00Z\")")));
        }
    }
    if snapshot.expires_at <= snapshot.issued_at {
        return Err(SnapshotError::malformed("expires_at is not after issued_at"));
    }
    if now >= snapshot.expires_at {
        return Err(SnapshotError::Expired { expires_at: snapshot.expires_at, now });
    }
    if snapshot.issued_at > now.plus_seconds(ISSUED_AT_SKEW_SECS) {
        return Err(SnapshotError::NotYetValid { issued_at: snapshot.issued_at, now });
    }
    Ok(snapshot)
}

/// [`verify`], then checks that the snapshot describes `subject` (the signed-in user).
pub fn verify_for_subject<K: AsRef<str>>(
    token: &str,
    keys: &[(K, [u8; 32])],
    subject: &str,
    now: Timestamp,
) -> Result<Snapshot, SnapshotError> {
    let snapshot = verify(token, keys, now)?;
    if snapshot.subject != subject {
        return Err(SnapshotError::WrongSubject { expected: subject.to_string(), found: snapshot.subject });
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_rules() {
        assert!(check_kid("snap-2026.03_a").is_ok());
        for bad in ["", "has space", "slash/", &"k".repeat(65), "é"] {
            assert_eq!(check_kid(bad), Err(KeyError::BadKid { kid: bad.to_string() }));
        }
    }

    #[test]
    fn key_text_forms() {
        let bytes: [u8; 32] = core::array::from_fn(|i| (i * 7 + 250) as u8);
        let b64url = encode_b64url(&bytes);
        assert_eq!(b64url.len(), 43);
        let std_padded = base64::engine::general_purpose::STANDARD.encode(bytes);
        for text in [hex::encode(bytes), hex::encode_upper(bytes), b64url.clone(), format!(" {b64url}\n"), std_padded] {
            assert_eq!(decode_key(&text), Ok(bytes), "{text}");
        }
        assert_eq!(decode_key("abcd"), Err(KeyError::Length { bytes: 3 }));
        assert_eq!(decode_key("not base64!"), Err(KeyError::Encoding));
    }

    fn grant(id: &str, valid_to: Option<i64>) -> Grant {
        let g = serde_json::json!({"id": id, "product": "video", "tier": "pro", "source": "stripe", "status": "active",
                                   "valid_from": Timestamp(0), "valid_to": valid_to.map(Timestamp)});
        serde_json::from_value(g).expect("a grant")
    }

    #[test]
    fn a_snapshots_grants_end_with_it_and_serve_only_its_catalog() {
        let catalog = Catalog::from_toml(include_str!("../catalogs/vcm-suite.toml")).expect("catalog");
        let id = catalog.meta().id.clone();
        let ents = Entitlements::new(vec![grant("open", None), grant("later", Some(500)), grant("sooner", Some(50))]);
        let under = entitlements_under(&catalog, Some(&id), Some(Timestamp(100)), ents.clone()).unwrap();
        let ends: Vec<_> = under.grants.iter().map(|g| g.valid_to).collect();
        assert_eq!(ends, [Some(Timestamp(100)), Some(Timestamp(100)), Some(Timestamp(50))]);
        // Kept without its end or its catalog id: the grants as they are.
        assert_eq!(entitlements_under(&catalog, None, None, ents.clone()).unwrap(), ents);
        let e = entitlements_under(&catalog, Some("another"), Some(Timestamp(100)), ents).unwrap_err();
        assert_eq!((e.code(), e.snapshot.as_str(), e.catalog.as_str()), ("wrong_catalog", "another", id.as_str()));
    }
}
