//! Reading provider payloads field by field, with errors that name the path.

use serde_json::Value;

use super::ParseError;
use crate::time::Timestamp;

/// A JSON value and the path it was reached by (`data.object.items.data[0]`).
#[derive(Clone)]
pub(crate) struct At<'a> {
    pub v: &'a Value,
    path: String,
}

impl<'a> At<'a> {
    pub fn root(v: &'a Value, path: &str) -> At<'a> {
        At { v, path: path.to_string() }
    }

    /// The dotted path of this value.
    pub fn path(&self) -> String {
        self.path.clone()
    }

    pub fn field_path(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    /// A field, or `None` when it is missing or `null`.
    pub fn get(&self, k: &str) -> Option<At<'a>> {
        match self.v.get(k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(At { v, path: self.field_path(k) }),
        }
    }

    pub fn req(&self, k: &str) -> Result<At<'a>, ParseError> {
        self.get(k).ok_or_else(|| ParseError::MissingField { path: self.field_path(k) })
    }

    fn wrong(&self, expected: &'static str) -> ParseError {
        ParseError::WrongType { path: self.path(), expected: expected.to_string() }
    }

    pub fn as_str(&self) -> Result<&'a str, ParseError> {
        self.v.as_str().ok_or_else(|| self.wrong("a string"))
    }

    pub fn as_i64(&self) -> Result<i64, ParseError> {
        self.v.as_i64().ok_or_else(|| self.wrong("an integer"))
    }

    pub fn as_bool(&self) -> Result<bool, ParseError> {
        self.v.as_bool().ok_or_else(|| self.wrong("true or false"))
    }

    pub fn req_str(&self, k: &str) -> Result<&'a str, ParseError> {
        let s = self.req(k)?.as_str()?;
        if s.is_empty() {
            return Err(ParseError::InvalidValue { path: self.field_path(k), message: "must not be empty".into() });
        }
        Ok(s)
    }

    /// A string field; missing, `null` and `""` are `None`.
    pub fn opt_str(&self, k: &str) -> Result<Option<&'a str>, ParseError> {
        match self.get(k) {
            None => Ok(None),
            Some(a) => a.as_str().map(|s| if s.is_empty() { None } else { Some(s) }),
        }
    }

    pub fn req_i64(&self, k: &str) -> Result<i64, ParseError> {
        self.req(k)?.as_i64()
    }

    pub fn opt_i64(&self, k: &str) -> Result<Option<i64>, ParseError> {
        self.get(k).map(|a| a.as_i64()).transpose()
    }

    pub fn opt_bool(&self, k: &str) -> Result<Option<bool>, ParseError> {
        self.get(k).map(|a| a.as_bool()).transpose()
    }

    /// Unix seconds.
    pub fn req_time(&self, k: &str) -> Result<Timestamp, ParseError> {
        self.req(k)?.as_time()
    }

    pub fn opt_time(&self, k: &str) -> Result<Option<Timestamp>, ParseError> {
        self.get(k).map(|a| a.as_time()).transpose()
    }

    pub fn as_time(&self) -> Result<Timestamp, ParseError> {
        let n = self.v.as_i64().ok_or_else(|| self.wrong("an integer (Unix seconds)"))?;
        if n < 0 {
            return Err(ParseError::InvalidValue { path: self.path(), message: format!("{n} is not a valid time") });
        }
        // Every instant read is one that is written back readably (the years 0000 to 9999).
        Timestamp::checked(n).map_err(|m| ParseError::InvalidValue { path: self.path(), message: m })
    }

    /// Stripe's expandable references: an id string, or the object with its `id`.
    pub fn opt_ref(&self, k: &str) -> Result<Option<String>, ParseError> {
        match self.get(k) {
            None => Ok(None),
            Some(a) => match a.v {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                Value::Object(_) => Ok(Some(a.req_str("id")?.to_string())),
                _ => Err(a.wrong("an id string or an object with an `id`")),
            },
        }
    }

    pub fn req_ref(&self, k: &str) -> Result<String, ParseError> {
        self.opt_ref(k)?.ok_or_else(|| ParseError::MissingField { path: self.field_path(k) })
    }

    pub fn is_object(&self) -> bool {
        self.v.is_object()
    }

    /// An array field's elements (missing or `null`: none).
    pub fn items(&self, k: &str) -> Result<Vec<At<'a>>, ParseError> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(a) => a.elements(),
        }
    }

    pub fn elements(&self) -> Result<Vec<At<'a>>, ParseError> {
        let arr = self.v.as_array().ok_or_else(|| self.wrong("an array"))?;
        Ok(arr.iter().enumerate().map(|(i, v)| At { v, path: format!("{}[{i}]", self.path) }).collect())
    }

    /// String values of a key-value map such as Stripe's `metadata` or Razorpay's
    /// `notes` (Razorpay sends an empty array for no notes).
    pub fn meta(&self, k: &str, name: &str) -> Result<Option<String>, ParseError> {
        let Some(m) = self.get(k) else { return Ok(None) };
        match m.v {
            Value::Array(a) if a.is_empty() => Ok(None),
            Value::Object(_) => match m.get(name) {
                None => Ok(None),
                Some(x) => match x.v {
                    Value::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                    Value::Number(n) => Ok(Some(n.to_string())),
                    _ => Err(x.wrong("a string")),
                },
            },
            _ => Err(m.wrong("an object of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn paths_name_the_field() {
        let v: Value = serde_json::json!({"data": {"object": {"items": {"data": [{"price": 3}]}}}});
        let root = At::root(&v, "");
        let data = root.req("data").unwrap();
        let obj = data.req("object").unwrap();
        let items = obj.req("items").unwrap();
        let list = items.items("data").unwrap();
        let e = list[0].req_str("price").unwrap_err();
        assert_eq!(e.to_string(), "field `data.object.items.data[0].price` must be a string");
        let e = obj.req_str("customer").unwrap_err();
        assert_eq!(e.to_string(), "missing field `data.object.customer`");
    }
}
