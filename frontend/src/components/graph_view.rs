//! The graph, drawn as SVG from graph-core's layout: callers on the left, callees on
//! the right; edges coloured by metric and also patterned and tagged, so they can be
//! told apart without colour; root-cause rank badges on nodes. Wheel or +/− to zoom,
//! drag to pan, "Fit" to see everything; hovering shows details; clicking an edge
//! selects it (and the table follows).

use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::graph_model::{DrawGraph, fit, zoom};
use crate::view_model::metric_class;

/// A view box: x, y, width, height.
pub type ViewBox = (f64, f64, f64, f64);

/// What the pointer is over.
#[derive(Debug, Clone, PartialEq)]
enum Hover {
    Node(usize),
    Edge(usize),
}

fn element_aspect(svg: &web_sys::Element) -> Option<(f64, f64)> {
    let r = svg.get_bounding_client_rect();
    (r.width() > 0.0 && r.height() > 0.0).then(|| (r.width(), r.height()))
}

/// The graph view. `view_box` survives across ticks (None: fit to the graph).
#[component]
pub fn GraphView(
    graph: Arc<DrawGraph>,
    selected: RwSignal<Option<(String, String)>>,
    view_box: RwSignal<Option<ViewBox>>,
) -> impl IntoView {
    let svg_ref: NodeRef<leptos::svg::Svg> = NodeRef::new();
    let hover: RwSignal<Option<Hover>> = RwSignal::new(None);
    let drag: StoredValue<Option<(f64, f64, ViewBox, bool)>> = StoredValue::new(None);
    let bounds = graph.bounds;
    let fitted = move || {
        let aspect = svg_ref
            .get_untracked()
            .and_then(|s| element_aspect(&s))
            .map_or(2.0, |(w, h)| w / h);
        fit(bounds, aspect)
    };
    // Fit once the element has a size, unless the user already zoomed.
    Effect::new(move |_| {
        if svg_ref.get().is_some() && view_box.get_untracked().is_none() {
            view_box.set(Some(fitted()));
        }
        crate::perf::mark_once("epicenter:interactive");
    });
    // Graph units per screen pixel: labels, dots and badges keep their size on screen
    // whatever the zoom (CSS reads it as --u).
    let unit = Memo::new(move |_| {
        let w = svg_ref
            .get()
            .map(|s| s.get_bounding_client_rect().width())
            .filter(|w| *w > 0.0)
            .unwrap_or(800.0);
        view_box.get().map_or(1.0, |vb| vb.2 / w)
    });
    let vb_attr = move || {
        let (x, y, w, h) = view_box.get().unwrap_or_else(|| fit(bounds, 2.0));
        format!("{x:.1} {y:.1} {w:.1} {h:.1}")
    };
    let to_graph = move |cx: f64, cy: f64| -> Option<(f64, f64)> {
        let svg = svg_ref.get_untracked()?;
        let r = svg.get_bounding_client_rect();
        let (x, y, w, h) = view_box.get_untracked()?;
        Some((
            x + (cx - r.left()) / r.width() * w,
            y + (cy - r.top()) / r.height() * h,
        ))
    };
    let zoom_by = move |factor: f64, at: Option<(f64, f64)>| {
        if let Some(vb) = view_box.get_untracked() {
            let (px, py) = at.unwrap_or((vb.0 + vb.2 / 2.0, vb.1 + vb.3 / 2.0));
            view_box.set(Some(zoom(vb, factor, px, py)));
        }
    };
    let on_wheel = move |ev: web_sys::WheelEvent| {
        ev.prevent_default();
        let factor = 1.0015_f64.powf(-ev.delta_y());
        zoom_by(
            factor,
            to_graph(f64::from(ev.client_x()), f64::from(ev.client_y())),
        );
    };
    let on_down = move |ev: web_sys::MouseEvent| {
        if ev.button() == 0
            && let Some(vb) = view_box.get_untracked()
        {
            drag.set_value(Some((
                f64::from(ev.client_x()),
                f64::from(ev.client_y()),
                vb,
                false,
            )));
        }
    };
    let on_move = move |ev: web_sys::MouseEvent| {
        let Some((sx, sy, vb, _)) = drag.get_value() else {
            return;
        };
        let Some(svg) = svg_ref.get_untracked() else {
            return;
        };
        let r = svg.get_bounding_client_rect();
        let (dx, dy) = (f64::from(ev.client_x()) - sx, f64::from(ev.client_y()) - sy);
        if dx.abs() + dy.abs() > 3.0 {
            drag.set_value(Some((sx, sy, vb, true)));
            view_box.set(Some((
                vb.0 - dx / r.width() * vb.2,
                vb.1 - dy / r.height() * vb.3,
                vb.2,
                vb.3,
            )));
        }
    };
    // A click that ended a drag does not select.
    let dragged = move || drag.get_value().is_some_and(|d| d.3);
    let on_up = move |_| {
        // Cleared after the click event that follows mouseup.
        let clear = wasm_bindgen::closure::Closure::once_into_js(move || drag.set_value(None));
        if let Some(w) = web_sys::window() {
            let _scheduled = w.set_timeout_with_callback(clear.unchecked_ref());
        }
    };
    let on_key = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "+" | "=" => zoom_by(1.25, None),
        "-" | "_" => zoom_by(0.8, None),
        "0" => view_box.set(Some(fitted())),
        _ => {}
    };

    let g = graph.clone();
    let edges = g
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let key = (e.src.clone(), e.dst.clone());
            let class = e
                .metrics
                .first()
                .map(|m| metric_class(*m))
                .unwrap_or("m-context");
            let tag = e.tag();
            let (mx, my) = e.mid;
            let label = (!tag.is_empty()).then(|| {
                view! { <text class="edge-tag" x=mx y=move || my - 4.0 * unit.get()>{tag}</text> }
            });
            // Arrows on anomalous edges, and on every edge of the (small) pruned graph.
            let marker = (!g.full || !e.metrics.is_empty()).then_some("url(#arrow)");
            let k2 = key.clone();
            let is_selected = move || selected.with(|s| s.as_ref() == Some(&k2));
            view! {
                <g
                    class=format!("edge {class}{}", e.change.map(|c| format!(" {c}")).unwrap_or_default())
                    class:selected=is_selected
                    data-test="graph-edge"
                    data-edge=format!("{}>{}", e.src, e.dst)
                    on:click=move |_| if !dragged() { selected.set(Some(key.clone())) }
                    on:mouseenter=move |_| hover.set(Some(Hover::Edge(i)))
                    on:mouseleave=move |_| hover.set(None)
                >
                    <polyline class="hit" points=e.points.clone()/>
                    <polyline class="line" points=e.points.clone() marker-end=marker/>
                    {label}
                </g>
            }
        })
        .collect_view();
    let nodes = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (x, y) = (n.x, n.y);
            let badge = n.rank.map(|r| {
                view! {
                    <g class="badge" data-test="rank-badge">
                        <circle cx=move || x - 8.0 * unit.get() cy=move || y - 10.0 * unit.get() r=move || 9.0 * unit.get()/>
                        <text x=move || x - 8.0 * unit.get() y=move || y - 6.5 * unit.get()>{r.to_string()}</text>
                    </g>
                }
            });
            let label = (!g.full || n.anomalous).then(|| {
                view! { <text class="node-label" x=move || x + 9.0 * unit.get() y=move || y + 4.0 * unit.get()>{n.name.clone()}</text> }
            });
            let anomalous = n.anomalous;
            let name = n.name.clone();
            let touches = move || {
                selected.with(|s| s.as_ref().is_some_and(|(a, b)| *a == name || *b == name))
            };
            view! {
                <g
                    class="node"
                    class:quiet=!n.anomalous
                    class:selected=touches
                    data-test="graph-node"
                    on:mouseenter=move |_| hover.set(Some(Hover::Node(i)))
                    on:mouseleave=move |_| hover.set(None)
                >
                    <circle cx=x cy=y r=move || (if anomalous { 5.0 } else { 3.0 }) * unit.get()/>
                    {label}
                    {badge}
                </g>
            }
        })
        .collect_view();
    let card_graph = graph.clone();
    let card = move || {
        let g = &card_graph;
        match hover.get()? {
            Hover::Node(i) => {
                let n = g.nodes.get(i)?;
                let info = n.info.as_ref();
                let place = [
                    info.map(|c| format!("service {}", c.service)),
                    info.and_then(|c| c.dc.clone()).map(|d| format!("DC {d}")),
                    info.and_then(|c| c.tier.clone())
                        .map(|t| format!("tier {t}")),
                    n.rank.map(|r| format!("root-cause rank {r}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
                Some(
                    view! {
                        <div class="hover-card" data-test="hover-card">
                            <strong>{n.name.clone()}</strong>
                            <span>{place}</span>
                        </div>
                    }
                    .into_any(),
                )
            }
            Hover::Edge(i) => {
                let e = g.edges.get(i)?;
                Some(
                    view! {
                        <div class="hover-card" data-test="hover-card">
                            <strong>{format!("{} → {}", e.src, e.dst)}</strong>
                            <span>{e.detail.clone()}</span>
                        </div>
                    }
                    .into_any(),
                )
            }
        }
    };
    view! {
        <div class="graph" class:full=graph.full data-test="graph">
            <div class="graph-tools" role="toolbar" aria-label="Zoom">
                <button title="Zoom in (+)" on:click=move |_| zoom_by(1.25, None)>"+"</button>
                <button title="Zoom out (−)" on:click=move |_| zoom_by(0.8, None)>"−"</button>
                <button title="Fit to screen (0)" data-test="fit" on:click=move |_| view_box.set(Some(fitted()))>"Fit"</button>
            </div>
            {card}
            <svg
                node_ref=svg_ref
                viewBox=vb_attr
                style=move || format!("--u:{:.4}", unit.get())
                preserveAspectRatio="xMidYMid meet"
                role="img"
                tabindex="0"
                aria-label={if graph.full { "Full call graph" } else { "Anomalous subgraph" }}
                on:wheel=on_wheel
                on:mousedown=on_down
                on:mousemove=on_move
                on:mouseup=on_up
                on:mouseleave=move |_| drag.set_value(None)
                on:keydown=on_key
            >
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z"/>
                    </marker>
                </defs>
                {edges}
                {nodes}
            </svg>
            <p class="legend">
                <span class="metric m-latency">"L"</span>" latency (solid) "
                <span class="metric m-requests">"R"</span>" requests (dashed) "
                <span class="metric m-errors">"E"</span>" errors (dotted) "
                {graph.full.then_some(" · grey: no anomaly")}
                " · wheel or +/− zooms, drag pans"
            </p>
        </div>
    }
}
