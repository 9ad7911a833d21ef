//! OpenTelemetry traces in: the OTLP/HTTP request (protobuf or JSON), and the pairing
//! of spans into calls between services.
//!
//! A call caller → callee is counted for each CLIENT span and its SERVER child in
//! another service (latency: the client span, which includes the network), and for
//! each SERVER span whose parent is a span of another service that is not a CLIENT
//! (latency: the server span). The method is the server side's `rpc.method`,
//! `http.route` or span name; the call failed when either span's status is ERROR; the
//! servers are the resources' `service.instance.id`, `k8s.pod.name` or `host.name`.
//! A CLIENT span whose callee never reports (a database, a third party) becomes a
//! call to its `peer.service`, `server.address` or `db.system` once the pairing window
//! has passed.
//!
//! Spans whose partner has not arrived yet are held for the pairing window, in the
//! store, written in the same transaction as the calls a request makes: a request is
//! acknowledged only when everything it brought is durable.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ingest::CallRecord;
use crate::ingest::record::{MAX_MEAN_LATENCY_MS, MAX_NAME_LEN};
use crate::store::HeldChanges;

/// The OTLP protobuf messages Epicenter reads (opentelemetry-proto, trace v1). Fields
/// it does not read are skipped by the decoder.
pub mod proto {
    /// `ExportTraceServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        /// The spans, by resource.
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    /// `ResourceSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        /// The resource.
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// The spans, by instrumentation scope.
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    /// `Resource`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        /// Its attributes.
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    /// `ScopeSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        /// The spans.
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    /// `Span`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        /// 16 bytes.
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// 8 bytes.
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        /// 8 bytes, or empty for a root span.
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        /// Name.
        #[prost(string, tag = "5")]
        pub name: String,
        /// `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        #[prost(int32, tag = "6")]
        pub kind: i32,
        /// Start, Unix nanoseconds.
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        /// End, Unix nanoseconds.
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        /// Attributes.
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        /// Status.
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }
    /// `Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        /// Description.
        #[prost(string, tag = "2")]
        pub message: String,
        /// 0 unset, 1 ok, 2 error.
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
    /// `KeyValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        /// Key.
        #[prost(string, tag = "1")]
        pub key: String,
        /// Value.
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    /// `AnyValue` (arrays, maps and bytes are not read).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        /// The value.
        #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
        pub value: Option<Value>,
    }
    /// The kinds of `AnyValue` read.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string_value`.
        #[prost(string, tag = "1")]
        String(String),
        /// `bool_value`.
        #[prost(bool, tag = "2")]
        Bool(bool),
        /// `int_value`.
        #[prost(int64, tag = "3")]
        Int(i64),
        /// `double_value`.
        #[prost(double, tag = "4")]
        Double(f64),
    }
    /// `ExportTraceServiceResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceResponse {
        /// Set when some spans were refused.
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<ExportTracePartialSuccess>,
    }
    /// `ExportTracePartialSuccess`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTracePartialSuccess {
        /// Spans refused.
        #[prost(int64, tag = "1")]
        pub rejected_spans: i64,
        /// Why.
        #[prost(string, tag = "2")]
        pub error_message: String,
    }
    /// `google.rpc.Status`, the body of an error answer.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcStatus {
        /// gRPC code.
        #[prost(int32, tag = "1")]
        pub code: i32,
        /// Message.
        #[prost(string, tag = "2")]
        pub message: String,
    }
}

/// The OTLP/JSON form of the same messages: lowerCamelCase keys, ids in hex, 64-bit
/// integers as strings or numbers.
mod json {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request {
        #[serde(default)]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceSpans {
        #[serde(default)]
        pub resource: Option<Resource>,
        #[serde(default)]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Deserialize)]
    pub struct Resource {
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Deserialize)]
    pub struct ScopeSpans {
        #[serde(default)]
        pub spans: Vec<Span>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Span {
        #[serde(default)]
        pub trace_id: String,
        #[serde(default)]
        pub span_id: String,
        #[serde(default)]
        pub parent_span_id: String,
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub kind: i32,
        #[serde(default)]
        pub start_time_unix_nano: U64,
        #[serde(default)]
        pub end_time_unix_nano: U64,
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
        #[serde(default)]
        pub status: Option<Status>,
    }
    #[derive(Deserialize)]
    pub struct Status {
        #[serde(default)]
        pub code: i32,
    }
    #[derive(Deserialize)]
    pub struct KeyValue {
        pub key: String,
        #[serde(default)]
        pub value: Option<AnyValue>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AnyValue {
        #[serde(default)]
        pub string_value: Option<String>,
        #[serde(default)]
        pub int_value: Option<I64>,
        #[serde(default)]
        pub bool_value: Option<bool>,
        #[serde(default)]
        pub double_value: Option<f64>,
    }
    /// A 64-bit integer as JSON gives it: a string (as protobuf's JSON mapping says)
    /// or a number.
    #[derive(Deserialize, Default)]
    #[serde(untagged)]
    pub enum U64 {
        #[default]
        Missing,
        Number(u64),
        Text(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum I64 {
        Number(i64),
        Text(String),
    }
}

/// Span kinds that matter here.
pub const SERVER: i32 = 2;
/// See [`SERVER`].
pub const CLIENT: i32 = 3;

/// A span as pairing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanIn {
    /// Trace id.
    pub trace: [u8; 16],
    /// Span id.
    pub id: [u8; 8],
    /// Parent span id.
    pub parent: Option<[u8; 8]>,
    /// What is held of it.
    pub held: Held,
}

/// What is kept of a span while it waits for its partner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// `service.name` of its resource.
    pub service: String,
    /// Its resource's instance.
    pub instance: String,
    /// Span kind.
    pub kind: i32,
    /// Start, Unix nanoseconds.
    pub start_ns: u64,
    /// Duration, nanoseconds.
    pub duration_ns: u64,
    /// Status ERROR.
    pub error: bool,
    /// `rpc.method`, `http.route` or the span name.
    pub method: String,
    /// For a client span, who it calls when the callee does not report:
    /// `peer.service`, `server.address` or `db.system`.
    #[serde(default)]
    pub peer: Option<String>,
    /// Parent span id, hex.
    #[serde(default)]
    pub parent: Option<String>,
    /// Counted in a call already.
    #[serde(default)]
    pub paired: bool,
    /// When it arrived, Unix seconds.
    pub arrived: i64,
}

/// One refused span, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// Index of the span in the request.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// The spans of a request, and those refused.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Valid spans.
    pub spans: Vec<SpanIn>,
    /// Invalid spans.
    pub refused: Vec<Refused>,
}

fn attr_text(v: &proto::AnyValue) -> Option<String> {
    match v.value.as_ref()? {
        proto::Value::String(s) => Some(s.clone()),
        proto::Value::Int(i) => Some(i.to_string()),
        proto::Value::Bool(b) => Some(b.to_string()),
        proto::Value::Double(d) => Some(d.to_string()),
    }
}

fn lookup<'a>(attrs: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        attrs
            .iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// A span in the neutral form both encodings decode to.
struct Raw {
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    attrs: Vec<(String, String)>,
    error: bool,
}

fn build(
    raw: Raw,
    resource: &[(String, String)],
    now: i64,
    limits: &crate::ingest::Limits,
) -> Result<SpanIn, String> {
    let trace: [u8; 16] = raw
        .trace
        .as_slice()
        .try_into()
        .map_err(|_| format!("traceId has {} bytes, not 16", raw.trace.len()))?;
    let id: [u8; 8] = raw
        .id
        .as_slice()
        .try_into()
        .map_err(|_| format!("spanId has {} bytes, not 8", raw.id.len()))?;
    if trace == [0; 16] || id == [0; 8] {
        return Err("traceId and spanId must not be all zeros".into());
    }
    let parent = match raw.parent.len() {
        0 => None,
        8 => Some(<[u8; 8]>::try_from(raw.parent.as_slice()).expect("8 bytes")),
        n => return Err(format!("parentSpanId has {n} bytes, not 8 or none")),
    };
    if raw.end < raw.start {
        return Err("endTimeUnixNano is before startTimeUnixNano".into());
    }
    let start_s = (raw.start / 1_000_000_000) as i64;
    if start_s < limits.now - limits.max_age_s || start_s > limits.now + limits.max_future_s {
        return Err(format!(
            "startTimeUnixNano {} is outside the accepted window (up to {} days back, {} minutes ahead)",
            raw.start,
            limits.max_age_s / 86_400,
            limits.max_future_s / 60
        ));
    }
    let duration_ns = raw.end - raw.start;
    if duration_ns as f64 / 1e6 > MAX_MEAN_LATENCY_MS {
        return Err("the span lasts more than a day".into());
    }
    let service = lookup(resource, &["service.name"]).unwrap_or("unknown_service");
    let instance = lookup(
        resource,
        &["service.instance.id", "k8s.pod.name", "host.name"],
    )
    .unwrap_or(service);
    let method = lookup(&raw.attrs, &["rpc.method", "http.route"]).unwrap_or(&raw.name);
    for (what, value) in [
        ("service.name", service),
        ("instance", instance),
        ("method", method),
    ] {
        if value.len() > MAX_NAME_LEN {
            return Err(format!("{what} is longer than {MAX_NAME_LEN} bytes"));
        }
    }
    let peer = (raw.kind == CLIENT)
        .then(|| lookup(&raw.attrs, &["peer.service", "server.address", "db.system"]))
        .flatten()
        .filter(|p| p.len() <= MAX_NAME_LEN)
        .map(str::to_string);
    Ok(SpanIn {
        trace,
        id,
        parent,
        held: Held {
            service: service.to_string(),
            instance: instance.to_string(),
            kind: raw.kind,
            start_ns: raw.start,
            duration_ns,
            error: raw.error,
            method: method.to_string(),
            peer,
            parent: parent.map(hex),
            paired: false,
            arrived: now,
        },
    })
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{what} {text:?} is not hexadecimal"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Decodes an OTLP/HTTP protobuf body. A body that does not decode is an error; a
/// span that decodes but is invalid is refused alone.
pub fn decode_protobuf(
    body: &[u8],
    now: i64,
    limits: &crate::ingest::Limits,
    max_spans: usize,
) -> Result<Decoded, DecodeError> {
    use prost::Message;
    let req = proto::ExportTraceServiceRequest::decode(body)
        .map_err(|e| DecodeError::Invalid(format!("not an OTLP ExportTraceServiceRequest: {e}")))?;
    let count: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    check_count(count, max_spans)?;
    let mut out = Decoded::default();
    let mut index = 0;
    for rs in req.resource_spans {
        let resource: Vec<(String, String)> = rs
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| Some((kv.key, attr_text(kv.value.as_ref()?)?)))
            .collect();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            let raw = Raw {
                trace: span.trace_id,
                id: span.span_id,
                parent: span.parent_span_id,
                name: span.name,
                kind: span.kind,
                start: span.start_time_unix_nano,
                end: span.end_time_unix_nano,
                attrs: span
                    .attributes
                    .into_iter()
                    .filter_map(|kv| Some((kv.key, attr_text(kv.value.as_ref()?)?)))
                    .collect(),
                error: span.status.is_some_and(|s| s.code == 2),
            };
            push(&mut out, index, build(raw, &resource, now, limits));
            index += 1;
        }
    }
    Ok(out)
}

/// Why a request's body cannot be taken at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not an OTLP request in the encoding it claims.
    #[error("{0}")]
    Invalid(String),
    /// More spans than `otlp.max_spans`.
    #[error("{0}")]
    TooMany(String),
}

fn check_count(count: usize, max_spans: usize) -> Result<(), DecodeError> {
    if count > max_spans {
        return Err(DecodeError::TooMany(format!(
            "{count} spans in one request; at most {max_spans} are accepted (otlp.max_spans): send smaller batches"
        )));
    }
    Ok(())
}

fn push(out: &mut Decoded, index: usize, span: Result<SpanIn, String>) {
    match span {
        Ok(s) => out.spans.push(s),
        Err(message) => out.refused.push(Refused { index, message }),
    }
}

fn json_u64(v: &json::U64, what: &str) -> Result<u64, String> {
    match v {
        json::U64::Missing => Err(format!("{what} is missing")),
        json::U64::Number(n) => Ok(*n),
        json::U64::Text(t) => t
            .parse()
            .map_err(|_| format!("{what} {t:?} is not a whole number")),
    }
}

fn json_attrs(attrs: Vec<json::KeyValue>) -> Vec<(String, String)> {
    attrs
        .into_iter()
        .filter_map(|kv| {
            let v = kv.value?;
            let text = match (v.string_value, v.int_value, v.bool_value, v.double_value) {
                (Some(s), ..) => s,
                (_, Some(json::I64::Number(i)), ..) => i.to_string(),
                (_, Some(json::I64::Text(t)), ..) => t,
                (_, _, Some(b), _) => b.to_string(),
                (_, _, _, Some(d)) => d.to_string(),
                _ => return None,
            };
            Some((kv.key, text))
        })
        .collect()
}

/// Decodes an OTLP/HTTP JSON body; see [`decode_protobuf`].
pub fn decode_json(
    body: &[u8],
    now: i64,
    limits: &crate::ingest::Limits,
    max_spans: usize,
) -> Result<Decoded, DecodeError> {
    let req: json::Request = serde_json::from_slice(body).map_err(|e| {
        DecodeError::Invalid(format!("not an OTLP/JSON ExportTraceServiceRequest: {e}"))
    })?;
    let count: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    check_count(count, max_spans)?;
    let mut out = Decoded::default();
    let mut index = 0;
    for rs in req.resource_spans {
        let resource = json_attrs(rs.resource.map(|r| r.attributes).unwrap_or_default());
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            let raw = (|| {
                Ok::<_, String>(Raw {
                    trace: unhex(&span.trace_id, "traceId")?,
                    id: unhex(&span.span_id, "spanId")?,
                    parent: unhex(&span.parent_span_id, "parentSpanId")?,
                    start: json_u64(&span.start_time_unix_nano, "startTimeUnixNano")?,
                    end: json_u64(&span.end_time_unix_nano, "endTimeUnixNano")?,
                    name: span.name,
                    kind: span.kind,
                    attrs: json_attrs(span.attributes),
                    error: span.status.is_some_and(|s| s.code == 2),
                })
            })();
            push(
                &mut out,
                index,
                raw.and_then(|raw| build(raw, &resource, now, limits)),
            );
            index += 1;
        }
    }
    Ok(out)
}

type Key = [u8; 24];

fn key(trace: &[u8; 16], id: &[u8; 8]) -> Key {
    let mut k = [0; 24];
    k[..16].copy_from_slice(trace);
    k[16..].copy_from_slice(id);
    k
}

/// What a request or a sweep changes: calls to store and held spans to write.
#[derive(Debug, Default)]
pub struct Changes {
    /// Calls completed.
    pub calls: Vec<CallRecord>,
    /// Held spans to put and delete.
    pub held: HeldChanges,
    /// Spans let go without making a call (no partner within the window and nothing
    /// to name the callee by).
    pub unpaired: u64,
}

/// Spans waiting for their partners.
#[derive(Debug, Default)]
pub struct Pairing {
    held: HashMap<Key, Held>,
    /// Server spans by the parent they wait for.
    waiting: HashMap<Key, Vec<Key>>,
    window_s: i64,
}

impl Pairing {
    /// Pairing with the spans held in the store.
    pub fn load(stored: Vec<crate::store::HeldRow>, window_s: i64) -> Result<Pairing, String> {
        let mut p = Pairing {
            window_s,
            ..Default::default()
        };
        for (k, v) in stored {
            let k: Key = k
                .as_slice()
                .try_into()
                .map_err(|_| "a held span's key is not 24 bytes".to_string())?;
            let held: Held = serde_json::from_slice(&v)
                .map_err(|e| format!("a held span cannot be read: {e}"))?;
            p.held.insert(k, held);
        }
        let waits: Vec<(Key, Key)> = p
            .held
            .iter()
            .filter(|(_, h)| h.kind == SERVER && !h.paired)
            .filter_map(|(k, h)| {
                let parent = unhex(h.parent.as_deref()?, "parent").ok()?;
                let mut pk = *k;
                pk[16..].copy_from_slice(&parent);
                (!p.held.contains_key(&pk)).then_some((pk, *k))
            })
            .collect();
        for (parent, child) in waits {
            p.waiting.entry(parent).or_default().push(child);
        }
        Ok(p)
    }

    /// Spans held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Adds the spans of a request: the calls they complete, and the spans to hold.
    pub fn add(&mut self, spans: Vec<SpanIn>) -> Changes {
        let mut changes = Changes::default();
        let mut touched: Vec<Key> = Vec::new();
        for span in spans {
            let k = key(&span.trace, &span.id);
            if self.held.contains_key(&k) {
                // A repeated export of the same span: counted once.
                continue;
            }
            let server = span.held.kind == SERVER;
            self.held.insert(k, span.held);
            touched.push(k);
            if server && let Some(parent) = span.parent {
                let pk = key(&span.trace, &parent);
                if self.held.contains_key(&pk) {
                    self.pair(pk, k, &mut changes, &mut touched);
                } else {
                    self.waiting.entry(pk).or_default().push(k);
                }
            }
            if let Some(children) = self.waiting.remove(&k) {
                for child in children {
                    self.pair(k, child, &mut changes, &mut touched);
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for k in touched {
            if let Some(h) = self.held.get(&k) {
                changes.held.put.push((
                    k.to_vec(),
                    serde_json::to_vec(h).expect("a held span serialises"),
                ));
            }
        }
        changes
    }

    /// Counts the call from `parent` to the server span `child`, if they are in
    /// different services.
    fn pair(&mut self, parent: Key, child: Key, changes: &mut Changes, touched: &mut Vec<Key>) {
        let (Some(p), Some(c)) = (self.held.get(&parent), self.held.get(&child)) else {
            return;
        };
        if p.service == c.service || c.paired || (p.kind == CLIENT && p.paired) {
            return;
        }
        // Through a client span, its own duration (the network included); otherwise
        // the server span's.
        let (via, error) = if p.kind == CLIENT {
            (p, p.error || c.error)
        } else {
            (c, c.error)
        };
        changes.calls.push(call(
            via.start_ns,
            via.duration_ns,
            error,
            (&p.service, &p.instance),
            (&c.service, &c.instance),
            &c.method,
        ));
        if p.kind == CLIENT
            && let Some(p) = self.held.get_mut(&parent)
        {
            p.paired = true;
            touched.push(parent);
        }
        if let Some(c) = self.held.get_mut(&child) {
            c.paired = true;
            touched.push(child);
        }
    }

    /// Lets go of spans held longer than the window at `now`: a client span that
    /// never met its server becomes a call to the peer it names.
    pub fn expire(&mut self, now: i64) -> Changes {
        let mut changes = Changes::default();
        let old: Vec<Key> = self
            .held
            .iter()
            .filter(|(_, h)| now - h.arrived > self.window_s)
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            let h = self.held.remove(&k).expect("listed above");
            changes.held.delete.push(k.to_vec());
            if h.kind == CLIENT && !h.paired {
                match &h.peer {
                    Some(peer) if *peer != h.service => changes.calls.push(call(
                        h.start_ns,
                        h.duration_ns,
                        h.error,
                        (&h.service, &h.instance),
                        (peer, peer),
                        &h.method,
                    )),
                    _ => changes.unpaired += 1,
                }
            } else if h.kind == SERVER && !h.paired && h.parent.is_some() {
                changes.unpaired += 1;
            }
        }
        let held = &self.held;
        self.waiting.retain(|_, children| {
            children.retain(|c| held.contains_key(c));
            !children.is_empty()
        });
        changes
    }
}

fn call(
    start_ns: u64,
    duration_ns: u64,
    error: bool,
    (src_service, src): (&str, &str),
    (dst_service, dst): (&str, &str),
    method: &str,
) -> CallRecord {
    CallRecord {
        ts: (start_ns / 1_000_000_000) as i64,
        src: src.to_string(),
        dst: dst.to_string(),
        method: Some(method.to_string()),
        requests: 1,
        errors: u64::from(error),
        latency_ms_sum: duration_ns as f64 / 1e6,
        interval_s: None,
        src_service: Some(src_service.to_string()),
        dst_service: Some(dst_service.to_string()),
    }
}

/// Bucket, servers, method and services of a call.
type FoldKey = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Folds calls of the same bucket, sides and method into one record each.
pub fn fold(calls: Vec<CallRecord>, width: graph_core::model::BucketWidth) -> Vec<CallRecord> {
    let mut out: HashMap<FoldKey, CallRecord> = HashMap::new();
    for c in calls {
        let k = (
            width.floor(c.ts),
            c.src.clone(),
            c.dst.clone(),
            c.method.clone(),
            c.src_service.clone(),
            c.dst_service.clone(),
        );
        match out.get_mut(&k) {
            Some(r) => {
                r.requests += c.requests;
                r.errors += c.errors;
                r.latency_ms_sum += c.latency_ms_sum;
            }
            None => {
                out.insert(k.clone(), CallRecord { ts: k.0, ..c });
            }
        }
    }
    let mut v: Vec<CallRecord> = out.into_values().collect();
    v.sort_by(|a, b| (a.ts, &a.src, &a.dst, &a.method).cmp(&(b.ts, &b.src, &b.dst, &b.method)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn span(id: u8, parent: Option<u8>, kind: i32, service: &str, ms: u64, error: bool) -> SpanIn {
        let start = NOW as u64 * 1_000_000_000 + u64::from(id) * 1000;
        SpanIn {
            trace: [7; 16],
            id: [id; 8],
            parent: parent.map(|p| [p; 8]),
            held: Held {
                service: service.into(),
                instance: format!("{service}-1"),
                kind,
                start_ns: start,
                duration_ns: ms * 1_000_000,
                error,
                method: format!("m{id}"),
                peer: (kind == CLIENT).then(|| "postgres".to_string()),
                parent: parent.map(|p| hex([p; 8])),
                paired: false,
                arrived: NOW,
            },
        }
    }

    fn sides(c: &CallRecord) -> (&str, &str, u64, u64, f64) {
        (
            c.src_service.as_deref().unwrap(),
            c.dst_service.as_deref().unwrap(),
            c.requests,
            c.errors,
            c.latency_ms_sum,
        )
    }

    #[test]
    fn a_client_span_and_its_server_child_make_one_call_in_either_order_and_batch() {
        for order in [[0, 1], [1, 0]] {
            let spans = [
                span(1, None, CLIENT, "web", 30, false),
                span(2, Some(1), SERVER, "api", 20, true),
            ];
            // Together in one request.
            let mut p = Pairing::load(vec![], 60).unwrap();
            let c = p.add(order.iter().map(|&i| spans[i].clone()).collect());
            assert_eq!(c.calls.len(), 1);
            assert_eq!(sides(&c.calls[0]), ("web", "api", 1, 1, 30.0));
            assert_eq!(c.calls[0].method.as_deref(), Some("m2"));
            // In two requests, with a restart (reload from what was stored) between.
            let mut p = Pairing::load(vec![], 60).unwrap();
            let first = p.add(vec![spans[order[0]].clone()]);
            assert!(first.calls.is_empty());
            let stored = first.held.put.clone();
            let mut p = Pairing::load(stored, 60).unwrap();
            let second = p.add(vec![spans[order[1]].clone()]);
            assert_eq!(second.calls.len(), 1, "order {order:?}");
            assert_eq!(sides(&second.calls[0]), ("web", "api", 1, 1, 30.0));
            // A repeated export counts nothing twice.
            assert!(p.add(spans.to_vec()).calls.is_empty());
        }
    }

    #[test]
    fn calls_inside_one_service_are_not_edges_and_a_server_under_a_foreign_internal_span_is() {
        let mut p = Pairing::load(vec![], 60).unwrap();
        let c = p.add(vec![
            span(1, None, CLIENT, "web", 30, false),
            span(2, Some(1), SERVER, "web", 20, false),
            span(3, None, 1, "gateway", 50, false),
            span(4, Some(3), SERVER, "auth", 12, false),
        ]);
        assert_eq!(c.calls.len(), 1);
        assert_eq!(sides(&c.calls[0]), ("gateway", "auth", 1, 0, 12.0));
    }

    #[test]
    fn an_unanswered_client_span_calls_its_peer_after_the_window_and_orphans_are_counted() {
        let mut p = Pairing::load(vec![], 60).unwrap();
        let mut lonely = span(1, None, CLIENT, "orders", 8, false);
        lonely.held.peer = Some("postgres".into());
        let mut anonymous = span(2, None, CLIENT, "orders", 8, false);
        anonymous.held.peer = None;
        let orphan = span(3, Some(99), SERVER, "api", 5, false);
        p.add(vec![lonely, anonymous, orphan]);
        assert!(
            p.expire(NOW + 60).calls.is_empty(),
            "still within the window"
        );
        let c = p.expire(NOW + 61);
        assert_eq!(c.calls.len(), 1);
        assert_eq!(sides(&c.calls[0]), ("orders", "postgres", 1, 0, 8.0));
        assert_eq!((c.unpaired, c.held.delete.len(), p.held()), (2, 3, 0));
    }

    #[test]
    fn bad_spans_are_refused_one_by_one_with_the_reason() {
        let limits = crate::ingest::Limits::around(NOW);
        let body = format!(
            r#"{{"resourceSpans": [{{"resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "web"}}}}]}},
              "scopeSpans": [{{"spans": [
                {{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "kind": 3, "name": "GET",
                  "startTimeUnixNano": "{s}", "endTimeUnixNano": {e}}},
                {{"traceId": "0102", "spanId": "0102030405060708", "kind": 3, "startTimeUnixNano": "{s}", "endTimeUnixNano": "{s}"}},
                {{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060709", "kind": 2,
                  "startTimeUnixNano": "{e}", "endTimeUnixNano": "{s}"}}
              ]}}]}}]}}"#,
            s = NOW as u64 * 1_000_000_000,
            e = NOW as u64 * 1_000_000_000 + 5_000_000,
        );
        let d = decode_json(body.as_bytes(), NOW, &limits, 10).unwrap();
        assert_eq!(d.spans.len(), 1);
        assert_eq!(d.spans[0].held.duration_ns, 5_000_000);
        assert_eq!(d.spans[0].held.method, "GET");
        let reasons: Vec<_> = d
            .refused
            .iter()
            .map(|r| (r.index, r.message.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "traceId has 2 bytes, not 16"),
                (2, "endTimeUnixNano is before startTimeUnixNano")
            ]
        );
        assert!(matches!(
            decode_json(body.as_bytes(), NOW, &limits, 2).unwrap_err(),
            DecodeError::TooMany(m) if m.contains("at most 2")
        ));
    }
}
