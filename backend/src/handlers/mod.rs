//! HTTP handlers, one file per resource.

pub mod admin;
pub mod analysis;
pub mod changes;
pub mod events;
pub mod health;
pub mod ingest;
pub mod maintenance;
pub mod marks;
pub mod metrics;
pub mod openapi;
pub mod otlp;
pub mod presence;
pub mod query;
pub mod session;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Uri};

use crate::error::AppError;

/// Query parameters, like axum's `Query`, but a malformed query string is a JSON 400
/// naming the problem.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(Params(q)),
            Err(e) => Err(AppError::BadRequest {
                message: format!("invalid query string: {}", e.body_text()),
                details: vec![],
            }),
        }
    }
}

/// Reads a request body of at most `limit` bytes (after authentication, so strangers
/// cannot make the server buffer large bodies).
pub async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, AppError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let text = e.to_string();
        let inner = std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default();
        if text.contains("length limit") || inner.contains("length limit") {
            AppError::PayloadTooLarge(format!(
                "the body is larger than {limit} bytes; send smaller batches"
            ))
        } else {
            AppError::BadRequest {
                message: format!("cannot read the body: {text}"),
                details: vec![],
            }
        }
    })
}

/// Unknown API paths get a JSON 404, never the front end's HTML.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no API endpoint at {}", uri.path()))
}

/// Runs store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(e.into()))?
}

/// A time query parameter: RFC 3339 or Unix seconds.
pub fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, AppError> {
    value
        .map(crate::ingest::timefmt::parse_time)
        .transpose()
        .map_err(|m| AppError::BadRequest {
            message: format!("query parameter \"{name}\": {m}"),
            details: vec![],
        })
}

/// Refuses a body whose `Content-Type` is not one of `accepted` (parameters such as
/// `charset` are allowed).
pub fn require_media_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), AppError> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if accepted.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "content type {media:?} is not accepted here; send {}",
            accepted.join(" or ")
        )))
    }
}
