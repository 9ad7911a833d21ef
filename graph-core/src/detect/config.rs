//! [`DetectConfig`]: every knob of detection, with the defaults of the method.

use serde::{Deserialize, Serialize};

use crate::model::{BucketWidth, DAY, Direction, Metric, Tick, WEEK};
use crate::{Error, Result};

/// Configuration of [`detect`](super::detect). Every field has a default, so `{}`
/// deserialises to [`DetectConfig::default`]; unknown fields are rejected.
///
/// ```
/// use graph_core::detect::DetectConfig;
/// let c: DetectConfig = serde_json::from_str(r#"{"metrics": {"latency": {"min_relative_deviation": 0.3}}}"#).unwrap();
/// assert_eq!(c.metrics.latency.min_relative_deviation, 0.3);
/// assert_eq!(c.metrics.requests.min_relative_deviation, 0.15);
/// c.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Significance level of Grubbs' test.
    pub alpha: f64,
    /// Per-metric direction and thresholds.
    pub metrics: MetricsConfig,
    /// Baseline construction and fallbacks.
    pub baseline: BaselineConfig,
    /// Edges where small deviations matter: exempt from the relative-deviation minimum.
    pub key_edges: Vec<KeyEdge>,
    /// Noisy-series filter: require a streak of candidate ticks.
    pub persistence: PersistenceConfig,
    /// Rolling-update mode: test sums over per-data-centre parts.
    pub maintenance: MaintenanceConfig,
    /// Data-centre storm detection.
    pub storm: StormConfig,
    /// Site-wide activity adjustment of count expectations.
    pub activity: ActivityConfig,
    /// A second latency test of calls into a cluster, on the callee's own time.
    pub own_time: OwnTimeConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            alpha: 0.05,
            metrics: MetricsConfig::default(),
            baseline: BaselineConfig::default(),
            key_edges: Vec::new(),
            persistence: PersistenceConfig::default(),
            maintenance: MaintenanceConfig::default(),
            storm: StormConfig::default(),
            activity: ActivityConfig::default(),
            own_time: OwnTimeConfig::default(),
        }
    }
}

/// Settings of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricConfig {
    /// Whether the metric is detected at all.
    pub enabled: bool,
    /// Which change is bad: `up`/`down` test one-sided, `both` two-sided.
    pub direction: Direction,
    /// Candidates with `|value − expected| / expected` below this are suppressed, except
    /// on key edges.
    pub min_relative_deviation: f64,
    /// Candidates with `|value − expected|` below this (in the metric's unit) are
    /// suppressed everywhere, key edges included: e.g. one error more than usual.
    pub min_absolute_deviation: f64,
    /// A relative deviation at least this large is reported on its first tick, without
    /// waiting for the streak the noisy-series filter requires.
    pub large_jump: f64,
}

impl MetricConfig {
    /// The defaults for `metric`: 20 % latency, 15 % requests, and for errors and error
    /// rate 50 % plus an absolute floor of 5 errors or 1 percentage point.
    pub fn default_for(metric: Metric) -> Self {
        let (min_rel, min_abs, jump) = match metric {
            Metric::Latency => (0.20, 0.0, 1.0),
            Metric::Requests => (0.15, 0.0, 0.5),
            Metric::Errors => (0.5, 5.0, 2.0),
            Metric::ErrorRate => (0.5, 0.01, 2.0),
        };
        MetricConfig {
            enabled: true,
            direction: metric.default_direction(),
            min_relative_deviation: min_rel,
            min_absolute_deviation: min_abs,
            large_jump: jump,
        }
    }
}

/// Per-metric settings. In JSON each metric may give only some fields; the rest keep
/// that metric's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "MetricsConfigDe")]
pub struct MetricsConfig {
    /// Mean latency.
    pub latency: MetricConfig,
    /// Request count.
    pub requests: MetricConfig,
    /// Error count.
    pub errors: MetricConfig,
    /// Errors per request.
    pub error_rate: MetricConfig,
}

impl MetricsConfig {
    /// The settings of `metric`.
    pub fn get(&self, metric: Metric) -> &MetricConfig {
        match metric {
            Metric::Latency => &self.latency,
            Metric::Requests => &self.requests,
            Metric::Errors => &self.errors,
            Metric::ErrorRate => &self.error_rate,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            latency: MetricConfig::default_for(Metric::Latency),
            requests: MetricConfig::default_for(Metric::Requests),
            errors: MetricConfig::default_for(Metric::Errors),
            error_rate: MetricConfig::default_for(Metric::ErrorRate),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct MetricsConfigDe {
    latency: MetricConfigDe,
    requests: MetricConfigDe,
    errors: MetricConfigDe,
    error_rate: MetricConfigDe,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct MetricConfigDe {
    enabled: Option<bool>,
    direction: Option<Direction>,
    min_relative_deviation: Option<f64>,
    min_absolute_deviation: Option<f64>,
    large_jump: Option<f64>,
}

impl MetricConfigDe {
    fn merge(self, metric: Metric) -> MetricConfig {
        let d = MetricConfig::default_for(metric);
        MetricConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            direction: self.direction.unwrap_or(d.direction),
            min_relative_deviation: self
                .min_relative_deviation
                .unwrap_or(d.min_relative_deviation),
            min_absolute_deviation: self
                .min_absolute_deviation
                .unwrap_or(d.min_absolute_deviation),
            large_jump: self.large_jump.unwrap_or(d.large_jump),
        }
    }
}

impl From<MetricsConfigDe> for MetricsConfig {
    fn from(d: MetricsConfigDe) -> Self {
        MetricsConfig {
            latency: d.latency.merge(Metric::Latency),
            requests: d.requests.merge(Metric::Requests),
            errors: d.errors.merge(Metric::Errors),
            error_rate: d.error_rate.merge(Metric::ErrorRate),
        }
    }
}

/// A seasonal baseline: the same bucket `periods` times back, each with `neighbours`
/// buckets on either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeasonalConfig {
    /// How many weeks (weekly) or days (daily) back.
    pub periods: u32,
    /// Neighbouring buckets on each side of each period's bucket.
    pub neighbours: u32,
    /// The baseline is used only with at least this many usable values.
    pub min_samples: u32,
}

/// A trailing baseline: recent buckets, skipping the current episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailingConfig {
    /// Length of the window, seconds (rounded up to whole buckets).
    pub window_s: u32,
    /// At most this long (seconds) of the current episode, i.e. consecutive
    /// candidate/anomalous buckets right before the tick, is skipped.
    pub max_episode_s: u32,
    /// The baseline is used only with at least this many usable values.
    pub min_samples: u32,
}

/// Baselines, tried in order: weekly, daily, trailing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Same time of week (default: 6 weeks × 5 buckets, at least 10 values).
    pub weekly: SeasonalConfig,
    /// Same time of day (default: 7 days × 5 buckets, at least 10 values).
    pub daily: SeasonalConfig,
    /// Recent window (default: 2 hours, skipping up to 1 hour of episode, at least 8 values).
    pub trailing: TrailingConfig,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            weekly: SeasonalConfig {
                periods: 6,
                neighbours: 2,
                min_samples: 10,
            },
            daily: SeasonalConfig {
                periods: 7,
                neighbours: 2,
                min_samples: 10,
            },
            trailing: TrailingConfig {
                window_s: 7_200,
                max_episode_s: 3_600,
                min_samples: 8,
            },
        }
    }
}

/// An edge that matters even for small shifts, by cluster or service name at each end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEdge {
    /// Caller: a cluster name or a service name (all its clusters).
    pub src: String,
    /// Callee: a cluster name or a service name (all its clusters).
    pub dst: String,
}

/// Noisy-series filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistenceConfig {
    /// Whether the filter is on.
    pub enabled: bool,
    /// Consecutive candidate ticks (this one included) before reporting.
    pub ticks: u32,
    /// How far back (buckets) the episode onset is looked for.
    pub onset_lookback: u32,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            enabled: true,
            ticks: 3,
            onset_lookback: 24,
        }
    }
}

/// Rolling-update mode, switched on by an operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Whether maintenance mode is on.
    pub enabled: bool,
    /// Services under maintenance; empty means every service split per data centre.
    pub services: Vec<String>,
    /// Data centres under maintenance: only services with a part in one of them are
    /// summed; empty means every data centre.
    pub dcs: Vec<String>,
}

/// Data-centre storm detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StormConfig {
    /// Whether storms are detected.
    pub enabled: bool,
    /// Share of a data centre's edges with latency candidates that makes a storm.
    pub min_share: f64,
    /// And at least this many such edges.
    pub min_edges: u32,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            enabled: true,
            min_share: 0.3,
            min_edges: 5,
        }
    }
}

/// Site-wide activity adjustment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityConfig {
    /// Whether request and error expectations follow site activity.
    pub enabled: bool,
    /// Baseline values of the activity series needed for a ratio.
    pub min_samples: u32,
    /// The applied ratio is clamped to `[min_ratio, max_ratio]`, so a broken activity
    /// feed cannot silence every count anomaly.
    pub min_ratio: f64,
    /// Upper clamp of the applied ratio.
    pub max_ratio: f64,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            enabled: true,
            min_samples: 5,
            min_ratio: 0.25,
            max_ratio: 4.0,
        }
    }
}

/// The own-time test: a call into a cluster whose latency passes no test of its own is
/// tested once more on the callee's own time (its latency minus the callee's downstream
/// time per request), against the same baseline buckets. It finds a callee slowed by
/// itself when its downstream calls are most of its latency and their noise hides the
/// change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnTimeConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// Only calls whose callee spends at least this share of their latency in its own
    /// calls are tested again: below it the latency is mostly the callee's own time and
    /// its own test already sees a change of it.
    pub min_downstream_share: f64,
}

impl Default for OwnTimeConfig {
    fn default() -> Self {
        OwnTimeConfig {
            enabled: true,
            min_downstream_share: 0.5,
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_fraction(field: &str, v: f64, lo_open: bool, hi: f64) -> Result<()> {
    let lo_ok = if lo_open { v > 0.0 } else { v >= 0.0 };
    if !(lo_ok && v <= hi) {
        let lo = if lo_open { "(0" } else { "[0" };
        return Err(invalid(field, format!("{v} is outside {lo}, {hi}]")));
    }
    Ok(())
}

fn check_range(field: &str, v: u32, lo: u32, hi: u32) -> Result<()> {
    if !(lo..=hi).contains(&v) {
        return Err(invalid(field, format!("{v} is outside {lo}..={hi}")));
    }
    Ok(())
}

/// Largest baseline a configuration may ask for, so samples stay small and bounded.
pub(crate) const MAX_SAMPLE: u32 = 1_024;

impl DetectConfig {
    /// Checks every value; the error names the field and says what is wrong.
    ///
    /// # Complexity
    ///
    /// O(k) for k key edges and maintenance services.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::Error;
    /// use graph_core::detect::DetectConfig;
    /// let mut c = DetectConfig::default();
    /// c.alpha = 0.0;
    /// assert!(matches!(c.validate(), Err(Error::InvalidConfig { field, .. }) if field == "alpha"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_fraction("alpha", self.alpha, true, 0.5)?;
        for m in Metric::ALL {
            let c = self.metrics.get(m);
            let f = |name: &str| format!("metrics.{m}.{name}");
            for (name, v) in [
                ("min_relative_deviation", c.min_relative_deviation),
                ("min_absolute_deviation", c.min_absolute_deviation),
                ("large_jump", c.large_jump),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(invalid(
                        f(name),
                        format!("{v} must be a finite number >= 0"),
                    ));
                }
            }
        }
        let b = &self.baseline;
        for (name, s, max_periods) in [("weekly", &b.weekly, 52), ("daily", &b.daily, 31)] {
            check_range(
                &format!("baseline.{name}.periods"),
                s.periods,
                1,
                max_periods,
            )?;
            check_range(&format!("baseline.{name}.neighbours"), s.neighbours, 0, 12)?;
            check_range(
                &format!("baseline.{name}.min_samples"),
                s.min_samples,
                2,
                MAX_SAMPLE,
            )?;
            if s.min_samples > s.periods * (2 * s.neighbours + 1) {
                return Err(invalid(
                    format!("baseline.{name}.min_samples"),
                    format!(
                        "{} is more than the {} values the baseline can hold",
                        s.min_samples,
                        s.periods * (2 * s.neighbours + 1)
                    ),
                ));
            }
        }
        let t = &b.trailing;
        check_range("baseline.trailing.window_s", t.window_s, 1, 2 * DAY as u32)?;
        check_range(
            "baseline.trailing.max_episode_s",
            t.max_episode_s,
            0,
            2 * DAY as u32,
        )?;
        check_range(
            "baseline.trailing.min_samples",
            t.min_samples,
            2,
            MAX_SAMPLE,
        )?;
        for (i, k) in self.key_edges.iter().enumerate() {
            if k.src.trim().is_empty() || k.dst.trim().is_empty() {
                return Err(invalid(
                    format!("key_edges[{i}]"),
                    "src and dst must name a cluster or service",
                ));
            }
        }
        check_range("persistence.ticks", self.persistence.ticks, 1, 100)?;
        check_range(
            "persistence.onset_lookback",
            self.persistence.onset_lookback,
            0,
            10_000,
        )?;
        if let Some(i) = self
            .maintenance
            .services
            .iter()
            .position(|s| s.trim().is_empty())
        {
            return Err(invalid(
                format!("maintenance.services[{i}]"),
                "must name a service",
            ));
        }
        check_fraction("storm.min_share", self.storm.min_share, true, 1.0)?;
        check_range("storm.min_edges", self.storm.min_edges, 1, u32::MAX)?;
        let a = &self.activity;
        check_range("activity.min_samples", a.min_samples, 1, MAX_SAMPLE)?;
        if !(a.min_ratio.is_finite() && a.min_ratio > 0.0 && a.min_ratio <= 1.0) {
            return Err(invalid(
                "activity.min_ratio",
                format!("{} is outside (0, 1]", a.min_ratio),
            ));
        }
        if !(a.max_ratio.is_finite() && a.max_ratio >= 1.0) {
            return Err(invalid(
                "activity.max_ratio",
                format!("{} must be a finite number >= 1", a.max_ratio),
            ));
        }
        let share = self.own_time.min_downstream_share;
        if !(share.is_finite() && share >= 0.0) {
            return Err(invalid(
                "own_time.min_downstream_share",
                format!("{share} must be a finite number >= 0"),
            ));
        }
        Ok(())
    }

    /// Number of recent buckets (before the tick) detection may read: the trailing
    /// window plus the episode it skips, or the onset lookback, whichever is longer.
    pub(crate) fn recent_buckets(&self, width: BucketWidth) -> usize {
        let w = width.seconds() as u64;
        let t = &self.baseline.trailing;
        let trailing =
            (u64::from(t.window_s).div_ceil(w) + u64::from(t.max_episode_s).div_ceil(w)) as usize;
        let onset = if self.persistence.enabled {
            self.persistence.onset_lookback as usize
        } else {
            0
        };
        trailing.max(onset).max(self.persistence.ticks as usize)
    }

    /// Every tick whose column detection at `tick` may read, sorted and without
    /// duplicates: the tick itself, the weekly and daily baseline buckets, and the
    /// recent buckets of the trailing baseline and of streak lookback. A store that
    /// keeps history elsewhere loads exactly these columns.
    ///
    /// # Complexity
    ///
    /// O(k log k) for the k ≈ 100 ticks returned with the defaults.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::DetectConfig;
    /// use graph_core::model::{BucketWidth, WEEK};
    /// let t = 10 * WEEK;
    /// let ticks = DetectConfig::default().ticks_needed(t, BucketWidth::FIVE_MINUTES);
    /// assert!(ticks.contains(&t) && ticks.contains(&(t - 6 * WEEK - 600)));
    /// assert!(ticks.windows(2).all(|w| w[0] < w[1]));
    /// ```
    pub fn ticks_needed(&self, tick: Tick, width: BucketWidth) -> Vec<Tick> {
        let mut ticks = vec![tick];
        ticks.extend(seasonal_ticks(tick, width, &self.baseline.weekly, WEEK));
        ticks.extend(seasonal_ticks(tick, width, &self.baseline.daily, DAY));
        ticks.extend((1..=self.recent_buckets(width) as i64).map(|k| tick - k * width.seconds()));
        ticks.sort_unstable();
        ticks.dedup();
        ticks
    }
}

/// The buckets of a seasonal baseline for `tick`, nearest period first.
pub(crate) fn seasonal_ticks(
    tick: Tick,
    width: BucketWidth,
    cfg: &SeasonalConfig,
    period: i64,
) -> impl Iterator<Item = Tick> {
    let nb = i64::from(cfg.neighbours);
    let w = width.seconds();
    (1..=i64::from(cfg.periods))
        .flat_map(move |p| (-nb..=nb).map(move |j| tick - p * period + j * w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_gives_the_defaults_and_they_are_valid() {
        let c: DetectConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, DetectConfig::default());
        c.validate().unwrap();
        assert_eq!(c.metrics.latency.min_relative_deviation, 0.20);
        assert_eq!(c.metrics.requests.direction, Direction::Both);
        assert_eq!(c.metrics.errors.direction, Direction::Up);
    }

    #[test]
    fn config_round_trips_through_json() {
        let mut c = DetectConfig::default();
        c.key_edges.push(KeyEdge {
            src: "web".into(),
            dst: "api".into(),
        });
        c.metrics.errors.enabled = false;
        let back: DetectConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<DetectConfig>(r#"{"alpah": 0.1}"#).is_err());
        assert!(
            serde_json::from_str::<DetectConfig>(r#"{"metrics": {"latency": {"min_rel": 1}}}"#)
                .is_err()
        );
    }

    #[test]
    fn validation_names_the_field() {
        let field_of = |c: DetectConfig| match c.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid config, got {other:?}"),
        };
        let mut c = DetectConfig::default();
        c.metrics.requests.min_relative_deviation = f64::NAN;
        assert_eq!(field_of(c), "metrics.requests.min_relative_deviation");
        let mut c = DetectConfig::default();
        c.baseline.weekly.min_samples = 31;
        assert_eq!(field_of(c), "baseline.weekly.min_samples");
        let mut c = DetectConfig::default();
        c.baseline.daily.min_samples = 1;
        assert_eq!(field_of(c), "baseline.daily.min_samples");
        let mut c = DetectConfig::default();
        c.storm.min_share = 1.5;
        assert_eq!(field_of(c), "storm.min_share");
        let mut c = DetectConfig::default();
        c.persistence.ticks = 0;
        assert_eq!(field_of(c), "persistence.ticks");
        let mut c = DetectConfig::default();
        c.key_edges.push(KeyEdge {
            src: " ".into(),
            dst: "x".into(),
        });
        assert_eq!(field_of(c), "key_edges[0]");
        let mut c = DetectConfig::default();
        c.activity.max_ratio = 0.5;
        assert_eq!(field_of(c), "activity.max_ratio");
        let mut c = DetectConfig::default();
        c.own_time.min_downstream_share = -0.1;
        assert_eq!(field_of(c), "own_time.min_downstream_share");
    }

    #[test]
    fn ticks_needed_covers_one_minute_buckets() {
        let w = BucketWidth::ONE_MINUTE;
        let t = 100 * WEEK;
        let ticks = DetectConfig::default().ticks_needed(t, w);
        assert!(ticks.contains(&(t - 120)));
        assert!(ticks.contains(&(t - DAY + 120)));
        // 1 tick + 30 weekly + 35 daily (of which 5, a week back, are weekly ones too)
        // + 180 recent (2 h window + 1 h episode)
        assert_eq!(ticks.len(), 1 + 30 + 35 - 5 + 180);
    }
}
