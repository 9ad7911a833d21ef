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

use super::series::{CellValue, Column, SeriesKey};

/// Which clusters call others (by cluster index): their own time differs from their
/// latency. As many entries as cluster indices the entities name.
///
/// O(S) for S entities.
pub(crate) fn clusters_with_calls(entities: &[SeriesKey]) -> Vec<bool> {
    let n = entities
        .iter()
        .map(|k| k.edge.src.0.max(k.edge.dst.0) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut calls = vec![false; n];
    for key in entities.iter().filter(|k| counts(k)) {
        calls[key.edge.src.0 as usize] = true;
    }
    calls
}

/// Whether an entity counts in a cluster's requests in and calls out.
fn counts(key: &SeriesKey) -> bool {
    key.method.is_none() && key.edge.src != key.edge.dst
}

/// Every cluster's downstream time per request it serves in `col`, by cluster index
/// (`clusters` of them): the latency sums of its calls over the requests into it. An
/// edge without data carried no calls; NaN for a cluster with an invalid edge or
/// nothing coming in, and for every cluster without a column.
///
/// O(S) for S entities.
pub(crate) fn downstream_table(
    col: Option<&Column>,
    entities: &[SeriesKey],
    clusters: usize,
) -> Vec<f64> {
    let Some(col) = col else {
        return vec![f64::NAN; clusters];
    };
    let mut requests = vec![0.0; clusters];
    let mut calls = vec![0.0; clusters];
    let mut invalid = vec![false; clusters];
    for (i, key) in entities.iter().enumerate() {
        if !counts(key) {
            continue;
        }
        let (src, dst) = (key.edge.src.0 as usize, key.edge.dst.0 as usize);
        match col.cell(i).value() {
            CellValue::Valid(c) => {
                requests[dst] += c.requests;
                calls[src] += c.latency_ms_sum;
            }
            CellValue::Invalid => {
                invalid[src] = true;
                invalid[dst] = true;
            }
            CellValue::NoData => {}
        }
    }
    (0..clusters)
        .map(|b| {
            if invalid[b] || requests[b] <= 0.0 {
                f64::NAN
            } else {
                calls[b] / requests[b]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterId, Counters, EdgeKey};

    fn key(src: u32, dst: u32) -> SeriesKey {
        SeriesKey::edge(EdgeKey {
            src: ClusterId(src),
            dst: ClusterId(dst),
        })
    }

    #[test]
    fn the_downstream_time_is_the_calls_out_over_the_requests_in() {
        // 0 -> 1 (20 calls), 2 -> 1 (30 calls), 1 -> 3 (100 calls at 4 ms), 1 -> 1
        // (ignored), 1 -> 4 (no data).
        let entities = [key(0, 1), key(2, 1), key(1, 3), key(1, 1), key(1, 4)];
        assert_eq!(
            clusters_with_calls(&entities),
            vec![true, true, true, false, false]
        );
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
        let t = downstream_table(Some(&col), &entities, 5);
        // 400 ms of downstream calls over 50 requests in.
        assert_eq!(t[1], 8.0);
        // Nothing comes into 0, 2 or 4; 3 calls nothing.
        assert!(t[0].is_nan() && t[2].is_nan() && t[4].is_nan());
        assert_eq!(t[3], 0.0);
        assert!(
            downstream_table(None, &entities, 5)
                .iter()
                .all(|v| v.is_nan())
        );
    }
}
