//! Ingestion with a token of scope `ingest`: `POST /api/v1/ingest/calls` (call
//! statistics) and `POST /api/v1/ingest/activity` (site-wide activity), both NDJSON.
//! A batch is stored entirely, durably, before the answer, or not at all.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::{blocking, read_body, require_media_type};
use crate::AppState;
use crate::analysis::unix_now;
use crate::auth::{Caller, Scope};
use crate::error::AppError;
use crate::ingest::Limits;
use crate::ingest::service::Accepted;
use crate::ingest::values::read_object;

/// Media types accepted for call statistics.
pub const NDJSON_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
];

/// Reads an NDJSON body: checks the media type, the size and UTF-8.
async fn ndjson_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<String, AppError> {
    require_media_type(headers, &NDJSON_TYPES)?;
    let body = read_body(body, state.max_body_bytes).await?;
    String::from_utf8(body.to_vec()).map_err(|e| AppError::BadRequest {
        message: format!(
            "the body is not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ),
        details: vec![],
    })
}

/// `POST /api/v1/ingest/calls`.
pub async fn calls(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body,
) -> Result<Json<Accepted>, AppError> {
    let token = caller.require(Scope::Ingest)?;
    let text = ndjson_body(&state, &headers, body).await?;
    let now = unix_now();
    let s = state.clone();
    let outcome = blocking(move || {
        let mut ingest = s.ingest.lock().expect("ingest lock");
        let mut limits = Limits::around(now);
        limits.max_interval_s = s.store.bucket_width().seconds() as u32;
        ingest.apply(s.store.as_ref(), &text, &limits, Some(&token.name))
    })
    .await;
    let counters = &state.counters;
    let accepted = outcome.inspect_err(|e| {
        if matches!(e, AppError::BadRequest { .. }) {
            counters.batches_rejected.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    state.ingested(&accepted);
    Ok(Json(accepted))
}

/// The fields of a line of `POST /api/v1/ingest/activity`.
pub const ACTIVITY_FIELDS: [&str; 2] = ["ts", "value"];

/// The answer to an accepted activity batch.
#[derive(Debug, Serialize, Deserialize)]
pub struct ActivityAccepted {
    /// Buckets set.
    pub accepted: usize,
}

/// Parses activity lines into (bucket, value) points; blank lines are skipped. Every
/// error names its line, and its field when one is at fault.
///
/// # Complexity
/// O(bytes).
///
/// ```
/// use epicenter_backend::handlers::ingest::parse_activity;
/// use epicenter_backend::ingest::Limits;
/// use graph_core::model::BucketWidth;
/// let (limits, width) = (Limits::around(1_000_000), BucketWidth::FIVE_MINUTES);
/// let points = parse_activity(r#"{"ts": 999999, "value": 12.5}"#, &limits, width).unwrap();
/// assert_eq!(points, vec![(999_900, 12.5)]);
/// let errors = parse_activity("\n{\"ts\": 999999, \"value\": 1e999}", &limits, width).unwrap_err();
/// assert_eq!(errors, ["line 2: field \"value\": not valid JSON: number out of range at column 29"]);
/// ```
pub fn parse_activity(
    text: &str,
    limits: &Limits,
    width: graph_core::model::BucketWidth,
) -> Result<Vec<(i64, f64)>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = match read_object(line) {
            Ok(fields) => fields,
            Err(e) => {
                errors.push(match e.field() {
                    Some(f) => format!("line {n}: field \"{f}\": {e}"),
                    None => format!("line {n}: {e}"),
                });
                continue;
            }
        };
        if let Some(k) = fields
            .keys()
            .find(|k| !ACTIVITY_FIELDS.contains(&k.as_str()))
        {
            errors.push(format!(
                "line {n}: field \"{k}\": unknown field; the fields are {}",
                ACTIVITY_FIELDS.join(", ")
            ));
            continue;
        }
        let (Some(ts), Some(value)) = (fields.get("ts"), fields.get("value")) else {
            let missing = if fields.contains_key("ts") {
                "value"
            } else {
                "ts"
            };
            errors.push(format!("line {n}: field \"{missing}\": is missing"));
            continue;
        };
        let ts = match crate::ingest::values::time_value(ts) {
            Ok(t) if t > limits.now.saturating_add(limits.max_future_s) => Err(format!(
                "{t} is more than {} s in the future",
                limits.max_future_s
            )),
            Ok(t) if t < limits.now.saturating_sub(limits.max_age_s) => Err(format!(
                "{t} is older than the retention window ({} s)",
                limits.max_age_s
            )),
            other => other,
        };
        let value = match value.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            Some(v) => Err(format!("{v} is negative or not finite")),
            None => Err(format!("expected a number, got {value}")),
        };
        match (ts, value) {
            (Ok(t), Ok(v)) => out.push((width.floor(t), v)),
            (Err(m), _) => errors.push(format!("line {n}: field \"ts\": {m}")),
            (_, Err(m)) => errors.push(format!("line {n}: field \"value\": {m}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `POST /api/v1/ingest/activity`: `{"ts": ..., "value": ...}` per line, the site-wide
/// activity of the bucket starting at `ts` (the latest value sent for a bucket wins).
pub async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body,
) -> Result<Json<ActivityAccepted>, AppError> {
    caller.require(Scope::Ingest)?;
    let text = ndjson_body(&state, &headers, body).await?;
    let now = unix_now();
    blocking(move || {
        let store = state.store.as_ref();
        let points = parse_activity(&text, &Limits::around(now), store.bucket_width()).map_err(
            |errors| AppError::BadRequest {
                message: format!("{} lines are invalid; nothing was stored", errors.len()),
                details: errors,
            },
        )?;
        store.put_activity(&points, true)?;
        let ticks: Vec<i64> = points.iter().map(|p| p.0).collect();
        state.analyzer.forget(&ticks);
        state.detector.touched(&ticks);
        Ok(Json(ActivityAccepted {
            accepted: points.len(),
        }))
    })
    .await
}
