//! The query API over the demo portal: stored analyses, an edge's chart data, the
//! drill-down, episodes, snapshots, changes, activity, topology and the OpenAPI
//! document, over real HTTP against a real store.

mod support;

use support::TestApp;

/// 2026-11-18 11:10 UTC; the demo's messaging incident starts 75 minutes earlier.
const DEMO_END: i64 = 1_795_000_200;
const ONSET: i64 = DEMO_END - 75 * 60;
const PROXY: &str = "messaging-proxy";
const CDB: &str = "messaging-conversation-cdb";

#[tokio::test]
async fn the_demo_incident_through_every_read_endpoint() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let at = ONSET + 20 * 60;

    // On-demand analysis of a range stores one snapshot per tick, with detection flags.
    let from = ONSET - 15 * 60;
    let run = app
        .post(
            "/api/v1/analysis/run",
            Some(&app.write_token),
            "application/json",
            format!(r#"{{"from": {from}, "to": {at}}}"#),
        )
        .await;
    assert_eq!(run.status(), 200, "{}", run.text().await.unwrap());
    let run: serde_json::Value = run.json().await.unwrap();
    assert_eq!(run["analysed"], 8);
    let list = app
        .get_json(&format!("/api/v1/snapshots?from={from}&to={at}"))
        .await;
    let ticks: Vec<i64> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tick"].as_i64().unwrap())
        .collect();
    assert_eq!(ticks, (0..8).map(|i| from + i * 300).collect::<Vec<_>>());
    let last = list["snapshots"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["top_candidate"], CDB, "{last}");
    assert!(last["anomalous_edges"].as_u64().unwrap() >= 1);

    // The stored snapshot is graph-core's versioned document.
    let doc = app.get_json(&format!("/api/v1/snapshots/{at}")).await;
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["snapshot"]["ranking"]["candidates"][0]["name"], CDB);
    // Each anomaly carries the test behind it: baseline, mean, spread, Grubbs' G.
    let tested: Vec<&serde_json::Value> = doc["snapshot"]["observations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["anomalies"].as_array().into_iter().flatten())
        .collect();
    assert!(!tested.is_empty());
    for a in tested {
        let t = &a["test"];
        assert!(
            t["g"].as_f64().unwrap() > t["g_crit"].as_f64().unwrap(),
            "{a}"
        );
        assert!(["weekly", "daily", "trailing"].contains(&t["baseline"]["kind"].as_str().unwrap()));
        assert!(t["baseline"]["n"].as_u64().unwrap() >= 3, "{a}");
        assert!(t["baseline_std_dev"].as_f64().unwrap() >= 0.0);
    }
    let bundle = app
        .get_json(&format!("/api/v1/snapshots/bundle?from={from}&to={at}"))
        .await;
    assert_eq!(bundle["ticks"].as_array().unwrap().len(), 8);
    let bundle = graph_core::snapshot::Bundle::from_json(&bundle.to_string()).unwrap();
    assert_eq!(
        bundle.at(at).unwrap().snapshot.ranking.candidates[0].name,
        CDB
    );

    // The storage edge's chart: the day up to the tick against the week before, with
    // the anomalous points flagged by the stored analyses.
    let series = app
        .get_json(&format!(
            "/api/v1/edges/series?src={PROXY}&dst={CDB}&to={at}"
        ))
        .await;
    assert_eq!(series["bucket_width_s"], 300);
    assert_eq!(series["to"], at);
    let points = series["points"].as_array().unwrap();
    assert!(points.len() > 250, "a day of points, got {}", points.len());
    let now = points.last().unwrap();
    assert_eq!(now["tick"], at);
    assert!(
        now["anomalous"]
            .as_array()
            .is_some_and(|m| m.contains(&"latency".into())),
        "{now}"
    );
    let before = points.iter().find(|p| p["tick"] == ONSET - 3600).unwrap();
    assert!(before.get("anomalous").is_none(), "{before}");
    let rise = now["latency_ms"].as_f64().unwrap() - before["latency_ms"].as_f64().unwrap();
    assert!((25.0..60.0).contains(&rise), "latency rose by {rise} ms");
    let weeks = series["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 6);
    // The demo holds one week of history before its last day.
    let week = weeks[0]["points"].as_array().unwrap();
    assert!(week.len() > 100, "{} points a week earlier", week.len());
    let (from_t, to_t) = (series["from"].as_i64().unwrap(), at);
    assert!(week.iter().all(|p| {
        let t = p["tick"].as_i64().unwrap();
        t >= from_t - 7 * 86_400 && t <= to_t - 7 * 86_400
    }));
    assert!(weeks[5]["points"].as_array().unwrap().is_empty());
    // One method's series exists too, and unknown names are 404s naming the parameter.
    let res = app
        .get(&format!("/api/v1/edges/series?src={PROXY}&dst=nowhere"))
        .await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("\"dst\""),
        "{body}"
    );
    let res = app.get("/api/v1/edges/series?src=x").await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("dst"), "{body}");

    // Drill-down: the server pairs behind the storage edge, by time spent.
    let pairs = app
        .get_json(&format!(
            "/api/v1/edges/servers?src={PROXY}&dst={CDB}&tick={}&limit=5",
            DEMO_END - 600
        ))
        .await;
    let list = pairs["pairs"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 5, "{pairs}");
    assert!(pairs["total_pairs"].as_u64().unwrap() >= list.len() as u64);
    assert!(
        list.iter()
            .all(|p| p["src"].as_str().unwrap().starts_with("messaging-proxy-"))
    );
    let shares: Vec<f64> = list
        .iter()
        .map(|p| p["latency_share"].as_f64().unwrap())
        .collect();
    assert!(shares.windows(2).all(|w| w[0] >= w[1]), "{shares:?}");

    // Episodes of the storage service: one episode on the proxy edge with latency
    // among its metrics, from the onset, with the cluster ranked first.
    let episodes = app
        .get_json(&format!(
            "/api/v1/services/{CDB}/episodes?from={from}&to={at}"
        ))
        .await;
    assert_eq!(episodes["analysed_ticks"], 8);
    let e = episodes["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["src"] == PROXY)
        .unwrap_or_else(|| panic!("no episode on the proxy edge: {episodes}"));
    assert!(
        e["metrics"].as_array().unwrap().contains(&"latency".into()),
        "{e}"
    );
    assert_eq!(
        episodes["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["src"] == PROXY)
            .count(),
        1,
        "one episode per edge: {episodes}"
    );
    assert_eq!(e["direction"], "incoming");
    assert_eq!(e["end"], at);
    assert!(e["start"].as_i64().unwrap() >= ONSET - 300, "{e}");
    assert_eq!(e["best_rank"], 1);
    assert!(e["peak_deviation"].as_f64().unwrap() > 0.5, "{e}");

    // The incident's config change is listed and linked in the ranking.
    let changes = app
        .get_json(&format!(
            "/api/v1/changes?from={}&to={at}&cluster={CDB}",
            ONSET - 3600
        ))
        .await;
    let changes = changes.as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["clusters"].as_array().unwrap().contains(&CDB.into())),
        "{changes:?}"
    );
    let why = doc["snapshot"]["ranking"]["candidates"][0]["explanation"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("config change"), "{why}");

    // Activity today and in the week before.
    let activity = app.get_json(&format!("/api/v1/activity?to={at}")).await;
    assert!(activity["points"].as_array().unwrap().len() > 250);
    assert!(
        !activity["weeks"][0]["points"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The full graph: every cluster with a call, laid out.
    let full = app.get_json(&format!("/api/v1/graph/full?tick={at}")).await;
    let clusters = full["clusters"].as_array().unwrap().len();
    let edges = full["edges"].as_array().unwrap();
    assert!(clusters > 250, "{clusters} clusters");
    assert!(edges.len() > 1500, "{} edges", edges.len());
    assert!(edges.iter().any(|e| !e["anomalous"].is_null()));
    assert!(!full["layout"].is_null());

    // Topology: every cluster and service.
    let topo = app.get_json("/api/v1/topology").await;
    assert_eq!(topo["source"], "identity");
    assert!(topo["services"].as_array().unwrap().contains(&CDB.into()));
    assert!(topo["clusters"].as_array().unwrap().len() > 250);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_every_route_documented() {
    let app = TestApp::start().await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let routed = [
        "DELETE /api/v1/session",
        "GET /api/v1/activity",
        "GET /api/v1/analysis",
        "GET /api/v1/analysis/config",
        "GET /api/v1/changes",
        "GET /api/v1/edges/series",
        "GET /api/v1/edges/servers",
        "GET /api/v1/events",
        "GET /api/v1/graph/full",
        "GET /api/v1/health",
        "GET /api/v1/maintenance",
        "GET /api/v1/marks",
        "GET /api/v1/openapi.json",
        "GET /api/v1/presence",
        "GET /api/v1/services/{service}/episodes",
        "GET /api/v1/session",
        "GET /api/v1/snapshots",
        "GET /api/v1/snapshots/bundle",
        "GET /api/v1/snapshots/storage",
        "GET /api/v1/snapshots/{tick}",
        "GET /api/v1/sources",
        "GET /api/v1/topology",
        "GET /api/v1/topology/unmapped",
        "GET /healthz",
        "GET /metrics",
        "PATCH /api/v1/marks/{id}",
        "POST /api/v1/analysis/run",
        "POST /api/v1/changes",
        "POST /api/v1/ingest/activity",
        "POST /api/v1/ingest/calls",
        "POST /api/v1/marks",
        "POST /api/v1/presence",
        "POST /api/v1/session",
        "POST /api/v1/topology/reload",
        "POST /v1/traces",
        "PUT /api/v1/maintenance/{dc}",
    ];
    assert_eq!(documented, routed);
    // Each documented operation reaches a handler: never the catch-all 404, never 405.
    for op in &documented {
        let (method, path) = op.split_once(' ').unwrap();
        let path = path
            .replace("{service}", "web")
            .replace("{tick}", "600")
            .replace("{id}", "1")
            .replace("{dc}", "dc1");
        let url = format!("{}{path}", app.base);
        let res = match method {
            "GET" => app.client.get(&url).send().await.unwrap(),
            "DELETE" => app.client.delete(&url).send().await.unwrap(),
            "PATCH" => app.client.patch(&url).send().await.unwrap(),
            "PUT" => app.client.put(&url).send().await.unwrap(),
            _ => app.client.post(&url).send().await.unwrap(),
        };
        assert_ne!(res.status(), 405, "{op}");
        if path == "/api/v1/events" {
            // A stream that stays open: its headers are the answer.
            assert_eq!(res.status(), 200);
            continue;
        }
        let text = res.text().await.unwrap();
        assert!(!text.contains("no API endpoint"), "{op}: {text}");
    }
}
