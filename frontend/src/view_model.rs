//! What the screen shows, derived from an analysis: pure functions, tested natively.

use std::collections::HashMap;

use graph_core::api::AnalysisResponse;
use graph_core::model::{ClusterId, EdgeKey, Metric, Tick};
use graph_core::prune::EdgeRole;

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
    /// Whether a mark covers it but it got worse.
    pub worsened: bool,
}

/// Names of the clusters in an analysis.
pub fn names(a: &AnalysisResponse) -> HashMap<ClusterId, String> {
    a.clusters.iter().map(|c| (c.id, c.name.clone())).collect()
}

/// The anomalous edges, most severe first (ties by names).
pub fn edge_rows(a: &AnalysisResponse) -> Vec<EdgeRow> {
    let names = names(a);
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
                worsened: e.worsened.is_some(),
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        y.severity
            .total_cmp(&x.severity)
            .then_with(|| (&x.src, &x.dst).cmp(&(&y.src, &y.dst)))
    });
    rows
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
