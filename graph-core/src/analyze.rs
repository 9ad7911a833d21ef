//! One tick end to end: detection, the observation of every edge, pruning, linking,
//! ranking and layout, captured as a [`TickSnapshot`]. The server's detection loop,
//! `epicenter analyze` and the accuracy tests all run this same pipeline.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::detect::{
    DetectConfig, MarkContext, PointFlags, SeriesView, Subject, TickDetections, detect,
};
use crate::graph::{CallGraph, EdgeAnomaly, EdgeObservation, TestStats};
use crate::layout::{Layout, LayoutConfig, layout};
use crate::link::{ConfigChange, LinkConfig, link};
use crate::model::{ClusterCatalog, Counters, DAY, Metric, Tick, WEEK};
use crate::prune::{Mark, PruneOptions, prune};
use crate::rank::{RankConfig, rank};
use crate::snapshot::TickSnapshot;

/// Everything that shapes an analysis besides the data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisConfig {
    /// Detection.
    pub detect: DetectConfig,
    /// Pruning.
    pub prune: PruneOptions,
    /// Linking config changes and past marks.
    pub link: LinkConfig,
    /// Root-cause ranking.
    pub rank: RankConfig,
    /// Layout of the pruned graph.
    pub layout: LayoutConfig,
}

/// The inputs besides the series: marks (known anomalies, incidents, trends) and
/// config changes.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Trend starts and exclusion windows for detection.
    pub detect_marks: MarkContext,
    /// Marks for pruning and history.
    pub marks: &'a [Mark],
    /// Config changes.
    pub changes: &'a [ConfigChange],
    /// The previous tick's layout, so surviving nodes keep their places.
    pub previous_layout: Option<&'a Layout>,
}

/// The outcome of one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickAnalysis {
    /// What detection found, suppressed and missed.
    pub detections: TickDetections,
    /// The pruned graph, ranking, links and layout.
    pub snapshot: TickSnapshot,
}

/// Runs the whole pipeline for `tick`.
///
/// Observations cover every edge total with data at `tick`: current values against the
/// expectation (the detector's where it tested the series, otherwise the mean of the
/// weekly baseline points, falling back to the same time on previous days), so ranking
/// can tell growth that downstream edges explain from growth they do not.
///
/// # Complexity
/// Detection's cost plus O(E · 30) for the expectations of E edges, plus pruning,
/// ranking and layout of the anomalous part.
///
/// # Example
/// ```
/// use graph_core::analyze::{analyze_tick, AnalysisConfig, Context};
/// use graph_core::detect::{DetectConfig, FrameStore, SeriesKey};
/// use graph_core::model::{BucketWidth, Cluster, ClusterCatalog, Counters, EdgeKey, WEEK};
///
/// let mut catalog = ClusterCatalog::new();
/// let mut add = |n: &str| catalog.insert(Cluster { name: n.into(), service: n.into(), dc: None, tier: None });
/// let (web, db) = (add("web"), add("db"));
/// let key = SeriesKey::edge(EdgeKey { src: web, dst: db });
/// let now = 50 * WEEK;
/// let width = BucketWidth::FIVE_MINUTES;
/// let mut view = FrameStore::new(width);
/// for (i, t) in DetectConfig::default().ticks_needed(now, width).into_iter().enumerate() {
///     let lat = if t == now { 60.0 } else { 10.0 + (i % 3) as f64 };
///     view.insert(t, key, &Counters { requests: 100.0, errors: 0.0, latency_ms_sum: 100.0 * lat }).unwrap();
/// }
/// let a = analyze_tick(now, &view, &catalog, &AnalysisConfig::default(), &Context::default()).unwrap();
/// assert_eq!(a.snapshot.ranking.candidates[0].name, "db");
/// ```
pub fn analyze_tick<V: SeriesView + ?Sized>(
    tick: Tick,
    view: &V,
    catalog: &ClusterCatalog,
    config: &AnalysisConfig,
    context: &Context<'_>,
) -> Result<TickAnalysis> {
    let detections = detect(tick, view, catalog, &config.detect, &context.detect_marks)?;
    let observations = observe(tick, view, &detections);
    let graph = CallGraph::new(observations)?;
    let pruned = prune(&graph, context.marks, tick, &config.prune);
    let links = link(&pruned, context.changes, context.marks, &config.link);
    let ranking = rank(&graph, &pruned, &links, catalog, &config.rank);
    let drawn = layout(
        &pruned.nodes,
        &pruned.edge_keys(),
        catalog,
        context.previous_layout,
        &config.layout,
    );
    let snapshot = TickSnapshot::capture(&graph, pruned, ranking, context.marks, links, drawn);
    Ok(TickAnalysis {
        detections,
        snapshot,
    })
}

/// The observation of every edge total with data at `tick`, with the anomalies of
/// `detections` attached (maintenance-mode sums to each of their parts).
///
/// # Complexity
/// O(E · 30) column lookups for E edge totals.
pub fn observe<V: SeriesView + ?Sized>(
    tick: Tick,
    view: &V,
    detections: &TickDetections,
) -> Vec<EdgeObservation> {
    let width = view.bucket_width().seconds();
    let entities = view.entities();
    let mut by_entity: Vec<Option<EdgeObservation>> = vec![None; entities.len()];
    for (i, key) in entities.iter().enumerate() {
        if key.method.is_some() {
            continue;
        }
        let Some(current) = view.counters(i, tick) else {
            continue;
        };
        let expected = expectation(view, i, tick, width);
        let mut o = EdgeObservation::new(key.edge);
        if let Some(e) = expected {
            o = o.with_requests(e.requests, current.requests);
            if let (Some(el), Some(cl)) =
                (e.metric(Metric::Latency), current.metric(Metric::Latency))
            {
                o = o.with_latency(el, cl);
            }
            if let (Some(ee), Some(ce)) = (
                e.metric(Metric::ErrorRate),
                current.metric(Metric::ErrorRate),
            ) {
                o = o.with_error_rate(ee, ce);
            }
        }
        by_entity[i] = Some(o);
    }
    for f in &detections.detections {
        let parts: Vec<u32> = match &f.subject {
            Subject::Series { entity, key } if key.method.is_none() => vec![*entity],
            Subject::Combined {
                method: None,
                parts,
                ..
            } => parts.clone(),
            _ => continue,
        };
        for p in parts {
            let Some(Some(o)) = by_entity.get_mut(p as usize) else {
                continue;
            };
            let delta = match f.metric {
                Metric::Latency => Some(&mut o.latency_ms),
                Metric::Requests => Some(&mut o.requests),
                Metric::ErrorRate => Some(&mut o.error_rate),
                Metric::Errors => None,
            };
            if let Some(d) = delta
                && matches!(f.subject, Subject::Series { .. })
            {
                // The detector's expectation (activity-adjusted) wins over the plain mean.
                d.expected = Some(f.expected);
            }
            let mut a = EdgeAnomaly::new(f.metric, f.value, f.expected, f.severity.score, f.onset);
            a.rel_deviation = f.relative_deviation;
            a.test = Some(TestStats {
                baseline: f.baseline,
                baseline_mean: f.baseline_mean,
                baseline_std_dev: f.baseline_std_dev,
                g: f.g,
                g_crit: f.g_crit,
                activity_ratio: f.activity_ratio,
            });
            o.anomalies.push(a);
        }
    }
    let mut out: Vec<EdgeObservation> = by_entity.into_iter().flatten().collect();
    out.sort_by_key(|o| o.edge);
    out.dedup_by_key(|o| o.edge);
    out
}

/// Sum of the counters at the weekly baseline points (six weeks, two neighbours each
/// side), or the same time on the seven previous days when fewer than five weekly
/// points exist. Points flagged anomalous are left out.
fn expectation<V: SeriesView + ?Sized>(
    view: &V,
    entity: usize,
    tick: Tick,
    width: i64,
) -> Option<Counters> {
    let gather = |offsets: &mut dyn Iterator<Item = Tick>| {
        let mut sum = Counters::default();
        let mut n = 0u32;
        for t in offsets {
            let flagged = Metric::ALL
                .iter()
                .any(|m| view.flags(entity, *m, t).contains(PointFlags::ANOMALOUS));
            if flagged {
                continue;
            }
            if let Some(c) = view.counters(entity, t) {
                sum.add(&c);
                n += 1;
            }
        }
        (n > 0).then_some((n, sum))
    };
    let weekly =
        gather(&mut (1..=6).flat_map(|w| (-2..=2).map(move |j| tick - w * WEEK + j * width)));
    let chosen = match weekly {
        Some((n, s)) if n >= 5 => Some((n, s)),
        other => {
            gather(&mut (1..=7).flat_map(|d| (-2..=2).map(move |j| tick - d * DAY + j * width)))
                .or(other)
        }
    };
    chosen.map(|(n, s)| {
        let n = f64::from(n);
        Counters {
            requests: s.requests / n,
            errors: s.errors / n,
            latency_ms_sum: s.latency_ms_sum / n,
        }
    })
}
