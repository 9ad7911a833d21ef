//! Storage behind a trait. The embedded [`redb`](RedbStore) store is the default: one
//! file, durable once a write returns, no service to run.

pub mod cells;
mod redb_store;
pub mod registry;

pub use redb_store::{RedbStore, SCHEMA_VERSION, WriteBatch};
pub use registry::{Persisted, Registry};

use graph_core::api::StoreHealth;
use graph_core::detect::FrameStore;
use graph_core::model::{BucketWidth, Tick};

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
    /// Servers the topology did not map, with how many records named them.
    fn unmapped(&self) -> Result<Vec<(String, u64)>, StoreError>;
}
