//! # epicenter-bench-wasm
//!
//! Times graph-core's per-tick pipeline (call graph, prune, link, rank, layout) on the
//! same synthetic call graphs as graph-core's native criterion bench
//! (`graph-core/benches/graph.rs`: same generator, same seed), so that browser and
//! native figures compare. Built for wasm32 and driven by `index.html` in headless
//! Chromium (`./dev wasm-bench`); it also runs natively, timed with
//! [`std::time::Instant`] instead of `performance.now()`:
//!
//! ```
//! let json = epicenter_bench_wasm::run(60, 300, 0, 2);
//! let report: serde_json::Value = serde_json::from_str(&json).unwrap();
//! assert_eq!(report["samples"]["tick"].as_array().unwrap().len(), 2);
//! ```
//!
//! Figures are in BENCHMARKS.md.

use std::collections::HashSet;
use std::hint::black_box;

use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
use graph_core::layout::{LayoutConfig, layout};
use graph_core::link::{ConfigChange, LinkConfig, link};
use graph_core::model::{Cluster, ClusterCatalog, ClusterId, EdgeKey, Metric, Tick};
use graph_core::prune::{PruneOptions, prune};
use graph_core::rank::{RankConfig, rank};
use serde_json::{Map, Value, json};
use wasm_bindgen::prelude::wasm_bindgen;

/// The tick every synthetic observation belongs to.
pub const NOW: Tick = 1_700_000_000;

/// The seed of graph-core's native pipeline bench.
pub const SEED: u64 = 7;

/// The timed steps, in order. `tick` is prune + link + rank + layout (what the native
/// bench calls one tick); `total` is everything from copying the observations on.
pub const STEPS: [&str; 8] = [
    "observations",
    "graph",
    "prune",
    "link",
    "rank",
    "layout",
    "tick",
    "total",
];

/// Milliseconds from an arbitrary origin: `performance.now()` in the browser.
#[cfg(target_arch = "wasm32")]
fn now_ms() -> f64 {
    thread_local! {
        static PERF: web_sys::Performance = web_sys::window()
            .and_then(|w| w.performance())
            .expect("performance.now() needs a window");
    }
    PERF.with(web_sys::Performance::now)
}

/// Milliseconds from an arbitrary origin: a monotonic clock natively.
#[cfg(not(target_arch = "wasm32"))]
fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

/// The name of the clock [`run`] reads.
const CLOCK: &str = if cfg!(target_arch = "wasm32") {
    "performance.now()"
} else {
    "std::time::Instant"
};

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

const TIERS: [(&str, f64, f64, f64); 6] = [
    // name, share of clusters, expected latency range (ms) of calls into it
    ("frontend", 0.08, 20.0, 60.0),
    ("api", 0.10, 10.0, 40.0),
    ("service", 0.40, 5.0, 30.0),
    ("proxy", 0.10, 5.0, 20.0),
    ("cache", 0.12, 0.3, 2.0),
    ("storage", 0.20, 3.0, 20.0),
];

/// Which tier a caller in tier `t` calls, as cumulative weights over TIERS.
fn callee_tier(rng: &mut Rng, t: usize) -> usize {
    let table: [[f64; 6]; 6] = [
        [0.0, 0.75, 0.20, 0.0, 0.05, 0.0],   // frontend
        [0.0, 0.0, 0.70, 0.05, 0.20, 0.05],  // api
        [0.0, 0.01, 0.35, 0.20, 0.24, 0.20], // service
        [0.0, 0.0, 0.02, 0.0, 0.18, 0.80],   // proxy
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],      // cache
        [0.0, 0.0, 0.60, 0.0, 0.0, 0.40],    // storage (replication, callbacks)
    ];
    let r = rng.unit();
    let mut acc = 0.0;
    for (i, w) in table[t].iter().enumerate() {
        acc += w;
        if r < acc {
            return i;
        }
    }
    5
}

fn caller_tier(rng: &mut Rng) -> usize {
    let weights = [0.12, 0.22, 0.48, 0.14, 0.02, 0.02];
    let r = rng.unit();
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if r < acc {
            return i;
        }
    }
    2
}

/// One synthetic tick: the clusters, every edge's observation, the config changes and
/// the injected root cause.
#[derive(Debug)]
pub struct World {
    /// The clusters.
    pub catalog: ClusterCatalog,
    /// One observation per edge, sorted by edge.
    pub observations: Vec<EdgeObservation>,
    /// One config change, on the root cause.
    pub changes: Vec<ConfigChange>,
    /// The slowed-down storage cluster.
    pub root: ClusterId,
}

/// `nodes` clusters in six tiers (front ends, APIs and caches split over three data
/// centres), `edges` distinct edges mostly pointing to later tiers with some cycles,
/// every edge with a little noise, one storage cluster slowed down by 40 ms with the
/// growth propagated to its callers and their callers, 1 % of the edges with an
/// unrelated anomaly, and a config change on the slow cluster.
///
/// The same generator as graph-core's native pipeline bench: the same `seed` gives the
/// same graph.
pub fn world(nodes: usize, edges: usize, seed: u64) -> World {
    let mut rng = Rng(seed);
    let mut catalog = ClusterCatalog::new();
    let mut by_tier: Vec<Vec<ClusterId>> = vec![Vec::new(); TIERS.len()];
    let mut tier_of = Vec::with_capacity(nodes);
    for (t, (name, share, ..)) in TIERS.iter().enumerate() {
        let count = ((nodes as f64) * share).round() as usize;
        for i in 0..count {
            let split = matches!(*name, "frontend" | "api" | "cache");
            let service = format!("{name}-{}", if split { i / 3 } else { i });
            let dc = split.then(|| format!("dc{}", i % 3 + 1));
            let cname = dc
                .as_ref()
                .map_or_else(|| service.clone(), |d| format!("{service}-{d}"));
            let id = catalog.insert(Cluster {
                name: cname,
                service,
                dc,
                tier: Some((*name).into()),
            });
            by_tier[t].push(id);
            tier_of.push(t);
        }
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(edges);
    let mut attempts = 0;
    while keys.len() < edges && attempts < edges * 50 {
        attempts += 1;
        let st = caller_tier(&mut rng);
        let dt = callee_tier(&mut rng, st);
        let (sv, dv) = (&by_tier[st], &by_tier[dt]);
        if sv.is_empty() || dv.is_empty() {
            continue;
        }
        let key = EdgeKey {
            src: sv[rng.below(sv.len())],
            dst: dv[rng.below(dv.len())],
        };
        if key.src != key.dst && seen.insert(key) {
            keys.push(key);
        }
    }
    let mut obs: Vec<EdgeObservation> = keys
        .iter()
        .map(|&k| {
            let t = tier_of[k.dst.0 as usize];
            let req = 10f64.powf(rng.range(1.0, 4.0));
            let lat = rng.range(TIERS[t].2, TIERS[t].3);
            let err = rng.range(0.0005, 0.01);
            EdgeObservation::new(k)
                .with_requests(req, req * rng.range(0.97, 1.03))
                .with_latency(lat, lat * rng.range(0.98, 1.02))
                .with_error_rate(err, err * rng.range(0.95, 1.05))
        })
        .collect();
    obs.sort_by_key(|o| o.edge);

    // The incident.
    let storage = &by_tier[5];
    let callers_of = |obs: &[EdgeObservation], c: ClusterId| -> Vec<usize> {
        (0..obs.len()).filter(|&i| obs[i].edge.dst == c).collect()
    };
    let mut root = storage[rng.below(storage.len())];
    for _ in 0..20 {
        if callers_of(&obs, root).len() >= 2 {
            break;
        }
        root = storage[rng.below(storage.len())];
    }
    let mut growth = vec![0.0f64; catalog.len()];
    growth[root.0 as usize] = 40.0;
    let mut level = vec![root];
    for depth in 0..3 {
        let mut next = Vec::new();
        for &c in &level {
            for i in callers_of(&obs, c) {
                let o = &mut obs[i];
                let d = growth[c.0 as usize];
                let e = o.latency_ms.expected.unwrap_or(0.0);
                let cur = o.latency_ms.current.unwrap_or(e) + d;
                o.latency_ms.current = Some(cur);
                let onset = NOW - 300 * (3 - depth);
                if d > 0.2 * e && d > 1.0 {
                    o.anomalies.push(EdgeAnomaly::new(
                        Metric::Latency,
                        cur,
                        e,
                        (d / e).min(10.0),
                        onset,
                    ));
                }
                if depth == 0 {
                    let er = o.error_rate.expected.unwrap_or(0.0) + 0.04;
                    o.error_rate.current = Some(er);
                    o.anomalies.push(EdgeAnomaly::new(
                        Metric::ErrorRate,
                        er,
                        er - 0.04,
                        3.0,
                        onset,
                    ));
                }
                next.push(o.edge.src);
            }
        }
        // Callers' growth: their share of calls into the slowed callees.
        let mut inflow = vec![0.0f64; catalog.len()];
        let mut add = vec![0.0f64; catalog.len()];
        for o in &obs {
            inflow[o.edge.dst.0 as usize] += o.weight();
        }
        for o in &obs {
            let d = growth[o.edge.dst.0 as usize];
            if d > 0.0 && level.contains(&o.edge.dst) {
                let s = o.edge.src.0 as usize;
                if inflow[s] > 0.0 {
                    add[s] += o.weight() / inflow[s] * d;
                }
            }
        }
        next.sort();
        next.dedup();
        for &c in &next {
            growth[c.0 as usize] = add[c.0 as usize];
        }
        level = next;
    }
    // Unrelated anomalies on 1 % of the edges.
    for _ in 0..obs.len() / 100 {
        let i = rng.below(obs.len());
        let o = &mut obs[i];
        let e = o.latency_ms.expected.unwrap_or(1.0);
        o.latency_ms.current = Some(e * 1.3);
        o.anomalies
            .push(EdgeAnomaly::new(Metric::Latency, e * 1.3, e, 0.3, NOW));
    }
    let changes = vec![ConfigChange {
        id: 812,
        ts: NOW - 1_300,
        author: "alice".into(),
        clusters: vec![root],
        description: "compaction threads 8 -> 2".into(),
        link: None,
    }];
    World {
        catalog,
        observations: obs,
        changes,
        root,
    }
}

/// What one tick produced, to check that every platform computes the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Nodes and edges of the call graph.
    pub graph: (usize, usize),
    /// Nodes and edges after pruning.
    pub pruned: (usize, usize),
    /// Layers of the layout.
    pub layers: u32,
    /// Edge crossings counted by the layout.
    pub crossings: u64,
    /// Rank of the injected root cause (0 when not ranked).
    pub root_rank: u32,
}

/// Runs one tick on `w`, writing each step's milliseconds into `times` (in
/// [`STEPS`] order).
fn timed_tick(w: &World, times: &mut [f64; STEPS.len()]) -> Outcome {
    let t0 = now_ms();
    let observations = black_box(w.observations.clone());
    let t1 = now_ms();
    let graph = CallGraph::new(observations).expect("the generator's observations are valid");
    let t2 = now_ms();
    let pruned = prune(&graph, &[], NOW, &PruneOptions::default());
    let t3 = now_ms();
    let links = link(&pruned, &w.changes, &[], &LinkConfig::default());
    let t4 = now_ms();
    let ranking = rank(&graph, &pruned, &links, &w.catalog, &RankConfig::default());
    let t5 = now_ms();
    let drawn = layout(
        &pruned.nodes,
        &pruned.edge_keys(),
        &w.catalog,
        None,
        &LayoutConfig::default(),
    );
    let t6 = now_ms();
    *times = [
        t1 - t0,
        t2 - t1,
        t3 - t2,
        t4 - t3,
        t5 - t4,
        t6 - t5,
        t6 - t2,
        t6 - t0,
    ];
    let outcome = Outcome {
        graph: (graph.node_count(), graph.edge_count()),
        pruned: (pruned.nodes.len(), pruned.edges.len()),
        layers: drawn.layers,
        crossings: drawn.crossings,
        root_rank: ranking.rank_of(w.root).unwrap_or(0),
    };
    black_box((graph, pruned, links, ranking, drawn));
    outcome
}

/// Median, 90th percentile (nearest rank), minimum, maximum and mean of `samples`.
pub fn summary(samples: &[f64]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let p90 = s[(n * 9).div_ceil(10).max(1) - 1];
    let mean = s.iter().sum::<f64>() / n as f64;
    json!({
        "median": round(median),
        "p90": round(p90),
        "min": round(s[0]),
        "max": round(s[n - 1]),
        "mean": round(mean),
    })
}

fn round(ms: f64) -> f64 {
    (ms * 1e4).round() / 1e4
}

/// Generates the graph of `nodes` clusters and `edges` edges (seed [`SEED`]), runs
/// `warmup` untimed ticks and `iterations` timed ones, and returns a JSON report: the
/// per-iteration milliseconds of every step in [`STEPS`] (`samples`), their
/// [`summary`] (`summary`), the generation time and what the tick produced.
#[wasm_bindgen]
pub fn run(nodes: u32, edges: u32, warmup: u32, iterations: u32) -> String {
    let start = now_ms();
    let w = world(nodes as usize, edges as usize, SEED);
    let generate_ms = now_ms() - start;
    let mut times = [0.0; STEPS.len()];
    let mut outcome = None;
    for _ in 0..warmup {
        outcome = Some(timed_tick(&w, &mut times));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(iterations as usize); STEPS.len()];
    for _ in 0..iterations {
        outcome = Some(timed_tick(&w, &mut times));
        for (s, &t) in samples.iter_mut().zip(&times) {
            s.push(round(t));
        }
    }
    let mut by_step = Map::new();
    let mut stats = Map::new();
    for (name, s) in STEPS.iter().zip(samples) {
        stats.insert((*name).into(), summary(&s));
        by_step.insert((*name).into(), s.into());
    }
    let outcome = outcome.map(|o| {
        json!({
            "graph_nodes": o.graph.0,
            "graph_edges": o.graph.1,
            "pruned_nodes": o.pruned.0,
            "pruned_edges": o.pruned.1,
            "layers": o.layers,
            "crossings": o.crossings,
            "root_rank": o.root_rank,
        })
    });
    json!({
        "nodes": nodes,
        "edges": edges,
        "seed": SEED,
        "clock": CLOCK,
        "warmup": warmup,
        "iterations": iterations,
        "generate_ms": round(generate_ms),
        "outcome": outcome,
        "steps": STEPS,
        "summary": stats,
        "samples": by_step,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_has_the_requested_size() {
        for (nodes, edges) in [(300, 2_500), (1_000, 8_000)] {
            let w = world(nodes, edges, SEED);
            assert_eq!(w.catalog.len(), nodes);
            assert_eq!(w.observations.len(), edges);
            let keys: HashSet<EdgeKey> = w.observations.iter().map(|o| o.edge).collect();
            assert_eq!(keys.len(), edges, "edges are distinct");
            assert!(w.observations.iter().all(|o| o.edge.src != o.edge.dst));
            assert!(w.observations.windows(2).all(|p| p[0].edge < p[1].edge));
        }
    }

    #[test]
    fn world_is_deterministic() {
        let (a, b) = (world(300, 2_500, SEED), world(300, 2_500, SEED));
        assert_eq!(a.root, b.root);
        assert_eq!(a.observations, b.observations);
    }

    #[test]
    fn run_reports_every_step_of_every_iteration() {
        let report: Value = serde_json::from_str(&run(300, 2_500, 1, 3)).unwrap();
        assert_eq!(report["outcome"]["graph_edges"], 2_500);
        for step in STEPS {
            let samples = report["samples"][step].as_array().unwrap();
            assert_eq!(samples.len(), 3, "{step}");
            assert!(samples.iter().all(|t| t.as_f64().unwrap() >= 0.0), "{step}");
            assert!(report["summary"][step]["median"].is_number(), "{step}");
        }
    }

    #[test]
    fn summary_uses_nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=10).map(f64::from).collect();
        let v = summary(&s);
        assert_eq!(v["median"], 5.5);
        assert_eq!(v["p90"], 9.0);
        assert_eq!(v["max"], 10.0);
        assert_eq!(summary(&[2.0])["p90"], 2.0);
        assert!(summary(&[]).is_null());
    }
}
