//! The pruned anomalous subgraph, drawn as SVG from graph-core's layout: callers on the
//! left, callees on the right; edges coloured by metric and also patterned and tagged,
//! so they can be told apart without colour; root-cause rank badges on nodes.

use std::collections::HashMap;
use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use graph_core::model::EdgeKey;
use leptos::prelude::*;

use crate::view_model::{metric_class, metric_tag, names};

const PAD: f64 = 60.0;

/// The graph; clicking an edge selects it.
#[component]
pub fn GraphView(
    analysis: Arc<AnalysisResponse>,
    selected: RwSignal<Option<EdgeKey>>,
) -> impl IntoView {
    let names = names(&analysis);
    let layout = &analysis.snapshot.layout;
    let ranks: HashMap<_, _> = analysis
        .snapshot
        .ranking
        .candidates
        .iter()
        .map(|c| (c.cluster, c.rank))
        .collect();
    let metrics: HashMap<EdgeKey, _> = analysis
        .snapshot
        .pruned
        .edges
        .iter()
        .map(|e| (e.edge, e.metrics.clone()))
        .collect();
    let (min, max) = (layout.min, layout.max);
    let view_box = format!(
        "{} {} {} {}",
        min.x - PAD,
        min.y - PAD,
        (max.x - min.x) + 2.0 * PAD + 160.0,
        (max.y - min.y) + 2.0 * PAD
    );
    let edges = layout
        .edges
        .iter()
        .map(|route| {
            let edge = route.edge;
            let ms = metrics.get(&edge).cloned().unwrap_or_default();
            let class = ms.first().map(|m| metric_class(*m)).unwrap_or("m-context");
            let tag: String = ms.iter().map(|m| metric_tag(*m)).collect::<Vec<_>>().join("·");
            let points: String = route.points.iter().map(|p| format!("{:.1},{:.1}", p.x, p.y)).collect::<Vec<_>>().join(" ");
            let mid = route.points.get(route.points.len() / 2).copied();
            let label = mid.map(|p| view! { <text class="edge-tag" x=p.x y={p.y - 4.0}>{tag.clone()}</text> });
            let is_selected = move || selected.get() == Some(edge);
            view! {
                <g class=format!("edge {class}") class:selected=is_selected data-test="graph-edge" on:click=move |_| selected.set(Some(edge))>
                    <polyline points=points marker-end="url(#arrow)"/>
                    {label}
                </g>
            }
        })
        .collect_view();
    let nodes = layout
        .nodes
        .iter()
        .map(|n| {
            let name = names
                .get(&n.cluster)
                .cloned()
                .unwrap_or_else(|| format!("#{}", n.cluster.0));
            let badge = ranks.get(&n.cluster).filter(|r| **r <= 5).map(|r| {
                view! {
                    <g class="badge" data-test="rank-badge">
                        <circle cx={n.x - 8.0} cy={n.y - 10.0} r="9"/>
                        <text x={n.x - 8.0} y={n.y - 6.5}>{r.to_string()}</text>
                    </g>
                }
            });
            view! {
                <g class="node" data-test="graph-node">
                    <title>{name.clone()}</title>
                    <circle cx=n.x cy=n.y r="6"/>
                    <text class="node-label" x={n.x + 10.0} y={n.y + 4.0}>{name}</text>
                    {badge}
                </g>
            }
        })
        .collect_view();
    view! {
        <div class="graph" data-test="graph">
            <svg viewBox=view_box preserveAspectRatio="xMidYMid meet" role="img" aria-label="Anomalous subgraph">
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z"/>
                    </marker>
                </defs>
                {edges}
                {nodes}
            </svg>
            <p class="legend">
                <span class="metric m-latency">"L"</span>" latency (solid) "
                <span class="metric m-requests">"R"</span>" requests (dashed) "
                <span class="metric m-errors">"E"</span>" errors (dotted)"
            </p>
        </div>
    }
}
