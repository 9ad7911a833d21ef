//! Loosely typed fields shared by the JSON feeds (changes, activity, run requests) and
//! the offline change files: times given as numbers or text, and change ids.

use sha2::{Digest, Sha256};

use super::timefmt::parse_time;

/// A time sent as whole Unix seconds or as RFC 3339 / Unix-seconds text.
///
/// ```
/// use epicenter_backend::ingest::values::time_value;
/// assert_eq!(time_value(&serde_json::json!(600)).unwrap(), 600);
/// assert_eq!(time_value(&serde_json::json!("1970-01-01T00:10:00Z")).unwrap(), 600);
/// assert!(time_value(&serde_json::json!(1.5)).is_err());
/// ```
pub fn time_value(v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{n} is not whole Unix seconds")),
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
