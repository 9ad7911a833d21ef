//! A callee's own time: the latency of a call into a cluster minus the time that
//! cluster spends in its own downstream calls per request.
//!
//! A callee that slows down by itself (CPU contention, a slow handler) adds its extra
//! time to every call into it while its downstream calls stay as they were. When those
//! downstream calls are most of the latency, their ordinary ups and downs hide a change
//! of the callee's own part: search called at 45 ± 5 ms, of which 35 ms are its calls to
//! catalog, spending 16 ms instead of 9 of its own is lost in the total but plain in what
//! is left once the downstream time is taken out. The downstream time per request
//! counts every call the cluster makes, as if made one after the other; calls made in
//! parallel make the own time smaller than it is (even negative), which does not matter
//! to a test of its change against its own baseline.

use std::collections::HashMap;

use crate::model::ClusterId;

use super::series::{CellValue, Column, SeriesKey};

/// Each cluster's incoming and outgoing edge totals (entity indices; no per-method
/// entities, no calls of a cluster to itself).
#[derive(Debug, Default)]
pub(crate) struct Neighbours {
    by_cluster: HashMap<ClusterId, (Vec<u32>, Vec<u32>)>,
}

impl Neighbours {
    /// O(S) for S entities.
    pub(crate) fn new(entities: &[SeriesKey]) -> Self {
        let mut by_cluster: HashMap<ClusterId, (Vec<u32>, Vec<u32>)> = HashMap::new();
        for (i, key) in entities.iter().enumerate() {
            if key.method.is_some() || key.edge.src == key.edge.dst {
                continue;
            }
            by_cluster.entry(key.edge.dst).or_default().0.push(i as u32);
            by_cluster.entry(key.edge.src).or_default().1.push(i as u32);
        }
        Neighbours { by_cluster }
    }

    /// The incoming and outgoing edge totals of `cluster`.
    pub(crate) fn of(&self, cluster: ClusterId) -> (&[u32], &[u32]) {
        self.by_cluster
            .get(&cluster)
            .map_or((&[], &[]), |(i, o)| (i.as_slice(), o.as_slice()))
    }
}

/// The time a cluster with incoming edges `ins` and outgoing edges `outs` spends in its
/// downstream calls per request it serves in `col`: the latency sums of its calls over
/// the requests into it. An edge without data carried no calls; `None` when any is
/// invalid or nothing came in.
pub(crate) fn downstream_per_request(col: &Column, ins: &[u32], outs: &[u32]) -> Option<f64> {
    let sum = |edges: &[u32], f: fn(&crate::model::Counters) -> f64| -> Option<f64> {
        edges
            .iter()
            .try_fold(0.0, |acc, &e| match col.cell(e as usize).value() {
                CellValue::Valid(c) => Some(acc + f(&c)),
                CellValue::NoData => Some(acc),
                CellValue::Invalid => None,
            })
    };
    let requests = sum(ins, |c| c.requests)?;
    if requests <= 0.0 {
        return None;
    }
    Some(sum(outs, |c| c.latency_ms_sum)? / requests)
}

/// The own time of the callee on edge `entity` in `col`: the edge's latency minus the
/// callee's downstream time per request. `None` without a latency or a downstream time.
pub(crate) fn own_time(col: &Column, entity: u32, ins: &[u32], outs: &[u32]) -> Option<OwnReading> {
    let CellValue::Valid(c) = col.cell(entity as usize).value() else {
        return None;
    };
    let latency = c.metric(crate::model::Metric::Latency)?;
    let downstream = downstream_per_request(col, ins, outs)?;
    (latency.is_finite() && downstream.is_finite()).then_some(OwnReading {
        latency,
        downstream,
    })
}

/// One bucket's reading of an edge's latency and its callee's downstream time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OwnReading {
    pub(crate) latency: f64,
    pub(crate) downstream: f64,
}

impl OwnReading {
    /// Latency minus downstream time.
    pub(crate) fn own(&self) -> f64 {
        self.latency - self.downstream
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Counters, EdgeKey};

    fn key(src: u32, dst: u32) -> SeriesKey {
        SeriesKey::edge(EdgeKey {
            src: ClusterId(src),
            dst: ClusterId(dst),
        })
    }

    #[test]
    fn own_time_takes_the_downstream_time_per_request_out() {
        // 0 -> 1 (20 calls at 50 ms), 2 -> 1 (30 calls), 1 -> 3 (100 calls at 4 ms),
        // 1 -> 1 (ignored), 1 -> 4 (no data).
        let entities = [key(0, 1), key(2, 1), key(1, 3), key(1, 1), key(1, 4)];
        let n = Neighbours::new(&entities);
        let (ins, outs) = n.of(ClusterId(1));
        assert_eq!((ins, outs), (&[0u32, 1][..], &[2u32, 4][..]));
        let mut col = Column::new();
        let set = |col: &mut Column, e: usize, r: f64, l: f64| {
            col.set(
                e,
                &Counters {
                    requests: r,
                    errors: 0.0,
                    latency_ms_sum: r * l,
                },
            );
        };
        set(&mut col, 0, 20.0, 50.0);
        set(&mut col, 1, 30.0, 30.0);
        set(&mut col, 2, 100.0, 4.0);
        set(&mut col, 3, 7.0, 1000.0);
        // 400 ms of downstream calls over 50 requests in.
        assert_eq!(downstream_per_request(&col, ins, outs), Some(8.0));
        let r = own_time(&col, 0, ins, outs).unwrap();
        assert_eq!((r.latency, r.downstream, r.own()), (50.0, 8.0, 42.0));
        // Nothing came in: no downstream time per request.
        assert_eq!(downstream_per_request(&Column::new(), ins, outs), None);
        assert_eq!(own_time(&Column::new(), 0, ins, outs), None);
    }
}
