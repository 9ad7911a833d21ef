//! Analysis of stored ticks on demand: loads the columns a tick needs from the store,
//! runs graph-core's pipeline over it (with the preceding ticks first, so the
//! persistence filter sees them) and keeps recent results in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use graph_core::analyze::{AnalysisConfig, Context, analyze_tick};
use graph_core::api::{AnalysisResponse, ClusterInfo};
use graph_core::model::Tick;

use crate::error::AppError;
use crate::store::Store;

/// Results kept in memory.
const CACHE_TICKS: usize = 64;

/// Analyses ticks of a store and remembers recent answers.
#[derive(Debug, Default)]
pub struct Analyzer {
    config: AnalysisConfig,
    cache: Mutex<BTreeMap<Tick, Arc<AnalysisResponse>>>,
}

impl Analyzer {
    /// An analyzer with `config`.
    pub fn new(config: AnalysisConfig) -> Self {
        Analyzer {
            config,
            cache: Mutex::default(),
        }
    }

    /// Drops cached results that new data for `ticks` makes stale: those ticks and the
    /// ones whose baselines read them (anything later).
    pub fn forget(&self, ticks: &[Tick]) {
        if let Some(first) = ticks.iter().min() {
            self.cache
                .lock()
                .expect("cache lock")
                .retain(|t, _| t < first);
        }
    }

    /// The analysis of `tick` (the latest tick when `None`).
    pub fn at(
        &self,
        store: &dyn Store,
        tick: Option<Tick>,
    ) -> Result<Arc<AnalysisResponse>, AppError> {
        let Some((earliest, latest)) = store.tick_range()? else {
            return Err(AppError::NotFound(
                "the store holds no data yet: ingest call statistics first".into(),
            ));
        };
        let width = store.bucket_width();
        let tick = match tick {
            None => latest,
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
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&tick) {
            return Ok(hit.clone());
        }
        let registry = store.registry()?;
        let warm_up = i64::from(self.config.detect.persistence.ticks.saturating_sub(1));
        let ticks: Vec<Tick> = (0..=warm_up)
            .rev()
            .map(|i| tick - i * width.seconds())
            .collect();
        let needed: BTreeSet<Tick> = ticks
            .iter()
            .flat_map(|t| self.config.detect.ticks_needed(*t, width))
            .chain(ticks.iter().copied())
            .collect();
        let needed: Vec<Tick> = needed.into_iter().collect();
        let mut view = store.load_view(&registry, &needed)?;
        let context = Context::default();
        let mut last = None;
        for t in ticks {
            let a = analyze_tick(t, &view, &registry.catalog, &self.config, &context)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("analysing tick {t}: {e}")))?;
            view.apply_flags(&a.detections)
                .map_err(|e| AppError::Internal(e.into()))?;
            last = Some(a);
        }
        let a = last.expect("at least the tick itself is analysed");
        let mut ids: BTreeSet<_> = a.snapshot.pruned.nodes.iter().copied().collect();
        ids.extend(a.snapshot.ranking.candidates.iter().map(|c| c.cluster));
        let clusters = ids
            .into_iter()
            .map(|id| {
                let c = registry.catalog.get(id);
                ClusterInfo {
                    id,
                    name: c.name.clone(),
                    service: c.service.clone(),
                    dc: c.dc.clone(),
                    tier: c.tier.clone(),
                }
            })
            .collect();
        let response = Arc::new(AnalysisResponse {
            tick,
            latest_tick: latest,
            earliest_tick: earliest,
            clusters,
            summary: a.detections.summary,
            storms: a.detections.storms.clone(),
            snapshot: a.snapshot,
        });
        let mut cache = self.cache.lock().expect("cache lock");
        cache.insert(tick, response.clone());
        while cache.len() > CACHE_TICKS {
            cache.pop_first();
        }
        Ok(response)
    }
}
