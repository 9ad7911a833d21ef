//! The snapshot format: what the screen showed at one tick, and a range of ticks.
//!
//! A [`TickSnapshot`] holds the pruned graph, the observations of its edges (and of the
//! hidden ones), the ranking, the marks that applied, the linked changes and the layout.
//! A [`Snapshot`] document is one tick with the cluster catalog; a [`Bundle`] is a range
//! of ticks sharing one catalog, for replay and export. Both carry a `format_version`
//! and a `kind`; a reader refuses a newer version with [`Error::Format`] instead of
//! misreading it. The server stores snapshots in this form and the browser replays them,
//! offline too.
//!
//! ```
//! use graph_core::model::{BucketWidth, ClusterCatalog};
//! use graph_core::snapshot::{Bundle, TickSnapshot};
//!
//! let mut bundle = Bundle::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new());
//! bundle.push(TickSnapshot::empty(600)).unwrap();
//! bundle.push(TickSnapshot::empty(900)).unwrap();
//! let back = Bundle::from_json(&bundle.to_json()).unwrap();
//! assert_eq!((back.from, back.to, back.ticks.len()), (600, 900, 2));
//! ```

use serde::{Deserialize, Serialize};

use crate::graph::{CallGraph, EdgeObservation};
use crate::layout::Layout;
use crate::link::Links;
use crate::model::{BucketWidth, ClusterCatalog, ClusterId, EdgeKey, Tick};
use crate::prune::{Mark, PrunedGraph};
use crate::rank::Ranking;
use crate::{Error, Result};

/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Which document a JSON text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// One tick: [`Snapshot`].
    Tick,
    /// A range of ticks: [`Bundle`].
    Bundle,
}

impl DocumentKind {
    fn label(self) -> &'static str {
        match self {
            DocumentKind::Tick => "a tick snapshot",
            DocumentKind::Bundle => "a bundle of ticks",
        }
    }
}

/// What was known and shown at one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickSnapshot {
    /// The tick.
    pub tick: Tick,
    /// The anomalous subgraph, with hidden edges and worsened counts.
    pub pruned: PrunedGraph,
    /// Observations of the shown and the hidden edges, sorted by edge. (What the other
    /// edges add to ranking is in [`Ranking::context`].)
    pub observations: Vec<EdgeObservation>,
    /// Root-cause candidates.
    pub ranking: Ranking,
    /// Marks active at the tick or made earlier on a shown edge, by id.
    pub marks: Vec<Mark>,
    /// Config changes and earlier marks linked to the graph.
    pub links: Links,
    /// Where everything is drawn.
    pub layout: Layout,
}

impl TickSnapshot {
    /// A tick with nothing anomalous.
    pub fn empty(tick: Tick) -> Self {
        TickSnapshot {
            tick,
            pruned: PrunedGraph {
                tick,
                ..PrunedGraph::default()
            },
            observations: Vec::new(),
            ranking: Ranking::default(),
            marks: Vec::new(),
            links: Links::default(),
            layout: Layout::default(),
        }
    }

    /// Captures one tick: keeps the observations of the shown and hidden edges of
    /// `pruned` from `graph`, and the `marks` that are active at the tick or that lie
    /// on a shown edge.
    ///
    /// # Complexity
    ///
    /// O((E_p + E_h) log E + M·m·log E_p) for E_p shown and E_h hidden edges, E edges
    /// in `graph`, and M marks covering m edges each.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
    /// use graph_core::layout::{layout, LayoutConfig};
    /// use graph_core::link::Links;
    /// use graph_core::model::{ClusterCatalog, ClusterId, EdgeKey, Metric};
    /// use graph_core::prune::{prune, PruneOptions};
    /// use graph_core::rank::Ranking;
    /// use graph_core::snapshot::TickSnapshot;
    ///
    /// let e = |a, b| EdgeKey { src: ClusterId(a), dst: ClusterId(b) };
    /// let graph = CallGraph::new(vec![
    ///     EdgeObservation::new(e(0, 1)),
    ///     EdgeObservation::new(e(1, 2)).with_anomaly(EdgeAnomaly::new(Metric::Latency, 9.0, 3.0, 2.0, 0)),
    /// ]).unwrap();
    /// let pruned = prune(&graph, &[], 0, &PruneOptions::default());
    /// let drawn = layout(&pruned.nodes, &pruned.edge_keys(), &ClusterCatalog::new(), None, &LayoutConfig::default());
    /// let snap = TickSnapshot::capture(&graph, pruned, Ranking::default(), &[], Links::default(), drawn);
    /// assert_eq!(snap.observations.len(), 1);
    /// ```
    pub fn capture(
        graph: &CallGraph,
        pruned: PrunedGraph,
        ranking: Ranking,
        marks: &[Mark],
        links: Links,
        layout: Layout,
    ) -> Self {
        let mut keys: Vec<EdgeKey> = pruned
            .edges
            .iter()
            .map(|e| e.edge)
            .chain(pruned.hidden.iter().map(|h| h.edge))
            .collect();
        keys.sort();
        keys.dedup();
        let observations = keys
            .iter()
            .filter_map(|&k| graph.observation(k).cloned())
            .collect();
        let tick = pruned.tick;
        let mut marks: Vec<Mark> = marks
            .iter()
            .filter(|m| {
                m.is_active(tick)
                    || (m.created <= tick && pruned.edges.iter().any(|e| m.target.covers(e.edge)))
            })
            .cloned()
            .collect();
        marks.sort_by_key(|m| m.id);
        TickSnapshot {
            tick,
            pruned,
            observations,
            ranking,
            marks,
            links,
            layout,
        }
    }

    /// Prunes and ranks this tick again from what it holds, with `thresholds`: anomalies
    /// below `min_severity` or of metrics left out no longer count. With
    /// [`Thresholds::default`] the result equals the snapshot as it was captured (when
    /// the server used the default pruning, linking and ranking settings), so a bundle
    /// replayed offline shows what the server showed. The layout is kept when the shown
    /// graph is unchanged and otherwise redone, starting from the captured one so that
    /// positions stay where they were.
    ///
    /// # Complexity
    ///
    /// That of pruning, linking and ranking the kept observations, plus a layout when
    /// the shown graph changed.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::ClusterCatalog;
    /// use graph_core::snapshot::{Thresholds, TickSnapshot};
    /// let snap = TickSnapshot::empty(600);
    /// let again = snap.recompute(&ClusterCatalog::new(), &Thresholds::default()).unwrap();
    /// assert_eq!(again, snap);
    /// ```
    pub fn recompute(
        &self,
        catalog: &ClusterCatalog,
        thresholds: &Thresholds,
    ) -> Result<TickSnapshot> {
        let observations: Vec<EdgeObservation> = self
            .observations
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o.anomalies.retain(|a| {
                    a.severity >= thresholds.min_severity
                        && !thresholds.ignored_metrics.contains(&a.metric)
                });
                o
            })
            .collect();
        let graph = CallGraph::new(observations)?;
        let pruned = crate::prune::prune(&graph, &self.marks, self.tick, &thresholds.prune);
        let links = crate::link::link(&pruned, &self.links.changes, &self.marks, &thresholds.link);
        let ranking = crate::rank::rank_from(
            graph.observations().iter(),
            self.ranking.context.clone(),
            &pruned,
            &links,
            catalog,
            &thresholds.rank,
        );
        let same_graph =
            pruned.nodes == self.pruned.nodes && pruned.edge_keys() == self.pruned.edge_keys();
        let layout = if same_graph {
            self.layout.clone()
        } else {
            crate::layout::layout(
                &pruned.nodes,
                &pruned.edge_keys(),
                catalog,
                Some(&self.layout),
                &crate::layout::LayoutConfig::default(),
            )
        };
        let mut out = TickSnapshot::capture(&graph, pruned, ranking, &self.marks, links, layout);
        // Keep every observation and the whole context, for replays with other
        // thresholds from this one.
        out.observations = graph.observations().to_vec();
        out.ranking.context = self.ranking.context.clone();
        Ok(out)
    }

    /// What changed from `earlier` to `self`.
    ///
    /// # Complexity
    ///
    /// O(E + C) for E edges and C candidates in both.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::snapshot::TickSnapshot;
    /// let d = TickSnapshot::empty(900).diff(&TickSnapshot::empty(600));
    /// assert_eq!((d.from, d.to), (600, 900));
    /// assert!(d.added.is_empty() && d.removed.is_empty());
    /// ```
    pub fn diff(&self, earlier: &TickSnapshot) -> SnapshotDiff {
        let (old, new) = (&earlier.pruned.edges, &self.pruned.edges);
        let (mut i, mut j) = (0, 0);
        let mut d = SnapshotDiff {
            from: earlier.tick,
            to: self.tick,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            rank_changes: Vec::new(),
        };
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if a.edge == b.edge => {
                    if a.severity != b.severity || a.metrics != b.metrics {
                        d.changed.push(SeverityChange {
                            edge: a.edge,
                            before: a.severity,
                            after: b.severity,
                        });
                    }
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.edge < b.edge => {
                    d.removed.push(a.edge);
                    i += 1;
                }
                (Some(a), None) => {
                    d.removed.push(a.edge);
                    i += 1;
                }
                (_, Some(b)) => {
                    d.added.push(b.edge);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let mut clusters: Vec<ClusterId> = earlier
            .ranking
            .candidates
            .iter()
            .chain(&self.ranking.candidates)
            .map(|c| c.cluster)
            .collect();
        clusters.sort();
        clusters.dedup();
        for c in clusters {
            let (before, after) = (earlier.ranking.rank_of(c), self.ranking.rank_of(c));
            if before != after {
                d.rank_changes.push(RankChange {
                    cluster: c,
                    before,
                    after,
                });
            }
        }
        d
    }
}

/// What [`TickSnapshot::recompute`] applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Anomalies below this severity score no longer count (0: all count).
    pub min_severity: f64,
    /// Anomalies of these metrics no longer count.
    pub ignored_metrics: Vec<crate::model::Metric>,
    /// Pruning settings.
    pub prune: crate::prune::PruneOptions,
    /// Linking settings.
    pub link: crate::link::LinkConfig,
    /// Ranking settings.
    pub rank: crate::rank::RankConfig,
}

/// The severity of an edge shown at both moments changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeverityChange {
    /// The edge.
    pub edge: EdgeKey,
    /// Severity at the earlier moment.
    pub before: f64,
    /// Severity at the later moment.
    pub after: f64,
}

/// A cluster's rank changed (`None`: not a candidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankChange {
    /// The cluster.
    pub cluster: ClusterId,
    /// Rank at the earlier moment.
    pub before: Option<u32>,
    /// Rank at the later moment.
    pub after: Option<u32>,
}

/// The difference between two moments, from [`TickSnapshot::diff`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDiff {
    /// The earlier tick.
    pub from: Tick,
    /// The later tick.
    pub to: Tick,
    /// Edges shown only at the later moment.
    pub added: Vec<EdgeKey>,
    /// Edges shown only at the earlier moment.
    pub removed: Vec<EdgeKey>,
    /// Edges shown at both moments whose severity or metrics changed.
    pub changed: Vec<SeverityChange>,
    /// Candidates whose rank changed, by cluster.
    pub rank_changes: Vec<RankChange>,
}

/// One tick as a self-contained document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Always [`DocumentKind::Tick`].
    pub kind: DocumentKind,
    /// Bucket width of the data.
    pub bucket_width: BucketWidth,
    /// Names, services, data centres and tiers of the clusters.
    pub clusters: ClusterCatalog,
    /// The tick.
    pub snapshot: TickSnapshot,
}

impl Snapshot {
    /// A document for `snapshot`.
    pub fn new(
        bucket_width: BucketWidth,
        clusters: ClusterCatalog,
        snapshot: TickSnapshot,
    ) -> Self {
        Snapshot {
            format_version: FORMAT_VERSION,
            kind: DocumentKind::Tick,
            bucket_width,
            clusters,
            snapshot,
        }
    }

    /// The document as JSON.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// Reads a document written by this or an older format version.
    ///
    /// # Complexity
    ///
    /// O(length of `text`).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::{BucketWidth, ClusterCatalog};
    /// use graph_core::snapshot::{Snapshot, TickSnapshot};
    /// use graph_core::Error;
    ///
    /// let doc = Snapshot::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new(), TickSnapshot::empty(300));
    /// assert_eq!(Snapshot::from_json(&doc.to_json()).unwrap(), doc);
    ///
    /// let future = doc.to_json().replacen("\"format_version\":1", "\"format_version\":99", 1);
    /// let Err(Error::Format(msg)) = Snapshot::from_json(&future) else { panic!() };
    /// assert!(msg.contains("version 99"), "{msg}");
    /// ```
    pub fn from_json(text: &str) -> Result<Self> {
        from_json(text, DocumentKind::Tick)
    }
}

/// A range of ticks sharing one catalog, ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Always [`DocumentKind::Bundle`].
    pub kind: DocumentKind,
    /// Bucket width of the data.
    pub bucket_width: BucketWidth,
    /// Names, services, data centres and tiers of the clusters.
    pub clusters: ClusterCatalog,
    /// First tick (0 when empty).
    pub from: Tick,
    /// Last tick (0 when empty).
    pub to: Tick,
    /// The ticks, strictly ascending.
    pub ticks: Vec<TickSnapshot>,
}

impl Bundle {
    /// An empty bundle.
    pub fn new(bucket_width: BucketWidth, clusters: ClusterCatalog) -> Self {
        Bundle {
            format_version: FORMAT_VERSION,
            kind: DocumentKind::Bundle,
            bucket_width,
            clusters,
            from: 0,
            to: 0,
            ticks: Vec::new(),
        }
    }

    /// Appends a tick after the last one.
    ///
    /// # Complexity
    ///
    /// O(1) amortised.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::{BucketWidth, ClusterCatalog};
    /// use graph_core::snapshot::{Bundle, TickSnapshot};
    /// let mut b = Bundle::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new());
    /// b.push(TickSnapshot::empty(600)).unwrap();
    /// assert!(b.push(TickSnapshot::empty(600)).is_err());
    /// ```
    pub fn push(&mut self, tick: TickSnapshot) -> Result<()> {
        if let Some(last) = self.ticks.last()
            && tick.tick <= last.tick
        {
            return Err(Error::InvalidInput(format!(
                "bundle: tick {} does not come after the last tick {}",
                tick.tick, last.tick
            )));
        }
        if self.ticks.is_empty() {
            self.from = tick.tick;
        }
        self.to = tick.tick;
        self.ticks.push(tick);
        Ok(())
    }

    /// The snapshot of `tick`, if the bundle has it.
    ///
    /// # Complexity
    ///
    /// O(log T) for T ticks.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::{BucketWidth, ClusterCatalog};
    /// use graph_core::snapshot::{Bundle, TickSnapshot};
    /// let mut b = Bundle::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new());
    /// b.push(TickSnapshot::empty(600)).unwrap();
    /// assert!(b.at(600).is_some() && b.at(900).is_none());
    /// ```
    pub fn at(&self, tick: Tick) -> Option<&TickSnapshot> {
        self.ticks
            .binary_search_by_key(&tick, |t| t.tick)
            .ok()
            .map(|i| &self.ticks[i])
    }

    /// The ticks in `[from, to]` as a bundle of their own (for export).
    ///
    /// # Complexity
    ///
    /// O(log T + size of the copied ticks).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::{BucketWidth, ClusterCatalog};
    /// use graph_core::snapshot::{Bundle, TickSnapshot};
    /// let mut b = Bundle::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new());
    /// for t in [300, 600, 900] { b.push(TickSnapshot::empty(t)).unwrap(); }
    /// let part = b.range(500, 900);
    /// assert_eq!((part.from, part.to, part.ticks.len()), (600, 900, 2));
    /// ```
    pub fn range(&self, from: Tick, to: Tick) -> Bundle {
        let start = self.ticks.partition_point(|t| t.tick < from);
        let end = self.ticks.partition_point(|t| t.tick <= to);
        let mut out = Bundle::new(self.bucket_width, self.clusters.clone());
        for t in self.ticks.get(start..end.max(start)).unwrap_or(&[]) {
            // ascending already
            let _ = out.push(t.clone());
        }
        out
    }

    /// The document as JSON.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// Reads a document written by this or an older format version.
    ///
    /// # Complexity
    ///
    /// O(length of `text`).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::model::{BucketWidth, ClusterCatalog};
    /// use graph_core::snapshot::{Bundle, Snapshot, TickSnapshot};
    /// let tick = Snapshot::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new(), TickSnapshot::empty(0));
    /// let err = Bundle::from_json(&tick.to_json()).unwrap_err();
    /// assert!(err.to_string().contains("a tick snapshot"));
    /// ```
    pub fn from_json(text: &str) -> Result<Self> {
        let b: Bundle = from_json(text, DocumentKind::Bundle)?;
        if b.ticks.windows(2).any(|w| w[0].tick >= w[1].tick) {
            return Err(Error::Format(
                "bundle: ticks are not strictly ascending".into(),
            ));
        }
        Ok(b)
    }
}

fn to_json<T: Serialize>(doc: &T) -> String {
    // Serialising these types cannot fail: all map keys are strings.
    serde_json::to_string(doc).unwrap_or_default()
}

/// The fields every version has, read before anything else.
#[derive(Deserialize)]
struct Header {
    format_version: Option<serde_json::Value>,
    kind: Option<serde_json::Value>,
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, want: DocumentKind) -> Result<T> {
    let header: Header = serde_json::from_str(text)
        .map_err(|e| Error::Format(format!("{} is not valid JSON: {e}", want.label())))?;
    let version = match header.format_version {
        None => {
            return Err(Error::Format(format!(
                "{}: no format_version field",
                want.label()
            )));
        }
        Some(v) => v.as_u64().filter(|&v| v >= 1).ok_or_else(|| {
            Error::Format(format!(
                "{}: format_version must be a positive integer, found {v}",
                want.label()
            ))
        })?,
    };
    if version > u64::from(FORMAT_VERSION) {
        return Err(Error::Format(format!(
            "{} has format version {version}, newer than this build reads (up to {FORMAT_VERSION}); \
             open it with a newer Epicenter",
            want.label()
        )));
    }
    let kind: Option<DocumentKind> = header.kind.and_then(|k| serde_json::from_value(k).ok());
    if kind != Some(want) {
        let found = kind.map_or("an unknown document", DocumentKind::label);
        return Err(Error::Format(format!(
            "expected {}, found {found}",
            want.label()
        )));
    }
    serde_json::from_str(text).map_err(|e| Error::Format(format!("{}: {e}", want.label())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::EdgeAnomaly;
    use crate::layout::{LayoutConfig, layout};
    use crate::link::{ConfigChange, LinkConfig, link};
    use crate::model::{Cluster, Metric};
    use crate::prune::{MarkKind, MarkTarget, PruneOptions, prune};
    use crate::rank::{RankConfig, rank};

    fn tick_at(tick: Tick, slow: f64) -> (ClusterCatalog, TickSnapshot) {
        let mut cat = ClusterCatalog::new();
        let mut add = |n: &str, tier: &str| {
            cat.insert(Cluster {
                name: n.into(),
                service: n.into(),
                dc: Some("dc1".into()),
                tier: Some(tier.into()),
            })
        };
        let (web, api, db, cache) = (
            add("web", "frontend"),
            add("api", "api"),
            add("db", "storage"),
            add("cache", "cache"),
        );
        let e = |s, d| EdgeKey { src: s, dst: d };
        let graph = CallGraph::new(vec![
            EdgeObservation::new(e(web, api))
                .with_requests(100.0, 100.0)
                .with_latency(20.0, 20.0 + slow)
                .with_anomaly(EdgeAnomaly::new(
                    Metric::Latency,
                    20.0 + slow,
                    20.0,
                    slow / 20.0,
                    0,
                )),
            EdgeObservation::new(e(api, db))
                .with_requests(100.0, 100.0)
                .with_latency(10.0, 10.0 + slow)
                .with_anomaly(EdgeAnomaly::new(
                    Metric::Latency,
                    10.0 + slow,
                    10.0,
                    slow / 10.0,
                    0,
                )),
            EdgeObservation::new(e(api, cache))
                .with_requests(100.0, 100.0)
                .with_latency(1.0, 1.0)
                .with_anomaly(EdgeAnomaly::new(Metric::Requests, 100.0, 60.0, 0.5, 0)),
        ])
        .unwrap();
        let marks = vec![Mark {
            id: 1,
            kind: MarkKind::KnownAnomaly,
            target: MarkTarget::Edge {
                edge: e(api, cache),
            },
            severity: 1.0,
            created: 0,
            until: None,
            author: "bob".into(),
            description: "cache warm-up".into(),
        }];
        let changes = vec![ConfigChange {
            id: 5,
            ts: -60,
            author: "alice".into(),
            clusters: vec![db],
            description: "smaller pool".into(),
            link: None,
        }];
        let pruned = prune(&graph, &marks, tick, &PruneOptions::default());
        let links = link(&pruned, &changes, &marks, &LinkConfig::default());
        let ranking = rank(&graph, &pruned, &links, &cat, &RankConfig::default());
        let drawn = layout(
            &pruned.nodes,
            &pruned.edge_keys(),
            &cat,
            None,
            &LayoutConfig::default(),
        );
        let snap = TickSnapshot::capture(&graph, pruned, ranking, &marks, links, drawn);
        (cat, snap)
    }

    #[test]
    fn a_snapshot_prunes_and_ranks_again_to_itself_and_follows_new_thresholds() {
        let (cat, snap) = tick_at(300, 30.0);
        assert!(!snap.ranking.candidates.is_empty());
        // Through JSON, as a file opened offline would be.
        let doc = Snapshot::from_json(
            &Snapshot::new(BucketWidth::FIVE_MINUTES, cat.clone(), snap.clone()).to_json(),
        )
        .unwrap();
        let again = doc
            .snapshot
            .recompute(&cat, &Thresholds::default())
            .unwrap();
        assert_eq!(again, snap);

        // web -> api (severity 1.5) stays, api -> db (3.0) stays; raising the bar above
        // 2 leaves only api -> db, and the ranking follows.
        let raised = snap
            .recompute(
                &cat,
                &Thresholds {
                    min_severity: 2.0,
                    ..Thresholds::default()
                },
            )
            .unwrap();
        let names = |s: &TickSnapshot| {
            s.pruned
                .edges
                .iter()
                .map(|e| format!("{}>{}", cat.get(e.edge.src).name, cat.get(e.edge.dst).name))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&snap), ["web>api", "api>db"]);
        assert_eq!(names(&raised), ["api>db"]);
        assert!(raised.ranking.candidates.iter().all(|c| c.name != "web"));
        // The nodes left keep their places.
        let place = |s: &TickSnapshot, name: &str| {
            let id = cat.id(name).unwrap();
            s.layout
                .nodes
                .iter()
                .find(|n| n.cluster == id)
                .map(|n| (n.x, n.y))
        };
        assert!(place(&raised, "db").is_some());

        // Ignoring latency leaves nothing shown.
        let none = snap
            .recompute(
                &cat,
                &Thresholds {
                    ignored_metrics: vec![Metric::Latency],
                    ..Thresholds::default()
                },
            )
            .unwrap();
        assert!(none.pruned.edges.is_empty() && none.ranking.candidates.is_empty());
    }

    #[test]
    fn a_tick_round_trips_with_everything_in_it() {
        let (cat, snap) = tick_at(300, 30.0);
        assert_eq!(snap.observations.len(), 3); // two shown, one hidden
        assert_eq!(snap.marks.len(), 1);
        assert_eq!(snap.ranking.candidates[0].name, "db");
        let doc = Snapshot::new(BucketWidth::FIVE_MINUTES, cat, snap);
        let json = doc.to_json();
        assert!(json.starts_with("{\"format_version\":1,\"kind\":\"tick\""));
        assert_eq!(Snapshot::from_json(&json).unwrap(), doc);
    }

    #[test]
    fn a_bundle_round_trips_and_diffs_two_moments() {
        let (cat, a) = tick_at(300, 30.0);
        let (_, b) = tick_at(600, 0.5);
        let mut bundle = Bundle::new(BucketWidth::FIVE_MINUTES, cat);
        bundle.push(a).unwrap();
        bundle.push(b).unwrap();
        let back = Bundle::from_json(&bundle.to_json()).unwrap();
        assert_eq!(back, bundle);
        let d = back.at(600).unwrap().diff(back.at(300).unwrap());
        assert!(d.added.is_empty() && d.removed.is_empty());
        let changed: Vec<(f64, f64)> = d.changed.iter().map(|c| (c.before, c.after)).collect();
        assert_eq!(changed, [(1.5, 0.025), (3.0, 0.05)]);
        // The store stays first on its config change alone; the latency evidence is gone.
        assert!(d.rank_changes.is_empty());
        let top = &back.at(600).unwrap().ranking.candidates[0];
        assert!(
            top.explanation
                .starts_with("calls into db: config change #5"),
            "{}",
            top.explanation
        );
    }

    #[test]
    fn unreadable_documents_fail_with_a_format_error_that_says_why() {
        let doc = Snapshot::new(
            BucketWidth::FIVE_MINUTES,
            ClusterCatalog::new(),
            TickSnapshot::empty(0),
        );
        let json = doc.to_json();
        let msg = |text: &str| match Snapshot::from_json(text) {
            Err(Error::Format(m)) => m,
            other => panic!("expected a format error, got {other:?}"),
        };
        assert!(
            msg(&json.replacen("\"format_version\":1", "\"format_version\":2", 1))
                .contains("newer than this build reads (up to 1)")
        );
        assert!(msg(&json.replacen("\"format_version\":1,", "", 1)).contains("no format_version"));
        assert!(
            msg(&json.replacen("\"format_version\":1", "\"format_version\":\"x\"", 1))
                .contains("positive integer")
        );
        assert!(msg("{\"format_version\":1,").contains("not valid JSON"));
        assert!(msg(&json.replacen("\"tick\":0", "\"tick\":\"soon\"", 1)).contains("line 1"));
        let bundle = Bundle::new(BucketWidth::FIVE_MINUTES, ClusterCatalog::new());
        assert!(
            msg(&bundle.to_json()).contains("expected a tick snapshot, found a bundle of ticks")
        );
    }
}
