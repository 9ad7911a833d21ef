//! `testbed run`: starts Epicenter, the services, the proxies and the load; warms up;
//! injects the seeded faults one after another with their config changes; writes the
//! labels; then has Epicenter analyse the run and scores its ranking against two naive
//! rankers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::epicenter::{Epicenter, EpicenterSetup};
use crate::eval::{EdgeObs, FaultOutcome, Naive, RANKERS, Report, naive_ranking, rank_of};
use crate::faults::{ChangePlan, FaultKind, FaultState, Label, Labels, PlannedFault, plan};
use crate::loadgen::LoadGen;
use crate::proxy::Proxy;
use crate::topology::{FRONT, PROXIED_LINKS, Plan, instance_ids, services};

/// What `testbed run` does.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Faults to inject.
    pub faults: usize,
    /// Seed of the plan, the load and the changes.
    pub seed: u64,
    /// Folder for labels, report and logs.
    pub out: PathBuf,
    /// Bucket width, seconds.
    pub bucket_s: u64,
    /// The `epicenter` binary.
    pub epicenter: PathBuf,
    /// The `testbed` binary the services run from.
    pub service_bin: PathBuf,
    /// Requests a second at the front.
    pub rate: f64,
    /// Buckets of load before the first fault.
    pub warmup_buckets: u32,
    /// Buckets each fault stays on.
    pub fault_buckets: u32,
    /// Buckets of recovery after each fault.
    pub recovery_buckets: u32,
    /// Buckets before a fault whose mean the naive rankers compare with.
    pub baseline_buckets: u32,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

async fn sleep_until_unix(t: f64) {
    let d = t - unix_now();
    if d > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(d)).await;
    }
}

fn log(msg: impl AsRef<str>) {
    let t = unix_now();
    let s = t as u64 % 86_400;
    eprintln!(
        "[{:02}:{:02}:{:02}] {}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        msg.as_ref()
    );
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The service processes; dropping it kills every one (SIGKILL). Each also watches its
/// standard input and exits when the orchestrator's end of the pipe closes, so none
/// outlives an orchestrator that was itself killed.
#[derive(Debug)]
struct Fleet {
    bin: PathBuf,
    plan: PathBuf,
    logs: PathBuf,
    /// Instance -> (service, port).
    where_: BTreeMap<String, (String, u16)>,
    children: BTreeMap<String, Child>,
}

impl Fleet {
    fn spawn(&mut self, instance: &str) -> anyhow::Result<()> {
        let (service, port) = self.where_[instance].clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{instance}.log")))?;
        let child = Command::new(&self.bin)
            .args(["service", "--watch-stdin", "--plan"])
            .arg(&self.plan)
            .args(["--service", &service, "--instance", instance, "--port"])
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.children.insert(instance.to_string(), child);
        Ok(())
    }

    fn kill(&mut self, instance: &str) {
        if let Some(mut c) = self.children.remove(instance) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn wait_ready(&mut self, instance: &str, client: &reqwest::Client) -> anyhow::Result<()> {
        let port = self.where_[instance].1;
        let deadline = unix_now() + 30.0;
        loop {
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{port}/_health"))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(c) = self.children.get_mut(instance)
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "{instance} exited ({status}); its log:\n{}",
                    std::fs::read_to_string(self.logs.join(format!("{instance}.log")))
                        .unwrap_or_default()
                );
            }
            if unix_now() > deadline {
                bail!("{instance} did not answer /_health within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in self.children.values_mut() {
            let _ = c.kill();
        }
        for c in self.children.values_mut() {
            let _ = c.wait();
        }
    }
}

/// The running world of a run.
struct World {
    epicenter: Epicenter,
    fleet: Fleet,
    proxies: BTreeMap<String, Proxy>,
    client: reqwest::Client,
}

impl World {
    async fn set_faults(&self, service: &str, state: &FaultState) -> anyhow::Result<()> {
        for (instance, (s, port)) in &self.fleet.where_ {
            if s != service || !self.fleet.children.contains_key(instance) {
                continue;
            }
            let r = self
                .client
                .post(format!("http://127.0.0.1:{port}/_fault"))
                .json(state)
                .send()
                .await
                .with_context(|| format!("POST /_fault to {instance}"))?;
            let status = r.status();
            if !status.is_success() {
                bail!(
                    "{instance} refused its faults: {status} {}",
                    r.text().await?
                );
            }
        }
        Ok(())
    }

    async fn switch(&mut self, f: &PlannedFault, on: bool) -> anyhow::Result<()> {
        match f.kind {
            FaultKind::ProxyDelay => {
                let link = f.link.as_deref().context("a proxy fault names its link")?;
                let p = self.proxies.get(link).context("no proxy on the link")?;
                let ms = if on { f.size } else { 0.0 };
                p.set_delay(Duration::from_secs_f64(ms / 1000.0));
            }
            FaultKind::KillInstance => {
                let i = f.instance.as_deref().context("a kill names its instance")?;
                if on {
                    self.fleet.kill(i);
                } else {
                    self.fleet.spawn(i)?;
                    self.fleet.wait_ready(i, &self.client).await?;
                }
            }
            _ => {
                let state = if on { f.state() } else { FaultState::default() };
                self.set_faults(&f.cause, &state).await?;
            }
        }
        Ok(())
    }
}

/// Runs the whole testbed and returns the report (also written to `out`).
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.bucket_s >= 1 && 3600 % args.bucket_s == 0,
        "--bucket must divide an hour"
    );
    let b = args.bucket_s as f64;
    std::fs::create_dir_all(&args.out)?;
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    // Epicenter's store stays in `out/data`, so `testbed score` can analyse the run again.
    anyhow::ensure!(
        !args.out.join("data").exists(),
        "{} already holds a run's store: give a new --out, or re-score that run with `testbed score --out {}`",
        args.out.join("data").display(),
        args.out.display()
    );
    let work = tempfile::tempdir()?;
    let setup = EpicenterSetup::for_bucket(args.bucket_s);
    let epicenter = Epicenter::start(
        &args.epicenter,
        &args.out,
        &setup,
        &logs.join("epicenter.log"),
    )?;
    log(format!("epicenter at {}", epicenter.url));

    let specs = services();
    let mut instances: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut where_ = BTreeMap::new();
    for s in &specs {
        for id in instance_ids(s) {
            let port = free_port()?;
            instances
                .entry(s.name.clone())
                .or_default()
                .push((id.clone(), format!("127.0.0.1:{port}")));
            where_.insert(id, (s.name.clone(), port));
        }
    }
    let mut proxies = BTreeMap::new();
    let mut proxy_addrs = BTreeMap::new();
    for (a, callee) in PROXIED_LINKS {
        let upstream = instances[callee][0].1.clone();
        let p = Proxy::start(upstream).await?;
        proxy_addrs.insert(format!("{a}>{callee}"), p.addr.clone());
        proxies.insert(format!("{a}>{callee}"), p);
    }
    let export_delay_ms = 300;
    let plan_file = Plan {
        services: specs.clone(),
        instances: instances.clone(),
        proxies: proxy_addrs,
        epicenter: epicenter.url.clone(),
        token: epicenter.ingest_token.clone(),
        export_delay_ms,
    };
    // The plan holds the ingest token: it stays in the temporary folder.
    let plan_path = work.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan_file)?)?;
    let mut world = World {
        fleet: Fleet {
            bin: args.service_bin.clone(),
            plan: plan_path,
            logs: logs.clone(),
            where_,
            children: BTreeMap::new(),
        },
        epicenter,
        proxies,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    };
    let ids: Vec<String> = world.fleet.where_.keys().cloned().collect();
    for id in &ids {
        world.fleet.spawn(id)?;
    }
    for id in &ids {
        world.fleet.wait_ready(id, &world.client).await?;
    }
    log(format!("{} service instances up", ids.len()));

    let front = format!("http://{}", instances[FRONT][0].1);
    let load = LoadGen::start(
        front,
        args.rate,
        args.seed,
        &world.epicenter.url,
        &world.epicenter.ingest_token,
        Duration::from_millis(export_delay_ms),
    )?;
    let load_start = unix_now();
    log(format!(
        "load at {} requests/s; warming up for {} buckets",
        args.rate, args.warmup_buckets
    ));

    let planned = plan(args.seed, args.faults, &specs);
    let cycle = f64::from(args.fault_buckets + args.recovery_buckets) * b;
    let first = ((load_start + f64::from(args.warmup_buckets) * b) / b).ceil() * b;
    let mut labels = Vec::new();
    for (i, f) in planned.iter().enumerate() {
        // A quarter of a second into a bucket, so the first fault bucket is nearly whole.
        let t0 = first + i as f64 * cycle + 0.25;
        sleep_until_unix(t0 - 1.0).await;
        let (mut change_id, mut decoy_change_id) = (None, None);
        match &f.change {
            ChangePlan::Real { description } => {
                let id = world
                    .epicenter
                    .post_change(
                        &format!("TB-{}-{}", args.seed, f.id),
                        unix_now() as i64,
                        &f.cause,
                        description,
                    )
                    .await?;
                change_id = Some(id);
            }
            ChangePlan::Decoy {
                service,
                description,
            } => {
                let id = world
                    .epicenter
                    .post_change(
                        &format!("TB-{}-{}", args.seed, f.id),
                        unix_now() as i64,
                        service,
                        description,
                    )
                    .await?;
                decoy_change_id = Some(id);
            }
            ChangePlan::None => {}
        }
        sleep_until_unix(t0).await;
        let start = unix_now();
        world.switch(f, true).await?;
        log(format!(
            "fault {}/{}: {} on {}{} ({} {})",
            f.id,
            planned.len(),
            f.kind.name(),
            f.cause,
            f.link
                .as_deref()
                .map(|l| format!(" [{l}]"))
                .unwrap_or_default(),
            f.size,
            f.unit
        ));
        sleep_until_unix(t0 + f64::from(args.fault_buckets) * b - 0.25).await;
        world.switch(f, false).await?;
        let end = unix_now();
        labels.push(Label {
            fault: f.clone(),
            start,
            end,
            change_id,
            decoy_change_id,
        });
    }
    // The last recovery, then time for the last spans to be exported, paired and analysed.
    let tail = f64::from(args.recovery_buckets) * b;
    sleep_until_unix(unix_now() + tail.max(2.0 * b) + setup.pair_window_s as f64 + 1.0).await;
    let (sent, failed) = (
        load.stats.sent.load(std::sync::atomic::Ordering::Relaxed),
        load.stats.failed.load(std::sync::atomic::Ordering::Relaxed),
    );
    load.stop().await;
    log(format!("load stopped: {sent} requests, {failed} failed"));
    let labels = Labels {
        seed: args.seed,
        bucket_s: args.bucket_s,
        load_start,
        faults: labels,
    };
    std::fs::write(
        args.out.join("labels.json"),
        serde_json::to_vec_pretty(&labels)?,
    )?;
    // Let the final spans arrive and be paired before the forced analysis.
    tokio::time::sleep(Duration::from_secs(setup.pair_window_s + setup.grace_s + 1)).await;

    let report = evaluate(&world.epicenter, &labels, args.baseline_buckets).await?;
    write_report(&args.out, &report)?;
    Ok(report)
}

fn write_report(out: &Path, report: &Report) -> anyhow::Result<()> {
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    std::fs::write(out.join("report.md"), report.markdown())?;
    Ok(())
}

/// `testbed score`: starts `epicenter` on the store a run left in `out/data`, analyses
/// the run again and scores it against its labels, replacing the report. Changes to the
/// ranker are measured this way on the very same calls.
pub async fn score(out: &Path, epicenter: &Path, baseline_buckets: u32) -> anyhow::Result<Report> {
    let labels_path = out.join("labels.json");
    let labels: Labels = serde_json::from_slice(
        &std::fs::read(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?,
    )
    .with_context(|| format!("{} is not a run's labels", labels_path.display()))?;
    anyhow::ensure!(
        out.join("data").is_dir(),
        "{} holds no store (runs before stores were kept cannot be re-scored)",
        out.display()
    );
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let setup = EpicenterSetup::for_bucket(labels.bucket_s);
    let e = Epicenter::start(epicenter, out, &setup, &logs.join("epicenter-score.log"))?;
    log(format!(
        "epicenter at {} on {}",
        e.url,
        out.join("data").display()
    ));
    let report = evaluate(&e, &labels, baseline_buckets).await?;
    write_report(out, &report)?;
    Ok(report)
}

/// Cluster id -> name, from a `GET /api/v1/graph/full` answer.
fn cluster_names(graph: &Value) -> anyhow::Result<BTreeMap<i64, String>> {
    Ok(graph["clusters"]
        .as_array()
        .context("graph/full has no clusters")?
        .iter()
        .filter_map(|c| Some((c["id"].as_i64()?, c["name"].as_str()?.to_string())))
        .collect())
}

/// Edges of `tick` from `GET /api/v1/graph/full`.
async fn edges_at(e: &Epicenter, tick: i64) -> anyhow::Result<Vec<EdgeObs>> {
    let v = e.get(&format!("/api/v1/graph/full?tick={tick}")).await?;
    let names = cluster_names(&v)?;
    let mut out = Vec::new();
    for ed in v["edges"].as_array().context("graph/full has no edges")? {
        let name = |k: &str| -> anyhow::Result<String> {
            let id = ed[k].as_i64().context("an edge without ends")?;
            names
                .get(&id)
                .cloned()
                .context("an edge naming an unknown cluster")
        };
        out.push(EdgeObs {
            src: name("src")?,
            dst: name("dst")?,
            requests: ed["requests"].as_f64().unwrap_or(0.0),
            latency_ms: ed["latency_ms"].as_f64(),
            error_rate: ed["error_rate"].as_f64(),
        });
    }
    Ok(out)
}

/// The ranked candidates' names at `tick`.
async fn epicenter_ranking(e: &Epicenter, tick: i64) -> anyhow::Result<Vec<String>> {
    let v = e.get(&format!("/api/v1/analysis?tick={tick}")).await?;
    Ok(v["snapshot"]["ranking"]["candidates"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The anomalies Epicenter flagged at `tick`, one line per call and metric:
/// `caller>callee metric expected -> current`, and the test's baseline.
async fn epicenter_flagged(e: &Epicenter, tick: i64) -> anyhow::Result<Vec<String>> {
    let v = e.get(&format!("/api/v1/analysis?tick={tick}")).await?;
    let names = cluster_names(&e.get(&format!("/api/v1/graph/full?tick={tick}")).await?)?;
    let name = |x: &Value| {
        x.as_i64()
            .and_then(|id| names.get(&id).cloned())
            .unwrap_or_else(|| x.to_string())
    };
    let mut out = Vec::new();
    for o in v["snapshot"]["observations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for a in o["anomalies"].as_array().into_iter().flatten() {
            let metric = a["metric"].as_str().unwrap_or("?");
            let unit = if metric == "latency" { " ms" } else { "" };
            let num = |k: &str| {
                a[k].as_f64()
                    .map_or("?".into(), |x| format!("{x:.3}{unit}"))
            };
            let test = &a["test"];
            let mut line = format!(
                "{}>{} {metric} {} -> {} ({} baseline",
                name(&o["edge"]["src"]),
                name(&o["edge"]["dst"]),
                num("expected"),
                num("value"),
                test["baseline"]["kind"].as_str().unwrap_or("no")
            );
            if let Some(own) = test["own_time"].as_object() {
                line.push_str(&format!(
                    "; own time {:.3} ms, downstream {:.3} ms",
                    own.get("own_ms")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::NAN),
                    own.get("downstream_ms")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::NAN)
                ));
            }
            line.push(')');
            out.push(line);
        }
    }
    Ok(out)
}

/// Forces the analysis of the run's ticks, then scores every ranker on every fault.
pub async fn evaluate(
    e: &Epicenter,
    labels: &Labels,
    baseline_buckets: u32,
) -> anyhow::Result<Report> {
    let b = labels.bucket_s as i64;
    let live: Value = e.get("/api/v1/analysis").await?;
    let earliest = live["earliest_tick"].as_i64().context("no earliest_tick")?;
    let latest = live["latest_tick"].as_i64().context("no latest_tick")?;
    let mut from = earliest;
    while from <= latest {
        let to = (from + 2000 * b).min(latest);
        let r = e.analyse(from, to).await?;
        log(format!(
            "analysed {} ticks ({from}..{to}) in {:.1} s",
            r["analysed"],
            r["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
        ));
        from = to + b;
    }
    let mut outcomes = Vec::new();
    for l in &labels.faults {
        let first = (l.start as i64).div_euclid(b) * b;
        let window: Vec<i64> = (0..=2)
            .map(|k| first + k * b)
            .filter(|t| *t <= latest)
            .collect();
        let mut ep: Option<(i64, Vec<String>)> = None;
        for &t in &window {
            let r = epicenter_ranking(e, t).await?;
            if !r.is_empty() {
                ep = Some((t, r));
                break;
            }
        }
        let tick = ep
            .as_ref()
            .map(|(t, _)| *t)
            .or_else(|| window.get(1).or(window.first()).copied());
        let mut rankings: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        rankings.insert("epicenter".into(), ep.map(|(_, r)| r));
        if let Some(t) = tick {
            let now = edges_at(e, t).await?;
            let mut before = Vec::new();
            for k in 1..=i64::from(baseline_buckets) {
                let bt = first - k * b;
                if bt >= earliest {
                    before.push(edges_at(e, bt).await?);
                }
            }
            for (name, kind) in [
                ("naive_latency", Naive::Latency),
                ("naive_errors", Naive::Errors),
            ] {
                let r = naive_ranking(kind, &now, &before);
                rankings.insert(name.into(), (!r.is_empty()).then_some(r));
            }
        } else {
            rankings.insert("naive_latency".into(), None);
            rankings.insert("naive_errors".into(), None);
        }
        let ranks: BTreeMap<String, Option<usize>> = RANKERS
            .iter()
            .map(|r| {
                let ranking = rankings.get(*r).cloned().flatten();
                (r.to_string(), rank_of(ranking.as_deref(), &l.fault.cause))
            })
            .collect();
        let flagged = match tick {
            Some(t) => epicenter_flagged(e, t).await?,
            None => Vec::new(),
        };
        outcomes.push(FaultOutcome {
            id: l.fault.id,
            kind: l.fault.kind.name().to_string(),
            cause: l.fault.cause.clone(),
            tick,
            rankings,
            ranks,
            flagged,
        });
    }
    Ok(Report::new(labels.seed, labels.bucket_s, outcomes))
}
