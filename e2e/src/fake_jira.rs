//! A fake Jira for tests: the few operations Epicenter uses, with the paths and
//! request/response shapes of the Jira Cloud platform REST API (the OpenAPI document
//! in the project's shared contracts): `POST /rest/api/{2,3}/issue` (`IssueUpdateDetails`
//! → `CreatedIssue`), `GET /rest/api/{2,3}/search` (`SearchResults`),
//! `GET /rest/api/{2,3}/issue/{issueIdOrKey}` (`IssueBean`),
//! `POST /rest/api/{2,3}/issue/{issueIdOrKey}/comment` (`Comment`); errors are
//! `ErrorCollection`s. It can be down, answer a creation too late, or refuse fields.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// An issue the fake holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeIssue {
    /// Numeric id, as a string.
    pub id: String,
    /// `PROJECT-n`.
    pub key: String,
    /// The `fields` it was created with.
    pub fields: Value,
    /// Status name.
    pub status: String,
    /// True once resolved (status category `done`).
    pub done: bool,
    /// Comment bodies, oldest first.
    pub comments: Vec<Value>,
}

#[derive(Debug, Default)]
struct Inner {
    issues: Mutex<Vec<FakeIssue>>,
    down: AtomicBool,
    hang_next_create: AtomicBool,
    reject: Mutex<Option<Value>>,
    creates: AtomicUsize,
    searches: AtomicUsize,
}

/// A running fake Jira on `127.0.0.1`.
#[derive(Debug, Clone)]
pub struct FakeJira {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    inner: Arc<Inner>,
}

fn error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    (
        status,
        Json(json!({"errorMessages": messages, "errors": errors})),
    )
        .into_response()
}

fn gate(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    if inner.down.load(Ordering::SeqCst) {
        return Some((StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response());
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(auth.starts_with("Basic ") || auth.starts_with("Bearer ")) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            &["You are not authenticated. Authentication required to perform this operation."],
            json!({}),
        ));
    }
    None
}

fn bean(base: &str, version: &str, i: &FakeIssue) -> Value {
    json!({
        "id": i.id,
        "key": i.key,
        "self": format!("{base}/rest/api/{version}/issue/{}", i.id),
        "fields": {
            "status": {
                "name": i.status,
                "statusCategory": {"key": if i.done { "done" } else { "indeterminate" }, "name": if i.done { "Done" } else { "In Progress" }},
            },
            "resolution": if i.done { json!({"name": "Done"}) } else { Value::Null },
            "labels": i.fields["labels"],
            "summary": i.fields["summary"],
        },
    })
}

/// A description or comment body as the version wants it: a string (v2) or an Atlassian
/// Document (v3).
fn valid_text(version: &str, v: &Value) -> bool {
    match version {
        "2" => v.is_string(),
        _ => v["type"] == "doc" && v["version"] == 1 && v["content"].is_array(),
    }
}

async fn create(
    State((base, inner)): State<(String, Arc<Inner>)>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&inner, &headers) {
        return r;
    }
    inner.creates.fetch_add(1, Ordering::SeqCst);
    if let Some(errors) = inner.reject.lock().unwrap().clone() {
        return error(StatusCode::BAD_REQUEST, &[], errors);
    }
    let f = &body["fields"];
    let mut errors = serde_json::Map::new();
    if f["project"]["key"].as_str().is_none_or(str::is_empty) {
        errors.insert("project".into(), "Specify a valid project ID or key".into());
    }
    if f["summary"].as_str().is_none_or(|s| s.trim().is_empty()) {
        errors.insert(
            "summary".into(),
            "You must specify a summary of the issue.".into(),
        );
    }
    if f["issuetype"]["name"].as_str().is_none_or(str::is_empty) {
        errors.insert("issuetype".into(), "Specify an issue type".into());
    }
    if !f["description"].is_null() && !valid_text(&version, &f["description"]) {
        errors.insert(
            "description".into(),
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)."
                .into(),
        );
    }
    if f["labels"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x.as_str().is_none_or(|s| s.contains(' '))))
    {
        errors.insert("labels".into(), "The label can't contain spaces.".into());
    }
    if !errors.is_empty() {
        return error(StatusCode::BAD_REQUEST, &[], Value::Object(errors));
    }
    let issue = {
        let mut issues = inner.issues.lock().unwrap();
        let n = issues.len() + 1;
        let issue = FakeIssue {
            id: (10_000 + n).to_string(),
            key: format!("{}-{n}", f["project"]["key"].as_str().unwrap()),
            fields: f.clone(),
            status: "To Do".into(),
            done: false,
            comments: vec![],
        };
        issues.push(issue.clone());
        issue
    };
    if inner.hang_next_create.swap(false, Ordering::SeqCst) {
        // Created, but the answer comes too late for the caller.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    (
        StatusCode::CREATED,
        Json(json!({"id": issue.id, "key": issue.key, "self": format!("{base}/rest/api/{version}/issue/{}", issue.id)})),
    )
        .into_response()
}

async fn search(
    State((base, inner)): State<(String, Arc<Inner>)>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&inner, &headers) {
        return r;
    }
    inner.searches.fetch_add(1, Ordering::SeqCst);
    let jql = q.get("jql").cloned().unwrap_or_default();
    // The one form Epicenter sends: labels = "x".
    let Some(label) = jql
        .strip_prefix("labels = \"")
        .and_then(|r| r.strip_suffix('"'))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            &[&format!("Error in the JQL Query: {jql}")],
            json!({}),
        );
    };
    let issues: Vec<Value> = inner
        .issues
        .lock()
        .unwrap()
        .iter()
        .filter(|i| {
            i.fields["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == label))
        })
        .map(|i| bean(&base, &version, i))
        .collect();
    Json(json!({"startAt": 0, "maxResults": 50, "total": issues.len(), "issues": issues}))
        .into_response()
}

async fn issue(
    State((base, inner)): State<(String, Arc<Inner>)>,
    Path((version, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&inner, &headers) {
        return r;
    }
    match inner
        .issues
        .lock()
        .unwrap()
        .iter()
        .find(|i| i.key == key || i.id == key)
    {
        Some(i) => Json(bean(&base, &version, i)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &["Issue does not exist or you do not have permission to see it."],
            json!({}),
        ),
    }
}

async fn comment(
    State((_base, inner)): State<(String, Arc<Inner>)>,
    Path((version, key)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&inner, &headers) {
        return r;
    }
    if !valid_text(&version, &body["body"]) {
        return error(
            StatusCode::BAD_REQUEST,
            &[],
            json!({"comment": "Comment body can not be empty!"}),
        );
    }
    let mut issues = inner.issues.lock().unwrap();
    let Some(i) = issues.iter_mut().find(|i| i.key == key) else {
        return error(
            StatusCode::NOT_FOUND,
            &["Issue does not exist or you do not have permission to see it."],
            json!({}),
        );
    };
    i.comments.push(body["body"].clone());
    (
        StatusCode::CREATED,
        Json(json!({"id": i.comments.len().to_string(), "body": body["body"]})),
    )
        .into_response()
}

impl FakeJira {
    /// Starts the fake on a free port.
    pub async fn start() -> anyhow::Result<FakeJira> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/rest/api/{version}/issue", post(create))
            .route("/rest/api/{version}/search", get(search))
            .route("/rest/api/{version}/issue/{key}", get(issue))
            .route("/rest/api/{version}/issue/{key}/comment", post(comment))
            .with_state((base.clone(), inner.clone()));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fake Jira stopped: {e}");
            }
        });
        Ok(FakeJira { base, inner })
    }

    /// Every issue created.
    pub fn issues(&self) -> Vec<FakeIssue> {
        self.inner.issues.lock().unwrap().clone()
    }

    /// Calls to create an issue (including refused ones).
    pub fn create_calls(&self) -> usize {
        self.inner.creates.load(Ordering::SeqCst)
    }

    /// Searches made.
    pub fn search_calls(&self) -> usize {
        self.inner.searches.load(Ordering::SeqCst)
    }

    /// Answers every request with 503 while `down`.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// The next creation succeeds but answers only after 5 s.
    pub fn hang_next_create(&self) {
        self.inner.hang_next_create.store(true, Ordering::SeqCst);
    }

    /// Refuses creations with these field errors (`None`: accept again).
    pub fn reject_creates(&self, errors: Option<Value>) {
        *self.inner.reject.lock().unwrap() = errors;
    }

    /// Resolves issue `key` (status Done, category `done`).
    pub fn resolve(&self, key: &str) {
        if let Some(i) = self
            .inner
            .issues
            .lock()
            .unwrap()
            .iter_mut()
            .find(|i| i.key == key)
        {
            i.status = "Done".into();
            i.done = true;
        }
    }
}
