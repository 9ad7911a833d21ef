//! The journeys after the fact over real HTTP on the demo: a developer's service
//! overnight, a reviewer's bundle of the messaging incident that prunes and ranks
//! again offline to what the server showed, and bundles that carry the rest of what the
//! screen showed: the network storm, detection's counts and the data sources' state.

mod support;

use graph_core::api::{AnalysisResponse, EpisodesResponse};
use graph_core::prune::MarkKind;
use graph_core::snapshot::{Bundle, Thresholds};
use support::TestApp;

/// 2026-11-18 11:10 UTC.
const DEMO_END: i64 = 1_795_000_200;
/// The messaging incident starts 75 minutes before the end.
const ONSET: i64 = DEMO_END - 75 * 60;
/// The network storm in dc2 starts 13 hours before the end and lasts 15 minutes.
const STORM: i64 = DEMO_END - 13 * 3600;

/// Analyses every tick of `from..=to`, as the detection loop does in the background.
async fn analyse(app: &TestApp, from: i64, to: i64) {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let store = state.store.as_ref();
        let started = std::time::Instant::now();
        for t in (from..=to).step_by(300) {
            state.analyzer.stored(store, t).unwrap();
        }
        eprintln!(
            "analysed {} ticks in {:.1} s",
            (to - from) / 300 + 1,
            started.elapsed().as_secs_f64()
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_nights_episode_on_counters_comes_with_the_mark_bob_made() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let state = app.state.clone();
    let id = tokio::task::spawn_blocking(move || epicenter_backend::demo::seed_demo_marks(&state))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, Some(1), "the demo's mark is made once");
    let state = app.state.clone();
    let again =
        tokio::task::spawn_blocking(move || epicenter_backend::demo::seed_demo_marks(&state))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(again, None, "and not again on the next start");

    // Last night in the site's time zone (UTC+3): 00:00-09:00 is 21:00-06:00 UTC.
    // Nothing is analysed yet: the endpoint analyses a night's ticks itself.
    let (from, to) = (
        DEMO_END - 14 * 3600 - 10 * 60,
        DEMO_END - 5 * 3600 - 10 * 60,
    );
    let r = app
        .get("/api/v1/services/counters-cdb/episodes?from=2026-11-17T21:00:00Z&to=2026-11-18T06:00:00Z")
        .await;
    assert_eq!(r.status(), 200);
    let body: EpisodesResponse = r.json().await.unwrap();
    assert_eq!((body.from, body.to), (from, to));
    let marked: Vec<_> = body
        .episodes
        .iter()
        .filter(|e| !e.marks.is_empty())
        .collect();
    assert!(!marked.is_empty(), "{:#?}", body.episodes);
    let e = marked[0];
    assert_eq!(e.dst, "counters-cdb");
    assert_eq!(e.direction, "incoming");
    assert!(e.start >= from && e.end <= to && e.start <= e.peak_tick && e.peak_tick <= e.end);
    let m = &e.marks[0];
    assert_eq!(
        (m.kind, m.author.as_str(), m.author_name.as_str()),
        (MarkKind::KnownAnomaly, "bob", "Bob Chen")
    );
    assert!(m.description.contains("compaction"), "{}", m.description);
    assert!(
        e.hidden_ticks > 0,
        "the known anomaly hid the edge while it applied: {e:#?}"
    );
    // The small chart: an hour either side, this week and the week before.
    assert!(e.points.first().unwrap().tick <= e.start - 3600);
    assert!(e.points.last().unwrap().tick >= e.end + 3600);
    assert_eq!(e.points.len(), e.week_before.len());
    assert!(e.points.iter().any(|p| !p.anomalous.is_empty()));
    // One episode per edge and stretch: a tick or two without the anomaly does not
    // split it.
    for (i, a) in body.episodes.iter().enumerate() {
        for b in &body.episodes[i + 1..] {
            if (&a.src, &a.dst) == (&b.src, &b.dst) {
                assert!(
                    b.start > a.end + 3 * 300 || a.start > b.end + 3 * 300,
                    "{a:?} {b:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_bundle_prunes_and_ranks_again_to_what_the_server_showed() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let (from, to) = (ONSET - 15 * 60, DEMO_END);
    let r = app
        .get(&format!("/api/v1/snapshots/bundle?from={from}&to={to}"))
        .await;
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        disposition,
        "attachment; filename=\"epicenter-20261118T094000-20261118T111000.json\""
    );
    let text = r.text().await.unwrap();
    let bundle = Bundle::from_json(&text).unwrap();
    assert_eq!(
        bundle.ticks.len(),
        18,
        "09:40 to 11:05, the newest tick with data"
    );
    let mut ranked = 0;
    for snap in bundle.ticks.iter().map(|t| &t.snapshot) {
        let again = snap
            .recompute(&bundle.clusters, &Thresholds::default())
            .unwrap();
        assert_eq!(again.ranking, snap.ranking, "tick {}", snap.tick);
        assert_eq!(again.pruned, snap.pruned, "tick {}", snap.tick);
        // And both are what the screen showed at the tick.
        let shown: AnalysisResponse = app
            .get(&format!("/api/v1/analysis?tick={}", snap.tick))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown.snapshot.ranking, again.ranking, "tick {}", snap.tick);
        ranked += usize::from(!again.ranking.candidates.is_empty());
    }
    assert!(ranked >= 10, "the incident is ranked at {ranked} ticks");
    let peak = &bundle.at(DEMO_END - 30 * 60).unwrap().snapshot;
    assert_eq!(
        peak.ranking.candidates[0].name,
        "messaging-conversation-cdb"
    );

    // A file from a newer build is refused, saying so.
    let newer = text.replacen("\"format_version\":2", "\"format_version\":3", 1);
    let err = Bundle::from_json(&newer).unwrap_err().to_string();
    assert!(
        err.contains("format version 3, newer than this build reads (up to 2)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_of_the_network_storm_carries_the_storm_and_the_counts_the_screen_showed() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let (from, to) = (STORM - 10 * 60, STORM + 25 * 60);
    let r = app
        .get(&format!("/api/v1/snapshots/bundle?from={from}&to={to}"))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let bundle = Bundle::from_json(&text).unwrap();
    assert_eq!(bundle.format_version, 2);
    assert_eq!(bundle.ticks.len(), 8);
    let mut stormy = Vec::new();
    for t in &bundle.ticks {
        let shown = analysis_at(&app, t.tick()).await;
        assert_eq!(t.snapshot, shown.snapshot, "tick {}", t.tick());
        assert_eq!(t.storms, shown.storms, "tick {}", t.tick());
        assert_eq!(t.summary, shown.summary, "tick {}", t.tick());
        assert_eq!(t.sources_behind, shown.sources_behind, "tick {}", t.tick());
        assert!(t.summary.tested > 1000, "{:?}", t.summary);
        // The demo is loaded, not sent by sources: none is behind or quiet.
        assert!(t.sources_behind.is_empty() && t.stale_sources.is_empty());
        if t.storms.iter().any(|s| s.dc == "dc2") {
            stormy.push(t.tick());
        }
    }
    assert!(
        stormy.len() >= 2 && stormy.iter().all(|t| (STORM..STORM + 15 * 60).contains(t)),
        "the storm is in the bundle while it lasts: {stormy:?}"
    );

    // Through a file and back, and with other thresholds in the browser, the storm and
    // the counts stay as detection reported them.
    let file = Bundle::from_json(&bundle.to_json()).unwrap();
    assert_eq!(file, bundle);
    let at = file.at(stormy[0]).unwrap();
    let strict = at
        .recompute(
            &file.clusters,
            &Thresholds {
                min_severity: 1000.0,
                ..Thresholds::default()
            },
        )
        .unwrap();
    assert!(strict.snapshot.pruned.edges.is_empty());
    assert_eq!((&strict.storms, strict.summary), (&at.storms, at.summary));
}

fn ingest_line(ts: i64, src: &str, dst: &str) -> String {
    format!(
        r#"{{"ts": {ts}, "src": "{src}", "dst": "{dst}", "requests": 100, "errors": 0, "latency_ms_sum": 2000}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_carries_the_sources_behind_and_gone_quiet_as_the_banner_showed_them() {
    let app = TestApp::start_with(None, |c| c.sources.stale_after_s = 1).await;
    let now = epicenter_backend::analysis::unix_now();
    let t0 = now - 2 * 3600 - (now - 2 * 3600).rem_euclid(300);
    // "collector" reports web's and api's calls for an hour, then goes quiet.
    let batch: Vec<String> = (0..12)
        .flat_map(|i| {
            [
                ingest_line(t0 + i * 300, "web", "db"),
                ingest_line(t0 + i * 300, "api", "db"),
            ]
        })
        .collect();
    let res = app.ingest(Some(&app.ingest_token), batch.join("\n")).await;
    assert_eq!(res.status(), 200);
    let mut stale = serde_json::Value::Null;
    for _ in 0..50 {
        stale = app.get_json("/api/v1/sources").await["stale"].clone();
        if stale == serde_json::json!(["collector"]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stale, serde_json::json!(["collector"]));
    // A second source delivers the next tick, which the collector has not.
    let later = t0 + 12 * 300;
    let res = app
        .ingest(
            Some(&app.second_ingest_token),
            ingest_line(later, "cache", "db"),
        )
        .await;
    assert_eq!(res.status(), 200);

    let text = app
        .get(&format!(
            "/api/v1/snapshots/bundle?from={}&to={later}",
            later - 300
        ))
        .await
        .text()
        .await
        .unwrap();
    let bundle = Bundle::from_json(&text).unwrap();
    let ticks: Vec<i64> = bundle.ticks.iter().map(|t| t.tick()).collect();
    assert_eq!(ticks, [later - 300, later]);
    for t in &bundle.ticks {
        let shown = analysis_at(&app, t.tick()).await;
        assert_eq!(t.sources_behind, shown.sources_behind, "tick {}", t.tick());
        assert_eq!(t.summary, shown.summary, "tick {}", t.tick());
        // Analysed after the collector went quiet: the banner said so at both.
        assert_eq!(t.stale_sources, ["collector"], "tick {}", t.tick());
    }
    assert!(bundle.ticks[0].sources_behind.is_empty());
    assert_eq!(bundle.ticks[1].sources_behind, ["collector"]);
    assert!(bundle.ticks[1].summary.missing >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_storage_is_reported_per_day_against_the_retention_window() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    analyse(&app, DEMO_END - 3600, DEMO_END - 300).await;
    let r: serde_json::Value = app
        .get("/api/v1/snapshots/storage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["retention_days"], 30);
    assert_eq!(r["total_ticks"], 12);
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["day"], "2026-11-18");
    assert_eq!(days[0]["ticks"], 12);
    let total = r["total_bytes"].as_u64().unwrap();
    assert_eq!(days[0]["bytes"].as_u64().unwrap(), total);
    let mean = r["mean_bytes_per_tick"].as_u64().unwrap();
    assert_eq!(mean, total / 12);
    assert_eq!(r["full_day_bytes"].as_u64().unwrap(), mean * 288);
    assert_eq!(r["retention_bytes"].as_u64().unwrap(), mean * 288 * 30);
    eprintln!("snapshot storage: {r}");
}

/// What the main screen is served for `tick`.
async fn analysis_at(app: &TestApp, tick: i64) -> AnalysisResponse {
    app.get(&format!("/api/v1/analysis?tick={tick}"))
        .await
        .json()
        .await
        .unwrap()
}
