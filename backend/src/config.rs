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
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
            origin,
            message: e.to_string(),
        })
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
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }
}
