//! The ranked root-cause candidates with their explanations and linked config changes.

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use leptos::prelude::*;

use crate::api;
use crate::components::mark_actions::MarkContext;
use crate::format;
use crate::view_model::{anomalous_edges, incident_text};

/// "Open an incident for this graph": the whole pruned graph as one incident, with a
/// description prefilled with everything known, for signed-in people who may act.
#[component]
fn GraphIncident(analysis: Arc<AnalysisResponse>, ctx: MarkContext) -> impl IntoView {
    let tick = analysis.tick;
    let edges = anomalous_edges(&analysis);
    let open = RwSignal::new(false);
    let text = RwSignal::new(String::new());
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let can_write = move || {
        ctx.session.with(|s| {
            s.as_ref()
                .is_some_and(|s| s.scopes.iter().any(|x| x == "write"))
        })
    };
    let count = edges.len();
    let a = analysis.clone();
    let toggle = move |_| {
        if !open.get_untracked() && text.with_untracked(|t| t.is_empty()) {
            let here = web_sys::window()
                .and_then(|w| w.location().href().ok())
                .unwrap_or_default();
            text.set(incident_text(&a, &edges, &here));
        }
        open.update(|o| *o = !*o);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(csrf) = ctx.session.get_untracked().and_then(|s| s.csrf_token) else {
            error.set(Some("sign in again: this session cannot write".into()));
            return;
        };
        let body = serde_json::json!({
            "kind": "incident", "tick": tick, "graph": true, "description": text.get_untracked(),
        });
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::create_mark(&csrf, &body).await {
                Ok(_) => {
                    open.set(false);
                    text.set(String::new());
                    ctx.marks_version.update(|v| *v += 1);
                    ctx.refresh.update(|v| *v += 1);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    move || {
        (count > 0 && can_write()).then(|| {
            view! {
                <div class="graph-incident">
                    <button class="mark-button" data-test="graph-incident" on:click=toggle.clone()>
                        {format!("Open an incident for this graph ({count} edges)")}
                    </button>
                    {move || open.get().then(|| view! {
                        <form class="mark-form" data-test="graph-incident-form" on:submit=submit>
                            <p class="muted">"The first line is the title. The edges stay hidden while the incident is open, unless they get worse."</p>
                            <textarea data-test="graph-incident-text" aria-label="Incident" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) required></textarea>
                            <button type="submit" data-test="graph-incident-submit" disabled=move || busy.get()>"Open the incident"</button>
                        </form>
                    })}
                    {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                </div>
            }
        })
    }
}

/// Most likely causes first, each with the numbers behind it and the config changes
/// made to it shortly before its onset.
#[component]
pub fn RootCauses(analysis: Arc<AnalysisResponse>, ctx: MarkContext) -> impl IntoView {
    let candidates = analysis.snapshot.ranking.candidates.clone();
    let whole = analysis.clone();
    let storms = analysis.storms.clone();
    let links = analysis.snapshot.links.clone();
    view! {
        <div class="root-causes" data-test="root-causes">
            <h2>"Likely root causes"</h2>
            <GraphIncident analysis=whole ctx=ctx/>
            {storms
                .into_iter()
                .map(|s| view! {
                    <p class="storm" data-test="storm">
                        {format!("Network storm in {}: {} of {} edges slower at once", s.dc, s.edges_affected, s.edges_total)}
                    </p>
                })
                .collect_view()}
            {if candidates.is_empty() {
                view! { <p class="empty">"No candidate: nothing anomalous points to a cause."</p> }.into_any()
            } else {
                view! {
                    <ol class="candidates">
                        {candidates
                            .into_iter()
                            .take(5)
                            .map(|c| {
                                let changes = links
                                    .node(c.cluster)
                                    .map(|n| {
                                        n.changes
                                            .iter()
                                            .filter_map(|l| {
                                                let ch = links.changes.iter().find(|x| x.id == l.change_id)?;
                                                Some(view! {
                                                    <li class="change" data-test="candidate-change">
                                                        <span class="when">{format!("{} onset", format::offset(l.seconds_before_onset))}</span>
                                                        " "{ch.description.clone()}
                                                        <span class="who">{format!(" — {}", ch.author)}</span>
                                                    </li>
                                                })
                                            })
                                            .collect_view()
                                    });
                                view! {
                                    <li data-test="candidate">
                                        <span class="rank">{c.rank}</span>
                                        <span class="cluster" data-test="candidate-name">{c.name}</span>
                                        <span class="score" title="ranking score">{format!("{:.2}", c.score)}</span>
                                        <p class="why" data-test="candidate-why">{c.explanation}</p>
                                        <ul class="changes">{changes}</ul>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ol>
                }
                .into_any()
            }}
        </div>
    }
}
