//! Who is calling, and what they may do.
//!
//! - **API tokens** with scopes, for ingestion and automation: shown once when created,
//!   stored only as a SHA-256 digest, presented as `Authorization: Bearer <token>`.
//! - **Accounts** for people, with argon2id password hashes, and **browser sessions**:
//!   an HttpOnly, SameSite=Strict cookie whose id is stored only as a digest; writes made
//!   with the cookie must echo the session's CSRF token in `X-CSRF-Token`.
//! - A **trusted reverse proxy** may name the user in a configured header; it is believed
//!   only from the configured proxy addresses. Writes so authenticated must echo the
//!   user's CSRF token too (from `GET /api/v1/session`), as cookie writes do.
//!
//! [`layer`] identifies every API request once and leaves a [`Caller`] for handlers,
//! which ask it for the scope they need.

use std::fmt;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::config::{AuthConfig, Secret};
use crate::error::AppError;
use crate::store::{SessionRecord, Store, UserRecord};

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
    Ok(Secret::new(format!("epi_{}", random_hex(32)?)))
}

/// `n` random bytes from the OS, as hex.
pub fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The argon2id hash (PHC string, default parameters: 19 MiB, 2 passes) of `password`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string())
}

/// True when `password` matches the stored argon2id `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "epicenter_session";
/// The header cookie-authenticated writes carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An API token.
    Token,
    /// A browser session.
    Session {
        /// Digest of the session id.
        digest: String,
        /// The session's CSRF token.
        csrf: String,
        /// When it ends, Unix seconds.
        expires: i64,
    },
    /// The trusted reverse proxy's header.
    Proxy {
        /// The CSRF token writes must carry ([`proxy_csrf`]): the browser sends the
        /// proxy's credentials by itself, as it does a cookie.
        csrf: String,
    },
}

/// An identified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name or account name.
    pub name: String,
    /// Name shown to others.
    pub display_name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// How.
    pub via: Via,
}

/// The caller of a request, as [`layer`] identified it (`None`: anonymous).
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Principal>);

impl Caller {
    /// The principal, when it holds `scope`: `401` when anonymous, `403` without the
    /// scope.
    pub fn require(&self, scope: Scope) -> Result<Principal, AppError> {
        let Some(p) = &self.0 else {
            return Err(AppError::Unauthorized(
                "this endpoint needs credentials: sign in, or send `Authorization: Bearer <token>`"
                    .into(),
            ));
        };
        if !p.scopes.contains(&scope) {
            let who = match p.via {
                Via::Token => format!("the token {:?}", p.name),
                _ => format!("the user {:?}", p.name),
            };
            return Err(AppError::Forbidden(format!(
                "{who} lacks the {scope} scope"
            )));
        }
        Ok(p.clone())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The client's address, when the server was started with connection info.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// True when both strings are equal, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `peer` is one of the trusted proxies.
pub fn trusted(config: &AuthConfig, peer: Option<IpAddr>) -> bool {
    peer.is_some_and(|p| config.trusted_proxies.contains(&p))
}

/// The address of the client behind a request: the connection's peer, or, when the
/// peer is a trusted proxy, the nearest address in `X-Forwarded-For` that is not one of
/// the trusted proxies (the one the proxy itself saw; anything further left could be
/// written by the client).
pub fn client_address(
    config: &AuthConfig,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    if !trusted(config, peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !config.trusted_proxies.contains(a))
        .or(peer)
}

/// The CSRF token of `user` signed in by the trusted proxy: a digest of the store's
/// `csrf` key and the name, so it cannot be guessed, needs nothing stored per user and
/// survives restarts.
pub fn proxy_csrf(key: &[u8], user: &str) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update([0u8]);
    h.update(user.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Identifies the caller from the bearer token, the session cookie, or the trusted
/// proxy's header, in that order. A bad token is an error; an unknown or expired
/// session is anonymous. `csrf_key` is the store's `csrf` key ([`proxy_csrf`]).
pub fn identify(
    store: &dyn Store,
    config: &AuthConfig,
    csrf_key: &[u8],
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<Option<Principal>, AppError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let info = token_info(store, headers)?;
        return Ok(Some(Principal {
            display_name: info.name.clone(),
            name: info.name,
            scopes: info.scopes,
            via: Via::Token,
        }));
    }
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        let d = digest(id);
        if let Some(session) = store.session(&d)?
            && session.expires > now
            && let Some(user) = store.user(&session.user)?
        {
            return Ok(Some(Principal {
                name: user.name,
                display_name: user.display_name,
                scopes: user.scopes,
                via: Via::Session {
                    digest: d,
                    csrf: session.csrf,
                    expires: session.expires,
                },
            }));
        }
    }
    if let Some(header) = &config.proxy_header
        && trusted(config, peer)
        && let Some(name) = headers
            .get(header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|n| !n.is_empty())
    {
        let user = store.user(name)?;
        return Ok(Some(Principal {
            name: name.to_string(),
            display_name: user
                .as_ref()
                .map_or_else(|| name.to_string(), |u| u.display_name.clone()),
            scopes: user.map_or_else(|| config.proxy_scopes.clone(), |u| u.scopes),
            via: Via::Proxy {
                csrf: proxy_csrf(csrf_key, name),
            },
        }));
    }
    Ok(None)
}

/// Middleware on the API: identifies the caller once ([`identify`]), refuses requests
/// authenticated by a cookie or the proxy's header that change something without the
/// caller's CSRF token, and leaves a [`Caller`] in the request for handlers.
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let needs_lookup = req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
        || cookie(req.headers(), SESSION_COOKIE).is_some()
        || state.auth.proxy_header.is_some();
    let caller = if needs_lookup {
        let store = state.store.clone();
        let config = state.auth.clone();
        let key = state.csrf_key.clone();
        let headers = req.headers().clone();
        let now = crate::analysis::unix_now();
        match crate::handlers::blocking(move || {
            identify(store.as_ref(), &config, &key, &headers, peer, now)
        })
        .await
        {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        }
    } else {
        None
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // What the browser sends by itself (a cookie, the proxy's sign-in) must not be
    // enough to write: a page of another site could make it send them.
    let ambient = match &caller {
        Some(Principal {
            via: Via::Session { csrf, .. } | Via::Proxy { csrf },
            ..
        }) => Some(csrf),
        _ => None,
    };
    if !safe && let Some(csrf) = ambient {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same(sent, csrf) {
            return AppError::Forbidden(format!(
                "a write from the browser must carry the session's CSRF token in the {CSRF_HEADER} header (from GET /api/v1/session)"
            ))
            .into_response();
        }
    }
    req.extensions_mut().insert(Caller(caller));
    next.run(req).await
}

/// Failed sign-ins within a window, per key: a client address, and a client address
/// with an account. Nothing is counted per account alone, so nobody can lock a real user
/// out by failing on purpose: the right password from another address still works.
///
/// [`begin`](Self::begin) checks the limits and counts the attempt as a failure in one
/// step, under one lock, so concurrent attempts cannot all pass the check before any of
/// them is recorded; [`succeeded`](Self::succeeded) takes the count back.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

/// A sign-in attempt counted by [`LoginLimiter::begin`], until it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an attempt that succeeds must be handed back to `LoginLimiter::succeeded`"]
pub struct Attempt {
    keys: Vec<String>,
    at: i64,
}

/// The throttling keys of a sign-in as `account` from `client`, each with its limit:
/// the address alone (`per_address`) and the address with the account (`per_account`).
pub fn login_keys(
    client: Option<IpAddr>,
    account: &str,
    per_account: u32,
    per_address: u32,
) -> Vec<(String, u32)> {
    let addr = client.map_or_else(|| "unknown".to_string(), |p| p.to_string());
    vec![
        (format!("addr:{addr}"), per_address),
        (format!("addr:{addr} user:{account}"), per_account),
    ]
}

impl LoginLimiter {
    /// Counts an attempt under each key at `now`, unless a key already holds its limit
    /// of failures within the last `window_s` seconds: then nothing is counted and the
    /// answer is `Err(seconds to wait)`.
    pub fn begin(&self, keys: &[(String, u32)], now: i64, window_s: i64) -> Result<Attempt, i64> {
        let mut f = self.failures.lock().expect("limiter lock");
        let since = now.saturating_sub(window_s);
        f.retain(|_, q| {
            while q.front().is_some_and(|t| *t <= since) {
                q.pop_front();
            }
            !q.is_empty()
        });
        let wait = keys
            .iter()
            .filter_map(|(k, limit)| {
                let q = f.get(k)?;
                (q.len() >= *limit as usize).then(|| {
                    // The failure that must leave the window before one more is allowed.
                    let oldest = q[q.len() - *limit as usize];
                    (oldest.saturating_add(window_s) - now).max(1)
                })
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (k, _) in keys {
            f.entry(k.clone()).or_default().push_back(now);
        }
        Ok(Attempt {
            keys: keys.iter().map(|(k, _)| k.clone()).collect(),
            at: now,
        })
    }

    /// Takes back the count of an attempt that succeeded, and forgets the earlier
    /// failures of that address with that account (the last key of the attempt).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut f = self.failures.lock().expect("limiter lock");
        for (i, k) in attempt.keys.iter().enumerate() {
            let Some(q) = f.get_mut(k) else { continue };
            if i + 1 == attempt.keys.len() {
                q.clear();
            } else if let Some(pos) = q.iter().rposition(|t| *t == attempt.at) {
                q.remove(pos);
            }
            if q.is_empty() {
                f.remove(k);
            }
        }
    }
}

/// Creates the account `name`, or replaces its password, display name and scopes.
pub fn put_user(
    store: &dyn Store,
    name: &str,
    display_name: &str,
    password: &str,
    scopes: Vec<Scope>,
    now: i64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.trim().is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)),
        "a user name is letters, digits and . _ - @ only"
    );
    anyhow::ensure!(
        password.chars().count() >= 8,
        "a password needs at least 8 characters"
    );
    store.put_user(&UserRecord {
        name: name.to_string(),
        display_name: if display_name.trim().is_empty() {
            name.to_string()
        } else {
            display_name.trim().to_string()
        },
        password_hash: hash_password(password)?,
        scopes,
        created: now,
    })?;
    Ok(())
}

/// Starts a session for `user`: the cookie value (shown only to the browser) and the
/// stored record.
pub fn start_session(
    store: &dyn Store,
    user: &str,
    ttl_s: i64,
    now: i64,
) -> anyhow::Result<(Secret, SessionRecord)> {
    let id = random_hex(32).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let record = SessionRecord {
        user: user.to_string(),
        created: now,
        expires: now + ttl_s,
        csrf: random_hex(24).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?,
    };
    store.put_session(&digest(&id), &record)?;
    Ok((Secret::new(id), record))
}

/// Checks the bearer token in `headers` against the store and that it carries `scope`.
/// Missing or unknown tokens are `401`; a known token without the scope is `403`.
pub fn require(
    store: &dyn Store,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<TokenInfo, AppError> {
    let info = token_info(store, headers)?;
    if !info.scopes.contains(&scope) {
        return Err(AppError::Forbidden(format!(
            "the token {:?} lacks the {scope} scope",
            info.name
        )));
    }
    Ok(info)
}

/// The stored facts of the bearer token in `headers`: `401` when missing or unknown.
pub fn token_info(store: &dyn Store, headers: &HeaderMap) -> Result<TokenInfo, AppError> {
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
    store
        .token(&digest(token))?
        .ok_or_else(|| AppError::Unauthorized("the API token is not valid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_hashes_that_verify_only_the_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct hors"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(hash_password("correct horse").unwrap(), h, "salted");
    }

    #[test]
    fn the_limiter_counts_per_address_and_per_address_and_account() {
        let l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for t in 0..3 {
            let attempt = l.begin(&login_keys(Some(a), "alice", 3, 10), t, 60);
            assert!(attempt.is_ok(), "attempt {t}");
        }
        // Address a is done with alice for the window, whatever the password...
        assert_eq!(
            l.begin(&login_keys(Some(a), "alice", 3, 10), 10, 60),
            Err(50)
        );
        // ...but not with another account, and alice from another address is untouched.
        assert!(l.begin(&login_keys(Some(a), "bob", 3, 10), 10, 60).is_ok());
        let fresh = l
            .begin(&login_keys(Some(b), "alice", 3, 10), 10, 60)
            .unwrap();
        l.succeeded(fresh);
        assert!(
            l.begin(&login_keys(Some(a), "alice", 3, 10), 61, 60)
                .is_ok(),
            "the oldest failure left the window"
        );
    }

    #[test]
    fn the_address_limit_holds_across_accounts() {
        let l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for (t, user) in ["u1", "u2", "u3", "u4"].iter().enumerate() {
            assert!(
                l.begin(&login_keys(Some(a), user, 3, 4), t as i64, 60)
                    .is_ok()
            );
        }
        assert_eq!(l.begin(&login_keys(Some(a), "u5", 3, 4), 4, 60), Err(56));
    }

    #[test]
    fn a_success_takes_its_count_back_and_clears_the_pair() {
        let l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let keys = login_keys(Some(a), "alice", 3, 10);
        let _failed = l.begin(&keys, 0, 60).unwrap();
        let _failed = l.begin(&keys, 1, 60).unwrap();
        l.succeeded(l.begin(&keys, 2, 60).unwrap());
        // The pair starts again from nothing: three more tries.
        for t in 3..6 {
            let _failed = l.begin(&keys, t, 60).unwrap();
        }
        assert!(l.begin(&keys, 6, 60).is_err());
        // The address kept its two failures and five more, not the success.
        let f = l.failures.lock().unwrap();
        assert_eq!(f["addr:192.0.2.1"].len(), 5);
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_check_together() {
        let l = std::sync::Arc::new(LoginLimiter::default());
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let l = l.clone();
                    s.spawn(move || {
                        l.begin(&login_keys(None, "alice", 3, 100), 0, 60).is_ok() as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, 3);
    }

    #[test]
    fn cookies_are_found_among_others_and_compared_in_constant_time() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; epicenter_session=abc".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

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
