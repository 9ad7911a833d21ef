//! The walking skeleton in a real browser.

use epicenter_e2e::Harness;

#[tokio::test]
async fn the_shell_renders_with_the_server_version() -> anyhow::Result<()> {
    Harness::run("shell", &[], async |h| {
        h.browser.goto(&h.url("/")).await?;
        h.wait_for("[data-test=header]").await?;
        h.wait_for("[data-test=edge-table]").await?;
        h.wait_for("[data-test=graph]").await?;
        let version = h.wait_for("[data-test=version]").await?.text().await?;
        assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")));
        Ok(())
    })
    .await
}
