//! Incidents to Jira against a fake Jira that follows the Jira Cloud platform API's
//! paths and shapes: exactly one issue per incident whatever Jira does (down, slow after
//! creating), field errors shown readably, worsening reported, and the incident closed
//! when Jira resolves the issue.

mod support;

use std::time::Duration;

use epicenter_e2e::fake_jira::FakeJira;
use support::TestApp;

const DEMO_END: i64 = 1_795_000_200;
const TICK: i64 = DEMO_END - 55 * 60;

async fn app_with(jira: &FakeJira, version: u8) -> TestApp {
    let base = jira.base.clone();
    TestApp::start_with(Some((DEMO_END, 1)), move |c| {
        c.jira.enabled = true;
        c.jira.base_url = base;
        c.jira.api_version = version;
        c.jira.email = Some("epicenter@example.com".into());
        c.jira.api_token = Some(epicenter_backend::config::Secret::new("jira-api-token"));
        c.jira.project = "OPS".into();
        c.jira.issue_type = "Incident".into();
        c.jira.labels = vec!["epicenter".into(), "on-call".into()];
        c.jira.public_url = "https://epicenter.example.com".into();
        c.jira.poll_interval_s = 1;
        c.jira.timeout_s = 1;
    })
    .await
}

/// Opens an incident on the whole graph at the demo tick, as alice.
async fn open_incident(app: &TestApp, description: &str) -> serde_json::Value {
    let alice = app.sign_in("alice").await;
    let res = app
        .client
        .post(format!("{}/api/v1/marks", app.base))
        .header("cookie", alice.cookie)
        .header("x-csrf-token", alice.csrf)
        .header("content-type", "application/json")
        .body(serde_json::json!({"kind": "incident", "tick": TICK, "graph": true, "description": description}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// Waits until the mark satisfies `ok`, returning it.
async fn mark_until(
    app: &TestApp,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..150 {
        last = app.get_json("/api/v1/marks").await[0].clone();
        if ok(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}; the mark is {last}");
}

#[tokio::test]
async fn an_incident_becomes_exactly_one_issue_and_closes_when_jira_resolves_it() {
    let jira = FakeJira::start().await.unwrap();
    let app = app_with(&jira, 2).await;
    let mark = open_incident(&app, "Messaging history loads slowly\nusers see spinners").await;
    assert_eq!(mark["jira"]["pending"], true);
    let mark = mark_until(&app, "the issue was never created", |m| {
        m["jira"]["key"].is_string()
    })
    .await;
    assert_eq!(mark["jira"]["key"], "OPS-1");
    assert_eq!(mark["jira"]["url"], format!("{}/browse/OPS-1", jira.base));
    let issues = jira.issues();
    assert_eq!(issues.len(), 1);
    let f = &issues[0].fields;
    assert_eq!(f["project"]["key"], "OPS");
    assert_eq!(f["issuetype"]["name"], "Incident");
    assert_eq!(
        f["summary"],
        "Epicenter incident #1: Messaging history loads slowly"
    );
    assert_eq!(
        f["labels"],
        serde_json::json!(["epicenter", "on-call", "epicenter-incident-1"])
    );
    let d = f["description"].as_str().expect("v2: plain text");
    for needle in [
        "Messaging history loads slowly\nusers see spinners",
        "Opened by Alice Martin",
        "- messaging-proxy -> messaging-conversation-cdb: latency 52.",
        "1. messaging-conversation-cdb (score",
        "Lower compaction threads on messaging-conversation-cdb",
        "In Epicenter: https://epicenter.example.com/?tick=1794996900",
    ] {
        assert!(d.contains(needle), "description lacks {needle:?}:\n{d}");
    }
    assert!(
        mark["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["what"] == "Jira issue OPS-1 created" && h["by"] == "jira")
    );
    // Jira resolves it: the incident closes, the edges show again.
    let hidden = app.get_json("/api/v1/analysis").await["snapshot"]["pruned"]["hidden"]
        .as_array()
        .unwrap()
        .len();
    assert!(hidden > 0);
    jira.resolve("OPS-1");
    let mark = mark_until(&app, "the incident never closed", |m| m["until"].is_i64()).await;
    assert_eq!(mark["jira"]["status"], "Done");
    assert!(
        mark["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["what"] == "closed: OPS-1 resolved in Jira (Done)")
    );
    // Re-analysed before browsers are told; the mark is stored a moment earlier.
    let mut hidden = usize::MAX;
    for _ in 0..100 {
        let a = app.get_json("/api/v1/analysis").await;
        hidden = a["snapshot"]["pruned"]["hidden"].as_array().unwrap().len();
        if hidden == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hidden, 0, "closed: nothing hidden by it any more");
    assert_eq!(jira.create_calls(), 1);
}

#[tokio::test]
async fn jira_down_then_up_gets_one_issue_and_loses_nothing() {
    let jira = FakeJira::start().await.unwrap();
    jira.set_down(true);
    let app = app_with(&jira, 3).await;
    open_incident(&app, "checkout errors").await;
    let mark = mark_until(&app, "the failure was never recorded", |m| {
        m["jira"]["error"].is_string()
    })
    .await;
    assert!(
        mark["jira"]["error"].as_str().unwrap().contains("HTTP 503"),
        "{mark}"
    );
    assert_eq!(mark["jira"]["pending"], true);
    assert!(jira.issues().is_empty());
    jira.set_down(false);
    let mark = mark_until(&app, "never created after Jira came back", |m| {
        m["jira"]["key"].is_string()
    })
    .await;
    assert!(mark["jira"]["error"].is_null());
    assert_eq!(jira.issues().len(), 1);
    // v3: the description is an Atlassian Document.
    let desc = &jira.issues()[0].fields["description"];
    assert_eq!(desc["type"], "doc");
    assert_eq!(desc["content"][0]["content"][0]["text"], "checkout errors");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jira.issues().len(), 1, "still one issue after more passes");
}

#[tokio::test]
async fn jira_timing_out_after_creating_still_gets_one_issue() {
    let jira = FakeJira::start().await.unwrap();
    jira.hang_next_create();
    let app = app_with(&jira, 2).await;
    open_incident(&app, "search is slow").await;
    let mark = mark_until(&app, "the issue was never adopted", |m| {
        m["jira"]["key"].is_string()
    })
    .await;
    assert_eq!(mark["jira"]["key"], "OPS-1");
    assert!(
        mark["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["what"] == "Jira issue OPS-1 found by its label"),
        "{mark}"
    );
    assert_eq!(
        jira.create_calls(),
        1,
        "no second creation after the timeout"
    );
    assert!(jira.search_calls() >= 1);
    assert_eq!(jira.issues().len(), 1);
}

#[tokio::test]
async fn jira_refusing_fields_is_shown_readably_and_not_retried() {
    let jira = FakeJira::start().await.unwrap();
    jira.reject_creates(Some(serde_json::json!({
        "customfield_10010": "Team is required.",
        "priority": "The priority selected is invalid."
    })));
    let app = app_with(&jira, 2).await;
    open_incident(&app, "payments failing").await;
    let mark = mark_until(&app, "the refusal was never recorded", |m| {
        m["jira"]["error"].is_string()
    })
    .await;
    let err = mark["jira"]["error"].as_str().unwrap();
    assert_eq!(
        err,
        "Jira refused the request: HTTP 400: customfield_10010: Team is required.; priority: The priority selected is invalid."
    );
    assert_eq!(mark["jira"]["pending"], false);
    assert!(mark["history"].as_array().unwrap().iter().any(|h| {
        h["what"]
            .as_str()
            .unwrap()
            .starts_with("Jira refused the issue")
    }));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jira.create_calls(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn an_incident_that_gets_worse_is_reported_on_its_issue() {
    let jira = FakeJira::start().await.unwrap();
    let app = app_with(&jira, 2).await;
    // An edge anomalous at the newest tick that was clearly less severe earlier.
    let latest = app.get_json("/api/v1/analysis").await;
    let newest = latest["tick"].as_i64().unwrap();
    let sev = |a: &serde_json::Value, src: &serde_json::Value, dst: &serde_json::Value| {
        a["snapshot"]["pruned"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["role"] == "anomalous" && e["edge"]["src"] == *src && e["edge"]["dst"] == *dst
            })
            .and_then(|e| e["severity"].as_f64())
    };
    let mut pick = None;
    'search: for back in 1..12 {
        let t = newest - back * 300;
        let earlier = app.get_json(&format!("/api/v1/analysis?tick={t}")).await;
        for e in latest["snapshot"]["pruned"]["edges"].as_array().unwrap() {
            let (src, dst) = (&e["edge"]["src"], &e["edge"]["dst"]);
            if let (Some(now), Some(then)) = (sev(&latest, src, dst), sev(&earlier, src, dst))
                && now > then + 1.0
            {
                let name = |id: &serde_json::Value| {
                    latest["clusters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|c| c["id"] == *id)
                        .unwrap()["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                };
                pick = Some((t, name(src), name(dst), then, now));
                break 'search;
            }
        }
    }
    let (t, src, dst, then, now) = pick.expect("an edge that got worse towards the newest tick");
    let res = app
        .client
        .post(format!("{}/api/v1/marks", app.base))
        .bearer_auth(&app.write_token)
        .header("content-type", "application/json")
        .body(serde_json::json!({"kind": "incident", "tick": t, "edge": {"src": src, "dst": dst}, "description": "watching it"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    mark_until(&app, "never reported as worse", |m| {
        m["history"].as_array().unwrap().iter().any(|h| {
            h["what"]
                .as_str()
                .unwrap_or("")
                .starts_with("reported to OPS-1: got worse")
        })
    })
    .await;
    let comments = &jira.issues()[0].comments;
    assert_eq!(comments.len(), 1, "one comment for one worsening");
    let text = comments[0].as_str().unwrap();
    assert!(
        text.contains("got worse") && text.contains(&format!("against {then:.1}")),
        "{text} ({then} -> {now})"
    );
    // Not reported again while it stays as bad.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jira.issues()[0].comments.len(), 1);
}
