//! Marks people make on anomalous edges or whole pruned graphs: known anomalies,
//! incidents and new trends. Each is stored with a version and the history of every
//! change (who, when, what); analysis reads them (pruning hides what they cover until
//! it gets worse, baselines leave their windows out, new trends re-baseline).

use graph_core::api::{MarkChangeView, MarkView};
use graph_core::detect::{ExclusionWindow, MarkContext, Scope, TrendStart};
use graph_core::model::{ClusterId, Tick};
use graph_core::prune::{Mark, MarkKind, MarkTarget};
use serde::{Deserialize, Serialize};

/// One change to a mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkChange {
    /// The version this change made.
    pub version: u64,
    /// When, Unix seconds.
    pub at: i64,
    /// Who (account or token name).
    pub by: String,
    /// What changed, in words: `created`, `closed`, `description: "a" → "b"`.
    pub what: String,
}

/// A mark as stored: graph-core's [`Mark`], its version and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMark {
    /// The mark analysis uses.
    pub mark: Mark,
    /// Bumped by every change; a change must name the version it read.
    pub version: u64,
    /// For a new trend: the first tick of the new normal.
    #[serde(default)]
    pub trend_from: Option<Tick>,
    /// Name shown for the author.
    pub author_name: String,
    /// When it was made, Unix seconds (wall clock; `mark.created` is the tick it was made at).
    pub made_at: i64,
    /// Every change, oldest first.
    pub history: Vec<MarkChange>,
    /// An incident's Jira issue, when Jira is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira: Option<JiraLink>,
}

/// Where an incident stands with Jira. The mark record is the outbox: a link without a
/// key is an issue still to create, retried with backoff until Jira accepts it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JiraLink {
    /// The issue key, once created (or found again by its label).
    pub key: Option<String>,
    /// The address in Jira's web interface.
    pub url: Option<String>,
    /// Its status name, as last seen.
    pub status: Option<String>,
    /// Calls that failed so far; after the first, creation searches by label first.
    pub attempts: u32,
    /// Do not call before this time, Unix seconds.
    pub next_at: i64,
    /// The last failure, readable.
    pub last_error: Option<String>,
    /// Jira refused the issue (a 4xx other than 429): not retried until restart.
    pub failed: bool,
    /// The severity last reported to Jira (at creation, or in a comment).
    pub reported_severity: f64,
    /// The description: everything known when the incident was opened.
    #[serde(default)]
    pub description: String,
}

impl StoredMark {
    /// The ticks whose analysis it can change: from its start on.
    pub fn first_tick(&self) -> Tick {
        self.trend_from
            .map_or(self.mark.created, |t| t.min(self.mark.created))
    }
}

/// What detection must know of `marks` when analysing `tick`: windows that baselines
/// leave out (known anomalies and incidents, from when they were made to their end or
/// the tick) and trend starts (new trends).
pub fn detection_context(marks: &[StoredMark], tick: Tick, width: i64) -> MarkContext {
    let mut ctx = MarkContext::default();
    for m in marks {
        let edges: &[graph_core::model::EdgeKey] = match &m.mark.target {
            MarkTarget::Edge { edge } => std::slice::from_ref(edge),
            MarkTarget::Graph { edges } => edges,
        };
        for edge in edges {
            let scope = Scope::Edge { edge: *edge };
            match m.mark.kind {
                MarkKind::NewTrend => {
                    let start = m.trend_from.unwrap_or(m.mark.created);
                    if start <= tick {
                        ctx.trend_starts.push(TrendStart {
                            scope,
                            metric: None,
                            start,
                        });
                    }
                }
                MarkKind::KnownAnomaly | MarkKind::Incident => {
                    let from = m.mark.created;
                    let to = m.mark.until.unwrap_or(tick + width).min(tick + width);
                    if from < to {
                        ctx.exclusions.push(ExclusionWindow {
                            scope,
                            metric: None,
                            from,
                            to,
                        });
                    }
                }
            }
        }
    }
    ctx
}

/// The wire form of a stored mark, with cluster names.
pub fn view(m: &StoredMark, name: &dyn Fn(ClusterId) -> String) -> MarkView {
    let (edges, graph) = match &m.mark.target {
        MarkTarget::Edge { edge } => (vec![(name(edge.src), name(edge.dst))], false),
        MarkTarget::Graph { edges } => (
            edges.iter().map(|e| (name(e.src), name(e.dst))).collect(),
            true,
        ),
    };
    MarkView {
        id: m.mark.id,
        kind: m.mark.kind,
        edges,
        graph,
        severity: m.mark.severity,
        created: m.mark.created,
        until: m.mark.until,
        trend_from: m.trend_from,
        author: m.mark.author.clone(),
        author_name: m.author_name.clone(),
        description: m.mark.description.clone(),
        version: m.version,
        made_at: m.made_at,
        history: m
            .history
            .iter()
            .map(|h| MarkChangeView {
                version: h.version,
                at: h.at,
                by: h.by.clone(),
                what: h.what.clone(),
            })
            .collect(),
        jira: m.jira.as_ref().map(|j| graph_core::api::JiraView {
            key: j.key.clone(),
            url: j.url.clone(),
            status: j.status.clone(),
            error: j.last_error.clone(),
            pending: j.key.is_none() && !j.failed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_core::model::EdgeKey;

    fn stored(
        kind: MarkKind,
        created: Tick,
        until: Option<Tick>,
        trend_from: Option<Tick>,
    ) -> StoredMark {
        StoredMark {
            mark: Mark {
                id: 1,
                kind,
                target: MarkTarget::Graph {
                    edges: vec![
                        EdgeKey {
                            src: ClusterId(0),
                            dst: ClusterId(1),
                        },
                        EdgeKey {
                            src: ClusterId(1),
                            dst: ClusterId(2),
                        },
                    ],
                },
                severity: 3.0,
                created,
                until,
                author: "alice".into(),
                description: "d".into(),
            },
            version: 1,
            trend_from,
            author_name: "Alice".into(),
            made_at: 0,
            history: vec![],
            jira: None,
        }
    }

    #[test]
    fn known_anomalies_and_incidents_leave_their_window_out_of_baselines() {
        let ctx = detection_context(
            &[stored(MarkKind::KnownAnomaly, 600, Some(1800), None)],
            3000,
            300,
        );
        assert_eq!(ctx.exclusions.len(), 2);
        assert_eq!((ctx.exclusions[0].from, ctx.exclusions[0].to), (600, 1800));
        // An open incident covers up to the tick analysed.
        let ctx = detection_context(&[stored(MarkKind::Incident, 600, None, None)], 3000, 300);
        assert_eq!((ctx.exclusions[0].from, ctx.exclusions[0].to), (600, 3300));
        // Nothing before it was made.
        let ctx = detection_context(&[stored(MarkKind::Incident, 6000, None, None)], 3000, 300);
        assert!(ctx.exclusions.is_empty());
        ctx.validate().unwrap();
    }

    #[test]
    fn a_new_trend_rebaselines_from_its_start() {
        let ctx = detection_context(
            &[stored(MarkKind::NewTrend, 900, None, Some(600))],
            3000,
            300,
        );
        assert_eq!(ctx.trend_starts.len(), 2);
        assert_eq!(ctx.trend_starts[0].start, 600);
        assert!(ctx.exclusions.is_empty());
        let ctx = detection_context(
            &[stored(MarkKind::NewTrend, 900, None, Some(600))],
            300,
            300,
        );
        assert!(ctx.trend_starts.is_empty(), "not before it starts");
    }
}
