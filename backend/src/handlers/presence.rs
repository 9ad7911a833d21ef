//! `/api/v1/presence`: who is looking at which edge.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use graph_core::api::PresenceView;
use serde::Deserialize;

use super::{read_body, require_media_type};
use crate::AppState;
use crate::analysis::{ServerEvent, unix_now};
use crate::auth::{Caller, Scope};
use crate::error::AppError;

/// The body of `POST /api/v1/presence`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The selected edge, `caller>callee`, or `null`.
    pub edge: Option<String>,
}

/// `GET /api/v1/presence`: everyone signed in and looking, with their selected edge.
pub async fn list(State(state): State<AppState>) -> Json<Vec<PresenceView>> {
    Json(state.presence.list(unix_now()))
}

/// `POST /api/v1/presence`: the caller (signed in, scope `read`) looks at an edge, or at
/// none. Browsers send it when the selection changes and every 20 s; when what others
/// see changes, every open browser gets a `presence` event.
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<Vec<PresenceView>>, AppError> {
    let who = caller.require(Scope::Read)?;
    require_media_type(&headers, &["application/json"])?;
    let body = read_body(body, 4 * 1024).await?;
    let report: Report = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        message: format!("the body must be {{\"edge\": \"caller>callee\" or null}}: {e}"),
        details: vec![],
    })?;
    if let Some(e) = &report.edge
        && (e.len() > 512 || !e.contains('>'))
    {
        return Err(AppError::BadRequest {
            message: "field \"edge\": write it as caller>callee".into(),
            details: vec![],
        });
    }
    let now = unix_now();
    let changed = state
        .presence
        .set(&who.name, &who.display_name, report.edge, now);
    let swept = state.presence.sweep(now);
    let list = state.presence.list(now);
    if changed || swept {
        state
            .analyzer
            .events
            .send(ServerEvent::Presence(list.clone()));
    }
    Ok(Json(list))
}
