//! One detection tick over 160,000 series (40,000 edges × 4 metrics) with complete
//! six-week weekly baselines.
//!
//! Run with `cargo bench -p graph-core --bench detect`; figures are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graph_core::detect::{
    Cell, Column, DetectConfig, FrameStore, MaintenanceConfig, MarkContext, SeriesKey, detect,
};
use graph_core::model::{
    BucketWidth, Cluster, ClusterCatalog, ClusterId, Counters, EdgeKey, Metric, Tick, WEEK,
};

const CLUSTERS: u32 = 2_000;
const EDGES: u32 = 40_000;

/// A deterministic number in [-1, 1).
fn noise(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// 2,000 clusters over three data centres (every tenth one global), 40,000 distinct edges.
fn world() -> (ClusterCatalog, Vec<SeriesKey>) {
    let mut catalog = ClusterCatalog::new();
    for i in 0..CLUSTERS {
        let dc = (i % 10 != 0).then(|| format!("dc{}", i % 3 + 1));
        let service = format!("svc{}", i / 3);
        let name = dc
            .as_ref()
            .map_or_else(|| service.clone(), |d| format!("{service}-{d}"));
        catalog.insert(Cluster {
            name,
            service,
            dc,
            tier: None,
        });
    }
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::with_capacity(EDGES as usize);
    let mut i = 0u64;
    while keys.len() < EDGES as usize {
        let src = ((noise(1, i) + 1.0) / 2.0 * f64::from(CLUSTERS)) as u32;
        let dst = ((noise(2, i) + 1.0) / 2.0 * f64::from(CLUSTERS)) as u32;
        i += 1;
        if src != dst && seen.insert((src, dst)) {
            keys.push(SeriesKey::edge(EdgeKey {
                src: ClusterId(src),
                dst: ClusterId(dst),
            }));
        }
    }
    (catalog, keys)
}

/// Daily-seasonal traffic with noise; at `now` one edge in a thousand slows down fivefold.
fn counters(e: u64, t: Tick, now: Tick) -> Counters {
    let day = (t.rem_euclid(86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
    let size = 50.0 + 5_000.0 * (noise(3, e) + 1.0);
    let requests = (size * (1.0 + 0.3 * day) * (1.0 + 0.03 * noise(e, t as u64))).round();
    let errors = (requests * 0.002 * (1.0 + 0.5 * noise(e ^ 7, t as u64))).round();
    let mut latency = (20.0 + 30.0 * (noise(4, e) + 1.0)) * (1.0 + 0.05 * noise(e ^ 9, t as u64));
    if t == now && e % 1_000 == 7 {
        latency *= 5.0;
    }
    Counters {
        requests,
        errors,
        latency_ms_sum: requests * latency,
    }
}

/// A store with exactly the columns detection at `now` reads.
fn store(keys: &[SeriesKey], now: Tick, config: &DetectConfig) -> FrameStore {
    let width = BucketWidth::FIVE_MINUTES;
    let mut store = FrameStore::new(width);
    for k in keys {
        store.add_entity(*k);
    }
    for t in config.ticks_needed(now, width) {
        let cells = (0..keys.len() as u64)
            .map(|e| Cell::new(&counters(e, t, now)))
            .collect();
        store.insert_column(t, Column::from_cells(cells)).unwrap();
        let users = 1e6
            * (1.0 + 0.3 * (t.rem_euclid(86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin());
        store.set_activity(t, users).unwrap();
    }
    store
}

/// CPU time the current thread has run so far, from Linux's schedstat (nanoseconds).
/// Unlike wall time it does not grow while other work has the cores, so on a shared
/// machine it is the honest measure of what one core needs.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Mean CPU time of `runs` calls of `f`, when the platform reports it.
fn cpu_time_per_run<T>(runs: u32, mut f: impl FnMut() -> T) -> Option<Duration> {
    let start = thread_cpu_time()?;
    for _ in 0..runs {
        black_box(f());
    }
    Some((thread_cpu_time()? - start) / runs)
}

fn bench(c: &mut Criterion) {
    let now = 2_900 * WEEK + 13 * 3_600;
    let config = DetectConfig::default();
    let maintenance = DetectConfig {
        maintenance: MaintenanceConfig {
            enabled: true,
            ..Default::default()
        },
        ..config.clone()
    };
    let (catalog, keys) = world();
    let store = store(&keys, now, &config);
    let marks = MarkContext::default();
    let series = keys.len() * Metric::ALL.len();
    eprintln!(
        "{} entities, {series} series, {} columns, {:.1} MiB of columns, {} bytes per series per tick",
        keys.len(),
        store.ticks().count(),
        store.column_bytes() as f64 / (1 << 20) as f64,
        Cell::BYTES / Metric::ALL.len(),
    );
    let r = detect(now, &store, &catalog, &config, &marks).unwrap();
    eprintln!("one tick: {:?}, {} storms", r.summary, r.storms.len());
    assert_eq!(
        r.summary.tested as usize, series,
        "every series has a full weekly baseline"
    );
    let cpu = cpu_time_per_run(30, || {
        detect(now, &store, &catalog, &config, &marks).unwrap()
    });
    let cpu_m = cpu_time_per_run(30, || {
        detect(now, &store, &catalog, &maintenance, &marks).unwrap()
    });
    eprintln!("CPU time per tick (mean of 30): {cpu:.2?}; in maintenance mode {cpu_m:.2?}");

    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(series as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("tick_160k_series", |b| {
        b.iter(|| detect(black_box(now), &store, &catalog, &config, &marks).unwrap())
    });
    group.bench_function("tick_160k_series_maintenance", |b| {
        b.iter(|| detect(black_box(now), &store, &catalog, &maintenance, &marks).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
