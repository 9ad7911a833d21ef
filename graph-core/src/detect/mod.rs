//! Anomaly detection: each series' current value against its seasonal history.
//!
//! The statistical core is Grubbs' test of the current value among its baseline and
//! itself ([`SampleStats`], [`grubbs_critical`], [`CriticalValues`]).
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

pub use grubbs::{CriticalValues, SampleStats, grubbs_critical};
