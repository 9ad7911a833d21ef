//! `epicenter render` as an operator runs it: from a running server over HTTP and from
//! an exported bundle, to SVG and PNG, with clear errors for what it cannot draw.

mod support;

use std::process::Command;

use support::TestApp;

/// 2026-11-18 11:10 UTC.
const DEMO_END: i64 = 1_795_000_200;
/// 20 minutes into the messaging incident.
const TICK: i64 = DEMO_END - 55 * 60;
const CDB: &str = "messaging-conversation-cdb";

fn epicenter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_epicenter"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running epicenter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_draws_a_tick_from_a_server_and_from_a_bundle_as_svg_and_png() {
    let app = TestApp::start_with_demo(DEMO_END, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let tick = TICK.to_string();

    // From the running server.
    let base = app.base.clone();
    let (svg_path, t) = (out("server.svg"), tick.clone());
    let done = tokio::task::spawn_blocking(move || {
        epicenter(&[
            "render", "--server", &base, "--tick", &t, "--out", &svg_path,
        ])
    })
    .await
    .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("2026-11-18T10:15:00Z"));
    let from_server = std::fs::read_to_string(out("server.svg")).unwrap();
    assert!(from_server.starts_with("<svg"));
    assert!(from_server.contains("Epicenter · 2026-11-18T10:15:00Z"));
    assert!(from_server.contains(CDB));

    // From an exported bundle: the same drawing.
    let bundle = app
        .get(&format!(
            "/api/v1/snapshots/bundle?from={}&to={}",
            TICK - 600,
            TICK + 600
        ))
        .await
        .text()
        .await
        .unwrap();
    let file = dir.path().join("incident.json");
    std::fs::write(&file, &bundle).unwrap();
    let file = file.display().to_string();
    let (f, t, svg_path, png_path) = (file.clone(), tick.clone(), out("file.svg"), out("file.png"));
    let (svg_run, png_run) = tokio::task::spawn_blocking(move || {
        (
            epicenter(&["render", "--input", &f, "--tick", &t, "--out", &svg_path]),
            epicenter(&[
                "render", "--input", &f, "--tick", &t, "--out", &png_path, "--scale", "1",
            ]),
        )
    })
    .await
    .unwrap();
    assert!(
        svg_run.status.success(),
        "{}",
        String::from_utf8_lossy(&svg_run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out("file.svg")).unwrap(),
        from_server
    );
    assert!(
        png_run.status.success(),
        "{}",
        String::from_utf8_lossy(&png_run.stderr)
    );
    let png = std::fs::read(out("file.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // The IHDR width matches the SVG's width at scale 1.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let svg_width: u32 = from_server
        .split("width=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(width, svg_width);
    // Not blank: the image compresses to more than a flat background would.
    assert!(png.len() > 5_000, "{} bytes", png.len());

    // What it cannot draw, it says.
    let newer = dir.path().join("newer.json");
    std::fs::write(
        &newer,
        bundle.replacen("\"format_version\":2", "\"format_version\":9", 1),
    )
    .unwrap();
    let newer = newer.display().to_string();
    let (missing, bad_ext, too_new) = tokio::task::spawn_blocking({
        let (file, out1, out2) = (file.clone(), out("x.svg"), out("x.gif"));
        move || {
            (
                epicenter(&[
                    "render",
                    "--input",
                    &file,
                    "--tick",
                    "2026-11-18T00:00:00Z",
                    "--out",
                    &out1,
                ]),
                epicenter(&[
                    "render",
                    "--input",
                    &file,
                    "--tick",
                    &TICK.to_string(),
                    "--out",
                    &out2,
                ]),
                epicenter(&["render", "--input", &newer, "--out", &out1]),
            )
        }
    })
    .await
    .unwrap();
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!missing.status.success());
    assert!(
        err(&missing).contains(
            "covers 2026-11-18T10:05:00Z to 2026-11-18T10:25:00Z and has no tick 2026-11-18T00:00:00Z"
        ),
        "{}",
        err(&missing)
    );
    assert!(!bad_ext.status.success());
    assert!(
        err(&bad_ext).contains("must end in .svg or .png"),
        "{}",
        err(&bad_ext)
    );
    assert!(!too_new.status.success());
    assert!(
        err(&too_new).contains("format version 9, newer than this build reads (up to 2)"),
        "{}",
        err(&too_new)
    );
}
