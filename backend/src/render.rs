//! `epicenter render`: the graph of one tick as SVG or PNG, for postmortem documents.
//! The snapshot comes from a running server (`GET /api/v1/snapshots/{tick}`), from an
//! exported bundle or snapshot file, or from a store no server holds open; graph-core
//! draws it ([`graph_core::render::svg`], as the browser's export does), and PNG is that
//! SVG rasterised at `scale`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use graph_core::model::{ClusterCatalog, Tick};
use graph_core::snapshot::{Bundle, Snapshot, TickSnapshot};

/// Where the tick comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A running server's base URL.
    Server(String),
    /// A bundle or snapshot document.
    File(PathBuf),
}

/// What to draw and where.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where the snapshot comes from.
    pub source: Source,
    /// The tick; a file's only tick, or a bundle's last, when left out.
    pub tick: Option<Tick>,
    /// Output file; `.svg` or `.png`.
    pub out: PathBuf,
    /// Title; `Epicenter · <tick>` when left out.
    pub title: Option<String>,
    /// Pixels per SVG unit in a PNG.
    pub scale: f32,
}

/// Reads the tick `tick` (or the only or last one) from a bundle or snapshot document.
pub fn from_document(
    text: &str,
    tick: Option<Tick>,
) -> anyhow::Result<(ClusterCatalog, TickSnapshot)> {
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string));
    if kind.as_deref() == Some("tick") {
        let doc = Snapshot::from_json(text)?;
        if let Some(t) = tick.map(|t| doc.bucket_width.floor(t))
            && t != doc.snapshot.tick
        {
            bail!("the file holds tick {} only, not {t}", doc.snapshot.tick);
        }
        return Ok((doc.clusters, doc.snapshot));
    }
    let bundle = Bundle::from_json(text)?;
    let snap = match tick.map(|t| bundle.bucket_width.floor(t)) {
        Some(t) => bundle.at(t).map(|t| t.snapshot.clone()).with_context(|| {
            let f = crate::ingest::timefmt::format_time;
            format!(
                "the bundle covers {} to {} and has no tick {}",
                f(bundle.from),
                f(bundle.to),
                f(t)
            )
        })?,
        None => bundle
            .ticks
            .last()
            .map(|t| t.snapshot.clone())
            .context("the bundle holds no ticks")?,
    };
    Ok((bundle.clusters, snap))
}

/// Fetches the snapshot of `tick` (the live tick when `None`) from a running server.
pub async fn from_server(
    base: &str,
    tick: Option<Tick>,
) -> anyhow::Result<(ClusterCatalog, TickSnapshot)> {
    let base = base.trim_end_matches('/');
    let tick = match tick {
        Some(t) => t,
        None => {
            let url = format!("{base}/api/v1/analysis");
            let v: serde_json::Value = serde_json::from_str(&get(&url).await?)
                .with_context(|| format!("reading {url}"))?;
            v["tick"].as_i64().context("the analysis has no tick")?
        }
    };
    let url = format!("{base}/api/v1/snapshots/{tick}");
    let doc = Snapshot::from_json(&get(&url).await?).with_context(|| format!("reading {url}"))?;
    Ok((doc.clusters, doc.snapshot))
}

/// The body of a successful GET of `url`; the server's answer in the error otherwise.
async fn get(url: &str) -> anyhow::Result<String> {
    let res = reqwest::get(url)
        .await
        .with_context(|| format!("fetching {url}"))?;
    let status = res.status();
    let text = res.text().await.with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        bail!("{url}: {status}: {text}");
    }
    Ok(text)
}

/// The default title: `Epicenter · 2026-11-18 10:15 UTC`.
pub fn default_title(tick: Tick) -> String {
    format!("Epicenter · {}", crate::ingest::timefmt::format_time(tick))
}

/// Rasterises `svg` at `scale` into PNG bytes, with the system's fonts.
pub fn png(svg: &str, scale: f32) -> anyhow::Result<Vec<u8>> {
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &options).context("reading the SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .context("image size")?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .context("allocating the image")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("encoding the PNG")
}

/// Writes the drawing of `snap` to `out` (SVG or PNG by its extension) and returns the
/// number of bytes written.
pub fn write(
    out: &Path,
    catalog: &ClusterCatalog,
    snap: &TickSnapshot,
    title: &str,
    scale: f32,
) -> anyhow::Result<usize> {
    let svg = graph_core::render::svg(snap, catalog, title);
    let bytes = match out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
        .as_deref()
    {
        Some("svg") => svg.into_bytes(),
        Some("png") => png(&svg, scale)?,
        _ => bail!("{}: the output must end in .svg or .png", out.display()),
    };
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(bytes.len())
}

/// Runs a request: fetches or reads the tick, draws it, writes it.
pub async fn run(req: &Request) -> anyhow::Result<(Tick, usize)> {
    let (catalog, snap) = match &req.source {
        Source::Server(base) => from_server(base, req.tick).await?,
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            from_document(&text, req.tick).with_context(|| format!("{}", path.display()))?
        }
    };
    let title = req
        .title
        .clone()
        .unwrap_or_else(|| default_title(snap.tick));
    let n = write(&req.out, &catalog, &snap, &title, req.scale)?;
    Ok((snap.tick, n))
}
