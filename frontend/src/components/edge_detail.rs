//! The selected edge in detail: its metric over the day against the same day in the
//! six previous weeks with the baseline band and anomalous points (plotters), the
//! test behind the anomaly, config changes around the time, earlier marks, and the
//! server pairs that contribute most.

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use graph_core::graph::EdgeObservation;
use graph_core::model::Metric;
use leptos::prelude::*;

use crate::api;
use crate::charts;
use crate::components::mark_actions::{MarkActions, MarkContext};
use crate::format;
use crate::view_model::{anomalies, edge_by_names, metric_tag};

/// How far back config changes are listed, seconds.
const CHANGES_BEFORE_S: i64 = 6 * 3600;

fn current_expected(o: Option<&EdgeObservation>, m: Metric) -> (Option<f64>, Option<f64>) {
    let Some(o) = o else { return (None, None) };
    let d = match m {
        Metric::Latency => o.latency_ms,
        Metric::Requests => o.requests,
        Metric::ErrorRate | Metric::Errors => o.error_rate,
    };
    (d.current, d.expected)
}

/// The detail panel of edge `src → dst` at the analysis's tick.
#[component]
pub fn EdgeDetail(
    analysis: Arc<AnalysisResponse>,
    src: String,
    dst: String,
    chart_metric: RwSignal<Option<Metric>>,
    selected: RwSignal<Option<(String, String)>>,
    marks: MarkContext,
) -> impl IntoView {
    let tick = analysis.tick;
    let edge = edge_by_names(&analysis, &src, &dst);
    let found = edge.map(|e| anomalies(&analysis, e)).unwrap_or_default();
    let observation = edge.and_then(|e| {
        analysis
            .snapshot
            .observations
            .iter()
            .find(|o| o.edge == e)
            .cloned()
    });
    let default_metric = found.first().map_or(Metric::Latency, |a| match a.metric {
        Metric::Errors => Metric::ErrorRate,
        m => m,
    });
    let metric = Memo::new(move |_| chart_metric.get().unwrap_or(default_metric));

    // The panel and the selection paint first; the data is fetched from the next
    // frame on, so moving through the table stays instant.
    let started = RwSignal::new(false);
    request_animation_frame(move || started.set(true));
    let (s1, d1) = (src.clone(), dst.clone());
    let series = LocalResource::new(move || {
        let (go, s, d) = (started.get(), s1.clone(), d1.clone());
        async move {
            if go {
                Some(api::edge_series(&s, &d, tick).await.map(Arc::new))
            } else {
                None
            }
        }
    });
    let (s2, d2) = (src.clone(), dst.clone());
    let servers = LocalResource::new(move || {
        let (go, s, d) = (started.get(), s2.clone(), d2.clone());
        async move {
            if go {
                Some(api::edge_servers(&s, &d, tick, 8).await)
            } else {
                None
            }
        }
    });
    let changes = LocalResource::new(move || {
        let go = started.get();
        async move {
            if go {
                Some(api::changes(tick - CHANGES_BEFORE_S, tick + 3600).await)
            } else {
                None
            }
        }
    });

    let canvas: NodeRef<leptos::html::Canvas> = NodeRef::new();
    let chart_error: RwSignal<Option<String>> = RwSignal::new(None);
    Effect::new(move |_| {
        let m = metric.get();
        if let (Some(Ok(s)), Some(c)) = (series.get().flatten(), canvas.get()) {
            chart_error.set(charts::draw_edge(&c, &s, m, tick).err());
        }
    });

    let stats = {
        let found = found.clone();
        let observation = observation.clone();
        move || {
            let m = metric.get();
            let a = found
                .iter()
                .find(|a| a.metric == m || (m == Metric::ErrorRate && a.metric == Metric::Errors));
            let Some(a) = a else {
                let (cur, exp) = current_expected(observation.as_ref(), m);
                let show =
                    |v: Option<f64>| v.map_or("no data".to_string(), |v| format::value(m, v));
                return view! {
                    <p class="calm" data-test="not-anomalous">
                        {format!("Not anomalous in {m} at this tick: {} now, {} expected.", show(cur), show(exp))}
                    </p>
                }
                .into_any();
            };
            let test = a.test.map(|t| {
                let kind = match t.baseline.kind {
                    graph_core::detect::BaselineKind::Weekly => "same time in previous weeks",
                    graph_core::detect::BaselineKind::Daily => "same time on previous days",
                    graph_core::detect::BaselineKind::Trailing => "the hours before the episode",
                };
                // Found on the callee's own time: the baseline numbers are the own time's.
                let own = t.own_time.map(|o| view! {
                    <dt>"Tested on"</dt>
                    <dd data-test="own-time">{format!(
                        "the callee's own time: {} now, after {} per request in its own calls",
                        format::value(m, o.own_ms),
                        format::value(m, o.downstream_ms),
                    )}</dd>
                });
                let mean_label = if t.own_time.is_some() { "Usual own time" } else { "Baseline mean" };
                view! {
                    {own}
                    <dt>{mean_label}</dt><dd data-test="baseline-mean">{format!("{} ± {}", format::value(m, t.baseline_mean), format::value(m, t.baseline_std_dev))}</dd>
                    <dt>"Grubbs G"</dt><dd data-test="grubbs">{format!("{:.2} (critical {:.2})", t.g, t.g_crit)}</dd>
                    <dt>"Baseline"</dt><dd data-test="baseline-kind">{format!("{kind}, {} values", t.baseline.n)}</dd>
                    {t.activity_ratio.map(|r| view! { <dt>"Site activity"</dt><dd>{format!("×{r:.2} of usual, expectation scaled")}</dd> })}
                }
            });
            view! {
                <dl class="stats" data-test="edge-stats">
                    <dt>"Current"</dt><dd data-test="current">{format::value(a.metric, a.value)}</dd>
                    <dt>"Expected"</dt><dd>{format::value(a.metric, a.expected)}</dd>
                    <dt>"Deviation"</dt><dd data-test="deviation">{format::change(a.metric, a.value, a.expected, a.rel_deviation)}</dd>
                    {test}
                    <dt>"Severity"</dt><dd>{format!("{:.1}", a.severity)}</dd>
                    <dt>"Since"</dt><dd>{format::time(a.onset)}</dd>
                </dl>
            }
            .into_any()
        }
    };

    let linked: Vec<u64> = edge
        .and_then(|e| analysis.snapshot.links.edge(e))
        .map(|l| l.changes.iter().map(|c| c.change_id).collect())
        .unwrap_or_default();
    let onset = found.iter().map(|a| a.onset).min();
    let (s3, d3) = (src.clone(), dst.clone());
    let change_list = move || {
        let list = match changes.get().flatten() {
            None => return view! { <p class="muted">"Loading changes…"</p> }.into_any(),
            Some(Err(e)) => {
                return view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any();
            }
            Some(Ok(list)) => list,
        };
        let relevant: Vec<_> = list
            .into_iter()
            .filter(|c| c.clusters.iter().any(|x| *x == s3 || *x == d3))
            .collect();
        if relevant.is_empty() {
            return view! { <p class="muted">"No config change to either end in the 6 hours before."</p> }.into_any();
        }
        relevant
            .into_iter()
            .rev()
            .map(|c| {
                let is_linked = linked.contains(&c.id);
                let when = match onset {
                    Some(o) => format!("{} onset", format::offset(o - c.ts)),
                    None => format::time(c.ts),
                };
                view! {
                    <li class="change" class:linked=is_linked data-test="edge-change">
                        <span class="when">{when}</span>" "
                        {c.description}
                        <span class="who">{format!(" — {} · {}", c.author, c.clusters.join(", "))}</span>
                        {is_linked.then_some(view! { <span class="tag">"linked"</span> })}
                    </li>
                }
            })
            .collect_view()
            .into_any()
    };

    let here = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let incident = edge
        .map(|e| crate::view_model::incident_text(&analysis, &[e], &here))
        .unwrap_or_default();
    let hidden_by = edge.and_then(|e| {
        let h = analysis
            .snapshot
            .pruned
            .hidden
            .iter()
            .find(|h| h.edge == e)?;
        let m = analysis.snapshot.marks.iter().find(|m| m.id == h.mark_id)?;
        Some(format!(
            "Hidden at this tick: {} by {}: {}",
            m.kind.label(),
            m.author,
            m.description
        ))
    });
    let servers_view = move || match servers.get().flatten() {
        None => view! { <p class="muted">"Loading server pairs…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        Some(Ok(p)) if p.pairs.is_empty() => {
            view! { <p class="muted">"No server-level records kept for this tick."</p> }.into_any()
        }
        Some(Ok(p)) => {
            let caption = format!("top {} of {} pairs", p.pairs.len(), p.total_pairs);
            view! {
            <table class="pairs" data-test="server-pairs">
                <thead><tr><th>"Caller server"</th><th>"Callee server"</th><th class="num">"Requests"</th><th class="num">"Latency"</th><th class="num">"Share of time"</th></tr></thead>
                <tbody>
                    {p.pairs
                        .into_iter()
                        .map(|s| view! {
                            <tr>
                                <td class="name">{s.src}</td>
                                <td class="name">{s.dst}</td>
                                <td class="num">{format!("{:.0}", s.requests)}</td>
                                <td class="num">{s.latency_ms.map(|l| format!("{l:.1} ms")).unwrap_or_default()}</td>
                                <td class="num">{format!("{:.0} %", s.latency_share * 100.0)}</td>
                            </tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
            <p class="muted">{caption}</p>
        }
        .into_any()
        }
    };

    let series_state = move || match series.get().flatten() {
        None => Some(
            view! { <p class="muted" data-test="chart-loading">"Loading the chart…"</p> }
                .into_any(),
        ),
        Some(Err(e)) => {
            Some(view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any())
        }
        Some(Ok(_)) => chart_error
            .get()
            .map(|e| view! { <p class="error" role="alert">{e}</p> }.into_any()),
    };

    let metric_buttons = [Metric::Latency, Metric::Requests, Metric::ErrorRate]
        .into_iter()
        .map(|m| {
            let anomalous = found.iter().any(|a| a.metric == m || (m == Metric::ErrorRate && a.metric == Metric::Errors));
            view! {
                <button
                    class="metric-tab"
                    class:active=move || metric.get() == m
                    class:anomalous=anomalous
                    aria-pressed=move || if metric.get() == m { "true" } else { "false" }
                    data-test=format!("chart-{}", crate::url::metric_param(m))
                    on:click=move |_| chart_metric.set(if m == default_metric { None } else { Some(m) })
                >
                    {format!("{} {}", metric_tag(m), m)}
                </button>
            }
        })
        .collect_view();

    view! {
        <section class="edge-detail" data-test="edge-detail" aria-label="Edge detail">
            <header>
                <h2 class="edge-title" data-test="edge-title">{format!("{src} → {dst}")}</h2>
                <button class="close" title="Close (Esc)" data-test="close-detail" on:click=move |_| selected.set(None)>"×"</button>
            </header>
            {edge.is_none().then_some(view! { <p class="muted">"Neither end is in this tick's analysis."</p> })}
            <div class="metric-tabs" role="group" aria-label="Metric">{metric_buttons}</div>
            <div class="chart-wrap">
                <canvas node_ref=canvas class="chart" data-test="edge-chart" aria-label="The metric today, previous weeks and the baseline band"></canvas>
                {series_state}
            </div>
            <p class="chart-legend">"coloured: today · grey: same day 1–6 weeks ago · band: their mean ± 2σ · red dots: anomalous · white line: this tick"</p>
            {stats}
            <h3>"Config changes around the time"</h3>
            <ul class="changes" data-test="edge-changes">{change_list}</ul>
            <h3>"Marks"</h3>
            {hidden_by.map(|t| view! { <p class="hidden-by" data-test="hidden-by">{t}</p> })}
            <MarkActions src=src.clone() dst=dst.clone() tick=tick ctx=marks incident_text=incident onset=onset/>
            <h3>"Server pairs contributing most"</h3>
            {servers_view}
        </section>
    }
}
