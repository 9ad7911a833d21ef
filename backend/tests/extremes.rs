//! Every time and range parameter of the API, over real HTTP, with values from the whole
//! `i64` range and the edges of RFC 3339: each request is answered 2xx or a 4xx that
//! names the parameter, never a 5xx, and no range longer than its endpoint allows is
//! ever accepted (a wrapped `to - from` would let an anonymous request analyse or
//! bundle the whole store).

mod support;

use epicenter_backend::handlers::query::{
    MAX_SERIES_RANGE_S, MAX_SNAPSHOT_RANGE_S, MAX_STORAGE_RANGE_S,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::TestApp;

/// Times as a request may spell them: integers anywhere in `i64`, around the accepted
/// bounds (1970 to 9999) and around the data, and RFC 3339 at and past its edges.
fn time_text(near: i64) -> impl Strategy<Value = String> {
    let integers = prop_oneof![
        Just(i64::MIN),
        Just(i64::MIN + 1),
        Just(i64::MAX),
        Just(i64::MAX - 1),
        Just(-1i64),
        Just(0i64),
        Just(253_402_300_799i64),
        Just(253_402_300_800i64),
        any::<i64>(),
        (near - 3 * 86_400)..(near + 3 * 86_400),
        (near - 20 * 86_400)..(near + 86_400),
    ]
    .prop_map(|v| v.to_string());
    let texts = prop_oneof![
        Just("9999-12-31T23:59:59Z".to_string()),
        Just("0000-01-01T00:00:00Z".to_string()),
        Just("1969-12-31T23:59:59Z".to_string()),
        Just("1970-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59-23:59".to_string()),
        Just("0000-01-01T00:00:00+23:59".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("9223372036854775808".to_string()),
        Just("1e18".to_string()),
    ];
    prop_oneof![4 => integers, 1 => texts]
}

/// Each endpoint with time parameters: a path with `{a}` and `{b}` for two times, and
/// the longest range it takes in seconds (`None`: a single tick).
const GETS: &[(&str, Option<i64>)] = &[
    ("/api/v1/analysis?tick={a}", None),
    ("/api/v1/graph/full?tick={a}", None),
    ("/api/v1/snapshots/{a}", None),
    ("/api/v1/edges/servers?src=web&dst=db&tick={a}", None),
    ("/api/v1/edges/servers?src=web&dst=db&limit={a}", None),
    ("/api/v1/marks?active_at={a}", None),
    (
        "/api/v1/edges/series?src=web&dst=db&from={a}&to={b}",
        Some(MAX_SERIES_RANGE_S),
    ),
    ("/api/v1/activity?from={a}&to={b}", Some(MAX_SERIES_RANGE_S)),
    (
        "/api/v1/snapshots?from={a}&to={b}",
        Some(MAX_SNAPSHOT_RANGE_S),
    ),
    (
        "/api/v1/snapshots/bundle?from={a}&to={b}",
        Some(MAX_SNAPSHOT_RANGE_S),
    ),
    (
        "/api/v1/snapshots/storage?from={a}&to={b}",
        Some(MAX_STORAGE_RANGE_S),
    ),
    (
        "/api/v1/services/web/episodes?from={a}&to={b}",
        Some(MAX_SNAPSHOT_RANGE_S),
    ),
    (
        "/api/v1/changes?from={a}&to={b}",
        Some(MAX_SNAPSHOT_RANGE_S),
    ),
    ("/api/v1/edges/series?src=web&dst=db&to={b}", None),
    ("/api/v1/snapshots/bundle?to={b}", None),
];

fn query_value(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[test]
fn time_parameters_at_any_value_get_an_answer_and_never_a_range_too_long() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (app, near) = rt.block_on(async {
        let app = TestApp::start().await;
        let now = epicenter_backend::analysis::unix_now();
        let last = now - now.rem_euclid(300) - 600;
        let body: String = (0..36)
            .map(|i| {
                format!(
                    "{{\"ts\": {}, \"src\": \"web\", \"dst\": \"db\", \"requests\": 100, \"errors\": 1, \"latency_ms_sum\": 2000}}\n",
                    last - i * 300
                )
            })
            .collect();
        let res = app.ingest(Some(&app.ingest_token), body).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        (app, last)
    });
    let cases = std::env::var("EPICENTER_EXTREME_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&(time_text(near), time_text(near)), |(a, b)| {
            rt.block_on(check_gets(&app, &a, &b))?;
            rt.block_on(check_writes(&app, &a, &b, near))
        })
        .unwrap();
    // The server is still there and still answers from its data.
    rt.block_on(async {
        let analysis = app.get_json("/api/v1/analysis").await;
        assert_eq!(analysis["tick"], near, "{analysis}");
    });
}

async fn check_gets(app: &TestApp, a: &str, b: &str) -> Result<(), TestCaseError> {
    let ta = epicenter_backend::ingest::timefmt::parse_time(a).ok();
    let tb = epicenter_backend::ingest::timefmt::parse_time(b).ok();
    for (template, max_s) in GETS {
        let path = template
            .replace("{a}", &query_value(a))
            .replace("{b}", &query_value(b));
        let res = app.get(&path).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        prop_assert!(
            matches!(status, 200 | 400 | 404),
            "GET {path}: {status} {text}"
        );
        if status != 200 {
            let body: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("GET {path}: {e}: {text}")))?;
            prop_assert!(
                !body["error"].as_str().unwrap_or("").is_empty(),
                "GET {path}: {text}"
            );
        }
        let uses = |v: &str| template.contains(v);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .map(|b| b["error"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        if status == 400 {
            // Refused for a reason it names: a time it cannot take, or the range.
            let bad_a = uses("{a}") && ta.is_none();
            let bad_b = uses("{b}") && tb.is_none();
            let named = [
                "\"tick\"",
                "\"from\"",
                "\"to\"",
                "\"active_at\"",
                "tick ",
                "range",
                "stored data",
                "limit",
            ]
            .iter()
            .any(|w| message.contains(w));
            prop_assert!(bad_a || bad_b || named, "GET {path}: {text}");
        }
        if status == 200
            && let (Some(max), Some(from), Some(to)) = (max_s, ta, tb)
            && uses("{a}")
            && uses("{b}")
        {
            // Accepted: then it really is a range within the limit (a bucket either way
            // for the flooring).
            prop_assert!(from <= to + 300, "GET {path} accepted from after to");
            prop_assert!(
                to.checked_sub(from).is_some_and(|len| len <= max + 300),
                "GET {path} accepted a range of {from}..{to}, over {max} s"
            );
        }
    }
    Ok(())
}

async fn check_writes(app: &TestApp, a: &str, b: &str, near: i64) -> Result<(), TestCaseError> {
    let json_time = |t: &str| match t.parse::<i64>() {
        Ok(v) => serde_json::json!(v),
        Err(_) => serde_json::json!(t),
    };
    let bodies = [
        (
            "/api/v1/analysis/run",
            serde_json::json!({"from": json_time(a), "to": json_time(b)}),
        ),
        (
            "/api/v1/marks",
            serde_json::json!({"kind": "known_anomaly", "tick": near, "edge": {"src": "web", "dst": "db"},
                "description": "extremes", "until": json_time(a)}),
        ),
        (
            "/api/v1/marks",
            serde_json::json!({"kind": "new_trend", "tick": json_time(a), "edge": {"src": "web", "dst": "db"},
                "description": "extremes", "from": json_time(b)}),
        ),
    ];
    for (path, body) in bodies {
        let res = app
            .post(
                path,
                Some(&app.write_token),
                "application/json",
                body.to_string(),
            )
            .await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        prop_assert!(
            matches!(status, 200 | 201 | 400 | 404 | 409),
            "POST {path} {body}: {status} {text}"
        );
    }
    Ok(())
}
