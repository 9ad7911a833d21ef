//! One detection tick: [`detect`].

use crate::model::{ClusterCatalog, Direction, Metric, Tick};
use crate::{Error, Result};

use super::activity::{activity_adjustment, scales_with_activity};
use super::baseline::{Choice, Slot, Slots, TrailingLimits, choose, gather_derived, read};
use super::config::DetectConfig;
use super::deviation::{KeyEdges, relative_deviation, small_deviation};
use super::grubbs::{CriticalValues, SampleStats};
use super::maintenance::{Plan, Subjects, plan_subjects};
use super::marks::{MarkContext, ResolvedMarks};
use super::missing::current_value;
use super::own::{clusters_with_calls, downstream_table};
use super::persistence::{is_large_jump, prior_streak};
use super::result::{
    BaselineKind, BaselineUsed, DcStorm, Expectation, FlagPoint, InsufficientBaseline,
    MissingSeries, OwnTime, Suppressed, SuppressionReason, TickDetections,
};
use super::result::{Finding, Subject};
use super::series::{CellValue, PointFlags, SeriesKey, SeriesView};
use super::severity::Severity;
use super::storm::{DataCentres, find_storms};

/// The numbers of a value that passed Grubbs' test in its bad direction.
struct Passed {
    value: f64,
    expected: f64,
    mean: f64,
    std_dev: f64,
    g: f64,
    g_crit: f64,
    relative: Option<f64>,
    direction: Direction,
    ratio: Option<f64>,
}

/// Grubbs' test of `value` (divided by the activity `ratio`, for counts) against
/// `stats`, in `direction`. `None` unless it stands out in that direction.
fn grubbs_test(
    stats: &SampleStats,
    value: f64,
    ratio: Option<f64>,
    direction: Direction,
    crit: &mut CriticalValues,
) -> Option<Passed> {
    let r = ratio.unwrap_or(1.0);
    let tested = value / r;
    let mean = stats.mean();
    let (up, down) = (tested > mean, tested < mean);
    let bad = match direction {
        Direction::Up => up,
        Direction::Down => down,
        Direction::Both => up || down,
    };
    if !bad {
        return None;
    }
    let g_crit = crit.get(stats.len() + 1, direction)?;
    let g = stats.grubbs(tested);
    if g.is_nan() || g <= g_crit {
        return None;
    }
    let expected = mean * r;
    Some(Passed {
        value,
        expected,
        mean,
        std_dev: stats.std_dev(),
        g,
        g_crit,
        relative: relative_deviation(value, expected),
        direction: if up { Direction::Up } else { Direction::Down },
        ratio,
    })
}

/// A finding on its way through the filters; `reason` stays `None` while it is a
/// candidate.
struct Pending {
    plan: usize,
    finding: Finding,
    reason: Option<SuppressionReason>,
}

/// Runs detection for `tick` over every series of `view`.
///
/// For each series (entity and metric; in maintenance mode, sums over data-centre
/// parts), the current value is tested with Grubbs' test against the first baseline
/// with enough values (weekly, daily, trailing), leaving out points flagged anomalous
/// or in a storm back then, points in exclusion windows and points before a trend start.
/// Candidates then pass the filters in this order: activity adjustment (counts are
/// tested against expectations scaled by site activity), small deviations (except on
/// key edges), data-centre storms (latency), and noisy series (a streak of candidate
/// ticks unless the jump is large). A series without a current value is reported as
/// missing, one without enough baseline as insufficient; neither is ever an anomaly.
///
/// Deterministic: the same inputs give the same output, in the same order. Write the
/// result's flags back ([`TickDetections::flags_for`], [`FrameStore::apply_flags`])
/// before detecting the next tick, so baselines and streaks see them.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for an invalid `config`, [`Error::InvalidInput`] when
/// `tick` is not a bucket start or an exclusion window is empty.
///
/// # Complexity
///
/// O(S · (W + M)) for S entities, W weekly buckets (30 by default) and M metrics, when
/// weekly baselines are complete; short baselines add their daily and trailing
/// readings. Reads only the columns of [`DetectConfig::ticks_needed`], each
/// sequentially; memory beyond the output is O(S) only in maintenance mode.
///
/// # Example
///
/// ```
/// use graph_core::detect::{detect, DetectConfig, FrameStore, MarkContext, SeriesKey};
/// use graph_core::model::{BucketWidth, Cluster, ClusterCatalog, Counters, EdgeKey, Metric, WEEK};
///
/// let mut catalog = ClusterCatalog::new();
/// let web = catalog.insert(Cluster { name: "web".into(), service: "web".into(), dc: None, tier: None });
/// let db = catalog.insert(Cluster { name: "db".into(), service: "db".into(), dc: None, tier: None });
/// let key = SeriesKey::edge(EdgeKey { src: web, dst: db });
///
/// let width = BucketWidth::FIVE_MINUTES;
/// let now = 100 * WEEK;
/// let mut store = FrameStore::new(width);
/// let config = DetectConfig::default();
/// for t in config.ticks_needed(now, width) {
///     let wobble = (t / 300 % 7) as f64; // 0..6 ms of ordinary variation
///     let latency = if t == now { 80.0 } else { 20.0 + wobble };
///     store.insert(t, key, &Counters { requests: 100.0, errors: 0.0, latency_ms_sum: 100.0 * latency }).unwrap();
/// }
///
/// let result = detect(now, &store, &catalog, &config, &MarkContext::default()).unwrap();
/// let d = &result.detections[0];
/// assert_eq!((d.metric, d.value), (Metric::Latency, 80.0));
/// assert!(d.g > d.g_crit && d.relative_deviation.unwrap() > 1.0);
/// ```
///
/// [`FrameStore::apply_flags`]: super::FrameStore::apply_flags
pub fn detect<V: SeriesView + ?Sized>(
    tick: Tick,
    view: &V,
    catalog: &ClusterCatalog,
    config: &DetectConfig,
    marks: &MarkContext,
) -> Result<TickDetections> {
    config.validate()?;
    marks.validate()?;
    let width = view.bucket_width();
    if tick.rem_euclid(width.seconds()) != 0 {
        return Err(Error::InvalidInput(format!(
            "tick {tick} is not a multiple of the bucket width {}s",
            width.seconds()
        )));
    }
    let entities = view.entities();
    if u32::try_from(entities.len()).is_err() {
        return Err(Error::InvalidInput(format!(
            "{} entities: at most 2^32 - 1 are supported",
            entities.len()
        )));
    }

    let resolved = ResolvedMarks::new(marks, entities, tick);
    let slots = Slots::new(
        view,
        tick,
        &config.baseline,
        config.recent_buckets(width),
        resolved.site(),
    );
    let limits = TrailingLimits::new(&config.baseline, width);
    let subjects = plan_subjects(entities, catalog, &config.maintenance);
    let key_edges = KeyEdges::new(catalog, &config.key_edges);
    let mut crit = CriticalValues::new(config.alpha);
    let enabled: u8 = Metric::ALL
        .iter()
        .filter(|m| config.metrics.get(**m).enabled)
        .fold(0, |acc, m| acc | (1 << m.index()));

    let mut out = TickDetections::empty(tick, width);
    out.activity = activity_adjustment(view, tick, &slots, &config.activity);
    let ratio = out.activity.as_ref().map(|a| a.ratio);

    let mut pending: Vec<Pending> = Vec::new();
    let mut latency_tested: Vec<usize> = Vec::new();
    // Calls whose latency passed no test: (plan, entity, baseline kind).
    let mut own_tests: Vec<(usize, u32, BaselineKind)> = Vec::new();
    let mut samples: [Vec<f64>; 4] = Default::default();

    for (pi, plan) in subjects.plans.iter().enumerate() {
        let parts = subjects.parts(plan);
        let shadowed = matches!(plan, Plan::Single { shadowed: true, .. });
        let subject = || subjects.subject(plan, entities);
        let current = read(slots.current, parts);
        let mut values = [0.0; 4];
        let mut need = 0u8;
        for m in Metric::ALL
            .into_iter()
            .filter(|m| enabled & (1 << m.index()) != 0)
        {
            match current_value(&current.value, m) {
                Ok(v) => {
                    values[m.index()] = v;
                    need |= 1 << m.index();
                }
                Err(reason) if !shadowed => out.missing.push(MissingSeries {
                    subject: subject(),
                    metric: m,
                    reason,
                }),
                Err(_) => {}
            }
            if !shadowed {
                out.summary.series += 1;
            }
        }
        if need == 0 {
            continue;
        }
        let subject_marks = resolved.for_parts(parts);
        let choice = choose(
            &slots,
            parts,
            subject_marks.as_ref(),
            need,
            &config.baseline,
            limits,
            &mut samples,
        );
        let key_edge = parts
            .iter()
            .any(|&e| key_edges.contains(&entities[e as usize].edge));
        if let Plan::Single { entity, .. } = *plan
            && entities[entity as usize].method.is_none()
        {
            out.expectations
                .push(expectation_of(entity, &choice, &samples, ratio));
        }

        for m in Metric::ALL
            .into_iter()
            .filter(|m| need & (1 << m.index()) != 0)
        {
            let i = m.index();
            let (Some(used), Some(stats)) = (choice.used[i], SampleStats::from_values(&samples[i]))
            else {
                if !shadowed {
                    let [weekly, daily, trailing] = choice.found[i];
                    out.insufficient.push(InsufficientBaseline {
                        subject: subject(),
                        metric: m,
                        weekly,
                        daily,
                        trailing,
                    });
                }
                continue;
            };
            if !shadowed {
                out.summary.tested += 1;
                if m == Metric::Latency {
                    latency_tested.push(pi);
                }
            }
            let mc = config.metrics.get(m);
            let scale = ratio.filter(|_| scales_with_activity(m));
            let x = values[i];
            let (passed, mut reason) = match grubbs_test(&stats, x, scale, mc.direction, &mut crit)
            {
                Some(p) => {
                    let r = small_deviation(p.value, p.expected, p.relative, mc, key_edge);
                    (p, r)
                }
                None => {
                    if m == Metric::Latency
                        && let Plan::Single {
                            entity,
                            shadowed: false,
                        } = *plan
                    {
                        own_tests.push((pi, entity, used.kind));
                    }
                    // Suppressed by the activity adjustment if the unadjusted value
                    // would have been a candidate.
                    let Some(r) = scale.filter(|r| *r != 1.0) else {
                        continue;
                    };
                    let Some(raw) = grubbs_test(&stats, x, None, mc.direction, &mut crit) else {
                        continue;
                    };
                    if small_deviation(raw.value, raw.expected, raw.relative, mc, key_edge)
                        .is_some()
                    {
                        continue;
                    }
                    (
                        raw,
                        Some(SuppressionReason::Activity {
                            ratio: r,
                            adjusted_g: stats.grubbs(x / r),
                        }),
                    )
                }
            };
            if shadowed {
                if reason.is_some() {
                    continue;
                }
                reason = Some(SuppressionReason::Maintenance);
            } else if reason.is_none() {
                out.summary.candidates += 1;
            }
            pending.push(Pending {
                plan: pi,
                finding: finding(subject(), m, &passed, used, key_edge, tick),
                reason,
            });
        }
    }

    if config.own_time.enabled && !own_tests.is_empty() {
        let ctx = OwnContext {
            slots: &slots,
            resolved: &resolved,
            config,
            limits,
            key_edges: &key_edges,
            tick,
        };
        own_time_tests(
            &ctx,
            entities,
            &subjects,
            own_tests,
            &mut crit,
            &mut pending,
            &mut out,
        );
    }

    let candidate = |p: &Pending| p.reason.is_none();
    let mut flags: Vec<FlagPoint> = Vec::new();

    // Data-centre storms, from latency candidates.
    let dcs = DataCentres::new(catalog);
    let edges_of = |plan: usize| {
        subjects
            .parts(&subjects.plans[plan])
            .iter()
            .map(|&e| entities[e as usize].edge)
            .collect::<Vec<_>>()
    };
    let candidate_edges = pending
        .iter()
        .filter(|p| candidate(p) && p.finding.metric == Metric::Latency)
        .flat_map(|p| edges_of(p.plan))
        .collect();
    let storms = find_storms(
        &dcs,
        candidate_edges,
        || latency_tested.iter().flat_map(|&p| edges_of(p)).collect(),
        &config.storm,
    );
    if !storms.is_empty() {
        let mut storming = vec![false; dcs.names.len()];
        for s in &storms {
            storming[s.dc as usize] = true;
        }
        for p in pending
            .iter_mut()
            .filter(|p| p.reason.is_none() && p.finding.metric == Metric::Latency)
        {
            let dc = edges_of(p.plan)
                .into_iter()
                .flat_map(|e| dcs.of_edge(e))
                .filter(|&d| storming[d as usize])
                .min();
            if let Some(d) = dc {
                p.reason = Some(SuppressionReason::Storm {
                    dc: dcs.names[d as usize].clone(),
                });
            }
        }
        out.storms = storms
            .iter()
            .map(|s| DcStorm {
                dc: dcs.names[s.dc as usize].clone(),
                tick,
                edges_affected: s.affected,
                edges_total: s.total,
                share: f64::from(s.affected) / f64::from(s.total),
            })
            .collect();
    }

    // Noisy series: streaks and onsets.
    let required = config.persistence.ticks;
    let lookback = (config.persistence.onset_lookback as usize).max(required as usize - 1);
    for p in pending.iter_mut().filter(|p| p.reason.is_none()) {
        let parts = subjects.parts(&subjects.plans[p.plan]);
        let prior = prior_streak(&slots.recent, parts, p.finding.metric, lookback);
        p.finding.streak = prior + 1;
        p.finding.onset = tick - i64::from(prior) * width.seconds();
        let jump = is_large_jump(
            p.finding.relative_deviation,
            config.metrics.get(p.finding.metric).large_jump,
        );
        if config.persistence.enabled && p.finding.streak < required && !jump {
            p.reason = Some(SuppressionReason::Persistence {
                streak: p.finding.streak,
                required,
            });
        }
    }

    for p in pending {
        let plan = &subjects.plans[p.plan];
        let point_flags = match &p.reason {
            None => PointFlags::CANDIDATE | PointFlags::ANOMALOUS,
            Some(SuppressionReason::Storm { .. }) => PointFlags::CANDIDATE | PointFlags::STORM,
            Some(SuppressionReason::Persistence { .. }) => PointFlags::CANDIDATE,
            _ => PointFlags::EMPTY,
        };
        if !point_flags.is_empty() {
            let metric = p.finding.metric;
            flags.extend(subjects.parts(plan).iter().map(|&entity| FlagPoint {
                entity,
                metric,
                flags: point_flags,
            }));
        }
        match p.reason {
            None => out.detections.push(p.finding),
            Some(reason) => out.suppressed.push(Suppressed {
                finding: p.finding,
                reason,
            }),
        }
    }
    out.summary.detections = out.detections.len() as u32;
    out.summary.suppressed = out.suppressed.len() as u32;
    out.summary.missing = out.missing.len() as u32;
    out.summary.insufficient = out.insufficient.len() as u32;

    flags.sort_unstable_by_key(|p| (p.entity, p.metric));
    flags.dedup_by(|later, kept| {
        let same = (later.entity, later.metric) == (kept.entity, kept.metric);
        if same {
            kept.flags |= later.flags;
        }
        same
    });
    out.flags = flags;
    Ok(out)
}

/// What the own-time test reads besides the calls it tests.
struct OwnContext<'a, 'v> {
    slots: &'a Slots<'v>,
    resolved: &'a ResolvedMarks,
    config: &'a DetectConfig,
    limits: TrailingLimits,
    key_edges: &'a KeyEdges,
    tick: Tick,
}

/// The own-time test ([`super::own`]) of calls whose latency passed no test of its own
/// (`tests`: plan, entity and the kind of baseline their latency was tested against),
/// in the slower direction only, keeping only changes of the call's latency that are not
/// small by the latency's minimums. Left out: callees with no downstream calls (their
/// own time is their latency), calls whose callee's downstream time is under
/// `min_downstream_share` of their latency (mostly its own time already), and callees
/// whose downstream calls are candidates in errors or requests this tick (failing or
/// vanishing calls shorten the downstream time, and the own time would grow by what is
/// no longer called). Findings join `pending` for
/// the filters like any other, and a call found slower this way gets the finding's
/// expected latency as its expectation, so the ranker reads the same change.
///
/// O(B · S + T · (B + d)) for B baseline buckets of the kinds used, S entities, T tests
/// and d calls out of a callee: every cluster's downstream time is worked out once per
/// bucket.
fn own_time_tests(
    ctx: &OwnContext<'_, '_>,
    entities: &[SeriesKey],
    subjects: &Subjects,
    tests: Vec<(usize, u32, BaselineKind)>,
    crit: &mut CriticalValues,
    pending: &mut Vec<Pending>,
    out: &mut TickDetections,
) {
    let Some(current) = ctx.slots.current else {
        return;
    };
    let calls_out = clusters_with_calls(entities);
    let clusters = calls_out.len();
    let table = |slots: &[Slot<'_>]| -> Vec<Vec<f64>> {
        slots
            .iter()
            .map(|s| downstream_table(s.col, entities, clusters))
            .collect()
    };
    let now_downstream = downstream_table(Some(current), entities, clusters);
    // Downstream times per slot of each baseline kind, computed when first needed.
    let mut tables: [Option<Vec<Vec<f64>>>; 3] = [None, None, None];
    // Clusters whose calls are candidates in errors or requests this tick.
    let mut busy = vec![false; clusters];
    for p in pending
        .iter()
        .filter(|p| p.reason.is_none() && p.finding.metric != Metric::Latency)
    {
        for &e in subjects.parts(&subjects.plans[p.plan]) {
            if let Some(b) = busy.get_mut(entities[e as usize].edge.src.0 as usize) {
                *b = true;
            }
        }
    }
    let min_share = ctx.config.own_time.min_downstream_share;
    let mc = ctx.config.metrics.get(Metric::Latency);
    let mut samples = Vec::new();
    for (pi, entity, kind) in tests {
        let key = &entities[entity as usize];
        if key.method.is_some() || key.edge.src == key.edge.dst {
            continue;
        }
        let callee = key.edge.dst.0;
        if !calls_out[callee as usize] || busy[callee as usize] {
            continue;
        }
        let CellValue::Valid(c) = current.cell(entity as usize).value() else {
            continue;
        };
        let (Some(latency), downstream) =
            (c.metric(Metric::Latency), now_downstream[callee as usize])
        else {
            continue;
        };
        // Calls that are mostly the callee's own time were tested as they are.
        if !downstream.is_finite() || downstream < min_share * latency {
            continue;
        }
        let now = OwnTime {
            own_ms: latency - downstream,
            downstream_ms: downstream,
        };
        let (i, slots) = match kind {
            BaselineKind::Weekly => (0, &ctx.slots.weekly),
            BaselineKind::Daily => (1, &ctx.slots.daily),
            BaselineKind::Trailing => (2, &ctx.slots.recent),
        };
        let past = tables[i].get_or_insert_with(|| table(slots));
        let parts = std::slice::from_ref(&entity);
        let marks = ctx.resolved.for_parts(parts);
        let enough = gather_derived(
            ctx.slots,
            kind,
            parts,
            marks.as_ref(),
            Metric::Latency,
            &ctx.config.baseline,
            ctx.limits,
            |i, v| Some(v - past[i][callee as usize]),
            &mut samples,
        );
        let Some(stats) = SampleStats::from_values(&samples).filter(|_| enough) else {
            continue;
        };
        let Some(p) = grubbs_test(&stats, now.own_ms, None, Direction::Up, crit) else {
            continue;
        };
        let key_edge = ctx.key_edges.contains(&key.edge);
        let expected = p.expected + now.downstream_ms;
        let relative = relative_deviation(latency, expected);
        // A second look: only a change worth reporting is kept, not a small one.
        if small_deviation(latency, expected, relative, mc, key_edge).is_some() {
            continue;
        }
        let passed = Passed {
            value: latency,
            expected,
            relative,
            ..p
        };
        let used = BaselineUsed {
            kind,
            n: samples.len() as u32,
        };
        let plan = &subjects.plans[pi];
        let mut f = finding(
            subjects.subject(plan, entities),
            Metric::Latency,
            &passed,
            used,
            key_edge,
            ctx.tick,
        );
        f.own_time = Some(now);
        out.summary.candidates += 1;
        if let Ok(i) = out.expectations.binary_search_by_key(&entity, |e| e.entity) {
            out.expectations[i].values[Metric::Latency.index()] = Some(expected);
        }
        pending.push(Pending {
            plan: pi,
            finding: f,
            reason: None,
        });
    }
}

/// The mean of each metric's chosen baseline, counts scaled by the activity `ratio`.
fn expectation_of(
    entity: u32,
    choice: &Choice,
    samples: &[Vec<f64>; 4],
    ratio: Option<f64>,
) -> Expectation {
    let mut e = Expectation {
        entity,
        values: [None; 4],
        baselines: [None; 4],
    };
    for m in Metric::ALL {
        let i = m.index();
        let (Some(used), Some(stats)) = (choice.used[i], SampleStats::from_values(&samples[i]))
        else {
            continue;
        };
        let scale = ratio.filter(|_| scales_with_activity(m)).unwrap_or(1.0);
        e.values[i] = Some(stats.mean() * scale);
        e.baselines[i] = Some(used.kind);
    }
    e
}

fn finding(
    subject: Subject,
    metric: Metric,
    p: &Passed,
    baseline: BaselineUsed,
    key_edge: bool,
    tick: Tick,
) -> Finding {
    Finding {
        subject,
        metric,
        value: p.value,
        expected: p.expected,
        baseline_mean: p.mean,
        baseline_std_dev: p.std_dev,
        baseline,
        g: p.g,
        g_crit: p.g_crit,
        relative_deviation: p.relative,
        direction: p.direction,
        activity_ratio: p.ratio,
        key_edge,
        severity: Severity::new(p.relative, p.g, p.g_crit),
        onset: tick,
        streak: 1,
        own_time: None,
    }
}
