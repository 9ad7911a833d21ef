//! Replay of a snapshot bundle, pure and tested natively: one analysis per tick for the
//! main screen's components, one layout for the whole range so nodes stay where they
//! are from step to step, thresholds applied by graph-core (the same code the server
//! runs), and the difference between two ticks as rows and as graph classes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use graph_core::api::{AnalysisResponse, ClusterInfo};
use graph_core::layout::{Layout, LayoutConfig, layout};
use graph_core::model::{ClusterCatalog, ClusterId, EdgeKey, Tick};
use graph_core::snapshot::{Bundle, BundleTick, SnapshotDiff, Thresholds, TickSnapshot};

/// A bundle ready to replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The bundle as read (from the server or a file).
    pub bundle: Arc<Bundle>,
    /// One layout for every node and edge shown anywhere in the range.
    pub layout: Arc<Layout>,
    /// Where it came from: `server` or a file name.
    pub source: String,
}

impl Replay {
    /// Prepares `bundle`: lays out the union of every tick's graph once.
    pub fn new(bundle: Bundle, source: String) -> Replay {
        let layout = union_layout(&bundle.ticks, &bundle.clusters);
        Replay {
            bundle: Arc::new(bundle),
            layout: Arc::new(layout),
            source,
        }
    }

    /// The ticks, ascending.
    pub fn ticks(&self) -> Vec<Tick> {
        self.bundle.ticks.iter().map(BundleTick::tick).collect()
    }

    /// The data sources that had gone quiet when the tick at position `i` was analysed,
    /// for the stale-source banner.
    pub fn stale_sources(&self, i: usize) -> &[String] {
        self.bundle
            .ticks
            .get(i)
            .map_or(&[], |t| t.stale_sources.as_slice())
    }

    /// Whether the bundle predates the storms, counts and sources kept with each tick
    /// (format version 1): they show as none.
    pub fn without_screen_fields(&self) -> bool {
        self.bundle.format_version < 2
    }

    /// The analysis to show at position `i`, with `thresholds` applied when they are not
    /// the defaults, drawn on the range's layout. The storms, detection's counts and the
    /// sources behind are the tick's as captured, whatever the thresholds.
    pub fn at(&self, i: usize, thresholds: &Thresholds) -> Option<Arc<AnalysisResponse>> {
        let tick = self.bundle.ticks.get(i)?;
        let tick = if *thresholds == Thresholds::default() {
            tick.clone()
        } else {
            tick.recompute(&self.bundle.clusters, thresholds).ok()?
        };
        Some(Arc::new(analysis_for(
            &self.bundle,
            tick,
            Some(&self.layout),
        )))
    }
}

/// The wire form the main screen's components read, for one tick of a bundle. With
/// `on`, the tick is drawn on that layout (restricted to its own nodes and edges).
pub fn analysis_for(bundle: &Bundle, tick: BundleTick, on: Option<&Layout>) -> AnalysisResponse {
    let BundleTick {
        snapshot: mut snap,
        summary,
        storms,
        sources_behind,
        stale_sources: _,
    } = tick;
    if let Some(l) = on {
        snap.layout = restrict(l, &snap);
    }
    let mut ids: Vec<ClusterId> = snap.pruned.nodes.clone();
    ids.extend(snap.ranking.candidates.iter().map(|c| c.cluster));
    ids.sort();
    ids.dedup();
    let clusters = ids
        .into_iter()
        .filter_map(|id| ClusterInfo::of(&bundle.clusters, id))
        .collect();
    AnalysisResponse {
        tick: snap.tick,
        latest_tick: bundle.to,
        earliest_tick: bundle.from,
        clusters,
        snapshot: snap,
        summary,
        storms,
        sources_behind,
        analysed_at: 0,
    }
}

/// One layout for all the ticks: every node and edge shown at any of them.
pub fn union_layout(ticks: &[BundleTick], catalog: &ClusterCatalog) -> Layout {
    let mut nodes: Vec<ClusterId> = Vec::new();
    let mut edges: Vec<EdgeKey> = Vec::new();
    for t in ticks.iter().map(|t| &t.snapshot) {
        nodes.extend(t.pruned.nodes.iter().copied());
        edges.extend(t.pruned.edges.iter().map(|e| e.edge));
    }
    nodes.sort();
    nodes.dedup();
    edges.sort();
    edges.dedup();
    layout(&nodes, &edges, catalog, None, &LayoutConfig::default())
}

/// `l` with only the nodes and edges `snap` shows; the bounding box stays the whole
/// layout's, so fitting does not jump between ticks.
pub fn restrict(l: &Layout, snap: &TickSnapshot) -> Layout {
    let nodes: HashSet<ClusterId> = snap.pruned.nodes.iter().copied().collect();
    let edges: HashSet<EdgeKey> = snap.pruned.edges.iter().map(|e| e.edge).collect();
    let mut out = l.clone();
    out.nodes.retain(|n| nodes.contains(&n.cluster));
    out.edges.retain(|e| edges.contains(&e.edge));
    out
}

/// How an edge differs between two ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Shown only at the later tick.
    Appeared,
    /// Shown only at the earlier tick.
    Disappeared,
    /// More severe at the later tick.
    Worse,
    /// Less severe at the later tick.
    Better,
    /// As severe (within 1 %), with other metrics anomalous.
    Metrics,
}

impl Change {
    /// The CSS class on the graph.
    pub fn class(self) -> &'static str {
        match self {
            Change::Appeared => "diff-appeared",
            Change::Disappeared => "diff-disappeared",
            Change::Worse => "diff-worse",
            Change::Better => "diff-better",
            Change::Metrics => "diff-metrics",
        }
    }

    /// In words.
    pub fn label(self) -> &'static str {
        match self {
            Change::Appeared => "appeared",
            Change::Disappeared => "disappeared",
            Change::Worse => "got worse",
            Change::Better => "got better",
            Change::Metrics => "other metrics",
        }
    }
}

/// One row of the difference list.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    /// Caller.
    pub src: String,
    /// Callee.
    pub dst: String,
    /// What happened.
    pub change: Change,
    /// Severity before (`None`: not shown then).
    pub before: Option<f64>,
    /// Severity after.
    pub after: Option<f64>,
}

/// A rank that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRow {
    /// The cluster.
    pub name: String,
    /// Rank before (`None`: not a candidate).
    pub before: Option<u32>,
    /// Rank after.
    pub after: Option<u32>,
}

/// The difference between two ticks, named.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffView {
    /// The earlier tick.
    pub from: Tick,
    /// The later tick.
    pub to: Tick,
    /// Edges, appeared first, then disappeared, worse, better; by severity within each.
    pub edges: Vec<DiffRow>,
    /// Nodes shown only at the later tick.
    pub nodes_appeared: Vec<String>,
    /// Nodes shown only at the earlier tick.
    pub nodes_disappeared: Vec<String>,
    /// Ranks that changed, by the later rank (new candidates first).
    pub ranks: Vec<RankRow>,
}

impl DiffView {
    /// The edges' changes by names, for the graph.
    pub fn classes(&self) -> HashMap<(String, String), Change> {
        self.edges
            .iter()
            .map(|r| ((r.src.clone(), r.dst.clone()), r.change))
            .collect()
    }
}

/// What changed from `a` to `b` (graph-core's [`SnapshotDiff`], named and ordered).
pub fn diff_view(catalog: &ClusterCatalog, a: &TickSnapshot, b: &TickSnapshot) -> DiffView {
    let d: SnapshotDiff = b.diff(a);
    let name = |id: ClusterId| catalog.label(id);
    let sev = |s: &TickSnapshot, e: EdgeKey| s.pruned.edge(e).map(|x| x.severity);
    let mut edges: Vec<DiffRow> = Vec::new();
    let row = |e: EdgeKey, change: Change| DiffRow {
        src: name(e.src),
        dst: name(e.dst),
        change,
        before: sev(a, e),
        after: sev(b, e),
    };
    edges.extend(d.added.iter().map(|&e| row(e, Change::Appeared)));
    edges.extend(d.removed.iter().map(|&e| row(e, Change::Disappeared)));
    for c in &d.changed {
        let tolerance = 0.01 * c.before.abs().max(c.after.abs());
        if c.after > c.before + tolerance {
            edges.push(row(c.edge, Change::Worse));
        } else if c.after < c.before - tolerance {
            edges.push(row(c.edge, Change::Better));
        } else {
            let metrics = |s: &TickSnapshot| s.pruned.edge(c.edge).map(|e| e.metrics.clone());
            if metrics(a) != metrics(b) {
                edges.push(row(c.edge, Change::Metrics));
            }
        }
    }
    let order = |c: Change| match c {
        Change::Appeared => 0,
        Change::Disappeared => 1,
        Change::Worse => 2,
        Change::Better => 3,
        Change::Metrics => 4,
    };
    edges.sort_by(|x, y| {
        let size = |r: &DiffRow| {
            let (b, a) = (r.before.unwrap_or(0.0), r.after.unwrap_or(0.0));
            (a - b).abs()
        };
        order(x.change)
            .cmp(&order(y.change))
            .then(size(y).total_cmp(&size(x)))
            .then((&x.src, &x.dst).cmp(&(&y.src, &y.dst)))
    });
    let set = |s: &TickSnapshot| s.pruned.nodes.iter().copied().collect::<HashSet<_>>();
    let (na, nb) = (set(a), set(b));
    let mut nodes_appeared: Vec<String> = nb.difference(&na).map(|&c| name(c)).collect();
    let mut nodes_disappeared: Vec<String> = na.difference(&nb).map(|&c| name(c)).collect();
    nodes_appeared.sort();
    nodes_disappeared.sort();
    let mut ranks: Vec<RankRow> = d
        .rank_changes
        .iter()
        .map(|r| RankRow {
            name: name(r.cluster),
            before: r.before,
            after: r.after,
        })
        .collect();
    ranks.sort_by_key(|r| (r.after.unwrap_or(u32::MAX), r.before.unwrap_or(u32::MAX)));
    DiffView {
        from: d.from,
        to: d.to,
        edges,
        nodes_appeared,
        nodes_disappeared,
        ranks,
    }
}

/// The tick of the largest total severity in `ticks`: the peak of an incident.
pub fn peak(ticks: &[BundleTick]) -> Option<Tick> {
    ticks
        .iter()
        .map(|t| &t.snapshot)
        .map(|t| {
            (
                t.tick,
                t.pruned.anomalous().map(|e| e.severity).sum::<f64>(),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .filter(|(_, s)| *s > 0.0)
        .map(|(t, _)| t)
}

/// The onset of the incident at the peak: the earliest onset of the anomalous edges
/// into the top-ranked candidate at the peak (of the most severe edge when nothing is
/// ranked), as the first tick at or after it (the first tick when it is earlier).
pub fn onset(ticks: &[BundleTick]) -> Option<Tick> {
    let at = peak(ticks)?;
    let snap = &ticks.iter().find(|t| t.tick() == at)?.snapshot;
    let into_top = snap.ranking.candidates.first().and_then(|c| {
        snap.pruned
            .anomalous()
            .filter(|e| e.edge.dst == c.cluster)
            .filter_map(|e| e.onset)
            .min()
    });
    let from = into_top.or_else(|| {
        snap.pruned
            .anomalous()
            .max_by(|a, b| a.severity.total_cmp(&b.severity))
            .and_then(|e| e.onset)
    })?;
    ticks.iter().map(BundleTick::tick).find(|t| *t >= from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
    use graph_core::link::Links;
    use graph_core::model::{BucketWidth, Cluster, Metric};
    use graph_core::prune::{PruneOptions, prune};
    use graph_core::rank::{RankConfig, rank};

    fn catalog() -> ClusterCatalog {
        let mut c = ClusterCatalog::new();
        for (n, tier) in [
            ("web", "frontend"),
            ("api", "api"),
            ("db", "storage"),
            ("cache", "cache"),
        ] {
            c.insert(Cluster {
                name: n.into(),
                service: n.into(),
                dc: None,
                tier: Some(tier.into()),
            });
        }
        c
    }

    fn e(a: u32, b: u32) -> EdgeKey {
        EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        }
    }

    /// A tick where each `(src, dst, severity)` is anomalous in latency.
    fn tick(cat: &ClusterCatalog, t: Tick, slow: &[(u32, u32, f64)]) -> TickSnapshot {
        let obs: Vec<EdgeObservation> = slow
            .iter()
            .map(|&(a, b, s)| {
                EdgeObservation::new(e(a, b))
                    .with_requests(100.0, 100.0)
                    .with_latency(10.0, 10.0 + 10.0 * s)
                    .with_anomaly(EdgeAnomaly::new(
                        Metric::Latency,
                        10.0 + 10.0 * s,
                        10.0,
                        s,
                        t - 300,
                    ))
            })
            .collect();
        let graph = CallGraph::new(obs).unwrap();
        let pruned = prune(&graph, &[], t, &PruneOptions::default());
        let ranking = rank(
            &graph,
            &pruned,
            &Links::default(),
            cat,
            &RankConfig::default(),
        );
        let drawn = layout(
            &pruned.nodes,
            &pruned.edge_keys(),
            cat,
            None,
            &LayoutConfig::default(),
        );
        TickSnapshot::capture(&graph, pruned, ranking, &[], Links::default(), drawn)
    }

    fn bundle() -> Bundle {
        let cat = catalog();
        let mut b = Bundle::new(BucketWidth::FIVE_MINUTES, cat.clone());
        b.push(TickSnapshot::empty(600)).unwrap();
        b.push(tick(&cat, 900, &[(1, 2, 2.0)])).unwrap();
        b.push(tick(&cat, 1200, &[(0, 1, 3.0), (1, 2, 6.0)]))
            .unwrap();
        b.push(tick(&cat, 1500, &[(0, 1, 1.0), (1, 3, 4.0)]))
            .unwrap();
        b
    }

    #[test]
    fn nodes_keep_their_places_across_the_range() {
        let r = Replay::new(bundle(), "server".into());
        let place = |i: usize, name: &str| {
            let a = r.at(i, &Thresholds::default()).unwrap();
            let id = r.bundle.clusters.id(name).unwrap();
            let n = a
                .snapshot
                .layout
                .nodes
                .iter()
                .find(|n| n.cluster == id)
                .map(|n| (n.x, n.y));
            (n, (a.snapshot.layout.min.x, a.snapshot.layout.max.x))
        };
        let (api1, box1) = place(1, "api");
        let (api2, box2) = place(2, "api");
        let (api3, _) = place(3, "api");
        assert!(api1.is_some());
        assert_eq!(api1, api2);
        assert_eq!(api2, api3);
        assert_eq!(box1, box2, "the bounding box is the range's");
        // Only the tick's own graph is drawn.
        let a1 = r.at(1, &Thresholds::default()).unwrap();
        assert_eq!(a1.snapshot.layout.edges.len(), 1);
        assert_eq!(a1.clusters.len(), 2);
        assert_eq!(
            r.at(0, &Thresholds::default())
                .unwrap()
                .snapshot
                .layout
                .nodes
                .len(),
            0
        );
    }

    #[test]
    fn thresholds_prune_and_rank_again() {
        let r = Replay::new(bundle(), "incident.json".into());
        let high = Thresholds {
            min_severity: 5.0,
            ..Thresholds::default()
        };
        let a = r.at(2, &high).unwrap();
        let shown: Vec<EdgeKey> = a.snapshot.pruned.edges.iter().map(|e| e.edge).collect();
        assert_eq!(shown, [e(1, 2)]);
        assert_eq!(a.snapshot.ranking.candidates[0].name, "db");
        assert!(r.at(1, &high).unwrap().snapshot.pruned.edges.is_empty());
    }

    #[test]
    fn the_difference_names_appeared_disappeared_worse_better_and_ranks() {
        let b = bundle();
        let d = diff_view(&b.clusters, &b.ticks[1].snapshot, &b.ticks[2].snapshot);
        let rows: Vec<(String, Change)> = d
            .edges
            .iter()
            .map(|r| (format!("{}>{}", r.src, r.dst), r.change))
            .collect();
        assert_eq!(
            rows,
            [
                ("web>api".to_string(), Change::Appeared),
                ("api>db".to_string(), Change::Worse)
            ]
        );
        assert_eq!(d.nodes_appeared, ["web"]);
        assert!(d.nodes_disappeared.is_empty());
        let d = diff_view(&b.clusters, &b.ticks[2].snapshot, &b.ticks[3].snapshot);
        let changes: Vec<Change> = d.edges.iter().map(|r| r.change).collect();
        assert_eq!(
            changes,
            [Change::Appeared, Change::Disappeared, Change::Better]
        );
        assert_eq!(d.nodes_appeared, ["cache"]);
        assert_eq!(d.nodes_disappeared, ["db"]);
        assert!(d.ranks.iter().any(|r| r.name == "db" && r.after.is_none()));
        assert_eq!(
            d.classes()[&("web".to_string(), "api".to_string())],
            Change::Better
        );
    }

    #[test]
    fn each_tick_shows_its_storms_counts_and_sources_whatever_the_thresholds() {
        let mut b = bundle();
        let t = &mut b.ticks[2];
        t.storms.push(graph_core::detect::DcStorm {
            dc: "dc2".into(),
            tick: 1200,
            edges_affected: 40,
            edges_total: 90,
            share: 40.0 / 90.0,
        });
        t.summary.series = 900;
        t.summary.detections = 2;
        t.sources_behind.push("dc3-collector".into());
        t.stale_sources.push("dc4-collector".into());
        let r = Replay::new(b, "incident.json".into());
        assert!(!r.without_screen_fields());
        for th in [
            Thresholds::default(),
            Thresholds {
                min_severity: 1000.0,
                ..Thresholds::default()
            },
        ] {
            let a = r.at(2, &th).unwrap();
            assert_eq!(a.storms.len(), 1);
            assert_eq!((a.summary.series, a.summary.detections), (900, 2));
            assert_eq!(a.sources_behind, ["dc3-collector"]);
        }
        assert_eq!(r.stale_sources(2), ["dc4-collector"]);
        // The other ticks had none.
        let a = r.at(1, &Thresholds::default()).unwrap();
        assert!(a.storms.is_empty() && a.sources_behind.is_empty());
        assert!(r.stale_sources(1).is_empty() && r.stale_sources(99).is_empty());
        // A version-1 file says it has none of them.
        let mut old = bundle();
        old.format_version = 1;
        assert!(Replay::new(old, "old.json".into()).without_screen_fields());
    }

    #[test]
    fn onset_and_peak_of_a_range() {
        let b = bundle();
        assert_eq!(onset(&b.ticks), Some(900));
        assert_eq!(peak(&b.ticks), Some(1200));
        assert_eq!(peak(&b.ticks[..1]), None);
    }
}
