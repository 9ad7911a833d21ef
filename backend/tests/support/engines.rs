//! Real Prometheus-compatible engines on loopback, for the pull-source tests: Debian's
//! `prometheus` and `victoria-metrics` binaries (installed by `./dev setup`), each in a
//! temporary folder, loaded with known series through the remote-write protocol.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prometheus,
    VictoriaMetrics,
}

impl Kind {
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Prometheus => "prometheus",
            Kind::VictoriaMetrics => "victoria-metrics",
        }
    }
}

/// A running engine.
pub struct Engine {
    pub kind: Kind,
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: PathBuf,
}

/// Remote write, as Prometheus defines it (prometheus/prompb, types.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A series: metric name, labels, and (Unix seconds, value) samples in time order.
pub fn series(name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut l = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    l.extend(labels.iter().map(|(k, v)| Label {
        name: k.to_string(),
        value: v.to_string(),
    }));
    l.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels: l,
        samples: samples
            .iter()
            .map(|(t, v)| Sample {
                value: *v,
                timestamp: t * 1000,
            })
            .collect(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Engine {
    /// Starts `kind` with an empty store on a free port and waits until it is ready.
    /// Panics with a pointer to `./dev setup` when the binary is missing.
    pub async fn start(kind: Kind) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("engine.log");
        let mut e = Engine {
            kind,
            port: free_port(),
            child: None,
            dir,
            log,
        };
        e.launch().await;
        e
    }

    async fn launch(&mut self) {
        let data = self.dir.path().join("data");
        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = Command::new(self.kind.binary());
        match self.kind {
            Kind::Prometheus => {
                let config = self.dir.path().join("prometheus.yml");
                std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", data.display()))
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--storage.tsdb.retention.time=100y");
            }
            Kind::VictoriaMetrics => {
                cmd.arg(format!("-storageDataPath={}", data.display()))
                    .arg(format!("-httpListenAddr={listen}"))
                    .arg("-retentionPeriod=100y")
                    .arg("-search.disableCache")
                    .arg("-search.latencyOffset=0s");
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = cmd
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): `./dev setup` installs it from Debian's packages",
                    self.kind.binary()
                )
            });
        self.child = Some(child);
        let ready = match self.kind {
            Kind::Prometheus => "/-/ready",
            Kind::VictoriaMetrics => "/health",
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}{ready}", self.url())).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not get ready within a minute; its log:\n{}",
                self.kind.binary(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The engine's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The base URL of its Prometheus API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes `series` with remote write (snappy-compressed protobuf).
    pub async fn write(&self, series: Vec<TimeSeries>) {
        let body = WriteRequest { timeseries: series }.encode_to_vec();
        let body = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        // Both engines take remote write at the same path.
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/write", self.url()))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "remote write to {}: {status} {}",
            self.kind.binary(),
            r.text().await.unwrap_or_default()
        );
        if self.kind == Kind::VictoriaMetrics {
            // Make what was written searchable at once.
            reqwest::Client::new()
                .get(format!("{}/internal/force_flush", self.url()))
                .send()
                .await
                .unwrap();
        }
    }

    /// Stops it (SIGTERM, as a service manager does) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    child.kill().unwrap();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
