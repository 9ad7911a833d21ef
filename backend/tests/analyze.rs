//! `epicenter analyze` as scripts run it: the real binary on files.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use epicenter_fixtures::scenario::ScenarioKind;
use epicenter_fixtures::sim::Simulation;
use epicenter_fixtures::world::World;
use graph_core::detect::DetectConfig;
use graph_core::model::BucketWidth;

const END: i64 = 1_795_000_200;

fn epicenter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_epicenter"))
        .args(args)
        .output()
        .unwrap()
}

/// Writes the messaging incident as cluster-level call statistics (each cluster name is
/// a "server", so no topology is needed) for every tick that analyses at `at` and the
/// four ticks before it read (the persistence filter looks back that far), and
/// the incident's config changes.
fn write_dump(dir: &Path, at: i64) -> (String, String) {
    let world = World::build(1);
    let kind = ScenarioKind::MessagingHistory;
    let scenario = kind.build(&world, kind.default_onset(END)).unwrap();
    let sim = Simulation::new(
        &world,
        BucketWidth::FIVE_MINUTES,
        std::slice::from_ref(&scenario),
    )
    .unwrap();
    let config = DetectConfig::default();
    let w = 300;
    let ticks: BTreeSet<i64> = (0..=4)
        .flat_map(|i| config.ticks_needed(at - i * w, BucketWidth::FIVE_MINUTES))
        .collect();
    let calls = dir.join("calls.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&calls).unwrap());
    let keys = world.edge_keys();
    let cat = world.catalog();
    for t in ticks {
        for (i, c) in sim.tick(t).iter().enumerate() {
            let requests = c.requests.round().max(0.0) as u64;
            if requests == 0 {
                continue;
            }
            let errors = (c.errors.round().max(0.0) as u64).min(requests);
            writeln!(
                out,
                r#"{{"ts":{t},"src":"{}","dst":"{}","requests":{requests},"errors":{errors},"latency_ms_sum":{:.3}}}"#,
                cat.name(keys[i].src),
                cat.name(keys[i].dst),
                c.latency_ms_sum / c.requests * requests as f64
            )
            .unwrap();
        }
    }
    drop(out);
    let changes = dir.join("changes.jsonl");
    let mut out = std::fs::File::create(&changes).unwrap();
    writeln!(out, r#"{{"ts":{},"author":"m.ivanova","clusters":["messaging-conversation-cdb"],"description":"compaction threads 8 -> 2","id":"CHG-812"}}"#, scenario.onset - 360).unwrap();
    (calls.display().to_string(), changes.display().to_string())
}

#[test]
fn the_messaging_incident_is_found_and_its_storage_cluster_ranked_first() {
    let dir = tempfile::tempdir().unwrap();
    let kind = ScenarioKind::MessagingHistory;
    let at = kind.default_onset(END) + 20 * 60;
    let (calls, changes) = write_dump(dir.path(), at);
    let at_s = at.to_string();
    let out = epicenter(&[
        "analyze",
        "--calls",
        &calls,
        "--changes",
        &changes,
        "--at",
        &at_s,
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tick = &doc["ticks"][0];
    assert_eq!(tick["tick"], at);
    assert_eq!(tick["baseline"], "weekly");
    let storage = tick["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["src"] == "messaging-proxy"
                && a["dst"] == "messaging-conversation-cdb"
                && a["metric"] == "latency"
        })
        .expect("the storage edge's latency is anomalous");
    let delta = storage["value"].as_f64().unwrap() - storage["expected"].as_f64().unwrap();
    assert!((30.0..50.0).contains(&delta), "{storage}");
    assert!(storage["severity"].as_f64().unwrap() > 0.0);
    let first = &tick["root_causes"][0];
    assert_eq!(first["cluster"], "messaging-conversation-cdb");
    let why = first["explanation"].as_str().unwrap();
    assert!(why.contains("+3") && why.contains("ms"), "{why}");
    assert!(why.contains("config change #812 by m.ivanova"), "{why}");

    // The table says the same for people.
    let out = epicenter(&["analyze", "--calls", &calls, "--at", &at_s]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("root causes:") && table.contains("  1. messaging-conversation-cdb"),
        "{table}"
    );

    // A range reports every tick in it.
    let from = (at - 600).to_string();
    let out = epicenter(&[
        "analyze", "--calls", &calls, "--from", &from, "--to", &at_s, "--format", "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ticks"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_input_says_which_file_and_line_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.jsonl");
    std::fs::write(
        &calls,
        "{\"ts\":600,\"src\":\"a\",\"dst\":\"b\",\"requests\":1,\"errors\":0,\"latency_ms_sum\":1}\n{\"ts\":600,\"src\":\"a\"}\n",
    )
    .unwrap();
    let c = calls.display().to_string();
    let out = epicenter(&["analyze", "--calls", &c, "--at", "600"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{c}:2: field \"dst\": is missing")),
        "{err}"
    );

    let out = epicenter(&[
        "analyze",
        "--calls",
        "/nonexistent/calls.jsonl",
        "--at",
        "600",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/calls.jsonl"));

    let out = epicenter(&["analyze", "--calls", &c, "--at", "600", "--colour"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--colour"));

    let out = epicenter(&["analyze", "--calls", &c, "--at", "yesterday"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--at: \"yesterday\" is neither RFC 3339")
    );

    let out = epicenter(&["analyze", "--calls", &c, "--at", "600", "--bucket", "7m"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bucket"));

    let topo = dir.path().join("topology.json");
    std::fs::write(&topo, "{\"version\": 1, \"rules\": [{\"pattern\": \"(\"}]}").unwrap();
    let t = topo.display().to_string();
    let out = epicenter(&["analyze", "--calls", &c, "--topology", &t, "--at", "600"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rules[0]"));
}
