//! The maintenance switch per data centre and the analysis thresholds, through the real
//! binary: set in the configuration, read through the API, switched with the `write`
//! scope only, audited, durable across a SIGKILL, and refused when malformed.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{BIN, spawn_on_store};

/// The environment of every command here: one-minute buckets, a two-tick streak, and
/// maintenance on for dc1 from the configuration.
const ENV: [(&str, &str); 4] = [
    ("EPICENTER__STORE__BUCKET", "1m"),
    ("EPICENTER__ANALYSIS__DETECT__PERSISTENCE__TICKS", "2"),
    ("EPICENTER__ANALYSIS__DETECT__MAINTENANCE__ENABLED", "true"),
    ("EPICENTER__ANALYSIS__DETECT__MAINTENANCE__DCS", "[\"dc1\"]"),
];

fn token(data: &std::path::Path, name: &str, scope: &str) -> String {
    support::create_token_with(data, name, scope, &ENV)
}

async fn put(client: &reqwest::Client, url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = client
        .put(url)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn state(view: &Value, dc: &str) -> Option<bool> {
    view["dcs"]
        .as_array()?
        .iter()
        .find(|d| d["dc"] == dc)
        .and_then(|d| d["on"].as_bool())
}

#[tokio::test]
async fn the_switch_is_configured_read_switched_with_write_only_audited_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ops = token(&data, "ops", "write");
    let feed = token(&data, "feed", "ingest");
    let (mut server, base) = spawn_on_store(&data, &ENV);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // The thresholds in use, with the configured ones.
    let settings = get("/api/v1/analysis/config").await;
    assert_eq!(settings["bucket_width_s"], 60);
    let detect = &settings["analysis"]["detect"];
    assert_eq!(detect["persistence"]["ticks"], 2);
    assert_eq!(detect["alpha"], 0.05);
    assert_eq!(detect["baseline"]["trailing"]["window_s"], 7200);
    assert_eq!(settings["analysis"]["rank"]["caller_side_share"], 0.8);
    assert_eq!(
        detect["maintenance"],
        json!({"enabled": true, "services": [], "dcs": ["dc1"]})
    );
    let view = get("/api/v1/maintenance").await;
    assert_eq!(state(&view, "dc1"), Some(true));
    assert!(view["dcs"][0]["switch"].is_null(), "from the configuration");

    // Writing needs the write scope, a JSON body, a reason and a sane name.
    let url = |dc: &str| format!("{base}/api/v1/maintenance/{dc}");
    let on = r#"{"on": true, "reason": "rolling update of the <web> tier"}"#;
    assert_eq!(put(&client, &url("dc2"), None, on).await.0, 401);
    assert_eq!(put(&client, &url("dc2"), Some(&feed), on).await.0, 403);
    let (status, body) = put(
        &client,
        &url("dc2"),
        Some(&ops),
        r#"{"on": true, "reason": "  "}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("reason"), "{body}");
    let (status, body) = put(&client, &url("dc%3Cb%3E"), Some(&ops), on).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("data centre"),
        "{body}"
    );
    let (status, _) = put(&client, &url("dc2"), Some(&ops), r#"{"on": "yes"}"#).await;
    assert_eq!(status, 400);
    assert!(
        get("/api/v1/maintenance").await["log"]
            .as_array()
            .unwrap()
            .is_empty(),
        "refused switches leave nothing"
    );

    // dc2 on, dc1 off: the latest switch wins over the file.
    let (status, view) = put(&client, &url("dc2"), Some(&ops), on).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(state(&view, "dc2"), Some(true));
    let (status, view) = put(
        &client,
        &url("dc1"),
        Some(&ops),
        r#"{"on": false, "reason": "dc1 is done"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state(&view, "dc1"), Some(false));
    let log = view["log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["dc"], "dc1", "newest first");
    assert_eq!(log[1]["by"], "ops");
    assert_eq!(
        log[1]["reason"], "rolling update of the <web> tier",
        "stored as given"
    );
    assert_eq!(
        get("/api/v1/analysis/config").await["analysis"]["detect"]["maintenance"],
        json!({"enabled": true, "services": [], "dcs": ["dc2"]})
    );

    // Acknowledged switches survive a crash.
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, base) = spawn_on_store(&data, &ENV);
    let view: Value = client
        .get(format!("{base}/api/v1/maintenance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (state(&view, "dc1"), state(&view, "dc2")),
        (Some(false), Some(true))
    );
    assert_eq!(view["log"].as_array().unwrap().len(), 2);
    assert_eq!(view["dcs"][1]["switch"]["seq"], 1);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn bad_thresholds_and_widths_are_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = start(&[("EPICENTER__STORE__BUCKET", "7s")]);
    assert!(err.contains("store.bucket"), "{err}");
    let err = start(&[("EPICENTER__ANALYSIS__DETECT__ALPHA", "2")]);
    assert!(
        err.contains("analysis.detect") && err.contains("alpha"),
        "{err}"
    );
    let err = start(&[("EPICENTER__ANALYSIS__RANK__NO_SUCH_KEY", "1")]);
    assert!(err.contains("no_such_key"), "{err}");
    // A store keeps the width it was made with.
    token(&data, "ops", "write");
    let err = start(&[("EPICENTER__STORE__BUCKET", "5m")]);
    assert!(
        err.contains("60 s buckets") && err.contains("300 s"),
        "{err}"
    );
}
