//! Configuration: defaults, then a TOML file, then `EPICENTER__SECTION__KEY`
//! environment variables, then command-line flags. One [`Config`] value is built in
//! `main` and passed down; nothing reads configuration from globals.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The prefix of environment variables that override configuration.
pub const ENV_PREFIX: &str = "EPICENTER__";

/// Everything the server can be told. See `docs/configuration.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// The store.
    pub store: StoreConfig,
    /// Ingestion.
    pub ingest: IngestConfig,
    /// The detection loop.
    pub detection: DetectionConfig,
    /// How long data is kept.
    pub retention: RetentionConfig,
    /// Monitoring of the data sources.
    pub sources: SourcesConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[jira]`
    pub jira: JiraConfig,
    /// `[otlp]`
    pub otlp: OtlpConfig,
    /// `[analysis]`: every threshold of detection, pruning, linking and ranking
    /// (graph-core's `AnalysisConfig`; see `docs/configuration.md`).
    pub analysis: graph_core::analyze::AnalysisConfig,
}

/// `[jira]`: incidents become Jira issues (REST API v2, or v3 with Atlassian Document
/// Format descriptions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JiraConfig {
    /// Push incidents to Jira.
    pub enabled: bool,
    /// The Jira site, e.g. `https://example.atlassian.net` or a Server/Data Center URL.
    pub base_url: String,
    /// REST API version: 2 (Server, Data Center, Cloud) or 3 (Cloud; ADF descriptions).
    pub api_version: u8,
    /// Account e-mail, with `api_token` (basic authentication, Cloud).
    pub email: Option<String>,
    /// API token for `email`.
    pub api_token: Option<Secret>,
    /// Personal access token (bearer authentication, Server/Data Center).
    pub bearer_token: Option<Secret>,
    /// Project key issues are created in.
    pub project: String,
    /// Issue type name.
    pub issue_type: String,
    /// Labels every issue gets (besides `epicenter-incident-<id>`, which finds it again).
    pub labels: Vec<String>,
    /// More fields for new issues, as Jira's `fields` object expects them, e.g.
    /// `priority = { name = "High" }`.
    pub fields: std::collections::BTreeMap<String, serde_json::Value>,
    /// Epicenter's address as people reach it, for links back from the issue.
    pub public_url: String,
    /// How often open incidents' issues are checked, and failed calls retried (with
    /// backoff), seconds.
    pub poll_interval_s: u64,
    /// How long one call to Jira may take, seconds.
    pub timeout_s: u64,
}

impl Default for JiraConfig {
    fn default() -> Self {
        JiraConfig {
            enabled: false,
            base_url: String::new(),
            api_version: 2,
            email: None,
            api_token: None,
            bearer_token: None,
            project: String::new(),
            issue_type: "Task".into(),
            labels: vec!["epicenter".into()],
            fields: Default::default(),
            public_url: "http://127.0.0.1:8080".into(),
            poll_interval_s: 60,
            timeout_s: 10,
        }
    }
}

/// `[detection]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Analyse ticks as they complete (off: ticks are analysed when asked for;
    /// retention still runs).
    pub enabled: bool,
    /// How often the loop looks for ticks to analyse, seconds (ingestion also wakes it).
    pub interval_s: u64,
    /// How long after a bucket ends late data is still awaited before it is analysed.
    pub grace_s: i64,
    /// On start, analyse at most this many hours of stored ticks that have no analysis.
    pub backfill_hours: i64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            enabled: true,
            interval_s: 10,
            grace_s: 60,
            backfill_hours: 24,
        }
    }
}

/// `[retention]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Cluster-level series, activity and config changes, days (at least 43: six weeks
    /// of baseline and the day being analysed).
    pub series_days: i64,
    /// Analysed ticks (snapshots), days.
    pub snapshot_days: i64,
    /// Server-level records behind the drill-down, hours.
    pub server_pairs_hours: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            series_days: 56,
            snapshot_days: 30,
            server_pairs_hours: 48,
        }
    }
}

/// `[sources]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// A source that sent nothing for this long is stale, seconds.
    pub stale_after_s: i64,
    /// A source silent for this long is considered retired and no longer masks its
    /// edges, seconds.
    pub retire_after_s: i64,
    /// `[[sources.prometheus]]`: engines speaking the Prometheus HTTP API that call
    /// statistics are pulled from (docs/sources.md).
    pub prometheus: Vec<PrometheusSource>,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            stale_after_s: 600,
            retire_after_s: 7 * 86_400,
            prometheus: Vec::new(),
        }
    }
}

/// Which metrics a Prometheus source reads (docs/sources.md lists each preset's
/// metric and label names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Istio's standard metrics, as reported by the calling side.
    Istio,
    /// Linkerd's proxy metrics, outbound.
    Linkerd,
    /// The OpenTelemetry Collector's (or Tempo's) service-graph metrics.
    Servicegraph,
    /// The OpenTelemetry Collector's span-metrics connector, client spans.
    Spanmetrics,
    /// Counters and labels given in `custom`.
    Custom,
}

/// `[[sources.prometheus]]`: one engine to pull call statistics from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// The source's name, as the status and the stale banner show it.
    pub name: String,
    /// Base URL of the Prometheus HTTP API, with any path prefix: e.g.
    /// `http://prometheus:9090`, `http://vmselect:8481/select/0/prometheus`,
    /// `http://mimir:8080/prometheus`.
    pub url: String,
    /// Tenant, sent as `X-Scope-OrgID` (Mimir, Cortex, Loki-style multi-tenancy).
    #[serde(default)]
    pub tenant: Option<String>,
    /// A file holding a bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// User for basic authentication, with `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the basic-authentication password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// How long one query may take, seconds.
    #[serde(default = "defaults::timeout_s")]
    pub timeout_s: u64,
    /// How long after a bucket ends it is pulled, seconds: the engine's own scrape and
    /// ingestion lag.
    #[serde(default = "defaults::delay_s")]
    pub delay_s: i64,
    /// History pulled at first start and after downtime, days.
    #[serde(default = "defaults::backfill_days")]
    pub backfill_days: i64,
    /// Most points per series in one query (Prometheus refuses more than 11,000).
    #[serde(default = "defaults::max_points")]
    pub max_points: u32,
    /// Which metrics to read.
    pub preset: Preset,
    /// The counters and labels of `preset = "custom"`.
    #[serde(default)]
    pub custom: Option<CustomQueries>,
}

/// `[sources.prometheus.custom]`: counters given as series selectors (each is wrapped
/// in `increase(...[bucket])` and summed by the labels below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomQueries {
    /// Counter of calls, e.g. `rpc_client_calls_total`.
    pub requests: String,
    /// Counter of failed calls, e.g. `rpc_client_calls_total{code!="OK"}`.
    pub errors: String,
    /// Counter of the calls' total latency, e.g. `rpc_client_duration_seconds_sum`.
    pub latency_sum: String,
    /// Unit of `latency_sum`: `ms` or `s`.
    #[serde(default = "defaults::latency_unit")]
    pub latency_unit: String,
    /// Label naming the calling service.
    pub caller: String,
    /// Label naming the called service.
    pub callee: String,
    /// Label naming the method, if any.
    #[serde(default)]
    pub method: Option<String>,
    /// Label naming the server (instance or pod) the numbers come from, if any.
    #[serde(default)]
    pub server: Option<String>,
}

/// `[otlp]`: the OpenTelemetry traces receiver, `POST /v1/traces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// How long a client span waits for its server span (and the other way round)
    /// when they arrive in different requests, seconds.
    pub pair_window_s: i64,
    /// Largest request body accepted, bytes, after gzip is undone.
    pub max_body_bytes: usize,
    /// Most spans accepted in one request.
    pub max_spans: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            pair_window_s: 60,
            max_body_bytes: 16 * 1024 * 1024,
            max_spans: 100_000,
        }
    }
}

mod defaults {
    pub fn timeout_s() -> u64 {
        30
    }
    pub fn delay_s() -> i64 {
        120
    }
    pub fn backfill_days() -> i64 {
        42
    }
    pub fn max_points() -> u32 {
        11_000
    }
    pub fn latency_unit() -> String {
        "ms".into()
    }
}

/// `[auth]`: browser sessions, login throttling and a trusted reverse proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a browser session lasts after login, seconds.
    pub session_ttl_s: i64,
    /// Mark the session cookie `Secure` (set when Epicenter is reached over HTTPS). It is
    /// also set when a trusted proxy says `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
    /// Failed logins allowed per client address and account within `login_window_s`;
    /// more from that address for that account get `429`.
    pub login_failures: u32,
    /// Failed logins allowed per client address, whatever the account, within
    /// `login_window_s`; more from that address get `429`.
    pub login_failures_per_address: u32,
    /// The window for `login_failures`, seconds.
    pub login_window_s: i64,
    /// A header carrying the user name set by a reverse proxy that authenticated the
    /// user (e.g. `X-Remote-User`). Honoured only from `trusted_proxies`.
    pub proxy_header: Option<String>,
    /// Addresses of reverse proxies whose `proxy_header` and `X-Forwarded-Proto` are
    /// believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Scopes of a user logged in by the proxy header who has no account here.
    pub proxy_scopes: Vec<crate::auth::Scope>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_s: 12 * 3600,
            secure_cookies: false,
            login_failures: 5,
            login_failures_per_address: 20,
            login_window_s: 300,
            proxy_header: None,
            trusted_proxies: Vec::new(),
            proxy_scopes: vec![crate::auth::Scope::Read, crate::auth::Scope::Write],
        }
    }
}

/// `[ingest]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Topology file mapping servers to clusters (docs/topology.md). Without one, every
    /// server name is its own cluster.
    pub topology: Option<PathBuf>,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            topology: None,
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder with the built front end (index.html, JS, wasm, CSS).
    pub static_dir: PathBuf,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Folder holding the embedded store file `epicenter.redb`.
    pub data_dir: PathBuf,
    /// Bucket width of a new store (`5m`, `1m`, `30s`...; it must divide an hour).
    /// Unset: what the store recorded, or five minutes for a new one. An existing store
    /// keeps its width: a different one here is refused at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

impl StoreConfig {
    /// The configured bucket width, if any.
    pub fn bucket_width(&self) -> Result<Option<graph_core::model::BucketWidth>, String> {
        let Some(text) = &self.bucket else {
            return Ok(None);
        };
        let w = graph_core::model::BucketWidth::parse(text)
            .map_err(|e| format!("store.bucket: {e}"))?;
        if 3600 % w.seconds() != 0 {
            return Err(format!(
                "store.bucket: {text:?} ({} s) must divide an hour",
                w.seconds()
            ));
        }
        Ok(Some(w))
    }

    /// Opens the configured store (see [`crate::store::RedbStore::open_with`]).
    pub fn open(&self) -> anyhow::Result<crate::store::RedbStore> {
        let width = self.bucket_width().map_err(anyhow::Error::msg)?;
        Ok(crate::store::RedbStore::open_with(&self.data_dir, width)?)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            static_dir: PathBuf::from("dist"),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("data"),
            bucket: None,
        }
    }
}

/// A configuration problem, with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type.
    #[error("invalid configuration in {origin}: {message}")]
    Invalid {
        /// The file path, or `environment`.
        origin: String,
        /// What is wrong, with the key.
        message: String,
    },
}

impl Config {
    /// Builds the configuration from defaults, an optional TOML file and the
    /// environment variables in `env` (pass `std::env::vars()`).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table =
            toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Invalid {
                origin: "defaults".into(),
                message: e.to_string(),
            })?;
        let mut origin = "defaults".to_string();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let from_file: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            merge(&mut table, from_file);
            origin = path.display().to_string();
        }
        let mut env_keys = Vec::new();
        for (key, value) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError::Invalid {
                    origin: "environment".into(),
                    message: format!("malformed variable name {key}"),
                });
            }
            set_path(&mut table, &path, parse_env_value(&value));
            env_keys.push(key);
        }
        if !env_keys.is_empty() {
            origin = format!("{origin} + environment ({})", env_keys.join(", "));
        }
        let config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
                origin: origin.clone(),
                message: e.to_string(),
            })?;
        config
            .validate()
            .map_err(|message| ConfigError::Invalid { origin, message })?;
        Ok(config)
    }

    /// Checks values that parse but make no sense together.
    pub fn validate(&self) -> Result<(), String> {
        self.store.bucket_width()?;
        self.analysis
            .detect
            .validate()
            .map_err(|e| format!("analysis.detect: {e}"))?;
        // Durations are added to times: a century bounds every sum.
        const CENTURY_S: i64 = 100 * 365 * 86_400;
        let durations = [
            ("retention.series_days", self.retention.series_days, 86_400),
            (
                "retention.snapshot_days",
                self.retention.snapshot_days,
                86_400,
            ),
            (
                "retention.server_pairs_hours",
                self.retention.server_pairs_hours,
                3600,
            ),
            ("detection.grace_s", self.detection.grace_s, 1),
            (
                "detection.backfill_hours",
                self.detection.backfill_hours,
                3600,
            ),
            ("auth.session_ttl_s", self.auth.session_ttl_s, 1),
            ("auth.login_window_s", self.auth.login_window_s, 1),
            ("sources.stale_after_s", self.sources.stale_after_s, 1),
            ("sources.retire_after_s", self.sources.retire_after_s, 1),
        ];
        for (name, value, unit) in durations {
            if value > CENTURY_S / unit {
                return Err(format!(
                    "{name} = {value} is more than a hundred years; give at most {}",
                    CENTURY_S / unit
                ));
            }
        }
        if self.detection.interval_s > CENTURY_S as u64 {
            return Err("detection.interval_s is more than a hundred years".into());
        }
        let r = &self.retention;
        if r.series_days < 43 {
            return Err(format!(
                "retention.series_days = {}: at least 43 days are needed for six weeks of baseline",
                r.series_days
            ));
        }
        if r.snapshot_days < 1 || r.server_pairs_hours < 1 {
            return Err(
                "retention.snapshot_days and retention.server_pairs_hours must be at least 1"
                    .into(),
            );
        }
        if self.detection.interval_s == 0 {
            return Err("detection.interval_s must be at least 1".into());
        }
        if self.detection.grace_s < 0 || self.detection.backfill_hours < 0 {
            return Err(
                "detection.grace_s and detection.backfill_hours must not be negative".into(),
            );
        }
        if self.auth.session_ttl_s < 60
            || self.auth.login_window_s < 1
            || self.auth.login_failures < 1
            || self.auth.login_failures_per_address < self.auth.login_failures
        {
            return Err(
                "auth.session_ttl_s must be at least 60, auth.login_window_s and auth.login_failures at least 1, auth.login_failures_per_address at least auth.login_failures"
                    .into(),
            );
        }
        if self.auth.proxy_header.is_some() && self.auth.trusted_proxies.is_empty() {
            return Err(
                "auth.proxy_header needs auth.trusted_proxies: the addresses it is believed from"
                    .into(),
            );
        }
        let j = &self.jira;
        if j.enabled {
            if !(j.base_url.starts_with("http://") || j.base_url.starts_with("https://")) {
                return Err("jira.base_url must be an http:// or https:// address".into());
            }
            if j.project.trim().is_empty() || j.issue_type.trim().is_empty() {
                return Err("jira.project and jira.issue_type must be set".into());
            }
            if ![2, 3].contains(&j.api_version) {
                return Err("jira.api_version must be 2 or 3".into());
            }
            let basic = j.email.is_some() && j.api_token.is_some();
            if basic == j.bearer_token.is_some() {
                return Err("jira needs either email and api_token, or bearer_token".into());
            }
            if j.poll_interval_s == 0 || j.timeout_s == 0 {
                return Err("jira.poll_interval_s and jira.timeout_s must be at least 1".into());
            }
        }
        if self.sources.stale_after_s < 1
            || self.sources.retire_after_s < self.sources.stale_after_s
        {
            return Err(
                "sources.stale_after_s must be positive and at most sources.retire_after_s".into(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.sources.prometheus.iter().enumerate() {
            let at = format!("sources.prometheus[{i}] ({})", p.name);
            if p.name.trim().is_empty() || !names.insert(p.name.as_str()) {
                return Err(format!("{at}: name must be set and unique"));
            }
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(format!("{at}: url must be an http:// or https:// address"));
            }
            if !(1..=3600).contains(&p.timeout_s) || !(0..=86_400).contains(&p.delay_s) {
                return Err(format!(
                    "{at}: timeout_s must be 1 to 3600 and delay_s 0 to 86400"
                ));
            }
            if !(0..=self.retention.series_days).contains(&p.backfill_days) {
                return Err(format!(
                    "{at}: backfill_days = {} must be 0 to retention.series_days ({})",
                    p.backfill_days, self.retention.series_days
                ));
            }
            if p.max_points < 1 {
                return Err(format!("{at}: max_points must be at least 1"));
            }
            if p.username.is_some() != p.password_file.is_some() {
                return Err(format!("{at}: username and password_file go together"));
            }
            if p.username.is_some() && p.bearer_token_file.is_some() {
                return Err(format!(
                    "{at}: give either bearer_token_file or username and password_file"
                ));
            }
            match (p.preset, &p.custom) {
                (Preset::Custom, None) => {
                    return Err(format!(
                        "{at}: preset \"custom\" needs [sources.prometheus.custom]"
                    ));
                }
                (Preset::Custom, Some(c)) => {
                    if !["ms", "s"].contains(&c.latency_unit.as_str()) {
                        return Err(format!("{at}: custom.latency_unit must be \"ms\" or \"s\""));
                    }
                }
                (_, Some(_)) => {
                    return Err(format!(
                        "{at}: custom queries are only read with preset = \"custom\""
                    ));
                }
                (_, None) => {}
            }
        }
        let o = &self.otlp;
        if !(1..=3600).contains(&o.pair_window_s) || o.max_body_bytes < 1024 || o.max_spans < 1 {
            return Err(
                "otlp.pair_window_s must be 1 to 3600, otlp.max_body_bytes at least 1024, otlp.max_spans at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}

/// An environment value is read as a TOML value when it parses as one (numbers,
/// booleans, arrays), and as a plain string otherwise.
fn parse_env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("path is never empty");
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        t = entry.as_table_mut().expect("just made a table");
    }
    t.insert(last.clone(), value);
}

/// A secret that never reaches logs: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_valid_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../epicenter.example.toml");
        let c = Config::load(Some(&path), std::iter::empty()).unwrap();
        c.validate().unwrap();
        let d = Config::default();
        assert_eq!(c.auth, d.auth);
        assert_eq!(c.jira, d.jira);
        assert_eq!(c.detection, d.detection);
        assert_eq!(c.retention, d.retention);
        assert_eq!(c.sources, d.sources);
        assert_eq!(c.analysis, d.analysis);
        assert_eq!(c.store.bucket, None);
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("epicenter.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[store]\ndata_dir = \"/var/lib/x\"\n",
        )
        .unwrap();
        let env = vec![
            (
                "EPICENTER__STORE__DATA_DIR".to_string(),
                "/tmp/y".to_string(),
            ),
            ("OTHER".into(), "1".into()),
        ];
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.store.data_dir, PathBuf::from("/tmp/y"));
        assert_eq!(c.server.static_dir, PathBuf::from("dist"));
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_key_and_origin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), vec![]).unwrap_err().to_string();
        assert!(err.contains("lisen") && err.contains("c.toml"), "{err}");
        let err = Config::load(
            None,
            vec![("EPICENTER__SERVER__LISTEN".into(), "not an address".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("EPICENTER__SERVER__LISTEN"), "{err}");
    }

    #[test]
    fn retention_shorter_than_the_baseline_is_refused() {
        let err = Config::load(
            None,
            vec![("EPICENTER__RETENTION__SERIES_DAYS".into(), "14".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("retention.series_days = 14"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }
}
