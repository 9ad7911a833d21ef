//! Times on the wire and on the command line: RFC 3339 or Unix seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The earliest time Epicenter accepts anywhere: 1970-01-01T00:00:00Z.
pub const MIN_TIME: i64 = 0;
/// The latest time Epicenter accepts anywhere: 9999-12-31T23:59:59Z, the last second
/// RFC 3339 can write. Every time from outside (a request, a file, a flag) is inside
/// `MIN_TIME..=MAX_TIME`, so sums and differences of times with offsets of up to
/// thousands of years cannot overflow.
pub const MAX_TIME: i64 = 253_402_300_799;

/// Parses RFC 3339 (`2026-11-21T09:30:00Z`) or Unix seconds (`1795253400`), between
/// [`MIN_TIME`] and [`MAX_TIME`].
///
/// ```
/// use epicenter_backend::ingest::timefmt::parse_time;
/// assert_eq!(parse_time("1970-01-01T00:05:00Z").unwrap(), 300);
/// assert_eq!(parse_time("300").unwrap(), 300);
/// assert!(parse_time("yesterday").is_err());
/// assert!(parse_time("-1").unwrap_err().contains("1970-01-01T00:00:00Z"));
/// assert!(parse_time(&i64::MAX.to_string()).is_err());
/// assert!(parse_time("2026-11-21").unwrap_err().contains("neither RFC 3339"));
/// ```
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return check_time(secs);
    }
    // An integer too large for i64; not any text of digits and dashes (`2026-11-21`).
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(outside(t));
    }
    OffsetDateTime::parse(t, &Rfc3339)
        .map_err(|e| {
            format!("{t:?} is neither RFC 3339 (e.g. 2026-11-21T09:30:00Z) nor Unix seconds: {e}")
        })
        .and_then(|d| check_time(d.unix_timestamp()))
}

/// `secs` when it lies between [`MIN_TIME`] and [`MAX_TIME`]; otherwise an error saying
/// so.
///
/// ```
/// use epicenter_backend::ingest::timefmt::{MAX_TIME, check_time};
/// assert_eq!(check_time(MAX_TIME), Ok(MAX_TIME));
/// assert!(check_time(MAX_TIME + 1).is_err());
/// assert!(check_time(i64::MIN).is_err());
/// ```
pub fn check_time(secs: i64) -> Result<i64, String> {
    if (MIN_TIME..=MAX_TIME).contains(&secs) {
        Ok(secs)
    } else {
        Err(outside(secs))
    }
}

/// The error for a number of Unix seconds outside the supported times.
pub(crate) fn outside(secs: impl std::fmt::Display) -> String {
    format!("{secs} is outside the supported times (1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z)")
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
