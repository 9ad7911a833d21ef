//! The cluster call graph of one tick: every edge with what was observed on it.
//!
//! [`EdgeObservation`] is the per-edge input of pruning and ranking: the current and
//! expected value of requests, latency and error rate, and the anomalies found on the
//! edge. It is independent of how the anomalies were found, so the server fills it from
//! the detector and tests build it by hand. Ranking needs it for **every** edge, not only
//! the anomalous ones: a quiet downstream edge with a small delta is what shows that a
//! node's own calls do not explain its growth.
//!
//! [`CallGraph`] holds the observations in a petgraph [`DiGraph`] over [`ClusterId`]s.
//! Call graphs have cycles; nothing here assumes otherwise.
//!
//! ```
//! use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
//! use graph_core::model::{ClusterId, EdgeKey, Metric};
//!
//! let edge = EdgeKey { src: ClusterId(0), dst: ClusterId(1) };
//! let obs = EdgeObservation::new(edge)
//!     .with_requests(1_000.0, 980.0)
//!     .with_latency(12.0, 52.0)
//!     .with_anomaly(EdgeAnomaly::new(Metric::Latency, 52.0, 12.0, 4.0, 600));
//! let back = EdgeObservation::new(EdgeKey { src: ClusterId(1), dst: ClusterId(0) });
//! let graph = CallGraph::new(vec![obs, back]).unwrap();
//! assert_eq!((graph.node_count(), graph.edge_count()), (2, 2));
//! assert!(graph.observation(edge).unwrap().is_anomalous());
//! ```

use std::collections::HashMap;

use petgraph::Direction as PgDirection;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::detect::BaselineKind;
use crate::model::{ClusterId, EdgeKey, Metric, Tick};
use crate::{Error, Result};

/// The current and the expected value of one metric on one edge. Either may be unknown
/// (no requests, no baseline yet); non-finite values count as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Delta {
    /// The value at this tick.
    pub current: Option<f64>,
    /// What was expected (the baseline).
    pub expected: Option<f64>,
    /// Which baseline the expectation came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineKind>,
}

impl Delta {
    /// A delta with both values known.
    pub fn new(expected: f64, current: f64) -> Self {
        Delta {
            current: Some(current),
            expected: Some(expected),
            baseline: None,
        }
    }

    /// The same delta, naming the baseline of its expectation.
    pub fn with_baseline(mut self, kind: BaselineKind) -> Self {
        self.baseline = Some(kind);
        self
    }

    /// The current value, if known and finite.
    pub fn current(&self) -> Option<f64> {
        self.current.filter(|v| v.is_finite())
    }

    /// The expected value, if known and finite.
    pub fn expected(&self) -> Option<f64> {
        self.expected.filter(|v| v.is_finite())
    }

    /// `current − expected`, when both are known.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::Delta;
    /// assert_eq!(Delta::new(10.0, 12.5).change(), Some(2.5));
    /// assert_eq!(Delta { current: Some(1.0), expected: None, baseline: None }.change(), None);
    /// ```
    pub fn change(&self) -> Option<f64> {
        Some(self.current()? - self.expected()?)
    }

    /// `current / expected`, when both are known and the expectation is positive.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::Delta;
    /// assert_eq!(Delta::new(10.0, 31.0).ratio(), Some(3.1));
    /// assert_eq!(Delta::new(0.0, 3.0).ratio(), None);
    /// ```
    pub fn ratio(&self) -> Option<f64> {
        let e = self.expected()?;
        (e > 0.0).then(|| self.current().map(|c| c / e)).flatten()
    }
}

/// One anomaly found on an edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EdgeAnomaly {
    /// Which metric.
    pub metric: Metric,
    /// The current value.
    pub value: f64,
    /// The expected value.
    pub expected: f64,
    /// `(value − expected) / expected`; `None` when nothing was expected.
    pub rel_deviation: Option<f64>,
    /// How bad it is (the detector's severity score; larger is worse).
    pub severity: f64,
    /// First tick of the anomaly's current streak.
    pub onset: Tick,
    /// The statistical test behind it, when it came from the detector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestStats>,
}

/// The numbers of the Grubbs test that flagged an anomaly: what a reviewer needs to
/// judge it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestStats {
    /// Which baseline was used, with how many values.
    pub baseline: crate::detect::BaselineUsed,
    /// Mean of the baseline values.
    pub baseline_mean: f64,
    /// Sample standard deviation of the baseline values.
    pub baseline_std_dev: f64,
    /// Grubbs' statistic.
    pub g: f64,
    /// The critical value it exceeded.
    pub g_crit: f64,
    /// The activity ratio the expectation was scaled by (counts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_ratio: Option<f64>,
    /// Set when the latency was tested on the callee's own time; the baseline numbers
    /// and G are then the own time's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_time: Option<crate::detect::OwnTime>,
}

impl EdgeAnomaly {
    /// An anomaly of `metric` at `value` against `expected`; the relative deviation is
    /// derived.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::EdgeAnomaly;
    /// use graph_core::model::Metric;
    /// let a = EdgeAnomaly::new(Metric::Latency, 30.0, 20.0, 1.5, 0);
    /// assert_eq!(a.rel_deviation, Some(0.5));
    /// ```
    pub fn new(metric: Metric, value: f64, expected: f64, severity: f64, onset: Tick) -> Self {
        let rel_deviation =
            (expected != 0.0 && expected.is_finite()).then(|| (value - expected) / expected);
        EdgeAnomaly {
            metric,
            value,
            expected,
            rel_deviation,
            severity,
            onset,
            test: None,
        }
    }
}

/// Everything ranking and pruning need to know about one edge at one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeObservation {
    /// The edge.
    pub edge: EdgeKey,
    /// Requests per bucket.
    pub requests: Delta,
    /// Request-weighted mean latency, ms.
    pub latency_ms: Delta,
    /// Failed requests / requests.
    pub error_rate: Delta,
    /// Anomalies found on the edge this tick (any metric).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<EdgeAnomaly>,
}

impl EdgeObservation {
    /// An observation of `edge` with nothing known yet.
    pub fn new(edge: EdgeKey) -> Self {
        EdgeObservation {
            edge,
            requests: Delta::default(),
            latency_ms: Delta::default(),
            error_rate: Delta::default(),
            anomalies: Vec::new(),
        }
    }

    /// Sets the expected and current requests.
    pub fn with_requests(mut self, expected: f64, current: f64) -> Self {
        self.requests = Delta::new(expected, current);
        self
    }

    /// Sets the expected and current latency in ms.
    pub fn with_latency(mut self, expected: f64, current: f64) -> Self {
        self.latency_ms = Delta::new(expected, current);
        self
    }

    /// Sets the expected and current error rate.
    pub fn with_error_rate(mut self, expected: f64, current: f64) -> Self {
        self.error_rate = Delta::new(expected, current);
        self
    }

    /// Adds an anomaly.
    pub fn with_anomaly(mut self, anomaly: EdgeAnomaly) -> Self {
        self.anomalies.push(anomaly);
        self
    }

    /// True when any metric is anomalous.
    pub fn is_anomalous(&self) -> bool {
        !self.anomalies.is_empty()
    }

    /// The anomaly of `metric`, if any (the most severe when there are several).
    pub fn anomaly(&self, metric: Metric) -> Option<&EdgeAnomaly> {
        self.anomalies
            .iter()
            .filter(|a| a.metric == metric)
            .max_by(|a, b| a.severity.total_cmp(&b.severity))
    }

    /// The anomalous metrics, sorted and without repeats.
    pub fn anomalous_metrics(&self) -> Vec<Metric> {
        let mut m: Vec<Metric> = self.anomalies.iter().map(|a| a.metric).collect();
        m.sort();
        m.dedup();
        m
    }

    /// The largest severity among the anomalies, 0 without any.
    pub fn severity(&self) -> f64 {
        self.anomalies
            .iter()
            .map(|a| a.severity)
            .filter(|s| s.is_finite())
            .fold(0.0, f64::max)
    }

    /// The earliest onset among the anomalies.
    pub fn onset(&self) -> Option<Tick> {
        self.anomalies.iter().map(|a| a.onset).min()
    }

    /// The request count used to weigh this edge: the current one, else the expected
    /// one, never negative.
    pub fn weight(&self) -> f64 {
        self.requests
            .current()
            .or(self.requests.expected())
            .unwrap_or(0.0)
            .max(0.0)
    }
}

/// The call graph of one tick: clusters as nodes, one [`EdgeObservation`] per edge.
/// Observations are kept sorted by edge, so everything derived from them is
/// deterministic.
#[derive(Debug, Clone)]
pub struct CallGraph {
    graph: DiGraph<ClusterId, usize>,
    index: HashMap<ClusterId, NodeIndex>,
    observations: Vec<EdgeObservation>,
}

impl CallGraph {
    /// Builds the graph from one observation per edge. Nodes are the edges' endpoints;
    /// self-loops are allowed. Two observations of the same edge are an error.
    ///
    /// # Complexity
    ///
    /// O(E log E) for E edges.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::{CallGraph, EdgeObservation};
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// let e = |a, b| EdgeObservation::new(EdgeKey { src: ClusterId(a), dst: ClusterId(b) });
    /// assert!(CallGraph::new(vec![e(0, 1), e(1, 2), e(2, 0)]).is_ok());
    /// assert!(CallGraph::new(vec![e(0, 1), e(0, 1)]).is_err());
    /// ```
    pub fn new(mut observations: Vec<EdgeObservation>) -> Result<Self> {
        observations.sort_by_key(|o| o.edge);
        if let Some(w) = observations.windows(2).find(|w| w[0].edge == w[1].edge) {
            return Err(Error::InvalidInput(format!(
                "edge {} -> {} is observed twice",
                w[0].edge.src.0, w[0].edge.dst.0
            )));
        }
        let mut ids: Vec<ClusterId> = observations
            .iter()
            .flat_map(|o| [o.edge.src, o.edge.dst])
            .collect();
        ids.sort();
        ids.dedup();
        let mut graph = DiGraph::with_capacity(ids.len(), observations.len());
        let mut index = HashMap::with_capacity(ids.len());
        for id in ids {
            index.insert(id, graph.add_node(id));
        }
        for (i, o) in observations.iter().enumerate() {
            graph.add_edge(index[&o.edge.src], index[&o.edge.dst], i);
        }
        Ok(CallGraph {
            graph,
            index,
            observations,
        })
    }

    /// Number of clusters.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.observations.len()
    }

    /// The clusters, ascending.
    pub fn nodes(&self) -> impl Iterator<Item = ClusterId> + '_ {
        self.graph.node_weights().copied()
    }

    /// True when `cluster` has an edge.
    pub fn contains(&self, cluster: ClusterId) -> bool {
        self.index.contains_key(&cluster)
    }

    /// All observations, sorted by edge.
    pub fn observations(&self) -> &[EdgeObservation] {
        &self.observations
    }

    /// The observation of `edge`.
    ///
    /// # Complexity
    ///
    /// O(log E).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::{CallGraph, EdgeObservation};
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// let k = EdgeKey { src: ClusterId(3), dst: ClusterId(4) };
    /// let g = CallGraph::new(vec![EdgeObservation::new(k)]).unwrap();
    /// assert!(g.observation(k).is_some());
    /// assert!(g.observation(EdgeKey { src: k.dst, dst: k.src }).is_none());
    /// ```
    pub fn observation(&self, edge: EdgeKey) -> Option<&EdgeObservation> {
        self.observations
            .binary_search_by_key(&edge, |o| o.edge)
            .ok()
            .map(|i| &self.observations[i])
    }

    /// The observations of the edges out of `cluster` (its calls), by callee.
    ///
    /// # Complexity
    ///
    /// O(d log d) for d outgoing edges.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::{CallGraph, EdgeObservation};
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// let e = |a, b| EdgeObservation::new(EdgeKey { src: ClusterId(a), dst: ClusterId(b) });
    /// let g = CallGraph::new(vec![e(0, 2), e(0, 1), e(1, 2)]).unwrap();
    /// let callees: Vec<u32> = g.outgoing(ClusterId(0)).map(|o| o.edge.dst.0).collect();
    /// assert_eq!(callees, [1, 2]);
    /// ```
    pub fn outgoing(&self, cluster: ClusterId) -> impl Iterator<Item = &EdgeObservation> + '_ {
        self.incident(cluster, PgDirection::Outgoing)
    }

    /// The observations of the edges into `cluster` (its callers), by caller.
    ///
    /// # Complexity
    ///
    /// O(d log d) for d incoming edges.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::{CallGraph, EdgeObservation};
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// let e = |a, b| EdgeObservation::new(EdgeKey { src: ClusterId(a), dst: ClusterId(b) });
    /// let g = CallGraph::new(vec![e(0, 2), e(1, 2)]).unwrap();
    /// assert_eq!(g.incoming(ClusterId(2)).count(), 2);
    /// ```
    pub fn incoming(&self, cluster: ClusterId) -> impl Iterator<Item = &EdgeObservation> + '_ {
        self.incident(cluster, PgDirection::Incoming)
    }

    fn incident(
        &self,
        cluster: ClusterId,
        dir: PgDirection,
    ) -> impl Iterator<Item = &EdgeObservation> + '_ {
        let mut idx: Vec<usize> = match self.index.get(&cluster) {
            Some(&n) => self
                .graph
                .edges_directed(n, dir)
                .map(|e| *e.weight())
                .collect(),
            None => Vec::new(),
        };
        idx.sort_unstable();
        idx.into_iter().map(move |i| &self.observations[i])
    }

    /// The underlying petgraph graph: node weights are cluster ids, edge weights are
    /// positions in [`CallGraph::observations`].
    pub fn petgraph(&self) -> &DiGraph<ClusterId, usize> {
        &self.graph
    }
}

/// Dense, deterministic helpers over a directed graph given as `n` nodes and edge pairs
/// of node positions. Used by ranking (depth) and layout (layers).
pub(crate) mod dag {
    /// Flags the edges to reverse so that the graph becomes acyclic: the back edges of an
    /// iterative depth-first search that starts from the sources (nodes without
    /// predecessors) in `order`, then from the remaining nodes in `order`. Self-loops
    /// are flagged too. O(n + e).
    pub(crate) fn back_edges(n: usize, edges: &[(u32, u32)], order: &[u32]) -> Vec<bool> {
        let adj = adjacency(n, edges);
        let mut indeg = vec![0u32; n];
        for &(a, b) in edges {
            if a != b {
                indeg[b as usize] += 1;
            }
        }
        // 0 = unseen, 1 = on the stack, 2 = done
        let mut state = vec![0u8; n];
        let mut back = vec![false; edges.len()];
        let mut stack: Vec<(u32, usize)> = Vec::new();
        let roots = order
            .iter()
            .filter(|&&v| indeg[v as usize] == 0)
            .chain(order.iter());
        for &root in roots {
            if state[root as usize] != 0 {
                continue;
            }
            state[root as usize] = 1;
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let (v, i) = *top;
                let out = &adj.out[adj.start[v as usize]..adj.start[v as usize + 1]];
                if i < out.len() {
                    top.1 += 1;
                    let e = out[i] as usize;
                    let w = edges[e].1;
                    match state[w as usize] {
                        0 => {
                            state[w as usize] = 1;
                            stack.push((w, 0));
                        }
                        1 => back[e] = true,
                        _ => {}
                    }
                } else {
                    state[v as usize] = 2;
                    stack.pop();
                }
            }
        }
        back
    }
    /// The edges without self-loops, with the `reversed` ones turned around, their
    /// adjacency and the in-degree of every node.
    fn oriented(
        n: usize,
        edges: &[(u32, u32)],
        reversed: &[bool],
    ) -> (Vec<(u32, u32)>, Adjacency, Vec<u32>) {
        let directed: Vec<(u32, u32)> = edges
            .iter()
            .zip(reversed)
            .filter(|((a, b), _)| a != b)
            .map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) })
            .collect();
        let adj = adjacency(n, &directed);
        let mut indeg = vec![0u32; n];
        for &(_, b) in &directed {
            indeg[b as usize] += 1;
        }
        (directed, adj, indeg)
    }

    /// Longest-path layers of the graph with the `reversed` edges turned around (which
    /// must make it acyclic; self-loops are ignored): sources get layer 0, every other
    /// node one more than its deepest predecessor. O(n + e).
    pub(crate) fn longest_path_layers(
        n: usize,
        edges: &[(u32, u32)],
        reversed: &[bool],
    ) -> Vec<u32> {
        let (directed, adj, mut indeg) = oriented(n, edges, reversed);
        let mut layer = vec![0u32; n];
        let mut queue: Vec<u32> = (0..n as u32).filter(|&v| indeg[v as usize] == 0).collect();
        let mut head = 0;
        while head < queue.len() {
            let v = queue[head] as usize;
            head += 1;
            for &e in &adj.out[adj.start[v]..adj.start[v + 1]] {
                let w = directed[e as usize].1 as usize;
                layer[w] = layer[w].max(layer[v] + 1);
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    queue.push(w as u32);
                }
            }
        }
        layer
    }

    /// Moves nodes right towards their callees where that shortens the edges in total
    /// (more edges out than in), keeping every edge pointing right: one pass in reverse
    /// topological order over the layering `layer` of the graph with the `reversed`
    /// edges turned around. O(n + e).
    pub(crate) fn pull_right(n: usize, edges: &[(u32, u32)], reversed: &[bool], layer: &mut [u32]) {
        let (directed, adj, indeg) = oriented(n, edges, reversed);
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&v| std::cmp::Reverse(layer[v as usize]));
        for v in order {
            let v = v as usize;
            let out = &adj.out[adj.start[v]..adj.start[v + 1]];
            if out.len() as u32 <= indeg[v] {
                continue;
            }
            let limit = out
                .iter()
                .map(|&e| layer[directed[e as usize].1 as usize])
                .min()
                .unwrap_or(0);
            if limit > layer[v] + 1 {
                layer[v] = limit - 1;
            }
        }
    }

    /// Outgoing edge positions per node, in CSR form.
    pub(crate) struct Adjacency {
        pub(crate) start: Vec<usize>,
        pub(crate) out: Vec<u32>,
    }

    pub(crate) fn adjacency(n: usize, edges: &[(u32, u32)]) -> Adjacency {
        let mut start = vec![0usize; n + 1];
        for &(a, _) in edges {
            start[a as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut out = vec![0u32; edges.len()];
        for (e, &(a, _)) in edges.iter().enumerate() {
            out[fill[a as usize]] = e as u32;
            fill[a as usize] += 1;
        }
        Adjacency { start, out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(a: u32, b: u32) -> EdgeKey {
        EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        }
    }

    #[test]
    fn incident_edges_follow_direction_and_skip_unknown_clusters() {
        let g = CallGraph::new(vec![
            EdgeObservation::new(key(2, 1)),
            EdgeObservation::new(key(1, 2)),
            EdgeObservation::new(key(1, 1)),
        ])
        .unwrap();
        let out: Vec<EdgeKey> = g.outgoing(ClusterId(1)).map(|o| o.edge).collect();
        assert_eq!(out, [key(1, 1), key(1, 2)]);
        let inc: Vec<EdgeKey> = g.incoming(ClusterId(1)).map(|o| o.edge).collect();
        assert_eq!(inc, [key(1, 1), key(2, 1)]);
        assert_eq!(g.outgoing(ClusterId(9)).count(), 0);
        assert_eq!(g.nodes().collect::<Vec<_>>(), [ClusterId(1), ClusterId(2)]);
    }

    #[test]
    fn non_finite_values_count_as_unknown() {
        let d = Delta {
            current: Some(f64::NAN),
            expected: Some(1.0),
            baseline: None,
        };
        assert_eq!(d.change(), None);
        let o = EdgeObservation::new(key(0, 1)).with_anomaly(EdgeAnomaly::new(
            Metric::Latency,
            1.0,
            0.0,
            f64::NAN,
            5,
        ));
        assert_eq!(o.severity(), 0.0);
        assert_eq!(o.anomaly(Metric::Latency).unwrap().rel_deviation, None);
    }

    proptest! {
        #[test]
        fn reversing_back_edges_leaves_a_dag(
            n in 1usize..30,
            raw in proptest::collection::vec((0u32..30, 0u32..30), 0..120),
        ) {
            let edges: Vec<(u32, u32)> =
                raw.into_iter().map(|(a, b)| (a % n as u32, b % n as u32)).collect();
            let order: Vec<u32> = (0..n as u32).collect();
            let back = dag::back_edges(n, &edges, &order);
            let mut layers = dag::longest_path_layers(n, &edges, &back);
            for pulled in [false, true] {
                if pulled {
                    dag::pull_right(n, &edges, &back, &mut layers);
                }
                for (e, &(a, b)) in edges.iter().enumerate() {
                    if a == b {
                        continue;
                    }
                    let (s, t) = if back[e] { (b, a) } else { (a, b) };
                    prop_assert!(layers[s as usize] < layers[t as usize]);
                }
            }
        }
    }
}
