//! `/api/v1/marks`: known anomalies, incidents and new trends that people make, change
//! and close. Every change names the version it read; a stale version is `409`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use graph_core::api::{MarkEvent, MarkView};
use graph_core::model::{EdgeKey, Tick};
use graph_core::prune::{EdgeRole, Mark, MarkKind, MarkTarget};
use serde::Deserialize;

use super::{Params, blocking, read_body, require_media_type, time_param};
use crate::AppState;
use crate::analysis::{ServerEvent, unix_now};
use crate::auth::{Caller, Principal, Scope};
use crate::error::AppError;
use crate::ingest::values::time_value;
use crate::marks::{MarkChange, StoredMark, view};
use crate::store::Registry;

/// Longest description accepted, characters.
const MAX_DESCRIPTION: usize = 4000;

/// An edge by cluster names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeRef {
    /// Caller cluster.
    pub src: String,
    /// Callee cluster.
    pub dst: String,
}

/// The body of `POST /api/v1/marks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMark {
    /// `known_anomaly`, `incident` or `new_trend`.
    pub kind: MarkKind,
    /// The tick looked at (RFC 3339 or Unix seconds).
    pub tick: serde_json::Value,
    /// One edge…
    #[serde(default)]
    pub edge: Option<EdgeRef>,
    /// …or the whole pruned graph at the tick.
    #[serde(default)]
    pub graph: bool,
    /// Why.
    pub description: String,
    /// A known anomaly's expiry.
    #[serde(default)]
    pub until: Option<serde_json::Value>,
    /// A new trend's first tick (default: the tick).
    #[serde(default)]
    pub from: Option<serde_json::Value>,
}

/// The body of `PATCH /api/v1/marks/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkPatch {
    /// The version the change is based on.
    pub version: u64,
    /// End it now.
    #[serde(default)]
    pub close: bool,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New expiry (known anomalies).
    #[serde(default)]
    pub until: Option<serde_json::Value>,
}

/// Query of `GET /api/v1/marks`.
#[derive(Debug, Deserialize)]
pub struct MarksQuery {
    /// Only marks covering this edge, `caller>callee`.
    pub edge: Option<String>,
    /// Only marks active at this time.
    pub active_at: Option<String>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest {
        message: message.into(),
        details: vec![],
    }
}

fn field_time(name: &str, v: &serde_json::Value, width: i64) -> Result<Tick, AppError> {
    let t = time_value(v).map_err(|m| bad(format!("field \"{name}\": {m}")))?;
    Ok(t - t.rem_euclid(width))
}

fn cluster(registry: &Registry, name: &str) -> Result<graph_core::model::ClusterId, AppError> {
    registry
        .clusters_named(name)
        .into_iter()
        .find(|id| registry.catalog.get(*id).name == name)
        .ok_or_else(|| bad(format!("no cluster named {name:?}")))
}

fn description(text: &str) -> Result<String, AppError> {
    let d = text.trim();
    if d.is_empty() {
        return Err(bad(
            "field \"description\": say why (it is shown to everyone with the mark)",
        ));
    }
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(bad(format!(
            "field \"description\": at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(d.to_string())
}

/// At most this many ticks are analysed again before a mark change is answered; the
/// detection loop does the rest.
const SYNC_TICKS: usize = 24;

/// Analyses the ticks a mark changes: its own tick and up to [`SYNC_TICKS`] after it
/// (to the newest) at once, so answers and open screens show it; older or further ticks
/// in the background.
/// Re-analyses after a mark changed the ticks from `from` on: the tick `at` and up to
/// [`SYNC_TICKS`] after it now, the newest tick too, the rest in the background.
pub fn reanalyse(state: &AppState, from: Tick, at: Tick, now: i64) -> Result<(), AppError> {
    let store = state.store.as_ref();
    let width = store.bucket_width().seconds();
    let (earliest, latest) = state.analyzer.range(store)?.unwrap_or((at, at));
    // A trend may start before the stored data; nothing earlier can change.
    let from = from.max(earliest);
    state.analyzer.forget(&[from]);
    let after: Vec<Tick> = (0..)
        .map(|i| at + i * width)
        .take_while(|t| *t <= latest)
        .collect();
    let (now_due, later) = after.split_at(after.len().min(SYNC_TICKS));
    for &t in now_due {
        state.analyzer.run(store, t, now)?;
    }
    if latest > at && !now_due.contains(&latest) {
        state.analyzer.run(store, latest, now)?;
    }
    let mut background: Vec<Tick> = (0..)
        .map(|i| from + i * width)
        .take_while(|t| *t < at)
        .collect();
    background.extend(later.iter().copied().filter(|t| *t != latest));
    state.detector.touched(&background);
    Ok(())
}

fn names(registry: &Registry) -> impl Fn(graph_core::model::ClusterId) -> String + '_ {
    move |id| registry.catalog.get(id).name.clone()
}

/// `POST /api/v1/marks`: marks one edge, or the whole pruned graph at a tick, as a known
/// anomaly (with an expiry), an incident or a new trend. The severity at the tick is
/// recorded, so the mark can tell when the edge gets worse.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<MarkView>), AppError> {
    let who = caller.require(Scope::Write)?;
    require_media_type(&headers, &["application/json"])?;
    let body = read_body(body, 64 * 1024).await?;
    let req: NewMark = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not a valid mark: {e}")))?;
    blocking(move || create_blocking(&state, &who, req)).await
}

fn create_blocking(
    state: &AppState,
    who: &Principal,
    req: NewMark,
) -> Result<(StatusCode, Json<MarkView>), AppError> {
    let store = state.store.as_ref();
    let width = store.bucket_width().seconds();
    let now = unix_now();
    let tick = field_time("tick", &req.tick, width)?;
    let (tick, _, _) = state.analyzer.resolve(store, Some(tick))?;
    let description = description(&req.description)?;
    let until = req
        .until
        .as_ref()
        .map(|v| field_time("until", v, width))
        .transpose()?;
    let trend_from = req
        .from
        .as_ref()
        .map(|v| field_time("from", v, width))
        .transpose()?;
    match req.kind {
        MarkKind::KnownAnomaly => match until {
            Some(u) if u > tick => {}
            Some(_) => {
                return Err(bad(
                    "field \"until\": a known anomaly must expire after the tick it is made at",
                ));
            }
            None => return Err(bad("field \"until\": a known anomaly needs an expiry")),
        },
        MarkKind::Incident if until.is_some() => {
            return Err(bad(
                "field \"until\": an incident stays open until it is closed",
            ));
        }
        MarkKind::NewTrend if until.is_some() => {
            return Err(bad("field \"until\": a new trend does not expire"));
        }
        _ => {}
    }
    if trend_from.is_some() && req.kind != MarkKind::NewTrend {
        return Err(bad("field \"from\": only a new trend has a start"));
    }
    if trend_from.is_some_and(|f| f > tick) {
        return Err(bad(
            "field \"from\": a new trend starts at or before the tick it is made at",
        ));
    }
    let registry = state.analyzer.registry(store)?;
    let analysis = state.analyzer.stored(store, tick)?;
    let pruned = &analysis.snapshot.pruned;
    let severity_of = |e: EdgeKey| {
        pruned
            .edge(e)
            .map(|p| p.severity)
            .or_else(|| {
                pruned
                    .hidden
                    .iter()
                    .find(|h| h.edge == e)
                    .map(|h| h.severity)
            })
            .unwrap_or(0.0)
    };
    let (target, severity) = match (&req.edge, req.graph) {
        (Some(e), false) => {
            let edge = EdgeKey {
                src: cluster(&registry, &e.src)?,
                dst: cluster(&registry, &e.dst)?,
            };
            (MarkTarget::Edge { edge }, severity_of(edge))
        }
        (None, true) => {
            let edges: Vec<EdgeKey> = pruned
                .edges
                .iter()
                .filter(|e| e.role == EdgeRole::Anomalous)
                .map(|e| e.edge)
                .collect();
            if edges.is_empty() {
                return Err(bad(
                    "nothing anomalous is shown at this tick: there is no graph to mark",
                ));
            }
            let sev = edges.iter().map(|e| severity_of(*e)).fold(0.0, f64::max);
            (MarkTarget::Graph { edges }, sev)
        }
        _ => {
            return Err(bad(
                "name either \"edge\": {\"src\", \"dst\"} or \"graph\": true",
            ));
        }
    };
    let mark = StoredMark {
        mark: Mark {
            id: 0,
            kind: req.kind,
            target,
            severity,
            created: tick,
            until,
            author: who.name.clone(),
            description,
        },
        version: 1,
        trend_from,
        author_name: who.display_name.clone(),
        made_at: now,
        history: vec![MarkChange {
            version: 1,
            at: now,
            by: who.name.clone(),
            what: "created".into(),
        }],
        jira: (req.kind == MarkKind::Incident && state.jira_public_url.is_some()).then(|| {
            crate::marks::JiraLink {
                reported_severity: severity,
                ..Default::default()
            }
        }),
    };
    let mut mark = mark;
    if let (true, Some(public)) = (mark.jira.is_some(), state.jira_public_url.as_deref()) {
        // The issue tells what was known when the incident was opened, before the mark
        // hides its edges; written with the mark, so the outbox never sees it without.
        let description = crate::jira::describe(state, &mark, public)?;
        if let Some(link) = mark.jira.as_mut() {
            link.description = description;
        }
    }
    let id = store.insert_mark(&mark)?;
    mark.mark.id = id;
    tracing::info!(id, kind = ?mark.mark.kind, by = %who.name, "mark created");
    reanalyse(state, mark.first_tick(), tick, now)?;
    state
        .analyzer
        .events
        .send(ServerEvent::Mark(MarkEvent { id, version: 1 }));
    state.jira_wake.notify_one();
    Ok((StatusCode::CREATED, Json(view(&mark, &names(&registry)))))
}

/// `PATCH /api/v1/marks/{id}`: closes a mark or changes its description or expiry. The
/// body names the version it is based on; if someone changed the mark since, nothing
/// changes and the answer is `409` saying who changed it.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<MarkView>, AppError> {
    let who = caller.require(Scope::Write)?;
    require_media_type(&headers, &["application/json"])?;
    let body = read_body(body, 64 * 1024).await?;
    let patch: MarkPatch = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not a valid change: {e}")))?;
    blocking(move || {
        let store = state.store.as_ref();
        let width = store.bucket_width().seconds();
        let now = unix_now();
        let Some(current) = store.marks()?.into_iter().find(|m| m.mark.id == id) else {
            return Err(AppError::NotFound(format!("no mark {id}")));
        };
        let conflict = |m: &StoredMark| {
            let last = m.history.last();
            AppError::Conflict(format!(
                "mark {id} was changed by {} at {} (it is now version {}, you changed version {}); reload it and try again",
                last.map_or("someone", |h| h.by.as_str()),
                last.map_or_else(String::new, |h| crate::ingest::timefmt::format_time(h.at)),
                m.version,
                patch.version
            ))
        };
        if current.version != patch.version {
            return Err(conflict(&current));
        }
        let mut next = current.clone();
        let mut what = Vec::new();
        if let Some(d) = &patch.description {
            let d = description(d)?;
            if d != next.mark.description {
                what.push(format!("description: {:?} → {:?}", next.mark.description, d));
                next.mark.description = d;
            }
        }
        if let Some(u) = &patch.until {
            let u = field_time("until", u, width)?;
            if next.mark.kind != MarkKind::KnownAnomaly {
                return Err(bad("field \"until\": only a known anomaly has an expiry; close the others"));
            }
            if u <= next.mark.created {
                return Err(bad("field \"until\": the expiry must be after the mark was made"));
            }
            what.push("expiry changed".into());
            next.mark.until = Some(u);
        }
        if patch.close {
            if next.mark.until.is_some_and(|u| u <= now) {
                return Err(bad(format!("mark {id} has already ended")));
            }
            let latest = state.analyzer.range(store)?.map_or(now, |r| r.1);
            next.mark.until = Some(latest.max(next.mark.created));
            what.push("closed".into());
        }
        if what.is_empty() {
            return Err(bad("nothing to change: send \"close\", \"description\" or \"until\""));
        }
        next.version += 1;
        next.history.push(MarkChange {
            version: next.version,
            at: now,
            by: who.name.clone(),
            what: what.join("; "),
        });
        match store.update_mark(&next, patch.version)? {
            Ok(()) => {}
            Err(Some(other)) => return Err(conflict(&other)),
            Err(None) => return Err(AppError::NotFound(format!("no mark {id}"))),
        }
        tracing::info!(id, by = %who.name, "mark changed");
        let latest = state.analyzer.range(store)?.map_or(next.mark.created, |r| r.1);
        reanalyse(&state, next.first_tick(), latest, now)?;
        state.analyzer.events.send(ServerEvent::Mark(MarkEvent {
            id,
            version: next.version,
        }));
        let registry = state.analyzer.registry(store)?;
        Ok(Json(view(&next, &names(&registry))))
    })
    .await
}

/// `GET /api/v1/marks`: marks, newest first, optionally only those covering an edge
/// or active at a time.
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<MarksQuery>,
) -> Result<Json<Vec<MarkView>>, AppError> {
    let active_at = time_param("active_at", q.active_at.as_deref())?;
    blocking(move || {
        let store = state.store.as_ref();
        let registry = state.analyzer.registry(store)?;
        let edge = match &q.edge {
            None => None,
            Some(e) => {
                let (s, d) = e
                    .split_once('>')
                    .ok_or_else(|| bad("query parameter \"edge\": write it as caller>callee"))?;
                Some(EdgeKey {
                    src: cluster(&registry, s)?,
                    dst: cluster(&registry, d)?,
                })
            }
        };
        let mut marks: Vec<StoredMark> = store
            .marks()?
            .into_iter()
            .filter(|m| edge.is_none_or(|e| m.mark.target.covers(e)))
            .filter(|m| active_at.is_none_or(|t| m.mark.is_active(t)))
            .collect();
        marks.sort_by_key(|m| std::cmp::Reverse(m.mark.id));
        let name = names(&registry);
        Ok(Json(marks.iter().map(|m| view(m, &name)).collect()))
    })
    .await
}
