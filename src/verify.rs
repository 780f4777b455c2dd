//! Webhook signature verification for Stripe and Razorpay. Pure functions: the
//! caller passes the raw request body, the header value and `now`.
//!
//! # Stripe
//! Stripe sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`.
//! Each `v1` is the lower-case hex HMAC-SHA256 of `"{t}.{raw body}"` keyed with an
//! endpoint secret: the whole `whsec_...` string, as bytes. While a secret is being
//! rolled (up to 24 hours) Stripe sends one `v1` per active secret, so a delivery is
//! accepted when **any** `v1` matches under **any** configured secret. `v0` (a test
//! mode decoy) and unknown schemes are ignored. Tags are compared in constant time.
//!
//! The timestamp is checked only after a signature matched (so the time in a
//! [`StripeError::TimestampOutOfTolerance`] is authentic), in both directions:
//! `|now - t| <= tolerance`. The default tolerance is [`DEFAULT_TOLERANCE_SECS`]
//! (300 s). Unlike Stripe's own libraries, a tolerance of `0` does **not** switch
//! the check off: it accepts only `t == now`. Switching it off is explicit
//! (`tolerance = None`, [`StripeVerifier::without_timestamp_check`]) and meant for
//! replaying stored events; a negative tolerance cannot be expressed.
//!
//! # Razorpay
//! Razorpay sends `X-Razorpay-Signature: <hex HMAC-SHA256 of the raw body>` keyed
//! with the webhook secret. The signature carries no timestamp, so nothing here
//! stops a replay: deduplicate deliveries by event id (`x-razorpay-event-id`).
//!
//! # Errors
//! Every failure is a typed error with a human message (`Display`) and a stable
//! snake_case [`code`](StripeError::code) for JSON bodies. All of them mean "bad
//! input" (HTTP 400); a misconfigured verifier is refused when it is built
//! ([`SecretError`]), not at request time.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::time::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance between the signed timestamp and `now`, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Header names, as the providers spell them (HTTP header names are case-insensitive).
pub const STRIPE_SIGNATURE_HEADER: &str = "Stripe-Signature";
pub const RAZORPAY_SIGNATURE_HEADER: &str = "X-Razorpay-Signature";

/// Why a Stripe delivery was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StripeError {
    /// No `Stripe-Signature` header, or an empty one.
    MissingHeader,
    /// The header is not a list of `key=value` items with one integer `t`.
    UnparsableHeader { reason: &'static str },
    /// The header carries no `v1` signature (only `v0` or unknown schemes).
    NoV1Signature,
    /// No `v1` signature matches the body under any configured secret.
    NoMatch,
    /// A signature matched, but its timestamp is too far from `now`.
    TimestampOutOfTolerance { timestamp: Timestamp, now: Timestamp, tolerance: u64 },
}

impl StripeError {
    /// Stable machine-readable code for JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            StripeError::MissingHeader => "missing_signature",
            StripeError::UnparsableHeader { .. } => "malformed_signature",
            StripeError::NoV1Signature => "no_v1_signature",
            StripeError::NoMatch => "signature_mismatch",
            StripeError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
        }
    }
}

impl fmt::Display for StripeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StripeError::MissingHeader => {
                write!(f, "missing {STRIPE_SIGNATURE_HEADER} header: the request was not signed by Stripe")
            }
            StripeError::UnparsableHeader { reason } => write!(
                f,
                "unparsable {STRIPE_SIGNATURE_HEADER} header ({reason}); expected `t=<unix seconds>,v1=<hex signature>`"
            ),
            StripeError::NoV1Signature => write!(
                f,
                "the {STRIPE_SIGNATURE_HEADER} header has no v1 signature (v0 and other schemes are not accepted)"
            ),
            StripeError::NoMatch => f.write_str(
                "no v1 signature matches the payload under any configured endpoint secret: check the \
                 endpoint secret (whsec_...) and that the raw request body reaches the verifier byte for byte",
            ),
            StripeError::TimestampOutOfTolerance { timestamp, now, tolerance } => {
                let delta = i128::from(now.unix()) - i128::from(timestamp.unix());
                let (amount, direction) = if delta >= 0 { (delta, "older than") } else { (-delta, "ahead of") };
                write!(
                    f,
                    "signature timestamp {timestamp} is {amount} s {direction} now ({now}), beyond the \
                     tolerance of {tolerance} s: a replayed or badly delayed delivery, or a wrong clock"
                )
            }
        }
    }
}

impl std::error::Error for StripeError {}

/// Why a Razorpay delivery was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RazorpayError {
    /// No `X-Razorpay-Signature` header, or an empty one.
    MissingHeader,
    /// The header is not 64 lower-case hexadecimal digits.
    UnparsableHeader,
    /// The signature does not match the body under any configured secret.
    NoMatch,
}

impl RazorpayError {
    /// Stable machine-readable code for JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RazorpayError::MissingHeader => "missing_signature",
            RazorpayError::UnparsableHeader => "malformed_signature",
            RazorpayError::NoMatch => "signature_mismatch",
        }
    }
}

impl fmt::Display for RazorpayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RazorpayError::MissingHeader => {
                write!(f, "missing {RAZORPAY_SIGNATURE_HEADER} header: the request was not signed by Razorpay")
            }
            RazorpayError::UnparsableHeader => write!(
                f,
                "unparsable {RAZORPAY_SIGNATURE_HEADER} header: expected 64 lower-case hexadecimal digits (HMAC-SHA256)"
            ),
            RazorpayError::NoMatch => f.write_str(
                "the Razorpay signature does not match the payload under any configured webhook secret: check \
                 the webhook secret and that the raw request body reaches the verifier byte for byte",
            ),
        }
    }
}

impl std::error::Error for RazorpayError {}

/// A verifier configuration that cannot work. Found when the verifier is built,
/// so a deployment with a broken secret fails at start, not on every delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// No secret was given.
    NoSecrets,
    /// The secret at this position (0-based) is empty.
    Empty { index: usize },
    /// The secret at this position contains whitespace, usually a stray newline
    /// from copying it into an environment variable.
    Whitespace { index: usize },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NoSecrets => f.write_str("no webhook signing secret is configured"),
            SecretError::Empty { index } => write!(f, "webhook signing secret #{} is empty", index + 1),
            SecretError::Whitespace { index } => write!(
                f,
                "webhook signing secret #{} contains whitespace (a stray space or newline in the configured value?)",
                index + 1
            ),
        }
    }
}

impl std::error::Error for SecretError {}

fn check_secrets<I, S>(secrets: I) -> Result<Vec<Vec<u8>>, SecretError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    for (index, s) in secrets.into_iter().enumerate() {
        let s = s.as_ref();
        if s.is_empty() {
            return Err(SecretError::Empty { index });
        }
        if s.chars().any(char::is_whitespace) {
            return Err(SecretError::Whitespace { index });
        }
        out.push(s.as_bytes().to_vec());
    }
    if out.is_empty() {
        return Err(SecretError::NoSecrets);
    }
    Ok(out)
}

/// Splits a configured list of secrets (`"whsec_a,whsec_b"`, or separated by
/// whitespace or newlines) into its items, dropping empty ones.
pub fn split_secret_list(list: &str) -> Vec<&str> {
    list.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).collect()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Decodes a tag written as 64 lower-case hex digits, the only form Stripe and
/// Razorpay send (their own libraries compare the hex strings exactly); anything
/// else is `None`.
fn decode_tag(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

// ---------------------------------------------------------------- Stripe

/// The parts of a `Stripe-Signature` header that matter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeHeader<'a> {
    pub timestamp: i64,
    /// The `v1` values, in header order, undecoded (a value that is not 64 hex
    /// digits simply matches nothing).
    pub v1: Vec<&'a str>,
}

/// Parses a `Stripe-Signature` header value. Items are `key=value` separated by
/// commas (spaces around items are tolerated); `t` must appear exactly once as a
/// non-negative integer; `v1` may repeat; other keys (`v0`, future schemes) are ignored.
pub fn parse_stripe_header(header: Option<&str>) -> Result<StripeHeader<'_>, StripeError> {
    let header = match header.map(str::trim) {
        None | Some("") => return Err(StripeError::MissingHeader),
        Some(h) => h,
    };
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(StripeError::UnparsableHeader { reason: "an item is not of the form key=value" });
        };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(StripeError::UnparsableHeader { reason: "more than one timestamp `t`" });
                }
                let value = value.trim();
                if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(StripeError::UnparsableHeader {
                        reason: "the timestamp `t` is not a whole number of seconds",
                    });
                }
                timestamp = Some(value.parse::<i64>().expect("at most 18 digits fit in i64"));
            }
            "v1" => v1.push(value.trim()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err(StripeError::UnparsableHeader { reason: "no timestamp `t`" });
    };
    Ok(StripeHeader { timestamp, v1 })
}

/// Verifies a Stripe webhook delivery and returns the signed timestamp.
///
/// `payload` is the raw request body, exactly as received; `header` the value of
/// `Stripe-Signature` (`None` when absent); `secrets` the endpoint secrets in use
/// (several during a rotation); `tolerance` the allowed distance between the
/// signed timestamp and `now` in seconds, `None` to skip that check.
/// An empty `secrets` list matches nothing ([`StripeVerifier::new`] refuses it).
pub fn verify_stripe<S: AsRef<[u8]>>(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[S],
    tolerance: Option<u64>,
    now: Timestamp,
) -> Result<Timestamp, StripeError> {
    let parsed = parse_stripe_header(header)?;
    if parsed.v1.is_empty() {
        return Err(StripeError::NoV1Signature);
    }
    let candidates: Vec<[u8; 32]> = parsed.v1.iter().filter_map(|s| decode_tag(s)).collect();
    let t = parsed.timestamp.to_string();
    let mut matched = false;
    for secret in secrets {
        let expected = hmac_sha256(secret.as_ref(), &[t.as_bytes(), b".", payload]);
        for c in &candidates {
            if bool::from(expected.ct_eq(c)) {
                matched = true;
            }
        }
    }
    if !matched {
        return Err(StripeError::NoMatch);
    }
    let timestamp = Timestamp::from_unix(parsed.timestamp);
    if let Some(tolerance) = tolerance {
        let distance = (i128::from(now.unix()) - i128::from(parsed.timestamp)).unsigned_abs();
        if distance > u128::from(tolerance) {
            return Err(StripeError::TimestampOutOfTolerance { timestamp, now, tolerance });
        }
    }
    Ok(timestamp)
}

/// A Stripe endpoint's verification settings: its secrets and the tolerance.
#[derive(Clone)]
pub struct StripeVerifier {
    secrets: Vec<Vec<u8>>,
    tolerance: Option<u64>,
}

impl fmt::Debug for StripeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeVerifier")
            .field("secrets", &format_args!("[{} redacted]", self.secrets.len()))
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl StripeVerifier {
    /// One or more endpoint secrets (`whsec_...`), the default tolerance of 300 s.
    pub fn new<I, S>(secrets: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(StripeVerifier { secrets: check_secrets(secrets)?, tolerance: Some(DEFAULT_TOLERANCE_SECS) })
    }

    /// Secrets from one configured string, separated by commas or whitespace.
    pub fn from_secret_list(list: &str) -> Result<Self, SecretError> {
        Self::new(split_secret_list(list))
    }

    /// Allowed distance in seconds between the signed timestamp and `now`, either way.
    pub fn with_tolerance(mut self, secs: u64) -> Self {
        self.tolerance = Some(secs);
        self
    }

    /// Accept any signed timestamp: for replaying stored events, never for live traffic.
    pub fn without_timestamp_check(mut self) -> Self {
        self.tolerance = None;
        self
    }

    pub fn tolerance(&self) -> Option<u64> {
        self.tolerance
    }

    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// See [`verify_stripe`].
    pub fn verify(&self, payload: &[u8], header: Option<&str>, now: Timestamp) -> Result<Timestamp, StripeError> {
        verify_stripe(payload, header, &self.secrets, self.tolerance, now)
    }
}

/// The `Stripe-Signature` header Stripe would send for `payload` signed with
/// `secret` at time `t`: `t=<t>,v1=<hex>`. For tests, demos and the CLI.
pub fn sign_stripe(payload: &[u8], secret: &str, t: Timestamp) -> String {
    sign_stripe_rotating(payload, &[secret], t)
}

/// The header Stripe sends while secrets are rolled: one `v1` per secret, in order.
pub fn sign_stripe_rotating<S: AsRef<str>>(payload: &[u8], secrets: &[S], t: Timestamp) -> String {
    let ts = t.unix().to_string();
    let mut header = format!("t={ts}");
    for secret in secrets {
        let tag = hmac_sha256(secret.as_ref().as_bytes(), &[ts.as_bytes(), b".", payload]);
        header.push_str(",v1=");
        header.push_str(&hex::encode(tag));
    }
    header
}

// ---------------------------------------------------------------- Razorpay

/// Verifies a Razorpay webhook delivery: `header` is the value of
/// `X-Razorpay-Signature` (`None` when absent), 64 lower-case hex digits.
/// Several secrets may be given (rotation); any one matching is enough.
pub fn verify_razorpay<S: AsRef<[u8]>>(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[S],
) -> Result<(), RazorpayError> {
    let header = match header.map(str::trim) {
        None | Some("") => return Err(RazorpayError::MissingHeader),
        Some(h) => h,
    };
    let Some(given) = decode_tag(header) else {
        return Err(RazorpayError::UnparsableHeader);
    };
    let mut matched = false;
    for secret in secrets {
        let expected = hmac_sha256(secret.as_ref(), &[payload]);
        if bool::from(expected.ct_eq(&given)) {
            matched = true;
        }
    }
    if matched {
        Ok(())
    } else {
        Err(RazorpayError::NoMatch)
    }
}

/// A Razorpay webhook's verification settings.
#[derive(Clone)]
pub struct RazorpayVerifier {
    secrets: Vec<Vec<u8>>,
}

impl fmt::Debug for RazorpayVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RazorpayVerifier").field("secrets", &format_args!("[{} redacted]", self.secrets.len())).finish()
    }
}

impl RazorpayVerifier {
    pub fn new<I, S>(secrets: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(RazorpayVerifier { secrets: check_secrets(secrets)? })
    }

    /// Secrets from one configured string, separated by commas or whitespace.
    pub fn from_secret_list(list: &str) -> Result<Self, SecretError> {
        Self::new(split_secret_list(list))
    }

    /// See [`verify_razorpay`].
    pub fn verify(&self, payload: &[u8], header: Option<&str>) -> Result<(), RazorpayError> {
        verify_razorpay(payload, header, &self.secrets)
    }
}

/// The `X-Razorpay-Signature` value for `payload` under `secret` (lower-case hex).
pub fn sign_razorpay(payload: &[u8], secret: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[payload]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_edges() {
        let h = parse_stripe_header(Some(" t=12 , v1=ab ,v0=cd,v1=ef,")).unwrap();
        assert_eq!(h.timestamp, 12);
        assert_eq!(h.v1, vec!["ab", "ef"]);
        assert_eq!(parse_stripe_header(Some("   ")), Err(StripeError::MissingHeader));
        assert!(matches!(parse_stripe_header(Some("t=1,t=2,v1=a")), Err(StripeError::UnparsableHeader { .. })));
        assert!(matches!(parse_stripe_header(Some("t=-5,v1=a")), Err(StripeError::UnparsableHeader { .. })));
        assert!(matches!(
            parse_stripe_header(Some("t=1234567890123456789,v1=a")),
            Err(StripeError::UnparsableHeader { .. })
        ));
    }

    #[test]
    fn secret_list_splits_on_commas_and_whitespace() {
        assert_eq!(split_secret_list("whsec_a, whsec_b\nwhsec_c,,"), vec!["whsec_a", "whsec_b", "whsec_c"]);
        assert_eq!(StripeVerifier::from_secret_list(" ,\n").unwrap_err(), SecretError::NoSecrets);
    }
}
