//! A small live run: the real `epicenter` binary, 17 service processes of the real
//! `testbed` binary traced with the OpenTelemetry SDK, two faults of each of the seven
//! kinds (seeded), then the evaluation. Asserts that the run completes, that every fault is
//! labelled as planned, that the report files exist and parse, and that Epicenter's AC@3
//! stays at or above the floor measured for this setup (a run that falls short is run
//! once more; see the test). On a miss the report printed lists what Epicenter flagged
//! instead.

use std::path::{Path, PathBuf};

use epicenter_testbed::epicenter;
use epicenter_testbed::eval::{RANKERS, Report};
use epicenter_testbed::faults::{FaultKind, Labels, plan};
use epicenter_testbed::orchestrator::{RunArgs, run, score};
use epicenter_testbed::topology::services;

/// Faults in the run: two of each kind. Seven were too few: one disturbance of a
/// shared machine (two minutes of spurious anomalies on the order flow) cost four of them.
const FAULTS: usize = 14;

/// Epicenter's AC@3 over the run's faults must be at least this. Measured 14 and 13 of 14
/// (AC@1 the same; latency jump 9, error-rate jump 5) on the 2-core development machine,
/// in debug builds. Eight of fourteen is the share seven faults had (four of seven): six
/// misses more than measured are left for a busy machine's noise (two busy loops started
/// mid-run cost one of seven), and a ranker that is broken ranks few causes at all.
const EPICENTER_AC3_FLOOR: f64 = 8.0 / 14.0;

fn epicenter_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let from_env = std::env::var_os("EPICENTER_BIN").map(PathBuf::from);
    epicenter::locate(None, from_env.as_deref(), &exe).unwrap_or_else(|e| {
        panic!(
            "{e}\n(`cargo test --workspace` builds it; alone: `cargo build -p epicenter-backend`)"
        )
    })
}

/// Runs the testbed into `out` and checks everything but accuracy: the run completes,
/// every planned fault is labelled with its window, and the report files agree.
async fn attempt(out: &Path) -> (RunArgs, Report) {
    let seed = 11;
    let faults = FAULTS;
    let bucket_s = 5;
    let fault_buckets = 3;
    let args = RunArgs {
        faults,
        seed,
        out: out.to_path_buf(),
        bucket_s,
        epicenter: epicenter_bin(),
        service_bin: PathBuf::from(env!("CARGO_BIN_EXE_testbed")),
        rate: 20.0,
        warmup_buckets: 10,
        fault_buckets,
        recovery_buckets: 3,
        baseline_buckets: 3,
    };
    let started = std::time::Instant::now();
    let cpu_before = cpu_times();
    let report = run(args.clone()).await.expect("the run completes");
    eprintln!("{}", report.markdown());
    eprintln!("wall time {:?}", started.elapsed());
    if let (Some(a), Some(b)) = (cpu_before, cpu_times()) {
        let total = (b.1 - a.1).max(1) as f64;
        eprintln!(
            "CPU time the host took for others (steal): {:.1} %",
            100.0 * (b.0 - a.0) as f64 / total
        );
    }

    // Every planned fault is labelled, in order, with its window.
    let labels: Labels = read_json(&out.join("labels.json"));
    let planned = plan(seed, faults, &services());
    assert_eq!(labels.faults.len(), faults);
    let mut kinds: Vec<FaultKind> = labels.faults.iter().map(|l| l.fault.kind).collect();
    kinds.sort();
    let mut twice: Vec<FaultKind> = [FaultKind::ALL, FaultKind::ALL].concat();
    twice.sort();
    assert_eq!(kinds, twice, "two faults of each kind");
    for (l, p) in labels.faults.iter().zip(&planned) {
        assert_eq!(&l.fault, p);
        let on = l.end - l.start;
        let want = f64::from(fault_buckets) * bucket_s as f64;
        assert!(
            (want - 1.5..=want + 1.0).contains(&on),
            "fault {} on for {on} s",
            p.id
        );
        assert_eq!(
            l.change_id.is_some(),
            matches!(p.change, epicenter_testbed::faults::ChangePlan::Real { .. })
        );
    }
    for w in labels.faults.windows(2) {
        assert!(w[0].end < w[1].start);
    }

    // The report files exist, parse and agree with what `run` returned.
    let from_file: Report = read_json(&out.join("report.json"));
    assert_eq!(from_file, report);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains(&format!("| **all** | {faults} |")), "{md}");
    assert_eq!(report.faults.len(), faults);
    for f in &report.faults {
        assert!(
            f.tick.is_some(),
            "fault {}: no tick of its window was stored",
            f.id
        );
        for r in RANKERS {
            assert!(f.ranks.contains_key(r));
        }
    }
    (args, report)
}

/// How Epicenter fell short of the floors in `report`, if it did: it must rank something
/// for at least ten faults (detection worked at all) and reach the AC@3 floor.
fn shortfall(report: &Report) -> Option<String> {
    let ranked = report
        .faults
        .iter()
        .filter(|f| f.rankings["epicenter"].is_some())
        .count();
    let ac3 = report.overall["epicenter"].ac3;
    if ranked < 10 {
        Some(format!("Epicenter ranked only {ranked} of {FAULTS} faults"))
    } else if ac3 < EPICENTER_AC3_FLOOR {
        Some(format!(
            "Epicenter's AC@3 fell to {ac3:.2} (floor {EPICENTER_AC3_FLOOR})"
        ))
    } else {
        None
    }
}

/// Steal and total CPU time so far, in clock ticks, from the first line of /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some((*fields.get(7)?, fields.iter().take(8).sum()))
}

/// The run is live: real processes on a shared machine, timed by the wall clock. A
/// machine busy with something else for part of it makes every call's latency noisy and
/// can hide faults from detection (on a CI machine once: six latency faults unflagged,
/// while the same seed on the same machine minutes later ranked 13 of 14 first). So a run
/// that falls short of the floors is run once more, with the same seed; the test fails
/// when both fall short. Everything but accuracy must hold in every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_run_labels_every_fault_and_ranks_causes() {
    let first = tempfile::tempdir().unwrap();
    let (mut args, mut report) = attempt(first.path()).await;
    let mut out = first;
    if let Some(why) = shortfall(&report) {
        eprintln!("the first run fell short ({why}); running once more with the same seed");
        let second = tempfile::tempdir().unwrap();
        (args, report) = attempt(second.path()).await;
        if let Some(again) = shortfall(&report) {
            panic!("both runs fell short: {why}; then {again}");
        }
        out = second;
    }

    // The run's store stays behind, and analysing it again gives the same report.
    let again = score(out.path(), &epicenter_bin(), 3)
        .await
        .expect("the run re-scores from its store");
    assert_eq!(
        again, report,
        "re-scoring the same store changed the report"
    );
    let err = run(RunArgs { faults: 1, ..args })
        .await
        .expect_err("a second run into the same folder is refused");
    assert!(err.to_string().contains("testbed score"), "{err}");
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> T {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
