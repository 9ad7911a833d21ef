//! Core domain types: time buckets, clusters, cluster edges, counters and metrics.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Seconds since the Unix epoch.
pub type UnixSeconds = i64;

/// The start of a bucket, in Unix seconds, aligned to its [`BucketWidth`].
pub type Tick = i64;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in a week.
pub const WEEK: i64 = 7 * DAY;

/// Width of a time bucket. It divides a day exactly, so that "the same time of
/// day/week" is always a whole number of buckets away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct BucketWidth(u32);

impl BucketWidth {
    /// Five minutes, the default.
    pub const FIVE_MINUTES: BucketWidth = BucketWidth(300);
    /// One minute.
    pub const ONE_MINUTE: BucketWidth = BucketWidth(60);

    /// A width of `seconds`, which must be positive and divide a day.
    ///
    /// ```
    /// use graph_core::model::BucketWidth;
    /// assert!(BucketWidth::new(300).is_ok());
    /// assert!(BucketWidth::new(7).is_err());
    /// ```
    pub fn new(seconds: u32) -> Result<Self> {
        if seconds == 0 || DAY % i64::from(seconds) != 0 {
            return Err(Error::InvalidInput(format!(
                "bucket width {seconds}s must be positive and divide a day (86400 s)"
            )));
        }
        Ok(BucketWidth(seconds))
    }

    /// Parses `"5m"`, `"1m"`, `"30s"`, `"1h"` or a plain number of seconds.
    ///
    /// ```
    /// use graph_core::model::BucketWidth;
    /// assert_eq!(BucketWidth::parse("5m").unwrap().seconds(), 300);
    /// assert_eq!(BucketWidth::parse("60").unwrap().seconds(), 60);
    /// assert!(BucketWidth::parse("5x").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => t.split_at(i),
            None => (t, "s"),
        };
        let n: u32 = digits.parse().map_err(|_| {
            Error::InvalidInput(format!("bucket width {text:?}: expected e.g. 5m, 1m, 30s"))
        })?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "bucket width {text:?}: unknown unit {unit:?} (use s, m or h)"
                )));
            }
        };
        Self::new(
            n.checked_mul(mult).ok_or_else(|| {
                Error::InvalidInput(format!("bucket width {text:?} is too large"))
            })?,
        )
    }

    /// The width in seconds.
    pub fn seconds(self) -> i64 {
        i64::from(self.0)
    }

    /// Buckets in one day.
    pub fn per_day(self) -> i64 {
        DAY / self.seconds()
    }

    /// The tick (bucket start) that contains `ts`.
    ///
    /// ```
    /// use graph_core::model::BucketWidth;
    /// assert_eq!(BucketWidth::FIVE_MINUTES.floor(601), 600);
    /// assert_eq!(BucketWidth::FIVE_MINUTES.floor(-1), -300);
    /// ```
    pub fn floor(self, ts: UnixSeconds) -> Tick {
        ts.div_euclid(self.seconds()) * self.seconds()
    }
}

impl Default for BucketWidth {
    fn default() -> Self {
        Self::FIVE_MINUTES
    }
}

impl TryFrom<u32> for BucketWidth {
    type Error = Error;
    fn try_from(v: u32) -> Result<Self> {
        Self::new(v)
    }
}

impl From<BucketWidth> for u32 {
    fn from(w: BucketWidth) -> u32 {
        w.0
    }
}

/// Index of a cluster in a [`ClusterCatalog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClusterId(pub u32);

/// A service cluster: servers of one service (and, for large services split per data
/// centre, one data centre).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Unique name, e.g. `messaging-conversation-cdb` or `web-dc2`.
    pub name: String,
    /// The service it belongs to; for split services several clusters share it.
    pub service: String,
    /// The data centre, when the cluster is one data centre's part of a service.
    pub dc: Option<String>,
    /// Tier, e.g. `frontend`, `api`, `service`, `proxy`, `cache`, `storage`.
    pub tier: Option<String>,
}

/// All clusters, with lookup by name. Ids are positions in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<Cluster>", into = "Vec<Cluster>")]
pub struct ClusterCatalog {
    clusters: Vec<Cluster>,
    by_name: HashMap<String, ClusterId>,
}

impl ClusterCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `cluster`, or returns the id of the cluster with the same name.
    pub fn insert(&mut self, cluster: Cluster) -> ClusterId {
        if let Some(&id) = self.by_name.get(&cluster.name) {
            return id;
        }
        let id = ClusterId(self.clusters.len() as u32);
        self.by_name.insert(cluster.name.clone(), id);
        self.clusters.push(cluster);
        id
    }

    /// The id of the cluster called `name`.
    pub fn id(&self, name: &str) -> Option<ClusterId> {
        self.by_name.get(name).copied()
    }

    /// The cluster with `id`. Panics if `id` is not from this catalog.
    pub fn get(&self, id: ClusterId) -> &Cluster {
        &self.clusters[id.0 as usize]
    }

    /// The name of cluster `id`.
    pub fn name(&self, id: ClusterId) -> &str {
        &self.get(id).name
    }

    /// The cluster with `id`, or `None` for an id not from this catalog (a document
    /// read from a file may hold one).
    pub fn try_get(&self, id: ClusterId) -> Option<&Cluster> {
        self.clusters.get(id.0 as usize)
    }

    /// The name of cluster `id`, or `#id` for an id not from this catalog.
    ///
    /// ```
    /// use graph_core::model::{Cluster, ClusterCatalog, ClusterId};
    /// let mut c = ClusterCatalog::new();
    /// let web = c.insert(Cluster { name: "web".into(), service: "web".into(), dc: None, tier: None });
    /// assert_eq!((c.label(web), c.label(ClusterId(7))), ("web".to_string(), "#7".to_string()));
    /// ```
    pub fn label(&self, id: ClusterId) -> String {
        self.try_get(id)
            .map_or_else(|| format!("#{}", id.0), |c| c.name.clone())
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// True when there are no clusters.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// All clusters with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (ClusterId, &Cluster)> {
        self.clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (ClusterId(i as u32), c))
    }
}

impl From<Vec<Cluster>> for ClusterCatalog {
    fn from(v: Vec<Cluster>) -> Self {
        let mut c = ClusterCatalog::new();
        for cl in v {
            c.insert(cl);
        }
        c
    }
}

impl From<ClusterCatalog> for Vec<Cluster> {
    fn from(c: ClusterCatalog) -> Self {
        c.clusters
    }
}

/// A directed cluster edge: `src` calls `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeKey {
    /// The caller.
    pub src: ClusterId,
    /// The callee.
    pub dst: ClusterId,
}

/// Additive call statistics of one edge (or server pair) in one bucket. Sums over
/// servers and methods are plain sums; derived metrics come from [`Counters::metric`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Number of requests.
    pub requests: f64,
    /// Number of failed requests (never more than `requests`).
    pub errors: f64,
    /// Total execution time of the requests, in milliseconds.
    pub latency_ms_sum: f64,
}

impl Counters {
    /// The value of `metric`. Latency and error rate are undefined without requests.
    pub fn metric(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Requests => Some(self.requests),
            Metric::Errors => Some(self.errors),
            Metric::Latency => (self.requests > 0.0).then(|| self.latency_ms_sum / self.requests),
            Metric::ErrorRate => (self.requests > 0.0).then(|| self.errors / self.requests),
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counters) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency_ms_sum += other.latency_ms_sum;
    }
}

/// The metrics detected on every edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Request-weighted mean latency, ms.
    Latency,
    /// Request count per bucket.
    Requests,
    /// Failed request count per bucket.
    Errors,
    /// Errors divided by requests.
    ErrorRate,
}

impl Metric {
    /// Every metric, in display order.
    pub const ALL: [Metric; 4] = [
        Metric::Latency,
        Metric::Requests,
        Metric::Errors,
        Metric::ErrorRate,
    ];

    /// The direction in which a change is bad by default: latency and errors up,
    /// requests either way.
    pub fn default_direction(self) -> Direction {
        match self {
            Metric::Requests => Direction::Both,
            _ => Direction::Up,
        }
    }

    /// The position of this metric in [`Metric::ALL`], for per-metric arrays.
    ///
    /// ```
    /// use graph_core::model::Metric;
    /// assert!(Metric::ALL.iter().enumerate().all(|(i, m)| m.index() == i));
    /// ```
    pub const fn index(self) -> usize {
        match self {
            Metric::Latency => 0,
            Metric::Requests => 1,
            Metric::Errors => 2,
            Metric::ErrorRate => 3,
        }
    }

    /// The short name used in the API and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::Requests => "requests",
            Metric::Errors => "errors",
            Metric::ErrorRate => "error_rate",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which deviations count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only increases (one-sided test).
    Up,
    /// Only decreases (one-sided test).
    Down,
    /// Both (two-sided test).
    Both,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_width_rejects_widths_that_do_not_divide_a_day() {
        assert!(BucketWidth::new(0).is_err());
        assert!(BucketWidth::new(7 * 60).is_err());
        assert_eq!(BucketWidth::new(60).unwrap().per_day(), 1440);
        assert_eq!(BucketWidth::FIVE_MINUTES.per_day(), 288);
    }

    #[test]
    fn derived_metrics_are_undefined_without_requests() {
        let c = Counters::default();
        assert_eq!(c.metric(Metric::Latency), None);
        assert_eq!(c.metric(Metric::ErrorRate), None);
        assert_eq!(c.metric(Metric::Requests), Some(0.0));
    }

    #[test]
    fn catalog_round_trips_through_serde_and_keeps_ids() {
        let mut cat = ClusterCatalog::new();
        let a = cat.insert(Cluster {
            name: "a".into(),
            service: "a".into(),
            dc: None,
            tier: None,
        });
        let b = cat.insert(Cluster {
            name: "b".into(),
            service: "b".into(),
            dc: Some("dc1".into()),
            tier: None,
        });
        assert_eq!(cat.insert(cat.get(a).clone()), a);
        let json = serde_json::to_string(&cat).unwrap();
        let back: ClusterCatalog = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id("b"), Some(b));
        assert_eq!(back.get(b).dc.as_deref(), Some("dc1"));
    }
}
