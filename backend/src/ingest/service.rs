//! Applying a batch of call statistics: parse, map servers to clusters, aggregate, and
//! write everything in one durable transaction. A batch with any bad line changes
//! nothing.

use std::collections::{BTreeMap, HashSet};

use graph_core::model::{ClusterId, Tick};
use serde::{Deserialize, Serialize};

use crate::aggregate::aggregate_with;
use crate::error::AppError;
use crate::ingest::{CallRecord, Limits, parse_calls};
use crate::store::cells::chunk_of;
use crate::store::{HeldChanges, PairRow, Registry, SourceUpdate, Store, WriteBatch};
use crate::topology::Topology;

/// What ingestion keeps between batches: the id registry and the topology, under one
/// lock so ids are given out in the order they are written.
#[derive(Debug)]
pub struct IngestState {
    registry: Registry,
    topology: Topology,
    topology_source: String,
    resolved: rustc_hash::FxHashMap<String, Option<ClusterId>>,
}

/// The answer to an accepted batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    /// Records stored.
    pub accepted: u64,
    /// Records left aside because a server is not in the topology.
    pub unmapped_records: u64,
    /// Buckets touched, ascending.
    pub ticks: Vec<Tick>,
}

impl IngestState {
    /// State for `store` with `topology`.
    pub fn new(store: &dyn Store, topology: Topology) -> Result<Self, AppError> {
        Ok(IngestState {
            registry: store.registry()?,
            topology,
            topology_source: "identity".into(),
            resolved: Default::default(),
        })
    }

    /// Records where the topology came from (a file path), for the API.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.topology_source = source.into();
        self
    }

    /// Where the topology came from: a file path, or `identity`.
    pub fn topology_source(&self) -> String {
        self.topology_source.clone()
    }

    /// Replaces the topology (a reload). Servers are mapped anew from the next batch
    /// on; data already stored keeps the clusters it was stored under.
    pub fn set_topology(&mut self, topology: Topology) {
        self.topology = topology;
        self.resolved.clear();
    }

    /// Applies NDJSON `text` to `store`, atomically and durably. `source` names who
    /// sent it (the token's name), recorded with `limits.now` as the arrival time.
    pub fn apply(
        &mut self,
        store: &dyn Store,
        text: &str,
        limits: &Limits,
        source: Option<&str>,
    ) -> Result<Accepted, AppError> {
        let records = parse_calls(text, limits).map_err(|errors| {
            let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
            AppError::BadRequest {
                message: format!(
                    "{}{} of {lines} lines are invalid; nothing was stored",
                    errors.len(),
                    if errors.len() >= crate::ingest::record::MAX_REPORTED_ERRORS {
                        " or more"
                    } else {
                        ""
                    }
                ),
                details: errors.iter().map(ToString::to_string).collect(),
            }
        })?;
        self.apply_records(store, &records, limits.now, source)
    }

    /// Applies parsed `records` to `store`, atomically and durably; `now` is the
    /// arrival time recorded for `source`.
    pub fn apply_records(
        &mut self,
        store: &dyn Store,
        records: &[CallRecord],
        now: i64,
        source: Option<&str>,
    ) -> Result<Accepted, AppError> {
        self.write_records(
            store,
            records,
            now,
            source.map(|name| (name, None)),
            HeldChanges::default(),
        )
    }

    /// Applies `records` pulled by source `name` for the buckets `from..to`: the data
    /// and the source's new position `to` go in one durable transaction. The source
    /// counts as having delivered every bucket of the range, empty ones included.
    pub fn apply_pulled(
        &mut self,
        store: &dyn Store,
        records: &[CallRecord],
        now: i64,
        name: &str,
        to: Tick,
    ) -> Result<Accepted, AppError> {
        self.write_records(
            store,
            records,
            now,
            Some((name, Some(to))),
            HeldChanges::default(),
        )
    }

    /// Applies the calls `records` made by trace spans from `source` (if any) with the
    /// changes to the spans held for pairing, in one durable transaction.
    pub fn apply_traced(
        &mut self,
        store: &dyn Store,
        records: &[CallRecord],
        now: i64,
        source: Option<&str>,
        held: HeldChanges,
    ) -> Result<Accepted, AppError> {
        self.write_records(store, records, now, source.map(|n| (n, None)), held)
    }

    fn write_records(
        &mut self,
        store: &dyn Store,
        records: &[CallRecord],
        now: i64,
        source: Option<(&str, Option<Tick>)>,
        held: HeldChanges,
    ) -> Result<Accepted, AppError> {
        let before = self.registry.clone();
        let since = self.registry.persisted();
        let width = store.bucket_width();
        // First pass: map every server not seen before, giving new clusters their ids.
        let mut new_servers = Vec::new();
        for r in records {
            let sides = [(&r.src, &r.src_service), (&r.dst, &r.dst_service)];
            for server in sides
                .into_iter()
                .filter(|(_, s)| s.is_none())
                .map(|(s, _)| s)
            {
                if !self.resolved.contains_key(server.as_str()) {
                    let id = self
                        .topology
                        .cluster_of(server)
                        .map(|c| self.registry.cluster(c));
                    self.resolved.insert(server.clone(), id);
                    new_servers.push(server.clone());
                }
            }
        }
        let resolved = &self.resolved;
        let topology = &self.topology;
        let registry = std::cell::RefCell::new(&mut self.registry);
        let agg = aggregate_with(
            records,
            &mut |s, service| match service {
                Some(name) => Some(
                    registry
                        .borrow_mut()
                        .cluster(topology.cluster_for_service(name)),
                ),
                None => resolved.get(s).copied().flatten(),
            },
            width,
            &mut |m| registry.borrow_mut().method(m),
            &mut |s| registry.borrow_mut().server(s),
        );
        let mut unmapped: BTreeMap<String, u64> = BTreeMap::new();
        // Most batches map every server: then there is nothing to count.
        for r in records.iter().filter(|_| agg.unmapped_records > 0) {
            let sides = [(&r.src, &r.src_service), (&r.dst, &r.dst_service)];
            for s in sides
                .into_iter()
                .filter(|(_, s)| s.is_none())
                .map(|(s, _)| s)
            {
                if self.resolved.get(s.as_str()) == Some(&None) {
                    *unmapped.entry(s.clone()).or_default() += 1;
                }
            }
        }
        let mut cells = Vec::with_capacity(agg.cells.len());
        let mut ticks = HashSet::new();
        for ((tick, key), c) in &agg.cells {
            cells.push((*tick, self.registry.entity(*key), *c));
            ticks.insert(*tick);
        }
        cells.sort_by_key(|(t, e, _)| (chunk_of(*t), *e, *t));
        let mut pairs: Vec<PairRow> = agg
            .pairs
            .iter()
            .map(|((tick, edge, src, dst), counters)| PairRow {
                tick: *tick,
                entity: self
                    .registry
                    .find_entity(&graph_core::detect::SeriesKey::edge(*edge))
                    .expect("every pair's edge has a cell, so an entity"),
                src: *src,
                dst: *dst,
                counters: *counters,
            })
            .collect();
        pairs.sort_unstable_by_key(|p| (p.tick, p.entity, p.src, p.dst));
        let source = source.map(|(name, pulled_to)| {
            let mut clusters: Vec<ClusterId> = agg.pairs.keys().map(|(_, e, _, _)| e.src).collect();
            clusters.sort_unstable();
            clusters.dedup();
            // Every record counts, mapped or not: the source did deliver them.
            let delivered = records.iter().map(|r| width.floor(r.ts)).max();
            // A pull delivers its whole range, even buckets without calls.
            let pulled = pulled_to.map(|to| to - width.seconds());
            SourceUpdate {
                name: name.to_string(),
                arrival: now,
                last_tick: delivered.max(pulled).unwrap_or(0),
                records: agg.records,
                clusters,
                pulled_to,
            }
        });
        let batch = WriteBatch {
            cells,
            unmapped: unmapped.into_iter().collect(),
            pairs,
            source,
            held,
        };
        if let Err(e) = store.write(&self.registry, since, &batch, true) {
            // Nothing was written: forget the ids handed out for this batch.
            self.registry = before;
            for s in new_servers {
                self.resolved.remove(&s);
            }
            return Err(e.into());
        }
        let mut ticks: Vec<Tick> = ticks.into_iter().collect();
        ticks.sort_unstable();
        Ok(Accepted {
            accepted: agg.records,
            unmapped_records: agg.unmapped_records,
            ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedbStore;
    use graph_core::model::BucketWidth;

    const NOW: i64 = 1_790_000_100;

    fn line(ts: i64, src: &str, dst: &str, extra: &str) -> String {
        format!(
            r#"{{"ts": {ts}, "src": "{src}", "dst": "{dst}", "method": "get", "requests": 10, "errors": 1, "latency_ms_sum": 100{extra}}}"#
        )
    }

    /// Everything a batch could change: ids, data range, cells of every entity, unmapped.
    fn state(store: &RedbStore) -> String {
        let reg = Store::registry(store).unwrap();
        let cells: Vec<String> = (0..reg.entities().len() as u32)
            .map(|e| {
                format!(
                    "{:?}",
                    store
                        .entity_cells(e, 0, NOW + 3600)
                        .unwrap()
                        .iter()
                        .map(|(t, c)| (*t, c.counters()))
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        let clusters: Vec<_> = reg.catalog.iter().collect();
        format!(
            "{clusters:?}|{:?}|{:?}|{:?}|{cells:?}",
            reg.methods(),
            Store::tick_range(store).unwrap(),
            store.unmapped().unwrap()
        )
    }

    #[test]
    fn a_rejected_batch_changes_nothing_not_even_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path(), BucketWidth::FIVE_MINUTES).unwrap();
        let mut ingest = IngestState::new(&store, Topology::identity()).unwrap();
        let limits = Limits::around(NOW);
        let ok = ingest
            .apply(
                &store,
                &line(NOW - 600, "web-1", "api-1", ""),
                &limits,
                None,
            )
            .unwrap();
        assert_eq!(ok.accepted, 1);
        let before = state(&store);
        // Each bad batch also carries a valid line with servers never seen before, so a
        // half-applied batch would show up as new clusters or cells.
        let fresh = line(NOW - 300, "brand-new-caller", "brand-new-callee", "");
        let bad = [
            "{oops".to_string(),
            line(NOW - 300, "a", "b", r#", "errors": 11"#).replace(r#""errors": 1, "#, ""),
            line(NOW - 300, "a", "b", r#", "extra": 1"#),
            line(NOW + 86_400, "a", "b", ""),
            line(NOW - 300, "", "b", ""),
            r#"{"ts": 1, "src": "a"}"#.to_string(),
        ];
        for b in bad {
            let err = ingest
                .apply(&store, &format!("{fresh}\n{b}\n"), &limits, None)
                .unwrap_err();
            assert!(matches!(err, AppError::BadRequest { .. }), "{err:?}");
            assert_eq!(state(&store), before, "after rejecting {b}");
        }
        // The fresh servers get their ids when a valid batch brings them.
        let ok = ingest.apply(&store, &fresh, &limits, None).unwrap();
        assert_eq!(ok.ticks, vec![NOW - 300 - (NOW - 300).rem_euclid(300)]);
        assert!(
            Store::registry(&store)
                .unwrap()
                .catalog
                .id("brand-new-caller")
                .is_some()
        );
    }

    #[test]
    fn late_data_adds_into_its_bucket_and_unmapped_servers_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path(), BucketWidth::FIVE_MINUTES).unwrap();
        let file: crate::topology::TopologyFile = serde_json::from_str(
            r#"{"version": 1, "rules": [{"pattern": "(?P<service>[a-z]+)-\\d+"}]}"#,
        )
        .unwrap();
        let mut ingest =
            IngestState::new(&store, Topology::from_file_contents(file, None).unwrap()).unwrap();
        let limits = Limits::around(NOW);
        let t = NOW - 900;
        ingest
            .apply(&store, &line(t, "web-1", "api-1", ""), &limits, None)
            .unwrap();
        let r = ingest
            .apply(
                &store,
                &format!(
                    "{}\n{}",
                    line(t + 10, "web-2", "api-7", ""),
                    line(t, "web-1", "???", "")
                ),
                &limits,
                Some("collector"),
            )
            .unwrap();
        assert_eq!((r.accepted, r.unmapped_records), (1, 1));
        let reg = Store::registry(&store).unwrap();
        let edge = graph_core::model::EdgeKey {
            src: reg.catalog.id("web").unwrap(),
            dst: reg.catalog.id("api").unwrap(),
        };
        let e = reg
            .find_entity(&graph_core::detect::SeriesKey::edge(edge))
            .unwrap();
        let cells = store.entity_cells(e, 0, NOW).unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].1.counters().unwrap().requests, 20.0);
        assert_eq!(store.unmapped().unwrap(), vec![("???".to_string(), 1)]);
        let pairs = store.pairs(t - t.rem_euclid(300), Some(e)).unwrap();
        let names: Vec<_> = pairs
            .iter()
            .map(|p| {
                (
                    reg.server_name(p.src).unwrap(),
                    reg.server_name(p.dst).unwrap(),
                )
            })
            .collect();
        assert_eq!(names, vec![("web-1", "api-1"), ("web-2", "api-7")]);
        let sources = store.sources().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(
            (sources[0].name.as_str(), sources[0].records),
            ("collector", 1)
        );
    }
}
