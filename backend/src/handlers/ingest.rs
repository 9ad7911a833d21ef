//! `POST /api/v1/ingest/calls`: call statistics as NDJSON, with a token of scope
//! `ingest`. The batch is stored entirely, durably, before the answer, or not at all.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use crate::AppState;
use crate::auth::{Scope, require};
use crate::error::AppError;
use crate::ingest::Limits;
use crate::ingest::service::Accepted;

/// Media types accepted for call statistics.
pub const NDJSON_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
];

/// The handler.
pub async fn calls(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, AppError> {
    let store = state.store.clone();
    let auth_store = store.clone();
    let auth_headers = headers.clone();
    tokio::task::spawn_blocking(move || require(auth_store.as_ref(), &auth_headers, Scope::Ingest))
        .await
        .map_err(|e| AppError::Internal(e.into()))??;
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !NDJSON_TYPES.contains(&essence.as_str()) {
        return Err(AppError::UnsupportedMediaType(format!(
            "content type {media:?} is not accepted; send one JSON object per line as {}",
            NDJSON_TYPES.join(" or ")
        )));
    }
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(inner) if inner.to_string().contains("length limit") => {
            AppError::PayloadTooLarge(format!(
                "the body is larger than {} bytes; send smaller batches",
                state.max_body_bytes
            ))
        }
        other => AppError::BadRequest {
            message: format!("cannot read the body: {other}"),
            details: vec![],
        },
    })?;
    let text = String::from_utf8(body.to_vec()).map_err(|e| AppError::BadRequest {
        message: format!(
            "the body is not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ),
        details: vec![],
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| AppError::Internal(e.into()))?
        .as_secs() as i64;
    let ingest = state.ingest.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut ingest = ingest.lock().expect("ingest lock");
        let mut limits = Limits::around(now);
        limits.max_interval_s = store.bucket_width().seconds() as u32;
        ingest.apply(store.as_ref(), &text, &limits)
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let counters = &state.counters;
    let accepted = outcome.inspect_err(|e| {
        if matches!(e, AppError::BadRequest { .. }) {
            counters.batches_rejected.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    counters.batches_accepted.fetch_add(1, Ordering::Relaxed);
    counters
        .records_accepted
        .fetch_add(accepted.accepted, Ordering::Relaxed);
    counters
        .records_unmapped
        .fetch_add(accepted.unmapped_records, Ordering::Relaxed);
    state.analyzer.forget(&accepted.ticks);
    Ok(Json(accepted))
}
