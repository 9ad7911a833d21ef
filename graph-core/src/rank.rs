//! Root-cause ranking on the anomalous subgraph: follow the latency deltas downstream.
//!
//! For a node B, with `w(e)` the requests on edge `e` and `Δ(e)` its latency change:
//!
//! * **incoming growth** `I = Σ_in w·Δ / Σ_in w`, the request-weighted latency change of
//!   the calls into B;
//! * **explained growth** `X = Σ_out w(B→c)·Δ(B→c) / Σ_in w`: calls compose, so each
//!   request into B waits for its share of B's own downstream calls, whose latency
//!   includes their downstream calls in turn;
//! * **unexplained growth** `U = I − X`: what happened inside B.
//!
//! The node whose incoming calls got slower while its own calls did not explain it is a
//! likely cause; in a chain `a → b → c` where only `c` slowed down, `U` is about zero for
//! `a` and `b` and the whole growth for `c`, the deepest node. Error-rate growth is
//! followed the same way. `X` also counts more (or fewer) calls per request at their
//! usual latency once calls per request moved by `min_fan_out_change`, and a callee that
//! answers faster (failing fast) never lowers it.
//!
//! Real faults take shapes the plain sum misreads, and three corrections follow them:
//!
//! * **caller side**: when one incoming link carries nearly all of a node's latency
//!   growth and its other callers saw none, the delay is on that caller's side of the
//!   link (its network path, connection pool or client): the growth moves to the caller
//!   as [`Evidence::CallerSide`];
//! * **amplification**: a node sending one callee many more calls per request than
//!   usual (retries, a loop) gets [`Evidence::Amplification`], and a node whose callers
//!   send it far more calls than usual has its growth divided by that load;
//! * **induced growth**: a blocking caller's workers wait on a slow or failing callee
//!   and its own queue grows, so unexplained growth counts only in proportion to the
//!   share of the incoming growth (latency or errors, whichever more) its callees do not
//!   explain; errors next to explained latency growth (time-outs) likewise.
//!
//! Further evidence: request-volume drops on the calls into B,
//! whether B's incoming edges went anomalous first (onset order), a config change on B
//! shortly before onset (from [`crate::link`]), and B's depth in the anomalous
//! subgraph. Every term, its numbers and its points are listed as [`Evidence`], and a
//! one-line explanation says the same in words.
//!
//! Ranking reads the observations of **all** edges of the call graph, so that a quiet
//! downstream edge shows that it explains nothing; candidates are the nodes of the
//! pruned graph. The output is deterministic: ties break by depth, then by name.
//!
//! ```
//! use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
//! use graph_core::link::Links;
//! use graph_core::model::{Cluster, ClusterCatalog, EdgeKey, Metric};
//! use graph_core::prune::{prune, PruneOptions};
//! use graph_core::rank::{rank, RankConfig};
//!
//! let mut catalog = ClusterCatalog::new();
//! let mut add = |n: &str| catalog.insert(Cluster { name: n.into(), service: n.into(), dc: None, tier: None });
//! let (web, api, db) = (add("web"), add("api"), add("db"));
//! let slow = |e: f64, c: f64| EdgeAnomaly::new(Metric::Latency, c, e, 2.0, 0);
//! let graph = CallGraph::new(vec![
//!     EdgeObservation::new(EdgeKey { src: web, dst: api })
//!         .with_requests(100.0, 100.0).with_latency(20.0, 50.0).with_anomaly(slow(20.0, 50.0)),
//!     EdgeObservation::new(EdgeKey { src: api, dst: db })
//!         .with_requests(100.0, 100.0).with_latency(10.0, 40.0).with_anomaly(slow(10.0, 40.0)),
//! ]).unwrap();
//! let pruned = prune(&graph, &[], 0, &PruneOptions::default());
//! let ranking = rank(&graph, &pruned, &Links::default(), &catalog, &RankConfig::default());
//! assert_eq!(ranking.candidates[0].name, "db");
//! assert!(ranking.candidates[0].explanation.starts_with("calls into db +30.0 ms (x4.0)"));
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::detect::BaselineKind;
use crate::graph::{CallGraph, EdgeObservation, dag};
use crate::link::Links;
use crate::model::{ClusterCatalog, ClusterId, EdgeKey, Metric, Tick};
use crate::prune::{EdgeRole, PrunedGraph};

/// Points given to each kind of evidence when it is at its strongest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankWeights {
    /// Unexplained latency growth (relative to the largest among the candidates).
    pub latency: f64,
    /// Unexplained error-rate growth (relative to the largest among the candidates).
    pub error_rate: f64,
    /// Relative drop of the requests into the node (capped at 1).
    pub request_drop: f64,
    /// The node's incoming edges went anomalous first.
    pub onset: f64,
    /// A config change on the node shortly before onset.
    pub config_change: f64,
    /// Depth in the anomalous subgraph, relative to the deepest.
    pub depth: f64,
    /// Calls out per request grew (capped at a tripling).
    pub amplification: f64,
    /// The node's calls to one callee fail while the callee's other callers' do not
    /// (relative to the largest error-rate growth): weaker than its own failures, since
    /// time-outs, retries, a pool or the network may each be behind it.
    pub caller_side_errors: f64,
}

impl Default for RankWeights {
    fn default() -> Self {
        RankWeights {
            latency: 1.0,
            error_rate: 1.0,
            request_drop: 0.2,
            onset: 0.25,
            config_change: 0.35,
            depth: 0.1,
            amplification: 1.0,
            caller_side_errors: 0.6,
        }
    }
}

/// Options of [`rank`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankConfig {
    /// Unexplained latency growth below this many ms is no evidence.
    pub min_latency_ms: f64,
    /// ... nor below this share of the expected incoming latency.
    pub min_latency_rel: f64,
    /// Unexplained error-rate growth below this (0.005 = 0.5 percentage points) is no
    /// evidence.
    pub min_error_rate: f64,
    /// A relative request drop below this is no evidence.
    pub min_request_drop: f64,
    /// The onset term halves when the node's onset is this many seconds after the
    /// first one.
    pub onset_scale_s: f64,
    /// Downstream calls that explain less than this share of the incoming growth count
    /// as "unchanged" in the explanation.
    pub unchanged_share: f64,
    /// Points per kind of evidence.
    pub weights: RankWeights,
    /// At most this many candidates.
    pub max_candidates: usize,
    /// A node's latency growth is put on the caller side of one incoming link when that
    /// link carries at least this share of it...
    pub caller_side_share: f64,
    /// ... the callee's other callers changed by at most this share of the link's
    /// change (latency: each relative to its usual latency)...
    pub caller_side_others: f64,
    /// ... or, for latency, by at most this share when none of their calls is
    /// anomalous in latency (machine-wide noise moves quiet callers a little)...
    pub caller_side_others_quiet: f64,
    /// ... and those other callers carry at least this share of the node's requests.
    pub caller_side_min_weight: f64,
    /// A node's error-rate growth is put on the caller side of one incoming link (by
    /// the same shares) only when its other callers would have seen at least this many
    /// more failed calls had the callee failed every caller alike (at its incoming rate).
    pub caller_side_min_errors: f64,
    /// Calls out per request growing by less than this (0.5 = +50 %) is no evidence.
    pub min_amplification: f64,
    /// Callers that each send a node at least `1 + min_amplification` times their usual
    /// calls per request, two or more carrying at least this share of its usual calls,
    /// are retrying its failures: no amplification evidence for them, and no load
    /// discount for it.
    pub retry_share: f64,
    /// One caller alone doing so is retrying the node's failures too when those failures
    /// are fast: the failed calls took on average under this share of the link's usual
    /// latency (refused, not timed out), so the caller's impatience did not cause them.
    pub fast_failure_share: f64,
    /// How much unexplained latency growth is discounted by the share of the incoming
    /// growth the node's callees explain (0: not at all, 1: fully).
    pub induced_discount: f64,
    /// Downstream time per request from more or fewer calls per request counts as
    /// explained growth once calls per request moved by this share.
    pub min_fan_out_change: f64,
    /// Latency growth nearly every call shows at once (a machine or a network slower for
    /// everyone) is no one's own: when at least four in five of the calls timed got
    /// slower and their median relative change reaches `min_latency_rel`, that share of
    /// each call's usual latency is taken out of its change, provided at least this many
    /// calls are timed (0: never).
    pub fleet_min_edges: usize,
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig {
            min_latency_ms: 1.0,
            min_latency_rel: 0.05,
            min_error_rate: 0.005,
            min_request_drop: 0.1,
            onset_scale_s: 300.0,
            unchanged_share: 0.1,
            weights: RankWeights::default(),
            max_candidates: 20,
            caller_side_share: 0.8,
            caller_side_others: 0.2,
            caller_side_others_quiet: 0.35,
            caller_side_min_weight: 0.1,
            caller_side_min_errors: 3.0,
            min_amplification: 0.5,
            retry_share: 0.8,
            fast_failure_share: 0.25,
            min_fan_out_change: 0.1,
            induced_discount: 1.0,
            fleet_min_edges: 10,
        }
    }
}

/// One piece of evidence for a candidate, with its numbers and the points it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Calls into the node got slower and its own calls do not explain it.
    Latency {
        /// Request-weighted latency change of the calls into the node, ms.
        incoming_ms: f64,
        /// The part its own downstream calls explain, ms.
        explained_ms: f64,
        /// The part of the incoming growth every call showed at once (see
        /// [`Ranking::fleet_latency_share`]), not counted as the node's, ms.
        #[serde(default, skip_serializing_if = "is_zero")]
        fleet_ms: f64,
        /// `incoming_ms − explained_ms − fleet_ms`.
        unexplained_ms: f64,
        /// Expected request-weighted latency of the calls into the node, ms.
        expected_ms: Option<f64>,
        /// Current over expected incoming latency.
        ratio: Option<f64>,
        /// The baselines behind the expectations (weekly, daily, trailing).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        baselines: Vec<BaselineKind>,
        /// Points.
        points: f64,
    },
    /// The node's calls to one callee got slower while the callee's other callers saw
    /// no change: the delay is on the node's side of that link (its network path, its
    /// connection pool, its client), not in the callee.
    CallerSide {
        /// The link.
        edge: EdgeKey,
        /// The callee's name.
        callee: String,
        /// Latency change of the link, ms.
        link_ms: f64,
        /// Request-weighted latency change of the callee's other incoming calls, ms.
        others_ms: f64,
        /// What the link adds to each request into the node, ms.
        per_request_ms: f64,
        /// Points.
        points: f64,
    },
    /// The node's calls to one callee fail more often while the callee's other callers,
    /// with calls enough to have seen it, saw no more failures: the failures are made
    /// on the node's side of that link (its time-outs, retry policy, exhausted pool or
    /// network path), not by the callee.
    CallerSideErrors {
        /// The link.
        edge: EdgeKey,
        /// The callee's name.
        callee: String,
        /// Error-rate change of the link.
        link: f64,
        /// Request-weighted error-rate change of the callee's other incoming calls.
        others: f64,
        /// Failed calls on the link per request into the node, more than usual.
        per_request: f64,
        /// Points.
        points: f64,
    },
    /// The node sends a callee many more calls per request than usual (retries or a
    /// loop); half the points unless the callee or the node itself got slower or
    /// fails.
    Amplification {
        /// Current over expected requests into the node.
        incoming_ratio: f64,
        /// Current over expected requests of its most surged outgoing edge.
        outgoing_ratio: f64,
        /// Points.
        points: f64,
    },
    /// Calls into the node fail more often and its own calls do not explain it.
    ErrorRate {
        /// Request-weighted error-rate change of the calls into the node.
        incoming: f64,
        /// The part its own downstream calls explain.
        explained: f64,
        /// `incoming − explained`.
        unexplained: f64,
        /// Expected incoming error rate.
        expected: Option<f64>,
        /// Current incoming error rate.
        current: Option<f64>,
        /// The baselines behind the expectations.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        baselines: Vec<BaselineKind>,
        /// Points.
        points: f64,
    },
    /// Fewer requests into the node than expected.
    RequestDrop {
        /// Requests now.
        current: f64,
        /// Requests expected.
        expected: f64,
        /// `1 − current / expected`.
        relative: f64,
        /// The baselines behind the expectations.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        baselines: Vec<BaselineKind>,
        /// Points.
        points: f64,
    },
    /// When the node's incoming edges went anomalous, against the first edge to.
    Onset {
        /// The node's onset.
        onset: Tick,
        /// The first onset in the anomalous subgraph.
        first_onset: Tick,
        /// The node's first anomalous incoming edge.
        edge: EdgeKey,
        /// Points.
        points: f64,
    },
    /// A config change on the node shortly before onset.
    ConfigChange {
        /// The change.
        change_id: u64,
        /// Who made it.
        author: String,
        /// What it was.
        description: String,
        /// Onset minus the change's time.
        seconds_before_onset: i64,
        /// Points.
        points: f64,
    },
    /// How deep the node sits in the anomalous subgraph (callers at 0).
    Depth {
        /// The node's depth.
        depth: u32,
        /// The deepest node's depth.
        max_depth: u32,
        /// Points.
        points: f64,
    },
}

impl Evidence {
    /// The points this evidence added to the score.
    pub fn points(&self) -> f64 {
        match self {
            Evidence::Latency { points, .. }
            | Evidence::CallerSide { points, .. }
            | Evidence::CallerSideErrors { points, .. }
            | Evidence::Amplification { points, .. }
            | Evidence::ErrorRate { points, .. }
            | Evidence::RequestDrop { points, .. }
            | Evidence::Onset { points, .. }
            | Evidence::ConfigChange { points, .. }
            | Evidence::Depth { points, .. } => *points,
        }
    }
}

/// A ranked root-cause candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// 1 for the most likely cause.
    pub rank: u32,
    /// The cluster.
    pub cluster: ClusterId,
    /// Its name.
    pub name: String,
    /// The sum of the evidence points.
    pub score: f64,
    /// Depth in the anomalous subgraph.
    pub depth: u32,
    /// Why, with the numbers.
    pub evidence: Vec<Evidence>,
    /// The same in one line.
    pub explanation: String,
}

/// Root-cause candidates, most likely first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ranking {
    /// The candidates.
    pub candidates: Vec<Candidate>,
    /// What the edges outside the pruned graph (neither shown nor hidden) added to each
    /// node's sums, by cluster: with it, a snapshot alone is ranked again exactly
    /// ([`rank_from`]), without keeping those edges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<NodeContext>,
    /// Latency growth nearly every call showed at once, as a share of each call's usual
    /// latency (a machine or a network slower for everyone: 0.15 is 15 % slower), taken
    /// out of every call's change before ranking; 0 when there was none to speak of (see
    /// [`RankConfig::fleet_min_edges`]). Kept so that [`rank_from`] replays it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fleet_latency_share: f64,
}

/// The sums the quiet edges around one node contribute to its ranking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeContext {
    /// The node.
    pub cluster: ClusterId,
    /// Its sums over edges outside the pruned graph.
    pub sums: Sums,
}

impl Ranking {
    /// The rank of `cluster`, if it is a candidate.
    pub fn rank_of(&self, cluster: ClusterId) -> Option<u32> {
        self.candidates
            .iter()
            .find(|c| c.cluster == cluster)
            .map(|c| c.rank)
    }
}

/// Weighted sums over the edges into and out of one node (opaque: kept in snapshots
/// so that ranking can be redone from them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sums {
    #[serde(skip_serializing_if = "is_zero")]
    in_w: f64,
    #[serde(skip_serializing_if = "is_zero")]
    lat_w: f64,
    #[serde(skip_serializing_if = "is_zero")]
    lat_wd: f64,
    #[serde(skip_serializing_if = "is_zero")]
    lat_wexp: f64,
    #[serde(skip_serializing_if = "is_zero")]
    lat_wcur: f64,
    #[serde(skip_serializing_if = "is_zero")]
    err_w: f64,
    #[serde(skip_serializing_if = "is_zero")]
    err_wd: f64,
    #[serde(skip_serializing_if = "is_zero")]
    err_wexp: f64,
    #[serde(skip_serializing_if = "is_zero")]
    err_wcur: f64,
    #[serde(skip_serializing_if = "is_zero")]
    req_cur: f64,
    #[serde(skip_serializing_if = "is_zero")]
    req_exp: f64,
    #[serde(skip_serializing_if = "is_zero")]
    out_lat_wd: f64,
    #[serde(skip_serializing_if = "is_zero")]
    out_err_wd: f64,
    #[serde(skip_serializing_if = "is_zero_u32")]
    out_edges: u32,
    #[serde(skip_serializing_if = "is_false")]
    lat_anomaly_in: bool,
    #[serde(skip_serializing_if = "is_false")]
    err_anomaly_in: bool,
    #[serde(skip_serializing_if = "is_false")]
    drop_anomaly_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    onset_in: Option<(Tick, EdgeKey)>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    lat_edges: u32,
    #[serde(skip_serializing_if = "is_zero_u32")]
    lat_anomalous_edges: u32,
    #[serde(skip_serializing_if = "is_zero_u32")]
    err_anomalous_edges: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat_top: Option<Top>,
    #[serde(skip_serializing_if = "is_zero")]
    surge_ratio: f64,
    #[serde(skip_serializing_if = "is_zero")]
    surge_excess: f64,
    #[serde(skip_serializing_if = "is_zero")]
    out_req_cur: f64,
    #[serde(skip_serializing_if = "is_zero")]
    out_req_exp: f64,
    #[serde(skip_serializing_if = "is_false")]
    surge_in: bool,
    #[serde(skip_serializing_if = "is_false")]
    surge_hurts: bool,
    #[serde(skip_serializing_if = "is_zero")]
    out_cur_lexp: f64,
    #[serde(skip_serializing_if = "is_zero")]
    out_exp_lexp: f64,
    #[serde(skip_serializing_if = "is_zero_u8")]
    lat_baselines: u8,
    #[serde(skip_serializing_if = "is_zero_u8")]
    err_baselines: u8,
    #[serde(skip_serializing_if = "is_zero_u8")]
    req_baselines: u8,
    #[serde(skip_serializing_if = "is_zero_u32")]
    err_edges: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    err_top: Option<Top>,
    #[serde(skip_serializing_if = "is_zero")]
    out_err_flagged_wd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    surge_dst: Option<ClusterId>,
    /// The part of `out_lat_wd` on unflagged links whose growth the callee's other
    /// callers did not see: the node's own side of those links, not its callees'. Set
    /// by [`rank`] from the whole graph, carried in the context for replays.
    #[serde(skip_serializing_if = "is_zero")]
    out_lat_wd_own_side: f64,
}

/// The incoming edge that added the most latency (or errors) to a node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Top {
    src: ClusterId,
    w: f64,
    wd: f64,
    wexp: f64,
    /// The edge itself is anomalous in the metric.
    anomalous: bool,
    /// The edge is anomalous in latency.
    slow: bool,
    /// The edge's current and expected requests, when both are known.
    requests: Option<(f64, f64)>,
}

impl Top {
    /// True when the caller `caller` sends this edge at least `1 + min_amplification`
    /// times its usual calls per request it serves.
    fn amplified(&self, caller: &Sums, config: &RankConfig) -> bool {
        let Some((c, e)) = self.requests else {
            return false;
        };
        e > 0.0
            && caller.req_exp > 0.0
            && caller.req_cur > 0.0
            && (c / e) / (caller.req_cur / caller.req_exp) >= 1.0 + config.min_amplification
    }
}

/// Ranks the nodes of `pruned` as root-cause candidates, reading every edge of `graph`
/// and the config changes linked to the nodes in `links`. `catalog` names clusters.
///
/// # Complexity
///
/// O(E + V log V + C) for E edges in `graph`, V candidates and C linked changes.
///
/// # Example
///
/// ```
/// use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
/// use graph_core::link::Links;
/// use graph_core::model::{ClusterCatalog, ClusterId, EdgeKey, Metric};
/// use graph_core::prune::{prune, PruneOptions};
/// use graph_core::rank::{rank, RankConfig};
///
/// // Two callers of a cluster whose error rate jumped; nothing downstream of it.
/// let e = |a, b| EdgeKey { src: ClusterId(a), dst: ClusterId(b) };
/// let failing = |a| EdgeObservation::new(e(a, 2)).with_requests(100.0, 100.0)
///     .with_error_rate(0.0, 0.2).with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.2, 0.0, 5.0, 0));
/// let graph = CallGraph::new(vec![failing(0), failing(1)]).unwrap();
/// let pruned = prune(&graph, &[], 0, &PruneOptions::default());
/// let r = rank(&graph, &pruned, &Links::default(), &ClusterCatalog::new(), &RankConfig::default());
/// assert_eq!(r.candidates[0].cluster, ClusterId(2));
/// assert_eq!(r.rank_of(ClusterId(0)), None); // callers show no evidence
/// ```
pub fn rank(
    graph: &CallGraph,
    pruned: &PrunedGraph,
    links: &Links,
    catalog: &ClusterCatalog,
    config: &RankConfig,
) -> Ranking {
    let kept = |e: EdgeKey| {
        pruned.edge(e).is_some() || pruned.hidden.binary_search_by_key(&e, |h| h.edge).is_ok()
    };
    let (cand, slot) = candidates(pruned);
    let fleet = fleet_latency_share(graph.observations(), config);
    let mut outside = vec![Sums::default(); cand.len()];
    for o in graph.observations().iter().filter(|o| !kept(o.edge)) {
        accumulate(&mut outside, &slot, o, fleet);
    }
    own_side_of_links(graph.observations(), &slot, &mut outside, fleet, config);
    let context: Vec<NodeContext> = cand
        .iter()
        .zip(outside)
        .filter(|(_, s)| *s != Sums::default())
        .map(|(&cluster, sums)| NodeContext { cluster, sums })
        .collect();
    let inside = graph.observations().iter().filter(|o| kept(o.edge));
    rank_from(inside, context, fleet, pruned, links, catalog, config)
}

/// The latency growth nearly every call shows at once, as a share of each call's usual
/// latency: the median relative change of the calls timed, when at least four in five of
/// them got slower (their 20th percentile is above zero) and the median reaches
/// `min_latency_rel`; else 0, and 0 with fewer than `fleet_min_edges` calls timed.
///
/// A fault slows its own calls and the calls waiting on it, but leaves many others as
/// they were (the calls into the rest of the graph, and the leaves' own), so the 20th
/// percentile stays at the noise level, even when a retry storm overloads most of the
/// graph; a machine or a network slower for everyone slows nearly every call, each in
/// proportion to the work behind it. On a machine a sixth slower, a call that usually
/// takes 40 ms is about 6 ms slower whichever service makes it: a caller whose calls
/// grew 22 ms then stands out, and a callee whose other callers saw those 6 ms is not
/// slower for them.
///
/// O(E) for E observations.
fn fleet_latency_share(observations: &[EdgeObservation], config: &RankConfig) -> f64 {
    if config.fleet_min_edges == 0 {
        return 0.0;
    }
    let mut rel: Vec<f64> = observations
        .iter()
        .filter(|o| o.edge.src != o.edge.dst && o.weight() > 0.0)
        .filter_map(|o| {
            let e = o.latency_ms.expected().filter(|e| *e > 0.0)?;
            Some(o.latency_ms.change()? / e)
        })
        .filter(|r| r.is_finite())
        .collect();
    if rel.len() < config.fleet_min_edges.max(1) {
        return 0.0;
    }
    // Two selections, not a sort: everything left of the median is at most it, and the
    // 20th percentile (index n/5) lies there.
    let (fifth, half) = (rel.len() / 5, rel.len() / 2);
    let (low, &mut median, _) = rel.select_nth_unstable_by(half, f64::total_cmp);
    let nearly_all = if fifth < low.len() {
        *low.select_nth_unstable_by(fifth, f64::total_cmp).1
    } else {
        median
    };
    if nearly_all > 0.0 && median >= config.min_latency_rel {
        median
    } else {
        0.0
    }
}

/// The latency change of `o` beyond the share `fleet` of its usual latency that every
/// call showed at once ([`fleet_latency_share`]).
fn latency_change(o: &EdgeObservation, fleet: f64) -> Option<f64> {
    let d = o.latency_ms.change()?;
    Some(d - fleet * o.latency_ms.expected().unwrap_or(0.0))
}

/// The candidates: the pruned graph's nodes (sorted and without repeats, whatever the
/// caller built), with each one's position.
fn candidates(pruned: &PrunedGraph) -> (Vec<ClusterId>, HashMap<ClusterId, usize>) {
    let mut cand: Vec<ClusterId> = pruned.nodes.clone();
    cand.sort();
    cand.dedup();
    let slot = cand.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    (cand, slot)
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero_u32(x: &u32) -> bool {
    *x == 0
}

fn is_false(x: &bool) -> bool {
    !*x
}

fn is_zero_u8(x: &u8) -> bool {
    *x == 0
}

fn baseline_bit(kind: Option<BaselineKind>) -> u8 {
    match kind {
        Some(BaselineKind::Weekly) => 1,
        Some(BaselineKind::Daily) => 2,
        Some(BaselineKind::Trailing) => 4,
        None => 0,
    }
}

/// The baselines of a bit set from [`baseline_bit`], weekly first.
fn baselines(bits: u8) -> Vec<BaselineKind> {
    [
        BaselineKind::Weekly,
        BaselineKind::Daily,
        BaselineKind::Trailing,
    ]
    .into_iter()
    .filter(|k| bits & baseline_bit(Some(*k)) != 0)
    .collect()
}

/// Adds one edge to the sums of its ends that are candidates, its latency change less
/// the share `fleet` of its usual latency every call showed at once.
fn accumulate(
    sums: &mut [Sums],
    slot: &HashMap<ClusterId, usize>,
    o: &EdgeObservation,
    fleet: f64,
) {
    if o.edge.src == o.edge.dst {
        return;
    }
    let w = o.weight();
    let lat_anomaly = o.anomalies.iter().any(|a| a.metric == Metric::Latency);
    let err_anomaly = o
        .anomalies
        .iter()
        .any(|a| matches!(a.metric, Metric::ErrorRate | Metric::Errors));
    let requests = o.requests.current().zip(o.requests.expected());
    if let Some(&i) = slot.get(&o.edge.dst) {
        let s = &mut sums[i];
        s.in_w += w;
        if let Some(d) = latency_change(o, fleet) {
            let wexp = w * o.latency_ms.expected().unwrap_or(0.0);
            s.lat_w += w;
            s.lat_wd += w * d;
            s.lat_wexp += wexp;
            s.lat_wcur += w * o.latency_ms.current().unwrap_or(0.0);
            s.lat_edges += 1;
            s.lat_anomalous_edges += u32::from(lat_anomaly);
            s.lat_baselines |= baseline_bit(o.latency_ms.baseline);
            if s.lat_top.is_none_or(|t| w * d > t.wd) {
                s.lat_top = Some(Top {
                    src: o.edge.src,
                    w,
                    wd: w * d,
                    wexp,
                    anomalous: lat_anomaly,
                    slow: lat_anomaly,
                    requests,
                });
            }
        }
        if let Some(d) = o.error_rate.change() {
            let wexp = w * o.error_rate.expected().unwrap_or(0.0);
            s.err_w += w;
            s.err_wd += w * d;
            s.err_wexp += wexp;
            s.err_wcur += w * o.error_rate.current().unwrap_or(0.0);
            s.err_edges += 1;
            s.err_anomalous_edges += u32::from(err_anomaly);
            s.err_baselines |= baseline_bit(o.error_rate.baseline);
            if s.err_top.is_none_or(|t| w * d > t.wd) {
                s.err_top = Some(Top {
                    src: o.edge.src,
                    w,
                    wd: w * d,
                    wexp,
                    anomalous: err_anomaly,
                    slow: lat_anomaly,
                    requests,
                });
            }
        }
        if let (Some(c), Some(e)) = (o.requests.current(), o.requests.expected()) {
            s.req_cur += c.max(0.0);
            s.req_exp += e.max(0.0);
            s.req_baselines |= baseline_bit(o.requests.baseline);
        }
        for a in &o.anomalies {
            match a.metric {
                Metric::Latency => s.lat_anomaly_in = true,
                Metric::ErrorRate | Metric::Errors => s.err_anomaly_in = true,
                Metric::Requests => {
                    s.drop_anomaly_in |= a.value < a.expected;
                    s.surge_in |= a.value > a.expected;
                }
            }
        }
        if let Some(t) = o.onset()
            && s.onset_in.is_none_or(|(best, _)| t < best)
        {
            s.onset_in = Some((t, o.edge));
        }
    }
    if let Some(&i) = slot.get(&o.edge.src) {
        let s = &mut sums[i];
        s.out_edges += 1;
        if let Some(d) = latency_change(o, fleet) {
            // A callee answering faster (failing fast, say) never makes the caller's
            // own growth look larger.
            s.out_lat_wd += w * d.max(0.0);
        }
        if let (Some(c), Some(e), Some(l)) = (
            o.requests.current(),
            o.requests.expected(),
            o.latency_ms.expected(),
        ) {
            s.out_cur_lexp += c.max(0.0) * l;
            s.out_exp_lexp += e.max(0.0) * l;
        }
        if let Some(d) = o.error_rate.change() {
            s.out_err_wd += w * d.max(0.0);
            if o.anomalies
                .iter()
                .any(|a| matches!(a.metric, Metric::ErrorRate | Metric::Errors))
            {
                s.out_err_flagged_wd += w * d.max(0.0);
            }
        }
        let surged = o
            .anomalies
            .iter()
            .any(|a| a.metric == Metric::Requests && a.value > a.expected);
        s.surge_hurts |= surged
            && o.anomalies.iter().any(|a| {
                matches!(
                    a.metric,
                    Metric::Latency | Metric::ErrorRate | Metric::Errors
                )
            });
        if let (Some(c), Some(e)) = (o.requests.current(), o.requests.expected()) {
            s.out_req_cur += c.max(0.0);
            s.out_req_exp += e.max(0.0);
            if surged && e > 0.0 && c / e > s.surge_ratio {
                s.surge_ratio = c / e;
                s.surge_excess = c - e;
                s.surge_dst = Some(o.edge.dst);
            }
        }
    }
}

/// Ranks the nodes of `pruned` from the observations of its edges (`inside`, by edge)
/// and what the other edges contributed (`context`, as [`rank`] recorded it in
/// [`Ranking::context`]), with the latency growth every call showed at once
/// (`fleet_latency_share`, [`Ranking::fleet_latency_share`]). [`rank`] is this with all
/// three taken from a whole graph; a snapshot's observations with its ranking's context
/// and fleet share give the same ranking again.
///
/// # Complexity
///
/// O(E + V log V + C) for E edges in `inside`, V candidates and C linked changes.
pub fn rank_from<'a>(
    inside: impl Iterator<Item = &'a EdgeObservation>,
    context: Vec<NodeContext>,
    fleet_latency_share: f64,
    pruned: &PrunedGraph,
    links: &Links,
    catalog: &ClusterCatalog,
    config: &RankConfig,
) -> Ranking {
    let (cand, slot) = candidates(pruned);
    if cand.is_empty() {
        return Ranking::default();
    }
    let mut sums = vec![Sums::default(); cand.len()];
    for c in &context {
        if let Some(&i) = slot.get(&c.cluster) {
            sums[i] = c.sums;
        }
    }
    let context: Vec<NodeContext> = context
        .into_iter()
        .filter(|c| slot.contains_key(&c.cluster))
        .collect();
    let inside: Vec<&EdgeObservation> = inside.collect();
    let fleet = fleet_latency_share.max(0.0);
    for o in &inside {
        accumulate(&mut sums, &slot, o, fleet);
    }
    let retriers = retrying_callers(&inside, &sums, &slot, fleet, config);

    let caller_side = caller_side_moves(&mut sums, &cand, &slot, fleet, catalog, config);
    let caller_side_errors = caller_side_error_moves(&mut sums, &cand, &slot, catalog, config);

    let depth = depths(pruned, &slot, cand.len());
    let max_depth = depth.iter().copied().max().unwrap_or(0);
    let first_onset = pruned.anomalous().filter_map(|e| e.onset).min();

    // Raw terms per candidate.
    struct Raw {
        lat: Option<Growth>,
        err: Option<Growth>,
        /// Share of a real incoming error-rate growth that the callees explain.
        err_explained: f64,
        /// Share of a real incoming latency growth that the callees explain.
        lat_explained: f64,
    }
    /// Incoming, explained and unexplained growth, and two context values.
    type Growth = (f64, f64, f64, Option<f64>, Option<f64>);
    let raw: Vec<Raw> = sums
        .iter()
        .map(|s| {
            let lat = (s.lat_w > 0.0 && s.lat_anomaly_in).then(|| {
                let incoming = s.lat_wd / s.lat_w;
                let explained = if s.in_w > 0.0 {
                    (s.out_lat_wd - s.out_lat_wd_own_side).max(0.0) / s.in_w
                        + fan_out_change(s, config)
                } else {
                    0.0
                };
                let expected = s.lat_wexp / s.lat_w;
                let ratio = (expected > 0.0).then(|| (s.lat_wcur / s.lat_w) / expected);
                (
                    incoming,
                    explained,
                    incoming - explained,
                    Some(expected),
                    ratio,
                )
            });
            let lat_explained = match lat {
                Some((incoming, explained, ..)) if incoming >= config.min_latency_ms => {
                    (explained / incoming).clamp(0.0, 1.0)
                }
                _ => 0.0,
            };
            let lat = lat.filter(|&(_, _, u, e, _)| {
                u >= config.min_latency_ms && u >= config.min_latency_rel * e.unwrap_or(0.0)
            });
            let err_growth = (s.err_w > 0.0 && s.err_anomaly_in).then(|| {
                let incoming = s.err_wd / s.err_w;
                let explained = if s.in_w > 0.0 {
                    s.out_err_wd / s.in_w
                } else {
                    0.0
                };
                (
                    incoming,
                    explained,
                    incoming - explained,
                    Some(s.err_wexp / s.err_w),
                    Some(s.err_wcur / s.err_w),
                )
            });
            // Failures of the node's callees that its callers do not see (retried,
            // or answered with a fallback) still cost it time: flagged failures out
            // beyond those passed on count as explaining its growth.
            let flagged_out = if s.in_w > 0.0 {
                s.out_err_flagged_wd / s.in_w
            } else {
                0.0
            };
            let err_explained = match err_growth {
                Some((incoming, explained, ..)) if incoming >= config.min_error_rate => {
                    (explained / incoming).clamp(0.0, 1.0)
                }
                _ if flagged_out >= config.min_error_rate => 1.0,
                _ => 0.0,
            };
            let err = err_growth.filter(|&(_, _, u, _, _)| u >= config.min_error_rate);
            Raw {
                lat,
                err,
                err_explained,
                lat_explained,
            }
        })
        .collect();
    // Growth next to growth the node's callees explain is partly induced by them (a
    // blocking caller's workers wait on a slow or failing callee and its queue grows),
    // so it counts in proportion to the share the callees do not explain, of latency
    // or of errors, whichever they explain more of.
    // A node whose callers send it far more calls than usual is loaded by them: its
    // growth counts divided by the load.
    let load: Vec<f64> = sums
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let ratio = if s.req_exp > 0.0 {
                s.req_cur / s.req_exp
            } else {
                1.0
            };
            if s.surge_in && ratio >= 1.0 + config.min_amplification && retriers[i] == 0 {
                ratio
            } else {
                1.0
            }
        })
        .collect();
    let induced = |(incoming, explained, u, _, _): Growth, err_explained: f64| {
        let share = if incoming > 0.0 {
            (explained / incoming).clamp(0.0, 1.0)
        } else {
            0.0
        };
        u * (1.0 - config.induced_discount * share.max(err_explained))
    };
    let max_u = raw
        .iter()
        .filter_map(|r| r.lat.map(|g| induced(g, r.err_explained)))
        .chain(caller_side.iter().flatten().map(|c| c.per_request))
        .fold(0.0, f64::max);
    // Errors next to latency growth the callees explain are mostly time-outs of calls
    // waiting on them: likewise discounted.
    let timeouts = |u: f64, lat_explained: f64| u * (1.0 - config.induced_discount * lat_explained);
    let max_err = raw
        .iter()
        .filter_map(|r| r.err.map(|g| timeouts(g.2, r.lat_explained)))
        .chain(caller_side_errors.iter().flatten().map(|c| c.per_request))
        .fold(0.0, f64::max);

    let w = &config.weights;
    let mut out: Vec<Candidate> = Vec::new();
    for (i, &cluster) in cand.iter().enumerate() {
        let s = &sums[i];
        let r = &raw[i];
        let mut ev = Vec::new();
        if let Some((incoming, explained, u, expected, ratio)) = r.lat {
            // The growth as measured: what every call showed at once back in.
            let fleet_ms = fleet * expected.unwrap_or(0.0);
            ev.push(Evidence::Latency {
                incoming_ms: incoming + fleet_ms,
                explained_ms: explained,
                fleet_ms,
                unexplained_ms: u,
                expected_ms: expected,
                ratio,
                baselines: baselines(s.lat_baselines),
                points: share(
                    w.latency * induced((incoming, explained, u, expected, ratio), r.err_explained)
                        / load[i],
                    max_u,
                ),
            });
        }
        if let Some(c) = &caller_side[i] {
            ev.push(Evidence::CallerSide {
                edge: c.edge,
                callee: c.callee.clone(),
                link_ms: c.link,
                others_ms: c.others,
                per_request_ms: c.per_request,
                points: share(w.latency * c.per_request, max_u),
            });
        }
        if let Some(c) = &caller_side_errors[i] {
            ev.push(Evidence::CallerSideErrors {
                edge: c.edge,
                callee: c.callee.clone(),
                link: c.link,
                others: c.others,
                per_request: c.per_request,
                points: share(w.caller_side_errors * c.per_request, max_err),
            });
        }
        if let Some((incoming, explained, u, expected, current)) = r.err {
            ev.push(Evidence::ErrorRate {
                incoming,
                explained,
                unexplained: u,
                expected,
                current,
                baselines: baselines(s.err_baselines),
                points: share(
                    w.error_rate * timeouts(u, r.lat_explained) / load[i],
                    max_err,
                ),
            });
        }
        if s.req_exp > 0.0 {
            let relative = 1.0 - s.req_cur / s.req_exp;
            if relative >= config.min_request_drop && s.drop_anomaly_in {
                ev.push(Evidence::RequestDrop {
                    current: s.req_cur,
                    expected: s.req_exp,
                    relative,
                    baselines: baselines(s.req_baselines),
                    points: w.request_drop * relative.min(1.0),
                });
            }
        }
        if s.surge_ratio > 0.0 && s.req_exp > 0.0 && s.req_cur > 0.0 {
            let incoming_ratio = s.req_cur / s.req_exp;
            let amp = s.surge_ratio / incoming_ratio;
            // More calls in all, not calls moved from one callee to another (traffic
            // moving between data centres during a rolling update).
            let more = s.out_req_cur - s.out_req_exp * incoming_ratio;
            // Full points when it hurts: the callee or the node itself got slower or
            // fails.
            let hurts = s.surge_hurts || s.lat_anomaly_in || s.err_anomaly_in;
            // Every caller of the callee sending it more calls per request is their
            // answer to its failures (retries), not one caller's own doing.
            let answer = s
                .surge_dst
                .and_then(|d| slot.get(&d))
                .is_some_and(|&j| retriers[j] > 0);
            if amp >= 1.0 + config.min_amplification && more >= 0.5 * s.surge_excess && !answer {
                let harm = if hurts { 1.0 } else { 0.5 };
                ev.push(Evidence::Amplification {
                    incoming_ratio,
                    outgoing_ratio: s.surge_ratio,
                    points: harm * w.amplification * ((amp - 1.0) / 2.0).min(1.0),
                });
            }
        }
        if let (Some((onset, edge)), Some(first)) = (s.onset_in, first_onset) {
            let late = (onset - first).max(0) as f64;
            let scale = config.onset_scale_s.max(1.0);
            ev.push(Evidence::Onset {
                onset,
                first_onset: first,
                edge,
                points: w.onset / (1.0 + late / scale),
            });
        }
        if let Some(link) = links.node(cluster).and_then(|n| n.changes.first()) {
            let change = links.change(link.change_id);
            ev.push(Evidence::ConfigChange {
                change_id: link.change_id,
                author: change.map(|c| c.author.clone()).unwrap_or_default(),
                description: change.map(|c| c.description.clone()).unwrap_or_default(),
                seconds_before_onset: link.seconds_before_onset,
                points: w.config_change,
            });
        }
        let substantive = ev.iter().any(|e| {
            matches!(
                e,
                Evidence::Latency { .. }
                    | Evidence::CallerSide { .. }
                    | Evidence::CallerSideErrors { .. }
                    | Evidence::Amplification { .. }
                    | Evidence::ErrorRate { .. }
                    | Evidence::RequestDrop { .. }
                    | Evidence::ConfigChange { .. }
            )
        });
        if !substantive {
            continue;
        }
        if max_depth > 0 {
            ev.push(Evidence::Depth {
                depth: depth[i],
                max_depth,
                points: w.depth * f64::from(depth[i]) / f64::from(max_depth),
            });
        }
        let score = ev.iter().map(Evidence::points).sum::<f64>();
        let name = cluster_name(catalog, cluster);
        let explanation = explain(
            &name,
            s,
            &ev,
            first_onset,
            pruned,
            retriers[i],
            fleet,
            config,
        );
        out.push(Candidate {
            rank: 0,
            cluster,
            name,
            score,
            depth: depth[i],
            evidence: ev,
            explanation,
        });
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.depth.cmp(&a.depth))
            .then_with(|| a.name.cmp(&b.name))
            .then(a.cluster.cmp(&b.cluster))
    });
    out.truncate(config.max_candidates);
    for (i, c) in out.iter_mut().enumerate() {
        c.rank = i as u32 + 1;
    }
    Ranking {
        candidates: out,
        context,
        fleet_latency_share: fleet,
    }
}

/// How much longer each request into a node waits for its downstream calls because
/// it makes more (or fewer) of them per request than usual, at their usual latency:
/// `Σ_out L̄·(n/N − n̄/N̄)` for calls `n` out and requests `N` in (bars: expected).
/// Zero unless calls per request moved by at least `config.min_fan_out_change`, so
/// that count noise does not leak into the explained growth.
fn fan_out_change(s: &Sums, config: &RankConfig) -> f64 {
    if s.req_cur <= 0.0 || s.req_exp <= 0.0 || s.out_exp_lexp <= 0.0 {
        return 0.0;
    }
    let now = s.out_cur_lexp / s.req_cur;
    let usual = s.out_exp_lexp / s.req_exp;
    if (now - usual).abs() < config.min_fan_out_change * usual {
        return 0.0;
    }
    now - usual
}

/// Growth in one metric on one incoming link of a node that its other callers did not
/// see, put on the caller's side of the link.
#[derive(Debug, Clone)]
struct CallerSideFault {
    edge: EdgeKey,
    callee: String,
    /// The link's change.
    link: f64,
    /// The other callers' request-weighted change.
    others: f64,
    /// The link's change per request into the caller.
    per_request: f64,
}

/// One metric's sums over a node's incoming edges, as [`one_link`] reads them.
#[derive(Debug, Clone, Copy)]
struct IncomingSums {
    w: f64,
    wd: f64,
    /// Weighted expectations, when changes compare relative to them (latency: a callee
    /// that slows down slows every caller's calls in proportion to their usual time).
    wexp: Option<f64>,
    edges: u32,
    /// How many of them are anomalous in the metric.
    anomalous_edges: u32,
    /// The largest share of the link's change the other callers may show when none of
    /// their calls is anomalous.
    quiet_share: f64,
    top: Option<Top>,
    anomalous: bool,
}

/// The caller's slot, the link and the fault when node `i`'s growth in one metric sits
/// on one incoming link: it carries at least `caller_side_share` of the growth, the
/// node's other callers changed by at most `caller_side_others` of the link's change
/// (in the metric's unit and, when `into.wexp` is given, relative to each side's
/// expectation too), or by at most `into.quiet_share` of it when none of their calls
/// is anomalous in the metric,
/// and they carry at least `caller_side_min_weight` of its calls.
fn one_link(
    i: usize,
    into: IncomingSums,
    sums: &[Sums],
    cand: &[ClusterId],
    slot: &HashMap<ClusterId, usize>,
    catalog: &ClusterCatalog,
    config: &RankConfig,
) -> Option<(usize, Top, CallerSideFault)> {
    let top = into.top?;
    if into.edges < 2 || top.wd <= 0.0 || top.w <= 0.0 || !into.anomalous || into.wd <= 0.0 {
        return None;
    }
    let others_w = into.w - top.w;
    if others_w < config.caller_side_min_weight * into.w {
        return None;
    }
    let link = top.wd / top.w;
    let others = (into.wd - top.wd) / others_w;
    let share = others_share((into.w, into.wd, into.wexp), (top.w, top.wd, top.wexp));
    let others_quiet = into.anomalous_edges == u32::from(top.anomalous);
    let others_max = if others_quiet {
        into.quiet_share
    } else {
        config.caller_side_others
    };
    if top.wd < config.caller_side_share * into.wd || share > others_max {
        return None;
    }
    let x = *slot.get(&top.src)?;
    if x == i {
        return None;
    }
    let caller_in = sums[x].in_w;
    let per_request = if caller_in > 0.0 {
        top.wd / caller_in
    } else {
        link
    };
    let fault = CallerSideFault {
        edge: EdgeKey {
            src: top.src,
            dst: cand[i],
        },
        callee: cluster_name(catalog, cand[i]),
        link,
        others,
        per_request,
    };
    Some((x, top, fault))
}

/// The other callers' change as a share of one link's, from the sums over every
/// incoming edge of a callee (`all_*`) and over the link (`link_*`): in the metric's
/// unit, and, when the usual values are known (latency), also relative to each side's
/// usual value, whichever is larger. A callee that adds the same ms to every call, or
/// slows every call in proportion, changes its other callers' calls by one of the two as
/// much as the link's.
///
/// O(1).
fn others_share(all: (f64, f64, Option<f64>), link: (f64, f64, f64)) -> f64 {
    let (all_w, all_wd, all_wexp) = all;
    let (link_w, link_wd, link_wexp) = link;
    let others = (all_wd - link_wd) / (all_w - link_w);
    let mut share = others / (link_wd / link_w);
    if let Some(wexp) = all_wexp
        && link_wexp > 0.0
        && wexp - link_wexp > 0.0
    {
        share = share.max(((all_wd - link_wd) / (wexp - link_wexp)) / (link_wd / link_wexp));
    }
    share
}

/// Marks, in `sums`, the latency growth on each candidate's outgoing links that is on
/// the candidate's side: links not flagged in latency (a flagged one is moved by
/// [`caller_side_moves`]) whose growth the callee's other callers did not see, by the
/// same tests as a flagged link (`caller_side_share`, `caller_side_min_weight`, and
/// `caller_side_others_quiet` or `caller_side_others`). Calls waiting for a slot of
/// the caller's own exhausted pool grow so before any of them is flagged; counted as the
/// callee's doing, they would explain the caller's growth away to a callee that is not
/// even a candidate. Latency only, less the share `fleet` of each call's usual latency
/// every call showed at once.
///
/// O(E + N) for E observations and N clusters.
fn own_side_of_links(
    observations: &[EdgeObservation],
    slot: &HashMap<ClusterId, usize>,
    sums: &mut [Sums],
    fleet: f64,
    config: &RankConfig,
) {
    /// Latency sums over one callee's incoming edges.
    #[derive(Default, Clone, Copy)]
    struct Into {
        w: f64,
        wd: f64,
        wexp: f64,
        edges: u32,
        anomalous: u32,
    }
    if slot.is_empty() {
        return;
    }
    // Cluster ids index a catalog: dense, so plain vectors beat hashing 100,000 edges.
    let n = observations
        .iter()
        .map(|o| o.edge.src.0.max(o.edge.dst.0) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut candidate: Vec<Option<usize>> = vec![None; n];
    for (&c, &i) in slot {
        if let Some(x) = candidate.get_mut(c.0 as usize) {
            *x = Some(i);
        }
    }
    let slow = |o: &EdgeObservation| o.anomalies.iter().any(|a| a.metric == Metric::Latency);
    let mut into: Vec<Into> = vec![Into::default(); n];
    for o in observations {
        if o.edge.src == o.edge.dst {
            continue;
        }
        if let Some(d) = latency_change(o, fleet) {
            let w = o.weight();
            let t = &mut into[o.edge.dst.0 as usize];
            t.w += w;
            t.wd += w * d;
            t.wexp += w * o.latency_ms.expected().unwrap_or(0.0);
            t.edges += 1;
            t.anomalous += u32::from(slow(o));
        }
    }
    for o in observations {
        let Some(i) = candidate[o.edge.src.0 as usize] else {
            continue;
        };
        if o.edge.src == o.edge.dst || slow(o) {
            continue;
        }
        let Some(d) = latency_change(o, fleet).filter(|d| *d > 0.0) else {
            continue;
        };
        let c = into[o.edge.dst.0 as usize];
        let w = o.weight();
        let (wd, wexp) = (w * d, w * o.latency_ms.expected().unwrap_or(0.0));
        if c.edges < 2
            || w <= 0.0
            || c.w - w < config.caller_side_min_weight * c.w
            || wd < config.caller_side_share * c.wd
        {
            continue;
        }
        let quiet = if c.anomalous == 0 {
            config.caller_side_others_quiet
        } else {
            config.caller_side_others
        };
        if others_share((c.w, c.wd, Some(c.wexp)), (w, wd, wexp)) <= quiet {
            sums[i].out_lat_wd_own_side += wd;
        }
    }
}

/// Keeps `fault` for caller `x` when it is the largest so far.
fn keep_largest(out: &mut [Option<CallerSideFault>], x: usize, fault: CallerSideFault) {
    if out[x]
        .as_ref()
        .is_none_or(|f| f.per_request < fault.per_request)
    {
        out[x] = Some(fault);
    }
}

/// Finds nodes whose latency growth sits on one incoming link while their other callers
/// saw none (see [`Evidence::CallerSide`]), takes that link's growth out of the node's
/// sums and returns it for the caller's slot (the largest, when a caller has several).
/// `cand[i]` is the candidate of `sums[i]`, `slot` the reverse.
///
/// O(V) for V candidates.
fn caller_side_moves(
    sums: &mut [Sums],
    cand: &[ClusterId],
    slot: &HashMap<ClusterId, usize>,
    fleet: f64,
    catalog: &ClusterCatalog,
    config: &RankConfig,
) -> Vec<Option<CallerSideFault>> {
    let mut out: Vec<Option<CallerSideFault>> = vec![None; sums.len()];
    for i in 0..sums.len() {
        let s = sums[i];
        let into = IncomingSums {
            w: s.lat_w,
            wd: s.lat_wd,
            wexp: Some(s.lat_wexp),
            edges: s.lat_edges,
            anomalous_edges: s.lat_anomalous_edges,
            quiet_share: config.caller_side_others_quiet,
            top: s.lat_top,
            anomalous: s.lat_anomaly_in,
        };
        let Some((x, top, fault)) = one_link(i, into, sums, cand, slot, catalog, config) else {
            continue;
        };
        if fault.per_request < config.min_latency_ms {
            continue;
        }
        let s = &mut sums[i];
        s.lat_w -= top.w;
        s.lat_wd -= top.wd;
        s.lat_wexp -= top.wexp;
        // Its change was taken less the fleet's share of its usual latency.
        s.lat_wcur -= top.wexp * (1.0 + fleet) + top.wd;
        s.lat_top = None;
        keep_largest(&mut out, x, fault);
    }
    out
}

/// Per candidate: how many callers answer its failures with retries (0: none do). They do
/// when two or more callers that each send it at least `1 + min_amplification` times
/// their usual calls per request carry at least `retry_share` of its usual calls, or
/// when at least one caller does and the callers whose calls it refuses fast, retrying
/// or not, carry that share (see [`fast_failures`]): a callee refusing nearly everyone is
/// failing by itself. One caller alone whose calls fail slowly is that caller's own
/// doing: a retry storm whose time-outs cut calls short, a loop.
///
/// O(E) for E edges in `inside`.
fn retrying_callers(
    inside: &[&EdgeObservation],
    sums: &[Sums],
    slot: &HashMap<ClusterId, usize>,
    fleet: f64,
    config: &RankConfig,
) -> Vec<u32> {
    let n = sums.len();
    let mut amplified = vec![0.0; n];
    let mut fast = vec![0.0; n];
    let mut amplifiers = vec![0u32; n];
    for o in inside {
        if o.edge.src == o.edge.dst {
            continue;
        }
        let (Some(&x), Some(&j)) = (slot.get(&o.edge.src), slot.get(&o.edge.dst)) else {
            continue;
        };
        let (Some(c), Some(e)) = (o.requests.current(), o.requests.expected()) else {
            continue;
        };
        let caller = &sums[x];
        if e <= 0.0 || caller.req_exp <= 0.0 || caller.req_cur <= 0.0 {
            continue;
        }
        let per_request = (c / e) / (caller.req_cur / caller.req_exp);
        if per_request >= 1.0 + config.min_amplification {
            amplified[j] += e;
            amplifiers[j] += 1;
        }
        // Calls it refuses, retried or not: the callee failing by itself.
        if fast_failures(o, per_request.max(1.0), fleet, config) {
            fast[j] += e;
        }
    }
    (0..n)
        // Against every call it usually gets, over edges outside the ranking too.
        .map(|j| {
            let enough = config.retry_share * sums[j].req_exp;
            let retried = (amplifiers[j] >= 2 && amplified[j] >= enough)
                || (amplifiers[j] >= 1 && fast[j] > 0.0 && fast[j] >= enough);
            if retried { amplifiers[j] } else { 0 }
        })
        .collect()
}

/// Whether the link's calls now fail often enough to explain `per_request` times the
/// usual calls as retries, and fail fast.
///
/// Retrying each failure until it succeeds takes `1 / (1 − f)` attempts per call at error
/// rate `f`; the new failures must reach half of the rate that explains `per_request`
/// (retries are often capped, counts are noisy). With the calls that succeed taking their
/// usual latency `l0`, the failed ones took `(l − (1 − f)·l0) / f` on average: fast when
/// under `fast_failure_share · l0`, with `l0` grown by the share `fleet` every call
/// showed at once. A callee that refuses (a dead replica, load shedding, an error it
/// returns at once) fails fast; a caller's time-out below the callee's usual latency
/// fails calls slowly.
///
/// O(1).
fn fast_failures(o: &EdgeObservation, per_request: f64, fleet: f64, config: &RankConfig) -> bool {
    let (Some(f), Some(l), Some(l0)) = (
        o.error_rate.current(),
        o.latency_ms.current(),
        o.latency_ms.expected(),
    ) else {
        return false;
    };
    let f0 = o.error_rate.expected().unwrap_or(0.0);
    if f <= 0.0 || f - f0 < config.min_error_rate.max(0.5 * (1.0 - 1.0 / per_request)) || l0 <= 0.0
    {
        return false;
    }
    let l0 = l0 * (1.0 + fleet);
    let failed = (l - (1.0 - f) * l0) / f;
    failed < config.fast_failure_share * l0
}

/// Finds nodes whose error-rate growth sits on one incoming link while their other
/// callers, with calls enough to have seen it, saw none, and saw no anomalous latency
/// either unless the caller floods it with more calls per request than usual: a callee
/// slower for everyone times out the calls of the caller that waits least (see
/// [`Evidence::CallerSideErrors`]). Takes that link's growth out of the node's incoming
/// sums and out of the caller's explained failures (they are the caller's own), and
/// returns it for the caller's slot (the largest, when a caller has several).
///
/// O(V) for V candidates.
fn caller_side_error_moves(
    sums: &mut [Sums],
    cand: &[ClusterId],
    slot: &HashMap<ClusterId, usize>,
    catalog: &ClusterCatalog,
    config: &RankConfig,
) -> Vec<Option<CallerSideFault>> {
    let mut out: Vec<Option<CallerSideFault>> = vec![None; sums.len()];
    for i in 0..sums.len() {
        let s = sums[i];
        // Only growth that would be evidence against the callee moves to a caller.
        if s.err_wd < config.min_error_rate * s.err_w {
            continue;
        }
        let into = IncomingSums {
            w: s.err_w,
            wd: s.err_wd,
            // Error rates usually sit near zero: compared as they are.
            wexp: None,
            edges: s.err_edges,
            anomalous_edges: s.err_anomalous_edges,
            // Failed calls are counted, not noisy: no leeway for quiet callers.
            quiet_share: config.caller_side_others,
            top: s.err_top,
            anomalous: s.err_anomaly_in,
        };
        let Some((x, top, fault)) = one_link(i, into, sums, cand, slot, catalog, config) else {
            continue;
        };
        // Had the callee failed every caller alike, would the others have seen enough?
        let others_would_see = (s.err_w - top.w) * s.err_wd / s.err_w;
        // A callee that got slower for its other callers too is timing this caller's
        // calls out: its own doing, not the caller's, unless the caller is flooding it.
        let others_slow =
            s.lat_anomalous_edges > u32::from(top.slow) && !top.amplified(&sums[x], config);
        if others_would_see < config.caller_side_min_errors
            || fault.per_request < config.min_error_rate
            || others_slow
        {
            continue;
        }
        let s = &mut sums[i];
        s.err_w -= top.w;
        s.err_wd -= top.wd;
        s.err_wexp -= top.wexp;
        s.err_wcur -= top.wexp + top.wd;
        s.err_top = None;
        let c = &mut sums[x];
        c.out_err_wd = (c.out_err_wd - top.wd).max(0.0);
        c.out_err_flagged_wd = (c.out_err_flagged_wd - top.wd).max(0.0);
        keep_largest(&mut out, x, fault);
    }
    out
}

/// The name of `id`, or `cluster N` when the catalog does not know it.
fn cluster_name(catalog: &ClusterCatalog, id: ClusterId) -> String {
    if (id.0 as usize) < catalog.len() {
        catalog.name(id).to_string()
    } else {
        format!("cluster {}", id.0)
    }
}

/// Longest-path depth of every candidate over the anomalous edges, cycles broken by
/// depth-first back-edge reversal.
fn depths(pruned: &PrunedGraph, slot: &HashMap<ClusterId, usize>, n: usize) -> Vec<u32> {
    let edges: Vec<(u32, u32)> = pruned
        .edges
        .iter()
        .filter(|e| e.role == EdgeRole::Anomalous)
        .filter_map(|e| {
            Some((
                *slot.get(&e.edge.src)? as u32,
                *slot.get(&e.edge.dst)? as u32,
            ))
        })
        .collect();
    let order: Vec<u32> = (0..n as u32).collect();
    let back = dag::back_edges(n, &edges, &order);
    dag::longest_path_layers(n, &edges, &back)
}

/// `value / max`, or 0 when nothing is positive.
fn share(value: f64, max: f64) -> f64 {
    if max > 0.0 {
        (value / max).max(0.0)
    } else {
        0.0
    }
}

/// Words for expectations that did not come from the weekly baseline.
fn against(kinds: &[BaselineKind]) -> Option<String> {
    if kinds.is_empty() || kinds.contains(&BaselineKind::Weekly) {
        return None;
    }
    Some(if kinds.contains(&BaselineKind::Daily) {
        "against previous days".to_string()
    } else {
        "against the recent past (trailing baseline)".to_string()
    })
}

fn minutes(seconds: i64) -> String {
    if seconds.abs() < 60 {
        format!("{} s", seconds.abs())
    } else {
        format!("{} min", (seconds.abs() as f64 / 60.0).round() as i64)
    }
}

#[allow(clippy::too_many_arguments)]
fn explain(
    name: &str,
    s: &Sums,
    evidence: &[Evidence],
    first_onset: Option<Tick>,
    pruned: &PrunedGraph,
    retriers: u32,
    fleet: f64,
    config: &RankConfig,
) -> String {
    let mut lead = format!("calls into {name}");
    let loaded =
        s.surge_in && s.req_exp > 0.0 && s.req_cur / s.req_exp >= 1.0 + config.min_amplification;
    let mut parts: Vec<String> = Vec::new();
    let own_side = if s.in_w > 0.0 {
        s.out_lat_wd_own_side / s.in_w
    } else {
        0.0
    };
    let downstream = |incoming: f64, explained: f64, unit: &str, scale: f64, prec: usize| {
        if s.out_edges == 0 {
            "it makes no downstream calls".to_string()
        } else if explained.abs() < config.unchanged_share * incoming.abs() {
            if own_side >= config.min_latency_ms {
                "its callees explain none of it".to_string()
            } else {
                "its own downstream calls unchanged".to_string()
            }
        } else {
            format!(
                "its downstream calls explain {:+.prec$} {unit} of it",
                explained * scale
            )
        }
    };
    let mut led = false;
    for e in evidence {
        match *e {
            Evidence::Latency {
                incoming_ms,
                explained_ms,
                fleet_ms,
                ratio,
                ref baselines,
                ..
            } => {
                lead.push_str(&format!(" {incoming_ms:+.1} ms"));
                if let Some(r) = ratio {
                    lead.push_str(&format!(" (x{r:.1})"));
                }
                parts.push(downstream(incoming_ms, explained_ms, "ms", 1.0, 1));
                if fleet_ms > 0.0 {
                    parts.push(format!(
                        "{fleet_ms:+.1} ms of it the {:+.0} % every call showed at once, not counted",
                        fleet * 100.0
                    ));
                }
                if own_side >= config.min_latency_ms {
                    parts.push(format!(
                        "its calls grew {own_side:+.1} ms per request that their callees' other callers did not see (its side of the links: pool, network or client)"
                    ));
                }
                parts.extend(against(baselines));
                led = true;
            }
            Evidence::CallerSide {
                ref callee,
                link_ms,
                others_ms,
                ..
            } => {
                let beyond = if fleet > 0.0 {
                    format!(" beyond the {:+.0} % every call showed", fleet * 100.0)
                } else {
                    String::new()
                };
                parts.push(format!(
                    "its calls to {callee} {link_ms:+.1} ms while {callee}'s other callers saw {others_ms:+.1} ms{beyond} (caller side: network, pool or client)"
                ));
            }
            Evidence::CallerSideErrors {
                ref callee,
                link,
                others,
                ..
            } => {
                parts.push(format!(
                    "its calls to {callee} error rate {:+.1} pp while {callee}'s other callers saw {:+.1} pp (caller side: time-outs, retries, pool or network)",
                    link * 100.0,
                    others * 100.0
                ));
            }
            Evidence::Amplification {
                incoming_ratio,
                outgoing_ratio,
                ..
            } => {
                parts.push(format!(
                    "it sends x{outgoing_ratio:.1} calls to a callee on x{incoming_ratio:.1} requests (retries?)"
                ));
            }
            Evidence::ErrorRate {
                incoming,
                explained,
                expected,
                current,
                ..
            } => {
                let pp = format!("error rate {:+.1} pp", incoming * 100.0);
                if led {
                    parts.push(pp);
                } else {
                    lead.push(' ');
                    lead.push_str(&pp);
                    if let (Some(e), Some(c)) = (expected, current) {
                        lead.push_str(&format!(" ({:.1} % -> {:.1} %)", e * 100.0, c * 100.0));
                    }
                    parts.push(downstream(incoming, explained, "pp", 100.0, 1));
                    if let Evidence::ErrorRate { baselines, .. } = e {
                        parts.extend(against(baselines));
                    }
                    led = true;
                }
            }
            Evidence::RequestDrop { relative, .. } => {
                parts.push(format!("requests -{:.0} %", relative * 100.0));
            }
            Evidence::Onset { onset, .. } => {
                let later = pruned
                    .anomalous()
                    .filter_map(|e| e.onset)
                    .any(|t| t > onset);
                if Some(onset) == first_onset && later {
                    parts.push("went anomalous first".to_string());
                }
            }
            Evidence::ConfigChange {
                change_id,
                ref author,
                seconds_before_onset,
                ..
            } => {
                let when = if seconds_before_onset >= 0 {
                    format!("{} before onset", minutes(seconds_before_onset))
                } else {
                    format!("{} after onset", minutes(seconds_before_onset))
                };
                let by = if author.is_empty() {
                    String::new()
                } else {
                    format!(" by {author}")
                };
                parts.push(format!("config change #{change_id}{by} {when}"));
            }
            Evidence::Depth { .. } => {}
        }
    }
    if loaded {
        let r = s.req_cur / s.req_exp;
        parts.push(if retriers == 1 {
            format!("its caller retries it: x{r:.1} the usual calls")
        } else if retriers > 1 {
            format!("its callers retry it: x{r:.1} the usual calls")
        } else {
            format!("its callers send x{r:.1} the usual calls")
        });
    }
    if parts.is_empty() {
        lead
    } else if led {
        format!("{lead}; {}", parts.join("; "))
    } else {
        format!("{lead}: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeAnomaly, EdgeObservation};
    use crate::link::{ConfigChange, LinkConfig, link};
    use crate::model::Cluster;
    use crate::prune::{PruneOptions, prune};
    use proptest::prelude::*;

    const ONSET: Tick = 1_700_000_100;
    const NOW: Tick = ONSET + 600;

    fn catalog(names: &[&str]) -> ClusterCatalog {
        let mut c = ClusterCatalog::new();
        for n in names {
            c.insert(Cluster {
                name: (*n).into(),
                service: (*n).into(),
                dc: None,
                tier: None,
            });
        }
        c
    }

    fn key(c: &ClusterCatalog, a: &str, b: &str) -> EdgeKey {
        EdgeKey {
            src: c.id(a).unwrap(),
            dst: c.id(b).unwrap(),
        }
    }

    /// The messaging incident: history loads slowly because the storage cluster holding
    /// conversations slowed down; errors rise and users give up.
    fn messaging_incident() -> (ClusterCatalog, CallGraph, Vec<ConfigChange>) {
        let cat = catalog(&[
            "mobile-web",
            "messaging",
            "messaging-proxy",
            "messaging-conversation-cdb",
            "user-cache",
            "auth",
        ]);
        let k = |a, b| key(&cat, a, b);
        let lat = |e: f64, c: f64, sev: f64, onset: Tick| {
            EdgeAnomaly::new(Metric::Latency, c, e, sev, onset)
        };
        let fewer = |e: f64, c: f64| EdgeAnomaly::new(Metric::Requests, c, e, 0.8, ONSET + 300);
        let obs = vec![
            EdgeObservation::new(k("mobile-web", "messaging"))
                .with_requests(20_000.0, 15_000.0)
                .with_latency(35.0, 35.5)
                .with_error_rate(0.001, 0.0015)
                .with_anomaly(lat(35.0, 35.5, 0.1, ONSET + 300))
                .with_anomaly(fewer(20_000.0, 15_000.0)),
            EdgeObservation::new(k("messaging", "messaging-proxy"))
                .with_requests(1_000.0, 750.0)
                .with_latency(18.0, 28.0)
                .with_error_rate(0.002, 0.012)
                .with_anomaly(lat(18.0, 28.0, 1.2, ONSET))
                .with_anomaly(fewer(1_000.0, 750.0)),
            EdgeObservation::new(k("messaging-proxy", "messaging-conversation-cdb"))
                .with_requests(250.0, 190.0)
                .with_latency(19.0, 59.0)
                .with_error_rate(0.004, 0.044)
                .with_anomaly(lat(19.0, 59.0, 4.5, ONSET))
                .with_anomaly(EdgeAnomaly::new(
                    Metric::ErrorRate,
                    0.044,
                    0.004,
                    3.0,
                    ONSET,
                )),
            // Quiet edges around the incident.
            EdgeObservation::new(k("messaging", "user-cache"))
                .with_requests(9_000.0, 8_700.0)
                .with_latency(0.8, 0.81)
                .with_error_rate(0.0, 0.0),
            EdgeObservation::new(k("messaging-proxy", "auth"))
                .with_requests(960.0, 960.0)
                .with_latency(2.0, 2.05)
                .with_error_rate(0.0, 0.0),
            EdgeObservation::new(k("auth", "user-cache"))
                .with_requests(960.0, 960.0)
                .with_latency(0.5, 0.5),
            EdgeObservation::new(k("messaging-conversation-cdb", "messaging-proxy"))
                .with_requests(5.0, 5.0)
                .with_latency(1.0, 1.0),
        ];
        let changes = vec![
            ConfigChange {
                id: 812,
                ts: ONSET - 360,
                author: "alice".into(),
                clusters: vec![cat.id("messaging-conversation-cdb").unwrap()],
                description: "compaction threads 8 -> 2".into(),
                link: Some("https://changes.example/812".into()),
            },
            ConfigChange {
                id: 790,
                ts: ONSET - 86_400,
                author: "bob".into(),
                clusters: vec![cat.id("messaging").unwrap()],
                description: "old change".into(),
                link: None,
            },
        ];
        (cat, CallGraph::new(obs).unwrap(), changes)
    }

    fn run(cat: &ClusterCatalog, g: &CallGraph, changes: &[ConfigChange]) -> Ranking {
        let pruned = prune(g, &[], NOW, &PruneOptions::default());
        let links = link(&pruned, changes, &[], &LinkConfig::default());
        rank(g, &pruned, &links, cat, &RankConfig::default())
    }

    #[test]
    fn messaging_incident_ranks_the_conversation_store_first() {
        let (cat, g, changes) = messaging_incident();
        let r = run(&cat, &g, &changes);
        let top = &r.candidates[0];
        assert_eq!(top.name, "messaging-conversation-cdb");
        assert!(
            top.explanation.starts_with(
                "calls into messaging-conversation-cdb +40.0 ms (x3.1); its own downstream calls unchanged"
            ),
            "{}",
            top.explanation
        );
        assert!(
            top.explanation
                .contains("config change #812 by alice 6 min before onset")
        );
        insta::assert_json_snapshot!("messaging_incident_ranking", r);
    }

    #[test]
    fn downstream_explained_growth_is_not_blamed_on_the_caller() {
        let (cat, g, changes) = messaging_incident();
        let r = run(&cat, &g, &changes);
        // The proxy's +10 ms is fully explained by its calls into the store.
        let proxy = cat.id("messaging-proxy").unwrap();
        let p = r.candidates.iter().find(|c| c.cluster == proxy);
        assert!(p.is_none_or(|p| {
            !p.evidence
                .iter()
                .any(|e| matches!(e, Evidence::Latency { .. }))
        }));
    }

    #[test]
    fn a_slow_middle_node_beats_its_quiet_callee() {
        let cat = catalog(&["a", "b", "c"]);
        let k = |x, y| key(&cat, x, y);
        let g = CallGraph::new(vec![
            EdgeObservation::new(k("a", "b"))
                .with_requests(100.0, 100.0)
                .with_latency(10.0, 30.0)
                .with_anomaly(EdgeAnomaly::new(Metric::Latency, 30.0, 10.0, 2.0, 0)),
            EdgeObservation::new(k("b", "c"))
                .with_requests(100.0, 100.0)
                .with_latency(5.0, 5.2),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "b");
        assert!(
            r.candidates[0]
                .explanation
                .contains("its own downstream calls unchanged"),
            "{}",
            r.candidates[0].explanation
        );
    }

    /// `front → {a, b} → db`, `a → db` and `b → db` with `db` seen by both callers.
    fn two_callers(
        a_db: (f64, f64),
        b_db: (f64, f64),
        anomalous: &[&str],
    ) -> (ClusterCatalog, CallGraph) {
        let cat = catalog(&["front", "a", "b", "db"]);
        let edge = |x: &str, y: &str, e: f64, c: f64, req: f64| {
            let mut o = EdgeObservation::new(key(&cat, x, y))
                .with_requests(req, req)
                .with_latency(e, c);
            if anomalous.contains(&format!("{x}>{y}").as_str()) {
                o = o.with_anomaly(EdgeAnomaly::new(Metric::Latency, c, e, 2.0, ONSET));
            }
            o
        };
        let g = CallGraph::new(vec![
            edge("front", "a", 20.0 + a_db.0, 20.0 + a_db.1, 100.0),
            edge("front", "b", 20.0 + b_db.0, 20.0 + b_db.1, 100.0),
            edge("a", "db", a_db.0, a_db.1, 100.0),
            edge("b", "db", b_db.0, b_db.1, 100.0),
        ])
        .unwrap();
        (cat, g)
    }

    #[test]
    fn a_slow_link_seen_by_one_caller_is_blamed_on_that_caller() {
        // a's calls to db are 30 ms slower; b sees db as usual: the delay is on a's side.
        let (cat, g) = two_callers((5.0, 35.0), (5.0, 5.1), &["front>a", "a>db"]);
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "a", "{:#?}", r.candidates);
        let ev = &r.candidates[0].evidence;
        assert!(
            ev.iter()
                .any(|e| matches!(e, Evidence::CallerSide { callee, link_ms, .. }
                if callee == "db" && (*link_ms - 30.0).abs() < 1e-9)),
            "{ev:?}"
        );
        assert!(
            r.candidates[0].explanation.contains("caller side"),
            "{}",
            r.candidates[0].explanation
        );
        let db = cat.id("db").unwrap();
        assert!(r.rank_of(db).is_none_or(|k| k > 1));
    }

    #[test]
    fn a_slow_callee_seen_by_every_caller_is_blamed_on_the_callee() {
        for (a_db, b_db) in [
            // Both callers' calls 30 ms slower.
            ((5.0, 35.0), (5.0, 33.0)),
            // db takes twice as long for everyone: a's heavy queries gain 40 ms, b's
            // light ones 3 ms. In ms b barely moved; relative to their usual time both
            // doubled.
            ((40.0, 80.0), (3.0, 6.0)),
        ] {
            let (cat, g) = two_callers(a_db, b_db, &["front>a", "a>db", "front>b", "b>db"]);
            let r = run(&cat, &g, &[]);
            assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
            assert!(!r.candidates.iter().any(|c| {
                c.evidence
                    .iter()
                    .any(|e| matches!(e, Evidence::CallerSide { .. }))
            }));
        }
    }

    #[test]
    fn a_caller_that_multiplies_its_calls_is_blamed_not_the_loaded_callee() {
        // a retries db blindly: 5x the calls on the same requests; db, loaded, slows
        // down and fails.
        let cat = catalog(&["front", "a", "db"]);
        let k = |x, y| key(&cat, x, y);
        let g = CallGraph::new(vec![
            EdgeObservation::new(k("front", "a"))
                .with_requests(100.0, 100.0)
                .with_latency(30.0, 90.0)
                .with_error_rate(0.0, 0.05)
                .with_anomaly(EdgeAnomaly::new(Metric::Latency, 90.0, 30.0, 2.0, ONSET)),
            EdgeObservation::new(k("a", "db"))
                .with_requests(100.0, 500.0)
                .with_latency(10.0, 25.0)
                .with_error_rate(0.0, 0.3)
                .with_anomaly(EdgeAnomaly::new(Metric::Requests, 500.0, 100.0, 3.0, ONSET))
                .with_anomaly(EdgeAnomaly::new(Metric::Latency, 25.0, 10.0, 2.0, ONSET))
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.3, 0.0, 3.0, ONSET)),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "a", "{:#?}", r.candidates);
        assert!(r.candidates[0].evidence.iter().any(|e| matches!(
            e,
            Evidence::Amplification { outgoing_ratio, incoming_ratio, .. }
                if (*outgoing_ratio - 5.0).abs() < 1e-9 && (*incoming_ratio - 1.0).abs() < 1e-9
        )));
        let db = r.candidates.iter().find(|c| c.name == "db").unwrap();
        assert!(
            db.explanation
                .contains("its callers send x5.0 the usual calls"),
            "{}",
            db.explanation
        );
    }

    #[test]
    fn more_calls_per_request_at_the_usual_latency_explain_a_callers_growth() {
        // b makes 2 calls to c per request instead of 1, each as fast as ever: b's
        // +10 ms is explained by its calls, not unexplained time inside b.
        let cat = catalog(&["a", "b", "c"]);
        let k = |x, y| key(&cat, x, y);
        let g = CallGraph::new(vec![
            EdgeObservation::new(k("a", "b"))
                .with_requests(100.0, 100.0)
                .with_latency(20.0, 30.0)
                .with_anomaly(EdgeAnomaly::new(Metric::Latency, 30.0, 20.0, 2.0, ONSET)),
            EdgeObservation::new(k("b", "c"))
                .with_requests(100.0, 200.0)
                .with_latency(10.0, 10.0),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        let b = r.candidates.iter().find(|c| c.name == "b");
        assert!(
            b.is_none_or(|b| !b
                .evidence
                .iter()
                .any(|e| matches!(e, Evidence::Latency { .. }))),
            "{b:#?}"
        );
    }

    #[test]
    fn a_link_the_other_callers_share_a_little_of_is_the_callers_only_while_they_are_quiet() {
        // a's calls to db +10 ms (x2.0); b's +2.4 ms (x1.24): 24 % of a's change, in ms
        // and relative alike. Machine-wide noise moves a quiet caller that much.
        let (cat, g) = two_callers((10.0, 20.0), (10.0, 12.4), &["front>a", "a>db"]);
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "a", "{:#?}", r.candidates);
        assert!(
            r.candidates[0]
                .evidence
                .iter()
                .any(|e| matches!(e, Evidence::CallerSide { callee, .. } if callee == "db")),
            "{:?}",
            r.candidates[0].evidence
        );
        // The same numbers with b's calls flagged: db slowed for b too.
        let (cat, g) = two_callers(
            (10.0, 20.0),
            (10.0, 12.4),
            &["front>a", "a>db", "front>b", "b>db"],
        );
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
    }

    /// `r` (ranked by [`run`]) ranked again as a snapshot does: from the pruned graph's
    /// observations, the ranking's context and its fleet share.
    fn replayed(cat: &ClusterCatalog, g: &CallGraph, r: &Ranking) -> Ranking {
        let pruned = prune(g, &[], NOW, &PruneOptions::default());
        rank_from(
            g.observations()
                .iter()
                .filter(|o| pruned.edge(o.edge).is_some()),
            r.context.clone(),
            r.fleet_latency_share,
            &pruned,
            &Links::default(),
            cat,
            &RankConfig::default(),
        )
    }

    /// A front calling nine services, each with a store of its own, on a tick when the
    /// whole machine is slower: every call takes the share `blip` more than usual (a
    /// store's 5 ms, a service's 15 ms and what it calls). `extra` adds calls from the
    /// services, `(caller, callee, usual ms, ms now, calls)`, a hundred requests coming
    /// into each service; `flagged` lists the calls flagged in latency.
    fn slower_machine(
        blip: f64,
        extra: &[(&str, &str, f64, f64, f64)],
        flagged: &[&str],
    ) -> (ClusterCatalog, Vec<EdgeObservation>) {
        let mut names = vec!["front".to_string(), "catalog".to_string()];
        for i in 1..=9 {
            names.push(format!("s{i}"));
            names.push(format!("st{i}"));
        }
        let cat = catalog(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let edge = |x: &str, y: &str, e: f64, c: f64, w: f64| {
            let mut o = EdgeObservation::new(key(&cat, x, y))
                .with_requests(w, w)
                .with_latency(e, c)
                .with_error_rate(0.0, 0.0);
            if flagged.contains(&format!("{x}>{y}").as_str()) {
                o = o.with_anomaly(EdgeAnomaly::new(Metric::Latency, c, e, 2.0, ONSET));
            }
            o
        };
        let mut obs = Vec::new();
        for i in 1..=9 {
            let (s, st) = (format!("s{i}"), format!("st{i}"));
            let below = |f: fn(&(&str, &str, f64, f64, f64)) -> f64| -> f64 {
                extra
                    .iter()
                    .filter(|x| x.0 == s)
                    .map(|x| f(x) * x.4 / 100.0)
                    .sum()
            };
            let (usual, now) = (below(|x| x.2), below(|x| x.3));
            obs.push(edge(&s, &st, 5.0, 5.0 * (1.0 + blip), 100.0));
            obs.push(edge(
                "front",
                &s,
                15.0 + usual,
                15.0 * (1.0 + blip) + now,
                100.0,
            ));
        }
        for &(x, y, e, c, w) in extra {
            obs.push(edge(x, y, e, c, w));
        }
        (cat, obs)
    }

    #[test]
    fn growth_every_call_shows_at_once_is_no_ones_own() {
        // Every call 20 % slower; two of them flagged; st3 fails a third of its calls.
        let (cat, mut obs) = slower_machine(0.2, &[], &["front>s1", "s1>st1"]);
        let st3 = key(&cat, "s3", "st3");
        for o in obs.iter_mut().filter(|o| o.edge == st3) {
            *o = o
                .clone()
                .with_error_rate(0.0, 0.3)
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.3, 0.0, 5.0, ONSET));
        }
        let g = CallGraph::new(obs).unwrap();
        let r = run(&cat, &g, &[]);
        assert!(
            (r.fleet_latency_share - 0.2).abs() < 1e-9,
            "{}",
            r.fleet_latency_share
        );
        assert_eq!(r.candidates[0].name, "st3", "{:#?}", r.candidates);
        assert!(
            r.candidates.iter().all(|c| !c
                .evidence
                .iter()
                .any(|e| matches!(e, Evidence::Latency { .. }))),
            "{:#?}",
            r.candidates
        );
        // Counted as the calls' own, the blip makes s1 or its store a cause.
        let pruned = prune(&g, &[], NOW, &PruneOptions::default());
        let off = RankConfig {
            fleet_min_edges: 0,
            ..RankConfig::default()
        };
        let r_off = rank(&g, &pruned, &Links::default(), &cat, &off);
        assert_eq!(r_off.fleet_latency_share, 0.0);
        assert!(
            r_off.rank_of(cat.id("st1").unwrap()).is_some()
                || r_off.rank_of(cat.id("s1").unwrap()).is_some(),
            "{:#?}",
            r_off.candidates
        );
        // Too few calls to tell a fleet from a fault: nothing is taken out.
        let few = RankConfig {
            fleet_min_edges: 19,
            ..RankConfig::default()
        };
        let r_few = rank(&g, &pruned, &Links::default(), &cat, &few);
        assert_eq!(r_few.fleet_latency_share, 0.0);
        // Below the smallest relative latency evidence, it is noise.
        let (_, quiet) = slower_machine(0.03, &[], &[]);
        assert_eq!(fleet_latency_share(&quiet, &RankConfig::default()), 0.0);
        // A fault that slows half the calls, however much, is no fleet's.
        let (_, half) = slower_machine(0.0, &[], &[]);
        let half: Vec<EdgeObservation> = half
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                if i < 10 {
                    let (e, c) = (
                        o.latency_ms.expected().unwrap(),
                        o.latency_ms.current().unwrap(),
                    );
                    o.with_latency(e, c * 3.0)
                } else {
                    o
                }
            })
            .collect();
        assert_eq!(fleet_latency_share(&half, &RankConfig::default()), 0.0);
    }

    #[test]
    fn a_caller_side_delay_is_told_from_a_slower_machine() {
        // Every call 15 % slower. s2's calls to catalog wait 16.4 ms more on top (a
        // delaying proxy on its side); s1, catalog's heavier caller, saw the 15 % (6 ms):
        // by weight, s2's link carries under four fifths of catalog's growth.
        let extra = [
            ("s1", "catalog", 40.0, 46.0, 65.0),
            ("s2", "catalog", 40.0, 62.4, 25.0),
        ];
        let (cat, obs) = slower_machine(0.15, &extra, &["front>s2", "s2>catalog"]);
        let g = CallGraph::new(obs).unwrap();
        let r = run(&cat, &g, &[]);
        assert!(
            (r.fleet_latency_share - 0.15).abs() < 1e-9,
            "{}",
            r.fleet_latency_share
        );
        assert_eq!(r.candidates[0].name, "s2", "{:#?}", r.candidates);
        let why = &r.candidates[0].explanation;
        assert!(
            why.contains("its calls to catalog +16.4 ms while catalog's other callers saw +0.0 ms beyond the +15 % every call showed"),
            "{why}"
        );
        assert_eq!(
            r.rank_of(cat.id("catalog").unwrap()),
            None,
            "{:#?}",
            r.candidates
        );
        // A snapshot replays it from its observations, context and fleet share.
        assert_eq!(replayed(&cat, &g, &r), r);
        let pruned = prune(&g, &[], NOW, &PruneOptions::default());
        // Without the fleet's share, catalog looks slower for both callers and is blamed.
        let off = RankConfig {
            fleet_min_edges: 0,
            ..RankConfig::default()
        };
        let r_off = rank(&g, &pruned, &Links::default(), &cat, &off);
        assert_eq!(
            r_off.candidates[0].name, "catalog",
            "{:#?}",
            r_off.candidates
        );
    }

    #[test]
    fn growth_on_an_unflagged_link_the_callees_other_callers_did_not_see_stays_with_the_caller() {
        // front>a +20 ms, flagged; a's calls to db +20 ms (unflagged yet: a pool of a's own,
        // exhausted, makes them wait), b's calls to db as usual. db is no candidate, so
        // counting the link's growth as db's would explain a's away to nobody.
        let (cat, g) = two_callers((10.0, 30.0), (10.0, 10.2), &["front>a"]);
        let r = run(&cat, &g, &[]);
        assert_eq!(
            r.candidates.first().map(|c| c.name.as_str()),
            Some("a"),
            "{:#?}",
            r.candidates
        );
        let unexplained = r.candidates[0].evidence.iter().find_map(|e| match e {
            Evidence::Latency { unexplained_ms, .. } => Some(*unexplained_ms),
            _ => None,
        });
        assert!(
            unexplained.is_some_and(|u| (u - 20.0).abs() < 1e-9),
            "{:?}",
            r.candidates[0].evidence
        );
        let why = &r.candidates[0].explanation;
        assert!(
            why.contains("its callees explain none of it")
                && why.contains("its calls grew +20.0 ms per request that their callees' other callers did not see"),
            "{why}"
        );
        // The ranking replays from the snapshot's observations and context.
        assert_eq!(replayed(&cat, &g, &r).candidates, r.candidates);
        // db slower for b too: the link's growth is db's, and a has none of its own.
        let (cat, g) = two_callers((10.0, 30.0), (10.0, 25.0), &["front>a"]);
        let r = run(&cat, &g, &[]);
        assert_eq!(r.rank_of(cat.id("a").unwrap()), None, "{:#?}", r.candidates);
    }

    /// `front → {a, b} → db`: db slowed for both (flagged), a's calls to it fail at 30 %
    /// (its time-outs), b's do not; a sends db `a_calls` calls per 100 requests (100
    /// usually).
    fn time_outs_on_one_link(a_calls: f64) -> (ClusterCatalog, Ranking) {
        let cat = catalog(&["front", "a", "b", "db"]);
        let k = |x, y| key(&cat, x, y);
        let slow = |x, y, req: f64, exp_req: f64, err: f64| {
            let mut o = EdgeObservation::new(k(x, y))
                .with_requests(exp_req, req)
                .with_latency(10.0, 40.0)
                .with_error_rate(0.0, err)
                .with_anomaly(EdgeAnomaly::new(Metric::Latency, 40.0, 10.0, 3.0, ONSET));
            if err > 0.0 {
                o = o.with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, err, 0.0, 3.0, ONSET));
            }
            if req != exp_req {
                o = o.with_anomaly(EdgeAnomaly::new(Metric::Requests, req, exp_req, 3.0, ONSET));
            }
            o
        };
        let g = CallGraph::new(vec![
            slow("front", "a", 100.0, 100.0, 0.1),
            slow("front", "b", 100.0, 100.0, 0.0),
            slow("a", "db", a_calls, 100.0, 0.3),
            slow("b", "db", 100.0, 100.0, 0.0),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        (cat, r)
    }

    #[test]
    fn time_outs_on_a_callee_slower_for_everyone_are_the_callees_unless_the_caller_floods_it() {
        let side = |r: &Ranking, name: &str| {
            r.candidates.iter().any(|c| {
                c.name == name
                    && c.evidence
                        .iter()
                        .any(|e| matches!(e, Evidence::CallerSideErrors { .. }))
            })
        };
        let (_, r) = time_outs_on_one_link(100.0);
        assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
        assert!(!side(&r, "a"), "{:#?}", r.candidates);
        // a sends db 2.5 times its usual calls: its own flood, failing on its side.
        let (_, r) = time_outs_on_one_link(250.0);
        assert_eq!(r.candidates[0].name, "a", "{:#?}", r.candidates);
        assert!(side(&r, "a"), "{:#?}", r.candidates);
    }

    /// `front` calls `a` and `b`, both call `db`: `a>db` fails at `a_err` and `b>db` at
    /// `b_err` on `b_req` calls (both usually at 0), every failing link flagged.
    fn failing_links(a_err: f64, b_err: f64, b_req: f64) -> (ClusterCatalog, CallGraph) {
        let cat = catalog(&["front", "a", "b", "db"]);
        let k = |x, y| key(&cat, x, y);
        let link = |x, y, req: f64, err: f64| {
            let o = EdgeObservation::new(k(x, y))
                .with_requests(req, req)
                .with_latency(5.0, 5.0)
                .with_error_rate(0.0, err);
            if err > 0.0 {
                o.with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, err, 0.0, 3.0, ONSET))
            } else {
                o
            }
        };
        let g = CallGraph::new(vec![
            link("front", "a", 100.0, a_err / 3.0),
            link("front", "b", b_req, b_err / 3.0),
            link("a", "db", 100.0, a_err),
            link("b", "db", b_req, b_err),
        ])
        .unwrap();
        (cat, g)
    }

    #[test]
    fn failures_made_on_one_callers_side_are_blamed_on_that_caller() {
        // a's calls to db fail 30 % of the time (its time-outs, its pool); b makes as many
        // calls to db and sees none fail: db answers, a gives up.
        let (cat, g) = failing_links(0.3, 0.0, 100.0);
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "a", "{:#?}", r.candidates);
        let a = &r.candidates[0];
        assert!(
            a.evidence.iter().any(|e| matches!(e,
                Evidence::CallerSideErrors { callee, link, others, .. }
                    if callee == "db" && (*link - 0.3).abs() < 1e-9 && others.abs() < 1e-9)),
            "{:?}",
            a.evidence
        );
        // Its own failures are not explained away by the link it fails itself.
        assert!(
            a.evidence.iter().any(
                |e| matches!(e, Evidence::ErrorRate { unexplained, .. } if *unexplained > 0.09)
            ),
            "{:?}",
            a.evidence
        );
        assert!(a.explanation.contains("caller side"), "{}", a.explanation);
        let db = cat.id("db").unwrap();
        assert!(r.rank_of(db).is_none(), "{:#?}", r.candidates);
    }

    #[test]
    fn failures_seen_by_every_caller_or_unseeable_by_the_others_stay_on_the_callee() {
        // Both callers see db fail: db's.
        let (cat, g) = failing_links(0.3, 0.28, 100.0);
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
        // b makes 12 calls: had db failed every caller alike (at 18 %), b would have seen
        // 2.1 failures, too few to tell.
        let (cat, g) = failing_links(0.2, 0.0, 12.0);
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
        assert!(!r.candidates.iter().any(|c| {
            c.evidence
                .iter()
                .any(|e| matches!(e, Evidence::CallerSideErrors { .. }))
        }));
    }

    /// front → checkout → payments, as a live run saw them: checkout is payments' only
    /// caller and sends it `calls` per request where it sent 20, which fail at `fail`
    /// and take `ms` on average where they took 10 ms.
    fn single_caller_retries(calls: f64, fail: f64, ms: f64) -> Ranking {
        let cat = catalog(&["front", "checkout", "payments"]);
        let k = |x, y| key(&cat, x, y);
        let g = CallGraph::new(vec![
            EdgeObservation::new(k("front", "checkout"))
                .with_requests(20.0, 20.0)
                .with_latency(45.0, 65.0)
                .with_error_rate(0.0, 0.04)
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.04, 0.0, 3.0, ONSET)),
            EdgeObservation::new(k("checkout", "payments"))
                .with_requests(20.0, calls)
                .with_latency(10.0, ms)
                .with_error_rate(0.0, fail)
                .with_anomaly(EdgeAnomaly::new(Metric::Requests, calls, 20.0, 4.0, ONSET))
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, fail, 0.0, 5.0, ONSET)),
        ])
        .unwrap();
        run(&cat, &g, &[])
    }

    #[test]
    fn one_caller_retrying_fast_failures_leaves_the_cause_on_the_callee() {
        // A dead replica refuses half the calls at once; checkout retries them.
        let r = single_caller_retries(46.0, 0.48, 5.5);
        assert_eq!(r.candidates[0].name, "payments", "{:#?}", r.candidates);
        let checkout = r.candidates.iter().find(|c| c.name == "checkout");
        assert!(
            checkout.is_none_or(|c| !c
                .evidence
                .iter()
                .any(|e| matches!(e, Evidence::Amplification { .. }))),
            "{checkout:#?}"
        );
        assert!(
            r.candidates[0]
                .explanation
                .contains("its caller retries it"),
            "{}",
            r.candidates[0].explanation
        );
    }

    #[test]
    fn a_callee_refusing_every_caller_is_the_cause_though_only_a_small_caller_retries() {
        // db refuses 40 % of calls at once. catalog, with most of db's calls, gives up
        // after one try; worker retries: twice its calls. Refused by everyone, db is
        // failing by itself, and worker's retries answer it.
        let cat = catalog(&["front", "catalog", "worker", "db"]);
        let k = |x, y| key(&cat, x, y);
        let refused = |x, y, usual: f64, now: f64| {
            let mut o = EdgeObservation::new(k(x, y))
                .with_requests(usual, now)
                .with_latency(8.0, 4.8)
                .with_error_rate(0.0, 0.4)
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.4, 0.0, 5.0, ONSET));
            if now != usual {
                o = o.with_anomaly(EdgeAnomaly::new(Metric::Requests, now, usual, 4.0, ONSET));
            }
            o
        };
        let caller = |x, err: f64| {
            EdgeObservation::new(k("front", x))
                .with_requests(100.0, 100.0)
                .with_latency(30.0, 30.0)
                .with_error_rate(0.0, err)
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, err, 0.0, 3.0, ONSET))
        };
        let g = CallGraph::new(vec![
            caller("catalog", 0.4),
            caller("worker", 0.16),
            refused("catalog", "db", 300.0, 300.0),
            refused("worker", "db", 50.0, 100.0),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
        let worker = r.candidates.iter().find(|c| c.name == "worker");
        assert!(
            worker.is_none_or(|c| !c
                .evidence
                .iter()
                .any(|e| matches!(e, Evidence::Amplification { .. }))),
            "{worker:#?}"
        );
    }

    #[test]
    fn one_caller_whose_calls_fail_slowly_or_too_rarely_is_the_storm() {
        // Time-outs at 8 ms cut calls that take 10 ms short: the failures are slow.
        let slow = single_caller_retries(200.0, 0.98, 8.0);
        // Fast failures, but far too few to explain ten times the calls.
        let rare = single_caller_retries(200.0, 0.2, 8.0);
        for r in [slow, rare] {
            assert_eq!(r.candidates[0].name, "checkout", "{:#?}", r.candidates);
            assert!(
                r.candidates[0]
                    .evidence
                    .iter()
                    .any(|e| matches!(e, Evidence::Amplification { .. })),
                "{:#?}",
                r.candidates
            );
        }
    }

    #[test]
    fn a_killed_replica_retried_by_its_callers_outranks_the_slower_callers() {
        // db lost a replica: half its calls are refused, fast. a and b retry after a
        // back-off, so their callers see no failures, only a and b getting slower.
        let cat = catalog(&["front", "a", "b", "db"]);
        let k = |x, y| key(&cat, x, y);
        let slower = |x, y| {
            EdgeObservation::new(k(x, y))
                .with_requests(100.0, 100.0)
                .with_latency(20.0, 60.0)
                .with_error_rate(0.0, 0.0)
                .with_anomaly(EdgeAnomaly::new(Metric::Latency, 60.0, 20.0, 3.0, ONSET))
        };
        let refused = |x, y| {
            EdgeObservation::new(k(x, y))
                .with_requests(100.0, 200.0)
                .with_latency(2.0, 1.0)
                .with_error_rate(0.0, 0.5)
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.5, 0.0, 5.0, ONSET))
        };
        let g = CallGraph::new(vec![
            slower("front", "a"),
            slower("front", "b"),
            refused("a", "db"),
            refused("b", "db"),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        assert_eq!(r.candidates[0].name, "db", "{:#?}", r.candidates);
        for caller in ["a", "b"] {
            let c = r.candidates.iter().find(|c| c.name == caller);
            assert!(
                c.is_none_or(|c| c.score < r.candidates[0].score / 2.0),
                "{c:#?}"
            );
        }
    }

    #[test]
    fn evidence_names_the_baseline_behind_its_expectations() {
        use crate::graph::Delta;
        let cat = catalog(&["a", "b"]);
        let mut o = EdgeObservation::new(key(&cat, "a", "b"))
            .with_requests(100.0, 100.0)
            .with_anomaly(EdgeAnomaly::new(Metric::Latency, 30.0, 10.0, 2.0, ONSET));
        o.latency_ms = Delta::new(10.0, 30.0).with_baseline(BaselineKind::Trailing);
        let r = run(&cat, &CallGraph::new(vec![o]).unwrap(), &[]);
        let c = &r.candidates[0];
        assert!(
            c.evidence
                .iter()
                .any(|e| matches!(e, Evidence::Latency { baselines, .. }
            if baselines == &[BaselineKind::Trailing]))
        );
        assert!(
            c.explanation
                .contains("against the recent past (trailing baseline)"),
            "{}",
            c.explanation
        );
    }

    #[test]
    fn cycles_and_self_loops_rank_without_hanging() {
        let cat = catalog(&["a", "b"]);
        let slow = EdgeAnomaly::new(Metric::Latency, 30.0, 10.0, 2.0, 0);
        let g = CallGraph::new(vec![
            EdgeObservation::new(key(&cat, "a", "b"))
                .with_requests(10.0, 10.0)
                .with_latency(10.0, 30.0)
                .with_anomaly(slow),
            EdgeObservation::new(key(&cat, "b", "a"))
                .with_requests(10.0, 10.0)
                .with_latency(10.0, 30.0)
                .with_anomaly(slow),
            EdgeObservation::new(key(&cat, "b", "b"))
                .with_requests(10.0, 10.0)
                .with_latency(1.0, 90.0)
                .with_anomaly(slow),
        ])
        .unwrap();
        let r = run(&cat, &g, &[]);
        assert!(r.candidates.len() <= 2);
    }

    fn arb_obs() -> impl Strategy<Value = Vec<EdgeObservation>> {
        proptest::collection::btree_map(
            (0u32..12, 0u32..12),
            (
                0.0f64..1000.0,
                0.0f64..1000.0,
                0.0f64..100.0,
                0.0f64..100.0,
                0.0f64..0.2,
                0.0f64..0.2,
                0u8..4,
                0i64..5,
            ),
            0..60,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|((a, b), (re, rc, le, lc, ee, ec, kind, onset))| {
                    let edge = EdgeKey {
                        src: ClusterId(a),
                        dst: ClusterId(b),
                    };
                    let mut o = EdgeObservation::new(edge)
                        .with_requests(re, rc)
                        .with_latency(le, lc)
                        .with_error_rate(ee, ec);
                    let onset = onset * 300;
                    match kind {
                        1 => {
                            o.anomalies
                                .push(EdgeAnomaly::new(Metric::Latency, lc, le, 1.0, onset))
                        }
                        2 => o.anomalies.push(EdgeAnomaly::new(
                            Metric::ErrorRate,
                            ec,
                            ee,
                            1.0,
                            onset,
                        )),
                        3 => {
                            o.anomalies
                                .push(EdgeAnomaly::new(Metric::Requests, rc, re, 1.0, onset))
                        }
                        _ => {}
                    }
                    o
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn ranking_is_deterministic_whatever_the_input_order(obs in arb_obs(), seed in any::<u64>()) {
            let names: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
            let cat = catalog(&names.iter().map(String::as_str).collect::<Vec<_>>());
            let g1 = CallGraph::new(obs.clone()).unwrap();
            let mut shuffled = obs;
            let n = shuffled.len();
            if n > 1 {
                for i in 0..n {
                    let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % n as u64) as usize;
                    shuffled.swap(i, j);
                }
            }
            let g2 = CallGraph::new(shuffled).unwrap();
            let a = run(&cat, &g1, &[]);
            let b = run(&cat, &g2, &[]);
            prop_assert_eq!(&a, &b);
            for (i, c) in a.candidates.iter().enumerate() {
                prop_assert_eq!(c.rank as usize, i + 1);
                prop_assert!(c.score.is_finite());
                prop_assert!(!c.explanation.is_empty());
            }
            for w in a.candidates.windows(2) {
                prop_assert!(w[0].score >= w[1].score);
            }
        }
    }
}
