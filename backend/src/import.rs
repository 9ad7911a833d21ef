//! `epicenter import FILE...`: call statistics files straight into the store, in
//! transactions of a few tens of thousands of records, with a progress bar.
//!
//! Every record of every file is validated as the HTTP endpoint validates it, except
//! the time window (imports are for history), in a first pass: a bad line stops the
//! import with its file and line before anything is stored. The second pass stores.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::ingest::record::parse_line;
use crate::ingest::service::IngestState;
use crate::ingest::{CallRecord, Limits};
use crate::store::Store;
use crate::topology::Topology;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Records per transaction.
    pub batch_records: usize,
    /// Draw a progress bar on standard error.
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Records stored.
    pub records: u64,
    /// Records left aside because a server is unmapped.
    pub unmapped_records: u64,
    /// Transactions committed.
    pub transactions: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Imports `files` into the store configured in `config`.
pub fn import_files(
    config: &Config,
    files: &[PathBuf],
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let store = config
        .store
        .open()
        .context("opening the store (is a server running on it?)")?;
    let topology = match &config.ingest.topology {
        Some(path) => Topology::load(path)?,
        None => Topology::identity(),
    };
    let mut ingest = IngestState::new(&store, topology).map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = Limits::unbounded(store.bucket_width().seconds() as u32);
    let mut total_bytes = 0;
    for f in files {
        total_bytes += std::fs::metadata(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .len();
    }
    let bar = if options.progress {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    bar.set_length(2 * total_bytes);
    for path in files {
        bar.set_message(format!("checking {}", path.display()));
        for_each_record(path, &limits, &bar, |_| Ok(()))?;
    }
    let mut report = ImportReport::default();
    let mut pending: Vec<CallRecord> = Vec::with_capacity(options.batch_records);
    let mut flush =
        |pending: &mut Vec<CallRecord>, report: &mut ImportReport| -> anyhow::Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            let accepted = ingest
                .apply_records(&store, pending, 0, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            report.records += accepted.accepted;
            report.unmapped_records += accepted.unmapped_records;
            report.transactions += 1;
            pending.clear();
            Ok(())
        };
    for path in files {
        bar.set_message(format!("importing {}", path.display()));
        for_each_record(path, &limits, &bar, |record| {
            pending.push(record);
            if pending.len() >= options.batch_records {
                flush(&mut pending, &mut report)?;
            }
            Ok(())
        })?;
    }
    flush(&mut pending, &mut report)?;
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads `path` line by line and hands each valid record to `f`; the first bad line
/// is an error naming the file and line.
fn for_each_record(
    path: &std::path::Path,
    limits: &Limits,
    bar: &ProgressBar,
    mut f: impl FnMut(CallRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("{}: line {}: cannot read", path.display(), number + 1))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        bar.inc(n as u64);
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let record = parse_line(text, number, limits)
            .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was imported", path.display()))?;
        f(record)?;
    }
}
