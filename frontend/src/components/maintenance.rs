//! The header's maintenance control: which data centres are in maintenance mode (a
//! badge), and for people with the `write` scope a panel to switch one on or off with
//! a reason. Every switch is recorded with who, when and why, and listed here.

use graph_core::api::MaintenanceView;
use leptos::prelude::*;

use crate::api;
use crate::components::account::SessionSignal;

/// The badge and its panel.
#[component]
pub fn Maintenance(session: SessionSignal) -> impl IntoView {
    let state: RwSignal<Option<MaintenanceView>> = RwSignal::new(None);
    let open = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::maintenance().await {
                Ok(v) => state.set(Some(v)),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    load();
    let can_write = move || {
        session.with(|s| {
            s.as_ref()
                .is_some_and(|s| s.scopes.iter().any(|x| x == "write"))
        })
    };
    let switch = move |dc: String, on: bool| {
        let Some(csrf) = session.get_untracked().and_then(|s| s.csrf_token) else {
            error.set(Some("sign in to switch maintenance mode".into()));
            return;
        };
        let why = reason.get_untracked();
        if why.trim().is_empty() {
            error.set(Some(
                "say why first (the reason is shown to everyone)".into(),
            ));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::switch_maintenance(&csrf, &dc, on, why.trim()).await {
                Ok(v) => {
                    state.set(Some(v));
                    reason.set(String::new());
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    let badge = move || {
        state.with(|v| {
            v.as_ref()
                .and_then(crate::view_model::maintenance_badge)
                .unwrap_or_else(|| "Maintenance".to_string())
        })
    };
    let any_on = move || state.with(|v| v.as_ref().is_some_and(|v| v.dcs.iter().any(|d| d.on)));
    view! {
        <span class="maintenance" data-test="maintenance">
            <button
                class=move || if any_on() { "link maintenance-on" } else { "link" }
                data-test="maintenance-toggle"
                aria-expanded=move || if open.get() { "true" } else { "false" }
                on:click=move |_| {
                    open.update(|o| *o = !*o);
                    if open.get_untracked() {
                        load();
                    }
                }
            >{badge}</button>
            {move || open.get().then(|| view! {
                <div class="maintenance-panel" role="dialog" aria-label="Maintenance mode" data-test="maintenance-panel">
                    <p class="muted">"In maintenance mode a data centre's services are tested as sums over their data-centre parts, so traffic moving during a rolling update is not reported. Applies from the newest tick."</p>
                    {move || can_write().then(|| view! {
                        <label>"Reason "
                            <input data-test="maintenance-reason" maxlength="500" placeholder="e.g. rolling update of dc2"
                                prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
                        </label>
                    })}
                    <ul class="dcs">
                        {move || state.get().map(|v| v.dcs.into_iter().map(|d| {
                            let dc = d.dc.clone();
                            let (label, attr) = (dc.clone(), dc.clone());
                            let since = d.switch.as_ref().map(|s| format!("{} by {} at {}: {}", if s.on { "on" } else { "off" }, s.by, crate::format::time(s.at), s.reason))
                                .unwrap_or_else(|| "as configured".to_string());
                            let on = d.on;
                            view! {
                                <li data-test="maintenance-dc" data-dc=attr data-on=if on { "true" } else { "false" }>
                                    <strong>{label}</strong>
                                    <span class=if on { "state-on" } else { "state-off" }>{if on { " in maintenance" } else { " normal" }}</span>
                                    <span class="muted">{format!(" ({since})")}</span>
                                    {move || can_write().then(|| {
                                        let dc = dc.clone();
                                        view! {
                                            <button data-test="maintenance-switch" disabled=move || busy.get()
                                                on:click=move |_| switch(dc.clone(), !on)>
                                                {if on { "Switch off" } else { "Switch on" }}
                                            </button>
                                        }
                                    })}
                                </li>
                            }
                        }).collect_view())}
                    </ul>
                    {move || (!can_write()).then(|| view! { <p class="muted" data-test="maintenance-read-only">"Sign in with the write scope to switch."</p> })}
                    {move || error.get().map(|e| view! { <p class="error" role="alert" data-test="maintenance-error">{e}</p> })}
                </div>
            })}
        </span>
    }
}
