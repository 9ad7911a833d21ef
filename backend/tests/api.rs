//! The HTTP API, driven over real HTTP against a running app with a real store.

mod support;

use support::TestApp;

#[tokio::test]
async fn health_reports_version_uptime_and_an_ok_store() {
    let app = TestApp::start().await;
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["store"]["status"], "ok");
    assert_eq!(body["store"]["kind"], "redb");
    assert!(body["uptime_s"].is_u64());
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s_not_the_page() {
    let app = TestApp::start().await;
    for path in ["/api/v1/nope", "/api/v2/health", "/api"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("no API endpoint"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_front_end_is_served_at_the_root_and_for_client_routes() {
    let app = TestApp::start().await;
    for path in ["/", "/service/messaging"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("<title>test shell</title>"),
            "{path}"
        );
    }
    let res = app.get("/app.css").await;
    assert_eq!(res.status(), 200);
}

/// 2026-11-18 11:10 UTC; the demo's messaging incident starts 75 minutes earlier.
const DEMO_END: i64 = 1_795_000_200;

#[tokio::test]
async fn analysis_of_the_demo_ranks_the_messaging_storage_first() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let tick = DEMO_END - 55 * 60;
    let res = app.get(&format!("/api/v1/analysis?tick={tick}")).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tick"], tick);
    assert_eq!(body["latest_tick"], DEMO_END - 300);
    let first = &body["snapshot"]["ranking"]["candidates"][0];
    assert_eq!(first["name"], "messaging-conversation-cdb", "{first}");
    assert!(first["explanation"].as_str().unwrap().contains("ms"));
    let names: Vec<&str> = body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"messaging-proxy"), "{names:?}");
    assert!(!body["snapshot"]["layout"].is_null());

    // The latest tick when none is given; RFC 3339 works too; the answer is the same.
    let latest: serde_json::Value = app.get("/api/v1/analysis").await.json().await.unwrap();
    assert_eq!(latest["tick"], DEMO_END - 300);
    let rfc: serde_json::Value = app
        .get("/api/v1/analysis?tick=2026-11-18T10:15:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rfc["tick"], tick);
    assert_eq!(rfc["snapshot"], body["snapshot"]);
}

#[tokio::test]
async fn analysis_refuses_bad_ticks_and_says_when_there_is_no_data() {
    let app = TestApp::start().await;
    let res = app.get("/api/v1/analysis").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no data yet"),
        "{body}"
    );
    let res = app.get("/api/v1/analysis?tick=soon").await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("query parameter \"tick\""),
        "{body}"
    );
}
