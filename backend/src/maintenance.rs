//! The maintenance switch per data centre.
//!
//! During a rolling update the parts of a service in one data centre leave rotation and
//! the others absorb their traffic. With the switch on for that data centre, detection
//! tests every service with a part there as the sum over its data-centre parts, so the
//! move does not look like an outage (`MaintenanceConfig` in graph-core).
//!
//! The configuration file sets the initial state (`[analysis.detect.maintenance]`:
//! `enabled`, and `dcs`, empty for all). People switch a data centre on or off through
//! `PUT /api/v1/maintenance/{dc}` (scope `write`) or the screen; every switch is an
//! audit record (who, when, why) appended durably to the store, and the latest record
//! of a data centre wins over the file. Switches apply from the next analysed tick.

use std::collections::{BTreeMap, BTreeSet};

use graph_core::detect::MaintenanceConfig;
use graph_core::model::ClusterCatalog;

/// One switch, as stored and listed.
pub use graph_core::api::MaintenanceSwitch as MaintenanceRecord;

/// The latest switch of every data centre that has one.
///
/// O(R) for R records.
pub fn latest(records: &[MaintenanceRecord]) -> BTreeMap<String, MaintenanceRecord> {
    let mut out: BTreeMap<String, MaintenanceRecord> = BTreeMap::new();
    for r in records {
        match out.get(&r.dc) {
            Some(have) if have.seq > r.seq => {}
            _ => {
                out.insert(r.dc.clone(), r.clone());
            }
        }
    }
    out
}

/// Whether `dc` is under maintenance: its latest switch, else the configuration.
pub fn is_on(
    configured: &MaintenanceConfig,
    switches: &BTreeMap<String, MaintenanceRecord>,
    dc: &str,
) -> bool {
    match switches.get(dc) {
        Some(r) => r.on,
        None => {
            configured.enabled
                && (configured.dcs.is_empty() || configured.dcs.iter().any(|d| d == dc))
        }
    }
}

/// The maintenance configuration detection uses: the configured one when nothing was
/// switched, else the data centres of `catalog` (and any switched ones) that are on.
///
/// O(C + S) for C clusters and S switched data centres.
///
/// ```
/// use std::collections::BTreeMap;
/// use epicenter_backend::maintenance::{effective, MaintenanceRecord};
/// use graph_core::detect::MaintenanceConfig;
/// use graph_core::model::{Cluster, ClusterCatalog};
///
/// let catalog = ClusterCatalog::from(vec![
///     Cluster { name: "web-dc1".into(), service: "web".into(), dc: Some("dc1".into()), tier: None },
///     Cluster { name: "web-dc2".into(), service: "web".into(), dc: Some("dc2".into()), tier: None },
/// ]);
/// let configured = MaintenanceConfig::default();
/// let mut switches = BTreeMap::new();
/// assert_eq!(effective(&configured, &switches, &catalog), configured);
/// switches.insert("dc2".to_string(), MaintenanceRecord {
///     seq: 1, dc: "dc2".into(), on: true, by: "alice".into(), at: 0, reason: "rollout".into(),
/// });
/// let e = effective(&configured, &switches, &catalog);
/// assert!(e.enabled);
/// assert_eq!(e.dcs, vec!["dc2".to_string()]);
/// ```
pub fn effective(
    configured: &MaintenanceConfig,
    switches: &BTreeMap<String, MaintenanceRecord>,
    catalog: &ClusterCatalog,
) -> MaintenanceConfig {
    if switches.is_empty() {
        return configured.clone();
    }
    let dcs: BTreeSet<&str> = catalog
        .iter()
        .filter_map(|(_, c)| c.dc.as_deref())
        .chain(switches.keys().map(String::as_str))
        .collect();
    let on: Vec<String> = dcs
        .into_iter()
        .filter(|dc| is_on(configured, switches, dc))
        .map(str::to_string)
        .collect();
    MaintenanceConfig {
        enabled: !on.is_empty(),
        services: configured.services.clone(),
        dcs: on,
    }
}

/// Checks a data-centre name from a request: 1 to 64 characters of letters, digits,
/// `-`, `_` and `.`.
pub fn check_dc(dc: &str) -> Result<(), String> {
    let ok = !dc.is_empty()
        && dc.len() <= 64
        && dc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "data centre {dc:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, dc: &str, on: bool) -> MaintenanceRecord {
        MaintenanceRecord {
            seq,
            dc: dc.into(),
            on,
            by: "alice".into(),
            at: seq as i64,
            reason: String::new(),
        }
    }

    #[test]
    fn the_latest_switch_wins_over_the_file() {
        let catalog = ClusterCatalog::from(
            ["dc1", "dc2", "dc3"]
                .iter()
                .map(|dc| graph_core::model::Cluster {
                    name: format!("web-{dc}"),
                    service: "web".into(),
                    dc: Some((*dc).into()),
                    tier: None,
                })
                .collect::<Vec<_>>(),
        );
        let all = MaintenanceConfig {
            enabled: true,
            ..Default::default()
        };
        let switches = latest(&[
            rec(1, "dc2", false),
            rec(2, "dc1", true),
            rec(3, "dc1", false),
        ]);
        assert_eq!(switches["dc1"].seq, 3);
        let e = effective(&all, &switches, &catalog);
        assert_eq!(e.dcs, vec!["dc3".to_string()], "dc1 and dc2 switched off");
        let none = effective(&MaintenanceConfig::default(), &switches, &catalog);
        assert!(!none.enabled && none.dcs.is_empty());
    }

    #[test]
    fn data_centre_names_are_checked() {
        assert!(check_dc("dc-2.eu_west").is_ok());
        assert!(check_dc("").is_err());
        assert!(check_dc("<script>").is_err());
        assert!(check_dc(&"d".repeat(65)).is_err());
    }
}
