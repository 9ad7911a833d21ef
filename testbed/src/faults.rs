//! Faults: what a service's control endpoint takes ([`FaultState`]), the seven kinds, the
//! seeded plan of a run ([`plan`]) and the labels written for each injected fault.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::topology::{PROXIED_LINKS, RetryPolicy, ServiceSpec};

/// The faults switched on in one service instance, as `POST /_fault` takes them; the body
/// replaces what was on before, so `{}` ends every fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultState {
    /// Extra service time on every request, ms.
    pub extra_latency_ms: f64,
    /// Share of requests answered `500` (0 to 1).
    pub error_share: f64,
    /// Share of time a hog holds every cpu slot (0 to 1), in 20 ms periods.
    pub cpu_hog: f64,
    /// Callee -> pool slots left usable (the others are held).
    pub pool_limit: BTreeMap<String, u32>,
    /// Callee -> retry policy replacing the usual one.
    pub retry: BTreeMap<String, RetryPolicy>,
}

impl FaultState {
    /// Checks the values; the error says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} = {v}: must be within 0 to 1"))
            }
        };
        share("error_share", self.error_share)?;
        share("cpu_hog", self.cpu_hog)?;
        if !(self.extra_latency_ms.is_finite() && (0.0..=60_000.0).contains(&self.extra_latency_ms))
        {
            return Err(format!(
                "extra_latency_ms = {}: must be within 0 to 60000",
                self.extra_latency_ms
            ));
        }
        for (callee, p) in &self.retry {
            let backoff_ok = p.backoff_ms.is_finite() && p.backoff_ms >= 0.0;
            let timeout_ok = p.timeout_ms.is_finite() && p.timeout_ms > 0.0;
            if p.retries > 20 || !backoff_ok || !timeout_ok {
                return Err(format!(
                    "retry.{callee}: retries at most 20, backoff_ms >= 0, timeout_ms > 0"
                ));
            }
        }
        Ok(())
    }
}

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A hog takes most of the target's CPU quota.
    CpuHog,
    /// Extra service time on the target.
    Latency,
    /// The target answers 5xx for a share of requests.
    Errors,
    /// The target's pool to one callee shrinks to one slot (the rest are held).
    PoolExhaustion,
    /// A link's calls pass a proxy that delays every answer; the cause is the caller.
    ProxyDelay,
    /// One instance of a two-instance service is killed (SIGKILL), restarted at the end.
    KillInstance,
    /// A caller's retry policy towards one callee turns aggressive (more retries, no
    /// backoff, a short timeout), multiplying the callee's load.
    RetryStorm,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::CpuHog,
        FaultKind::Latency,
        FaultKind::Errors,
        FaultKind::PoolExhaustion,
        FaultKind::ProxyDelay,
        FaultKind::KillInstance,
        FaultKind::RetryStorm,
    ];

    /// The snake-case name used in labels and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CpuHog => "cpu_hog",
            FaultKind::Latency => "latency",
            FaultKind::Errors => "errors",
            FaultKind::PoolExhaustion => "pool_exhaustion",
            FaultKind::ProxyDelay => "proxy_delay",
            FaultKind::KillInstance => "kill_instance",
            FaultKind::RetryStorm => "retry_storm",
        }
    }
}

/// Which config change goes with a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangePlan {
    /// None.
    None,
    /// A change on the cause service, recorded just before the fault starts.
    Real {
        /// Its description.
        description: String,
    },
    /// A change on a service unrelated to the fault.
    Decoy {
        /// The service it names.
        service: String,
        /// Its description.
        description: String,
    },
}

/// One fault of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// 1, 2, ... in order of injection.
    pub id: u32,
    /// The kind.
    pub kind: FaultKind,
    /// The root cause: the service whose change the fault is.
    pub cause: String,
    /// The service that is changed or slowed: the cause, or the callee of a link.
    pub target: String,
    /// `caller>callee` for faults on a link (pool, proxy, retry storm).
    pub link: Option<String>,
    /// The instance killed, for `kill_instance`.
    pub instance: Option<String>,
    /// The fault's size in `unit`.
    pub size: f64,
    /// What `size` measures.
    pub unit: String,
    /// The config change that goes with it.
    pub change: ChangePlan,
}

impl PlannedFault {
    /// The faults to switch on in the cause's instances (empty for a proxy delay or a
    /// killed instance, which the orchestrator does itself).
    pub fn state(&self) -> FaultState {
        let mut s = FaultState::default();
        let callee = self.link.as_deref().and_then(|l| l.split('>').nth(1));
        match (self.kind, callee) {
            (FaultKind::CpuHog, _) => s.cpu_hog = self.size,
            (FaultKind::Latency, _) => s.extra_latency_ms = self.size,
            (FaultKind::Errors, _) => s.error_share = self.size,
            (FaultKind::PoolExhaustion, Some(c)) => {
                s.pool_limit.insert(c.to_string(), self.size as u32);
            }
            (FaultKind::RetryStorm, Some(c)) => {
                s.retry
                    .insert(c.to_string(), storm_policy(&self.cause, c, self.size));
            }
            _ => {}
        }
        s
    }
}

/// Caller -> callee pairs whose pool can be exhausted: the caller's load through them is
/// high enough that one slot queues.
pub const POOL_LINKS: [(&str, &str); 2] = [("catalog", "db"), ("home", "catalog")];

/// Caller -> callee pairs whose retry policy can turn into a storm, with the attempt
/// timeout of the storm policy: well below the callee's usual latency (about 13 ms for
/// recommend, 30 ms for catalog), so nearly every attempt times out and is retried.
pub const STORM_LINKS: [(&str, &str, f64); 2] =
    [("home", "recommend", 8.0), ("search", "catalog", 20.0)];

/// The storm policy of `caller` towards `callee` with `retries` retries.
pub fn storm_policy(caller: &str, callee: &str, retries: f64) -> RetryPolicy {
    let timeout_ms = STORM_LINKS
        .iter()
        .find(|(a, b, _)| *a == caller && *b == callee)
        .map_or(10.0, |l| l.2);
    RetryPolicy {
        retries: retries as u32,
        backoff_ms: 0.0,
        timeout_ms,
    }
}

const DECOYS: [&str; 6] = [
    "raise log level to debug",
    "rotate TLS certificate",
    "bump base image",
    "update alert thresholds",
    "enable new dashboard panel",
    "change GC settings",
];

/// The seeded plan of `n` faults over `services`: kinds cycle through a fresh shuffle of
/// all seven for every seven faults (so any seven in a row cover every kind); targets,
/// sizes and changes are drawn from the seed. About 40 % of faults come with a real change
/// on the cause, 40 % with a decoy change on an unrelated service, 20 % with none.
///
/// # Example
///
/// ```
/// use epicenter_testbed::{faults::plan, topology::services};
/// let p = plan(1, 7, &services());
/// assert_eq!(p.len(), 7);
/// assert_eq!(p, plan(1, 7, &services()));
/// ```
pub fn plan(seed: u64, n: usize, services: &[ServiceSpec]) -> Vec<PlannedFault> {
    let mut rng = Rng::stream(seed, "fault-plan");
    let mut kinds = Vec::new();
    while kinds.len() < n {
        let mut block = FaultKind::ALL.to_vec();
        for i in (1..block.len()).rev() {
            block.swap(i, rng.below(i + 1));
        }
        kinds.extend(block);
    }
    kinds.truncate(n);
    // Every service with callers: the worker only consumes, so nothing calls it.
    let targets: Vec<&str> = services
        .iter()
        .map(|s| s.name.as_str())
        .filter(|s| *s != "worker")
        .collect();
    let two_instances: Vec<&str> = services
        .iter()
        .filter(|s| s.instances >= 2)
        .map(|s| s.name.as_str())
        .collect();
    let mut out = Vec::with_capacity(n);
    for (i, kind) in kinds.into_iter().enumerate() {
        let (cause, target, link, instance, size, unit, real) = match kind {
            FaultKind::CpuHog => {
                let t = *rng.pick(&targets);
                let size = (rng.range(0.75, 0.9) * 100.0).round() / 100.0;
                (
                    t,
                    t,
                    None,
                    None,
                    size,
                    "share of cpu time held",
                    "enable background re-indexing job".to_string(),
                )
            }
            FaultKind::Latency => {
                let t = *rng.pick(&targets);
                let size = rng.range(15.0, 40.0).round();
                (
                    t,
                    t,
                    None,
                    None,
                    size,
                    "ms added per request",
                    "deploy build with synchronous audit logging".to_string(),
                )
            }
            FaultKind::Errors => {
                let t = *rng.pick(&targets);
                let size = (rng.range(0.2, 0.5) * 100.0).round() / 100.0;
                (
                    t,
                    t,
                    None,
                    None,
                    size,
                    "share of requests failing",
                    "turn on feature flag new-serializer".to_string(),
                )
            }
            FaultKind::PoolExhaustion => {
                let (a, b) = *rng.pick(&POOL_LINKS);
                let pool = services
                    .iter()
                    .find(|s| s.name == a)
                    .map_or(8, |s| s.pool(b));
                (
                    a,
                    b,
                    Some(format!("{a}>{b}")),
                    None,
                    1.0,
                    "pool slots left",
                    format!("{b} connection pool {pool} -> 1"),
                )
            }
            FaultKind::ProxyDelay => {
                let (a, b) = *rng.pick(&PROXIED_LINKS);
                let size = rng.range(15.0, 40.0).round();
                (
                    a,
                    b,
                    Some(format!("{a}>{b}")),
                    None,
                    size,
                    "ms added per answer on the link",
                    format!("route {b} traffic through the inspection proxy"),
                )
            }
            FaultKind::KillInstance => {
                let t = *rng.pick(&two_instances);
                (
                    t,
                    t,
                    None,
                    Some(format!("{t}-2")),
                    1.0,
                    "instances killed",
                    format!("move {t}-2 to a new node"),
                )
            }
            FaultKind::RetryStorm => {
                let (a, b, _) = *rng.pick(&STORM_LINKS);
                let size = rng.range(3.0, 6.0).floor();
                (
                    a,
                    b,
                    Some(format!("{a}>{b}")),
                    None,
                    size,
                    "retries per call",
                    format!("retry policy towards {b}: {size} retries, no backoff, short timeout"),
                )
            }
        };
        let draw = rng.f64();
        let change = if draw < 0.4 {
            ChangePlan::Real { description: real }
        } else if draw < 0.8 {
            let others: Vec<&str> = targets
                .iter()
                .copied()
                .filter(|s| *s != cause && *s != target)
                .collect();
            ChangePlan::Decoy {
                service: rng.pick(&others).to_string(),
                description: rng.pick(&DECOYS).to_string(),
            }
        } else {
            ChangePlan::None
        };
        out.push(PlannedFault {
            id: i as u32 + 1,
            kind,
            cause: cause.to_string(),
            target: target.to_string(),
            link,
            instance,
            size,
            unit: unit.to_string(),
            change,
        });
    }
    out
}

/// What `labels.json` holds for each injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The fault as planned.
    #[serde(flatten)]
    pub fault: PlannedFault,
    /// When it was switched on, Unix seconds.
    pub start: f64,
    /// When it was switched off, Unix seconds.
    pub end: f64,
    /// The id Epicenter stored for the real change on the cause, if any.
    pub change_id: Option<i64>,
    /// The id Epicenter stored for a decoy change, if any.
    pub decoy_change_id: Option<i64>,
}

/// The whole `labels.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    /// The seed of the run.
    pub seed: u64,
    /// Bucket width, seconds.
    pub bucket_s: u64,
    /// When load started, Unix seconds.
    pub load_start: f64,
    /// The faults in order.
    pub faults: Vec<Label>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::services;

    #[test]
    fn the_plan_is_seeded_covers_every_kind_and_names_real_services() {
        let s = services();
        let a = plan(3, 14, &s);
        assert_eq!(a, plan(3, 14, &s));
        assert_ne!(a, plan(4, 14, &s));
        for block in a.chunks(7) {
            let mut kinds: Vec<FaultKind> = block.iter().map(|f| f.kind).collect();
            kinds.sort();
            assert_eq!(kinds, FaultKind::ALL.to_vec());
        }
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        for f in &a {
            assert!(names.contains(&f.cause.as_str()), "{f:?}");
            assert!(names.contains(&f.target.as_str()), "{f:?}");
            if let ChangePlan::Decoy { service, .. } = &f.change {
                assert_ne!(service, &f.cause);
                assert_ne!(service, &f.target);
            }
            match f.kind {
                FaultKind::ProxyDelay | FaultKind::PoolExhaustion | FaultKind::RetryStorm => {
                    let link = f.link.as_deref().unwrap();
                    assert_eq!(link, format!("{}>{}", f.cause, f.target));
                }
                FaultKind::KillInstance => {
                    assert_eq!(
                        f.instance.as_deref(),
                        Some(format!("{}-2", f.cause).as_str())
                    )
                }
                _ => assert_eq!(f.cause, f.target),
            }
            f.state().validate().unwrap();
        }
        // Over many faults, all three change plans occur.
        let many = plan(9, 70, &s);
        let real = many
            .iter()
            .filter(|f| matches!(f.change, ChangePlan::Real { .. }))
            .count();
        let decoy = many
            .iter()
            .filter(|f| matches!(f.change, ChangePlan::Decoy { .. }))
            .count();
        assert!(
            real > 10 && decoy > 10 && real + decoy < 70,
            "{real} {decoy}"
        );
    }

    #[test]
    fn fault_states_switch_on_what_the_kind_says() {
        let s = services();
        let p = plan(5, 7, &s);
        let storm = p.iter().find(|f| f.kind == FaultKind::RetryStorm).unwrap();
        let st = storm.state();
        let policy = st.retry.get(&storm.target).unwrap();
        assert_eq!(policy.retries, storm.size as u32);
        assert_eq!(policy.backoff_ms, 0.0);
        let pool = p
            .iter()
            .find(|f| f.kind == FaultKind::PoolExhaustion)
            .unwrap();
        assert_eq!(pool.state().pool_limit.get(&pool.target), Some(&1));
        let proxy = p.iter().find(|f| f.kind == FaultKind::ProxyDelay).unwrap();
        assert_eq!(proxy.state(), FaultState::default());
        let bad = FaultState {
            error_share: 1.5,
            ..FaultState::default()
        };
        assert!(bad.validate().unwrap_err().contains("error_share"));
    }
}
