//! # epicenter backend
//!
//! The server behind Epicenter: it ingests server-to-server call statistics, keeps
//! them in an embedded store, runs detection every tick, serves the JSON API and the
//! built front end. [`app`] builds the router from an [`AppState`], so tests drive
//! it directly or on `127.0.0.1:0`; `main` only parses configuration and serves.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use epicenter_backend::{app, config::Config, AppState};
//! let state = AppState::open(&Config::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app(state)).await?;
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod analysis;
pub mod analyze;
pub mod auth;
pub mod config;
pub mod demo;
pub mod detection;
pub mod error;
pub mod handlers;
pub mod import;
pub mod ingest;
pub mod jira;
pub mod maintenance;
pub mod marks;
pub mod presence;
pub mod render;
pub mod sources;
pub mod store;
pub mod topology;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::store::{RedbStore, Store};

/// The server version, from the crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared state of the running server.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// When the server started, for uptime.
    pub started: Instant,
    /// Folder with the built front end.
    pub static_dir: PathBuf,
    /// On-demand analysis of stored ticks.
    pub analyzer: Arc<analysis::Analyzer>,
    /// Registry and topology for ingestion.
    pub ingest: Arc<std::sync::Mutex<ingest::service::IngestState>>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Counters for `/metrics`.
    pub counters: Arc<handlers::metrics::Counters>,
    /// The detection loop's driver.
    pub detector: Arc<detection::Detector>,
    /// How sources are judged.
    pub sources: config::SourcesConfig,
    /// The topology file, for reloads.
    pub topology_path: Option<PathBuf>,
    /// Sessions, login throttling, the trusted proxy.
    pub auth: config::AuthConfig,
    /// Failed logins, for throttling.
    pub logins: Arc<auth::LoginLimiter>,
    /// The store's key for proxy users' CSRF tokens ([`auth::proxy_csrf`]).
    pub csrf_key: Arc<Vec<u8>>,
    /// When incidents go to Jira: Epicenter's address for links back from issues.
    pub jira_public_url: Option<String>,
    /// Wakes the Jira worker (a new incident).
    pub jira_wake: Arc<tokio::sync::Notify>,
    /// Who looks at which edge.
    pub presence: Arc<presence::Presence>,
    /// How the pull sources are doing.
    pub pulls: Arc<sources::Pulls>,
    /// Trace spans waiting for their partners.
    pub otlp: Arc<std::sync::Mutex<sources::otlp::Pairing>>,
    /// The traces receiver's limits and pairing window.
    pub otlp_config: config::OtlpConfig,
}

impl AppState {
    /// Opens the configured store.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let store: RedbStore = config.store.open()?;
        Self::with_store(config, Arc::new(store))
    }

    /// State over an opened `store`.
    pub fn with_store(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let (topology, source) = match &config.ingest.topology {
            Some(path) => (topology::Topology::load(path)?, path.display().to_string()),
            None => (topology::Topology::identity(), "identity".to_string()),
        };
        let analysis_config = config.analysis.clone();
        let key_edges = topology.detect_key_edges();
        let ingest = ingest::service::IngestState::new(store.as_ref(), topology)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_source(source);
        let analyzer = Arc::new(analysis::Analyzer::new(
            analysis_config,
            config.sources.clone(),
            &config.detection,
        ));
        analyzer.set_key_edges(key_edges);
        for record in maintenance::latest(&store.maintenance_log()?).into_values() {
            analyzer.switch(record);
        }
        let detector = Arc::new(detection::Detector::new(
            analyzer.clone(),
            config.detection.clone(),
            config.retention.clone(),
        ));
        let csrf_key = Arc::new(store.key("csrf")?);
        let pairing = sources::otlp::Pairing::load(store.held_spans()?, config.otlp.pair_window_s)
            .map_err(|m| anyhow::anyhow!("the trace spans held in the store: {m}"))?;
        Ok(AppState {
            pulls: Arc::default(),
            otlp: Arc::new(std::sync::Mutex::new(pairing)),
            otlp_config: config.otlp.clone(),
            csrf_key,
            ingest: Arc::new(std::sync::Mutex::new(ingest)),
            max_body_bytes: config.ingest.max_body_bytes,
            counters: Arc::default(),
            store,
            started: Instant::now(),
            static_dir: config.server.static_dir.clone(),
            analyzer,
            detector,
            sources: config.sources.clone(),
            topology_path: config.ingest.topology.clone(),
            auth: config.auth.clone(),
            logins: Arc::default(),
            jira_public_url: config.jira.enabled.then(|| config.jira.public_url.clone()),
            jira_wake: Arc::default(),
            presence: Arc::default(),
        })
    }
}

impl AppState {
    /// After a batch was stored: counts it, drops cached answers its buckets change,
    /// and tells detection which buckets to look at again.
    pub fn ingested(&self, accepted: &ingest::service::Accepted) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.counters;
        c.batches_accepted.fetch_add(1, Relaxed);
        c.records_accepted.fetch_add(accepted.accepted, Relaxed);
        c.records_unmapped
            .fetch_add(accepted.unmapped_records, Relaxed);
        self.analyzer.forget(&accepted.ticks);
        self.detector.touched(&accepted.ticks);
    }
}

/// The whole HTTP surface: `/api/v1/...`, `/healthz`, and the front end at `/`.
pub fn app(state: AppState) -> Router {
    let index = state.static_dir.join("index.html");
    let front_end = ServeDir::new(&state.static_dir).fallback(ServeFile::new(index));
    let body_limit = axum::extract::DefaultBodyLimit::max(state.max_body_bytes);
    let api = Router::new()
        .route("/health", get(handlers::health::health))
        .route("/openapi.json", get(handlers::openapi::document))
        .route("/analysis", get(handlers::analysis::analysis))
        .route("/events", get(handlers::events::events))
        .route("/analysis/run", post(handlers::admin::run))
        .route("/analysis/config", get(handlers::maintenance::settings))
        .route("/maintenance", get(handlers::maintenance::list))
        .route(
            "/maintenance/{dc}",
            axum::routing::put(handlers::maintenance::switch),
        )
        .route("/graph/full", get(handlers::query::full_graph))
        .route("/edges/series", get(handlers::query::edge_series))
        .route("/edges/servers", get(handlers::query::edge_servers))
        .route(
            "/services/{service}/episodes",
            get(handlers::query::episodes),
        )
        .route(
            "/changes",
            get(handlers::changes::list).post(handlers::changes::post),
        )
        .route("/snapshots", get(handlers::query::snapshots))
        .route("/snapshots/bundle", get(handlers::query::bundle))
        .route("/snapshots/storage", get(handlers::query::snapshot_storage))
        .route("/snapshots/{tick}", get(handlers::query::snapshot))
        .route("/activity", get(handlers::query::activity))
        .route("/topology", get(handlers::query::topology))
        .route("/topology/unmapped", get(handlers::query::unmapped))
        .route("/topology/reload", post(handlers::admin::reload_topology))
        .route("/sources", get(handlers::query::sources))
        .route(
            "/marks",
            get(handlers::marks::list).post(handlers::marks::create),
        )
        .route("/marks/{id}", axum::routing::patch(handlers::marks::update))
        .route(
            "/presence",
            get(handlers::presence::list).post(handlers::presence::report),
        )
        .route(
            "/session",
            get(handlers::session::current)
                .post(handlers::session::login)
                .delete(handlers::session::logout),
        )
        .route(
            "/ingest/calls",
            post(handlers::ingest::calls).layer(body_limit),
        )
        .route(
            "/ingest/activity",
            post(handlers::ingest::activity).layer(body_limit),
        )
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ));
    Router::new()
        .nest("/api/v1", api)
        .route("/api", get(handlers::not_found))
        .route(
            "/api/{*rest}",
            get(handlers::not_found).post(handlers::not_found),
        )
        .route(
            "/v1/traces",
            post(handlers::otlp::traces).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::layer,
            )),
        )
        .route("/healthz", get(handlers::health::healthz))
        .route("/metrics", get(handlers::metrics::metrics))
        .fallback_service(front_end)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
