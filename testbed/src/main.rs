//! `testbed`: `testbed run` runs the live testbed against the real Epicenter and reports
//! how well it ranks root causes; `testbed service` is one service process of it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use epicenter_testbed::orchestrator::{RunArgs, run, score};
use epicenter_testbed::{epicenter, service};

#[derive(Parser, Debug)]
#[command(
    name = "testbed",
    about = "A live testbed for Epicenter's root-cause ranking"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run Epicenter, the services and the load, inject faults, and report AC@k.
    Run {
        /// Faults to inject, one after another.
        #[arg(long, default_value_t = 8)]
        faults: usize,
        /// Seed of the fault plan, the load and the config changes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Folder for labels.json, report.json, report.md and logs/.
        #[arg(long)]
        out: PathBuf,
        /// Bucket width, e.g. 5s (must divide an hour).
        #[arg(long, default_value = "5s", value_parser = parse_secs)]
        bucket: u64,
        /// The epicenter binary (default: next to this one, or $EPICENTER_BIN).
        #[arg(long)]
        epicenter: Option<PathBuf>,
        /// Requests a second at the front service.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Buckets of load before the first fault (baselines need about ten).
        #[arg(long, default_value_t = 12)]
        warmup_buckets: u32,
        /// Buckets each fault stays on.
        #[arg(long, default_value_t = 4)]
        fault_buckets: u32,
        /// Buckets of recovery after each fault.
        #[arg(long, default_value_t = 6)]
        recovery_buckets: u32,
        /// Buckets before a fault the naive rankers take the mean of.
        #[arg(long, default_value_t = 4)]
        baseline_buckets: u32,
    },
    /// Analyse a finished run again, from the store it left in OUT/data, and score it
    /// against its labels (rewrites OUT/report.json and OUT/report.md).
    Score {
        /// The folder a `testbed run` wrote.
        #[arg(long)]
        out: PathBuf,
        /// The epicenter binary (default: next to this one, or $EPICENTER_BIN).
        #[arg(long)]
        epicenter: Option<PathBuf>,
        /// Buckets before a fault the naive rankers take the mean of.
        #[arg(long, default_value_t = 4)]
        baseline_buckets: u32,
    },
    /// Run one service instance (started by `testbed run`).
    Service {
        /// The plan file `testbed run` wrote.
        #[arg(long)]
        plan: PathBuf,
        /// The service.
        #[arg(long)]
        service: String,
        /// The instance id (`service.instance.id`).
        #[arg(long)]
        instance: String,
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// Exit when standard input closes (the orchestrator went away).
        #[arg(long)]
        watch_stdin: bool,
    },
}

fn parse_secs(s: &str) -> Result<u64, String> {
    let n = s.strip_suffix('s').unwrap_or(s);
    match n.parse::<u64>() {
        Ok(v) if v >= 1 && 3600 % v == 0 => Ok(v),
        _ => Err(format!(
            "{s}: a whole number of seconds dividing an hour, e.g. 5s"
        )),
    }
}

/// The `epicenter` binary: `--epicenter`, else `$EPICENTER_BIN`, else next to this one.
fn epicenter_bin(explicit: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let from_env = std::env::var_os("EPICENTER_BIN").map(PathBuf::from);
    epicenter::locate(explicit, from_env.as_deref(), &std::env::current_exe()?)
}

/// The two-thread runtime every command runs on.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Service {
            plan,
            service,
            instance,
            port,
            watch_stdin,
        } => {
            if watch_stdin {
                std::thread::spawn(|| {
                    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                    std::process::exit(0);
                });
            }
            runtime()?.block_on(service::run(&plan, &service, &instance, port))
        }
        Cmd::Score {
            out,
            epicenter: explicit,
            baseline_buckets,
        } => {
            let epicenter = epicenter_bin(explicit.as_deref())?;
            let report = runtime()?.block_on(score(&out, &epicenter, baseline_buckets))?;
            print!("{}", report.markdown());
            Ok(())
        }
        Cmd::Run {
            faults,
            seed,
            out,
            bucket,
            epicenter: explicit,
            rate,
            warmup_buckets,
            fault_buckets,
            recovery_buckets,
            baseline_buckets,
        } => {
            let epicenter = epicenter_bin(explicit.as_deref())?;
            let args = RunArgs {
                faults,
                seed,
                out,
                bucket_s: bucket,
                epicenter,
                service_bin: std::env::current_exe()?,
                rate,
                warmup_buckets,
                fault_buckets,
                recovery_buckets,
                baseline_buckets,
            };
            let report = runtime()?.block_on(async {
                tokio::select! {
                    r = run(args) => r,
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
                }
            })?;
            print!("{}", report.markdown());
            Ok(())
        }
    }
}
