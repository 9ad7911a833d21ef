//! Replay: the stored snapshots of a range (from the server, or from a bundle file with
//! no server at all) stepped through with a scrubber, play/pause and speed. Nodes keep
//! their places, and the zoom and the selected edge stay from step to step; marks show
//! from the tick they were made; the ranking, the data-centre storms, detection's
//! counts and the stale-source banner follow the tick, as the main screen showed them.
//! Two ticks can be compared on the graph and as a list; pruning thresholds are applied
//! in the browser by graph-core; the graph exports as SVG or PNG and the range as a
//! bundle.

use std::sync::Arc;

use graph_core::api::AnalysisResponse;
use graph_core::model::{Metric, Tick};
use graph_core::snapshot::{Bundle, Thresholds};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::api;
use crate::components::edge_table::{EdgeTable, TableControls};
use crate::components::graph_view::{GraphView, ViewBox};
use crate::components::mark_actions::MarkContext;
use crate::components::nav::Nav;
use crate::components::root_causes::RootCauses;
use crate::format;
use crate::graph_model;
use crate::replay_model::{self, DiffView, Replay as Loaded};
use crate::url::{SortKey, param};

/// Playback speeds, ticks per second.
const SPEEDS: [f64; 4] = [1.0, 2.0, 4.0, 8.0];

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Appends one step time to `window.epicenterReplaySteps` (read by the browser
/// benchmark and tests).
fn record_step(ms: f64) {
    let Some(w) = web_sys::window() else { return };
    let key = wasm_bindgen::JsValue::from_str("epicenterReplaySteps");
    let list = js_sys::Reflect::get(&w, &key)
        .ok()
        .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
        .unwrap_or_else(|| {
            let a = js_sys::Array::new();
            if js_sys::Reflect::set(&w, &key, &a).is_err() {
                web_sys::console::warn_1(&"replay step times cannot be recorded".into());
            }
            a
        });
    list.push(&wasm_bindgen::JsValue::from_f64(ms));
}

/// Why an export did not happen: a browser call that failed, named.
fn failed(what: &str, e: impl std::fmt::Debug) -> String {
    format!("the export failed: {what} ({e:?})")
}

/// Offers `bytes` as a download named `name`.
fn download(name: &str, mime: &str, data: &wasm_bindgen::JsValue) -> Result<(), String> {
    let parts = js_sys::Array::of1(data);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|e| failed("making the file", e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|e| failed("making its address", e))?;
    click_link(name, &url)
}

fn click_link(name: &str, url: &str) -> Result<(), String> {
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| failed("no document", ""))?;
    let body = doc.body().ok_or_else(|| failed("no document body", ""))?;
    let a = doc
        .create_element("a")
        .map_err(|e| failed("making the link", e))?;
    let a: web_sys::HtmlAnchorElement = a.unchecked_into();
    a.set_href(url);
    a.set_download(name);
    a.set_attribute("data-test", "last-export")
        .and_then(|()| a.set_attribute("hidden", ""))
        .map_err(|e| failed("marking the link", e))?;
    // The previous export's link goes; this one stays for whoever wants it again.
    if let Ok(Some(old)) = doc.query_selector("a[data-test=last-export]") {
        old.remove();
    }
    body.append_child(&a)
        .map_err(|e| failed("adding the link", e))?;
    a.click();
    Ok(())
}

/// Draws `svg` on a canvas and offers it as a PNG; what goes wrong once the picture
/// has loaded is said through `error`.
fn download_png(name: String, svg: String, error: RwSignal<Option<String>>) -> Result<(), String> {
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| failed("no document", ""))?;
    let img = web_sys::HtmlImageElement::new().map_err(|e| failed("making an image", e))?;
    let encoded: String = js_sys::encode_uri_component(&svg).into();
    let src = format!("data:image/svg+xml;charset=utf-8,{encoded}");
    let img2 = img.clone();
    let onload = wasm_bindgen::closure::Closure::once_into_js(move || {
        let drawn = (|| {
            let (w, h) = (img2.natural_width(), img2.natural_height());
            let canvas = doc
                .create_element("canvas")
                .map_err(|e| failed("making a canvas", e))?;
            let canvas: web_sys::HtmlCanvasElement = canvas.unchecked_into();
            // Twice the size, for print.
            canvas.set_width(w * 2);
            canvas.set_height(h * 2);
            let ctx = canvas
                .get_context("2d")
                .ok()
                .flatten()
                .ok_or_else(|| failed("no 2D canvas", ""))?;
            let ctx: web_sys::CanvasRenderingContext2d = ctx.unchecked_into();
            ctx.scale(2.0, 2.0)
                .and_then(|()| ctx.draw_image_with_html_image_element(&img2, 0.0, 0.0))
                .map_err(|e| failed("drawing the graph", e))?;
            let url = canvas
                .to_data_url_with_type("image/png")
                .map_err(|e| failed("encoding the PNG", e))?;
            click_link(&name, &url)
        })();
        if let Err(e) = drawn {
            error.set(Some(e));
        }
    });
    img.set_onload(Some(onload.unchecked_ref()));
    img.set_src(&src);
    Ok(())
}

fn file_stamp(t: Tick) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(t as f64 * 1000.0))
        .to_iso_string()
        .into();
    iso[..16].replace([':', '-'], "")
}

/// The page.
#[component]
pub fn Replay() -> impl IntoView {
    let q = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let from = RwSignal::new(param(&q, "from").and_then(|v| v.parse::<Tick>().ok()));
    let to = RwSignal::new(param(&q, "to").and_then(|v| v.parse::<Tick>().ok()));
    let want_at = param(&q, "at").and_then(|v| v.parse::<Tick>().ok());
    let loaded: RwSignal<Option<Loaded>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let pos = RwSignal::new(0usize);
    let playing = RwSignal::new(false);
    let speed = RwSignal::new(2.0f64);
    let thresholds = RwSignal::new(Thresholds::default());
    let selected: RwSignal<Option<(String, String)>> = RwSignal::new(None);
    let view_box: RwSignal<Option<ViewBox>> = RwSignal::new(None);
    let diff_a: RwSignal<Option<usize>> = RwSignal::new(None);
    let diff_b: RwSignal<Option<usize>> = RwSignal::new(None);
    let step_started = StoredValue::new(None::<f64>);
    let controls = TableControls {
        service: RwSignal::new(String::new()),
        dc: RwSignal::new(String::new()),
        metric: RwSignal::new(None),
        sort: RwSignal::new((SortKey::default(), false)),
    };
    let ctx = MarkContext {
        session: RwSignal::new(None),
        marks_version: RwSignal::new(0),
        refresh: RwSignal::new(0),
        presence: RwSignal::new(Vec::new()),
    };

    let show = move |r: Loaded, at: Option<Tick>| {
        let ticks = r.ticks();
        let i = at
            .and_then(|t| ticks.iter().position(|x| *x >= t))
            .unwrap_or(0);
        view_box.set(None);
        diff_a.set(None);
        diff_b.set(None);
        pos.set(i);
        loaded.set(Some(r));
    };
    let fetch = move |at: Option<Tick>| {
        let (Some(f), Some(t)) = (from.get_untracked(), to.get_untracked()) else {
            return;
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::bundle(f, t).await {
                Ok(b) => show(Loaded::new(b, "server".into()), at),
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    // A range from the address, else the two hours up to the newest data.
    leptos::task::spawn_local(async move {
        if from.get_untracked().is_none() || to.get_untracked().is_none() {
            match api::analysis(None).await {
                Ok(a) => {
                    to.set(Some(a.latest_tick));
                    from.set(Some(a.latest_tick - 2 * 3600));
                }
                Err(e) => {
                    // Served without an Epicenter server (a static copy of the front
                    // end): files still replay.
                    error.set(Some(format!(
                        "No Epicenter server answered ({e}). Open a bundle file to replay it here."
                    )));
                    return;
                }
            }
        }
        fetch(want_at);
    });

    let open_file = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let name = file.name();
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let text = wasm_bindgen_futures::JsFuture::from(file.text()).await;
            match text.map(|t| t.as_string().unwrap_or_default()) {
                Ok(text) => match Bundle::from_json(&text) {
                    Ok(b) => {
                        from.set(Some(b.from));
                        to.set(Some(b.to));
                        error.set(None);
                        show(Loaded::new(b, name), None);
                    }
                    Err(e) => error.set(Some(format!("{name}: {e}"))),
                },
                Err(_) => error.set(Some(format!("{name}: the file could not be read"))),
            }
            busy.set(false);
        });
    };

    let count = move || loaded.with(|l| l.as_ref().map_or(0, |l| l.bundle.ticks.len()));
    let analysis = Memo::new(move |_| {
        let i = pos.get();
        let th = thresholds.get();
        loaded.with(|l| l.as_ref().and_then(|l| l.at(i, &th)))
    });
    let diff = Memo::new(move |_| {
        let (a, b) = (diff_a.get()?, diff_b.get()?);
        let (a, b) = (a.min(b), a.max(b));
        let th = thresholds.get();
        loaded.with(|l| {
            let l = l.as_ref()?;
            let (x, y) = (l.at(a, &th)?, l.at(b, &th)?);
            let view = replay_model::diff_view(&l.bundle.clusters, &x.snapshot, &y.snapshot);
            Some((x, y, Arc::new(view)))
        })
    });
    // Keep the address current: a link opens the same range at the same tick.
    Effect::new(move |_| {
        let at = analysis.with(|a| a.as_ref().map(|a| a.tick));
        let (Some(f), Some(t)) = (from.get(), to.get()) else {
            return;
        };
        let source_is_server = loaded.with(|l| l.as_ref().is_none_or(|l| l.source == "server"));
        if source_is_server {
            let at = at.map(|a| format!("&at={a}")).unwrap_or_default();
            crate::url::replace_query(&format!("?view=replay&from={f}&to={t}{at}"));
        }
    });
    // Step time: from the change of tick to the frame after the new view is in place.
    Effect::new(move |_| {
        analysis.track();
        if let Some(start) = step_started.get_value() {
            step_started.set_value(None);
            let done =
                wasm_bindgen::closure::Closure::once_into_js(move || record_step(now_ms() - start));
            if let Some(w) = web_sys::window()
                && w.request_animation_frame(done.unchecked_ref()).is_err()
            {
                web_sys::console::warn_1(&"replay step time not measured".into());
            }
        }
    });
    let go = move |i: usize| {
        let n = count();
        if n == 0 {
            return;
        }
        let i = i.min(n - 1);
        if i != pos.get_untracked() {
            step_started.set_value(Some(now_ms()));
            pos.set(i);
        }
    };
    // Playback.
    Effect::new(move |_| {
        if !playing.get() {
            return;
        }
        let ms = (1000.0 / speed.get()) as i32;
        let handle = set_interval_with_handle(
            move || {
                let n = count();
                let i = pos.get_untracked();
                if i + 1 >= n {
                    playing.set(false);
                } else {
                    go(i + 1);
                }
            },
            std::time::Duration::from_millis(ms as u64),
        )
        .ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });

    let timeline = move || {
        let l = loaded.get()?;
        let ticks = l.ticks();
        let n = ticks.len();
        let onset = replay_model::onset(&l.bundle.ticks);
        let peak = replay_model::peak(&l.bundle.ticks);
        let index_of = move |t: Option<Tick>| t.and_then(|t| ticks.iter().position(|x| *x == t));
        let (onset_i, peak_i) = (index_of(onset), index_of(peak));
        let source = l.source.clone();
        let first = l.bundle.from;
        let last = l.bundle.to;
        let export_name = format!("epicenter-{}-{}.json", file_stamp(first), file_stamp(last));
        Some(view! {
            <div class="timeline" data-test="timeline">
                <button title="Previous tick (←)" data-test="step-back" on:click=move |_| go(pos.get_untracked().saturating_sub(1))>"◀"</button>
                <button data-test="play" on:click=move |_| playing.update(|p| *p = !*p)>{move || if playing.get() { "⏸ Pause" } else { "▶ Play" }}</button>
                <button title="Next tick (→)" data-test="step-forward" on:click=move |_| go(pos.get_untracked() + 1)>"▶"</button>
                <input
                    type="range"
                    class="scrubber"
                    data-test="scrubber"
                    min="0"
                    max=n.saturating_sub(1).to_string()
                    prop:value=move || pos.get().to_string()
                    on:input=move |ev| { if let Ok(i) = event_target_value(&ev).parse::<usize>() { go(i) } }
                    aria-label="Tick"
                />
                <label>"speed "
                    <select data-test="speed" on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<f64>() { speed.set(v) } }>
                        {SPEEDS.into_iter().map(|s| view! { <option value=s.to_string() selected=move || speed.get() == s>{format!("{s}×")}</option> }).collect_view()}
                    </select>
                </label>
                <span class="tick-label" data-test="replay-tick">{move || analysis.get().map(|a| format::time(a.tick)).unwrap_or_default()}</span>
                <span class="muted">{move || format!("{} of {n}", pos.get() + 1)}</span>
                {onset_i.map(|i| view! { <button data-test="to-onset" on:click=move |_| go(i)>"Onset"</button> })}
                {peak_i.map(|i| view! { <button data-test="to-peak" on:click=move |_| go(i)>"Peak"</button> })}
                <span class="muted" data-test="replay-source">{if source == "server" { "stored snapshots".to_string() } else { format!("file {source}, no server needed") }}</span>
                {(source == "server").then(|| view! {
                    <a class="button" data-test="download-bundle" href=api::bundle_url(first, last) download=export_name>"Download bundle"</a>
                })}
            </div>
        })
    };

    let range_inputs = move || {
        view! {
            <label>"from (UTC) "
                <input type="datetime-local" data-test="replay-from" prop:value=move || from.get().map(format::input_value).unwrap_or_default()
                    on:change=move |ev| from.set(format::parse_input(&event_target_value(&ev)))/>
            </label>
            <label>"to "
                <input type="datetime-local" data-test="replay-to" prop:value=move || to.get().map(format::input_value).unwrap_or_default()
                    on:change=move |ev| to.set(format::parse_input(&event_target_value(&ev)))/>
            </label>
            <button data-test="load-range" on:click=move |_| fetch(None)>"Load"</button>
            <label class="file">"or open a bundle file "
                <input type="file" accept=".json,application/json" data-test="open-file" on:change=open_file/>
            </label>
        }
    };

    let threshold_controls = move || {
        loaded.get().map(|_| view! {
            <div class="thresholds" data-test="thresholds">
                <label>"hide anomalies below severity "
                    <input type="number" min="0" step="0.5" data-test="min-severity"
                        prop:value=move || thresholds.get().min_severity.to_string()
                        on:change=move |ev| {
                            let v = event_target_value(&ev).parse::<f64>().unwrap_or(0.0).max(0.0);
                            thresholds.update(|t| t.min_severity = v);
                        }/>
                </label>
                {[Metric::Latency, Metric::ErrorRate, Metric::Requests].into_iter().map(|m| view! {
                    <label>
                        <input type="checkbox" data-test=format!("use-{}", crate::url::metric_param(m))
                            prop:checked=move || !thresholds.get().ignored_metrics.contains(&m)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                thresholds.update(|t| {
                                    t.ignored_metrics.retain(|x| *x != m && !(m == Metric::ErrorRate && *x == Metric::Errors));
                                    if !on {
                                        t.ignored_metrics.push(m);
                                        if m == Metric::ErrorRate { t.ignored_metrics.push(Metric::Errors); }
                                    }
                                });
                            }/>
                        {format!(" {m}")}
                    </label>
                }).collect_view()}
                <span class="muted">"pruning and ranking are redone here, by the same code as the server"</span>
            </div>
        })
    };

    let export_svg = move |png: bool| {
        let Some(a) = analysis.get_untracked() else {
            return;
        };
        let Some(l) = loaded.get_untracked() else {
            return;
        };
        let title = format!("Epicenter · {}", format::time(a.tick));
        let svg = graph_core::render::svg(&a.snapshot, &l.bundle.clusters, &title);
        let name = format!("epicenter-graph-{}", file_stamp(a.tick));
        let done = if png {
            download_png(format!("{name}.png"), svg, error)
        } else {
            download(
                &format!("{name}.svg"),
                "image/svg+xml",
                &wasm_bindgen::JsValue::from_str(&svg),
            )
        };
        if let Err(e) = done {
            error.set(Some(e));
        }
    };

    let diff_controls = move || {
        loaded.get().map(|l| {
            let ticks = l.ticks();
            let t2 = ticks.clone();
            let label = move |i: Option<usize>| i.and_then(|i| t2.get(i)).map(|t| format::clock(*t)).unwrap_or_else(|| "—".into());
            let l2 = label.clone();
            view! {
                <div class="diff-controls" data-test="diff-controls">
                    <span>"Compare: "</span>
                    <button data-test="diff-set-a" on:click=move |_| diff_a.set(Some(pos.get_untracked()))>{move || format!("A = {}", label(diff_a.get()))}</button>
                    <button data-test="diff-set-b" on:click=move |_| diff_b.set(Some(pos.get_untracked()))>{move || format!("B = {}", l2(diff_b.get()))}</button>
                    {move || (diff_a.get().is_some() || diff_b.get().is_some()).then(|| view! {
                        <button data-test="diff-clear" on:click=move |_| { diff_a.set(None); diff_b.set(None); }>"Clear"</button>
                    })}
                    <span class="exports">
                        <button data-test="export-svg" on:click=move |_| export_svg(false)>"Export SVG"</button>
                        <button data-test="export-png" on:click=move |_| export_svg(true)>"Export PNG"</button>
                    </span>
                </div>
            }
        })
    };

    let body = move || {
        if let Some(d) = diff.get() {
            return diff_body(d.0, d.1, d.2, selected, view_box).into_any();
        }
        match analysis.get() {
            None if busy.get() => view! { <div class="state loading" data-test="replay-loading">"Loading the snapshots…"</div> }.into_any(),
            None => view! { <p class="empty" data-test="replay-empty">"No stored snapshots in this range."</p> }.into_any(),
            Some(a) => tick_body(a, selected, view_box, controls, ctx).into_any(),
        }
    };
    // The main screen's banner, with the sources as they were at the tick shown.
    let stale_banner = move || {
        let a = analysis.get()?;
        let stale = loaded.with(|l| l.as_ref().map(|l| l.stale_sources(pos.get()).to_vec()))?;
        crate::components::shell::stale_banner(&a.sources_behind, &stale)
    };
    let old_format = move || {
        loaded
            .with(|l| l.as_ref().is_some_and(Loaded::without_screen_fields))
            .then(|| view! {
                <p class="muted replay-note" data-test="replay-old-format">
                    "This bundle was written by an older Epicenter (format version 1): it holds no storms, detection counts or data-source states, so none are shown."
                </p>
            })
    };
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        if typing {
            return;
        }
        match ev.key().as_str() {
            "ArrowLeft" => go(pos.get_untracked().saturating_sub(1)),
            "ArrowRight" => go(pos.get_untracked() + 1),
            " " => {
                ev.prevent_default();
                playing.update(|p| *p = !*p);
            }
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());

    view! {
        <div class="shell replay" data-test="replay">
            <header class="header">
                <h1 class="brand">"Epicenter"</h1>
                <Nav current="replay"/>
                <div class="header-right">{range_inputs}</div>
            </header>
            {move || error.get().map(|e| view! { <div class="banner error" role="alert" data-test="replay-error">{e}</div> })}
            {stale_banner}
            {timeline}
            {old_format}
            {threshold_controls}
            {diff_controls}
            {body}
        </div>
    }
}

fn tick_marks(a: &AnalysisResponse) -> impl IntoView + use<> {
    let tick = a.tick;
    let marks = a.snapshot.marks.clone();
    view! {
        <div class="replay-marks" data-test="replay-marks">
            <h3>"Marks at this tick"</h3>
            {marks.is_empty().then(|| view! { <p class="muted">"None yet."</p> })}
            <ul>
                {marks.into_iter().map(|m| {
                    let fresh = tick - m.created < 300;
                    view! {
                        <li data-test="replay-mark" class:fresh=fresh>
                            <strong>{m.author.clone()}</strong>
                            {format!(" · {} made at {}{}: ", m.kind.label().to_lowercase(), format::clock(m.created), if fresh { " (new)" } else { "" })}
                            <q>{m.description.clone()}</q>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}

fn tick_body(
    a: Arc<AnalysisResponse>,
    selected: RwSignal<Option<(String, String)>>,
    view_box: RwSignal<Option<ViewBox>>,
    controls: TableControls,
    ctx: MarkContext,
) -> impl IntoView {
    let graph = Arc::new(graph_model::pruned(&a));
    let empty = graph.edges.is_empty();
    view! {
        <main class="main">
            <section class="left" aria-label="Anomalous edges">
                <div class="table-area" data-test="edge-table">
                    <EdgeTable analysis=a.clone() selected=selected controls=controls/>
                </div>
                {tick_marks(&a)}
            </section>
            <section class="right" aria-label="Root causes and graph">
                <RootCauses analysis=a.clone() ctx=ctx/>
                {if empty {
                    view! { <p class="empty" data-test="empty-graph">"Nothing anomalous at this tick."</p> }.into_any()
                } else {
                    view! { <GraphView graph=graph selected=selected view_box=view_box/> }.into_any()
                }}
            </section>
        </main>
    }
}

/// `1 a, 2 b, 3 c` for the top five candidates.
fn top(a: &AnalysisResponse) -> String {
    let names: Vec<String> = a
        .snapshot
        .ranking
        .candidates
        .iter()
        .take(5)
        .map(|c| format!("{} {}", c.rank, c.name))
        .collect();
    if names.is_empty() {
        "no candidates".into()
    } else {
        names.join(", ")
    }
}

fn diff_body(
    earlier: Arc<AnalysisResponse>,
    later: Arc<AnalysisResponse>,
    d: Arc<DiffView>,
    selected: RwSignal<Option<(String, String)>>,
    view_box: RwSignal<Option<ViewBox>>,
) -> impl IntoView {
    let classes = d
        .classes()
        .into_iter()
        .map(|(k, c)| (k, c.class()))
        .collect();
    let graph = Arc::new(graph_model::diff(&later, &earlier, &classes));
    let sev = |s: Option<f64>| s.map_or("—".to_string(), |s| format!("{s:.1}"));
    let rank = |r: Option<u32>| r.map_or("—".to_string(), |r| format!("#{r}"));
    let title = format!(
        "{} → {}",
        format::time(earlier.tick),
        format::clock(later.tick)
    );
    let rows = d
        .edges
        .iter()
        .map(|r| {
            view! {
                <tr data-test="diff-row" class=r.change.class()>
                    <td>{r.src.clone()}</td>
                    <td>{r.dst.clone()}</td>
                    <td data-test="diff-change">{r.change.label()}</td>
                    <td class="num">{sev(r.before)}</td>
                    <td class="num">{sev(r.after)}</td>
                </tr>
            }
        })
        .collect_view();
    let ranks = d
        .ranks
        .iter()
        .map(|r| view! { <li data-test="diff-rank">{format!("{}: {} → {}", r.name, rank(r.before), rank(r.after))}</li> })
        .collect_view();
    let nodes = format!(
        "Nodes appeared: {}. Nodes gone: {}.",
        if d.nodes_appeared.is_empty() {
            "none".to_string()
        } else {
            d.nodes_appeared.join(", ")
        },
        if d.nodes_disappeared.is_empty() {
            "none".to_string()
        } else {
            d.nodes_disappeared.join(", ")
        }
    );
    view! {
        <main class="main diff" data-test="diff">
            <section class="left" aria-label="Differences">
                <h2>{format!("Difference {title}")}</h2>
                <p class="muted" data-test="diff-nodes">{nodes}</p>
                <table class="edges">
                    <thead><tr><th>"caller"</th><th>"callee"</th><th>"change"</th><th>"severity before"</th><th>"after"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
                <h3>"Ranking"</h3>
                <div class="diff-rankings" data-test="diff-rankings">
                    <p>{format!("At {}: {}", format::clock(earlier.tick), top(&earlier))}</p>
                    <p>{format!("At {}: {}", format::clock(later.tick), top(&later))}</p>
                </div>
                {d.ranks.is_empty().then(|| view! { <p class="muted" data-test="diff-rank-same">"No candidate moved."</p> })}
                <ul data-test="diff-ranks">{ranks}</ul>
            </section>
            <section class="right" aria-label="Difference on the graph">
                <p class="legend">
                    <span class="diff-key diff-appeared">"appeared"</span>" "
                    <span class="diff-key diff-disappeared">"gone"</span>" "
                    <span class="diff-key diff-worse">"worse"</span>" "
                    <span class="diff-key diff-better">"better"</span>" "
                    <span class="diff-key diff-metrics">"other metrics"</span>
                </p>
                <GraphView graph=graph selected=selected view_box=view_box/>
            </section>
        </main>
    }
}
