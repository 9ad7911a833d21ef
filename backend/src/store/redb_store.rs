//! The embedded store: a single redb file with versioned schema migrations.

use std::path::{Path, PathBuf};

use graph_core::api::StoreHealth;
use redb::{Database, ReadableDatabase, TableDefinition};

use super::{Store, StoreError};

/// Schema version this build writes. Each step up is one function in [`MIGRATIONS`].
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

type Migration = fn(&redb::WriteTransaction) -> Result<(), redb::Error>;

/// `MIGRATIONS[i]` brings a store from version `i` to `i + 1`.
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] = [migrate_0_to_1];

fn migrate_0_to_1(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(META)?;
    Ok(())
}

/// The default store.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// The file name inside the data directory.
    pub const FILE_NAME: &'static str = "epicenter.redb";

    /// Opens (creating if needed) the store in `data_dir` and migrates it to
    /// [`SCHEMA_VERSION`].
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(Self::FILE_NAME);
        let open_err = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| open_err(e.to_string()))?;
        let store = RedbStore { db, path };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(backend)?;
        match tx.open_table(META) {
            Ok(t) => Ok(t
                .get("schema_version")
                .map_err(backend)?
                .map(|v| v.value())
                .unwrap_or(0)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(backend(e)),
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
}

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_migrated_and_reopens_at_the_same_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.health().status, "ok");
        drop(s);
        let s = RedbStore::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path()).unwrap();
        let tx = s.db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        tx.commit().unwrap();
        drop(s);
        let err = RedbStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    }
}
