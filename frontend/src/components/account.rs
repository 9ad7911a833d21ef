//! Signing in and out: the header's account menu. Reading needs no account; acting on
//! anomalies (in later screens) does, with the session's CSRF token.

use graph_core::api::SessionView;
use leptos::prelude::*;

use crate::api;

/// The signed-in person, shared with parts of the screen that act.
pub type SessionSignal = RwSignal<Option<SessionView>>;

/// "Sign in" with its form, or the signed-in person with "Sign out".
#[component]
pub fn Account(session: SessionSignal) -> impl IntoView {
    let open = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    // Who is signed in already (the cookie survives reloads).
    leptos::task::spawn_local(async move {
        match api::session().await {
            Ok(s) => session.set(s),
            Err(e) => web_sys::console::warn_1(&e.to_string().into()),
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let (n, p) = (name.get_untracked(), password.get_untracked());
        leptos::task::spawn_local(async move {
            match api::sign_in(n.trim(), &p).await {
                Ok(s) => {
                    session.set(Some(s));
                    password.set(String::new());
                    open.set(false);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    let sign_out = move |_| {
        let Some(csrf) = session.get_untracked().and_then(|s| s.csrf_token) else {
            session.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            match api::sign_out(&csrf).await {
                Ok(()) => session.set(None),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    move || {
        match session.get() {
        Some(s) => view! {
            <span class="account" data-test="account">
                <span class="who" data-test="signed-in" title=format!("{} ({})", s.name, s.scopes.join(", "))>{s.display_name.clone()}</span>
                <button class="link" data-test="sign-out" on:click=sign_out>"Sign out"</button>
            </span>
        }
        .into_any(),
        None => view! {
            <span class="account" data-test="account">
                <button class="link" data-test="sign-in" aria-expanded=move || if open.get() { "true" } else { "false" } on:click=move |_| open.update(|o| *o = !*o)>"Sign in"</button>
                {move || open.get().then(|| view! {
                    <form class="sign-in" data-test="sign-in-form" on:submit=submit>
                        <label>"Name" <input name="username" autocomplete="username" data-test="sign-in-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) required/></label>
                        <label>"Password" <input type="password" name="password" autocomplete="current-password" data-test="sign-in-password" prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) required/></label>
                        <button type="submit" data-test="sign-in-submit" disabled=move || busy.get()>"Sign in"</button>
                        {move || error.get().map(|e| view! { <p class="error" role="alert" data-test="sign-in-error">{e}</p> })}
                    </form>
                })}
            </span>
        }
        .into_any(),
    }
    }
}
