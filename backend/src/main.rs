//! The `epicenter` binary: parses configuration, builds state, serves.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use epicenter_backend::config::Config;
use epicenter_backend::{AppState, VERSION, app};
use tracing_subscriber::EnvFilter;

/// Epicenter: dependency-graph root-cause explorer.
#[derive(Debug, Parser)]
#[command(name = "epicenter", version = VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: API, detection loop and the front end.
    Serve(ServeArgs),
    /// Analyse call statistics from files, offline: anomalous edges and ranked root
    /// causes per tick, with no server and no store.
    Analyze(AnalyzeArgs),
    /// Import call statistics files (NDJSON, see docs/ingest.md) into the store, with a
    /// progress bar. The server must not be running on the same store.
    Import(ImportArgs),
    /// Draw the graph of one tick as SVG or PNG for postmortem documents, from a running
    /// server or from an exported bundle or snapshot file.
    Render(RenderArgs),
    /// Pull the history of the configured Prometheus sources (`[[sources.prometheus]]`)
    /// into the store, with progress, then exit. The server does the same at start; this
    /// is for a first load while it is not running on the same store.
    Backfill(BackfillArgs),
    /// Manage API tokens (for ingestion and automation).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage accounts (people who sign in to the browser client).
    #[command(subcommand)]
    User(UserCommand),
    /// Load the demo portal into a store (what `serve --demo` runs in a child process,
    /// so the memory used to generate it goes back to the system).
    #[command(hide = true)]
    LoadDemo {
        /// Folder of the embedded store.
        #[arg(long)]
        data_dir: PathBuf,
        /// Weeks of history.
        #[arg(long)]
        weeks: u32,
        /// Pinned end (Unix seconds).
        #[arg(long)]
        end: Option<i64>,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Files to import, in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// TOML configuration file (store location and topology).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Folder of the embedded store (overrides `store.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Topology file (overrides `ingest.topology`).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Records per transaction.
    #[arg(long, default_value_t = 50_000)]
    batch: usize,
}

#[derive(Debug, clap::Args)]
struct BackfillArgs {
    /// TOML configuration file (store location and sources).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Folder of the embedded store (overrides `store.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only this source (default: all).
    #[arg(long)]
    source: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it once; only its digest is stored.
    Create {
        /// Who or what will use it, e.g. `collector-dc1`.
        #[arg(long)]
        name: String,
        /// What it may do (repeat for several).
        #[arg(long = "scope", value_enum, required = true)]
        scopes: Vec<epicenter_backend::auth::Scope>,
        /// TOML configuration file (for the store's location).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Folder of the embedded store (overrides `store.data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account, or reset its password, display name and scopes. The password
    /// is read from standard input with `--password-stdin`; otherwise a random one is
    /// generated and printed once.
    Create {
        /// Login name: letters, digits and . _ - @.
        #[arg(long)]
        name: String,
        /// Name shown to others (default: the login name).
        #[arg(long, default_value = "")]
        display_name: String,
        /// What the user may do (repeat for several).
        #[arg(long = "scope", value_enum, default_values_t = [epicenter_backend::auth::Scope::Read, epicenter_backend::auth::Scope::Write])]
        scopes: Vec<epicenter_backend::auth::Scope>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// TOML configuration file (for the store's location).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Folder of the embedded store (overrides `store.data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// List the accounts and their scopes (never passwords).
    List {
        /// TOML configuration file (for the store's location).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Folder of the embedded store (overrides `store.data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// Call statistics in the ingest format (NDJSON; see docs/ingest.md).
    #[arg(long)]
    calls: PathBuf,
    /// Servers to clusters (see docs/topology.md); without it each server is its own cluster.
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Config changes, JSON lines: ts, author, clusters, description (id, link optional).
    #[arg(long)]
    changes: Option<PathBuf>,
    /// Bucket width: 1m, 5m, ...
    #[arg(long, default_value = "5m")]
    bucket: String,
    /// Analyse one tick (RFC 3339 or Unix seconds).
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    at: Option<String>,
    /// First tick of a range.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last tick of a range (inclusive).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// A running server, e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "input", conflicts_with = "input")]
    server: Option<String>,
    /// A bundle or snapshot file exported from Epicenter.
    #[arg(long)]
    input: Option<PathBuf>,
    /// The tick (RFC 3339 or Unix seconds); by default the server's live tick, or the
    /// file's only or last tick.
    #[arg(long)]
    tick: Option<String>,
    /// Output file: .svg or .png.
    #[arg(long, short)]
    out: PathBuf,
    /// Title at the top (default: Epicenter and the tick's time).
    #[arg(long)]
    title: Option<String>,
    /// Pixels per unit in a PNG.
    #[arg(long, default_value_t = 2.0)]
    scale: f32,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Folder of the embedded store (overrides `store.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (overrides `server.listen`).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Folder of the built front end (overrides `server.static_dir`).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// Load the demo portal (six weeks of a synthetic site with incidents in the last
    /// day) into the store if it is empty, or if the demo in it is more than an hour old.
    #[arg(long)]
    demo: bool,
    /// Weeks of history for the demo (the default six give full weekly baselines).
    #[arg(long, default_value_t = 6, requires = "demo")]
    demo_weeks: u32,
    /// End of the demo data (RFC 3339 or Unix seconds) instead of now: the same demo
    /// every time, for reproducible screenshots and tests.
    #[arg(long, requires = "demo")]
    demo_end: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Analyze(args) => analyze(args),
        Command::Render(args) => render(args).await,
        Command::Import(args) => import(args),
        Command::Backfill(args) => backfill(args).await,
        Command::Token(cmd) => token(cmd),
        Command::User(cmd) => user(cmd),
        Command::LoadDemo {
            data_dir,
            weeks,
            end,
        } => {
            let mut config = Config::default();
            config.store.data_dir = data_dir;
            prepare_demo(&config, weeks, end)
        }
    }
}

async fn render(args: RenderArgs) -> anyhow::Result<()> {
    use epicenter_backend::render::{Request, Source, run};
    let tick = args
        .tick
        .as_deref()
        .map(epicenter_backend::ingest::timefmt::parse_time)
        .transpose()
        .map_err(|m| anyhow::anyhow!("--tick: {m}"))?;
    let source = match (args.server, args.input) {
        (Some(s), _) => Source::Server(s),
        (None, Some(f)) => Source::File(f),
        (None, None) => anyhow::bail!("give --server or --input"),
    };
    let req = Request {
        source,
        tick,
        out: args.out,
        title: args.title,
        scale: args.scale,
    };
    let (tick, bytes) = run(&req).await?;
    println!(
        "{} ({bytes} bytes): the graph at {}",
        req.out.display(),
        epicenter_backend::ingest::timefmt::format_time(tick)
    );
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    use epicenter_backend::import::{ImportOptions, import_files};
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = args.data_dir {
        config.store.data_dir = d;
    }
    if let Some(t) = args.topology {
        config.ingest.topology = Some(t);
    }
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let options = ImportOptions {
        batch_records: args.batch,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = import_files(&config, &args.files, &options)?;
    println!(
        "Imported {} records ({} with unmapped servers) from {} files in {:.1} s ({:.0} records/s).",
        report.records,
        report.unmapped_records,
        args.files.len(),
        report.seconds,
        report.records as f64 / report.seconds.max(1e-9)
    );
    Ok(())
}

async fn backfill(args: BackfillArgs) -> anyhow::Result<()> {
    use epicenter_backend::sources::prometheus::PullSource;
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = args.data_dir {
        config.store.data_dir = d;
    }
    let chosen: Vec<_> = config
        .sources
        .prometheus
        .iter()
        .filter(|p| args.source.as_deref().is_none_or(|s| s == p.name))
        .cloned()
        .collect();
    match &args.source {
        Some(name) => anyhow::ensure!(
            !chosen.is_empty(),
            "no [[sources.prometheus]] is named {name:?}"
        ),
        None => anyhow::ensure!(
            !chosen.is_empty(),
            "the configuration has no [[sources.prometheus]] to pull from"
        ),
    }
    let state = AppState::open(&config).context("opening the store")?;
    let width = state.store.bucket_width().seconds();
    for source in chosen {
        let pull = PullSource::new(source, &state)?;
        let now = epicenter_backend::analysis::unix_now();
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} buckets, {eta} left",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(pull.name().to_string());
        let mut start = None;
        pull.catch_up(&state, now, &mut |from, to, due| {
            let first = *start.get_or_insert(from);
            bar.set_length(((due - first) / width) as u64);
            bar.set_position(((to - first) / width) as u64);
        })
        .await
        .with_context(|| format!("pulling {}", pull.name()))?;
        bar.finish();
        let view = state.pulls.view(pull.name()).unwrap_or_default();
        println!(
            "{}: pulled up to {} ({} series in the latest answer).",
            pull.name(),
            view.pulled_to
                .map(epicenter_backend::ingest::timefmt::format_time)
                .unwrap_or_else(|| "nothing due yet".into()),
            view.series
        );
    }
    Ok(())
}

fn open_store(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<epicenter_backend::store::RedbStore> {
    let mut config = Config::load(config.as_deref(), std::env::vars())?;
    if let Some(d) = data_dir {
        config.store.data_dir = d;
    }
    config.store.open()
}

fn user(cmd: UserCommand) -> anyhow::Result<()> {
    use epicenter_backend::store::Store;
    match cmd {
        UserCommand::Create {
            name,
            display_name,
            mut scopes,
            password_stdin,
            config,
            data_dir,
        } => {
            scopes.sort();
            scopes.dedup();
            let store = open_store(config, data_dir)?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                let p = epicenter_backend::auth::random_hex(12)
                    .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
                (p, true)
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64;
            let existed = store.user(&name)?.is_some();
            epicenter_backend::auth::put_user(
                &store,
                &name,
                &display_name,
                &password,
                scopes.clone(),
                now,
            )?;
            let scopes: Vec<String> = scopes.iter().map(ToString::to_string).collect();
            eprintln!(
                "{} user {name:?} with scopes {}.",
                if existed { "Updated" } else { "Created" },
                scopes.join(", ")
            );
            if generated {
                eprintln!("Its password is shown only now:");
                println!("{password}");
            }
        }
        UserCommand::List { config, data_dir } => {
            let store = open_store(config, data_dir)?;
            for u in store.users()? {
                let scopes: Vec<String> = u.scopes.iter().map(ToString::to_string).collect();
                println!("{}\t{}\t{}", u.name, u.display_name, scopes.join(","));
            }
        }
    }
    Ok(())
}

fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    use epicenter_backend::auth::{TokenInfo, digest, generate};
    use epicenter_backend::store::Store;
    let TokenCommand::Create {
        name,
        mut scopes,
        config,
        data_dir,
    } = cmd;
    let mut config = Config::load(config.as_deref(), std::env::vars())?;
    if let Some(d) = data_dir {
        config.store.data_dir = d;
    }
    anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
    scopes.sort();
    scopes.dedup();
    let store = config.store.open()?;
    let secret = generate().map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    Store::put_token(
        &store,
        &digest(secret.expose()),
        &TokenInfo {
            name: name.clone(),
            scopes: scopes.clone(),
            created,
        },
    )?;
    let scopes: Vec<String> = scopes.iter().map(ToString::to_string).collect();
    eprintln!(
        "Created token {name:?} with scopes {}. It is shown only now:",
        scopes.join(", ")
    );
    println!("{}", secret.expose());
    Ok(())
}

fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    use epicenter_backend::analyze::{Request, range_from_args, render_table, run};
    let bucket = graph_core::model::BucketWidth::parse(&args.bucket)
        .map_err(|e| anyhow::anyhow!("--bucket: {e}"))?;
    let range = range_from_args(args.at.as_deref(), args.from.as_deref(), args.to.as_deref())?;
    let req = Request {
        calls: args.calls,
        topology: args.topology,
        changes: args.changes,
        bucket,
        range,
    };
    let report = run(&req, &Default::default())?;
    match args.format {
        Format::Table => print!("{}", render_table(&report)),
        Format::Json => println!("{}", serde_json::to_string(&report)?),
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = args.data_dir {
        config.store.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(s) = args.static_dir {
        config.server.static_dir = s;
    }
    if !config.server.static_dir.join("index.html").is_file() {
        tracing::warn!(dir = %config.server.static_dir.display(), "no built front end found; serving the API only");
    }
    if args.demo {
        let end = args
            .demo_end
            .as_deref()
            .map(epicenter_backend::ingest::timefmt::parse_time)
            .transpose()
            .map_err(|m| anyhow::anyhow!("--demo-end: {m}"))?;
        // Generating six weeks takes over a gigabyte for a while: a child process does
        // it, so the server starts small.
        let mut child = std::process::Command::new(std::env::current_exe()?);
        child
            .arg("load-demo")
            .arg("--data-dir")
            .arg(&config.store.data_dir)
            .arg("--weeks")
            .arg(args.demo_weeks.to_string());
        if let Some(end) = end {
            child.arg("--end").arg(end.to_string());
        }
        let status = child.status().context("starting the demo loader")?;
        anyhow::ensure!(status.success(), "loading the demo failed ({status})");
    }
    let state = AppState::open(&config).context("opening the store")?;
    if args.demo {
        let users = epicenter_backend::demo::ensure_demo_users(state.store.as_ref())?;
        println!("Demo users (scopes read and write): {users}");
        if let Some(id) = epicenter_backend::demo::seed_demo_marks(&state)? {
            tracing::info!(id, "the demo's overnight known anomaly is marked");
        }
    }
    tokio::spawn(state.detector.clone().run(state.store.clone()));
    // People who stopped reporting leave everyone's screens.
    let sweeper = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            let now = epicenter_backend::analysis::unix_now();
            if sweeper.presence.sweep(now) {
                sweeper
                    .analyzer
                    .events
                    .send(epicenter_backend::analysis::ServerEvent::Presence(
                        sweeper.presence.list(now),
                    ));
            }
        }
    });
    for source in config.sources.prometheus.clone() {
        let pull = epicenter_backend::sources::prometheus::PullSource::new(source, &state)?;
        tokio::spawn(std::sync::Arc::new(pull).run(state.clone()));
    }
    // Trace spans that waited long enough for their partners.
    let otlp = state.clone();
    tokio::spawn(async move {
        let every = (otlp.otlp_config.pair_window_s / 4).clamp(1, 10) as u64;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(every)).await;
            let s = otlp.clone();
            let now = epicenter_backend::analysis::unix_now();
            let outcome = tokio::task::spawn_blocking(move || {
                epicenter_backend::handlers::otlp::sweep(&s, now)
            })
            .await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "letting go of held trace spans failed; tried again")
                }
                Err(e) => tracing::error!(error = %e, "the trace span sweep stopped"),
            }
        }
    });
    if config.jira.enabled {
        let jira = epicenter_backend::jira::Jira::new(config.jira.clone())
            .context("setting up the Jira client")?;
        tracing::info!(url = %config.jira.base_url, project = %config.jira.project, "incidents go to Jira");
        tokio::spawn(epicenter_backend::jira::run(
            state.clone(),
            std::sync::Arc::new(jira),
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %config.store.data_dir.display(), "epicenter {VERSION} listening");
    println!("Epicenter {VERSION} is running: open http://{addr}/");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    Ok(())
}

/// Loads or refreshes the demo portal in the configured store.
fn prepare_demo(config: &Config, weeks: u32, pinned_end: Option<i64>) -> anyhow::Result<()> {
    use epicenter_backend::demo::{DemoPlan, load_demo, plan};
    use epicenter_backend::store::RedbStore;
    let width = graph_core::model::BucketWidth::FIVE_MINUTES;
    if let Some(w) = config.store.bucket_width().map_err(anyhow::Error::msg)?
        && w != width
    {
        anyhow::bail!(
            "the demo is generated at 5-minute buckets, but store.bucket is {} s: \
             use another data_dir for the demo",
            w.seconds()
        );
    }
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    // A pinned demo is judged "recent" against its own end, so it is kept across restarts.
    let now = pinned_end.unwrap_or(clock);
    let end = width.floor(now);
    let mut store = RedbStore::open(&config.store.data_dir, width).context("opening the store")?;
    match plan(&store, now, 3600)? {
        DemoPlan::Keep => {
            println!(
                "Demo data in {} is recent; keeping it.",
                store.path().display()
            );
            return Ok(());
        }
        DemoPlan::Recreate => {
            let path = store.path().to_path_buf();
            drop(store);
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old demo store {}", path.display()))?;
            println!(
                "The demo data in {} was more than an hour old; recreating it.",
                path.display()
            );
            store = RedbStore::open(&config.store.data_dir, width)?;
        }
        DemoPlan::Load => {}
    }
    println!("Generating the demo portal ({weeks} weeks of history) and loading it...");
    let r = load_demo(&mut store, end, weeks)?;
    println!(
        "Demo loaded: {} clusters, {} series, {} to {} (generated in {:.1} s, stored in {:.1} s).",
        r.clusters,
        r.entities,
        epicenter_backend::ingest::timefmt::format_time(r.range.0),
        epicenter_backend::ingest::timefmt::format_time(r.range.1),
        r.generate_s,
        r.write_s
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
