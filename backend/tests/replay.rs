//! The journeys after the fact over real HTTP on the demo: a developer's service
//! overnight, and a reviewer's bundle of the messaging incident that prunes and ranks
//! again offline to what the server showed.

mod support;

use graph_core::api::{AnalysisResponse, EpisodesResponse};
use graph_core::prune::MarkKind;
use graph_core::snapshot::{Bundle, Thresholds};
use support::TestApp;

/// 2026-11-18 11:10 UTC.
const DEMO_END: i64 = 1_795_000_200;
/// The messaging incident starts 75 minutes before the end.
const ONSET: i64 = DEMO_END - 75 * 60;

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
    for snap in &bundle.ticks {
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
    let peak = bundle.at(DEMO_END - 30 * 60).unwrap();
    assert_eq!(
        peak.ranking.candidates[0].name,
        "messaging-conversation-cdb"
    );

    // A file from a newer build is refused, saying so.
    let newer = text.replacen("\"format_version\":1", "\"format_version\":2", 1);
    let err = Bundle::from_json(&newer).unwrap_err().to_string();
    assert!(
        err.contains("format version 2, newer than this build reads (up to 1)"),
        "{err}"
    );
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
