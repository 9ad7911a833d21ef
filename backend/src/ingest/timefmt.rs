//! Times on the wire and on the command line: RFC 3339 or Unix seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses RFC 3339 (`2026-11-21T09:30:00Z`) or Unix seconds (`1795253400`).
///
/// ```
/// use epicenter_backend::ingest::timefmt::parse_time;
/// assert_eq!(parse_time("1970-01-01T00:05:00Z").unwrap(), 300);
/// assert_eq!(parse_time("300").unwrap(), 300);
/// assert!(parse_time("yesterday").is_err());
/// ```
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs);
    }
    OffsetDateTime::parse(t, &Rfc3339)
        .map(|d| d.unix_timestamp())
        .map_err(|e| {
            format!("{t:?} is neither RFC 3339 (e.g. 2026-11-21T09:30:00Z) nor Unix seconds: {e}")
        })
}

/// Formats Unix seconds as RFC 3339 in UTC.
///
/// ```
/// use epicenter_backend::ingest::timefmt::format_time;
/// assert_eq!(format_time(300), "1970-01-01T00:05:00Z");
/// ```
pub fn format_time(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}
