//! Maintenance mode: during a rolling update some per-data-centre parts of a service
//! leave rotation and drop to zero while the others absorb their traffic. Testing the
//! sum over the parts instead of each part keeps that from looking like an outage.

use std::collections::HashMap;

use crate::model::{ClusterCatalog, ClusterId};

use super::config::MaintenanceConfig;
use super::result::{Endpoint, Subject};
use super::series::{MethodId, SeriesKey};

/// What one pass of the detector tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One entity. `shadowed` when it is a part of a combined series: it is still
    /// tested, but only to report what maintenance mode hid.
    Single { entity: u32, shadowed: bool },
    /// The sum over the parts of [`Subjects::groups`]`[i]`.
    Combined(u32),
}

/// A combined series: one service pair (and method), summed over data-centre parts.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) src: Endpoint,
    pub(crate) dst: Endpoint,
    pub(crate) method: Option<MethodId>,
    pub(crate) parts: Vec<u32>,
}

/// The tested subjects of one tick, in output order: entity order, each combined
/// series right before its first part.
#[derive(Debug, Default)]
pub(crate) struct Subjects {
    pub(crate) plans: Vec<Plan>,
    pub(crate) groups: Vec<Group>,
}

impl Subjects {
    /// Every entity on its own: the normal mode.
    fn singles(n: usize) -> Self {
        Subjects {
            plans: (0..n as u32)
                .map(|entity| Plan::Single {
                    entity,
                    shadowed: false,
                })
                .collect(),
            groups: Vec::new(),
        }
    }

    /// The entities whose counters `plan` tests.
    pub(crate) fn parts<'a>(&'a self, plan: &'a Plan) -> &'a [u32] {
        match plan {
            Plan::Single { entity, .. } => std::slice::from_ref(entity),
            Plan::Combined(g) => &self.groups[*g as usize].parts,
        }
    }

    /// The output description of `plan`.
    pub(crate) fn subject(&self, plan: &Plan, entities: &[SeriesKey]) -> Subject {
        match *plan {
            Plan::Single { entity, .. } => Subject::Series {
                entity,
                key: entities[entity as usize],
            },
            Plan::Combined(g) => {
                let g = &self.groups[g as usize];
                Subject::Combined {
                    src: g.src.clone(),
                    dst: g.dst.clone(),
                    method: g.method,
                    parts: g.parts.clone(),
                }
            }
        }
    }
}

/// One end of a group key: a cluster, or a service (index into the interned names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum End {
    Cluster(u32),
    Service(u32),
}

/// Plans the subjects of a tick. Outside maintenance mode every entity is tested on its
/// own. In maintenance mode a cluster that is a data-centre part of a service under
/// maintenance (listed, or any, and with a part in a listed data centre, or any) stands
/// for its service, and entities whose ends and method then agree
/// are summed; groups of one entity stay single.
///
/// O(E + C) expected for E entities and C clusters.
pub(crate) fn plan_subjects(
    entities: &[SeriesKey],
    catalog: &ClusterCatalog,
    cfg: &MaintenanceConfig,
) -> Subjects {
    if !cfg.enabled {
        return Subjects::singles(entities.len());
    }
    // Services with a part in a data centre under maintenance (all, without a list).
    let in_dcs: std::collections::HashSet<&str> = catalog
        .iter()
        .filter(|(_, c)| c.dc.as_ref().is_some_and(|d| cfg.dcs.contains(d)))
        .map(|(_, c)| c.service.as_str())
        .collect();
    let mut services: Vec<&str> = Vec::new();
    let mut service_index: HashMap<&str, u32> = HashMap::new();
    let under: Vec<Option<u32>> = catalog
        .iter()
        .map(|(_, c)| {
            let split = c.dc.is_some()
                && (cfg.services.is_empty() || cfg.services.contains(&c.service))
                && (cfg.dcs.is_empty() || in_dcs.contains(c.service.as_str()));
            split.then(|| {
                *service_index.entry(c.service.as_str()).or_insert_with(|| {
                    services.push(c.service.as_str());
                    (services.len() - 1) as u32
                })
            })
        })
        .collect();
    let end = |id: ClusterId| {
        under
            .get(id.0 as usize)
            .copied()
            .flatten()
            .map_or(End::Cluster(id.0), End::Service)
    };
    let endpoint = |end: End| match end {
        End::Cluster(c) => Endpoint::Cluster {
            cluster: ClusterId(c),
        },
        End::Service(s) => Endpoint::Service {
            service: services[s as usize].to_owned(),
        },
    };

    let mut index: HashMap<(End, End, Option<MethodId>), u32> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of = vec![u32::MAX; entities.len()];
    for (e, key) in entities.iter().enumerate() {
        let (src, dst) = (end(key.edge.src), end(key.edge.dst));
        if matches!((src, dst), (End::Cluster(_), End::Cluster(_))) {
            continue;
        }
        let g = *index.entry((src, dst, key.method)).or_insert_with(|| {
            groups.push(Group {
                src: endpoint(src),
                dst: endpoint(dst),
                method: key.method,
                parts: Vec::new(),
            });
            (groups.len() - 1) as u32
        });
        groups[g as usize].parts.push(e as u32);
        group_of[e] = g;
    }
    let mut plans = Vec::with_capacity(entities.len() + groups.len());
    for (e, &g) in group_of.iter().enumerate() {
        let e = e as u32;
        let combined = g != u32::MAX && groups[g as usize].parts.len() > 1;
        if combined && groups[g as usize].parts[0] == e {
            plans.push(Plan::Combined(g));
        }
        plans.push(Plan::Single {
            entity: e,
            shadowed: combined,
        });
    }
    Subjects { plans, groups }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, EdgeKey};

    fn catalog() -> ClusterCatalog {
        let c = |name: &str, service: &str, dc: Option<&str>| Cluster {
            name: name.into(),
            service: service.into(),
            dc: dc.map(Into::into),
            tier: None,
        };
        ClusterCatalog::from(vec![
            c("web-dc1", "web", Some("dc1")),
            c("web-dc2", "web", Some("dc2")),
            c("db", "db", None),
            c("cache", "cache", None),
        ])
    }

    fn key(a: u32, b: u32) -> SeriesKey {
        SeriesKey::edge(EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        })
    }

    #[test]
    fn parts_of_a_split_service_are_summed_only_in_maintenance_mode() {
        let entities = [key(0, 2), key(1, 2), key(2, 3), key(9, 2)];
        let off = plan_subjects(&entities, &catalog(), &MaintenanceConfig::default());
        assert_eq!(off.plans.len(), 4);
        assert!(off.groups.is_empty());

        let on = plan_subjects(
            &entities,
            &catalog(),
            &MaintenanceConfig {
                enabled: true,
                ..Default::default()
            },
        );
        assert_eq!(
            on.plans,
            vec![
                Plan::Combined(0),
                Plan::Single {
                    entity: 0,
                    shadowed: true
                },
                Plan::Single {
                    entity: 1,
                    shadowed: true
                },
                Plan::Single {
                    entity: 2,
                    shadowed: false
                },
                Plan::Single {
                    entity: 3,
                    shadowed: false
                }, // unknown cluster: left alone
            ]
        );
        assert_eq!(on.groups[0].parts, vec![0, 1]);
        assert_eq!(
            on.groups[0].src,
            Endpoint::Service {
                service: "web".into()
            }
        );
        assert_eq!(
            on.groups[0].dst,
            Endpoint::Cluster {
                cluster: ClusterId(2)
            }
        );
    }

    #[test]
    fn maintenance_can_be_limited_to_named_services() {
        let entities = [key(0, 2), key(1, 2)];
        let cfg = MaintenanceConfig {
            enabled: true,
            services: vec!["api".into()],
            ..Default::default()
        };
        let s = plan_subjects(&entities, &catalog(), &cfg);
        assert!(s.plans.iter().all(|p| matches!(
            p,
            Plan::Single {
                shadowed: false,
                ..
            }
        )));
    }

    #[test]
    fn maintenance_can_be_limited_to_data_centres() {
        let mut cat = catalog();
        cat.insert(Cluster {
            name: "api-dc1".into(),
            service: "api".into(),
            dc: Some("dc1".into()),
            tier: None,
        });
        cat.insert(Cluster {
            name: "api-dc3".into(),
            service: "api".into(),
            dc: Some("dc3".into()),
            tier: None,
        });
        // web has parts in dc1 and dc2, api in dc1 and dc3.
        let entities = [key(0, 2), key(1, 2), key(4, 2), key(5, 2)];
        let only = |dc: &str| MaintenanceConfig {
            enabled: true,
            dcs: vec![dc.into()],
            ..Default::default()
        };
        let summed = |cfg: &MaintenanceConfig| -> Vec<Vec<u32>> {
            let s = plan_subjects(&entities, &cat, cfg);
            s.groups.iter().map(|g| g.parts.clone()).collect()
        };
        assert_eq!(summed(&only("dc2")), vec![vec![0, 1]], "web only");
        assert_eq!(summed(&only("dc3")), vec![vec![2, 3]], "api only");
        assert_eq!(summed(&only("dc1")), vec![vec![0, 1], vec![2, 3]]);
        assert!(summed(&only("dc9")).is_empty());
    }
}
