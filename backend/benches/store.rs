//! The store's two hot reads on the six-week demo portal: one detection tick (store
//! reads, detection, ranking, layout and the durable write of flags and snapshot), and
//! one edge chart (a day and the same day in six previous weeks).
//!
//! `cargo bench -p epicenter-backend --bench store`. Loading the demo takes about half
//! a minute before the first measurement.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use epicenter_backend::AppState;
use epicenter_backend::config::Config;
use epicenter_backend::demo::load_demo;
use epicenter_backend::handlers::query::{SeriesQuery, edge_series_at};
use epicenter_backend::store::RedbStore;
use graph_core::model::BucketWidth;

/// 2026-11-18 11:10 UTC, the demo's end in the tests.
const END: i64 = 1_795_000_200;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), BucketWidth::FIVE_MINUTES).unwrap();
    let report = load_demo(&mut store, END, 6).unwrap();
    let size = std::fs::metadata(store.path()).unwrap().len();
    eprintln!(
        "demo: {} clusters, {} series, store {:.0} MB",
        report.clusters,
        report.entities,
        size as f64 / 1e6
    );
    let mut config = Config::default();
    config.store.data_dir = dir.path().to_path_buf();
    let state = AppState::with_store(&config, Arc::new(store)).unwrap();
    let store = state.store.clone();
    let tick = END - 55 * 60;
    // Steady state: the tick before has its analysis stored, as the loop leaves it.
    state.analyzer.run(store.as_ref(), tick - 300, 0).unwrap();
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    group.bench_function(
        "detection tick, demo portal (reads + analysis + durable write)",
        |b| {
            b.iter(|| {
                state.analyzer.forget(&[tick]);
                state.analyzer.run(store.as_ref(), tick, 0).unwrap()
            })
        },
    );
    let q = SeriesQuery {
        src: "messaging-proxy".into(),
        dst: "messaging-conversation-cdb".into(),
        method: None,
        from: None,
        to: None,
    };
    group.bench_function("edge chart: a day + the same day in six weeks", |b| {
        b.iter(|| edge_series_at(&state, &q, tick - 86_400 + 300, tick).unwrap())
    });
    group.finish();
    let stats = &state.analyzer.stats;
    eprintln!(
        "analysed {} ticks, mean {:.1} ms",
        stats.analysed.load(std::sync::atomic::Ordering::Relaxed),
        stats.total_us.load(std::sync::atomic::Ordering::Relaxed) as f64
            / 1000.0
            / stats.analysed.load(std::sync::atomic::Ordering::Relaxed) as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
