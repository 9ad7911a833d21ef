//! The graph of one tick as a standalone SVG document, for postmortem documents: the
//! browser's export and `epicenter render` both draw with this, so the two agree.
//!
//! Edges are coloured by their first anomalous metric and also dashed by it (latency
//! solid, requests dashed, errors dotted), so the picture reads in black and white;
//! ranked root-cause candidates carry their rank. Every name is XML-escaped.
//!
//! ```
//! use graph_core::model::ClusterCatalog;
//! use graph_core::render::svg;
//! use graph_core::snapshot::TickSnapshot;
//! let doc = svg(&TickSnapshot::empty(0), &ClusterCatalog::new(), "Incident <42>");
//! assert!(doc.starts_with("<svg") && doc.contains("Incident &lt;42&gt;"));
//! assert!(doc.contains("Nothing anomalous at this tick"));
//! ```

use std::fmt::Write;

use crate::model::{ClusterCatalog, ClusterId, Metric};
use crate::snapshot::TickSnapshot;

const MARGIN: f64 = 40.0;
/// Room right of the rightmost nodes for their labels.
const LABEL_ROOM: f64 = 220.0;
const HEADER: f64 = 56.0;
const FOOTER: f64 = 34.0;

/// Colour and dash pattern of a metric (`None` for quiet context edges).
fn stroke(metric: Option<Metric>) -> (&'static str, &'static str) {
    match metric {
        Some(Metric::Latency) => ("#f2a33a", ""),
        Some(Metric::Requests) => ("#5ab0ff", "8 4"),
        Some(Metric::Errors | Metric::ErrorRate) => ("#ff5d5d", "2 3"),
        None => ("#8a96a3", ""),
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for XML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-18 10:15 UTC` for a Unix time.
fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let s = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        (s % 3600) / 60
    )
}

/// The graph `snap` shows, titled `title`, as an SVG document. `catalog` names the
/// clusters.
///
/// # Complexity
///
/// O(N + E·P) for N nodes and E edges of P points each.
pub fn svg(snap: &TickSnapshot, catalog: &ClusterCatalog, title: &str) -> String {
    let l = &snap.layout;
    let name = |id: ClusterId| catalog.label(id);
    let empty = l.nodes.is_empty();
    // The box of what is drawn (a layout may carry a larger one, e.g. a replay's).
    let points = l.nodes.iter().map(|n| (n.x, n.y)).chain(
        l.edges
            .iter()
            .flat_map(|e| e.points.iter().map(|p| (p.x, p.y))),
    );
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in points {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if empty {
        (x0, y0, x1, y1) = (0.0, 0.0, 480.0, 80.0);
    }
    let width = (x1 - x0 + 2.0 * MARGIN + LABEL_ROOM).max(480.0);
    let height = y1 - y0 + 2.0 * MARGIN + HEADER + FOOTER;
    let ox = MARGIN - if empty { 0.0 } else { x0 };
    let oy = MARGIN + HEADER - if empty { 0.0 } else { y0 };
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"##
    );
    out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#c9d1d9"/></marker></defs>"##);
    let _ = write!(
        out,
        r##"<rect width="100%" height="100%" fill="#0f1419"/><text x="{MARGIN}" y="26" font-size="16" font-weight="bold" fill="#e6edf3">{}</text><text x="{MARGIN}" y="46" font-size="12" fill="#8a96a3">{} · {} anomalous edges · {} hidden by marks</text>"##,
        escape(title),
        utc(snap.tick),
        snap.pruned.anomalous().count(),
        snap.pruned.hidden.len()
    );
    if empty {
        let _ = write!(
            out,
            r##"<text x="{MARGIN}" y="{:.0}" font-size="13" fill="#c9d1d9">Nothing anomalous at this tick.</text>"##,
            MARGIN + HEADER + 20.0
        );
    }
    // Context edges first, anomalous ones on top.
    let mut routes: Vec<_> = l.edges.iter().collect();
    let metric_of = |r: &crate::layout::EdgeRoute| {
        snap.pruned
            .edge(r.edge)
            .and_then(|e| e.metrics.first().copied())
    };
    routes.sort_by_key(|r| metric_of(r).is_some());
    for r in routes {
        let metric = metric_of(r);
        let (colour, dash) = stroke(metric);
        let points: Vec<String> = r
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", p.x + ox, p.y + oy))
            .collect();
        let _ = write!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{}"{} marker-end="url(#arrow)"><title>{} → {}</title></polyline>"##,
            points.join(" "),
            if metric.is_some() { 2.2 } else { 1.0 },
            if dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{dash}""#)
            },
            escape(&name(r.edge.src)),
            escape(&name(r.edge.dst)),
        );
    }
    for n in &l.nodes {
        let (x, y) = (n.x + ox, n.y + oy);
        let _ = write!(
            out,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="#e6edf3"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#e6edf3">{}</text>"##,
            x + 9.0,
            y + 4.0,
            escape(&name(n.cluster))
        );
        if let Some(rank) = snap.ranking.rank_of(n.cluster).filter(|r| *r <= 5) {
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="9" fill="#d63384"/><text x="{:.1}" y="{:.1}" font-size="11" font-weight="bold" text-anchor="middle" fill="#ffffff">{rank}</text>"##,
                x - 8.0,
                y - 10.0,
                x - 8.0,
                y - 6.5
            );
        }
    }
    let _ = write!(
        out,
        r##"<text x="{MARGIN}" y="{:.0}" font-size="11" fill="#8a96a3">latency: orange, solid · requests: blue, dashed · errors: red, dotted · grey: context · numbers: root-cause rank</text>"##,
        height - 14.0
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{CallGraph, EdgeAnomaly, EdgeObservation};
    use crate::layout::{LayoutConfig, layout};
    use crate::link::Links;
    use crate::model::{Cluster, EdgeKey};
    use crate::prune::{PruneOptions, prune};
    use crate::rank::{RankConfig, rank};

    #[test]
    fn a_tick_draws_its_edges_ranks_and_escaped_names() {
        let mut cat = ClusterCatalog::new();
        let a = cat.insert(Cluster {
            name: "web<script>".into(),
            service: "web".into(),
            dc: None,
            tier: Some("frontend".into()),
        });
        let b = cat.insert(Cluster {
            name: "db".into(),
            service: "db".into(),
            dc: None,
            tier: Some("storage".into()),
        });
        let graph = CallGraph::new(vec![
            EdgeObservation::new(EdgeKey { src: a, dst: b })
                .with_requests(100.0, 100.0)
                .with_error_rate(0.0, 0.3)
                .with_anomaly(EdgeAnomaly::new(Metric::ErrorRate, 0.3, 0.0, 6.0, 0)),
        ])
        .unwrap();
        let pruned = prune(&graph, &[], 600, &PruneOptions::default());
        let ranking = rank(
            &graph,
            &pruned,
            &Links::default(),
            &cat,
            &RankConfig::default(),
        );
        let drawn = layout(
            &pruned.nodes,
            &pruned.edge_keys(),
            &cat,
            None,
            &LayoutConfig::default(),
        );
        let snap = TickSnapshot::capture(&graph, pruned, ranking, &[], Links::default(), drawn);
        let doc = svg(&snap, &cat, "Postmortem");
        assert!(doc.contains("1970-01-01 00:10 UTC · 1 anomalous edges"));
        assert!(doc.contains("web&lt;script&gt;") && !doc.contains("<script>"));
        assert!(doc.contains(r##"stroke="#ff5d5d""##) && doc.contains(r#"stroke-dasharray="2 3""#));
        assert_eq!(
            doc.matches("<circle").count(),
            3,
            "two nodes and one rank badge"
        );
        assert!(doc.ends_with("</svg>"));
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(1_795_000_200), "2026-11-18 11:10 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
