//! The service view: a developer picks their service and a range (last night in their
//! own time zone, the last 24 hours, the last 7 days, or their own) and sees the
//! anomaly episodes on the edges into and out of it, with the marks people made, a
//! small chart each, and a link that opens the main screen at the episode.

use graph_core::api::{Episode, EpisodesResponse, SeriesPoint};
use graph_core::model::{Metric, Tick};
use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::components::nav::Nav;
use crate::format;
use crate::url::{ViewState, param};

/// The ranges offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// 00:00 to 09:00 in the browser's time zone, the last such night before the newest
    /// data.
    LastNight,
    /// The 24 hours up to the newest data.
    Day,
    /// The 7 days up to the newest data.
    Week,
    /// Chosen.
    Custom,
}

impl Range {
    fn param(self) -> &'static str {
        match self {
            Range::LastNight => "night",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Custom => "custom",
        }
    }

    fn parse(s: &str) -> Range {
        match s {
            "24h" => Range::Day,
            "7d" => Range::Week,
            "custom" => Range::Custom,
            _ => Range::LastNight,
        }
    }
}

/// The ticks of `range` given the newest data at `now`; `custom` for [`Range::Custom`].
pub fn resolve(range: Range, now: Tick, custom: (Tick, Tick)) -> (Tick, Tick) {
    match range {
        Range::LastNight => {
            let midnight = format::local_day_start(now, 0);
            let nine = format::local_day_start(now, 9);
            if now >= nine {
                (midnight, nine)
            } else if now > midnight {
                (midnight, now)
            } else {
                // Just past midnight: the night before.
                let prev = format::local_day_start(now - 3600, 0);
                (prev, format::local_day_start(now - 3600, 9))
            }
        }
        Range::Day => (now - 86_400 + 300, now),
        Range::Week => (now - 7 * 86_400 + 300, now),
        Range::Custom => custom,
    }
}

fn search() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

/// The page.
#[component]
pub fn ServiceView() -> impl IntoView {
    let q = search();
    let service = RwSignal::new(param(&q, "service").unwrap_or_default());
    let typed = RwSignal::new(service.get_untracked());
    let range = RwSignal::new(Range::parse(&param(&q, "range").unwrap_or_default()));
    let custom = RwSignal::new((
        param(&q, "from").and_then(|v| v.parse().ok()).unwrap_or(0),
        param(&q, "to").and_then(|v| v.parse().ok()).unwrap_or(0),
    ));
    let topology = LocalResource::new(api::topology);
    // The newest analysed data: "now" for the ranges.
    let newest = LocalResource::new(|| async { api::analysis(None).await.map(|a| a.latest_tick) });
    let span = Memo::new(move |_| {
        let now = newest.get()?.ok()?;
        let (from, to) = resolve(range.get(), now, custom.get());
        (to > from).then_some((from, to))
    });
    let episodes = LocalResource::new(move || {
        let s = service.get();
        let span = span.get();
        async move {
            match span {
                Some((from, to)) if !s.is_empty() => Some(api::episodes(&s, from, to).await),
                _ => None,
            }
        }
    });
    Effect::new(move |_| {
        let mut parts = vec!["view=service".to_string()];
        let s = service.get();
        if !s.is_empty() {
            parts.push(format!("service={}", crate::url::encode(&s)));
        }
        parts.push(format!("range={}", range.get().param()));
        if range.get() == Range::Custom {
            let (f, t) = custom.get();
            parts.push(format!("from={f}&to={t}"));
        }
        crate::url::replace_query(&format!("?{}", parts.join("&")));
    });

    let suggestions = move || {
        let t = typed.get().to_lowercase();
        let all = topology.get().and_then(Result::ok)?;
        if t.is_empty() || service.with(|s| s.to_lowercase() == t) {
            return None;
        }
        let mut hits: Vec<String> = all
            .services
            .iter()
            .chain(all.clusters.iter().map(|c| &c.name))
            .filter(|n| n.to_lowercase().contains(&t))
            .cloned()
            .collect();
        hits.sort_by_key(|n| (!n.to_lowercase().starts_with(&t), n.len(), n.clone()));
        hits.dedup();
        hits.truncate(12);
        Some(view! {
            <ul class="suggestions" role="listbox" data-test="service-suggestions">
                {hits.into_iter().map(|h| {
                    let pick = h.clone();
                    view! {
                        <li role="option">
                            <button data-test="service-suggestion" on:click=move |_| {
                                typed.set(pick.clone());
                                service.set(pick.clone());
                            }>{h}</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        })
    };
    let span_label = move || {
        let (from, to) = span.get()?;
        let zone = format::time_zone(from);
        Some(view! {
            <p class="muted" data-test="range-label">
                {format!("{} – {} ({zone})", format::local(from), format::local_clock(to))}
            </p>
        })
    };
    let custom_inputs = move || {
        (range.get() == Range::Custom).then(|| {
            let (f, t) = custom.get_untracked();
            let (f, t) = if f == 0 {
                span.get_untracked().unwrap_or((0, 0))
            } else {
                (f, t)
            };
            view! {
                <label>"from "<input type="datetime-local" data-test="custom-from" value=format::local_input_value(f)
                    on:change=move |ev| { if let Some(v) = format::parse_local_input(&event_target_value(&ev)) { custom.update(|c| c.0 = v) } }/></label>
                <label>"to "<input type="datetime-local" data-test="custom-to" value=format::local_input_value(t)
                    on:change=move |ev| { if let Some(v) = format::parse_local_input(&event_target_value(&ev)) { custom.update(|c| c.1 = v) } }/></label>
            }
        })
    };
    let body = move || {
        match episodes.get() {
        None => view! { <div class="state loading" data-test="episodes-loading">"Looking through the analysed ticks…"</div> }.into_any(),
        Some(None) => view! { <p class="empty" data-test="pick-service">"Pick a service to see its anomaly episodes."</p> }.into_any(),
        Some(Some(Err(e))) => error_view(e).into_any(),
        Some(Some(Ok(r))) => episode_list(r).into_any(),
    }
    };
    view! {
        <div class="shell service-view" data-test="service-view">
            <header class="header">
                <h1 class="brand">"Epicenter"</h1>
                <Nav current="service"/>
            </header>
            <main class="page">
                <div class="service-controls">
                    <label class="service-search">"Service "
                        <input
                            type="search"
                            data-test="service-input"
                            placeholder="type a service or cluster name"
                            autocomplete="off"
                            prop:value=move || typed.get()
                            on:input=move |ev| typed.set(event_target_value(&ev))
                            on:keydown=move |ev: web_sys::KeyboardEvent| { if ev.key() == "Enter" { service.set(typed.get_untracked()) } }
                        />
                        {suggestions}
                    </label>
                    <label>"Range "
                        <select data-test="range" on:change=move |ev| {
                            let r = Range::parse(&event_target_value(&ev));
                            if r == Range::Custom && custom.get_untracked().0 == 0 {
                                custom.set(span.get_untracked().unwrap_or((0, 0)));
                            }
                            range.set(r);
                        }>
                            {[(Range::LastNight, "last night (00:00–09:00)"), (Range::Day, "last 24 hours"), (Range::Week, "last 7 days"), (Range::Custom, "custom")]
                                .into_iter()
                                .map(|(r, label)| view! { <option value=r.param() selected=move || range.get() == r>{label}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    {custom_inputs}
                </div>
                {span_label}
                {body}
            </main>
        </div>
    }
}

fn error_view(e: ApiError) -> impl IntoView {
    let details = match &e {
        ApiError::Server { details, .. } => details.clone(),
        _ => Vec::new(),
    };
    view! {
        <div class="state error" role="alert" data-test="episodes-error">
            <p>{e.to_string()}</p>
            <ul>{details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}</ul>
        </div>
    }
}

fn episode_list(r: EpisodesResponse) -> impl IntoView {
    let n = r.episodes.len();
    let head = format!(
        "{n} episode{} on the edges into and out of {} ({} cluster{}), from {} analysed ticks",
        if n == 1 { "" } else { "s" },
        r.service,
        r.clusters.len(),
        if r.clusters.len() == 1 { "" } else { "s" },
        r.analysed_ticks
    );
    let mut episodes = r.episodes;
    // Newest first: the morning's question is what happened last.
    episodes.reverse();
    view! {
        <p class="muted" data-test="episodes-summary">{head}</p>
        {(n == 0).then(|| view! { <p class="empty" data-test="no-episodes">"Nothing anomalous touched this service in the range."</p> })}
        <ol class="episodes" data-test="episodes">
            {episodes.into_iter().map(episode_card).collect_view()}
        </ol>
    }
}

fn metric_value(m: Metric, p: &SeriesPoint) -> Option<f64> {
    match m {
        Metric::Latency => p.latency_ms,
        Metric::ErrorRate | Metric::Errors => p.error_rate.map(|r| r * 100.0),
        Metric::Requests => Some(p.requests),
    }
}

/// The small chart: this week's line in the metric's colour over last week's in grey,
/// with the episode shaded.
fn sparkline(e: &Episode) -> impl IntoView + use<> {
    let (w, h) = (260.0, 56.0);
    let all: Vec<(Tick, f64)> = e
        .points
        .iter()
        .chain(&e.week_before)
        .filter_map(|p| metric_value(e.metric, p).map(|v| (p.tick, v)))
        .collect();
    let (t0, t1) = (e.start - 3600, e.end + 3600 + 300);
    let vmax = all.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9);
    let x = move |t: Tick| (t - t0) as f64 / (t1 - t0).max(1) as f64 * w;
    let y = move |v: f64| h - 2.0 - v / vmax * (h - 6.0);
    let line = |ps: &[SeriesPoint]| {
        ps.iter()
            .filter_map(|p| {
                metric_value(e.metric, p).map(|v| format!("{:.1},{:.1}", x(p.tick), y(v)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let class = crate::view_model::metric_class(e.metric);
    let label = format!(
        "{} from {} to {}: peak {}",
        e.metric,
        format::local_clock(e.start),
        format::local_clock(e.end + 300),
        vmax_label(e.metric, vmax)
    );
    view! {
        <svg class=format!("spark {class}") data-test="episode-chart" viewBox=format!("0 0 {w} {h}") width=w height=h role="img" aria-label=label>
            <rect class="episode-span" x=x(e.start) y="0" width=(x(e.end + 300) - x(e.start)).max(2.0) height=h/>
            <polyline class="week-before" points=line(&e.week_before)/>
            <polyline class="this-week" points=line(&e.points)/>
        </svg>
    }
}

fn vmax_label(m: Metric, v: f64) -> String {
    match m {
        Metric::Latency => format!("{v:.1} ms"),
        Metric::ErrorRate | Metric::Errors => format!("{v:.2} %"),
        Metric::Requests => format!("{v:.0} requests"),
    }
}

fn kind_phrase(k: graph_core::prune::MarkKind) -> &'static str {
    match k {
        graph_core::prune::MarkKind::KnownAnomaly => "a known anomaly",
        graph_core::prune::MarkKind::Incident => "an incident",
        graph_core::prune::MarkKind::NewTrend => "a new trend",
    }
}

fn episode_card(e: Episode) -> impl IntoView {
    let arrow = match e.direction.as_str() {
        "outgoing" => "calls out",
        "incoming" => "called",
        _ => "within",
    };
    let minutes = (e.end + 300 - e.start) / 60;
    let open = ViewState {
        tick: Some(e.peak_tick),
        edge: Some((e.src.clone(), e.dst.clone())),
        ..ViewState::default()
    }
    .to_query();
    let rank = match (e.rank_at_peak, e.best_rank) {
        (Some(r), _) => format!("root-cause rank {r} at the peak"),
        (None, Some(b)) => format!("best root-cause rank {b}"),
        (None, None) => "not among the root-cause candidates".into(),
    };
    let hidden =
        (e.hidden_ticks > 0).then(|| format!(" · hidden by a mark for {} min", e.hidden_ticks * 5));
    let chart = sparkline(&e);
    let marks = e
        .marks
        .iter()
        .map(|m| {
            view! {
                <li data-test="episode-mark">
                    <strong>{m.author_name.clone()}</strong>
                    {format!(" marked it as {} at {}: ", kind_phrase(m.kind), format::local(m.created))}
                    <q>{m.description.clone()}</q>
                </li>
            }
        })
        .collect_view();
    view! {
        <li class="episode" data-test="episode" data-edge=format!("{}>{}", e.src, e.dst)>
            <div class="episode-text">
                <h3>
                    <span class="edge-name">{format!("{} → {}", e.src, e.dst)}</span>
                    <span class="muted">{format!(" ({arrow})")}</span>
                </h3>
                <p data-test="episode-when">
                    {format!("{} – {} · {minutes} min · ", format::local(e.start), format::local_clock(e.end + 300))}
                    {e.metrics.iter().map(|m| view! { <span class=format!("metric {}", crate::view_model::metric_class(*m))>{m.to_string()}</span>" " }).collect_view()}
                    {format!("· peak {} {} at {} · severity {:.1} · {rank}{}", e.metric, format::deviation(e.peak_deviation), format::local_clock(e.peak_tick), e.peak_severity, hidden.unwrap_or_default())}
                </p>
                <ul class="episode-marks">{marks}</ul>
                <a class="button" data-test="open-episode" href=format!("/{open}")>"Open on the main screen at the peak"</a>
            </div>
            {chart}
        </li>
    }
}
