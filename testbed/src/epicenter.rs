//! The real `epicenter` binary: found next to the testbed (or given), configured for short
//! buckets, given tokens with `epicenter token create`, started with `epicenter serve` on a
//! free port, and asked over its HTTP API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Finds the `epicenter` binary: `explicit` if given (`--epicenter`), else `from_env`
/// (`$EPICENTER_BIN`), else next to `exe` or one folder up (a test binary lives in
/// `target/<profile>/deps/`, the binaries in `target/<profile>/`).
pub fn locate(
    explicit: Option<&Path>,
    from_env: Option<&Path>,
    exe: &Path,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "no epicenter binary at {}", p.display());
        return Ok(p.to_path_buf());
    }
    if let Some(p) = from_env {
        anyhow::ensure!(p.is_file(), "EPICENTER_BIN={} is not a file", p.display());
        return Ok(p.to_path_buf());
    }
    let dir = exe.parent().context("the executable has no folder")?;
    let mut tried = Vec::new();
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join(format!("epicenter{}", std::env::consts::EXE_SUFFIX));
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    let release = dir.components().any(|c| c.as_os_str() == "release");
    bail!(
        "the epicenter binary is missing (looked at {}): build it with `cargo build{} -p epicenter-backend`, or pass --epicenter PATH",
        tried.join(", "),
        if release { " --release" } else { "" }
    )
}

/// Settings written into Epicenter's config file.
#[derive(Debug, Clone)]
pub struct EpicenterSetup {
    /// Bucket width, seconds.
    pub bucket_s: u64,
    /// `detection.grace_s`.
    pub grace_s: u64,
    /// `otlp.pair_window_s`.
    pub pair_window_s: u64,
}

impl EpicenterSetup {
    /// The testbed's settings for `bucket_s`-second buckets.
    pub fn for_bucket(bucket_s: u64) -> EpicenterSetup {
        EpicenterSetup {
            bucket_s,
            grace_s: 2,
            pair_window_s: 5,
        }
    }

    /// The config file for a store and a front-end folder under `dir`.
    pub fn config(&self, dir: &Path) -> String {
        let b = self.bucket_s;
        format!(
            r#"# Written by the testbed.
[server]
listen = "127.0.0.1:0"
static_dir = {static_dir}

[store]
data_dir = {data_dir}
bucket = "{b}s"

[detection]
interval_s = 1
grace_s = {grace}

[otlp]
pair_window_s = {pair}

# Baselines from the last minute or so, since a run has no weeks of history.
[analysis.detect.baseline.trailing]
window_s = {window}
max_episode_s = {episode}
min_samples = 8

[analysis.detect.persistence]
ticks = 2

[analysis.detect.metrics.latency]
min_relative_deviation = 0.1

# Time runs compressed: a fault every few buckets. A change counts from three buckets
# before an onset to the end of the onset's own bucket (the defaults: twelve and one).
[analysis.link]
window_s = {link_window}
grace_s = {b}
"#,
            static_dir = toml_str(&dir.join("no-front-end")),
            data_dir = toml_str(&dir.join("data")),
            grace = self.grace_s,
            pair = self.pair_window_s,
            window = 24 * b,
            episode = 6 * b,
            link_window = 3 * b,
        )
    }
}

fn toml_str(p: &Path) -> String {
    let s = p.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running Epicenter; dropping it kills the process.
#[derive(Debug)]
pub struct Epicenter {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// A token with scope `ingest` (the exporters' and the change feed's).
    pub ingest_token: String,
    /// A token with scope `write` (forcing analyses).
    pub write_token: String,
    client: reqwest::Client,
}

fn token(bin: &Path, config: &Path, name: &str, scope: &str) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args([
            "token", "create", "--name", name, "--scope", scope, "--config",
        ])
        .arg(config)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "epicenter token create failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

impl Epicenter {
    /// Writes the config into `dir`, creates the tokens and starts `epicenter serve`,
    /// its log going to `log`.
    pub fn start(
        bin: &Path,
        dir: &Path,
        setup: &EpicenterSetup,
        log: &Path,
    ) -> anyhow::Result<Epicenter> {
        let config = dir.join("epicenter.toml");
        std::fs::write(&config, setup.config(dir))?;
        // Tokens first: `token create` opens the store, which a server would hold locked.
        let ingest_token = token(bin, &config, "testbed", "ingest")?;
        let write_token = token(bin, &config, "testbed-operator", "write")?;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log)?))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("open ").nth(1) {
                        break rest.trim().trim_end_matches('/').to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "epicenter serve stopped before printing its URL; its log:\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
        };
        // Keep draining its standard output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Epicenter {
            child: Some(child),
            url,
            ingest_token,
            write_token,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    async fn read(&self, r: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let r = r.send().await.with_context(|| what.to_string())?;
        let status = r.status();
        let body = r.text().await?;
        if !status.is_success() {
            bail!("{what}: {status} {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
    }

    /// `GET path` (under the base URL) as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.read(
            self.client.get(format!("{}{path}", self.url)),
            &format!("GET {path}"),
        )
        .await
    }

    /// Records a config change on `service` at `ts`; returns the id Epicenter stored.
    pub async fn post_change(
        &self,
        id: &str,
        ts: i64,
        service: &str,
        description: &str,
    ) -> anyhow::Result<i64> {
        let body = json!({"id": id, "ts": ts, "author": "testbed", "clusters": [service],
                          "description": description});
        let v = self
            .read(
                self.client
                    .post(format!("{}/api/v1/changes", self.url))
                    .bearer_auth(&self.ingest_token)
                    .json(&body),
                "POST /api/v1/changes",
            )
            .await?;
        v["ids"][0]
            .as_i64()
            .with_context(|| format!("POST /api/v1/changes answered {v}"))
    }

    /// Analyses every tick from `from` to `to` now.
    pub async fn analyse(&self, from: i64, to: i64) -> anyhow::Result<Value> {
        self.read(
            self.client
                .post(format!("{}/api/v1/analysis/run", self.url))
                .bearer_auth(&self.write_token)
                .json(&json!({"from": from, "to": to})),
            "POST /api/v1/analysis/run",
        )
        .await
    }
}

impl Drop for Epicenter {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scales_baselines_with_the_bucket() {
        let c = EpicenterSetup {
            bucket_s: 5,
            grace_s: 2,
            pair_window_s: 5,
        }
        .config(Path::new("/tmp/x \"y\""));
        assert!(c.contains("bucket = \"5s\""), "{c}");
        assert!(
            c.contains("window_s = 120\nmax_episode_s = 30\nmin_samples = 8"),
            "{c}"
        );
        assert!(c.contains(r#"data_dir = "/tmp/x \"y\"/data""#), "{c}");
        assert!(c.contains("grace_s = 2"));
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("release").join("deps").join("t");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        let e = locate(None, None, &exe).unwrap_err().to_string();
        assert!(
            e.contains("cargo build --release -p epicenter-backend"),
            "{e}"
        );
        let bin = dir.path().join("release").join("epicenter");
        std::fs::write(&bin, "").unwrap();
        assert_eq!(locate(None, None, &exe).unwrap(), bin);
        let e = locate(None, Some(&dir.path().join("nope")), &exe).unwrap_err();
        assert!(e.to_string().contains("EPICENTER_BIN"), "{e}");
    }
}
