//! Prune + link + rank + layout of one tick on synthetic call graphs of 300 clusters /
//! 2,500 edges and 10,000 clusters / 100,000 edges, the full-graph layout, and a
//! comparison of edge crossings with Graphviz `dot` on the same graphs.
//!
//! Run with `cargo bench -p graph-core --bench graph`; figures are in BENCHMARKS.md.
//! The crossing comparison runs first (only under `cargo bench`) and needs `dot` on the
//! PATH; without it the comparison is skipped.

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group};
// The same synthetic graphs as the browser benchmark, so the figures compare.
use epicenter_bench_wasm::{NOW, World, world};
use graph_core::graph::CallGraph;
use graph_core::layout::{Layout, LayoutConfig, layout};
use graph_core::link::{LinkConfig, link};
use graph_core::model::{ClusterCatalog, EdgeKey};
use graph_core::prune::{PruneOptions, PrunedGraph, prune};
use graph_core::rank::{RankConfig, rank};

/// A small deterministic generator (SplitMix64).
/// One tick: prune, link, rank, lay out.
fn tick(graph: &CallGraph, w: &World, previous: Option<&Layout>) -> (PrunedGraph, Layout, u32) {
    let pruned = prune(graph, &[], NOW, &PruneOptions::default());
    let links = link(&pruned, &w.changes, &[], &LinkConfig::default());
    let ranking = rank(graph, &pruned, &links, &w.catalog, &RankConfig::default());
    let drawn = layout(
        &pruned.nodes,
        &pruned.edge_keys(),
        &w.catalog,
        previous,
        &LayoutConfig::default(),
    );
    let root_rank = ranking.rank_of(w.root).unwrap_or(0);
    (pruned, drawn, root_rank)
}

fn bench_pipeline(c: &mut Criterion) {
    for (nodes, edges) in [(300, 2_500), (10_000, 100_000)] {
        let w = world(nodes, edges, 7);
        let graph = CallGraph::new(w.observations.clone()).unwrap();
        let (pruned, drawn, root_rank) = tick(&graph, &w, None);
        println!(
            "{nodes} clusters / {} edges: pruned to {} nodes / {} edges, {} layers, {} layered crossings; injected cause ranked {root_rank}",
            graph.edge_count(),
            pruned.nodes.len(),
            pruned.edges.len(),
            drawn.layers,
            drawn.crossings,
        );
        let name = format!("{nodes}x{edges}");
        let mut group = c.benchmark_group("tick");
        if nodes > 1_000 {
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(10));
        }
        group.bench_function(format!("prune+link+rank+layout/{name}"), |b| {
            b.iter(|| black_box(tick(&graph, &w, None)))
        });
        group.bench_function(format!("same, with the previous layout/{name}"), |b| {
            b.iter(|| black_box(tick(&graph, &w, Some(&drawn))))
        });
        group.bench_function(format!("build call graph/{name}"), |b| {
            b.iter(|| black_box(CallGraph::new(w.observations.clone()).unwrap()))
        });
        group.bench_function(format!("prune/{name}"), |b| {
            b.iter(|| black_box(prune(&graph, &[], NOW, &PruneOptions::default())))
        });
        let links = link(&pruned, &w.changes, &[], &LinkConfig::default());
        group.bench_function(format!("rank/{name}"), |b| {
            b.iter(|| {
                black_box(rank(
                    &graph,
                    &pruned,
                    &links,
                    &w.catalog,
                    &RankConfig::default(),
                ))
            })
        });
        group.bench_function(format!("layout/{name}"), |b| {
            b.iter(|| {
                black_box(layout(
                    &pruned.nodes,
                    &pruned.edge_keys(),
                    &w.catalog,
                    None,
                    &LayoutConfig::default(),
                ))
            })
        });
        group.finish();
    }
}

fn bench_full_layout(c: &mut Criterion) {
    let w = world(300, 2_500, 7);
    let keys: Vec<EdgeKey> = w.observations.iter().map(|o| o.edge).collect();
    let mut group = c.benchmark_group("full graph layout");
    group.sample_size(20);
    for (label, config) in [
        ("tiers+dc", LayoutConfig::full_graph()),
        ("longest path", LayoutConfig::default()),
    ] {
        group.bench_function(format!("{label}/300x2500"), |b| {
            b.iter(|| black_box(layout(&[], &keys, &w.catalog, None, &config)))
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------
// Crossing comparison with Graphviz dot.

type Seg = ((f64, f64), (f64, f64));

/// A drawn edge: caller, callee and the polyline between them.
type Drawn = (u32, u32, Vec<(f64, f64)>);

/// Crossing points between the drawn edges, each edge a polyline; pairs of edges that
/// share an endpoint are not counted (they meet at the node).
fn geometric_crossings(edges: &[Drawn]) -> u64 {
    let mut segs: Vec<(f64, f64, usize, Seg)> = Vec::new();
    for (i, (_, _, pts)) in edges.iter().enumerate() {
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a == b {
                continue;
            }
            segs.push((a.0.min(b.0), a.0.max(b.0), i, (a, b)));
        }
    }
    segs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0;
    let mut active: Vec<usize> = Vec::new();
    for j in 0..segs.len() {
        let (lo, _, ej, sj) = segs[j];
        active.retain(|&k| segs[k].1 >= lo);
        for &k in &active {
            let (_, _, ek, sk) = segs[k];
            if ek == ej {
                continue;
            }
            let (a, b) = (&edges[ek], &edges[ej]);
            if a.0 == b.0 || a.0 == b.1 || a.1 == b.0 || a.1 == b.1 {
                continue;
            }
            if proper_intersection(sk, sj) {
                total += 1;
            }
        }
        active.push(j);
    }
    total
}

fn proper_intersection(s: Seg, t: Seg) -> bool {
    let orient = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
    };
    let (d1, d2) = (orient(t.0, t.1, s.0), orient(t.0, t.1, s.1));
    let (d3, d4) = (orient(s.0, s.1, t.0), orient(s.0, s.1, t.1));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

fn our_polylines(l: &Layout) -> Vec<Drawn> {
    l.edges
        .iter()
        .filter(|r| r.edge.src != r.edge.dst)
        .map(|r| {
            (
                r.edge.src.0,
                r.edge.dst.0,
                r.points.iter().map(|p| (p.x, p.y)).collect(),
            )
        })
        .collect()
}

/// Runs `dot -Tplain` on the edges; returns its polylines (splines sampled) and the
/// wall time, or `None` when dot is missing or fails.
#[allow(clippy::disallowed_methods)] // the bench times an external process
fn dot_polylines(keys: &[EdgeKey]) -> Option<(Vec<Drawn>, Duration)> {
    let mut src = String::from(
        "digraph g {\n rankdir=LR;\n node [shape=box, width=1.2, height=0.4, fixedsize=true];\n",
    );
    for k in keys {
        src.push_str(&format!(" n{} -> n{};\n", k.src.0, k.dst.0));
    }
    src.push_str("}\n");
    let out_path =
        std::env::temp_dir().join(format!("epicenter-bench-{}.plain", std::process::id()));
    let start = std::time::Instant::now();
    let mut child = Command::new("dot")
        .arg("-Tplain")
        .arg("-o")
        .arg(&out_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(src.as_bytes()).ok()?;
    let limit = Duration::from_secs(
        std::env::var("DOT_TIMEOUT_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(900),
    );
    let status = loop {
        if let Some(status) = child.try_wait().ok()? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("dot did not finish within {} s", limit.as_secs());
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = start.elapsed();
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out_path).ok()?;
    let _ = std::fs::remove_file(&out_path);
    let mut lines = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&"edge") || f.len() < 4 {
            continue;
        }
        let id = |s: &str| s.trim_start_matches('n').parse::<u32>().ok();
        let (a, b) = (id(f[1])?, id(f[2])?);
        let n: usize = f[3].parse().ok()?;
        let ctrl: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                (
                    f[4 + 2 * i].parse().unwrap_or(0.0),
                    f[5 + 2 * i].parse().unwrap_or(0.0),
                )
            })
            .collect();
        // sample each cubic Bézier piece
        let mut pts = vec![ctrl[0]];
        let mut i = 0;
        while i + 3 < ctrl.len() {
            let (p0, p1, p2, p3) = (ctrl[i], ctrl[i + 1], ctrl[i + 2], ctrl[i + 3]);
            for s in 1..=8 {
                let t = f64::from(s) / 8.0;
                let u = 1.0 - t;
                let x = u * u * u * p0.0
                    + 3.0 * u * u * t * p1.0
                    + 3.0 * u * t * t * p2.0
                    + t * t * t * p3.0;
                let y = u * u * u * p0.1
                    + 3.0 * u * u * t * p1.1
                    + 3.0 * u * t * t * p2.1
                    + t * t * t * p3.1;
                pts.push((x, y));
            }
            i += 3;
        }
        if a != b {
            lines.push((a, b, pts));
        }
    }
    Some((lines, took))
}

#[allow(clippy::disallowed_methods)] // the bench times both layouts once for the table
fn compare_with_dot() {
    if Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        println!("dot not found: crossing comparison skipped");
        return;
    }
    println!(
        "\nEdge crossings (geometric, edges sharing a node not counted), ours vs dot -Tplain:"
    );
    println!("| graph | nodes | edges | ours | dot | ours ms | dot ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    // dot's result per edge list, so the same graph is laid out by dot only once.
    let mut dot_cache: Vec<(Vec<EdgeKey>, String, String)> = Vec::new();
    let mut row =
        |label: String, keys: &[EdgeKey], catalog: &ClusterCatalog, config: &LayoutConfig| {
            let start = std::time::Instant::now();
            let ours = layout(&[], keys, catalog, None, config);
            let ours_ms = start.elapsed().as_secs_f64() * 1e3;
            let ours_x = geometric_crossings(&our_polylines(&ours));
            let cached = dot_cache.iter().find(|(k, ..)| k.as_slice() == keys);
            let skip = keys.len() > 1_500 && std::env::var_os("DOT_FULL").is_none();
            let cached = if skip {
                Some(&(
                    Vec::new(),
                    "not run (set DOT_FULL=1)".to_string(),
                    "-".to_string(),
                ))
            } else {
                cached
            };
            let (dot_x, dot_ms) = match cached {
                Some((_, x, ms)) => (x.clone(), ms.clone()),
                None => {
                    let (x, ms) = match dot_polylines(keys) {
                        Some((lines, took)) => (
                            geometric_crossings(&lines).to_string(),
                            format!("{:.0}", took.as_secs_f64() * 1e3),
                        ),
                        None => ("no result (failed or timed out)".into(), "-".into()),
                    };
                    dot_cache.push((keys.to_vec(), x.clone(), ms.clone()));
                    (x, ms)
                }
            };
            println!(
                "| {label} | {} | {} | {ours_x} | {dot_x} | {ours_ms:.2} | {dot_ms} |",
                ours.nodes.len(),
                keys.len()
            );
        };
    for seed in 1..=5u64 {
        let w = world(300, 2_500, seed);
        let graph = CallGraph::new(w.observations.clone()).unwrap();
        for hops in [0, 1] {
            let pruned = prune(&graph, &[], NOW, &PruneOptions { context_hops: hops });
            if hops == 1 && pruned.edges.len() > 1_200 {
                continue;
            }
            row(
                format!("pruned, seed {seed}, {hops} hop(s) of context"),
                &pruned.edge_keys(),
                &w.catalog,
                &LayoutConfig::default(),
            );
        }
    }
    let w = world(300, 2_500, 7);
    let keys: Vec<EdgeKey> = w.observations.iter().map(|o| o.edge).collect();
    row(
        "full graph, longest path".into(),
        &keys,
        &w.catalog,
        &LayoutConfig::default(),
    );
    row(
        "full graph, tiers + data centres".into(),
        &keys,
        &w.catalog,
        &LayoutConfig::full_graph(),
    );
    println!();
}

criterion_group!(benches, bench_pipeline, bench_full_layout);

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        compare_with_dot();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
