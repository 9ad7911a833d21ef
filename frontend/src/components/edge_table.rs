//! The table of anomalous edges: sortable by each column, filterable by service, data
//! centre and metric, and keyboard navigable (arrows or j/k move the selection,
//! Escape clears it).

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use graph_core::model::Metric;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::format;
use crate::url::{SortKey, metric_param, parse_metric};
use crate::view_model::{
    EdgeRow, Filter, data_centres, edge_rows, metric_class, metric_tag, sort_rows,
};

/// The filters and sort order the table shows, shared with the URL.
#[derive(Debug, Clone, Copy)]
pub struct TableControls {
    /// Service text.
    pub service: RwSignal<String>,
    /// Data centre.
    pub dc: RwSignal<String>,
    /// Metric.
    pub metric: RwSignal<Option<Metric>>,
    /// Sort column and whether its natural order is reversed.
    pub sort: RwSignal<(SortKey, bool)>,
}

fn focus_row(i: usize) {
    let el = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| {
            d.query_selector(&format!("[data-test=edge-row][data-index=\"{i}\"]"))
                .ok()
                .flatten()
        })
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(el) = el {
        let _focused = el.focus();
    }
}

/// Anomalous edges, under detection's counts at the tick; clicking a row (or Enter)
/// selects the edge.
#[component]
pub fn EdgeTable(
    analysis: Arc<AnalysisResponse>,
    selected: RwSignal<Option<(String, String)>>,
    controls: TableControls,
) -> impl IntoView {
    let all = Arc::new(edge_rows(&analysis));
    let total = all.len();
    let dcs = data_centres(&analysis);
    let counts = crate::view_model::detection_summary(&analysis.summary);
    let TableControls {
        service,
        dc,
        metric,
        sort,
    } = controls;
    let visible = Memo::new({
        let all = all.clone();
        move |_| {
            let f = Filter {
                service: service.get(),
                dc: dc.get(),
                metric: metric.get(),
            };
            let mut rows: Vec<EdgeRow> = all.iter().filter(|r| f.matches(r)).cloned().collect();
            let (key, rev) = sort.get();
            sort_rows(&mut rows, key, rev);
            rows
        }
    });
    let step = move |delta: isize| {
        let rows = visible.get_untracked();
        if rows.is_empty() {
            return;
        }
        let current = selected.with_untracked(|s| {
            s.as_ref()
                .and_then(|(a, b)| rows.iter().position(|r| r.src == *a && r.dst == *b))
        });
        let next = match current {
            None => 0,
            Some(i) => (i as isize + delta).clamp(0, rows.len() as isize - 1) as usize,
        };
        let r = &rows[next];
        selected.set(Some((r.src.clone(), r.dst.clone())));
        focus_row(next);
    };
    let on_key = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "ArrowDown" | "j" => {
            ev.prevent_default();
            step(1);
        }
        "ArrowUp" | "k" => {
            ev.prevent_default();
            step(-1);
        }
        "Escape" => selected.set(None),
        _ => {}
    };
    let header = move |key: SortKey, label: &'static str, num: bool| {
        let aria = move || {
            let (k, rev) = sort.get();
            if k != key {
                "none"
            } else {
                // Names sort A-Z naturally; numbers and times largest or newest first.
                let natural_ascending = matches!(key, SortKey::Caller | SortKey::Callee);
                if natural_ascending != rev {
                    "ascending"
                } else {
                    "descending"
                }
            }
        };
        let click = move |_| {
            sort.update(|(k, rev)| {
                if *k == key {
                    *rev = !*rev;
                } else {
                    *k = key;
                    *rev = false;
                }
            })
        };
        view! {
            <th aria-sort=aria class:num=num>
                <button class="sort" data-test=format!("sort-{}", key.as_str()) on:click=click>
                    {label}
                    <span class="arrow">{move || match aria() { "ascending" => "▲", "descending" => "▼", _ => "" }}</span>
                </button>
            </th>
        }
    };
    let body = move || {
        let rows = visible.get();
        if rows.is_empty() {
            return view! {
                <tr><td colspan="7" class="empty" data-test="no-match">"No anomalous edge matches these filters."</td></tr>
            }
            .into_any();
        }
        rows.into_iter()
            .enumerate()
            .map(|(i, r)| {
                let key = (r.src.clone(), r.dst.clone());
                let k2 = key.clone();
                let k3 = key.clone();
                let is_selected = move || selected.with(|s| s.as_ref() == Some(&k2));
                let metrics = r
                    .metrics
                    .iter()
                    .map(|m| view! { <span class=format!("metric {}", metric_class(*m)) title=m.to_string()>{metric_tag(*m)}</span> })
                    .collect_view();
                let (value, deviation) = match r.worst {
                    Some((m, v, e, rel)) => (
                        format!("{} (exp. {})", format::value(m, v), format::value(m, e)),
                        format::change(m, v, e, rel),
                    ),
                    None => (String::new(), String::new()),
                };
                let since = r.since.map(format::clock).unwrap_or_default();
                let marks = match (r.worsened, r.past_marks) {
                    (Some(kind), _) => view! { <span class="mark worse" title="a mark covers it, but it got worse">{format!("{} ↑", kind.label())}</span> }.into_any(),
                    (None, 0) => ().into_any(),
                    (None, n) => view! { <span class="mark" title="earlier marks on this edge">{format!("{n} earlier")}</span> }.into_any(),
                };
                let edge_attr = format!("{}>{}", r.src, r.dst);
                view! {
                    <tr
                        class:selected=is_selected
                        tabindex="0"
                        data-test="edge-row"
                        data-index=i
                        data-edge=edge_attr
                        aria-selected=move || if selected.with(|s| s.as_ref() == Some(&k3)) { "true" } else { "false" }
                        on:click=move |_| selected.set(Some(key.clone()))
                    >
                        <td class="name">{r.src}</td>
                        <td class="name">{r.dst}</td>
                        <td>{metrics}</td>
                        <td class="num">{deviation}<span class="sub">{value}</span></td>
                        <td class="num">{format!("{:.1}", r.severity)}</td>
                        <td class="since">{since}</td>
                        <td>{marks}</td>
                    </tr>
                }
                .into_any()
            })
            .collect_view()
            .into_any()
    };
    let shown = move || {
        let n = visible.with(Vec::len);
        if n == total {
            total.to_string()
        } else {
            format!("{n} of {total}")
        }
    };
    view! {
        <div class="table-head">
            <h2>"Anomalous edges " <span class="count" data-test="edge-count">{shown}</span></h2>
            <div class="filters" role="search">
                <input
                    type="search"
                    placeholder="service or cluster"
                    aria-label="Filter by service"
                    data-test="filter-service"
                    prop:value=move || service.get()
                    on:input=move |ev| service.set(event_target_value(&ev))
                />
                <select aria-label="Filter by data centre" data-test="filter-dc" on:change=move |ev| dc.set(event_target_value(&ev))>
                    <option value="" selected=move || dc.get().is_empty()>"all DCs"</option>
                    {dcs
                        .into_iter()
                        .map(|d| {
                            let (d2, d3) = (d.clone(), d.clone());
                            view! { <option value=d3 selected=move || dc.get() == d2>{d}</option> }
                        })
                        .collect_view()}
                </select>
                <select aria-label="Filter by metric" data-test="filter-metric" on:change=move |ev| metric.set(parse_metric(&event_target_value(&ev)))>
                    <option value="" selected=move || metric.get().is_none()>"all metrics"</option>
                    {[Metric::Latency, Metric::Requests, Metric::Errors]
                        .into_iter()
                        .map(|m| view! { <option value=metric_param(m) selected=move || metric.get() == Some(m)>{m.to_string()}</option> })
                        .collect_view()}
                </select>
            </div>
        </div>
        {counts.map(|c| view! { <p class="muted detection-summary" data-test="detection-summary">{c}</p> })}
        {if total == 0 {
            view! {
                <p class="empty" data-test="no-anomalies">"No anomalies at this tick: every edge is within its seasonal baseline."</p>
            }
            .into_any()
        } else {
            view! {
                <table class="edges" on:keydown=on_key>
                    <thead>
                        <tr>
                            {header(SortKey::Caller, "Caller", false)}
                            {header(SortKey::Callee, "Callee", false)}
                            <th>"Metric"</th>
                            {header(SortKey::Deviation, "Change", true)}
                            {header(SortKey::Severity, "Severity", true)}
                            {header(SortKey::Since, "Since", false)}
                            <th>"Marks"</th>
                        </tr>
                    </thead>
                    <tbody>{body}</tbody>
                </table>
            }
            .into_any()
        }}
    }
}
