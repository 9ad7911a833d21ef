//! One line of call statistics: parsing and validation with precise errors.
//!
//! A fast typed path handles valid lines; a line that fails it is parsed again as a
//! generic JSON value only to say exactly which field is wrong. Semantic checks
//! (ranges, `errors <= requests`, time window) live in one place, [`check`], used by
//! both paths.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::timefmt::parse_time;
use super::values::{kind, read_object};

/// The fields a line may have.
pub const FIELDS: [&str; 8] = [
    "ts",
    "src",
    "dst",
    "method",
    "requests",
    "errors",
    "latency_ms_sum",
    "interval_s",
];

/// Longest server or method name accepted.
pub const MAX_NAME_LEN: usize = 256;

/// Call statistics between two servers for one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Start of the interval, Unix seconds.
    pub ts: i64,
    /// Calling server.
    pub src: String,
    /// Called server.
    pub dst: String,
    /// Method called, if reported.
    pub method: Option<String>,
    /// Number of requests.
    pub requests: u64,
    /// Number of failed requests, at most `requests`.
    pub errors: u64,
    /// Total execution time of the requests, ms.
    pub latency_ms_sum: f64,
    /// Length of the interval in seconds, when given.
    pub interval_s: Option<u32>,
    /// The caller's service, when the source names it (pulled metrics, traces): the
    /// cluster is then this name, and the topology is not asked about `src`.
    pub src_service: Option<String>,
    /// The callee's service, likewise.
    pub dst_service: Option<String>,
}

/// The time window and limits a batch is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The current time, Unix seconds.
    pub now: i64,
    /// How far in the future a `ts` may be.
    pub max_future_s: i64,
    /// How far in the past a `ts` may be (the retention window).
    pub max_age_s: i64,
    /// The longest `interval_s` accepted (the bucket width).
    pub max_interval_s: u32,
}

impl Limits {
    /// Defaults around `now`: 10 minutes ahead, 8 weeks back, 5-minute intervals.
    pub fn around(now: i64) -> Self {
        Limits {
            now,
            max_future_s: 600,
            max_age_s: 8 * 7 * 86_400,
            max_interval_s: 300,
        }
    }

    /// No time window at all (offline analysis of old dumps).
    pub fn unbounded(max_interval_s: u32) -> Self {
        Limits {
            now: 0,
            max_future_s: i64::MAX / 4,
            max_age_s: i64::MAX / 4,
            max_interval_s,
        }
    }
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: field \"{field}\": {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// At most this many line errors are reported for one batch.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// Parses and validates NDJSON call statistics. Blank lines are skipped. Either every
/// line is valid and all records come back, or the errors come back (at most
/// [`MAX_REPORTED_ERRORS`]) and nothing should be applied.
///
/// # Complexity
/// O(bytes) for valid input.
///
/// ```
/// use epicenter_backend::ingest::{parse_calls, Limits};
/// let text = r#"{"ts": 600, "src": "web-1", "dst": "api-2", "requests": 10, "errors": 1, "latency_ms_sum": 250.0}"#;
/// let records = parse_calls(text, &Limits::around(900)).unwrap();
/// assert_eq!(records[0].requests, 10);
/// let bad = r#"{"ts": 600, "src": "web-1", "dst": "api-2", "requests": 1, "errors": 2, "latency_ms_sum": 1}"#;
/// let errors = parse_calls(bad, &Limits::around(900)).unwrap_err();
/// assert_eq!(errors[0].to_string(), "line 1: field \"errors\": 2 errors is more than the 1 requests");
/// ```
pub fn parse_calls(text: &str, limits: &Limits) -> Result<Vec<CallRecord>, Vec<LineError>> {
    let mut records = Vec::with_capacity(text.len() / 120);
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, i + 1, limits) {
            Ok(r) => records.push(r),
            Err(e) => {
                errors.push(e);
                if errors.len() >= MAX_REPORTED_ERRORS {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

/// `ts` as sent: an integer, a float or a string. Deserialized by hand: serde's
/// untagged enums buffer every value first, which costs a third of the parse.
enum RawTs<'a> {
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = RawTs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Unix seconds or an RFC 3339 time")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTs::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(RawTs::Int)
                    .map_err(|_| E::custom(format!("{v} is not a valid time")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawTs::Float(v))
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(RawTs::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTs::Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall<'a> {
    #[serde(borrow)]
    ts: RawTs<'a>,
    #[serde(borrow)]
    src: Cow<'a, str>,
    #[serde(borrow)]
    dst: Cow<'a, str>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    requests: u64,
    errors: u64,
    latency_ms_sum: f64,
    #[serde(default)]
    interval_s: Option<u32>,
}

/// Parses one line; `line_no` is used in errors.
pub fn parse_line(line: &str, line_no: usize, limits: &Limits) -> Result<CallRecord, LineError> {
    match serde_json::from_str::<RawCall<'_>>(line) {
        Ok(raw) => {
            let ts = match raw.ts {
                RawTs::Int(v) => Ok(v),
                RawTs::Float(v) => float_ts(v),
                RawTs::Text(t) => parse_time(&t),
            }
            .map_err(|m| err(line_no, Some("ts"), m))?;
            check(
                Fields {
                    ts,
                    src: &raw.src,
                    dst: &raw.dst,
                    method: raw.method.as_deref(),
                    requests: raw.requests,
                    errors: raw.errors,
                    latency_ms_sum: raw.latency_ms_sum,
                    interval_s: raw.interval_s,
                },
                line_no,
                limits,
            )
        }
        Err(_) => Err(explain(line, line_no, limits)),
    }
}

fn float_ts(v: f64) -> Result<i64, String> {
    if v.is_finite() && v.abs() < 1e15 {
        Ok(v.floor() as i64)
    } else {
        Err(format!("{v} is not a valid time"))
    }
}

struct Fields<'a> {
    ts: i64,
    src: &'a str,
    dst: &'a str,
    method: Option<&'a str>,
    requests: u64,
    errors: u64,
    latency_ms_sum: f64,
    interval_s: Option<u32>,
}

fn err(line: usize, field: Option<&str>, message: impl Into<String>) -> LineError {
    LineError {
        line,
        field: field.map(str::to_string),
        message: message.into(),
    }
}

fn check_name(name: &str, field: &str, line: usize) -> Result<(), LineError> {
    if name.trim().is_empty() {
        return Err(err(line, Some(field), "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(err(
            line,
            Some(field),
            format!(
                "is {} bytes long; at most {MAX_NAME_LEN} are allowed",
                name.len()
            ),
        ));
    }
    let control = if name.is_ascii() {
        name.bytes().any(|b| b.is_ascii_control())
    } else {
        name.chars().any(char::is_control)
    };
    if control {
        return Err(err(line, Some(field), "contains control characters"));
    }
    Ok(())
}

/// The longest mean latency per request a record may have: a day, in milliseconds.
pub const MAX_MEAN_LATENCY_MS: f64 = 86_400_000.0;

/// The semantic rules, shared by both parsing paths.
fn check(f: Fields<'_>, line: usize, limits: &Limits) -> Result<CallRecord, LineError> {
    super::timefmt::check_time(f.ts).map_err(|m| err(line, Some("ts"), m))?;
    if f.ts > limits.now.saturating_add(limits.max_future_s) {
        return Err(err(
            line,
            Some("ts"),
            format!(
                "{} is more than {} s in the future",
                f.ts, limits.max_future_s
            ),
        ));
    }
    if f.ts < limits.now.saturating_sub(limits.max_age_s) {
        return Err(err(
            line,
            Some("ts"),
            format!(
                "{} is older than the retention window ({} days)",
                f.ts,
                limits.max_age_s / 86_400
            ),
        ));
    }
    check_name(f.src, "src", line)?;
    check_name(f.dst, "dst", line)?;
    if let Some(m) = f.method {
        check_name(m, "method", line)?;
    }
    if f.errors > f.requests {
        return Err(err(
            line,
            Some("errors"),
            format!(
                "{} errors is more than the {} requests",
                f.errors, f.requests
            ),
        ));
    }
    if !f.latency_ms_sum.is_finite() || f.latency_ms_sum < 0.0 {
        return Err(err(
            line,
            Some("latency_ms_sum"),
            format!("must be a finite number >= 0, got {}", f.latency_ms_sum),
        ));
    }
    if f.requests == 0 && f.latency_ms_sum > 0.0 {
        return Err(err(
            line,
            Some("latency_ms_sum"),
            "must be 0 when requests is 0",
        ));
    }
    // Buckets keep 32-bit sums: with no bound, a few absurd records would add up to
    // infinity and the point would vanish from charts instead of being refused here.
    if f.requests > 0 && f.latency_ms_sum / f.requests as f64 > MAX_MEAN_LATENCY_MS {
        return Err(err(
            line,
            Some("latency_ms_sum"),
            format!(
                "a mean of {} ms per request is more than a day ({MAX_MEAN_LATENCY_MS} ms)",
                f.latency_ms_sum / f.requests as f64
            ),
        ));
    }
    if let Some(i) = f.interval_s
        && (i == 0 || i > limits.max_interval_s || !limits.max_interval_s.is_multiple_of(i))
    {
        return Err(err(
            line,
            Some("interval_s"),
            format!(
                "{i} must be positive and divide the bucket width of {} s",
                limits.max_interval_s
            ),
        ));
    }
    Ok(CallRecord {
        ts: f.ts,
        src: f.src.to_string(),
        dst: f.dst.to_string(),
        method: f.method.map(str::to_string),
        requests: f.requests,
        errors: f.errors,
        latency_ms_sum: f.latency_ms_sum,
        interval_s: f.interval_s,
        src_service: None,
        dst_service: None,
    })
}

/// The slow path: says precisely what is wrong with a line the typed parser refused.
fn explain(line: &str, n: usize, limits: &Limits) -> LineError {
    let obj = match read_object(line) {
        Ok(obj) => obj,
        Err(e) => return err(n, e.field(), e.to_string()),
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return err(
            n,
            Some(unknown),
            format!("unknown field; the fields are {}", FIELDS.join(", ")),
        );
    }
    let get = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let required = |name: &str| get(name).ok_or_else(|| err(n, Some(name), "is missing"));
    let text = |name: &str, v: &Value| -> Result<String, LineError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| err(n, Some(name), format!("expected a string, got {}", kind(v))))
    };
    let count = |name: &str| -> Result<u64, LineError> {
        let v = required(name)?;
        v.as_u64().ok_or_else(|| {
            err(
                n,
                Some(name),
                format!("expected a non-negative integer, got {}", show(v)),
            )
        })
    };
    let result = (|| {
        let ts_v = required("ts")?;
        let ts = match ts_v {
            Value::Number(num) => match num.as_i64() {
                Some(i) => Ok(i),
                None => float_ts(num.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => parse_time(s),
            other => Err(format!(
                "expected RFC 3339 text or Unix seconds, got {}",
                kind(other)
            )),
        }
        .map_err(|m| err(n, Some("ts"), m))?;
        let src = text("src", required("src")?)?;
        let dst = text("dst", required("dst")?)?;
        let method = get("method").map(|v| text("method", v)).transpose()?;
        let requests = count("requests")?;
        let errors = count("errors")?;
        let lat_v = required("latency_ms_sum")?;
        let latency_ms_sum = lat_v.as_f64().ok_or_else(|| {
            err(
                n,
                Some("latency_ms_sum"),
                format!("expected a number, got {}", show(lat_v)),
            )
        })?;
        let interval_s = get("interval_s")
            .map(|v| {
                v.as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| {
                        err(
                            n,
                            Some("interval_s"),
                            format!(
                                "expected a positive integer number of seconds, got {}",
                                show(v)
                            ),
                        )
                    })
            })
            .transpose()?;
        check(
            Fields {
                ts,
                src: &src,
                dst: &dst,
                method: method.as_deref(),
                requests,
                errors,
                latency_ms_sum,
                interval_s,
            },
            n,
            limits,
        )
    })();
    match result {
        Err(e) => e,
        // The typed parser refused something the detailed one accepts: report both facts.
        Ok(_) => err(n, None, "could not be read as call statistics"),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {s:?}"),
        other => kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn one(line: &str) -> Result<CallRecord, String> {
        parse_calls(line, &Limits::around(NOW))
            .map(|mut v| v.remove(0))
            .map_err(|e| e[0].to_string())
    }

    fn line(fields: &str) -> String {
        format!(r#"{{"ts": {NOW}, "src": "web-1", "dst": "api-1", {fields}}}"#)
    }

    #[test]
    fn a_mean_latency_over_a_day_is_refused_with_its_field() {
        let e = parse_calls(
            r#"{"ts": 600, "src": "a", "dst": "b", "requests": 2, "errors": 0, "latency_ms_sum": 1e300}"#,
            &Limits::unbounded(300),
        )
        .unwrap_err();
        assert_eq!(e[0].field.as_deref(), Some("latency_ms_sum"), "{e:?}");
        assert!(e[0].message.contains("more than a day"), "{e:?}");
        let ok = parse_calls(
            r#"{"ts": 600, "src": "a", "dst": "b", "requests": 2, "errors": 0, "latency_ms_sum": 172800000}"#,
            &Limits::unbounded(300),
        );
        assert!(ok.is_ok(), "two requests of a day each: {ok:?}");
    }

    #[test]
    fn valid_lines_parse_with_every_time_form() {
        let r = one(&line(r#""method": "get", "requests": 10, "errors": 2, "latency_ms_sum": 123.5, "interval_s": 60"#))
            .unwrap();
        assert_eq!(
            (r.requests, r.errors, r.latency_ms_sum, r.interval_s),
            (10, 2, 123.5, Some(60))
        );
        assert_eq!(r.method.as_deref(), Some("get"));
        let rfc = r#"{"ts": "2026-09-21T14:13:20Z", "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}"#;
        assert_eq!(one(rfc).unwrap().ts, 1_790_000_000);
        let float = format!(
            r#"{{"ts": {NOW}.7, "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}}"#
        );
        assert_eq!(one(&float).unwrap().ts, NOW);
    }

    #[test]
    fn each_kind_of_bad_input_names_its_line_and_field() {
        let cases: Vec<(String, &str)> = vec![
            ("{not json".into(), "line 1: not valid JSON"),
            ("[1,2]".into(), "line 1: expected a JSON object, got an array"),
            (line(r#""errors": 0, "latency_ms_sum": 1"#), r#"field "requests": is missing"#),
            (line(r#""requests": "10", "errors": 0, "latency_ms_sum": 1"#), r#"field "requests": expected a non-negative integer, got the string "10""#),
            (line(r#""requests": -5, "errors": 0, "latency_ms_sum": 1"#), r#"field "requests": expected a non-negative integer, got -5"#),
            (line(r#""requests": 1.5, "errors": 0, "latency_ms_sum": 1"#), r#"field "requests": expected a non-negative integer, got 1.5"#),
            (line(r#""requests": 1, "errors": 2, "latency_ms_sum": 1"#), r#"field "errors": 2 errors is more than the 1 requests"#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": -1"#), r#"field "latency_ms_sum": must be a finite number >= 0"#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": "NaN""#), r#"field "latency_ms_sum": expected a number, got the string "NaN""#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": 1e999"#), r#"line 1: field "latency_ms_sum": not valid JSON: number out of range at column "#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": 1, "errors": 0"#), r#"line 1: field "errors": is given more than once"#),
            (line(r#""requests": 0, "errors": 0, "latency_ms_sum": 5"#), r#"field "latency_ms_sum": must be 0 when requests is 0"#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": 1, "latency": 3"#), r#"field "latency": unknown field"#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": 1, "interval_s": 7"#), r#"field "interval_s": 7 must be positive and divide"#),
            (line(r#""requests": 1, "errors": 0, "latency_ms_sum": 1, "method": 5"#), r#"field "method": expected a string, got a number"#),
            (r#"{"ts": 9999999999, "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}"#.into(), r#"field "ts": 9999999999 is more than 600 s in the future"#),
            (r#"{"ts": 1000, "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}"#.into(), r#"field "ts": 1000 is older than the retention window"#),
            (r#"{"ts": "last tuesday", "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}"#.into(), r#"field "ts": "last tuesday" is neither RFC 3339"#),
            (format!(r#"{{"ts": {NOW}, "src": "", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}}"#), r#"field "src": must not be empty"#),
            (format!(r#"{{"ts": {NOW}, "src": "a", "dst": "b\u0007", "requests": 1, "errors": 0, "latency_ms_sum": 1}}"#), r#"field "dst": contains control characters"#),
        ];
        for (input, expected) in cases {
            let got = one(&input).unwrap_err();
            assert!(
                got.contains(expected),
                "input {input}\n  got {got}\n  expected {expected}"
            );
        }
    }

    #[test]
    fn a_batch_reports_every_bad_line_with_its_number_and_skips_blank_lines() {
        let good = line(r#""requests": 1, "errors": 0, "latency_ms_sum": 1"#);
        let text = format!("{good}\n\n{good}\n{{oops\n{good}\n[]\n");
        let errors = parse_calls(&text, &Limits::around(NOW)).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 6]);
        assert_eq!(
            parse_calls(&format!("{good}\n\n{good}\n"), &Limits::around(NOW))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn unbounded_limits_accept_any_time() {
        let old = r#"{"ts": 600, "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1}"#;
        assert!(parse_calls(old, &Limits::unbounded(300)).is_ok());
    }

    #[test]
    fn error_reports_are_capped() {
        let text = "x\n".repeat(100);
        assert_eq!(
            parse_calls(&text, &Limits::around(NOW)).unwrap_err().len(),
            MAX_REPORTED_ERRORS
        );
    }
}
