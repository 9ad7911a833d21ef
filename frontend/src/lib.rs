//! # epicenter-frontend
//!
//! The browser client: a Leptos client-side app compiled to wasm32. It stays thin:
//! domain logic (detection, pruning, ranking, layout) lives in `graph-core`, which it
//! shares with the server. [`App`] is the root; [`api`] is the one typed HTTP client.

pub mod api;
pub mod charts;
pub mod components;
pub mod format;
pub mod graph_model;
pub mod perf;
pub mod replay_model;
pub mod url;
pub mod view_model;

use leptos::prelude::*;

use crate::components::shell::Shell;

/// The root component: the page named by `?view=` (`service`, `replay`), else the
/// main screen.
#[component]
pub fn App() -> impl IntoView {
    let query = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    match url::param(&query, "view").as_deref() {
        Some("service") => view! { <components::service_view::ServiceView/> }.into_any(),
        Some("replay") => view! { <components::replay::Replay/> }.into_any(),
        _ => view! { <Shell/> }.into_any(),
    }
}
