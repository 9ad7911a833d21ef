//! Ingestion: the call-statistics format (see `docs/ingest.md`), its validation, and
//! the time parsing shared with the command line.

pub mod record;
pub mod service;
pub mod timefmt;
pub mod values;

pub use record::{CallRecord, Limits, LineError, parse_calls};
