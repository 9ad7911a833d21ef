//! Acting on an edge: mark it as a known anomaly (with an expiry), open an incident, or
//! declare a new trend; see every mark made on it, by whom and why, and close the ones
//! still open. Descriptions are shown as text, never as markup.

use graph_core::api::MarkView;
use graph_core::model::Tick;
use graph_core::prune::MarkKind;
use leptos::prelude::*;

use crate::api;
use crate::components::account::SessionSignal;
use crate::format;

/// Expiry choices for a known anomaly, seconds.
const EXPIRIES: [(i64, &str); 4] = [
    (3600, "1 hour"),
    (4 * 3600, "4 hours"),
    (86_400, "1 day"),
    (7 * 86_400, "7 days"),
];

/// What the mark list and forms need from the screen.
#[derive(Debug, Clone, Copy)]
pub struct MarkContext {
    /// Who is signed in.
    pub session: SessionSignal,
    /// Bumped when marks change (here or pushed from the server): lists refetch.
    pub marks_version: RwSignal<u64>,
    /// Bumped to fetch the analysis again.
    pub refresh: RwSignal<u64>,
    /// Who is looking at which edge.
    pub presence: RwSignal<Vec<graph_core::api::PresenceView>>,
}

fn kind_label(k: MarkKind) -> &'static str {
    match k {
        MarkKind::KnownAnomaly => "Known anomaly",
        MarkKind::Incident => "Incident",
        MarkKind::NewTrend => "New trend",
    }
}

fn kind_param(k: MarkKind) -> &'static str {
    match k {
        MarkKind::KnownAnomaly => "known_anomaly",
        MarkKind::Incident => "incident",
        MarkKind::NewTrend => "new_trend",
    }
}

/// The marks on `src → dst` and the actions on it at `tick`.
#[component]
pub fn MarkActions(
    src: String,
    dst: String,
    tick: Tick,
    ctx: MarkContext,
    /// Prefilled text of an incident on this edge.
    incident_text: String,
    /// The edge's onset, offered as a new trend's start.
    onset: Option<Tick>,
) -> impl IntoView {
    let trend_from: RwSignal<Tick> = RwSignal::new(tick);
    let key = format!("{src}>{dst}");
    let others = move || {
        let me = ctx.session.with(|s| s.as_ref().map(|s| s.name.clone()));
        let names: Vec<String> = ctx.presence.with(|p| {
            p.iter()
                .filter(|v| v.edge.as_deref() == Some(key.as_str()) && Some(&v.name) != me.as_ref())
                .map(|v| v.display_name.clone())
                .collect()
        });
        (!names.is_empty()).then(|| {
            let verb = if names.len() == 1 { "is" } else { "are" };
            view! { <p class="presence" data-test="presence">{format!("👀 {} {verb} looking at this edge", names.join(", "))}</p> }
        })
    };
    let (s1, d1) = (src.clone(), dst.clone());
    let marks = LocalResource::new(move || {
        ctx.marks_version.track();
        let (s, d) = (s1.clone(), d1.clone());
        async move { api::edge_marks(&s, &d).await }
    });
    let form: RwSignal<Option<MarkKind>> = RwSignal::new(None);
    let description = RwSignal::new(String::new());
    let expiry = RwSignal::new(4 * 3600_i64);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let changed = move || {
        ctx.marks_version.update(|v| *v += 1);
        ctx.refresh.update(|v| *v += 1);
    };
    let (s2, d2) = (src.clone(), dst.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(kind) = form.get_untracked() else {
            return;
        };
        let Some(csrf) = ctx.session.get_untracked().and_then(|s| s.csrf_token) else {
            error.set(Some("sign in again: this session cannot write".into()));
            return;
        };
        let mut body = serde_json::json!({
            "kind": kind_param(kind),
            "tick": tick,
            "edge": {"src": s2, "dst": d2},
            "description": description.get_untracked(),
        });
        if kind == MarkKind::KnownAnomaly {
            body["until"] = (tick + expiry.get_untracked()).into();
        }
        if kind == MarkKind::NewTrend {
            body["from"] = trend_from.get_untracked().into();
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_mark(&csrf, &body).await {
                Ok(_) => {
                    form.set(None);
                    description.set(String::new());
                    changed();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    let close = move |m: &MarkView| {
        let (id, version) = (m.id, m.version);
        move |_| {
            let Some(csrf) = ctx.session.get_untracked().and_then(|s| s.csrf_token) else {
                error.set(Some("sign in to close a mark".into()));
                return;
            };
            leptos::task::spawn_local(async move {
                let body = serde_json::json!({"version": version, "close": true});
                match api::update_mark(&csrf, id, &body).await {
                    Ok(_) => changed(),
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        }
    };
    let can_write = move || {
        ctx.session.with(|s| {
            s.as_ref()
                .is_some_and(|s| s.scopes.iter().any(|x| x == "write"))
        })
    };
    let list = move || match marks.get() {
        None => view! { <p class="muted">"Loading marks…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        Some(Ok(list)) if list.is_empty() => {
            view! { <p class="muted" data-test="no-marks">"No marks on this edge yet."</p> }
                .into_any()
        }
        Some(Ok(list)) => {
            let last = list.first().map(|m| {
                format!(
                    "last time: {} by {}: {}",
                    m.kind.label(),
                    m.author_name,
                    m.description
                )
            });
            let items = list
                .into_iter()
                .map(|m| {
                    let active = m.created <= tick && m.until.is_none_or(|u| tick < u);
                    let status = match (m.kind, m.until) {
                        (MarkKind::KnownAnomaly, Some(u)) => format!("until {}", format::time(u)),
                        (_, Some(u)) => format!("ended {}", format::time(u)),
                        (MarkKind::Incident | MarkKind::KnownAnomaly, None) => "open".to_string(),
                        (MarkKind::NewTrend, None) => match m.trend_from {
                            Some(f) => format!("new normal from {}", format::time(f)),
                            None => "new normal".to_string(),
                        },
                    };
                    let closable = m.until.is_none_or(|u| u > tick) && m.kind != MarkKind::NewTrend;
                    let close_button = (closable && can_write()).then(|| {
                        view! { <button class="link" data-test="close-mark" on:click=close(&m)>"Close"</button> }
                    });
                    let history = m
                        .history
                        .iter()
                        .map(|h| format!("v{} {} by {} at {}", h.version, h.what, h.by, format::time(h.at)))
                        .collect::<Vec<_>>()
                        .join("\n");
                    let jira = m.jira.clone().map(|j| match (j.key, j.url, j.error) {
                        (Some(key), url, _) => {
                            let status = j.status.map(|s| format!(" ({s})")).unwrap_or_default();
                            view! {
                                <p class="jira" data-test="jira">"Jira: "
                                    <a href=url.unwrap_or_default() target="_blank" rel="noopener noreferrer" data-test="jira-key">{key}</a>
                                    {status}
                                </p>
                            }
                            .into_any()
                        }
                        (None, _, Some(err)) => view! {
                            <p class="jira error" role="alert" data-test="jira-error">
                                {if j.pending { "Jira: not created yet, retrying: " } else { "Jira: " }}{err}
                            </p>
                        }
                        .into_any(),
                        (None, _, None) => view! { <p class="jira muted" data-test="jira-pending">"Jira: creating the issue…"</p> }.into_any(),
                    });
                    view! {
                        <li class="mark-item" class:active=active data-test="mark" data-kind=kind_param(m.kind) title=history>
                            <span class="kind">{kind_label(m.kind)}</span>
                            " by "<strong data-test="mark-author">{m.author_name.clone()}</strong>
                            <span class="muted">" · "{format::time(m.created)}" · "</span>
                            <span class="muted" data-test="mark-status">{status}</span>
                            {close_button}
                            <p class="reason" data-test="mark-reason">{m.description.clone()}</p>
                            {jira}
                        </li>
                    }
                })
                .collect_view();
            view! {
                <p class="last-time" data-test="last-time">{last}</p>
                <ul class="marks">{items}</ul>
            }
            .into_any()
        }
    };
    let buttons = move || {
        if !can_write() {
            let why = if ctx.session.with(Option::is_none) {
                "Sign in to mark this edge."
            } else {
                "Your account can read but not mark."
            };
            return view! { <p class="muted" data-test="sign-in-to-act">{why}</p> }.into_any();
        }
        view! {
            <div class="mark-buttons" role="group" aria-label="Mark this edge">
                {[MarkKind::KnownAnomaly, MarkKind::Incident, MarkKind::NewTrend]
                    .into_iter()
                    .map(|k| view! {
                        <button
                            class="mark-button"
                            class:active=move || form.get() == Some(k)
                            data-test=format!("mark-{}", kind_param(k))
                            on:click={
                                let text = incident_text.clone();
                                move |_| {
                                    form.update(|f| *f = if *f == Some(k) { None } else { Some(k) });
                                    // An incident starts from everything known; people edit it.
                                    if form.get_untracked() == Some(MarkKind::Incident)
                                        && description.with_untracked(|d| d.trim().is_empty())
                                    {
                                        description.set(text.clone());
                                    }
                                }
                            }
                        >
                            {kind_label(k)}
                        </button>
                    })
                    .collect_view()}
            </div>
        }
        .into_any()
    };
    let form_view = move || {
        let kind = form.get()?;
        let hint = match kind {
            MarkKind::KnownAnomaly => {
                "Hidden until it expires, or earlier if it gets worse than now."
            }
            MarkKind::Incident => {
                "Hidden while the incident is open; it comes back if it gets worse."
            }
            MarkKind::NewTrend => "Judged against its new normal from this tick on.",
        };
        Some(view! {
            <form class="mark-form" data-test="mark-form" on:submit=submit.clone()>
                <p class="muted">{hint}</p>
                <textarea
                    data-test="mark-description"
                    aria-label="Why"
                    placeholder="Why? (everyone sees this with your name)"
                    prop:value=move || description.get()
                    on:input=move |ev| description.set(event_target_value(&ev))
                    required
                ></textarea>
                {(kind == MarkKind::KnownAnomaly).then(|| view! {
                    <label>"Expires after "
                        <select data-test="mark-expiry" on:change=move |ev| if let Ok(v) = event_target_value(&ev).parse() { expiry.set(v) }>
                            {EXPIRIES.iter().map(|(s, l)| view! { <option value=s.to_string() selected=move || expiry.get() == *s>{*l}</option> }).collect_view()}
                        </select>
                    </label>
                })}
                {(kind == MarkKind::NewTrend).then(|| view! {
                    <label>"New normal from "
                        <select data-test="trend-from" on:change=move |ev| if let Ok(v) = event_target_value(&ev).parse() { trend_from.set(v) }>
                            <option value=tick.to_string() selected=move || trend_from.get() == tick>{format!("this tick ({})", format::time(tick))}</option>
                            {onset.filter(|o| *o < tick).map(|o| view! {
                                <option value=o.to_string() selected=move || trend_from.get() == o>{format!("the episode's start ({})", format::time(o))}</option>
                            })}
                        </select>
                    </label>
                })}
                <button type="submit" data-test="mark-submit" disabled=move || busy.get()>{format!("Mark as {}", kind.label())}</button>
            </form>
        })
    };
    view! {
        <div class="mark-actions" data-test="mark-actions">
            {others}
            {buttons}
            {form_view}
            {move || error.get().map(|e| view! { <p class="error" role="alert" data-test="mark-error">{e}</p> })}
            {list}
        </div>
    }
}
