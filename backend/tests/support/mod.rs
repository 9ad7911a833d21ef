//! A running app on `127.0.0.1:0` with a temporary store and front-end folder; the
//! real binary, started and stopped as an operator would.

#![allow(dead_code)] // each test binary uses a different part

pub mod engines;

/// The `epicenter` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_epicenter");

/// Creates an API token `name` with `scope` in the store at `data`, with the CLI.
pub fn create_token(data: &std::path::Path, name: &str, scope: &str) -> String {
    create_token_with(data, name, scope, &[])
}

/// [`create_token`] with environment variables `env` (configuration of the store).
pub fn create_token_with(
    data: &std::path::Path,
    name: &str,
    scope: &str,
    env: &[(&str, &str)],
) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            name,
            "--scope",
            scope,
            "--data-dir",
        ])
        .arg(data)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `epicenter serve` on a free port of loopback over the store at `data`, with
/// no front end and detection off, plus `env`; returns it with its base URL.
pub fn spawn_on_store(
    data: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let static_dir = data.join("no-front-end");
    let mut all = vec![("EPICENTER__DETECTION__ENABLED", "false")];
    all.extend_from_slice(env);
    spawn_server(
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--static-dir".as_ref(),
            static_dir.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
        &all,
    )
}

/// Starts `epicenter serve` with `args` and `env` (logs quiet) and returns it with the
/// base URL it printed.
pub fn spawn_server(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(BIN)
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server printed its URL").unwrap();
        if let Some(rest) = line.split("open ").nth(1) {
            break rest.trim_end_matches('/').to_string();
        }
    };
    (child, url)
}

use epicenter_backend::auth::{Scope, TokenInfo, digest};
use epicenter_backend::config::Config;
use epicenter_backend::store::{RedbStore, Store};
use epicenter_backend::{AppState, app};
use graph_core::model::BucketWidth;

/// The password of the test accounts `alice` (read, write) and `viola` (read).
pub const ALICE_PASSWORD: &str = "correct horse battery";

/// A signed-in browser session: its cookie and CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// A token with scopes ingest and read.
    pub ingest_token: String,
    /// A token with scope read only.
    pub read_token: String,
    /// A token with scope write.
    pub write_token: String,
    /// Another ingest token, a second source.
    pub second_ingest_token: String,
    /// The store's folder.
    pub data_dir: std::path::PathBuf,
    /// The server's state, for what `serve` does beside the router (demo marks,
    /// detection passes).
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(None, |_| {}).await
    }

    /// With the demo portal ending at `end` and `weeks` of history in the store.
    pub async fn start_with_demo(end: i64, weeks: u32) -> TestApp {
        Self::start_with(Some((end, weeks)), |_| {}).await
    }

    pub async fn start_with(demo: Option<(i64, u32)>, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let static_dir = dir.path().join("dist");
        std::fs::create_dir_all(&static_dir).unwrap();
        std::fs::write(
            static_dir.join("index.html"),
            "<html><head><title>test shell</title></head></html>",
        )
        .unwrap();
        std::fs::write(static_dir.join("app.css"), "body{}").unwrap();
        let mut config = Config::default();
        config.store.data_dir = dir.path().join("data");
        config.server.static_dir = static_dir;
        tweak(&mut config);
        let ingest_token = "epi_test_ingest_token".to_string();
        let read_token = "epi_test_read_token".to_string();
        let write_token = "epi_test_write_token".to_string();
        let second_ingest_token = "epi_test_second_ingest_token".to_string();
        {
            let mut store =
                RedbStore::open(&config.store.data_dir, BucketWidth::FIVE_MINUTES).unwrap();
            let info = |name: &str, scopes: Vec<Scope>| TokenInfo {
                name: name.into(),
                scopes,
                created: 0,
            };
            Store::put_token(
                &store,
                &digest(&ingest_token),
                &info("collector", vec![Scope::Ingest, Scope::Read]),
            )
            .unwrap();
            Store::put_token(
                &store,
                &digest(&read_token),
                &info("dashboard", vec![Scope::Read]),
            )
            .unwrap();
            Store::put_token(
                &store,
                &digest(&write_token),
                &info("operator", vec![Scope::Write, Scope::Read]),
            )
            .unwrap();
            Store::put_token(
                &store,
                &digest(&second_ingest_token),
                &info("collector-b", vec![Scope::Ingest]),
            )
            .unwrap();
            // People: alice may act, viola may only look.
            epicenter_backend::auth::put_user(
                &store,
                "alice",
                "Alice Martin",
                ALICE_PASSWORD,
                vec![Scope::Read, Scope::Write],
                0,
            )
            .unwrap();
            epicenter_backend::auth::put_user(
                &store,
                "viola",
                "Viola Reader",
                ALICE_PASSWORD,
                vec![Scope::Read],
                0,
            )
            .unwrap();
            if let Some((end, weeks)) = demo {
                epicenter_backend::demo::load_demo(&mut store, end, weeks).unwrap();
            }
        }
        Self::serve(
            dir,
            config,
            ingest_token,
            read_token,
            write_token,
            second_ingest_token,
        )
        .await
    }

    /// Serves the store `config` names, as it is (no tokens or accounts are added; the
    /// token fields are left empty).
    pub async fn start_on(dir: tempfile::TempDir, config: Config) -> TestApp {
        Self::serve(
            dir,
            config,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        )
        .await
    }

    async fn serve(
        dir: tempfile::TempDir,
        config: Config,
        ingest_token: String,
        read_token: String,
        write_token: String,
        second_ingest_token: String,
    ) -> TestApp {
        config.validate().unwrap();
        let state = AppState::open(&config).unwrap();
        let kept = state.clone();
        if config.jira.enabled {
            // As `serve` does.
            let jira = epicenter_backend::jira::Jira::new(config.jira.clone()).unwrap();
            tokio::spawn(epicenter_backend::jira::run(
                state.clone(),
                std::sync::Arc::new(jira),
            ));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap()
        });
        TestApp {
            base,
            client: reqwest::Client::new(),
            ingest_token,
            read_token,
            write_token,
            second_ingest_token,
            data_dir: config.store.data_dir.clone(),
            state: kept,
            _dir: dir,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// POSTs NDJSON with `token` (if any).
    pub async fn ingest(&self, token: Option<&str>, body: impl Into<String>) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/api/v1/ingest/calls", self.base))
            .header("content-type", "application/x-ndjson")
            .body(body.into());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// GETs `path` and decodes the JSON body, failing on a non-2xx status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.get(path).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// POSTs `body` with `content_type` and `token` (if any) to `path`.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<String>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.into());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

impl TestApp {
    /// Signs in as the test account `name` (password [`ALICE_PASSWORD`]).
    pub async fn sign_in(&self, name: &str) -> Session {
        self.sign_in_with(name, ALICE_PASSWORD).await
    }

    /// Signs in as `name` with `password`.
    pub async fn sign_in_with(&self, name: &str, password: &str) -> Session {
        let res = self
            .client
            .post(format!("{}/api/v1/session", self.base))
            .header("content-type", "application/json")
            .body(serde_json::json!({"name": name, "password": password}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let body: serde_json::Value = res.json().await.unwrap();
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        }
    }
}
