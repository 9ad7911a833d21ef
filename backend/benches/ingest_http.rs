//! Ingest throughput over HTTP into the durable store: the release binary on loopback,
//! server-level call statistics from the fixtures' simulation (with its topology file),
//! several clients posting NDJSON batches; every batch is a durable commit.
//!
//! `cargo bench -p epicenter-backend --bench ingest_http [-- CLIENTS LINES_PER_BATCH TICKS]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use epicenter_fixtures::files::Topology;
use epicenter_fixtures::server::ServerLevel;
use epicenter_fixtures::sim::Simulation;
use epicenter_fixtures::world::World;
use graph_core::model::BucketWidth;

const BIN: &str = env!("CARGO_BIN_EXE_epicenter");

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(4);
    let per_batch = args.get(1).copied().unwrap_or(20_000);
    let ticks = args.get(2).copied().unwrap_or(48) as i64;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let world = World::build(1);
    let topology = dir.path().join("topology.json");
    std::fs::write(
        &topology,
        serde_json::to_string(&Topology::of(&world)).unwrap(),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            "bench",
            "--scope",
            "ingest",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    // Server-level lines for the last `ticks` buckets before now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let last = now - now.rem_euclid(300) - 600;
    let level = ServerLevel::new(Simulation::new(&world, BucketWidth::FIVE_MINUTES, &[]).unwrap());
    let started = Instant::now();
    let mut batches: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_batch = 0;
    let mut lines = 0usize;
    for i in (0..ticks).rev() {
        for call in level.tick(last - i * 300) {
            current.push_str(&serde_json::to_string(&call).unwrap());
            current.push('\n');
            in_batch += 1;
            lines += 1;
            if in_batch == per_batch {
                batches.push(std::mem::take(&mut current));
                in_batch = 0;
            }
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    let bytes: usize = batches.iter().map(String::len).sum();
    eprintln!(
        "generated {lines} lines ({:.0} MB) in {} batches in {:.1} s",
        bytes as f64 / 1e6,
        batches.len(),
        started.elapsed().as_secs_f64()
    );

    // EPICENTER_BENCH_SERVER runs the server through a wrapper (e.g. a profiler).
    let server_bin = std::env::var("EPICENTER_BENCH_SERVER").unwrap_or_else(|_| BIN.to_string());
    let mut server = Command::new(server_bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--static-dir")
        .arg(dir.path())
        .env("EPICENTER__INGEST__TOPOLOGY", &topology)
        .env("EPICENTER__DETECTION__ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = loop {
        let line = out.next().unwrap().unwrap();
        if let Some(rest) = line.split("open ").nth(1) {
            break rest.trim_end_matches('/').to_string();
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let queue = Arc::new(Mutex::new(batches));
    let started = Instant::now();
    let accepted: u64 = rt.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, url, token, queue) =
                (client.clone(), url.clone(), token.clone(), queue.clone());
            tasks.push(tokio::spawn(async move {
                let mut accepted = 0u64;
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        return accepted;
                    };
                    let res = client
                        .post(format!("{url}/api/v1/ingest/calls"))
                        .bearer_auth(&token)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    let a: serde_json::Value = res.json().await.unwrap();
                    accepted +=
                        a["accepted"].as_u64().unwrap() + a["unmapped_records"].as_u64().unwrap();
                }
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    let secs = started.elapsed().as_secs_f64();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_string();
    server.kill().unwrap();
    server.wait().unwrap();
    let size = std::fs::metadata(data.join("epicenter.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(accepted as usize, lines);
    println!(
        "ingest over HTTP: {lines} records, {clients} clients, {per_batch} records/batch: {secs:.2} s, {:.0} records/s ({:.1} MB/s); server peak {hwm}; store {:.0} MB",
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs,
        size as f64 / 1e6
    );
}
