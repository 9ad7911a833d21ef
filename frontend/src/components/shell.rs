//! The application shell of the main screen: header on top, the table of anomalous
//! edges on the left, the graph on the right.

use leptos::prelude::*;

use crate::api;

/// Header, left table area, right graph area.
#[component]
pub fn Shell() -> impl IntoView {
    let health = LocalResource::new(api::health);
    let version = move || {
        match health.get() {
        None => view! { <span class="version pending">"connecting…"</span> }.into_any(),
        Some(Ok(h)) => view! { <span class="version" data-test="version">"v" {h.version}</span> }.into_any(),
        Some(Err(e)) => view! { <span class="version error" role="alert" data-test="server-error">{e.to_string()}</span> }.into_any(),
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
                <div class="header-right">{version}</div>
            </header>
            <main class="main">
                <section class="left" data-test="edge-table" aria-label="Anomalous edges">
                    <h2>"Anomalous edges"</h2>
                    <p class="empty">"No data yet."</p>
                </section>
                <section class="right" data-test="graph" aria-label="Anomalous subgraph">
                    <h2>"Graph"</h2>
                </section>
            </main>
        </div>
    }
}
