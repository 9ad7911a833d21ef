//! The walking skeleton in a real browser.

use epicenter_e2e::Harness;

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

#[tokio::test]
async fn the_demo_shows_the_messaging_storage_as_the_likely_root_cause() -> anyhow::Result<()> {
    Harness::run(
        "main-screen-demo",
        &["--demo", "--demo-weeks", "1", "--demo-end", DEMO_END],
        async |h| {
            h.browser.goto(&h.url("/")).await?;
            let first = h
                .wait_for_text("[data-test=candidate-name]", "messaging-conversation-cdb")
                .await?;
            assert_eq!(first.text().await?, "messaging-conversation-cdb");
            let why = h
                .wait_for("[data-test=candidate-why]")
                .await?
                .text()
                .await?;
            assert!(
                why.contains("calls into messaging-conversation-cdb +"),
                "{why}"
            );
            let rows = h
                .browser
                .find_all(fantoccini::Locator::Css("[data-test=edge-row]"))
                .await?;
            assert!(!rows.is_empty());
            let table = h.wait_for("[data-test=edge-table]").await?.text().await?;
            assert!(
                table.contains("messaging-proxy") && table.contains("messaging-conversation-cdb"),
                "{table}"
            );
            let nodes = h
                .browser
                .find_all(fantoccini::Locator::Css("[data-test=graph-node]"))
                .await?;
            assert!(nodes.len() >= 2);
            h.wait_for("[data-test=rank-badge]").await?;
            h.wait_for_text("[data-test=tick]", "2026-11-18 11:05 UTC")
                .await?;
            Ok(())
        },
    )
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
