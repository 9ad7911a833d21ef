//! Operations with a token of scope `write`: analysing a range on demand (backfill)
//! and reloading the topology file.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::blocking;
use crate::AppState;
use crate::analysis::unix_now;
use crate::auth::{Caller, Scope};
use crate::error::AppError;
use crate::topology::Topology;

/// Most ticks one on-demand run may analyse (a week of 5-minute buckets).
pub const MAX_RUN_TICKS: i64 = 2016;

/// Body of `POST /api/v1/analysis/run`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// First tick: RFC 3339 or Unix seconds.
    pub from: serde_json::Value,
    /// Last tick (inclusive); `from` when left out.
    #[serde(default)]
    pub to: Option<serde_json::Value>,
}

/// What a run did.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// Ticks analysed and stored.
    pub analysed: usize,
    /// First tick.
    pub from: i64,
    /// Last tick.
    pub to: i64,
    /// Wall time, milliseconds.
    pub duration_ms: f64,
}

fn time_value(name: &str, v: &serde_json::Value) -> Result<i64, AppError> {
    crate::ingest::values::time_value(v).map_err(|m| AppError::BadRequest {
        message: format!("field \"{name}\": {m}"),
        details: vec![],
    })
}

/// `POST /api/v1/analysis/run`: analyses every tick in a range now and stores the
/// results, replacing earlier ones (after changing configuration or importing late
/// data).
pub async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<RunReport>, AppError> {
    caller.require(Scope::Write)?;
    super::require_media_type(&headers, &["application/json"])?;
    let body = super::read_body(body, 64 * 1024).await?;
    let req: RunRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        message: format!("the body is not a valid run request: {e}"),
        details: vec![],
    })?;
    let from = time_value("from", &req.from)?;
    let to = req.to.as_ref().map(|t| time_value("to", t)).transpose()?;
    blocking(move || {
        let store = state.store.as_ref();
        let width = store.bucket_width();
        let (from, _, _) = state.analyzer.resolve(store, Some(from))?;
        let to = match to {
            Some(t) => state.analyzer.resolve(store, Some(t))?.0,
            None => from,
        };
        let count = (to - from) / width.seconds() + 1;
        if !(1..=MAX_RUN_TICKS).contains(&count) {
            return Err(AppError::BadRequest {
                message: format!(
                    "the range holds {count} ticks; give 1 to {MAX_RUN_TICKS} (from before to)"
                ),
                details: vec![],
            });
        }
        let started = Instant::now();
        let now = unix_now();
        for i in 0..count {
            state.analyzer.run(store, from + i * width.seconds(), now)?;
        }
        Ok(Json(RunReport {
            analysed: count as usize,
            from,
            to,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        }))
    })
    .await
}

/// What a reload did.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The file read.
    pub source: String,
}

/// The body of `POST /api/v1/topology/reload`: an empty JSON object. Asking for one
/// (with `Content-Type: application/json`) means a plain HTML form of another site
/// cannot send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {}

/// `POST /api/v1/topology/reload`: reads the configured topology file again. On any
/// error the running topology stays in place and the error names the file and entry.
pub async fn reload_topology(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<ReloadReport>, AppError> {
    caller.require(Scope::Write)?;
    super::require_media_type(&headers, &["application/json"])?;
    let body = super::read_body(body, 1024).await?;
    let _: ReloadRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        message: format!("the body must be an empty JSON object, {{}}: {e}"),
        details: vec![],
    })?;
    let Some(path) = state.topology_path.clone() else {
        return Err(AppError::BadRequest {
            message:
                "no topology file is configured (ingest.topology): every server is its own cluster"
                    .into(),
            details: vec![],
        });
    };
    blocking(move || {
        let topology = Topology::load(&path).map_err(|e| AppError::BadRequest {
            message: format!("the topology was not reloaded: {e}"),
            details: vec![],
        })?;
        state.analyzer.set_key_edges(topology.detect_key_edges());
        state
            .ingest
            .lock()
            .expect("ingest lock")
            .set_topology(topology);
        tracing::info!(path = %path.display(), "topology reloaded");
        Ok(Json(ReloadReport {
            source: path.display().to_string(),
        }))
    })
    .await
}
