//! Analysis of stored ticks: loads the columns a tick needs from the store, runs
//! graph-core's pipeline over it, and stores the result (detection flags and one
//! snapshot per tick). Reads go through a small cache, so the live tick is answered
//! from memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use graph_core::analyze::{AnalysisConfig, Context, analyze_tick};
use graph_core::api::{AnalysisResponse, ClusterInfo, TickEvent};
use graph_core::detect::PointFlags;
use graph_core::model::{Metric, Tick};

use crate::config::{DetectionConfig, SourcesConfig};
use crate::error::AppError;
use crate::store::{Registry, SourceState, Store, StoredTick};

/// Analysed ticks kept in memory.
const CACHE_TICKS: usize = 64;

/// Figures about the analyses run, for `/metrics`.
#[derive(Debug, Default)]
pub struct TickStats {
    /// Ticks analysed since start.
    pub analysed: AtomicU64,
    /// Duration of the latest analysis, microseconds.
    pub last_us: AtomicU64,
    /// Sum of all durations, microseconds.
    pub total_us: AtomicU64,
}

/// Analyses ticks of a store, stores the results and remembers recent ones.
#[derive(Debug, Default)]
pub struct Analyzer {
    config: std::sync::RwLock<Arc<AnalysisConfig>>,
    /// Key edges from the configuration file, kept across topology reloads.
    configured_key_edges: Vec<graph_core::detect::KeyEdge>,
    /// The latest maintenance switch of each data centre.
    switches: std::sync::RwLock<BTreeMap<String, crate::maintenance::MaintenanceRecord>>,
    sources: SourcesConfig,
    grace_s: i64,
    cache: Mutex<BTreeMap<Tick, Arc<StoredTick>>>,
    responses: Mutex<HashMap<(Tick, u64), Bytes>>,
    registry: Mutex<Option<Arc<Registry>>>,
    range: Mutex<Option<Option<(Tick, Tick)>>>,
    generation: AtomicU64,
    /// Figures for `/metrics`.
    pub stats: TickStats,
    /// Ticks analysed, for `GET /api/v1/events`.
    pub events: Events,
}

/// What the server tells open browsers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A tick was analysed.
    Tick(TickEvent),
    /// A mark was made or changed.
    Mark(graph_core::api::MarkEvent),
    /// Who looks at which edge changed: everyone present.
    Presence(Vec<graph_core::api::PresenceView>),
}

/// Fan-out of [`ServerEvent`]s to every open event stream. Slow listeners lose the
/// oldest events (they only need the newest state), never block analysis.
#[derive(Debug)]
pub struct Events(tokio::sync::broadcast::Sender<ServerEvent>);

impl Default for Events {
    fn default() -> Self {
        Events(tokio::sync::broadcast::channel(64).0)
    }
}

impl Events {
    /// A new listener, receiving events sent from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ServerEvent> {
        self.0.subscribe()
    }

    /// Sends `event` to every listener.
    pub fn send(&self, event: ServerEvent) {
        // The only failure is that no page listens now: nobody to tell, nothing lost
        // (pages catch up from the API when they open).
        if self.0.send(event).is_err() {
            tracing::trace!("no listener for a server event");
        }
    }
}

/// The current time, Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Analyzer {
    /// An analyzer with `config`, judging sources with `sources` and waiting `grace_s`
    /// after a bucket ends before calling it complete.
    pub fn new(
        config: AnalysisConfig,
        sources: SourcesConfig,
        detection: &DetectionConfig,
    ) -> Self {
        Analyzer {
            configured_key_edges: config.detect.key_edges.clone(),
            config: std::sync::RwLock::new(Arc::new(config)),
            sources,
            grace_s: detection.grace_s,
            ..Default::default()
        }
    }

    /// The analysis configuration in use.
    pub fn config(&self) -> Arc<AnalysisConfig> {
        self.config.read().expect("config lock").clone()
    }

    /// Replaces the topology's key edges (after a topology reload); later analyses use
    /// them with the configured ones.
    pub fn set_key_edges(&self, key_edges: Vec<graph_core::detect::KeyEdge>) {
        let mut slot = self.config.write().expect("config lock");
        let mut config = AnalysisConfig::clone(&slot);
        config.detect.key_edges = self.configured_key_edges.clone();
        for k in key_edges {
            if !config.detect.key_edges.contains(&k) {
                config.detect.key_edges.push(k);
            }
        }
        *slot = Arc::new(config);
    }

    /// The latest maintenance switch of each data centre.
    pub fn switches(&self) -> BTreeMap<String, crate::maintenance::MaintenanceRecord> {
        self.switches.read().expect("switches lock").clone()
    }

    /// Records a maintenance switch; analyses from now on follow it.
    pub fn switch(&self, record: crate::maintenance::MaintenanceRecord) {
        let mut s = self.switches.write().expect("switches lock");
        s.insert(record.dc.clone(), record);
    }

    /// The configuration analyses of data with `catalog` use: the configured one with
    /// the maintenance switches applied.
    pub fn effective_config(&self, catalog: &graph_core::model::ClusterCatalog) -> AnalysisConfig {
        let mut config = AnalysisConfig::clone(&self.config());
        config.detect.maintenance = crate::maintenance::effective(
            &config.detect.maintenance,
            &self.switches.read().expect("switches lock"),
            catalog,
        );
        config
    }

    /// Drops what new data for `ticks` makes stale: cached analyses of those ticks and
    /// later ones, cached answers, the registry and the data range.
    pub fn forget(&self, ticks: &[Tick]) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        if let Some(first) = ticks.iter().min() {
            self.cache
                .lock()
                .expect("cache lock")
                .retain(|t, _| t < first);
        }
        self.responses.lock().expect("responses lock").clear();
        *self.registry.lock().expect("registry lock") = None;
        *self.range.lock().expect("range lock") = None;
    }

    /// The store's registry, cached until the next ingest.
    pub fn registry(&self, store: &dyn Store) -> Result<Arc<Registry>, AppError> {
        let mut slot = self.registry.lock().expect("registry lock");
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let r = Arc::new(store.registry()?);
        *slot = Some(r.clone());
        Ok(r)
    }

    /// The earliest and latest tick with data, cached until the next ingest.
    pub fn range(&self, store: &dyn Store) -> Result<Option<(Tick, Tick)>, AppError> {
        let mut slot = self.range.lock().expect("range lock");
        if let Some(r) = *slot {
            return Ok(r);
        }
        let r = store.tick_range()?;
        *slot = Some(r);
        Ok(r)
    }

    /// The latest tick that is complete at `now`: its bucket ended more than the grace
    /// period ago. `None` when nothing is complete yet.
    pub fn ready_until(&self, store: &dyn Store, now: i64) -> Result<Option<Tick>, AppError> {
        let Some((earliest, latest)) = self.range(store)? else {
            return Ok(None);
        };
        let width = store.bucket_width();
        let last_complete = width.floor(now - self.grace_s) - width.seconds();
        let t = latest.min(last_complete);
        Ok((t >= earliest).then_some(t))
    }

    /// Checks `tick` against the stored data (the live tick when `None`) and returns
    /// it with the data range.
    pub fn resolve(
        &self,
        store: &dyn Store,
        tick: Option<Tick>,
    ) -> Result<(Tick, Tick, Tick), AppError> {
        let Some((earliest, latest)) = self.range(store)? else {
            return Err(AppError::NotFound(
                "the store holds no data yet: ingest call statistics first".into(),
            ));
        };
        let width = store.bucket_width();
        let tick = match tick {
            None => self.ready_until(store, unix_now())?.unwrap_or(latest),
            Some(t) => {
                let t = width.floor(t);
                if t < earliest || t > latest {
                    return Err(AppError::BadRequest {
                        message: format!("tick {t} is outside the stored data"),
                        details: vec![format!("data covers {earliest} to {latest}")],
                    });
                }
                t
            }
        };
        Ok((tick, earliest, latest))
    }

    /// The analysis of `tick`: from memory, else from the store, else computed now
    /// (and stored).
    pub fn stored(&self, store: &dyn Store, tick: Tick) -> Result<Arc<StoredTick>, AppError> {
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&tick) {
            return Ok(hit.clone());
        }
        if let Some(s) = store.analysis(tick)? {
            let s = Arc::new(s);
            self.remember(tick, s.clone());
            return Ok(s);
        }
        self.run(store, tick, unix_now())
    }

    /// The stored analysis of `tick`, if any, for reads over a range: from memory when
    /// cached, else from the store without caching it, so a week-long scan does not
    /// push the live ticks out of the cache.
    pub fn peek(&self, store: &dyn Store, tick: Tick) -> Result<Option<Arc<StoredTick>>, AppError> {
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&tick) {
            return Ok(Some(hit.clone()));
        }
        Ok(store.analysis(tick)?.map(Arc::new))
    }

    fn remember(&self, tick: Tick, s: Arc<StoredTick>) {
        let mut cache = self.cache.lock().expect("cache lock");
        cache.insert(tick, s);
        while cache.len() > CACHE_TICKS {
            cache.pop_first();
        }
    }

    /// The answer to `GET /api/v1/analysis` for `tick` (the live tick when `None`).
    pub fn at(
        &self,
        store: &dyn Store,
        tick: Option<Tick>,
    ) -> Result<Arc<AnalysisResponse>, AppError> {
        let (tick, earliest, latest) = self.resolve(store, tick)?;
        let stored = self.stored(store, tick)?;
        let registry = self.registry(store)?;
        let mut ids: BTreeSet<_> = stored.snapshot.pruned.nodes.iter().copied().collect();
        ids.extend(stored.snapshot.ranking.candidates.iter().map(|c| c.cluster));
        let clusters = ids
            .into_iter()
            .map(|id| cluster_info(&registry, id))
            .collect();
        Ok(Arc::new(AnalysisResponse {
            tick,
            latest_tick: latest,
            earliest_tick: earliest,
            clusters,
            snapshot: stored.snapshot.clone(),
            summary: stored.summary,
            storms: stored.storms.clone(),
            sources_behind: stored.sources_behind.clone(),
            analysed_at: stored.analysed_at,
        }))
    }

    /// [`Analyzer::at`] serialized, cached until the next ingest or analysis.
    pub fn at_json(&self, store: &dyn Store, tick: Option<Tick>) -> Result<Bytes, AppError> {
        let (resolved, _, _) = self.resolve(store, tick)?;
        let key = (resolved, self.generation.load(Ordering::Relaxed));
        if let Some(hit) = self.responses.lock().expect("responses lock").get(&key) {
            return Ok(hit.clone());
        }
        let response = self.at(store, Some(resolved))?;
        let bytes = Bytes::from(
            serde_json::to_vec(response.as_ref()).map_err(|e| AppError::Internal(e.into()))?,
        );
        let mut responses = self.responses.lock().expect("responses lock");
        if responses.len() > CACHE_TICKS {
            responses.clear();
        }
        responses.insert(key, bytes.clone());
        Ok(bytes)
    }

    /// Analyses `tick` now and stores the result (flags and snapshot) durably.
    ///
    /// The preceding ticks the persistence filter looks at are analysed first, in
    /// memory, when the store has no analysis of them. Sources that had not delivered
    /// `tick` by `now` (and are not retired) have their edges treated as missing.
    pub fn run(
        &self,
        store: &dyn Store,
        tick: Tick,
        now: i64,
    ) -> Result<Arc<StoredTick>, AppError> {
        let started = Instant::now();
        let width = store.bucket_width();
        let registry = self.registry(store)?;
        let config = self.effective_config(&registry.catalog);
        let persistence = i64::from(config.detect.persistence.ticks.saturating_sub(1));
        let before: Vec<Tick> = (1..=persistence)
            .rev()
            .map(|i| tick - i * width.seconds())
            .collect();
        let done: BTreeSet<Tick> = match (before.first(), before.last()) {
            (Some(a), Some(b)) => store.analysed_ticks(*a, *b)?.into_iter().collect(),
            _ => BTreeSet::new(),
        };
        // Only the ticks after the last analysed one need warming up.
        let last_done = before.iter().rposition(|t| done.contains(t));
        let warm_up: Vec<Tick> = match last_done {
            Some(i) => before[i + 1..].to_vec(),
            None => before.clone(),
        };
        let ticks: Vec<Tick> = warm_up.iter().copied().chain([tick]).collect();
        let needed: BTreeSet<Tick> = ticks
            .iter()
            .flat_map(|t| config.detect.ticks_needed(*t, width))
            .chain(ticks.iter().copied())
            .chain(before.iter().copied())
            .collect();
        let needed: Vec<Tick> = needed.into_iter().collect();
        let mut view = store.load_view(&registry, &needed)?;
        if let (Some(first), Some(last)) = (needed.first(), needed.last()) {
            let wanted: BTreeSet<Tick> = needed.iter().copied().collect();
            for (t, v) in store.activity(*first, *last)? {
                if wanted.contains(&t) {
                    view.set_activity(t, v)
                        .map_err(|e| AppError::Internal(e.into()))?;
                }
            }
        }
        let sources = store.sources()?;
        let stale = self.stale_sources(&sources, now);
        let behind = self.behind(sources, tick, now);
        if !behind.is_empty() {
            let masked: BTreeSet<_> = behind.iter().flat_map(|s| s.clusters.iter()).collect();
            for (e, key) in registry.entities().iter().enumerate() {
                if masked.contains(&key.edge.src) {
                    view.clear(e, tick);
                }
            }
        }
        let changes = store.changes(
            tick - config.link.window_s - width.seconds(),
            tick + width.seconds() + config.link.grace_s,
        )?;
        let cached = self
            .cache
            .lock()
            .expect("cache lock")
            .get(&(tick - width.seconds()))
            .cloned();
        let previous = match cached {
            Some(p) => Some(p),
            None => store.analysis(tick - width.seconds())?.map(Arc::new),
        };
        let stored_marks = store.marks()?;
        let marks: Vec<graph_core::prune::Mark> =
            stored_marks.iter().map(|m| m.mark.clone()).collect();
        let detect_marks = crate::marks::detection_context(&stored_marks, tick, width.seconds());
        let mut last = None;
        for t in ticks {
            let context = if t == tick {
                Context {
                    changes: &changes,
                    previous_layout: previous.as_ref().map(|p| &p.snapshot.layout),
                    marks: &marks,
                    detect_marks: detect_marks.clone(),
                }
            } else {
                Context::default()
            };
            let a = analyze_tick(t, &view, &registry.catalog, &config, &context)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("analysing tick {t}: {e}")))?;
            view.apply_flags(&a.detections)
                .map_err(|e| AppError::Internal(e.into()))?;
            last = Some(a);
        }
        let a = last.expect("the tick itself is analysed");
        let mut flags: BTreeMap<u32, [PointFlags; 4]> = BTreeMap::new();
        for p in a.detections.flag_points() {
            let i = Metric::ALL
                .iter()
                .position(|m| *m == p.metric)
                .expect("every metric is in Metric::ALL");
            flags.entry(p.entity).or_insert([PointFlags::EMPTY; 4])[i] |= p.flags;
        }
        let flags: Vec<(u32, [PointFlags; 4])> = flags.into_iter().collect();
        let mut record = StoredTick {
            snapshot: a.snapshot,
            summary: a.detections.summary,
            storms: a.detections.storms.clone(),
            sources_behind: behind.into_iter().map(|s| s.name).collect(),
            stale_sources: Some(stale),
            analysed_at: now,
            duration_ms: 0.0,
        };
        record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        store.put_analysis(tick, &flags, &record)?;
        let us = started.elapsed().as_micros() as u64;
        self.stats.analysed.fetch_add(1, Ordering::Relaxed);
        self.stats.last_us.store(us, Ordering::Relaxed);
        self.stats.total_us.fetch_add(us, Ordering::Relaxed);
        let record = Arc::new(record);
        // Later ticks read this one's flags: their cached analyses are now stale.
        self.cache
            .lock()
            .expect("cache lock")
            .retain(|t, _| *t < tick);
        self.remember(tick, record.clone());
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.responses.lock().expect("responses lock").clear();
        self.events.send(ServerEvent::Tick(TickEvent {
            tick,
            analysed_at: now,
        }));
        Ok(record)
    }

    /// Sources that have not delivered `tick` by `now` and are not retired.
    pub fn sources_behind(
        &self,
        store: &dyn Store,
        tick: Tick,
        now: i64,
    ) -> Result<Vec<SourceState>, AppError> {
        Ok(self.behind(store.sources()?, tick, now))
    }

    fn behind(&self, sources: Vec<SourceState>, tick: Tick, now: i64) -> Vec<SourceState> {
        sources
            .into_iter()
            .filter(|s| s.last_tick < tick && now - s.last_arrival <= self.sources.retire_after_s)
            .collect()
    }

    /// Names of the `sources` that were stale at `at` (silent for longer than
    /// `sources.stale_after_s`, not retired), judged from their states now. Exact for
    /// `at` = now; for an earlier `at`, a source whose latest batch came after `at` is
    /// not counted, since when it last sent before `at` is not kept.
    ///
    /// # Complexity
    ///
    /// O(S) for S sources.
    pub fn stale_sources(&self, sources: &[SourceState], at: i64) -> Vec<String> {
        sources
            .iter()
            .filter(|s| {
                // Positive, so a batch after `at` never counts.
                let silent = at - s.last_arrival;
                silent > self.sources.stale_after_s && silent <= self.sources.retire_after_s
            })
            .map(|s| s.name.clone())
            .collect()
    }

    /// Whether `source` is stale at `now`.
    pub fn is_stale(&self, source: &SourceState, now: i64) -> bool {
        now - source.last_arrival > self.sources.stale_after_s
    }
}

/// A cluster as the client needs it.
pub fn cluster_info(registry: &Registry, id: graph_core::model::ClusterId) -> ClusterInfo {
    ClusterInfo::of(&registry.catalog, id).unwrap_or_else(|| ClusterInfo {
        id,
        name: registry.catalog.label(id),
        service: String::new(),
        dc: None,
        tier: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sources_are_the_quiet_ones_not_retired_and_not_judged_after_a_later_batch() {
        let analyzer = Analyzer::default();
        let source = |name: &str, first: i64, last: i64| SourceState {
            name: name.into(),
            first_arrival: first,
            last_arrival: last,
            last_tick: 0,
            batches: 1,
            records: 1,
            clusters: vec![],
            pulled_to: None,
        };
        let at = 100_000;
        let sources = [
            source("quiet", 0, at - 601),
            source("fresh", 0, at - 600),
            source("resumed", 0, at + 60),
            source("not-yet", at + 10, at + 10),
            source("retired", 0, at - 7 * 86_400 - 1),
        ];
        assert_eq!(analyzer.stale_sources(&sources, at), ["quiet"]);
        // Later, "resumed" and "not-yet" have not sent for long either.
        assert_eq!(
            analyzer.stale_sources(&sources, at + 3600),
            ["quiet", "fresh", "resumed", "not-yet"]
        );
    }
}
