//! Main-screen timings in headless Chromium, for BENCHMARKS.md (`./dev ui-bench`).
//!
//! Serves the demo (six weeks by default, ending 2026-11-18 11:10 UTC) and opens the
//! main screen at the messaging incident's tick:
//! - navigation to interactive: from navigation start to the `epicenter:interactive`
//!   performance mark (the graph drawn with its handlers attached), the first load
//!   (the tick analysed on demand) and then warm loads;
//! - selection: from a click on a table row until the row, the graph edge and the
//!   edge detail show the new selection (all microtasks run), and until the next frame;
//! - the full-graph toggle: from the click until every edge is in the DOM;
//! - replay of the messaging incident (80 minutes around the tick), with an edge
//!   selected and the graph zoomed: each step from the click on "next tick" until the
//!   tick, table, ranking and graph show the new tick, and until the next frame; then
//!   the onset-against-peak diff until drawn.
//!
//! Usage: `ui_bench [WEEKS] [LOADS]`. Needs `EPICENTER_BIN` (a release build is fair)
//! and the built front end in `dist/`.

use std::time::Duration;

use anyhow::{Context, Result};
use epicenter_e2e::{Harness, save_screenshot, wait_for};

const END: &str = "1795000200";
const TICK: i64 = 1_795_000_200 - 55 * 60;

fn stats(label: &str, mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let out = serde_json::json!({
        "what": label, "n": v.len(), "median_ms": q(0.5), "p90_ms": q(0.9),
        "min_ms": v[0], "max_ms": v[v.len() - 1],
    });
    eprintln!("{out}");
    out
}

async fn interactive_ms(h: &Harness) -> Result<f64> {
    for _ in 0..400 {
        let v = h
            .browser
            .execute(
                "const e = performance.getEntriesByName('epicenter:interactive');
                 return e.length ? e[0].startTime : null;",
                vec![],
            )
            .await?;
        if let Some(ms) = v.as_f64() {
            return Ok(ms);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("the page never became interactive")
}

/// Clicks each row and times until the selection shows everywhere.
const SELECT: &str = r#"
const done = arguments[arguments.length - 1];
const macrotask = () => new Promise(r => { const c = new MessageChannel(); c.port1.onmessage = () => r(); c.port2.postMessage(0); });
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
(async () => {
  const applied = [], painted = [];
  const rows = () => [...document.querySelectorAll('[data-test=edge-row]')];
  const n = Math.min(rows().length, 25);
  for (let round = 0; round < 2; round++) for (let i = 0; i < n; i++) {
    const row = rows()[i];
    const edge = row.dataset.edge;
    const t0 = performance.now();
    row.click();
    for (let k = 0; k < 1000; k++) {
      await macrotask();
      const r = document.querySelector(`[data-test=edge-row][data-edge="${edge}"]`);
      const g = document.querySelector(`[data-test=graph-edge][data-edge="${edge}"]`);
      const title = document.querySelector('[data-test=edge-title]');
      if (r && r.getAttribute('aria-selected') === 'true' && g && g.classList.contains('selected')
          && title && title.textContent === edge.replace('>', ' → ')) break;
    }
    applied.push(performance.now() - t0);
    await frame();
    painted.push(performance.now() - t0);
    await frame();
  }
  return { applied, painted };
})().then(done, e => done({ error: String(e) }));
"#;

/// Steps through the loaded replay forward and back, timing each step.
const REPLAY: &str = r#"
const done = arguments[arguments.length - 1];
const macrotask = () => new Promise(r => { const c = new MessageChannel(); c.port1.onmessage = () => r(); c.port2.postMessage(0); });
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
(async () => {
  const applied = [], painted = [];
  const label = () => document.querySelector('[data-test=replay-tick]').textContent;
  const step = async (which) => {
    const before = label();
    const t0 = performance.now();
    document.querySelector(`[data-test=${which}]`).click();
    for (let k = 0; k < 1000 && label() === before; k++) await macrotask();
    applied.push(performance.now() - t0);
    await frame();
    painted.push(performance.now() - t0);
    await frame();
  };
  const n = Number(document.querySelector('[data-test=scrubber]').max);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < n; i++) await step('step-forward');
    for (let i = 0; i < n; i++) await step('step-back');
  }
  const t0 = performance.now();
  document.querySelector('[data-test=to-onset]').click();
  await macrotask();
  document.querySelector('[data-test=diff-set-a]').click();
  await macrotask();
  document.querySelector('[data-test=to-peak]').click();
  await macrotask();
  const t1 = performance.now();
  document.querySelector('[data-test=diff-set-b]').click();
  for (let k = 0; k < 1000 && !document.querySelector('[data-test=diff]'); k++) await macrotask();
  await frame();
  const diff = performance.now() - t1;
  return { applied, painted, diff, steps: n };
})().then(done, e => done({ error: String(e) }));
"#;

const FULL: &str = r#"
const done = arguments[arguments.length - 1];
const t0 = performance.now();
document.querySelector('[data-test=full-toggle]').click();
const check = () => {
  if (document.querySelectorAll('[data-test=graph-edge]').length > 1000) {
    requestAnimationFrame(() => done(performance.now() - t0));
  } else setTimeout(check, 5);
};
check();
"#;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let weeks = args.get(1).map_or("6", String::as_str).to_string();
    let loads: usize = args.get(2).map_or(Ok(10), |s| s.parse())?;
    let h = Harness::start_with(
        "ui-bench",
        &["--demo", "--demo-weeks", &weeks, "--demo-end", END],
    )
    .await?;
    let outcome = async {
        let url = h.url(&format!("/?tick={TICK}"));
        let mut report = Vec::new();
        h.browser.goto(&url).await?;
        let cold = interactive_ms(&h).await?;
        eprintln!("first load (tick analysed on demand): {cold:.0} ms");
        report
            .push(serde_json::json!({"what": "navigation to interactive, first load", "ms": cold}));
        let mut warm = Vec::new();
        for _ in 0..loads {
            h.browser.goto("about:blank").await?;
            h.browser.goto(&url).await?;
            warm.push(interactive_ms(&h).await?);
        }
        report.push(stats("navigation to interactive, warm", warm));
        let sel = h
            .browser
            .execute_async(SELECT, vec![])
            .await
            .context("timing selections")?;
        if let Some(e) = sel.get("error") {
            anyhow::bail!("selection script failed: {e}");
        }
        let nums = |k: &str| -> Vec<f64> {
            sel[k]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default()
        };
        report.push(stats(
            "selection applied (table, graph, detail)",
            nums("applied"),
        ));
        report.push(stats("selection until the next frame", nums("painted")));
        let full = h.browser.execute_async(FULL, vec![]).await?;
        report.push(serde_json::json!({"what": "full-graph toggle until drawn", "ms": full}));
        let edges = h
            .browser
            .execute(
                "return document.querySelectorAll('[data-test=graph-edge]').length",
                vec![],
            )
            .await?;
        report.push(serde_json::json!({"what": "full graph edges in the DOM", "count": edges}));

        // Replay of the incident.
        let replay = h.url(&format!(
            "/?view=replay&from={}&to={}&at={TICK}",
            TICK - 40 * 60,
            TICK + 40 * 60
        ));
        h.browser.goto(&replay).await?;
        wait_for(&h.browser, "[data-test=timeline]").await?;
        wait_for(
            &h.browser,
            "[data-test=graph-edge][data-edge=\"messaging-proxy>messaging-conversation-cdb\"]",
        )
        .await?;
        // A label may lie over the edge at this window size: select it as a click on
        // the edge itself would.
        h.browser
            .execute(
                "document.querySelector('[data-test=graph-edge][data-edge=\"messaging-proxy>messaging-conversation-cdb\"]')
                   .dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                vec![],
            )
            .await?;
        wait_for(&h.browser, "[data-test=graph] button[title^='Zoom in']")
            .await?
            .click()
            .await?;
        let r = h
            .browser
            .execute_async(REPLAY, vec![])
            .await
            .context("timing replay steps")?;
        if let Some(e) = r.get("error") {
            anyhow::bail!("replay script failed: {e}");
        }
        let nums = |k: &str| -> Vec<f64> {
            r[k].as_array()
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default()
        };
        report.push(stats(
            "replay step applied (tick, table, ranking, graph)",
            nums("applied"),
        ));
        report.push(stats("replay step until the next frame", nums("painted")));
        report.push(serde_json::json!({"what": "replay ticks in the range", "count": r["steps"]}));
        report.push(
            serde_json::json!({"what": "diff onset against peak until drawn", "ms": r["diff"]}),
        );
        println!("{}", serde_json::to_string_pretty(&report)?);

        // Screenshots for the docs, on the six-week demo (full baselines in the chart).
        h.browser.set_window_size(1600, 1050).await?;
        h.browser.goto(&url).await?;
        interactive_ms(&h).await?;
        wait_for(&h.browser, "[data-test=activity-chart]").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        save_screenshot(&h.browser, "docs-main-screen").await?;
        let edge = "edge=messaging-proxy%3Emessaging-conversation-cdb&chart=latency";
        h.browser.goto(&format!("{url}&{edge}")).await?;
        wait_for(&h.browser, "[data-test=server-pairs]").await?;
        wait_for(&h.browser, "[data-test=edge-change]").await?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        save_screenshot(&h.browser, "docs-edge-detail").await?;
        h.browser.goto(&format!("{url}&full=1")).await?;
        wait_for(&h.browser, "[data-test=full-summary]").await?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        save_screenshot(&h.browser, "docs-full-graph").await?;
        h.browser
            .goto(&h.url("/?view=service&service=counters-cdb&range=night"))
            .await?;
        wait_for(&h.browser, "[data-test=episode-mark]").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        save_screenshot(&h.browser, "docs-service-view").await?;
        h.browser.goto(&replay).await?;
        wait_for(&h.browser, "[data-test=to-onset]")
            .await?
            .click()
            .await?;
        wait_for(&h.browser, "[data-test=diff-set-a]")
            .await?
            .click()
            .await?;
        wait_for(&h.browser, "[data-test=to-peak]")
            .await?
            .click()
            .await?;
        wait_for(&h.browser, "[data-test=diff-set-b]")
            .await?
            .click()
            .await?;
        wait_for(&h.browser, "[data-test=diff]").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        save_screenshot(&h.browser, "docs-replay-diff").await?;
        anyhow::Ok(())
    }
    .await;
    h.finish(outcome).await
}
