//! Anomaly detection: each series' current value against its seasonal history.
//!
//! Counters are kept per *entity* (a cluster edge, optionally one method) and bucket,
//! time-major in [`Column`]s read through a [`SeriesView`] ([`FrameStore`] in memory).
//! Metrics derive from the counters, so latency is the request-weighted mean and sums
//! over parts are exact. The statistical core is Grubbs' test of the current value
//! among its baseline and itself ([`SampleStats`], [`grubbs_critical`]); each finding
//! gets a [`Severity`], and [`PointFlags`] are written back for later ticks.
//!
//! ```
//! use graph_core::detect::{CriticalValues, SampleStats};
//! use graph_core::model::Direction;
//!
//! let baseline = [50.0, 52.0, 49.0, 51.0, 50.0, 48.0, 53.0, 50.0, 51.0, 49.0];
//! let stats = SampleStats::from_values(&baseline).unwrap();
//! let mut critical = CriticalValues::new(0.05);
//! let g_crit = critical.get(baseline.len() + 1, Direction::Up).unwrap();
//! assert!(stats.grubbs(80.0) > g_crit);
//! assert!(stats.grubbs(52.0) < g_crit);
//! ```

mod grubbs;
mod result;
mod series;
mod severity;
mod store;

pub use grubbs::{CriticalValues, SampleStats, grubbs_critical};
pub use result::{
    ActivityAdjustment, BaselineKind, BaselineUsed, DcStorm, Endpoint, Finding, FlagPoint,
    InsufficientBaseline, MissingReason, MissingSeries, Subject, Summary, Suppressed,
    SuppressionReason, TickDetections,
};
pub use series::{Cell, CellValue, Column, MethodId, PointFlags, SeriesKey, SeriesView};
pub use severity::{MAX_RELATIVE_DEVIATION, Severity};
pub use store::FrameStore;
