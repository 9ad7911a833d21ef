//! Read endpoints over stored data: the full graph, one edge's series and server
//! pairs, anomaly episodes of a service, stored snapshots, activity, topology and
//! sources.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, State};
use graph_core::api::{
    ActivityResponse, ActivityWeek, ClusterInfo, EdgeSeriesResponse, Episode, EpisodesResponse,
    FullEdge, FullGraphResponse, SeriesPoint, ServerPair, ServerPairsResponse, SourceView,
    SourcesResponse, WeekSeries,
};
use graph_core::detect::{Cell, PointFlags, SeriesKey, SeriesView};
use graph_core::layout::{LayoutConfig, layout};
use graph_core::model::{ClusterId, DAY, EdgeKey, Metric, Tick, WEEK};
use graph_core::prune::MarkTarget;
use graph_core::snapshot::{Bundle, BundleTick, Snapshot};
use serde::{Deserialize, Serialize};

use super::{Params, blocking, time_param};
use crate::AppState;
use crate::analysis::{cluster_info, unix_now};
use crate::error::AppError;
use crate::store::Registry;

/// Weeks of history returned beside a range (the weekly baseline's reach).
pub const WEEKS_BACK: u32 = 6;
/// The longest range one series or activity request may cover, seconds.
pub const MAX_SERIES_RANGE_S: i64 = 8 * 86_400;
/// The longest range of snapshots one request may cover, seconds.
pub const MAX_SNAPSHOT_RANGE_S: i64 = 7 * 86_400;
/// The longest range one storage report may cover, seconds.
pub const MAX_STORAGE_RANGE_S: i64 = 400 * 86_400;

/// `?tick=`
#[derive(Debug, Deserialize)]
pub struct TickQuery {
    /// RFC 3339 or Unix seconds; the live tick when left out.
    pub tick: Option<String>,
}

/// `?from=&to=`
#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    /// RFC 3339 or Unix seconds.
    pub from: Option<String>,
    /// RFC 3339 or Unix seconds.
    pub to: Option<String>,
}

/// Anomalous ticks of one edge at most this many ticks apart belong to one episode.
pub const EPISODE_GAP_TICKS: i64 = 3;

/// Ranges of up to this many ticks are analysed where no analysis is stored yet, so a
/// look at last night or a replay does not wait for the background backfill.
pub const ON_DEMAND_TICKS: i64 = 288;

/// The analysed ticks of `from..=to`, ascending. A range of at most [`ON_DEMAND_TICKS`]
/// is analysed first where needed, up to the live tick.
pub fn analysed_in(state: &AppState, from: Tick, to: Tick) -> Result<Vec<Tick>, AppError> {
    let store = state.store.as_ref();
    let width = store.bucket_width().seconds();
    let ticks = store.analysed_ticks(from, to)?;
    if (to - from) / width + 1 > ON_DEMAND_TICKS {
        return Ok(ticks);
    }
    let Some((earliest, _)) = state.analyzer.range(store)? else {
        return Ok(ticks);
    };
    let live = state.analyzer.resolve(store, None)?.0;
    let have: std::collections::HashSet<Tick> = ticks.iter().copied().collect();
    let mut missing = false;
    let mut t = store.bucket_width().floor(from.max(earliest));
    while t <= to.min(live) {
        if !have.contains(&t) {
            state.analyzer.stored(store, t)?;
            missing = true;
        }
        t += width;
    }
    if missing {
        Ok(store.analysed_ticks(from, to)?)
    } else {
        Ok(ticks)
    }
}

/// Resolves `from`/`to` against the store: `to` defaults to the live tick, `from` to a
/// day before `to`; both are floored to buckets and checked.
fn resolve_range(state: &AppState, q: &RangeQuery, max_s: i64) -> Result<(Tick, Tick), AppError> {
    let store = state.store.as_ref();
    let width = store.bucket_width();
    let to = time_param("to", q.to.as_deref())?;
    let from = time_param("from", q.from.as_deref())?;
    let to = match to {
        Some(t) => width.floor(t),
        None => state.analyzer.resolve(store, None)?.0,
    };
    let from = from.map_or(to.saturating_sub(86_400 - width.seconds()), |f| {
        width.floor(f)
    });
    check_range(from, to, max_s)
}

/// `(from, to)` when `from` is not after `to` and the range is at most `max_s` seconds
/// long, computed without overflow for any two times.
///
/// ```
/// use epicenter_backend::handlers::query::check_range;
/// assert!(check_range(0, 600, 600).is_ok());
/// assert!(check_range(0, 601, 600).is_err());
/// assert!(check_range(i64::MIN, i64::MAX, 600).is_err());
/// assert!(check_range(10, 0, 600).is_err());
/// ```
pub fn check_range(from: Tick, to: Tick, max_s: i64) -> Result<(Tick, Tick), AppError> {
    if from > to {
        return Err(AppError::BadRequest {
            message: format!("\"from\" ({from}) is after \"to\" ({to})"),
            details: vec![],
        });
    }
    match to.checked_sub(from) {
        Some(len) if len <= max_s => Ok((from, to)),
        _ => Err(AppError::BadRequest {
            message: format!(
                "the range from {from} to {to} is longer than the {max_s} s one request may cover"
            ),
            details: vec![],
        }),
    }
}

/// The live tick.
pub fn resolve_live(state: &AppState) -> Result<Tick, AppError> {
    Ok(state.analyzer.resolve(state.store.as_ref(), None)?.0)
}

fn cluster_id(registry: &Registry, param: &str, name: &str) -> Result<ClusterId, AppError> {
    registry.catalog.id(name).ok_or_else(|| {
        AppError::NotFound(format!(
            "query parameter \"{param}\": no cluster named {name:?}"
        ))
    })
}

fn point(tick: Tick, cell: &Cell) -> Option<SeriesPoint> {
    let c = cell.counters()?;
    let with = |flag: PointFlags| {
        Metric::ALL
            .iter()
            .copied()
            .filter(|m| cell.flags(*m).contains(flag))
            .collect::<Vec<_>>()
    };
    Some(SeriesPoint {
        tick,
        requests: c.requests,
        errors: c.errors,
        latency_ms: c.metric(Metric::Latency),
        error_rate: c.metric(Metric::ErrorRate),
        anomalous: with(PointFlags::ANOMALOUS),
        storm: with(PointFlags::STORM),
    })
}

/// `GET /api/v1/graph/full?tick=`: every edge with data at the tick, laid out by tier
/// and data centre, with the metrics found anomalous.
pub async fn full_graph(
    State(state): State<AppState>,
    Params(q): Params<TickQuery>,
) -> Result<Json<FullGraphResponse>, AppError> {
    let tick = time_param("tick", q.tick.as_deref())?;
    blocking(move || {
        let store = state.store.as_ref();
        let (tick, _, _) = state.analyzer.resolve(store, tick)?;
        let registry = state.analyzer.registry(store)?;
        let stored = state.analyzer.stored(store, tick)?;
        let anomalous: HashMap<EdgeKey, Vec<Metric>> = stored
            .snapshot
            .observations
            .iter()
            .filter(|o| !o.anomalies.is_empty())
            .map(|o| (o.edge, o.anomalies.iter().map(|a| a.metric).collect()))
            .collect();
        let view = store.load_view(&registry, &[tick])?;
        let mut edges = Vec::new();
        for (e, key) in registry.entities().iter().enumerate() {
            if key.method.is_some() {
                continue;
            }
            let Some(c) = view.counters(e, tick) else {
                continue;
            };
            edges.push(FullEdge {
                src: key.edge.src,
                dst: key.edge.dst,
                requests: c.requests,
                latency_ms: c.metric(Metric::Latency),
                error_rate: c.metric(Metric::ErrorRate),
                anomalous: anomalous.get(&key.edge).cloned().unwrap_or_default(),
            });
        }
        edges.sort_by_key(|e| (e.src, e.dst));
        let mut nodes: Vec<ClusterId> = edges.iter().flat_map(|e| [e.src, e.dst]).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let keys: Vec<EdgeKey> = edges
            .iter()
            .map(|e| EdgeKey {
                src: e.src,
                dst: e.dst,
            })
            .collect();
        let drawn = layout(
            &nodes,
            &keys,
            &registry.catalog,
            None,
            &LayoutConfig::full_graph(),
        );
        Ok(Json(FullGraphResponse {
            tick,
            clusters: nodes
                .iter()
                .map(|id| cluster_info(&registry, *id))
                .collect(),
            edges,
            layout: drawn,
        }))
    })
    .await
}

/// `?src=&dst=&method=&from=&to=`
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    /// Caller cluster.
    pub src: String,
    /// Callee cluster.
    pub dst: String,
    /// One method's series instead of the edge total.
    pub method: Option<String>,
    /// RFC 3339 or Unix seconds.
    pub from: Option<String>,
    /// RFC 3339 or Unix seconds.
    pub to: Option<String>,
}

/// `GET /api/v1/edges/series`: one edge over a range (a day up to the live tick by
/// default), with the same range in each of the six previous weeks and the points
/// detection flagged.
pub async fn edge_series(
    State(state): State<AppState>,
    Params(q): Params<SeriesQuery>,
) -> Result<Json<EdgeSeriesResponse>, AppError> {
    blocking(move || {
        let range = RangeQuery {
            from: q.from.clone(),
            to: q.to.clone(),
        };
        let (from, to) = resolve_range(&state, &range, MAX_SERIES_RANGE_S)?;
        edge_series_at(&state, &q, from, to).map(Json)
    })
    .await
}

/// The body of [`edge_series`] for a resolved range.
pub fn edge_series_at(
    state: &AppState,
    q: &SeriesQuery,
    from: Tick,
    to: Tick,
) -> Result<EdgeSeriesResponse, AppError> {
    let store = state.store.as_ref();
    let registry = state.analyzer.registry(store)?;
    let edge = EdgeKey {
        src: cluster_id(&registry, "src", &q.src)?,
        dst: cluster_id(&registry, "dst", &q.dst)?,
    };
    let key = match &q.method {
        None => SeriesKey::edge(edge),
        Some(m) => {
            let id = registry.find_method(m).ok_or_else(|| {
                AppError::NotFound(format!("query parameter \"method\": no method named {m:?}"))
            })?;
            SeriesKey::method(edge, id)
        }
    };
    let entity = registry.find_entity(&key).ok_or_else(|| {
        AppError::NotFound(format!(
            "no calls from {} to {}{} are stored",
            q.src,
            q.dst,
            q.method
                .as_ref()
                .map(|m| format!(" for method {m:?}"))
                .unwrap_or_default()
        ))
    })?;
    let width = store.bucket_width().seconds();
    let read = |shift: i64| -> Result<Vec<SeriesPoint>, AppError> {
        Ok(store
            .entity_cells(entity, from - shift, to - shift + width)?
            .iter()
            .filter_map(|(t, c)| point(*t, c))
            .collect())
    };
    let points = read(0)?;
    let weeks = (1..=WEEKS_BACK)
        .map(|k| {
            Ok(WeekSeries {
                weeks_ago: k,
                points: read(i64::from(k) * WEEK)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(EdgeSeriesResponse {
        src: cluster_info(&registry, edge.src),
        dst: cluster_info(&registry, edge.dst),
        method: q.method.clone(),
        from,
        to,
        bucket_width_s: width,
        points,
        weeks,
    })
}

/// `?src=&dst=&tick=&limit=`
#[derive(Debug, Deserialize)]
pub struct PairsQuery {
    /// Caller cluster.
    pub src: String,
    /// Callee cluster.
    pub dst: String,
    /// RFC 3339 or Unix seconds; the live tick when left out.
    pub tick: Option<String>,
    /// How many pairs (default 10, at most 100).
    pub limit: Option<usize>,
}

/// `GET /api/v1/edges/servers`: the server pairs behind a cluster edge in one bucket,
/// largest share of time spent first. Server-level data is kept for
/// `retention.server_pairs_hours`.
pub async fn edge_servers(
    State(state): State<AppState>,
    Params(q): Params<PairsQuery>,
) -> Result<Json<ServerPairsResponse>, AppError> {
    let tick = time_param("tick", q.tick.as_deref())?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(AppError::BadRequest {
            message: format!("query parameter \"limit\": {limit} is not between 1 and 100"),
            details: vec![],
        });
    }
    blocking(move || {
        let store = state.store.as_ref();
        let (tick, _, _) = state.analyzer.resolve(store, tick)?;
        let registry = state.analyzer.registry(store)?;
        let edge = EdgeKey {
            src: cluster_id(&registry, "src", &q.src)?,
            dst: cluster_id(&registry, "dst", &q.dst)?,
        };
        let Some(entity) = registry.find_entity(&SeriesKey::edge(edge)) else {
            return Err(AppError::NotFound(format!(
                "no calls from {} to {} are stored",
                q.src, q.dst
            )));
        };
        let mut by_pair: BTreeMap<(u32, u32), graph_core::model::Counters> = BTreeMap::new();
        for r in store.pairs(tick, Some(entity))? {
            by_pair.entry((r.src, r.dst)).or_default().add(&r.counters);
        }
        let total_requests: f64 = by_pair.values().map(|c| c.requests).sum();
        let total_time: f64 = by_pair.values().map(|c| c.latency_ms_sum).sum();
        let share = |x: f64, total: f64| if total > 0.0 { x / total } else { 0.0 };
        let mut pairs: Vec<ServerPair> = by_pair
            .iter()
            .map(|((s, d), c)| ServerPair {
                src: registry.server_name(*s).unwrap_or("?").to_string(),
                dst: registry.server_name(*d).unwrap_or("?").to_string(),
                requests: c.requests,
                errors: c.errors,
                latency_ms: c.metric(Metric::Latency),
                request_share: share(c.requests, total_requests),
                latency_share: share(c.latency_ms_sum, total_time),
            })
            .collect();
        pairs.sort_by(|a, b| {
            b.latency_share
                .total_cmp(&a.latency_share)
                .then_with(|| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)))
        });
        let total_pairs = pairs.len();
        pairs.truncate(limit);
        Ok(Json(ServerPairsResponse {
            tick,
            src: q.src,
            dst: q.dst,
            total_pairs,
            pairs,
        }))
    })
    .await
}

/// `GET /api/v1/services/{service}/episodes?from=&to=`: the anomaly episodes on the
/// edges into and out of a service (or one cluster), from the stored analyses.
pub async fn episodes(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Params(q): Params<RangeQuery>,
) -> Result<Json<EpisodesResponse>, AppError> {
    blocking(move || {
        let (from, to) = resolve_range(&state, &q, MAX_SNAPSHOT_RANGE_S)?;
        service_episodes(&state, &service, from, to).map(Json)
    })
    .await
}

/// The body of [`episodes`] for a resolved range.
pub fn service_episodes(
    state: &AppState,
    service: &str,
    from: Tick,
    to: Tick,
) -> Result<EpisodesResponse, AppError> {
    let store = state.store.as_ref();
    let registry = state.analyzer.registry(store)?;
    let clusters = registry.clusters_named(service);
    if clusters.is_empty() {
        return Err(AppError::NotFound(format!(
            "no service or cluster named {service:?}"
        )));
    }
    let width = store.bucket_width().seconds();
    let ticks = analysed_in(state, from, to)?;
    let gap = EPISODE_GAP_TICKS * width;
    let mut open: BTreeMap<EdgeKey, Episode> = BTreeMap::new();
    let mut done: Vec<(EdgeKey, Episode)> = Vec::new();
    for &t in &ticks {
        let Some(stored) = state.analyzer.peek(store, t)? else {
            continue;
        };
        let snap = &stored.snapshot;
        let best_rank = snap
            .ranking
            .candidates
            .iter()
            .filter(|c| clusters.contains(&c.cluster))
            .map(|c| c.rank)
            .min();
        for o in &snap.observations {
            let incoming = clusters.contains(&o.edge.dst);
            let outgoing = clusters.contains(&o.edge.src);
            if !(incoming || outgoing) || o.anomalies.is_empty() {
                continue;
            }
            let continues = open.get(&o.edge).is_some_and(|e| t - e.end <= gap);
            if !continues && let Some(e) = open.remove(&o.edge) {
                done.push((o.edge, e));
            }
            let first = &o.anomalies[0];
            let e = open.entry(o.edge).or_insert_with(|| Episode {
                src: registry.catalog.get(o.edge.src).name.clone(),
                dst: registry.catalog.get(o.edge.dst).name.clone(),
                direction: match (outgoing, incoming) {
                    (true, true) => "both",
                    (true, false) => "outgoing",
                    _ => "incoming",
                }
                .into(),
                metric: first.metric,
                metrics: Vec::new(),
                start: t,
                end: t,
                peak_tick: t,
                peak_deviation: first.rel_deviation,
                peak_severity: f64::NEG_INFINITY,
                best_rank,
                hidden_ticks: 0,
                rank_at_peak: best_rank,
                marks: Vec::new(),
                points: Vec::new(),
                week_before: Vec::new(),
            });
            e.end = t;
            for a in &o.anomalies {
                e.start = e.start.min(a.onset);
                if !e.metrics.contains(&a.metric) {
                    e.metrics.push(a.metric);
                }
                if a.severity > e.peak_severity {
                    e.peak_severity = a.severity;
                    e.peak_deviation = a.rel_deviation;
                    e.metric = a.metric;
                    e.peak_tick = t;
                    e.rank_at_peak = best_rank;
                }
            }
            e.best_rank = match (e.best_rank, best_rank) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            if snap.pruned.hidden.iter().any(|h| h.edge == o.edge) {
                e.hidden_ticks += 1;
            }
        }
    }
    done.extend(open);
    done.sort_by(|(_, a), (_, b)| (a.start, &a.src, &a.dst).cmp(&(b.start, &b.src, &b.dst)));
    let marks = store.marks()?;
    let name = |c: ClusterId| registry.catalog.get(c).name.clone();
    let mut episodes = Vec::with_capacity(done.len());
    for (edge, mut e) in done {
        e.marks = marks
            .iter()
            .filter(|m| {
                let covers = match &m.mark.target {
                    MarkTarget::Edge { edge: x } => *x == edge,
                    MarkTarget::Graph { edges } => edges.contains(&edge),
                };
                let applied = m.mark.created <= e.end && m.mark.until.is_none_or(|u| u > e.start);
                let soon_after = m.mark.created > e.end && m.mark.created <= e.end + DAY;
                covers && (applied || soon_after)
            })
            .map(|m| crate::marks::view(m, &name))
            .collect();
        if let Some(entity) = registry.find_entity(&SeriesKey::edge(edge)) {
            let (a, b) = (e.start - 3600, e.end + 3600 + width);
            let read = |shift: i64| -> Result<Vec<SeriesPoint>, AppError> {
                Ok(store
                    .entity_cells(entity, a - shift, b - shift)?
                    .iter()
                    .filter_map(|(t, c)| point(*t + shift, c))
                    .collect())
            };
            e.points = read(0)?;
            e.week_before = read(WEEK)?;
        }
        episodes.push(e);
    }
    Ok(EpisodesResponse {
        service: service.to_string(),
        clusters: clusters
            .iter()
            .map(|c| registry.catalog.get(*c).name.clone())
            .collect(),
        from,
        to,
        analysed_ticks: ticks.len(),
        episodes,
    })
}

/// `GET /api/v1/snapshots/{tick}`: the stored snapshot of one tick as a graph-core
/// snapshot document.
pub async fn snapshot(
    State(state): State<AppState>,
    Path(tick): Path<String>,
) -> Result<Json<Snapshot>, AppError> {
    let tick = time_param("tick", Some(&tick))?.expect("given");
    blocking(move || {
        let store = state.store.as_ref();
        let (tick, _, _) = state.analyzer.resolve(store, Some(tick))?;
        let stored = state.analyzer.stored(store, tick)?;
        let registry = state.analyzer.registry(store)?;
        Ok(Json(Snapshot::new(
            store.bucket_width(),
            registry.catalog.clone(),
            stored.snapshot.clone(),
        )))
    })
    .await
}

/// One entry of the snapshot list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// The tick.
    pub tick: Tick,
    /// Anomalous edges shown.
    pub anomalous_edges: usize,
    /// Anomalous edges hidden by marks.
    pub hidden_edges: usize,
    /// The top root-cause candidate.
    pub top_candidate: Option<String>,
}

/// `GET /api/v1/snapshots?from=&to=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotList {
    /// First tick of the range.
    pub from: Tick,
    /// Last tick of the range.
    pub to: Tick,
    /// The stored snapshots in the range.
    pub snapshots: Vec<SnapshotEntry>,
}

/// `GET /api/v1/snapshots?from=&to=`: which ticks have stored snapshots, with what
/// each found.
pub async fn snapshots(
    State(state): State<AppState>,
    Params(q): Params<RangeQuery>,
) -> Result<Json<SnapshotList>, AppError> {
    blocking(move || {
        let (from, to) = resolve_range(&state, &q, MAX_SNAPSHOT_RANGE_S)?;
        let store = state.store.as_ref();
        let mut out = Vec::new();
        for t in analysed_in(&state, from, to)? {
            let Some(s) = state.analyzer.peek(store, t)? else {
                continue;
            };
            out.push(SnapshotEntry {
                tick: t,
                anomalous_edges: s.snapshot.pruned.anomalous().count(),
                hidden_edges: s.snapshot.pruned.hidden.len(),
                top_candidate: s
                    .snapshot
                    .ranking
                    .candidates
                    .first()
                    .map(|c| c.name.clone()),
            });
        }
        Ok(Json(SnapshotList {
            from,
            to,
            snapshots: out,
        }))
    })
    .await
}

/// Stored snapshots of one UTC day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorageDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Snapshots stored.
    pub ticks: usize,
    /// Their size, bytes.
    pub bytes: u64,
}

/// `GET /api/v1/snapshots/storage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorageReport {
    /// First tick looked at.
    pub from: Tick,
    /// Last tick looked at.
    pub to: Tick,
    /// Days kept (`retention.snapshot_days`).
    pub retention_days: i64,
    /// Per day, oldest first; days without snapshots are left out.
    pub days: Vec<StorageDay>,
    /// Snapshots in the range.
    pub total_ticks: usize,
    /// Their size, bytes.
    pub total_bytes: u64,
    /// Mean size of one snapshot, bytes.
    pub mean_bytes_per_tick: u64,
    /// What a full day of ticks takes at that mean, bytes.
    pub full_day_bytes: u64,
    /// What the whole retention window takes at that mean, bytes.
    pub retention_bytes: u64,
}

/// `GET /api/v1/snapshots/storage?from=&to=`: how much the stored snapshots take per
/// day, and what the retention window holds at that rate. The range defaults to the
/// retention window up to the live tick.
pub async fn snapshot_storage(
    State(state): State<AppState>,
    Params(q): Params<RangeQuery>,
) -> Result<Json<StorageReport>, AppError> {
    blocking(move || {
        let retention_days = state.detector.retention().snapshot_days;
        let from = match (&q.from, &q.to) {
            // The retention window up to the live tick.
            (None, None) => {
                let live = state.analyzer.resolve(state.store.as_ref(), None)?.0;
                Some((live - retention_days * DAY).to_string())
            }
            (from, _) => from.clone(),
        };
        let range = RangeQuery {
            from,
            to: q.to.clone(),
        };
        let (from, to) = resolve_range(&state, &range, MAX_STORAGE_RANGE_S)?;
        let sizes = state.store.snapshot_sizes(from, to)?;
        let mut days: Vec<StorageDay> = Vec::new();
        for (t, bytes) in &sizes {
            let day =
                crate::ingest::timefmt::format_time(t.div_euclid(DAY) * DAY)[..10].to_string();
            match days.last_mut() {
                Some(d) if d.day == day => {
                    d.ticks += 1;
                    d.bytes += bytes;
                }
                _ => days.push(StorageDay {
                    day,
                    ticks: 1,
                    bytes: *bytes,
                }),
            }
        }
        let total_ticks = sizes.len();
        let total_bytes: u64 = sizes.iter().map(|s| s.1).sum();
        let mean = total_bytes.checked_div(total_ticks as u64).unwrap_or(0);
        let per_day = (DAY / state.store.bucket_width().seconds()) as u64;
        Ok(Json(StorageReport {
            from,
            to,
            retention_days,
            days,
            total_ticks,
            total_bytes,
            mean_bytes_per_tick: mean,
            full_day_bytes: mean * per_day,
            retention_bytes: mean * per_day * retention_days.max(0) as u64,
        }))
    })
    .await
}

/// `GET /api/v1/snapshots/bundle?from=&to=`: the stored analyses of a range as one
/// graph-core bundle document, for offline replay: each tick's snapshot with detection's
/// summary and storms, the sources behind, and the sources stale when it was analysed
/// (for analyses stored before those were kept, derived from the sources' states now;
/// see [`crate::analysis::Analyzer::stale_sources`]).
pub async fn bundle(
    State(state): State<AppState>,
    Params(q): Params<RangeQuery>,
) -> Result<impl axum::response::IntoResponse, AppError> {
    blocking(move || {
        let (from, to) = resolve_range(&state, &q, MAX_SNAPSHOT_RANGE_S)?;
        let store = state.store.as_ref();
        let registry = state.analyzer.registry(store)?;
        let mut bundle = Bundle::new(store.bucket_width(), registry.catalog.clone());
        let ticks = analysed_in(&state, from, to)?;
        let sources = store.sources()?;
        for t in ticks {
            let Some(s) = state.analyzer.peek(store, t)? else {
                continue;
            };
            let stale_sources = match &s.stale_sources {
                Some(names) => names.clone(),
                None => state.analyzer.stale_sources(&sources, s.analysed_at),
            };
            bundle
                .push(BundleTick {
                    snapshot: s.snapshot.clone(),
                    summary: s.summary,
                    storms: s.storms.clone(),
                    sources_behind: s.sources_behind.clone(),
                    stale_sources,
                })
                .map_err(|e| AppError::Internal(e.into()))?;
        }
        let name = |t: Tick| {
            crate::ingest::timefmt::format_time(t)
                .replace([':', '-'], "")
                .trim_end_matches('Z')
                .to_string()
        };
        let disposition = format!(
            "attachment; filename=\"epicenter-{}-{}.json\"",
            name(from),
            name(to)
        );
        Ok((
            [(axum::http::header::CONTENT_DISPOSITION, disposition)],
            Json(bundle),
        ))
    })
    .await
}

/// `GET /api/v1/activity?from=&to=`: site-wide activity, with the same range in the
/// six previous weeks.
pub async fn activity(
    State(state): State<AppState>,
    Params(q): Params<RangeQuery>,
) -> Result<Json<ActivityResponse>, AppError> {
    blocking(move || {
        let (from, to) = resolve_range(&state, &q, MAX_SERIES_RANGE_S)?;
        let store = state.store.as_ref();
        let weeks = (1..=WEEKS_BACK)
            .map(|k| {
                let shift = i64::from(k) * WEEK;
                Ok(ActivityWeek {
                    weeks_ago: k,
                    points: store.activity(from - shift, to - shift)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(Json(ActivityResponse {
            from,
            to,
            points: store.activity(from, to)?,
            weeks,
        }))
    })
    .await
}

/// `GET /api/v1/topology`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopologyResponse {
    /// Every cluster, by id.
    pub clusters: Vec<ClusterInfo>,
    /// Distinct services.
    pub services: Vec<String>,
    /// Servers the topology does not map.
    pub unmapped_servers: usize,
    /// Where the mapping comes from: a file path, or `identity` (each server is its
    /// own cluster).
    pub source: String,
}

/// `GET /api/v1/topology`: the clusters known to the store and their services.
pub async fn topology(State(state): State<AppState>) -> Result<Json<TopologyResponse>, AppError> {
    blocking(move || {
        let store = state.store.as_ref();
        let registry = state.analyzer.registry(store)?;
        let clusters: Vec<ClusterInfo> = registry
            .catalog
            .iter()
            .map(|(id, _)| cluster_info(&registry, id))
            .collect();
        let mut services: Vec<String> = clusters.iter().map(|c| c.service.clone()).collect();
        services.sort();
        services.dedup();
        let source = state.ingest.lock().expect("ingest lock").topology_source();
        Ok(Json(TopologyResponse {
            clusters,
            services,
            unmapped_servers: store.unmapped()?.len(),
            source,
        }))
    })
    .await
}

/// One unmapped server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnmappedServer {
    /// Its name as sent.
    pub server: String,
    /// Records that named it.
    pub records: u64,
}

/// `GET /api/v1/topology/unmapped`: servers the topology does not map, most records
/// first.
pub async fn unmapped(
    State(state): State<AppState>,
) -> Result<Json<Vec<UnmappedServer>>, AppError> {
    blocking(move || {
        let mut list: Vec<UnmappedServer> = state
            .store
            .unmapped()?
            .into_iter()
            .map(|(server, records)| UnmappedServer { server, records })
            .collect();
        list.sort_by(|a, b| b.records.cmp(&a.records).then(a.server.cmp(&b.server)));
        Ok(Json(list))
    })
    .await
}

/// The sources as the API and `/metrics` show them.
pub fn source_views(state: &AppState, now: i64) -> Result<SourcesResponse, AppError> {
    let cfg = &state.sources;
    let mut sources: Vec<SourceView> = state
        .store
        .sources()?
        .into_iter()
        .map(|s| {
            let silent_s = (now - s.last_arrival).max(0);
            SourceView {
                pull: state.pulls.view(&s.name),
                stale: silent_s > cfg.stale_after_s && silent_s <= cfg.retire_after_s,
                retired: silent_s > cfg.retire_after_s,
                name: s.name,
                last_arrival: s.last_arrival,
                last_tick: s.last_tick,
                silent_s,
                batches: s.batches,
                records: s.records,
                clusters: s.clusters.len(),
            }
        })
        .collect();
    // A configured pull source that never delivered still shows, stale once a pull
    // has failed.
    for (name, pull) in state.pulls.views() {
        if sources.iter().any(|s| s.name == name) {
            continue;
        }
        sources.push(SourceView {
            stale: pull.last_error.is_some(),
            retired: false,
            name,
            last_arrival: 0,
            last_tick: 0,
            silent_s: 0,
            batches: 0,
            records: 0,
            clusters: 0,
            pull: Some(pull),
        });
    }
    let stale = sources
        .iter()
        .filter(|s| s.stale)
        .map(|s| s.name.clone())
        .collect();
    Ok(SourcesResponse {
        stale_after_s: cfg.stale_after_s,
        sources,
        stale,
    })
}

/// `GET /api/v1/sources`: every data source, when it last sent data and whether it is
/// stale.
pub async fn sources(State(state): State<AppState>) -> Result<Json<SourcesResponse>, AppError> {
    blocking(move || source_views(&state, unix_now()).map(Json)).await
}
