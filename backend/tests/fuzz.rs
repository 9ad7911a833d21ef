//! Fuzz targets for every ingest parser, with proptest.
//!
//! Parser level, each with generators that build valid inputs and then break them (wrong
//! types, negative, fractional, out-of-range and non-finite numbers, i64/u64 extremes,
//! missing, repeated and unknown fields, names too long or blank or with control
//! characters, lone surrogates, truncated JSON, junk, deep nesting, very long lines,
//! bytes that are not UTF-8 where the parser takes bytes):
//!
//! - call statistics: `parse_calls` (NDJSON, `POST /api/v1/ingest/calls`, `epicenter import`)
//! - site activity: `parse_activity` (NDJSON, `POST /api/v1/ingest/activity`)
//! - config changes: `parse_changes` (JSON, `POST /api/v1/changes`)
//! - the topology file: `Topology::from_json` (what `Topology::load` reads)
//! - times: `parse_time` and `time_value`
//!
//! The properties: no input panics; a valid input comes back exactly (every value
//! round-trips); every refusal names its line (NDJSON), change or entry, and the field
//! when the input was broken in one field.
//!
//! HTTP level, the three ingest endpoints through the real router, in process, with
//! such bodies and also bodies that are not UTF-8, too large, or of the wrong media
//! type: the answer is a 2xx, or a 4xx whose `{"error": ..., "details": [...]}` says
//! exactly what is wrong; never a 5xx; and after a refusal the API shows the same data
//! as before.
//!
//! # Case counts
//!
//! `EPICENTER_FUZZ_CASES` sets the number of inputs of each parser-level target (there
//! are six); without it each runs 1000, sized for CI in a debug build. The HTTP
//! targets run a hundredth of it, at least 40. A nightly-size run, 6 × 250 000 parser
//! inputs:
//!
//! ```sh
//! EPICENTER_FUZZ_CASES=250000 cargo test --release -p epicenter-backend --test fuzz
//! ```
//!
//! A failure prints the smallest failing input proptest found; keep it as a named
//! `#[test]` at the end of this file once fixed.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use epicenter_backend::error::AppError;
use epicenter_backend::handlers::changes::parse_changes;
use epicenter_backend::handlers::ingest::parse_activity;
use epicenter_backend::ingest::record::{FIELDS, MAX_REPORTED_ERRORS};
use epicenter_backend::ingest::timefmt::{MAX_TIME, MIN_TIME, format_time, parse_time};
use epicenter_backend::ingest::values::{change_id, time_value};
use epicenter_backend::ingest::{CallRecord, Limits, parse_calls};
use epicenter_backend::store::Registry;
use epicenter_backend::topology::Topology;
use graph_core::link::ConfigChange;
use graph_core::model::{BucketWidth, Cluster, ClusterId};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::TestApp;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------
// Running

/// Inputs per parser-level target without `EPICENTER_FUZZ_CASES`.
const DEFAULT_CASES: u32 = 1000;

/// Inputs per parser-level target.
fn cases() -> u32 {
    static CASES: OnceLock<u32> = OnceLock::new();
    *CASES.get_or_init(|| match std::env::var("EPICENTER_FUZZ_CASES") {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            panic!("EPICENTER_FUZZ_CASES={v:?} is not a whole number of cases")
        }),
        Err(_) => DEFAULT_CASES,
    })
}

/// Requests per HTTP target.
fn http_cases() -> u32 {
    (cases() / 100).max(40)
}

/// Runs `test` on `cases` inputs from `strategy`; a failure panics with the smallest
/// failing input found.
fn fuzz<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(ProptestConfig {
        failure_persistence: None,
        // Filters (a name that is blank, a key that is known) reject a few inputs in
        // every thousand; the default cap is for the whole run.
        max_local_rejects: cases.saturating_mul(20).max(65_536),
        ..ProptestConfig::with_cases(cases)
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------
// JSON text

/// `s` as a JSON string, escaped as little as JSON requires.
fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// `s` as a JSON string with every character `\u`-escaped (surrogate pairs beyond the
/// BMP).
fn jstr_escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for u in s.encode_utf16() {
        write!(out, "\\u{u:04x}").unwrap();
    }
    out.push('"');
    out
}

/// A JSON object as one line: fields in order (name, value as JSON text), keys plain
/// or `\u`-escaped, one kind of whitespace between tokens, optional padding.
#[derive(Debug, Clone)]
struct Obj {
    fields: Vec<(String, String)>,
    escape_keys: bool,
    sep: &'static str,
    pad: usize,
}

impl Obj {
    fn render(&self) -> String {
        let s = self.sep;
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| {
                let k = if self.escape_keys {
                    jstr_escaped(k)
                } else {
                    jstr(k)
                };
                format!("{k}{s}:{s}{v}")
            })
            .collect();
        format!(
            "{{{}{s}{}{s}}}",
            " ".repeat(self.pad),
            fields.join(&format!("{s},{s}"))
        )
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some(f) => f.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }
}

/// The look of an object: key escaping, whitespace, padding (sometimes a long line).
fn shape() -> impl Strategy<Value = (bool, &'static str, usize, u64)> {
    (
        prop::bool::weighted(0.1),
        select(vec!["", " ", "  ", "\t"]),
        prop_oneof![40 => Just(0usize), 1 => 1000usize..100_000],
        any::<u64>(),
    )
}

/// An [`Obj`] of `fields` in an order picked by `seed`.
fn obj(mut fields: Vec<(String, String)>, shape: (bool, &'static str, usize, u64)) -> Obj {
    let (escape_keys, sep, pad, mut seed) = shape;
    for i in (1..fields.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        fields.swap(i, (seed >> 33) as usize % (i + 1));
    }
    Obj {
        fields,
        escape_keys,
        sep,
        pad,
    }
}

/// What a refusal must name besides the line, change or entry.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    /// This field.
    Field(String),
    /// Nothing in particular: the whole line or item is broken.
    Whole,
}

/// How a valid object is broken.
#[derive(Debug, Clone)]
enum Mutation {
    /// These fields get these values (JSON text); the refusal names `blame`.
    Set(Vec<(String, String)>, String),
    /// The field is left out.
    Remove(String),
    /// The field is written twice.
    Repeat(String),
    /// A field that is not in the format, with a value.
    Unknown(String, String),
    /// Only the first bytes of the object.
    Truncate(Index),
    /// Something else instead of the object.
    Replace(String),
    /// Text after the object.
    Append(String),
}

impl Mutation {
    fn set(field: &str, value: String) -> Mutation {
        Mutation::Set(vec![(field.to_string(), value)], field.to_string())
    }

    fn fault(&self) -> Fault {
        match self {
            Mutation::Set(_, f) | Mutation::Remove(f) | Mutation::Repeat(f) => {
                Fault::Field(f.clone())
            }
            Mutation::Unknown(f, _) => Fault::Field(f.clone()),
            _ => Fault::Whole,
        }
    }

    fn apply(&self, obj: &Obj) -> String {
        let mut o = obj.clone();
        match self {
            Mutation::Set(values, _) => {
                for (k, v) in values {
                    o.set(k, v);
                }
            }
            Mutation::Remove(f) => o.fields.retain(|(k, _)| k != f),
            Mutation::Repeat(f) => {
                let v = o
                    .fields
                    .iter()
                    .find(|(k, _)| k == f)
                    .map_or_else(|| "1".to_string(), |(_, v)| v.clone());
                o.set(f, &v);
                o.fields.push((f.clone(), v));
            }
            Mutation::Unknown(f, v) => o.fields.push((f.clone(), v.clone())),
            Mutation::Truncate(i) => {
                let text = o.render();
                let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
                return text[..cuts[i.index(cuts.len())]].to_string();
            }
            Mutation::Replace(t) => return t.clone(),
            Mutation::Append(t) => return o.render() + t,
        }
        o.render()
    }
}

/// Mutations that break a line or item as a whole.
fn whole_mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => not_an_object().prop_map(Mutation::Replace),
        1 => select(vec![" x", "}", " {}", ",", "\u{0}", " //", "]"])
            .prop_map(|t| Mutation::Append(t.to_string())),
    ]
    .boxed()
}

/// One line that is not a JSON object (and not blank).
fn not_an_object() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "[]", "1", "\"x\"", "null", "true", "[{}]", "-", "{", "}", "{]", "nul", "{\"ts\" 1}",
            "\u{feff}{}", "{\"a\":}", "{,}", "{\"\\ud800\": 1}", "1e999", "[1e999]",
        ])
        .prop_map(str::to_string),
        1 => (1usize..400).prop_map(|n| "[".repeat(n) + &"]".repeat(n)),
        1 => (1usize..400).prop_map(|n| "{\"a\":".repeat(n) + "1" + &"}".repeat(n)),
        3 => "[^\n\r]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty()),
    ]
}

/// Some JSON value, as text.
fn json_value() -> impl Strategy<Value = String> {
    select(vec![
        "1",
        "\"x\"",
        "null",
        "[]",
        "{}",
        "true",
        "-1.5",
        "{\"ts\": 1}",
    ])
    .prop_map(str::to_string)
}

/// A key that is not one of `known`.
fn unknown_key(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "TS", "Src", "latency", "request", "interval", "", " ts", "ts ", "value_"
        ])
        .prop_map(str::to_string),
        "[A-Za-z_ -]{1,12}",
        "\\PC{1,6}",
    ]
    .prop_filter("unknown", move |k| !known.contains(&k.as_str()))
}

// ---------------------------------------------------------------------------------
// Values

/// Server, method, author or description text that is valid: not blank, at most 256
/// bytes, no control characters.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z][a-z0-9-]{0,20}",
        3 => vec(any::<char>().prop_map(|c| if c.is_control() { '_' } else { c }), 1..24)
            .prop_map(String::from_iter),
        1 => select(vec!["x".repeat(256), "é".repeat(128), format!("{}€", "a".repeat(253)), "\"\\".into()]),
    ]
    .prop_filter("not blank", |s| !s.trim().is_empty())
}

/// `name` as JSON text, sometimes fully escaped.
fn name_json(name: &str, escaped: bool) -> String {
    if escaped {
        jstr_escaped(name)
    } else {
        jstr(name)
    }
}

/// Name values that are refused, as JSON text (never `null`, which is "missing").
fn bad_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "\"\"", "\"   \"", "\"\\t\"", "\"\\u3000\"", "5", "true", "[]", "{}", "[\"a\"]",
            "\"\\ud800\"", "\"\\udc00x\"", "\"a\u{1}\"", "\"\u{7f}\"", "\"\u{85}x\"",
            "\"a\\u0000b\"", "\"a\\u001bb\"", "\"x\\u009f\"", "\"a\\x\"", "1e999",
        ])
        .prop_map(str::to_string),
        1 => (257usize..5000).prop_map(|n| jstr(&"n".repeat(n))),
        1 => (129usize..1000).prop_map(|n| jstr(&"é".repeat(n))),
        1 => (0u32..0x20).prop_map(|c| format!("\"a\\u{c:04x}b\"")),
    ]
}

/// A count (requests, errors) that is refused.
fn bad_count() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "-1", "1.5", "1e3", "18446744073709551616", "-9223372036854775808", "\"10\"", "true",
            "[]", "{}", "0.0", "-0.5", "1e999", "\"\\ud800\"",
        ])
        .prop_map(str::to_string),
        1 => Just(format!("1{}", "0".repeat(400))),
        1 => (i64::MIN..0).prop_map(|v| v.to_string()),
        1 => (u128::from(u64::MAX) + 1..=u128::MAX).prop_map(|v| v.to_string()),
    ]
}

/// A non-negative finite number as JSON text, with its value.
fn number() -> impl Strategy<Value = (String, f64)> {
    prop_oneof![
        3 => (0u64..1 << 53, 0usize..=6).prop_map(|(m, k)| decimal(m, k)),
        1 => (0u64..1 << 53, -300i32..=290).prop_map(|(m, e)| format!("{m}e{e}")),
        1 => (0.0f64..f64::MAX).prop_map(|v| serde_json::to_string(&v).unwrap()),
    ]
    .prop_map(|t| {
        let v = t.parse::<f64>().unwrap();
        (t, v)
    })
}

/// `m / 10^k` written as a decimal.
fn decimal(m: u64, k: usize) -> String {
    if k == 0 {
        return m.to_string();
    }
    let digits = format!("{m:0>width$}", width = k + 1);
    let (int, frac) = digits.split_at(digits.len() - k);
    format!("{int}.{frac}")
}

/// A number value that is refused (negative, not a number, not finite).
fn bad_number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "-1", "-1e-300", "\"NaN\"", "\"Infinity\"", "\"1\"", "1e999", "-1e999", "true", "[]",
            "{}", "-0.000001", "\"\\ud800\"",
        ])
        .prop_map(str::to_string),
        1 => (f64::MIN..-1e-300).prop_map(|v| serde_json::to_string(&v).unwrap()),
        1 => (i64::MIN..0).prop_map(|v| v.to_string()),
    ]
}

/// `ts` as RFC 3339 text, in some offset, with or without fractions, sometimes in
/// lower case. Near the ends of the years 0000 to 9999 the offset is one that can
/// write `ts`; `ts` must be one some offset can write.
fn rfc3339(ts: i64) -> impl Strategy<Value = String> {
    (
        prop_oneof![3 => Just(0i32), 1 => -1439i32..=1439],
        prop_oneof![3 => Just(0u32), 1 => 0u32..1_000_000_000],
        prop::bool::weighted(0.2),
    )
        .prop_map(move |(o, n, l)| {
            [o, 0, -1439, 1439]
                .into_iter()
                .find_map(|o| rfc3339_at(ts, o, n, l))
                .unwrap_or_else(|| panic!("no offset writes {ts} in RFC 3339"))
        })
}

fn rfc3339_at(ts: i64, offset_min: i32, nanos: u32, lower: bool) -> Option<String> {
    let offset = UtcOffset::from_whole_seconds(offset_min * 60).ok()?;
    // The local time, then the offset: `ts` itself may be past year 9999 in UTC.
    let d = OffsetDateTime::from_unix_timestamp(ts + i64::from(offset_min) * 60)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()?
        .replace_offset(offset);
    let s = d.format(&Rfc3339).ok()?;
    Some(if lower { s.to_ascii_lowercase() } else { s })
}

/// Every way to write the valid time `ts` as JSON: an integer, RFC 3339 text, Unix
/// seconds as text, and (where `floats`) a fraction that is floored.
fn ts_json(ts: i64, floats: bool) -> BoxedStrategy<String> {
    let mut forms: Vec<(u32, BoxedStrategy<String>)> = vec![
        (3, Just(ts.to_string()).boxed()),
        (2, rfc3339(ts).prop_map(|s| jstr(&s)).boxed()),
        (
            1,
            (select(vec!["", " ", "\t"]), select(vec!["", "+"]))
                .prop_map(move |(pad, sign)| jstr(&format!("{pad}{sign}{ts}{pad}")))
                .boxed(),
        ),
    ];
    if floats {
        forms.push((
            1,
            "[0-9]{1,6}".prop_map(move |f| format!("{ts}.{f}")).boxed(),
        ));
        forms.push((
            1,
            (0..1000i64)
                .prop_map(move |k| format!("{}e-3", ts * 1000 + k))
                .boxed(),
        ));
    }
    Union::new_weighted(forms).boxed()
}

/// Time values (JSON text) that are never a time in `lo..=hi`.
fn bad_time(lo: i64, hi: i64) -> BoxedStrategy<String> {
    let mut forms: Vec<(u32, BoxedStrategy<String>)> = Vec::new();
    // Times in bounds but outside the window, an hour away from it.
    if lo - 3600 > MIN_TIME {
        forms.push((1, (MIN_TIME..lo - 3600).prop_map(|v| v.to_string()).boxed()));
    }
    if hi + 3600 < MAX_TIME {
        forms.push((
            1,
            (hi + 3600..=MAX_TIME).prop_map(|v| v.to_string()).boxed(),
        ));
    }
    forms.push((10, bad_time_anywhere().boxed()));
    Union::new_weighted(forms).boxed()
}

/// Time values (JSON text) that are never a time at all.
fn bad_time_anywhere() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "true", "false", "[]", "{}", "[1]", "\"\"", "\" \"", "\"later\"", "\"NaN\"",
            "\"Infinity\"", "\"-1\"", "\"2026-11-21\"", "\"2026-13-45T99:99:99Z\"",
            "\"2026-11-21T09:30:00\"", "\"1-2\"", "\"-\"", "\"9999-12-31T23:59:59-01:00\"",
            "\"1969-12-31T23:59:59Z\"", "-1", "-0.5", "1e15", "1e300", "-1e300", "1e999",
            "-1e999", "\"\\ud800\"", "\"a\u{1}b\"", "9223372036854775808",
            "18446744073709551615", "-9223372036854775808", "253402300800", "1.5",
        ])
        .prop_map(str::to_string),
        1 => Just(format!("1{}", "0".repeat(400))),
        1 => (i64::MIN..0).prop_map(|v| v.to_string()),
        1 => (MAX_TIME + 1..=i64::MAX).prop_map(|v| v.to_string()),
        1 => "q[^\n\r\"\\\\]{0,12}".prop_map(|s| jstr(&s)),
    ]
}

// ---------------------------------------------------------------------------------
// NDJSON batches

/// One line of a batch and what must become of it.
#[derive(Debug, Clone)]
enum Expect<T> {
    /// Skipped.
    Blank,
    /// Accepted as this.
    Valid(T),
    /// Refused, naming this.
    Refused(Fault),
}

/// An NDJSON body: lines and how they end.
#[derive(Debug, Clone)]
struct Batch<T> {
    lines: Vec<(String, Expect<T>)>,
    crlf: bool,
    final_newline: bool,
}

impl<T: Clone> Batch<T> {
    fn text(&self) -> String {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut text = self
            .lines
            .iter()
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join(eol);
        if self.final_newline {
            text.push_str(eol);
        }
        text
    }

    /// The refused lines, 1-based, with what each must name.
    fn refused(&self) -> Vec<(usize, Fault)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, (_, e))| match e {
                Expect::Refused(f) => Some((i + 1, f.clone())),
                _ => None,
            })
            .collect()
    }

    fn valid(&self) -> Vec<T> {
        self.lines
            .iter()
            .filter_map(|(_, e)| match e {
                Expect::Valid(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn non_blank(&self) -> usize {
        self.lines
            .iter()
            .filter(|(_, e)| !matches!(e, Expect::Blank))
            .count()
    }
}

/// Batches of lines from `line` (valid, with their object), each broken by
/// `mutation` or not, with blank lines between.
fn batch<T, L, M>(line: fn() -> L, mutation: fn(&T) -> M) -> impl Strategy<Value = Batch<T>>
where
    T: Clone + std::fmt::Debug + 'static,
    L: Strategy<Value = (T, Obj)> + 'static,
    M: Strategy<Value = Mutation> + 'static,
{
    let entry = move || {
        prop_oneof![
            1 => select(vec!["", "   ", "\t"]).prop_map(|b| (b.to_string(), Expect::Blank)),
            6 => line().prop_map(|(t, o)| (o.render(), Expect::Valid(t))),
            4 => line().prop_flat_map(move |(t, o)| {
                mutation(&t).prop_map(move |m| (m.apply(&o), Expect::Refused(m.fault())))
            }),
        ]
    };
    (
        // Sometimes more bad lines than are reported.
        prop_oneof![5 => vec(entry(), 0..10), 1 => vec(entry(), 20..30)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, final_newline)| Batch {
            lines,
            crlf,
            final_newline,
        })
}

/// Checks NDJSON errors (`line N: ...`, `line N: field "F": ...`) against the refused
/// lines, in order.
fn check_line_errors(errors: &[String], refused: &[(usize, Fault)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(errors.len(), refused.len(), "errors: {:#?}", errors);
    for (e, (n, fault)) in errors.iter().zip(refused) {
        let prefix = match fault {
            Fault::Field(f) => format!("line {n}: field \"{f}\": "),
            Fault::Whole => format!("line {n}: "),
        };
        prop_assert!(
            e.starts_with(&prefix) && e.len() > prefix.len(),
            "expected {:?}..., got {:?}",
            prefix,
            e
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Call statistics

const NOW: i64 = 1_790_000_000;
const AGE: i64 = 8 * 7 * 86_400;
const DIVISORS: [u32; 18] = [
    1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 25, 30, 50, 60, 75, 100, 150, 300,
];
const CALL_REQUIRED: [&str; 6] = ["ts", "src", "dst", "requests", "errors", "latency_ms_sum"];

/// Requests and errors (at most the requests).
fn counts() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        4 => (0u64..10_000).prop_flat_map(|r| (Just(r), 0..=r)),
        2 => any::<u64>().prop_flat_map(|r| (Just(r), 0..=r)),
        1 => select(vec![(0, 0), (u64::MAX, u64::MAX), (u64::MAX, 0), (1, 1)]),
    ]
}

/// A valid call-statistics line with its time in `lo..=hi`, and the record it must give.
fn call_line_in(lo: i64, hi: i64) -> impl Strategy<Value = (CallRecord, Obj)> {
    (
        lo..=hi,
        (name(), name(), prop::option::of(name())),
        counts(),
        prop::option::of(select(DIVISORS.to_vec())),
        any::<(bool, bool, bool)>(),
    )
        .prop_flat_map(|(ts, names, (requests, errors), interval_s, flags)| {
            let latency: BoxedStrategy<(String, f64)> = if requests == 0 {
                select(vec!["0", "0.0", "-0.0", "0e10", "-0", "0.000"])
                    .prop_map(|t| (t.to_string(), t.parse().unwrap()))
                    .boxed()
            } else {
                // At most a day per request on average (MAX_MEAN_LATENCY_MS); more is
                // refused, as `a_mean_latency_over_a_day_is_refused_with_its_field`
                // in record.rs shows.
                let max = requests as f64 * 86_400_000.0;
                prop_oneof![
                    1 => number().prop_filter("a mean of at most a day", move |(_, v)| *v <= max),
                    3 => (0.0..0.999f64).prop_map(move |f| {
                        let v = f * max;
                        (serde_json::to_string(&v).unwrap(), v)
                    }),
                ]
                .boxed()
            };
            (
                ts_json(ts, true),
                latency,
                shape(),
                Just((ts, names, requests, errors, interval_s, flags)),
            )
        })
        .prop_map(|(ts_text, (lat_text, latency), shape, rest)| {
            let (ts, (src, dst, method), requests, errors, interval_s, flags) = rest;
            let (escaped, method_null, interval_null) = flags;
            let mut fields = vec![
                ("ts".to_string(), ts_text),
                ("src".into(), name_json(&src, escaped)),
                ("dst".into(), name_json(&dst, escaped)),
                ("requests".into(), requests.to_string()),
                ("errors".into(), errors.to_string()),
                ("latency_ms_sum".into(), lat_text),
            ];
            match &method {
                Some(m) => fields.push(("method".into(), name_json(m, escaped))),
                None if method_null => fields.push(("method".into(), "null".into())),
                None => {}
            }
            match interval_s {
                Some(i) => fields.push(("interval_s".into(), i.to_string())),
                None if interval_null => fields.push(("interval_s".into(), "null".into())),
                None => {}
            }
            let record = CallRecord {
                ts,
                src,
                dst,
                method,
                requests,
                errors,
                latency_ms_sum: latency,
                interval_s,
                src_service: None,
                dst_service: None,
            };
            (record, obj(fields, shape))
        })
}

fn call_line() -> impl Strategy<Value = (CallRecord, Obj)> {
    call_line_in(NOW - AGE, NOW + 600)
}

/// Ways to break a call-statistics line around `now`.
fn call_mutation_at(r: &CallRecord, now: i64) -> BoxedStrategy<Mutation> {
    let set = |f: &'static str, s: BoxedStrategy<String>| {
        (9, s.prop_map(move |v| Mutation::set(f, v)).boxed())
    };
    let mut options = vec![
        set("ts", bad_time(now - AGE, now + 600)),
        set("src", bad_name().boxed()),
        set("dst", bad_name().boxed()),
        set("method", bad_name().boxed()),
        set("requests", bad_count().boxed()),
        set("errors", bad_count().boxed()),
        set("latency_ms_sum", bad_number().boxed()),
        set(
            "interval_s",
            prop_oneof![
                select(vec![
                    "0",
                    "7",
                    "600",
                    "301",
                    "-5",
                    "1.5",
                    "4294967296",
                    "18446744073709551616",
                    "\"60\"",
                    "true",
                    "[]",
                    "{}",
                    "1e999",
                    "60.0",
                ])
                .prop_map(str::to_string),
                (301u64..=u64::from(u32::MAX)).prop_map(|v| v.to_string()),
                (1u32..300)
                    .prop_filter("not a divisor", |v| 300 % v != 0)
                    .prop_map(|v| v.to_string()),
            ]
            .boxed(),
        ),
        (
            6,
            select(CALL_REQUIRED.to_vec())
                .prop_map(|f| Mutation::Remove(f.into()))
                .boxed(),
        ),
        (
            3,
            select(CALL_REQUIRED.to_vec())
                .prop_map(|f| Mutation::set(f, "null".into()))
                .boxed(),
        ),
        (
            6,
            select(CALL_REQUIRED.to_vec())
                .prop_map(|f| Mutation::Repeat(f.into()))
                .boxed(),
        ),
        (
            6,
            (unknown_key(&FIELDS), json_value())
                .prop_map(|(k, v)| Mutation::Unknown(k, v))
                .boxed(),
        ),
        (
            3,
            number()
                .prop_filter("positive", |(_, v)| *v > 0.0)
                .prop_map(|(t, _)| {
                    Mutation::Set(
                        vec![
                            ("requests".into(), "0".into()),
                            ("errors".into(), "0".into()),
                            ("latency_ms_sum".into(), t),
                        ],
                        "latency_ms_sum".into(),
                    )
                })
                .boxed(),
        ),
        (15, whole_mutation()),
    ];
    if r.requests < u64::MAX {
        let requests = r.requests;
        options.push((
            4,
            (1..=u64::MAX - requests)
                .prop_map(move |d| Mutation::set("errors", (requests + d).to_string()))
                .boxed(),
        ));
    }
    Union::new_weighted(options).boxed()
}

fn call_mutation(r: &CallRecord) -> BoxedStrategy<Mutation> {
    call_mutation_at(r, NOW)
}

#[test]
fn call_statistics_parse_exactly_or_name_the_line_and_field() {
    fuzz(cases(), batch(call_line, call_mutation), |b| {
        let text = b.text();
        let refused = b.refused();
        match parse_calls(&text, &Limits::around(NOW)) {
            Ok(records) => {
                prop_assert!(refused.is_empty(), "accepted, but {refused:?} are broken");
                prop_assert_eq!(records, b.valid());
            }
            Err(errors) => {
                let first = &refused[..refused.len().min(MAX_REPORTED_ERRORS)];
                for e in &errors {
                    prop_assert!(!e.message.is_empty());
                    if let Some((_, Fault::Field(f))) = first.iter().find(|(n, _)| *n == e.line) {
                        prop_assert_eq!(e.field.as_deref(), Some(f.as_str()), "{}", e);
                    }
                }
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                check_line_errors(&errors, first)?;
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// Activity

const WIDTH: BucketWidth = BucketWidth::FIVE_MINUTES;

/// A valid activity line in `lo..=hi`, and the point it must give.
fn activity_line_in(lo: i64, hi: i64) -> impl Strategy<Value = ((i64, f64), Obj)> {
    (lo..=hi, number(), any::<bool>())
        .prop_flat_map(|(ts, value, int)| (ts_json(ts, false), shape(), Just((ts, value, int))))
        .prop_map(|(ts_text, shape, (ts, (text, value), int))| {
            // Whole values are sometimes written as integers.
            let text = if int && value.fract() == 0.0 && value < 1e15 {
                format!("{}", value as u64)
            } else {
                text
            };
            let fields = vec![("ts".to_string(), ts_text), ("value".into(), text)];
            ((WIDTH.floor(ts), value), obj(fields, shape))
        })
}

fn activity_line() -> impl Strategy<Value = ((i64, f64), Obj)> {
    activity_line_in(NOW - AGE, NOW + 600)
}

fn activity_mutation_at(now: i64) -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => bad_time(now - AGE, now + 600)
            .prop_union(
                select(vec!["1790000000.5", "1790000000.0", "null", "1.79e9"])
                    .prop_map(str::to_string)
                    .boxed(),
            )
            .prop_map(|v| Mutation::set("ts", v)),
        3 => prop_oneof![4 => bad_number(), 1 => Just("null".to_string())]
            .prop_map(|v| Mutation::set("value", v)),
        2 => select(vec!["ts", "value"]).prop_map(|f| Mutation::Remove(f.into())),
        2 => select(vec!["ts", "value"]).prop_map(|f| Mutation::Repeat(f.into())),
        2 => (unknown_key(&["ts", "value"]), json_value()).prop_map(|(k, v)| Mutation::Unknown(k, v)),
        4 => whole_mutation(),
    ]
    .boxed()
}

fn activity_mutation(_: &(i64, f64)) -> BoxedStrategy<Mutation> {
    activity_mutation_at(NOW)
}

#[test]
fn activity_parses_exactly_or_names_the_line_and_field() {
    fuzz(cases(), batch(activity_line, activity_mutation), |b| {
        let text = b.text();
        let refused = b.refused();
        match parse_activity(&text, &Limits::around(NOW), WIDTH) {
            Ok(points) => {
                prop_assert!(refused.is_empty(), "accepted, but {refused:?} are broken");
                prop_assert_eq!(points, b.valid());
            }
            Err(errors) => check_line_errors(&errors, &refused)?,
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// Config changes

/// Names in the test registry and the cluster ids each means.
const KNOWN: [(&str, &[u32]); 5] = [
    ("web-dc1", &[0]),
    ("web-dc2", &[1]),
    ("web", &[0, 1]),
    ("db", &[2]),
    ("api", &[3]),
];

fn registry() -> Registry {
    let mut r = Registry::default();
    for (name, service, dc) in [
        ("web-dc1", "web", Some("dc1")),
        ("web-dc2", "web", Some("dc2")),
        ("db", "db", None),
        ("api", "api", None),
    ] {
        r.cluster(Cluster {
            name: name.into(),
            service: service.into(),
            dc: dc.map(str::to_string),
            tier: None,
        });
    }
    r
}

/// A change id as JSON text, the number it must get, and the label it keeps.
fn change_id_json() -> impl Strategy<Value = (String, u64, Option<String>)> {
    prop_oneof![
        any::<u64>().prop_map(|n| (n.to_string(), n, None)),
        (any::<u64>(), "0{0,2}", select(vec!["", " "])).prop_map(|(n, z, pad)| (
            jstr(&format!("{pad}{z}{n}{pad}")),
            n,
            None
        )),
        ("[A-Z]{2,5}-", any::<u32>(), select(vec!["", " "])).prop_map(|(p, n, pad)| {
            let label = format!("{p}{n}");
            (
                jstr(&format!("{pad}{label}{pad}")),
                u64::from(n),
                Some(label),
            )
        }),
        "[a-z]{1,12}".prop_map(|w| (jstr(&w), change_id(&w), Some(w))),
    ]
}

/// A valid change with its time in `lo..=hi` and names from `known`, and what it must
/// become.
fn change_in(
    lo: i64,
    hi: i64,
    known: &'static [(&'static str, &'static [u32])],
) -> impl Strategy<Value = (ConfigChange, Obj)> {
    (
        lo..=hi,
        change_id_json(),
        (name(), name()),
        vec(select(known.to_vec()), 1..4),
        prop::option::of(name()),
        any::<(bool, bool)>(),
    )
        .prop_flat_map(|(ts, id, text, clusters, link, flags)| {
            (
                ts_json(ts, false),
                shape(),
                Just((ts, id, text, clusters, link, flags)),
            )
        })
        .prop_map(|(ts_text, shape, rest)| {
            let (ts, (id_text, id, label), (author, description), clusters, link, flags) = rest;
            let (escaped, link_null) = flags;
            let mut fields = vec![
                ("id".to_string(), id_text),
                ("ts".into(), ts_text),
                ("author".into(), name_json(&author, escaped)),
                (
                    "clusters".into(),
                    serde_json::to_string(&clusters.iter().map(|c| c.0).collect::<Vec<_>>())
                        .unwrap(),
                ),
                ("description".into(), name_json(&description, escaped)),
            ];
            match &link {
                Some(l) => fields.push(("link".into(), name_json(l, escaped))),
                None if link_null => fields.push(("link".into(), "null".into())),
                None => {}
            }
            let mut ids: Vec<ClusterId> = clusters
                .iter()
                .flat_map(|c| c.1.iter().map(|&i| ClusterId(i)))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let description = match label {
                Some(l) if !description.contains(&l) => format!("{l}: {description}"),
                _ => description,
            };
            let change = ConfigChange {
                id,
                ts,
                author,
                clusters: ids,
                description,
                link,
            };
            (change, obj(fields, shape))
        })
}

/// Ways to break one change (the body stays JSON or not; see [`changes_body`]).
fn change_mutation(known: &'static [(&'static str, &'static [u32])]) -> BoxedStrategy<Mutation> {
    let text = || {
        select(vec![
            "\"\"",
            "\"   \"",
            "\"\\t\\n\"",
            "5",
            "true",
            "[]",
            "{}",
            "null",
        ])
        .prop_map(str::to_string)
    };
    let names: Vec<&str> = known.iter().map(|k| k.0).collect();
    prop_oneof![
        2 => select(vec!["-1", "1.5", "true", "null", "[]", "{}", "\"\"", "\"  \"", "-9223372036854775808", "18446744073709551616"])
            .prop_map(|v| Mutation::set("id", v.into())),
        3 => bad_time(MIN_TIME, MAX_TIME).prop_map(|v| Mutation::set("ts", v)),
        1 => text().prop_map(|v| Mutation::set("author", v)),
        1 => text().prop_map(|v| Mutation::set("description", v)),
        1 => select(vec!["[]", "\"web\"", "5", "{}", "true", "null"])
            .prop_map(|v| Mutation::set("clusters", v.into())),
        2 => (vec(select(names), 0..3), select(vec!["\"nowhere\"", "\"WEB\"", "\"\"", "\" db\"", "5", "null", "[]", "{}"]), any::<Index>())
            .prop_map(|(mut list, bad, at)| {
                let mut items: Vec<String> = list.drain(..).map(jstr).collect();
                let i = at.index(items.len() + 1);
                items.insert(i, bad.to_string());
                Mutation::Set(
                    vec![("clusters".into(), format!("[{}]", items.join(", ")))],
                    format!("clusters[{i}]"),
                )
            }),
        1 => select(vec!["5", "true", "[]", "{}", "[\"x\"]"]).prop_map(|v| Mutation::set("link", v.into())),
        3 => select(vec!["id", "ts", "author", "clusters", "description"])
            .prop_map(|f| Mutation::Remove(f.into())),
        2 => (
            unknown_key(&["id", "ts", "author", "clusters", "description", "link"]),
            json_value()
        )
            .prop_map(|(k, v)| Mutation::Unknown(k, v)),
        2 => select(vec!["5", "\"x\"", "[]", "null", "true", "[{}]"])
            .prop_map(|t| Mutation::Replace(t.into())),
    ]
    .boxed()
}

/// A `POST /api/v1/changes` body: each change valid or broken, as one object or an
/// array; sometimes cut short or with bytes that are not UTF-8.
#[derive(Debug, Clone)]
struct ChangesBody {
    items: Vec<(String, Expect<ConfigChange>)>,
    single: bool,
    damage: Option<(Index, Vec<u8>)>,
}

impl ChangesBody {
    fn bytes(&self) -> Vec<u8> {
        let mut text = if self.single && self.items.len() == 1 && !self.items[0].0.starts_with('[')
        {
            self.items[0].0.clone()
        } else {
            let items: Vec<&str> = self.items.iter().map(|(t, _)| t.as_str()).collect();
            format!("[{}]", items.join(",\n "))
        }
        .into_bytes();
        match &self.damage {
            // Cut short.
            Some((at, bad)) if bad.is_empty() => text.truncate(at.index(text.len())),
            Some((at, bad)) => {
                let i = at.index(text.len() + 1);
                text.splice(i..i, bad.iter().copied());
            }
            None => {}
        }
        text
    }

    fn refused(&self) -> Vec<(usize, Fault)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, (_, e))| match e {
                Expect::Refused(f) => Some((i, f.clone())),
                _ => None,
            })
            .collect()
    }

    fn valid(&self) -> Vec<ConfigChange> {
        self.items
            .iter()
            .filter_map(|(_, e)| match e {
                Expect::Valid(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }
}

fn changes_body_with(
    lo: i64,
    hi: i64,
    known: &'static [(&'static str, &'static [u32])],
) -> impl Strategy<Value = ChangesBody> {
    let item = move || {
        prop_oneof![
            3 => change_in(lo, hi, known).prop_map(|(c, o)| (o.render(), Expect::Valid(c))),
            2 => (change_in(lo, hi, known), change_mutation(known))
                .prop_map(|((_, o), m)| (m.apply(&o), Expect::Refused(m.fault()))),
        ]
    };
    (
        prop_oneof![5 => vec(item(), 0..6), 1 => vec(item(), 6..20)],
        any::<bool>(),
        prop_oneof![
            8 => Just(None),
            1 => any::<Index>().prop_map(|i| Some((i, vec![]))),
            1 => (any::<Index>(), select(vec![vec![0xff], vec![0xc0, 0x80], vec![0x80], vec![0xe2, 0x82], vec![0xed, 0xa0, 0x80]]))
                .prop_map(|(i, b)| Some((i, b))),
        ],
    )
        .prop_map(|(items, single, damage)| ChangesBody {
            items,
            single,
            damage,
        })
}

fn changes_body() -> impl Strategy<Value = ChangesBody> {
    changes_body_with(MIN_TIME, MAX_TIME, &KNOWN)
}

/// Checks an answer to `body`: the changes exactly, or an error naming each bad change
/// and its field, or where the JSON breaks.
fn check_changes(
    body: &ChangesBody,
    bytes: &[u8],
    got: Result<Vec<ConfigChange>, (String, Vec<String>)>,
) -> Result<(), TestCaseError> {
    let refused = body.refused();
    let syntax = serde_json::from_slice::<Value>(bytes).err();
    match got {
        Ok(changes) => {
            prop_assert!(
                syntax.is_none(),
                "accepted, but the body is not JSON: {syntax:?}"
            );
            prop_assert!(refused.is_empty(), "accepted, but {refused:?} are broken");
            prop_assert_eq!(changes, body.valid());
        }
        Err((message, details)) => {
            if let Some(e) = syntax {
                prop_assert!(
                    message.starts_with("the body is not valid JSON: ")
                        && message.contains(&format!("line {} column {}", e.line(), e.column())),
                    "{}",
                    message
                );
                return Ok(());
            }
            prop_assert_eq!(
                &message,
                &format!("{} changes are invalid; nothing was stored", refused.len())
            );
            prop_assert_eq!(details.len(), refused.len(), "{:#?}", details);
            for (d, (i, fault)) in details.iter().zip(&refused) {
                let prefix = match fault {
                    Fault::Field(f) => format!("change {i}: field \"{f}\": "),
                    Fault::Whole => format!("change {i}: "),
                };
                prop_assert!(
                    d.starts_with(&prefix) && d.len() > prefix.len(),
                    "expected {:?}..., got {:?}",
                    prefix,
                    d
                );
            }
        }
    }
    Ok(())
}

#[test]
fn config_changes_parse_exactly_or_name_the_change_and_field() {
    let registry = registry();
    fuzz(cases(), changes_body(), |body| {
        let bytes = body.bytes();
        let got = match parse_changes(&bytes, &registry) {
            Ok(c) => Ok(c),
            Err(AppError::BadRequest { message, details }) => Err((message, details)),
            Err(other) => return Err(TestCaseError::fail(format!("not a 400: {other:?}"))),
        };
        check_changes(&body, &bytes, got)
    });
}

// ---------------------------------------------------------------------------------
// Topology

/// A topology file as JSON, and what lookups in it must give.
#[derive(Debug, Clone)]
struct TopologyCase {
    file: Value,
    pretty: bool,
    /// Server name, and its service and data centre.
    lookups: Vec<(String, (String, Option<String>))>,
}

/// Rule `k` matches names `z{k}_{word}{service}` with an optional `-dc{d}`; listed
/// servers never start with `z`, so exact names and rules do not overlap.
fn rule(k: usize, word: &str) -> String {
    format!(
        "z{k}_{}(?P<service>[a-z]+)(?:-(?P<dc>dc[0-9]))?",
        regex::escape(word)
    )
}

fn topology_case() -> impl Strategy<Value = TopologyCase> {
    let server = prop_oneof![
        "[a-y][a-z0-9.-]{0,15}",
        name().prop_filter("not a rule's name", |n| !n.starts_with('z')),
    ];
    (
        vec((server, name(), prop::option::of("dc[0-9]")), 0..6),
        vec("[a-z]{1,6}", 0..4),
        vec(name(), 0..3),
        vec((name(), name()), 0..3),
        vec((name(), name()), 0..3),
        vec((any::<Index>(), "[a-z]{1,8}", prop::option::of(0u8..10)), 0..4),
        any::<bool>(),
    )
        .prop_map(|(servers, words, split, tiers, edges, probes, pretty)| {
            let mut seen = std::collections::HashSet::new();
            let servers: Vec<_> = servers
                .into_iter()
                .filter(|(s, _, _)| seen.insert(s.clone()))
                .collect();
            let mut lookups: Vec<_> = servers
                .iter()
                .map(|(s, svc, dc)| (s.clone(), (svc.clone(), dc.clone())))
                .collect();
            if !words.is_empty() {
                for (k, svc, dc) in probes {
                    let k = k.index(words.len());
                    let dc = dc.map(|d| format!("dc{d}"));
                    let name = format!(
                        "z{k}_{}{svc}{}",
                        words[k],
                        dc.as_ref().map(|d| format!("-{d}")).unwrap_or_default()
                    );
                    lookups.push((name, (svc, dc)));
                }
            }
            let file = json!({
                "version": 1,
                "servers": servers.iter().map(|(s, svc, dc)| match dc {
                    Some(dc) => json!({"server": s, "service": svc, "dc": dc}),
                    None => json!({"server": s, "service": svc}),
                }).collect::<Vec<_>>(),
                "rules": words.iter().enumerate().map(|(k, w)| json!({"pattern": rule(k, w)})).collect::<Vec<_>>(),
                "split_services": split,
                "tiers": tiers.into_iter().collect::<BTreeMap<_, _>>(),
                "key_edges": edges.iter().map(|(s, d)| json!({"src": s, "dst": d})).collect::<Vec<_>>(),
            });
            TopologyCase {
                file,
                pretty,
                lookups,
            }
        })
}

/// How a valid topology file is broken.
#[derive(Debug, Clone)]
enum TopologyMutation {
    /// `version` becomes this JSON text.
    Version(String),
    /// A listed server's name (or service) becomes empty.
    EmptyServer(Index, bool),
    /// A listed server again at the end.
    Duplicate(Index),
    /// A rule's pattern becomes this.
    Pattern(Index, String),
    /// A field the format does not have: at the top, in a server, rule or key edge.
    Unknown(u8, String),
    /// A field of the wrong type: (path, JSON text).
    WrongType(&'static str, &'static str),
    /// The text cut short.
    Truncate(Index),
    /// Bytes that are not UTF-8, put in somewhere.
    NotUtf8(Index, Vec<u8>),
}

/// What a topology must do with a file.
#[derive(Debug, Clone)]
enum TopologyExpect {
    /// Accepted; these lookups hold.
    Valid(Vec<(String, (String, Option<String>))>),
    /// Refused with this entry or message named.
    Names(String),
    /// Refused, naming the line and column of the JSON.
    Position,
}

/// Regular-expression pieces, valid together or not.
const REGEX_PIECES: [&str; 22] = [
    "(",
    ")",
    "(?P<service>",
    "(?P<dc>",
    "(?:",
    "a",
    "[a-z]+",
    "\\d",
    "|",
    "*",
    "?",
    "-",
    "#",
    "(?x)",
    "\n",
    "{2}",
    "[",
    "]",
    "\\",
    ".",
    "$",
    "^",
];

fn topology_mutation() -> impl Strategy<Value = TopologyMutation> {
    use TopologyMutation as M;
    prop_oneof![
        2 => prop_oneof![
            (0u32..).prop_filter("not 1", |v| *v != 1).prop_map(|v| v.to_string()),
            select(vec!["-1", "1.5", "\"1\"", "4294967296", "true", "null", "[]", "1e999"]).prop_map(str::to_string),
        ].prop_map(M::Version),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(i, s)| M::EmptyServer(i, s)),
        1 => any::<Index>().prop_map(M::Duplicate),
        4 => (any::<Index>(), vec(select(REGEX_PIECES.to_vec()), 1..10).prop_map(|p| p.concat())).prop_map(|(i, p)| M::Pattern(i, p)),
        2 => (0u8..4, unknown_key(&["version", "servers", "rules", "split_services", "tiers", "key_edges", "server", "service", "dc", "pattern", "src", "dst"])).prop_map(|(w, k)| M::Unknown(w, k)),
        2 => select(vec![
            ("servers", "{}"), ("servers", "[1]"), ("rules", "\"x\""), ("rules", "[{\"pattern\": 5}]"),
            ("tiers", "[]"), ("tiers", "{\"web\": 1}"), ("split_services", "[1]"), ("key_edges", "[{\"src\": 1, \"dst\": \"b\"}]"),
            ("servers", "[{\"server\": \"a\"}]"), ("servers", "[{\"server\": \"a\", \"service\": \"b\", \"dc\": 5}]"),
        ]).prop_map(|(p, v)| M::WrongType(p, v)),
        2 => any::<Index>().prop_map(M::Truncate),
        1 => (any::<Index>(), select(vec![vec![0xff], vec![0xc0, 0x80], vec![0x80], vec![0xed, 0xa0, 0x80]])).prop_map(|(i, b)| M::NotUtf8(i, b)),
    ]
}

/// Bytes that print as text, for failure reports.
#[derive(Clone)]
struct Text(Vec<u8>);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

fn render(file: &Value, pretty: bool) -> Vec<u8> {
    if pretty {
        serde_json::to_vec_pretty(file).unwrap()
    } else {
        serde_json::to_vec(file).unwrap()
    }
}

/// The bytes of a broken file and what must happen; `None` when the mutation does not
/// apply (no servers to empty, no rule to change).
fn topology_broken(case: &TopologyCase, m: &TopologyMutation) -> Option<(Vec<u8>, TopologyExpect)> {
    use TopologyMutation as M;
    let mut file = case.file.clone();
    let servers = file["servers"].as_array().map_or(0, Vec::len);
    let rules = file["rules"].as_array().map_or(0, Vec::len);
    let expect = match m {
        M::Version(v) => {
            // Written by hand: the value need not be JSON.
            file.as_object_mut().unwrap().remove("version");
            let rest = String::from_utf8(render(&file, case.pretty)).unwrap();
            let text = format!("{{\"version\": {v},{}", &rest[1..]);
            let expect = match v.parse::<u32>() {
                Ok(n) => TopologyExpect::Names(format!("version {n} is not supported")),
                Err(_) => TopologyExpect::Position,
            };
            return Some((text.into_bytes(), expect));
        }
        M::EmptyServer(i, server) if servers > 0 => {
            let i = i.index(servers);
            file["servers"][i][if *server { "server" } else { "service" }] = json!("");
            TopologyExpect::Names(format!(
                "servers[{i}]: server and service must not be empty"
            ))
        }
        M::Duplicate(i) if servers > 0 => {
            let copy = file["servers"][i.index(servers)].clone();
            let name = copy["server"].as_str().unwrap().to_string();
            file["servers"].as_array_mut().unwrap().push(copy);
            TopologyExpect::Names(format!(
                "servers[{servers}]: server {name:?} is listed twice"
            ))
        }
        M::Pattern(i, p) if rules > 0 => {
            let i = i.index(rules);
            file["rules"][i]["pattern"] = json!(p);
            let alone = regex::Regex::new(p);
            let wrapped = regex::Regex::new(&format!("^(?:{p})$"));
            let service = alone
                .as_ref()
                .is_ok_and(|r| r.capture_names().flatten().any(|n| n == "service"));
            if alone.is_ok() && wrapped.is_ok() && service {
                // Valid, but it may now match the names meant for other rules.
                TopologyExpect::Valid(
                    case.lookups
                        .iter()
                        .filter(|(n, _)| !n.starts_with('z'))
                        .cloned()
                        .collect(),
                )
            } else {
                TopologyExpect::Names(format!("rules[{i}]: pattern {p:?}"))
            }
        }
        M::Unknown(w, k) => {
            let target = match w {
                0 => Some(&mut file),
                1 => file["servers"].get_mut(0),
                2 => file["rules"].get_mut(0),
                _ => file["key_edges"].get_mut(0),
            }?;
            target[k.as_str()] = json!(1);
            TopologyExpect::Position
        }
        M::WrongType(path, v) => {
            file[*path] = serde_json::from_str(v).unwrap();
            TopologyExpect::Position
        }
        M::Truncate(i) => {
            let bytes = render(&file, case.pretty);
            return Some((
                bytes[..i.index(bytes.len())].to_vec(),
                TopologyExpect::Position,
            ));
        }
        M::NotUtf8(i, bad) => {
            let mut bytes = render(&file, case.pretty);
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, bad.iter().copied());
            return Some((bytes, TopologyExpect::Position));
        }
        _ => return None,
    };
    Some((render(&file, case.pretty), expect))
}

#[test]
fn topology_files_load_exactly_or_name_the_entry_or_position() {
    let strategy = (
        topology_case(),
        prop::option::weighted(0.7, topology_mutation()),
    )
        .prop_map(|(case, m)| {
            // A mutation that needs servers or rules where there are none leaves the
            // file valid.
            let (bytes, expect) = m
                .and_then(|m| topology_broken(&case, &m))
                .unwrap_or_else(|| {
                    (
                        render(&case.file, case.pretty),
                        TopologyExpect::Valid(case.lookups.clone()),
                    )
                });
            (Text(bytes), expect)
        });
    let position =
        regex::Regex::new(r"^invalid topology in fuzz\.json: line (\d+), column (\d+): ").unwrap();
    fuzz(cases(), strategy, |(Text(bytes), expect)| {
        let got = Topology::from_json(&bytes, Some("fuzz.json"));
        match (expect, got) {
            (TopologyExpect::Valid(lookups), Ok(t)) => {
                for (server, want) in lookups {
                    prop_assert_eq!(t.lookup(&server), Some(want), "{}", server);
                }
            }
            (TopologyExpect::Names(what), Err(e)) => {
                let e = e.to_string();
                prop_assert!(
                    e.starts_with("invalid topology in fuzz.json: ") && e.contains(&what),
                    "expected {:?} in {:?}",
                    what,
                    e
                );
            }
            (TopologyExpect::Position, Err(e)) => {
                let e = e.to_string();
                let c = position.captures(&e);
                prop_assert!(c.is_some(), "no line and column in {:?}", e);
                let line: usize = c.unwrap()[1].parse().unwrap();
                let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
                prop_assert!(
                    (1..=lines).contains(&line),
                    "line {} of {}: {}",
                    line,
                    lines,
                    e
                );
            }
            (expect, got) => {
                return Err(TestCaseError::fail(format!(
                    "expected {expect:?}, got {:?} for {:?}",
                    got.map(|_| "a topology").map_err(|e| e.to_string()),
                    String::from_utf8_lossy(&bytes)
                )));
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// Times

/// Text that looks like a time, almost, or not at all.
fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (MIN_TIME..=MAX_TIME).prop_flat_map(|t| prop_oneof![
            Just(t.to_string()),
            rfc3339(t),
            Just(format_time(t)),
        ]),
        2 => (MIN_TIME - 400 * 86_400..MIN_TIME + 86_400).prop_flat_map(rfc3339),
        2 => (MAX_TIME - 86_400..MAX_TIME + 86_340).prop_flat_map(rfc3339),
        2 => any::<i64>().prop_map(|t| t.to_string()),
        1 => any::<u128>().prop_map(|t| t.to_string()),
        1 => ("[+-]?", "[0-9]{1,60}", select(vec!["", " ", "\t"])).prop_map(|(s, d, p)| format!("{p}{s}{d}{p}")),
        2 => "[0-9+: .tTzZ-]{0,24}",
        1 => select(vec![
            "2026-11-21", "2026-11-21T09:30:00", "-", "+", "--1", "1-2", "12:00", "+-5",
            "2026-11-21T09:30:00+24:00", "2026-02-30T00:00:00Z", "2026-11-21T09:30:60Z",
            "2026-11-21 09:30:00Z", "0000-01-01T00:00:00Z", "1970-01-01T00:00:00.999999999Z",
            "9999-12-31T23:59:59.999Z", "", " ", "\u{3000}300",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// Whether `t` is an integer as text: an optional sign and digits.
fn integer_text(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What `parse_time` must say about `text`.
fn check_parse_time(text: &str, got: &Result<i64, String>) -> Result<(), TestCaseError> {
    let t = text.trim();
    let bounds = i128::from(MIN_TIME)..=i128::from(MAX_TIME);
    let value: Option<i128> = if integer_text(t) {
        Some(t.parse().unwrap_or(i128::MAX))
    } else {
        OffsetDateTime::parse(t, &Rfc3339)
            .ok()
            .map(|d| i128::from(d.unix_timestamp()))
    };
    match (value, got) {
        (Some(v), Ok(got)) => prop_assert!(bounds.contains(&v) && v == i128::from(*got)),
        (Some(v), Err(e)) => prop_assert!(
            !bounds.contains(&v) && e.contains("outside the supported times"),
            "{:?}: {}",
            t,
            e
        ),
        (None, Ok(got)) => prop_assert!(false, "{:?} accepted as {}", t, got),
        (None, Err(e)) => prop_assert!(
            e.contains(&format!("{t:?} is neither RFC 3339")),
            "{:?}: {}",
            t,
            e
        ),
    }
    Ok(())
}

#[test]
fn times_parse_exactly_in_bounds_and_say_why_not() {
    fuzz(cases(), time_text(), |text| {
        let got = parse_time(&text);
        check_parse_time(&text, &got)
    });
}

/// Some JSON value a time field might get.
fn time_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any::<i64>().prop_map(Value::from),
        2 => (MIN_TIME..=MAX_TIME).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => (i64::MAX as u64..).prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => select(vec![600.0, 1.5, -0.5, 1e300, 0.0]).prop_map(Value::from),
        3 => time_text().prop_map(Value::String),
        1 => select(vec![json!(null), json!(true), json!([]), json!({}), json!([600]), json!({"ts": 600})]),
    ]
}

#[test]
fn time_values_parse_exactly_in_bounds_and_say_why_not() {
    fuzz(cases(), time_json(), |v| {
        let got = time_value(&v);
        match &v {
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                let n = i128::from(n.as_i64().unwrap_or(i64::MAX))
                    .max(n.as_u64().map_or(i128::MIN, i128::from));
                if (i128::from(MIN_TIME)..=i128::from(MAX_TIME)).contains(&n) {
                    prop_assert_eq!(got, Ok(n as i64));
                } else {
                    let e = got.unwrap_err();
                    prop_assert!(
                        e.contains(&n.to_string()) && e.contains("outside the supported times"),
                        "{}",
                        e
                    );
                }
            }
            Value::Number(n) => {
                let e = got.unwrap_err();
                prop_assert_eq!(e, format!("{n} is not whole Unix seconds"));
            }
            Value::String(s) => {
                prop_assert_eq!(&got, &parse_time(s));
                check_parse_time(s, &got)?;
            }
            other => {
                let e = got.unwrap_err();
                prop_assert!(
                    e.starts_with("expected RFC 3339 text or Unix seconds, got ")
                        && e.contains(&other.to_string()),
                    "{}",
                    e
                );
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// Over HTTP

/// The body limit of the app under test: small, so large bodies are cheap to send.
const BODY_LIMIT: usize = 64 * 1024;

/// The app, its router and a runtime to drive it.
struct Http {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    router: axum::Router,
    now: i64,
}

impl Http {
    fn start() -> Http {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = rt.block_on(TestApp::start_with(None, |c| {
            c.ingest.max_body_bytes = BODY_LIMIT;
        }));
        let router = epicenter_backend::app(app.state.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Http {
            rt,
            app,
            router,
            now,
        }
    }

    /// POSTs `body` with the ingest token; the status and the body as JSON.
    fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.app.ingest_token),
            )
            .body(Body::from(body))
            .unwrap();
        self.send(req)
    }

    fn get(&self, path: &str) -> Value {
        let req = Request::get(path)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.app.ingest_token),
            )
            .body(Body::empty())
            .unwrap();
        let (status, body) = self.send(req);
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        self.rt.block_on(async {
            let res = self.router.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            (status, body)
        })
    }
}

/// What is sent besides a well-formed body: the media type, and damage.
#[derive(Debug, Clone)]
enum Wrapping {
    /// As it is, with this media type.
    Plain(&'static str),
    /// Bytes that are not UTF-8 put in at some place.
    NotUtf8(Index, Vec<u8>),
    /// Padded with spaces to more than the limit.
    TooLarge(usize),
}

fn wrapping(accepted: &'static str) -> impl Strategy<Value = Wrapping> {
    prop_oneof![
        12 => Just(Wrapping::Plain(accepted)),
        2 => select(vec![
            "application/json", "text/plain", "", "application/x-ndjsonx", "application/jsonl; charset=utf-8",
            "Application/X-NDJSON", "application/json-lines", "application/x-ndjson;charset=utf-8",
            "multipart/form-data", "application/json; charset=utf-8",
        ]).prop_map(Wrapping::Plain),
        2 => (any::<Index>(), select(vec![vec![0xff], vec![0xc0, 0x80], vec![0x80], vec![0xe2, 0x82], vec![0xed, 0xa0, 0x80]]))
            .prop_map(|(i, b)| Wrapping::NotUtf8(i, b)),
        1 => (1usize..5000).prop_map(Wrapping::TooLarge),
    ]
}

impl Wrapping {
    fn content_type(&self, accepted: &'static str) -> &'static str {
        match self {
            Wrapping::Plain(t) => t,
            _ => accepted,
        }
    }

    fn wrap(&self, text: Vec<u8>) -> Vec<u8> {
        let mut body = text;
        match self {
            Wrapping::Plain(_) => {}
            Wrapping::NotUtf8(at, bad) => {
                let i = at.index(body.len() + 1);
                body.splice(i..i, bad.iter().copied());
            }
            Wrapping::TooLarge(extra) => {
                body.resize(BODY_LIMIT.max(body.len()) + extra, b' ');
            }
        }
        body
    }
}

/// Whether the server takes a body of type `media` where it accepts `accepted`.
fn media_accepted(media: &str, accepted: &[&str]) -> bool {
    let mut headers = axum::http::HeaderMap::new();
    match axum::http::HeaderValue::from_str(media) {
        Ok(v) => headers.insert(axum::http::header::CONTENT_TYPE, v),
        Err(_) => return false,
    };
    epicenter_backend::handlers::require_media_type(&headers, accepted).is_ok()
}

/// Checks what every refusal has in common, and the refusals that come before the
/// body is read: the media type, the size and UTF-8. `Some(())` when one of those
/// applied.
fn check_refusal_before_parsing(
    status: StatusCode,
    answer: &Value,
    body: &[u8],
    media: &str,
    accepted: &[&str],
) -> Result<Option<()>, TestCaseError> {
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "{} {}",
        status,
        answer
    );
    if status.is_client_error() {
        let error = answer["error"].as_str().unwrap_or("");
        prop_assert!(!error.is_empty(), "no error in {}", answer);
        // `details` is left out when empty.
        prop_assert!(
            answer.get("details").is_none_or(|d| d
                .as_array()
                .is_some_and(|d| !d.is_empty() && d.iter().all(Value::is_string))),
            "bad details in {}",
            answer
        );
    }
    if !media_accepted(media, accepted) {
        prop_assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", answer);
        let quoted = format!("{media:?}");
        prop_assert!(
            answer["error"].as_str().unwrap().contains(&quoted),
            "{}",
            answer
        );
        return Ok(Some(()));
    }
    if body.len() > BODY_LIMIT {
        prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer);
        prop_assert_eq!(
            answer["error"].as_str().unwrap(),
            format!("the body is larger than {BODY_LIMIT} bytes; send smaller batches")
        );
        return Ok(Some(()));
    }
    Ok(None)
}

/// Checks a refusal of a body that is not UTF-8, if it is not.
fn check_not_utf8(status: StatusCode, answer: &Value, body: &[u8]) -> Result<bool, TestCaseError> {
    if let Err(e) = std::str::from_utf8(body) {
        prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
        prop_assert_eq!(
            answer["error"].as_str().unwrap(),
            format!("the body is not UTF-8 (at byte {})", e.valid_up_to())
        );
        return Ok(true);
    }
    Ok(false)
}

fn details(answer: &Value) -> Vec<String> {
    answer
        .get("details")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |d| {
            d.iter().map(|d| d.as_str().unwrap().to_string()).collect()
        })
}

/// What `GET /api/v1/sources` and `/topology` show of stored call statistics, without
/// what depends on the clock.
fn calls_seen(h: &Http) -> Value {
    let sources = h.get("/api/v1/sources");
    let sources: Vec<Value> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!([
                s["name"],
                s["batches"],
                s["records"],
                s["last_tick"],
                s["clusters"]
            ])
        })
        .collect();
    json!({
        "sources": sources,
        "topology": h.get("/api/v1/topology"),
        "unmapped": h.get("/api/v1/topology/unmapped"),
    })
}

fn records_of(seen: &Value, source: &str) -> u64 {
    seen["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == source)
        .map_or(0, |s| s[2].as_u64().unwrap())
}

#[test]
fn the_calls_endpoint_answers_any_body_precisely_and_stores_nothing_it_refuses() {
    let h = Http::start();
    let now = h.now;
    let line = move || call_line_in(now - 6 * 86_400, now - 600);
    let entry = move || {
        prop_oneof![
            1 => Just((String::new(), Expect::Blank)),
            5 => line().prop_map(|(r, o)| (o.render(), Expect::Valid(r))),
            3 => line().prop_flat_map(move |(r, o)| call_mutation_at(&r, now)
                .prop_map(move |m| (m.apply(&o), Expect::Refused(m.fault())))),
        ]
    };
    let strategy = (
        prop_oneof![4 => vec(entry(), 0..8), 1 => vec(entry(), 20..26)],
        wrapping("application/x-ndjson"),
    )
        .prop_map(|(lines, w)| {
            (
                Batch {
                    lines,
                    crlf: false,
                    final_newline: true,
                },
                w,
            )
        });
    fuzz(http_cases(), strategy, |(batch, w)| {
        let media = w.content_type("application/x-ndjson");
        let body = w.wrap(batch.text().into_bytes());
        let before = calls_seen(&h);
        let (status, answer) = h.post("/api/v1/ingest/calls", media, body.clone());
        let refused_early =
            check_refusal_before_parsing(status, &answer, &body, media, &NDJSON_TYPES)?.is_some()
                || check_not_utf8(status, &answer, &body)?;
        let refused = batch.refused();
        if !refused_early {
            if refused.is_empty() {
                prop_assert_eq!(status, StatusCode::OK, "{}", answer);
                let n = batch.valid().len() as u64;
                prop_assert_eq!(&answer["accepted"], &json!(n));
                let after = calls_seen(&h);
                prop_assert_eq!(
                    records_of(&after, "collector"),
                    records_of(&before, "collector") + n
                );
                return Ok(());
            }
            prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
            let first = &refused[..refused.len().min(MAX_REPORTED_ERRORS)];
            prop_assert_eq!(
                answer["error"].as_str().unwrap(),
                format!(
                    "{}{} of {} lines are invalid; nothing was stored",
                    first.len(),
                    if first.len() >= MAX_REPORTED_ERRORS {
                        " or more"
                    } else {
                        ""
                    },
                    batch.non_blank()
                )
            );
            check_line_errors(&details(&answer), first)?;
        }
        prop_assert!(status.is_client_error(), "{} {}", status, answer);
        prop_assert_eq!(calls_seen(&h), before, "a refused batch changed the data");
        Ok(())
    });
}

const NDJSON_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
];

#[test]
fn the_activity_endpoint_answers_any_body_precisely_and_stores_nothing_it_refuses() {
    let h = Http::start();
    let now = h.now;
    let line = move || activity_line_in(now - 6 * 86_400, now - 600);
    let strategy = (
        vec(
            prop_oneof![
                1 => Just((String::new(), Expect::Blank)),
                5 => line().prop_map(|(p, o)| (o.render(), Expect::Valid(p))),
                3 => (line(), activity_mutation_at(now))
                    .prop_map(|((_, o), m)| (m.apply(&o), Expect::Refused(m.fault()))),
            ],
            0..10,
        ),
        wrapping("application/x-ndjson"),
    )
        .prop_map(|(lines, w)| {
            (
                Batch {
                    lines,
                    crlf: true,
                    final_newline: false,
                },
                w,
            )
        });
    let range = format!("/api/v1/activity?from={}&to={}", now - 7 * 86_400, now);
    fuzz(http_cases(), strategy, |(batch, w)| {
        let media = w.content_type("application/x-ndjson");
        let body = w.wrap(batch.text().into_bytes());
        let before = h.get(&range);
        let (status, answer) = h.post("/api/v1/ingest/activity", media, body.clone());
        let refused_early =
            check_refusal_before_parsing(status, &answer, &body, media, &NDJSON_TYPES)?.is_some()
                || check_not_utf8(status, &answer, &body)?;
        let refused = batch.refused();
        if !refused_early {
            if refused.is_empty() {
                prop_assert_eq!(status, StatusCode::OK, "{}", answer);
                let points = batch.valid();
                prop_assert_eq!(&answer["accepted"], &json!(points.len()));
                // The latest value sent for a bucket wins.
                let latest: BTreeMap<i64, f64> = points.into_iter().collect();
                let after = h.get(&range);
                for (tick, value) in latest {
                    let stored = after["points"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p[0] == tick)
                        .map(|p| p[1].as_f64().unwrap());
                    prop_assert_eq!(stored, Some(value), "tick {}", tick);
                }
                return Ok(());
            }
            prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
            prop_assert_eq!(
                answer["error"].as_str().unwrap(),
                format!("{} lines are invalid; nothing was stored", refused.len())
            );
            check_line_errors(&details(&answer), &refused)?;
        }
        prop_assert!(status.is_client_error(), "{} {}", status, answer);
        prop_assert_eq!(h.get(&range), before, "a refused batch changed the data");
        Ok(())
    });
}

/// The clusters the changes endpoint knows after the first batch: `web` and `db`.
const KNOWN_HTTP: [(&str, &[u32]); 2] = [("web", &[0]), ("db", &[1])];

#[test]
fn the_changes_endpoint_answers_any_body_precisely_and_stores_nothing_it_refuses() {
    let h = Http::start();
    let now = h.now;
    let first = format!(
        r#"{{"ts": {}, "src": "web", "dst": "db", "requests": 1, "errors": 0, "latency_ms_sum": 1}}"#,
        now - 3600
    );
    let (status, answer) = h.post("/api/v1/ingest/calls", "application/x-ndjson", first.into());
    assert_eq!(status, StatusCode::OK, "{answer}");
    let strategy = (
        changes_body_with(now - 6 * 86_400, now - 600, &KNOWN_HTTP),
        prop_oneof![
            8 => Just("application/json"),
            1 => select(vec!["application/x-ndjson", "text/plain", "", "application/json; charset=utf-8", "APPLICATION/JSON"]),
        ],
        prop::bool::weighted(0.05),
    );
    let range = format!("/api/v1/changes?from={}&to={}", now - 7 * 86_400, now);
    fuzz(http_cases(), strategy, |(changes, media, too_large)| {
        let mut body = changes.bytes();
        if too_large {
            body.resize(BODY_LIMIT + 1, b' ');
        }
        let before = h.get(&range);
        let (status, answer) = h.post("/api/v1/changes", media, body.clone());
        if check_refusal_before_parsing(status, &answer, &body, media, &["application/json"])?
            .is_none()
        {
            let got = if status.is_success() {
                let ids: Vec<u64> = changes.valid().iter().map(|c| c.id).collect();
                prop_assert_eq!(&answer["ids"], &json!(ids));
                let after = h.get(&range);
                for id in ids {
                    prop_assert!(
                        after.as_array().unwrap().iter().any(|c| c["id"] == id),
                        "change {} is not listed",
                        id
                    );
                }
                Ok(changes.valid())
            } else {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
                Err((
                    answer["error"].as_str().unwrap().to_string(),
                    details(&answer),
                ))
            };
            check_changes(&changes, &body, got)?;
            if status.is_success() {
                return Ok(());
            }
        }
        prop_assert_eq!(h.get(&range), before, "a refused batch changed the data");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// What the targets found, kept as the inputs that showed it.

/// A value that is not valid JSON (beyond f64, a lone surrogate, a raw control
/// character) was `line 1: not valid JSON: ... at line 1 column 95`, naming no field.
#[test]
fn call_values_that_are_not_json_name_their_field() {
    let line = |fields: &str| {
        format!(r#"{{"ts": {NOW}, "src": "a", "dst": "b", "requests": 1, {fields}}}"#)
    };
    let cases = [
        (
            line(r#""errors": 0, "latency_ms_sum": 1e999"#),
            "line 1: field \"latency_ms_sum\": not valid JSON: number out of range at column 94",
        ),
        (
            line(r#""errors": "\ud800", "latency_ms_sum": 1"#),
            "line 1: field \"errors\": not valid JSON: unexpected end of hex escape at column 76",
        ),
        (
            line("\"errors\": 0, \"latency_ms_sum\": 1, \"method\": \"a\u{1}\""),
            "line 1: field \"method\": not valid JSON: control character (\\u0000-\\u001F) \
             found while parsing a string at column 105",
        ),
    ];
    for (input, expected) in cases {
        let errors = parse_calls(&input, &Limits::around(NOW)).unwrap_err();
        assert_eq!(errors[0].to_string(), expected, "{input}");
    }
}

/// A field given twice was `line 1: could not be read as call statistics`.
#[test]
fn a_call_field_given_twice_is_named() {
    let input = format!(
        r#"{{"ts": {NOW}, "src": "a", "dst": "b", "requests": 1, "errors": 0, "latency_ms_sum": 1, "src": "c"}}"#
    );
    let errors = parse_calls(&input, &Limits::around(NOW)).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "line 1: field \"src\": is given more than once"
    );
}

/// Activity errors came from serde as they were (`line 2: unknown field `x`, expected
/// `ts` or `value` at line 1 column 12`): no `field "x"`, and a second, wrong line
/// number.
#[test]
fn activity_errors_name_the_line_and_field_in_one_form() {
    let text = format!(
        "{{\"ts\": {NOW}, \"value\": 1, \"x\": 2}}\n{{\"ts\": {NOW}}}\n\n{{\"ts\": {NOW}, \"value\": 1e999}}\n\
         {{\"ts\": {NOW}, \"ts\": {NOW}, \"value\": 1}}\n[1]\n{{\"ts\": 1790000000.0, \"value\": 1}}"
    );
    let errors = parse_activity(&text, &Limits::around(NOW), WIDTH).unwrap_err();
    assert_eq!(
        errors,
        [
            "line 1: field \"x\": unknown field; the fields are ts, value",
            "line 2: field \"value\": is missing",
            "line 4: field \"value\": not valid JSON: number out of range at column 33",
            "line 5: field \"ts\": is given more than once",
            "line 6: expected a JSON object, got an array",
            "line 7: field \"ts\": 1790000000.0 is not whole Unix seconds",
        ]
    );
}

/// A change field of the wrong type was `change 0: invalid type: map, expected a
/// string`, a missing one `change 0: missing field `author``: no field named.
#[test]
fn change_fields_of_the_wrong_type_or_missing_are_named() {
    let registry = registry();
    let body = br#"[
        {"id": "AA-3699913", "ts": 0, "author": "a", "clusters": [{}], "description": "d"},
        {"id": 1, "ts": 0, "author": 5, "clusters": ["db"], "description": "d"},
        {"id": 1, "ts": 0, "clusters": ["db"], "description": "d"},
        {"id": 1, "ts": 0, "author": "a", "clusters": "db", "description": "d"},
        {"id": "  ", "ts": 0, "author": "a", "clusters": ["db"], "description": "d"},
        {"id": 1, "ts": 0, "author": "a", "clusters": ["db"], "description": "d", "link": 5}
    ]"#;
    let Err(AppError::BadRequest { message, details }) = parse_changes(body, &registry) else {
        panic!("accepted");
    };
    assert_eq!(message, "6 changes are invalid; nothing was stored");
    assert_eq!(
        details,
        [
            "change 0: field \"clusters[0]\": expected a string, got an object",
            "change 1: field \"author\": expected a string, got a number",
            "change 2: field \"author\": is missing",
            "change 3: field \"clusters\": expected an array of names, got a string",
            "change 4: field \"id\": must not be empty",
            "change 5: field \"link\": expected a string, got a number",
        ]
    );
}

/// Text of digits and dashes that is no integer was `"2026-11-21" is outside the
/// supported times (0 to 253402300799 Unix seconds)`.
#[test]
fn a_date_without_a_time_is_not_called_out_of_range() {
    for text in ["2026-11-21", "-", "1-2", "+-5"] {
        let e = parse_time(text).unwrap_err();
        assert!(
            e.starts_with(&format!("{text:?} is neither RFC 3339")),
            "{text}: {e}"
        );
    }
    assert!(
        parse_time("-99999999999999999999")
            .unwrap_err()
            .contains("outside the supported times")
    );
}

/// A whole number beyond i64 was `18446744073709551615 is not whole Unix seconds`.
#[test]
fn a_whole_time_beyond_i64_is_called_out_of_range() {
    assert_eq!(
        time_value(&json!(u64::MAX)).unwrap_err(),
        "18446744073709551615 is outside the supported times \
         (1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z)"
    );
    assert_eq!(
        time_value(&json!(1.5)).unwrap_err(),
        "1.5 is not whole Unix seconds"
    );
}

/// A pattern that is no regular expression alone, but compiles inside `^(?:...)$`,
/// was accepted; `a)|(?P<service>b` then matched any name ending in `b`.
#[test]
fn a_rule_that_is_no_regex_on_its_own_is_refused() {
    for pattern in [")(?P<service>", "a)|(?P<service>b"] {
        let file = json!({"version": 1, "rules": [{"pattern": pattern}]}).to_string();
        let e = Topology::from_json(file.as_bytes(), Some("t.json"))
            .map(|t| format!("accepted; {:?}", t.lookup("xb")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "invalid topology in t.json: rules[0]: pattern {pattern:?}: regex parse error"
            )),
            "{e}"
        );
    }
}
