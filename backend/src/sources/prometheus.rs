//! Pulling call statistics from an engine that speaks the Prometheus HTTP API
//! (Prometheus, VictoriaMetrics, Thanos Query, Mimir, Cortex).
//!
//! Every bucket is pulled as `increase(counter[bucket])` evaluated at the bucket's
//! end, with `query_range` and a step of one bucket, so the engine handles counter
//! resets and each point is exactly one bucket. Three counters are read (calls,
//! failed calls, total latency) and summed by caller, callee, method and server.
//!
//! The position (the next bucket to pull) is written in the same transaction as the
//! data ([`crate::ingest::service::IngestState::apply_pulled`]): a crash neither
//! loses nor doubles a bucket. A bucket whose pull failed (engine down, slow, 5xx, a
//! partial answer) is never recorded, not even as empty: the position stays, the
//! pull is retried with backoff, and the source goes stale on the banner meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use graph_core::api::PullView;
use graph_core::model::{BucketWidth, Tick};
use serde::Deserialize;

use crate::AppState;
use crate::analysis::unix_now;
use crate::config::{Preset, PrometheusSource};
use crate::error::AppError;
use crate::ingest::CallRecord;
use crate::ingest::record::MAX_MEAN_LATENCY_MS;
use crate::ingest::service::Accepted;

/// At most about this many points (series × steps) are asked for in one query.
const POINT_BUDGET: u64 = 250_000;
/// Buckets of the first query, before the number of series is known: an hour of
/// five-minute buckets.
const FIRST_STEPS: u64 = 12;
/// `PullSource::last_series` before any answer.
const UNKNOWN: u64 = u64::MAX;
/// The first wait after a failed pull; it doubles up to [`MAX_BACKOFF_S`].
pub const FIRST_BACKOFF_S: u64 = 2;
/// The longest wait between attempts after failures.
pub const MAX_BACKOFF_S: u64 = 300;

/// What is read from the engine: three counters as series selectors, and the labels
/// that name a call's sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Queries {
    /// Calls.
    pub requests: String,
    /// Failed calls.
    pub errors: String,
    /// Total latency of the calls.
    pub latency: String,
    /// Multiplier taking `latency` to milliseconds.
    pub latency_to_ms: f64,
    /// Label of the calling service.
    pub caller: String,
    /// Label of the called service.
    pub callee: String,
    /// Label of the method, if any.
    pub method: Option<String>,
    /// Label of the reporting server (pod, instance), if any.
    pub server: Option<String>,
}

impl Queries {
    /// The queries of `source`'s preset (or its custom queries).
    pub fn of(source: &PrometheusSource) -> Queries {
        let q = |requests: &str,
                 errors: &str,
                 latency: &str,
                 to_ms: f64,
                 caller: &str,
                 callee: &str,
                 method: Option<&str>,
                 server: Option<&str>| Queries {
            requests: requests.into(),
            errors: errors.into(),
            latency: latency.into(),
            latency_to_ms: to_ms,
            caller: caller.into(),
            callee: callee.into(),
            method: method.map(Into::into),
            server: server.map(Into::into),
        };
        match (source.preset, &source.custom) {
            (Preset::Istio, _) => q(
                r#"istio_requests_total{reporter="source"}"#,
                r#"istio_requests_total{reporter="source",response_code=~"5.."}"#,
                r#"istio_request_duration_milliseconds_sum{reporter="source"}"#,
                1.0,
                "source_workload",
                "destination_workload",
                None,
                Some("pod"),
            ),
            (Preset::Linkerd, _) => q(
                r#"response_total{direction="outbound"}"#,
                r#"response_total{direction="outbound",classification="failure"}"#,
                r#"response_latency_ms_sum{direction="outbound"}"#,
                1.0,
                "deployment",
                "dst_deployment",
                None,
                Some("pod"),
            ),
            (Preset::Servicegraph, _) => q(
                "traces_service_graph_request_total",
                "traces_service_graph_request_failed_total",
                "traces_service_graph_request_client_seconds_sum",
                1000.0,
                "client",
                "server",
                None,
                None,
            ),
            (Preset::Spanmetrics, _) => q(
                r#"traces_span_metrics_calls_total{span_kind="SPAN_KIND_CLIENT"}"#,
                r#"traces_span_metrics_calls_total{span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_ERROR"}"#,
                r#"traces_span_metrics_duration_milliseconds_sum{span_kind="SPAN_KIND_CLIENT"}"#,
                1.0,
                "service_name",
                "peer_service",
                Some("span_name"),
                None,
            ),
            (Preset::Custom, Some(c)) => q(
                &c.requests,
                &c.errors,
                &c.latency_sum,
                if c.latency_unit == "s" { 1000.0 } else { 1.0 },
                &c.caller,
                &c.callee,
                c.method.as_deref(),
                c.server.as_deref(),
            ),
            (Preset::Custom, None) => unreachable!("the config check requires custom queries"),
        }
    }

    /// The labels summed by.
    pub fn labels(&self) -> Vec<&str> {
        let mut l = vec![self.caller.as_str(), self.callee.as_str()];
        l.extend(self.method.as_deref());
        l.extend(self.server.as_deref());
        l
    }

    /// PromQL for one counter over buckets of `width_s` seconds.
    ///
    /// ```
    /// use epicenter_backend::config::{Preset, PrometheusSource};
    /// use epicenter_backend::sources::prometheus::Queries;
    /// let source: PrometheusSource = toml::from_str(r#"
    ///     name = "mesh"
    ///     url = "http://prometheus:9090"
    ///     preset = "servicegraph"
    /// "#).unwrap();
    /// let q = Queries::of(&source);
    /// assert_eq!(
    ///     q.promql(&q.requests, 60),
    ///     "sum by (client, server) (increase(traces_service_graph_request_total[60s]))"
    /// );
    /// ```
    pub fn promql(&self, selector: &str, width_s: i64) -> String {
        format!(
            "sum by ({}) (increase({selector}[{width_s}s]))",
            self.labels().join(", ")
        )
    }
}

/// Why a pull failed. Every kind is retried.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// No answer: refused, timed out, cut off.
    #[error("{url} did not answer: {message}")]
    Unreachable {
        /// The engine.
        url: String,
        /// Why.
        message: String,
    },
    /// An HTTP error status.
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        /// The engine.
        url: String,
        /// The status.
        status: u16,
        /// The error the engine gave, or the start of its body.
        message: String,
    },
    /// Only part of the data was answered (a store or shard down behind the engine).
    #[error("{url} gave a partial answer ({message}); the buckets are pulled again later")]
    Partial {
        /// The engine.
        url: String,
        /// The engine's warnings.
        message: String,
    },
    /// An answer that is not what the Prometheus API promises.
    #[error("{url} gave an answer that cannot be read: {message}")]
    Malformed {
        /// The engine.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Storing the pulled data failed.
    #[error("storing pulled data failed: {0}")]
    Store(String),
}

/// `url` with any password in it hidden, for logs, errors and the API.
///
/// ```
/// use epicenter_backend::sources::prometheus::shown_url;
/// assert_eq!(shown_url("http://ops:hunter2@prom:9090/x"), "http://ops:***@prom:9090/x");
/// assert_eq!(shown_url("http://prom:9090"), "http://prom:9090");
/// ```
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // A URL with a password has a host, so this cannot fail.
            let _ = u.set_password(Some("***"));
            let shown = u.to_string();
            if url.ends_with('/') {
                shown
            } else {
                shown.trim_end_matches('/').to_string()
            }
        }
        _ => url.to_string(),
    }
}

/// One engine: its address, credentials and the HTTP client.
#[derive(Debug)]
pub struct Engine {
    http: reqwest::Client,
    base: String,
    /// `base` as logs and errors show it.
    shown: String,
    tenant: Option<String>,
    auth: Auth,
}

#[derive(Debug)]
enum Auth {
    None,
    Bearer(crate::config::Secret),
    Basic(String, crate::config::Secret),
}

fn read_secret(path: &std::path::Path, what: &str) -> anyhow::Result<crate::config::Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    let text = text.trim();
    anyhow::ensure!(!text.is_empty(), "{what} {} is empty", path.display());
    Ok(crate::config::Secret::new(text))
}

impl Engine {
    /// The engine of `source`; reads its credential files.
    pub fn new(source: &PrometheusSource) -> anyhow::Result<Engine> {
        let auth = match (
            &source.bearer_token_file,
            &source.username,
            &source.password_file,
        ) {
            (Some(file), _, _) => Auth::Bearer(read_secret(file, "bearer token file")?),
            (None, Some(user), Some(file)) => {
                Auth::Basic(user.clone(), read_secret(file, "password file")?)
            }
            _ => Auth::None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(source.timeout_s))
            .build()?;
        let base = source.url.trim_end_matches('/').to_string();
        Ok(Engine {
            http,
            shown: shown_url(&base),
            base,
            tenant: source.tenant.clone(),
            auth,
        })
    }

    /// `query_range` of `query` from `start` to `end` every `step` seconds: the series
    /// of a matrix. A partial answer is an error.
    pub async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>, PullError> {
        let url = format!("{}/api/v1/query_range", self.base);
        let mut req = self.http.get(&url).query(&[
            ("query", query),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", &format!("{step}s")),
            // Thanos and others: refuse rather than answer from some stores only.
            ("partial_response", "false"),
            // VictoriaMetrics: backfilled history is not hidden behind a cached answer.
            ("nocache", "1"),
        ]);
        if let Some(t) = &self.tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token.expose()),
            Auth::Basic(user, password) => req.basic_auth(user, Some(password.expose())),
        };
        let base = || self.shown.clone();
        let resp = req.send().await.map_err(|e| PullError::Unreachable {
            url: base(),
            message: error_chain(&e.without_url()),
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| PullError::Unreachable {
            url: base(),
            message: format!("the answer was cut off: {}", error_chain(&e.without_url())),
        })?;
        let answer: Answer = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) if status.is_success() => {
                return Err(PullError::Malformed {
                    url: base(),
                    message: format!("not the API's JSON: {e}"),
                });
            }
            Err(_) => {
                return Err(PullError::Status {
                    url: base(),
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                });
            }
        };
        if !status.is_success() || answer.status != "success" {
            return Err(PullError::Status {
                url: base(),
                status: status.as_u16(),
                message: format!(
                    "{}: {}",
                    answer.error_type.as_deref().unwrap_or("error"),
                    answer.error.as_deref().unwrap_or("no message")
                ),
            });
        }
        if answer.is_partial || !answer.warnings.is_empty() {
            return Err(PullError::Partial {
                url: base(),
                message: if answer.warnings.is_empty() {
                    "isPartial".into()
                } else {
                    answer.warnings.join("; ")
                },
            });
        }
        let data = answer.data.ok_or_else(|| PullError::Malformed {
            url: base(),
            message: "no data".into(),
        })?;
        if data.result_type != "matrix" {
            return Err(PullError::Malformed {
                url: base(),
                message: format!("a {} where a matrix was asked for", data.result_type),
            });
        }
        Ok(data.result)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default, rename = "isPartial")]
    is_partial: bool,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

/// One series of a `query_range` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Series {
    /// Its labels.
    pub metric: HashMap<String, String>,
    /// Its points: time (Unix seconds) and value (a decimal string).
    #[serde(default)]
    pub values: Vec<(f64, String)>,
}

/// What one pull of a range gave.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Calls per bucket, caller, callee, method and server.
    pub records: Vec<CallRecord>,
    /// Series answered.
    pub series: u64,
    /// Series left aside (calls without a latency sum, no caller or callee label).
    pub incomplete: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    caller: String,
    callee: String,
    method: Option<String>,
    server: Option<String>,
    bucket: Tick,
}

/// Turns the three answers for buckets `from..to` into records. Requests and errors
/// are rounded to whole calls (an engine that extrapolates gives fractions); errors
/// are at most the requests.
pub fn join(
    queries: &Queries,
    width: BucketWidth,
    from: Tick,
    to: Tick,
    [requests, errors, latency]: [Vec<Series>; 3],
) -> Result<Pulled, String> {
    let w = width.seconds();
    let mut cells: HashMap<Key, [Option<f64>; 3]> = HashMap::new();
    let mut out = Pulled::default();
    for (i, answer) in [requests, errors, latency].into_iter().enumerate() {
        for s in answer {
            out.series += 1;
            let label = |name: &str| s.metric.get(name).filter(|v| !v.is_empty()).cloned();
            let (Some(caller), Some(callee)) = (label(&queries.caller), label(&queries.callee))
            else {
                out.incomplete += 1;
                continue;
            };
            for (t, v) in &s.values {
                let end = *t as i64;
                if end as f64 != *t || end % w != 0 || end <= from || end > to {
                    return Err(format!(
                        "a point at {t} is not the end of a bucket between {from} and {to}"
                    ));
                }
                let v: f64 = v
                    .parse()
                    .map_err(|_| format!("the value {v:?} at {t} is not a number"))?;
                let key = Key {
                    caller: caller.clone(),
                    callee: callee.clone(),
                    method: queries.method.as_deref().and_then(label),
                    server: queries.server.as_deref().and_then(label),
                    bucket: end - w,
                };
                let slot = &mut cells.entry(key).or_default()[i];
                *slot = Some(slot.unwrap_or(0.0) + v);
            }
        }
    }
    let mut keys: Vec<_> = cells.into_iter().collect();
    keys.sort_by(|a, b| {
        (
            a.0.bucket,
            &a.0.caller,
            &a.0.callee,
            &a.0.method,
            &a.0.server,
        )
            .cmp(&(
                b.0.bucket,
                &b.0.caller,
                &b.0.callee,
                &b.0.method,
                &b.0.server,
            ))
    });
    for (key, [requests, errors, latency]) in keys {
        let requests = requests.unwrap_or(0.0);
        if !requests.is_finite() || requests < 0.5 {
            // No calls in the bucket (or a NaN from the engine): nothing to record.
            if !requests.is_finite() {
                out.incomplete += 1;
            }
            continue;
        }
        let requests = requests.round() as u64;
        let errors = errors.unwrap_or(0.0);
        let errors = if errors.is_finite() {
            (errors.round().max(0.0) as u64).min(requests)
        } else {
            0
        };
        let Some(latency_ms) = latency
            .map(|l| l * queries.latency_to_ms)
            .filter(|l| l.is_finite() && *l >= 0.0 && *l / requests as f64 <= MAX_MEAN_LATENCY_MS)
        else {
            out.incomplete += 1;
            continue;
        };
        out.records.push(CallRecord {
            ts: key.bucket,
            src: key.server.unwrap_or_else(|| key.caller.clone()),
            dst: key.callee.clone(),
            method: key.method,
            requests,
            errors,
            latency_ms_sum: latency_ms,
            interval_s: None,
            src_service: Some(key.caller),
            dst_service: Some(key.callee),
        });
    }
    Ok(out)
}

/// Buckets per query when the latest answer had `series` series (`None`: no answer
/// yet). An empty answer (history before the data began) lets the next query take
/// `max_points` buckets.
///
/// ```
/// use epicenter_backend::sources::prometheus::steps_for;
/// assert_eq!(steps_for(None, 11_000), 12);
/// assert_eq!(steps_for(Some(2_500), 11_000), 100);
/// assert_eq!(steps_for(Some(0), 11_000), 11_000);
/// assert_eq!(steps_for(Some(1_000_000), 11_000), 1);
/// assert_eq!(steps_for(None, 7), 7);
/// ```
pub fn steps_for(series: Option<u64>, max_points: u32) -> u64 {
    let cap = u64::from(max_points);
    match series {
        None => FIRST_STEPS.min(cap),
        Some(n) => (POINT_BUDGET / n.max(1)).clamp(1, cap),
    }
}

/// The next range to pull: from the position (or the backfill start) up to the
/// buckets that are due, at most `steps` buckets. `None` when up to date.
pub fn next_range(
    width: BucketWidth,
    position: Option<Tick>,
    now: i64,
    delay_s: i64,
    backfill_days: i64,
    steps: u64,
) -> Option<(Tick, Tick)> {
    let w = width.seconds();
    let due_to = width.floor(now - delay_s);
    let earliest = width.floor(now - backfill_days * 86_400);
    let from = position.unwrap_or(earliest).max(earliest);
    (from < due_to).then(|| (from, due_to.min(from + steps as i64 * w)))
}

/// One configured pull source.
#[derive(Debug)]
pub struct PullSource {
    config: PrometheusSource,
    engine: Engine,
    queries: Queries,
    /// Series in the latest answer, to size the next query ([`UNKNOWN`] before one).
    last_series: std::sync::atomic::AtomicU64,
    /// Where the current backfill started, to report its progress.
    backfill_from: std::sync::Mutex<Option<Tick>>,
}

impl PullSource {
    /// The source `config`, registered in `state`'s pull status.
    pub fn new(config: PrometheusSource, state: &AppState) -> anyhow::Result<PullSource> {
        let engine =
            Engine::new(&config).map_err(|e| anyhow::anyhow!("source {}: {e}", config.name))?;
        state.pulls.register(
            &config.name,
            PullView {
                url: shown_url(&config.url),
                preset: format!("{:?}", config.preset).to_lowercase(),
                ..Default::default()
            },
        );
        Ok(PullSource {
            queries: Queries::of(&config),
            engine,
            config,
            last_series: UNKNOWN.into(),
            backfill_from: Default::default(),
        })
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Buckets per query: at most `max_points`, and few enough that the answer stays
    /// around [`POINT_BUDGET`] points ([`FIRST_STEPS`] until the series are counted).
    fn steps(&self) -> u64 {
        let series = self.last_series.load(std::sync::atomic::Ordering::Relaxed);
        steps_for(
            (series != UNKNOWN).then_some(series),
            self.config.max_points,
        )
    }

    /// Pulls the next range, if one is due, and stores it with the new position.
    /// `Ok(None)` when up to date.
    pub async fn step(
        &self,
        state: &AppState,
        now: i64,
    ) -> Result<Option<(Tick, Tick, Accepted)>, PullError> {
        let s = state.clone();
        let this_position = {
            let name = self.config.name.clone();
            tokio::task::spawn_blocking(move || {
                s.store.sources().map(|v| {
                    v.into_iter()
                        .find(|x| x.name == name)
                        .and_then(|x| x.pulled_to)
                })
            })
            .await
            .map_err(|e| PullError::Store(e.to_string()))?
            .map_err(|e| PullError::Store(e.to_string()))?
        };
        let width = state.store.bucket_width();
        let w = width.seconds();
        let due_to = width.floor(now - self.config.delay_s);
        let range = next_range(
            width,
            this_position,
            now,
            self.config.delay_s,
            self.config.backfill_days,
            self.steps(),
        );
        let Some((from, to)) = range else {
            *self.backfill_from.lock().expect("backfill lock") = None;
            state.pulls.update(&self.config.name, |v| {
                v.pulled_to = this_position;
                v.due_to = Some(due_to);
                v.backfilling = false;
                v.backfill_progress = None;
            });
            return Ok(None);
        };
        let backfilling = due_to - from > w;
        let started = {
            let mut b = self.backfill_from.lock().expect("backfill lock");
            if backfilling && b.is_none() {
                *b = Some(from);
            }
            *b
        };
        state.pulls.update(&self.config.name, |v| {
            v.pulled_to = this_position;
            v.due_to = Some(due_to);
            v.backfilling = backfilling;
            v.backfill_progress = started.map(|s| (from - s) as f64 / (due_to - s).max(1) as f64);
        });
        let q = &self.queries;
        let (start, end) = (from + w, to);
        let answers = [
            self.engine
                .query_range(&q.promql(&q.requests, w), start, end, w)
                .await?,
            self.engine
                .query_range(&q.promql(&q.errors, w), start, end, w)
                .await?,
            self.engine
                .query_range(&q.promql(&q.latency, w), start, end, w)
                .await?,
        ];
        let series = answers.iter().map(|a| a.len() as u64).max().unwrap_or(0);
        let pulled = join(q, width, from, to, answers).map_err(|message| PullError::Malformed {
            url: shown_url(&self.config.url),
            message,
        })?;
        self.last_series
            .store(series, std::sync::atomic::Ordering::Relaxed);
        if pulled.incomplete > 0 {
            tracing::warn!(
                source = %self.config.name,
                series = pulled.incomplete,
                from,
                to,
                "series left aside: calls without a latency sum, or no caller or callee label"
            );
        }
        let s = state.clone();
        let name = self.config.name.clone();
        let records = pulled.records;
        let accepted = tokio::task::spawn_blocking(move || {
            let accepted = s.ingest.lock().expect("ingest lock").apply_pulled(
                s.store.as_ref(),
                &records,
                unix_now(),
                &name,
                to,
            )?;
            s.ingested(&accepted);
            Ok::<_, AppError>(accepted)
        })
        .await
        .map_err(|e| PullError::Store(e.to_string()))?
        .map_err(|e| PullError::Store(e.to_string()))?;
        let done = due_to <= to;
        state.pulls.update(&self.config.name, |v| {
            v.pulled_to = Some(to);
            v.last_success = Some(unix_now());
            v.last_error = None;
            v.failures = 0;
            v.retry_at = None;
            v.series = series;
            v.incomplete_series += pulled.incomplete;
            v.backfilling = !done && backfilling;
            v.backfill_progress = started
                .filter(|_| !done)
                .map(|s| (to - s) as f64 / (due_to - s).max(1) as f64);
        });
        if done {
            *self.backfill_from.lock().expect("backfill lock") = None;
        }
        Ok(Some((from, to, accepted)))
    }

    /// Pulls until up to date at `now`, calling `progress` after each range with the
    /// range pulled and the end of what is due. Stops at the first failure.
    pub async fn catch_up(
        &self,
        state: &AppState,
        now: i64,
        progress: &mut dyn FnMut(Tick, Tick, Tick),
    ) -> Result<(), PullError> {
        let due_to = state.store.bucket_width().floor(now - self.config.delay_s);
        while let Some((from, to, _)) = self.step(state, now).await? {
            progress(from, to, due_to);
        }
        Ok(())
    }

    /// Pulls for ever: each range as soon as it is due, retrying failures with a
    /// backoff of [`FIRST_BACKOFF_S`] doubling up to [`MAX_BACKOFF_S`].
    pub async fn run(self: Arc<Self>, state: AppState) {
        tracing::info!(
            source = %self.config.name,
            url = %shown_url(&self.config.url),
            preset = ?self.config.preset,
            "pulling call statistics"
        );
        let mut backoff = FIRST_BACKOFF_S;
        loop {
            let now = unix_now();
            match self.step(&state, now).await {
                Ok(Some((from, to, accepted))) => {
                    backoff = FIRST_BACKOFF_S;
                    tracing::debug!(source = %self.config.name, from, to, records = accepted.accepted, "pulled");
                }
                Ok(None) => {
                    backoff = FIRST_BACKOFF_S;
                    let width = state.store.bucket_width();
                    let next_due = width.floor(now - self.config.delay_s)
                        + width.seconds()
                        + self.config.delay_s;
                    let wait = (next_due - unix_now()).clamp(1, width.seconds());
                    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
                }
                Err(e) => {
                    state
                        .counters
                        .pull_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(source = %self.config.name, error = %e, retry_in_s = backoff, "pull failed");
                    let message = e.to_string();
                    state.pulls.update(&self.config.name, |v| {
                        v.last_error = Some(message);
                        v.failures += 1;
                        v.retry_at = Some(unix_now() + backoff as i64);
                    });
                    tokio::time::sleep(Duration::from_secs(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF_S);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: BucketWidth = BucketWidth::FIVE_MINUTES;

    fn series(labels: &[(&str, &str)], points: &[(i64, &str)]) -> Series {
        Series {
            metric: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            values: points
                .iter()
                .map(|(t, v)| (*t as f64, v.to_string()))
                .collect(),
        }
    }

    fn queries() -> Queries {
        let source: PrometheusSource = toml::from_str(
            r#"
            name = "mesh"
            url = "http://localhost:9090"
            preset = "istio"
            "#,
        )
        .unwrap();
        Queries::of(&source)
    }

    #[test]
    fn ranges_start_at_the_position_or_the_backfill_window_and_stop_at_what_is_due() {
        let now = 1_000_000 * 300 + 130;
        // The bucket that ended at `due` ended more than the delay of 120 s ago.
        let due = 1_000_000 * 300;
        // Never pulled: two days back, at most 10 buckets at a time.
        assert_eq!(
            next_range(W, None, now, 120, 2, 10),
            Some((due - 2 * 86_400, due - 2 * 86_400 + 3000))
        );
        // Behind by one bucket: just that one.
        assert_eq!(
            next_range(W, Some(due - 300), now, 120, 2, 10),
            Some((due - 300, due))
        );
        // Up to date; the next bucket is due only 120 s after it ends.
        assert_eq!(next_range(W, Some(due), now, 120, 2, 10), None);
        assert_eq!(next_range(W, Some(due), due + 300 + 119, 120, 2, 10), None);
        assert_eq!(
            next_range(W, Some(due), due + 300 + 120, 120, 2, 10),
            Some((due, due + 300))
        );
        // Down for longer than the backfill window: only the window is pulled.
        assert_eq!(
            next_range(W, Some(0), now, 120, 1, 10).map(|r| r.0),
            Some(due - 86_400)
        );
    }

    #[test]
    fn the_three_counters_join_into_whole_calls_with_latency() {
        let q = queries();
        let l = [
            ("source_workload", "web"),
            ("destination_workload", "api"),
            ("pod", "web-7f9c-x2"),
        ];
        let out = join(
            &q,
            W,
            0,
            900,
            [
                vec![series(&l, &[(300, "99.6"), (600, "0"), (900, "10")])],
                vec![series(&l, &[(300, "2.2"), (900, "12")])],
                vec![series(&l, &[(300, "1000"), (900, "55.5")])],
            ],
        )
        .unwrap();
        assert_eq!(out.records.len(), 2);
        let r = &out.records[0];
        assert_eq!(
            (
                r.ts,
                r.src.as_str(),
                r.dst.as_str(),
                r.requests,
                r.errors,
                r.latency_ms_sum
            ),
            (0, "web-7f9c-x2", "api", 100, 2, 1000.0)
        );
        assert_eq!(
            (r.src_service.as_deref(), r.dst_service.as_deref()),
            (Some("web"), Some("api"))
        );
        // Errors never exceed calls.
        assert_eq!((out.records[1].ts, out.records[1].errors), (600, 10));
        assert_eq!(out.incomplete, 0);
    }

    #[test]
    fn calls_without_latency_or_sides_are_left_aside_and_counted() {
        let q = queries();
        let l = [("source_workload", "web"), ("destination_workload", "api")];
        let out = join(
            &q,
            W,
            0,
            300,
            [
                vec![
                    series(&l, &[(300, "5")]),
                    series(&[("source_workload", "web")], &[(300, "5")]),
                ],
                vec![],
                vec![],
            ],
        )
        .unwrap();
        assert!(out.records.is_empty());
        assert_eq!(out.incomplete, 2);
    }

    #[test]
    fn points_off_the_bucket_grid_are_refused() {
        let q = queries();
        let l = [("source_workload", "web"), ("destination_workload", "api")];
        for t in [150, 1200, 0] {
            let err = join(
                &q,
                W,
                0,
                900,
                [vec![series(&l, &[(t, "1")])], vec![], vec![]],
            )
            .unwrap_err();
            assert!(err.contains("not the end of a bucket"), "{err}");
        }
    }
}
