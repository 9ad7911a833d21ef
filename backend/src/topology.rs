//! Topology: which service, data centre and cluster each server belongs to.
//!
//! A topology file (JSON, see `docs/topology.md`) lists servers by exact name and
//! name-pattern rules (regular expressions with the named captures `service` and
//! optionally `dc`). Services listed in `split_services` become one cluster per data
//! centre (`{service}-{dc}`); every other service is one cluster (`{service}`).
//! Servers that match nothing are *unmapped*: counted and listed, never dropped
//! silently.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use graph_core::model::{Cluster, ClusterCatalog, ClusterId};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The topology file, version 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// Format version; must be 1.
    pub version: u32,
    /// Servers by exact name.
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    /// Name-pattern rules, tried in order after the exact names.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Services split into one cluster per data centre.
    #[serde(default)]
    pub split_services: Vec<String>,
    /// Tier of each service (`frontend`, `api`, `service`, `proxy`, `cache`, `storage`, ...).
    #[serde(default)]
    pub tiers: BTreeMap<String, String>,
    /// Edges where even small deviations matter (service or cluster names).
    #[serde(default)]
    pub key_edges: Vec<KeyEdge>,
}

/// One server by exact name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    /// Server name as it appears in call statistics.
    pub server: String,
    /// Its service.
    pub service: String,
    /// Its data centre, if known.
    #[serde(default)]
    pub dc: Option<String>,
}

/// A name-pattern rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A regular expression with a named capture `service` and optionally `dc`,
    /// matched against the whole server name.
    pub pattern: String,
}

/// A key edge, by service or cluster names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEdge {
    /// Caller service or cluster.
    pub src: String,
    /// Callee service or cluster.
    pub dst: String,
}

/// A topology problem, saying where.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid topology.
    #[error("invalid topology{}: {message}", origin.as_deref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Invalid {
        /// The file, when there is one.
        origin: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// A compiled topology that maps server names to clusters, remembering what it
/// could not map.
#[derive(Debug, Clone)]
pub struct Topology {
    exact: HashMap<String, (String, Option<String>)>,
    rules: Vec<Regex>,
    split: HashSet<String>,
    tiers: BTreeMap<String, String>,
    key_edges: HashSet<KeyEdge>,
    /// When true, a server that matches nothing is its own cluster (offline analysis
    /// without a topology file).
    identity_fallback: bool,
    catalog: ClusterCatalog,
    resolved: HashMap<String, Option<ClusterId>>,
    unmapped: BTreeMap<String, u64>,
}

impl Topology {
    /// Compiles a topology file. `origin` names the file in errors.
    pub fn from_file_contents(
        file: TopologyFile,
        origin: Option<&str>,
    ) -> Result<Self, TopologyError> {
        let invalid = |message: String| TopologyError::Invalid {
            origin: origin.map(str::to_string),
            message,
        };
        if file.version != 1 {
            return Err(invalid(format!(
                "version {} is not supported (this build reads version 1)",
                file.version
            )));
        }
        let mut exact = HashMap::new();
        for (i, s) in file.servers.into_iter().enumerate() {
            if s.server.is_empty() || s.service.is_empty() {
                return Err(invalid(format!(
                    "servers[{i}]: server and service must not be empty"
                )));
            }
            if exact.insert(s.server.clone(), (s.service, s.dc)).is_some() {
                return Err(invalid(format!(
                    "servers[{i}]: server {:?} is listed twice",
                    s.server
                )));
            }
        }
        let mut rules = Vec::new();
        for (i, r) in file.rules.iter().enumerate() {
            let bad =
                |e: regex::Error| invalid(format!("rules[{i}]: pattern {:?}: {e}", r.pattern));
            // Alone first: a pattern such as `a)|(?P<service>b` is no regular expression,
            // yet wrapped it compiles, and no longer matches only whole names.
            Regex::new(&r.pattern).map_err(bad)?;
            let re = Regex::new(&format!("^(?:{})$", r.pattern)).map_err(bad)?;
            if !re.capture_names().flatten().any(|n| n == "service") {
                return Err(invalid(format!(
                    "rules[{i}]: pattern {:?} has no named capture `service`",
                    r.pattern
                )));
            }
            rules.push(re);
        }
        Ok(Topology {
            exact,
            rules,
            split: file.split_services.into_iter().collect(),
            tiers: file.tiers,
            key_edges: file.key_edges.into_iter().collect(),
            identity_fallback: false,
            catalog: ClusterCatalog::new(),
            resolved: HashMap::new(),
            unmapped: BTreeMap::new(),
        })
    }

    /// Reads and compiles a topology file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| TopologyError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::from_json(&bytes, Some(&origin))
    }

    /// Compiles the JSON text of a topology file (what [`load`](Self::load) reads).
    /// `origin` names the file in errors; syntax errors, type errors and bytes that are
    /// not UTF-8 give the line and column.
    ///
    /// ```
    /// use epicenter_backend::topology::Topology;
    /// let t = Topology::from_json(br#"{"version": 1, "rules": [{"pattern": "(?P<service>[a-z]+)\\d+"}]}"#, None).unwrap();
    /// assert_eq!(t.lookup("web12"), Some(("web".to_string(), None)));
    /// let e = Topology::from_json(b"{\"version\": 1,\n \"servrs\": []}", Some("t.json")).unwrap_err();
    /// assert!(e.to_string().contains("in t.json: line 2, column"), "{e}");
    /// ```
    pub fn from_json(bytes: &[u8], origin: Option<&str>) -> Result<Self, TopologyError> {
        let file: TopologyFile =
            serde_json::from_slice(bytes).map_err(|e| TopologyError::Invalid {
                origin: origin.map(str::to_string),
                message: format!("line {}, column {}: {e}", e.line(), e.column()),
            })?;
        Self::from_file_contents(file, origin)
    }

    /// A topology without a file: every server is its own cluster and service.
    pub fn identity() -> Self {
        let mut t = Self::from_file_contents(
            TopologyFile {
                version: 1,
                ..Default::default()
            },
            None,
        )
        .expect("the empty topology is valid");
        t.identity_fallback = true;
        t
    }

    /// The service and data centre of `server`, if the topology knows it.
    pub fn lookup(&self, server: &str) -> Option<(String, Option<String>)> {
        if let Some((svc, dc)) = self.exact.get(server) {
            return Some((svc.clone(), dc.clone()));
        }
        for re in &self.rules {
            if let Some(c) = re.captures(server) {
                let service = c.name("service")?.as_str().to_string();
                let dc = c.name("dc").map(|m| m.as_str().to_string());
                return Some((service, dc));
            }
        }
        self.identity_fallback.then(|| (server.to_string(), None))
    }

    /// The cluster name for a service and data centre.
    pub fn cluster_name(&self, service: &str, dc: Option<&str>) -> String {
        match dc {
            Some(dc) if self.split.contains(service) => format!("{service}-{dc}"),
            _ => service.to_string(),
        }
    }

    /// The cluster `server` belongs to, as a new [`Cluster`] value (name, service, data
    /// centre for split services, tier), without touching this topology's catalog.
    pub fn cluster_of(&self, server: &str) -> Option<Cluster> {
        let (service, dc) = self.lookup(server)?;
        let split = self.split.contains(&service);
        Some(Cluster {
            name: self.cluster_name(&service, dc.as_deref()),
            dc: if split { dc } else { None },
            tier: self.tiers.get(&service).cloned(),
            service,
        })
    }

    /// The cluster of a call's side when the source names its service (pulled metrics,
    /// traces): the service itself, with its tier. No data centre is known, so a split
    /// service is one cluster here.
    pub fn cluster_for_service(&self, service: &str) -> Cluster {
        Cluster {
            name: service.to_string(),
            service: service.to_string(),
            dc: None,
            tier: self.tiers.get(service).cloned(),
        }
    }

    /// [`Self::cluster_for_service`], in this topology's catalog.
    pub fn cluster_named(&mut self, service: &str) -> ClusterId {
        let cluster = self.cluster_for_service(service);
        self.catalog.insert(cluster)
    }

    /// The cluster of `server`, creating it in the catalog on first sight; `None` (and
    /// counted as unmapped) when the topology does not know the server.
    pub fn resolve(&mut self, server: &str) -> Option<ClusterId> {
        if let Some(&hit) = self.resolved.get(server) {
            if hit.is_none() {
                *self.unmapped.entry(server.to_string()).or_default() += 1;
            }
            return hit;
        }
        let id = self.cluster_of(server).map(|c| self.catalog.insert(c));
        if id.is_none() {
            *self.unmapped.entry(server.to_string()).or_default() += 1;
        }
        self.resolved.insert(server.to_string(), id);
        id
    }

    /// Clusters seen so far.
    pub fn catalog(&self) -> &ClusterCatalog {
        &self.catalog
    }

    /// Servers that matched nothing, with how many records named them.
    pub fn unmapped(&self) -> &BTreeMap<String, u64> {
        &self.unmapped
    }

    /// The key edges, as detection takes them.
    pub fn detect_key_edges(&self) -> Vec<graph_core::detect::KeyEdge> {
        let mut out: Vec<_> = self
            .key_edges
            .iter()
            .map(|k| graph_core::detect::KeyEdge {
                src: k.src.clone(),
                dst: k.dst.clone(),
            })
            .collect();
        out.sort_by(|a, b| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)));
        out
    }

    /// Whether `src -> dst` is a key edge (by cluster or service names).
    pub fn is_key_edge(&self, src: ClusterId, dst: ClusterId) -> bool {
        let (s, d) = (self.catalog.get(src), self.catalog.get(dst));
        [
            (&s.name, &d.name),
            (&s.service, &d.service),
            (&s.name, &d.service),
            (&s.service, &d.name),
        ]
        .into_iter()
        .any(|(a, b)| {
            self.key_edges.contains(&KeyEdge {
                src: a.clone(),
                dst: b.clone(),
            })
        })
    }

    /// The tier of a service, if configured.
    pub fn tier(&self, service: &str) -> Option<&str> {
        self.tiers.get(service).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        let file: TopologyFile = serde_json::from_str(
            r#"{
              "version": 1,
              "servers": [{"server": "db-legacy-1", "service": "messaging-conversation-cdb", "dc": "dc2"}],
              "rules": [{"pattern": "(?P<service>[a-z-]+?)-(?P<dc>dc\\d)-\\d+"}, {"pattern": "(?P<service>[a-z]+)\\d+"}],
              "split_services": ["web"],
              "tiers": {"web": "frontend"},
              "key_edges": [{"src": "web", "dst": "api"}]
            }"#,
        )
        .unwrap();
        Topology::from_file_contents(file, Some("t.json")).unwrap()
    }

    #[test]
    fn exact_names_win_then_rules_in_order_and_split_services_get_a_cluster_per_dc() {
        let mut t = topo();
        let web1 = t.resolve("web-dc1-0001").unwrap();
        let web2 = t.resolve("web-dc2-0001").unwrap();
        let api = t.resolve("api-dc1-0003").unwrap();
        let api2 = t.resolve("api-dc2-0003").unwrap();
        assert_ne!(web1, web2);
        assert_eq!(api, api2, "api is not split");
        assert_eq!(t.catalog().name(web1), "web-dc1");
        assert_eq!(t.catalog().get(web1).tier.as_deref(), Some("frontend"));
        assert_eq!(t.catalog().name(api), "api");
        let cdb = t.resolve("db-legacy-1").unwrap();
        assert_eq!(t.catalog().name(cdb), "messaging-conversation-cdb");
        let search = t.resolve("search12").unwrap();
        assert_eq!(t.catalog().name(search), "search");
        assert!(t.is_key_edge(web1, api));
        assert!(!t.is_key_edge(api, web1));
    }

    #[test]
    fn unmapped_servers_are_counted_not_dropped() {
        let mut t = topo();
        assert_eq!(t.resolve("???"), None);
        assert_eq!(t.resolve("???"), None);
        assert_eq!(t.unmapped().get("???"), Some(&2));
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let bad = |json: &str| {
            let f: TopologyFile = serde_json::from_str(json).unwrap();
            Topology::from_file_contents(f, Some("t.json"))
                .unwrap_err()
                .to_string()
        };
        assert!(bad(r#"{"version": 2}"#).contains("version 2 is not supported"));
        assert!(bad(r#"{"version": 1, "rules": [{"pattern": "(x"}]}"#).contains("rules[0]"));
        assert!(
            bad(r#"{"version": 1, "rules": [{"pattern": "x"}]}"#)
                .contains("no named capture `service`")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        std::fs::write(&p, "{\"version\": 1,\n \"servrs\": []}").unwrap();
        let e = Topology::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.json") && e.contains("line 2") && e.contains("servrs"),
            "{e}"
        );
    }

    #[test]
    fn identity_topology_makes_each_server_its_own_cluster() {
        let mut t = Topology::identity();
        let a = t.resolve("a").unwrap();
        assert_eq!(t.catalog().name(a), "a");
        assert!(t.unmapped().is_empty());
    }
}
