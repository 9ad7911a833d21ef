//! `GET /metrics`: Prometheus text exposition format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::AppError;

/// Counters the server keeps while it runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Batches stored.
    pub batches_accepted: AtomicU64,
    /// Batches refused for bad input.
    pub batches_rejected: AtomicU64,
    /// Records stored.
    pub records_accepted: AtomicU64,
    /// Records naming a server the topology does not map.
    pub records_unmapped: AtomicU64,
    /// Pulls from an engine that failed (each is retried).
    pub pull_failures: AtomicU64,
    /// Trace spans received.
    pub spans_received: AtomicU64,
    /// Trace spans refused as invalid.
    pub spans_refused: AtomicU64,
    /// Calls counted from trace spans.
    pub span_calls: AtomicU64,
    /// Spans let go after the pairing window without making a call.
    pub spans_unpaired: AtomicU64,
}

/// The handler.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let s = state.clone();
    let (health, unmapped, sources, backlog) = super::blocking(move || {
        let now = crate::analysis::unix_now();
        Ok((
            s.store.health(),
            s.store.unmapped()?,
            super::query::source_views(&s, now)?,
            s.detector.backlog(s.store.as_ref(), now)?,
        ))
    })
    .await?;
    let c = &state.counters;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    metric(
        "epicenter_ingest_batches_total",
        "counter",
        "Ingest batches by outcome.",
        &[
            (r#"{result="accepted"}"#, load(&c.batches_accepted)),
            (r#"{result="rejected"}"#, load(&c.batches_rejected)),
        ],
    );
    metric(
        "epicenter_ingest_records_total",
        "counter",
        "Call-statistics records stored.",
        &[("", load(&c.records_accepted))],
    );
    metric(
        "epicenter_ingest_unmapped_records_total",
        "counter",
        "Records naming a server the topology does not map (kept aside).",
        &[("", load(&c.records_unmapped))],
    );
    metric(
        "epicenter_pull_failures_total",
        "counter",
        "Pulls from a Prometheus-compatible engine that failed; each is retried with backoff.",
        &[("", load(&c.pull_failures))],
    );
    metric(
        "epicenter_otlp_spans_total",
        "counter",
        "Trace spans received on /v1/traces, by outcome.",
        &[
            (
                r#"{result="accepted"}"#,
                load(&c.spans_received) - load(&c.spans_refused),
            ),
            (r#"{result="refused"}"#, load(&c.spans_refused)),
        ],
    );
    metric(
        "epicenter_otlp_calls_total",
        "counter",
        "Calls between services counted from trace spans.",
        &[("", load(&c.span_calls))],
    );
    metric(
        "epicenter_otlp_unpaired_spans_total",
        "counter",
        "Spans let go after otlp.pair_window_s without a partner or a peer to name.",
        &[("", load(&c.spans_unpaired))],
    );
    metric(
        "epicenter_otlp_held_spans",
        "gauge",
        "Spans waiting for their partners.",
        &[("", state.otlp.lock().expect("otlp lock").held() as f64)],
    );
    metric(
        "epicenter_unmapped_servers",
        "gauge",
        "Servers the topology does not map, ever seen.",
        &[("", unmapped.len() as f64)],
    );
    metric(
        "epicenter_store_size_bytes",
        "gauge",
        "Size of the embedded store file.",
        &[("", health.size_bytes.unwrap_or(0) as f64)],
    );
    metric(
        "epicenter_store_up",
        "gauge",
        "1 when the store answers.",
        &[("", f64::from(u8::from(health.status == "ok")))],
    );
    let stats = &state.analyzer.stats;
    metric(
        "epicenter_ticks_analysed_total",
        "counter",
        "Ticks analysed (detection, pruning, ranking, layout) and stored.",
        &[("", load(&stats.analysed))],
    );
    metric(
        "epicenter_tick_duration_seconds_sum",
        "counter",
        "Total time spent analysing ticks, including store reads and writes.",
        &[("", load(&stats.total_us) / 1e6)],
    );
    metric(
        "epicenter_last_tick_duration_seconds",
        "gauge",
        "Time the latest tick analysis took.",
        &[("", load(&stats.last_us) / 1e6)],
    );
    let lc = state.detector.counters();
    metric(
        "epicenter_detection_failures_total",
        "counter",
        "Failures of the detection loop: a tick's analysis (tried again later with backoff), retention, or a whole pass.",
        &[
            (r#"{what="tick"}"#, load(&lc.ticks_failed)),
            (r#"{what="retention"}"#, load(&lc.retention_failed)),
            (r#"{what="pass"}"#, load(&lc.passes_failed)),
        ],
    );
    metric(
        "epicenter_detection_ticks_retrying",
        "gauge",
        "Ticks whose analysis failed and waits to be tried again.",
        &[("", state.detector.retrying() as f64)],
    );
    metric(
        "epicenter_detection_backlog_ticks",
        "gauge",
        "Ticks the detection loop has yet to analyse or analyse again: complete ticks within detection.backfill_hours without an analysis, ticks that got data or a mark after they were analysed, and those the running pass has not finished. 0 once the loop has caught up.",
        &[("", backlog as f64)],
    );
    metric(
        "epicenter_sources_stale",
        "gauge",
        "Data sources silent for longer than sources.stale_after_s.",
        &[("", sources.stale.len() as f64)],
    );
    let silence: Vec<(String, f64)> = sources
        .sources
        .iter()
        .filter(|s| !s.retired)
        .map(|s| {
            (
                format!("{{source=\"{}\"}}", label(&s.name)),
                s.silent_s as f64,
            )
        })
        .collect();
    let silence: Vec<(&str, f64)> = silence.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "epicenter_source_silence_seconds",
        "gauge",
        "Seconds since each (not retired) data source last sent a batch.",
        &silence,
    );
    metric(
        "epicenter_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &[("", state.started.elapsed().as_secs() as f64)],
    );
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// Escapes a label value for the text exposition format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
