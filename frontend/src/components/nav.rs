//! The links between the pages: the main screen, the service view and replay.

use leptos::prelude::*;

/// The page links; `current` is `main`, `service` or `replay`.
#[component]
pub fn Nav(current: &'static str) -> impl IntoView {
    let link = move |id: &'static str, href: &'static str, label: &'static str| {
        view! {
            <a href=href class:current=current == id aria-current=(current == id).then_some("page") data-test=format!("nav-{id}")>{label}</a>
        }
    };
    view! {
        <nav class="pages" aria-label="Pages">
            {link("main", "/", "Now")}
            {link("service", "/?view=service", "My service")}
            {link("replay", "/?view=replay", "Replay")}
        </nav>
    }
}
