//! `GET /api/v1/analysis?tick=TIME`: the pruned graph, ranking, links and layout of one
//! tick (the latest when `tick` is left out).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use graph_core::api::AnalysisResponse;
use serde::Deserialize;

use crate::AppState;
use crate::error::AppError;
use crate::ingest::timefmt::parse_time;

/// Query parameters.
#[derive(Debug, Deserialize)]
pub struct AnalysisQuery {
    /// RFC 3339 or Unix seconds.
    pub tick: Option<String>,
}

/// The handler.
pub async fn analysis(
    State(state): State<AppState>,
    Query(q): Query<AnalysisQuery>,
) -> Result<Json<Arc<AnalysisResponse>>, AppError> {
    let tick = q
        .tick
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|m| AppError::BadRequest {
            message: format!("query parameter \"tick\": {m}"),
            details: vec![],
        })?;
    let store = state.store.clone();
    let analyzer = state.analyzer.clone();
    let result = tokio::task::spawn_blocking(move || analyzer.at(store.as_ref(), tick))
        .await
        .map_err(|e| AppError::Internal(e.into()))??;
    Ok(Json(result))
}
