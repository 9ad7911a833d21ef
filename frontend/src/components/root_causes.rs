//! The ranked root-cause candidates with their explanations.

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use leptos::prelude::*;

/// Most likely causes first, each with the numbers behind it.
#[component]
pub fn RootCauses(analysis: Arc<AnalysisResponse>) -> impl IntoView {
    let candidates = analysis.snapshot.ranking.candidates.clone();
    let storms = analysis.storms.clone();
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
                            .map(|c| view! {
                                <li data-test="candidate">
                                    <span class="rank">{c.rank}</span>
                                    <span class="cluster" data-test="candidate-name">{c.name}</span>
                                    <span class="score">{format!("{:.2}", c.score)}</span>
                                    <p class="why" data-test="candidate-why">{c.explanation}</p>
                                </li>
                            })
                            .collect_view()}
                    </ol>
                }
                .into_any()
            }}
        </div>
    }
}
