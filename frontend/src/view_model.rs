//! What the screen shows, derived from an analysis: pure functions, tested natively.

use std::collections::HashMap;

use graph_core::api::{AnalysisResponse, ClusterInfo};
use graph_core::graph::EdgeAnomaly;
use graph_core::model::{ClusterId, EdgeKey, Metric, Tick};
use graph_core::prune::{EdgeRole, MarkKind};

use crate::url::SortKey;

/// One row of the anomalous-edge table.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRow {
    /// The edge.
    pub edge: EdgeKey,
    /// Caller name.
    pub src: String,
    /// Callee name.
    pub dst: String,
    /// Anomalous metrics, most severe first.
    pub metrics: Vec<Metric>,
    /// The most severe anomaly's metric, value, expectation and relative deviation.
    pub worst: Option<(Metric, f64, f64, Option<f64>)>,
    /// Severity of the edge.
    pub severity: f64,
    /// First tick of the episode.
    pub since: Option<Tick>,
    /// The kind of mark that covers it, when it is shown because it got worse.
    pub worsened: Option<MarkKind>,
    /// Earlier marks on the edge.
    pub past_marks: usize,
    /// Caller's service and data centre.
    pub src_info: Option<ClusterInfo>,
    /// Callee's service and data centre.
    pub dst_info: Option<ClusterInfo>,
}

impl EdgeRow {
    /// Its worst anomaly's relative deviation (`None` when nothing was expected).
    pub fn deviation(&self) -> Option<f64> {
        self.worst.and_then(|w| w.3)
    }
}

/// What the table shows: rows matching all set criteria.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    /// Text a caller or callee name or service contains (case-insensitive).
    pub service: String,
    /// Data centre of the caller or the callee.
    pub dc: String,
    /// Metric the edge is anomalous in.
    pub metric: Option<Metric>,
}

impl Filter {
    /// True when `row` passes.
    pub fn matches(&self, row: &EdgeRow) -> bool {
        let needle = self.service.trim().to_lowercase();
        let ends = [
            (&row.src, row.src_info.as_ref()),
            (&row.dst, row.dst_info.as_ref()),
        ];
        let service_ok = needle.is_empty()
            || ends.iter().any(|(name, info)| {
                name.to_lowercase().contains(&needle)
                    || info.is_some_and(|i| i.service.to_lowercase().contains(&needle))
            });
        let dc_ok = self.dc.is_empty()
            || ends
                .iter()
                .any(|(_, info)| info.and_then(|i| i.dc.as_deref()) == Some(self.dc.as_str()));
        let metric_ok = self.metric.is_none_or(|m| {
            row.metrics
                .iter()
                .any(|x| *x == m || (m == Metric::Errors && *x == Metric::ErrorRate))
        });
        service_ok && dc_ok && metric_ok
    }
}

/// Sorts `rows` by `key` in its natural order (names A-Z, numbers largest first,
/// episodes newest first), or the reverse; ties by names.
pub fn sort_rows(rows: &mut [EdgeRow], key: SortKey, reversed: bool) {
    rows.sort_by(|x, y| {
        let names = || (&x.src, &x.dst).cmp(&(&y.src, &y.dst));
        let natural = match key {
            SortKey::Caller => x.src.cmp(&y.src).then_with(|| x.dst.cmp(&y.dst)),
            SortKey::Callee => x.dst.cmp(&y.dst).then_with(|| x.src.cmp(&y.src)),
            SortKey::Deviation => {
                let d = |r: &EdgeRow| r.deviation().unwrap_or(f64::INFINITY);
                d(y).total_cmp(&d(x))
            }
            SortKey::Severity => y.severity.total_cmp(&x.severity),
            SortKey::Since => y.since.cmp(&x.since),
        };
        let ordered = if reversed { natural.reverse() } else { natural };
        ordered.then_with(names)
    });
}

/// Data centres of the clusters, sorted.
pub fn data_centres(a: &AnalysisResponse) -> Vec<String> {
    let mut dcs: Vec<String> = a.clusters.iter().filter_map(|c| c.dc.clone()).collect();
    dcs.sort();
    dcs.dedup();
    dcs
}

/// The anomalies of `edge`, most severe first.
pub fn anomalies(a: &AnalysisResponse, edge: EdgeKey) -> Vec<EdgeAnomaly> {
    let mut v: Vec<EdgeAnomaly> = a
        .snapshot
        .observations
        .iter()
        .find(|o| o.edge == edge)
        .map(|o| o.anomalies.clone())
        .unwrap_or_default();
    v.sort_by(|x, y| y.severity.total_cmp(&x.severity));
    v
}

/// The edge between clusters named `src` and `dst`, when both are known.
pub fn edge_by_names(a: &AnalysisResponse, src: &str, dst: &str) -> Option<EdgeKey> {
    let id = |n: &str| a.clusters.iter().find(|c| c.name == n).map(|c| c.id);
    Some(EdgeKey {
        src: id(src)?,
        dst: id(dst)?,
    })
}

/// Names of the clusters in an analysis.
pub fn names(a: &AnalysisResponse) -> HashMap<ClusterId, String> {
    a.clusters.iter().map(|c| (c.id, c.name.clone())).collect()
}

/// The anomalous edges, most severe first (ties by names).
pub fn edge_rows(a: &AnalysisResponse) -> Vec<EdgeRow> {
    let names = names(a);
    let info = |id: ClusterId| a.clusters.iter().find(|c| c.id == id).cloned();
    let name = |id: ClusterId| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{}", id.0))
    };
    let mut rows: Vec<EdgeRow> = a
        .snapshot
        .pruned
        .edges
        .iter()
        .filter(|e| e.role == EdgeRole::Anomalous)
        .map(|e| {
            let obs = a.snapshot.observations.iter().find(|o| o.edge == e.edge);
            let mut anomalies: Vec<_> = obs.map(|o| o.anomalies.clone()).unwrap_or_default();
            anomalies.sort_by(|x, y| y.severity.total_cmp(&x.severity));
            EdgeRow {
                edge: e.edge,
                src: name(e.edge.src),
                dst: name(e.edge.dst),
                metrics: anomalies.iter().map(|x| x.metric).collect(),
                worst: anomalies
                    .first()
                    .map(|x| (x.metric, x.value, x.expected, x.rel_deviation)),
                severity: e.severity,
                since: e.onset,
                worsened: e.worsened.map(|w| w.kind),
                past_marks: a
                    .snapshot
                    .links
                    .history(e.edge)
                    .map_or(0, |h| h.marks.len()),
                src_info: info(e.edge.src),
                dst_info: info(e.edge.dst),
            }
        })
        .collect();
    sort_rows(&mut rows, SortKey::Severity, false);
    rows
}

/// The anomalies of `edge` in one line, most severe first:
/// `latency x4.2 (52.3 ms vs 12.6 ms expected); …` (empty when it has none).
pub fn anomaly_summary(a: &AnalysisResponse, edge: EdgeKey) -> String {
    anomalies(a, edge)
        .iter()
        .map(|x| {
            format!(
                "{} {} ({} vs {} expected)",
                x.metric,
                crate::format::change(x.metric, x.value, x.expected, x.rel_deviation),
                crate::format::value(x.metric, x.value),
                crate::format::value(x.metric, x.expected)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A prefilled incident text: a title line, then everything known at the tick (the
/// edges with their changes, the ranked causes with explanations, linked config changes)
/// and `link` back to the view. People edit it before opening the incident.
pub fn incident_text(a: &AnalysisResponse, edges: &[EdgeKey], link: &str) -> String {
    let names = names(a);
    let name = |id: ClusterId| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{}", id.0))
    };
    let top = a.snapshot.ranking.candidates.first();
    let title = match (top, edges) {
        (_, [e]) => format!("{} -> {} anomalous", name(e.src), name(e.dst)),
        (Some(c), _) => format!(
            "{} likely root cause of {} anomalous edges",
            c.name,
            edges.len()
        ),
        (None, _) => format!("{} anomalous edges", edges.len()),
    };
    let mut t = format!("{title}\n\nEdges:\n");
    for e in edges {
        let detail = anomaly_summary(a, *e);
        t.push_str(&format!("- {} -> {}: {detail}\n", name(e.src), name(e.dst)));
    }
    if !a.snapshot.ranking.candidates.is_empty() {
        t.push_str("\nLikely root causes:\n");
        for c in a.snapshot.ranking.candidates.iter().take(3) {
            t.push_str(&format!("{}. {}: {}\n", c.rank, c.name, c.explanation));
        }
    }
    if !a.snapshot.links.changes.is_empty() {
        t.push_str("\nConfig changes:\n");
        for c in &a.snapshot.links.changes {
            t.push_str(&format!("- {} by {}\n", c.description, c.author));
        }
    }
    t.push_str(&format!("\nView: {link}\n"));
    t
}

/// Detection's counts at the tick in one line, e.g. `Detection: 33,136 of 33,136 series
/// tested; 2 anomalous, 74 suppressed by filters, 0 without data, 0 without enough
/// history` (series, that is edges and their methods per metric, not edges); `None` when
/// nothing was counted (a bundle from before the counts were kept).
pub fn detection_summary(s: &graph_core::detect::Summary) -> Option<String> {
    if s.series == 0 {
        return None;
    }
    let n = |x: u32| {
        let digits = x.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    Some(format!(
        "Detection: {} of {} series tested; {} anomalous, {} suppressed by filters, {} without data, {} without enough history",
        n(s.tested),
        n(s.series),
        n(s.detections),
        n(s.suppressed),
        n(s.missing),
        n(s.insufficient)
    ))
}

/// What the stale-source banner says: the sources `stale` (gone quiet) and those
/// `behind` (had not delivered the tick when it was analysed); `None` when neither.
pub fn stale_banner_text(behind: &[String], stale: &[String]) -> Option<String> {
    let mut parts = Vec::new();
    if !stale.is_empty() {
        parts.push(format!("Data source {} has gone quiet.", stale.join(", ")));
    }
    if !behind.is_empty() {
        parts.push(format!(
            "{} had not delivered this tick when it was analysed: the edges it reports are treated as missing, not anomalous.",
            behind.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// What the pull banner says about sources Epicenter pulls from an engine: those whose
/// pulls fail (with the engine's answer) and those still pulling their history (with
/// progress); `None` when every pull is up to date.
pub fn pull_banner_text(sources: &[graph_core::api::SourceView]) -> Option<String> {
    let mut parts = Vec::new();
    for s in sources {
        let Some(p) = &s.pull else { continue };
        if let Some(error) = &p.last_error {
            parts.push(format!(
                "Pulling from {} failed {} times in a row ({error}); retrying.",
                s.name, p.failures
            ));
        } else if p.backfilling {
            parts.push(format!(
                "Pulling the history of {}: {:.0}% done; older ticks fill in as it goes.",
                s.name,
                p.backfill_progress.unwrap_or(0.0) * 100.0
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The anomalous edges of the pruned graph.
pub fn anomalous_edges(a: &AnalysisResponse) -> Vec<EdgeKey> {
    a.snapshot
        .pruned
        .edges
        .iter()
        .filter(|e| e.role == EdgeRole::Anomalous)
        .map(|e| e.edge)
        .collect()
}

/// The CSS class of a metric (colour and line pattern).
pub fn metric_class(m: Metric) -> &'static str {
    match m {
        Metric::Latency => "m-latency",
        Metric::Requests => "m-requests",
        Metric::Errors | Metric::ErrorRate => "m-errors",
    }
}

/// A one-letter tag that tells metrics apart without colour.
pub fn metric_tag(m: Metric) -> &'static str {
    match m {
        Metric::Latency => "L",
        Metric::Requests => "R",
        Metric::Errors => "E",
        Metric::ErrorRate => "E%",
    }
}

/// The maintenance badge: the data centres in maintenance mode, or `None` when none is.
///
/// ```
/// use graph_core::api::{DcMaintenance, MaintenanceView};
/// let dc = |name: &str, on| DcMaintenance { dc: name.into(), on, switch: None };
/// let v = MaintenanceView { dcs: vec![dc("dc1", false), dc("dc2", true)], services: vec![], log: vec![] };
/// assert_eq!(epicenter_frontend::view_model::maintenance_badge(&v).as_deref(), Some("Maintenance: dc2"));
/// ```
pub fn maintenance_badge(view: &graph_core::api::MaintenanceView) -> Option<String> {
    let on: Vec<&str> = view
        .dcs
        .iter()
        .filter(|d| d.on)
        .map(|d| d.dc.as_str())
        .collect();
    (!on.is_empty()).then(|| format!("Maintenance: {}", on.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_counts_read_as_one_line_and_are_left_out_when_unknown() {
        let s = graph_core::detect::Summary {
            series: 1_033_136,
            tested: 33_136,
            candidates: 21,
            detections: 2,
            suppressed: 74,
            missing: 0,
            insufficient: 5,
        };
        assert_eq!(
            detection_summary(&s).unwrap(),
            "Detection: 33,136 of 1,033,136 series tested; 2 anomalous, 74 suppressed by filters, 0 without data, 5 without enough history"
        );
        assert_eq!(detection_summary(&Default::default()), None);
    }

    #[test]
    fn the_pull_banner_tells_failing_pulls_and_backfill_progress() {
        use graph_core::api::{PullView, SourceView};
        let source = |name: &str, pull: Option<PullView>| SourceView {
            name: name.into(),
            last_arrival: 0,
            last_tick: 0,
            silent_s: 0,
            stale: false,
            retired: false,
            batches: 0,
            records: 0,
            clusters: 0,
            pull,
        };
        let quiet = [
            source("collector", None),
            source("mesh", Some(PullView::default())),
        ];
        assert_eq!(pull_banner_text(&quiet), None);
        let busy = [
            source(
                "mesh",
                Some(PullView {
                    backfilling: true,
                    backfill_progress: Some(0.624),
                    ..Default::default()
                }),
            ),
            source(
                "thanos",
                Some(PullView {
                    last_error: Some("http://thanos:9090 answered HTTP 503".into()),
                    failures: 3,
                    ..Default::default()
                }),
            ),
        ];
        assert_eq!(
            pull_banner_text(&busy).unwrap(),
            "Pulling the history of mesh: 62% done; older ticks fill in as it goes. \
             Pulling from thanos failed 3 times in a row (http://thanos:9090 answered HTTP 503); retrying."
        );
    }

    #[test]
    fn the_stale_banner_names_quiet_sources_and_those_behind() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(stale_banner_text(&[], &[]), None);
        assert_eq!(
            stale_banner_text(&names(&["dc3"]), &names(&["dc4", "dc1"])).unwrap(),
            "Data source dc4, dc1 has gone quiet. dc3 had not delivered this tick when it was analysed: the edges it reports are treated as missing, not anomalous."
        );
    }

    fn row(
        src: &str,
        dst: &str,
        dc: &str,
        metrics: &[Metric],
        sev: f64,
        dev: f64,
        since: Tick,
    ) -> EdgeRow {
        let info = |name: &str, id: u32| ClusterInfo {
            id: ClusterId(id),
            name: name.into(),
            service: name.split('-').next().unwrap().into(),
            dc: Some(dc.into()),
            tier: None,
        };
        EdgeRow {
            edge: EdgeKey {
                src: ClusterId(0),
                dst: ClusterId(1),
            },
            src: src.into(),
            dst: dst.into(),
            metrics: metrics.to_vec(),
            worst: Some((metrics[0], 1.0, 1.0, Some(dev))),
            severity: sev,
            since: Some(since),
            worsened: None,
            past_marks: 0,
            src_info: Some(info(src, 0)),
            dst_info: Some(info(dst, 1)),
        }
    }

    fn rows() -> Vec<EdgeRow> {
        vec![
            row("web-a", "pay-db", "eu", &[Metric::Latency], 3.0, 0.5, 600),
            row(
                "pay-api",
                "cache-x",
                "us",
                &[Metric::Requests, Metric::ErrorRate],
                9.0,
                2.0,
                300,
            ),
            row("auth-b", "web-a", "eu", &[Metric::ErrorRate], 1.0, 0.1, 900),
        ]
    }

    fn order(rows: &[EdgeRow]) -> Vec<&str> {
        rows.iter().map(|r| r.src.as_str()).collect()
    }

    #[test]
    fn every_column_sorts_in_its_natural_order_and_reverses() {
        let mut r = rows();
        sort_rows(&mut r, SortKey::Severity, false);
        assert_eq!(order(&r), ["pay-api", "web-a", "auth-b"]);
        sort_rows(&mut r, SortKey::Severity, true);
        assert_eq!(order(&r), ["auth-b", "web-a", "pay-api"]);
        sort_rows(&mut r, SortKey::Caller, false);
        assert_eq!(order(&r), ["auth-b", "pay-api", "web-a"]);
        sort_rows(&mut r, SortKey::Callee, false);
        assert_eq!(order(&r), ["pay-api", "web-a", "auth-b"]);
        sort_rows(&mut r, SortKey::Deviation, false);
        assert_eq!(order(&r), ["pay-api", "web-a", "auth-b"]);
        sort_rows(&mut r, SortKey::Since, false);
        assert_eq!(order(&r), ["auth-b", "web-a", "pay-api"]);
    }

    #[test]
    fn filters_match_service_text_data_centre_and_metric_together() {
        let pass = |f: Filter| {
            order(
                &rows()
                    .into_iter()
                    .filter(|r| f.matches(r))
                    .collect::<Vec<_>>(),
            )
            .join(",")
        };
        assert_eq!(pass(Filter::default()), "web-a,pay-api,auth-b");
        let svc = |s: &str| Filter {
            service: s.into(),
            ..Filter::default()
        };
        assert_eq!(pass(svc("PAY")), "web-a,pay-api");
        assert_eq!(pass(svc("  web ")), "web-a,auth-b");
        assert_eq!(
            pass(Filter {
                dc: "us".into(),
                ..Filter::default()
            }),
            "pay-api"
        );
        assert_eq!(
            pass(Filter {
                metric: Some(Metric::Errors),
                ..Filter::default()
            }),
            "pay-api,auth-b"
        );
        assert_eq!(
            pass(Filter {
                service: "web".into(),
                dc: "eu".into(),
                metric: Some(Metric::Latency)
            }),
            "web-a"
        );
        assert_eq!(pass(svc("nothing")), "");
    }
}
