//! `GET /api/v1/health` and `GET /healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use graph_core::api::Health;

use crate::{AppState, VERSION};

/// Version, uptime and store status.
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let store = state.store.clone();
    let store = tokio::task::spawn_blocking(move || store.health())
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "health check task failed");
            graph_core::api::StoreHealth {
                status: "error".into(),
                kind: "unknown".into(),
                location: String::new(),
                size_bytes: None,
            }
        });
    Json(Health {
        version: VERSION.to_string(),
        uptime_s: state.started.elapsed().as_secs(),
        store,
    })
}

/// Liveness for load balancers: `200 ok` while the store answers, `503` otherwise.
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.health().status == "ok").await {
        Ok(true) => (StatusCode::OK, "ok\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}
