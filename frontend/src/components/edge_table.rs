//! The table of anomalous edges.

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use graph_core::model::EdgeKey;
use leptos::prelude::*;

use crate::format;
use crate::view_model::{edge_rows, metric_class, metric_tag};

/// Anomalous edges, most severe first; clicking a row selects the edge.
#[component]
pub fn EdgeTable(
    analysis: Arc<AnalysisResponse>,
    selected: RwSignal<Option<EdgeKey>>,
) -> impl IntoView {
    let rows = edge_rows(&analysis);
    let count = rows.len();
    if rows.is_empty() {
        return view! {
            <h2>"Anomalous edges"</h2>
            <p class="empty" data-test="no-anomalies">"No anomalies at this tick: every edge is within its seasonal baseline."</p>
        }
        .into_any();
    }
    let body = rows
        .into_iter()
        .map(|r| {
            let edge = r.edge;
            let is_selected = move || selected.get() == Some(edge);
            let metrics = r
                .metrics
                .iter()
                .map(|m| view! { <span class=format!("metric {}", metric_class(*m)) title=m.to_string()>{metric_tag(*m)}</span> })
                .collect_view();
            let (value, deviation) = match r.worst {
                Some((m, v, e, rel)) => (format!("{} (exp. {})", format::value(m, v), format::value(m, e)), format::deviation(rel)),
                None => (String::new(), String::new()),
            };
            let since = r.since.map(format::time).unwrap_or_default();
            view! {
                <tr
                    class:selected=is_selected
                    tabindex="0"
                    data-test="edge-row"
                    on:click=move |_| selected.set(Some(edge))
                    on:keydown=move |ev| if ev.key() == "Enter" { selected.set(Some(edge)) }
                >
                    <td class="name">{r.src}</td>
                    <td class="name">{r.dst}</td>
                    <td>{metrics}</td>
                    <td class="num">{deviation}</td>
                    <td class="num">{value}</td>
                    <td class="num">{format!("{:.1}", r.severity)}</td>
                    <td class="since">{since}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Anomalous edges " <span class="count" data-test="edge-count">{count}</span></h2>
        <table class="edges">
            <thead>
                <tr><th>"Caller"</th><th>"Callee"</th><th>"Metrics"</th><th>"Change"</th><th>"Value"</th><th>"Severity"</th><th>"Since"</th></tr>
            </thead>
            <tbody>{body}</tbody>
        </table>
    }
    .into_any()
}
