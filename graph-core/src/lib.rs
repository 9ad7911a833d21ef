//! # graph-core
//!
//! The domain of Epicenter, shared by the server (native) and the browser (wasm32):
//! cluster-level call statistics, anomaly detection against each edge's seasonal
//! history, pruning to the anomalous subgraph, root-cause ranking, layout and the
//! snapshot format. It performs no I/O and never reads the clock: every function
//! that depends on time takes the tick as an argument.
//!
//! ```
//! use graph_core::model::{Counters, Metric};
//!
//! let c = Counters { requests: 200.0, errors: 4.0, latency_ms_sum: 5_000.0 };
//! assert_eq!(c.metric(Metric::Latency), Some(25.0));
//! assert_eq!(c.metric(Metric::ErrorRate), Some(0.02));
//! ```

pub mod analyze;
pub mod api;
pub mod detect;
pub mod error;
pub mod graph;
pub mod layout;
pub mod link;
pub mod model;
pub mod prune;
pub mod rank;
pub mod render;
pub mod snapshot;

pub use error::{Error, Result};
