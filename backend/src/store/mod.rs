//! Storage behind a trait. The embedded [`redb`](RedbStore) store is the default: one
//! file, durable once a write returns, no service to run.

pub mod cells;
pub mod records;
mod redb_store;
pub mod registry;

pub use records::{
    Cutoffs, PairRow, Pruned, SessionRecord, SourceState, SourceUpdate, StoredTick, UserRecord,
};
pub use redb_store::{HeldChanges, RedbStore, SCHEMA_VERSION, WriteBatch};
pub use registry::{Persisted, Registry};

use graph_core::api::StoreHealth;
use graph_core::detect::{Cell, FrameStore, PointFlags};
use graph_core::link::ConfigChange;
use graph_core::model::{BucketWidth, Tick};

/// A trace span held for pairing: its key (trace id ‖ span id) and its record.
pub type HeldRow = (Vec<u8>, Vec<u8>);

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store file could not be opened or created.
    #[error("cannot open store at {path}: {message}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The file was written by a newer version of Epicenter.
    #[error(
        "store schema version {found} is newer than this build supports ({supported}); upgrade Epicenter"
    )]
    SchemaTooNew {
        /// Version in the file.
        found: u64,
        /// Highest version this build knows.
        supported: u64,
    },
    /// A read or write failed.
    #[error("store operation failed: {0}")]
    Backend(String),
}

/// What the server needs from a store.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// A quick read that shows the store answers, and facts about it.
    fn health(&self) -> StoreHealth;
    /// Width of the stored buckets.
    fn bucket_width(&self) -> BucketWidth;
    /// Clusters, methods and entities.
    fn registry(&self) -> Result<Registry, StoreError>;
    /// The earliest and latest tick with data.
    fn tick_range(&self) -> Result<Option<(Tick, Tick)>, StoreError>;
    /// The buckets `ticks` of every entity, for detection.
    fn load_view(&self, registry: &Registry, ticks: &[Tick]) -> Result<FrameStore, StoreError>;
    /// Writes the registry entries added since `since` and the batch in one transaction;
    /// with `durable`, returns only once it is on disk.
    fn write(
        &self,
        registry: &Registry,
        since: Persisted,
        batch: &WriteBatch,
        durable: bool,
    ) -> Result<(), StoreError>;
    /// The API token stored under `digest`.
    fn token(&self, digest: &str) -> Result<Option<crate::auth::TokenInfo>, StoreError>;
    /// Stores an API token's digest and facts, durably.
    fn put_token(&self, digest: &str, info: &crate::auth::TokenInfo) -> Result<(), StoreError>;
    /// A number in the `meta` table (the demo's end, say).
    fn meta(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Every mark, by id.
    fn marks(&self) -> Result<Vec<crate::marks::StoredMark>, StoreError>;
    /// Stores a new mark under the next id (which it returns), durably.
    fn insert_mark(&self, mark: &crate::marks::StoredMark) -> Result<u64, StoreError>;
    /// Replaces mark `mark.mark.id` if its stored version is `expected_version`, durably;
    /// otherwise changes nothing and returns the stored mark (`None` if there is none).
    #[allow(clippy::type_complexity)]
    fn update_mark(
        &self,
        mark: &crate::marks::StoredMark,
        expected_version: u64,
    ) -> Result<Result<(), Option<crate::marks::StoredMark>>, StoreError>;
    /// The account `name`.
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Every account, by name.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Creates or replaces an account, durably.
    fn put_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// The session stored under `digest` (expired ones included: the caller checks).
    fn session(&self, digest: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Stores a session durably, dropping expired ones.
    fn put_session(&self, digest: &str, session: &SessionRecord) -> Result<(), StoreError>;
    /// Ends a session, durably.
    fn delete_session(&self, digest: &str) -> Result<(), StoreError>;
    /// The server key `name`: random bytes made (durably) on first use and the same
    /// ever after, for this store.
    fn key(&self, name: &str) -> Result<Vec<u8>, StoreError>;
    /// Servers the topology did not map, with how many records named them.
    fn unmapped(&self) -> Result<Vec<(String, u64)>, StoreError>;
    /// The cells of one entity for ticks in `from..to`, in time order (buckets without
    /// data are left out).
    fn entity_cells(
        &self,
        entity: u32,
        from: Tick,
        to: Tick,
    ) -> Result<Vec<(Tick, Cell)>, StoreError>;
    /// Stores one analysed tick: its detection flags (replacing the bucket's flags for
    /// every entity) and its record, in one durable transaction.
    fn put_analysis(
        &self,
        tick: Tick,
        flags: &[(u32, [PointFlags; 4])],
        record: &StoredTick,
    ) -> Result<(), StoreError>;
    /// The analysed tick `tick`, if stored.
    fn analysis(&self, tick: Tick) -> Result<Option<StoredTick>, StoreError>;
    /// The analysed ticks in `from..=to`, ascending.
    fn analysed_ticks(&self, from: Tick, to: Tick) -> Result<Vec<Tick>, StoreError>;
    /// The analysed ticks in `from..=to` with the size of each stored record, bytes.
    fn snapshot_sizes(&self, from: Tick, to: Tick) -> Result<Vec<(Tick, u64)>, StoreError>;
    /// Adds config changes (a change with a known id replaces it), durably.
    fn put_changes(&self, changes: &[ConfigChange]) -> Result<(), StoreError>;
    /// Config changes applied in `from..=to`, by time.
    fn changes(&self, from: Tick, to: Tick) -> Result<Vec<ConfigChange>, StoreError>;
    /// Sets site-wide activity values per bucket. With `durable`, returns once on disk.
    fn put_activity(&self, points: &[(Tick, f64)], durable: bool) -> Result<(), StoreError>;
    /// Site-wide activity for buckets in `from..=to`, ascending.
    fn activity(&self, from: Tick, to: Tick) -> Result<Vec<(Tick, f64)>, StoreError>;
    /// Every data source, by name.
    fn sources(&self) -> Result<Vec<SourceState>, StoreError>;
    /// The trace spans held for pairing (key, record), as [`WriteBatch::held`] left them.
    fn held_spans(&self) -> Result<Vec<HeldRow>, StoreError>;
    /// Server-level records of bucket `tick`; only those under `entity` when given.
    fn pairs(&self, tick: Tick, entity: Option<u32>) -> Result<Vec<PairRow>, StoreError>;
    /// Deletes everything older than the cutoffs.
    fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StoreError>;
    /// Every maintenance switch, oldest first.
    fn maintenance_log(&self) -> Result<Vec<crate::maintenance::MaintenanceRecord>, StoreError>;
    /// Appends a maintenance switch durably and returns its sequence number (the
    /// record's own is ignored).
    fn append_maintenance(
        &self,
        record: &crate::maintenance::MaintenanceRecord,
    ) -> Result<u64, StoreError>;
}
