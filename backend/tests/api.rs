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
