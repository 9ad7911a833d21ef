//! One service process (`testbed service`): an axum server whose routes spend CPU time on
//! the service's quota, wait their service time and call downstream services through
//! bounded pools with per-attempt timeouts and retries; every request is a SERVER span,
//! every attempt of a call a CLIENT span, with W3C trace context between them. A control
//! endpoint, `POST /_fault`, switches faults on and off.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry::trace::{Span, SpanKind, Status, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::faults::FaultState;
use crate::rng::Rng;
use crate::telemetry;
use crate::topology::{Action, CallSpec, Plan, RetryPolicy, Route, SPIN_SHARE, ServiceSpec};

/// A callee as one caller sees it: its addresses (round robin) and the caller's pool.
#[derive(Debug)]
struct Downstream {
    targets: Vec<String>,
    next: AtomicUsize,
    pool: Arc<Semaphore>,
    pool_size: u32,
}

impl Downstream {
    fn target(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }
}

/// The running service.
#[derive(Debug)]
struct Service {
    spec: ServiceSpec,
    tracer: SdkTracer,
    client: reqwest::Client,
    downstreams: HashMap<String, Downstream>,
    cpu: Arc<Semaphore>,
    concurrency: Option<Arc<Semaphore>>,
    faults: RwLock<FaultState>,
    fault_tasks: Mutex<Vec<JoinHandle<()>>>,
    rng: Mutex<Rng>,
    queue_depth: AtomicU64,
    inflight: Arc<Semaphore>,
    stats: Stats,
}

/// Counters for the instance's log line every ten seconds.
#[derive(Debug, Default)]
struct Stats {
    served: AtomicU64,
    failed: AtomicU64,
    shed: AtomicU64,
    attempts_failed: AtomicU64,
}

/// Requests an instance works on at once at most (its worker pool and accept queue);
/// more are refused at once with 503, so an overload ends soon after its cause does.
pub const MAX_INFLIGHT: usize = 64;

/// Why a call or a request failed.
#[derive(Debug)]
enum Failure {
    /// A 5xx answer.
    Status(StatusCode),
    /// No answer within the attempt's timeout.
    Timeout,
    /// Connection refused or reset, a body that could not be read.
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "answered {s}"),
            Failure::Timeout => write!(f, "timed out"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl Service {
    fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().unwrap().chance(p)
    }

    fn lognormal(&self, median: f64, sigma: f64) -> f64 {
        self.rng.lock().unwrap().lognormal(median, sigma)
    }

    /// Spends `ms` of CPU time on the quota: holds a cpu slot for that long, burning the
    /// machine's CPU for [`SPIN_SHARE`] of it and sleeping for the rest; a rest under a
    /// millisecond (the timer's resolution) is left out rather than rounded up.
    async fn cpu_work(&self, ms: f64) {
        if ms <= 0.0 {
            return;
        }
        let _slot = self
            .cpu
            .acquire()
            .await
            .expect("the cpu semaphore is never closed");
        let spin = ms * SPIN_SHARE;
        spin_for(Duration::from_secs_f64(spin / 1000.0));
        let rest = ms - spin;
        if rest >= 1.0 {
            tokio::time::sleep(Duration::from_secs_f64(rest / 1000.0)).await;
        }
    }

    fn policy(&self, callee: &str) -> RetryPolicy {
        if let Some(p) = self.faults.read().unwrap().retry.get(callee) {
            return *p;
        }
        if callee == "cache" {
            RetryPolicy {
                timeout_ms: 200.0,
                ..RetryPolicy::DEFAULT
            }
        } else {
            RetryPolicy::DEFAULT
        }
    }

    /// One call with its retries; each attempt is a CLIENT span child of `parent`.
    async fn call(self: &Arc<Self>, parent: &Context, c: &CallSpec) -> Result<Bytes, Failure> {
        let ds = self
            .downstreams
            .get(&c.to)
            .expect("every callee of the spec has a downstream");
        let policy = self.policy(&c.to);
        let mut last = Failure::Transport("no attempt".into());
        for attempt in 0..=policy.retries {
            let target = ds.target().to_string();
            let (host, port) = target.split_once(':').unwrap_or((&target, "80"));
            let mut attrs = vec![
                KeyValue::new("peer.service", c.to.clone()),
                KeyValue::new("server.address", host.to_string()),
                KeyValue::new("server.port", port.parse::<i64>().unwrap_or(0)),
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("url.path", c.path.clone()),
            ];
            if attempt > 0 {
                attrs.push(KeyValue::new("http.request.resend_count", attempt as i64));
            }
            let mut span = self
                .tracer
                .span_builder(format!("POST {}", c.path))
                .with_kind(SpanKind::Client)
                .with_attributes(attrs)
                .start_with_context(&self.tracer, parent);
            let headers = telemetry::inject(&telemetry::child_of(&span));
            let url = format!("http://{target}{}", c.path);
            let attempt_fut = async {
                // Waiting for a pool slot is part of the call, as in a connection pool.
                let _slot = ds.pool.acquire().await.expect("pools are never closed");
                let r = self
                    .client
                    .post(&url)
                    .headers(headers)
                    .send()
                    .await
                    .map_err(|e| Failure::Transport(e.to_string()))?;
                let status = r.status();
                let body = r
                    .bytes()
                    .await
                    .map_err(|e| Failure::Transport(e.to_string()))?;
                if status.is_server_error() {
                    return Err(Failure::Status(status));
                }
                Ok((status, body))
            };
            let timeout = Duration::from_secs_f64(policy.timeout_ms / 1000.0);
            let outcome = match tokio::time::timeout(timeout, attempt_fut).await {
                Ok(r) => r,
                Err(_) => Err(Failure::Timeout),
            };
            match outcome {
                Ok((status, body)) => {
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status.as_u16()),
                    ));
                    span.end();
                    return Ok(body);
                }
                Err(f) => {
                    if let Failure::Status(s) = &f {
                        span.set_attribute(KeyValue::new(
                            "http.response.status_code",
                            i64::from(s.as_u16()),
                        ));
                    }
                    span.set_status(Status::error(f.to_string()));
                    span.end();
                    self.stats.attempts_failed.fetch_add(1, Ordering::Relaxed);
                    last = f;
                }
            }
            if attempt < policy.retries && policy.backoff_ms > 0.0 {
                let jitter = self.rng.lock().unwrap().range(0.5, 1.5);
                let ms = policy.backoff_ms * f64::from(1u32 << attempt.min(10)) * jitter;
                tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
            }
        }
        Err(last)
    }

    /// Runs `steps` under `parent`: the calls of a step concurrently, the steps in order.
    /// Fails when a critical call fails.
    async fn run_steps(
        self: &Arc<Self>,
        parent: &Context,
        steps: &[Vec<CallSpec>],
    ) -> Result<Vec<Bytes>, Failure> {
        let mut bodies = Vec::new();
        for step in steps {
            let mut set = JoinSet::new();
            for c in step {
                if c.share < 1.0 && !self.chance(c.share) {
                    continue;
                }
                let (me, cx, c) = (self.clone(), parent.clone(), c.clone());
                set.spawn(async move {
                    let r = me.call(&cx, &c).await;
                    (c.critical, r)
                });
            }
            while let Some(joined) = set.join_next().await {
                let (critical, r) = joined.map_err(|e| Failure::Transport(e.to_string()))?;
                match r {
                    Ok(b) => bodies.push(b),
                    Err(_) if !critical => {}
                    Err(_) => return Err(Failure::Status(StatusCode::BAD_GATEWAY)),
                }
            }
        }
        Ok(bodies)
    }

    /// What a route does, after its server span started.
    async fn serve(self: Arc<Self>, route: Route, cx: Context) -> Result<String, Failure> {
        let _conn = match &self.concurrency {
            Some(s) => Some(s.clone().acquire_owned().await.expect("never closed")),
            None => None,
        };
        let (extra_ms, error_share) = {
            let f = self.faults.read().unwrap();
            (f.extra_latency_ms, f.error_share)
        };
        self.cpu_work(route.cpu_ms).await;
        if self.chance(error_share) {
            return Err(Failure::Status(StatusCode::INTERNAL_SERVER_ERROR));
        }
        self.run_steps(&cx, &route.steps).await?;
        let wait = self.lognormal(route.wait_ms, 0.25) + extra_ms;
        tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0) / 1000.0)).await;
        Ok(match route.action {
            Action::Plain => "ok".to_string(),
            Action::Enqueue => {
                let depth = self.queue_depth.fetch_add(1, Ordering::Relaxed) + 1;
                format!("{{\"depth\":{depth}}}")
            }
            Action::Dequeue => {
                let mut taken = 0;
                let _ = self
                    .queue_depth
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                        taken = d.min(10);
                        Some(d - taken)
                    });
                format!("{{\"items\":{taken}}}")
            }
        })
    }

    /// Replaces the faults switched on: ends the hog and pool holders of the previous
    /// state and starts those of the new one.
    fn set_faults(self: &Arc<Self>, state: FaultState) {
        let mut tasks = self.fault_tasks.lock().unwrap();
        for t in tasks.drain(..) {
            t.abort();
        }
        if state.cpu_hog > 0.0 {
            let (cpu, slots, duty) = (self.cpu.clone(), self.spec.cpu_slots, state.cpu_hog);
            tasks.push(tokio::spawn(async move {
                let period = 20.0;
                loop {
                    let held = cpu.acquire_many(slots).await.expect("never closed");
                    tokio::time::sleep(Duration::from_secs_f64(duty * period / 1000.0)).await;
                    drop(held);
                    tokio::time::sleep(Duration::from_secs_f64((1.0 - duty) * period / 1000.0))
                        .await;
                }
            }));
        }
        for (callee, left) in &state.pool_limit {
            if let Some(ds) = self.downstreams.get(callee) {
                let hold = ds.pool_size.saturating_sub((*left).max(1));
                if hold > 0 {
                    let pool = ds.pool.clone();
                    tasks.push(tokio::spawn(async move {
                        let _held = pool.acquire_many_owned(hold).await.expect("never closed");
                        std::future::pending::<()>().await;
                    }));
                }
            }
        }
        *self.faults.write().unwrap() = state;
    }

    /// The background consumer: polls the queue and handles each item.
    async fn work_loop(self: Arc<Self>) {
        let Some(w) = self.spec.worker.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_millis(w.interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut span = self
                .tracer
                .span_builder("poll queue")
                .with_kind(SpanKind::Internal)
                .start(&self.tracer);
            let cx = telemetry::child_of(&span);
            let items = match self.call(&cx, &w.poll).await {
                Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["items"].as_u64())
                    .unwrap_or(0),
                Err(f) => {
                    span.set_status(Status::error(f.to_string()));
                    0
                }
            };
            for _ in 0..items {
                self.cpu_work(w.cpu_ms).await;
                if let Err(f) = self.run_steps(&cx, &w.per_item).await {
                    span.set_status(Status::error(f.to_string()));
                }
            }
            span.set_attribute(KeyValue::new("messaging.batch.message_count", items as i64));
            span.end();
        }
    }
}

/// Burns the CPU for `d` (a busy loop with real arithmetic).
fn spin_for(d: Duration) {
    let start = Instant::now();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while start.elapsed() < d {
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
}

async fn handle(
    State(s): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let Some(route) = s.spec.routes.iter().find(|r| r.path == path).cloned() else {
        return (StatusCode::NOT_FOUND, format!("no route {path}")).into_response();
    };
    let parent = telemetry::extract(&headers);
    let mut span = s
        .tracer
        .span_builder(format!("{method} {path}"))
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("http.route", path.clone()),
            KeyValue::new("http.request.method", method.to_string()),
        ])
        .start_with_context(&s.tracer, &parent);
    let cx = telemetry::child_of(&span);
    let outcome = match s.inflight.clone().try_acquire_owned() {
        Ok(permit) => {
            // The work goes on when the caller gives up (times out), as in a real server.
            let work = s.clone().serve(route, cx);
            match tokio::spawn(async move {
                let r = work.await;
                drop(permit);
                r
            })
            .await
            {
                Ok(r) => r,
                Err(e) => Err(Failure::Transport(format!("handler failed: {e}"))),
            }
        }
        Err(_) => {
            s.stats.shed.fetch_add(1, Ordering::Relaxed);
            Err(Failure::Status(StatusCode::SERVICE_UNAVAILABLE))
        }
    };
    let counter = if outcome.is_ok() {
        &s.stats.served
    } else {
        &s.stats.failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let (code, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(f) => {
            span.set_status(Status::error(f.to_string()));
            let code = match f {
                Failure::Status(c) => c,
                _ => StatusCode::BAD_GATEWAY,
            };
            (code, f.to_string())
        }
    };
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(code.as_u16()),
    ));
    span.end();
    (code, body).into_response()
}

async fn control(State(s): State<Arc<Service>>, body: Bytes) -> Response {
    let state: FaultState = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("fault body: {e}")).into_response(),
    };
    if let Err(e) = state.validate() {
        return (StatusCode::BAD_REQUEST, e).into_response();
    }
    for callee in state.pool_limit.keys().chain(state.retry.keys()) {
        if !s.downstreams.contains_key(callee) {
            return (
                StatusCode::BAD_REQUEST,
                format!("{} does not call {callee}", s.spec.name),
            )
                .into_response();
        }
    }
    s.set_faults(state);
    axum::Json(s.faults.read().unwrap().clone()).into_response()
}

/// The service's router: its routes, `POST /_fault` and `GET /_health`.
fn router(s: Arc<Service>) -> Router {
    Router::new()
        .route("/_fault", post(control))
        .route("/_health", get(|| async { "ok" }))
        .fallback(handle)
        .with_state(s)
}

/// Runs instance `instance` of `service` from the plan file on `port` until SIGTERM or
/// Ctrl-C, then flushes its spans.
pub async fn run(plan_path: &Path, service: &str, instance: &str, port: u16) -> anyhow::Result<()> {
    let plan: Plan = serde_json::from_slice(
        &std::fs::read(plan_path).with_context(|| format!("reading {}", plan_path.display()))?,
    )
    .with_context(|| format!("parsing {}", plan_path.display()))?;
    let spec = plan
        .service(service)
        .with_context(|| format!("the plan has no service {service}"))?
        .clone();
    let provider: SdkTracerProvider = telemetry::provider(
        &plan.epicenter,
        &plan.token,
        service,
        instance,
        Duration::from_millis(plan.export_delay_ms),
    )?;
    let mut downstreams = HashMap::new();
    for callee in spec.callees() {
        let targets = plan.targets(service, &callee);
        anyhow::ensure!(!targets.is_empty(), "the plan has no address for {callee}");
        let size = spec.pool(&callee);
        downstreams.insert(
            callee.clone(),
            Downstream {
                targets,
                next: AtomicUsize::new(0),
                pool: Arc::new(Semaphore::new(size as usize)),
                pool_size: size,
            },
        );
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let s = Arc::new(Service {
        tracer: provider.tracer("epicenter-testbed"),
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .build()?,
        downstreams,
        cpu: Arc::new(Semaphore::new(spec.cpu_slots as usize)),
        concurrency: spec
            .max_concurrency
            .map(|n| Arc::new(Semaphore::new(n as usize))),
        faults: RwLock::new(FaultState::default()),
        fault_tasks: Mutex::new(Vec::new()),
        rng: Mutex::new(Rng::stream(seed, instance)),
        queue_depth: AtomicU64::new(0),
        inflight: Arc::new(Semaphore::new(MAX_INFLIGHT)),
        stats: Stats::default(),
        spec,
    });
    let worker = tokio::spawn(s.clone().work_loop());
    let reporter = tokio::spawn(report_loop(s.clone(), instance.to_string()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    axum::serve(listener, router(s))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    worker.abort();
    reporter.abort();
    tokio::task::spawn_blocking(move || provider.shutdown()).await??;
    Ok(())
}

/// Logs the instance's counters every ten seconds to standard error (the run's
/// `logs/INSTANCE.log`).
async fn report_loop(s: Arc<Service>, instance: String) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        let faults = serde_json::to_string(&*s.faults.read().unwrap()).unwrap_or_default();
        eprintln!(
            "{instance}: last 10 s: {} served, {} failed, {} shed (503), {} failed call attempts; {} in flight; queue {}; faults {faults}",
            take(&s.stats.served),
            take(&s.stats.failed),
            take(&s.stats.shed),
            take(&s.stats.attempts_failed),
            MAX_INFLIGHT - s.inflight.available_permits(),
            s.queue_depth.load(Ordering::Relaxed),
        );
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
