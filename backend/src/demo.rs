//! Demo mode: six weeks of the synthetic portal from `epicenter-fixtures`, with the
//! messaging-history incident and other scenarios in the last day, loaded into the
//! store so a new user immediately has something worth investigating.

use std::collections::HashMap;
use std::time::Instant;

use epicenter_fixtures::Demo;
use epicenter_fixtures::portal::{Portal, PortalConfig};
use graph_core::detect::{Cell, SeriesKey};
use graph_core::model::{ClusterId, EdgeKey, Tick};

use crate::store::cells::{self, CHUNK_SECONDS};
use crate::store::{RedbStore, Store, StoreError};

/// What a load did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Clusters in the portal.
    pub clusters: usize,
    /// Entities (edges and per-method series) written.
    pub entities: usize,
    /// First and last tick loaded (both inclusive).
    pub range: (Tick, Tick),
    /// Seconds spent generating.
    pub generate_s: f64,
    /// Seconds spent writing.
    pub write_s: f64,
}

/// The `meta` key marking a store as a demo store, holding the demo's end tick.
pub const DEMO_META_KEY: &str = "demo_end";

/// What `serve --demo` should do with the store it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPlan {
    /// The store holds a recent demo: use it as it is.
    Keep,
    /// The store is empty: load the demo.
    Load,
    /// The store holds a demo that ended more than `max_age_s` ago: recreate it.
    Recreate,
}

/// Decides what to do. A store with data that is not a demo is never touched.
pub fn plan(store: &RedbStore, now: Tick, max_age_s: i64) -> anyhow::Result<DemoPlan> {
    let demo_end = store.meta(DEMO_META_KEY)?;
    match (store.tick_range()?, demo_end) {
        (None, _) => Ok(DemoPlan::Load),
        (Some(_), None) => anyhow::bail!(
            "the store at {} holds data that is not the demo; start the demo with another --data-dir",
            store.path().display()
        ),
        (Some(_), Some(end)) if now - end as i64 > max_age_s => Ok(DemoPlan::Recreate),
        (Some(_), Some(_)) => Ok(DemoPlan::Keep),
    }
}

/// Builds the demo portal ending at `end` and loads it into `store`.
pub fn load_demo(store: &mut RedbStore, end: Tick, weeks: u32) -> anyhow::Result<LoadReport> {
    let started = Instant::now();
    let mut config = PortalConfig::new(epicenter_fixtures::demo::DEMO_SEED, end);
    config.weeks_of_history = weeks;
    let portal = Demo::build_with(&config)?;
    let generate_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (entities, range) = load_portal(store, &portal)?;
    store.set_meta(DEMO_META_KEY, range.1 as u64)?;
    store.compact()?;
    Ok(LoadReport {
        clusters: portal.world().catalog().len(),
        entities,
        range,
        generate_s,
        write_s: started.elapsed().as_secs_f64(),
    })
}

/// Writes a portal's clusters, edge series and per-method series into `store`.
/// Returns the number of entities written and the tick range.
pub fn load_portal(
    store: &RedbStore,
    portal: &Portal,
) -> Result<(usize, (Tick, Tick)), StoreError> {
    let width = store.bucket_width();
    let mut reg = store.registry()?;
    let since = reg.persisted();
    let world = portal.world();
    let ids: HashMap<ClusterId, ClusterId> = world
        .catalog()
        .iter()
        .map(|(id, c)| (id, reg.cluster(c.clone())))
        .collect();
    let map = |e: EdgeKey| EdgeKey {
        src: ids[&e.src],
        dst: ids[&e.dst],
    };
    let edge_keys = portal.edge_keys();
    let edge_entities: Vec<u32> = edge_keys
        .iter()
        .map(|e| reg.entity(SeriesKey::edge(map(*e))))
        .collect();
    let methods = portal.methods();
    let method_entities: Vec<u32> = methods
        .slots
        .iter()
        .map(|slot| {
            let m = reg.method(&slot.method);
            reg.entity(SeriesKey::method(map(edge_keys[slot.edge]), m))
        })
        .collect();
    store.write(&reg, since, &Default::default(), false)?;

    let write_series =
        |series: &epicenter_fixtures::portal::Series, entities: &[u32]| -> Result<(), StoreError> {
            if series.ticks() == 0 {
                return Ok(());
            }
            let first_hour = cells::chunk_of(series.start());
            let mut hour = first_hour;
            let mut batch = Vec::new();
            while hour < series.end() {
                for (col, &entity) in entities.iter().enumerate() {
                    let mut chunk = cells::empty_chunk(width);
                    let mut any = false;
                    for slot in 0..cells::cells_per_chunk(width) {
                        let tick = hour + slot as i64 * width.seconds();
                        if let Some(c) = series.at(tick, col) {
                            cells::write_cell(&mut chunk, slot, &Cell::new(&c));
                            any = true;
                        }
                    }
                    if any {
                        batch.push((hour, entity, chunk));
                    }
                }
                if batch.len() >= 50_000 {
                    store.put_chunks(&batch, false)?;
                    batch.clear();
                }
                hour += CHUNK_SECONDS;
            }
            store.put_chunks(&batch, false)
        };
    write_series(portal.edges(), &edge_entities)?;
    write_series(&methods.series, &method_entities)?;
    let edges = portal.edges();
    let activity: Vec<(Tick, f64)> = portal
        .activity()
        .iter()
        .enumerate()
        .map(|(i, v)| (edges.tick(i), *v))
        .collect();
    store.put_activity(&activity, false)?;
    let changes: Vec<_> = portal
        .changes()
        .iter()
        .map(|c| graph_core::link::ConfigChange {
            id: crate::ingest::values::change_id(&c.id),
            ts: c.ts,
            author: c.author.clone(),
            clusters: c
                .clusters
                .iter()
                .filter_map(|name| reg.catalog.id(name))
                .collect(),
            description: format!("{}: {}", c.id, c.description),
            link: Some(c.link.clone()),
        })
        .collect();
    store.put_changes(&changes)?;
    let last = edges.end() - width.seconds();
    write_pairs(store, portal, &ids, last)?;
    // One durable commit at the end makes everything before it durable too.
    store.put_chunks(&[], true)?;
    Ok((
        edge_entities.len() + method_entities.len(),
        (portal.edges().start(), last),
    ))
}

/// Hours of server-level records the demo holds for the drill-down (live ingestion
/// keeps `retention.server_pairs_hours`).
pub const DEMO_PAIR_HOURS: i64 = 3;

/// Splits the last [`DEMO_PAIR_HOURS`] of cluster edges into server pairs, as the
/// fixtures' server level does, and stores them for the drill-down.
fn write_pairs(
    store: &RedbStore,
    portal: &Portal,
    ids: &HashMap<ClusterId, ClusterId>,
    last: Tick,
) -> Result<(), StoreError> {
    use epicenter_fixtures::server::ServerLevel;
    let sim = portal
        .simulation()
        .map_err(|e| StoreError::Backend(format!("demo simulation: {e}")))?;
    let world = portal.world();
    let cluster_of: HashMap<&str, ClusterId> = world
        .servers()
        .iter()
        .map(|s| (s.name.as_str(), ids[&s.cluster]))
        .collect();
    let level = ServerLevel::new(sim);
    let edges = portal.edges();
    let width = store.bucket_width().seconds();
    let mut reg = store.registry()?;
    let first = (last - DEMO_PAIR_HOURS * 3600 + width).max(edges.start());
    let mut t = first;
    while t <= last {
        let Some(i) = edges.index(t) else {
            t += width;
            continue;
        };
        let since = reg.persisted();
        let counters: Vec<_> = (0..edges.width()).map(|c| edges.get(i, c)).collect();
        let mut sums: std::collections::BTreeMap<(u32, u32, u32), graph_core::model::Counters> =
            Default::default();
        for call in level.split(t, &counters) {
            let (Some(&src), Some(&dst)) = (
                cluster_of.get(call.src.as_str()),
                cluster_of.get(call.dst.as_str()),
            ) else {
                continue;
            };
            let Some(entity) = reg.find_entity(&SeriesKey::edge(EdgeKey { src, dst })) else {
                continue;
            };
            let key = (entity, reg.server(&call.src), reg.server(&call.dst));
            sums.entry(key)
                .or_default()
                .add(&graph_core::model::Counters {
                    requests: call.requests as f64,
                    errors: call.errors as f64,
                    latency_ms_sum: call.latency_ms_sum,
                });
        }
        let pairs = sums
            .into_iter()
            .map(|((entity, src, dst), counters)| crate::store::PairRow {
                tick: t,
                entity,
                src,
                dst,
                counters,
            })
            .collect();
        let batch = crate::store::WriteBatch {
            pairs,
            ..Default::default()
        };
        store.write(&reg, since, &batch, false)?;
        t += width;
    }
    Ok(())
}

/// Accounts `serve --demo` creates (name, display name, password): known passwords, so
/// anyone trying the demo can sign in. Never used outside demo mode.
pub const DEMO_USERS: [(&str, &str, &str); 2] = [
    ("alice", "Alice Martin", "alice-on-call"),
    ("bob", "Bob Chen", "bob-on-call"),
];

/// Creates the [`DEMO_USERS`] that do not exist yet; returns `name / password, ...` to
/// print.
pub fn ensure_demo_users(store: &dyn Store) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    for (name, display, password) in DEMO_USERS {
        if store.user(name)?.is_none() {
            crate::auth::put_user(
                store,
                name,
                display,
                password,
                vec![crate::auth::Scope::Read, crate::auth::Scope::Write],
                now,
            )?;
        }
    }
    Ok(DEMO_USERS
        .iter()
        .map(|(n, _, p)| format!("{n} / {p}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// The mark the demo comes with: Bob marked the overnight compaction episode on the edge
/// into `counters-cdb` as a known anomaly while it ran, so a developer checking the
/// service the next morning finds it with his reason. Made only in a demo store without
/// marks; returns the mark's id when it made one.
pub fn seed_demo_marks(state: &crate::AppState) -> anyhow::Result<Option<u64>> {
    use graph_core::prune::{Mark, MarkKind, MarkTarget};
    let store = state.store.as_ref();
    let Some(end) = store.meta(DEMO_META_KEY)? else {
        return Ok(None);
    };
    if !store.marks()?.is_empty() {
        return Ok(None);
    }
    let world = epicenter_fixtures::world::World::build(epicenter_fixtures::demo::DEMO_SEED);
    let scenarios = Demo::scenarios(&world, end as Tick)?;
    let Some(night) = scenarios.iter().find(|s| s.name == "overnight-compaction") else {
        return Ok(None);
    };
    let Some((src, dst, _)) = night
        .should_flag
        .iter()
        .find(|(_, dst, _)| dst == "counters-cdb")
        .or(night.should_flag.first())
    else {
        return Ok(None);
    };
    let registry = state.analyzer.registry(store)?;
    let (Some(src), Some(dst)) = (registry.catalog.id(src), registry.catalog.id(dst)) else {
        return Ok(None);
    };
    let edge = EdgeKey { src, dst };
    // Bob marked it at its worst, with the severity it had then.
    let width = store.bucket_width();
    let mut created = width.floor(night.onset);
    let mut severity = 0.0f64;
    let mut t = created;
    while t < night.end {
        let s = state
            .analyzer
            .stored(store, t)?
            .snapshot
            .observations
            .iter()
            .find(|o| o.edge == edge)
            .map_or(0.0, |o| o.severity());
        if s > severity {
            (created, severity) = (t, s);
        }
        t += width.seconds();
    }
    let made_at = created + 3 * 60;
    let (name, display, _) = DEMO_USERS[1];
    let mark = crate::marks::StoredMark {
        mark: Mark {
            id: 0,
            kind: MarkKind::KnownAnomaly,
            target: MarkTarget::Edge { edge },
            severity,
            created,
            until: Some(width.floor(night.end + 2 * 3600)),
            author: name.into(),
            description: "Nightly compaction on counters-cdb ran long after the data grew; \
                          expected until it finishes. Moving the job earlier is tracked in the \
                          storage team's backlog."
                .into(),
        },
        version: 1,
        trend_from: None,
        author_name: display.into(),
        made_at,
        history: vec![crate::marks::MarkChange {
            version: 1,
            at: made_at,
            by: name.into(),
            what: "created".into(),
        }],
        jira: None,
    };
    let id = store.insert_mark(&mark)?;
    crate::handlers::marks::reanalyse(state, created, created, crate::analysis::unix_now())?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_core::detect::SeriesView;
    use graph_core::model::Metric;

    #[test]
    fn the_demo_loads_and_its_incident_is_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            RedbStore::open(dir.path(), graph_core::model::BucketWidth::FIVE_MINUTES).unwrap();
        let end = 1_795_000_200;
        let report = load_demo(&mut store, end, 0).unwrap();
        assert!(report.clusters > 250, "{report:?}");
        let reg = store.registry().unwrap();
        let (first, last) = store.tick_range().unwrap().unwrap();
        assert_eq!(last, report.range.1);
        assert!(first <= end - 86_400 + 3600);
        let cdb = reg.catalog.id("messaging-conversation-cdb").unwrap();
        let proxy = reg.catalog.id("messaging-proxy").unwrap();
        let e = reg
            .find_entity(&SeriesKey::edge(EdgeKey {
                src: proxy,
                dst: cdb,
            }))
            .unwrap();
        let before = last - 3 * 3600;
        let view = store.load_view(&reg, &[before, last]).unwrap();
        let lat = |t| {
            view.column(t)
                .unwrap()
                .cell(e as usize)
                .counters()
                .unwrap()
                .metric(Metric::Latency)
                .unwrap()
        };
        let delta = lat(last) - lat(before);
        assert!(
            (delta - 40.0).abs() < 8.0,
            "storage edge latency delta {delta}"
        );
    }
}
