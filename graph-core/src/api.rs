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
