//! The evaluation: two naive rankers over the same stored edges Epicenter analysed, the
//! rank of the labelled cause in each ranking, AC@k per fault kind, and the report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One edge at one tick, as `GET /api/v1/graph/full` gives it (cluster names resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeObs {
    /// Caller.
    pub src: String,
    /// Callee.
    pub dst: String,
    /// Requests in the bucket.
    pub requests: f64,
    /// Mean latency, ms (`None` without requests).
    pub latency_ms: Option<f64>,
    /// Errors per request (`None` without requests).
    pub error_rate: Option<f64>,
}

/// Per service: the request-weighted mean latency and error rate of its incoming calls.
fn incoming(edges: &[EdgeObs]) -> BTreeMap<String, (f64, f64)> {
    let mut acc: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for e in edges {
        if e.requests <= 0.0 {
            continue;
        }
        let a = acc.entry(e.dst.clone()).or_default();
        a.0 += e.requests;
        a.1 += e.requests * e.latency_ms.unwrap_or(0.0);
        a.2 += e.requests * e.error_rate.unwrap_or(0.0);
    }
    acc.into_iter()
        .map(|(s, (r, l, er))| (s, (l / r, er / r)))
        .collect()
}

/// Which jump a naive ranker looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naive {
    /// The relative jump of the request-weighted latency of a service's incoming calls.
    Latency,
    /// The jump of a service's incoming error rate (errors per request, absolute).
    Errors,
}

/// Ranks services by how much their incoming calls jumped at `now` against the mean of
/// the `before` buckets: largest first, ties by name. Only services with a positive jump
/// and a baseline are ranked, so a quiet tick gives an empty ranking.
///
/// # Complexity
///
/// O((b + 1) · e + s log s) for b baseline buckets of e edges and s services.
///
/// # Example
///
/// ```
/// use epicenter_testbed::eval::{EdgeObs, Naive, naive_ranking};
/// let e = |dst: &str, lat: f64| EdgeObs { src: "a".into(), dst: dst.into(), requests: 10.0, latency_ms: Some(lat), error_rate: Some(0.0) };
/// let before = vec![vec![e("b", 10.0), e("c", 10.0)]];
/// let now = vec![e("b", 30.0), e("c", 11.0)];
/// assert_eq!(naive_ranking(Naive::Latency, &now, &before), ["b", "c"]);
/// ```
pub fn naive_ranking(kind: Naive, now: &[EdgeObs], before: &[Vec<EdgeObs>]) -> Vec<String> {
    let now = incoming(now);
    let mut base: BTreeMap<String, (f64, f64, u32)> = BTreeMap::new();
    for b in before {
        for (s, (lat, err)) in incoming(b) {
            let e = base.entry(s).or_default();
            e.0 += lat;
            e.1 += err;
            e.2 += 1;
        }
    }
    let mut scored: Vec<(String, f64)> = now
        .into_iter()
        .filter_map(|(s, (lat, err))| {
            let (bl, be, n) = *base.get(&s)?;
            let (bl, be) = (bl / f64::from(n), be / f64::from(n));
            let score = match kind {
                Naive::Latency if bl > 0.0 => (lat - bl) / bl,
                Naive::Latency => return None,
                Naive::Errors => err - be,
            };
            (score > 1e-9).then_some((s, score))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    scored.into_iter().map(|(s, _)| s).collect()
}

/// 1-based rank of `cause` in `ranking`; `None` when it is not ranked (or there is no
/// ranking).
pub fn rank_of(ranking: Option<&[String]>, cause: &str) -> Option<usize> {
    ranking?.iter().position(|s| s == cause).map(|i| i + 1)
}

/// AC@k: the share of faults whose cause is ranked k-th or better (a missing ranking is
/// a miss). 0 for no faults.
///
/// ```
/// use epicenter_testbed::eval::ac_at;
/// assert_eq!(ac_at(1, &[Some(1), Some(3), None, Some(2)]), 0.25);
/// assert_eq!(ac_at(3, &[Some(1), Some(3), None, Some(2)]), 0.75);
/// ```
pub fn ac_at(k: usize, ranks: &[Option<usize>]) -> f64 {
    if ranks.is_empty() {
        return 0.0;
    }
    ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / ranks.len() as f64
}

/// The rankers compared.
pub const RANKERS: [&str; 3] = ["epicenter", "naive_latency", "naive_errors"];

/// One fault's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    /// The label's id.
    pub id: u32,
    /// The label's kind.
    pub kind: String,
    /// The labelled cause.
    pub cause: String,
    /// The tick judged (Epicenter's first ranked tick in the window, else the window's
    /// middle tick for the naive rankers); `None` when no tick of the window was stored.
    pub tick: Option<i64>,
    /// Each ranker's ranking at that tick (`None`: no ranking within the window).
    pub rankings: BTreeMap<String, Option<Vec<String>>>,
    /// The cause's 1-based rank in each.
    pub ranks: BTreeMap<String, Option<usize>>,
    /// What Epicenter flagged at the judged tick, one line per anomalous call: how a
    /// miss came about can be read off the report without the run's store.
    #[serde(default)]
    pub flagged: Vec<String>,
}

/// AC@1, AC@3 and AC@5 of one ranker over some faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Faults counted.
    pub n: usize,
    /// AC@1.
    pub ac1: f64,
    /// AC@3.
    pub ac3: f64,
    /// AC@5.
    pub ac5: f64,
}

impl Accuracy {
    fn of(ranks: &[Option<usize>]) -> Accuracy {
        Accuracy {
            n: ranks.len(),
            ac1: ac_at(1, ranks),
            ac3: ac_at(3, ranks),
            ac5: ac_at(5, ranks),
        }
    }
}

/// The report: every fault's outcome, and accuracy overall and per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// Bucket width, seconds.
    pub bucket_s: u64,
    /// Per fault.
    pub faults: Vec<FaultOutcome>,
    /// Ranker -> accuracy over every fault.
    pub overall: BTreeMap<String, Accuracy>,
    /// Kind -> ranker -> accuracy.
    pub by_kind: BTreeMap<String, BTreeMap<String, Accuracy>>,
}

impl Report {
    /// Summarises `faults`.
    pub fn new(seed: u64, bucket_s: u64, faults: Vec<FaultOutcome>) -> Report {
        let summarise = |fs: &[&FaultOutcome]| -> BTreeMap<String, Accuracy> {
            RANKERS
                .iter()
                .map(|r| {
                    let ranks: Vec<Option<usize>> = fs
                        .iter()
                        .map(|f| f.ranks.get(*r).copied().flatten())
                        .collect();
                    (r.to_string(), Accuracy::of(&ranks))
                })
                .collect()
        };
        let all: Vec<&FaultOutcome> = faults.iter().collect();
        let overall = summarise(&all);
        let mut kinds: BTreeMap<String, Vec<&FaultOutcome>> = BTreeMap::new();
        for f in &faults {
            kinds.entry(f.kind.clone()).or_default().push(f);
        }
        let by_kind = kinds
            .into_iter()
            .map(|(k, fs)| (k, summarise(&fs)))
            .collect();
        Report {
            seed,
            bucket_s,
            faults,
            overall,
            by_kind,
        }
    }

    /// The report as Markdown: a table per kind and overall, then every fault.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Testbed report (seed {}, {} s buckets, {} faults)\n\n",
            self.seed,
            self.bucket_s,
            self.faults.len()
        );
        s.push_str("AC@k: share of faults whose labelled cause is ranked k-th or better; a ranker without a ranking in the window misses.\n\n");
        s.push_str("| kind | n |");
        for r in RANKERS {
            s.push_str(&format!(" {r} AC@1 | AC@3 | AC@5 |"));
        }
        s.push_str("\n|---|---|");
        for _ in RANKERS {
            s.push_str("---|---|---|");
        }
        s.push('\n');
        let row = |s: &mut String, name: &str, acc: &BTreeMap<String, Accuracy>| {
            let n = acc.values().next().map_or(0, |a| a.n);
            s.push_str(&format!("| {name} | {n} |"));
            for r in RANKERS {
                let a = &acc[r];
                s.push_str(&format!(" {:.2} | {:.2} | {:.2} |", a.ac1, a.ac3, a.ac5));
            }
            s.push('\n');
        };
        for (k, acc) in &self.by_kind {
            row(&mut s, k, acc);
        }
        row(&mut s, "**all**", &self.overall);
        s.push_str("\n## Faults\n\n| id | kind | cause | tick | epicenter | naive latency | naive errors |\n|---|---|---|---|---|---|---|\n");
        for f in &self.faults {
            let cell = |r: &str| {
                let rank = f.ranks.get(r).copied().flatten();
                let top: String = f
                    .rankings
                    .get(r)
                    .cloned()
                    .flatten()
                    .map(|v| v.into_iter().take(3).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|| "no ranking".into());
                match rank {
                    Some(k) => format!("#{k} ({top})"),
                    None => format!("miss ({top})"),
                }
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                f.id,
                f.kind,
                f.cause,
                f.tick.map_or("-".into(), |t| t.to_string()),
                cell("epicenter"),
                cell("naive_latency"),
                cell("naive_errors")
            ));
        }
        let missed: Vec<&FaultOutcome> = self
            .faults
            .iter()
            .filter(|f| f.ranks.get("epicenter").copied().flatten() != Some(1))
            .collect();
        if !missed.is_empty() {
            s.push_str("\n## What Epicenter flagged where it did not rank the cause first\n");
            for f in missed {
                s.push_str(&format!(
                    "\n- fault {} ({} on {}), tick {}:",
                    f.id,
                    f.kind,
                    f.cause,
                    f.tick.map_or("-".into(), |t| t.to_string())
                ));
                if f.flagged.is_empty() {
                    s.push_str(" nothing");
                }
                for line in &f.flagged {
                    s.push_str(&format!("\n  - {line}"));
                }
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(src: &str, dst: &str, req: f64, lat: f64, err: f64) -> EdgeObs {
        EdgeObs {
            src: src.into(),
            dst: dst.into(),
            requests: req,
            latency_ms: Some(lat),
            error_rate: Some(err),
        }
    }

    #[test]
    fn latency_is_weighted_by_requests_over_every_incoming_edge() {
        // db: 90 calls at 10 ms and 10 at 100 ms before (19 ms), now 90 at 10 and 10 at
        // 300 (39 ms): +105 %. cache: 10 -> 15 ms, +50 %.
        let before = vec![
            vec![
                e("a", "db", 90.0, 10.0, 0.0),
                e("b", "db", 10.0, 100.0, 0.0),
                e("a", "cache", 5.0, 10.0, 0.0),
            ],
            vec![
                e("a", "db", 90.0, 10.0, 0.0),
                e("b", "db", 10.0, 100.0, 0.0),
                e("a", "cache", 5.0, 10.0, 0.0),
            ],
        ];
        let now = vec![
            e("a", "db", 90.0, 10.0, 0.0),
            e("b", "db", 10.0, 300.0, 0.0),
            e("a", "cache", 5.0, 15.0, 0.0),
        ];
        assert_eq!(
            naive_ranking(Naive::Latency, &now, &before),
            ["db", "cache"]
        );
        // Nothing got worse in errors: no ranking at all.
        assert!(naive_ranking(Naive::Errors, &now, &before).is_empty());
    }

    #[test]
    fn error_jumps_rank_by_absolute_rate_and_ignore_new_or_quieter_services() {
        let before = vec![vec![
            e("a", "x", 100.0, 1.0, 0.01),
            e("a", "y", 100.0, 1.0, 0.2),
        ]];
        let now = vec![
            e("a", "x", 100.0, 1.0, 0.11),
            e("a", "y", 100.0, 1.0, 0.25),
            // No baseline: not ranked.
            e("a", "z", 100.0, 1.0, 0.9),
        ];
        assert_eq!(naive_ranking(Naive::Errors, &now, &before), ["x", "y"]);
        // Latency fell everywhere: nothing ranked.
        let slower_before = vec![vec![e("a", "x", 100.0, 5.0, 0.0)]];
        assert!(
            naive_ranking(
                Naive::Latency,
                &[e("a", "x", 10.0, 4.0, 0.0)],
                &slower_before
            )
            .is_empty()
        );
    }

    #[test]
    fn ranks_and_accuracy_count_missing_rankings_as_misses() {
        let r = vec!["a".to_string(), "b".to_string()];
        assert_eq!(rank_of(Some(&r), "b"), Some(2));
        assert_eq!(rank_of(Some(&r), "c"), None);
        assert_eq!(rank_of(None, "a"), None);
        assert_eq!(ac_at(5, &[]), 0.0);
        assert_eq!(ac_at(1, &[Some(1), None]), 0.5);
    }

    #[test]
    fn the_report_summarises_per_kind_and_overall() {
        let outcome = |id, kind: &str, ep: Option<usize>| FaultOutcome {
            id,
            kind: kind.into(),
            cause: "x".into(),
            tick: Some(100),
            rankings: RANKERS.iter().map(|r| (r.to_string(), None)).collect(),
            ranks: RANKERS
                .iter()
                .map(|r| (r.to_string(), if *r == "epicenter" { ep } else { None }))
                .collect(),
            flagged: if id == 2 {
                vec!["a>b latency 10.0 -> 20.0 ms".into()]
            } else {
                Vec::new()
            },
        };
        let rep = Report::new(
            1,
            5,
            vec![
                outcome(1, "latency", Some(1)),
                outcome(2, "latency", Some(4)),
                outcome(3, "errors", None),
            ],
        );
        assert_eq!(rep.by_kind["latency"]["epicenter"].ac1, 0.5);
        assert_eq!(rep.by_kind["latency"]["epicenter"].ac5, 1.0);
        assert_eq!(rep.by_kind["errors"]["epicenter"].ac5, 0.0);
        assert!((rep.overall["epicenter"].ac3 - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(rep.overall["naive_latency"].ac5, 0.0);
        let md = rep.markdown();
        assert!(md.contains("| latency | 2 | 0.50 | 0.50 | 1.00 |"), "{md}");
        assert!(
            md.contains("| 3 | errors | x | 100 | miss (no ranking)"),
            "{md}"
        );
        // What was flagged is listed for the faults not ranked first, and only those.
        assert!(!md.contains("fault 1 ("), "{md}");
        assert!(
            md.contains("- fault 2 (latency on x), tick 100:\n  - a>b latency 10.0 -> 20.0 ms"),
            "{md}"
        );
        assert!(
            md.contains("- fault 3 (errors on x), tick 100: nothing"),
            "{md}"
        );
        let back: Report = serde_json::from_str(&serde_json::to_string(&rep).unwrap()).unwrap();
        assert_eq!(back, rep);
    }
}
