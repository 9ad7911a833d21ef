//! The OTLP/HTTP traces receiver, fed by the real OpenTelemetry SDK and its OTLP/HTTP
//! exporter (protobuf, JSON, gzip): client and server spans of different services,
//! exported one request each, become calls with the client's latency, the server's
//! method and either side's error; an uninstrumented callee is named by the client's
//! `peer.service`; spans held for pairing survive a kill -9; bad requests get a clear
//! 4xx in OTLP's own error format.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use epicenter_backend::store::{RedbStore, Store};
use graph_core::detect::SeriesKey;
use graph_core::model::{BucketWidth, EdgeKey};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use support::TestApp;

/// A service's tracer provider exporting every span as it ends, one request each.
fn provider(
    base: &str,
    token: &str,
    service: &str,
    instance: &str,
    protocol: Protocol,
    gzip: bool,
) -> SdkTracerProvider {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/traces"))
        .with_protocol(protocol)
        .with_timeout(Duration::from_secs(10))
        .with_headers(HashMap::from([(
            "Authorization".to_string(),
            format!("Bearer {token}"),
        )]));
    if gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .with_attribute(KeyValue::new("service.instance.id", instance.to_string()))
                .build(),
        )
        .with_simple_exporter(builder.build().unwrap())
        .build()
}

fn at(s: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(s)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One call from `client`'s service to `server`'s: a CLIENT span and its SERVER child,
/// ended (and so exported) in the order `server_first` says.
#[allow(clippy::too_many_arguments)]
fn call(
    client: &SdkTracerProvider,
    server: &SdkTracerProvider,
    start: f64,
    client_ms: f64,
    method_attr: KeyValue,
    client_error: bool,
    server_error: bool,
    server_first: bool,
) {
    let ct = client.tracer("client");
    let st = server.tracer("server");
    let mut c = ct
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_start_time(at(start))
        .start(&ct);
    let parent = Context::new().with_remote_span_context(c.span_context().clone());
    let mut s = st
        .span_builder("handler")
        .with_kind(SpanKind::Server)
        .with_start_time(at(start + 0.002))
        .with_attributes([method_attr])
        .start_with_context(&st, &parent);
    if client_error {
        c.set_status(Status::error("upstream failed"));
    }
    if server_error {
        s.set_status(Status::error("boom"));
    }
    let c_end = at(start + client_ms / 1000.0);
    let s_end = at(start + client_ms / 1000.0 - 0.004);
    if server_first {
        s.end_with_timestamp(s_end);
        c.end_with_timestamp(c_end);
    } else {
        c.end_with_timestamp(c_end);
        s.end_with_timestamp(s_end);
    }
}

/// Requests, errors and latency stored on the edge `src` -> `dst`, all buckets.
fn edge(store: &dyn Store, src: &str, dst: &str) -> Option<(f64, f64, f64)> {
    let reg = store.registry().unwrap();
    let key = EdgeKey {
        src: reg.catalog.id(src)?,
        dst: reg.catalog.id(dst)?,
    };
    let e = reg.find_entity(&SeriesKey::edge(key))?;
    let mut sum = (0.0, 0.0, 0.0);
    let now = unix_now() as i64;
    for (_, cell) in store.entity_cells(e, now - 86_400, now).unwrap() {
        let c = cell.counters().unwrap();
        sum.0 += c.requests;
        sum.1 += c.errors;
        sum.2 += c.latency_ms_sum;
    }
    Some(sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_from_the_sdk_become_calls_between_services() {
    let app = TestApp::start_with(None, |c| c.otlp.pair_window_s = 1).await;
    let (base, token) = (app.base.clone(), app.ingest_token.clone());
    let start = (unix_now() as i64 / 300 * 300 - 600) as f64;
    // The SDK's blocking exporter runs outside the async runtime.
    std::thread::spawn(move || {
        let frontend = provider(
            &base,
            &token,
            "frontend",
            "frontend-1",
            Protocol::HttpBinary,
            false,
        );
        let checkout = provider(
            &base,
            &token,
            "checkout",
            "checkout-2",
            Protocol::HttpBinary,
            false,
        );
        for i in 0..10 {
            call(
                &frontend,
                &checkout,
                start + i as f64,
                40.0 + i as f64,
                KeyValue::new("http.route", "/api/checkout"),
                i == 3,
                i % 5 == 0,
                i % 2 == 0,
            );
        }
        // JSON, gzipped.
        let checkout_json = provider(
            &base,
            &token,
            "checkout",
            "checkout-2",
            Protocol::HttpJson,
            true,
        );
        let payments = provider(
            &base,
            &token,
            "payments",
            "payments-0",
            Protocol::HttpJson,
            true,
        );
        for i in 0..4 {
            call(
                &checkout_json,
                &payments,
                start + 20.0 + i as f64,
                100.0,
                KeyValue::new("rpc.method", "Charge"),
                false,
                i == 1,
                i % 2 == 1,
            );
        }
        // A client span whose callee has no instrumentation.
        let t = frontend.tracer("client");
        let mut db = t
            .span_builder("SELECT orders")
            .with_kind(SpanKind::Client)
            .with_start_time(at(start + 30.0))
            .with_attributes([KeyValue::new("peer.service", "postgres")])
            .start(&t);
        db.end_with_timestamp(at(start + 30.012));
        // Spans of one service only: no call.
        let mut inner = t
            .span_builder("render")
            .with_kind(SpanKind::Internal)
            .with_start_time(at(start + 31.0))
            .start(&t);
        inner.end_with_timestamp(at(start + 31.5));
        for p in [frontend, checkout, checkout_json, payments] {
            p.shutdown().unwrap();
        }
    })
    .join()
    .unwrap();

    let store = app.state.store.as_ref();
    let (requests, errors, latency) = edge(store, "frontend", "checkout").unwrap();
    // Errors: call 3 failed on the client, calls 0 and 5 on the server.
    assert_eq!((requests, errors), (10.0, 3.0));
    // The client spans' durations: 40 + i ms.
    let want: f64 = (0..10).map(|i| 40.0 + i as f64).sum();
    assert!((latency - want).abs() < 0.01, "{latency} ms, want {want}");
    let (requests, errors, latency) = edge(store, "checkout", "payments").unwrap();
    assert_eq!((requests, errors), (4.0, 1.0));
    assert!((latency - 400.0).abs() < 0.01, "{latency}");
    let reg = store.registry().unwrap();
    assert!(reg.methods().contains(&"/api/checkout".to_string()));
    assert!(reg.methods().contains(&"Charge".to_string()));
    // Servers are the instances.
    let key = EdgeKey {
        src: reg.catalog.id("frontend").unwrap(),
        dst: reg.catalog.id("checkout").unwrap(),
    };
    let e = reg.find_entity(&SeriesKey::edge(key)).unwrap();
    let tick = BucketWidth::FIVE_MINUTES.floor(start as i64);
    let pairs = store.pairs(tick, Some(e)).unwrap();
    assert_eq!(
        (reg.server_name(pairs[0].src), reg.server_name(pairs[0].dst)),
        (Some("frontend-1"), Some("checkout-2"))
    );
    // The database call waits for a server span that will never come...
    assert!(edge(store, "frontend", "postgres").is_none());
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("epicenter_otlp_held_spans "), "{metrics}");
    // ...and is counted once the pairing window has passed.
    epicenter_backend::handlers::otlp::sweep(&app.state, unix_now() as i64 + 5).unwrap();
    let (requests, _, latency) = edge(store, "frontend", "postgres").unwrap();
    assert_eq!(requests, 1.0);
    assert!((latency - 12.0).abs() < 0.01);
    assert_eq!(app.state.otlp.lock().unwrap().held(), 0);
    assert!(store.held_spans().unwrap().is_empty());
    // The source is the token that sent the spans.
    let sources = app.get_json("/api/v1/sources").await;
    let collector = &sources["sources"][0];
    assert_eq!(collector["name"], "collector", "{sources}");
    assert_eq!(collector["records"], 14, "{sources}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn json_spans(n: usize, start_ns: u128) -> String {
    let spans: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"traceId": "{:032x}", "spanId": "{:016x}", "kind": 3, "name": "GET",
                     "startTimeUnixNano": "{start_ns}", "endTimeUnixNano": "{}"}}"#,
                i + 1,
                i + 1,
                start_ns + 1_000_000
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans": [{{"resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "web"}}}}]}},
             "scopeSpans": [{{"spans": [{}]}}]}}]}}"#,
        spans.join(",")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_clear_4xx_in_the_otlp_error_format() {
    let app = TestApp::start_with(None, |c| c.otlp.max_spans = 50).await;
    let url = format!("{}/v1/traces", app.base);
    let now_ns = (unix_now() as u128) * 1_000_000_000;
    let post = |token: Option<&str>, media: &str, encoding: Option<&str>, body: Vec<u8>| {
        let mut r = app
            .client
            .post(&url)
            .header("Content-Type", media)
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(e) = encoding {
            r = r.header("Content-Encoding", e);
        }
        r.send()
    };
    let ok = json_spans(1, now_ns).into_bytes();
    // Token, media type, content encoding, body; the status and what it says.
    type Case<'a> = (
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (None, "application/json", None, ok.clone(), 401, ""),
        (
            Some(&app.read_token),
            "application/json",
            None,
            ok.clone(),
            403,
            "ingest",
        ),
        (
            Some(&app.ingest_token),
            "text/plain",
            None,
            ok.clone(),
            415,
            "application/x-protobuf",
        ),
        (
            Some(&app.ingest_token),
            "application/json",
            Some("br"),
            ok.clone(),
            415,
            "gzip",
        ),
        (
            Some(&app.ingest_token),
            "application/x-protobuf",
            None,
            b"\xff\xff\xff".to_vec(),
            400,
            "not an OTLP ExportTraceServiceRequest",
        ),
        (
            Some(&app.ingest_token),
            "application/json",
            None,
            b"{\"resourceSpans\": 3}".to_vec(),
            400,
            "not an OTLP/JSON",
        ),
        (
            Some(&app.ingest_token),
            "application/json",
            Some("gzip"),
            ok.clone(),
            400,
            "not valid gzip",
        ),
        // 20 MB of nothing, gzipped to a few kB: refused once it passes the limit.
        (
            Some(&app.ingest_token),
            "application/json",
            Some("gzip"),
            gzip(&vec![b' '; 20 << 20]),
            413,
            "otlp.max_body_bytes",
        ),
        (
            Some(&app.ingest_token),
            "application/json",
            None,
            json_spans(51, now_ns).into_bytes(),
            413,
            "at most 50",
        ),
    ];
    for (token, media, encoding, body, status, says) in cases {
        let r = post(token, media, encoding, body).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{media} {encoding:?}");
        let json = media != "application/x-protobuf";
        let text = if json {
            let v: serde_json::Value = r.json().await.unwrap();
            assert!(v["code"].is_i64(), "{v}");
            v["message"].as_str().unwrap().to_string()
        } else {
            use prost::Message;
            let bytes = r.bytes().await.unwrap();
            epicenter_backend::sources::otlp::proto::RpcStatus::decode(bytes.as_ref())
                .unwrap()
                .message
        };
        assert!(text.contains(says), "{status}: {text}");
    }
    assert!(
        app.state.store.tick_range().unwrap().is_none(),
        "nothing was stored"
    );
    // One good span and one bad: the good one is held, the bad one reported.
    let body = json_spans(1, now_ns).replace(
        r#"}]}]}"#,
        &format!(
            r#"}}, {{"traceId": "01", "spanId": "0000000000000009", "kind": 2,
                 "startTimeUnixNano": "{now_ns}", "endTimeUnixNano": "{now_ns}"}}]}}]}}"#
        ),
    );
    let r = post(
        Some(&app.ingest_token),
        "application/json",
        None,
        body.into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("span 1: traceId has 1 bytes, not 16"),
        "{v}"
    );
    assert_eq!(app.state.otlp.lock().unwrap().held(), 1);
}

fn serve(data: &std::path::Path) -> (std::process::Child, String) {
    support::spawn_on_store(data, &[("EPICENTER__OTLP__PAIR_WINDOW_S", "3600")])
}

#[test]
fn a_client_span_acknowledged_before_a_kill_9_still_meets_its_server_span_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = support::create_token(&data, "otel", "ingest");
    let start = (unix_now() as i64 / 300 * 300 - 600) as f64;

    let (mut server, url) = serve(&data);
    let web = provider(&url, &token, "web", "web-1", Protocol::HttpBinary, false);
    let api = provider(&url, &token, "api", "api-1", Protocol::HttpBinary, false);
    let wt = web.tracer("client");
    let mut c = wt
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .with_start_time(at(start))
        .start(&wt);
    let parent = Context::new().with_remote_span_context(c.span_context().clone());
    // The client span is exported, and acknowledged, first.
    c.end_with_timestamp(at(start + 0.050));
    web.shutdown().unwrap();
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let (mut server, url2) = serve(&data);
    drop(api);
    let api = provider(&url2, &token, "api", "api-1", Protocol::HttpBinary, false);
    let at_ = api.tracer("server");
    let mut s = at_
        .span_builder("GET /items")
        .with_kind(SpanKind::Server)
        .with_start_time(at(start + 0.005))
        .start_with_context(&at_, &parent);
    s.end_with_timestamp(at(start + 0.045));
    api.shutdown().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    let store = RedbStore::open(&data, BucketWidth::FIVE_MINUTES).unwrap();
    let (requests, errors, latency) = edge(&store, "web", "api").expect("the call was counted");
    assert_eq!((requests, errors), (1.0, 0.0));
    assert!((latency - 50.0).abs() < 0.01, "{latency}");
    let _ = url;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_one_request_are_summed_per_bucket_and_counted_one_by_one() {
    let app = TestApp::start().await;
    let start_ns = (unix_now() as u128 - 600) * 1_000_000_000;
    // Three calls web -> api in one request, in one bucket, from the same instances.
    let span = |id: u32, parent: Option<u32>, kind: u8, ms: u128| {
        format!(
            r#"{{"traceId": "{:032x}", "spanId": "{:016x}", "parentSpanId": "{}", "kind": {kind},
                 "name": "GET /items", "startTimeUnixNano": "{start_ns}", "endTimeUnixNano": "{}"}}"#,
            100 + id / 2,
            id,
            parent.map(|p| format!("{p:016x}")).unwrap_or_default(),
            start_ns + ms * 1_000_000
        )
    };
    let resource = |service: &str, spans: Vec<String>| {
        format!(
            r#"{{"resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "{service}"}}}}]}},
                 "scopeSpans": [{{"spans": [{}]}}]}}"#,
            spans.join(",")
        )
    };
    let clients = (0..3)
        .map(|i| span(2 * i + 2, None, 3, 10 + u128::from(i)))
        .collect();
    let servers = (0..3)
        .map(|i| span(2 * i + 3, Some(2 * i + 2), 2, 5))
        .collect();
    let body = format!(
        r#"{{"resourceSpans": [{}, {}]}}"#,
        resource("web", clients),
        resource("api", servers)
    );
    let r = app
        .client
        .post(format!("{}/v1/traces", app.base))
        .bearer_auth(&app.ingest_token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (requests, _, latency) = edge(app.state.store.as_ref(), "web", "api").unwrap();
    assert_eq!(requests, 3.0);
    assert!((latency - 33.0).abs() < 0.01, "{latency}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("\nepicenter_otlp_calls_total 3\n"),
        "{metrics}"
    );
}
