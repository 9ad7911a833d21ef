//! Data-centre storms: a unicast storm in one data centre briefly raises latency on
//! many of its edges at once. When enough of a data centre's edges show latency
//! candidates in the same tick, one event replaces them.

use std::collections::BTreeSet;

use crate::model::{ClusterCatalog, EdgeKey};

use super::config::StormConfig;

/// Data centres of a catalog, by index in name order.
#[derive(Debug)]
pub(crate) struct DataCentres {
    pub(crate) names: Vec<String>,
    of_cluster: Vec<Option<u32>>,
}

impl DataCentres {
    pub(crate) fn new(catalog: &ClusterCatalog) -> Self {
        let names: Vec<String> = catalog
            .iter()
            .filter_map(|(_, c)| c.dc.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let of_cluster = catalog
            .iter()
            .map(|(_, c)| {
                c.dc.as_ref()
                    .and_then(|d| names.binary_search(d).ok())
                    .map(|i| i as u32)
            })
            .collect();
        DataCentres { names, of_cluster }
    }

    /// The data centres an edge belongs to: those of either end, at most two, no repeats.
    pub(crate) fn of_edge(&self, edge: EdgeKey) -> impl Iterator<Item = u32> {
        let dc = |c: crate::model::ClusterId| self.of_cluster.get(c.0 as usize).copied().flatten();
        let (a, b) = (dc(edge.src), dc(edge.dst));
        a.into_iter().chain(b.filter(|b| Some(*b) != a))
    }

    /// Distinct edges per data centre.
    fn count(&self, mut edges: Vec<EdgeKey>) -> Vec<u32> {
        edges.sort_unstable();
        edges.dedup();
        let mut counts = vec![0u32; self.names.len()];
        for e in edges {
            for d in self.of_edge(e) {
                counts[d as usize] += 1;
            }
        }
        counts
    }
}

/// A storm found in one data centre.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Storm {
    pub(crate) dc: u32,
    pub(crate) affected: u32,
    pub(crate) total: u32,
}

/// Finds storms from the edges of this tick's latency candidates and, computed only
/// when some data centre has enough candidates, the edges of every latency test.
/// Storms come out in data-centre name order.
///
/// O(C log C) for C candidate edges, plus O(T log T) for T tested edges when a
/// data centre reaches `min_edges`.
pub(crate) fn find_storms(
    dcs: &DataCentres,
    candidate_edges: Vec<EdgeKey>,
    tested_edges: impl FnOnce() -> Vec<EdgeKey>,
    cfg: &StormConfig,
) -> Vec<Storm> {
    if !cfg.enabled || dcs.names.is_empty() {
        return Vec::new();
    }
    let affected = dcs.count(candidate_edges);
    if affected.iter().all(|&a| a < cfg.min_edges) {
        return Vec::new();
    }
    let total = dcs.count(tested_edges());
    affected
        .iter()
        .zip(&total)
        .enumerate()
        .filter(|&(_, (&a, &t))| {
            a >= cfg.min_edges && t > 0 && f64::from(a) / f64::from(t) >= cfg.min_share
        })
        .map(|(d, (&a, &t))| Storm {
            dc: d as u32,
            affected: a,
            total: t,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, ClusterId};

    fn catalog() -> ClusterCatalog {
        let mut v = Vec::new();
        for dc in ["dc2", "dc1"] {
            for i in 0..4 {
                v.push(Cluster {
                    name: format!("s{i}-{dc}"),
                    service: format!("s{i}"),
                    dc: Some(dc.into()),
                    tier: None,
                });
            }
        }
        v.push(Cluster {
            name: "global".into(),
            service: "global".into(),
            dc: None,
            tier: None,
        });
        ClusterCatalog::from(v)
    }

    fn edge(a: u32, b: u32) -> EdgeKey {
        EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        }
    }

    #[test]
    fn data_centres_are_indexed_by_name_and_edges_belong_to_both_ends() {
        let d = DataCentres::new(&catalog());
        assert_eq!(d.names, vec!["dc1".to_string(), "dc2".to_string()]);
        assert_eq!(d.of_edge(edge(0, 4)).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(d.of_edge(edge(0, 1)).collect::<Vec<_>>(), vec![1]);
        assert_eq!(d.of_edge(edge(8, 8)).count(), 0);
        assert_eq!(d.of_edge(edge(99, 4)).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_storm_needs_both_the_share_and_the_count() {
        let d = DataCentres::new(&catalog());
        let cfg = StormConfig {
            enabled: true,
            min_share: 0.5,
            min_edges: 3,
        };
        // dc2 (clusters 0..4): 12 intra-dc edges tested
        let tested: Vec<EdgeKey> = (0..4)
            .flat_map(|a| (0..4).filter(move |&b| b != a).map(move |b| edge(a, b)))
            .collect();
        let six = tested[..6].to_vec();
        let storms = find_storms(&d, six.clone(), || tested.clone(), &cfg);
        assert_eq!(
            storms,
            vec![Storm {
                dc: 1,
                affected: 6,
                total: 12
            }]
        );
        // duplicates (per-method entities of one edge) count once
        let dup = [six.clone(), six[..1].to_vec()].concat();
        assert_eq!(find_storms(&d, dup, || tested.clone(), &cfg)[0].affected, 6);
        assert!(find_storms(&d, tested[..5].to_vec(), || tested.clone(), &cfg).is_empty());
        let strict = StormConfig {
            min_edges: 7,
            ..cfg.clone()
        };
        assert!(find_storms(&d, six.clone(), || tested.clone(), &strict).is_empty());
        let off = StormConfig {
            enabled: false,
            ..cfg
        };
        assert!(find_storms(&d, six, || tested.clone(), &off).is_empty());
    }
}
