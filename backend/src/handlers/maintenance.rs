//! `GET /api/v1/maintenance`, `PUT /api/v1/maintenance/{dc}` and
//! `GET /api/v1/analysis/config`: the maintenance switch per data centre (audited) and
//! the thresholds analyses run with.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use graph_core::api::{DcMaintenance, MaintenanceRequest, MaintenanceView};
use serde::Serialize;

use crate::AppState;
use crate::analysis::unix_now;
use crate::auth::{Caller, Scope};
use crate::error::AppError;
use crate::maintenance::{MaintenanceRecord, check_dc, is_on};

use super::{blocking, read_body, require_media_type};

/// Longest reason accepted, in characters.
const MAX_REASON: usize = 500;
/// Switches listed in [`MaintenanceView::log`].
const LOG_LEN: usize = 50;

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest {
        message: message.into(),
        details: vec![],
    }
}

/// The state of every data centre the data or a switch names.
fn view(state: &AppState) -> Result<MaintenanceView, AppError> {
    let store = state.store.as_ref();
    let registry = state.analyzer.registry(store)?;
    let configured = state.analyzer.config().detect.maintenance.clone();
    let switches = state.analyzer.switches();
    let mut names: Vec<String> = registry
        .catalog
        .iter()
        .filter_map(|(_, c)| c.dc.clone())
        .chain(switches.keys().cloned())
        .chain(configured.dcs.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    let dcs = names
        .into_iter()
        .map(|dc| DcMaintenance {
            on: is_on(&configured, &switches, &dc),
            switch: switches.get(&dc).cloned(),
            dc,
        })
        .collect();
    let mut log = store.maintenance_log()?;
    log.reverse();
    log.truncate(LOG_LEN);
    Ok(MaintenanceView {
        dcs,
        services: configured.services,
        log,
    })
}

/// `GET /api/v1/maintenance`: which data centres are in maintenance mode, since which
/// switch, and the latest switches.
pub async fn list(State(state): State<AppState>) -> Result<Json<MaintenanceView>, AppError> {
    blocking(move || view(&state).map(Json)).await
}

/// `PUT /api/v1/maintenance/{dc}` (scope `write`): switches maintenance mode on or off
/// for one data centre, with a reason. The switch is stored durably before the answer,
/// as an audit record, and the newest tick is analysed again with it.
pub async fn switch(
    State(state): State<AppState>,
    Path(dc): Path<String>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<MaintenanceView>, AppError> {
    let who = caller.require(Scope::Write)?;
    require_media_type(&headers, &["application/json"])?;
    let body = read_body(body, 4 * 1024).await?;
    check_dc(&dc).map_err(bad)?;
    let req: MaintenanceRequest = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "the body must be {{\"on\": bool, \"reason\": text}}: {e}"
        ))
    })?;
    let reason = req.reason.trim().to_string();
    if reason.is_empty() {
        return Err(bad(
            "field \"reason\": say why (it is shown to everyone with the switch)",
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(bad(format!(
            "field \"reason\": at most {MAX_REASON} characters"
        )));
    }
    blocking(move || {
        let store = state.store.as_ref();
        let mut record = MaintenanceRecord {
            seq: 0,
            dc,
            on: req.on,
            by: who.name.clone(),
            at: unix_now(),
            reason,
        };
        record.seq = store.append_maintenance(&record)?;
        tracing::info!(
            dc = %record.dc,
            on = record.on,
            by = %record.by,
            seq = record.seq,
            "maintenance mode switched"
        );
        state.analyzer.switch(record);
        if let Some((_, latest)) = state.analyzer.range(store)? {
            super::marks::reanalyse(&state, latest, latest, unix_now())?;
        }
        view(&state).map(Json)
    })
    .await
}

/// `GET /api/v1/analysis/config`: what analyses run with.
#[derive(Debug, Serialize)]
pub struct AnalysisSettings {
    /// Bucket width of the store, seconds.
    pub bucket_width_s: i64,
    /// Every threshold of detection, pruning, linking and ranking, as configured, with
    /// the maintenance switches applied (`detect.maintenance`).
    pub analysis: graph_core::analyze::AnalysisConfig,
}

/// `GET /api/v1/analysis/config`: every threshold in use.
pub async fn settings(State(state): State<AppState>) -> Result<Json<AnalysisSettings>, AppError> {
    blocking(move || {
        let store = state.store.as_ref();
        let registry = state.analyzer.registry(store)?;
        Ok(Json(AnalysisSettings {
            bucket_width_s: store.bucket_width().seconds(),
            analysis: state.analyzer.effective_config(&registry.catalog),
        }))
    })
    .await
}
