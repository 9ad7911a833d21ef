//! `POST /v1/traces`: the OTLP/HTTP traces receiver (protobuf or JSON, optionally
//! gzip), with a token of scope `ingest`. The calls a request completes and the spans
//! it leaves waiting for their partners are stored in one durable transaction before
//! the answer. Errors answer with a `google.rpc.Status` in the request's encoding,
//! and a status an exporter retries (429, 503) only when retrying can help.

use std::io::Read;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;

use super::read_body;
use crate::AppState;
use crate::analysis::unix_now;
use crate::auth::{Caller, Scope};
use crate::config::OtlpConfig;
use crate::error::AppError;
use crate::ingest::Limits;
use crate::sources::otlp::{
    Changes, DecodeError, Decoded, Pairing, decode_json, decode_protobuf, fold, proto,
};

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn media_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// The handler.
pub async fn traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body,
) -> Response {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            return status(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type {media:?} is not accepted here; send application/x-protobuf or application/json"
                ),
            );
        }
    };
    match receive(&state, &headers, caller, body, encoding).await {
        Ok(resp) => resp,
        Err(e) => {
            let code = match &e {
                AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
                AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
                // A store that cannot write now may later: the exporter retries.
                AppError::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            let message = match &e {
                AppError::BadRequest { message, details } if !details.is_empty() => {
                    format!("{message}: {}", details.join("; "))
                }
                AppError::Internal(inner) => {
                    tracing::error!(error = %inner, "storing traces failed");
                    "storing the traces failed; try again".to_string()
                }
                other => other.to_string(),
            };
            status(encoding, code, message)
        }
    }
}

/// An error answer: `google.rpc.Status` in `encoding`.
fn status(encoding: Encoding, code: StatusCode, message: String) -> Response {
    // gRPC codes, as the OTLP specification maps HTTP statuses.
    let rpc = match code {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 3,
    };
    let body = match encoding {
        Encoding::Protobuf => proto::RpcStatus { code: rpc, message }.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": rpc, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut resp = (code, [(CONTENT_TYPE, encoding.media_type())], body).into_response();
    if code == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
    }
    resp
}

/// Undoes `Content-Encoding: gzip`, reading at most `limit` bytes.
fn inflate(
    headers: &HeaderMap,
    body: axum::body::Bytes,
    limit: usize,
) -> Result<Vec<u8>, AppError> {
    let coding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "identity" | "" => Ok(body.to_vec()),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| AppError::BadRequest {
                    message: format!("the body is not valid gzip: {e}"),
                    details: vec![],
                })?;
            if out.len() > limit {
                return Err(AppError::PayloadTooLarge(format!(
                    "the body is larger than {limit} bytes once unzipped (otlp.max_body_bytes); send smaller batches"
                )));
            }
            Ok(out)
        }
        other => Err(AppError::UnsupportedMediaType(format!(
            "content encoding {other:?} is not accepted here; send gzip or none"
        ))),
    }
}

async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    caller: Caller,
    body: Body,
    encoding: Encoding,
) -> Result<Response, AppError> {
    let token = caller.require(Scope::Ingest)?;
    let config: &OtlpConfig = &state.otlp_config;
    let (limit, max_spans) = (config.max_body_bytes, config.max_spans);
    let raw = read_body(body, limit).await?;
    let body = inflate(headers, raw, limit)?;
    let now = unix_now();
    let s = state.clone();
    let (received, refused) = super::blocking(move || {
        let mut limits = Limits::around(now);
        limits.max_interval_s = s.store.bucket_width().seconds() as u32;
        let decoded = match encoding {
            Encoding::Protobuf => decode_protobuf(&body, now, &limits, max_spans),
            Encoding::Json => decode_json(&body, now, &limits, max_spans),
        }
        .map_err(|e| match e {
            DecodeError::Invalid(message) => AppError::BadRequest {
                message,
                details: vec![],
            },
            DecodeError::TooMany(message) => AppError::PayloadTooLarge(message),
        })?;
        let Decoded { spans, refused } = decoded;
        let received = spans.len();
        let mut pairing = s.otlp.lock().expect("otlp lock");
        let changes = pairing.add(spans);
        store(&s, &mut pairing, changes, Some(&token.name), now)?;
        Ok((received, refused))
    })
    .await?;
    let c = &state.counters;
    c.spans_received
        .fetch_add((received + refused.len()) as u64, Ordering::Relaxed);
    c.spans_refused
        .fetch_add(refused.len() as u64, Ordering::Relaxed);
    let partial = (!refused.is_empty()).then(|| {
        let mut reasons: Vec<String> = refused
            .iter()
            .take(5)
            .map(|r| format!("span {}: {}", r.index, r.message))
            .collect();
        if refused.len() > 5 {
            reasons.push(format!("and {} more", refused.len() - 5));
        }
        proto::ExportTracePartialSuccess {
            rejected_spans: refused.len() as i64,
            error_message: reasons.join("; "),
        }
    });
    let body = match encoding {
        Encoding::Protobuf => proto::ExportTraceServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => match partial {
            Some(p) => serde_json::json!({
                "partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }
            }),
            None => serde_json::json!({}),
        }
        .to_string()
        .into_bytes(),
    };
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, encoding.media_type())],
        body,
    )
        .into_response())
}

/// Stores the calls `changes` made, summed per bucket, with the changes to the held
/// spans, in one durable transaction; `source` is the token that sent them. Returns
/// how many calls were made. When the store refuses, nothing was written and the
/// pairing goes back to what the store holds.
fn store(
    state: &AppState,
    pairing: &mut Pairing,
    changes: Changes,
    source: Option<&str>,
    now: i64,
) -> Result<u64, AppError> {
    let made = changes.calls.len() as u64;
    let calls = fold(changes.calls, state.store.bucket_width());
    let outcome = state.ingest.lock().expect("ingest lock").apply_traced(
        state.store.as_ref(),
        &calls,
        now,
        source,
        changes.held,
    );
    match outcome {
        Ok(accepted) => {
            let c = &state.counters;
            c.span_calls.fetch_add(made, Ordering::Relaxed);
            c.spans_unpaired
                .fetch_add(changes.unpaired, Ordering::Relaxed);
            state.ingested(&accepted);
            Ok(made)
        }
        Err(e) => {
            *pairing = Pairing::load(state.store.held_spans()?, state.otlp_config.pair_window_s)
                .map_err(|m| AppError::Internal(anyhow::anyhow!(m)))?;
            Err(e)
        }
    }
}

/// Lets go of spans held past the pairing window at `now`, storing the calls that
/// makes (a client span to an uninstrumented peer).
pub fn sweep(state: &AppState, now: i64) -> Result<(), AppError> {
    let mut pairing = state.otlp.lock().expect("otlp lock");
    let changes = pairing.expire(now);
    if changes.held.delete.is_empty() {
        return Ok(());
    }
    store(state, &mut pairing, changes, None, now).map(|_| ())
}
