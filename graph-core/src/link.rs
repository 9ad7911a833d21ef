//! Linking what people did to what the graph shows: config changes made shortly before
//! an anomaly's onset, and the marks made on the same edges before.
//!
//! [`link`] attaches each [`ConfigChange`] to the pruned graph's nodes and anomalous
//! edges it touches when it was made within [`LinkConfig::window_s`] before their onset
//! (or up to [`LinkConfig::grace_s`] after it, since an onset is the start of a bucket),
//! and each edge's earlier marks, newest first, so the UI can say "last time: ...".
//!
//! ```
//! use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
//! use graph_core::link::{link, ConfigChange, LinkConfig};
//! use graph_core::model::{ClusterId, EdgeKey, Metric};
//! use graph_core::prune::{prune, PruneOptions};
//!
//! let edge = EdgeKey { src: ClusterId(0), dst: ClusterId(1) };
//! let graph = CallGraph::new(vec![EdgeObservation::new(edge)
//!     .with_anomaly(EdgeAnomaly::new(Metric::Latency, 50.0, 12.0, 4.0, 3_600))]).unwrap();
//! let pruned = prune(&graph, &[], 3_600, &PruneOptions::default());
//! let change = ConfigChange { id: 812, ts: 3_240, author: "alice".into(),
//!     clusters: vec![ClusterId(1)], description: "pool size 64 -> 8".into(), link: None };
//! let links = link(&pruned, &[change], &[], &LinkConfig::default());
//! assert_eq!(links.node(ClusterId(1)).unwrap().changes[0].seconds_before_onset, 360);
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{ClusterId, EdgeKey, Tick, UnixSeconds};
use crate::prune::{EdgeRole, Mark, MarkKind, PrunedGraph};

/// A configuration change, as recorded by whoever made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// Unique id, e.g. the change number.
    pub id: u64,
    /// When it was applied.
    pub ts: UnixSeconds,
    /// Who made it.
    pub author: String,
    /// The clusters it touched.
    pub clusters: Vec<ClusterId>,
    /// What it was.
    pub description: String,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Options of [`link`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// How long before an onset a change still counts, seconds.
    pub window_s: i64,
    /// How long after an onset a change still counts, seconds: an onset is the start of
    /// the bucket in which the change may have landed.
    pub grace_s: i64,
    /// At most this many earlier marks per edge.
    pub max_past_marks: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            window_s: 3_600,
            grace_s: 300,
            max_past_marks: 5,
        }
    }
}

/// A change attached to a node or an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLink {
    /// The change, in [`Links::changes`].
    pub change_id: u64,
    /// Onset minus the change's time; negative when the change came after the onset.
    pub seconds_before_onset: i64,
}

/// Changes attached to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLinks {
    /// The node.
    pub cluster: ClusterId,
    /// Its onset: the earliest onset of the anomalous edges into it, else of those out
    /// of it.
    pub onset: Tick,
    /// The changes, most recent first.
    pub changes: Vec<ChangeLink>,
}

/// Changes attached to one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeLinks {
    /// The edge.
    pub edge: EdgeKey,
    /// Its onset.
    pub onset: Tick,
    /// Changes to either endpoint, most recent first.
    pub changes: Vec<ChangeLink>,
}

/// A mark made on an edge before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastMark {
    /// The mark.
    pub mark_id: u64,
    /// Its kind.
    pub kind: MarkKind,
    /// Who made it.
    pub author: String,
    /// Why.
    pub description: String,
    /// When.
    pub created: Tick,
    /// When it ended or ends.
    pub until: Option<Tick>,
    /// True when it still applies.
    pub active: bool,
}

/// The earlier marks of one edge, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeHistory {
    /// The edge.
    pub edge: EdgeKey,
    /// Its marks.
    pub marks: Vec<PastMark>,
}

impl EdgeHistory {
    /// "last time: <kind> by <who>: <why>" from the newest mark.
    ///
    /// # Complexity
    ///
    /// O(length of the text).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::link::{EdgeHistory, PastMark};
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// use graph_core::prune::MarkKind;
    /// let h = EdgeHistory { edge: EdgeKey { src: ClusterId(0), dst: ClusterId(1) }, marks: vec![PastMark {
    ///     mark_id: 3, kind: MarkKind::KnownAnomaly, author: "bob".into(),
    ///     description: "flag X on".into(), created: 0, until: Some(60), active: false }] };
    /// assert_eq!(h.last_time().unwrap(), "last time: known anomaly by bob: flag X on");
    /// ```
    pub fn last_time(&self) -> Option<String> {
        self.marks.first().map(|m| {
            format!(
                "last time: {} by {}: {}",
                m.kind.label(),
                m.author,
                m.description
            )
        })
    }
}

/// Everything [`link`] attached to a pruned graph.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Links {
    /// The changes referred to below, by id.
    pub changes: Vec<ConfigChange>,
    /// Per node with at least one change, by cluster.
    pub nodes: Vec<NodeLinks>,
    /// Per anomalous edge with at least one change, by edge.
    pub edges: Vec<EdgeLinks>,
    /// Per anomalous edge with earlier marks, by edge.
    pub history: Vec<EdgeHistory>,
}

impl Links {
    /// The changes of node `cluster`.
    pub fn node(&self, cluster: ClusterId) -> Option<&NodeLinks> {
        self.nodes
            .binary_search_by_key(&cluster, |n| n.cluster)
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The changes of `edge`.
    pub fn edge(&self, edge: EdgeKey) -> Option<&EdgeLinks> {
        self.edges
            .binary_search_by_key(&edge, |n| n.edge)
            .ok()
            .map(|i| &self.edges[i])
    }

    /// The earlier marks of `edge`.
    pub fn history(&self, edge: EdgeKey) -> Option<&EdgeHistory> {
        self.history
            .binary_search_by_key(&edge, |n| n.edge)
            .ok()
            .map(|i| &self.history[i])
    }

    /// The change with `id`.
    pub fn change(&self, id: u64) -> Option<&ConfigChange> {
        self.changes
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &self.changes[i])
    }
}

/// Attaches `changes` and earlier `marks` to the nodes and anomalous edges of `pruned`.
/// A mark counts as earlier when it was made at or before the pruned graph's tick.
///
/// # Complexity
///
/// O(V + E + C·k·d + M·m·log E) for V nodes and E edges shown, C changes touching k
/// clusters each of degree at most d, and M marks covering m edges each.
///
/// # Example
///
/// ```
/// use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
/// use graph_core::link::{link, LinkConfig};
/// use graph_core::model::{ClusterId, EdgeKey, Metric};
/// use graph_core::prune::{prune, Mark, MarkKind, MarkTarget, PruneOptions};
///
/// let edge = EdgeKey { src: ClusterId(0), dst: ClusterId(1) };
/// let graph = CallGraph::new(vec![EdgeObservation::new(edge)
///     .with_anomaly(EdgeAnomaly::new(Metric::Latency, 50.0, 12.0, 4.0, 90_000))]).unwrap();
/// let pruned = prune(&graph, &[], 90_000, &PruneOptions::default());
/// let old = Mark { id: 1, kind: MarkKind::Incident, target: MarkTarget::Edge { edge },
///     severity: 3.0, created: 1_000, until: Some(5_000), author: "carol".into(),
///     description: "disk full on cdb3".into() };
/// let links = link(&pruned, &[], &[old], &LinkConfig::default());
/// assert_eq!(links.history(edge).unwrap().last_time().unwrap(),
///     "last time: incident by carol: disk full on cdb3");
/// ```
pub fn link(
    pruned: &PrunedGraph,
    changes: &[ConfigChange],
    marks: &[Mark],
    config: &LinkConfig,
) -> Links {
    // Onsets of nodes: incoming anomalous edges first, outgoing ones as a fallback.
    let mut into: HashMap<ClusterId, Tick> = HashMap::new();
    let mut out_of: HashMap<ClusterId, Tick> = HashMap::new();
    let mut incident: HashMap<ClusterId, Vec<usize>> = HashMap::new();
    for (i, e) in pruned.edges.iter().enumerate() {
        let (EdgeRole::Anomalous, Some(onset)) = (e.role, e.onset) else {
            continue;
        };
        let t = into.entry(e.edge.dst).or_insert(onset);
        *t = (*t).min(onset);
        let t = out_of.entry(e.edge.src).or_insert(onset);
        *t = (*t).min(onset);
        incident.entry(e.edge.src).or_default().push(i);
        if e.edge.dst != e.edge.src {
            incident.entry(e.edge.dst).or_default().push(i);
        }
    }
    let node_onset = |c: ClusterId| into.get(&c).or(out_of.get(&c)).copied();
    let within = |ts: UnixSeconds, onset: Tick| {
        let before = onset - ts;
        (-config.grace_s..=config.window_s)
            .contains(&before)
            .then_some(before)
    };

    let mut nodes: HashMap<ClusterId, Vec<(i64, u64, ChangeLink)>> = HashMap::new();
    let mut edges: HashMap<usize, Vec<(i64, u64, ChangeLink)>> = HashMap::new();
    let mut used: Vec<&ConfigChange> = Vec::new();
    for ch in changes {
        let mut any = false;
        let mut clusters = ch.clusters.clone();
        clusters.sort();
        clusters.dedup();
        for &c in &clusters {
            if let Some(before) = node_onset(c).and_then(|o| within(ch.ts, o)) {
                any = true;
                nodes.entry(c).or_default().push((
                    ch.ts,
                    ch.id,
                    ChangeLink {
                        change_id: ch.id,
                        seconds_before_onset: before,
                    },
                ));
            }
            for &i in incident.get(&c).map_or(&[][..], |v| v.as_slice()) {
                let e = &pruned.edges[i];
                let both = clusters.contains(&e.edge.src) && clusters.contains(&e.edge.dst);
                if both && c != e.edge.src {
                    continue; // attach once per edge
                }
                let onset = e.onset.unwrap_or(pruned.tick);
                if let Some(before) = within(ch.ts, onset) {
                    any = true;
                    edges.entry(i).or_default().push((
                        ch.ts,
                        ch.id,
                        ChangeLink {
                            change_id: ch.id,
                            seconds_before_onset: before,
                        },
                    ));
                }
            }
        }
        if any {
            used.push(ch);
        }
    }

    let newest_first = |v: &mut Vec<(i64, u64, ChangeLink)>| {
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.dedup_by_key(|x| x.1);
        v.iter().map(|x| x.2).collect::<Vec<_>>()
    };
    let mut node_links: Vec<NodeLinks> = nodes
        .into_iter()
        .map(|(cluster, mut v)| NodeLinks {
            cluster,
            onset: node_onset(cluster).unwrap_or(pruned.tick),
            changes: newest_first(&mut v),
        })
        .collect();
    node_links.sort_by_key(|n| n.cluster);
    let mut edge_links: Vec<EdgeLinks> = edges
        .into_iter()
        .map(|(i, mut v)| EdgeLinks {
            edge: pruned.edges[i].edge,
            onset: pruned.edges[i].onset.unwrap_or(pruned.tick),
            changes: newest_first(&mut v),
        })
        .collect();
    edge_links.sort_by_key(|e| e.edge);
    let mut used: Vec<ConfigChange> = used.into_iter().cloned().collect();
    used.sort_by_key(|c| c.id);
    used.dedup_by_key(|c| c.id);

    // Earlier marks on the anomalous edges.
    let mut history: HashMap<EdgeKey, Vec<&Mark>> = HashMap::new();
    for m in marks.iter().filter(|m| m.created <= pruned.tick) {
        let covered: Vec<EdgeKey> = match &m.target {
            crate::prune::MarkTarget::Edge { edge } => vec![*edge],
            crate::prune::MarkTarget::Graph { edges } => edges.clone(),
        };
        for e in covered {
            if pruned
                .edge(e)
                .is_some_and(|pe| pe.role == EdgeRole::Anomalous)
            {
                history.entry(e).or_default().push(m);
            }
        }
    }
    let mut history: Vec<EdgeHistory> = history
        .into_iter()
        .map(|(edge, mut ms)| {
            ms.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
            ms.dedup_by_key(|m| m.id);
            ms.truncate(config.max_past_marks);
            EdgeHistory {
                edge,
                marks: ms
                    .into_iter()
                    .map(|m| PastMark {
                        mark_id: m.id,
                        kind: m.kind,
                        author: m.author.clone(),
                        description: m.description.clone(),
                        created: m.created,
                        until: m.until,
                        active: m.is_active(pruned.tick),
                    })
                    .collect(),
            }
        })
        .collect();
    history.sort_by_key(|h| h.edge);

    Links {
        changes: used,
        nodes: node_links,
        edges: edge_links,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
    use crate::model::Metric;
    use crate::prune::{MarkTarget, PruneOptions, prune};

    fn key(a: u32, b: u32) -> EdgeKey {
        EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        }
    }

    fn pruned() -> PrunedGraph {
        let a = |a, b, onset| {
            EdgeObservation::new(key(a, b)).with_anomaly(EdgeAnomaly::new(
                Metric::Latency,
                2.0,
                1.0,
                1.0,
                onset,
            ))
        };
        let g = CallGraph::new(vec![
            a(0, 1, 10_000),
            a(1, 2, 9_400),
            EdgeObservation::new(key(2, 3)),
        ])
        .unwrap();
        prune(&g, &[], 10_200, &PruneOptions { context_hops: 1 })
    }

    fn change(id: u64, ts: i64, clusters: &[u32]) -> ConfigChange {
        ConfigChange {
            id,
            ts,
            author: "alice".into(),
            clusters: clusters.iter().map(|&c| ClusterId(c)).collect(),
            description: format!("change {id}"),
            link: None,
        }
    }

    #[test]
    fn changes_attach_within_the_window_before_each_onset() {
        let changes = [
            change(1, 9_000, &[2]),    // 400 s before node 2's onset (9400)
            change(2, 5_000, &[2]),    // too early
            change(3, 9_600, &[2]),    // 200 s after the onset: within the grace
            change(4, 9_900, &[1, 2]), // touches both ends of 1 -> 2 once
            change(5, 9_000, &[3]),    // node 3 has no anomalous edge
            change(6, 10_100, &[0]),   // onset of 0 -> 1 is 10_000
        ];
        let links = link(&pruned(), &changes, &[], &LinkConfig::default());
        let n2: Vec<u64> = links
            .node(ClusterId(2))
            .unwrap()
            .changes
            .iter()
            .map(|c| c.change_id)
            .collect();
        assert_eq!(n2, [3, 1]);
        let n1: Vec<u64> = links
            .node(ClusterId(1))
            .unwrap()
            .changes
            .iter()
            .map(|c| c.change_id)
            .collect();
        assert_eq!(n1, [4]);
        let e01: Vec<u64> = links
            .edge(key(0, 1))
            .unwrap()
            .changes
            .iter()
            .map(|c| c.change_id)
            .collect();
        assert_eq!(e01, [6, 4]);
        let e12: Vec<u64> = links
            .edge(key(1, 2))
            .unwrap()
            .changes
            .iter()
            .map(|c| c.change_id)
            .collect();
        assert_eq!(e12, [3, 1]);
        assert!(links.node(ClusterId(3)).is_none());
        assert_eq!(
            links.node(ClusterId(0)).unwrap().changes[0].seconds_before_onset,
            -100
        );
        let ids: Vec<u64> = links.changes.iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 3, 4, 6]);
        assert!(links.change(2).is_none());
    }

    #[test]
    fn history_lists_earlier_marks_newest_first_on_anomalous_edges_only() {
        let m = |id, created, edge| Mark {
            id,
            kind: MarkKind::KnownAnomaly,
            target: MarkTarget::Edge { edge },
            severity: 1.0,
            created,
            until: Some(created + 100),
            author: format!("user{id}"),
            description: format!("reason {id}"),
        };
        let marks = [
            m(1, 100, key(1, 2)),
            m(2, 200, key(1, 2)),
            m(3, 99_999, key(1, 2)), // after the tick
            m(4, 100, key(2, 3)),    // context edge
        ];
        let links = link(&pruned(), &[], &marks, &LinkConfig::default());
        let h = links.history(key(1, 2)).unwrap();
        assert_eq!(
            h.marks.iter().map(|m| m.mark_id).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(
            h.last_time().unwrap(),
            "last time: known anomaly by user2: reason 2"
        );
        assert!(links.history(key(2, 3)).is_none());
    }
}
