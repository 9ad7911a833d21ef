//! Baselines: which past values a current value is compared with. Weekly first (same
//! time of week, with neighbouring buckets), then daily, then trailing (the recent past
//! before the current episode), each used only with enough usable values.

use crate::model::{BucketWidth, DAY, Metric, Tick, WEEK};

use super::config::{BaselineConfig, seasonal_ticks};
use super::marks::SubjectMarks;
use super::result::{BaselineKind, BaselineUsed};
use super::series::{CellValue, Column, PointFlags, SeriesView};

/// One bucket a detection tick may read, resolved once per tick.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'v> {
    pub(crate) tick: Tick,
    pub(crate) col: Option<&'v Column>,
    /// Metrics (bit = [`Metric::index`]) that site-wide marks leave out at this tick.
    pub(crate) site_excluded: u8,
}

/// A subject's counters and flags in one bucket: one cell, or the sum over parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) value: CellValue,
    pub(crate) flags: [PointFlags; 4],
}

impl Point {
    const NO_DATA: Point = Point {
        value: CellValue::NoData,
        flags: [PointFlags::EMPTY; 4],
    };
}

/// Reads the subject made of `parts` from `col`. A sum is missing (or invalid) when any
/// part is: a part without data is a gap, not a drop to zero. Flags are the union of
/// the parts' flags.
#[inline]
pub(crate) fn read(col: Option<&Column>, parts: &[u32]) -> Point {
    let Some(col) = col else {
        return Point::NO_DATA;
    };
    if let [e] = parts {
        let c = col.cell(*e as usize);
        return Point {
            value: c.value(),
            flags: c.all_flags(),
        };
    }
    let mut p = Point {
        value: CellValue::Valid(Default::default()),
        flags: [PointFlags::EMPTY; 4],
    };
    for &e in parts {
        let c = col.cell(e as usize);
        for (f, cf) in p.flags.iter_mut().zip(c.all_flags()) {
            *f |= cf;
        }
        p.value = match (p.value, c.value()) {
            (CellValue::Invalid, _) | (_, CellValue::Invalid) => CellValue::Invalid,
            (CellValue::NoData, _) | (_, CellValue::NoData) => CellValue::NoData,
            (CellValue::Valid(mut sum), CellValue::Valid(x)) => {
                sum.add(&x);
                CellValue::Valid(sum)
            }
        };
    }
    p
}

/// Every bucket a detection tick may read, resolved from the view once.
#[derive(Debug)]
pub(crate) struct Slots<'v> {
    pub(crate) current: Option<&'v Column>,
    pub(crate) weekly: Vec<Slot<'v>>,
    pub(crate) daily: Vec<Slot<'v>>,
    /// `recent[i]` is the bucket `i + 1` widths before the tick.
    pub(crate) recent: Vec<Slot<'v>>,
}

impl<'v> Slots<'v> {
    pub(crate) fn new<V: SeriesView + ?Sized>(
        view: &'v V,
        tick: Tick,
        cfg: &BaselineConfig,
        recent: usize,
        site: &SubjectMarks,
    ) -> Self {
        let width = view.bucket_width();
        let slot = |t: Tick| {
            let site_excluded = Metric::ALL
                .iter()
                .filter(|m| site.excludes(**m, t))
                .fold(0u8, |acc, m| acc | (1 << m.index()));
            Slot {
                tick: t,
                col: view.column(t),
                site_excluded,
            }
        };
        Slots {
            current: view.column(tick),
            weekly: seasonal_ticks(tick, width, &cfg.weekly, WEEK)
                .map(slot)
                .collect(),
            daily: seasonal_ticks(tick, width, &cfg.daily, DAY)
                .map(slot)
                .collect(),
            recent: (1..=recent as i64)
                .map(|k| slot(tick - k * width.seconds()))
                .collect(),
        }
    }
}

/// Whether the point of `metric` at `slot` may join a baseline, and its value.
#[inline]
fn usable(slot: &Slot<'_>, p: &Point, metric: Metric, marks: Option<&SubjectMarks>) -> Option<f64> {
    let CellValue::Valid(c) = p.value else {
        return None;
    };
    let i = metric.index();
    if slot.site_excluded & (1 << i) != 0
        || p.flags[i].excluded_from_baseline()
        || marks.is_some_and(|m| m.excludes(metric, slot.tick))
    {
        return None;
    }
    c.metric(metric).filter(|v| v.is_finite())
}

/// Appends the usable values of the metrics in `need` (bit = [`Metric::index`]) at
/// `slots` to `out`, one reading per slot for all metrics.
fn gather(
    slots: &[Slot<'_>],
    parts: &[u32],
    marks: Option<&SubjectMarks>,
    need: u8,
    out: &mut [Vec<f64>; 4],
) {
    for slot in slots {
        let Some(col) = slot.col else { continue };
        let p = read(Some(col), parts);
        let CellValue::Valid(c) = p.value else {
            continue;
        };
        // All four metrics at once; undefined ones (no requests) are NaN.
        let values = Metric::ALL.map(|m| c.metric(m).unwrap_or(f64::NAN));
        let mut wanted = need & !slot.site_excluded;
        if let Some(marks) = marks {
            for m in Metric::ALL {
                if marks.excludes(m, slot.tick) {
                    wanted &= !(1 << m.index());
                }
            }
        }
        for (i, (v, f)) in values.into_iter().zip(p.flags).enumerate() {
            if wanted & (1 << i) != 0 && !f.excluded_from_baseline() && v.is_finite() {
                out[i].push(v);
            }
        }
    }
}

/// Limits of the trailing baseline, in buckets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrailingLimits {
    pub(crate) window: usize,
    pub(crate) max_episode: usize,
}

impl TrailingLimits {
    pub(crate) fn new(cfg: &BaselineConfig, width: BucketWidth) -> Self {
        let w = width.seconds() as u64;
        TrailingLimits {
            window: u64::from(cfg.trailing.window_s).div_ceil(w) as usize,
            max_episode: u64::from(cfg.trailing.max_episode_s).div_ceil(w) as usize,
        }
    }
}

/// Appends the trailing baseline of `metric` to `out`: skips back over the current
/// episode (consecutive candidate or anomalous buckets right before the tick, at most
/// `max_episode`), then takes the usable values of the next `window` buckets. Older
/// candidates are left out too, not only reported anomalies: a blip that passed the test
/// but was held back for persistence is averaged over some thirty values in a seasonal
/// baseline, while in a dozen recent ones it inflates the spread enough to hide the next
/// real change.
fn gather_trailing(
    recent: &[Slot<'_>],
    parts: &[u32],
    marks: Option<&SubjectMarks>,
    metric: Metric,
    limits: TrailingLimits,
    out: &mut Vec<f64>,
) {
    gather_trailing_with(recent, parts, metric, limits, out, |_, slot, p| {
        usable(slot, p, metric, marks)
    });
}

/// [`gather_trailing`] of any value read at a slot (`value`, given the slot's index in
/// `recent`), skipping and leaving out buckets by the flags of `metric` of `parts`.
fn gather_trailing_with(
    recent: &[Slot<'_>],
    parts: &[u32],
    metric: Metric,
    limits: TrailingLimits,
    out: &mut Vec<f64>,
    value: impl Fn(usize, &Slot<'_>, &Point) -> Option<f64>,
) {
    let episode = PointFlags::CANDIDATE | PointFlags::ANOMALOUS;
    let skip = recent
        .iter()
        .take(limits.max_episode)
        .take_while(|s| read(s.col, parts).flags[metric.index()].intersects(episode))
        .count();
    for (i, slot) in recent.iter().enumerate().skip(skip).take(limits.window) {
        let p = read(slot.col, parts);
        if p.flags[metric.index()].contains(PointFlags::CANDIDATE) {
            continue;
        }
        if let Some(v) = value(i, slot, &p) {
            out.push(v);
        }
    }
}

/// The baseline of a value derived from `metric` of `parts`, `derive(i, v)` for the
/// metric's value `v` at the `i`-th slot of `kind`: the same buckets, leaving out the
/// same ones, as the metric's own baseline of that kind. Leaves the values in `out`
/// and returns whether there are the kind's minimum of them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gather_derived(
    slots: &Slots<'_>,
    kind: BaselineKind,
    parts: &[u32],
    marks: Option<&SubjectMarks>,
    metric: Metric,
    cfg: &BaselineConfig,
    limits: TrailingLimits,
    derive: impl Fn(usize, f64) -> Option<f64>,
    out: &mut Vec<f64>,
) -> bool {
    out.clear();
    let value = |i: usize, slot: &Slot<'_>, p: &Point| {
        derive(i, usable(slot, p, metric, marks)?).filter(|v| v.is_finite())
    };
    let (seasonal, min) = match kind {
        BaselineKind::Weekly => (&slots.weekly, cfg.weekly.min_samples),
        BaselineKind::Daily => (&slots.daily, cfg.daily.min_samples),
        BaselineKind::Trailing => {
            gather_trailing_with(&slots.recent, parts, metric, limits, out, value);
            return out.len() as u32 >= cfg.trailing.min_samples;
        }
    };
    out.extend(
        seasonal
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| value(i, slot, &read(slot.col, parts))),
    );
    out.len() as u32 >= min
}

/// The baseline chosen for each metric of a subject.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Choice {
    /// The baseline used, per metric; `None` when every kind had too few values.
    pub(crate) used: [Option<BaselineUsed>; 4],
    /// Usable values found per metric and kind (weekly, daily, trailing), for reports.
    pub(crate) found: [[u32; 3]; 4],
}

/// Chooses the baseline of every metric in `need` and leaves its values in
/// `samples[metric.index()]`: weekly, else daily, else trailing, each needing its
/// configured minimum.
///
/// O(W + D) readings for W weekly and D daily buckets (the daily ones only when a
/// weekly baseline is short), plus O(R) per metric that falls back to trailing.
pub(crate) fn choose(
    slots: &Slots<'_>,
    parts: &[u32],
    marks: Option<&SubjectMarks>,
    need: u8,
    cfg: &BaselineConfig,
    limits: TrailingLimits,
    samples: &mut [Vec<f64>; 4],
) -> Choice {
    let mut choice = Choice::default();
    for s in samples.iter_mut() {
        s.clear();
    }
    let mut short = 0u8;
    gather(&slots.weekly, parts, marks, need, samples);
    for m in Metric::ALL {
        let i = m.index();
        if need & (1 << i) == 0 {
            continue;
        }
        let n = samples[i].len() as u32;
        choice.found[i][0] = n;
        if n >= cfg.weekly.min_samples {
            choice.used[i] = Some(BaselineUsed {
                kind: BaselineKind::Weekly,
                n,
            });
        } else {
            samples[i].clear();
            short |= 1 << i;
        }
    }
    if short == 0 {
        return choice;
    }
    gather(&slots.daily, parts, marks, short, samples);
    for m in Metric::ALL {
        let i = m.index();
        if short & (1 << i) == 0 {
            continue;
        }
        let n = samples[i].len() as u32;
        choice.found[i][1] = n;
        if n >= cfg.daily.min_samples {
            choice.used[i] = Some(BaselineUsed {
                kind: BaselineKind::Daily,
                n,
            });
            continue;
        }
        samples[i].clear();
        gather_trailing(&slots.recent, parts, marks, m, limits, &mut samples[i]);
        let n = samples[i].len() as u32;
        choice.found[i][2] = n;
        if n >= cfg.trailing.min_samples {
            choice.used[i] = Some(BaselineUsed {
                kind: BaselineKind::Trailing,
                n,
            });
        }
    }
    choice
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Counters;

    fn cell_col(values: &[Option<(f64, PointFlags)>]) -> Column {
        let mut col = Column::new();
        for (e, v) in values.iter().enumerate() {
            if let Some((r, f)) = v {
                col.set(
                    e,
                    &Counters {
                        requests: *r,
                        errors: 0.0,
                        latency_ms_sum: *r,
                    },
                );
                col.set_flags(e, Metric::Requests, *f);
            }
        }
        col
    }

    #[test]
    fn a_sum_is_missing_when_any_part_is_and_unions_flags() {
        let col = cell_col(&[
            Some((2.0, PointFlags::CANDIDATE)),
            Some((3.0, PointFlags::ANOMALOUS)),
            None,
        ]);
        let p = read(Some(&col), &[0, 1]);
        assert_eq!(
            p.value,
            CellValue::Valid(Counters {
                requests: 5.0,
                errors: 0.0,
                latency_ms_sum: 5.0
            })
        );
        assert_eq!(
            p.flags[Metric::Requests.index()],
            PointFlags::CANDIDATE | PointFlags::ANOMALOUS
        );
        assert_eq!(read(Some(&col), &[0, 2]).value, CellValue::NoData);
        assert_eq!(read(None, &[0]).value, CellValue::NoData);
    }

    #[test]
    fn trailing_skips_the_current_episode() {
        let mk = |r: f64, f: PointFlags| cell_col(&[Some((r, f))]);
        let cols: Vec<Column> = vec![
            mk(100.0, PointFlags::CANDIDATE),
            mk(90.0, PointFlags::CANDIDATE | PointFlags::ANOMALOUS),
            mk(5.0, PointFlags::EMPTY),
            mk(6.0, PointFlags::ANOMALOUS), // older anomaly: excluded, not skipped over
            mk(50.0, PointFlags::CANDIDATE), // an older blip held for persistence: excluded
            mk(7.0, PointFlags::EMPTY),
            mk(8.0, PointFlags::EMPTY),
        ];
        let recent: Vec<Slot<'_>> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| Slot {
                tick: -(i as i64 + 1),
                col: Some(c),
                site_excluded: 0,
            })
            .collect();
        let mut out = Vec::new();
        let limits = TrailingLimits {
            window: 4,
            max_episode: 5,
        };
        gather_trailing(&recent, &[0], None, Metric::Requests, limits, &mut out);
        assert_eq!(out, vec![5.0, 7.0]);
        out.clear();
        let no_skip = TrailingLimits {
            window: 3,
            max_episode: 1,
        };
        gather_trailing(&recent, &[0], None, Metric::Requests, no_skip, &mut out);
        assert_eq!(
            out,
            vec![5.0],
            "skips one, then 90 (anomalous) is excluded, then 5, then 6 is excluded"
        );
    }
}
