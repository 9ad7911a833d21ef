//! One tick end to end: detection, the observation of every edge, pruning, linking,
//! ranking and layout, captured as a [`TickSnapshot`]. The server's detection loop,
//! `epicenter analyze` and the accuracy tests all run this same pipeline.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::detect::{
    DetectConfig, Finding, MarkContext, SeriesView, Subject, TickDetections, detect,
};
use crate::graph::{CallGraph, Delta, EdgeAnomaly, EdgeObservation, TestStats};
use crate::layout::{Layout, LayoutConfig, layout};
use crate::link::{ConfigChange, LinkConfig, link};
use crate::model::{ClusterCatalog, Metric, Tick};
use crate::prune::{Mark, PruneOptions, prune};
use crate::rank::{RankConfig, rank};
use crate::snapshot::TickSnapshot;

/// Everything that shapes an analysis besides the data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
/// expectation of the baseline detection chose for that series and metric (weekly,
/// else daily, else trailing; the detector's own expected value where it reported an
/// anomaly), so ranking can tell growth that downstream edges explain from growth they
/// do not, from the first hours of data on.
///
/// # Complexity
/// Detection's cost plus O(E log E) to attach the expectations of E edges, plus
/// pruning, ranking and layout of the anomalous part.
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

/// The test behind a finding, as an anomaly carries it.
fn test_stats(f: &Finding) -> TestStats {
    TestStats {
        baseline: f.baseline,
        baseline_mean: f.baseline_mean,
        baseline_std_dev: f.baseline_std_dev,
        g: f.g,
        g_crit: f.g_crit,
        activity_ratio: f.activity_ratio,
        own_time: f.own_time,
    }
}

/// The observation of every edge total with data at `tick`, with the anomalies of
/// `detections` attached (maintenance-mode sums to each of their parts). Expectations
/// are detection's ([`TickDetections::expectation`]), each naming its baseline.
///
/// # Complexity
/// O(E log E) for E edge totals.
pub fn observe<V: SeriesView + ?Sized>(
    tick: Tick,
    view: &V,
    detections: &TickDetections,
) -> Vec<EdgeObservation> {
    let entities = view.entities();
    let mut by_entity: Vec<Option<EdgeObservation>> = vec![None; entities.len()];
    for (i, key) in entities.iter().enumerate() {
        if key.method.is_some() {
            continue;
        }
        let Some(current) = view.counters(i, tick) else {
            continue;
        };
        let mut o = EdgeObservation::new(key.edge);
        if let Some(e) = detections.expectation(i) {
            for (metric, delta) in [
                (Metric::Requests, &mut o.requests),
                (Metric::Latency, &mut o.latency_ms),
                (Metric::ErrorRate, &mut o.error_rate),
            ] {
                if let (Some((expected, kind)), Some(now)) = (e.get(metric), current.metric(metric))
                {
                    *delta = Delta::new(expected, now).with_baseline(kind);
                }
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
                d.baseline = Some(f.baseline.kind);
            }
            let mut a = EdgeAnomaly::new(f.metric, f.value, f.expected, f.severity.score, f.onset);
            a.rel_deviation = f.relative_deviation;
            a.test = Some(test_stats(f));
            o.anomalies.push(a);
        }
    }
    let mut out: Vec<EdgeObservation> = by_entity.into_iter().flatten().collect();
    out.sort_by_key(|o| o.edge);
    out.dedup_by_key(|o| o.edge);
    // A method can be anomalous while its edge's total, which mixes it with the edge's
    // other methods, is not: the edge is anomalous then too, in that metric, with the
    // total's own numbers and the method's test.
    for f in &detections.detections {
        let Subject::Series { key, .. } = &f.subject else {
            continue;
        };
        if key.method.is_none() || f.metric == Metric::Errors {
            continue;
        }
        let Ok(at) = out.binary_search_by_key(&key.edge, |o| o.edge) else {
            continue;
        };
        let o = &mut out[at];
        if o.anomalies.iter().any(|a| a.metric == f.metric) {
            continue;
        }
        let delta = match f.metric {
            Metric::Latency => &o.latency_ms,
            Metric::Requests => &o.requests,
            _ => &o.error_rate,
        };
        let (Some(value), Some(expected)) = (delta.current, delta.expected) else {
            continue;
        };
        // Only in the direction the method moved.
        if (value - expected) * (f.value - f.expected) <= 0.0 {
            continue;
        }
        let mut a = EdgeAnomaly::new(f.metric, value, expected, f.severity.score, f.onset);
        a.rel_deviation = (expected != 0.0).then(|| (value - expected) / expected);
        a.test = Some(test_stats(f));
        o.anomalies.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{BaselineKind, FrameStore, SeriesKey};
    use crate::model::{BucketWidth, Cluster, ClusterId, Counters, EdgeKey};
    use crate::rank::Evidence;

    /// A catalog of one cluster per service, and their ids in order.
    fn catalog_of(names: &[&str]) -> (ClusterCatalog, Vec<ClusterId>) {
        let mut catalog = ClusterCatalog::new();
        let ids = names
            .iter()
            .map(|n| {
                catalog.insert(Cluster {
                    name: (*n).into(),
                    service: (*n).into(),
                    dc: None,
                    tier: None,
                })
            })
            .collect();
        (catalog, ids)
    }

    /// One method of an edge slows down; the edge's total, which mixes it with a slow,
    /// busy-and-quiet method, is too noisy for the shift to stand out on its own.
    #[test]
    fn a_method_that_slows_down_flags_its_edge_when_the_total_does_not() {
        let (catalog, ids) = catalog_of(&["web", "api"]);
        let (web, api) = (ids[0], ids[1]);
        let edge = EdgeKey { src: web, dst: api };
        let width = BucketWidth::ONE_MINUTE;
        let start = 1_795_000_200;
        let onset = start + 120 * 60;
        let mut view = FrameStore::new(width);
        let (fast, report) = (view.intern_method("/item"), view.intern_method("/report"));
        for t in (start..onset + 3 * 60).step_by(60) {
            let minute = (t - start) / 60;
            let jitter = 1.0 + 0.01 * ((minute * 7 % 5) as f64 - 2.0);
            let item_ms = 20.0 * jitter + if t >= onset { 6.0 } else { 0.0 };
            // Reports come in bursts: 10 to 90 a minute at 400 ms.
            let reports = 10.0 + (minute * 37 % 9) as f64 * 10.0;
            let parts = [(fast, 600.0, item_ms), (report, reports, 400.0)];
            let mut total = Counters {
                requests: 0.0,
                errors: 0.0,
                latency_ms_sum: 0.0,
            };
            for (m, requests, ms) in parts {
                let c = Counters {
                    requests,
                    errors: 0.0,
                    latency_ms_sum: requests * ms,
                };
                view.insert(t, SeriesKey::method(edge, m), &c).unwrap();
                total.requests += c.requests;
                total.latency_ms_sum += c.latency_ms_sum;
            }
            view.insert(t, SeriesKey::edge(edge), &total).unwrap();
        }
        let config = AnalysisConfig::default();
        let mut flagged = None;
        for t in (onset - 20 * 60..onset + 3 * 60).step_by(60) {
            let a = analyze_tick(t, &view, &catalog, &config, &Context::default()).unwrap();
            view.apply_flags(&a.detections).unwrap();
            let total_flagged =
                a.detections.detections.iter().any(
                    |f| matches!(&f.subject, Subject::Series { key, .. } if key.method.is_none()),
                );
            assert!(!total_flagged, "the total alone stands out at {t}");
            let obs = observe(t, &view, &a.detections);
            let o = obs.iter().find(|o| o.edge == edge).unwrap();
            let lat = o.anomalies.iter().find(|a| a.metric == Metric::Latency);
            if t < onset {
                assert!(lat.is_none(), "a quiet minute is flagged");
            } else if flagged.is_none() {
                flagged = lat.map(|a| (t, a.value, a.expected, a.test));
            }
        }
        let (t, value, expected, test) = flagged.expect("the slow method flags its edge");
        // With the method's test behind it.
        let test = test.expect("the anomaly carries the method's test");
        assert!(test.g > test.g_crit, "{test:?}");
        assert!((test.baseline_mean - 20.0).abs() < 1.0, "{test:?}");
        // As soon as the method's streak is long enough to report (three minutes).
        assert_eq!(t, onset + 2 * 60);
        // With the total's own numbers.
        let o = observe(
            t,
            &view,
            &analyze_tick(t, &view, &catalog, &config, &Context::default())
                .unwrap()
                .detections,
        )
        .into_iter()
        .find(|o| o.edge == edge)
        .unwrap();
        assert_eq!(Some(value), o.latency_ms.current);
        assert_eq!(Some(expected), o.latency_ms.expected);
    }

    /// A fresh install: two hours of one-minute data, no weeks of history.
    #[test]
    fn ranks_root_causes_from_the_first_hours_against_the_trailing_baseline() {
        let (catalog, ids) = catalog_of(&["web", "api", "db", "cache"]);
        let (web, api, db, cache) = (ids[0], ids[1], ids[2], ids[3]);
        let edges = [
            (web, api, 40.0),
            (api, db, 12.0),
            (api, cache, 1.0),
            (web, cache, 1.0),
        ];
        let width = BucketWidth::ONE_MINUTE;
        let start = 1_795_000_200; // on a minute
        let onset = start + 120 * 60;
        let mut view = FrameStore::new(width);
        for t in (start..onset + 2 * 60).step_by(60) {
            let minute = (t - start) / 60;
            // db is 25 ms slower in the two minutes from onset; api waits for it.
            let slow = if t >= onset { 25.0 } else { 0.0 };
            for (i, &(src, dst, base)) in edges.iter().enumerate() {
                let jitter = 1.0 + 0.02 * (((minute * 7 + i as i64 * 3) % 5) as f64 - 2.0);
                let lat = base * jitter
                    + if (src, dst) == (api, db) || (src, dst) == (web, api) {
                        slow
                    } else {
                        0.0
                    };
                let requests = 600.0 + ((minute * 13 + i as i64) % 7) as f64;
                let key = SeriesKey::edge(EdgeKey { src, dst });
                let c = Counters {
                    requests,
                    errors: 0.0,
                    latency_ms_sum: requests * lat,
                };
                view.insert(t, key, &c).unwrap();
            }
        }
        let config = AnalysisConfig::default();
        let mut first = None;
        for t in (onset - 20 * 60..onset + 2 * 60).step_by(60) {
            let a = analyze_tick(t, &view, &catalog, &config, &Context::default()).unwrap();
            view.apply_flags(&a.detections).unwrap();
            if t < onset {
                assert!(
                    a.snapshot.ranking.candidates.is_empty(),
                    "a quiet minute lists causes"
                );
                continue;
            }
            if a.snapshot.pruned.anomalous().next().is_some() && first.is_none() {
                first = Some((t, a));
            }
        }
        let (t, a) = first.expect("the slowdown is flagged within two minutes");
        assert_eq!(t, onset, "flagged on its first minute");
        let top = &a.snapshot.ranking.candidates[0];
        assert_eq!(top.name, "db", "{:#?}", a.snapshot.ranking.candidates);
        assert!(
            top.evidence
                .iter()
                .any(|e| matches!(e, Evidence::Latency { baselines, .. }
                if baselines == &[BaselineKind::Trailing])),
            "{:?}",
            top.evidence
        );
        assert!(
            top.explanation.contains("trailing baseline"),
            "{}",
            top.explanation
        );
        // Every edge carries the expectation and names its baseline, quiet ones too.
        let all = observe(t, &view, &a.detections);
        let quiet = all
            .iter()
            .find(|o| {
                o.edge
                    == EdgeKey {
                        src: web,
                        dst: cache,
                    }
            })
            .expect("the quiet edge is observed");
        assert_eq!(quiet.latency_ms.baseline, Some(BaselineKind::Trailing));
        assert!((quiet.latency_ms.expected.unwrap() - 1.0).abs() < 0.05);
    }
}
