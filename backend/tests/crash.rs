//! Crash safety: the real binary is killed with SIGKILL while a client streams batches.
//! After a restart every acknowledged batch is there, and no batch is half-applied.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};

fn token(data: &Path) -> String {
    support::create_token(data, "crash-client", "ingest")
}

/// Starts the server on a free port and returns it with its base URL.
fn start(data: &Path) -> (Child, String) {
    support::spawn_on_store(data, &[])
}

async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Batch `i`: two edges between servers named after it, so a half-applied batch
/// would show as one edge without the other.
fn batch(i: usize, ts: i64) -> String {
    format!(
        "{{\"ts\": {ts}, \"src\": \"crash-{i}-a\", \"dst\": \"crash-{i}-b\", \"requests\": 7, \"errors\": 1, \"latency_ms_sum\": 70}}\n\
         {{\"ts\": {ts}, \"src\": \"crash-{i}-c\", \"dst\": \"crash-{i}-d\", \"requests\": 9, \"errors\": 0, \"latency_ms_sum\": 90}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_every_acknowledged_batch_survives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = token(&data);
    let (mut server, url) = start(&data);
    let ts = now() - 900;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let client = reqwest::Client::new();
    // Four clients stream batches until the server dies.
    let mut senders = Vec::new();
    for worker in 0..4 {
        let (client, url, token, acked) =
            (client.clone(), url.clone(), token.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            let mut i = worker;
            loop {
                let res = client
                    .post(format!("{url}/api/v1/ingest/calls"))
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .body(batch(i, ts))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap().insert(i);
                    }
                    Ok(r) => panic!("batch {i}: {}", r.status()),
                    Err(_) => return i,
                }
                i += 4;
            }
        }));
    }
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() < 60 {
        assert!(
            started.elapsed().as_secs() < 120 && senders.iter().all(|s| !s.is_finished()),
            "the clients stopped making progress"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let mut highest = 0;
    for s in senders {
        highest = highest.max(s.await.unwrap());
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60);

    let (mut server, url) = start(&data);
    let topo = get_json(&client, format!("{url}/api/v1/topology")).await;
    let names: BTreeSet<String> = topo["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for i in 0..=highest + 4 {
        let present: Vec<bool> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| names.contains(&format!("crash-{i}-{s}")))
            .collect();
        assert!(
            present.iter().all(|p| *p) || present.iter().all(|p| !*p),
            "batch {i} is half there: {present:?}"
        );
        if acked.contains(&i) {
            assert!(present[0], "acknowledged batch {i} is lost");
        }
    }
    // The counters of acknowledged batches are exact: written once, not twice or half.
    for &i in acked.iter().take(10) {
        let s = get_json(
            &client,
            format!(
                "{url}/api/v1/edges/series?src=crash-{i}-a&dst=crash-{i}-b&from={}&to={}",
                ts - 300,
                ts
            ),
        )
        .await;
        assert_eq!(s["points"][0]["requests"], 7.0, "batch {i}: {s}");
        assert_eq!(s["points"][0]["errors"], 1.0, "batch {i}: {s}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
