//! Small deviations: a statistically clear change of a few percent is not worth anyone's
//! time, except on key edges, where effects grow.

use std::collections::HashSet;

use crate::model::{ClusterCatalog, ClusterId, EdgeKey};

use super::config::{KeyEdge, MetricConfig};
use super::result::SuppressionReason;

/// `(value − expected) / expected`, `None` when nothing (or nothing positive) was expected.
pub(crate) fn relative_deviation(value: f64, expected: f64) -> Option<f64> {
    (expected > 0.0).then(|| (value - expected) / expected)
}

/// Why a candidate is too small to report, if it is. The absolute minimum applies
/// everywhere; the relative one not on key edges. A relative deviation that is
/// undefined (nothing expected) is never small.
pub(crate) fn small_deviation(
    value: f64,
    expected: f64,
    relative: Option<f64>,
    cfg: &MetricConfig,
    key_edge: bool,
) -> Option<SuppressionReason> {
    let min_relative = if key_edge {
        0.0
    } else {
        cfg.min_relative_deviation
    };
    let too_small = (value - expected).abs() < cfg.min_absolute_deviation
        || relative.is_some_and(|r| r.abs() < min_relative);
    too_small.then_some(SuppressionReason::SmallDeviation {
        min_relative,
        min_absolute: cfg.min_absolute_deviation,
    })
}

/// The configured key edges, resolved to cluster pairs.
#[derive(Debug, Default)]
pub(crate) struct KeyEdges(HashSet<EdgeKey>);

impl KeyEdges {
    /// Each end of a key edge names a cluster or a service (all its clusters). Names
    /// that match nothing are ignored: the catalog may not know them yet.
    ///
    /// O(k · C + pairs) for k key edges over C clusters.
    pub(crate) fn new(catalog: &ClusterCatalog, key_edges: &[KeyEdge]) -> Self {
        let matching = |name: &str| -> Vec<ClusterId> {
            catalog
                .iter()
                .filter(|(_, c)| c.name == name || c.service == name)
                .map(|(id, _)| id)
                .collect()
        };
        let mut set = HashSet::new();
        for k in key_edges {
            let dsts = matching(&k.dst);
            for src in matching(&k.src) {
                set.extend(dsts.iter().map(|&dst| EdgeKey { src, dst }));
            }
        }
        KeyEdges(set)
    }

    /// True when `edge` is a key edge.
    #[inline]
    pub(crate) fn contains(&self, edge: &EdgeKey) -> bool {
        !self.0.is_empty() && self.0.contains(edge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, Metric};

    #[test]
    fn key_edges_exempt_only_the_relative_minimum() {
        let cfg = MetricConfig {
            min_absolute_deviation: 5.0,
            ..MetricConfig::default_for(Metric::Errors)
        };
        let rel = relative_deviation(112.0, 100.0);
        assert!(small_deviation(112.0, 100.0, rel, &cfg, false).is_some());
        assert!(small_deviation(112.0, 100.0, rel, &cfg, true).is_none());
        assert!(
            small_deviation(103.0, 100.0, relative_deviation(103.0, 100.0), &cfg, true).is_some()
        );
        assert!(small_deviation(9.0, 0.0, relative_deviation(9.0, 0.0), &cfg, false).is_none());
    }

    #[test]
    fn key_edges_match_clusters_or_services() {
        let c = |name: &str, service: &str| Cluster {
            name: name.into(),
            service: service.into(),
            dc: None,
            tier: None,
        };
        let cat = ClusterCatalog::from(vec![
            c("web-1", "web"),
            c("web-2", "web"),
            c("api", "api"),
            c("db", "db"),
        ]);
        let k = KeyEdges::new(
            &cat,
            &[
                KeyEdge {
                    src: "web".into(),
                    dst: "api".into(),
                },
                KeyEdge {
                    src: "x".into(),
                    dst: "db".into(),
                },
            ],
        );
        let e = |a: u32, b: u32| EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        };
        assert!(k.contains(&e(0, 2)) && k.contains(&e(1, 2)));
        assert!(!k.contains(&e(2, 0)) && !k.contains(&e(0, 3)));
    }
}
