//! The id registry: clusters, methods and series entities, with ids that never change
//! once given. The store persists it; ingestion extends it in the same transaction as
//! the data that needed the new ids.

use rustc_hash::FxHashMap as HashMap;

use graph_core::detect::{MethodId, SeriesKey};
use graph_core::model::{Cluster, ClusterCatalog, ClusterId};

/// Clusters, methods and entities known to the store.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Clusters; a `ClusterId` is a position here.
    pub catalog: ClusterCatalog,
    methods: Vec<String>,
    method_index: HashMap<String, MethodId>,
    entities: Vec<SeriesKey>,
    entity_index: HashMap<SeriesKey, u32>,
    servers: Vec<String>,
    server_index: HashMap<String, u32>,
}

/// How much of a registry was already persisted: everything past these lengths is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Persisted {
    /// Clusters persisted.
    pub clusters: usize,
    /// Methods persisted.
    pub methods: usize,
    /// Entities persisted.
    pub entities: usize,
    /// Server names persisted.
    pub servers: usize,
}

impl Registry {
    /// Rebuilds a registry from persisted parts, in id order.
    pub fn from_parts(
        clusters: Vec<Cluster>,
        methods: Vec<String>,
        entities: Vec<SeriesKey>,
        servers: Vec<String>,
    ) -> Self {
        let mut r = Registry {
            catalog: ClusterCatalog::from(clusters),
            ..Default::default()
        };
        for m in methods {
            r.method(&m);
        }
        for e in entities {
            r.entity(e);
        }
        for s in servers {
            r.server(&s);
        }
        r
    }

    /// The lengths now, to compare with after adding.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            clusters: self.catalog.len(),
            methods: self.methods.len(),
            entities: self.entities.len(),
            servers: self.servers.len(),
        }
    }

    /// The id of cluster `cluster.name`, adding it if new.
    pub fn cluster(&mut self, cluster: Cluster) -> ClusterId {
        self.catalog.insert(cluster)
    }

    /// The id of method `name`, adding it if new.
    pub fn method(&mut self, name: &str) -> MethodId {
        if let Some(&id) = self.method_index.get(name) {
            return id;
        }
        let id = MethodId(self.methods.len() as u32);
        self.methods.push(name.to_string());
        self.method_index.insert(name.to_string(), id);
        id
    }

    /// The id of entity `key`, adding it if new.
    pub fn entity(&mut self, key: SeriesKey) -> u32 {
        if let Some(&id) = self.entity_index.get(&key) {
            return id;
        }
        let id = self.entities.len() as u32;
        self.entities.push(key);
        self.entity_index.insert(key, id);
        id
    }

    /// The id of method `name`, if known.
    pub fn find_method(&self, name: &str) -> Option<MethodId> {
        self.method_index.get(name).copied()
    }

    /// The id of entity `key`, if known.
    pub fn find_entity(&self, key: &SeriesKey) -> Option<u32> {
        self.entity_index.get(key).copied()
    }

    /// All entities in id order.
    pub fn entities(&self) -> &[SeriesKey] {
        &self.entities
    }

    /// All method names in id order.
    pub fn methods(&self) -> &[String] {
        &self.methods
    }

    /// The name of method `id`.
    pub fn method_name(&self, id: MethodId) -> Option<&str> {
        self.methods.get(id.0 as usize).map(String::as_str)
    }

    /// The id of server `name` (for the server-pair drill-down), adding it if new.
    pub fn server(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.server_index.get(name) {
            return id;
        }
        let id = self.servers.len() as u32;
        self.servers.push(name.to_string());
        self.server_index.insert(name.to_string(), id);
        id
    }

    /// All server names in id order.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The name of server `id`.
    pub fn server_name(&self, id: u32) -> Option<&str> {
        self.servers.get(id as usize).map(String::as_str)
    }

    /// The cluster named `name`, or every cluster of service `name`.
    pub fn clusters_named(&self, name: &str) -> Vec<ClusterId> {
        if let Some(id) = self.catalog.id(name) {
            return vec![id];
        }
        self.catalog
            .iter()
            .filter(|(_, c)| c.service == name)
            .map(|(id, _)| id)
            .collect()
    }
}
