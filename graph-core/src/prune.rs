//! Pruning the call graph to its anomalous part, minus what people already marked.
//!
//! [`prune`] keeps exactly the edges with an anomaly in any metric and their endpoints,
//! each edge tagged with its anomalous metrics, optionally with `k` hops of quiet context
//! around them. Edges covered by an active [`Mark`] that hides (a known anomaly until it
//! expires, an incident until it ends) are left out, unless the edge got worse than it
//! was when marked: then it is shown and flagged [`Worsened`]. A new trend hides nothing
//! (detection already judges the edge against its new normal), but an edge that is
//! anomalous again and worse than when the trend was marked is flagged the same way.
//! The number of marks that got worse, per kind, feeds the bubbles on the UI's tabs.
//!
//! ```
//! use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
//! use graph_core::model::{ClusterId, EdgeKey, Metric};
//! use graph_core::prune::{prune, PruneOptions};
//!
//! let e = |a, b| EdgeKey { src: ClusterId(a), dst: ClusterId(b) };
//! let graph = CallGraph::new(vec![
//!     EdgeObservation::new(e(0, 1)),
//!     EdgeObservation::new(e(1, 2)).with_anomaly(EdgeAnomaly::new(Metric::Latency, 40.0, 10.0, 3.0, 0)),
//! ]).unwrap();
//! let pruned = prune(&graph, &[], 0, &PruneOptions::default());
//! assert_eq!(pruned.nodes, [ClusterId(1), ClusterId(2)]);
//! assert_eq!(pruned.edges[0].metrics, [Metric::Latency]);
//! ```

use std::collections::HashMap;

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};

use crate::graph::CallGraph;
use crate::model::{ClusterId, EdgeKey, Metric, Tick};

/// What people said about an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// Expected for a while (a feature flag, a migration): hidden until it expires.
    KnownAnomaly,
    /// A real problem being worked on: hidden while open.
    Incident,
    /// The behaviour changed for good: the edge is judged against its new normal.
    NewTrend,
}

impl MarkKind {
    /// Every kind, in display order.
    pub const ALL: [MarkKind; 3] = [
        MarkKind::KnownAnomaly,
        MarkKind::Incident,
        MarkKind::NewTrend,
    ];

    /// The words used on screen, e.g. `known anomaly`.
    pub fn label(self) -> &'static str {
        match self {
            MarkKind::KnownAnomaly => "known anomaly",
            MarkKind::Incident => "incident",
            MarkKind::NewTrend => "new trend",
        }
    }

    fn hides(self) -> bool {
        !matches!(self, MarkKind::NewTrend)
    }
}

/// What a mark covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MarkTarget {
    /// One edge.
    Edge {
        /// The edge.
        edge: EdgeKey,
    },
    /// A whole pruned graph, as it was when marked: these edges.
    Graph {
        /// The edges of the graph at marking.
        edges: Vec<EdgeKey>,
    },
}

impl MarkTarget {
    /// True when the mark covers `edge`.
    pub fn covers(&self, edge: EdgeKey) -> bool {
        match self {
            MarkTarget::Edge { edge: e } => *e == edge,
            MarkTarget::Graph { edges } => edges.contains(&edge),
        }
    }

    fn edges(&self) -> &[EdgeKey] {
        match self {
            MarkTarget::Edge { edge } => std::slice::from_ref(edge),
            MarkTarget::Graph { edges } => edges,
        }
    }
}

/// A mark made by someone on an edge or a pruned graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Unique id.
    pub id: u64,
    /// Kind.
    pub kind: MarkKind,
    /// What it covers.
    pub target: MarkTarget,
    /// The severity when it was marked (for a graph, the largest over its edges).
    pub severity: f64,
    /// When it was made.
    pub created: Tick,
    /// When it stops applying: a known anomaly's expiry, an incident's end. `None`
    /// while open.
    #[serde(default)]
    pub until: Option<Tick>,
    /// Who made it.
    pub author: String,
    /// Why, in their words.
    pub description: String,
}

impl Mark {
    /// True when the mark applies at `now`: made at or before it and not yet over.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// use graph_core::prune::{Mark, MarkKind, MarkTarget};
    /// let edge = EdgeKey { src: ClusterId(0), dst: ClusterId(1) };
    /// let m = Mark { id: 1, kind: MarkKind::KnownAnomaly, target: MarkTarget::Edge { edge },
    ///     severity: 1.0, created: 100, until: Some(200), author: "bob".into(),
    ///     description: "flag X on".into() };
    /// assert!(!m.is_active(99) && m.is_active(100) && !m.is_active(200));
    /// ```
    pub fn is_active(&self, now: Tick) -> bool {
        self.created <= now && self.until.is_none_or(|u| now < u)
    }
}

/// Options of [`prune`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruneOptions {
    /// Add the quiet edges within this many hops (either direction) of the anomalous
    /// nodes, as context. 0 keeps only anomalous edges.
    pub context_hops: u32,
}

/// Why an edge is in the pruned graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeRole {
    /// It has an anomaly.
    Anomalous,
    /// It is quiet, shown as context around the anomalous part.
    Context,
}

/// An edge shown although a mark covers it, because it got worse.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Worsened {
    /// The mark.
    pub mark_id: u64,
    /// Its kind.
    pub kind: MarkKind,
    /// The severity recorded with the mark.
    pub recorded: f64,
    /// The edge's severity now.
    pub current: f64,
}

/// One edge of the pruned graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunedEdge {
    /// The edge.
    pub edge: EdgeKey,
    /// Anomalous or context.
    pub role: EdgeRole,
    /// Its anomalous metrics, sorted (empty for context).
    pub metrics: Vec<Metric>,
    /// Largest severity of its anomalies (0 for context).
    pub severity: f64,
    /// Earliest onset of its anomalies.
    pub onset: Option<Tick>,
    /// Set when a mark covers it and it got worse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worsened: Option<Worsened>,
}

/// An anomalous edge left out because a mark covers it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HiddenEdge {
    /// The edge.
    pub edge: EdgeKey,
    /// The mark that hides it.
    pub mark_id: u64,
    /// Its kind.
    pub kind: MarkKind,
    /// The edge's severity now (not above the recorded one).
    pub severity: f64,
}

/// Marks that got worse, per kind: the bubbles on the UI's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorsenedCounts {
    /// Known anomalies that got worse.
    pub known_anomalies: u32,
    /// Open incidents that got worse.
    pub incidents: u32,
    /// New trends that got worse.
    pub new_trends: u32,
}

impl WorsenedCounts {
    /// The count for `kind`.
    pub fn get(&self, kind: MarkKind) -> u32 {
        match kind {
            MarkKind::KnownAnomaly => self.known_anomalies,
            MarkKind::Incident => self.incidents,
            MarkKind::NewTrend => self.new_trends,
        }
    }

    fn bump(&mut self, kind: MarkKind) {
        match kind {
            MarkKind::KnownAnomaly => self.known_anomalies += 1,
            MarkKind::Incident => self.incidents += 1,
            MarkKind::NewTrend => self.new_trends += 1,
        }
    }
}

/// The anomalous part of the call graph at one tick.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PrunedGraph {
    /// The tick it was pruned at.
    pub tick: Tick,
    /// Endpoints of the shown edges, ascending.
    pub nodes: Vec<ClusterId>,
    /// Shown edges, sorted by edge.
    pub edges: Vec<PrunedEdge>,
    /// Anomalous edges hidden by a mark, sorted by edge.
    pub hidden: Vec<HiddenEdge>,
    /// Marks that got worse, per kind.
    pub worsened: WorsenedCounts,
}

impl PrunedGraph {
    /// The shown edge `edge`.
    pub fn edge(&self, edge: EdgeKey) -> Option<&PrunedEdge> {
        self.edges
            .binary_search_by_key(&edge, |e| e.edge)
            .ok()
            .map(|i| &self.edges[i])
    }

    /// The shown anomalous edges.
    pub fn anomalous(&self) -> impl Iterator<Item = &PrunedEdge> + '_ {
        self.edges.iter().filter(|e| e.role == EdgeRole::Anomalous)
    }

    /// The keys of all shown edges.
    pub fn edge_keys(&self) -> Vec<EdgeKey> {
        self.edges.iter().map(|e| e.edge).collect()
    }
}

/// Prunes `graph` to its anomalous edges at `now`, applying `marks` (inactive ones are
/// ignored) and adding `options.context_hops` hops of context.
///
/// An anomalous edge covered by active hiding marks is hidden unless its severity now is
/// above the recorded severity of one of them; a graph-wide mark got worse when the
/// largest severity over its edges did. Every mark that got worse is flagged on its
/// shown edges and counted once per kind.
///
/// # Complexity
///
/// O(E + M·m + V) for E edges, M marks covering m edges each, V nodes; context adds
/// O(V + E) per hop.
///
/// # Example
///
/// ```
/// use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
/// use graph_core::model::{ClusterId, EdgeKey, Metric};
/// use graph_core::prune::{prune, Mark, MarkKind, MarkTarget, PruneOptions};
///
/// let edge = EdgeKey { src: ClusterId(0), dst: ClusterId(1) };
/// let obs = |sev| EdgeObservation::new(edge).with_anomaly(EdgeAnomaly::new(Metric::Latency, 40.0, 10.0, sev, 0));
/// let mark = Mark { id: 7, kind: MarkKind::KnownAnomaly, target: MarkTarget::Edge { edge },
///     severity: 2.0, created: 0, until: Some(7_200), author: "bob".into(),
///     description: "flag X on for two hours".into() };
///
/// let quiet = prune(&CallGraph::new(vec![obs(1.5)]).unwrap(), &[mark.clone()], 600, &PruneOptions::default());
/// assert!(quiet.edges.is_empty() && quiet.hidden.len() == 1);
///
/// let worse = prune(&CallGraph::new(vec![obs(3.0)]).unwrap(), &[mark], 600, &PruneOptions::default());
/// assert_eq!(worse.edges[0].worsened.unwrap().mark_id, 7);
/// assert_eq!(worse.worsened.known_anomalies, 1);
/// ```
pub fn prune(graph: &CallGraph, marks: &[Mark], now: Tick, options: &PruneOptions) -> PrunedGraph {
    let obs = graph.observations();
    let position = |edge: EdgeKey| obs.binary_search_by_key(&edge, |o| o.edge).ok();

    // Marks that apply now, with whether each got worse.
    let mut covering: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut active: Vec<(&Mark, bool)> = Vec::new();
    for m in marks.iter().filter(|m| m.is_active(now)) {
        let mi = active.len();
        let mut current = 0.0f64;
        for &e in m.target.edges() {
            if let Some(p) = position(e) {
                current = current.max(obs[p].severity());
                if obs[p].is_anomalous() {
                    covering.entry(p).or_default().push(mi);
                }
            }
        }
        active.push((m, current > m.severity));
    }

    let mut worsened = WorsenedCounts::default();
    for (m, w) in &active {
        if *w {
            worsened.bump(m.kind);
        }
    }

    let mut edges = Vec::new();
    let mut hidden = Vec::new();
    let mut keep = vec![false; obs.len()];
    for (p, o) in obs.iter().enumerate() {
        if !o.is_anomalous() {
            continue;
        }
        let severity = o.severity();
        let marks_here: &[usize] = covering.get(&p).map_or(&[], |v| v.as_slice());
        // The worsened mark to flag: hiding marks first, then the lowest id.
        let flag = marks_here
            .iter()
            .map(|&mi| active[mi])
            .filter(|(_, w)| *w)
            .min_by_key(|(m, _)| (!m.kind.hides(), m.id));
        let hider = marks_here
            .iter()
            .map(|&mi| active[mi].0)
            .filter(|m| m.kind.hides())
            .min_by_key(|m| m.id);
        if let (Some(m), None) = (hider, flag.filter(|(m, _)| m.kind.hides())) {
            hidden.push(HiddenEdge {
                edge: o.edge,
                mark_id: m.id,
                kind: m.kind,
                severity,
            });
            continue;
        }
        keep[p] = true;
        edges.push(PrunedEdge {
            edge: o.edge,
            role: EdgeRole::Anomalous,
            metrics: o.anomalous_metrics(),
            severity,
            onset: o.onset(),
            worsened: flag.map(|(m, _)| Worsened {
                mark_id: m.id,
                kind: m.kind,
                recorded: m.severity,
                current: severity,
            }),
        });
    }

    if options.context_hops > 0 {
        add_context(graph, &mut keep, &mut edges, &hidden, options.context_hops);
    }

    let mut nodes: Vec<ClusterId> = edges
        .iter()
        .flat_map(|e| [e.edge.src, e.edge.dst])
        .collect();
    nodes.sort();
    nodes.dedup();
    PrunedGraph {
        tick: now,
        nodes,
        edges,
        hidden,
        worsened,
    }
}

/// Adds the quiet edges explored by a breadth-first search of `hops` hops (ignoring
/// direction) from the endpoints of the kept edges. Hidden edges stay hidden.
fn add_context(
    graph: &CallGraph,
    keep: &mut [bool],
    edges: &mut Vec<PrunedEdge>,
    hidden: &[HiddenEdge],
    hops: u32,
) {
    let g = graph.petgraph();
    let obs = graph.observations();
    let mut dist: Vec<u32> = vec![u32::MAX; g.node_count()];
    let mut frontier: Vec<NodeIndex> = Vec::new();
    for n in g.node_indices() {
        let touches = g
            .edges_directed(n, petgraph::Direction::Outgoing)
            .chain(g.edges_directed(n, petgraph::Direction::Incoming))
            .any(|e| keep[*e.weight()]);
        if touches {
            dist[n.index()] = 0;
            frontier.push(n);
        }
    }
    let is_hidden = |p: usize| {
        hidden
            .binary_search_by_key(&obs[p].edge, |h| h.edge)
            .is_ok()
    };
    for d in 0..hops {
        let mut next = Vec::new();
        for &n in &frontier {
            for e in g
                .edges_directed(n, petgraph::Direction::Outgoing)
                .chain(g.edges_directed(n, petgraph::Direction::Incoming))
            {
                let p = *e.weight();
                if keep[p] || is_hidden(p) {
                    continue;
                }
                keep[p] = true;
                let other = if e.source() == n {
                    e.target()
                } else {
                    e.source()
                };
                if dist[other.index()] == u32::MAX {
                    dist[other.index()] = d + 1;
                    next.push(other);
                }
            }
        }
        frontier = next;
    }
    let shown: Vec<EdgeKey> = edges.iter().map(|e| e.edge).collect();
    for (p, o) in obs.iter().enumerate() {
        if keep[p] && shown.binary_search(&o.edge).is_err() {
            edges.push(PrunedEdge {
                edge: o.edge,
                role: EdgeRole::Context,
                metrics: Vec::new(),
                severity: 0.0,
                onset: None,
                worsened: None,
            });
        }
    }
    edges.sort_by_key(|e| e.edge);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeAnomaly, EdgeObservation};
    use proptest::prelude::*;

    fn key(a: u32, b: u32) -> EdgeKey {
        EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        }
    }

    fn anomalous(a: u32, b: u32, metric: Metric, severity: f64) -> EdgeObservation {
        EdgeObservation::new(key(a, b))
            .with_anomaly(EdgeAnomaly::new(metric, 2.0, 1.0, severity, 300))
    }

    fn mark(id: u64, kind: MarkKind, target: MarkTarget, severity: f64) -> Mark {
        Mark {
            id,
            kind,
            target,
            severity,
            created: 0,
            until: None,
            author: "ann".into(),
            description: "why".into(),
        }
    }

    #[test]
    fn edges_are_tagged_by_their_anomalous_metrics() {
        let o = anomalous(0, 1, Metric::ErrorRate, 1.0).with_anomaly(EdgeAnomaly::new(
            Metric::Latency,
            2.0,
            1.0,
            2.0,
            0,
        ));
        let g = CallGraph::new(vec![o, EdgeObservation::new(key(1, 2))]).unwrap();
        let p = prune(&g, &[], 0, &PruneOptions::default());
        assert_eq!(p.edges.len(), 1);
        assert_eq!(p.edges[0].metrics, [Metric::Latency, Metric::ErrorRate]);
        assert_eq!((p.edges[0].severity, p.edges[0].onset), (2.0, Some(0)));
    }

    #[test]
    fn open_incident_hides_until_worse_and_expired_marks_do_nothing() {
        let g = CallGraph::new(vec![
            anomalous(0, 1, Metric::Latency, 2.0),
            anomalous(1, 2, Metric::Latency, 5.0),
            anomalous(2, 3, Metric::Requests, 1.0),
        ])
        .unwrap();
        let incident = mark(
            1,
            MarkKind::Incident,
            MarkTarget::Graph {
                edges: vec![key(0, 1), key(1, 2)],
            },
            6.0,
        );
        let mut expired = mark(
            2,
            MarkKind::KnownAnomaly,
            MarkTarget::Edge { edge: key(2, 3) },
            9.0,
        );
        expired.until = Some(100);
        let p = prune(
            &g,
            &[incident.clone(), expired],
            600,
            &PruneOptions::default(),
        );
        assert_eq!(p.edge_keys(), [key(2, 3)]);
        assert_eq!(p.hidden.len(), 2);
        assert_eq!(p.worsened, WorsenedCounts::default());

        // The graph-wide mark got worse: all its anomalous edges come back, flagged.
        let mut lower = incident;
        lower.severity = 4.0;
        let p = prune(&g, &[lower], 600, &PruneOptions::default());
        assert_eq!(p.edges.len(), 3);
        assert!(p.edge(key(0, 1)).unwrap().worsened.is_some());
        assert!(p.edge(key(2, 3)).unwrap().worsened.is_none());
        assert_eq!(p.worsened.incidents, 1);
    }

    #[test]
    fn new_trends_never_hide_but_are_flagged_when_worse() {
        let g = CallGraph::new(vec![anomalous(0, 1, Metric::Latency, 2.0)]).unwrap();
        let t = mark(
            3,
            MarkKind::NewTrend,
            MarkTarget::Edge { edge: key(0, 1) },
            1.0,
        );
        let p = prune(&g, &[t], 10, &PruneOptions::default());
        assert_eq!(p.edges[0].worsened.unwrap().kind, MarkKind::NewTrend);
        assert_eq!(p.worsened.new_trends, 1);
    }

    #[test]
    fn context_hops_add_quiet_neighbours_but_not_hidden_edges() {
        let g = CallGraph::new(vec![
            EdgeObservation::new(key(0, 1)),
            anomalous(1, 2, Metric::Latency, 1.0),
            EdgeObservation::new(key(2, 3)),
            EdgeObservation::new(key(3, 4)),
            anomalous(5, 2, Metric::Latency, 1.0),
        ])
        .unwrap();
        let hide = mark(
            1,
            MarkKind::KnownAnomaly,
            MarkTarget::Edge { edge: key(5, 2) },
            3.0,
        );
        let one = prune(
            &g,
            std::slice::from_ref(&hide),
            0,
            &PruneOptions { context_hops: 1 },
        );
        assert_eq!(one.edge_keys(), [key(0, 1), key(1, 2), key(2, 3)]);
        assert_eq!(one.edge(key(0, 1)).unwrap().role, EdgeRole::Context);
        let two = prune(&g, &[hide], 0, &PruneOptions { context_hops: 2 });
        assert_eq!(two.nodes.len(), 5);
    }

    fn arb_graph() -> impl Strategy<Value = Vec<EdgeObservation>> {
        proptest::collection::btree_map((0u32..25, 0u32..25), (any::<bool>(), 0.0f64..5.0), 0..150)
            .prop_map(|m| {
                m.into_iter()
                    .map(|((a, b), (bad, sev))| {
                        if bad {
                            anomalous(a, b, Metric::Latency, sev)
                        } else {
                            EdgeObservation::new(key(a, b))
                        }
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn pruning_keeps_exactly_anomalous_edges_and_their_endpoints(obs in arb_graph()) {
            let g = CallGraph::new(obs.clone()).unwrap();
            let p = prune(&g, &[], 0, &PruneOptions::default());
            let mut want: Vec<EdgeKey> =
                obs.iter().filter(|o| o.is_anomalous()).map(|o| o.edge).collect();
            want.sort();
            prop_assert_eq!(p.edge_keys(), want.clone());
            let mut nodes: Vec<ClusterId> = want.iter().flat_map(|e| [e.src, e.dst]).collect();
            nodes.sort();
            nodes.dedup();
            prop_assert_eq!(p.nodes, nodes);
            prop_assert!(p.hidden.is_empty());
        }

        #[test]
        fn context_is_a_superset_and_never_hangs_on_cycles(obs in arb_graph(), hops in 0u32..4) {
            let g = CallGraph::new(obs).unwrap();
            let base = prune(&g, &[], 0, &PruneOptions::default());
            let wide = prune(&g, &[], 0, &PruneOptions { context_hops: hops });
            for e in base.anomalous() {
                prop_assert!(wide.edge(e.edge).is_some());
            }
            prop_assert_eq!(base.anomalous().count(), wide.anomalous().count());
        }
    }
}
