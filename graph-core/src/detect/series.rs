//! The series model: entities, per-point flags, time-major columns and the read-only
//! view the detector reads through.

use std::ops::{BitOr, BitOrAssign};

use serde::{Deserialize, Serialize};

use crate::model::{BucketWidth, Counters, EdgeKey, Metric, Tick};

/// Index of a method name in a view's method table (see [`FrameStore::intern_method`]).
///
/// [`FrameStore::intern_method`]: super::FrameStore::intern_method
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MethodId(pub u32);

/// What additive counters are kept for: a cluster edge, optionally narrowed to one method.
///
/// The edge total and its per-method breakdown are separate entities; a series is an
/// entity together with a [`Metric`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The cluster edge.
    pub edge: EdgeKey,
    /// The method, for a per-method entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<MethodId>,
}

impl SeriesKey {
    /// The whole edge, all methods together.
    pub fn edge(edge: EdgeKey) -> Self {
        SeriesKey { edge, method: None }
    }

    /// One method of an edge.
    pub fn method(edge: EdgeKey, method: MethodId) -> Self {
        SeriesKey {
            edge,
            method: Some(method),
        }
    }
}

/// What detection concluded about one point (entity, metric, tick). Detection writes
/// these back through [`TickDetections::flags_for`] so that later ticks can leave
/// anomalous points out of their baselines and follow streaks.
///
/// ```
/// use graph_core::detect::PointFlags;
/// let f = PointFlags::CANDIDATE | PointFlags::ANOMALOUS;
/// assert!(f.contains(PointFlags::CANDIDATE));
/// assert!(!PointFlags::CANDIDATE.excluded_from_baseline());
/// assert!(f.excluded_from_baseline());
/// ```
///
/// [`TickDetections::flags_for`]: super::TickDetections::flags_for
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "u8", into = "u8")]
#[repr(transparent)]
pub struct PointFlags(u8);

impl PointFlags {
    /// Nothing noteworthy.
    pub const EMPTY: PointFlags = PointFlags(0);
    /// Passed the statistical test and the deviation filters that tick.
    pub const CANDIDATE: PointFlags = PointFlags(1);
    /// Reported as an anomaly (the final flag).
    pub const ANOMALOUS: PointFlags = PointFlags(2);
    /// A candidate folded into a data-centre storm event.
    pub const STORM: PointFlags = PointFlags(4);

    const KNOWN: u8 = 0b111;

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags from raw bits; unknown bits are dropped.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        PointFlags(bits & Self::KNOWN)
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: PointFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when at least one flag of `other` is set in `self`.
    pub const fn intersects(self, other: PointFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// True when no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether a baseline must leave this point out: it was reported anomalous or
    /// belonged to a storm.
    pub const fn excluded_from_baseline(self) -> bool {
        self.intersects(PointFlags(Self::ANOMALOUS.0 | Self::STORM.0))
    }
}

impl From<u8> for PointFlags {
    fn from(bits: u8) -> Self {
        PointFlags::from_bits_truncate(bits)
    }
}

impl From<PointFlags> for u8 {
    fn from(flags: PointFlags) -> u8 {
        flags.bits()
    }
}

impl BitOr for PointFlags {
    type Output = PointFlags;
    fn bitor(self, rhs: PointFlags) -> PointFlags {
        PointFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for PointFlags {
    fn bitor_assign(&mut self, rhs: PointFlags) {
        self.0 |= rhs.0;
    }
}

/// One entity's counters and per-metric flags in one bucket, packed into 16 bytes
/// (`f32` counters: exact for counts up to 2^24 per bucket, 7 significant digits for
/// latency sums).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Cell {
    // NaN: no data. Negative: the input was not usable (NaN, infinite, negative, or more
    // errors than requests).
    requests: f32,
    errors: f32,
    latency_ms_sum: f32,
    flags: [PointFlags; 4],
}

/// What a [`Cell`] holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellValue {
    /// Nothing was recorded for this bucket.
    NoData,
    /// Something was recorded but it is not usable (NaN, infinite, negative, errors > requests).
    Invalid,
    /// Usable counters.
    Valid(Counters),
}

impl Cell {
    /// A cell without data or flags.
    pub const MISSING: Cell = Cell {
        requests: f32::NAN,
        errors: f32::NAN,
        latency_ms_sum: f32::NAN,
        flags: [PointFlags::EMPTY; 4],
    };

    /// Bytes per cell: one entity in one bucket, all four metrics.
    pub const BYTES: usize = std::mem::size_of::<Cell>();

    /// Packs `counters`; unusable input is kept as [`CellValue::Invalid`].
    ///
    /// ```
    /// use graph_core::detect::{Cell, CellValue};
    /// use graph_core::model::Counters;
    /// let ok = Counters { requests: 10.0, errors: 1.0, latency_ms_sum: 50.0 };
    /// assert_eq!(Cell::new(&ok).value(), CellValue::Valid(ok));
    /// let bad = Counters { requests: f64::NAN, ..ok };
    /// assert_eq!(Cell::new(&bad).value(), CellValue::Invalid);
    /// ```
    pub fn new(counters: &Counters) -> Cell {
        let packed = [
            counters.requests as f32,
            counters.errors as f32,
            counters.latency_ms_sum as f32,
        ];
        let usable = packed.iter().all(|v| v.is_finite() && *v >= 0.0) && packed[1] <= packed[0];
        if usable {
            Cell {
                requests: packed[0],
                errors: packed[1],
                latency_ms_sum: packed[2],
                flags: [PointFlags::EMPTY; 4],
            }
        } else {
            Cell {
                requests: -1.0,
                ..Cell::MISSING
            }
        }
    }

    /// The counters, or why there are none.
    #[inline]
    pub fn value(&self) -> CellValue {
        if self.requests >= 0.0 {
            CellValue::Valid(Counters {
                requests: f64::from(self.requests),
                errors: f64::from(self.errors),
                latency_ms_sum: f64::from(self.latency_ms_sum),
            })
        } else if self.requests.is_nan() {
            CellValue::NoData
        } else {
            CellValue::Invalid
        }
    }

    /// The counters, when usable.
    #[inline]
    pub fn counters(&self) -> Option<Counters> {
        match self.value() {
            CellValue::Valid(c) => Some(c),
            _ => None,
        }
    }

    /// The flags of `metric`.
    #[inline]
    pub fn flags(&self, metric: Metric) -> PointFlags {
        self.flags[metric.index()]
    }

    /// The flags of all metrics, in [`Metric::ALL`] order.
    #[inline]
    pub fn all_flags(&self) -> [PointFlags; 4] {
        self.flags
    }

    /// Replaces the flags of `metric`.
    pub fn set_flags(&mut self, metric: Metric, flags: PointFlags) {
        self.flags[metric.index()] = flags;
    }
}

/// All entities in one bucket: entity `i` of the view is cell `i`. Entities past the
/// end have no data, so a column may be shorter than the entity list.
#[derive(Debug, Clone, Default)]
pub struct Column {
    cells: Vec<Cell>,
}

impl Column {
    /// An empty column.
    pub fn new() -> Self {
        Self::default()
    }

    /// A column of cells in entity order.
    pub fn from_cells(cells: Vec<Cell>) -> Self {
        Column { cells }
    }

    /// The cell of `entity`, [`Cell::MISSING`] past the end.
    #[inline]
    pub fn cell(&self, entity: usize) -> Cell {
        self.cells.get(entity).copied().unwrap_or(Cell::MISSING)
    }

    /// All cells.
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn cell_mut(&mut self, entity: usize) -> &mut Cell {
        if entity >= self.cells.len() {
            self.cells.resize(entity + 1, Cell::MISSING);
        }
        &mut self.cells[entity]
    }

    /// Stores `counters` for `entity`, keeping its flags.
    pub fn set(&mut self, entity: usize, counters: &Counters) {
        let cell = self.cell_mut(entity);
        let flags = cell.flags;
        *cell = Cell {
            flags,
            ..Cell::new(counters)
        };
    }

    /// Replaces the flags of (`entity`, `metric`).
    pub fn set_flags(&mut self, entity: usize, metric: Metric, flags: PointFlags) {
        self.cell_mut(entity).set_flags(metric, flags);
    }

    /// Forgets the counters and flags of `entity`: the point reads as missing.
    pub fn clear(&mut self, entity: usize) {
        if let Some(c) = self.cells.get_mut(entity) {
            *c = Cell::MISSING;
        }
    }

    /// Clears every flag in the column.
    pub fn clear_flags(&mut self) {
        for c in &mut self.cells {
            c.flags = [PointFlags::EMPTY; 4];
        }
    }

    /// Heap bytes held by the column.
    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * Cell::BYTES
    }
}

/// The read-only view of series history that [`detect`] reads.
///
/// Data is time-major: [`SeriesView::column`] returns all entities of one bucket, so a
/// detection tick touches only the few dozen columns it needs, each sequentially.
/// [`FrameStore`] is the in-memory implementation; a store that keeps history elsewhere
/// loads the ticks from [`DetectConfig::ticks_needed`] into columns.
///
/// [`detect`]: super::detect
/// [`FrameStore`]: super::FrameStore
/// [`DetectConfig::ticks_needed`]: super::DetectConfig::ticks_needed
pub trait SeriesView {
    /// Width of the buckets; every column's tick is a multiple of it.
    fn bucket_width(&self) -> BucketWidth;

    /// All entities; the position in this slice is the entity index.
    fn entities(&self) -> &[SeriesKey];

    /// The column of `tick`, if any data was recorded for it.
    fn column(&self, tick: Tick) -> Option<&Column>;

    /// The site-wide activity (e.g. users online) in the bucket `tick`, if known.
    fn activity(&self, tick: Tick) -> Option<f64> {
        let _ = tick;
        None
    }

    /// The counters of `entity` at `tick`, when present and usable.
    fn counters(&self, entity: usize, tick: Tick) -> Option<Counters> {
        self.column(tick)?.cell(entity).counters()
    }

    /// The flags of (`entity`, `metric`) at `tick`.
    fn flags(&self, entity: usize, metric: Metric, tick: Tick) -> PointFlags {
        self.column(tick)
            .map_or(PointFlags::EMPTY, |c| c.cell(entity).flags(metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_sixteen_bytes() {
        assert_eq!(Cell::BYTES, 16);
    }

    #[test]
    fn unusable_counters_are_invalid_not_missing() {
        let ok = Counters {
            requests: 4.0,
            errors: 1.0,
            latency_ms_sum: 8.0,
        };
        for bad in [
            Counters {
                requests: f64::INFINITY,
                ..ok
            },
            Counters { errors: -1.0, ..ok },
            Counters {
                latency_ms_sum: f64::NAN,
                ..ok
            },
            Counters { errors: 5.0, ..ok },
            Counters {
                requests: 1e300,
                errors: 0.0,
                latency_ms_sum: 0.0,
            },
        ] {
            assert_eq!(Cell::new(&bad).value(), CellValue::Invalid, "{bad:?}");
        }
        assert_eq!(Cell::MISSING.value(), CellValue::NoData);
        assert_eq!(Column::new().cell(7).value(), CellValue::NoData);
    }

    #[test]
    fn flags_serialise_as_their_bits_and_drop_unknown_ones() {
        let f = PointFlags::CANDIDATE | PointFlags::STORM;
        assert_eq!(serde_json::to_string(&f).unwrap(), "5");
        assert_eq!(
            serde_json::from_str::<PointFlags>("255").unwrap(),
            PointFlags::from_bits_truncate(7)
        );
    }

    #[test]
    fn setting_counters_keeps_flags_and_grows_the_column() {
        let mut col = Column::new();
        col.set_flags(2, Metric::Errors, PointFlags::ANOMALOUS);
        col.set(
            2,
            &Counters {
                requests: 1.0,
                errors: 0.0,
                latency_ms_sum: 3.0,
            },
        );
        assert_eq!(col.len(), 3);
        assert_eq!(col.cell(2).flags(Metric::Errors), PointFlags::ANOMALOUS);
        assert_eq!(col.cell(2).counters().unwrap().latency_ms_sum, 3.0);
        assert_eq!(col.cell(0).value(), CellValue::NoData);
    }
}
