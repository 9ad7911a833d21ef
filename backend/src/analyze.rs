//! `epicenter analyze`: offline analysis of call statistics from files, with no server
//! and no store. Postmortem authors run it on exported dumps and scripts depend on its
//! output, so the JSON shape below is stable (fields may be added, never removed):
//!
//! ```json
//! {"ticks": [{"tick": 1795000200, "time": "2026-11-18T11:10:00Z", "baseline": "weekly",
//!   "anomalies": [{"src": "a", "dst": "b", "metric": "latency", "value": 52.1, "expected": 12.0, "severity": 3.2}],
//!   "root_causes": [{"cluster": "b", "score": 1.9, "explanation": "..."}]}]}
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use graph_core::analyze::{AnalysisConfig, Context, TickAnalysis, analyze_tick};
use graph_core::detect::{BaselineKind, FrameStore, MethodId, SeriesKey, Subject};
use graph_core::link::ConfigChange;
use graph_core::model::{BucketWidth, ClusterCatalog, Tick};
use serde::{Deserialize, Serialize};

use crate::aggregate::aggregate;
use crate::ingest::record::{Limits, parse_line};
use crate::ingest::timefmt::{format_time, parse_time};
use crate::topology::Topology;

/// An analysis failure, naming the file and line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of an input file is invalid.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The request itself does not make sense.
    #[error("{0}")]
    Usage(String),
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    /// The analysis failed.
    #[error("analysis failed: {0}")]
    Core(#[from] graph_core::Error),
}

/// Which ticks to analyse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// One tick.
    At(Tick),
    /// Every tick from the first to the last, inclusive.
    FromTo(Tick, Tick),
}

/// The inputs of one run.
#[derive(Debug, Clone)]
pub struct Request {
    /// Call statistics (NDJSON, the ingest format).
    pub calls: PathBuf,
    /// Topology file; without it every server is its own cluster.
    pub topology: Option<PathBuf>,
    /// Config changes (JSON lines).
    pub changes: Option<PathBuf>,
    /// Bucket width.
    pub bucket: BucketWidth,
    /// Ticks to report.
    pub range: Range,
}

/// A config change line: `{"ts", "author", "clusters", "description", "id"?, "link"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeLine {
    ts: serde_json::Value,
    author: String,
    clusters: Vec<String>,
    description: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    link: Option<String>,
}

/// The JSON document `--format json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// One entry per analysed tick.
    pub ticks: Vec<TickReport>,
}

/// One tick of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickReport {
    /// The tick, Unix seconds.
    pub tick: Tick,
    /// The same as RFC 3339.
    pub time: String,
    /// The baseline most anomalies were judged against (`weekly`, `daily`, `trailing`),
    /// or `null` when nothing was anomalous.
    pub baseline: Option<BaselineKind>,
    /// Anomalous edges, most severe first.
    pub anomalies: Vec<AnomalyReport>,
    /// Ranked root causes.
    pub root_causes: Vec<CauseReport>,
    /// Data-centre storms (many edges of one data centre at once).
    pub storms: Vec<String>,
}

/// One anomalous edge and metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyReport {
    /// Caller cluster.
    pub src: String,
    /// Callee cluster.
    pub dst: String,
    /// Metric name.
    pub metric: String,
    /// Current value.
    pub value: f64,
    /// Expected value.
    pub expected: f64,
    /// Severity score.
    pub severity: f64,
    /// Relative deviation, when defined.
    pub deviation: Option<f64>,
    /// Baseline kind and size.
    pub baseline: BaselineKind,
    /// Values in the baseline.
    pub baseline_n: u32,
    /// First tick of the episode.
    pub onset: Tick,
}

/// One ranked candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CauseReport {
    /// 1 for the most likely.
    pub rank: u32,
    /// Cluster name.
    pub cluster: String,
    /// Score.
    pub score: f64,
    /// Why, with the numbers.
    pub explanation: String,
}

fn read(path: &Path) -> Result<String, AnalyzeError> {
    std::fs::read_to_string(path).map_err(|source| AnalyzeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Ticks of warm-up before the first reported tick, so the persistence filter has the
/// preceding ticks' results.
const WARM_UP_TICKS: i64 = 24;

/// Runs the analysis.
pub fn run(req: &Request, config: &AnalysisConfig) -> Result<Report, AnalyzeError> {
    let (first, last) = match req.range {
        Range::At(t) => (req.bucket.floor(t), req.bucket.floor(t)),
        Range::FromTo(a, b) if a <= b => (req.bucket.floor(a), req.bucket.floor(b)),
        Range::FromTo(..) => {
            return Err(AnalyzeError::Usage("--from must not be after --to".into()));
        }
    };
    let mut topology = match &req.topology {
        Some(p) => Topology::load(p)?,
        None => Topology::identity(),
    };
    let limits = Limits::unbounded(req.bucket.seconds() as u32);
    let text = read(&req.calls)?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r = parse_line(line, i + 1, &limits).map_err(|e| AnalyzeError::Line {
            path: req.calls.clone(),
            line: e.line,
            message: match e.field {
                Some(f) => format!("field \"{f}\": {}", e.message),
                None => e.message,
            },
        })?;
        records.push(r);
    }
    let mut view = FrameStore::new(req.bucket);
    let agg = {
        let mut intern = |m: &str| view.intern_method(m);
        aggregate(&records, &mut topology, req.bucket, &mut intern)
    };
    drop(records);
    for ((tick, key), c) in &agg.cells {
        view.insert(*tick, *key, c)?;
    }
    let catalog: ClusterCatalog = topology.catalog().clone();
    let changes = match &req.changes {
        Some(p) => read_changes(p, &catalog)?,
        None => Vec::new(),
    };
    let context = Context {
        changes: &changes,
        ..Context::default()
    };
    let mut report = Report { ticks: Vec::new() };
    let mut t = first - WARM_UP_TICKS * req.bucket.seconds();
    while t <= last {
        let a = analyze_tick(t, &view, &catalog, config, &context)?;
        view.apply_flags(&a.detections)?;
        if t >= first {
            report.ticks.push(tick_report(&a, &catalog, &view));
        }
        t += req.bucket.seconds();
    }
    Ok(report)
}

fn read_changes(path: &Path, catalog: &ClusterCatalog) -> Result<Vec<ConfigChange>, AnalyzeError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| AnalyzeError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let c: ChangeLine = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let ts = crate::ingest::values::time_value(&c.ts)
            .map_err(|m| err(format!("field \"ts\": {m}")))?;
        // Numeric ids are kept; text ids (e.g. "CHG-812") as the API keeps them; else the
        // line number.
        let id = match &c.id {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => Some(crate::ingest::values::change_id(s)),
            _ => None,
        }
        .unwrap_or(i as u64 + 1);
        out.push(ConfigChange {
            id,
            ts,
            author: c.author,
            clusters: c.clusters.iter().filter_map(|n| catalog.id(n)).collect(),
            description: c.description,
            link: c.link,
        });
    }
    Ok(out)
}

fn tick_report(a: &TickAnalysis, catalog: &ClusterCatalog, view: &FrameStore) -> TickReport {
    let mut kinds: BTreeMap<BaselineKind, usize> = BTreeMap::new();
    let mut anomalies = Vec::new();
    for f in &a.detections.detections {
        *kinds.entry(f.baseline.kind).or_default() += 1;
        let (src, dst) = match &f.subject {
            Subject::Series { key, .. } => (
                edge_name(catalog, view, key, true),
                edge_name(catalog, view, key, false),
            ),
            Subject::Combined {
                src, dst, method, ..
            } => {
                let end = |e: &graph_core::detect::Endpoint| match e {
                    graph_core::detect::Endpoint::Cluster { cluster } => {
                        catalog.name(*cluster).to_string()
                    }
                    graph_core::detect::Endpoint::Service { service } => {
                        format!("{service} (all DCs)")
                    }
                };
                (end(src), with_method(end(dst), *method, view))
            }
        };
        anomalies.push(AnomalyReport {
            src,
            dst,
            metric: f.metric.to_string(),
            value: f.value,
            expected: f.expected,
            severity: f.severity.score,
            deviation: f.relative_deviation,
            baseline: f.baseline.kind,
            baseline_n: f.baseline.n,
            onset: f.onset,
        });
    }
    anomalies.sort_by(|x, y| {
        y.severity
            .total_cmp(&x.severity)
            .then_with(|| (&x.src, &x.dst).cmp(&(&y.src, &y.dst)))
    });
    let baseline = kinds
        .into_iter()
        .max_by_key(|(k, n)| (*n, std::cmp::Reverse(*k)))
        .map(|(k, _)| k);
    TickReport {
        tick: a.snapshot.tick,
        time: format_time(a.snapshot.tick),
        baseline,
        anomalies,
        root_causes: a
            .snapshot
            .ranking
            .candidates
            .iter()
            .map(|c| CauseReport {
                rank: c.rank,
                cluster: c.name.clone(),
                score: c.score,
                explanation: c.explanation.clone(),
            })
            .collect(),
        storms: a
            .detections
            .storms
            .iter()
            .map(|s| format!("{}: {} of {} edges", s.dc, s.edges_affected, s.edges_total))
            .collect(),
    }
}

fn with_method(name: String, method: Option<MethodId>, view: &FrameStore) -> String {
    match method.and_then(|m| view.method_name(m)) {
        Some(m) => format!("{name}.{m}"),
        None => name,
    }
}

fn edge_name(catalog: &ClusterCatalog, view: &FrameStore, key: &SeriesKey, src: bool) -> String {
    if src {
        catalog.name(key.edge.src).to_string()
    } else {
        with_method(catalog.name(key.edge.dst).to_string(), key.method, view)
    }
}

/// The report as a readable table.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    for t in &report.ticks {
        let baseline = t
            .baseline
            .map(|b| format!("{b:?}").to_lowercase())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "tick {} ({})  baseline: {baseline}", t.time, t.tick);
        if t.anomalies.is_empty() {
            let _ = writeln!(out, "  no anomalies");
        } else {
            let _ = writeln!(
                out,
                "  {:<34} {:<40} {:<10} {:>12} {:>12} {:>8}",
                "caller", "callee", "metric", "value", "expected", "severity"
            );
            for a in &t.anomalies {
                let _ = writeln!(
                    out,
                    "  {:<34} {:<40} {:<10} {:>12.3} {:>12.3} {:>8.2}",
                    a.src, a.dst, a.metric, a.value, a.expected, a.severity
                );
            }
        }
        for s in &t.storms {
            let _ = writeln!(out, "  data-centre storm: {s}");
        }
        if !t.root_causes.is_empty() {
            let _ = writeln!(out, "  root causes:");
            for c in &t.root_causes {
                let _ = writeln!(
                    out,
                    "  {:>3}. {:<34} {:>6.2}  {}",
                    c.rank, c.cluster, c.score, c.explanation
                );
            }
        }
        out.push('\n');
    }
    out
}

/// The ticks to analyse from the command line's `--at`, `--from`, `--to`.
pub fn range_from_args(
    at: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Range, AnalyzeError> {
    let p = |flag: &str, v: &str| {
        parse_time(v).map_err(|m| AnalyzeError::Usage(format!("{flag}: {m}")))
    };
    match (at, from, to) {
        (Some(a), None, None) => Ok(Range::At(p("--at", a)?)),
        (None, Some(f), Some(t)) => Ok(Range::FromTo(p("--from", f)?, p("--to", t)?)),
        _ => Err(AnalyzeError::Usage(
            "give either --at TIME, or both --from TIME and --to TIME".into(),
        )),
    }
}
