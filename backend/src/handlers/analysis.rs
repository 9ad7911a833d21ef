//! `GET /api/v1/analysis?tick=TIME`: the pruned graph, ranking, links and layout of one
//! tick (the live tick when `tick` is left out), from the stored analysis.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::query::TickQuery;
use super::{Params, blocking, time_param};
use crate::AppState;
use crate::error::AppError;

/// The handler. Answers are serialized once per tick and data version.
pub async fn analysis(
    State(state): State<AppState>,
    Params(q): Params<TickQuery>,
) -> Result<impl IntoResponse, AppError> {
    let tick = time_param("tick", q.tick.as_deref())?;
    let body = blocking(move || state.analyzer.at_json(state.store.as_ref(), tick)).await?;
    Ok(([(CONTENT_TYPE, "application/json")], body))
}
