//! Loosely typed fields shared by the JSON feeds (changes, activity, run requests) and
//! the offline change files: times given as numbers or text, change ids, and NDJSON
//! lines read field by field.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::timefmt::parse_time;

/// A time sent as whole Unix seconds or as RFC 3339 / Unix-seconds text.
///
/// ```
/// use epicenter_backend::ingest::values::time_value;
/// assert_eq!(time_value(&serde_json::json!(600)).unwrap(), 600);
/// assert_eq!(time_value(&serde_json::json!("1970-01-01T00:10:00Z")).unwrap(), 600);
/// assert!(time_value(&serde_json::json!(1.5)).is_err());
/// assert!(time_value(&serde_json::json!(i64::MIN)).is_err());
/// assert!(time_value(&serde_json::json!(u64::MAX)).unwrap_err().contains("outside the supported times"));
/// ```
pub fn time_value(v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(secs) => super::timefmt::check_time(secs),
            // Whole, but beyond i64.
            None if n.is_u64() => Err(super::timefmt::outside(n)),
            None => Err(format!("{n} is not whole Unix seconds")),
        },
        serde_json::Value::String(s) => parse_time(s),
        other => Err(format!(
            "expected RFC 3339 text or Unix seconds, got {other}"
        )),
    }
}

/// The numeric id of a change whose id is text: its digits (`"CHG-812"` is 812), so
/// explanations stay readable and re-sending a change replaces it; text without digits
/// gets a stable number from its SHA-256.
///
/// ```
/// use epicenter_backend::ingest::values::change_id;
/// assert_eq!(change_id("CHG-812"), 812);
/// assert_eq!(change_id("42"), 42);
/// assert_eq!(change_id("rollback"), change_id("rollback"));
/// ```
pub fn change_id(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| {
        let d = Sha256::digest(text.as_bytes());
        u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 1
    })
}

/// Why [`read_object`] could not read a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// Not valid JSON, outside any field's value: the parser's words and column.
    Syntax(String),
    /// Valid JSON, but not an object: what it is instead (`an array`).
    NotObject(&'static str),
    /// The value of `field` is not valid JSON (a number out of range, a lone surrogate,
    /// a raw control character): the parser's words and column.
    BadValue {
        /// The field.
        field: String,
        /// What the JSON parser said.
        message: String,
    },
    /// The field is given more than once.
    Repeated(String),
}

impl ObjectError {
    /// The field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            ObjectError::BadValue { field, .. } | ObjectError::Repeated(field) => Some(field),
            ObjectError::Syntax(_) | ObjectError::NotObject(_) => None,
        }
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::Syntax(m) | ObjectError::BadValue { message: m, .. } => {
                write!(f, "not valid JSON: {m}")
            }
            ObjectError::NotObject(kind) => write!(f, "expected a JSON object, got {kind}"),
            ObjectError::Repeated(_) => f.write_str("is given more than once"),
        }
    }
}

/// Reads one line of NDJSON as an object, field by field, so that a value that is not
/// valid JSON and a field given twice are blamed on their field. Positions are columns
/// of the line.
///
/// # Complexity
/// O(bytes).
///
/// ```
/// use epicenter_backend::ingest::values::{ObjectError, read_object};
/// assert_eq!(read_object(r#"{"a": 1}"#).unwrap()["a"], 1);
/// assert_eq!(read_object("[1]"), Err(ObjectError::NotObject("an array")));
/// let e = read_object(r#"{"a": 1, "b": 1e999}"#).unwrap_err();
/// assert_eq!(e.field(), Some("b"));
/// assert_eq!(e.to_string(), "not valid JSON: number out of range at column 19");
/// assert_eq!(read_object(r#"{"a": 1, "a": 2}"#), Err(ObjectError::Repeated("a".into())));
/// assert!(matches!(read_object(r#"{"a": 1"#), Err(ObjectError::Syntax(_))));
/// ```
pub fn read_object(line: &str) -> Result<Map<String, Value>, ObjectError> {
    let reading = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(line);
    let read = Fields { reading: &reading }
        .deserialize(&mut de)
        .and_then(|map| de.end().map(|()| map));
    let e = match read {
        Ok(map) => return Ok(map),
        Err(e) => e,
    };
    Err(match reading.into_inner() {
        Some(Reading::Twice(field)) => ObjectError::Repeated(field),
        Some(Reading::Value(field)) => ObjectError::BadValue {
            field,
            message: at_column(&e),
        },
        None => match serde_json::from_str::<Value>(line) {
            Ok(other) => ObjectError::NotObject(kind(&other)),
            Err(e) => ObjectError::Syntax(at_column(&e)),
        },
    })
}

/// What a JSON value is, for messages: `a number`, `an array`, ...
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The parser's message with the column only: in one line, "line 1" says nothing.
fn at_column(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())) {
        Some(m) => format!("{m} at column {}", e.column()),
        None => text,
    }
}

/// Where [`Fields`] stopped.
enum Reading {
    /// In the value of this field.
    Value(String),
    /// At this field, given a second time.
    Twice(String),
}

/// Reads an object's fields one at a time, noting the field being read, so an error
/// can be blamed on it.
struct Fields<'r> {
    reading: &'r RefCell<Option<Reading>>,
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                *self.reading.borrow_mut() = Some(Reading::Twice(key));
                return Err(serde::de::Error::custom("a field is given twice"));
            }
            *self.reading.borrow_mut() = Some(Reading::Value(key.clone()));
            let value = map.next_value::<Value>()?;
            *self.reading.borrow_mut() = None;
            out.insert(key, value);
        }
        Ok(out)
    }
}
