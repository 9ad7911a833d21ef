//! The ranked root-cause candidates with their explanations and linked config changes.

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use leptos::prelude::*;

use crate::format;

/// Most likely causes first, each with the numbers behind it and the config changes
/// made to it shortly before its onset.
#[component]
pub fn RootCauses(analysis: Arc<AnalysisResponse>) -> impl IntoView {
    let candidates = analysis.snapshot.ranking.candidates.clone();
    let storms = analysis.storms.clone();
    let links = analysis.snapshot.links.clone();
    view! {
        <div class="root-causes" data-test="root-causes">
            <h2>"Likely root causes"</h2>
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
