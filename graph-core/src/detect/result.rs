//! What one detection tick returns: [`TickDetections`] and its parts.

use serde::{Deserialize, Serialize};

use crate::model::{BucketWidth, ClusterId, Direction, Metric, Tick};

use super::series::{MethodId, PointFlags, SeriesKey};
use super::severity::Severity;

/// Which baseline a test used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// Same time of week, previous weeks.
    Weekly,
    /// Same time of day, previous days.
    Daily,
    /// The recent past before the current episode.
    Trailing,
}

/// The baseline a test used and how many values it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineUsed {
    /// Which baseline.
    pub kind: BaselineKind,
    /// Values in it (the test ran over `n + 1` points).
    pub n: u32,
}

/// One end of a combined (maintenance-mode) series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// A single cluster.
    Cluster {
        /// The cluster.
        cluster: ClusterId,
    },
    /// All data-centre parts of a service.
    Service {
        /// The service name.
        service: String,
    },
}

/// What was tested: one entity of the view, or in maintenance mode the sum of the
/// per-data-centre parts of a service pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// One entity.
    Series {
        /// Its index in the view.
        entity: u32,
        /// Its key.
        key: SeriesKey,
    },
    /// The sum over several entities.
    Combined {
        /// Caller side.
        src: Endpoint,
        /// Callee side.
        dst: Endpoint,
        /// The method, for per-method entities.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<MethodId>,
        /// The summed entities (indices in the view), ascending.
        parts: Vec<u32>,
    },
}

impl Subject {
    /// The entities whose counters were tested.
    ///
    /// ```
    /// use graph_core::detect::{SeriesKey, Subject};
    /// use graph_core::model::{ClusterId, EdgeKey};
    /// let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
    /// assert_eq!(Subject::Series { entity: 4, key }.entities(), &[4]);
    /// ```
    pub fn entities(&self) -> &[u32] {
        match self {
            Subject::Series { entity, .. } => std::slice::from_ref(entity),
            Subject::Combined { parts, .. } => parts,
        }
    }
}

/// Everything measured about a series that passed Grubbs' test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was tested.
    pub subject: Subject,
    /// Which metric.
    pub metric: Metric,
    /// The current value.
    pub value: f64,
    /// What was expected: the baseline mean, times the activity ratio for counts.
    pub expected: f64,
    /// Mean of the baseline values.
    pub baseline_mean: f64,
    /// Sample standard deviation of the baseline values.
    pub baseline_std_dev: f64,
    /// Which baseline, with how many values.
    pub baseline: BaselineUsed,
    /// Grubbs' statistic of the (activity-adjusted) value among baseline and value.
    pub g: f64,
    /// The critical value it exceeded.
    pub g_crit: f64,
    /// `(value − expected) / expected`; `None` when nothing was expected.
    pub relative_deviation: Option<f64>,
    /// Whether the value is above (`up`) or below (`down`) the expectation.
    pub direction: Direction,
    /// The activity ratio the expectation was scaled by (counts only).
    pub activity_ratio: Option<f64>,
    /// True on a configured key edge.
    pub key_edge: bool,
    /// How bad it is.
    pub severity: Severity,
    /// First tick of the current streak of candidate ticks.
    pub onset: Tick,
    /// Consecutive candidate ticks up to and including this one.
    pub streak: u32,
    /// Set when a latency finding came from the own-time test ([`OwnTime`]): the
    /// baseline numbers and Grubbs' statistic are then the callee's own time's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_time: Option<OwnTime>,
}

/// The own-time test's reading of a call into a cluster: the latency of the call is
/// the callee's own time plus its downstream time per request. The finding's expected
/// latency is the usual own time plus today's downstream time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnTime {
    /// The callee's own time now, in ms: the call's latency minus `downstream_ms`.
    pub own_ms: f64,
    /// The callee's downstream time per request it serves now, in ms: the latency sums
    /// of its calls over the requests into it.
    pub downstream_ms: f64,
}

/// Why a finding is not reported as an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The deviation is below the configured minimum.
    SmallDeviation {
        /// The relative minimum that applied (0 on key edges).
        min_relative: f64,
        /// The absolute minimum that applied.
        min_absolute: f64,
    },
    /// The value is unremarkable once the expectation follows site-wide activity. The
    /// finding shows the unadjusted numbers.
    Activity {
        /// Applied activity ratio.
        ratio: f64,
        /// Grubbs' statistic after the adjustment.
        adjusted_g: f64,
    },
    /// Not enough consecutive candidate ticks yet (noisy series).
    Persistence {
        /// Consecutive candidate ticks so far.
        streak: u32,
        /// Ticks required.
        required: u32,
    },
    /// Part of a data-centre storm, reported once in [`TickDetections::storms`].
    Storm {
        /// The data centre.
        dc: String,
    },
    /// A per-data-centre part, tested as part of its sum in maintenance mode.
    Maintenance,
}

/// A finding that a filter suppressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppressed {
    /// The numbers.
    pub finding: Finding,
    /// The filter that suppressed it.
    pub reason: SuppressionReason,
}

/// Why a series has no current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingReason {
    /// Nothing recorded for this tick.
    NoData,
    /// No requests, so latency and error rate are undefined.
    NoRequests,
    /// The recorded counters are unusable (NaN, infinite, negative).
    Invalid,
}

/// A series without a current value: never an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingSeries {
    /// Which series.
    pub subject: Subject,
    /// Which metric.
    pub metric: Metric,
    /// Why.
    pub reason: MissingReason,
}

/// A series whose baselines are all too small to test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsufficientBaseline {
    /// Which series.
    pub subject: Subject,
    /// Which metric.
    pub metric: Metric,
    /// Usable weekly values found.
    pub weekly: u32,
    /// Usable daily values found.
    pub daily: u32,
    /// Usable trailing values found.
    pub trailing: u32,
}

/// Many edges of one data centre slowed down at once: one event instead of dozens of edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DcStorm {
    /// The data centre.
    pub dc: String,
    /// The tick.
    pub tick: Tick,
    /// Its edges with latency candidates.
    pub edges_affected: u32,
    /// Its edges with a latency test this tick.
    pub edges_total: u32,
    /// `edges_affected / edges_total`.
    pub share: f64,
}

/// Today's site activity against its norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityAdjustment {
    /// Activity at the tick.
    pub current: f64,
    /// Mean of its baseline.
    pub baseline_mean: f64,
    /// Which baseline.
    pub baseline: BaselineUsed,
    /// `current / baseline_mean`.
    pub raw_ratio: f64,
    /// The ratio applied to count expectations (clamped, or 1 when disabled).
    pub ratio: f64,
}

/// Flags concluded for one point at the detection tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagPoint {
    /// Entity index.
    pub entity: u32,
    /// Metric.
    pub metric: Metric,
    /// Flags.
    pub flags: PointFlags,
}

/// Counts for one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Series (subject and metric) considered.
    pub series: u32,
    /// Series that were tested.
    pub tested: u32,
    /// Series that passed the test and the deviation filters.
    pub candidates: u32,
    /// Reported anomalies.
    pub detections: u32,
    /// Suppressed findings.
    pub suppressed: u32,
    /// Series without a current value.
    pub missing: u32,
    /// Series with too little baseline.
    pub insufficient: u32,
}

/// The outcome of one detection tick. All lists are in a deterministic order: by
/// subject (entity order; combined series by their first part) then metric; storms by
/// data centre name. Equality and the serialised form leave out the per-edge
/// expectations, which are a by-product for ranking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TickDetections {
    /// The tick.
    pub tick: Tick,
    /// Bucket width of the data.
    pub bucket_width: BucketWidth,
    /// Reported anomalies.
    pub detections: Vec<Finding>,
    /// Findings suppressed by a filter, with the reason.
    pub suppressed: Vec<Suppressed>,
    /// Series without a current value.
    pub missing: Vec<MissingSeries>,
    /// Series that could not be tested for lack of baseline.
    pub insufficient: Vec<InsufficientBaseline>,
    /// Data-centre storm events.
    pub storms: Vec<DcStorm>,
    /// The activity adjustment, when site activity and its baseline were available.
    pub activity: Option<ActivityAdjustment>,
    /// Counts.
    pub summary: Summary,
    /// Non-empty flags per (entity, metric), sorted.
    pub(crate) flags: Vec<FlagPoint>,
    /// What each tested edge total was expected to be, by entity. Ranking reads these
    /// so it compares against the same baseline detection chose; not stored.
    #[serde(skip)]
    pub(crate) expectations: Vec<Expectation>,
}

impl PartialEq for TickDetections {
    fn eq(&self, other: &Self) -> bool {
        let TickDetections {
            tick,
            bucket_width,
            detections,
            suppressed,
            missing,
            insufficient,
            storms,
            activity,
            summary,
            flags,
            expectations: _,
        } = self;
        *tick == other.tick
            && *bucket_width == other.bucket_width
            && *detections == other.detections
            && *suppressed == other.suppressed
            && *missing == other.missing
            && *insufficient == other.insufficient
            && *storms == other.storms
            && *activity == other.activity
            && *summary == other.summary
            && *flags == other.flags
    }
}

/// The expectation of one edge total's metrics at a tick: the mean of the baseline
/// detection chose for each metric (counts scaled by the activity ratio), and which
/// baseline that was. `None` where the metric had no current value or too little
/// baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expectation {
    /// Entity index.
    pub entity: u32,
    /// Expected value per metric (index [`Metric::index`]).
    pub values: [Option<f64>; 4],
    /// The baseline behind each value.
    pub baselines: [Option<BaselineKind>; 4],
}

impl Expectation {
    /// The expected value of `metric` and its baseline.
    pub fn get(&self, metric: Metric) -> Option<(f64, BaselineKind)> {
        let i = metric.index();
        Some((self.values[i]?, self.baselines[i]?))
    }
}

impl TickDetections {
    /// A result with nothing in it.
    pub fn empty(tick: Tick, bucket_width: BucketWidth) -> Self {
        TickDetections {
            tick,
            bucket_width,
            detections: Vec::new(),
            suppressed: Vec::new(),
            missing: Vec::new(),
            insufficient: Vec::new(),
            storms: Vec::new(),
            activity: None,
            summary: Summary::default(),
            flags: Vec::new(),
            expectations: Vec::new(),
        }
    }

    /// What detection expected of edge total `entity` at this tick (see
    /// [`Expectation`]); `None` when it was not tested.
    ///
    /// O(log E) for E tested edge totals.
    pub fn expectation(&self, entity: usize) -> Option<&Expectation> {
        let entity = u32::try_from(entity).ok()?;
        self.expectations
            .binary_search_by_key(&entity, |e| e.entity)
            .ok()
            .map(|i| &self.expectations[i])
    }

    /// The flags to store for (`entity`, `metric`) at this tick. In maintenance mode a
    /// part carries the flags of its combined series.
    ///
    /// # Complexity
    ///
    /// O(log F) for F flagged points.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{PointFlags, TickDetections};
    /// use graph_core::model::{BucketWidth, Metric};
    /// let t = TickDetections::empty(0, BucketWidth::FIVE_MINUTES);
    /// assert_eq!(t.flags_for(3, Metric::Latency), PointFlags::EMPTY);
    /// ```
    pub fn flags_for(&self, entity: usize, metric: Metric) -> PointFlags {
        let Ok(entity) = u32::try_from(entity) else {
            return PointFlags::EMPTY;
        };
        self.flags
            .binary_search_by(|p| (p.entity, p.metric).cmp(&(entity, metric)))
            .map_or(PointFlags::EMPTY, |i| self.flags[i].flags)
    }

    /// Every point with non-empty flags, by entity then metric; all others are empty.
    pub fn flag_points(&self) -> &[FlagPoint] {
        &self.flags
    }
}
