//! Pulling from real Prometheus-compatible engines: Debian's `prometheus` and
//! `victoria-metrics` on loopback, loaded with known counters by remote write. For
//! every preset, the requests, errors and latency stored per bucket are exactly what
//! the counters say, across a counter reset, an engine restart in the middle of a
//! pull, and (with the real binary) a kill -9 of Epicenter in the middle of a backfill.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use epicenter_backend::AppState;
use epicenter_backend::config::{Config, PrometheusSource};
use epicenter_backend::sources::prometheus::PullSource;
use epicenter_backend::store::{RedbStore, Store};
use graph_core::detect::SeriesKey;
use graph_core::model::{BucketWidth, EdgeKey};
use support::engines::{Engine, Kind, TimeSeries, series};

const W: i64 = 300;
/// Samples every minute, on the minute: five to a bucket.
const SAMPLE_S: i64 = 60;
/// Three hours of data.
const BUCKETS: i64 = 36;

/// A call between two services, as the engines' labels carry it.
#[derive(Debug, Clone, Copy)]
struct Call {
    caller: &'static str,
    callee: &'static str,
    method: &'static str,
    server: &'static str,
}

const CALLS: [Call; 3] = [
    Call {
        caller: "frontend",
        callee: "checkout",
        method: "PlaceOrder",
        server: "frontend-7d9f-x2k",
    },
    Call {
        caller: "checkout",
        callee: "payments",
        method: "Charge",
        server: "checkout-5c4b-q9z",
    },
    Call {
        caller: "checkout",
        callee: "inventory",
        method: "Reserve",
        server: "checkout-5c4b-q9z",
    },
];

/// The calls of `call` in bucket `b`: requests, errors, latency in ms. Some buckets
/// have none.
fn truth(call: usize, b: i64) -> (u64, u64, f64) {
    let b = b as usize;
    if (call + b).is_multiple_of(11) {
        return (0, 0, 0.0);
    }
    let requests = 40 + ((call * 37 + b * 13) % 100) as u64;
    let errors = ((call + b) % 7) as u64;
    let latency = requests as f64 * (8.0 + (b % 5) as f64 * 2.5 + call as f64);
    (requests, errors, latency)
}

/// Per-sample increments of one counter: bucket `b`'s amount spread over its five
/// samples.
fn spread(start: i64, amount: impl Fn(i64) -> f64, whole: bool) -> Vec<(i64, f64)> {
    let mut out = vec![(start, 0.0)];
    for b in 0..BUCKETS {
        let total = amount(b);
        let per = (W / SAMPLE_S) as usize;
        for k in 0..per {
            let share = if whole {
                let t = total as u64;
                let base = t / per as u64;
                (base + u64::from((k as u64) < t % per as u64)) as f64
            } else {
                total / per as f64
            };
            out.push((start + b * W + (k as i64 + 1) * SAMPLE_S, share));
        }
    }
    out
}

/// A counter from increments; with `reset_at`, the process restarted just before
/// that sample and the counter began again from zero.
fn counter(increments: &[(i64, f64)], reset_at: Option<usize>) -> Vec<(i64, f64)> {
    let mut value = 0.0;
    increments
        .iter()
        .enumerate()
        .map(|(i, (t, inc))| {
            if Some(i) == reset_at {
                value = 0.0;
            }
            value += inc;
            (*t, value)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Ok,
    Errors,
    LatencyMs,
}

/// A series of a preset: metric, labels, what it counts (`None`: noise the preset
/// must not count), and the scale of its values.
type SeriesSpec = (&'static str, Vec<(String, String)>, Option<Part>, f64);

/// The series of one preset for call `c`.
fn layout(preset: &str, c: &Call) -> Vec<SeriesSpec> {
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    match preset {
        "istio" => {
            let base = |extra: &[(&str, &str)]| {
                let mut v = l(&[
                    ("source_workload", c.caller),
                    ("destination_workload", c.callee),
                    ("pod", c.server),
                    ("namespace", "shop"),
                ]);
                v.extend(l(extra));
                v
            };
            vec![
                (
                    "istio_requests_total",
                    base(&[("reporter", "source"), ("response_code", "200")]),
                    Some(Part::Ok),
                    1.0,
                ),
                (
                    "istio_requests_total",
                    base(&[("reporter", "source"), ("response_code", "503")]),
                    Some(Part::Errors),
                    1.0,
                ),
                (
                    "istio_request_duration_milliseconds_sum",
                    base(&[("reporter", "source")]),
                    Some(Part::LatencyMs),
                    1.0,
                ),
                // The callee's sidecar reports the same calls: never counted twice.
                (
                    "istio_requests_total",
                    base(&[("reporter", "destination"), ("response_code", "200")]),
                    None,
                    1.0,
                ),
                (
                    "istio_request_duration_milliseconds_sum",
                    base(&[("reporter", "destination")]),
                    None,
                    1.0,
                ),
            ]
        }
        "linkerd" => {
            let base = |extra: &[(&str, &str)]| {
                let mut v = l(&[
                    ("deployment", c.caller),
                    ("dst_deployment", c.callee),
                    ("pod", c.server),
                ]);
                v.extend(l(extra));
                v
            };
            vec![
                (
                    "response_total",
                    base(&[("direction", "outbound"), ("classification", "success")]),
                    Some(Part::Ok),
                    1.0,
                ),
                (
                    "response_total",
                    base(&[("direction", "outbound"), ("classification", "failure")]),
                    Some(Part::Errors),
                    1.0,
                ),
                (
                    "response_latency_ms_sum",
                    base(&[("direction", "outbound")]),
                    Some(Part::LatencyMs),
                    1.0,
                ),
                (
                    "response_total",
                    base(&[("direction", "inbound"), ("classification", "success")]),
                    None,
                    1.0,
                ),
            ]
        }
        "servicegraph" => {
            let base = l(&[("client", c.caller), ("server", c.callee)]);
            vec![
                // The total counts failures too: ok and errors add into it.
                (
                    "traces_service_graph_request_total",
                    base.clone(),
                    Some(Part::Ok),
                    1.0,
                ),
                (
                    "traces_service_graph_request_failed_total",
                    base.clone(),
                    Some(Part::Errors),
                    1.0,
                ),
                (
                    "traces_service_graph_request_client_seconds_sum",
                    base.clone(),
                    Some(Part::LatencyMs),
                    0.001,
                ),
                (
                    "traces_service_graph_request_server_seconds_sum",
                    base,
                    None,
                    0.0005,
                ),
            ]
        }
        "spanmetrics" => {
            let base = |extra: &[(&str, &str)]| {
                let mut v = l(&[
                    ("service_name", c.caller),
                    ("peer_service", c.callee),
                    ("span_name", c.method),
                ]);
                v.extend(l(extra));
                v
            };
            vec![
                (
                    "traces_span_metrics_calls_total",
                    base(&[
                        ("span_kind", "SPAN_KIND_CLIENT"),
                        ("status_code", "STATUS_CODE_UNSET"),
                    ]),
                    Some(Part::Ok),
                    1.0,
                ),
                (
                    "traces_span_metrics_calls_total",
                    base(&[
                        ("span_kind", "SPAN_KIND_CLIENT"),
                        ("status_code", "STATUS_CODE_ERROR"),
                    ]),
                    Some(Part::Errors),
                    1.0,
                ),
                (
                    "traces_span_metrics_duration_milliseconds_sum",
                    base(&[
                        ("span_kind", "SPAN_KIND_CLIENT"),
                        ("status_code", "STATUS_CODE_UNSET"),
                    ]),
                    Some(Part::LatencyMs),
                    1.0,
                ),
                (
                    "traces_span_metrics_calls_total",
                    base(&[
                        ("span_kind", "SPAN_KIND_SERVER"),
                        ("status_code", "STATUS_CODE_UNSET"),
                    ]),
                    None,
                    1.0,
                ),
            ]
        }
        "custom" => {
            let base = |extra: &[(&str, &str)]| {
                let mut v = l(&[
                    ("from", c.caller),
                    ("to", c.callee),
                    ("rpc", c.method),
                    ("host", c.server),
                ]);
                v.extend(l(extra));
                v
            };
            vec![
                (
                    "rpc_client_calls_total",
                    base(&[("code", "OK")]),
                    Some(Part::Ok),
                    1.0,
                ),
                (
                    "rpc_client_calls_total",
                    base(&[("code", "ERR")]),
                    Some(Part::Errors),
                    1.0,
                ),
                (
                    "rpc_client_seconds_sum",
                    base(&[]),
                    Some(Part::LatencyMs),
                    0.001,
                ),
            ]
        }
        other => panic!("no preset {other}"),
    }
}

const PRESETS: [&str; 5] = ["istio", "linkerd", "servicegraph", "spanmetrics", "custom"];

/// Every preset's series from `start` on. The first call's main counter restarts in
/// the middle of bucket 17.
fn all_series(start: i64) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for preset in PRESETS {
        for (i, call) in CALLS.iter().enumerate() {
            for (metric, labels, part, scale) in layout(preset, call) {
                let amount = |b: i64| {
                    let (r, e, lat) = truth(i, b);
                    match (preset, part) {
                        ("servicegraph", Some(Part::Ok)) => r as f64,
                        (_, Some(Part::Ok) | None) if metric.ends_with("_sum") => lat * scale,
                        (_, Some(Part::Ok) | None) => (r - e) as f64,
                        (_, Some(Part::Errors)) => e as f64,
                        (_, Some(Part::LatencyMs)) => lat * scale,
                    }
                };
                let whole = !metric.ends_with("_sum");
                let reset = (i == 0 && part == Some(Part::Ok)).then_some(17 * 5 + 3);
                let samples = counter(&spread(start, amount, whole), reset);
                let labels: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                out.push(series(metric, &labels, &samples));
            }
        }
    }
    out
}

fn source(preset: &str, url: &str) -> PrometheusSource {
    let custom = if preset == "custom" {
        r#"
        [custom]
        requests = "rpc_client_calls_total"
        errors = 'rpc_client_calls_total{code="ERR"}'
        latency_sum = "rpc_client_seconds_sum"
        latency_unit = "s"
        caller = "from"
        callee = "to"
        method = "rpc"
        server = "host"
        "#
    } else {
        ""
    };
    toml::from_str(&format!(
        r#"
        name = "{preset}-engine"
        url = "{url}"
        preset = "{preset}"
        delay_s = 0
        backfill_days = 1
        max_points = 7
        {custom}
        "#
    ))
    .unwrap()
}

fn state_with(dir: &std::path::Path, source: PrometheusSource) -> AppState {
    let mut config = Config::default();
    config.store.data_dir = dir.to_path_buf();
    config.detection.enabled = false;
    config.sources.prometheus = vec![source];
    config.validate().unwrap();
    AppState::open(&config).unwrap()
}

/// What the store holds per (caller, callee, bucket): requests, errors, latency.
fn stored(
    store: &dyn Store,
    from: i64,
    to: i64,
) -> BTreeMap<(String, String, i64), (f64, f64, f64)> {
    let reg = store.registry().unwrap();
    let mut out = BTreeMap::new();
    for call in CALLS {
        let (Some(src), Some(dst)) = (reg.catalog.id(call.caller), reg.catalog.id(call.callee))
        else {
            continue;
        };
        let Some(e) = reg.find_entity(&SeriesKey::edge(EdgeKey { src, dst })) else {
            continue;
        };
        for (t, cell) in store.entity_cells(e, from, to).unwrap() {
            if let Some(c) = cell.counters() {
                out.insert(
                    (call.caller.to_string(), call.callee.to_string(), t),
                    (c.requests, c.errors, c.latency_ms_sum),
                );
            }
        }
    }
    out
}

/// Asserts the store holds exactly the truth for buckets `start..until`.
fn assert_exact(store: &dyn Store, start: i64, until: i64, what: &str) {
    let got = stored(store, start - 86_400, until + 86_400);
    let mut want = BTreeMap::new();
    for (i, call) in CALLS.iter().enumerate() {
        for b in 0..(until - start) / W {
            let (r, e, lat) = truth(i, b);
            if r > 0 {
                want.insert(
                    (
                        call.caller.to_string(),
                        call.callee.to_string(),
                        start + b * W,
                    ),
                    (r as f64, e as f64, lat),
                );
            }
        }
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: the buckets stored"
    );
    for (k, (r, e, lat)) in &want {
        let (gr, ge, glat) = got[k];
        assert_eq!((gr, ge), (*r, *e), "{what}: requests and errors of {k:?}");
        assert!(
            (glat - lat).abs() <= 1e-6 * lat.max(1.0),
            "{what}: latency of {k:?}: {glat} stored, {lat} true"
        );
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The end of the data: the last complete bucket's end, and its start three hours
/// before.
fn window() -> (i64, i64) {
    let end = BucketWidth::FIVE_MINUTES.floor(now()) - W;
    (end - BUCKETS * W, end)
}

async fn every_preset_is_exact(kind: Kind) {
    let engine = Engine::start(kind).await;
    let (start, end) = window();
    engine.write(all_series(start)).await;
    for preset in PRESETS {
        let dir = tempfile::tempdir().unwrap();
        let config = source(preset, &engine.url());
        let state = state_with(dir.path(), config.clone());
        let pull = PullSource::new(config, &state).unwrap();
        let mut ranges = 0;
        pull.catch_up(&state, end, &mut |_, _, _| ranges += 1)
            .await
            .unwrap_or_else(|e| panic!("{preset} on {kind:?}: {e}\n{}", engine.log()));
        // A day in chunks of seven buckets.
        assert_eq!(ranges, 288_u64.div_ceil(7), "{preset}");
        assert_exact(
            state.store.as_ref(),
            start,
            end,
            &format!("{preset} on {kind:?}"),
        );
        let sources = state.store.sources().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].pulled_to, Some(end), "{preset}: the position");
        assert_eq!(
            sources[0].last_tick,
            end - W,
            "{preset}: delivered up to the end"
        );
        let reg = state.store.registry().unwrap();
        // Methods where the preset has them, servers where it has them.
        let checkout = reg.catalog.id("checkout").unwrap();
        let payments = reg.catalog.id("payments").unwrap();
        let edge = EdgeKey {
            src: checkout,
            dst: payments,
        };
        let has_method = ["spanmetrics", "custom"].contains(&preset);
        assert_eq!(
            reg.methods().contains(&"Charge".to_string()),
            has_method,
            "{preset}: methods {:?}",
            reg.methods()
        );
        if has_method {
            let m = reg.methods().iter().position(|m| m == "Charge").unwrap();
            let e = reg
                .find_entity(&SeriesKey::method(
                    edge,
                    graph_core::detect::MethodId(m as u32),
                ))
                .unwrap();
            let cells = state.store.entity_cells(e, start, end).unwrap();
            let (r, _, _) = truth(1, 2);
            assert_eq!(
                cells
                    .iter()
                    .find(|(t, _)| *t == start + 2 * W)
                    .unwrap()
                    .1
                    .counters()
                    .unwrap()
                    .requests,
                r as f64
            );
        }
        let e = reg.find_entity(&SeriesKey::edge(edge)).unwrap();
        let pairs = state.store.pairs(start + 2 * W, Some(e)).unwrap();
        let src = reg.server_name(pairs[0].src).unwrap();
        let want = if ["istio", "linkerd", "custom"].contains(&preset) {
            "checkout-5c4b-q9z"
        } else {
            "checkout"
        };
        assert_eq!(src, want, "{preset}: the reporting server");
        // Pulling again when up to date changes nothing.
        pull.catch_up(&state, end, &mut |_, _, _| panic!("nothing is due"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_every_preset_exact_per_bucket_across_a_counter_reset() {
    every_preset_is_exact(Kind::Prometheus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_every_preset_exact_per_bucket_across_a_counter_reset() {
    every_preset_is_exact(Kind::VictoriaMetrics).await;
}

async fn restart_mid_pull(kind: Kind) {
    let mut engine = Engine::start(kind).await;
    let (start, end) = window();
    engine.write(all_series(start)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = source("istio", &engine.url());
    let state = state_with(dir.path(), config.clone());
    let pull = PullSource::new(config, &state).unwrap();
    let position = |state: &AppState| state.store.sources().unwrap()[0].pulled_to.unwrap();
    // Pull until the middle of the data.
    while pull.step(&state, end).await.unwrap().is_some() && position(&state) < start + 12 * W {}
    let before = position(&state);
    assert!(before > start && before < end);
    engine.stop();
    let err = pull.step(&state, end).await.unwrap_err();
    assert!(err.to_string().contains("did not answer"), "{err}");
    // Nothing is recorded for the unreachable buckets, not even as empty.
    assert_eq!(position(&state), before);
    assert!(stored(state.store.as_ref(), before, end + W).is_empty());
    engine.restart().await;
    pull.catch_up(&state, end, &mut |_, _, _| {}).await.unwrap();
    assert_exact(
        state.store.as_ref(),
        start,
        end,
        &format!("{kind:?} restarted"),
    );
    assert_eq!(position(&state), end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_restarted_mid_pull_loses_and_doubles_nothing() {
    restart_mid_pull(Kind::Prometheus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_restarted_mid_pull_loses_and_doubles_nothing() {
    restart_mid_pull(Kind::VictoriaMetrics).await;
}

/// An engine that answers every query with `status` and `body`, or never answers.
async fn canned(answer: Option<(u16, &'static str)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    match answer {
        Some((status, body)) => {
            let app = axum::Router::new().fallback(move || async move {
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            });
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
        None => {
            // Accepts connections and says nothing.
            tokio::spawn(async move {
                let mut held = Vec::new();
                loop {
                    let (sock, _) = listener.accept().await.unwrap();
                    held.push(sock);
                }
            });
        }
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_engine_records_nothing_and_says_why_on_the_source() {
    let cases: [(Option<(u16, &str)>, &str); 6] = [
        (
            Some((
                503,
                r#"{"status":"error","errorType":"unavailable","error":"store gateway down"}"#,
            )),
            "HTTP 503: unavailable: store gateway down",
        ),
        (
            Some((
                422,
                r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples"}"#,
            )),
            "too many samples",
        ),
        (
            Some((
                200,
                r#"{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":["store eu-1 unreachable"]}"#,
            )),
            "partial answer (store eu-1 unreachable)",
        ),
        (
            Some((
                200,
                r#"{"status":"success","isPartial":true,"data":{"resultType":"matrix","result":[]}}"#,
            )),
            "partial answer (isPartial)",
        ),
        (Some((200, "<html>a login page</html>")), "cannot be read"),
        (None, "did not answer"),
    ];
    for (answer, says) in cases {
        let url = canned(answer).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = source("istio", &url);
        config.timeout_s = 1;
        let state = state_with(dir.path(), config.clone());
        let pull = PullSource::new(config, &state).unwrap();
        let err = pull.step(&state, window().1).await.unwrap_err();
        assert!(err.to_string().contains(says), "{says}: {err}");
        assert!(
            state.store.sources().unwrap().is_empty(),
            "{says}: nothing recorded"
        );
        assert!(state.store.tick_range().unwrap().is_none());
    }
    // Pulling for ever: the failure shows on the source, which is stale.
    let url = canned(Some((
        503,
        r#"{"status":"error","errorType":"unavailable","error":"down"}"#,
    )))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(dir.path(), source("istio", &url));
    let pull = std::sync::Arc::new(PullSource::new(source("istio", &url), &state).unwrap());
    let task = tokio::spawn(pull.run(state.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let view = loop {
        let v = epicenter_backend::handlers::query::source_views(&state, now()).unwrap();
        if let Some(s) = v
            .sources
            .iter()
            .find(|s| s.pull.as_ref().is_some_and(|p| p.failures >= 2))
        {
            assert!(v.stale.contains(&s.name), "{v:?}");
            break s.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{v:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    task.abort();
    let pull = view.pull.unwrap();
    assert!(pull.last_error.unwrap().contains("HTTP 503"));
    assert!(pull.retry_at.is_some() && pull.pulled_to.is_none());
}

use support::BIN;

/// Starts `epicenter serve --config config` and returns it with its base URL.
fn serve(config: &std::path::Path) -> (std::process::Child, String) {
    support::spawn_server(&["--config".as_ref(), config.as_os_str()], &[])
}

/// The pull status of the only source.
async fn pull_view(url: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = reqwest::get(format!("{url}/api/v1/sources"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["sources"][0]["pull"]
        .as_object()
        .map(|o| o.clone().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_backfill_the_binary_resumes_and_loses_and_doubles_nothing() {
    let engine = Engine::start(Kind::Prometheus).await;
    let (start, end) = window();
    engine.write(all_series(start)).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("epicenter.toml");
    // A week, one bucket per query: long enough to be caught in the middle.
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
static_dir = "{static_dir}"

[store]
data_dir = "{data}"

[detection]
enabled = false

[[sources.prometheus]]
name = "mesh"
url = "{url}"
preset = "istio"
delay_s = 0
backfill_days = 7
max_points = 1
"#,
            static_dir = dir.path().join("no-front-end").display(),
            data = data.display(),
            url = engine.url(),
        ),
    )
    .unwrap();
    let (mut server, url) = serve(&config);
    let deadline = Instant::now() + Duration::from_secs(120);
    let progress = loop {
        if let Some(p) = pull_view(&url).await
            && let Some(done) = p["backfill_progress"].as_f64()
            && done > 0.3
        {
            break done;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill never got under way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    assert!(
        progress < 0.9,
        "caught at {progress}: too late to test anything"
    );

    // The command-line backfill takes over from the stored position, with progress.
    let out = std::process::Command::new(BIN)
        .args(["backfill", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("mesh: pulled up to"), "{stdout}");
    let store = RedbStore::open(&data, BucketWidth::FIVE_MINUTES).unwrap();
    assert_exact(&store, start, end, "killed mid-backfill, then resumed");
    let sources = store.sources().unwrap();
    assert!(sources[0].pulled_to.unwrap() >= end + W);
    drop(store);

    // And the server, started again, is up to date and says so.
    let (mut server, url) = serve(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(p) = pull_view(&url).await
            && p["backfilling"] == false
            && p["due_to"].is_i64()
            && p["pulled_to"] == p["due_to"]
        {
            assert!(p["last_error"].is_null(), "{p}");
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", pull_view(&url).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_reaches_neither_errors_nor_the_status() {
    // Nothing listens on port 9 of loopback: the pull fails and says so.
    let dir = tempfile::tempdir().unwrap();
    let config = source("istio", "http://ops:hunter2@127.0.0.1:9");
    let state = state_with(dir.path(), config.clone());
    let pull = PullSource::new(config, &state).unwrap();
    let err = pull.step(&state, window().1).await.unwrap_err().to_string();
    assert!(err.contains("did not answer"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let view = state.pulls.view("istio-engine").unwrap();
    assert_eq!(view.url, "http://ops:***@127.0.0.1:9");
}
