//! A store written by the previous schema version (5) opens in this one: everything in
//! it survives the migration, and the server serves and acts on it.
//!
//! `data/store-schema5.redb.gz` was written by `epicenter` at schema 5 (commit 0fc7dc1)
//! through its CLI and HTTP API, by `data/make-old-store.py`: two ingest tokens, the
//! account `carol`, six hours of call statistics from two sources ending at
//! [`END`], site activity, two config changes, the detection loop's analyses, and three
//! marks (one closed again). When the schema moves on, a new file is made the same way
//! with the build before the change, and this test points at it.

mod support;

use std::io::Read;

use epicenter_backend::auth::digest;
use epicenter_backend::config::Config;
use epicenter_backend::store::{RedbStore, SCHEMA_VERSION, Store};
use graph_core::model::BucketWidth;
use support::TestApp;

/// The end of the data in the file (exclusive): its last bucket starts at `END - 300`.
const END: i64 = 1_796_535_300;
const TOKEN_A: &str = "epi_83ad6bf5d7e273a3ff2eb194037e1d254e8aead51d26d2ce126a939a607a18d0";
const TOKEN_B: &str = "epi_ccc083e5687ab7f69acdd8f0a35d110cccd324d9ea9f6e2eceaa8400b624c1cb";
const PASSWORD: &str = "old-store-password";

/// The old store, unpacked into a fresh folder.
fn old_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let packed = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-schema5.redb.gz"),
    )
    .unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(packed.as_slice())
        .read_to_end(&mut bytes)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join(RedbStore::FILE_NAME), bytes).unwrap();
    (dir, data)
}

/// The schema version the file records, read with redb alone (before any migration).
fn recorded_version(data: &std::path::Path) -> u64 {
    use redb::{ReadableDatabase, TableDefinition};
    const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
    let db = redb::Database::open(data.join(RedbStore::FILE_NAME)).unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(META).unwrap();
    t.get("schema_version").unwrap().unwrap().value()
}

#[test]
fn every_record_of_a_schema_5_store_survives_the_migration() {
    let (_dir, data) = old_store();
    assert_eq!(
        recorded_version(&data),
        5,
        "the file is the previous version"
    );
    let store = RedbStore::open(&data, BucketWidth::FIVE_MINUTES).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Schemas 7 and 8 only added tables (trace spans held for pairing, maintenance
    // switches): the schema-5 file goes through every step, and the new tables are
    // there and empty.
    assert_eq!(SCHEMA_VERSION, 8, "a new schema needs a new old file");
    assert!(store.held_spans().unwrap().is_empty());
    assert!(store.maintenance_log().unwrap().is_empty());

    // Tokens, by digest only, with their scopes.
    let a = store.token(&digest(TOKEN_A)).unwrap().unwrap();
    let b = store.token(&digest(TOKEN_B)).unwrap().unwrap();
    assert_eq!(
        (a.name.as_str(), b.name.as_str()),
        ("collector-a", "collector-b")
    );
    assert!(store.token(&digest("epi_other")).unwrap().is_none());
    // The account and its password.
    let carol = store.user("carol").unwrap().unwrap();
    assert_eq!(carol.display_name, "Carol Old");
    assert!(epicenter_backend::auth::verify_password(
        &carol.password_hash,
        PASSWORD
    ));
    // Six hours of series on three edges, with their methods.
    let registry = store.registry().unwrap();
    assert_eq!(
        store.tick_range().unwrap(),
        Some((END - 72 * 300, END - 300))
    );
    let names: Vec<&str> = registry
        .catalog
        .iter()
        .map(|(_, c)| c.name.as_str())
        .collect();
    for n in ["web-1", "web-2", "db-1", "api-1"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let total: usize = (0..registry.entities().len() as u32)
        .map(|e| store.entity_cells(e, END - 72 * 300, END).unwrap().len())
        .sum();
    // Three edge totals and two methods' series (web-N -> db-1 "get"), 72 buckets each.
    assert_eq!(total, 5 * 72);
    // Activity, changes (with the text as sent), sources and the server-level records.
    assert_eq!(store.activity(0, END).unwrap().len(), 72);
    let changes = store.changes(0, END).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(
        changes
            .iter()
            .any(|c| c.description == "CHG-7: smaller <connection> pool"),
        "{changes:?}"
    );
    let mut sources: Vec<String> = store
        .sources()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    sources.sort();
    assert_eq!(sources, ["collector-a", "collector-b"]);
    assert_eq!(store.pairs(END - 300, None).unwrap().len(), 3);
    // The stored analyses read back, the last one with its ranking.
    let analysed = store.analysed_ticks(0, END).unwrap();
    assert!(analysed.len() >= 12, "{analysed:?}");
    let last = store.analysis(END - 300).unwrap().unwrap();
    assert_eq!(last.snapshot.tick, END - 300);
    for t in &analysed {
        assert!(store.analysis(*t).unwrap().is_some(), "tick {t} reads back");
    }
    // The marks, with versions, history and text.
    let marks = store.marks().unwrap();
    assert_eq!(marks.len(), 3);
    let first = &marks[0];
    assert_eq!((first.mark.id, first.version), (1, 2));
    assert_eq!(first.mark.description, "backup done");
    assert_eq!(first.history.len(), 2);
    assert_eq!(first.author_name, "Carol Old");
    assert!(
        marks[2].trend_from.is_some(),
        "the new trend keeps its start"
    );
    // What the migration added: the store's own key, made once and kept.
    let key = store.key("csrf").unwrap();
    assert_eq!(key.len(), 32);
    drop(store);
    let again = RedbStore::open(&data, BucketWidth::FIVE_MINUTES).unwrap();
    assert_eq!(again.key("csrf").unwrap(), key);
    assert_eq!(again.marks().unwrap().len(), 3);
}

#[tokio::test]
async fn the_server_serves_and_acts_on_a_migrated_store() {
    let (dir, data) = old_store();
    let mut config = Config::default();
    config.store.data_dir = data;
    config.server.static_dir = dir.path().to_path_buf();
    config.detection.enabled = false;
    let app = TestApp::start_on(dir, config).await;
    let marks = app.get_json("/api/v1/marks").await;
    let marks = marks.as_array().unwrap();
    assert_eq!(marks.len(), 3, "{marks:?}");
    assert!(
        marks
            .iter()
            .any(|m| m["description"] == "db slow for everyone" && m["kind"] == "incident")
    );
    let analysis = app
        .get_json(&format!("/api/v1/analysis?tick={}", END - 300))
        .await;
    assert_eq!(analysis["tick"], END - 300);
    let bundle = app
        .get_json(&format!(
            "/api/v1/snapshots/bundle?from={}&to={}",
            END - 3600,
            END - 300
        ))
        .await;
    assert_eq!(bundle["ticks"].as_array().unwrap().len(), 12);
    // carol signs in with her old password and makes a mark: the next id.
    let carol = app.sign_in_with("carol", PASSWORD).await;
    let res = app
        .client
        .post(format!("{}/api/v1/marks", app.base))
        .header("content-type", "application/json")
        .header("cookie", carol.cookie)
        .header("x-csrf-token", carol.csrf)
        .body(
            serde_json::json!({"kind": "incident", "tick": END - 300, "edge": {"src": "web-1", "dst": "db-1"},
                "description": "after the upgrade"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], 4);
    // And new data goes in beside the old (now: ingestion takes the last eight weeks).
    let now = epicenter_backend::analysis::unix_now();
    let ts = now - now.rem_euclid(300);
    let res = app
        .ingest(
            Some(TOKEN_A),
            format!(
                r#"{{"ts": {ts}, "src": "web-1", "dst": "db-1", "requests": 5, "errors": 0, "latency_ms_sum": 60}}"#
            ),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}
