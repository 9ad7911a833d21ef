//! Seasonal shifts in activity: when the whole site is below or above its norm (a
//! holiday, the eve of a long weekend), request and error expectations follow it, so a
//! site-wide dip is not reported as hundreds of anomalies.

use crate::model::Metric;

use super::baseline::{Slot, Slots};
use super::config::ActivityConfig;
use super::result::{ActivityAdjustment, BaselineKind, BaselineUsed};
use super::series::SeriesView;

/// Whether `metric` is a count whose expectation scales with activity.
pub(crate) fn scales_with_activity(metric: Metric) -> bool {
    matches!(metric, Metric::Requests | Metric::Errors)
}

/// The activity ratio at `tick`: activity now over the mean of its weekly baseline
/// (daily when the weekly one has fewer than `min_samples` values). Buckets that
/// site-wide marks exclude for requests are left out. `None` when disabled, or when
/// the activity or its baseline is missing or not positive.
///
/// O(W + D) activity look-ups.
pub(crate) fn activity_adjustment<V: SeriesView + ?Sized>(
    view: &V,
    tick: crate::model::Tick,
    slots: &Slots<'_>,
    cfg: &ActivityConfig,
) -> Option<ActivityAdjustment> {
    if !cfg.enabled {
        return None;
    }
    let current = view.activity(tick).filter(|v| v.is_finite() && *v > 0.0)?;
    let excluded = 1u8 << Metric::Requests.index();
    let values = |slots: &[Slot<'_>]| -> Vec<f64> {
        slots
            .iter()
            .filter(|s| s.site_excluded & excluded == 0)
            .filter_map(|s| view.activity(s.tick))
            .filter(|v| v.is_finite() && *v >= 0.0)
            .collect()
    };
    let (kind, sample) = [
        (BaselineKind::Weekly, &slots.weekly),
        (BaselineKind::Daily, &slots.daily),
    ]
    .into_iter()
    .map(|(k, s)| (k, values(s)))
    .find(|(_, v)| v.len() >= cfg.min_samples as usize)?;
    let mean = sample.iter().sum::<f64>() / sample.len() as f64;
    if mean <= 0.0 || !mean.is_finite() {
        return None;
    }
    let raw_ratio = current / mean;
    Some(ActivityAdjustment {
        current,
        baseline_mean: mean,
        baseline: BaselineUsed {
            kind,
            n: sample.len() as u32,
        },
        raw_ratio,
        ratio: raw_ratio.clamp(cfg.min_ratio, cfg.max_ratio),
    })
}
