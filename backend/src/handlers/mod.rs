//! HTTP handlers, one file per resource.

pub mod analysis;
pub mod health;
pub mod ingest;
pub mod metrics;

use axum::http::Uri;

use crate::error::AppError;

/// Unknown API paths get a JSON 404, never the front end's HTML.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no API endpoint at {}", uri.path()))
}
