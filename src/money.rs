//! Money in integer minor units, and exact decimals for rates and multipliers.
//! No floating point is used for money anywhere in tollgate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in the currency's minor units (cents, paise).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// The ISO 4217 codes money can be priced in (lower case, sorted): every active currency,
/// without the funds, precious metals and testing codes no provider charges in.
const CURRENCIES: [&str; 161] = [
    "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd", "bdt", "bgn", "bhd", "bif",
    "bmd", "bnd", "bob", "brl", "bsd", "btn", "bwp", "byn", "bzd", "cad", "cdf", "chf", "clp", "cny", "cop", "crc",
    "cuc", "cup", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp", "ern", "etb", "eur", "fjd", "fkp", "gbp", "gel",
    "ghs", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl", "hrk", "htg", "huf", "idr", "ils", "inr", "iqd", "irr",
    "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf", "kpw", "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr",
    "lrd", "lsl", "lyd", "mad", "mdl", "mga", "mkd", "mmk", "mnt", "mop", "mru", "mur", "mvr", "mwk", "mxn", "myr",
    "mzn", "nad", "ngn", "nio", "nok", "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar",
    "ron", "rsd", "rub", "rwf", "sar", "sbd", "scr", "sdg", "sek", "sgd", "shp", "sle", "sll", "sos", "srd", "ssp",
    "stn", "svc", "syp", "szl", "thb", "tjs", "tmt", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "usd",
    "uyu", "uzs", "ved", "ves", "vnd", "vuv", "wst", "xaf", "xcd", "xcg", "xof", "xpf", "yer", "zar", "zmw", "zwg",
    "zwl",
];

/// Whether `code` is an ISO 4217 currency money can be priced in (lower case: `"usd"`).
pub fn is_currency(code: &str) -> bool {
    CURRENCIES.binary_search(&code).is_ok()
}

/// Number of minor-unit digits of a currency's amounts, as the providers take them:
/// Stripe's zero-decimal and three-decimal currencies, and ISO 4217's other three-decimal
/// dinars (Iraqi, Libyan); two for every other (the code in any case).
pub fn minor_digits(currency: &str) -> u32 {
    let lower;
    let c = if currency.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = currency.to_ascii_lowercase();
        lower.as_str()
    } else {
        currency
    };
    match c {
        "bif" | "clp" | "djf" | "gnf" | "jpy" | "kmf" | "krw" | "mga" | "pyg" | "rwf" | "ugx" | "vnd"
        | "vuv" | "xaf" | "xof" | "xpf" => 0,
        "bhd" | "iqd" | "jod" | "kwd" | "lyd" | "omr" | "tnd" => 3,
        _ => 2,
    }
}

impl Money {
    /// `"$29.00"`-style display for humans (symbol for common currencies, code otherwise).
    pub fn display(&self) -> String {
        let d = minor_digits(&self.currency);
        let neg = self.amount < 0;
        let a = self.amount.unsigned_abs();
        let scale = 10u64.pow(d);
        let major = a / scale;
        let minor = a % scale;
        let num = if d == 0 { format!("{major}") } else { format!("{major}.{minor:0width$}", width = d as usize) };
        let sym = match self.currency.as_str() {
            "usd" | "cad" | "aud" => "$",
            "eur" => "€",
            "gbp" => "£",
            "inr" => "₹",
            _ => "",
        };
        let sign = if neg { "-" } else { "" };
        if sym.is_empty() {
            format!("{sign}{num} {}", self.currency.to_ascii_uppercase())
        } else if self.currency == "cad" {
            format!("{sign}CA{sym}{num}")
        } else {
            format!("{sign}{sym}{num}")
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// An exact non-negative decimal written as a string (`"0.015"`, `"1.5"`):
/// `mantissa / 10^scale`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: u64,
    pub scale: u32,
}

/// As written: a string of digits with at most nine after the point.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Decimal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An exact non-negative decimal written as a string, e.g. \"0.015\" (never a float).",
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]{0,9})?$"
        })
    }
}

impl Decimal {
    pub fn parse(s: &str) -> Result<Decimal, String> {
        let t = s.trim();
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        let ok = !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && frac.len() <= 9;
        if !ok {
            return Err(format!("`{s}` is not a decimal like \"0.015\" (digits, one optional point, at most 9 decimals)"));
        }
        let digits = format!("{int}{frac}");
        let mantissa = digits.parse::<u64>().map_err(|_| format!("`{s}` is too large"))?;
        Ok(Decimal { mantissa, scale: frac.len() as u32 })
    }
    pub fn one() -> Decimal {
        Decimal { mantissa: 1, scale: 0 }
    }
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let p = 10u64.pow(self.scale);
        write!(f, "{}.{:0w$}", self.mantissa / p, self.mantissa % p, w = self.scale as usize)
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom("write decimals as strings, e.g. \"0.015\", so they stay exact")
        })?;
        Decimal::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `units x product of factors`, converted to minor units of `currency` and
/// rounded UP to the next whole minor unit (once, on the total).
/// Exact: done in 128-bit integers.
pub fn ceil_minor(units: u64, factors: &[Decimal], currency: &str) -> Result<i64, String> {
    let mut num: u128 = units as u128 * 10u128.pow(minor_digits(currency));
    let mut scale: u32 = 0;
    for f in factors {
        num = num.checked_mul(f.mantissa as u128).ok_or("amount overflows")?;
        scale += f.scale;
    }
    let den = 10u128.checked_pow(scale).ok_or("too many decimals")?;
    let q = num.div_ceil(den);
    i64::try_from(q).map_err(|_| "amount overflows".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn decimals_are_exact() {
        let d = Decimal::parse("0.015").unwrap();
        assert_eq!((d.mantissa, d.scale), (15, 3));
        assert_eq!(d.to_string(), "0.015");
        assert!(Decimal::parse("-1").is_err());
        assert!(Decimal::parse("1e3").is_err());
        assert!(Decimal::parse(".5").is_err());
    }
    #[test]
    fn ceil_rounds_once_on_the_total() {
        let r = Decimal::parse("0.015").unwrap();
        let m = Decimal::parse("1.2").unwrap();
        // 0.015 * 1.2 * 30 = 0.54 USD exactly
        assert_eq!(ceil_minor(30, &[r, m], "usd").unwrap(), 54);
        // 0.015 * 1.2 * 1 = 0.018 -> 2 cents
        assert_eq!(ceil_minor(1, &[r, m], "usd").unwrap(), 2);
    }
    #[test]
    fn display() {
        assert_eq!(Money { amount: 999, currency: "usd".into() }.display(), "$9.99");
        assert_eq!(Money { amount: 49900, currency: "inr".into() }.display(), "₹499.00");
    }
}
