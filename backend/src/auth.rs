//! API tokens with scopes. A token is shown once when created; the store keeps only its
//! SHA-256 digest. Requests present it as `Authorization: Bearer <token>`.

use std::fmt;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::error::AppError;
use crate::store::Store;

/// What a token may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Send call statistics, changes and activity.
    Ingest,
    /// Read the API.
    Read,
    /// Act: marks, incidents, trends.
    Write,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Write => "write",
        })
    }
}

/// What the store keeps about a token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// A name saying who or what uses it.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created, Unix seconds.
    pub created: i64,
}

/// The digest under which a token is stored.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random token: `epi_` and 64 hex digits (256 bits from the OS).
pub fn generate() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(Secret::new(format!(
        "epi_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )))
}

/// Checks the bearer token in `headers` against the store and that it carries `scope`.
/// Missing or unknown tokens are `401`; a known token without the scope is `403`.
pub fn require(
    store: &dyn Store,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<TokenInfo, AppError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(AppError::Unauthorized(
            "this endpoint needs an API token: send `Authorization: Bearer <token>`".into(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AppError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    let info = store
        .token(&digest(token))?
        .ok_or_else(|| AppError::Unauthorized("the API token is not valid".into()))?;
    if !info.scopes.contains(&scope) {
        return Err(AppError::Forbidden(format!(
            "the token {:?} lacks the {scope} scope",
            info.name
        )));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_only_as_digests() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("epi_") && a.expose().len() == 68);
        assert_eq!(digest(a.expose()).len(), 64);
        assert_ne!(digest(a.expose()), digest(b.expose()));
        assert!(!format!("{a:?}").contains(&a.expose()[4..]));
    }
}
