//! The server's one error type. Every failure becomes a JSON body
//! `{"error": "...", "details": [...]}`; 4xx messages say exactly what was wrong,
//! 5xx bodies stay generic while the real cause is logged in the request's span.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graph_core::api::ErrorBody;

/// An error returned by a handler.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is wrong; the message and details go to the client as they are.
    #[error("{message}")]
    BadRequest {
        /// One sentence.
        message: String,
        /// Precise items (line, field).
        details: Vec<String>,
    },
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right.
    #[error("{0}")]
    Forbidden(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not of an accepted media type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// Someone else changed it first.
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again after the given seconds.
    #[error("{message}")]
    TooManyRequests {
        /// One sentence.
        message: String,
        /// Seconds until the next attempt is accepted.
        retry_after_s: i64,
    },
    /// Anything else: logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            AppError::BadRequest { message, details } => (
                StatusCode::BAD_REQUEST,
                ErrorBody {
                    error: message,
                    details,
                },
            ),
            AppError::Unauthorized(message) => {
                let body = ErrorBody {
                    error: message,
                    details: vec![],
                };
                return (
                    StatusCode::UNAUTHORIZED,
                    [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                    Json(body),
                )
                    .into_response();
            }
            AppError::PayloadTooLarge(message) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorBody {
                    error: message,
                    details: vec![],
                },
            ),
            AppError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                ErrorBody {
                    error: message,
                    details: vec![],
                },
            ),
            AppError::UnsupportedMediaType(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorBody {
                    error: message,
                    details: vec![],
                },
            ),
            AppError::Conflict(message) => (
                StatusCode::CONFLICT,
                ErrorBody {
                    error: message,
                    details: vec![],
                },
            ),
            AppError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                ErrorBody {
                    error: message,
                    details: vec![],
                },
            ),
            AppError::TooManyRequests {
                message,
                retry_after_s,
            } => {
                let body = ErrorBody {
                    error: message,
                    details: vec![],
                };
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(
                        axum::http::header::RETRY_AFTER,
                        retry_after_s.max(1).to_string(),
                    )],
                    Json(body),
                )
                    .into_response();
            }
            AppError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody {
                        error: "internal server error; the cause is in the server log".into(),
                        details: vec![],
                    },
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
