//! Throughput of the real-telemetry sources, release binary on loopback.
//!
//! - `otlp`: clients post OTLP/HTTP protobuf requests of client and server spans to
//!   `POST /v1/traces`; every server span arrives one request after its client span, so
//!   each call is paired across requests and each request is a durable commit.
//! - `pull`: VictoriaMetrics (Debian's `victoria-metrics`) holds Istio counters of
//!   EDGES service pairs for DAYS days; `epicenter backfill` pulls them all.
//!
//! ```sh
//! cargo bench -p epicenter-backend --bench sources -- otlp [CLIENTS] [CALLS_PER_REQUEST] [REQUESTS_PER_CLIENT]
//! cargo bench -p epicenter-backend --bench sources -- pull [EDGES] [DAYS]
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use epicenter_backend::sources::otlp::proto;
use prost::Message;

use support::BIN;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let rt = tokio::runtime::Runtime::new().unwrap();
    match args.first().map(String::as_str) {
        Some("pull") => rt.block_on(pull(n(1, 2_500), n(2, 7) as i64)),
        _ => rt.block_on(otlp(n(1, 4), n(2, 2_500), n(3, 40))),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The peak resident memory of process `pid`, MB (0 once it has gone).
fn peak_rss_mb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn kv(key: &str, value: &str) -> proto::KeyValue {
    proto::KeyValue {
        key: key.into(),
        value: Some(proto::AnyValue {
            value: Some(proto::Value::String(value.into())),
        }),
    }
}

/// The spans of calls `from..to`: call `i` goes from service `i % 300` to
/// `(i * 7 + 1) % 300`. Client spans when `clients`, else their server spans.
fn spans(client_id: u64, from: u64, to: u64, clients: bool, start_ns: u64) -> Vec<u8> {
    let mut by_service: std::collections::BTreeMap<u64, Vec<proto::Span>> = Default::default();
    for i in from..to {
        let (caller, callee) = (i % 300, (i * 7 + 1) % 300);
        let trace = [(client_id + 1).to_be_bytes(), i.to_be_bytes()].concat();
        let client_span = ((i << 1) + 2).to_be_bytes().to_vec();
        let start = start_ns + (i % 200) * 1_000_000;
        let span = if clients {
            proto::Span {
                trace_id: trace,
                span_id: client_span,
                parent_span_id: vec![],
                name: "POST".into(),
                kind: 3,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 20_000_000,
                attributes: vec![],
                status: None,
            }
        } else {
            proto::Span {
                trace_id: trace,
                span_id: ((i << 1) + 3).to_be_bytes().to_vec(),
                parent_span_id: client_span,
                name: "handler".into(),
                kind: 2,
                start_time_unix_nano: start + 1_000_000,
                end_time_unix_nano: start + 18_000_000,
                attributes: vec![kv("http.route", "/api/items")],
                status: None,
            }
        };
        by_service
            .entry(if clients { caller } else { callee })
            .or_default()
            .push(span);
    }
    proto::ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(s, spans)| proto::ResourceSpans {
                resource: Some(proto::Resource {
                    attributes: vec![
                        kv("service.name", &format!("svc-{s}")),
                        kv("service.instance.id", &format!("svc-{s}-0")),
                    ],
                }),
                scope_spans: vec![proto::ScopeSpans { spans }],
            })
            .collect(),
    }
    .encode_to_vec()
}

async fn otlp(clients: usize, calls: usize, requests: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = support::create_token(&data, "bench", "ingest");
    let (mut server, url) = support::spawn_on_store(&data, &[]);
    let start_ns = (now() as u64 - 600) * 1_000_000_000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut bytes = 0usize;
            // Request r carries the client spans of batch r and the server spans of
            // batch r - 1.
            for r in 0..=requests as u64 {
                let mut body = Vec::new();
                if r < requests as u64 {
                    body.extend(spans(
                        c as u64,
                        r * calls as u64,
                        (r + 1) * calls as u64,
                        true,
                        start_ns,
                    ));
                }
                if r > 0 {
                    body.extend(spans(
                        c as u64,
                        (r - 1) * calls as u64,
                        r * calls as u64,
                        false,
                        start_ns,
                    ));
                }
                bytes += body.len();
                let res = http
                    .post(format!("{url}/v1/traces"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(res.status().is_success(), "{}", res.status());
            }
            bytes
        }));
    }
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let paired: f64 = metrics
        .lines()
        .find(|l| l.starts_with("epicenter_otlp_calls_total "))
        .and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap();
    let spans = 2.0 * (clients * calls * requests) as f64;
    assert_eq!(
        paired,
        (clients * calls * requests) as f64,
        "every call paired"
    );
    let rss = peak_rss_mb(server.id());
    println!(
        "otlp: {clients} clients, {} requests of {calls} calls' spans: {:.0} spans/s, {:.0} calls/s, {:.1} MB/s protobuf, {secs:.2} s, server peak RSS {rss} MB",
        clients * (requests + 1),
        spans / secs,
        spans / 2.0 / secs,
        bytes as f64 / secs / 1e6
    );
    server.kill().unwrap();
}

async fn pull(edges: usize, days: i64) {
    use support::engines::{Engine, Kind, series};
    let engine = Engine::start(Kind::VictoriaMetrics).await;
    let end = now() / 300 * 300 - 300;
    let start = end - days * 86_400;
    let t0 = Instant::now();
    // Counters sampled on bucket boundaries: two samples per bucket are enough.
    for chunk in (0..edges).collect::<Vec<_>>().chunks(100) {
        let mut out = Vec::new();
        for &e in chunk {
            let (caller, callee) = (
                format!("svc-{}", e % 300),
                format!("svc-{}", (e * 7 + 1 + e / 300) % 300),
            );
            let labels = [
                ("reporter", "source"),
                ("source_workload", caller.as_str()),
                ("destination_workload", callee.as_str()),
                ("pod", "p-0"),
                ("response_code", "200"),
            ];
            let mut requests = Vec::new();
            let mut latency = Vec::new();
            let (mut r, mut l) = (0.0, 0.0);
            let mut t = start;
            while t <= end {
                requests.push((t, r));
                latency.push((t, l));
                r += 100.0 + (e % 17) as f64;
                l += 2_000.0;
                t += 300;
            }
            out.push(series("istio_requests_total", &labels, &requests));
            out.push(series(
                "istio_request_duration_milliseconds_sum",
                &labels[..4],
                &latency,
            ));
        }
        engine.write(out).await;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("epicenter.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ndata_dir = \"{}\"\n\n[[sources.prometheus]]\nname = \"mesh\"\nurl = \"{}\"\npreset = \"istio\"\ndelay_s = 0\nbackfill_days = {days}\n",
            dir.path().join("data").display(),
            engine.url()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .args(["backfill", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut rss_mb = 0;
    let status = loop {
        rss_mb = rss_mb.max(peak_rss_mb(child.id()));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let secs = t.elapsed().as_secs_f64();
    assert!(status.success());
    let buckets = days * 288;
    println!(
        "pull: {edges} edges × {days} days ({buckets} buckets) loaded into VictoriaMetrics in {load_s:.1} s; \
         epicenter backfill took {secs:.1} s: {:.0} edge-buckets/s, peak RSS {rss_mb} MB",
        (edges as i64 * buckets) as f64 / secs
    );
}
