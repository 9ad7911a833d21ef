//! The embedded store: a single redb file with versioned schema migrations.
//!
//! Layout (see `docs/storage.md`): series data lives in `cells`, keyed by
//! `(hour start, entity)`, each value holding that hour's buckets. A detection tick
//! reads a few hour ranges across all entities; an edge chart reads one key per hour.

use std::path::{Path, PathBuf};

use graph_core::api::StoreHealth;
use graph_core::detect::{Cell, Column, FrameStore, MethodId, PointFlags, SeriesKey};
use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey, Metric, Tick};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use graph_core::link::ConfigChange;

use super::cells::{self, CHUNK_SECONDS};
use super::records::{
    Cutoffs, PairRow, Pruned, SessionRecord, SourceState, SourceUpdate, StoredTick, UserRecord,
    decode_pairs, encode_pairs,
};
use super::registry::{Persisted, Registry};
use super::{Store, StoreError};
use crate::marks::StoredMark;

/// Schema version this build writes. Each step up is one function in [`MIGRATIONS`].
pub const SCHEMA_VERSION: u64 = 8;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const CLUSTERS: TableDefinition<'_, u32, &str> = TableDefinition::new("clusters");
const METHODS: TableDefinition<'_, u32, &str> = TableDefinition::new("methods");
/// entity -> (src cluster, dst cluster, method id + 1 or 0 for the edge total)
const ENTITIES: TableDefinition<'_, u32, (u32, u32, u32)> = TableDefinition::new("entities");
/// (hour start, entity) -> that hour's cells
const CELLS: TableDefinition<'_, (i64, u32), &[u8]> = TableDefinition::new("cells");
/// server name -> records seen whose server the topology did not map
const UNMAPPED: TableDefinition<'_, &str, u64> = TableDefinition::new("unmapped");
/// SHA-256 digest of an API token (hex) -> JSON `TokenInfo`
const TOKENS: TableDefinition<'_, &str, &str> = TableDefinition::new("tokens");
/// server id -> server name (for the drill-down)
const SERVERS: TableDefinition<'_, u32, &str> = TableDefinition::new("servers");
/// tick -> JSON `StoredTick`
const SNAPSHOTS: TableDefinition<'_, i64, &[u8]> = TableDefinition::new("snapshots");
/// (applied at, change id) -> JSON `ConfigChange`
const CHANGES: TableDefinition<'_, (i64, u64), &str> = TableDefinition::new("changes");
/// tick -> site-wide activity
const ACTIVITY: TableDefinition<'_, i64, f64> = TableDefinition::new("activity");
/// source name -> JSON `SourceState`
const SOURCES: TableDefinition<'_, &str, &str> = TableDefinition::new("sources");
/// (tick, batch sequence) -> that batch's server-level records of the bucket
const PAIRS: TableDefinition<'_, (i64, u32), &[u8]> = TableDefinition::new("pairs");
/// Accounts: name → JSON `UserRecord` (with the argon2id hash, never the password).
const USERS: TableDefinition<'_, &str, &str> = TableDefinition::new("users");
/// Browser sessions: SHA-256 of the session id → JSON `SessionRecord`.
const SESSIONS: TableDefinition<'_, &str, &str> = TableDefinition::new("sessions");
/// Marks: id → JSON `StoredMark` (the mark, its version and history).
const MARKS: TableDefinition<'_, u64, &str> = TableDefinition::new("marks");
/// Server keys: name → random bytes made once (`csrf`: proxy users' CSRF tokens).
const KEYS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("keys");
/// trace id ‖ span id -> a span held for pairing (`sources::otlp::Held`, JSON)
const HELD_SPANS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("held_spans");
/// sequence -> one maintenance switch (JSON `MaintenanceRecord`), never rewritten
const MAINTENANCE: TableDefinition<'_, u64, &str> = TableDefinition::new("maintenance");

type Migration = fn(&redb::WriteTransaction) -> Result<(), redb::Error>;

/// `MIGRATIONS[i]` brings a store from version `i` to `i + 1`.
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] = [
    migrate_0_to_1,
    migrate_1_to_2,
    migrate_2_to_3,
    migrate_3_to_4,
    migrate_4_to_5,
    migrate_5_to_6,
    migrate_6_to_7,
    migrate_7_to_8,
];

fn migrate_0_to_1(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(META)?;
    tx.open_table(CLUSTERS)?;
    tx.open_table(METHODS)?;
    tx.open_table(ENTITIES)?;
    tx.open_table(CELLS)?;
    tx.open_table(UNMAPPED)?;
    Ok(())
}

fn migrate_1_to_2(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(TOKENS)?;
    Ok(())
}

fn migrate_2_to_3(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(SERVERS)?;
    tx.open_table(SNAPSHOTS)?;
    tx.open_table(CHANGES)?;
    tx.open_table(ACTIVITY)?;
    tx.open_table(SOURCES)?;
    tx.open_table(PAIRS)?;
    Ok(())
}

fn migrate_3_to_4(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(USERS)?;
    tx.open_table(SESSIONS)?;
    Ok(())
}

fn migrate_4_to_5(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(MARKS)?;
    Ok(())
}

fn migrate_5_to_6(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(KEYS)?;
    Ok(())
}

fn migrate_6_to_7(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(HELD_SPANS)?;
    Ok(())
}

fn migrate_7_to_8(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(MAINTENANCE)?;
    Ok(())
}

fn json_record<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("{what} record: {e}")))
}

/// Everything one ingest batch changes, written in one transaction.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Counters to add, per tick and entity.
    pub cells: Vec<(Tick, u32, Counters)>,
    /// Unmapped servers with how many records named them.
    pub unmapped: Vec<(String, u64)>,
    /// Server-level records for the drill-down.
    pub pairs: Vec<PairRow>,
    /// Who sent the batch.
    pub source: Option<SourceUpdate>,
    /// Trace spans held for pairing: put (key, record) and deleted (key).
    pub held: HeldChanges,
}

/// Changes to the trace spans held for pairing, written with the calls they make.
#[derive(Debug, Default)]
pub struct HeldChanges {
    /// Spans to hold (or update), by key.
    pub put: Vec<super::HeldRow>,
    /// Spans to let go, by key.
    pub delete: Vec<Vec<u8>>,
}

/// The default store.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    width: BucketWidth,
}

impl RedbStore {
    /// The file name inside the data directory.
    pub const FILE_NAME: &'static str = "epicenter.redb";

    /// Opens (creating if needed) the store in `data_dir` and migrates it to
    /// [`SCHEMA_VERSION`]. A new store records `width`; an existing one must match it.
    pub fn open(data_dir: &Path, width: BucketWidth) -> Result<Self, StoreError> {
        Self::open_with(data_dir, Some(width))
    }

    /// Like [`RedbStore::open`], with the width the store recorded when `width` is
    /// `None` (five minutes for a new store).
    pub fn open_with(data_dir: &Path, width: Option<BucketWidth>) -> Result<Self, StoreError> {
        let path = data_dir.join(Self::FILE_NAME);
        let open_err = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        let divides = |w: BucketWidth| {
            if CHUNK_SECONDS % w.seconds() == 0 {
                Ok(w)
            } else {
                Err(open_err(format!(
                    "bucket width {} s must divide an hour",
                    w.seconds()
                )))
            }
        };
        if let Some(w) = width {
            divides(w)?;
        }
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        let db = Database::builder()
            .set_cache_size(256 * 1024 * 1024)
            .create(&path)
            .map_err(|e| open_err(e.to_string()))?;
        let mut store = RedbStore {
            db,
            path: path.clone(),
            width: BucketWidth::FIVE_MINUTES,
        };
        store.width = match width {
            Some(w) => w,
            None => match store.meta("bucket_width_s")? {
                Some(s) => u32::try_from(s)
                    .ok()
                    .and_then(|s| BucketWidth::new(s).ok())
                    .map(divides)
                    .transpose()?
                    .ok_or_else(|| {
                        open_err(format!("the store records a bucket width of {s} s"))
                    })?,
                None => BucketWidth::FIVE_MINUTES,
            },
        };
        store.migrate()?;
        store.check_width()?;
        Ok(store)
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.meta("schema_version").map(|v| v.unwrap_or(0))
    }

    /// A number from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        match tx.open_table(META) {
            Ok(t) => Ok(t.get(key).map_err(backend)?.map(|v| v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// Sets a number in the `meta` table, durably.
    pub fn set_meta(&self, key: &str, value: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        tx.open_table(META)
            .map_err(backend)?
            .insert(key, value)
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_width(&self) -> Result<(), StoreError> {
        match self.meta("bucket_width_s")? {
            Some(w) if w as i64 != self.width.seconds() => Err(StoreError::Open {
                path: self.path.display().to_string(),
                message: format!(
                    "the store was created with {w} s buckets, but {} s are configured",
                    self.width.seconds()
                ),
            }),
            Some(_) => Ok(()),
            None => {
                let tx = self.db.begin_write().map_err(backend)?;
                tx.open_table(META)
                    .map_err(backend)?
                    .insert("bucket_width_s", self.width.seconds() as u64)
                    .map_err(backend)?;
                tx.commit().map_err(backend)
            }
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (from, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.db.begin_write().map_err(backend)?;
            step(&tx).map_err(backend)?;
            tx.open_table(META)
                .map_err(backend)?
                .insert("schema_version", from as u64 + 1)
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            tracing::info!(from, to = from + 1, "store migrated");
        }
        Ok(())
    }

    /// A write transaction that, with `durable`, is on disk when its commit returns;
    /// without, it becomes durable with the next durable commit.
    fn begin_write(&self, durable: bool) -> Result<redb::WriteTransaction, StoreError> {
        let mut tx = self.db.begin_write().map_err(backend)?;
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        tx.set_durability(durability).map_err(backend)?;
        Ok(tx)
    }

    /// Replaces whole chunks (bulk loading). With `durable`, returns once on disk.
    pub fn put_chunks(
        &self,
        chunks: &[(i64, u32, Vec<u8>)],
        durable: bool,
    ) -> Result<(), StoreError> {
        let tx = self.begin_write(durable)?;
        {
            let mut t = tx.open_table(CELLS).map_err(backend)?;
            for (hour, entity, chunk) in chunks {
                t.insert((*hour, *entity), chunk.as_slice())
                    .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    /// Rewrites the file to drop free space (after a bulk load). Returns the bytes saved.
    pub fn compact(&mut self) -> Result<u64, StoreError> {
        let before = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        self.db
            .compact()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let after = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(before.saturating_sub(after))
    }

    /// Replaces the detection flags of bucket `tick` for every entity inside `tx`:
    /// `flags` lists the entities with flags; all others are cleared.
    fn write_flags(
        &self,
        tx: &redb::WriteTransaction,
        tick: Tick,
        flags: &[(u32, [PointFlags; 4])],
    ) -> Result<(), StoreError> {
        let hour = cells::chunk_of(tick);
        let slot = cells::slot_of(tick, self.width);
        let mut table = tx.open_table(CELLS).map_err(backend)?;
        let mut updates: Vec<((i64, u32), Vec<u8>)> = Vec::new();
        let mut wanted: std::collections::HashMap<u32, [PointFlags; 4]> =
            flags.iter().copied().collect();
        for row in table
            .range((hour, 0u32)..=(hour, u32::MAX))
            .map_err(backend)?
        {
            let (k, v) = row.map_err(backend)?;
            let entity = k.value().1;
            let mut cell = cells::read_cell(v.value(), slot);
            let new = wanted.remove(&entity).unwrap_or([PointFlags::EMPTY; 4]);
            if cell.all_flags() != new {
                for (i, m) in Metric::ALL.iter().enumerate() {
                    cell.set_flags(*m, new[i]);
                }
                let mut chunk = v.value().to_vec();
                cells::write_cell(&mut chunk, slot, &cell);
                updates.push((k.value(), chunk));
            }
        }
        for (entity, new) in wanted {
            let mut chunk = cells::empty_chunk(self.width);
            let mut cell = Cell::MISSING;
            for (i, m) in Metric::ALL.iter().enumerate() {
                cell.set_flags(*m, new[i]);
            }
            cells::write_cell(&mut chunk, slot, &cell);
            updates.push(((hour, entity), chunk));
        }
        for (k, v) in updates {
            table.insert(k, v.as_slice()).map_err(backend)?;
        }
        Ok(())
    }
}

fn has_data(chunk: &[u8], slot: usize) -> bool {
    !matches!(
        cells::read_cell(chunk, slot).value(),
        graph_core::detect::CellValue::NoData
    )
}

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
}

fn encode_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Backend(format!("{what} record: {e}")))
}

impl Store for RedbStore {
    fn health(&self) -> StoreHealth {
        let status = match self.schema_version() {
            Ok(_) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "store health check failed");
                "error"
            }
        };
        StoreHealth {
            status: status.into(),
            kind: "redb".into(),
            location: self.path.display().to_string(),
            size_bytes: std::fs::metadata(&self.path).ok().map(|m| m.len()),
        }
    }

    /// Bucket width of the stored series.
    fn bucket_width(&self) -> BucketWidth {
        self.width
    }

    /// Loads the id registry.
    fn registry(&self) -> Result<Registry, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let mut clusters = Vec::new();
        for row in tx
            .open_table(CLUSTERS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (_, v) = row.map_err(backend)?;
            clusters.push(
                serde_json::from_str(v.value())
                    .map_err(|e| StoreError::Backend(format!("cluster record: {e}")))?,
            );
        }
        let mut methods = Vec::new();
        for row in tx
            .open_table(METHODS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            methods.push(row.map_err(backend)?.1.value().to_string());
        }
        let mut entities = Vec::new();
        for row in tx
            .open_table(ENTITIES)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (src, dst, m) = row.map_err(backend)?.1.value();
            let edge = EdgeKey {
                src: ClusterId(src),
                dst: ClusterId(dst),
            };
            entities.push(if m == 0 {
                SeriesKey::edge(edge)
            } else {
                SeriesKey::method(edge, MethodId(m - 1))
            });
        }
        let mut servers = Vec::new();
        for row in tx
            .open_table(SERVERS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            servers.push(row.map_err(backend)?.1.value().to_string());
        }
        Ok(Registry::from_parts(clusters, methods, entities, servers))
    }

    /// The earliest and latest tick with data, if any.
    fn tick_range(&self) -> Result<Option<(Tick, Tick)>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(CELLS).map_err(backend)?;
        let (Some(first), Some(last)) = (t.first().map_err(backend)?, t.last().map_err(backend)?)
        else {
            return Ok(None);
        };
        let (first_hour, last_hour) = (first.0.value().0, last.0.value().0);
        let width = self.width.seconds();
        let slots = cells::cells_per_chunk(self.width);
        // Within the first and last hours, the earliest and latest filled slots across entities.
        let mut earliest = first_hour + CHUNK_SECONDS;
        for row in t
            .range((first_hour, 0u32)..=(first_hour, u32::MAX))
            .map_err(backend)?
        {
            let (_, v) = row.map_err(backend)?;
            if let Some(slot) = (0..slots).find(|s| has_data(v.value(), *s)) {
                earliest = earliest.min(first_hour + slot as i64 * width);
            }
        }
        let mut latest = last_hour;
        for row in t
            .range((last_hour, 0u32)..=(last_hour, u32::MAX))
            .map_err(backend)?
        {
            let (_, v) = row.map_err(backend)?;
            if let Some(slot) = (0..slots).rev().find(|s| has_data(v.value(), *s)) {
                latest = latest.max(last_hour + slot as i64 * width);
            }
        }
        Ok(Some((earliest.min(latest), latest)))
    }

    /// Loads the buckets `ticks` of every entity into an in-memory view for detection.
    ///
    /// # Complexity
    /// One range scan per distinct hour among `ticks`, over all entities.
    fn load_view(&self, registry: &Registry, ticks: &[Tick]) -> Result<FrameStore, StoreError> {
        let mut view = FrameStore::new(self.width);
        for m in registry.methods() {
            view.intern_method(m);
        }
        for k in registry.entities() {
            view.add_entity(*k);
        }
        let n = registry.entities().len();
        let mut hours: Vec<i64> = ticks.iter().map(|t| cells::chunk_of(*t)).collect();
        hours.sort_unstable();
        hours.dedup();
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(CELLS).map_err(backend)?;
        let per = cells::cells_per_chunk(self.width);
        for hour in hours {
            let wanted: Vec<usize> = (0..per)
                .filter(|s| ticks.contains(&(hour + *s as i64 * self.width.seconds())))
                .collect();
            let mut columns: Vec<Vec<Cell>> =
                wanted.iter().map(|_| vec![Cell::MISSING; n]).collect();
            let mut any = vec![false; wanted.len()];
            for row in table
                .range((hour, 0u32)..=(hour, u32::MAX))
                .map_err(backend)?
            {
                let (k, v) = row.map_err(backend)?;
                let entity = k.value().1 as usize;
                if entity >= n {
                    continue;
                }
                for (c, &slot) in wanted.iter().enumerate() {
                    let cell = cells::read_cell(v.value(), slot);
                    if cell.counters().is_some()
                        || !matches!(cell.value(), graph_core::detect::CellValue::NoData)
                    {
                        any[c] = true;
                    }
                    columns[c][entity] = cell;
                }
            }
            for ((slot, cells), present) in wanted.into_iter().zip(columns).zip(any) {
                if present {
                    let tick = hour + slot as i64 * self.width.seconds();
                    view.insert_column(tick, Column::from_cells(cells))
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                }
            }
        }
        Ok(view)
    }

    /// Writes the registry entries added since `since` and the batch, atomically. With
    /// `durable`, the call returns only once the data is on disk; bulk loads pass
    /// `false` for all but their last call.
    fn write(
        &self,
        registry: &Registry,
        since: Persisted,
        batch: &WriteBatch,
        durable: bool,
    ) -> Result<(), StoreError> {
        let tx = self.begin_write(durable)?;
        {
            let mut t = tx.open_table(CLUSTERS).map_err(backend)?;
            for (id, c) in registry.catalog.iter().skip(since.clusters) {
                let json =
                    serde_json::to_string(c).map_err(|e| StoreError::Backend(e.to_string()))?;
                t.insert(id.0, json.as_str()).map_err(backend)?;
            }
            let mut t = tx.open_table(METHODS).map_err(backend)?;
            for (i, m) in registry.methods().iter().enumerate().skip(since.methods) {
                t.insert(i as u32, m.as_str()).map_err(backend)?;
            }
            let mut t = tx.open_table(ENTITIES).map_err(backend)?;
            for (i, k) in registry.entities().iter().enumerate().skip(since.entities) {
                let m = k.method.map_or(0, |m| m.0 + 1);
                t.insert(i as u32, (k.edge.src.0, k.edge.dst.0, m))
                    .map_err(backend)?;
            }
            let mut t = tx.open_table(SERVERS).map_err(backend)?;
            for (i, name) in registry.servers().iter().enumerate().skip(since.servers) {
                t.insert(i as u32, name.as_str()).map_err(backend)?;
            }
            let mut t = tx.open_table(CELLS).map_err(backend)?;
            let mut i = 0;
            let rows = &batch.cells;
            while i < rows.len() {
                // Rows are grouped by (hour, entity) so each chunk is read and written once.
                let key = (cells::chunk_of(rows[i].0), rows[i].1);
                let mut chunk = match t.get(key).map_err(backend)? {
                    Some(v) => v.value().to_vec(),
                    None => cells::empty_chunk(self.width),
                };
                while i < rows.len() && (cells::chunk_of(rows[i].0), rows[i].1) == key {
                    cells::add_to_cell(
                        &mut chunk,
                        cells::slot_of(rows[i].0, self.width),
                        &rows[i].2,
                    );
                    i += 1;
                }
                t.insert(key, chunk.as_slice()).map_err(backend)?;
            }
            let mut t = tx.open_table(UNMAPPED).map_err(backend)?;
            for (server, n) in &batch.unmapped {
                let old = t
                    .get(server.as_str())
                    .map_err(backend)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                t.insert(server.as_str(), old + n).map_err(backend)?;
            }
            let mut t = tx.open_table(PAIRS).map_err(backend)?;
            for rows in batch.pairs.chunk_by(|a, b| a.tick == b.tick) {
                let tick = rows[0].tick;
                let seq = match t
                    .range((tick, 0u32)..=(tick, u32::MAX))
                    .map_err(backend)?
                    .next_back()
                {
                    Some(last) => last.map_err(backend)?.0.value().1 + 1,
                    None => 0,
                };
                t.insert((tick, seq), encode_pairs(rows).as_slice())
                    .map_err(backend)?;
            }
            if let Some(update) = &batch.source {
                let mut t = tx.open_table(SOURCES).map_err(backend)?;
                let old = match t.get(update.name.as_str()).map_err(backend)? {
                    Some(v) => Some(decode_json::<SourceState>(v.value().as_bytes(), "source")?),
                    None => None,
                };
                let new = encode_json(&SourceState::merged(old, update))?;
                t.insert(update.name.as_str(), new.as_str())
                    .map_err(backend)?;
            }
            if !batch.held.put.is_empty() || !batch.held.delete.is_empty() {
                let mut t = tx.open_table(HELD_SPANS).map_err(backend)?;
                for key in &batch.held.delete {
                    t.remove(key.as_slice()).map_err(backend)?;
                }
                for (key, value) in &batch.held.put {
                    t.insert(key.as_slice(), value.as_slice())
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().map_err(backend)
    }

    fn held_spans(&self) -> Result<Vec<super::HeldRow>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(HELD_SPANS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The token stored under `digest`.
    fn token(&self, digest: &str) -> Result<Option<crate::auth::TokenInfo>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(TOKENS).map_err(backend)?;
        let Some(v) = t.get(digest).map_err(backend)? else {
            return Ok(None);
        };
        serde_json::from_str(v.value())
            .map(Some)
            .map_err(|e| StoreError::Backend(format!("token record: {e}")))
    }

    /// Stores a token's digest and facts, durably.
    fn put_token(&self, digest: &str, info: &crate::auth::TokenInfo) -> Result<(), StoreError> {
        let json = serde_json::to_string(info).map_err(|e| StoreError::Backend(e.to_string()))?;
        let tx = self.db.begin_write().map_err(backend)?;
        tx.open_table(TOKENS)
            .map_err(backend)?
            .insert(digest, json.as_str())
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn marks(&self) -> Result<Vec<StoredMark>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(MARKS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(json_record("mark", v.value())?);
        }
        Ok(out)
    }

    fn maintenance_log(&self) -> Result<Vec<crate::maintenance::MaintenanceRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(MAINTENANCE).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(json_record("maintenance switch", v.value())?);
        }
        Ok(out)
    }

    fn append_maintenance(
        &self,
        record: &crate::maintenance::MaintenanceRecord,
    ) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        let seq = {
            let mut t = tx.open_table(MAINTENANCE).map_err(backend)?;
            let seq = t.last().map_err(backend)?.map_or(1, |(k, _)| k.value() + 1);
            let mut r = record.clone();
            r.seq = seq;
            let json = serde_json::to_string(&r).map_err(|e| StoreError::Backend(e.to_string()))?;
            t.insert(seq, json.as_str()).map_err(backend)?;
            seq
        };
        tx.commit().map_err(backend)?;
        Ok(seq)
    }

    fn insert_mark(&self, mark: &StoredMark) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        let id = {
            let mut t = tx.open_table(MARKS).map_err(backend)?;
            let id = t.last().map_err(backend)?.map_or(1, |(k, _)| k.value() + 1);
            let mut m = mark.clone();
            m.mark.id = id;
            let json = serde_json::to_string(&m).map_err(|e| StoreError::Backend(e.to_string()))?;
            t.insert(id, json.as_str()).map_err(backend)?;
            id
        };
        tx.commit().map_err(backend)?;
        Ok(id)
    }

    fn update_mark(
        &self,
        mark: &StoredMark,
        expected_version: u64,
    ) -> Result<Result<(), Option<StoredMark>>, StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        {
            let mut t = tx.open_table(MARKS).map_err(backend)?;
            let current: Option<StoredMark> = t
                .get(mark.mark.id)
                .map_err(backend)?
                .map(|v| json_record("mark", v.value()))
                .transpose()?;
            match current {
                Some(c) if c.version == expected_version => {}
                other => return Ok(Err(other)),
            }
            let json =
                serde_json::to_string(mark).map_err(|e| StoreError::Backend(e.to_string()))?;
            t.insert(mark.mark.id, json.as_str()).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Ok(()))
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(USERS).map_err(backend)?;
        let v = t.get(name).map_err(backend)?;
        v.map(|v| json_record("user", v.value())).transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(USERS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(json_record("user", v.value())?);
        }
        Ok(out)
    }

    fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(user).map_err(|e| StoreError::Backend(e.to_string()))?;
        let tx = self.db.begin_write().map_err(backend)?;
        tx.open_table(USERS)
            .map_err(backend)?
            .insert(user.name.as_str(), json.as_str())
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn session(&self, digest: &str) -> Result<Option<SessionRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(SESSIONS).map_err(backend)?;
        let v = t.get(digest).map_err(backend)?;
        v.map(|v| json_record("session", v.value())).transpose()
    }

    fn put_session(&self, digest: &str, session: &SessionRecord) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(session).map_err(|e| StoreError::Backend(e.to_string()))?;
        let tx = self.db.begin_write().map_err(backend)?;
        {
            let mut t = tx.open_table(SESSIONS).map_err(backend)?;
            // Expired sessions go whenever a new one is stored.
            let mut expired: Vec<String> = Vec::new();
            for row in t.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let s: SessionRecord = json_record("session", v.value())?;
                if s.expires <= session.created {
                    expired.push(k.value().to_string());
                }
            }
            for k in expired {
                t.remove(k.as_str()).map_err(backend)?;
            }
            t.insert(digest, json.as_str()).map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(backend)?;
        tx.open_table(SESSIONS)
            .map_err(backend)?
            .remove(digest)
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn key(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        {
            let tx = self.db.begin_read().map_err(backend)?;
            let t = tx.open_table(KEYS).map_err(backend)?;
            if let Some(v) = t.get(name).map_err(backend)? {
                return Ok(v.value().to_vec());
            }
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::Backend(format!("no randomness from the OS: {e}")))?;
        let tx = self.db.begin_write().map_err(backend)?;
        let key = {
            let mut t = tx.open_table(KEYS).map_err(backend)?;
            // Another writer may have made it in between: the first one stays.
            let existing = t.get(name).map_err(backend)?.map(|v| v.value().to_vec());
            match existing {
                Some(v) => v,
                None => {
                    t.insert(name, fresh.as_slice()).map_err(backend)?;
                    fresh.to_vec()
                }
            }
        };
        tx.commit().map_err(backend)?;
        Ok(key)
    }

    /// Servers the topology did not map, with how many records named them.
    fn unmapped(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(UNMAPPED).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }

    fn entity_cells(
        &self,
        entity: u32,
        from: Tick,
        to: Tick,
    ) -> Result<Vec<(Tick, Cell)>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(CELLS).map_err(backend)?;
        let mut out = Vec::new();
        let mut hour = cells::chunk_of(from);
        while hour < to {
            if let Some(v) = table.get((hour, entity)).map_err(backend)? {
                for slot in 0..cells::cells_per_chunk(self.width) {
                    let tick = hour + slot as i64 * self.width.seconds();
                    let cell = cells::read_cell(v.value(), slot);
                    if tick >= from
                        && tick < to
                        && !matches!(cell.value(), graph_core::detect::CellValue::NoData)
                    {
                        out.push((tick, cell));
                    }
                }
            }
            hour += CHUNK_SECONDS;
        }
        Ok(out)
    }

    fn put_analysis(
        &self,
        tick: Tick,
        flags: &[(u32, [PointFlags; 4])],
        record: &StoredTick,
    ) -> Result<(), StoreError> {
        let json = encode_json(record)?;
        let tx = self.begin_write(true)?;
        self.write_flags(&tx, tick, flags)?;
        tx.open_table(SNAPSHOTS)
            .map_err(backend)?
            .insert(tick, json.as_bytes())
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn analysis(&self, tick: Tick) -> Result<Option<StoredTick>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(SNAPSHOTS).map_err(backend)?;
        match t.get(tick).map_err(backend)? {
            Some(v) => decode_json(v.value(), "snapshot").map(Some),
            None => Ok(None),
        }
    }

    fn analysed_ticks(&self, from: Tick, to: Tick) -> Result<Vec<Tick>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(SNAPSHOTS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(from..=to).map_err(backend)? {
            out.push(row.map_err(backend)?.0.value());
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        RedbStore::meta(self, key)
    }

    fn snapshot_sizes(&self, from: Tick, to: Tick) -> Result<Vec<(Tick, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(SNAPSHOTS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(from..=to).map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push((k.value(), v.value().len() as u64));
        }
        Ok(out)
    }

    fn put_changes(&self, changes: &[ConfigChange]) -> Result<(), StoreError> {
        let tx = self.begin_write(true)?;
        {
            let mut t = tx.open_table(CHANGES).map_err(backend)?;
            let ids: std::collections::HashSet<u64> = changes.iter().map(|c| c.id).collect();
            t.retain(|(_, id), _| !ids.contains(&id)).map_err(backend)?;
            for c in changes {
                t.insert((c.ts, c.id), encode_json(c)?.as_str())
                    .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    fn changes(&self, from: Tick, to: Tick) -> Result<Vec<ConfigChange>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(CHANGES).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range((from, 0u64)..=(to, u64::MAX)).map_err(backend)? {
            out.push(decode_json(
                row.map_err(backend)?.1.value().as_bytes(),
                "change",
            )?);
        }
        Ok(out)
    }

    fn put_activity(&self, points: &[(Tick, f64)], durable: bool) -> Result<(), StoreError> {
        let tx = self.begin_write(durable)?;
        {
            let mut t = tx.open_table(ACTIVITY).map_err(backend)?;
            for (tick, value) in points {
                t.insert(*tick, *value).map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    fn activity(&self, from: Tick, to: Tick) -> Result<Vec<(Tick, f64)>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(ACTIVITY).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(from..=to).map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    fn sources(&self) -> Result<Vec<SourceState>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(SOURCES).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            out.push(decode_json(
                row.map_err(backend)?.1.value().as_bytes(),
                "source",
            )?);
        }
        Ok(out)
    }

    fn pairs(&self, tick: Tick, entity: Option<u32>) -> Result<Vec<PairRow>, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(PAIRS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range((tick, 0u32)..=(tick, u32::MAX)).map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.extend(
                decode_pairs(tick, v.value()).filter(|r| entity.is_none_or(|e| r.entity == e)),
            );
        }
        Ok(out)
    }

    fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let tx = self.begin_write(true)?;
        {
            // Only whole hours before the cutoff go, so a chart never loses half an hour.
            let hour = cells::chunk_of(cutoffs.series);
            let mut t = tx.open_table(CELLS).map_err(backend)?;
            t.retain_in(..(hour, 0u32), |_, _| {
                pruned.chunks += 1;
                false
            })
            .map_err(backend)?;
            tx.open_table(ACTIVITY)
                .map_err(backend)?
                .retain_in(..cutoffs.series, |_, _| false)
                .map_err(backend)?;
            tx.open_table(CHANGES)
                .map_err(backend)?
                .retain_in(..(cutoffs.series, 0u64), |_, _| false)
                .map_err(backend)?;
            tx.open_table(SNAPSHOTS)
                .map_err(backend)?
                .retain_in(..cutoffs.snapshots, |_, _| {
                    pruned.snapshots += 1;
                    false
                })
                .map_err(backend)?;
            let mut last = None;
            tx.open_table(PAIRS)
                .map_err(backend)?
                .retain_in(..(cutoffs.pairs, 0u32), |(tick, _), _| {
                    if last != Some(tick) {
                        pruned.pair_buckets += 1;
                        last = Some(tick);
                    }
                    false
                })
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_core::detect::SeriesView;
    use graph_core::model::Cluster;

    fn open(dir: &Path) -> RedbStore {
        RedbStore::open(dir, BucketWidth::FIVE_MINUTES).unwrap()
    }

    #[test]
    fn a_new_store_is_migrated_and_reopens_at_the_same_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.health().status, "ok");
        drop(s);
        assert_eq!(open(dir.path()).schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_store_from_a_newer_version_or_another_bucket_width_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let tx = s.db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        tx.commit().unwrap();
        drop(s);
        let err = RedbStore::open(dir.path(), BucketWidth::FIVE_MINUTES).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let err = RedbStore::open(dir.path(), BucketWidth::ONE_MINUTE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("created with 300 s buckets"), "{err}");
    }

    fn cluster(name: &str) -> Cluster {
        Cluster {
            name: name.into(),
            service: name.into(),
            dc: None,
            tier: None,
        }
    }

    #[test]
    fn written_cells_come_back_in_views_charts_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let mut reg = s.registry().unwrap();
        let since = reg.persisted();
        let (a, b) = (reg.cluster(cluster("a")), reg.cluster(cluster("b")));
        let edge = EdgeKey { src: a, dst: b };
        let e = reg.entity(SeriesKey::edge(edge));
        let m = reg.method("get");
        let em = reg.entity(SeriesKey::method(edge, m));
        let c = |r: f64| Counters {
            requests: r,
            errors: 0.0,
            latency_ms_sum: r * 10.0,
        };
        let mut batch = WriteBatch {
            cells: vec![
                (3600, e, c(10.0)),
                (3600, e, c(5.0)),
                (3900, e, c(7.0)),
                (7200, em, c(1.0)),
            ],
            unmapped: vec![("x".into(), 2)],
            ..Default::default()
        };
        batch.cells.sort_by_key(|r| (cells::chunk_of(r.0), r.1));
        s.write(&reg, since, &batch, true).unwrap();
        drop(s);
        let s = open(dir.path());
        let reg = s.registry().unwrap();
        assert_eq!(reg.find_entity(&SeriesKey::edge(edge)), Some(e));
        assert_eq!(reg.method_name(m), Some("get"));
        let view = s.load_view(&reg, &[3600, 3900, 4200, 7200]).unwrap();
        assert_eq!(
            view.column(3600)
                .unwrap()
                .cell(e as usize)
                .counters()
                .unwrap()
                .requests,
            15.0
        );
        assert_eq!(
            view.column(3900)
                .unwrap()
                .cell(e as usize)
                .counters()
                .unwrap()
                .requests,
            7.0
        );
        assert!(view.column(4200).is_none());
        assert_eq!(
            view.column(7200)
                .unwrap()
                .cell(em as usize)
                .counters()
                .unwrap()
                .requests,
            1.0
        );
        let chart = s.entity_cells(e, 0, 10_000).unwrap();
        assert_eq!(
            chart.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![3600, 3900]
        );
        assert_eq!(s.unmapped().unwrap(), vec![("x".to_string(), 2)]);
        let record = |tick| StoredTick {
            snapshot: graph_core::snapshot::TickSnapshot::empty(tick),
            summary: Default::default(),
            storms: vec![],
            sources_behind: vec![],
            stale_sources: Some(vec!["dc4-collector".into()]),
            analysed_at: 0,
            duration_ms: 1.0,
        };
        let anomalous = [
            PointFlags::ANOMALOUS,
            PointFlags::EMPTY,
            PointFlags::EMPTY,
            PointFlags::EMPTY,
        ];
        s.put_analysis(3900, &[(e, anomalous)], &record(3900))
            .unwrap();
        assert!(
            s.entity_cells(e, 3900, 4200).unwrap()[0]
                .1
                .flags(Metric::Latency)
                .contains(PointFlags::ANOMALOUS)
        );
        assert_eq!(s.analysis(3900).unwrap(), Some(record(3900)));
        s.put_analysis(3900, &[], &record(3900)).unwrap();
        assert!(
            s.entity_cells(e, 3900, 4200).unwrap()[0]
                .1
                .flags(Metric::Latency)
                .is_empty()
        );
        assert_eq!(s.analysed_ticks(0, 10_000).unwrap(), vec![3900]);
    }

    #[test]
    fn retention_deletes_only_what_is_older_than_each_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let mut reg = s.registry().unwrap();
        let since = reg.persisted();
        let (a, b) = (reg.cluster(cluster("a")), reg.cluster(cluster("b")));
        let e = reg.entity(SeriesKey::edge(EdgeKey { src: a, dst: b }));
        let (x, y) = (reg.server("a-1"), reg.server("b-1"));
        let c = Counters {
            requests: 1.0,
            errors: 0.0,
            latency_ms_sum: 1.0,
        };
        let hours = [0, 3600, 7200];
        let batch = WriteBatch {
            cells: hours.iter().map(|h| (*h, e, c)).collect(),
            pairs: hours
                .iter()
                .map(|h| PairRow {
                    tick: *h,
                    entity: e,
                    src: x,
                    dst: y,
                    counters: c,
                })
                .collect(),
            ..Default::default()
        };
        s.write(&reg, since, &batch, true).unwrap();
        s.put_activity(&[(0, 1.0), (7200, 2.0)], true).unwrap();
        let record = StoredTick {
            snapshot: graph_core::snapshot::TickSnapshot::empty(0),
            summary: Default::default(),
            storms: vec![],
            sources_behind: vec![],
            stale_sources: None,
            analysed_at: 0,
            duration_ms: 1.0,
        };
        for t in hours {
            s.put_analysis(t, &[], &record).unwrap();
        }
        let pruned = s
            .prune(&Cutoffs {
                series: 3600,
                snapshots: 7200,
                pairs: 7200,
            })
            .unwrap();
        assert_eq!(
            pruned,
            Pruned {
                chunks: 1,
                snapshots: 2,
                pair_buckets: 2
            }
        );
        let ticks: Vec<_> = s
            .entity_cells(e, 0, 10_000)
            .unwrap()
            .iter()
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(ticks, vec![3600, 7200]);
        assert_eq!(s.activity(0, 10_000).unwrap(), vec![(7200, 2.0)]);
        assert_eq!(s.analysed_ticks(0, 10_000).unwrap(), vec![7200]);
        assert!(s.pairs(3600, None).unwrap().is_empty());
        assert_eq!(s.pairs(7200, Some(e)).unwrap().len(), 1);
    }
}
