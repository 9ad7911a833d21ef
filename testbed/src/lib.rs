//! A live testbed for Epicenter: real service processes on loopback, traced with the real
//! OpenTelemetry SDK and exporting to the real `epicenter serve` over OTLP/HTTP; real faults
//! injected one after another and labelled; and an evaluation of Epicenter's root-cause
//! ranking against two naive rankers (AC@1/3/5 per fault kind).
//!
//! The binary `testbed` has two subcommands: `service` runs one service instance,
//! `run` runs everything ([`orchestrator::run`]). This library exists so the tests reach
//! the pure parts (the call graph, the fault plan, the rankers and AC@k) and the
//! orchestrator. It is an application, not a library others build on, so its errors are
//! `anyhow` throughout.
//!
//! ```
//! use epicenter_testbed::{eval::ac_at, faults::plan, topology::services};
//! let faults = plan(1, 8, &services());
//! assert_eq!(faults.len(), 8);
//! assert_eq!(ac_at(3, &[Some(1), Some(4)]), 0.5);
//! ```

pub mod epicenter;
pub mod eval;
pub mod faults;
pub mod loadgen;
pub mod orchestrator;
pub mod proxy;
pub mod rng;
pub mod service;
pub mod telemetry;
pub mod topology;
