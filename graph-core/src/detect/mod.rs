//! Anomaly detection: each series' current value against its seasonal history.
//!
//! Counters are kept per *entity* (a cluster edge, optionally one method) and bucket,
//! time-major in [`Column`]s read through a [`SeriesView`] ([`FrameStore`] in memory).
//! Metrics derive from the counters, so latency is the request-weighted mean and sums
//! over parts are exact. [`detect`] tests one tick:
//!
//! 1. the baseline: the same time of week 1 to 6 weeks back with two neighbouring
//!    buckets each side, falling back to the same time of day, then to the recent past
//!    ([`BaselineKind`]); anomalous points, exclusion windows and data from before a
//!    trend start are left out ([`MarkContext`]);
//! 2. Grubbs' test of the current value among baseline and value ([`grubbs_critical`],
//!    [`SampleStats`]), one- or two-sided per metric;
//! 3. the filters, each reported as the reason when it suppresses a finding
//!    ([`SuppressionReason`]): activity adjustment, small deviations except on key
//!    edges, data-centre storms, noisy series; maintenance mode tests sums over
//!    per-data-centre parts; missing data is reported as such;
//! 4. a [`Severity`] per finding, and the [`PointFlags`] to write back for later ticks.
//!
//! ```
//! use graph_core::detect::{detect, DetectConfig, FrameStore, MarkContext, SeriesKey, SeriesView};
//! use graph_core::model::{BucketWidth, ClusterCatalog, ClusterId, Counters, EdgeKey, WEEK};
//!
//! let width = BucketWidth::FIVE_MINUTES;
//! let now = 50 * WEEK;
//! let mut store = FrameStore::new(width);
//! let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
//! for t in DetectConfig::default().ticks_needed(now, width) {
//!     store.insert(t, key, &Counters { requests: 500.0, errors: 2.0, latency_ms_sum: 9_000.0 }).unwrap();
//! }
//! let result = detect(now, &store, &ClusterCatalog::new(), &DetectConfig::default(), &MarkContext::default()).unwrap();
//! assert!(result.detections.is_empty()); // nothing changed
//! store.apply_flags(&result).unwrap();
//! ```

mod activity;
mod baseline;
mod config;
mod deviation;
mod engine;
mod grubbs;
mod maintenance;
mod marks;
mod missing;
mod own;
mod persistence;
mod result;
mod series;
mod severity;
mod store;
mod storm;

#[cfg(test)]
mod tests;

pub use config::{
    ActivityConfig, BaselineConfig, DetectConfig, KeyEdge, MaintenanceConfig, MetricConfig,
    MetricsConfig, OwnTimeConfig, PersistenceConfig, SeasonalConfig, StormConfig, TrailingConfig,
};
pub use engine::detect;
pub use grubbs::{CriticalValues, SampleStats, grubbs_critical};
pub use marks::{ExclusionWindow, MarkContext, Scope, TrendStart};
pub use result::{
    ActivityAdjustment, BaselineKind, BaselineUsed, DcStorm, Endpoint, Expectation, Finding,
    FlagPoint, InsufficientBaseline, MissingReason, MissingSeries, OwnTime, Subject, Summary,
    Suppressed, SuppressionReason, TickDetections,
};
pub use series::{Cell, CellValue, Column, MethodId, PointFlags, SeriesKey, SeriesView};
pub use severity::{MAX_RELATIVE_DEVIATION, Severity};
pub use store::FrameStore;
