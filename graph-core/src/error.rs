//! The one error type of graph-core.

/// Everything that can go wrong inside graph-core.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// Which setting, e.g. `detection.alpha`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Input data is not usable, e.g. a bucket width that does not divide a day.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A serialised document (snapshot, bundle) could not be read.
    #[error("unsupported format: {0}")]
    Format(String),
}

/// `Result` with graph-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
