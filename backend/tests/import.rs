//! `epicenter import` as operators run it: the real binary on files, into a store a
//! server then serves.

use std::path::Path;
use std::process::Command;

use epicenter_backend::store::{RedbStore, Store};
use graph_core::model::BucketWidth;

fn epicenter(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_epicenter"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn lines(from: i64, n: i64) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"ts\": {}, \"src\": \"web-{}\", \"dst\": \"db-1\", \"method\": \"get\", \"requests\": 10, \"errors\": 1, \"latency_ms_sum\": 50}}\n",
                from + (i / 4) * 300,
                i % 4
            )
        })
        .collect()
}

#[test]
fn files_are_imported_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = dir.path().join("a.jsonl");
    let more = dir.path().join("b.jsonl");
    // Years-old history is fine for an import (no time window, unlike live ingest).
    std::fs::write(&good, lines(1_600_000_200, 400)).unwrap();
    std::fs::write(&more, lines(1_600_000_200 + 100 * 300, 40)).unwrap();
    let out = epicenter(
        &[
            "import",
            good.to_str().unwrap(),
            more.to_str().unwrap(),
            "--batch",
            "64",
        ],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("Imported 440 records"), "{said}");

    let store = RedbStore::open(&data, BucketWidth::FIVE_MINUTES).unwrap();
    let reg = store.registry().unwrap();
    assert_eq!(reg.catalog.len(), 5, "web-0..3 and db-1");
    let (first, last) = store.tick_range().unwrap().unwrap();
    assert_eq!(first, 1_600_000_200, "a bucket start");
    assert_eq!(last, first + 109 * 300);
    drop(store);

    // A bad line anywhere stops the import before anything is stored, naming it.
    let bad = dir.path().join("bad.jsonl");
    let mut text = lines(1_600_100_000, 10);
    text.push_str("{\"ts\": 1600100000, \"src\": \"web-9\", \"dst\": \"db-1\", \"requests\": 5, \"errors\": 6, \"latency_ms_sum\": 1}\n");
    std::fs::write(&bad, text).unwrap();
    let out = epicenter(
        &["import", good.to_str().unwrap(), bad.to_str().unwrap()],
        &data,
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.jsonl: line 11: field \"errors\"")
            && err.contains("nothing was imported"),
        "{err}"
    );
    let store = RedbStore::open(&data, BucketWidth::FIVE_MINUTES).unwrap();
    assert_eq!(store.registry().unwrap().catalog.len(), 5, "no web-9");
    assert_eq!(store.tick_range().unwrap(), Some((first, last)));
    drop(store);
    let out = epicenter(&["import", "/no/such/file.jsonl"], &data);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.jsonl"));
}
