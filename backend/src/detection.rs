//! The detection loop: every tick (woken by ingestion, or every `interval_s`), analyse
//! the ticks that are complete and have no analysis yet, re-analyse ticks that got
//! late data, and apply retention once an hour. A tick whose analysis fails is logged,
//! counted and tried again later with backoff; the pass goes on with the next tick.
//! With `detection.enabled = false` the loop only applies retention.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Ticks whose analysis failed; each is tried again after its backoff.
    pub failed: Vec<Tick>,
    /// What retention deleted, when it ran and succeeded.
    pub pruned: Option<Pruned>,
}

/// A tick whose analysis failed, waiting to be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    /// Failed attempts so far.
    attempts: u32,
    /// Not before this time, Unix seconds.
    not_before: i64,
}

/// The wait after the `attempts`-th failure: 10 s, doubling, at most an hour.
fn backoff_s(attempts: u32) -> i64 {
    (10i64 << attempts.saturating_sub(1).min(9)).min(3600)
}

/// What the loop has done since the server started, for `/metrics`.
#[derive(Debug, Default)]
pub struct LoopCounters {
    /// Tick analyses that failed.
    pub ticks_failed: AtomicU64,
    /// Retention runs that failed.
    pub retention_failed: AtomicU64,
    /// Passes that could not start (the store did not answer).
    pub passes_failed: AtomicU64,
}

/// Drives the analyzer over new and changed ticks.
#[derive(Debug)]
pub struct Detector {
    analyzer: Arc<Analyzer>,
    config: DetectionConfig,
    retention: RetentionConfig,
    dirty: Mutex<BTreeSet<Tick>>,
    /// Ticks the running pass has taken but not finished yet.
    in_pass: Mutex<BTreeSet<Tick>>,
    wake: tokio::sync::Notify,
    last_retention: Mutex<Option<i64>>,
    retry: Mutex<BTreeMap<Tick, Retry>>,
    counters: LoopCounters,
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
            in_pass: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            last_retention: Mutex::default(),
            retry: Mutex::default(),
            counters: LoopCounters::default(),
        }
    }

    /// What the loop has done so far.
    pub fn counters(&self) -> &LoopCounters {
        &self.counters
    }

    /// Ticks waiting to be tried again after a failed analysis.
    pub fn retrying(&self) -> usize {
        self.retry.lock().expect("retry lock").len()
    }

    /// One round of the loop at `now`: a [`pass`](Self::pass), or with
    /// `detection.enabled = false` only retention.
    pub fn step(&self, store: &dyn Store, now: i64) -> Result<Pass, AppError> {
        if self.config.enabled {
            self.pass(store, now)
        } else {
            Ok(self.retention_only(store, now))
        }
    }

    /// Ticks the loop has yet to analyse at `now`: complete ticks within the backfill
    /// window without an analysis, ticks that got data (or a mark) after they were
    /// analysed, and ticks the running pass has not finished. Zero means every tick
    /// the loop will analyse is stored as it will stay until new data or marks come.
    /// Ticks whose analysis failed are counted by [`Detector::retrying`] instead.
    pub fn backlog(&self, store: &dyn Store, now: i64) -> Result<usize, AppError> {
        if !self.config.enabled {
            return Ok(0);
        }
        // `dirty` before `in_pass`: a pass moves ticks from the first to the second.
        let mut due: BTreeSet<Tick> = self.dirty.lock().expect("dirty lock").clone();
        due.extend(self.in_pass.lock().expect("in-pass lock").iter().copied());
        let (Some(ready), Some((earliest, _))) = (
            self.analyzer.ready_until(store, now)?,
            self.analyzer.range(store)?,
        ) else {
            return Ok(due.len());
        };
        let width = store.bucket_width().seconds();
        let start = earliest.max(ready - self.config.backfill_hours * 3600 + width);
        let done: BTreeSet<Tick> = store.analysed_ticks(start, ready)?.into_iter().collect();
        due.extend(
            (0..)
                .map(|i| start + i * width)
                .take_while(|t| *t <= ready)
                .filter(|t| !done.contains(t)),
        );
        due.retain(|t| (earliest..=ready).contains(t));
        let retry = self.retry.lock().expect("retry lock");
        due.retain(|t| !retry.contains_key(t));
        Ok(due.len())
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
            // Taken from `dirty` and put in `in_pass` under one lock, so that
            // `backlog` never sees them in neither.
            self.in_pass
                .lock()
                .expect("in-pass lock")
                .extend(due.iter().copied());
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
        // Ticks that failed wait for their backoff; those whose time came are due again.
        {
            let retry = self.retry.lock().expect("retry lock");
            due.retain(|t| retry.get(t).is_none_or(|r| r.not_before <= now));
            let again: Vec<Tick> = retry
                .iter()
                .filter(|(t, r)| r.not_before <= now && **t <= ready && !due.contains(t))
                .map(|(t, _)| *t)
                .collect();
            due.extend(again);
        }
        let (now_due, later) = due.split_at(due.len().min(MAX_PER_PASS));
        if !later.is_empty() {
            // Not lost: the next pass finds them again (undone) or from here (dirty).
            self.dirty
                .lock()
                .expect("dirty lock")
                .extend(later.iter().copied().filter(|t| done.contains(t)));
        }
        *self.in_pass.lock().expect("in-pass lock") = now_due.iter().copied().collect();
        for &t in now_due {
            let outcome = self.analyzer.run(store, t, now);
            self.in_pass.lock().expect("in-pass lock").remove(&t);
            match outcome {
                Ok(_) => {
                    self.retry.lock().expect("retry lock").remove(&t);
                    pass.analysed.push(t);
                }
                Err(e) => {
                    self.counters.ticks_failed.fetch_add(1, Ordering::Relaxed);
                    let mut retry = self.retry.lock().expect("retry lock");
                    let r = retry.entry(t).or_insert(Retry {
                        attempts: 0,
                        not_before: now,
                    });
                    r.attempts += 1;
                    r.not_before = now + backoff_s(r.attempts);
                    tracing::error!(
                        tick = t,
                        attempts = r.attempts,
                        retry_in_s = r.not_before - now,
                        error = %e,
                        "analysing a tick failed; going on with the next"
                    );
                    pass.failed.push(t);
                }
            }
        }
        pass.pruned = self.retention_only(store, now).pruned;
        Ok(pass)
    }

    /// Retention, when its hour has come; a failure is logged and counted, and tried
    /// again at the next pass.
    fn retention_only(&self, store: &dyn Store, now: i64) -> Pass {
        let mut last = self.last_retention.lock().expect("retention lock");
        let mut pass = Pass::default();
        if last.is_none_or(|at| now - at >= 3600) {
            match self.apply_retention(store) {
                Ok(pruned) => {
                    *last = Some(now);
                    pass.pruned = Some(pruned);
                }
                Err(e) => {
                    self.counters
                        .retention_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "retention failed; trying again at the next pass");
                }
            }
        }
        pass
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
                tokio::task::spawn_blocking(move || me.step(s.as_ref(), unix_now())).await;
            let busy = match outcome {
                Ok(Ok(pass)) => {
                    if !pass.analysed.is_empty() || !pass.failed.is_empty() {
                        tracing::debug!(
                            analysed = pass.analysed.len(),
                            failed = pass.failed.len(),
                            "detection pass"
                        );
                    }
                    pass.analysed.len() + pass.failed.len() >= MAX_PER_PASS
                }
                Ok(Err(e)) => {
                    self.counters.passes_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "detection pass failed");
                    false
                }
                Err(e) => {
                    self.counters.passes_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "detection pass panicked");
                    false
                }
            };
            if !busy {
                // Either wakes it: new data, or the interval passing (the timeout's
                // `Err` is that second case, not a failure).
                let _woken_by_data = tokio::time::timeout(
                    Duration::from_secs(self.config.interval_s),
                    self.wake.notified(),
                )
                .await
                .is_ok();
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

    /// The store, but writing the analysis of the ticks in `failing` fails, and
    /// retention fails while `prune_fails`: a full disk, say. With `watch` set, each
    /// analysis written first records the detector's backlog at that moment.
    #[derive(Debug)]
    struct Flaky {
        inner: RedbStore,
        failing: Mutex<BTreeSet<Tick>>,
        prune_fails: std::sync::atomic::AtomicBool,
        watch: std::sync::OnceLock<(Arc<Detector>, i64)>,
        backlogs: Mutex<Vec<usize>>,
    }

    impl Flaky {
        fn new(inner: RedbStore) -> Self {
            Flaky {
                inner,
                failing: Mutex::default(),
                prune_fails: false.into(),
                watch: std::sync::OnceLock::new(),
                backlogs: Mutex::default(),
            }
        }
    }

    macro_rules! delegate {
        ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
            $(fn $name(&self, $($arg: $ty),*) -> $ret { self.inner.$name($($arg),*) })*
        };
    }

    impl Store for Flaky {
        delegate! {
            health() -> graph_core::api::StoreHealth;
            bucket_width() -> BucketWidth;
            registry() -> Result<crate::store::Registry, crate::store::StoreError>;
            tick_range() -> Result<Option<(Tick, Tick)>, crate::store::StoreError>;
            load_view(r: &crate::store::Registry, t: &[Tick]) -> Result<graph_core::detect::FrameStore, crate::store::StoreError>;
            write(r: &crate::store::Registry, s: crate::store::Persisted, b: &crate::store::WriteBatch, d: bool) -> Result<(), crate::store::StoreError>;
            token(d: &str) -> Result<Option<crate::auth::TokenInfo>, crate::store::StoreError>;
            put_token(d: &str, i: &crate::auth::TokenInfo) -> Result<(), crate::store::StoreError>;
            meta(k: &str) -> Result<Option<u64>, crate::store::StoreError>;
            marks() -> Result<Vec<crate::marks::StoredMark>, crate::store::StoreError>;
            insert_mark(m: &crate::marks::StoredMark) -> Result<u64, crate::store::StoreError>;
            maintenance_log() -> Result<Vec<crate::maintenance::MaintenanceRecord>, crate::store::StoreError>;
            append_maintenance(r: &crate::maintenance::MaintenanceRecord) -> Result<u64, crate::store::StoreError>;
            update_mark(m: &crate::marks::StoredMark, v: u64) -> Result<Result<(), Option<crate::marks::StoredMark>>, crate::store::StoreError>;
            user(n: &str) -> Result<Option<crate::store::UserRecord>, crate::store::StoreError>;
            users() -> Result<Vec<crate::store::UserRecord>, crate::store::StoreError>;
            put_user(u: &crate::store::UserRecord) -> Result<(), crate::store::StoreError>;
            session(d: &str) -> Result<Option<crate::store::SessionRecord>, crate::store::StoreError>;
            put_session(d: &str, s: &crate::store::SessionRecord) -> Result<(), crate::store::StoreError>;
            delete_session(d: &str) -> Result<(), crate::store::StoreError>;
            key(n: &str) -> Result<Vec<u8>, crate::store::StoreError>;
            unmapped() -> Result<Vec<(String, u64)>, crate::store::StoreError>;
            entity_cells(e: u32, f: Tick, t: Tick) -> Result<Vec<(Tick, graph_core::detect::Cell)>, crate::store::StoreError>;
            analysis(t: Tick) -> Result<Option<crate::store::StoredTick>, crate::store::StoreError>;
            analysed_ticks(f: Tick, t: Tick) -> Result<Vec<Tick>, crate::store::StoreError>;
            snapshot_sizes(f: Tick, t: Tick) -> Result<Vec<(Tick, u64)>, crate::store::StoreError>;
            put_changes(c: &[graph_core::link::ConfigChange]) -> Result<(), crate::store::StoreError>;
            changes(f: Tick, t: Tick) -> Result<Vec<graph_core::link::ConfigChange>, crate::store::StoreError>;
            put_activity(p: &[(Tick, f64)], d: bool) -> Result<(), crate::store::StoreError>;
            activity(f: Tick, t: Tick) -> Result<Vec<(Tick, f64)>, crate::store::StoreError>;
            sources() -> Result<Vec<crate::store::SourceState>, crate::store::StoreError>;
            held_spans() -> Result<Vec<crate::store::HeldRow>, crate::store::StoreError>;
            pairs(t: Tick, e: Option<u32>) -> Result<Vec<crate::store::PairRow>, crate::store::StoreError>;
        }

        fn put_analysis(
            &self,
            tick: Tick,
            flags: &[(u32, [graph_core::detect::PointFlags; 4])],
            record: &crate::store::StoredTick,
        ) -> Result<(), crate::store::StoreError> {
            if self.failing.lock().unwrap().contains(&tick) {
                return Err(crate::store::StoreError::Backend("disk full".into()));
            }
            if let Some((detector, now)) = self.watch.get() {
                let backlog = detector.backlog(&self.inner, *now).unwrap();
                self.backlogs.lock().unwrap().push(backlog);
            }
            self.inner.put_analysis(tick, flags, record)
        }

        fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, crate::store::StoreError> {
            if self.prune_fails.load(Ordering::Relaxed) {
                return Err(crate::store::StoreError::Backend("disk full".into()));
            }
            self.inner.prune(cutoffs)
        }
    }

    #[test]
    fn a_failing_tick_is_counted_and_retried_later_and_stops_nothing_else() {
        let (_dir, inner, detector) = setup(12, 1);
        let last = T0 + 11 * 300;
        let bad = T0 + 5 * 300;
        let store = Flaky::new(inner);
        store.failing.lock().unwrap().insert(bad);
        store.prune_fails.store(true, Ordering::Relaxed);
        let now = last + 1000;
        let pass = detector.step(&store, now).unwrap();
        assert_eq!(pass.failed, vec![bad]);
        assert_eq!(
            pass.analysed.len(),
            11,
            "every other tick: {:?}",
            pass.analysed
        );
        assert!(pass.pruned.is_none(), "retention failed");
        let c = detector.counters();
        assert_eq!(c.ticks_failed.load(Ordering::Relaxed), 1);
        assert_eq!(c.retention_failed.load(Ordering::Relaxed), 1);
        assert_eq!(detector.retrying(), 1);
        // Within its backoff it is left alone; retention is tried again at once.
        store.prune_fails.store(false, Ordering::Relaxed);
        let pass = detector.step(&store, now + 5).unwrap();
        assert!(
            pass.failed.is_empty() && pass.analysed.is_empty(),
            "{pass:?}"
        );
        assert!(pass.pruned.is_some(), "retention ran again");
        // Still failing after the backoff: tried, and the wait doubles.
        let pass = detector.step(&store, now + 10).unwrap();
        assert_eq!(pass.failed, vec![bad]);
        assert!(detector.step(&store, now + 29).unwrap().failed.is_empty());
        // The disk has room again: the tick is analysed and no longer waits.
        store.failing.lock().unwrap().clear();
        let pass = detector.step(&store, now + 30).unwrap();
        assert_eq!(pass.analysed, vec![bad]);
        assert_eq!(detector.retrying(), 0);
        assert_eq!(store.analysed_ticks(0, i64::MAX).unwrap().len(), 12);
        assert_eq!(c.ticks_failed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn with_detection_off_the_loop_only_applies_retention() {
        let (_dir, store, mut detector) = setup(12, 1);
        detector.config.enabled = false;
        let pass = detector.step(&store, T0 + 12 * 300 + 1000).unwrap();
        assert!(pass.analysed.is_empty());
        assert!(pass.pruned.is_some(), "retention still runs");
        assert!(store.analysed_ticks(0, i64::MAX).unwrap().is_empty());
        detector.config.enabled = true;
        let pass = detector.step(&store, T0 + 12 * 300 + 1000).unwrap();
        assert_eq!(pass.analysed.len(), 12);
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_to_an_hour() {
        assert_eq!(
            (1..=11).map(backoff_s).collect::<Vec<_>>(),
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(backoff_s(u32::MAX), 3600);
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

    #[test]
    fn the_backlog_counts_every_tick_the_loop_has_yet_to_store() {
        let (_dir, inner, detector) = setup(48, 4);
        let detector = Arc::new(detector);
        let store = Flaky::new(inner);
        let last = T0 + 47 * 300;
        let now = last + 1000;
        // Four hours of backfill: all 48 ticks, half of them in the first pass.
        assert_eq!(detector.backlog(&store, now).unwrap(), 48);
        store.watch.set((detector.clone(), now)).unwrap();
        assert_eq!(detector.pass(&store, now).unwrap().analysed.len(), 24);
        // While a tick is being written it still counts, and so does the rest.
        assert_eq!(
            std::mem::take(&mut *store.backlogs.lock().unwrap()),
            (25..=48).rev().collect::<Vec<_>>()
        );
        assert_eq!(detector.backlog(&store, now).unwrap(), 24);
        detector.pass(&store, now).unwrap();
        assert_eq!(detector.backlog(&store, now).unwrap(), 0);
        store.backlogs.lock().unwrap().clear();

        // Late data for three stored ticks, and for one not complete yet.
        detector.touched(&[T0 + 600, T0, T0 + 300, last + 300]);
        assert_eq!(detector.backlog(&store, now).unwrap(), 3);
        let pass = detector.pass(&store, now).unwrap();
        assert_eq!(pass.analysed, vec![T0, T0 + 300, T0 + 600]);
        // Stored already, they count only because the pass holds them.
        assert_eq!(*store.backlogs.lock().unwrap(), vec![3, 2, 1]);
        assert_eq!(detector.backlog(&store, now).unwrap(), 0);

        // A tick whose analysis fails is counted as retrying, not as backlog.
        store.failing.lock().unwrap().insert(T0 + 900);
        detector.touched(&[T0 + 900]);
        assert_eq!(detector.pass(&store, now).unwrap().failed, vec![T0 + 900]);
        assert_eq!(detector.backlog(&store, now).unwrap(), 0);
        assert_eq!(detector.retrying(), 1);
    }
}
