//! The load generator: open-loop requests to the front service at a seeded Poisson rate
//! with mild slow drift, each a CLIENT span of the service `loadgen`, so the front's
//! incoming edge is in the graph too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, SpanKind, Status, Tracer, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::task::JoinHandle;

use crate::rng::Rng;
use crate::telemetry;
use crate::topology::FRONT_MIX;

/// Requests sent, and those that failed (5xx or no answer).
#[derive(Debug, Default)]
pub struct LoadStats {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests failed.
    pub failed: AtomicU64,
}

/// A running load generator; dropping it stops the load.
#[derive(Debug)]
pub struct LoadGen {
    /// Counters.
    pub stats: Arc<LoadStats>,
    task: JoinHandle<()>,
    provider: SdkTracerProvider,
}

/// The rate at `t` seconds into the run: `rate` with a slow ±8 % drift (periods of 97 and
/// 41 s), so baselines see a little natural variation.
pub fn rate_at(rate: f64, t: f64) -> f64 {
    let tau = std::f64::consts::TAU;
    rate * (1.0 + 0.05 * (tau * t / 97.0).sin() + 0.03 * (tau * t / 41.0).sin())
}

impl LoadGen {
    /// Starts sending `rate` requests a second to `front` (`http://host:port`).
    pub fn start(
        front: String,
        rate: f64,
        seed: u64,
        epicenter: &str,
        token: &str,
        export_delay: Duration,
    ) -> anyhow::Result<LoadGen> {
        let provider = telemetry::provider(epicenter, token, "loadgen", "loadgen-1", export_delay)?;
        let tracer = provider.tracer("epicenter-testbed");
        let stats = Arc::new(LoadStats::default());
        let st = stats.clone();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(10))
            .build()?;
        let task = tokio::spawn(async move {
            let mut rng = Rng::stream(seed, "load");
            let start = tokio::time::Instant::now();
            let mut next = 0.0f64;
            let in_flight = Arc::new(tokio::sync::Semaphore::new(2_000));
            loop {
                next += rng.exp(1.0 / rate_at(rate, next));
                tokio::time::sleep_until(start + Duration::from_secs_f64(next)).await;
                let mut pick = rng.f64();
                let mut path = FRONT_MIX[0].0;
                for (p, w) in FRONT_MIX {
                    if pick < w {
                        path = p;
                        break;
                    }
                    pick -= w;
                }
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    st.sent.fetch_add(1, Ordering::Relaxed);
                    st.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut span = tracer
                    .span_builder(format!("GET {path}"))
                    .with_kind(SpanKind::Client)
                    .with_attributes(vec![
                        KeyValue::new("peer.service", crate::topology::FRONT),
                        KeyValue::new("http.request.method", "GET"),
                        KeyValue::new("url.path", path),
                    ])
                    .start(&tracer);
                let headers = telemetry::inject(&telemetry::child_of(&span));
                let req = client.get(format!("{front}{path}")).headers(headers);
                let st = st.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    st.sent.fetch_add(1, Ordering::Relaxed);
                    match req.send().await {
                        Ok(r) if !r.status().is_server_error() => {
                            let _ = r.bytes().await;
                        }
                        Ok(r) => {
                            st.failed.fetch_add(1, Ordering::Relaxed);
                            span.set_status(Status::error(format!("answered {}", r.status())));
                        }
                        Err(e) => {
                            st.failed.fetch_add(1, Ordering::Relaxed);
                            span.set_status(Status::error(e.to_string()));
                        }
                    }
                    span.end();
                });
            }
        });
        Ok(LoadGen {
            stats,
            task,
            provider,
        })
    }

    /// Stops the load and flushes its spans.
    pub async fn stop(self) {
        self.task.abort();
        let p = self.provider.clone();
        let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_drifts_mildly_around_its_mean() {
        let v: Vec<f64> = (0..1000).map(|t| rate_at(30.0, t as f64 * 0.7)).collect();
        assert!(v.iter().all(|r| (27.0..=33.0).contains(r)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 30.0).abs() < 0.5, "{mean}");
        assert!(v.iter().any(|r| *r > 31.0) && v.iter().any(|r| *r < 29.0));
    }
}
