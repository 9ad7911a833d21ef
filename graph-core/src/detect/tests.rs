//! Scenario tests of the whole detection tick: each filter, fallbacks, marks, bad input.

use crate::Error;
use crate::model::{
    BucketWidth, Cluster, ClusterCatalog, ClusterId, Counters, DAY, Direction, EdgeKey, Metric,
    Tick, WEEK,
};

use super::*;

/// A deterministic number in [-1, 1) for (seed, entity, tick).
pub(super) fn noise(seed: u64, entity: u64, tick: Tick) -> f64 {
    let mut z = seed
        ^ entity.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (tick as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Ordinary traffic: about 1000 requests, 10 errors and 50 ms, each with a little noise.
fn normal(entity: u64, t: Tick) -> Counters {
    let requests = (1000.0 * (1.0 + 0.02 * noise(1, entity, t))).round();
    let errors = (10.0 * (1.0 + 0.2 * noise(2, entity, t))).round();
    let latency = 50.0 * (1.0 + 0.02 * noise(3, entity, t));
    Counters {
        requests,
        errors,
        latency_ms_sum: requests * latency,
    }
}

/// `requests` calls at `latency` ms, `error_share` of them failing.
fn counters(requests: f64, error_share: f64, latency: f64) -> Counters {
    Counters {
        requests,
        errors: (requests * error_share).floor(),
        latency_ms_sum: requests * latency,
    }
}

fn with_latency(c: Counters, factor: f64) -> Counters {
    Counters {
        latency_ms_sum: c.latency_ms_sum * factor,
        ..c
    }
}

/// Traffic scaled by `factor`: requests, errors and total time alike.
fn with_requests(c: Counters, factor: f64) -> Counters {
    Counters {
        requests: (c.requests * factor).round(),
        errors: (c.errors * factor).round(),
        latency_ms_sum: c.latency_ms_sum * factor,
    }
}

struct Sim {
    catalog: ClusterCatalog,
    store: FrameStore,
    config: DetectConfig,
    marks: MarkContext,
    now: Tick,
}

impl Sim {
    fn new(width: BucketWidth) -> Self {
        Sim {
            catalog: ClusterCatalog::new(),
            store: FrameStore::new(width),
            config: DetectConfig::default(),
            marks: MarkContext::default(),
            now: 200 * WEEK,
        }
    }

    fn width(&self) -> i64 {
        self.store.bucket_width().seconds()
    }

    fn cluster(&mut self, name: &str, dc: Option<&str>) -> ClusterId {
        let service = dc.map_or(name, |d| {
            name.strip_suffix(&format!("-{d}")).unwrap_or(name)
        });
        self.catalog.insert(Cluster {
            name: name.into(),
            service: service.into(),
            dc: dc.map(Into::into),
            tier: None,
        })
    }

    fn edge(&mut self, src: &str, dst: &str) -> SeriesKey {
        let (src, dst) = (self.catalog.id(src).unwrap(), self.catalog.id(dst).unwrap());
        let key = SeriesKey::edge(EdgeKey { src, dst });
        self.store.add_entity(key);
        key
    }

    /// Every tick detection at `now` (and the `before` ticks just before it) may read.
    fn history_ticks(&self, before: i64) -> Vec<Tick> {
        let mut ticks: Vec<Tick> = (0..=before)
            .flat_map(|k| {
                self.config
                    .ticks_needed(self.now - k * self.width(), self.store.bucket_width())
            })
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        ticks
    }

    /// Fills the history of `key` with `f(entity, tick)`.
    fn fill(&mut self, key: SeriesKey, ticks: &[Tick], f: impl Fn(u64, Tick) -> Counters) {
        let e = self.store.entity(&key).unwrap();
        for &t in ticks {
            self.store.set(e, t, &f(e as u64, t)).unwrap();
        }
    }

    fn run_at(&self, tick: Tick) -> TickDetections {
        detect(tick, &self.store, &self.catalog, &self.config, &self.marks).unwrap()
    }

    fn run(&self) -> TickDetections {
        self.run_at(self.now)
    }

    /// Detects `tick` and writes its flags back, as the server does every tick.
    fn step(&mut self, tick: Tick) -> TickDetections {
        let r = self.run_at(tick);
        self.store.apply_flags(&r).unwrap();
        r
    }
}

/// A web cluster calling a single api cluster, with ordinary history.
fn one_edge() -> (Sim, SeriesKey) {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.cluster("web", None);
    sim.cluster("api", None);
    let key = sim.edge("web", "api");
    let ticks = sim.history_ticks(0);
    sim.fill(key, &ticks, normal);
    (sim, key)
}

fn set_now(sim: &mut Sim, key: SeriesKey, f: impl Fn(Counters) -> Counters) {
    let e = sim.store.entity(&key).unwrap();
    let now = sim.now;
    sim.store.set(e, now, &f(normal(e as u64, now))).unwrap();
}

fn metrics(list: &[Finding]) -> Vec<Metric> {
    list.iter().map(|f| f.metric).collect()
}

fn reasons(r: &TickDetections) -> Vec<(Metric, SuppressionReason)> {
    r.suppressed
        .iter()
        .map(|s| (s.finding.metric, s.reason.clone()))
        .collect()
}

#[test]
fn ordinary_traffic_gives_nothing() {
    let (sim, _) = one_edge();
    let r = sim.run();
    assert!(r.detections.is_empty() && r.suppressed.is_empty(), "{r:#?}");
    assert_eq!(r.summary.series, 4);
    assert_eq!(r.summary.tested, 4);
}

#[test]
fn a_latency_spike_is_reported_with_all_its_numbers() {
    let (mut sim, key) = one_edge();
    set_now(&mut sim, key, |c| with_latency(c, 3.0));
    let r = sim.run();
    assert_eq!(metrics(&r.detections), vec![Metric::Latency]);
    let d = &r.detections[0];
    assert_eq!(d.subject, Subject::Series { entity: 0, key });
    assert_eq!(
        d.baseline,
        BaselineUsed {
            kind: BaselineKind::Weekly,
            n: 30
        }
    );
    assert!((d.baseline_mean - 50.0).abs() < 1.0, "{}", d.baseline_mean);
    assert!(d.baseline_std_dev > 0.0 && d.baseline_std_dev < 1.0);
    assert!((d.value / d.expected - 3.0).abs() < 0.1);
    assert!(
        (d.g_crit - 2.7).abs() < 0.1,
        "one-sided, n = 31: {}",
        d.g_crit
    );
    assert!(d.g > d.g_crit);
    assert!((d.relative_deviation.unwrap() - 2.0).abs() < 0.1);
    assert_eq!(d.direction, Direction::Up);
    assert_eq!((d.onset, d.streak), (sim.now, 1));
    assert_eq!(d.severity.grade, 5);
    assert_eq!(
        r.flags_for(0, Metric::Latency),
        PointFlags::CANDIDATE | PointFlags::ANOMALOUS
    );
    assert_eq!(r.flags_for(0, Metric::Requests), PointFlags::EMPTY);
}

#[test]
fn direction_decides_which_changes_count() {
    let (mut sim, key) = one_edge();
    sim.config.persistence.enabled = false;
    set_now(&mut sim, key, |c| with_latency(with_requests(c, 0.3), 0.3));
    let r = sim.run();
    // Latency only counts upwards by default; requests count both ways.
    assert_eq!(metrics(&r.detections), vec![Metric::Requests]);
    assert_eq!(r.detections[0].direction, Direction::Down);
    sim.config.metrics.latency.direction = Direction::Both;
    assert_eq!(
        metrics(&sim.run().detections),
        vec![Metric::Latency, Metric::Requests]
    );
    sim.config.metrics.requests.direction = Direction::Up;
    assert_eq!(metrics(&sim.run().detections), vec![Metric::Latency]);
}

#[test]
fn small_deviations_are_suppressed_except_on_key_edges() {
    let (mut sim, key) = one_edge();
    sim.config.persistence.enabled = false;
    set_now(&mut sim, key, |c| with_latency(c, 1.12));
    let r = sim.run();
    assert!(r.detections.is_empty());
    assert_eq!(
        reasons(&r),
        vec![(
            Metric::Latency,
            SuppressionReason::SmallDeviation {
                min_relative: 0.2,
                min_absolute: 0.0
            }
        )]
    );
    assert_eq!(
        r.flags_for(0, Metric::Latency),
        PointFlags::EMPTY,
        "not a candidate"
    );

    sim.config.key_edges.push(KeyEdge {
        src: "web".into(),
        dst: "api".into(),
    });
    let r = sim.run();
    assert_eq!(metrics(&r.detections), vec![Metric::Latency]);
    assert!(r.detections[0].key_edge);
}

#[test]
fn a_few_errors_more_than_none_are_not_worth_reporting() {
    let (mut sim, key) = one_edge();
    let ticks = sim.history_ticks(0);
    sim.fill(key, &ticks, |e, t| Counters {
        errors: 0.0,
        ..normal(e, t)
    });
    set_now(&mut sim, key, |c| Counters { errors: 3.0, ..c });
    let r = sim.run();
    assert!(r.detections.iter().all(|d| d.metric != Metric::Errors));
    assert!(reasons(&r).contains(&(
        Metric::Errors,
        SuppressionReason::SmallDeviation {
            min_relative: 0.5,
            min_absolute: 5.0
        }
    )));
    // 40 errors against none: no relative deviation, a large jump, reported at once.
    set_now(&mut sim, key, |c| Counters { errors: 40.0, ..c });
    let r = sim.run();
    let errors: Vec<&Finding> = r
        .detections
        .iter()
        .filter(|d| d.metric == Metric::Errors)
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].relative_deviation, None);
    assert_eq!(errors[0].severity.grade, 5);
}

#[test]
fn a_noisy_series_is_reported_after_a_streak_and_a_large_jump_at_once() {
    let (mut sim, key) = one_edge();
    let ticks = sim.history_ticks(2);
    sim.fill(key, &ticks, normal);
    let w = sim.width();
    let e = sim.store.entity(&key).unwrap();
    for k in 0..3 {
        let t = sim.now - k * w;
        sim.store
            .set(e, t, &with_latency(normal(e as u64, t), 1.5))
            .unwrap();
    }
    let first = sim.step(sim.now - 2 * w);
    assert!(first.detections.is_empty());
    assert_eq!(
        reasons(&first),
        vec![(
            Metric::Latency,
            SuppressionReason::Persistence {
                streak: 1,
                required: 3
            }
        )]
    );
    assert_eq!(first.flags_for(e, Metric::Latency), PointFlags::CANDIDATE);
    let second = sim.step(sim.now - w);
    assert_eq!(
        reasons(&second),
        vec![(
            Metric::Latency,
            SuppressionReason::Persistence {
                streak: 2,
                required: 3
            }
        )]
    );
    let third = sim.step(sim.now);
    assert_eq!(metrics(&third.detections), vec![Metric::Latency]);
    assert_eq!(
        (third.detections[0].streak, third.detections[0].onset),
        (3, sim.now - 2 * w)
    );

    // Without the filter the first tick is reported.
    sim.config.persistence.enabled = false;
    assert_eq!(
        metrics(&sim.run_at(sim.now - 2 * w).detections),
        vec![Metric::Latency]
    );

    // A large jump (>= 100 % by default) needs no streak.
    sim.config.persistence.enabled = true;
    let (mut sim, key) = one_edge();
    set_now(&mut sim, key, |c| with_latency(c, 2.5));
    assert_eq!(metrics(&sim.run().detections), vec![Metric::Latency]);
}

/// Web (one cluster) calling api, split over two data centres.
fn split_service() -> (Sim, SeriesKey, SeriesKey) {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.cluster("web", None);
    sim.cluster("api-dc1", Some("dc1"));
    sim.cluster("api-dc2", Some("dc2"));
    let a = sim.edge("web", "api-dc1");
    let b = sim.edge("web", "api-dc2");
    let ticks = sim.history_ticks(0);
    sim.fill(a, &ticks, normal);
    sim.fill(b, &ticks, normal);
    (sim, a, b)
}

#[test]
fn maintenance_mode_tests_the_sum_of_the_data_centre_parts() {
    let (mut sim, a, b) = split_service();
    // Rolling update: api-dc1 leaves rotation, api-dc2 takes all the traffic.
    set_now(&mut sim, a, |_| Counters {
        requests: 0.0,
        errors: 0.0,
        latency_ms_sum: 0.0,
    });
    set_now(&mut sim, b, |c| with_requests(c, 2.0));

    let per_part = sim.run();
    let flagged: Vec<(u32, Metric)> = per_part
        .detections
        .iter()
        .map(|d| (d.subject.entities()[0], d.metric))
        .collect();
    assert!(
        flagged.contains(&(0, Metric::Requests)) && flagged.contains(&(1, Metric::Requests)),
        "{flagged:?}"
    );

    sim.config.maintenance.enabled = true;
    let r = sim.run();
    assert!(r.detections.is_empty(), "{:#?}", r.detections);
    // What the per-part test would have flagged is reported as hidden by maintenance.
    let hidden: Vec<(u32, Metric)> = r
        .suppressed
        .iter()
        .filter(|s| s.reason == SuppressionReason::Maintenance)
        .map(|s| (s.finding.subject.entities()[0], s.finding.metric))
        .collect();
    assert!(
        hidden.contains(&(0, Metric::Requests)) && hidden.contains(&(1, Metric::Requests)),
        "{hidden:?}"
    );
    assert_eq!(hidden.len(), r.suppressed.len());
    // The sum is what was tested: 4 series, no missing latency for the empty part.
    assert_eq!(r.summary.series, 4);
    assert!(r.missing.is_empty());

    // A real drop of the whole service still shows, as one combined detection.
    set_now(&mut sim, b, |c| with_requests(c, 0.2));
    let r = sim.run();
    assert_eq!(r.detections.len(), 1);
    let d = &r.detections[0];
    assert_eq!(d.metric, Metric::Requests);
    let Subject::Combined {
        src, dst, parts, ..
    } = &d.subject
    else {
        panic!("{:?}", d.subject)
    };
    assert_eq!(
        (src, dst, parts),
        (
            &Endpoint::Cluster {
                cluster: ClusterId(0)
            },
            &Endpoint::Service {
                service: "api".into()
            },
            &vec![0, 1]
        )
    );
    // Both parts carry the combined series' flags.
    assert!(
        r.flags_for(0, Metric::Requests)
            .contains(PointFlags::ANOMALOUS)
    );
    assert!(
        r.flags_for(1, Metric::Requests)
            .contains(PointFlags::ANOMALOUS)
    );
}

/// Ten data-centre-1 edges and four data-centre-2 edges, ordinary history.
fn two_data_centres() -> (Sim, Vec<SeriesKey>) {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    for i in 0..5 {
        sim.cluster(&format!("s{i}-dc1"), Some("dc1"));
        sim.cluster(&format!("s{i}-dc2"), Some("dc2"));
    }
    let mut keys = Vec::new();
    for (a, b) in [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 0),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 0),
        (4, 1),
    ] {
        keys.push(sim.edge(&format!("s{a}-dc1"), &format!("s{b}-dc1")));
    }
    for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
        keys.push(sim.edge(&format!("s{a}-dc2"), &format!("s{b}-dc2")));
    }
    let ticks = sim.history_ticks(0);
    for k in &keys {
        sim.fill(*k, &ticks, normal);
    }
    (sim, keys)
}

#[test]
fn a_storm_collapses_into_one_data_centre_event() {
    let (mut sim, keys) = two_data_centres();
    for k in &keys[..6] {
        set_now(&mut sim, *k, |c| with_latency(c, 2.5));
    }
    // And one dc2 edge slows down on its own.
    set_now(&mut sim, keys[12], |c| with_latency(c, 2.5));
    let r = sim.run();
    assert_eq!(
        r.storms,
        vec![DcStorm {
            dc: "dc1".into(),
            tick: sim.now,
            edges_affected: 6,
            edges_total: 10,
            share: 0.6
        }]
    );
    assert_eq!(r.detections.len(), 1);
    assert_eq!(r.detections[0].subject.entities(), &[12]);
    let storm = SuppressionReason::Storm { dc: "dc1".into() };
    assert_eq!(r.suppressed.iter().filter(|s| s.reason == storm).count(), 6);
    assert_eq!(
        r.flags_for(0, Metric::Latency),
        PointFlags::CANDIDATE | PointFlags::STORM
    );

    sim.config.storm.enabled = false;
    let r = sim.run();
    assert!(r.storms.is_empty());
    assert_eq!(r.detections.len(), 7);
}

#[test]
fn a_few_slow_edges_are_not_a_storm() {
    let (mut sim, keys) = two_data_centres();
    for k in &keys[..2] {
        set_now(&mut sim, *k, |c| with_latency(c, 2.5));
    }
    let r = sim.run();
    assert!(r.storms.is_empty());
    assert_eq!(r.detections.len(), 2);
}

/// Twenty edges and a site activity series, all ordinary.
fn site_with_activity() -> (Sim, Vec<SeriesKey>) {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.cluster("web", None);
    let mut keys = Vec::new();
    for i in 0..20 {
        sim.cluster(&format!("svc{i}"), None);
        keys.push(sim.edge("web", &format!("svc{i}")));
    }
    let ticks = sim.history_ticks(0);
    for k in &keys {
        sim.fill(*k, &ticks, normal);
    }
    for &t in &ticks {
        sim.store
            .set_activity(t, 50_000.0 * (1.0 + 0.01 * noise(9, 0, t)))
            .unwrap();
    }
    sim.config.persistence.enabled = false;
    (sim, keys)
}

#[test]
fn a_site_wide_holiday_dip_is_not_hundreds_of_anomalies() {
    let (mut sim, keys) = site_with_activity();
    let now = sim.now;
    sim.store.set_activity(now, 40_000.0).unwrap();
    for k in &keys {
        set_now(&mut sim, *k, |c| with_requests(c, 0.8));
    }
    // One service really loses most of its traffic on top of the holiday.
    set_now(&mut sim, keys[7], |c| with_requests(c, 0.3));

    let r = sim.run();
    let a = r.activity.as_ref().unwrap();
    assert!((a.ratio - 0.8).abs() < 0.01, "{a:?}");
    assert_eq!(a.baseline.kind, BaselineKind::Weekly);
    assert_eq!(r.detections.len(), 1, "{:#?}", r.detections);
    assert_eq!(r.detections[0].subject.entities(), &[7]);
    assert_eq!(r.detections[0].activity_ratio, Some(a.ratio));
    assert_eq!(
        r.suppressed
            .iter()
            .filter(|s| matches!(s.reason, SuppressionReason::Activity { .. }))
            .count(),
        19
    );

    sim.config.activity.enabled = false;
    let r = sim.run();
    assert!(r.activity.is_none());
    assert_eq!(r.detections.len(), 20);
}

#[test]
fn activity_is_clamped_and_ignored_when_unknown() {
    let (mut sim, _) = site_with_activity();
    let now = sim.now;
    sim.store.set_activity(now, 1.0).unwrap();
    let a = sim.run().activity.unwrap();
    assert!(a.raw_ratio < 0.001);
    assert_eq!(a.ratio, 0.25);
    sim.store.set_activity(now, f64::NAN).unwrap();
    assert!(sim.run().activity.is_none());
}

#[test]
fn missing_and_unusable_current_values_are_reported_as_missing() {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    for n in ["a", "b", "c", "d"] {
        sim.cluster(n, None);
    }
    let gap = sim.edge("a", "b");
    let idle = sim.edge("a", "c");
    let broken = sim.edge("a", "d");
    let ticks: Vec<Tick> = sim
        .history_ticks(0)
        .into_iter()
        .filter(|&t| t != sim.now)
        .collect();
    for k in [gap, idle, broken] {
        sim.fill(k, &ticks, normal);
    }
    set_now(&mut sim, idle, |_| Counters::default());
    set_now(&mut sim, broken, |c| Counters {
        latency_ms_sum: f64::INFINITY,
        ..c
    });
    let r = sim.run();
    let missing: Vec<(u32, Metric, MissingReason)> = r
        .missing
        .iter()
        .map(|m| (m.subject.entities()[0], m.metric, m.reason))
        .collect();
    use MissingReason::*;
    assert_eq!(
        missing,
        vec![
            (0, Metric::Latency, NoData),
            (0, Metric::Requests, NoData),
            (0, Metric::Errors, NoData),
            (0, Metric::ErrorRate, NoData),
            (1, Metric::Latency, NoRequests),
            (1, Metric::ErrorRate, NoRequests),
            (2, Metric::Latency, Invalid),
            (2, Metric::Requests, Invalid),
            (2, Metric::Errors, Invalid),
            (2, Metric::ErrorRate, Invalid),
        ]
    );
    // Zero requests where a thousand are usual is a real drop, not missing data.
    assert_eq!(metrics(&r.detections), vec![Metric::Requests]);
    assert_eq!(r.detections[0].subject.entities(), &[1]);
}

#[test]
fn gaps_zeros_and_garbage_in_the_baseline_only_shrink_it() {
    let (mut sim, key) = one_edge();
    let e = sim.store.entity(&key).unwrap();
    let now = sim.now;
    // Weekly buckets: 6 weeks x 5; spoil 12 of them in different ways.
    let spoiled: Vec<Tick> = (1..=6)
        .flat_map(|w| [now - w * WEEK - 600, now - w * WEEK + 300])
        .collect();
    for (i, &t) in spoiled.iter().enumerate() {
        let c = match i % 3 {
            0 => Counters {
                requests: f64::NAN,
                errors: 0.0,
                latency_ms_sum: 1.0,
            },
            1 => Counters {
                requests: 1.0,
                errors: 0.0,
                latency_ms_sum: f64::INFINITY,
            },
            _ => Counters {
                requests: -5.0,
                errors: 0.0,
                latency_ms_sum: 0.0,
            },
        };
        sim.store.set(e, t, &c).unwrap();
    }
    set_now(&mut sim, key, |c| with_latency(c, 3.0));
    let r = sim.run();
    assert_eq!(
        r.detections[0].baseline,
        BaselineUsed {
            kind: BaselineKind::Weekly,
            n: 18
        }
    );
    assert!((r.detections[0].baseline_mean - 50.0).abs() < 1.0);
}

#[test]
fn a_single_point_of_history_is_insufficient_not_an_anomaly() {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.cluster("a", None);
    sim.cluster("b", None);
    let key = sim.edge("a", "b");
    let now = sim.now;
    sim.fill(key, &[now - WEEK, now], |e, t| {
        if t == now {
            with_latency(normal(e, t), 10.0)
        } else {
            normal(e, t)
        }
    });
    let r = sim.run();
    assert!(r.detections.is_empty() && r.suppressed.is_empty());
    assert_eq!(r.insufficient.len(), 4);
    let i = &r.insufficient[0];
    assert_eq!(
        (i.metric, i.weekly, i.daily, i.trailing),
        (Metric::Latency, 1, 1, 0)
    );
    assert_eq!(r.summary.insufficient, 4);
    assert_eq!(r.summary.tested, 0);
}

#[test]
fn an_empty_view_and_a_missing_tick_give_clear_results() {
    let sim = Sim::new(BucketWidth::FIVE_MINUTES);
    let r = sim.run();
    assert_eq!(r.summary, Summary::default());
    let (mut sim, _) = one_edge();
    sim.now += 7 * DAY + 300; // a tick without any data
    let r = sim.run();
    assert_eq!(r.missing.len(), 4);
    assert!(r.missing.iter().all(|m| m.reason == MissingReason::NoData));
}

#[test]
fn baselines_fall_back_from_weekly_to_daily_to_trailing() {
    let kind_of = |sim: &Sim| {
        let r = sim.run();
        assert_eq!(metrics(&r.detections), vec![Metric::Latency], "{r:#?}");
        r.detections[0].baseline
    };
    let setup = |keep: &dyn Fn(Tick, Tick) -> bool| {
        let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
        sim.cluster("a", None);
        sim.cluster("b", None);
        let key = sim.edge("a", "b");
        let now = sim.now;
        let ticks: Vec<Tick> = sim
            .history_ticks(0)
            .into_iter()
            .filter(|&t| t == now || keep(now, t))
            .collect();
        sim.fill(key, &ticks, normal);
        set_now(&mut sim, key, |c| with_latency(c, 3.0));
        sim
    };
    // Six weeks of history.
    assert_eq!(
        kind_of(&setup(&|_, _| true)),
        BaselineUsed {
            kind: BaselineKind::Weekly,
            n: 30
        }
    );
    // One week: 5 weekly values are too few (10 needed); the last 7 days give 35.
    assert_eq!(
        kind_of(&setup(&|now, t| t >= now - WEEK - 600)),
        BaselineUsed {
            kind: BaselineKind::Daily,
            n: 35
        }
    );
    // Two weeks: 10 weekly values are enough.
    assert_eq!(
        kind_of(&setup(&|now, t| t >= now - 2 * WEEK - 600)),
        BaselineUsed {
            kind: BaselineKind::Weekly,
            n: 10
        }
    );
    // Three hours: the trailing window (2 hours = 24 buckets).
    assert_eq!(
        kind_of(&setup(&|now, t| t >= now - 3 * 3600)),
        BaselineUsed {
            kind: BaselineKind::Trailing,
            n: 24
        }
    );
    // Forty minutes: 8 trailing values, just enough.
    assert_eq!(
        kind_of(&setup(&|now, t| t >= now - 2400)),
        BaselineUsed {
            kind: BaselineKind::Trailing,
            n: 8
        }
    );
}

#[test]
fn the_trailing_baseline_leaves_out_the_current_episode() {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.config.persistence.enabled = false;
    sim.cluster("a", None);
    sim.cluster("b", None);
    let key = sim.edge("a", "b");
    let now = sim.now;
    let w = sim.width();
    let ticks: Vec<Tick> = sim
        .history_ticks(3)
        .into_iter()
        .filter(|&t| t >= now - 4 * 3600)
        .collect();
    // A step up 3 buckets ago that persists.
    sim.fill(key, &ticks, |e, t| {
        if t >= now - 3 * w {
            with_latency(normal(e, t), 3.0)
        } else {
            normal(e, t)
        }
    });
    for k in (0..=3).rev() {
        let r = sim.step(now - k * w);
        assert_eq!(metrics(&r.detections), vec![Metric::Latency], "tick -{k}");
        assert_eq!(r.detections[0].baseline.kind, BaselineKind::Trailing);
        assert!(
            (r.detections[0].baseline_mean - 50.0).abs() < 1.0,
            "the episode stays out of the baseline"
        );
    }
}

#[test]
fn a_new_trend_rebaselines_on_data_after_its_start() {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.config.persistence.enabled = false;
    sim.cluster("a", None);
    sim.cluster("b", None);
    let key = sim.edge("a", "b");
    let now = sim.now;
    let release = now - 3 * 3600;
    let ticks = sim.history_ticks(0);
    // A release three hours ago doubled latency for good.
    sim.fill(key, &ticks, |e, t| {
        if t >= release {
            with_latency(normal(e, t), 2.0)
        } else {
            normal(e, t)
        }
    });
    let r = sim.run();
    assert_eq!(metrics(&r.detections), vec![Metric::Latency]);

    sim.marks.trend_starts.push(TrendStart {
        scope: Scope::Edge { edge: key.edge },
        metric: None,
        start: release,
    });
    let r = sim.run();
    assert!(r.detections.is_empty() && r.suppressed.is_empty(), "{r:#?}");
    // And a further rise is measured against the new level.
    set_now(&mut sim, key, |c| with_latency(c, 6.0));
    let r = sim.run();
    assert_eq!(metrics(&r.detections), vec![Metric::Latency]);
    let d = &r.detections[0];
    assert_eq!(
        d.baseline,
        BaselineUsed {
            kind: BaselineKind::Trailing,
            n: 24
        }
    );
    assert!((d.baseline_mean - 100.0).abs() < 2.0);
    assert!((d.relative_deviation.unwrap() - 2.0).abs() < 0.1);
}

#[test]
fn one_minute_buckets_work() {
    let mut sim = Sim::new(BucketWidth::ONE_MINUTE);
    sim.cluster("a", None);
    sim.cluster("b", None);
    let key = sim.edge("a", "b");
    let ticks = sim.history_ticks(0);
    sim.fill(key, &ticks, normal);
    assert!(sim.run().detections.is_empty());
    set_now(&mut sim, key, |c| with_latency(c, 3.0));
    let r = sim.run();
    assert_eq!(metrics(&r.detections), vec![Metric::Latency]);
    assert_eq!(
        r.detections[0].baseline,
        BaselineUsed {
            kind: BaselineKind::Weekly,
            n: 30
        }
    );
    assert_eq!(r.bucket_width, BucketWidth::ONE_MINUTE);
}

#[test]
fn bad_input_is_an_error_that_says_what_is_wrong() {
    let (mut sim, _) = one_edge();
    let err = detect(
        sim.now + 1,
        &sim.store,
        &sim.catalog,
        &sim.config,
        &sim.marks,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("bucket width")),
        "{err}"
    );
    sim.config.alpha = 2.0;
    assert!(matches!(
        sim.config.validate(),
        Err(Error::InvalidConfig { .. })
    ));
    let err = detect(sim.now, &sim.store, &sim.catalog, &sim.config, &sim.marks).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: alpha: 2 is outside (0, 0.5]"
    );
}

#[test]
fn disabled_metrics_are_not_considered() {
    let (mut sim, key) = one_edge();
    set_now(&mut sim, key, |c| with_latency(c, 3.0));
    sim.config.metrics.latency.enabled = false;
    let r = sim.run();
    assert!(r.detections.is_empty());
    assert_eq!(r.summary.series, 3);
}

#[test]
fn flags_written_back_keep_an_anomaly_out_of_next_weeks_baseline() {
    let (mut sim, key) = one_edge();
    set_now(&mut sim, key, |c| with_latency(c, 20.0));
    let first = sim.step(sim.now);
    assert_eq!(metrics(&first.detections), vec![Metric::Latency]);
    let e = sim.store.entity(&key).unwrap();
    assert_eq!(
        sim.store.flags(e, Metric::Latency, sim.now),
        PointFlags::CANDIDATE | PointFlags::ANOMALOUS
    );

    // A week later: the anomalous point sits in the baseline but is left out.
    sim.now += WEEK;
    let ticks = sim.history_ticks(0);
    let then = sim.now - WEEK;
    sim.fill(
        key,
        &ticks
            .iter()
            .copied()
            .filter(|&t| t != then)
            .collect::<Vec<_>>(),
        normal,
    );
    set_now(&mut sim, key, |c| with_latency(c, 3.0));
    let d = &sim.run().detections[0];
    assert_eq!(d.baseline.n, 29);
    assert!((d.baseline_mean - 50.0).abs() < 1.0, "{}", d.baseline_mean);
}

#[test]
fn results_round_trip_through_json() {
    let (mut sim, keys) = two_data_centres();
    for k in &keys[..6] {
        set_now(&mut sim, *k, |c| with_latency(c, 2.5));
    }
    set_now(&mut sim, keys[12], |c| with_requests(c, 0.1));
    let r = sim.run();
    let json = serde_json::to_string(&r).unwrap();
    let back: TickDetections = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert_eq!(
        back.flags_for(12, Metric::Requests),
        r.flags_for(12, Metric::Requests)
    );
}

#[test]
fn the_json_shape_of_a_detection_is_stable() {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.cluster("web", None);
    sim.cluster("api", None);
    let key = sim.edge("web", "api");
    let ticks = sim.history_ticks(0);
    // Round numbers: latency alternates 40/60 ms through the baseline, then 200 ms.
    sim.fill(key, &ticks, |_, t| {
        let latency = if t == 200 * WEEK {
            200.0
        } else if (t / 300) % 2 == 0 {
            40.0
        } else {
            60.0
        };
        Counters {
            requests: 100.0,
            errors: 1.0,
            latency_ms_sum: 100.0 * latency,
        }
    });
    let mut json = serde_json::to_value(sim.run()).unwrap();
    round_floats(&mut json);
    insta::assert_json_snapshot!(json);
}

/// Rounds every non-integer number to 6 decimals, so the snapshot does not depend on
/// the last bits of a platform's floating point.
fn round_floats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = (n.as_f64().unwrap() * 1e6).round() / 1e6;
            *v = serde_json::json!(x);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(round_floats),
        serde_json::Value::Object(o) => o.values_mut().for_each(round_floats),
        _ => {}
    }
}

mod props {
    use proptest::prelude::*;

    use super::*;

    /// Three edges whose history is `f(entity, tick)` over every tick detection reads.
    fn sim_with(width: BucketWidth, f: impl Fn(u64, Tick) -> Counters) -> Sim {
        let mut sim = Sim::new(width);
        for n in ["a", "b", "c"] {
            sim.cluster(n, None);
        }
        let keys = [sim.edge("a", "b"), sim.edge("b", "c"), sim.edge("a", "c")];
        let ticks = sim.history_ticks(0);
        for k in keys {
            sim.fill(k, &ticks, &f);
        }
        sim
    }

    fn width(one_minute: bool) -> BucketWidth {
        if one_minute {
            BucketWidth::ONE_MINUTE
        } else {
            BucketWidth::FIVE_MINUTES
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn a_constant_series_never_flags(
            requests in 0u32..200_000, error_share in 0.0f64..=1.0, latency in 0.0f64..30_000.0,
            one_minute: bool, alpha in 0.001f64..0.5,
        ) {
            let mut sim = sim_with(width(one_minute), |_, _| counters(f64::from(requests), error_share, latency));
            sim.config.alpha = alpha;
            let r = sim.run();
            prop_assert!(r.detections.is_empty() && r.suppressed.is_empty(), "{:#?}", r);
            prop_assert_eq!(r.summary.insufficient, 0);
        }

        #[test]
        fn a_weekly_periodic_series_never_flags(
            seed: u64, level in 1.0f64..1e5, swing in 0.0f64..0.95, one_minute: bool, alpha in 0.001f64..0.5,
        ) {
            // Any shape at all, as long as it repeats every week.
            let shape = |e: u64, t: Tick, s: u64| 1.0 + swing * noise(seed ^ s, e, t.rem_euclid(WEEK));
            let mut sim = sim_with(width(one_minute), |e, t| {
                counters((level * shape(e, t, 1)).round(), 0.02 * shape(e, t, 2), 50.0 * shape(e, t, 3))
            });
            sim.config.alpha = alpha;
            let r = sim.run();
            prop_assert!(r.detections.is_empty() && r.suppressed.is_empty(), "{:#?}", r);
        }

        #[test]
        fn scaling_every_counter_changes_no_flag(
            seed: u64, noise_level in 0.0f64..0.5, spikes in prop::collection::vec((0usize..3, 0.0f64..5.0), 0..4),
            exponent in -8i32..=12,
        ) {
            // Powers of two scale exactly in binary floating point, so the property holds
            // exactly rather than up to a last-bit rounding that could tip a borderline test.
            let scale = 2f64.powi(exponent);
            let now = 200 * WEEK;
            let spikes = &spikes;
            let history = |factor: f64| move |e: u64, t: Tick| {
                let n = |s: u64| 1.0 + noise_level * noise(seed ^ s, e, t);
                let mut c = counters((1000.0 * n(1)).round(), 0.01 * n(2), 40.0 * n(3));
                if t == now {
                    for &(entity, jump) in spikes {
                        if entity as u64 == e {
                            c = Counters { latency_ms_sum: c.latency_ms_sum * (1.0 + jump), requests: (c.requests / (1.0 + jump)).round(), ..c };
                        }
                    }
                }
                Counters { requests: c.requests * factor, errors: c.errors * factor, latency_ms_sum: c.latency_ms_sum * factor }
            };
            let mut plain = sim_with(BucketWidth::FIVE_MINUTES, history(1.0));
            let mut scaled = sim_with(BucketWidth::FIVE_MINUTES, history(scale));
            for sim in [&mut plain, &mut scaled] {
                // An absolute floor in errors is the one setting that is not scale-free.
                sim.config.metrics.errors.min_absolute_deviation = 0.0;
            }
            let (a, b) = (plain.run(), scaled.run());
            prop_assert_eq!(a.flag_points(), b.flag_points());
            let kinds = |r: &TickDetections| -> Vec<(Subject, Metric, String)> {
                r.detections.iter().map(|d| (d.subject.clone(), d.metric, "anomaly".to_string()))
                    .chain(r.suppressed.iter().map(|s| (s.finding.subject.clone(), s.finding.metric, format!("{:?}", s.reason))))
                    .collect()
            };
            prop_assert_eq!(kinds(&a), kinds(&b));
        }

        #[test]
        fn a_spike_of_many_standard_deviations_always_flags(
            seed: u64, level in 1.0f64..10_000.0, noise_level in 0.0f64..0.4, sds in 10.0f64..1_000.0,
        ) {
            let mut sim = sim_with(BucketWidth::FIVE_MINUTES, |e, t| {
                counters(100.0, 0.0, level * (1.0 + noise_level * noise(seed, e, t)))
            });
            let now = sim.now;
            let baseline: Vec<f64> = (1..=6)
                .flat_map(|w| (-2..=2).map(move |j| now - w * WEEK + j * 300))
                .filter_map(|t| sim.store.counters(0, t)?.metric(Metric::Latency))
                .collect();
            prop_assert_eq!(baseline.len(), 30);
            let stats = SampleStats::from_values(&baseline).unwrap();
            // Many standard deviations, and well over a doubling (the large-jump
            // threshold) so that no streak is needed.
            let spike = stats.mean() + (sds * stats.std_dev()).max(1.5 * stats.mean());
            sim.store.set(0, now, &counters(100.0, 0.0, spike)).unwrap();
            let r = sim.run();
            prop_assert!(r.detections.iter().any(|d| d.subject.entities() == [0] && d.metric == Metric::Latency), "{:#?}", r);
        }

        #[test]
        fn an_excluded_point_has_no_influence_at_all(
            seed: u64, week in 1i64..=6, offset in -2i64..=2, how in 0u8..4, huge in 10.0f64..1e6,
        ) {
            let now = 200 * WEEK;
            let excluded_tick = now - week * WEEK + offset * 300;
            let run = |value_there: f64| {
                let mut sim = sim_with(BucketWidth::FIVE_MINUTES, |e, t| {
                    let latency = if t == now { 400.0 } else { 40.0 * (1.0 + 0.05 * noise(seed, e, t)) };
                    counters(100.0, 0.01, latency)
                });
                sim.store.set(0, excluded_tick, &counters(100.0, 0.01, value_there)).unwrap();
                let window = |scope| ExclusionWindow { scope, metric: Some(Metric::Latency), from: excluded_tick, to: excluded_tick + 300 };
                match how {
                    0 => sim.store.set_flags(0, Metric::Latency, excluded_tick, PointFlags::ANOMALOUS).unwrap(),
                    1 => sim.marks.exclusions.push(window(Scope::Site)),
                    2 => sim.marks.exclusions.push(window(Scope::Series { key: sim.store.entities()[0] })),
                    _ => sim.marks.trend_starts.push(TrendStart { scope: Scope::Cluster { cluster: ClusterId(0) }, metric: None, start: excluded_tick + 300 }),
                }
                sim.run()
            };
            let ordinary = run(40.0);
            let wild = run(40.0 * huge);
            prop_assert_eq!(&ordinary, &wild);
            let d = ordinary.detections.iter().find(|d| d.subject.entities() == [0] && d.metric == Metric::Latency).unwrap();
            if how < 3 {
                prop_assert_eq!(d.baseline, BaselineUsed { kind: BaselineKind::Weekly, n: 29 });
            }
        }
    }
}

/// web → api → db, api spending `own(t)` ms of its own per request on top of one call
/// to db, whose latency swings ±30 % around 40 ms: the call into api is 50 ms give or
/// take 12, mostly db's doing. No persistence filter: one tick tells.
fn callee_with_noisy_downstream(own: impl Fn(Tick) -> f64) -> (Sim, SeriesKey, SeriesKey) {
    let mut sim = Sim::new(BucketWidth::FIVE_MINUTES);
    sim.config.persistence.enabled = false;
    for c in ["web", "api", "db"] {
        sim.cluster(c, None);
    }
    let into_api = sim.edge("web", "api");
    let into_db = sim.edge("api", "db");
    let ticks = sim.history_ticks(0);
    let db = |t: Tick| 40.0 * (1.0 + 0.3 * noise(7, 1, t));
    let own = |t: Tick| own(t) * (1.0 + 0.02 * noise(8, 0, t));
    sim.fill(into_api, &ticks, |_, t| {
        counters(100.0, 0.0, own(t) + db(t))
    });
    sim.fill(into_db, &ticks, |_, t| counters(100.0, 0.0, db(t)));
    (sim, into_api, into_db)
}

#[test]
fn a_callee_slower_by_itself_is_found_on_its_own_time() {
    let (mut sim, into_api, _) = callee_with_noisy_downstream(|_| 10.0);
    let now = sim.now;
    let api = sim.store.entity(&into_api).unwrap();
    // api's own part grows from 10 to 25 ms; db happens to be at its usual 40 ms.
    let db_now = 40.0;
    sim.store
        .set(api, now, &counters(100.0, 0.0, 25.0 + db_now))
        .unwrap();
    sim.store
        .set(1, now, &counters(100.0, 0.0, db_now))
        .unwrap();

    let r = sim.run();
    assert_eq!(metrics(&r.detections), vec![Metric::Latency], "{r:#?}");
    let d = &r.detections[0];
    assert_eq!(d.subject.entities(), [api as u32]);
    let own = d.own_time.expect("found on the own time");
    assert!((own.own_ms - 25.0).abs() < 1e-9 && (own.downstream_ms - 40.0).abs() < 1e-9);
    assert!((d.baseline_mean - 10.0).abs() < 0.5, "{}", d.baseline_mean);
    assert!(
        (d.expected - 50.0).abs() < 0.5,
        "usual own time plus today's downstream"
    );
    assert!(d.g > d.g_crit);
    let e = r.expectation(api).unwrap();
    assert_eq!(e.get(Metric::Latency).map(|x| x.0), Some(d.expected));
    assert_eq!(
        r.flags_for(api, Metric::Latency),
        PointFlags::CANDIDATE | PointFlags::ANOMALOUS
    );

    // db's 40 ms are 62 % of the call's 65: with a 70 % minimum, not tested again.
    sim.config.own_time.min_downstream_share = 0.7;
    assert!(sim.run().detections.is_empty());

    // The latency of the call alone is within db's ordinary swings.
    sim.config.own_time.min_downstream_share = 0.5;
    sim.config.own_time.enabled = false;
    let plain = sim.run();
    assert!(plain.detections.is_empty(), "{plain:#?}");
}

#[test]
fn a_slower_downstream_call_is_not_the_callees_own_time() {
    let (mut sim, into_api, into_db) = callee_with_noisy_downstream(|_| 10.0);
    let now = sim.now;
    let (api, db) = (
        sim.store.entity(&into_api).unwrap(),
        sim.store.entity(&into_db).unwrap(),
    );
    // db slows down by 30 ms and api passes it on.
    sim.store
        .set(api, now, &counters(100.0, 0.0, 10.0 + 70.0))
        .unwrap();
    sim.store.set(db, now, &counters(100.0, 0.0, 70.0)).unwrap();
    let r = sim.run();
    assert!(r.detections.iter().all(|d| d.own_time.is_none()), "{r:#?}");
    assert!(
        r.detections
            .iter()
            .any(|d| d.subject.entities() == [db as u32] && d.metric == Metric::Latency)
    );

    // db fails fast instead, and api hides the failures behind a fallback as slow as
    // the call was: its own time seems to jump, but what it calls is failing.
    sim.store
        .set(api, now, &counters(100.0, 0.0, 50.0))
        .unwrap();
    sim.store.set(db, now, &counters(100.0, 0.6, 1.0)).unwrap();
    let r = sim.run();
    assert!(r.detections.iter().all(|d| d.own_time.is_none()), "{r:#?}");
}
