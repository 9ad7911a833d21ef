//! Aggregation of server-level call statistics into cluster edges per bucket: sums
//! for counts and latency sums (so the mean latency is request-weighted), for the edge
//! as a whole and per method, plus the server pairs behind each cluster edge for
//! drill-down.

use rustc_hash::FxHashMap;

use graph_core::detect::{MethodId, SeriesKey};
use graph_core::model::{BucketWidth, ClusterId, Counters, EdgeKey, Tick};

use crate::ingest::CallRecord;
use crate::topology::Topology;

/// The result of aggregating a batch.
#[derive(Debug, Default)]
pub struct Aggregated {
    /// Counters per bucket and entity (edge total and per method).
    pub cells: FxHashMap<(Tick, SeriesKey), Counters>,
    /// Counters per bucket, cluster edge and server pair (server ids from the
    /// interner), summed over methods.
    pub pairs: FxHashMap<(Tick, EdgeKey, u32, u32), Counters>,
    /// Records left aside because a server is unmapped.
    pub unmapped_records: u64,
    /// Records aggregated.
    pub records: u64,
}

/// Aggregates `records` into buckets of `width`, mapping servers with `topology` (which
/// counts unmapped servers). See [`aggregate_with`].
pub fn aggregate(
    records: &[CallRecord],
    topology: &mut Topology,
    width: BucketWidth,
    intern: &mut impl FnMut(&str) -> MethodId,
) -> Aggregated {
    let mut servers: FxHashMap<String, u32> = FxHashMap::default();
    let mut server = |name: &str| {
        let next = servers.len() as u32;
        *servers.entry(name.to_string()).or_insert(next)
    };
    aggregate_with(
        records,
        &mut |s, service| match service {
            Some(name) => Some(topology.cluster_named(name)),
            None => topology.resolve(s),
        },
        width,
        intern,
        &mut server,
    )
}

/// Aggregates `records` into buckets of `width`. Servers are mapped to clusters with
/// `resolve`, given the server and the service the record names for it, if any
/// (records naming a server it does not know are counted and left aside);
/// method names are interned with `intern`, server names with `server`.
///
/// # Complexity
/// O(records) hash operations.
pub fn aggregate_with(
    records: &[CallRecord],
    resolve: &mut impl FnMut(&str, Option<&str>) -> Option<ClusterId>,
    width: BucketWidth,
    intern: &mut impl FnMut(&str) -> MethodId,
    server: &mut impl FnMut(&str) -> u32,
) -> Aggregated {
    let mut out = Aggregated::default();
    for r in records {
        let (Some(src), Some(dst)) = (
            resolve(&r.src, r.src_service.as_deref()),
            resolve(&r.dst, r.dst_service.as_deref()),
        ) else {
            out.unmapped_records += 1;
            continue;
        };
        let tick = width.floor(r.ts);
        let edge = EdgeKey { src, dst };
        let c = Counters {
            requests: r.requests as f64,
            errors: r.errors as f64,
            latency_ms_sum: r.latency_ms_sum,
        };
        out.cells
            .entry((tick, SeriesKey::edge(edge)))
            .or_default()
            .add(&c);
        if let Some(m) = &r.method {
            out.cells
                .entry((tick, SeriesKey::method(edge, intern(m))))
                .or_default()
                .add(&c);
        }
        out.pairs
            .entry((tick, edge, server(&r.src), server(&r.dst)))
            .or_default()
            .add(&c);
        out.records += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyFile;

    fn rec(ts: i64, src: &str, dst: &str, method: &str, requests: u64, lat: f64) -> CallRecord {
        CallRecord {
            ts,
            src: src.into(),
            dst: dst.into(),
            method: Some(method.into()),
            requests,
            errors: 1,
            latency_ms_sum: lat,
            interval_s: None,
            src_service: None,
            dst_service: None,
        }
    }

    #[test]
    fn sums_per_bucket_edge_and_method_with_request_weighted_latency() {
        let file: TopologyFile = serde_json::from_str(
            r#"{"version": 1, "rules": [{"pattern": "(?P<service>[a-z]+)-(?P<dc>dc\\d)-\\d+"}], "split_services": ["web"]}"#,
        )
        .unwrap();
        let mut topo = Topology::from_file_contents(file, None).unwrap();
        let mut methods: Vec<String> = Vec::new();
        let mut intern = |m: &str| {
            let i = methods.iter().position(|x| x == m).unwrap_or_else(|| {
                methods.push(m.to_string());
                methods.len() - 1
            });
            MethodId(i as u32)
        };
        let records = vec![
            rec(600, "web-dc1-1", "api-dc1-1", "get", 10, 100.0), // 10 ms mean
            rec(700, "web-dc1-2", "api-dc2-7", "get", 30, 900.0), // 30 ms mean, same bucket
            rec(650, "web-dc1-1", "api-dc1-1", "put", 10, 500.0), // other method
            rec(900, "web-dc1-1", "api-dc1-1", "get", 5, 5.0),    // next bucket
            rec(600, "web-dc1-1", "mystery", "get", 5, 5.0),      // unmapped
        ];
        let agg = aggregate(&records, &mut topo, BucketWidth::FIVE_MINUTES, &mut intern);
        assert_eq!((agg.records, agg.unmapped_records), (4, 1));
        let cat = topo.catalog();
        let edge = EdgeKey {
            src: cat.id("web-dc1").unwrap(),
            dst: cat.id("api").unwrap(),
        };
        let total = agg.cells[&(600, SeriesKey::edge(edge))];
        assert_eq!(total.requests, 50.0);
        assert_eq!(
            total.metric(graph_core::model::Metric::Latency),
            Some(1500.0 / 50.0)
        );
        let get = agg.cells[&(600, SeriesKey::method(edge, MethodId(0)))];
        assert_eq!(get.requests, 40.0);
        assert_eq!(agg.cells[&(900, SeriesKey::edge(edge))].requests, 5.0);
        let pairs = agg
            .pairs
            .keys()
            .filter(|(t, e, _, _)| *t == 600 && *e == edge);
        assert_eq!(pairs.count(), 2);
        assert_eq!(topo.unmapped().get("mystery"), Some(&1));
    }
}
