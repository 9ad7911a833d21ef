//! The other feeds and their controls over real HTTP: config changes, site activity,
//! source health, topology reload and on-demand analysis.

mod support;

use support::TestApp;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn line(ts: i64, src: &str, dst: &str, requests: u64) -> String {
    format!(
        r#"{{"ts": {ts}, "src": "{src}", "dst": "{dst}", "requests": {requests}, "errors": 0, "latency_ms_sum": {}}}"#,
        requests * 20
    )
}

async fn json(res: reqwest::Response) -> serde_json::Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn config_changes_are_validated_stored_replaced_and_listed() {
    let app = TestApp::start().await;
    let t = now() - 3600;
    let res = app
        .ingest(Some(&app.ingest_token), line(t, "web", "db", 10))
        .await;
    assert_eq!(res.status(), 200);
    let post = |token: Option<String>, ct: &'static str, body: String| {
        let app = &app;
        async move {
            app.post("/api/v1/changes", token.as_deref(), ct, body)
                .await
        }
    };
    let change = |id: &str, cluster: &str, what: &str| {
        format!(
            r#"{{"id": {id}, "ts": {t}, "author": "ops", "clusters": ["{cluster}"], "description": "{what}"}}"#
        )
    };
    // Credentials and media type first.
    let body = change("1", "db", "pool 10 -> 5");
    assert_eq!(
        post(None, "application/json", body.clone()).await.status(),
        401
    );
    assert_eq!(
        post(
            Some(app.read_token.clone()),
            "application/json",
            body.clone()
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        post(Some(app.ingest_token.clone()), "text/plain", body.clone())
            .await
            .status(),
        415
    );
    // A batch with one bad change stores none of them, and says which and why.
    let batch = format!(
        "[{}, {}, {}]",
        change("1", "db", "pool 10 -> 5"),
        change("2", "nowhere", "x"),
        r#"{"id": 3, "ts": "yesterday", "author": "a", "clusters": ["db"], "description": "d"}"#
    );
    let res = post(Some(app.ingest_token.clone()), "application/json", batch).await;
    assert_eq!(res.status(), 400);
    let err = json(res).await;
    let details: Vec<&str> = err["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{err}");
    assert!(
        details[0].starts_with("change 1: field \"clusters[0]\""),
        "{details:?}"
    );
    assert!(
        details[1].starts_with("change 2: field \"ts\""),
        "{details:?}"
    );
    let listed = app
        .get_json(&format!("/api/v1/changes?from={}&to={}", t - 60, t + 60))
        .await;
    assert_eq!(listed, serde_json::json!([]));
    // Valid ones are stored; the same id again replaces; string ids are kept readable.
    let res = post(
        Some(app.ingest_token.clone()),
        "application/json",
        change("1", "db", "pool 10 -> 5"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post(
        Some(app.ingest_token.clone()),
        "application/json",
        format!(
            "[{}, {}]",
            change("1", "db", "pool 10 -> 4"),
            change("\"CHG-77\"", "web", "new build")
        ),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let listed = app
        .get_json(&format!("/api/v1/changes?from={}&to={}", t - 60, t + 60))
        .await;
    let descriptions: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions.len(), 2, "{listed}");
    assert!(descriptions.contains(&"pool 10 -> 4"));
    assert!(descriptions.contains(&"CHG-77: new build"));
    let only_db = app
        .get_json(&format!(
            "/api/v1/changes?from={}&to={}&cluster=db",
            t - 60,
            t + 60
        ))
        .await;
    assert_eq!(only_db.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn activity_lines_are_checked_and_stored_per_bucket() {
    let app = TestApp::start().await;
    let t = now() - 3600;
    let t = t - t.rem_euclid(300);
    app.ingest(Some(&app.ingest_token), line(t, "web", "db", 10))
        .await;
    let post = |body: String| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/ingest/activity",
                Some(&app.ingest_token),
                "application/x-ndjson",
                body,
            )
            .await
        }
    };
    let res = post(format!(
        "{{\"ts\": {t}, \"value\": 1200}}\n{{\"ts\": {t}, \"value\": -1}}\n{{\"ts\": \"later\", \"value\": 1}}\n"
    ))
    .await;
    assert_eq!(res.status(), 400);
    let err = json(res).await;
    assert_eq!(
        err["details"],
        serde_json::json!([
            "line 2: field \"value\": -1 is negative or not finite",
            format!(
                "line 3: field \"ts\": {}",
                epicenter_backend::ingest::timefmt::parse_time("later").unwrap_err()
            )
        ]),
        "{err}"
    );
    let res = post(format!(
        "{{\"ts\": {t}, \"value\": 1200}}\n{{\"ts\": {}, \"value\": 1300.5}}\n",
        t + 300
    ))
    .await;
    assert_eq!(res.status(), 200);
    let a = app
        .get_json(&format!("/api/v1/activity?from={}&to={}", t, t + 300))
        .await;
    assert_eq!(
        a["points"],
        serde_json::json!([[t, 1200.0], [t + 300, 1300.5]])
    );
}

#[tokio::test]
async fn a_silent_source_is_stale_and_its_edges_are_missing_not_anomalous() {
    let app = TestApp::start_with(None, |c| c.sources.stale_after_s = 1).await;
    let t0 = now() - 2 * 3600;
    let t0 = t0 - t0.rem_euclid(300);
    // The "collector" source reports web's calls every tick; a second source, under
    // the write-capable operator token, cannot ingest, so the test makes one more.
    let mut batch = String::new();
    for i in 0..12 {
        batch += &line(t0 + i * 300, "web", "db", 100);
        batch.push('\n');
        batch += &line(t0 + i * 300, "api", "db", 50);
        batch.push('\n');
    }
    let res = app.ingest(Some(&app.ingest_token), batch).await;
    assert_eq!(res.status(), 200);
    let sources = app.get_json("/api/v1/sources").await;
    assert_eq!(sources["sources"][0]["name"], "collector");
    assert_eq!(sources["sources"][0]["last_tick"], t0 + 11 * 300);
    assert_eq!(sources["sources"][0]["clusters"], 2);
    // After a second of silence it is stale, in the API and in /metrics.
    let mut stale = serde_json::Value::Null;
    for _ in 0..50 {
        stale = app.get_json("/api/v1/sources").await;
        if stale["stale"] == serde_json::json!(["collector"]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stale["stale"], serde_json::json!(["collector"]), "{stale}");
    assert_eq!(stale["sources"][0]["stale"], true);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("epicenter_sources_stale 1"), "{metrics}");
    assert!(
        metrics.contains("epicenter_source_silence_seconds{source=\"collector\"}"),
        "{metrics}"
    );
    // A second source delivers a later tick; the silent collector is behind for it,
    // so the edges it reports are treated as missing rather than as a traffic drop.
    let later = t0 + 12 * 300;
    let res = app
        .ingest(
            Some(&app.second_ingest_token),
            line(later, "cache", "db", 30),
        )
        .await;
    assert_eq!(res.status(), 200);
    let a = app
        .get_json(&format!("/api/v1/analysis?tick={later}"))
        .await;
    assert_eq!(a["sources_behind"], serde_json::json!(["collector"]), "{a}");
    assert!(
        a["summary"]["missing"].as_u64().unwrap() >= 2,
        "{}",
        a["summary"]
    );
    let observed: Vec<_> = a["snapshot"]["observations"].as_array().unwrap().to_vec();
    assert!(
        observed.iter().all(|o| o["anomalies"].is_null()),
        "{observed:?}"
    );
    // The tick before, which the collector did deliver, is analysed as usual.
    let a = app
        .get_json(&format!("/api/v1/analysis?tick={}", later - 300))
        .await;
    assert_eq!(a["sources_behind"], serde_json::json!([]));
}

#[tokio::test]
async fn the_topology_reloads_without_a_restart_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topology.json");
    let rules = r#"{"version": 1, "rules": [{"pattern": "(?P<service>[a-z]+)-\\d+"}]"#;
    std::fs::write(&file, format!("{rules}}}")).unwrap();
    let path = file.clone();
    let app = TestApp::start_with(None, move |c| c.ingest.topology = Some(path)).await;
    let t = now() - 600;
    let ingest = |body: String| {
        let app = &app;
        async move { json(app.ingest(Some(&app.ingest_token), body).await).await }
    };
    let r = ingest(format!(
        "{}\n{}",
        line(t, "shop-1", "db-2", 5),
        line(t, "legacy_box", "db-1", 5)
    ))
    .await;
    assert_eq!(
        (r["accepted"].as_u64(), r["unmapped_records"].as_u64()),
        (Some(1), Some(1))
    );
    let unmapped = app.get_json("/api/v1/topology/unmapped").await;
    assert_eq!(
        unmapped,
        serde_json::json!([{"server": "legacy_box", "records": 1}])
    );
    let topo = app.get_json("/api/v1/topology").await;
    assert_eq!(topo["source"], file.display().to_string());

    // The operator maps the legacy box and reloads; only a write token may.
    std::fs::write(
        &file,
        format!(r#"{rules}, "servers": [{{"server": "legacy_box", "service": "legacy"}}]}}"#),
    )
    .unwrap();
    let reload = |token: Option<String>| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/topology/reload",
                token.as_deref(),
                "application/json",
                "{}",
            )
            .await
        }
    };
    assert_eq!(reload(None).await.status(), 401);
    assert_eq!(reload(Some(app.ingest_token.clone())).await.status(), 403);
    let res = reload(Some(app.write_token.clone())).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let r = ingest(line(t, "legacy_box", "db-1", 5)).await;
    assert_eq!(
        (r["accepted"].as_u64(), r["unmapped_records"].as_u64()),
        (Some(1), Some(0))
    );
    let topo = app.get_json("/api/v1/topology").await;
    assert!(
        topo["services"]
            .as_array()
            .unwrap()
            .contains(&"legacy".into()),
        "{topo}"
    );

    // A broken file is refused with its problem; the running topology stays.
    std::fs::write(
        &file,
        r#"{"version": 1, "rules": [{"pattern": "(unclosed"}]}"#,
    )
    .unwrap();
    let res = reload(Some(app.write_token.clone())).await;
    assert_eq!(res.status(), 400);
    let err = json(res).await;
    assert!(
        err["error"].as_str().unwrap().contains("not reloaded"),
        "{err}"
    );
    let r = ingest(line(t, "legacy_box", "shop-3", 5)).await;
    assert_eq!(r["unmapped_records"].as_u64(), Some(0), "{r}");
}

#[tokio::test]
async fn browsers_hear_of_each_analysed_tick_over_server_sent_events() {
    let app = TestApp::start().await;
    let t0 = now() - 3600;
    let t0 = t0 - t0.rem_euclid(300);
    let batch: String = (0..3)
        .map(|i| line(t0 + i * 300, "web", "db", 100) + "\n")
        .collect();
    assert_eq!(
        app.ingest(Some(&app.ingest_token), batch).await.status(),
        200
    );
    let mut stream = app.get("/api/v1/events").await;
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // Analysing a tick (here on demand) sends an event to every listener.
    let tick = t0 + 600;
    app.get_json(&format!("/api/v1/analysis?tick={tick}")).await;
    let mut seen = String::new();
    let deadline = std::time::Duration::from_secs(10);
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(deadline, stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains("event: tick\n"), "{seen}");
    assert!(seen.contains(&format!("id: {tick}\n")), "{seen}");
    let data = seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let event: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["tick"], tick);
    assert!(event["analysed_at"].as_i64().unwrap() >= tick);
}
