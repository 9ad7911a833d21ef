//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the HTTP API, kept in
//! `backend/openapi.json` and checked against the router by the tests.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// The handler.
pub async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}
