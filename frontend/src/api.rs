//! The typed client of Epicenter's JSON API, with its own error type.

use graph_core::api::{
    ActivityResponse, AnalysisResponse, ChangeView, EdgeSeriesResponse, ErrorBody,
    FullGraphResponse, Health, MarkView, PresenceView, ServerPairsResponse, SessionView,
    SourcesResponse,
};
use graph_core::model::Tick;
use serde::de::DeserializeOwned;

/// What can go wrong talking to the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached at all.
    #[error("the Epicenter server cannot be reached ({0})")]
    Unreachable(String),
    /// The server answered with an error body.
    #[error("{message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The `error` sentence.
        message: String,
        /// The `details` items.
        details: Vec<String>,
    },
    /// The answer was not what this client understands.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let res = gloo_net::http::Request::get(path)
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    decode(res).await
}

/// The server's error in an answer that is not a success.
async fn error_of(res: gloo_net::http::Response) -> ApiError {
    let status = res.status();
    match res.json::<ErrorBody>().await {
        Ok(b) => ApiError::Server {
            status,
            message: b.error,
            details: b.details,
        },
        Err(_) => ApiError::Server {
            status,
            message: format!("HTTP {status} {}", res.status_text()),
            details: vec![],
        },
    }
}

/// The body of an answer, or the server's error.
async fn decode<T: DeserializeOwned>(res: gloo_net::http::Response) -> Result<T, ApiError> {
    if !res.ok() {
        return Err(error_of(res).await);
    }
    res.json::<T>()
        .await
        .map_err(|e| ApiError::Decode(e.to_string()))
}

/// `GET /api/v1/health`.
pub async fn health() -> Result<Health, ApiError> {
    get_json("/api/v1/health").await
}

/// `GET /api/v1/analysis`: the given tick, or the latest.
pub async fn analysis(tick: Option<Tick>) -> Result<AnalysisResponse, ApiError> {
    match tick {
        Some(t) => get_json(&format!("/api/v1/analysis?tick={t}")).await,
        None => get_json("/api/v1/analysis").await,
    }
}

/// `GET /api/v1/graph/full`: every edge with data at `tick`.
pub async fn full_graph(tick: Tick) -> Result<FullGraphResponse, ApiError> {
    get_json(&format!("/api/v1/graph/full?tick={tick}")).await
}

/// `GET /api/v1/edges/series`: the day up to `to` and the same day in earlier weeks.
pub async fn edge_series(src: &str, dst: &str, to: Tick) -> Result<EdgeSeriesResponse, ApiError> {
    get_json(&format!(
        "/api/v1/edges/series?src={}&dst={}&to={to}",
        crate::url::encode(src),
        crate::url::encode(dst)
    ))
    .await
}

/// `GET /api/v1/edges/servers`: the server pairs behind an edge at `tick`.
pub async fn edge_servers(
    src: &str,
    dst: &str,
    tick: Tick,
    limit: usize,
) -> Result<ServerPairsResponse, ApiError> {
    get_json(&format!(
        "/api/v1/edges/servers?src={}&dst={}&tick={tick}&limit={limit}",
        crate::url::encode(src),
        crate::url::encode(dst)
    ))
    .await
}

/// `GET /api/v1/changes` between `from` and `to`.
pub async fn changes(from: i64, to: i64) -> Result<Vec<ChangeView>, ApiError> {
    get_json(&format!("/api/v1/changes?from={from}&to={to}")).await
}

/// `GET /api/v1/activity`: the day up to `to` and earlier weeks.
pub async fn activity(to: Tick) -> Result<ActivityResponse, ApiError> {
    get_json(&format!("/api/v1/activity?to={to}")).await
}

/// `GET /api/v1/sources`.
pub async fn sources() -> Result<SourcesResponse, ApiError> {
    get_json("/api/v1/sources").await
}

/// The part of `GET /api/v1/topology` the service picker reads.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Topology {
    /// Every cluster.
    pub clusters: Vec<graph_core::api::ClusterInfo>,
    /// Distinct services.
    pub services: Vec<String>,
}

/// `GET /api/v1/topology`.
pub async fn topology() -> Result<Topology, ApiError> {
    get_json("/api/v1/topology").await
}

/// `GET /api/v1/services/{service}/episodes?from=&to=`.
pub async fn episodes(
    service: &str,
    from: Tick,
    to: Tick,
) -> Result<graph_core::api::EpisodesResponse, ApiError> {
    get_json(&format!(
        "/api/v1/services/{}/episodes?from={from}&to={to}",
        crate::url::encode(service)
    ))
    .await
}

/// The address of `GET /api/v1/snapshots/bundle` for a range (also the download link).
pub fn bundle_url(from: Tick, to: Tick) -> String {
    format!("/api/v1/snapshots/bundle?from={from}&to={to}")
}

/// `GET /api/v1/snapshots/bundle`, read by graph-core (which refuses newer formats).
pub async fn bundle(from: Tick, to: Tick) -> Result<graph_core::snapshot::Bundle, ApiError> {
    let res = gloo_net::http::Request::get(&bundle_url(from, to))
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !res.ok() {
        return Err(error_of(res).await);
    }
    let text = res
        .text()
        .await
        .map_err(|e| ApiError::Decode(e.to_string()))?;
    graph_core::snapshot::Bundle::from_json(&text).map_err(|e| ApiError::Decode(e.to_string()))
}

/// `GET /api/v1/session`: who is signed in (`None` when nobody).
pub async fn session() -> Result<Option<SessionView>, ApiError> {
    match get_json::<SessionView>("/api/v1/session").await {
        Ok(s) => Ok(Some(s)),
        Err(ApiError::Server { status: 401, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `POST /api/v1/session`: signs in; the server sets the session cookie.
pub async fn sign_in(name: &str, password: &str) -> Result<SessionView, ApiError> {
    let body = serde_json::json!({ "name": name, "password": password });
    let res = gloo_net::http::Request::post("/api/v1/session")
        .json(&body)
        .map_err(|e| ApiError::Decode(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    decode(res).await
}

/// `DELETE /api/v1/session` with the session's CSRF token.
pub async fn sign_out(csrf: &str) -> Result<(), ApiError> {
    let res = gloo_net::http::Request::delete("/api/v1/session")
        .header("X-CSRF-Token", csrf)
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if res.ok() {
        return Ok(());
    }
    decode::<serde_json::Value>(res).await.map(|_| ())
}

/// `GET /api/v1/marks?edge=src>dst`: the marks on an edge, newest first.
pub async fn edge_marks(src: &str, dst: &str) -> Result<Vec<MarkView>, ApiError> {
    get_json(&format!(
        "/api/v1/marks?edge={}",
        crate::url::encode(&format!("{src}>{dst}"))
    ))
    .await
}

/// Sends `body` as JSON with the session's CSRF token.
async fn write_json<T: DeserializeOwned>(
    method: &str,
    path: &str,
    csrf: &str,
    body: &serde_json::Value,
) -> Result<T, ApiError> {
    let builder = match method {
        "PATCH" => gloo_net::http::Request::patch(path),
        "PUT" => gloo_net::http::Request::put(path),
        _ => gloo_net::http::Request::post(path),
    };
    let res = builder
        .header("X-CSRF-Token", csrf)
        .json(body)
        .map_err(|e| ApiError::Decode(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    decode(res).await
}

/// `POST /api/v1/marks`.
pub async fn create_mark(csrf: &str, body: &serde_json::Value) -> Result<MarkView, ApiError> {
    write_json("POST", "/api/v1/marks", csrf, body).await
}

/// `PATCH /api/v1/marks/{id}`.
pub async fn update_mark(
    csrf: &str,
    id: u64,
    body: &serde_json::Value,
) -> Result<MarkView, ApiError> {
    write_json("PATCH", &format!("/api/v1/marks/{id}"), csrf, body).await
}

/// `GET /api/v1/presence`: who is looking at which edge.
pub async fn presence() -> Result<Vec<PresenceView>, ApiError> {
    get_json("/api/v1/presence").await
}

/// `POST /api/v1/presence`: this browser looks at `edge` (`caller>callee`) or none.
pub async fn report_presence(
    csrf: &str,
    edge: Option<String>,
) -> Result<Vec<PresenceView>, ApiError> {
    write_json(
        "POST",
        "/api/v1/presence",
        csrf,
        &serde_json::json!({ "edge": edge }),
    )
    .await
}

/// `GET /api/v1/maintenance`: which data centres are in maintenance mode.
pub async fn maintenance() -> Result<graph_core::api::MaintenanceView, ApiError> {
    get_json("/api/v1/maintenance").await
}

/// `PUT /api/v1/maintenance/{dc}`: switches maintenance mode for one data centre.
pub async fn switch_maintenance(
    csrf: &str,
    dc: &str,
    on: bool,
    reason: &str,
) -> Result<graph_core::api::MaintenanceView, ApiError> {
    write_json(
        "PUT",
        &format!("/api/v1/maintenance/{}", crate::url::encode(dc)),
        csrf,
        &serde_json::json!({ "on": on, "reason": reason }),
    )
    .await
}
