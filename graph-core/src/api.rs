//! Wire types shared by the server and the browser client.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Version of the running server, from its crate version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_s: u64,
    /// State of the embedded store.
    pub store: StoreHealth,
}

/// State of the store as seen by the health endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// `"ok"` when the store answered a read just now, `"error"` otherwise.
    pub status: String,
    /// Which store implementation is in use, e.g. `"redb"`.
    pub kind: String,
    /// Where it lives (a file path for the embedded store).
    pub location: String,
    /// Size on disk in bytes, when known.
    pub size_bytes: Option<u64>,
}

/// The JSON body of every API error: `{"error": "...", "details": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One sentence saying what went wrong.
    pub error: String,
    /// Precise items, e.g. `line 3: field "requests": expected an integer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// `GET /api/v1/analysis`: one tick analysed end to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResponse {
    /// The tick shown.
    pub tick: crate::model::Tick,
    /// The latest tick with data, for "live" and the time picker.
    pub latest_tick: crate::model::Tick,
    /// The earliest tick with data.
    pub earliest_tick: crate::model::Tick,
    /// Clusters of the pruned graph (and the ranking), by id.
    pub clusters: Vec<ClusterInfo>,
    /// Pruned graph, observations, ranking, links and layout.
    pub snapshot: crate::snapshot::TickSnapshot,
    /// Counts of what detection considered, tested and found.
    pub summary: crate::detect::Summary,
    /// Data-centre storms at this tick.
    pub storms: Vec<crate::detect::DcStorm>,
    /// Data sources that had not delivered this tick when it was analysed: their edges
    /// count as missing, not anomalous.
    #[serde(default)]
    pub sources_behind: Vec<String>,
    /// When the tick was analysed, Unix seconds.
    #[serde(default)]
    pub analysed_at: i64,
}

/// A cluster as the client needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Id used in the snapshot.
    pub id: crate::model::ClusterId,
    /// Unique name.
    pub name: String,
    /// Service.
    pub service: String,
    /// Data centre, for per-DC clusters.
    pub dc: Option<String>,
    /// Tier.
    pub tier: Option<String>,
}

impl ClusterInfo {
    /// Cluster `id` of `catalog`, or `None` for an id not from it.
    pub fn of(
        catalog: &crate::model::ClusterCatalog,
        id: crate::model::ClusterId,
    ) -> Option<ClusterInfo> {
        catalog.try_get(id).map(|c| ClusterInfo {
            id,
            name: c.name.clone(),
            service: c.service.clone(),
            dc: c.dc.clone(),
            tier: c.tier.clone(),
        })
    }
}

/// One bucket of an edge's series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start of the bucket.
    pub tick: crate::model::Tick,
    /// Requests.
    pub requests: f64,
    /// Failed requests.
    pub errors: f64,
    /// Request-weighted mean latency, ms (`None` without requests).
    pub latency_ms: Option<f64>,
    /// Errors per request (`None` without requests).
    pub error_rate: Option<f64>,
    /// Metrics detection reported anomalous at this point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalous: Vec<crate::model::Metric>,
    /// Metrics whose point was folded into a data-centre storm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storm: Vec<crate::model::Metric>,
}

/// The same range some weeks earlier, with ticks as they were then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekSeries {
    /// How many weeks back.
    pub weeks_ago: u32,
    /// The buckets with data.
    pub points: Vec<SeriesPoint>,
}

/// `GET /api/v1/edges/series`: one edge (or one method on it) over a range, with the
/// same range in each of the previous weeks the weekly baseline reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeSeriesResponse {
    /// Caller.
    pub src: ClusterInfo,
    /// Callee.
    pub dst: ClusterInfo,
    /// The method, when the series is one method's.
    pub method: Option<String>,
    /// First tick of the range.
    pub from: crate::model::Tick,
    /// Last tick of the range (inclusive).
    pub to: crate::model::Tick,
    /// Bucket width, seconds.
    pub bucket_width_s: i64,
    /// The buckets with data in the range.
    pub points: Vec<SeriesPoint>,
    /// The range one to six weeks earlier.
    pub weeks: Vec<WeekSeries>,
}

/// `GET /api/v1/activity`: site-wide activity over a range and the same range in
/// previous weeks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityResponse {
    /// First tick of the range.
    pub from: crate::model::Tick,
    /// Last tick of the range (inclusive).
    pub to: crate::model::Tick,
    /// `(tick, value)` in the range.
    pub points: Vec<(crate::model::Tick, f64)>,
    /// The range `weeks_ago` weeks earlier, ticks as they were then.
    pub weeks: Vec<ActivityWeek>,
}

/// Activity some weeks earlier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityWeek {
    /// How many weeks back.
    pub weeks_ago: u32,
    /// `(tick, value)`.
    pub points: Vec<(crate::model::Tick, f64)>,
}

/// One server pair behind a cluster edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerPair {
    /// Calling server.
    pub src: String,
    /// Called server.
    pub dst: String,
    /// Requests.
    pub requests: f64,
    /// Failed requests.
    pub errors: f64,
    /// Mean latency, ms.
    pub latency_ms: Option<f64>,
    /// Share of the edge's requests.
    pub request_share: f64,
    /// Share of the edge's total latency (time spent), which is what moves the edge's
    /// mean.
    pub latency_share: f64,
}

/// `GET /api/v1/edges/servers`: the server pairs contributing most to an edge in one
/// bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerPairsResponse {
    /// The bucket.
    pub tick: crate::model::Tick,
    /// Caller cluster.
    pub src: String,
    /// Callee cluster.
    pub dst: String,
    /// Server pairs with data in the bucket.
    pub total_pairs: usize,
    /// The top pairs by time spent, largest first.
    pub pairs: Vec<ServerPair>,
}

/// One anomaly episode: anomalous ticks of one edge, in any metric, with gaps of at
/// most two ticks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Caller cluster.
    pub src: String,
    /// Callee cluster.
    pub dst: String,
    /// Whether the service is the caller (`outgoing`), the callee (`incoming`) or
    /// both (`both`, calls within the service).
    pub direction: String,
    /// The metric of the peak (the most severe anomaly).
    pub metric: crate::model::Metric,
    /// Every metric anomalous during the episode, in order of appearance.
    #[serde(default)]
    pub metrics: Vec<crate::model::Metric>,
    /// First anomalous tick (the anomaly's onset when earlier).
    pub start: crate::model::Tick,
    /// Last anomalous tick.
    pub end: crate::model::Tick,
    /// Tick of the most severe anomaly.
    pub peak_tick: crate::model::Tick,
    /// Relative deviation of the most severe anomaly (signed).
    pub peak_deviation: Option<f64>,
    /// Largest severity score.
    pub peak_severity: f64,
    /// Best root-cause rank of the service's clusters during the episode.
    pub best_rank: Option<u32>,
    /// Ticks in the episode that were hidden by a mark.
    pub hidden_ticks: u32,
    /// Root-cause rank of the service's clusters at the peak tick.
    #[serde(default)]
    pub rank_at_peak: Option<u32>,
    /// Marks on the edge that applied during the episode or were made within a day of
    /// its end: who, what and why.
    #[serde(default)]
    pub marks: Vec<MarkView>,
    /// The edge's series from an hour before the episode to an hour after it, for a
    /// small chart.
    #[serde(default)]
    pub points: Vec<SeriesPoint>,
    /// The same hours a week earlier.
    #[serde(default)]
    pub week_before: Vec<SeriesPoint>,
}

/// `GET /api/v1/services/{service}/episodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodesResponse {
    /// The service.
    pub service: String,
    /// Its clusters.
    pub clusters: Vec<String>,
    /// First tick looked at.
    pub from: crate::model::Tick,
    /// Last tick looked at.
    pub to: crate::model::Tick,
    /// Analysed ticks in the range.
    pub analysed_ticks: usize,
    /// The episodes, by start.
    pub episodes: Vec<Episode>,
}

/// A config change as the API shows it, with cluster names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeView {
    /// Unique id.
    pub id: u64,
    /// When it was applied, Unix seconds.
    pub ts: i64,
    /// Who made it.
    pub author: String,
    /// Clusters it touched.
    pub clusters: Vec<String>,
    /// What it was.
    pub description: String,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A data source and whether it is keeping up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    /// The token's name.
    pub name: String,
    /// When its latest batch arrived, Unix seconds.
    pub last_arrival: i64,
    /// The latest bucket it delivered.
    pub last_tick: crate::model::Tick,
    /// Seconds since its latest batch.
    pub silent_s: i64,
    /// Silent for longer than `sources.stale_after_s`.
    pub stale: bool,
    /// Silent for longer than `sources.retire_after_s`: no longer expected.
    pub retired: bool,
    /// Batches accepted.
    pub batches: u64,
    /// Records accepted.
    pub records: u64,
    /// Calling clusters it reports on.
    pub clusters: usize,
    /// For a source Epicenter pulls from (a Prometheus-compatible engine): how the
    /// pulling goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullView>,
}

/// How pulling from one engine goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullView {
    /// The engine's base URL.
    pub url: String,
    /// The metrics read: `istio`, `linkerd`, `servicegraph`, `spanmetrics` or `custom`.
    pub preset: String,
    /// Everything before this bucket start has been pulled; `None` before the first pull.
    pub pulled_to: Option<crate::model::Tick>,
    /// The end of the buckets that are due (ended more than the pull delay ago).
    pub due_to: Option<crate::model::Tick>,
    /// A backfill is under way: more than one bucket is due.
    pub backfilling: bool,
    /// Share of the current backfill done, 0 to 1.
    pub backfill_progress: Option<f64>,
    /// When a pull last succeeded, Unix seconds.
    pub last_success: Option<i64>,
    /// Why the latest pull failed, if it did.
    pub last_error: Option<String>,
    /// Pulls failed in a row.
    pub failures: u64,
    /// When the next attempt is made after a failure, Unix seconds.
    pub retry_at: Option<i64>,
    /// Series answered by the engine in the latest pull.
    pub series: u64,
    /// Series left aside because they had calls but no latency sum (or no caller or
    /// callee label), since the start.
    pub incomplete_series: u64,
}

/// `GET /api/v1/sources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcesResponse {
    /// Seconds of silence after which a source is stale.
    pub stale_after_s: i64,
    /// Every source, by name.
    pub sources: Vec<SourceView>,
    /// Names of the stale sources (not retired ones).
    pub stale: Vec<String>,
}

/// One edge of the full graph at a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FullEdge {
    /// Caller.
    pub src: crate::model::ClusterId,
    /// Callee.
    pub dst: crate::model::ClusterId,
    /// Requests in the bucket.
    pub requests: f64,
    /// Mean latency, ms.
    pub latency_ms: Option<f64>,
    /// Errors per request.
    pub error_rate: Option<f64>,
    /// Metrics anomalous at the tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalous: Vec<crate::model::Metric>,
}

/// `GET /api/v1/graph/full`: every cluster and every edge with data at a tick, laid
/// out by tier and data centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FullGraphResponse {
    /// The tick.
    pub tick: crate::model::Tick,
    /// Every cluster with an edge at the tick.
    pub clusters: Vec<ClusterInfo>,
    /// Edges with data at the tick.
    pub edges: Vec<FullEdge>,
    /// Where everything is drawn.
    pub layout: crate::layout::Layout,
}

/// A server-sent event on `GET /api/v1/events`: a tick was analysed (or analysed again
/// after late data). Event name `tick`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickEvent {
    /// The tick analysed.
    pub tick: crate::model::Tick,
    /// When, Unix seconds.
    pub analysed_at: i64,
}

/// Who is signed in: `GET`/`POST /api/v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Account or token name.
    pub name: String,
    /// Name shown to others.
    pub display_name: String,
    /// What the caller may do: `ingest`, `read`, `write`.
    pub scopes: Vec<String>,
    /// `session`, `token` or `proxy`.
    pub via: String,
    /// For a browser session or a user named by the trusted proxy: the token writes
    /// must send in `X-CSRF-Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// For a browser session: when it ends, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// A mark as the API shows it: `GET /api/v1/marks`, and the answer to creating or
/// changing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkView {
    /// Unique id.
    pub id: u64,
    /// Known anomaly, incident or new trend.
    pub kind: crate::prune::MarkKind,
    /// The edges it covers, `(caller, callee)` by cluster name.
    pub edges: Vec<(String, String)>,
    /// True when it covers a whole pruned graph.
    pub graph: bool,
    /// The severity when it was made (the largest over its edges).
    pub severity: f64,
    /// The tick it was made at.
    pub created: crate::model::Tick,
    /// When it stops applying (a known anomaly's expiry, a closed incident's end).
    pub until: Option<crate::model::Tick>,
    /// For a new trend: the first tick of the new normal.
    pub trend_from: Option<crate::model::Tick>,
    /// Who made it (account or token name).
    pub author: String,
    /// The name shown for them.
    pub author_name: String,
    /// Why, in their words (plain text; shown as text, never as markup).
    pub description: String,
    /// Bumped by every change; changes must name the version they read.
    pub version: u64,
    /// When it was made, Unix seconds.
    pub made_at: i64,
    /// Every change, oldest first.
    pub history: Vec<MarkChangeView>,
    /// An incident's Jira issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira: Option<JiraView>,
}

/// An incident's Jira issue as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JiraView {
    /// The issue key, once created.
    pub key: Option<String>,
    /// Its address in Jira.
    pub url: Option<String>,
    /// Its status, as last seen.
    pub status: Option<String>,
    /// Why the last call failed, in Jira's words where it gave them.
    pub error: Option<String>,
    /// Still to be created (Jira was down or slow; retried with backoff).
    pub pending: bool,
}

/// One change in a mark's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkChangeView {
    /// The version it made.
    pub version: u64,
    /// When, Unix seconds.
    pub at: i64,
    /// Who.
    pub by: String,
    /// What changed.
    pub what: String,
}

/// A server-sent event named `mark`: a mark was made or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkEvent {
    /// The mark.
    pub id: u64,
    /// Its version now.
    pub version: u64,
}

/// Someone looking at the screen: `GET /api/v1/presence` and the `presence` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceView {
    /// Account name.
    pub name: String,
    /// Name shown.
    pub display_name: String,
    /// The edge they have selected, `caller>callee`.
    pub edge: Option<String>,
}

/// One switch of the maintenance mode of a data centre, as recorded (an audit record):
/// `GET /api/v1/maintenance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceSwitch {
    /// Sequence number, from 1.
    pub seq: u64,
    /// The data centre.
    pub dc: String,
    /// Switched on (true) or off.
    pub on: bool,
    /// Who switched it: account or token name.
    pub by: String,
    /// When, Unix seconds.
    pub at: i64,
    /// Why, in their words.
    pub reason: String,
}

/// Whether one data centre is in maintenance mode, and since which switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcMaintenance {
    /// The data centre.
    pub dc: String,
    /// In maintenance mode now.
    pub on: bool,
    /// The latest switch; `None` when the state comes from the configuration file.
    pub switch: Option<MaintenanceSwitch>,
}

/// `GET /api/v1/maintenance`: every known data centre's state and the latest switches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceView {
    /// Per data centre, by name.
    pub dcs: Vec<DcMaintenance>,
    /// Services the mode is limited to (empty: every split service).
    pub services: Vec<String>,
    /// The latest switches, newest first (at most 50).
    pub log: Vec<MaintenanceSwitch>,
}

/// `PUT /api/v1/maintenance/{dc}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// On or off.
    pub on: bool,
    /// Why (required, at most 500 characters).
    pub reason: String,
}
