//! UTC instants. The core never reads the clock: every `now` is an argument.
//!
//! A [`Timestamp`] is whole seconds since the Unix epoch, UTC. It reads from JSON
//! either as an RFC 3339 string (`"2026-01-31T00:00:00Z"`, any offset, converted
//! to UTC) or as an integer number of seconds, and always writes RFC 3339 in UTC.
//! Read instants lie in the years 0000 to 9999 ([`Timestamp::MIN`], [`Timestamp::MAX`]),
//! the range RFC 3339 can write, so whatever is read is written back readably.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

pub const DAY: i64 = 86_400;

impl Timestamp {
    /// 0000-01-01T00:00:00Z, the earliest instant read.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200);
    /// 9999-12-31T23:59:59Z, the latest instant read.
    pub const MAX: Timestamp = Timestamp(253_402_300_799);

    /// `secs` as an instant read from input: within [`Self::MIN`] and [`Self::MAX`].
    pub fn checked(secs: i64) -> Result<Self, String> {
        if (Self::MIN.0..=Self::MAX.0).contains(&secs) {
            Ok(Timestamp(secs))
        } else {
            Err(format!("{secs} seconds is outside the years 0000 to 9999"))
        }
    }

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
        // (No trim when the ends are plain ASCII: whitespace, Unicode's included,
        // cannot start or end there, and trim walks characters one call at a time.)
        let plain_end = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii() && !b.is_ascii_whitespace());
        let t = if plain_end(s.as_bytes().first()) && plain_end(s.as_bytes().last()) { s } else { s.trim() };
        if let Some(ts) = parse_common_rfc3339(t.as_bytes()) {
            return Self::checked(ts.0).map_err(|e| format!("`{t}`: {e}"));
        }
        if !t.is_empty() && t.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
            let secs = t.parse::<i64>().map_err(|_| format!("`{t}` is not a valid Unix timestamp"))?;
            return Self::checked(secs).map_err(|e| format!("`{t}`: {e}"));
        }
        let secs = DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc).timestamp())
            .map_err(|e| format!("`{t}` is not an RFC 3339 timestamp ({e}); write e.g. 2026-01-31T00:00:00Z"))?;
        Self::checked(secs).map_err(|e| format!("`{t}`: {e}"))
    }

    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp(self.0, 0) {
            Some(d) => d.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => self.0.to_string(),
        }
    }
}

/// The common shape of RFC 3339, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, read
/// directly: about twenty times quicker than chrono's general parser in the
/// size-optimised wasm, where rows with several timestamps are read per call. It
/// gives chrono's answer or `None`, and `None` sends the text to chrono (other
/// separators, leap seconds, long fractions, anything unusual), so chrono stays
/// the one judge of what RFC 3339 is (the test below holds the two together).
fn parse_common_rfc3339(b: &[u8]) -> Option<Timestamp> {
    fn num(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as i64))
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), oh @ .., b':', m1, m2] if oh.len() == 2 => {
            let (oh, om) = (num(oh)?, num(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            (oh * 3600 + om * 60) * if *sign == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (the proleptic Gregorian calendar).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Timestamp(days * DAY + h * 3600 + mi * 60 + s - offset))
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
                Timestamp::checked(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v).map_err(|_| E::custom("timestamp out of range")).and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
                    self.visit_i64(v as i64)
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
    fn instants_are_read_within_the_years_0000_to_9999_and_written_back_readably() {
        for t in [Timestamp::MIN, Timestamp::MAX, Timestamp(0)] {
            assert_eq!(Timestamp::parse(&t.to_rfc3339()), Ok(t), "{}", t.to_rfc3339());
        }
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59Z");
        assert_eq!(Timestamp::MIN.to_rfc3339(), "0000-01-01T00:00:00Z");
        for bad in ["253402300800", "-62167219201", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00"] {
            let e = Timestamp::parse(bad).unwrap_err();
            assert!(e.contains("outside the years 0000 to 9999"), "{bad}: {e}");
        }
        assert!(serde_json::from_str::<Timestamp>("253402300800").is_err());
        assert!(serde_json::from_str::<Timestamp>("253402300800.0").is_err());
        assert_eq!(serde_json::from_str::<Timestamp>("253402300799").unwrap(), Timestamp::MAX);
    }
    #[test]
    fn parses_both_forms_and_normalises_to_utc() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:10Z").unwrap().0, 10);
        assert_eq!(Timestamp::parse("1970-01-01T05:30:10+05:30").unwrap().0, 10);
        assert_eq!(Timestamp::parse("1700000000").unwrap().0, 1_700_000_000);
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert!(Timestamp::parse("yesterday").unwrap_err().contains("RFC 3339"));
        for padded in [" 1970-01-01T00:00:10Z", "1970-01-01T00:00:10Z\n", "\u{a0}1970-01-01T00:00:10Z\u{2003}", " 10 "] {
            assert_eq!(Timestamp::parse(padded).unwrap().0, 10, "{padded:?}");
        }
    }

    /// The quick reader of the common shape agrees with chrono wherever it answers,
    /// and answers for the shapes stored rows carry.
    #[test]
    fn the_quick_reader_agrees_with_chrono() {
        let chrono = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc).timestamp());
        let mut n = 0;
        for y in [0, 1, 1600, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 9999] {
            for (mo, d) in [(1, 1), (2, 28), (2, 29), (2, 30), (3, 1), (4, 31), (12, 31), (13, 1), (0, 5), (6, 0)] {
                for time in ["00:00:00", "23:59:59", "12:34:56", "24:00:00", "10:60:00", "10:00:60"] {
                    for frac in ["", ".5", ".123456789", ".1234567891", "."] {
                        for off in ["Z", "+00:00", "-00:00", "+05:30", "-08:00", "+23:59", "+24:00", "z", ""] {
                            let s = format!("{y:04}-{mo:02}-{d:02}T{time}{frac}{off}");
                            if let Some(quick) = parse_common_rfc3339(s.as_bytes()) {
                                assert_eq!(Some(quick.0), chrono(&s), "{s}");
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(n > 2_000, "{n}");
        for s in ["2026-01-01T00:00:00+00:00", "2026-03-15T00:00:00Z", "2026-02-15T10:20:30.123456+05:30"] {
            assert_eq!(parse_common_rfc3339(s.as_bytes()).map(|t| t.0), chrono(s), "{s}");
            assert!(parse_common_rfc3339(s.as_bytes()).is_some(), "{s}");
        }
    }
}
