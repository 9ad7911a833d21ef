//! The detection loop: every tick (woken by ingestion, or every `interval_s`), analyse
//! the ticks that are complete and have no analysis yet, re-analyse ticks that got
//! late data, and apply retention once an hour.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_core::model::Tick;

use crate::analysis::{Analyzer, unix_now};
use crate::config::{DetectionConfig, RetentionConfig};
use crate::error::AppError;
use crate::store::{Cutoffs, Pruned, Store};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pass {
    /// Ticks analysed, in the order they were.
    pub analysed: Vec<Tick>,
    /// What retention deleted, when it ran.
    pub pruned: Option<Pruned>,
}

/// Drives the analyzer over new and changed ticks.
#[derive(Debug)]
pub struct Detector {
    analyzer: Arc<Analyzer>,
    config: DetectionConfig,
    retention: RetentionConfig,
    dirty: Mutex<BTreeSet<Tick>>,
    wake: tokio::sync::Notify,
    last_retention: Mutex<Option<i64>>,
}

/// At most this many ticks per pass, so a long backfill yields to new ticks.
const MAX_PER_PASS: usize = 24;

impl Detector {
    /// A detector over `analyzer`.
    pub fn new(
        analyzer: Arc<Analyzer>,
        config: DetectionConfig,
        retention: RetentionConfig,
    ) -> Self {
        Detector {
            analyzer,
            config,
            retention,
            dirty: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            last_retention: Mutex::default(),
        }
    }

    /// Records that `ticks` got new data, and wakes the loop.
    pub fn touched(&self, ticks: &[Tick]) {
        self.dirty
            .lock()
            .expect("dirty lock")
            .extend(ticks.iter().copied());
        self.wake.notify_one();
    }

    /// Analyses what is due at `now`: the newest complete tick first, then older
    /// complete ticks without an analysis (within the backfill window) and ticks that
    /// got data after they were analysed, oldest first.
    pub fn pass(&self, store: &dyn Store, now: i64) -> Result<Pass, AppError> {
        let mut pass = Pass::default();
        let Some(ready) = self.analyzer.ready_until(store, now)? else {
            return Ok(pass);
        };
        let Some((earliest, _)) = self.analyzer.range(store)? else {
            return Ok(pass);
        };
        let width = store.bucket_width().seconds();
        let start = earliest.max(ready - self.config.backfill_hours * 3600 + width);
        let done: BTreeSet<Tick> = store.analysed_ticks(start, ready)?.into_iter().collect();
        let dirty: BTreeSet<Tick> = {
            let mut d = self.dirty.lock().expect("dirty lock");
            let due: BTreeSet<Tick> = d.range(..=ready).copied().collect();
            d.retain(|t| *t > ready);
            due
        };
        let mut due: Vec<Tick> = Vec::new();
        if !done.contains(&ready) || dirty.contains(&ready) {
            due.push(ready);
        }
        let mut rest: BTreeSet<Tick> = (0..)
            .map(|i| start + i * width)
            .take_while(|t| *t < ready)
            .filter(|t| !done.contains(t))
            .collect();
        // Late data is re-analysed even when older than the backfill window.
        rest.extend(
            dirty
                .iter()
                .copied()
                .filter(|t| *t < ready && *t >= earliest),
        );
        due.extend(rest);
        let (now_due, later) = due.split_at(due.len().min(MAX_PER_PASS));
        if !later.is_empty() {
            // Not lost: the next pass finds them again (undone) or from here (dirty).
            self.dirty
                .lock()
                .expect("dirty lock")
                .extend(later.iter().copied().filter(|t| done.contains(t)));
        }
        for &t in now_due {
            self.analyzer.run(store, t, now)?;
            pass.analysed.push(t);
        }
        pass.pruned = self.retention_only(store, now)?.pruned;
        Ok(pass)
    }

    fn retention_only(&self, store: &dyn Store, now: i64) -> Result<Pass, AppError> {
        let mut last = self.last_retention.lock().expect("retention lock");
        let mut pass = Pass::default();
        if last.is_none_or(|at| now - at >= 3600) {
            *last = Some(now);
            pass.pruned = Some(self.apply_retention(store)?);
        }
        Ok(pass)
    }

    /// The retention settings.
    pub fn retention(&self) -> &RetentionConfig {
        &self.retention
    }

    /// Deletes what is older than the retention settings, counted back from the
    /// newest data (so an old store is not emptied by the wall clock).
    pub fn apply_retention(&self, store: &dyn Store) -> Result<Pruned, AppError> {
        let Some((_, latest)) = self.analyzer.range(store)? else {
            return Ok(Pruned::default());
        };
        let r = &self.retention;
        let cutoffs = Cutoffs {
            series: latest - r.series_days * 86_400,
            snapshots: latest - r.snapshot_days * 86_400,
            pairs: latest - r.server_pairs_hours * 3600,
        };
        let pruned = store.prune(&cutoffs)?;
        if pruned.chunks > 0 {
            self.analyzer.forget(&[cutoffs.series]);
        }
        if pruned != Pruned::default() {
            tracing::info!(?pruned, "retention applied");
        }
        Ok(pruned)
    }

    /// Runs passes until the process ends: after each pass, waits for ingestion or
    /// `interval_s`, whichever comes first. A pass that analysed its maximum goes on
    /// at once.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            let me = self.clone();
            let s = store.clone();
            let outcome =
                tokio::task::spawn_blocking(move || me.pass(s.as_ref(), unix_now())).await;
            let busy = match outcome {
                Ok(Ok(pass)) => {
                    if !pass.analysed.is_empty() {
                        tracing::debug!(ticks = pass.analysed.len(), "detection pass");
                    }
                    pass.analysed.len() >= MAX_PER_PASS
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "detection pass failed");
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "detection pass panicked");
                    false
                }
            };
            if !busy {
                let _ = tokio::time::timeout(
                    Duration::from_secs(self.config.interval_s),
                    self.wake.notified(),
                )
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourcesConfig;
    use crate::ingest::Limits;
    use crate::ingest::service::IngestState;
    use crate::store::RedbStore;
    use crate::topology::Topology;
    use graph_core::analyze::AnalysisConfig;
    use graph_core::model::BucketWidth;

    /// A bucket start (a multiple of 300).
    const T0: i64 = 1_790_000_100;

    fn setup(ticks: i64, backfill_hours: i64) -> (tempfile::TempDir, RedbStore, Detector) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path(), BucketWidth::FIVE_MINUTES).unwrap();
        let mut ingest = IngestState::new(&store, Topology::identity()).unwrap();
        let text: String = (0..ticks)
            .map(|i| {
                format!(
                    "{{\"ts\": {}, \"src\": \"web\", \"dst\": \"db\", \"requests\": 100, \"errors\": 0, \"latency_ms_sum\": 2000}}\n",
                    T0 + i * 300
                )
            })
            .collect();
        ingest
            .apply(&store, &text, &Limits::unbounded(300), None)
            .unwrap();
        let config = DetectionConfig {
            backfill_hours,
            ..DetectionConfig::default()
        };
        let analyzer = Arc::new(Analyzer::new(
            AnalysisConfig::default(),
            SourcesConfig::default(),
            &config,
        ));
        let detector = Detector::new(analyzer, config, RetentionConfig::default());
        (dir, store, detector)
    }

    #[test]
    fn a_pass_analyses_the_newest_complete_tick_then_backfills_oldest_first() {
        let (_dir, store, detector) = setup(12, 1);
        let last = T0 + 11 * 300;
        // Thirty seconds after the last bucket ended, it is still within the grace
        // period: the tick before it is the newest complete one.
        let pass = detector.pass(&store, last + 300 + 30).unwrap();
        assert_eq!(pass.analysed[0], last - 300);
        assert!(!pass.analysed.contains(&last));
        let pass = detector.pass(&store, last + 300 + 61).unwrap();
        assert_eq!(pass.analysed, vec![last]);
        // The backfill window is one hour: twelve ticks, all analysed now.
        assert_eq!(store.analysed_ticks(0, i64::MAX).unwrap().len(), 12);
        assert_eq!(
            detector.pass(&store, last + 1000).unwrap().analysed,
            Vec::<Tick>::new()
        );
        // Late data for an analysed tick gets it analysed again.
        detector.touched(&[T0 + 300]);
        assert_eq!(
            detector.pass(&store, last + 1000).unwrap().analysed,
            vec![T0 + 300]
        );
        let stored = store.analysis(last).unwrap().unwrap();
        assert_eq!(stored.snapshot.tick, last);
        assert!(stored.duration_ms > 0.0);
    }

    #[test]
    fn the_backfill_window_bounds_the_first_pass() {
        let (_dir, store, detector) = setup(48, 1);
        let last = T0 + 47 * 300;
        let pass = detector.pass(&store, last + 1000).unwrap();
        assert_eq!(pass.analysed.len(), 12);
        assert_eq!(pass.analysed[0], last);
        assert_eq!(pass.analysed[1], last - 11 * 300);
        assert!(pass.pruned.is_some(), "retention runs on the first pass");
    }
}
