//! The whole pipeline as production runs it: server-level call statistics from the
//! fixtures' simulation are posted over HTTP (with the fixtures' topology file and
//! change feed), and the analysis at a scenario's tick must match its ground truth.

mod support;

use std::collections::BTreeSet;

use epicenter_fixtures::files::Topology as FixtureTopology;
use epicenter_fixtures::scenario::ScenarioKind;
use epicenter_fixtures::server::ServerLevel;
use epicenter_fixtures::sim::Simulation;
use epicenter_fixtures::world::World;
use graph_core::detect::DetectConfig;
use graph_core::model::BucketWidth;
use support::TestApp;

/// Yesterday 11:10 UTC: a fixed time of day, recent enough for the ingest window.
fn end() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now.rem_euclid(86_400) - 86_400 + 40_200
}

async fn check(kind: ScenarioKind, minutes_in: i64, expect_src: Option<&str>) {
    let world = World::build(1);
    let onset = end() - 75 * 60;
    let scenario = kind.build(&world, onset).unwrap();
    let at = scenario.onset + minutes_in * 60;
    let sim = Simulation::new(
        &world,
        BucketWidth::FIVE_MINUTES,
        std::slice::from_ref(&scenario),
    )
    .unwrap();
    let level = ServerLevel::new(sim);
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.json");
    std::fs::write(
        &topology,
        serde_json::to_string(&FixtureTopology::of(&world)).unwrap(),
    )
    .unwrap();
    let app = TestApp::start_with(None, move |c| c.ingest.topology = Some(topology)).await;

    // Every tick the analysis at `at` and the four before it read.
    let config = DetectConfig::default();
    let ticks: BTreeSet<i64> = (0..=4)
        .flat_map(|i| config.ticks_needed(at - i * 300, BucketWidth::FIVE_MINUTES))
        .collect();
    let mut lines = 0;
    for t in ticks {
        let body: String = level
            .tick(t)
            .iter()
            .map(|c| serde_json::to_string(c).unwrap() + "\n")
            .collect();
        lines += body.lines().count();
        let res = app.ingest(Some(&app.ingest_token), body).await;
        assert_eq!(res.status(), 200, "tick {t}: {}", res.text().await.unwrap());
        let accepted: serde_json::Value = res.json().await.unwrap();
        assert_eq!(accepted["unmapped_records"], 0, "{accepted}");
    }
    assert!(lines > 100_000, "{lines} server-level lines");
    // The scenario's change feed, as a deploy system would post it.
    let changes: Vec<serde_json::Value> = scenario
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "ts": c.ts, "author": c.author, "clusters": c.clusters,
                "description": c.description, "link": c.link,
            })
        })
        .collect();
    if !changes.is_empty() {
        let res = app
            .post(
                "/api/v1/changes",
                Some(&app.ingest_token),
                "application/json",
                serde_json::Value::Array(changes).to_string(),
            )
            .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    let a = app.get_json(&format!("/api/v1/analysis?tick={at}")).await;
    let name = |id: &serde_json::Value| {
        a["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| &c["id"] == id)
            .map(|c| c["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    // Calls into the root cause are slower, as the scenario says.
    let cause = scenario.root_cause.clone().unwrap();
    let into_cause: Vec<_> = a["snapshot"]["pruned"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            name(&e["edge"]["dst"]) == cause
                && expect_src.is_none_or(|s| name(&e["edge"]["src"]) == s)
                && e["metrics"].as_array().unwrap().contains(&"latency".into())
        })
        .collect();
    assert!(!into_cause.is_empty(), "no latency anomaly into {cause}");
    let first = &a["snapshot"]["ranking"]["candidates"][0];
    assert_eq!(
        first["name"].as_str(),
        scenario.root_cause.as_deref(),
        "{}",
        a["snapshot"]["ranking"]
    );
    if !scenario.changes.is_empty() {
        let why = first["explanation"].as_str().unwrap();
        assert!(why.contains("config change"), "{why}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messaging_incident_at_server_level_over_http() {
    check(ScenarioKind::MessagingHistory, 20, Some("messaging-proxy")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_deploy_at_server_level_over_http() {
    check(ScenarioKind::BadDeploy, 20, None).await;
}
