//! Incidents to Jira, through an outbox: the incident mark itself records what is still
//! to do (an issue to create, a worsening to report), so nothing is lost while Jira is
//! down or slow, and a restart resumes where it stopped.
//!
//! - **Exactly one issue per incident.** Every issue carries the label
//!   `epicenter-incident-<id>`. After a failed or unclear attempt (a timeout may hide a
//!   success), the next attempt first searches for that label and adopts what it finds.
//! - **Retries** back off from `poll_interval_s` doubling to 10 minutes. A `4xx` answer
//!   other than 429 is Jira refusing the issue (a missing field, a wrong project): it is
//!   not retried, and Jira's messages are kept for the screen.
//! - **Worse:** when an open incident's edges get worse than last reported, a comment
//!   says so.
//! - **Status:** open incidents' issues are polled; when Jira resolves one (status
//!   category `done`), the incident closes.
//!
//! API v2 sends plain-text descriptions and comments; v3 sends Atlassian Document Format.

use std::sync::Arc;
use std::time::Duration;

use graph_core::api::MarkEvent;
use graph_core::model::Tick;
use graph_core::prune::{MarkKind, MarkTarget};
use serde_json::{Value, json};

use crate::AppState;
use crate::analysis::{ServerEvent, unix_now};
use crate::config::JiraConfig;
use crate::error::AppError;
use crate::ingest::timefmt::format_time;
use crate::marks::{JiraLink, MarkChange, StoredMark};

/// Longest wait between retries, seconds.
const MAX_BACKOFF_S: i64 = 600;

/// A Jira REST client for one configuration.
#[derive(Debug, Clone)]
pub struct Jira {
    config: JiraConfig,
    http: reqwest::Client,
}

/// Why a call failed.
#[derive(Debug)]
enum Failure {
    /// No answer, a timeout, 5xx or 429: try again later.
    Retry(String),
    /// Jira refused the request: retrying will not help.
    Refused(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Retry(m) | Failure::Refused(m) => m,
        }
    }
}

/// Jira's `ErrorCollection` as one sentence: `summary: You must specify a summary`.
fn describe_errors(status: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let mut parts: Vec<String> = Vec::new();
    if let Some(v) = &parsed {
        if let Some(msgs) = v["errorMessages"].as_array() {
            parts.extend(msgs.iter().filter_map(|m| m.as_str().map(String::from)));
        }
        if let Some(errs) = v["errors"].as_object() {
            parts.extend(
                errs.iter()
                    .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or(""))),
            );
        }
    }
    if parts.is_empty() {
        let snippet: String = body.chars().take(200).collect();
        format!(
            "HTTP {status}{}",
            if snippet.is_empty() {
                String::new()
            } else {
                format!(": {snippet}")
            }
        )
    } else {
        format!("HTTP {status}: {}", parts.join("; "))
    }
}

/// A plain text as the API version wants it: a string (v2) or an ADF document (v3),
/// one paragraph per line.
fn text_body(version: u8, text: &str) -> Value {
    if version == 2 {
        return Value::String(text.to_string());
    }
    let paragraphs: Vec<Value> = text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

impl Jira {
    /// A client for `config` (which must be valid and enabled).
    pub fn new(config: JiraConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_s))
            .user_agent(concat!("epicenter/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Jira { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/rest/api/{}/{path}",
            self.config.base_url.trim_end_matches('/'),
            self.config.api_version
        )
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (
            &self.config.bearer_token,
            &self.config.email,
            &self.config.api_token,
        ) {
            (Some(t), _, _) => req.bearer_auth(t.expose()),
            (None, Some(e), Some(t)) => req.basic_auth(e, Some(t.expose())),
            _ => req,
        }
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let res = self
            .auth(req)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    "did not answer in time"
                } else {
                    "could not be reached"
                };
                Failure::Retry(format!("Jira {kind} ({})", self.config.base_url))
            })?;
        let status = res.status().as_u16();
        // A body cut off on the way: what Jira did is unclear, so try again (creating
        // looks for the incident's label first, and never makes a second issue).
        let body = res.text().await.map_err(|e| {
            Failure::Retry(format!(
                "Jira's answer ({status}) could not be read ({}): {e}",
                self.config.base_url
            ))
        })?;
        if (200..300).contains(&status) {
            if body.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&body).map_err(|e| {
                Failure::Retry(format!(
                    "Jira answered {status} with a body that is not JSON ({}): {e}",
                    self.config.base_url
                ))
            });
        }
        let message = describe_errors(status, &body);
        if status == 429 || status >= 500 {
            Err(Failure::Retry(format!("Jira is unavailable: {message}")))
        } else {
            Err(Failure::Refused(format!(
                "Jira refused the request: {message}"
            )))
        }
    }

    fn label(id: u64) -> String {
        format!("epicenter-incident-{id}")
    }

    /// The issue carrying the incident's label, if one exists.
    async fn find(&self, id: u64) -> Result<Option<String>, Failure> {
        let jql = format!("labels = \"{}\"", Self::label(id));
        let v = self
            .call(self.http.get(self.url("search")).query(&[
                ("jql", jql.as_str()),
                ("fields", "status"),
                ("maxResults", "2"),
            ]))
            .await?;
        Ok(v["issues"][0]["key"].as_str().map(String::from))
    }

    async fn create(&self, id: u64, summary: &str, description: &str) -> Result<String, Failure> {
        let mut labels = self.config.labels.clone();
        labels.push(Self::label(id));
        let mut fields = json!({
            "project": {"key": self.config.project},
            "issuetype": {"name": self.config.issue_type},
            "summary": summary,
            "description": text_body(self.config.api_version, description),
            "labels": labels,
        });
        for (k, v) in &self.config.fields {
            fields[k] = v.clone();
        }
        let v = self
            .call(
                self.http
                    .post(self.url("issue"))
                    .json(&json!({"fields": fields})),
            )
            .await?;
        v["key"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| Failure::Retry("Jira's answer had no issue key".into()))
    }

    async fn comment(&self, key: &str, text: &str) -> Result<(), Failure> {
        self.call(
            self.http
                .post(self.url(&format!("issue/{key}/comment")))
                .json(&json!({"body": text_body(self.config.api_version, text)})),
        )
        .await
        .map(|_| ())
    }

    /// The issue's status name and whether its category is `done`.
    async fn status(&self, key: &str) -> Result<(String, bool), Failure> {
        let v = self
            .call(
                self.http
                    .get(self.url(&format!("issue/{key}")))
                    .query(&[("fields", "status,resolution")]),
            )
            .await?;
        let status = &v["fields"]["status"];
        let name = status["name"].as_str().unwrap_or("unknown").to_string();
        let done = status["statusCategory"]["key"].as_str() == Some("done")
            || !v["fields"]["resolution"].is_null() && v["fields"]["resolution"].is_object();
        Ok((name, done))
    }

    fn browse(&self, key: &str) -> String {
        format!(
            "{}/browse/{key}",
            self.config.base_url.trim_end_matches('/')
        )
    }
}

/// The summary of an incident's issue: its number and the first line of its description.
pub fn summary(mark: &StoredMark) -> String {
    let first_line = mark.mark.description.lines().next().unwrap_or("").trim();
    let summary = format!("Epicenter incident #{}: {first_line}", mark.mark.id);
    if summary.chars().count() > 250 {
        summary.chars().take(249).collect::<String>() + "…"
    } else {
        summary
    }
}

/// The description of an incident's issue: everything known at the tick it
/// was opened (edges with their changes, the ranked causes with explanations, linked
/// config changes) and a link back to the view.
pub fn describe(state: &AppState, mark: &StoredMark, public_url: &str) -> Result<String, AppError> {
    let store = state.store.as_ref();
    let registry = state.analyzer.registry(store)?;
    let name = |id: graph_core::model::ClusterId| registry.catalog.get(id).name.clone();
    let tick = mark.mark.created;
    let analysis = state.analyzer.stored(store, tick)?;
    let snap = &analysis.snapshot;
    let edges = match &mark.mark.target {
        MarkTarget::Edge { edge } => vec![*edge],
        MarkTarget::Graph { edges } => edges.clone(),
    };
    let mut d = String::new();
    d.push_str(&format!(
        "{}\n\nOpened by {} at {} (tick {}).\n\n",
        mark.mark.description,
        mark.author_name,
        format_time(mark.made_at),
        format_time(tick)
    ));
    d.push_str(&format!("Anomalous edges ({}):\n", edges.len()));
    for e in &edges {
        let obs = snap.observations.iter().find(|o| o.edge == *e);
        let anomalies = obs
            .map(|o| {
                o.anomalies
                    .iter()
                    .map(|a| {
                        let change = match a.rel_deviation {
                            Some(r) => format!("{:+.0} %", r * 100.0),
                            None => "new".into(),
                        };
                        format!(
                            "{} {:.2} (expected {:.2}, {change})",
                            a.metric, a.value, a.expected
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        d.push_str(&format!(
            "- {} -> {}: {anomalies}\n",
            name(e.src),
            name(e.dst)
        ));
    }
    d.push_str("\nLikely root causes:\n");
    for c in snap.ranking.candidates.iter().take(5) {
        d.push_str(&format!(
            "{}. {} (score {:.2}): {}\n",
            c.rank, c.name, c.score, c.explanation
        ));
    }
    if !snap.links.changes.is_empty() {
        d.push_str("\nConfig changes linked to it:\n");
        for c in &snap.links.changes {
            d.push_str(&format!(
                "- {} at {} by {}: {}\n",
                c.id,
                format_time(c.ts),
                c.author,
                c.description
            ));
        }
    }
    let link = match edges.first() {
        Some(e) if edges.len() == 1 => format!(
            "{}/?tick={tick}&edge={}",
            public_url.trim_end_matches('/'),
            encode(&format!("{}>{}", name(e.src), name(e.dst)))
        ),
        _ => format!("{}/?tick={tick}", public_url.trim_end_matches('/')),
    };
    d.push_str(&format!("\nIn Epicenter: {link}\n"));
    Ok(d)
}

/// Percent-encodes all but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn backoff(config: &JiraConfig, attempts: u32) -> i64 {
    let base = config.poll_interval_s as i64;
    base.saturating_mul(1 << attempts.min(10))
        .clamp(1, MAX_BACKOFF_S)
}

/// Stores `next` in place of `current` (bumping the version, with a history entry by
/// `jira`). A concurrent change by someone else wins; this pass is then redone next
/// time.
fn save(
    state: &AppState,
    current: &StoredMark,
    mut next: StoredMark,
    what: Option<String>,
) -> Result<bool, AppError> {
    let now = unix_now();
    next.version = current.version + 1;
    if let Some(what) = what {
        next.history.push(MarkChange {
            version: next.version,
            at: now,
            by: "jira".into(),
            what,
        });
    }
    Ok(state.store.update_mark(&next, current.version)?.is_ok())
}

/// One pass over the incidents: creates pending issues, reports worsening, polls the
/// status of open ones. Returns how many marks it changed.
pub async fn pass(state: &AppState, jira: &Jira) -> Result<usize, AppError> {
    let s = state.clone();
    let marks = crate::handlers::blocking(move || Ok(s.store.marks()?)).await?;
    let now = unix_now();
    let mut changed = 0;
    for m in marks {
        let Some(link) = m.jira.clone() else { continue };
        if m.mark.kind != MarkKind::Incident || link.failed || link.next_at > now {
            continue;
        }
        let open = m.mark.until.is_none();
        let outcome = match &link.key {
            None if open || link.attempts > 0 => create_issue(state, jira, &m, &link).await?,
            None => None,
            Some(key) if open => follow_issue(state, jira, &m, &link, key).await?,
            Some(_) => None,
        };
        let (next, what) = match outcome {
            Some(x) => x,
            None => continue,
        };
        let s = state.clone();
        let current = m.clone();
        let closed = next.mark.until != m.mark.until;
        let from = m.mark.created;
        let (id, version) = (m.mark.id, m.version + 1);
        let saved = crate::handlers::blocking(move || {
            let saved = save(&s, &current, next, what)?;
            if saved && closed {
                // The newest tick shows the edges again before browsers are told.
                s.analyzer.forget(&[from]);
                if let Some((_, latest)) = s.analyzer.range(s.store.as_ref())? {
                    s.analyzer.run(s.store.as_ref(), latest, unix_now())?;
                }
            }
            if saved {
                s.analyzer
                    .events
                    .send(ServerEvent::Mark(MarkEvent { id, version }));
            }
            Ok(saved)
        })
        .await?;
        if saved {
            changed += 1;
        }
    }
    Ok(changed)
}

type Outcome = Option<(StoredMark, Option<String>)>;

fn failed(jira: &Jira, m: &StoredMark, link: &JiraLink, f: Failure) -> Outcome {
    let mut next = m.clone();
    let mut l = link.clone();
    l.attempts += 1;
    l.last_error = Some(f.message().to_string());
    l.next_at = unix_now() + backoff(&jira.config, l.attempts);
    let what = match f {
        Failure::Refused(msg) => {
            l.failed = true;
            Some(format!("Jira refused the issue: {msg}"))
        }
        Failure::Retry(_) => None,
    };
    tracing::warn!(mark = m.mark.id, error = %l.last_error.as_deref().unwrap_or(""), "Jira call failed");
    next.jira = Some(l);
    Some((next, what))
}

async fn create_issue(
    state: &AppState,
    jira: &Jira,
    m: &StoredMark,
    link: &JiraLink,
) -> Result<Outcome, AppError> {
    let id = m.mark.id;
    // After an unclear failure, the issue may exist: find it by its label first.
    let found = if link.attempts > 0 {
        match jira.find(id).await {
            Ok(k) => k,
            Err(f) => return Ok(failed(jira, m, link, f)),
        }
    } else {
        None
    };
    let (key, what) = match found {
        Some(k) => (k.clone(), format!("Jira issue {k} found by its label")),
        None => {
            // Written when the incident was opened; rebuilt only for records without it.
            let description = if link.description.is_empty() {
                let s = state.clone();
                let mark = m.clone();
                let public = jira.config.public_url.clone();
                crate::handlers::blocking(move || describe(&s, &mark, &public)).await?
            } else {
                link.description.clone()
            };
            match jira.create(id, &summary(m), &description).await {
                Ok(k) => (k.clone(), format!("Jira issue {k} created")),
                Err(f) => return Ok(failed(jira, m, link, f)),
            }
        }
    };
    tracing::info!(mark = id, key = %key, "incident in Jira");
    let mut next = m.clone();
    next.jira = Some(JiraLink {
        url: Some(jira.browse(&key)),
        key: Some(key),
        status: None,
        attempts: 0,
        next_at: 0,
        last_error: None,
        failed: false,
        reported_severity: link.reported_severity.max(m.mark.severity),
        description: link.description.clone(),
    });
    Ok(Some((next, Some(what))))
}

/// The largest severity now among the incident's edges that got worse than at marking.
fn worse_now(state: &AppState, m: &StoredMark, latest: Tick) -> Result<Option<f64>, AppError> {
    let a = state.analyzer.stored(state.store.as_ref(), latest)?;
    Ok(a.snapshot
        .pruned
        .edges
        .iter()
        .filter_map(|e| {
            e.worsened
                .filter(|w| w.mark_id == m.mark.id)
                .map(|w| w.current)
        })
        .reduce(f64::max))
}

async fn follow_issue(
    state: &AppState,
    jira: &Jira,
    m: &StoredMark,
    link: &JiraLink,
    key: &str,
) -> Result<Outcome, AppError> {
    let (status, done) = match jira.status(key).await {
        Ok(x) => x,
        Err(f) => return Ok(failed(jira, m, link, f)),
    };
    let s = state.clone();
    let latest =
        crate::handlers::blocking(move || Ok(s.analyzer.range(s.store.as_ref())?.map(|r| r.1)))
            .await?;
    let mut next = m.clone();
    let mut l = link.clone();
    l.attempts = 0;
    l.last_error = None;
    l.next_at = 0;
    if done {
        l.status = Some(status.clone());
        next.jira = Some(l);
        next.mark.until = Some(latest.unwrap_or(m.mark.created).max(m.mark.created));
        tracing::info!(mark = m.mark.id, key, "incident closed in Jira");
        return Ok(Some((
            next,
            Some(format!("closed: {key} resolved in Jira ({status})")),
        )));
    }
    // Worse than last reported: say so on the issue.
    if let Some(t) = latest {
        let s = state.clone();
        let mark = m.clone();
        let worse = crate::handlers::blocking(move || worse_now(&s, &mark, t)).await?;
        if let Some(sev) = worse.filter(|s| *s > link.reported_severity + 0.5) {
            let text = format!(
                "Epicenter: this incident got worse at {}: severity {:.1}, against {:.1} when last reported.",
                format_time(t),
                sev,
                link.reported_severity
            );
            if let Err(f) = jira.comment(key, &text).await {
                return Ok(failed(jira, m, link, f));
            }
            l.reported_severity = sev;
            l.status = Some(status);
            next.jira = Some(l);
            return Ok(Some((
                next,
                Some(format!("reported to {key}: got worse (severity {sev:.1})")),
            )));
        }
    }
    if link.status.as_deref() != Some(status.as_str()) || link.attempts > 0 {
        l.status = Some(status);
        next.jira = Some(l);
        return Ok(Some((next, None)));
    }
    Ok(None)
}

/// Runs passes until the process ends: every `poll_interval_s`, and at once when an
/// incident is opened.
pub async fn run(state: AppState, jira: Arc<Jira>) {
    loop {
        if let Err(e) = pass(&state, &jira).await {
            tracing::error!(error = %e, "Jira pass failed");
        }
        let _woken = tokio::time::timeout(
            Duration::from_secs(jira.config.poll_interval_s),
            state.jira_wake.notified(),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_errors_read_as_one_sentence() {
        let body = r#"{"errorMessages": ["Issue type is required."], "errors": {"summary": "You must specify a summary of the issue."}}"#;
        assert_eq!(
            describe_errors(400, body),
            "HTTP 400: Issue type is required.; summary: You must specify a summary of the issue."
        );
        assert_eq!(describe_errors(502, "bad gateway"), "HTTP 502: bad gateway");
        assert_eq!(describe_errors(503, ""), "HTTP 503");
    }

    #[test]
    fn v3_bodies_are_atlassian_documents_and_v2_plain_text() {
        assert_eq!(text_body(2, "a\nb"), json!("a\nb"));
        let doc = text_body(3, "a\n\nb");
        assert_eq!(doc["type"], "doc");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["content"][0]["content"][0]["text"], "a");
        assert_eq!(doc["content"][1]["content"], json!([]));
        assert_eq!(doc["content"][2]["content"][0]["text"], "b");
    }

    #[test]
    fn retries_back_off_to_ten_minutes() {
        let c = JiraConfig {
            poll_interval_s: 5,
            ..JiraConfig::default()
        };
        assert_eq!(backoff(&c, 1), 10);
        assert_eq!(backoff(&c, 3), 40);
        assert_eq!(backoff(&c, 30), 600);
    }
}
