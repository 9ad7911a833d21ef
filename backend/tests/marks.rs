//! Marks over real HTTP on the demo: a known anomaly hides its edge until it expires or
//! gets worse, changes are versioned and a stale version is refused, incidents close,
//! and the description is kept as the author wrote it.

mod support;

use support::{Session, TestApp};

/// 2026-11-18 11:10 UTC; the messaging incident starts 75 minutes earlier.
const DEMO_END: i64 = 1_795_000_200;
const ONSET: i64 = DEMO_END - 75 * 60;
const PROXY: &str = "messaging-proxy";
const CDB: &str = "messaging-conversation-cdb";

async fn send(
    app: &TestApp,
    s: &Session,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

fn edge_severity(a: &serde_json::Value, names: &(u64, u64)) -> Option<f64> {
    a["snapshot"]["pruned"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["edge"]["src"] == names.0 && e["edge"]["dst"] == names.1)
        .and_then(|e| e["severity"].as_f64())
}

/// How much an edge's severity rose: by, edge, from tick and severity, to tick and severity.
type Rise = (f64, (u64, u64), i64, f64, i64, f64);

#[tokio::test]
async fn a_known_anomaly_hides_its_edge_until_it_gets_worse_and_changes_are_versioned() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let alice = app.sign_in("alice").await;
    // The edge whose severity rose most during the incident: mark it when it was lower.
    let mut analyses = Vec::new();
    for i in 0..10 {
        let t = ONSET + i * 300;
        analyses.push((t, app.get_json(&format!("/api/v1/analysis?tick={t}")).await));
    }
    let mut best: Option<Rise> = None;
    for (i, (t1, a1)) in analyses.iter().enumerate() {
        for e in a1["snapshot"]["pruned"]["edges"].as_array().unwrap() {
            if e["role"] != "anomalous" {
                continue;
            }
            let key = (
                e["edge"]["src"].as_u64().unwrap(),
                e["edge"]["dst"].as_u64().unwrap(),
            );
            let s1 = e["severity"].as_f64().unwrap();
            for (t2, a2) in &analyses[i + 1..] {
                if let Some(s2) = edge_severity(a2, &key)
                    && best.as_ref().is_none_or(|b| s2 - s1 > b.0)
                {
                    best = Some((s2 - s1, key, *t1, s1, *t2, s2));
                }
            }
        }
    }
    let (rise, key, t1, s1, t2, s2) = best.unwrap();
    assert!(
        rise > 2.0,
        "no edge got clearly worse during the incident: {rise}"
    );
    let name = |id: u64| {
        analyses[0].1["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (src, dst) = (name(key.0), name(key.1));
    let html = "<img src=x onerror=alert(1)> compaction tuning, expected";
    let (status, mark) = send(
        &app,
        &alice,
        reqwest::Method::POST,
        "/api/v1/marks",
        serde_json::json!({
            "kind": "known_anomaly", "tick": t1, "edge": {"src": src, "dst": dst},
            "description": html, "until": t1 + 4 * 3600,
        }),
    )
    .await;
    assert_eq!(status, 201, "{mark}");
    assert_eq!(mark["author"], "alice");
    assert_eq!(mark["author_name"], "Alice Martin");
    assert_eq!(
        mark["description"], html,
        "kept as written; the screen shows it as text"
    );
    assert_eq!(mark["version"], 1);
    assert_eq!(mark["edges"], serde_json::json!([[src, dst]]));
    assert_eq!(mark["history"][0]["what"], "created");
    assert!((mark["severity"].as_f64().unwrap() - s1).abs() < 1e-9);
    let id = mark["id"].as_u64().unwrap();

    // At the tick it was made, the edge is hidden, not shown.
    let a = app.get_json(&format!("/api/v1/analysis?tick={t1}")).await;
    let e = key;
    assert_eq!(edge_severity(&a, &e), None, "hidden at {t1}");
    let hidden = a["snapshot"]["pruned"]["hidden"].as_array().unwrap();
    assert!(
        hidden.iter().any(|h| h["edge"]["src"] == e.0
            && h["edge"]["dst"] == e.1
            && h["kind"] == "known_anomaly"
            && h["mark_id"] == id),
        "{hidden:?}"
    );
    // Worse than when marked: it comes back, flagged, and counted in the bubble.
    let a = app.get_json(&format!("/api/v1/analysis?tick={t2}")).await;
    let shown = a["snapshot"]["pruned"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["edge"]["src"] == e.0 && x["edge"]["dst"] == e.1)
        .unwrap_or_else(|| panic!("the edge got worse ({s1} -> {s2}) and must be shown at {t2}"))
        .clone();
    assert_eq!(shown["worsened"]["kind"], "known_anomaly");
    assert_eq!(shown["worsened"]["mark_id"], id);
    assert!(
        a["snapshot"]["pruned"]["worsened"]["known_anomalies"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Listed with the edge, history and all.
    let list = app
        .get_json(&format!("/api/v1/marks?edge={src}>{dst}"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);

    // Versioned changes: the second writer of version 1 is refused and told why.
    let (status, changed) = send(
        &app,
        &alice,
        reqwest::Method::PATCH,
        &format!("/api/v1/marks/{id}"),
        serde_json::json!({"version": 1, "description": "compaction tuning, expected for 4 h"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["version"], 2);
    assert!(
        changed["history"][1]["what"]
            .as_str()
            .unwrap()
            .starts_with("description: ")
    );
    let (status, refused) = send(
        &app,
        &alice,
        reqwest::Method::PATCH,
        &format!("/api/v1/marks/{id}"),
        serde_json::json!({"version": 1, "close": true}),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let msg = refused["error"].as_str().unwrap();
    assert!(
        msg.contains("changed by alice") && msg.contains("now version 2"),
        "{msg}"
    );
    let list = app.get_json("/api/v1/marks").await;
    assert_eq!(list[0]["version"], 2, "the refused change changed nothing");

    // Bad marks say what is wrong.
    for (body, needle) in [
        (
            serde_json::json!({"kind": "known_anomaly", "tick": t1, "edge": {"src": PROXY, "dst": CDB}, "description": "x"}),
            "needs an expiry",
        ),
        (
            serde_json::json!({"kind": "incident", "tick": t1, "edge": {"src": PROXY, "dst": "nope"}, "description": "x"}),
            "no cluster named \"nope\"",
        ),
        (
            serde_json::json!({"kind": "incident", "tick": t1, "graph": true, "description": "   "}),
            "say why",
        ),
        (
            serde_json::json!({"kind": "incident", "tick": t1, "description": "x"}),
            "either",
        ),
    ] {
        let (status, err) = send(&app, &alice, reqwest::Method::POST, "/api/v1/marks", body).await;
        assert_eq!(status, 400, "{err}");
        assert!(err["error"].as_str().unwrap().contains(needle), "{err}");
    }
    assert_eq!(
        app.get_json("/api/v1/marks")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_incident_on_the_whole_graph_hides_it_while_open_and_closing_ends_it() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let alice = app.sign_in("alice").await;
    let latest = app.get_json("/api/v1/analysis").await;
    let tick = latest["tick"].as_i64().unwrap();
    let anomalous = |a: &serde_json::Value| {
        a["snapshot"]["pruned"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["role"] == "anomalous")
            .count()
    };
    let before = anomalous(&latest);
    assert!(before > 0);
    let (status, mark) = send(&app, &alice, reqwest::Method::POST, "/api/v1/marks", serde_json::json!({
        "kind": "incident", "tick": tick, "graph": true, "description": "messaging history slow",
    })).await;
    assert_eq!(status, 201, "{mark}");
    assert!(mark["graph"].as_bool().unwrap());
    assert_eq!(mark["edges"].as_array().unwrap().len(), before);
    let a = app.get_json("/api/v1/analysis").await;
    assert_eq!(anomalous(&a), 0, "open incident: nothing new to show");
    assert_eq!(
        a["snapshot"]["pruned"]["hidden"].as_array().unwrap().len(),
        before
    );
    let open: Vec<_> = a["snapshot"]["marks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "incident")
        .collect();
    assert_eq!(open.len(), 1);
    // Closing ends it: the anomalies show again.
    let id = mark["id"].as_u64().unwrap();
    let (status, closed) = send(
        &app,
        &alice,
        reqwest::Method::PATCH,
        &format!("/api/v1/marks/{id}"),
        serde_json::json!({"version": 1, "close": true}),
    )
    .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(
        closed["until"], tick,
        "ends at the newest tick: not active there"
    );
    assert_eq!(closed["history"][1]["what"], "closed");
    let a = app.get_json("/api/v1/analysis").await;
    assert_eq!(anomalous(&a), before);
    // Without the CSRF token the browser's change is refused.
    let res = app
        .client
        .patch(format!("{}/api/v1/marks/{id}", app.base))
        .header("cookie", &alice.cookie)
        .header("content-type", "application/json")
        .body(r#"{"version": 2, "description": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}
