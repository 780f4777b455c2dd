//! UTC instants. The core never reads the clock: every `now` is an argument.
//!
//! A [`Timestamp`] is whole seconds since the Unix epoch, UTC. It reads from JSON
//! either as an RFC 3339 string (`"2026-01-31T00:00:00Z"`, any offset, converted
//! to UTC) or as an integer number of seconds, and always writes RFC 3339 in UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

pub const DAY: i64 = 86_400;

impl Timestamp {
    pub const fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }
    pub const fn unix(self) -> i64 {
        self.0
    }
    pub const fn plus_seconds(self, s: i64) -> Self {
        Timestamp(self.0.saturating_add(s))
    }
    pub const fn plus_days(self, d: i64) -> Self {
        self.plus_seconds(d.saturating_mul(DAY))
    }

    /// Parses RFC 3339 (`2026-01-31T00:00:00Z`, `2026-01-31T05:30:00+05:30`,
    /// fractional seconds truncated) or a plain integer of Unix seconds.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.is_empty() && t.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
            return t
                .parse::<i64>()
                .map(Timestamp)
                .map_err(|_| format!("`{t}` is not a valid Unix timestamp"));
        }
        DateTime::parse_from_rfc3339(t)
            .map(|d| Timestamp(d.with_timezone(&Utc).timestamp()))
            .map_err(|e| format!("`{t}` is not an RFC 3339 timestamp ({e}); write e.g. 2026-01-31T00:00:00Z"))
    }

    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp(self.0, 0) {
            Some(d) => d.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string or integer Unix seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v).map(Timestamp).map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(Timestamp(v as i64))
                } else {
                    Err(E::custom("timestamp must be whole Unix seconds"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_both_forms_and_normalises_to_utc() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:10Z").unwrap().0, 10);
        assert_eq!(Timestamp::parse("1970-01-01T05:30:10+05:30").unwrap().0, 10);
        assert_eq!(Timestamp::parse("1700000000").unwrap().0, 1_700_000_000);
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert!(Timestamp::parse("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
