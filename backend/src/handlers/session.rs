//! `/api/v1/session`: sign in with an account (a session cookie), see who is signed in,
//! sign out.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use graph_core::api::SessionView;
use serde::Deserialize;

use super::{blocking, read_body, require_media_type};
use crate::AppState;
use crate::analysis::unix_now;
use crate::auth::{self, Caller, Peer, Principal, SESSION_COOKIE, Via};
use crate::error::AppError;

/// The body of `POST /api/v1/session`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Account name.
    pub name: String,
    /// Its password.
    pub password: String,
}

fn view(p: &Principal) -> SessionView {
    let (via, csrf_token, expires) = match &p.via {
        Via::Session { csrf, expires, .. } => ("session", Some(csrf.clone()), Some(*expires)),
        Via::Token => ("token", None, None),
        Via::Proxy { csrf } => ("proxy", Some(csrf.clone()), None),
    };
    SessionView {
        name: p.name.clone(),
        display_name: p.display_name.clone(),
        scopes: p.scopes.iter().map(ToString::to_string).collect(),
        via: via.into(),
        csrf_token,
        expires,
    }
}

/// Whether the session cookie must be `Secure`: configured, or a trusted proxy says
/// the browser came over HTTPS.
fn secure(state: &AppState, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> bool {
    state.auth.secure_cookies
        || (auth::trusted(&state.auth, peer)
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https")))
}

fn cookie(value: &str, max_age: i64, secure: bool) -> Result<HeaderValue, AppError> {
    let mut c =
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).map_err(|e| AppError::Internal(e.into()))
}

/// `GET /api/v1/session`: who is calling (`401` when nobody).
pub async fn current(caller: Caller) -> Result<Json<SessionView>, AppError> {
    match &caller.0 {
        Some(p) => Ok(Json(view(p))),
        None => Err(AppError::Unauthorized("not signed in".into())),
    }
}

/// `POST /api/v1/session`: checks name and password and starts a session. Failed
/// attempts are counted per client address, and per client address and account; past
/// either limit the answer from that address is `429` with `Retry-After`, whatever the
/// password ([`auth::LoginLimiter`]).
pub async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, AppError> {
    require_media_type(&headers, &["application/json"])?;
    let body = read_body(body, 16 * 1024).await?;
    let login: Login = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        message: format!("the body must be {{\"name\": ..., \"password\": ...}}: {e}"),
        details: vec![],
    })?;
    let now = unix_now();
    let client = auth::client_address(&state.auth, peer, &headers);
    let keys = auth::login_keys(
        client,
        &login.name,
        state.auth.login_failures,
        state.auth.login_failures_per_address,
    );
    let attempt = match state.logins.begin(&keys, now, state.auth.login_window_s) {
        Ok(attempt) => attempt,
        Err(wait) => {
            return Err(AppError::TooManyRequests {
                message: format!("too many failed sign-ins; try again in {wait} s"),
                retry_after_s: wait,
            });
        }
    };
    let s = state.clone();
    let name = login.name.clone();
    let login_name = login.name.clone();
    let outcome = blocking(move || {
        let store = s.store.as_ref();
        let user = store.user(&name)?;
        // A missing account costs the same as a wrong password.
        let hash = user
            .as_ref()
            .map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let ok = auth::verify_password(hash, &login.password) && user.is_some();
        if !ok {
            return Ok(None);
        }
        let user = user.expect("checked above");
        let (id, record) = auth::start_session(store, &user.name, s.auth.session_ttl_s, now)
            .map_err(AppError::Internal)?;
        Ok(Some((id, record, user)))
    })
    .await?;
    // A failure stays counted (begin counted it); a store error counts as one too.
    let Some((id, record, user)) = outcome else {
        tracing::info!(user = %login_name, client = ?client, "failed sign-in");
        return Err(AppError::Unauthorized("wrong name or password".into()));
    };
    state.logins.succeeded(attempt);
    tracing::info!(user = %user.name, "signed in");
    let principal = Principal {
        name: user.name,
        display_name: user.display_name,
        scopes: user.scopes,
        via: Via::Session {
            digest: String::new(),
            csrf: record.csrf,
            expires: record.expires,
        },
    };
    let set = cookie(
        id.expose(),
        state.auth.session_ttl_s,
        secure(&state, &headers, peer),
    )?;
    Ok((StatusCode::OK, [(SET_COOKIE, set)], Json(view(&principal))).into_response())
}

/// `DELETE /api/v1/session`: ends the browser session (with its CSRF token).
pub async fn logout(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response, AppError> {
    let Some(Principal {
        via: Via::Session { digest, .. },
        name,
        ..
    }) = caller.0
    else {
        return Err(AppError::Unauthorized("no browser session to end".into()));
    };
    let store = state.store.clone();
    blocking(move || Ok(store.delete_session(&digest)?)).await?;
    tracing::info!(user = %name, "signed out");
    let set = cookie("", 0, secure(&state, &headers, peer))?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, set)]).into_response())
}

/// An argon2id hash of a random password, verified against when the account does not
/// exist, so both failures take as long.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$WtUEOKydS2E7Q+3bZ1Q0e2Dn2Zq9d2yV1qQe5Zbqf3M";

#[cfg(test)]
mod tests {
    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        use argon2::password_hash::PasswordHash;
        let h = PasswordHash::new(super::DUMMY_HASH).unwrap();
        assert_eq!(h.algorithm.as_str(), "argon2id");
        assert!(!crate::auth::verify_password(super::DUMMY_HASH, ""));
    }
}
