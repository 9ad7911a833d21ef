//! What the graph view draws, built from either the pruned anomalous subgraph of an
//! analysis or the full graph: positions from graph-core's layout, names, ranks and
//! the anomalous metrics of each edge. Pure, tested natively.

use std::collections::HashMap;

use graph_core::api::{AnalysisResponse, ClusterInfo, FullGraphResponse};
use graph_core::layout::Layout;
use graph_core::model::{ClusterId, Metric};

use crate::view_model::metric_tag;

/// A node to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawNode {
    /// Cluster name.
    pub name: String,
    /// Service, data centre and tier, for the hover card.
    pub info: Option<ClusterInfo>,
    /// Position.
    pub x: f64,
    /// Position.
    pub y: f64,
    /// Root-cause rank, when among the candidates.
    pub rank: Option<u32>,
    /// True when it touches an anomalous edge (labels are always drawn for these).
    pub anomalous: bool,
}

/// An edge to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawEdge {
    /// Caller name.
    pub src: String,
    /// Callee name.
    pub dst: String,
    /// The route, `x,y x,y …`.
    pub points: String,
    /// Midpoint, for the tag.
    pub mid: (f64, f64),
    /// Anomalous metrics (empty for context edges).
    pub metrics: Vec<Metric>,
    /// One line for the hover card.
    pub detail: String,
    /// A class for how it changed between two ticks (`diff-worse`, …), in a diff.
    pub change: Option<&'static str>,
}

impl DrawEdge {
    /// The metric tags, `L·E%`.
    pub fn tag(&self) -> String {
        self.metrics
            .iter()
            .map(|m| metric_tag(*m))
            .collect::<Vec<_>>()
            .join("·")
    }
}

/// A whole graph to draw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrawGraph {
    /// Nodes.
    pub nodes: Vec<DrawNode>,
    /// Edges: context first, anomalous last, so anomalies are drawn on top.
    pub edges: Vec<DrawEdge>,
    /// Bounding box `(min x, min y, max x, max y)`.
    pub bounds: (f64, f64, f64, f64),
    /// True for the full graph.
    pub full: bool,
}

/// How much wider to draw a layout so it is at least `aspect` times as wide as high:
/// the full graph's few tiers hold a hundred nodes each, which would otherwise draw as
/// a thin column.
pub fn stretch(min: (f64, f64), max: (f64, f64), aspect: f64) -> f64 {
    let (w, h) = (max.0 - min.0, max.1 - min.1);
    if w <= 0.0 || h <= 0.0 {
        return 1.0;
    }
    (aspect * h / w).max(1.0)
}

fn build(
    layout: &Layout,
    clusters: &[ClusterInfo],
    ranks: &HashMap<ClusterId, u32>,
    edge_metrics: &HashMap<(ClusterId, ClusterId), (Vec<Metric>, String)>,
    full: bool,
) -> DrawGraph {
    let kx = if full {
        stretch(
            (layout.min.x, layout.min.y),
            (layout.max.x, layout.max.y),
            1.8,
        )
    } else {
        1.0
    };
    let sx = |x: f64| layout.min.x + (x - layout.min.x) * kx;
    let info: HashMap<ClusterId, &ClusterInfo> = clusters.iter().map(|c| (c.id, c)).collect();
    let name = |id: ClusterId| {
        info.get(&id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| format!("#{}", id.0))
    };
    let mut anomalous_nodes = std::collections::HashSet::new();
    let mut edges: Vec<DrawEdge> = layout
        .edges
        .iter()
        .map(|r| {
            let (metrics, detail) = edge_metrics
                .get(&(r.edge.src, r.edge.dst))
                .cloned()
                .unwrap_or_default();
            if !metrics.is_empty() {
                anomalous_nodes.insert(r.edge.src);
                anomalous_nodes.insert(r.edge.dst);
            }
            let points = r
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", sx(p.x), p.y))
                .collect::<Vec<_>>()
                .join(" ");
            let mid = r
                .points
                .get(r.points.len() / 2)
                .map_or((0.0, 0.0), |p| (sx(p.x), p.y));
            DrawEdge {
                src: name(r.edge.src),
                dst: name(r.edge.dst),
                points,
                mid,
                metrics,
                detail,
                change: None,
            }
        })
        .collect();
    edges.sort_by_key(|e| !e.metrics.is_empty());
    let nodes = layout
        .nodes
        .iter()
        .map(|n| DrawNode {
            name: name(n.cluster),
            info: info.get(&n.cluster).map(|c| (*c).clone()),
            x: sx(n.x),
            y: n.y,
            rank: ranks.get(&n.cluster).copied(),
            anomalous: anomalous_nodes.contains(&n.cluster) || ranks.contains_key(&n.cluster),
        })
        .collect();
    DrawGraph {
        nodes,
        edges,
        bounds: (layout.min.x, layout.min.y, sx(layout.max.x), layout.max.y),
        full,
    }
}

fn ranks(a: &AnalysisResponse) -> HashMap<ClusterId, u32> {
    a.snapshot
        .ranking
        .candidates
        .iter()
        .filter(|c| c.rank <= 5)
        .map(|c| (c.cluster, c.rank))
        .collect()
}

/// The pruned anomalous subgraph of an analysis.
pub fn pruned(a: &AnalysisResponse) -> DrawGraph {
    let metrics = a
        .snapshot
        .pruned
        .edges
        .iter()
        .map(|e| {
            let detail = crate::view_model::anomaly_summary(a, e.edge);
            let detail = if detail.is_empty() {
                "context: not anomalous".to_string()
            } else {
                detail
            };
            ((e.edge.src, e.edge.dst), (e.metrics.clone(), detail))
        })
        .collect();
    build(&a.snapshot.layout, &a.clusters, &ranks(a), &metrics, false)
}

/// The difference from `earlier` to `later` on one graph: the later tick's graph plus
/// the edges and nodes only the earlier one showed, each edge with the class of its
/// change by names. Both must be drawn on the same layout (a replay's).
pub fn diff(
    later: &AnalysisResponse,
    earlier: &AnalysisResponse,
    changes: &HashMap<(String, String), &'static str>,
) -> DrawGraph {
    let mut g = pruned(later);
    let before = pruned(earlier);
    for e in before.edges {
        if !g.edges.iter().any(|x| x.src == e.src && x.dst == e.dst) {
            g.edges.insert(0, e);
        }
    }
    for n in before.nodes {
        if !g.nodes.iter().any(|x| x.name == n.name) {
            g.nodes.push(DrawNode { rank: None, ..n });
        }
    }
    for e in &mut g.edges {
        e.change = changes.get(&(e.src.clone(), e.dst.clone())).copied();
    }
    g
}

/// Every edge with data at the tick, with the analysis's ranks.
pub fn full(g: &FullGraphResponse, a: &AnalysisResponse) -> DrawGraph {
    let metrics = g
        .edges
        .iter()
        .map(|e| {
            let mut parts = vec![format!("{:.0} requests", e.requests)];
            if let Some(l) = e.latency_ms {
                parts.push(format!("{l:.1} ms"));
            }
            if let Some(r) = e.error_rate {
                parts.push(format!("{:.2} % errors", r * 100.0));
            }
            ((e.src, e.dst), (e.anomalous.clone(), parts.join(", ")))
        })
        .collect();
    build(&g.layout, &g.clusters, &ranks(a), &metrics, true)
}

/// A view box `(x, y, width, height)` showing `bounds` with a margin, stretched to the
/// aspect ratio `aspect` (width / height) of the element, so screen and graph
/// coordinates map linearly.
pub fn fit(bounds: (f64, f64, f64, f64), aspect: f64) -> (f64, f64, f64, f64) {
    let pad = 60.0;
    let (x0, y0) = (bounds.0 - pad, bounds.1 - pad);
    // Room on the right for the labels of the last layer.
    let (mut w, mut h) = (
        bounds.2 - bounds.0 + 2.0 * pad + 180.0,
        bounds.3 - bounds.1 + 2.0 * pad,
    );
    w = w.max(200.0);
    h = h.max(120.0);
    let aspect = if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        w / h
    };
    let (fw, fh) = if w / h < aspect {
        (h * aspect, h)
    } else {
        (w, w / aspect)
    };
    (x0 - (fw - w) / 2.0, y0 - (fh - h) / 2.0, fw, fh)
}

/// The view box zoomed by `factor` (> 1 zooms in) around the point `(px, py)`.
pub fn zoom(vb: (f64, f64, f64, f64), factor: f64, px: f64, py: f64) -> (f64, f64, f64, f64) {
    let factor = factor.clamp(0.05, 20.0);
    let (w, h) = (vb.2 / factor, vb.3 / factor);
    (px - (px - vb.0) / factor, py - (py - vb.1) / factor, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_the_bounds_inside_and_matches_the_aspect() {
        let vb = fit((0.0, 0.0, 400.0, 100.0), 2.0);
        assert!((vb.2 / vb.3 - 2.0).abs() < 1e-9);
        assert!(vb.0 <= -60.0 && vb.1 <= -60.0);
        assert!(vb.0 + vb.2 >= 400.0 + 60.0 && vb.1 + vb.3 >= 160.0);
        let tall = fit((0.0, 0.0, 100.0, 1000.0), 1.0);
        assert!((tall.2 - tall.3).abs() < 1e-9);
    }

    #[test]
    fn a_tall_layout_is_stretched_to_the_aspect_and_a_wide_one_left_alone() {
        assert_eq!(stretch((0.0, 0.0), (100.0, 1000.0), 1.8), 18.0);
        assert_eq!(stretch((0.0, 0.0), (1000.0, 100.0), 1.8), 1.0);
        assert_eq!(stretch((0.0, 0.0), (0.0, 100.0), 1.8), 1.0);
    }

    #[test]
    fn zooming_keeps_the_point_under_the_cursor_in_place() {
        let vb = (0.0, 0.0, 100.0, 50.0);
        let z = zoom(vb, 2.0, 80.0, 10.0);
        assert_eq!((z.2, z.3), (50.0, 25.0));
        // The cursor was 80 % across and 20 % down; it still is.
        assert!(((80.0 - z.0) / z.2 - 0.8).abs() < 1e-9);
        assert!(((10.0 - z.1) / z.3 - 0.2).abs() < 1e-9);
        let back = zoom(z, 0.5, 80.0, 10.0);
        assert!((back.0 - vb.0).abs() < 1e-9 && (back.2 - vb.2).abs() < 1e-9);
    }
}
