//! Noisy series: report only after a streak of candidate ticks, unless the jump is large
//! (short, sharp stalls often precede serious failures).

use crate::model::Metric;

use super::baseline::{Slot, read};

/// Consecutive candidate ticks right before the tick, looking back at most `limit`
/// buckets (`recent[i]` is `i + 1` buckets back).
pub(crate) fn prior_streak(
    recent: &[Slot<'_>],
    parts: &[u32],
    metric: Metric,
    limit: usize,
) -> u32 {
    recent
        .iter()
        .take(limit)
        .take_while(|s| {
            s.col.is_some()
                && read(s.col, parts).flags[metric.index()].contains(super::PointFlags::CANDIDATE)
        })
        .count() as u32
}

/// True when a deviation counts as a large jump: at least `large_jump` relative, or
/// against an expectation of zero.
pub(crate) fn is_large_jump(relative: Option<f64>, large_jump: f64) -> bool {
    relative.is_none_or(|r| r.abs() >= large_jump)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Column, PointFlags};

    #[test]
    fn the_streak_stops_at_the_first_gap_or_non_candidate() {
        let flagged = |f: PointFlags| {
            let mut c = Column::new();
            c.set_flags(0, Metric::Latency, f);
            c
        };
        let cols = [
            flagged(PointFlags::CANDIDATE),
            flagged(PointFlags::CANDIDATE | PointFlags::ANOMALOUS),
            flagged(PointFlags::EMPTY),
            flagged(PointFlags::CANDIDATE),
        ];
        let slots: Vec<Slot<'_>> = cols
            .iter()
            .map(|c| Slot {
                tick: 0,
                col: Some(c),
                site_excluded: 0,
            })
            .collect();
        assert_eq!(prior_streak(&slots, &[0], Metric::Latency, 10), 2);
        assert_eq!(prior_streak(&slots, &[0], Metric::Latency, 1), 1);
        assert_eq!(prior_streak(&slots, &[0], Metric::Requests, 10), 0);
        let gap = [Slot {
            tick: 0,
            col: None,
            site_excluded: 0,
        }];
        assert_eq!(prior_streak(&gap, &[0], Metric::Latency, 10), 0);
    }

    #[test]
    fn large_jumps_include_jumps_from_zero() {
        assert!(is_large_jump(None, 1.0));
        assert!(is_large_jump(Some(-1.0), 1.0));
        assert!(!is_large_jump(Some(0.9), 1.0));
    }
}
