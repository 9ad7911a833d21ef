//! Config changes: `POST /api/v1/changes` (a token with the `ingest` scope) and
//! `GET /api/v1/changes?from=&to=&cluster=`.

use crate::ingest::values::{change_id, kind, time_value};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use graph_core::api::ChangeView;
use graph_core::link::ConfigChange;
use serde::{Deserialize, Serialize};

use super::query::MAX_SNAPSHOT_RANGE_S;
use super::{Params, blocking, require_media_type, time_param};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::error::AppError;
use crate::store::Registry;

/// A change as clients send it.
#[derive(Debug)]
pub struct NewChange {
    /// The change's id in the system it comes from: an integer or a string such as
    /// `"CHG-1042"`. Sending the same id again replaces the change.
    pub id: serde_json::Value,
    /// When it was applied: RFC 3339 or Unix seconds.
    pub ts: serde_json::Value,
    /// Who made it.
    pub author: String,
    /// Clusters or services it touched (a service means all its clusters).
    pub clusters: Vec<String>,
    /// What it was.
    pub description: String,
    /// Where to read more.
    pub link: Option<String>,
}

/// The fields a change may have.
pub const CHANGE_FIELDS: [&str; 6] = ["id", "ts", "author", "clusters", "description", "link"];

impl NewChange {
    /// Reads a change from its JSON value; errors name the field (`field "author":
    /// expected a string, got a number`, `field "clusters[2]": ...`).
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        use serde_json::Value;
        let Value::Object(mut obj) = value else {
            return Err(format!("expected a JSON object, got {}", kind(&value)));
        };
        if let Some(k) = obj.keys().find(|k| !CHANGE_FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "field \"{k}\": unknown field; the fields are {}",
                CHANGE_FIELDS.join(", ")
            ));
        }
        let mut take = |name: &str| {
            obj.remove(name)
                .ok_or_else(|| format!("field \"{name}\": is missing"))
        };
        let text = |name: &str, v: Value| match v {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "field \"{name}\": expected a string, got {}",
                kind(&other)
            )),
        };
        let id = take("id")?;
        let ts = take("ts")?;
        let author = text("author", take("author")?)?;
        let clusters = match take("clusters")? {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| text(&format!("clusters[{i}]"), v))
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(format!(
                    "field \"clusters\": expected an array of names, got {}",
                    kind(&other)
                ));
            }
        };
        let description = text("description", take("description")?)?;
        let link = match obj.remove("link") {
            None | Some(Value::Null) => None,
            Some(v) => Some(text("link", v)?),
        };
        Ok(NewChange {
            id,
            ts,
            author,
            clusters,
            description,
            link,
        })
    }
}

/// The answer to an accepted `POST /api/v1/changes`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangesAccepted {
    /// Changes stored.
    pub accepted: usize,
    /// Their ids as stored.
    pub ids: Vec<u64>,
}

/// Checks one change and turns it into graph-core's form; errors name the field.
fn convert(registry: &Registry, c: NewChange) -> Result<ConfigChange, String> {
    let (id, label) = match &c.id {
        serde_json::Value::Number(n) => (
            n.as_u64()
                .ok_or_else(|| format!("field \"id\": {n} is not a non-negative integer"))?,
            None,
        ),
        serde_json::Value::String(s) if !s.trim().is_empty() => match s.trim().parse::<u64>() {
            Ok(n) => (n, None),
            Err(_) => (change_id(s.trim()), Some(s.trim().to_string())),
        },
        serde_json::Value::String(_) => return Err("field \"id\": must not be empty".into()),
        other => {
            return Err(format!(
                "field \"id\": expected an integer or a string, got {other}"
            ));
        }
    };
    let ts = time_value(&c.ts).map_err(|m| format!("field \"ts\": {m}"))?;
    if c.author.trim().is_empty() {
        return Err("field \"author\": must not be empty".into());
    }
    if c.description.trim().is_empty() {
        return Err("field \"description\": must not be empty".into());
    }
    if c.clusters.is_empty() {
        return Err("field \"clusters\": name at least one cluster or service".into());
    }
    let mut clusters = Vec::new();
    for (i, name) in c.clusters.iter().enumerate() {
        let ids = registry.clusters_named(name);
        if ids.is_empty() {
            return Err(format!(
                "field \"clusters[{i}]\": no cluster or service named {name:?}"
            ));
        }
        clusters.extend(ids);
    }
    clusters.sort_unstable();
    clusters.dedup();
    let description = match label {
        Some(l) if !c.description.contains(&l) => format!("{l}: {}", c.description),
        _ => c.description,
    };
    Ok(ConfigChange {
        id,
        ts,
        author: c.author,
        clusters,
        description,
        link: c.link,
    })
}

/// Parses the body of `POST /api/v1/changes` (one change object or an array of them)
/// against the clusters and services in `registry`. Either every change is valid, or
/// the error lists each bad one (`change 1: field "author": ...`).
///
/// # Complexity
/// O(bytes + names of clusters × clusters known).
///
/// ```
/// use epicenter_backend::error::AppError;
/// use epicenter_backend::handlers::changes::parse_changes;
/// use epicenter_backend::store::Registry;
/// use graph_core::model::Cluster;
/// let mut registry = Registry::default();
/// registry.cluster(Cluster { name: "db".into(), service: "db".into(), dc: None, tier: None });
/// let one = br#"{"id": 7, "ts": 600, "author": "ops", "clusters": ["db"], "description": "pool"}"#;
/// assert_eq!(parse_changes(one, &registry).unwrap()[0].id, 7);
/// let bad = br#"[{"id": 7, "ts": 600, "author": 5, "clusters": ["db"], "description": "pool"}]"#;
/// let Err(AppError::BadRequest { details, .. }) = parse_changes(bad, &registry) else { panic!() };
/// assert_eq!(details, ["change 0: field \"author\": expected a string, got a number"]);
/// ```
pub fn parse_changes(body: &[u8], registry: &Registry) -> Result<Vec<ConfigChange>, AppError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| AppError::BadRequest {
            message: format!("the body is not valid JSON: {e}"),
            details: vec![],
        })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let parsed = NewChange::from_json(item).and_then(|c| convert(registry, c));
        match parsed {
            Ok(c) => changes.push(c),
            Err(m) => errors.push(format!("change {i}: {m}")),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::BadRequest {
            message: format!("{} changes are invalid; nothing was stored", errors.len()),
            details: errors,
        });
    }
    Ok(changes)
}

/// `POST /api/v1/changes`: one change object or an array of them, as JSON. All are
/// stored, durably, or none.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<ChangesAccepted>, AppError> {
    caller.require(Scope::Ingest)?;
    require_media_type(&headers, &["application/json"])?;
    let body = super::read_body(body, state.max_body_bytes).await?;
    blocking(move || {
        let store = state.store.as_ref();
        let registry = state.analyzer.registry(store)?;
        let changes = parse_changes(&body, &registry)?;
        store.put_changes(&changes)?;
        // Ticks whose links may change: from each change to the end of its link window.
        let width = store.bucket_width();
        let window = state.analyzer.config().link.window_s;
        let ticks: Vec<_> = changes
            .iter()
            .flat_map(|c| {
                let first = width.floor(c.ts);
                (0..=window / width.seconds()).map(move |i| first + i * width.seconds())
            })
            .collect();
        state.analyzer.forget(&ticks);
        state.detector.touched(&ticks);
        Ok(Json(ChangesAccepted {
            accepted: changes.len(),
            ids: changes.iter().map(|c| c.id).collect(),
        }))
    })
    .await
}

/// `?from=&to=&cluster=`
#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    /// RFC 3339 or Unix seconds.
    pub from: Option<String>,
    /// RFC 3339 or Unix seconds.
    pub to: Option<String>,
    /// Only changes touching this cluster or service.
    pub cluster: Option<String>,
}

/// `GET /api/v1/changes`: changes applied in the range (the last day by default).
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<ChangesQuery>,
) -> Result<Json<Vec<ChangeView>>, AppError> {
    let to = time_param("to", q.to.as_deref())?;
    let from = time_param("from", q.from.as_deref())?;
    blocking(move || {
        let store = state.store.as_ref();
        let to = match to {
            Some(t) => t,
            None => super::query::resolve_live(&state)? + store.bucket_width().seconds(),
        };
        let from = from.unwrap_or(to.saturating_sub(86_400));
        let (from, to) = super::query::check_range(from, to, MAX_SNAPSHOT_RANGE_S)?;
        let registry = state.analyzer.registry(store)?;
        let only = match &q.cluster {
            Some(name) => {
                let ids = registry.clusters_named(name);
                if ids.is_empty() {
                    return Err(AppError::NotFound(format!(
                        "query parameter \"cluster\": no cluster or service named {name:?}"
                    )));
                }
                Some(ids)
            }
            None => None,
        };
        Ok(Json(
            store
                .changes(from, to)?
                .into_iter()
                .filter(|c| {
                    only.as_ref()
                        .is_none_or(|ids| c.clusters.iter().any(|x| ids.contains(x)))
                })
                .map(|c| change_view(&registry, c))
                .collect(),
        ))
    })
    .await
}

/// A change with cluster names.
pub fn change_view(registry: &Registry, c: ConfigChange) -> ChangeView {
    ChangeView {
        id: c.id,
        ts: c.ts,
        author: c.author,
        clusters: c
            .clusters
            .iter()
            .map(|id| registry.catalog.get(*id).name.clone())
            .collect(),
        description: c.description,
        link: c.link,
    }
}
