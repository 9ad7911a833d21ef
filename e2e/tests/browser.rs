//! The walking skeleton in a real browser.

use epicenter_e2e::{
    Harness, click_edge, save_screenshot, sign_in, wait_for, wait_for_download, wait_for_text,
};
use fantoccini::Locator;

#[tokio::test]
async fn the_shell_renders_with_the_server_version() -> anyhow::Result<()> {
    Harness::run("shell", &[], async |h| {
        h.browser.goto(&h.url("/")).await?;
        h.wait_for("[data-test=header]").await?;
        let version = h.wait_for("[data-test=version]").await?.text().await?;
        assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")));
        Ok(())
    })
    .await
}

/// 2026-11-18 11:10 UTC; the demo's messaging incident starts 75 minutes before.
const DEMO_END: &str = "1795000200";
/// 20 minutes into the messaging incident.
const INCIDENT_TICK: i64 = 1_795_000_200 - 55 * 60;
const DEMO: [&str; 5] = ["--demo", "--demo-weeks", "1", "--demo-end", DEMO_END];
const PROXY: &str = "messaging-proxy";
const CDB: &str = "messaging-conversation-cdb";

async fn count(browser: &fantoccini::Client, css: &str) -> anyhow::Result<usize> {
    Ok(browser.find_all(Locator::Css(css)).await?.len())
}

async fn current_url(browser: &fantoccini::Client) -> anyhow::Result<String> {
    Ok(browser.current_url().await?.to_string())
}

/// The journey of an engineer opening the messaging incident: the storage cluster
/// ranks first with its explanation and config change; clicking the storage edge
/// shows its chart, the test behind it, the change and the server pairs; the table
/// filters, sorts and follows the keyboard; the URL reproduces the view elsewhere.
#[tokio::test]
async fn the_messaging_incident_from_ranking_to_edge_detail_and_back_by_link() -> anyhow::Result<()>
{
    Harness::run("edge-detail-journey", &DEMO, async |h| {
        h.browser
            .goto(&h.url(&format!("/?tick={INCIDENT_TICK}")))
            .await?;
        let first = h.wait_for_text("[data-test=candidate-name]", CDB).await?;
        assert_eq!(first.text().await?, CDB);
        let why = h.wait_for("[data-test=candidate-why]").await?.text().await?;
        assert!(why.contains(&format!("calls into {CDB} +")), "{why}");
        let change = h.wait_for("[data-test=candidate-change]").await?.text().await?;
        assert!(change.contains("Lower compaction threads"), "{change}");
        h.wait_for_text("[data-test=tick]", "2026-11-18 10:15 UTC").await?;
        h.wait_for("[data-test=past]").await?;
        h.wait_for("[data-test=rank-badge]").await?;
        h.wait_for("[data-test=activity-chart]").await?;
        save_screenshot(&h.browser, "main-screen").await?;

        // The table filters by service and sorts; filters land in the URL.
        let all = count(&h.browser, "[data-test=edge-row]").await?;
        assert!(all >= 2, "{all} rows");
        h.wait_for("[data-test=filter-service]").await?.send_keys("conversation-cdb").await?;
        h.wait_for_text("[data-test=edge-count]", " of ").await?;
        let filtered = h.browser.find_all(Locator::Css("[data-test=edge-row]")).await?;
        assert!(!filtered.is_empty() && filtered.len() < all, "{} of {all}", filtered.len());
        for row in &filtered {
            assert!(row.text().await?.contains("conversation-cdb"));
        }
        assert!(current_url(&h.browser).await?.contains("service=conversation-cdb"));
        h.wait_for("[data-test=sort-caller]").await?.click().await?;
        let callers: Vec<String> = {
            let mut v = Vec::new();
            for r in h.browser.find_all(Locator::Css("[data-test=edge-row] td.name:first-child")).await? {
                v.push(r.text().await?);
            }
            v
        };
        let mut sorted = callers.clone();
        sorted.sort();
        assert_eq!(callers, sorted);

        // Clicking the storage edge opens its detail.
        let row = h
            .wait_for(&format!("[data-test=edge-row][data-edge=\"{PROXY}>{CDB}\"]"))
            .await?;
        row.click().await?;
        h.wait_for_text("[data-test=edge-title]", &format!("{PROXY} → {CDB}")).await?;
        assert_eq!(row.attr("aria-selected").await?.as_deref(), Some("true"));
        let edge_in_graph = h
            .wait_for(&format!("[data-test=graph-edge][data-edge=\"{PROXY}>{CDB}\"]"))
            .await?;
        assert!(edge_in_graph.attr("class").await?.unwrap_or_default().contains("selected"));
        let stats = h.wait_for("[data-test=edge-stats]").await?.text().await?;
        assert!(stats.contains("Grubbs G") && stats.contains("Baseline"), "{stats}");
        assert!(h.wait_for("[data-test=baseline-kind]").await?.text().await?.contains("values"));
        h.wait_for_text("[data-test=edge-changes]", "Lower compaction threads on messaging-conversation-cdb").await?;
        h.wait_for("[data-test=server-pairs]").await?;
        // The chart is drawn: the canvas has pixels in the latency colour.
        h.wait_for("[data-test=chart-latency]").await?.click().await?;
        let mut painted = false;
        for _ in 0..100 {
            let v = h
                .browser
                .execute(
                    "const c = document.querySelector('[data-test=edge-chart]');
                     if (!c || c.width < 50) return 0;
                     const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                     let n = 0;
                     for (let i = 0; i < d.length; i += 4) if (d[i] > 230 && d[i+1] > 150 && d[i+1] < 175 && d[i+2] < 70) n++;
                     return n;",
                    vec![],
                )
                .await?;
            if v.as_u64().unwrap_or(0) > 50 {
                painted = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(painted, "the latency line was never drawn on the chart");
        save_screenshot(&h.browser, "edge-detail").await?;

        // Keyboard: down moves the selection to the next row, Escape clears it.
        h.browser
            .find(Locator::Css("[data-test=filter-service]"))
            .await?
            .clear()
            .await?;
        h.wait_for_text("[data-test=edge-count]", &all.to_string()).await?;
        let selected_row = h.wait_for("[data-test=edge-row][aria-selected=true]").await?;
        let before = selected_row.attr("data-index").await?.unwrap();
        selected_row.send_keys("\u{E015}").await?; // ArrowDown
        let moved = h.wait_for("[data-test=edge-row][aria-selected=true]").await?;
        let after = moved.attr("data-index").await?.unwrap();
        let expected = (before.parse::<usize>()? + 1).min(all - 1);
        assert_eq!(after.parse::<usize>()?, expected);
        moved.send_keys("\u{E006}").await?; // Enter keeps it; arrows moved it
        h.wait_for("[data-test=edge-detail]").await?;
        // Back to the storage edge for the link.
        h.wait_for(&format!("[data-test=edge-row][data-edge=\"{PROXY}>{CDB}\"]"))
            .await?
            .click()
            .await?;
        h.wait_for_text("[data-test=edge-title]", PROXY).await?;
        h.wait_for("[data-test=chart-latency]").await?;

        // The link reproduces the view in a new session.
        let link = current_url(&h.browser).await?;
        assert!(link.contains(&format!("tick={INCIDENT_TICK}")), "{link}");
        assert!(link.contains("edge=messaging-proxy%3Emessaging-conversation-cdb"), "{link}");
        assert!(link.contains("sort=caller"), "{link}");
        let other = h.another_browser().await?;
        let reproduced = async {
            other.goto(&link).await?;
            wait_for_text(&other, "[data-test=edge-title]", &format!("{PROXY} → {CDB}")).await?;
            wait_for_text(&other, "[data-test=tick]", "2026-11-18 10:15 UTC").await?;
            wait_for_text(&other, "[data-test=edge-changes]", "Lower compaction threads").await?;
            let sel = wait_for(&other, "[data-test=edge-row][aria-selected=true]").await?;
            assert_eq!(sel.attr("data-edge").await?.as_deref(), Some(&*format!("{PROXY}>{CDB}")));
            assert_eq!(current_url(&other).await?, link);
            save_screenshot(&other, "edge-detail-from-link").await?;
            anyhow::Ok(())
        }
        .await;
        other.close().await?;
        reproduced?;
        // Escape closes the detail.
        h.browser
            .execute("window.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))", vec![])
            .await?;
        for _ in 0..50 {
            if count(&h.browser, "[data-test=edge-detail]").await? == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count(&h.browser, "[data-test=edge-detail]").await?, 0);
        assert!(!current_url(&h.browser).await?.contains("edge="));
        Ok(())
    })
    .await
}

/// The full graph (every edge with data) behind a toggle, still clickable; and a
/// tick with nothing anomalous says so plainly.
#[tokio::test]
async fn the_full_graph_toggle_and_a_tick_without_anomalies() -> anyhow::Result<()> {
    Harness::run("full-graph-and-empty", &DEMO, async |h| {
        h.browser
            .goto(&h.url(&format!("/?tick={INCIDENT_TICK}")))
            .await?;
        h.wait_for_text("[data-test=candidate-name]", CDB).await?;
        let pruned_edges = count(&h.browser, "[data-test=graph-edge]").await?;
        h.wait_for("[data-test=full-toggle]").await?.click().await?;
        let summary = h
            .wait_for_text("[data-test=full-summary]", "edges with data")
            .await?
            .text()
            .await?;
        let clusters: usize = summary.split(' ').next().unwrap().parse()?;
        assert!(clusters >= 250, "{summary}");
        let edges = count(&h.browser, "[data-test=graph-edge]").await?;
        assert!(
            edges > 1000 && edges > pruned_edges,
            "{edges} edges in the full graph"
        );
        assert!(current_url(&h.browser).await?.contains("full=1"));
        // Still interactive: zoom, fit, click an anomalous edge.
        h.wait_for("[data-test=fit]").await?.click().await?;
        save_screenshot(&h.browser, "full-graph").await?;
        click_edge(&h.browser, PROXY, CDB).await?;
        h.wait_for_text("[data-test=edge-title]", CDB).await?;
        let row = h
            .wait_for("[data-test=edge-row][aria-selected=true]")
            .await?;
        assert_eq!(
            row.attr("data-edge").await?.as_deref(),
            Some(&*format!("{PROXY}>{CDB}"))
        );
        h.wait_for("[data-test=full-toggle]").await?.click().await?;
        h.wait_for_text("[data-test=candidate-name]", CDB).await?;
        assert_eq!(
            count(&h.browser, "[data-test=graph-edge]").await?,
            pruned_edges
        );

        // The demo's first tick has no history to judge against: nothing is anomalous.
        let latest: serde_json::Value = h
            .browser
            .execute(
                "return fetch('/api/v1/analysis').then(r => r.json()).then(a => a.earliest_tick)",
                vec![],
            )
            .await?;
        let earliest = latest.as_i64().unwrap();
        h.browser
            .goto(&h.url(&format!("/?tick={earliest}")))
            .await?;
        h.wait_for_text("[data-test=no-anomalies]", "No anomalies at this tick")
            .await?;
        h.wait_for_text("[data-test=empty-graph]", "Nothing anomalous")
            .await?;
        h.wait_for("[data-test=prev-tick][disabled]").await?;
        // The mark tabs list what is active at the tick: nothing in the demo.
        h.wait_for("[data-test=tab-known]").await?.click().await?;
        h.wait_for_text(
            "[data-test=no-marks-of-kind]",
            "No known anomaly active at this tick",
        )
        .await?;
        assert!(
            h.wait_for("[data-test=open-incidents]")
                .await?
                .text()
                .await?
                .starts_with("0 open incidents")
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_empty_store_says_so_plainly() -> anyhow::Result<()> {
    Harness::run("main-screen-empty", &[], async |h| {
        h.browser.goto(&h.url("/")).await?;
        h.wait_for_text("[data-test=analysis-error]", "no data yet")
            .await?;
        Ok(())
    })
    .await
}

/// Live mode: a page open on an empty store shows the first analysed tick, and then
/// each newer one, as the server pushes them (no reload, no visible polling).
#[tokio::test]
async fn live_mode_follows_new_ticks_pushed_by_the_server() -> anyhow::Result<()> {
    let h = Harness::start_opts("live-mode", &[], true).await?;
    let outcome = async {
        let token = h.server.ingest_token.clone().expect("asked for a token");
        h.browser.goto(&h.url("/")).await?;
        h.wait_for_text("[data-test=analysis-error]", "no data yet").await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let t0 = now - 3600 - (now - 3600).rem_euclid(300);
        let ingest = |ticks: std::ops::Range<i64>| {
            let body: String = ticks
                .map(|i| {
                    format!(
                        r#"{{"ts": {}, "src": "web-1", "dst": "db-1", "requests": 100, "errors": 0, "latency_ms_sum": 2000}}"#,
                        t0 + i * 300
                    ) + "\n"
                })
                .collect();
            format!(
                "return fetch('/api/v1/ingest/calls', {{method: 'POST', headers: {{'Authorization': 'Bearer {token}', 'Content-Type': 'application/x-ndjson'}}, body: {}}}).then(r => r.status)",
                serde_json::to_string(&body).unwrap()
            )
        };
        let status = h.browser.execute(&ingest(0..3), vec![]).await?;
        assert_eq!(status, 200);
        let first = h.wait_for("[data-test=tick]").await?;
        h.wait_for("[data-test=live]").await?;
        let label = first.text().await?;
        let status = h.browser.execute(&ingest(3..4), vec![]).await?;
        assert_eq!(status, 200);
        // The newer tick replaces the shown one without a reload.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now_label = h.wait_for("[data-test=tick]").await?.text().await?;
            if now_label != label {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "still showing {label}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let live = h.wait_for("[data-test=live]").await?.text().await?;
        assert!(live.contains("live") && !live.contains("reconnecting"), "{live}");
        anyhow::Ok(())
    }
    .await;
    h.finish(outcome).await
}

/// Signing in with a demo account: a wrong password is refused readably, the right one
/// shows who is signed in, survives a reload (the session cookie), and signing out ends it.
#[tokio::test]
async fn a_demo_user_signs_in_stays_signed_in_and_signs_out() -> anyhow::Result<()> {
    Harness::run("sign-in", &DEMO, async |h| {
        h.browser.goto(&h.url("/")).await?;
        h.wait_for("[data-test=sign-in]").await?.click().await?;
        h.wait_for("[data-test=sign-in-name]")
            .await?
            .send_keys("alice")
            .await?;
        h.wait_for("[data-test=sign-in-password]")
            .await?
            .send_keys("not-her-password")
            .await?;
        h.wait_for("[data-test=sign-in-submit]")
            .await?
            .click()
            .await?;
        h.wait_for_text("[data-test=sign-in-error]", "wrong name or password")
            .await?;
        let password = h.wait_for("[data-test=sign-in-password]").await?;
        password.clear().await?;
        password.send_keys("alice-on-call").await?;
        h.wait_for("[data-test=sign-in-submit]")
            .await?
            .click()
            .await?;
        h.wait_for_text("[data-test=signed-in]", "Alice Martin")
            .await?;
        // The HttpOnly cookie is invisible to scripts but kept by the browser.
        let visible = h.browser.execute("return document.cookie", vec![]).await?;
        assert_eq!(visible, serde_json::json!(""));
        h.browser.refresh().await?;
        h.wait_for_text("[data-test=signed-in]", "Alice Martin")
            .await?;
        h.wait_for("[data-test=sign-out]").await?.click().await?;
        h.wait_for("[data-test=sign-in]").await?;
        h.browser.refresh().await?;
        h.wait_for("[data-test=sign-in]").await?;
        Ok(())
    })
    .await
}

/// Two people on the same edge: alice marks it as a known anomaly; bob's open screen
/// shows the mark with her name and reason without a reload, the reason as text (markup
/// in it is not interpreted), and the edge leaves the table of new anomalies.
#[tokio::test]
async fn a_mark_made_by_one_user_appears_on_another_users_screen_without_reload()
-> anyhow::Result<()> {
    Harness::run("marks-two-users", &DEMO, async |h| {
        // Marks made below cover the incident tick's edges as analysed then: nothing may
        // analyse it again meanwhile.
        caught_up(h).await?;
        let link = h.url(&format!(
            "/?tick={INCIDENT_TICK}&edge={PROXY}%3E{CDB}&chart=latency"
        ));
        let bob = h.another_browser().await?;
        let outcome = async {
            bob.goto(&link).await?;
            sign_in(&bob, "bob", "bob-on-call").await?;
            wait_for_text(&bob, "[data-test=no-marks]", "No marks on this edge yet").await?;
            wait_for(
                &bob,
                &format!("[data-test=edge-row][data-edge=\"{PROXY}>{CDB}\"]"),
            )
            .await?;

            h.browser.goto(&link).await?;
            sign_in(&h.browser, "alice", "alice-on-call").await?;
            // Each sees who else looks at the same edge.
            h.wait_for_text("[data-test=presence]", "Bob Chen is looking at this edge")
                .await?;
            wait_for_text(
                &bob,
                "[data-test=presence]",
                "Alice Martin is looking at this edge",
            )
            .await?;
            h.wait_for("[data-test=mark-known_anomaly]")
                .await?
                .click()
                .await?;
            let reason = "<b>flag X</b> on for 2 h & compaction tuning";
            h.wait_for("[data-test=mark-description]")
                .await?
                .send_keys(reason)
                .await?;
            h.wait_for("[data-test=mark-submit]").await?.click().await?;
            h.wait_for_text("[data-test=mark-author]", "Alice Martin")
                .await?;

            // Bob's screen follows, with no reload.
            let author = wait_for_text(&bob, "[data-test=mark-author]", "Alice Martin").await?;
            assert_eq!(author.text().await?, "Alice Martin");
            let shown = wait_for(&bob, "[data-test=mark-reason]")
                .await?
                .text()
                .await?;
            assert_eq!(shown, reason, "the reason is shown as text");
            let markup = bob
                .execute(
                    "return document.querySelectorAll('[data-test=mark-reason] b').length",
                    vec![],
                )
                .await?;
            assert_eq!(
                markup,
                serde_json::json!(0),
                "markup in a reason is never interpreted"
            );
            wait_for_text(
                &bob,
                "[data-test=last-time]",
                "last time: known anomaly by Alice Martin",
            )
            .await?;
            wait_for_text(
                &bob,
                "[data-test=hidden-by]",
                "Hidden at this tick: known anomaly by alice",
            )
            .await?;
            // The marked edge is no longer a new anomaly in bob's table.
            let mut gone = false;
            for _ in 0..100 {
                let rows = bob
                    .find_all(Locator::Css(&format!(
                        "[data-test=edge-row][data-edge=\"{PROXY}>{CDB}\"]"
                    )))
                    .await?;
                if rows.is_empty() {
                    gone = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(
                gone,
                "the known anomaly still shows as a new anomaly for bob"
            );
            save_screenshot(&bob, "marks-second-user").await?;

            // Alice opens one incident for the rest of the graph, from a prefilled text.
            h.wait_for("[data-test=graph-incident]")
                .await?
                .click()
                .await?;
            let text = h.wait_for("[data-test=graph-incident-text]").await?;
            let prefilled = text.prop("value").await?.unwrap_or_default();
            for needle in [
                "messaging-conversation-cdb likely root cause of",
                "Edges:\n- ",
                "Likely root causes:\n1. messaging-conversation-cdb: calls into",
                "Config changes:\n- CHG-",
                "View: http",
            ] {
                assert!(
                    prefilled.contains(needle),
                    "prefilled text lacks {needle:?}:\n{prefilled}"
                );
            }
            h.wait_for("[data-test=graph-incident-submit]")
                .await?
                .click()
                .await?;
            // Everything anomalous is now covered: bob's table says so.
            wait_for_text(
                &bob,
                "[data-test=no-anomalies]",
                "No anomalies at this tick",
            )
            .await?;
            wait_for_text(&bob, "[data-test=open-incidents]", "1 open incident").await?;
            anyhow::Ok(())
        }
        .await;
        bob.close().await?;
        outcome
    })
    .await
}

/// An incident goes to (a fake) Jira as exactly one issue with the expected project,
/// summary, description and labels; when Jira resolves it, the incident closes in both
/// people's browsers without a reload.
#[tokio::test]
async fn an_incident_goes_to_jira_once_and_closes_in_both_browsers_when_resolved()
-> anyhow::Result<()> {
    let jira = epicenter_e2e::fake_jira::FakeJira::start().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("epicenter.toml");
    std::fs::write(
        &config,
        format!(
            "[jira]\nenabled = true\nbase_url = \"{}\"\nemail = \"epicenter@example.com\"\napi_token = \"t0k3n\"\nproject = \"OPS\"\nissue_type = \"Incident\"\nlabels = [\"epicenter\"]\npublic_url = \"https://epicenter.example.com\"\npoll_interval_s = 1\ntimeout_s = 2\n",
            jira.base
        ),
    )?;
    let config = config.display().to_string();
    let mut args = DEMO.to_vec();
    args.extend(["--config", config.as_str()]);
    Harness::run("incident-jira", &args, async |h| {
        caught_up(h).await?;
        let link = h.url(&format!("/?tick={INCIDENT_TICK}&edge={PROXY}%3E{CDB}"));
        let bob = h.another_browser().await?;
        let outcome = async {
            bob.goto(&link).await?;
            sign_in(&bob, "bob", "bob-on-call").await?;
            h.browser.goto(&link).await?;
            sign_in(&h.browser, "alice", "alice-on-call").await?;
            h.wait_for("[data-test=mark-incident]").await?.click().await?;
            // The incident form starts from everything known; alice writes her own title.
            let text = h.wait_for("[data-test=mark-description]").await?;
            let prefilled = text.prop("value").await?.unwrap_or_default();
            assert!(
                prefilled.starts_with("messaging-proxy -> messaging-conversation-cdb anomalous\n"),
                "{prefilled}"
            );
            assert!(prefilled.contains("Likely root causes:"), "{prefilled}");
            text.clear().await?;
            text.send_keys("Messaging history loads slowly\nconversation storage latency x4")
                .await?;
            h.wait_for("[data-test=mark-submit]").await?.click().await?;
            h.wait_for_text("[data-test=jira-key]", "OPS-1").await?;
            wait_for_text(&bob, "[data-test=jira-key]", "OPS-1").await?;
            let issues = jira.issues();
            assert_eq!(issues.len(), 1, "exactly one issue");
            let f = &issues[0].fields;
            assert_eq!(f["project"]["key"], "OPS");
            assert_eq!(f["issuetype"]["name"], "Incident");
            // Mark 1 is the demo's own known anomaly from last night.
            assert_eq!(f["summary"], "Epicenter incident #2: Messaging history loads slowly");
            assert_eq!(f["labels"], serde_json::json!(["epicenter", "epicenter-incident-2"]));
            let d = f["description"].as_str().unwrap_or_default();
            for needle in [
                "conversation storage latency x4",
                "Opened by Alice Martin",
                "- messaging-proxy -> messaging-conversation-cdb: latency",
                "1. messaging-conversation-cdb (score",
                "Lower compaction threads",
                "In Epicenter: https://epicenter.example.com/?tick=1794996900&edge=messaging-proxy%3Emessaging-conversation-cdb",
            ] {
                assert!(d.contains(needle), "description lacks {needle:?}:\n{d}");
            }
            save_screenshot(&h.browser, "incident-in-jira").await?;
            // Jira resolves it: both screens show the incident closed.
            jira.resolve("OPS-1");
            h.wait_for_text("[data-test=mark-status]", "ended").await?;
            wait_for_text(&bob, "[data-test=mark-status]", "ended").await?;
            wait_for_text(&bob, "[data-test=jira]", "(Done)").await?;
            assert_eq!(jira.create_calls(), 1);
            save_screenshot(&bob, "incident-closed-by-jira").await?;
            anyhow::Ok(())
        }
        .await;
        bob.close().await?;
        outcome
    })
    .await
}

async fn texts(browser: &fantoccini::Client, css: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in browser.find_all(Locator::Css(css)).await? {
        out.push(e.text().await?);
    }
    Ok(out)
}

async fn attrs(browser: &fantoccini::Client, css: &str, attr: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in browser.find_all(Locator::Css(css)).await? {
        out.push(e.attr(attr).await?.unwrap_or_default());
    }
    out.sort();
    Ok(out)
}

/// A developer of `counters-cdb` checks last night, in their own time zone: the demo's
/// overnight compaction episode is there with the known anomaly Bob marked on it (who,
/// what, why) and a small chart, and one click opens the main screen at its peak.
#[tokio::test]
async fn a_developer_finds_last_nights_episode_with_the_mark_on_it() -> anyhow::Result<()> {
    Harness::run("service-view", &DEMO, async |h| {
        h.browser.goto(&h.url("/?view=service")).await?;
        h.wait_for("[data-test=pick-service]").await?;
        h.wait_for("[data-test=service-input]")
            .await?
            .send_keys("counters-c")
            .await?;
        h.wait_for_text("[data-test=service-suggestion]", "counters-cdb")
            .await?
            .click()
            .await?;
        // Last night is 00:00-09:00 in the browser's zone, said explicitly.
        let range = h
            .wait_for_text("[data-test=range-label]", "Istanbul")
            .await?
            .text()
            .await?;
        assert!(
            range.contains("Wed 18 Nov 00:00 – 09:00") && range.contains("UTC+3"),
            "{range}"
        );
        let mark = h
            .wait_for_text("[data-test=episode-mark]", "Bob Chen")
            .await?
            .text()
            .await?;
        assert!(
            mark.contains("marked it as a known anomaly") && mark.contains("Nightly compaction"),
            "{mark}"
        );
        let summary = h
            .wait_for("[data-test=episodes-summary]")
            .await?
            .text()
            .await?;
        assert!(
            summary.contains("into and out of counters-cdb"),
            "{summary}"
        );
        assert!(
            current_url(&h.browser)
                .await?
                .contains("view=service&service=counters-cdb&range=night")
        );
        // The marked episode: an edge into counters-cdb, with its chart drawn.
        let card = h
            .browser
            .find(Locator::XPath(
                "//li[@data-test='episode'][.//li[@data-test='episode-mark']]",
            ))
            .await?;
        let edge = card.attr("data-edge").await?.unwrap_or_default();
        assert!(edge.ends_with(">counters-cdb"), "{edge}");
        let when = card
            .find(Locator::Css("[data-test=episode-when]"))
            .await?
            .text()
            .await?;
        assert!(when.starts_with("Wed 18 Nov 0"), "{when}");
        let line = card
            .find(Locator::Css("[data-test=episode-chart] polyline.this-week"))
            .await?
            .attr("points")
            .await?
            .unwrap_or_default();
        assert!(line.split(' ').count() > 20, "{line}");
        save_screenshot(&h.browser, "service-night").await?;

        // One click: the main screen at the episode's peak with the edge selected.
        card.find(Locator::Css("[data-test=open-episode]"))
            .await?
            .click()
            .await?;
        let (src, dst) = edge.split_once('>').unwrap();
        h.wait_for_text("[data-test=edge-title]", &format!("{src} → {dst}"))
            .await?;
        let tick = h.wait_for("[data-test=tick]").await?.text().await?;
        assert!(
            tick.starts_with("2026-11-18 00:") || tick.starts_with("2026-11-17 2"),
            "{tick}"
        );
        Ok(())
    })
    .await
}

/// Waits until the detection loop has caught up (`epicenter_detection_backlog_ticks`
/// on `/metrics` is 0): its two hours of backfill, and the ticks after the demo's
/// overnight mark that it analyses again in the background. Until then a tick of the
/// incident may be analysed again, with its earlier ticks' flags changed, while the
/// test reads it.
async fn caught_up(h: &Harness) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(240);
    h.browser.goto(&h.url("/metrics")).await?;
    loop {
        let text: String = serde_json::from_value(
            h.browser
                .execute("return document.body.innerText", vec![])
                .await?,
        )?;
        let backlog = text
            .lines()
            .find_map(|l| l.strip_prefix("epicenter_detection_backlog_ticks "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if backlog == Some(0.0) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the detection loop has not caught up: backlog {backlog:?} ticks"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        h.browser.refresh().await?;
    }
}

/// A reviewer replays the messaging incident: plays, steps to the onset with an edge
/// selected and the graph zoomed (both kept, nodes in place), compares onset with peak
/// on the graph and as a list, exports the bundle, and with the server stopped opens
/// the file and sees the same graph, ranking and detection counts, then prunes harder
/// in the browser.
#[tokio::test]
async fn a_reviewer_replays_diffs_exports_and_replays_offline() -> anyhow::Result<()> {
    Harness::run("replay", &DEMO, async |h| {
        caught_up(h).await?;
        let from = INCIDENT_TICK - 40 * 60;
        let to = INCIDENT_TICK + 40 * 60;
        h.browser
            .goto(&h.url(&format!("/?view=replay&from={from}&to={to}")))
            .await?;
        h.wait_for("[data-test=timeline]").await?;
        h.wait_for_text("[data-test=replay-tick]", "2026-11-18 09:35 UTC").await?;
        h.wait_for_text("[data-test=replay-source]", "stored snapshots").await?;

        // Play, then pause once it has moved on: the tick stays where it paused. (No
        // particular tick is awaited: at 4 ticks a second one shows for only 250 ms.)
        h.wait_for("[data-test=speed]").await?.select_by_value("4").await?;
        h.wait_for("[data-test=play]").await?.click().await?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while h.wait_for("[data-test=replay-tick]").await?.text().await? == "2026-11-18 09:35 UTC" {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "playing never moved past 09:35");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        h.wait_for("[data-test=play]").await?.click().await?;
        let paused_at = h.wait_for("[data-test=replay-tick]").await?.text().await?;
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(h.wait_for("[data-test=replay-tick]").await?.text().await?, paused_at, "paused");

        // To the onset; select the storage edge once it shows and zoom in.
        h.wait_for("[data-test=to-peak]").await?.click().await?;
        let edge = format!("[data-test=graph-edge][data-edge=\"{PROXY}>{CDB}\"]");
        click_edge(&h.browser, PROXY, CDB).await?;
        h.wait_for("[data-test=graph] button[title^='Zoom in']").await?.click().await?;
        let view_box = h.wait_for("[data-test=graph] svg").await?.attr("viewBox").await?;
        let place = |css: &'static str| {
            let b = h.browser.clone();
            async move {
                b.execute(
                    &format!("const n = [...document.querySelectorAll('[data-test=graph-node]')].find(g => g.textContent.includes('{css}'));
                              return n ? n.querySelector('circle').getAttribute('cx') + ',' + n.querySelector('circle').getAttribute('cy') : null;"),
                    vec![],
                )
                .await
            }
        };
        let cdb_at_peak = place(CDB).await?;
        h.wait_for("[data-test=step-back]").await?.click().await?;
        h.wait_for("[data-test=step-forward]").await?.click().await?;
        h.wait_for("[data-test=step-back]").await?.click().await?;
        assert_eq!(place(CDB).await?, cdb_at_peak, "nodes keep their places");
        assert_eq!(h.wait_for("[data-test=graph] svg").await?.attr("viewBox").await?, view_box, "the zoom stays");
        let still = h.wait_for(&edge).await?;
        assert!(still.attr("class").await?.unwrap_or_default().contains("selected"), "the selection stays");
        let onset = h.wait_for("[data-test=to-onset]").await?;
        let before = h.wait_for("[data-test=replay-tick]").await?.text().await?;
        onset.click().await?;
        // The tick label follows the click on the next render: wait for it to move.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let onset_tick = loop {
            let now_shown = h.wait_for("[data-test=replay-tick]").await?.text().await?;
            if now_shown != before || tokio::time::Instant::now() > deadline {
                break now_shown;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(["2026-11-18 09:55 UTC", "2026-11-18 10:00 UTC"].contains(&onset_tick.as_str()), "{onset_tick}");
        let steps: Vec<f64> = serde_json::from_value(
            h.browser.execute("return window.epicenterReplaySteps || []", vec![]).await?,
        )?;
        assert!(steps.len() >= 5, "{steps:?}");

        // Onset against peak.
        h.wait_for("[data-test=diff-set-a]").await?.click().await?;
        h.wait_for("[data-test=to-peak]").await?.click().await?;
        h.wait_for("[data-test=diff-set-b]").await?.click().await?;
        h.wait_for("[data-test=diff]").await?;
        let changes = texts(&h.browser, "[data-test=diff-change]").await?;
        assert!(changes.iter().any(|c| c == "appeared"), "{changes:?}");
        let rankings = h.wait_for("[data-test=diff-rankings]").await?.text().await?;
        assert!(rankings.contains(&format!("1 {CDB}")), "{rankings}");
        assert!(!h.browser.find_all(Locator::Css("[data-test=graph-edge].diff-appeared")).await?.is_empty());
        save_screenshot(&h.browser, "replay-diff").await?;
        h.wait_for("[data-test=diff-clear]").await?.click().await?;

        // What the peak shows, from the server.
        let peak_tick = h.wait_for("[data-test=replay-tick]").await?.text().await?;
        h.wait_for_text("[data-test=candidate-name]", CDB).await?;
        let ranking = texts(&h.browser, "[data-test=candidate-name]").await?;
        // Detection's counts at the tick, as the main screen shows them.
        let counts = h.wait_for("[data-test=detection-summary]").await?.text().await?;
        assert!(counts.starts_with("Detection: ") && counts.contains(" series tested; "), "{counts}");
        let edges = attrs(&h.browser, "[data-test=graph-edge]", "data-edge").await?;
        assert!(edges.len() >= 3, "{edges:?}");
        save_screenshot(&h.browser, "replay-peak").await?;

        // The graph as SVG for the postmortem.
        h.wait_for("[data-test=export-svg]").await?.click().await?;
        let svg = wait_for_download(&h.downloads, ".svg").await?;
        let svg = std::fs::read_to_string(svg)?;
        assert!(svg.starts_with("<svg") && svg.contains(CDB), "{}", &svg[..200.min(svg.len())]);
        h.wait_for("[data-test=export-png]").await?.click().await?;
        let png = std::fs::read(wait_for_download(&h.downloads, ".png").await?)?;
        assert!(png.starts_with(b"\x89PNG"));

        // The bundle, then no server.
        h.wait_for("[data-test=download-bundle]").await?.click().await?;
        let file = wait_for_download(&h.downloads, ".json").await?;
        h.server.stop();
        h.wait_for("[data-test=open-file]")
            .await?
            .send_keys(&file.display().to_string())
            .await?;
        h.wait_for_text("[data-test=replay-source]", "no server needed").await?;
        h.wait_for("[data-test=to-peak]").await?.click().await?;
        h.wait_for_text("[data-test=replay-tick]", &peak_tick).await?;
        h.wait_for_text("[data-test=candidate-name]", CDB).await?;
        assert_eq!(texts(&h.browser, "[data-test=candidate-name]").await?, ranking);
        assert_eq!(attrs(&h.browser, "[data-test=graph-edge]", "data-edge").await?, edges);
        assert_eq!(h.wait_for("[data-test=detection-summary]").await?.text().await?, counts, "the file keeps the counts");
        save_screenshot(&h.browser, "replay-offline").await?;

        // A file from a newer Epicenter is refused, saying why; the replay shown stays.
        let text = std::fs::read_to_string(&file)?;
        let newer = file.with_file_name("from-a-newer-epicenter.json");
        std::fs::write(&newer, text.replacen("\"format_version\":2", "\"format_version\":3", 1))?;
        h.wait_for("[data-test=open-file]")
            .await?
            .send_keys(&newer.display().to_string())
            .await?;
        let refused = h.wait_for("[data-test=replay-error]").await?.text().await?;
        assert!(
            refused.contains("from-a-newer-epicenter.json")
                && refused.contains("format version 3, newer than this build reads (up to 2)"),
            "{refused}"
        );
        assert_eq!(texts(&h.browser, "[data-test=candidate-name]").await?, ranking);

        // Days later, with no Epicenter anywhere: the front end from a plain static
        // file server, and the file.
        let static_base = epicenter_e2e::serve_static(&epicenter_e2e::dist_dir())?;
        h.browser.goto(&format!("{static_base}/?view=replay")).await?;
        h.wait_for_text("[data-test=replay-error]", "Open a bundle file").await?;
        h.wait_for("[data-test=open-file]")
            .await?
            .send_keys(&file.display().to_string())
            .await?;
        h.wait_for_text("[data-test=replay-source]", "no server needed").await?;
        h.wait_for("[data-test=to-peak]").await?.click().await?;
        h.wait_for_text("[data-test=replay-tick]", &peak_tick).await?;
        h.wait_for_text("[data-test=candidate-name]", CDB).await?;
        assert_eq!(texts(&h.browser, "[data-test=candidate-name]").await?, ranking);
        assert_eq!(attrs(&h.browser, "[data-test=graph-edge]", "data-edge").await?, edges);
        assert!(h.browser.find_all(Locator::Css("[data-test=replay-error]")).await?.is_empty());
        save_screenshot(&h.browser, "replay-static").await?;

        // Pruning harder, offline: fewer edges, ranking redone.
        let severity = h.wait_for("[data-test=min-severity]").await?;
        severity.clear().await?;
        severity.send_keys("1000\u{E004}").await?;
        h.wait_for("[data-test=empty-graph]").await?;
        assert!(h.browser.find_all(Locator::Css("[data-test=candidate-name]")).await?.is_empty());
        Ok(())
    })
    .await
}

/// The maintenance switch on the screen: alice (write scope) switches dc2 on with a
/// reason; the header says so, the panel shows who and why (markup in the reason is
/// text), and an anonymous reader sees the same state but cannot switch.
#[tokio::test]
async fn an_on_call_engineer_switches_maintenance_for_one_data_centre() -> anyhow::Result<()> {
    Harness::run("maintenance", &DEMO, async |h| {
        h.browser.goto(&h.url("/")).await?;
        sign_in(&h.browser, "alice", "alice-on-call").await?;
        h.wait_for_text("[data-test=maintenance-toggle]", "Maintenance")
            .await?
            .click()
            .await?;
        h.wait_for("[data-test=maintenance-dc][data-dc=dc2][data-on=false]")
            .await?;
        h.wait_for("[data-test=maintenance-reason]")
            .await?
            .send_keys("<b>rolling</b> update of dc2")
            .await?;
        h.wait_for("[data-test=maintenance-dc][data-dc=dc2] [data-test=maintenance-switch]")
            .await?
            .click()
            .await?;
        h.wait_for("[data-test=maintenance-dc][data-dc=dc2][data-on=true]")
            .await?;
        h.wait_for_text("[data-test=maintenance-toggle]", "Maintenance: dc2")
            .await?;
        h.wait_for_text("[data-test=maintenance-dc][data-dc=dc2]", "on by alice")
            .await?;
        h.wait_for_text(
            "[data-test=maintenance-dc][data-dc=dc2]",
            "<b>rolling</b> update of dc2",
        )
        .await?;
        assert_eq!(
            count(&h.browser, "[data-test=maintenance-panel] b").await?,
            0
        );

        let reader = h.another_browser().await?;
        let outcome = async {
            reader.goto(&h.url("/")).await?;
            wait_for_text(
                &reader,
                "[data-test=maintenance-toggle]",
                "Maintenance: dc2",
            )
            .await?
            .click()
            .await?;
            wait_for(&reader, "[data-test=maintenance-read-only]").await?;
            assert_eq!(count(&reader, "[data-test=maintenance-switch]").await?, 0);
            anyhow::Ok(())
        }
        .await;
        reader.close().await?;
        outcome
    })
    .await
}
