//! Each service's OpenTelemetry SDK: a tracer provider with the service's resource and a
//! batch exporter to Epicenter's OTLP/HTTP receiver, and W3C trace context in headers.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

/// A tracer provider for one service instance exporting protobuf batches every
/// `delay` to `{epicenter}/v1/traces` with `Authorization: Bearer {token}`.
pub fn provider(
    epicenter: &str,
    token: &str,
    service: &str,
    instance: &str,
    delay: Duration,
) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", epicenter.trim_end_matches('/')))
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(Duration::from_secs(10))
        .with_headers(HashMap::from([(
            "Authorization".to_string(),
            format!("Bearer {token}"),
        )]))
        .build()?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(delay)
                .with_max_queue_size(65_536)
                .with_max_export_batch_size(4_096)
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .with_attribute(KeyValue::new("service.instance.id", instance.to_string()))
                .build(),
        )
        .with_span_processor(batch)
        .build())
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// `traceparent` (and `tracestate`) headers naming `parent` as the caller's span.
pub fn inject(parent: &Context) -> HeaderMap {
    let mut h = HeaderMap::new();
    TraceContextPropagator::new().inject_context(parent, &mut HeaderInjector(&mut h));
    h
}

/// The caller's span context from a request's headers (an empty context without them).
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// A context whose parent is `span` (and nothing else): children and propagated headers
/// name it, while the span itself stays with its owner, who ends it explicitly.
pub fn child_of(span: &impl opentelemetry::trace::Span) -> Context {
    Context::new().with_remote_span_context(span.span_context().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn trace_context_survives_a_round_trip_through_headers() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let h = inject(&Context::new().with_remote_span_context(sc.clone()));
        assert_eq!(
            h.get("traceparent").unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let back = extract(&h);
        assert_eq!(back.span().span_context().trace_id(), sc.trace_id());
        assert_eq!(back.span().span_context().span_id(), sc.span_id());
        assert!(back.span().span_context().is_remote());
        assert!(!extract(&HeaderMap::new()).span().span_context().is_valid());
    }
}
