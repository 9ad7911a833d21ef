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
pub mod url;
pub mod view_model;

use leptos::prelude::*;

use crate::components::shell::Shell;

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    view! { <Shell/> }
}
