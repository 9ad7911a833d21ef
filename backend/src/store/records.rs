//! What the store keeps besides series cells: analysed ticks, data sources, and the
//! server-level records behind the drill-down.

use graph_core::detect::{DcStorm, Summary};
use graph_core::model::{ClusterId, Counters, Tick};
use graph_core::snapshot::TickSnapshot;
use serde::{Deserialize, Serialize};

/// One analysed tick as the detection loop stores it: graph-core's snapshot plus what
/// detection counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTick {
    /// Pruned graph, observations, ranking, links and layout.
    pub snapshot: TickSnapshot,
    /// Counts of what detection considered, tested and found.
    pub summary: Summary,
    /// Data-centre storms.
    pub storms: Vec<DcStorm>,
    /// Sources that had not delivered this tick when it was analysed; their edges were
    /// treated as missing rather than tested.
    #[serde(default)]
    pub sources_behind: Vec<String>,
    /// Sources that were stale (silent for longer than `sources.stale_after_s`, not
    /// retired) when it was analysed: what the stale-source banner said then. `None` in
    /// records stored before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_sources: Option<Vec<String>>,
    /// When it was analysed, Unix seconds.
    pub analysed_at: i64,
    /// How long the analysis took, including store reads, milliseconds.
    pub duration_ms: f64,
}

/// A data source: whoever sends call statistics with one API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The token's name.
    pub name: String,
    /// When its first batch arrived, Unix seconds.
    pub first_arrival: i64,
    /// When its latest batch arrived, Unix seconds.
    pub last_arrival: i64,
    /// The latest bucket it delivered data for.
    pub last_tick: Tick,
    /// Batches accepted.
    pub batches: u64,
    /// Records accepted.
    pub records: u64,
    /// Calling clusters it reports on, ascending: their edges depend on it.
    pub clusters: Vec<ClusterId>,
    /// For a pulled source: the end of what has been pulled (the next bucket to pull),
    /// written in the same transaction as the data, so a crash neither loses nor
    /// doubles a bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_to: Option<Tick>,
}

impl SourceState {
    /// Folds one accepted batch into the state (a new state when `self` is `None`).
    pub fn merged(old: Option<SourceState>, update: &SourceUpdate) -> SourceState {
        let mut s = old.unwrap_or_else(|| SourceState {
            name: update.name.clone(),
            first_arrival: update.arrival,
            last_arrival: update.arrival,
            last_tick: update.last_tick,
            batches: 0,
            records: 0,
            clusters: Vec::new(),
            pulled_to: None,
        });
        s.last_arrival = s.last_arrival.max(update.arrival);
        s.last_tick = s.last_tick.max(update.last_tick);
        s.batches += 1;
        s.records += update.records;
        s.clusters.extend(update.clusters.iter().copied());
        s.clusters.sort_unstable();
        s.clusters.dedup();
        if let Some(to) = update.pulled_to {
            s.pulled_to = Some(s.pulled_to.map_or(to, |old| old.max(to)));
        }
        s
    }
}

/// What one batch says about its source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceUpdate {
    /// The token's name.
    pub name: String,
    /// When the batch arrived, Unix seconds.
    pub arrival: i64,
    /// The latest bucket in the batch.
    pub last_tick: Tick,
    /// Records in the batch.
    pub records: u64,
    /// Calling clusters in the batch.
    pub clusters: Vec<ClusterId>,
    /// For a pulled source, where its position moves to ([`SourceState::pulled_to`]).
    pub pulled_to: Option<Tick>,
}

/// One server pair's counters in one bucket, under the cluster edge they add to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairRow {
    /// The bucket.
    pub tick: Tick,
    /// The cluster edge's entity.
    pub entity: u32,
    /// Calling server id.
    pub src: u32,
    /// Called server id.
    pub dst: u32,
    /// Summed counters.
    pub counters: Counters,
}

/// Bytes per encoded [`PairRow`] (the tick is the key's).
pub const PAIR_BYTES: usize = 36;

/// Encodes rows of one bucket as fixed-width little-endian records.
pub fn encode_pairs(rows: &[PairRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * PAIR_BYTES);
    for r in rows {
        out.extend_from_slice(&r.entity.to_le_bytes());
        out.extend_from_slice(&r.src.to_le_bytes());
        out.extend_from_slice(&r.dst.to_le_bytes());
        out.extend_from_slice(&r.counters.requests.to_le_bytes());
        out.extend_from_slice(&r.counters.errors.to_le_bytes());
        out.extend_from_slice(&r.counters.latency_ms_sum.to_le_bytes());
    }
    out
}

/// Decodes what [`encode_pairs`] wrote for bucket `tick`.
pub fn decode_pairs(tick: Tick, bytes: &[u8]) -> impl Iterator<Item = PairRow> + '_ {
    bytes.chunks_exact(PAIR_BYTES).map(move |b| {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let f = |i: usize| f64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        PairRow {
            tick,
            entity: u(0),
            src: u(4),
            dst: u(8),
            counters: Counters {
                requests: f(12),
                errors: f(20),
                latency_ms_sum: f(28),
            },
        }
    })
}

/// How much history to keep; everything before these ticks is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Series cells, activity and config changes.
    pub series: Tick,
    /// Analysed ticks (snapshots).
    pub snapshots: Tick,
    /// Server-level records.
    pub pairs: Tick,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Hour chunks of series cells.
    pub chunks: u64,
    /// Analysed ticks.
    pub snapshots: u64,
    /// Buckets of server-level records.
    pub pair_buckets: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_rows_round_trip() {
        let rows = vec![
            PairRow {
                tick: 600,
                entity: 7,
                src: 1,
                dst: u32::MAX,
                counters: Counters {
                    requests: 10.0,
                    errors: 1.0,
                    latency_ms_sum: 123.5,
                },
            },
            PairRow {
                tick: 600,
                entity: 0,
                src: 2,
                dst: 3,
                counters: Counters::default(),
            },
        ];
        let bytes = encode_pairs(&rows);
        assert_eq!(bytes.len(), 2 * PAIR_BYTES);
        assert_eq!(decode_pairs(600, &bytes).collect::<Vec<_>>(), rows);
    }

    #[test]
    fn sources_accumulate_batches_and_callers() {
        let u = |arrival, last_tick, clusters: &[u32]| SourceUpdate {
            name: "dc1-collector".into(),
            arrival,
            last_tick,
            records: 5,
            clusters: clusters.iter().map(|c| ClusterId(*c)).collect(),
            pulled_to: None,
        };
        let s = SourceState::merged(None, &u(100, 0, &[3, 1]));
        let s = SourceState::merged(Some(s), &u(160, 300, &[1, 2]));
        assert_eq!(
            (s.first_arrival, s.last_arrival, s.last_tick),
            (100, 160, 300)
        );
        assert_eq!((s.batches, s.records), (2, 10));
        assert_eq!(s.clusters, vec![ClusterId(1), ClusterId(2), ClusterId(3)]);
    }
}

/// An account that can log in to the browser client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Login name, unique.
    pub name: String,
    /// Name shown to others.
    pub display_name: String,
    /// PHC string of the argon2id hash of the password.
    pub password_hash: String,
    /// What the user may do.
    pub scopes: Vec<crate::auth::Scope>,
    /// When it was created, Unix seconds.
    pub created: i64,
}

/// A logged-in browser session (stored under the digest of its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The account.
    pub user: String,
    /// When it started, Unix seconds.
    pub created: i64,
    /// When it ends, Unix seconds.
    pub expires: i64,
    /// The token cookie-authenticated writes must echo in `X-CSRF-Token`.
    pub csrf: String,
}
