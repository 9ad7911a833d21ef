//! The main screen: header (activity, open incidents, mark tabs, time, live state),
//! a banner for stale sources, the table of anomalous edges and the edge detail on
//! the left, the root causes and the graph on the right. All view state lives here
//! and in the URL, so a link reproduces the view.

use std::sync::Arc;

use graph_core::api::{AnalysisResponse, TickEvent};
use graph_core::model::{Metric, Tick};
use graph_core::prune::MarkKind;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::api::{self, ApiError};
use crate::charts;
use crate::components::account::{Account, SessionSignal};
use crate::components::edge_detail::EdgeDetail;
use crate::components::edge_table::{EdgeTable, TableControls};
use crate::components::graph_view::{GraphView, ViewBox};
use crate::components::mark_actions::MarkContext;
use crate::components::root_causes::RootCauses;
use crate::format;
use crate::graph_model;
use crate::url::ViewState;

/// Bucket width of the server's ticks, seconds.
const TICK_S: i64 = 300;

fn location_search() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

fn replace_url(query: &str) {
    crate::url::replace_query(query);
}

/// Signals every part of the screen shares.
#[derive(Debug, Clone, Copy)]
struct Screen {
    /// The tick asked for; `None` follows the newest (live).
    tick: RwSignal<Option<Tick>>,
    selected: RwSignal<Option<(String, String)>>,
    controls: TableControls,
    full: RwSignal<bool>,
    chart_metric: RwSignal<Option<Metric>>,
    view_box: RwSignal<Option<ViewBox>>,
    /// Bumped to fetch the newest analysis again (live mode, retry).
    refresh: RwSignal<u64>,
    /// Whether the event stream is connected.
    connected: RwSignal<bool>,
    /// The newest tick the server announced.
    newest: RwSignal<Option<Tick>>,
    /// Bumped when a mark is made or changed anywhere.
    marks_version: RwSignal<u64>,
    /// Who is looking at which edge.
    presence: RwSignal<Vec<graph_core::api::PresenceView>>,
}

impl Screen {
    fn from_url() -> Screen {
        let v = ViewState::from_query(&location_search());
        Screen {
            tick: RwSignal::new(v.tick),
            selected: RwSignal::new(v.edge),
            controls: TableControls {
                service: RwSignal::new(v.service),
                dc: RwSignal::new(v.dc),
                metric: RwSignal::new(v.metric),
                sort: RwSignal::new((v.sort, v.reversed)),
            },
            full: RwSignal::new(v.full),
            chart_metric: RwSignal::new(v.chart),
            view_box: RwSignal::new(None),
            refresh: RwSignal::new(0),
            connected: RwSignal::new(false),
            newest: RwSignal::new(None),
            marks_version: RwSignal::new(0),
            presence: RwSignal::new(Vec::new()),
        }
    }

    fn state(&self) -> ViewState {
        let (sort, reversed) = self.controls.sort.get();
        ViewState {
            tick: self.tick.get(),
            edge: self.selected.get(),
            service: self.controls.service.get(),
            dc: self.controls.dc.get(),
            metric: self.controls.metric.get(),
            sort,
            reversed,
            full: self.full.get(),
            chart: self.chart_metric.get(),
        }
    }
}

thread_local! {
    /// The open event stream, if any.
    static STREAM: std::cell::RefCell<Option<web_sys::EventSource>> = const { std::cell::RefCell::new(None) };
}

fn close_stream() {
    STREAM.with(|st| {
        if let Some(es) = st.borrow_mut().take() {
            es.close();
        }
    });
}

/// Opens `GET /api/v1/events` with the given handlers (the browser reconnects by itself).
/// `handlers`: the `tick`, `mark` and `presence` listeners, then `onopen` and `onerror`.
fn open_stream(handlers: &[js_sys::Function; 5]) {
    let [on_tick, on_mark, on_presence, on_open, on_error] = handlers;
    close_stream();
    let Ok(es) = web_sys::EventSource::new("/api/v1/events") else {
        return;
    };
    for (name, f) in [
        ("tick", on_tick),
        ("mark", on_mark),
        ("presence", on_presence),
    ] {
        if let Err(e) = es.add_event_listener_with_callback(name, f) {
            web_sys::console::warn_1(&e);
        }
    }
    es.set_onopen(Some(on_open));
    es.set_onerror(Some(on_error));
    STREAM.with(|st| *st.borrow_mut() = Some(es));
}

/// Follows `GET /api/v1/events`: in live mode a newly analysed tick at or after the one
/// shown fetches the analysis again. The stream is closed while the tab is hidden (and
/// when the page goes away), so background tabs do not hold one of the browser's few
/// connections to the server; coming back reopens it and catches up.
fn follow_events(s: Screen, shown: Memo<Option<Tick>>) {
    let on_tick =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let Some(data) = e.data().as_string() else {
                return;
            };
            let Ok(ev) = serde_json::from_str::<TickEvent>(&data) else {
                return;
            };
            s.newest
                .update(|n| *n = Some(n.map_or(ev.tick, |x| x.max(ev.tick))));
            let behind = shown.get_untracked().is_none_or(|t| ev.tick >= t);
            if s.tick.get_untracked().is_none() && behind {
                s.refresh.update(|n| *n += 1);
            }
        });
    // Someone made or changed a mark: every view shows it, live or past.
    let on_mark = Closure::<dyn FnMut()>::new(move || {
        s.marks_version.update(|n| *n += 1);
        s.refresh.update(|n| *n += 1);
    });
    let on_presence =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if let Some(list) = e
                .data()
                .as_string()
                .and_then(|d| serde_json::from_str::<Vec<graph_core::api::PresenceView>>(&d).ok())
            {
                s.presence.set(list);
            }
        });
    let on_open = Closure::<dyn FnMut()>::new(move || s.connected.set(true));
    let on_error = Closure::<dyn FnMut()>::new(move || s.connected.set(false));
    let handlers: [js_sys::Function; 5] = [
        on_tick.into_js_value().unchecked_into(),
        on_mark.into_js_value().unchecked_into(),
        on_presence.into_js_value().unchecked_into(),
        on_open.into_js_value().unchecked_into(),
        on_error.into_js_value().unchecked_into(),
    ];
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if !document.hidden() {
        open_stream(&handlers);
    }
    let doc = document.clone();
    let on_visibility = Closure::<dyn FnMut()>::new(move || {
        if doc.hidden() {
            close_stream();
            s.connected.set(false);
        } else {
            open_stream(&handlers);
            if s.tick.get_untracked().is_none() {
                s.refresh.update(|n| *n += 1);
            }
        }
    });
    let on_hide = Closure::<dyn FnMut()>::new(close_stream);
    let listen = |target: &web_sys::EventTarget, name: &str, f: &js_sys::Function| {
        if let Err(e) = target.add_event_listener_with_callback(name, f) {
            web_sys::console::warn_1(&e);
        }
    };
    listen(
        &document,
        "visibilitychange",
        on_visibility.as_ref().unchecked_ref(),
    );
    if let Some(w) = web_sys::window() {
        listen(&w, "pagehide", on_hide.as_ref().unchecked_ref());
    }
    // Both live as long as the page.
    on_visibility.forget();
    on_hide.forget();
}

/// While signed in: tells the server which edge this browser looks at, when the
/// selection changes and every 20 s, and keeps the list of who looks where.
fn report_presence(s: Screen, session: SessionSignal) {
    let send = move || {
        let Some(csrf) = session.get_untracked().and_then(|x| x.csrf_token) else {
            return;
        };
        let edge = s.selected.get_untracked().map(|(a, b)| format!("{a}>{b}"));
        leptos::task::spawn_local(async move {
            match api::report_presence(&csrf, edge).await {
                Ok(list) => s.presence.set(list),
                Err(e) => web_sys::console::warn_1(&e.to_string().into()),
            }
        });
    };
    Effect::new(move |_| {
        session.track();
        s.selected.track();
        send();
    });
    let beat = Closure::<dyn FnMut()>::new(send);
    if let Some(w) = web_sys::window()
        && let Err(e) = w.set_interval_with_callback_and_timeout_and_arguments_0(
            beat.as_ref().unchecked_ref(),
            20_000,
        )
    {
        web_sys::console::warn_1(&e);
    }
    beat.forget();
}

/// The main screen.
#[component]
pub fn Shell() -> impl IntoView {
    let s = Screen::from_url();
    let session: SessionSignal = RwSignal::new(None);
    let health = LocalResource::new(api::health);
    let analysis = LocalResource::new(move || {
        let t = s.tick.get();
        s.refresh.track();
        async move { api::analysis(t).await.map(Arc::new) }
    });
    // The newest analysis that arrived, kept while another loads or fails.
    let latest: RwSignal<Option<Arc<AnalysisResponse>>> = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(Ok(a)) = analysis.get() {
            latest.set(Some(a));
        }
    });
    let shown = Memo::new(move |_| latest.with(|a| a.as_ref().map(|a| a.tick)));
    let sources = LocalResource::new(move || {
        s.refresh.track();
        shown.track();
        api::sources()
    });
    Effect::new(move |_| replace_url(&s.state().to_query()));
    follow_events(s, shown);
    report_presence(s, session);
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        if ev.key() == "Escape" && !typing {
            s.selected.set(None);
        }
    });
    on_cleanup(move || keys.remove());

    let version = move || {
        match health.get() {
        None => view! { <span class="version pending">"connecting…"</span> }.into_any(),
        Some(Ok(h)) => view! { <span class="version" data-test="version">"v" {h.version}</span> }.into_any(),
        Some(Err(e)) => view! { <span class="version error" role="alert" data-test="server-error">{e.to_string()}</span> }.into_any(),
    }
    };
    let body = move || {
        match analysis.get() {
        None => view! { <div class="state loading" data-test="loading">"Loading the anomalous graph…"</div> }.into_any(),
        Some(Err(e)) => error_state(e, s).into_any(),
        Some(Ok(a)) => main_view(a, s, session).into_any(),
    }
    };
    view! {
        <div class="shell" data-test="shell">
            <header class="header" data-test="header">
                <h1 class="brand">"Epicenter"</h1>
                <crate::components::nav::Nav current="main"/>
                <ActivityChart shown=shown/>
                {move || latest.get().map(|a| view! { <MarkTabs analysis=a/> })}
                <div class="header-right">
                    {move || latest.get().map(|a| view! { <TimeControls analysis=a s=s/> })}
                    <crate::components::maintenance::Maintenance session=session/>
                    <Account session=session/>
                    {version}
                </div>
            </header>
            {move || {
                let behind = latest.with(|a| a.as_ref().map(|a| a.sources_behind.clone()).unwrap_or_default());
                let stale = sources.get().and_then(Result::ok).map(|s| s.stale).unwrap_or_default();
                stale_banner(&behind, &stale)
            }}
            {move || {
                let all = sources.get().and_then(Result::ok).map(|s| s.sources).unwrap_or_default();
                crate::view_model::pull_banner_text(&all).map(|text| {
                    view! { <div class="banner pull" role="status" data-test="pull-banner">{text}</div> }
                })
            }}
            {body}
        </div>
    }
}

/// The yellow banner naming data sources that have gone quiet (`stale`) and those that
/// had not delivered the tick shown when it was analysed (`behind`); nothing when none.
/// The replay page shows it too, with the sources as they were at the tick.
pub fn stale_banner(behind: &[String], stale: &[String]) -> Option<impl IntoView + use<>> {
    let text = crate::view_model::stale_banner_text(behind, stale)?;
    Some(view! { <div class="banner stale" role="status" data-test="stale-banner">{text}</div> })
}

/// Site activity today against the same day in earlier weeks.
#[component]
fn ActivityChart(shown: Memo<Option<Tick>>) -> impl IntoView {
    let activity = LocalResource::new(move || {
        let t = shown.get();
        async move {
            match t {
                Some(t) => Some(api::activity(t).await),
                None => None,
            }
        }
    });
    let canvas: NodeRef<leptos::html::Canvas> = NodeRef::new();
    let note: RwSignal<String> = RwSignal::new(String::new());
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        match activity.get().flatten() {
            Some(Ok(a)) if !a.points.is_empty() => {
                note.set(String::new());
                if let Err(e) = charts::draw_activity(&c, &a) {
                    note.set(e);
                }
            }
            Some(Ok(_)) => note.set("no site activity recorded".into()),
            Some(Err(e)) => note.set(e.to_string()),
            None => {}
        }
    });
    view! {
        <div class="activity" title="Site activity today (blue) against the same day in earlier weeks (grey)">
            <canvas node_ref=canvas class="activity-chart" data-test="activity-chart" aria-label="Site activity"></canvas>
            <span class="activity-note">{move || note.get()}</span>
        </div>
    }
}

/// Open incidents and the tabs of marks, each with a bubble counting marks whose
/// edges got worse; a tab opens the list of its marks active at the tick.
#[component]
fn MarkTabs(analysis: Arc<AnalysisResponse>) -> impl IntoView {
    let tick = analysis.tick;
    let open_incidents = analysis
        .snapshot
        .marks
        .iter()
        .filter(|m| m.kind == MarkKind::Incident && m.is_active(tick))
        .count();
    let worse = analysis.snapshot.pruned.worsened;
    let open: RwSignal<Option<MarkKind>> = RwSignal::new(None);
    let tabs = [
        (MarkKind::KnownAnomaly, "Known anomalies", "known"),
        (MarkKind::Incident, "Incidents", "incidents"),
        (MarkKind::NewTrend, "New trends", "trends"),
    ]
    .into_iter()
    .map(|(kind, label, id)| {
        let n = worse.get(kind);
        let active = analysis
            .snapshot
            .marks
            .iter()
            .filter(|m| m.kind == kind && m.is_active(tick))
            .count();
        view! {
            <button
                class="tab"
                class:open=move || open.get() == Some(kind)
                aria-expanded=move || if open.get() == Some(kind) { "true" } else { "false" }
                data-test=format!("tab-{id}")
                title=format!("{active} active at this tick; {n} got worse")
                on:click=move |_| open.update(|o| *o = if *o == Some(kind) { None } else { Some(kind) })
            >
                {label}
                {(n > 0).then(|| view! { <span class="bubble" data-test="bubble">{n}</span> })}
            </button>
        }
    })
    .collect_view();
    let names = crate::view_model::names(&analysis);
    let name = move |id: graph_core::model::ClusterId| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{}", id.0))
    };
    let a = analysis.clone();
    let panel = move || {
        let kind = open.get()?;
        let hidden = a
            .snapshot
            .pruned
            .hidden
            .iter()
            .filter(|h| h.kind == kind)
            .count();
        let marks: Vec<_> = a
            .snapshot
            .marks
            .iter()
            .filter(|m| m.kind == kind && m.is_active(tick))
            .cloned()
            .collect();
        let items = if marks.is_empty() {
            view! { <p class="muted" data-test="no-marks-of-kind">{format!("No {} active at this tick.", kind.label())}</p> }.into_any()
        } else {
            marks
                .into_iter()
                .map(|m| {
                    let target = match &m.target {
                        graph_core::prune::MarkTarget::Edge { edge } => format!("{} → {}", name(edge.src), name(edge.dst)),
                        graph_core::prune::MarkTarget::Graph { edges } => format!("a graph of {} edges", edges.len()),
                    };
                    let until = m.until.map(|u| format!(", until {}", format::time(u))).unwrap_or_default();
                    view! {
                        <li>
                            <strong>{target}</strong>
                            <span class="muted">{format!(" · {} by {}{until}: ", format::time(m.created), m.author)}</span>
                            {m.description}
                        </li>
                    }
                })
                .collect_view()
                .into_any()
        };
        Some(view! {
            <div class="mark-panel" role="dialog" aria-label=kind.label() data-test="mark-panel">
                <p class="muted">{format!("{hidden} anomalous edges hidden by these marks at this tick; edges that got worse are shown in the table.")}</p>
                <ul>{items}</ul>
            </div>
        })
    };
    view! {
        <span class="incidents" data-test="open-incidents">
            <strong>{open_incidents}</strong>{if open_incidents == 1 { " open incident" } else { " open incidents" }}
        </span>
        <nav class="tabs" aria-label="Marks">{tabs}{panel}</nav>
    }
}

/// The tick shown, live or past, stepping and picking a time.
#[component]
fn TimeControls(analysis: Arc<AnalysisResponse>, s: Screen) -> impl IntoView {
    let (tick, earliest, latest) = (analysis.tick, analysis.earliest_tick, analysis.latest_tick);
    let live = s.tick.get_untracked().is_none();
    let go = move |t: Tick| {
        let t = t.clamp(earliest, latest);
        s.tick.set(Some(t - t.rem_euclid(TICK_S)));
    };
    let newer = move || {
        s.newest
            .get()
            .filter(|n| !live && *n > tick)
            .map(|_| view! { <span class="newer">"newer ticks available"</span> })
    };
    view! {
        <div class="time" role="group" aria-label="Time">
            <button title="Previous tick" data-test="prev-tick" disabled={tick <= earliest} on:click=move |_| go(tick - TICK_S)>"◀"</button>
            <input
                type="datetime-local"
                step="300"
                aria-label="Tick (UTC)"
                data-test="time-picker"
                min=format::input_value(earliest)
                max=format::input_value(latest)
                prop:value=format::input_value(tick)
                on:change=move |ev| if let Some(t) = format::parse_input(&event_target_value(&ev)) { go(t) }
            />
            <span class="utc">"UTC"</span>
            <button title="Next tick" data-test="next-tick" disabled={tick >= latest} on:click=move |_| go(tick + TICK_S)>"▶"</button>
            <span class="tick" data-test="tick">{format::time(tick)}</span>
            {if live {
                view! {
                    <span class="live" class:off=move || !s.connected.get() data-test="live" title="Follows new ticks as the server analyses them">
                        {move || if s.connected.get() { "● live" } else { "● live (reconnecting)" }}
                    </span>
                }
                .into_any()
            } else {
                view! {
                    <button class="go-live" data-test="go-live" on:click=move |_| s.tick.set(None)>"Go live"</button>
                    <span class="past" data-test="past">"past"</span>
                }
                .into_any()
            }}
            {newer}
            <a
                class="replay-link"
                data-test="replay-link"
                title="Replay the hour before this tick and the half hour after"
                href=format!("/?view=replay&from={}&to={}&at={tick}", (tick - 3600).max(earliest), (tick + 1800).min(latest))
            >"Replay"</a>
        </div>
    }
}

fn error_state(e: ApiError, s: Screen) -> impl IntoView {
    let details = match &e {
        ApiError::Server { details, .. } => details.clone(),
        _ => vec![],
    };
    let hint = match &e {
        ApiError::Unreachable(_) => {
            "Check that the server is running; this page retries when you ask."
        }
        ApiError::Server { status: 404, .. } => "Pick another time, or go back to live.",
        _ => "",
    };
    view! {
        <div class="state error" role="alert" data-test="analysis-error">
            <p>{e.to_string()}</p>
            <ul>{details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}</ul>
            <p class="muted">{hint}</p>
            <button data-test="retry" on:click=move |_| { s.tick.set(None); s.refresh.update(|n| *n += 1) }>"Try again (live)"</button>
        </div>
    }
}

fn main_view(a: Arc<AnalysisResponse>, s: Screen, session: SessionSignal) -> impl IntoView {
    let marks = MarkContext {
        session,
        marks_version: s.marks_version,
        refresh: s.refresh,
        presence: s.presence,
    };
    let tick = a.tick;
    let pruned = Arc::new(graph_model::pruned(&a));
    let full = LocalResource::new(move || {
        let want = s.full.get();
        async move {
            if want {
                Some(api::full_graph(tick).await)
            } else {
                None
            }
        }
    });
    let a2 = a.clone();
    let graph = move || {
        if !s.full.get() {
            if pruned.edges.is_empty() {
                return ().into_any();
            }
            return view! { <GraphView graph=pruned.clone() selected=s.selected view_box=s.view_box/> }.into_any();
        }
        match full.get().flatten() {
            None => view! { <div class="state loading" data-test="full-loading">"Loading the full graph…"</div> }.into_any(),
            Some(Err(e)) => view! { <div class="state error" role="alert">{e.to_string()}</div> }.into_any(),
            Some(Ok(g)) => {
                let drawn = Arc::new(graph_model::full(&g, &a2));
                let summary = format!("{} clusters, {} edges with data", drawn.nodes.len(), drawn.edges.len());
                view! {
                    <p class="muted" data-test="full-summary">{summary}</p>
                    <GraphView graph=drawn selected=s.selected view_box=s.view_box/>
                }
                .into_any()
            }
        }
    };
    let empty_graph = a.snapshot.pruned.edges.is_empty();
    let a3 = a.clone();
    let detail = move || {
        s.selected.get().map(|(src, dst)| {
            view! { <EdgeDetail analysis=a3.clone() src=src dst=dst chart_metric=s.chart_metric selected=s.selected marks=marks/> }
        })
    };
    view! {
        <main class="main">
            <section class="left" aria-label="Anomalous edges">
                <div class="table-area" data-test="edge-table">
                    <EdgeTable analysis=a.clone() selected=s.selected controls=s.controls/>
                </div>
                {detail}
            </section>
            <section class="right" aria-label="Root causes and graph">
                <RootCauses analysis=a.clone() ctx=marks/>
                <div class="graph-head">
                    <h2>{move || if s.full.get() { "Full graph" } else { "Anomalous subgraph" }}</h2>
                    <label class="toggle">
                        <input
                            type="checkbox"
                            data-test="full-toggle"
                            prop:checked=move || s.full.get()
                            on:change=move |ev| {
                                s.view_box.set(None);
                                s.full.set(event_target_checked(&ev));
                            }
                        />
                        " show the full graph"
                    </label>
                </div>
                {move || (empty_graph && !s.full.get()).then(|| view! {
                    <p class="empty" data-test="empty-graph">"Nothing anomalous to draw at this tick. Turn on the full graph to see every edge."</p>
                })}
                {graph}
            </section>
        </main>
    }
}
