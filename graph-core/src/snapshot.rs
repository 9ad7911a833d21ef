//! The snapshot format: what the screen showed at one tick, and a range of ticks.
//!
//! A [`TickSnapshot`] holds the pruned graph, the observations of its edges (and of the
//! hidden ones), the ranking, the marks that applied, the linked changes and the layout.
//! A [`Snapshot`] document is one tick with the cluster catalog; a [`Bundle`] is a range
//! of ticks sharing one catalog, for replay and export, each tick a [`BundleTick`]: the
//! snapshot with what the screen showed beside it (detection's summary, data-centre
//! storms, the sources behind and the stale ones). Both documents carry a
//! `format_version` ([`TICK_FORMAT_VERSION`], [`BUNDLE_FORMAT_VERSION`]) and a `kind`; a
//! reader refuses a newer version with [`Error::Format`] instead of misreading it, and
//! reads every older one. The server stores snapshots in this form and the browser
//! replays them, offline too.
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

use crate::detect::{DcStorm, Summary};
use crate::graph::{CallGraph, EdgeObservation};
use crate::layout::Layout;
use crate::link::Links;
use crate::model::{BucketWidth, ClusterCatalog, ClusterId, EdgeKey, Tick};
use crate::prune::{Mark, PrunedGraph};
use crate::rank::Ranking;
use crate::{Error, Result};

/// The format version of tick documents ([`Snapshot`]) this build writes, the newest it
/// reads.
pub const TICK_FORMAT_VERSION: u32 = 1;

/// The format version of bundles ([`Bundle`]) this build writes, the newest it reads.
///
/// Version 2 added to each tick what the screen showed beside the snapshot
/// ([`BundleTick`]: summary, storms, sources behind, stale sources). A version-1 bundle
/// reads with those empty. A version-1 reader refuses version 2 rather than replay it
/// without them: during a data-centre storm the anomalous graph is empty and the storm
/// is the only thing the screen showed.
pub const BUNDLE_FORMAT_VERSION: u32 = 2;

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

    /// The newest format version of this kind of document.
    pub fn format_version(self) -> u32 {
        match self {
            DocumentKind::Tick => TICK_FORMAT_VERSION,
            DocumentKind::Bundle => BUNDLE_FORMAT_VERSION,
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
            self.ranking.fleet_latency_share,
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
        out.ranking.fleet_latency_share = self.ranking.fleet_latency_share;
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
    /// [`TICK_FORMAT_VERSION`] when written.
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
            format_version: TICK_FORMAT_VERSION,
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

/// One tick of a [`Bundle`]: the snapshot and what the screen showed beside it.
///
/// In JSON the snapshot's fields and these sit side by side, so a version-1 tick (a
/// bare [`TickSnapshot`]) reads as one with an empty summary, no storms and no sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Read through `TickWire`: a flattened field would make serde buffer every tick first,
// three times slower for a large bundle.
#[serde(from = "TickWire")]
pub struct BundleTick {
    /// Pruned graph, observations, ranking, marks, links and layout.
    #[serde(flatten)]
    pub snapshot: TickSnapshot,
    /// Counts of what detection considered, tested and found.
    #[serde(default)]
    pub summary: Summary,
    /// Data-centre storms at the tick: many edges of one data centre slower at once,
    /// shown as one event instead of as anomalous edges.
    #[serde(default)]
    pub storms: Vec<DcStorm>,
    /// Data sources that had not delivered the tick when it was analysed: their edges
    /// counted as missing, not anomalous.
    #[serde(default)]
    pub sources_behind: Vec<String>,
    /// Data sources that had gone quiet (stale, not retired) when the tick was analysed.
    #[serde(default)]
    pub stale_sources: Vec<String>,
}

/// A [`BundleTick`] as JSON has it, to read it in one pass.
#[derive(Deserialize)]
struct TickWire {
    tick: Tick,
    pruned: PrunedGraph,
    observations: Vec<EdgeObservation>,
    ranking: Ranking,
    marks: Vec<Mark>,
    links: Links,
    layout: Layout,
    #[serde(default)]
    summary: Summary,
    #[serde(default)]
    storms: Vec<DcStorm>,
    #[serde(default)]
    sources_behind: Vec<String>,
    #[serde(default)]
    stale_sources: Vec<String>,
}

impl From<TickWire> for BundleTick {
    fn from(w: TickWire) -> Self {
        BundleTick {
            snapshot: TickSnapshot {
                tick: w.tick,
                pruned: w.pruned,
                observations: w.observations,
                ranking: w.ranking,
                marks: w.marks,
                links: w.links,
                layout: w.layout,
            },
            summary: w.summary,
            storms: w.storms,
            sources_behind: w.sources_behind,
            stale_sources: w.stale_sources,
        }
    }
}

impl From<TickSnapshot> for BundleTick {
    /// A tick with nothing known beside its snapshot.
    fn from(snapshot: TickSnapshot) -> Self {
        BundleTick {
            snapshot,
            summary: Summary::default(),
            storms: Vec::new(),
            sources_behind: Vec::new(),
            stale_sources: Vec::new(),
        }
    }
}

impl BundleTick {
    /// The tick.
    pub fn tick(&self) -> Tick {
        self.snapshot.tick
    }

    /// [`TickSnapshot::recompute`] of the snapshot. The summary and the storms are
    /// detection's output, which thresholds on pruning and ranking do not redo, and the
    /// sources are what they were: all stay as captured.
    ///
    /// # Complexity
    ///
    /// That of [`TickSnapshot::recompute`].
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::DcStorm;
    /// use graph_core::model::ClusterCatalog;
    /// use graph_core::snapshot::{BundleTick, Thresholds, TickSnapshot};
    /// let mut t = BundleTick::from(TickSnapshot::empty(600));
    /// t.storms.push(DcStorm { dc: "dc2".into(), tick: 600, edges_affected: 40, edges_total: 90, share: 0.44 });
    /// let strict = Thresholds { min_severity: 9.0, ..Thresholds::default() };
    /// assert_eq!(t.recompute(&ClusterCatalog::new(), &strict).unwrap().storms, t.storms);
    /// ```
    pub fn recompute(
        &self,
        catalog: &ClusterCatalog,
        thresholds: &Thresholds,
    ) -> Result<BundleTick> {
        Ok(BundleTick {
            snapshot: self.snapshot.recompute(catalog, thresholds)?,
            summary: self.summary,
            storms: self.storms.clone(),
            sources_behind: self.sources_behind.clone(),
            stale_sources: self.stale_sources.clone(),
        })
    }
}

/// A range of ticks sharing one catalog, ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT_VERSION`] when written; as read for a bundle from a file (1: the
    /// ticks hold snapshots only).
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
    pub ticks: Vec<BundleTick>,
}

impl Bundle {
    /// An empty bundle.
    pub fn new(bucket_width: BucketWidth, clusters: ClusterCatalog) -> Self {
        Bundle {
            format_version: BUNDLE_FORMAT_VERSION,
            kind: DocumentKind::Bundle,
            bucket_width,
            clusters,
            from: 0,
            to: 0,
            ticks: Vec::new(),
        }
    }

    /// Appends a tick (a [`BundleTick`], or a bare snapshot) after the last one.
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
    pub fn push(&mut self, tick: impl Into<BundleTick>) -> Result<()> {
        let tick = tick.into();
        let t = tick.tick();
        if let Some(last) = self.ticks.last()
            && t <= last.tick()
        {
            return Err(Error::InvalidInput(format!(
                "bundle: tick {t} does not come after the last tick {}",
                last.tick()
            )));
        }
        if self.ticks.is_empty() {
            self.from = t;
        }
        self.to = t;
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
    pub fn at(&self, tick: Tick) -> Option<&BundleTick> {
        self.ticks
            .binary_search_by_key(&tick, BundleTick::tick)
            .ok()
            .map(|i| &self.ticks[i])
    }

    /// The ticks in `[from, to]` as a bundle of their own (for export), of the same
    /// format version.
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
        let start = self.ticks.partition_point(|t| t.tick() < from);
        let end = self.ticks.partition_point(|t| t.tick() <= to);
        let mut out = Bundle::new(self.bucket_width, self.clusters.clone());
        out.format_version = self.format_version;
        // A slice of ticks that are ascending already: nothing to check again.
        out.ticks = self
            .ticks
            .get(start..end.max(start))
            .unwrap_or(&[])
            .to_vec();
        if let (Some(first), Some(last)) = (out.ticks.first(), out.ticks.last()) {
            (out.from, out.to) = (first.tick(), last.tick());
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
        if b.ticks.windows(2).any(|w| w[0].tick() >= w[1].tick()) {
            return Err(Error::Format(
                "bundle: ticks are not strictly ascending".into(),
            ));
        }
        Ok(b)
    }
}

fn to_json<T: Serialize>(doc: &T) -> String {
    // Serialising these types cannot fail (every map key is a string, and serde_json
    // writes non-finite numbers as null); an empty document must never pass for one.
    serde_json::to_string(doc).expect("snapshot documents serialise")
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
    // The kind first (each kind has its own version), unless it is one this build does
    // not know, which a newer version may have added.
    let kind: Option<DocumentKind> = header.kind.and_then(|k| serde_json::from_value(k).ok());
    let wrong_kind = |found: Option<DocumentKind>| {
        let found = found.map_or("an unknown document", DocumentKind::label);
        Error::Format(format!("expected {}, found {found}", want.label()))
    };
    if let Some(k) = kind
        && k != want
    {
        return Err(wrong_kind(kind));
    }
    let newest = want.format_version();
    if version > u64::from(newest) {
        return Err(Error::Format(format!(
            "{} has format version {version}, newer than this build reads (up to {newest}); \
             open it with a newer Epicenter",
            want.label()
        )));
    }
    if kind.is_none() {
        return Err(wrong_kind(kind));
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
        let d = back
            .at(600)
            .unwrap()
            .snapshot
            .diff(&back.at(300).unwrap().snapshot);
        assert!(d.added.is_empty() && d.removed.is_empty());
        let changed: Vec<(f64, f64)> = d.changed.iter().map(|c| (c.before, c.after)).collect();
        assert_eq!(changed, [(1.5, 0.025), (3.0, 0.05)]);
        // The store stays first on its config change alone; the latency evidence is gone.
        assert!(d.rank_changes.is_empty());
        let top = &back.at(600).unwrap().snapshot.ranking.candidates[0];
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

    /// A tick as the screen showed it during a storm in dc2 with a source behind and
    /// another gone quiet.
    fn stormy(tick: Tick) -> (ClusterCatalog, BundleTick) {
        let (cat, snap) = tick_at(tick, 30.0);
        let t = BundleTick {
            snapshot: snap,
            summary: Summary {
                series: 120,
                tested: 100,
                candidates: 9,
                detections: 3,
                suppressed: 41,
                missing: 12,
                insufficient: 8,
            },
            storms: vec![DcStorm {
                dc: "dc2".into(),
                tick,
                edges_affected: 38,
                edges_total: 90,
                share: 38.0 / 90.0,
            }],
            sources_behind: vec!["dc3-collector".into()],
            stale_sources: vec!["dc4-collector".into()],
        };
        (cat, t)
    }

    #[test]
    fn a_bundle_tick_carries_what_the_screen_showed_through_json_and_new_thresholds() {
        let (cat, t) = stormy(300);
        let mut bundle = Bundle::new(BucketWidth::FIVE_MINUTES, cat.clone());
        bundle.push(t.clone()).unwrap();
        let json = bundle.to_json();
        assert!(json.starts_with("{\"format_version\":2,\"kind\":\"bundle\""));
        // The snapshot's fields and the screen's sit side by side in each tick.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let tick = &v["ticks"][0];
        assert_eq!(tick["tick"], 300);
        assert_eq!(tick["storms"][0]["dc"], "dc2");
        assert_eq!(tick["summary"]["detections"], 3);
        assert_eq!(tick["sources_behind"][0], "dc3-collector");
        assert_eq!(tick["stale_sources"][0], "dc4-collector");
        let back = Bundle::from_json(&json).unwrap();
        assert_eq!(back, bundle);

        // Thresholds redo pruning and ranking; detection's output and the sources stay.
        let strict = back.ticks[0]
            .recompute(
                &cat,
                &Thresholds {
                    min_severity: 2.0,
                    ..Thresholds::default()
                },
            )
            .unwrap();
        assert_eq!(strict.snapshot.pruned.edges.len(), 1);
        assert_eq!(
            (
                &strict.summary,
                &strict.storms,
                &strict.sources_behind,
                &strict.stale_sources
            ),
            (&t.summary, &t.storms, &t.sources_behind, &t.stale_sources)
        );
        let same = back.ticks[0]
            .recompute(&cat, &Thresholds::default())
            .unwrap();
        assert_eq!(same, t);
        // An exported part keeps them, and the version.
        assert_eq!(back.range(0, 600).ticks, [t]);
    }

    #[test]
    fn a_version_1_bundle_without_the_screen_fields_still_reads() {
        // What a version-1 build wrote: bare snapshots as ticks.
        let (cat, a) = tick_at(300, 30.0);
        let (_, b) = tick_at(600, 0.5);
        let v1 = serde_json::json!({
            "format_version": 1,
            "kind": "bundle",
            "bucket_width": BucketWidth::FIVE_MINUTES,
            "clusters": cat,
            "from": 300,
            "to": 600,
            "ticks": [a, b],
        })
        .to_string();
        assert!(!v1.contains("storms") && !v1.contains("summary"));
        let back = Bundle::from_json(&v1).unwrap();
        assert_eq!(back.format_version, 1);
        assert_eq!(back.ticks.len(), 2);
        assert_eq!(back.ticks[0], BundleTick::from(a.clone()));
        assert_eq!(back.at(600).unwrap().snapshot, b);
        let t = &back.ticks[0];
        assert!(t.storms.is_empty() && t.sources_behind.is_empty() && t.stale_sources.is_empty());
        assert_eq!(t.summary, Summary::default());
        // It replays as before: prunes and ranks again to itself.
        assert_eq!(
            t.recompute(&cat, &Thresholds::default()).unwrap().snapshot,
            a
        );
        // Exported again, it stays a version-1 bundle: the empty fields are unknown,
        // not "none".
        assert!(
            back.range(0, 900)
                .to_json()
                .starts_with("{\"format_version\":1,")
        );

        // A bundle from a newer build is refused with both versions named.
        let newer = v1.replacen("\"format_version\":1", "\"format_version\":3", 1);
        let Err(Error::Format(msg)) = Bundle::from_json(&newer) else {
            panic!("a newer bundle must be refused")
        };
        assert!(
            msg.contains("format version 3, newer than this build reads (up to 2)"),
            "{msg}"
        );
    }
}
