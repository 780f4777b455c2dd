//! Outbound webhooks, as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com>): the signature of one delivery, and the delivery
//! schedule (exponential backoff for three days, then the message is given up; an
//! endpoint failing for three days is disabled). Pure: secret, id, timestamp and payload
//! in, headers out; attempts and times in, the next attempt out. The worker only sends.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::Timestamp;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How long a message is retried, and how long an endpoint may fail before it is disabled.
pub const RETRY_FOR_SECONDS: i64 = 3 * 86_400;
/// The first retry's delay; each next one doubles, up to [`MAX_DELAY_SECONDS`].
pub const FIRST_DELAY_SECONDS: i64 = 30;
pub const MAX_DELAY_SECONDS: i64 = 12 * 3600;

/// A signing secret that is not `whsec_` + base64 of at least 24 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadSecret;

impl std::fmt::Display for BadSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a signing secret is `whsec_` followed by base64 of 24 to 64 bytes")
    }
}

/// The key bytes of a `whsec_<base64>` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let b = secret.strip_prefix("whsec_").ok_or(BadSecret)?;
    let key = B64.decode(b).map_err(|_| BadSecret)?;
    if (24..=64).contains(&key.len()) {
        Ok(key)
    } else {
        Err(BadSecret)
    }
}

/// A secret from random bytes the host drew (the core draws nothing).
pub fn secret_from_bytes(bytes: &[u8]) -> String {
    format!("whsec_{}", B64.encode(bytes))
}

/// The three headers of one delivery: `webhook-id`, `webhook-timestamp` (Unix seconds)
/// and `webhook-signature` (`v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<payload>")>`).
pub fn sign(secret: &str, id: &str, timestamp: Timestamp, payload: &[u8]) -> Result<[(&'static str, String); 3], BadSecret> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(format!("{id}.{}.", timestamp.unix()).as_bytes());
    mac.update(payload);
    let sig = B64.encode(mac.finalize().into_bytes());
    Ok([
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.unix().to_string()),
        ("webhook-signature", format!("v1,{sig}")),
    ])
}

/// What one attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Delivered,
    /// Any other answer, a timeout or no connection.
    Failed,
    /// A 410 answer: the receiver asks to hear no more from this endpoint.
    Gone,
    /// A 429 or 503 answer whose `Retry-After` asks for no attempt before `until`
    /// ([`retry_after`]).
    Deferred { until: Timestamp },
}

/// The time a `Retry-After` value asks for, read at `now`: delay seconds (`120`) or an
/// HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`); `None` when it is neither.
pub fn retry_after(value: &str, now: Timestamp) -> Option<Timestamp> {
    let v = value.trim();
    if !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<i64>().ok().map(|s| now.plus_seconds(s));
    }
    chrono::DateTime::parse_from_rfc2822(v).ok().map(|d| Timestamp::from_unix(d.timestamp()))
}

/// What follows an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Next {
    /// When to try the message again (`None`: delivered, or given up).
    pub retry_at: Option<Timestamp>,
    /// The message is given up (three days of failures).
    pub give_up: bool,
    /// The endpoint has failed for three days without a success: disable it.
    pub disable_endpoint: bool,
}

/// After attempt number `attempts` (1 for the first) of a message first attempted at
/// `first` (`now` for the first attempt), made at `now` on an endpoint failing since
/// `failing_since` (`None`: its last attempt succeeded): exponential backoff (30 s, 1 min,
/// 2 min, ... up to 12 h between attempts) for three days after its first attempt (however
/// long it waited for its endpoint before), then it is given up. An answer that asked for
/// a later attempt ([`Attempt::Deferred`]) is tried no sooner than it asked, nor later than
/// 12 h from `now`.
pub fn after_attempt(outcome: Attempt, attempts: u32, first: Timestamp, failing_since: Option<Timestamp>, now: Timestamp) -> Next {
    if outcome == Attempt::Delivered {
        return Next { retry_at: None, give_up: false, disable_endpoint: false };
    }
    // Gone: the endpoint is disabled at once; the message waits for it to be enabled again.
    if outcome == Attempt::Gone {
        return Next { retry_at: Some(now), give_up: false, disable_endpoint: true };
    }
    let shift = attempts.saturating_sub(1).min(20);
    let delay = (FIRST_DELAY_SECONDS << shift).min(MAX_DELAY_SECONDS);
    let mut at = now.plus_seconds(delay);
    if let Attempt::Deferred { until } = outcome {
        at = at.max(until.min(now.plus_seconds(MAX_DELAY_SECONDS)));
    }
    let deadline = first.plus_seconds(RETRY_FOR_SECONDS);
    let since = failing_since.unwrap_or(now);
    // Failing for three days, or giving up a message it failed all the way through.
    let give_up = at > deadline;
    let disable_endpoint = now.unix() - since.unix() >= RETRY_FOR_SECONDS || (give_up && since <= first);
    if give_up {
        Next { retry_at: None, give_up: true, disable_endpoint }
    } else {
        Next { retry_at: Some(at), give_up: false, disable_endpoint }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn signs_as_the_specification_s_example() {
        // The example of the Standard Webhooks specification (and of its libraries' tests).
        let payload = br#"{"test": 2432232314}"#;
        let h = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp(1614265330), payload).unwrap();
        assert_eq!(h[0], ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".to_string()));
        assert_eq!(h[1], ("webhook-timestamp", "1614265330".to_string()));
        assert_eq!(h[2], ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string()));
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(BadSecret));
        assert_eq!(secret_key("whsec_!!"), Err(BadSecret));
        assert_eq!(secret_key("whsec_AAAA"), Err(BadSecret), "too short");
        assert!(secret_key(&secret_from_bytes(&[7u8; 32])).is_ok());
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = Timestamp(1_800_000_000);
        assert_eq!(retry_after("120", now), Some(now.plus_seconds(120)));
        assert_eq!(retry_after(" 0 ", now), Some(now));
        assert_eq!(retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now), Timestamp::parse("2026-10-21T07:28:00Z").ok());
        for v in ["", "-5", "1.5", "soon", "99999999999999999999"] {
            assert_eq!(retry_after(v, now), None, "{v:?}");
        }
    }

    #[test]
    fn backoff_doubles_for_three_days_then_gives_up_and_disables() {
        let t0 = Timestamp(1_800_000_000);
        let n = after_attempt(Attempt::Failed, 1, t0, Some(t0), t0);
        assert_eq!((n.retry_at, n.give_up, n.disable_endpoint), (Some(t0.plus_seconds(30)), false, false));
        let n = after_attempt(Attempt::Failed, 4, t0, Some(t0), t0.plus_seconds(600));
        assert_eq!(n.retry_at, Some(t0.plus_seconds(600 + 240)));
        let n = after_attempt(Attempt::Failed, 15, t0, Some(t0), t0.plus_seconds(40 * 3600));
        assert_eq!(n.retry_at, Some(t0.plus_seconds(52 * 3600)), "at most 12 h apart");
        let n = after_attempt(Attempt::Failed, 16, t0, Some(t0), t0.plus_seconds(66 * 3600));
        assert_eq!((n.retry_at, n.give_up, n.disable_endpoint), (None, true, true), "failed all the way through");
        let n = after_attempt(Attempt::Failed, 16, t0, Some(t0.plus_seconds(60)), t0.plus_seconds(66 * 3600));
        assert_eq!((n.give_up, n.disable_endpoint), (true, false), "it succeeded since the message was made");
        let n = after_attempt(Attempt::Failed, 17, t0, Some(t0), t0.plus_seconds(72 * 3600));
        assert!(n.give_up && n.disable_endpoint, "three days of failures disable the endpoint");
        let n = after_attempt(Attempt::Deferred { until: t0.plus_seconds(3600) }, 1, t0, Some(t0), t0);
        assert_eq!(n.retry_at, Some(t0.plus_seconds(3600)), "no sooner than asked");
        let n = after_attempt(Attempt::Deferred { until: t0.plus_seconds(5) }, 1, t0, Some(t0), t0);
        assert_eq!(n.retry_at, Some(t0.plus_seconds(30)), "the backoff when it asks for less");
        let n = after_attempt(Attempt::Deferred { until: t0.plus_seconds(30 * 86_400) }, 1, t0, Some(t0), t0);
        assert_eq!(n.retry_at, Some(t0.plus_seconds(12 * 3600)), "no later than 12 h");
        let n = after_attempt(Attempt::Delivered, 3, t0, Some(t0), t0.plus_seconds(72 * 3600));
        assert_eq!((n.retry_at, n.give_up, n.disable_endpoint), (None, false, false));
    }
}
