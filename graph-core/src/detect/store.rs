//! [`FrameStore`]: the in-memory, time-major [`SeriesView`].

use std::collections::{BTreeMap, HashMap};

use crate::model::{BucketWidth, Counters, Metric, Tick};
use crate::{Error, Result};

use super::result::TickDetections;
use super::series::{Column, MethodId, PointFlags, SeriesKey, SeriesView};

/// History held in memory as one [`Column`] per tick over all entities, plus the
/// site-wide activity series. Only the ticks that were written exist, so a store fed
/// with [`DetectConfig::ticks_needed`] holds about a hundred columns, not six weeks.
///
/// Memory: [`Cell::BYTES`](super::Cell::BYTES) (16) per entity per stored tick, i.e. 4 bytes per series
/// (entity and metric) per tick.
///
/// # Example
///
/// ```
/// use graph_core::detect::{FrameStore, SeriesKey, SeriesView};
/// use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey};
///
/// let mut store = FrameStore::new(BucketWidth::FIVE_MINUTES);
/// let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
/// let c = Counters { requests: 100.0, errors: 1.0, latency_ms_sum: 2_000.0 };
/// let e = store.insert(600, key, &c).unwrap();
/// assert_eq!(store.counters(e, 600), Some(c));
/// assert!(store.insert(601, key, &c).is_err()); // not a bucket start
/// ```
///
/// [`DetectConfig::ticks_needed`]: super::DetectConfig::ticks_needed
#[derive(Debug, Clone)]
pub struct FrameStore {
    width: BucketWidth,
    entities: Vec<SeriesKey>,
    index: HashMap<SeriesKey, usize>,
    methods: Vec<String>,
    method_index: HashMap<String, MethodId>,
    columns: BTreeMap<Tick, Column>,
    activity: BTreeMap<Tick, f64>,
}

impl FrameStore {
    /// An empty store with buckets of `width`.
    pub fn new(width: BucketWidth) -> Self {
        FrameStore {
            width,
            entities: Vec::new(),
            index: HashMap::new(),
            methods: Vec::new(),
            method_index: HashMap::new(),
            columns: BTreeMap::new(),
            activity: BTreeMap::new(),
        }
    }

    /// The id of method `name`, adding it if new.
    ///
    /// # Complexity
    ///
    /// O(1) expected.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::FrameStore;
    /// use graph_core::model::BucketWidth;
    /// let mut s = FrameStore::new(BucketWidth::ONE_MINUTE);
    /// let id = s.intern_method("getUser");
    /// assert_eq!(s.intern_method("getUser"), id);
    /// assert_eq!(s.method_name(id), Some("getUser"));
    /// ```
    pub fn intern_method(&mut self, name: &str) -> MethodId {
        if let Some(&id) = self.method_index.get(name) {
            return id;
        }
        let id = MethodId(self.methods.len() as u32);
        self.methods.push(name.to_owned());
        self.method_index.insert(name.to_owned(), id);
        id
    }

    /// The name of method `id`.
    pub fn method_name(&self, id: MethodId) -> Option<&str> {
        self.methods.get(id.0 as usize).map(String::as_str)
    }

    /// The index of entity `key`, if known.
    pub fn entity(&self, key: &SeriesKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The index of entity `key`, adding it if new. Existing columns are not touched:
    /// the new entity simply has no data in them.
    pub fn add_entity(&mut self, key: SeriesKey) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.entities.len();
        self.entities.push(key);
        self.index.insert(key, i);
        i
    }

    fn check_tick(&self, tick: Tick) -> Result<()> {
        if tick.rem_euclid(self.width.seconds()) != 0 {
            return Err(Error::InvalidInput(format!(
                "tick {tick} is not a multiple of the bucket width {}s",
                self.width.seconds()
            )));
        }
        Ok(())
    }

    fn check_entity(&self, entity: usize) -> Result<()> {
        if entity >= self.entities.len() {
            return Err(Error::InvalidInput(format!(
                "entity {entity} does not exist (the store has {})",
                self.entities.len()
            )));
        }
        Ok(())
    }

    /// Records `counters` for `key` at `tick` (adding the entity if new) and returns the
    /// entity index. Unusable counters (NaN, infinite, negative) are kept and later
    /// reported as invalid data.
    ///
    /// # Complexity
    ///
    /// O(log T) for T stored ticks, plus O(E) when the column first grows to E entities.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{FrameStore, SeriesKey, SeriesView};
    /// use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey};
    /// let mut s = FrameStore::new(BucketWidth::FIVE_MINUTES);
    /// let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
    /// let e = s.insert(0, key, &Counters::default()).unwrap();
    /// assert_eq!(s.entities(), &[key]);
    /// assert_eq!(s.counters(e, 0), Some(Counters::default()));
    /// ```
    pub fn insert(&mut self, tick: Tick, key: SeriesKey, counters: &Counters) -> Result<usize> {
        self.check_tick(tick)?;
        let e = self.add_entity(key);
        self.columns.entry(tick).or_default().set(e, counters);
        Ok(e)
    }

    /// Records `counters` for an existing `entity` at `tick`.
    pub fn set(&mut self, entity: usize, tick: Tick, counters: &Counters) -> Result<()> {
        self.check_tick(tick)?;
        self.check_entity(entity)?;
        self.columns.entry(tick).or_default().set(entity, counters);
        Ok(())
    }

    /// Forgets what is known of `entity` at `tick`, so detection reports the point as
    /// missing instead of testing it (used for data whose source is behind).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{FrameStore, SeriesKey, SeriesView};
    /// use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey};
    /// let mut s = FrameStore::new(BucketWidth::FIVE_MINUTES);
    /// let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
    /// let e = s.insert(0, key, &Counters::default()).unwrap();
    /// s.clear(e, 0);
    /// assert_eq!(s.counters(e, 0), None);
    /// ```
    pub fn clear(&mut self, entity: usize, tick: Tick) {
        if let Some(col) = self.columns.get_mut(&tick) {
            col.clear(entity);
        }
    }

    /// Replaces the flags of (`entity`, `metric`) at `tick`.
    pub fn set_flags(
        &mut self,
        entity: usize,
        metric: Metric,
        tick: Tick,
        flags: PointFlags,
    ) -> Result<()> {
        self.check_tick(tick)?;
        self.check_entity(entity)?;
        self.columns
            .entry(tick)
            .or_default()
            .set_flags(entity, metric, flags);
        Ok(())
    }

    /// Replaces the whole column of `tick` (cells in entity order).
    pub fn insert_column(&mut self, tick: Tick, column: Column) -> Result<()> {
        self.check_tick(tick)?;
        self.columns.insert(tick, column);
        Ok(())
    }

    /// Records the site-wide activity at `tick`.
    pub fn set_activity(&mut self, tick: Tick, value: f64) -> Result<()> {
        self.check_tick(tick)?;
        self.activity.insert(tick, value);
        Ok(())
    }

    /// Writes the flags that `detections` concluded for its tick: clears the tick's
    /// flags, then sets those of every candidate, storm member and anomaly, so the next
    /// ticks can exclude them from baselines and follow streaks.
    ///
    /// # Complexity
    ///
    /// O(E + F) for E cells in the column and F flagged points.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{FrameStore, TickDetections};
    /// use graph_core::model::BucketWidth;
    /// let mut s = FrameStore::new(BucketWidth::FIVE_MINUTES);
    /// s.apply_flags(&TickDetections::empty(300, BucketWidth::FIVE_MINUTES)).unwrap();
    /// ```
    pub fn apply_flags(&mut self, detections: &TickDetections) -> Result<()> {
        self.check_tick(detections.tick)?;
        let col = self.columns.entry(detections.tick).or_default();
        col.clear_flags();
        for p in detections.flag_points() {
            col.set_flags(p.entity as usize, p.metric, p.flags);
        }
        Ok(())
    }

    /// Drops every column and activity value before `tick`, e.g. what no baseline
    /// reaches any more.
    ///
    /// # Complexity
    ///
    /// O(log T) to split, plus freeing the dropped columns.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{DetectConfig, FrameStore, SeriesKey};
    /// use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey, WEEK};
    /// let width = BucketWidth::FIVE_MINUTES;
    /// let mut s = FrameStore::new(width);
    /// let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
    /// for t in [0, WEEK, 8 * WEEK] {
    ///     s.insert(t, key, &Counters::default()).unwrap();
    /// }
    /// let oldest_needed = DetectConfig::default().ticks_needed(8 * WEEK, width)[0];
    /// s.evict_before(oldest_needed);
    /// assert_eq!(s.ticks().collect::<Vec<_>>(), vec![8 * WEEK]);
    /// ```
    pub fn evict_before(&mut self, tick: Tick) {
        self.columns = self.columns.split_off(&tick);
        self.activity = self.activity.split_off(&tick);
    }

    /// The stored ticks, in order.
    pub fn ticks(&self) -> impl Iterator<Item = Tick> + '_ {
        self.columns.keys().copied()
    }

    /// Heap bytes held by the columns (the bulk of the store).
    ///
    /// # Complexity
    ///
    /// O(T) for T stored ticks.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::{Cell, FrameStore, SeriesKey};
    /// use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey};
    /// let mut s = FrameStore::new(BucketWidth::FIVE_MINUTES);
    /// let key = SeriesKey::edge(EdgeKey { src: ClusterId(0), dst: ClusterId(1) });
    /// s.insert(0, key, &Counters::default()).unwrap();
    /// assert!(s.column_bytes() >= Cell::BYTES);
    /// ```
    pub fn column_bytes(&self) -> usize {
        self.columns.values().map(Column::heap_bytes).sum()
    }
}

impl SeriesView for FrameStore {
    fn bucket_width(&self) -> BucketWidth {
        self.width
    }

    fn entities(&self) -> &[SeriesKey] {
        &self.entities
    }

    fn column(&self, tick: Tick) -> Option<&Column> {
        self.columns.get(&tick)
    }

    fn activity(&self, tick: Tick) -> Option<f64> {
        self.activity.get(&tick).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterId, EdgeKey};

    fn key(a: u32, b: u32) -> SeriesKey {
        SeriesKey::edge(EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        })
    }

    #[test]
    fn entities_added_later_have_no_data_in_older_columns() {
        let mut s = FrameStore::new(BucketWidth::FIVE_MINUTES);
        let c = Counters {
            requests: 1.0,
            errors: 0.0,
            latency_ms_sum: 1.0,
        };
        s.insert(0, key(0, 1), &c).unwrap();
        let late = s.insert(300, key(1, 2), &c).unwrap();
        assert_eq!(s.counters(late, 0), None);
        assert_eq!(s.counters(late, 300), Some(c));
        assert!(s.set(9, 0, &c).is_err());
    }

    #[test]
    fn evicting_keeps_the_tick_itself() {
        let mut s = FrameStore::new(BucketWidth::ONE_MINUTE);
        for t in 0..5 {
            s.insert(t * 60, key(0, 1), &Counters::default()).unwrap();
            s.set_activity(t * 60, 1.0).unwrap();
        }
        s.evict_before(120);
        assert_eq!(s.ticks().collect::<Vec<_>>(), vec![120, 180, 240]);
        assert_eq!(s.activity(60), None);
        assert_eq!(s.activity(120), Some(1.0));
    }
}
