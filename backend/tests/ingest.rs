//! `POST /api/v1/ingest/calls` over real HTTP into the real store.

mod support;

use support::TestApp;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn line(ts: i64, src: &str, dst: &str, extra: &str) -> String {
    format!(
        r#"{{"ts": {ts}, "src": "{src}", "dst": "{dst}", "requests": 10, "errors": 1, "latency_ms_sum": 100{extra}}}"#
    )
}

async fn body(res: reqwest::Response) -> serde_json::Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn writes_need_a_token_with_the_ingest_scope() {
    let app = TestApp::start().await;
    let batch = line(now() - 600, "web-1", "api-1", "");
    let res = app.ingest(None, batch.clone()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert!(
        body(res).await["error"]
            .as_str()
            .unwrap()
            .contains("needs credentials")
    );
    let res = app
        .ingest(Some("epi_not_a_real_token"), batch.clone())
        .await;
    assert_eq!(res.status(), 401);
    let res = app.ingest(Some(&app.read_token), batch.clone()).await;
    assert_eq!(res.status(), 403);
    assert!(
        body(res).await["error"]
            .as_str()
            .unwrap()
            .contains("lacks the ingest scope")
    );
    // None of those stored anything.
    assert_eq!(app.get("/api/v1/analysis").await.status(), 404);
    let res = app.ingest(Some(&app.ingest_token), batch).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.get("/api/v1/analysis").await.status(), 200);
}

#[tokio::test]
async fn an_accepted_batch_is_visible_to_analysis() {
    let app = TestApp::start().await;
    let t = now() - 900;
    let tick = t - t.rem_euclid(300);
    let batch = format!(
        "{}\n\n{}\n",
        line(t, "web-1", "api-1", ""),
        line(t, "web-2", "api-1", r#", "method": "get""#)
    );
    let res = app.ingest(Some(&app.ingest_token), batch).await;
    assert_eq!(res.status(), 200);
    let accepted = body(res).await;
    assert_eq!(accepted["accepted"], 2);
    assert_eq!(accepted["ticks"], serde_json::json!([tick]));
    let a = body(app.get("/api/v1/analysis").await).await;
    assert_eq!(a["latest_tick"], tick);
    assert_eq!(a["earliest_tick"], tick);
}

#[tokio::test]
async fn bad_batches_are_refused_whole_with_the_line_and_field() {
    let app = TestApp::start().await;
    let n = now();
    let ok = line(n - 600, "web-1", "api-1", "");
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not valid JSON"),
        (
            r#"{"ts": 1}"#.replace("1}", &format!("{}}}", n - 600)),
            r#"field "src": is missing"#,
        ),
        (
            line(n - 600, "a", "b", r#", "requests2": 1"#),
            r#"field "requests2": unknown field"#,
        ),
        (
            ok.replace(r#""requests": 10"#, r#""requests": "10""#),
            r#"field "requests": expected a non-negative integer, got the string "10""#,
        ),
        (
            ok.replace(r#""requests": 10"#, r#""requests": -10"#),
            r#"field "requests": expected a non-negative integer, got -10"#,
        ),
        (
            ok.replace(r#""requests": 10"#, r#""requests": 1.5"#),
            r#"field "requests": expected a non-negative integer, got 1.5"#,
        ),
        (
            ok.replace(r#""errors": 1"#, r#""errors": 11"#),
            r#"field "errors": 11 errors is more than the 10 requests"#,
        ),
        (
            ok.replace(r#""latency_ms_sum": 100"#, r#""latency_ms_sum": -1"#),
            r#"field "latency_ms_sum": must be a finite number >= 0"#,
        ),
        (
            ok.replace(r#""latency_ms_sum": 100"#, r#""latency_ms_sum": "NaN""#),
            r#"field "latency_ms_sum": expected a number"#,
        ),
        (
            ok.replace(r#""latency_ms_sum": 100"#, r#""latency_ms_sum": 1e999"#),
            "not valid JSON",
        ),
        (line(n + 86_400, "a", "b", ""), r#"field "ts": "#),
        (
            line(n - 100 * 86_400, "a", "b", ""),
            "older than the retention window",
        ),
        (
            line(n - 600, "", "b", ""),
            r#"field "src": must not be empty"#,
        ),
        (
            line(n - 600, "a", "b", r#", "interval_s": 7"#),
            r#"field "interval_s": 7 must be positive and divide"#,
        ),
        (
            ok.replace(r#""ts": "#, r#""ts": "yesterday", "old_ts": "#),
            r#"field "old_ts": unknown field"#,
        ),
        ("[1, 2]".into(), "expected a JSON object"),
    ];
    assert!(cases.len() >= 15);
    for (bad, expected) in &cases {
        // The bad line comes second, after a valid one: the whole batch must be refused.
        let res = app
            .ingest(
                Some(&app.ingest_token),
                format!("{}\n{bad}\n", line(n - 600, "fresh-a", "fresh-b", "")),
            )
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        let b = body(res).await;
        assert!(
            b["error"].as_str().unwrap().contains("nothing was stored"),
            "{b}"
        );
        let detail = b["details"][0].as_str().unwrap();
        assert!(
            detail.starts_with("line 2") && detail.contains(expected),
            "{bad}\n  got {detail}\n  expected {expected}"
        );
    }
    // Nothing from any refused batch reached the store.
    assert_eq!(app.get("/api/v1/analysis").await.status(), 404);
}

#[tokio::test]
async fn wrong_media_types_and_oversized_bodies_are_refused() {
    let app = TestApp::start_with(None, |c| c.ingest.max_body_bytes = 1_000).await;
    let res = app
        .client
        .post(format!("{}/api/v1/ingest/calls", app.base))
        .bearer_auth(&app.ingest_token)
        .header("content-type", "text/csv")
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert!(
        body(res).await["error"]
            .as_str()
            .unwrap()
            .contains("application/x-ndjson")
    );
    let big = line(now() - 600, "web-1", "api-1", "").repeat(20);
    let res = app.ingest(Some(&app.ingest_token), big).await;
    assert_eq!(res.status(), 413);
    assert!(
        body(res).await["error"]
            .as_str()
            .unwrap()
            .contains("larger than 1000 bytes")
    );
    let res = app
        .client
        .post(format!("{}/api/v1/ingest/calls", app.base))
        .bearer_auth(&app.ingest_token)
        .header("content-type", "application/x-ndjson")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        body(res).await["error"]
            .as_str()
            .unwrap()
            .contains("not UTF-8 (at byte 1)")
    );
}

#[tokio::test]
async fn metrics_count_batches_records_and_unmapped_servers() {
    let app = TestApp::start().await;
    let t = now() - 600;
    assert_eq!(
        app.ingest(
            Some(&app.ingest_token),
            format!("{}\n{}", line(t, "a", "b", ""), line(t, "a", "c", ""))
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.ingest(Some(&app.ingest_token), "{oops").await.status(),
        400
    );
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    for expected in [
        r#"epicenter_ingest_batches_total{result="accepted"} 1"#,
        r#"epicenter_ingest_batches_total{result="rejected"} 1"#,
        "epicenter_ingest_records_total 2",
        "epicenter_unmapped_servers 0",
        "epicenter_store_up 1",
        "# TYPE epicenter_store_size_bytes gauge",
        "# TYPE epicenter_detection_backlog_ticks gauge",
    ] {
        assert!(
            text.lines()
                .any(|l| l == expected || l.starts_with(expected)),
            "missing {expected:?} in\n{text}"
        );
    }
}
