//! # epicenter-e2e
//!
//! Browser tests against the real `epicenter` binary. [`Harness::start`] starts the
//! server on a free port with a temporary store, starts chromedriver and a headless
//! Chromium session; [`Harness::finish`] saves a screenshot of the final page under
//! `target/e2e-screenshots/` whatever the test's outcome, and cleans up.
//!
//! Configuration comes from the environment:
//! - `EPICENTER_BIN`: the server binary (default `target/debug/epicenter`);
//! - `EPICENTER_DIST`: the built front end (default `dist/`);
//! - `EPICENTER_BASE_URL`: test an already running server instead of starting one;
//! - `WEBDRIVER_URL`: use a running WebDriver instead of starting chromedriver;
//! - `CHROMIUM`, `CHROMEDRIVER`: binaries (defaults `/usr/bin/chromium`, `/usr/bin/chromedriver`).
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use epicenter_e2e::Harness;
//! let h = Harness::start("example").await?;
//! let outcome = async {
//!     h.browser.goto(&h.url("/")).await?;
//!     h.wait_for("[data-test=shell]").await?;
//!     anyhow::Ok(())
//! }
//! .await;
//! h.finish(outcome).await
//! # }
//! ```

pub mod fake_jira;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// The browser's time zone in the tests unless `EPICENTER_E2E_TZ` says otherwise.
pub const BROWSER_TZ: &str = "Europe/Istanbul";

/// How long a wait for an element may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives in the workspace")
        .to_path_buf()
}

/// A child process killed on drop.
#[derive(Debug)]
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Err(e) = self.0.kill() {
            eprintln!("could not stop child process {}: {e}", self.0.id());
        }
        // Reap it so no zombie is left; its exit status after kill is of no interest.
        let _reaped = self.0.wait();
    }
}

/// A running `epicenter serve` with its own temporary store.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// An API token with the `ingest` scope, when asked for.
    pub ingest_token: Option<String>,
    child: std::sync::Mutex<Option<Reaped>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the binary with `extra` arguments after `serve`, and waits until it
    /// prints its URL.
    pub fn start(extra: &[&str]) -> Result<Server> {
        Self::start_opts(extra, false)
    }

    /// [`Server::start`], first creating an `ingest` token in the new store when
    /// `ingest_token` is set (with `epicenter token create`, as an operator would).
    pub fn start_opts(extra: &[&str], ingest_token: bool) -> Result<Server> {
        if let Ok(base) = std::env::var("EPICENTER_BASE_URL") {
            return Ok(Server {
                ingest_token: None,
                base: base.trim_end_matches('/').to_string(),
                child: std::sync::Mutex::new(None),
                _dir: None,
            });
        }
        let root = workspace_root();
        let from_env = |var: &str, default: &str| {
            root.join(
                std::env::var_os(var)
                    .map(PathBuf::from)
                    .unwrap_or(default.into()),
            )
        };
        let bin = from_env("EPICENTER_BIN", "target/debug/epicenter");
        let dist = dist_dir();
        if !bin.is_file() {
            bail!(
                "server binary {} not found: build it with `cargo build -p epicenter-backend`",
                bin.display()
            );
        }
        if !dist.join("index.html").is_file() {
            bail!("front end not built at {}: run `./dev web`", dist.display());
        }
        let dir = tempfile::tempdir()?;
        let token = if ingest_token {
            let out = Command::new(&bin)
                .args([
                    "token",
                    "create",
                    "--name",
                    "e2e-collector",
                    "--scope",
                    "ingest",
                    "--data-dir",
                ])
                .arg(dir.path().join("data"))
                .output()
                .with_context(|| format!("running {} token create", bin.display()))?;
            if !out.status.success() {
                bail!(
                    "token create failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Some(String::from_utf8(out.stdout)?.trim().to_string())
        } else {
            None
        };
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--static-dir")
            .arg(&dist)
            .args(extra)
            .env("RUST_LOG", "warn")
            // The live tick is analysed as usual; a day of backfill would only compete
            // with the browser for the two cores. Two hours reach back before the demo's
            // messaging incident (an hour and a quarter before its end), so the detection
            // loop analyses it from its first tick on: started inside it, the loop would
            // date the incident's onset to its own first tick.
            .env("EPICENTER__DETECTION__BACKFILL_HOURS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let child = Reaped(child);
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow!("the server exited before printing its URL"))?
                .context("reading the server's output")?;
            if let Some(i) = line.find("http://") {
                break line[i..].trim().trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server {
            base,
            ingest_token: token,
            child: std::sync::Mutex::new(Some(child)),
            _dir: Some(dir),
        })
    }
}

impl Server {
    /// Stops the server (killed, as by a crash or an operator): what the browser shows
    /// afterwards must come without it.
    pub fn stop(&self) {
        drop(self.child.lock().expect("server lock").take());
    }
}

/// A plain static file server over a folder, on a thread: the built front end served
/// with no Epicenter server behind it (any static server would do). Answers GET with the
/// file under the path (`/` is `index.html`, the query ignored) or 404. Returns its base
/// URL; it runs until the process ends.
pub fn serve_static(dir: &Path) -> Result<String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_string();
            let rel = path.trim_start_matches('/');
            let rel = if rel.is_empty() { "index.html" } else { rel };
            let file = dir.join(rel);
            let inside = !rel.split('/').any(|p| p == "..");
            let (status, body, kind) = match std::fs::read(&file) {
                Ok(b) if inside => {
                    let kind = match file.extension().and_then(|e| e.to_str()) {
                        Some("html") => "text/html; charset=utf-8",
                        Some("js") => "text/javascript",
                        Some("wasm") => "application/wasm",
                        Some("css") => "text/css",
                        _ => "application/octet-stream",
                    };
                    ("200 OK", b, kind)
                }
                _ => ("404 Not Found", b"not found".to_vec(), "text/plain"),
            };
            let sent = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .and_then(|()| stream.write_all(&body));
            if let Err(e) = sent {
                // The browser went away mid-answer; the test sees what it lacks.
                eprintln!("static server: answering {path}: {e}");
            }
        }
    });
    Ok(base)
}

/// The built front end (`EPICENTER_DIST`, else `dist/`).
pub fn dist_dir() -> PathBuf {
    workspace_root().join(std::env::var_os("EPICENTER_DIST").map_or("dist".into(), PathBuf::from))
}

/// A running chromedriver.
#[derive(Debug)]
struct Driver {
    url: String,
    _child: Option<Reaped>,
}

impl Driver {
    async fn start() -> Result<Driver> {
        if let Ok(url) = std::env::var("WEBDRIVER_URL") {
            return Ok(Driver { url, _child: None });
        }
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            // The demo site's time zone (UTC+3 all year), so "last night" is the
            // site's night whatever the machine's zone.
            .env(
                "TZ",
                std::env::var("EPICENTER_E2E_TZ").unwrap_or_else(|_| BROWSER_TZ.into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {bin} (install the chromium-driver package: ./dev setup)")
            })?;
        let child = Reaped(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not start listening on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Driver {
            url: format!("http://127.0.0.1:{port}"),
            _child: Some(child),
        })
    }
}

/// One test's server, WebDriver and browser session.
#[derive(Debug)]
pub struct Harness {
    /// The browser session.
    pub browser: Client,
    /// Where the session's downloads go.
    pub downloads: PathBuf,
    /// The server under test.
    pub server: Server,
    name: String,
    _driver: Driver,
}

impl Harness {
    /// Starts a fresh server (with `serve` arguments `extra`) and browser for the test `name`.
    pub async fn start_with(name: &str, extra: &[&str]) -> Result<Harness> {
        Self::start_opts(name, extra, false).await
    }

    /// [`Harness::start_with`], with an `ingest` token in the server's store when
    /// `ingest_token` is set ([`Server::ingest_token`]).
    pub async fn start_opts(name: &str, extra: &[&str], ingest_token: bool) -> Result<Harness> {
        let server = Server::start_opts(extra, ingest_token)?;
        let driver = Driver::start().await?;
        let (browser, downloads) = new_session_in(&driver.url).await?;
        Ok(Harness {
            browser,
            downloads,
            server,
            name: name.to_string(),
            _driver: driver,
        })
    }

    /// [`Harness::start_with`] with no extra arguments.
    pub async fn start(name: &str) -> Result<Harness> {
        Self::start_with(name, &[]).await
    }

    /// A second, independent browser session (another user) on the same WebDriver.
    pub async fn another_browser(&self) -> Result<Client> {
        new_session(&self._driver.url).await
    }

    /// The absolute URL of `path` on the server under test.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// Waits until an element matching `css` exists, and returns it.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        wait_for(&self.browser, css).await
    }

    /// Waits until the element matching `css` has text containing `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Result<Element> {
        wait_for_text(&self.browser, css, text).await
    }

    /// Saves the final page as `target/e2e-screenshots/<name>.png`, closes the session
    /// and returns the test's `outcome`. Call it whether the test body failed or not.
    pub async fn finish(self, outcome: Result<()>) -> Result<()> {
        let shot = save_screenshot(&self.browser, &self.name).await;
        let closed = self.browser.close().await;
        outcome?;
        shot?;
        closed.context("closing the browser session")?;
        Ok(())
    }

    /// Runs `body` with the harness and finishes it (screenshot and cleanup) whatever
    /// the outcome.
    pub async fn run<F>(name: &str, extra: &[&str], body: F) -> Result<()>
    where
        F: AsyncFnOnce(&Harness) -> Result<()>,
    {
        let h = Harness::start_with(name, extra).await?;
        let outcome = body(&h).await;
        h.finish(outcome).await
    }
}

/// Headless Chromium with the flags this network needs.
async fn new_session(webdriver: &str) -> Result<Client> {
    Ok(new_session_in(webdriver).await?.0)
}

/// [`new_session`], with the folder its downloads go to.
async fn new_session_in(webdriver: &str) -> Result<(Client, PathBuf)> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir()?.keep();
    let downloads = profile.join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false
            },
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1440,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("a JSON object literal")
    };
    // Built together with the server's crates, rustls has both the ring and the aws-lc-rs
    // provider and cannot choose: choose for the process. An error means a provider is
    // installed already, which is all that is needed.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        // Installed by an earlier session in this process.
    }
    let client = ClientBuilder::rustls()
        .context("TLS setup for the WebDriver client")?
        .capabilities(caps)
        .connect(webdriver)
        .await
        .with_context(|| format!("opening a Chromium session through {webdriver}"))?;
    Ok((client, downloads))
}

/// Waits until a download whose name ends with `suffix` is complete in `dir` (a
/// session's [`Harness::downloads`]), and returns its path.
pub async fn wait_for_download(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(suffix) {
                    return Ok(e.path());
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "no download ending in {suffix} appeared in {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until an element matching `css` exists.
pub async fn wait_for(browser: &Client, css: &str) -> Result<Element> {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for `{css}`"))
}

/// Clicks the graph's edge `src>dst` as a user does: on a visible point of its line.
///
/// WebDriver's element click aims at the centre of the edge's bounding box, which for a
/// slanted or bent line may lie on a node or a label instead. This waits for the edge,
/// walks along its line from the middle outwards until the topmost element at a point
/// belongs to the edge (real hit testing), and clicks there with the mouse. An edge
/// covered everywhere is an error.
pub async fn click_edge(browser: &Client, src: &str, dst: &str) -> Result<()> {
    let css = format!("[data-test=graph-edge][data-edge=\"{src}>{dst}\"]");
    wait_for(browser, &css).await?;
    let point = browser
        .execute(
            r#"const g = document.querySelector(arguments[0]);
               const line = g && g.querySelector('polyline');
               if (!line) return null;
               const total = line.getTotalLength();
               const m = line.getScreenCTM();
               for (const f of [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9]) {
                 const p = line.getPointAtLength(total * f).matrixTransform(m);
                 const hit = document.elementFromPoint(p.x, p.y);
                 if (hit && g.contains(hit)) return [p.x, p.y];
               }
               return null;"#,
            vec![serde_json::Value::String(css.clone())],
        )
        .await?;
    let Some([x, y]) = serde_json::from_value::<Option<[f64; 2]>>(point)? else {
        bail!("no visible point of `{css}` to click: other elements cover its line");
    };
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: x.round(),
            y: y.round(),
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.perform_actions(mouse).await?;
    Ok(())
}

/// Waits until the element matching `css` has text containing `text`.
pub async fn wait_for_text(browser: &Client, css: &str, text: &str) -> Result<Element> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await {
            last = el.text().await.unwrap_or_default();
            if last.contains(text) {
                return Ok(el);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("`{css}` never contained {text:?}; last text: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in through the header's form and waits until the page shows who is signed in.
///
/// The "Sign in" button opens the form; a click that did not open it (it landed while
/// the header was still moving into place on a busy machine) is repeated, as a person
/// would, but never on an open form, since the button also closes it.
pub async fn sign_in(browser: &Client, name: &str, password: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let form = loop {
        if let Ok(field) = browser.find(Locator::Css("[data-test=sign-in-name]")).await {
            break field;
        }
        // The button may be replaced between finding and clicking it: try again.
        let clicked = async {
            let button = browser.find(Locator::Css("[data-test=sign-in]")).await?;
            if button.attr("aria-expanded").await?.as_deref() != Some("true") {
                button.click().await?;
            }
            anyhow::Ok(())
        }
        .await;
        if tokio::time::Instant::now() > deadline {
            bail!("the sign-in form never opened (last click: {clicked:?})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    form.send_keys(name).await?;
    wait_for(browser, "[data-test=sign-in-password]")
        .await?
        .send_keys(password)
        .await?;
    wait_for(browser, "[data-test=sign-in-submit]")
        .await?
        .click()
        .await?;
    wait_for(browser, "[data-test=signed-in]").await?;
    Ok(())
}

/// Saves a PNG of the page under `target/e2e-screenshots/<name>.png`.
pub async fn save_screenshot(browser: &Client, name: &str) -> Result<PathBuf> {
    let dir = workspace_root().join("target/e2e-screenshots");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    let png = browser.screenshot().await.context("taking a screenshot")?;
    std::fs::write(&path, png)?;
    Ok(path)
}
