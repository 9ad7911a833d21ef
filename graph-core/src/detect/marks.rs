//! [`MarkContext`]: what people said about the data: new trends and windows to leave out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{ClusterId, EdgeKey, Metric, Tick};
use crate::{Error, Result};

use super::series::SeriesKey;

/// What a mark applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Every series.
    Site,
    /// Every edge from or to this cluster.
    Cluster {
        /// The cluster.
        cluster: ClusterId,
    },
    /// One edge, all its methods.
    Edge {
        /// The edge.
        edge: EdgeKey,
    },
    /// One entity (edge, or edge and method).
    Series {
        /// The entity.
        key: SeriesKey,
    },
}

impl Scope {
    fn matches(&self, key: &SeriesKey) -> bool {
        match self {
            Scope::Site => true,
            Scope::Cluster { cluster } => key.edge.src == *cluster || key.edge.dst == *cluster,
            Scope::Edge { edge } => key.edge == *edge,
            Scope::Series { key: k } => k == key,
        }
    }
}

/// From `start` on, the series behave differently for good (a release, a migration):
/// older data no longer describes them, so baselines use only data at or after `start`,
/// falling back to shorter baselines until enough has accumulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendStart {
    /// Which series.
    pub scope: Scope,
    /// Which metric; `None` for all.
    #[serde(default)]
    pub metric: Option<Metric>,
    /// First tick of the new trend.
    pub start: Tick,
}

/// Buckets `[from, to)` that baselines leave out: an incident, a known anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExclusionWindow {
    /// Which series.
    pub scope: Scope,
    /// Which metric; `None` for all.
    #[serde(default)]
    pub metric: Option<Metric>,
    /// First excluded tick.
    pub from: Tick,
    /// First tick after the window.
    pub to: Tick,
}

/// The marks and trends active for a detection tick.
///
/// ```
/// use graph_core::detect::{ExclusionWindow, MarkContext, Scope};
/// let marks = MarkContext {
///     exclusions: vec![ExclusionWindow { scope: Scope::Site, metric: None, from: 0, to: 3_600 }],
///     ..MarkContext::default()
/// };
/// marks.validate().unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarkContext {
    /// New trends.
    pub trend_starts: Vec<TrendStart>,
    /// Windows left out of baselines.
    pub exclusions: Vec<ExclusionWindow>,
}

impl MarkContext {
    /// Checks that every exclusion window is non-empty; the error names the window.
    ///
    /// # Complexity
    ///
    /// O(w) for w windows.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{ExclusionWindow, MarkContext, Scope};
    /// let empty = ExclusionWindow { scope: Scope::Site, metric: None, from: 600, to: 600 };
    /// let marks = MarkContext { exclusions: vec![empty], ..MarkContext::default() };
    /// assert!(marks.validate().unwrap_err().to_string().contains("exclusion window 0"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        for (i, w) in self.exclusions.iter().enumerate() {
            if w.from >= w.to {
                return Err(Error::InvalidInput(format!(
                    "exclusion window {i}: from ({}) must be before to ({})",
                    w.from, w.to
                )));
            }
        }
        Ok(())
    }
}

const ALL_METRICS: u8 = 0b1111;

fn metric_mask(metric: Option<Metric>) -> u8 {
    metric.map_or(ALL_METRICS, |m| 1 << m.index())
}

/// Marks resolved for one tick: per metric trend starts and windows, for the whole site
/// and for the few entities that have marks of their own.
#[derive(Debug, Default)]
pub(crate) struct ResolvedMarks {
    site: SubjectMarks,
    entities: HashMap<u32, SubjectMarks>,
}

/// Trend starts and exclusion windows of one tested series group, per metric.
#[derive(Debug, Default, Clone)]
pub(crate) struct SubjectMarks {
    trend_start: [Option<Tick>; 4],
    windows: Vec<(u8, Tick, Tick)>,
}

impl SubjectMarks {
    fn add_trend(&mut self, metric: Option<Metric>, start: Tick) {
        let mask = metric_mask(metric);
        for (i, t) in self.trend_start.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *t = Some(t.map_or(start, |old| old.max(start)));
            }
        }
    }

    fn merge(&mut self, other: &SubjectMarks) {
        for (i, t) in other.trend_start.iter().enumerate() {
            if let Some(t) = *t {
                self.add_trend(Some(Metric::ALL[i]), t);
            }
        }
        self.windows.extend_from_slice(&other.windows);
    }

    /// Whether the point of `metric` at `at` may not be used in a baseline.
    #[inline]
    pub(crate) fn excludes(&self, metric: Metric, at: Tick) -> bool {
        let bit = 1 << metric.index();
        self.trend_start[metric.index()].is_some_and(|s| at < s)
            || self
                .windows
                .iter()
                .any(|&(mask, from, to)| mask & bit != 0 && (from..to).contains(&at))
    }
}

impl ResolvedMarks {
    /// Resolves `marks` for detection at `tick`; trends that start after `tick` do not
    /// apply yet.
    pub(crate) fn new(marks: &MarkContext, entities: &[SeriesKey], tick: Tick) -> Self {
        let mut r = ResolvedMarks::default();
        let trends: Vec<&TrendStart> = marks
            .trend_starts
            .iter()
            .filter(|t| t.start <= tick)
            .collect();
        let mut specific = false;
        for t in &trends {
            if t.scope == Scope::Site {
                r.site.add_trend(t.metric, t.start);
            } else {
                specific = true;
            }
        }
        for w in &marks.exclusions {
            if w.scope == Scope::Site {
                r.site.windows.push((metric_mask(w.metric), w.from, w.to));
            } else {
                specific = true;
            }
        }
        if specific {
            for (e, key) in entities.iter().enumerate() {
                let mut m = SubjectMarks::default();
                let mut any = false;
                for t in trends
                    .iter()
                    .filter(|t| t.scope != Scope::Site && t.scope.matches(key))
                {
                    m.add_trend(t.metric, t.start);
                    any = true;
                }
                for w in marks
                    .exclusions
                    .iter()
                    .filter(|w| w.scope != Scope::Site && w.scope.matches(key))
                {
                    m.windows.push((metric_mask(w.metric), w.from, w.to));
                    any = true;
                }
                if any {
                    r.entities.insert(e as u32, m);
                }
            }
        }
        r
    }

    /// Site-wide marks.
    pub(crate) fn site(&self) -> &SubjectMarks {
        &self.site
    }

    /// The marks of a series group made of `parts` (entity indices), site-wide ones
    /// excluded; `None` when none applies.
    pub(crate) fn for_parts(&self, parts: &[u32]) -> Option<SubjectMarks> {
        if self.entities.is_empty() {
            return None;
        }
        let mut found: Option<SubjectMarks> = None;
        for p in parts {
            if let Some(m) = self.entities.get(p) {
                found.get_or_insert_with(SubjectMarks::default).merge(m);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: u32, b: u32) -> SeriesKey {
        SeriesKey::edge(EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        })
    }

    #[test]
    fn marks_resolve_by_scope_and_metric() {
        let marks = MarkContext {
            trend_starts: vec![
                TrendStart {
                    scope: Scope::Cluster {
                        cluster: ClusterId(1),
                    },
                    metric: None,
                    start: 100,
                },
                TrendStart {
                    scope: Scope::Site,
                    metric: Some(Metric::Errors),
                    start: 50,
                },
                TrendStart {
                    scope: Scope::Site,
                    metric: None,
                    start: 10_000,
                }, // future: ignored
            ],
            exclusions: vec![ExclusionWindow {
                scope: Scope::Edge {
                    edge: key(2, 3).edge,
                },
                metric: Some(Metric::Latency),
                from: 10,
                to: 20,
            }],
        };
        let r = ResolvedMarks::new(&marks, &[key(0, 1), key(2, 3), key(4, 5)], 1_000);
        assert!(r.site().excludes(Metric::Errors, 49));
        assert!(!r.site().excludes(Metric::Latency, 49));
        let m0 = r.for_parts(&[0]).unwrap();
        assert!(m0.excludes(Metric::Requests, 99) && !m0.excludes(Metric::Requests, 100));
        let m1 = r.for_parts(&[1]).unwrap();
        assert!(m1.excludes(Metric::Latency, 19) && !m1.excludes(Metric::Latency, 20));
        assert!(!m1.excludes(Metric::Requests, 15));
        assert!(r.for_parts(&[2]).is_none());
        let both = r.for_parts(&[0, 1]).unwrap();
        assert!(both.excludes(Metric::Latency, 15) && both.excludes(Metric::Errors, 99));
    }

    #[test]
    fn empty_windows_are_rejected() {
        let marks = MarkContext {
            exclusions: vec![ExclusionWindow {
                scope: Scope::Site,
                metric: None,
                from: 5,
                to: 5,
            }],
            ..MarkContext::default()
        };
        assert!(marks.validate().is_err());
    }
}
