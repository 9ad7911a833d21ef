//! The application shell of the main screen: header on top, the table of anomalous
//! edges on the left, the root causes and the graph on the right.

use graph_core::api::AnalysisResponse;
use graph_core::model::EdgeKey;
use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::components::edge_table::EdgeTable;
use crate::components::graph_view::GraphView;
use crate::components::root_causes::RootCauses;
use crate::format;

/// The main screen.
#[component]
pub fn Shell() -> impl IntoView {
    let health = LocalResource::new(api::health);
    let analysis = LocalResource::new(|| api::analysis(None));
    let selected: RwSignal<Option<EdgeKey>> = RwSignal::new(None);
    let version = move || {
        match health.get() {
        None => view! { <span class="version pending">"connecting…"</span> }.into_any(),
        Some(Ok(h)) => view! { <span class="version" data-test="version">"v" {h.version}</span> }.into_any(),
        Some(Err(e)) => view! { <span class="version error" role="alert" data-test="server-error">{e.to_string()}</span> }.into_any(),
    }
    };
    let tick_label = move || match analysis.get() {
        Some(Ok(a)) => {
            let live = if a.tick == a.latest_tick {
                "live"
            } else {
                "past"
            };
            view! { <span class="tick" data-test="tick">{format::time(a.tick)} " · " {live}</span> }
                .into_any()
        }
        _ => ().into_any(),
    };
    let body = move || {
        match analysis.get() {
        None => view! { <div class="state loading" data-test="loading">"Loading the anomalous graph…"</div> }.into_any(),
        Some(Err(e)) => error_state(e).into_any(),
        Some(Ok(a)) => main_view(a, selected).into_any(),
    }
    };
    view! {
        <div class="shell" data-test="shell">
            <header class="header" data-test="header">
                <h1 class="brand">"Epicenter"</h1>
                <nav class="tabs" aria-label="Marks">
                    <a class="tab" href="#known">"Known anomalies"</a>
                    <a class="tab" href="#incidents">"Incidents"</a>
                    <a class="tab" href="#trends">"New trends"</a>
                </nav>
                <div class="header-right">{tick_label} {version}</div>
            </header>
            {body}
        </div>
    }
}

fn error_state(e: ApiError) -> impl IntoView {
    let details = match &e {
        ApiError::Server { details, .. } => details.clone(),
        _ => vec![],
    };
    view! {
        <div class="state error" role="alert" data-test="analysis-error">
            <p>{e.to_string()}</p>
            <ul>{details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}</ul>
        </div>
    }
}

fn main_view(a: AnalysisResponse, selected: RwSignal<Option<EdgeKey>>) -> impl IntoView {
    let a = std::sync::Arc::new(a);
    view! {
        <main class="main">
            <section class="left" data-test="edge-table" aria-label="Anomalous edges">
                <EdgeTable analysis=a.clone() selected=selected/>
            </section>
            <section class="right" aria-label="Root causes and graph">
                <RootCauses analysis=a.clone()/>
                <GraphView analysis=a selected=selected/>
            </section>
        </main>
    }
}
