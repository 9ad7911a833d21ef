//! A running app on `127.0.0.1:0` with a temporary store and front-end folder.

use epicenter_backend::config::Config;
use epicenter_backend::{AppState, app};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(None).await
    }

    /// With the demo portal ending at `end` and `weeks` of history in the store.
    #[allow(dead_code)] // not every test binary loads the demo
    pub async fn start_with_demo(end: i64, weeks: u32) -> TestApp {
        Self::start_with(Some((end, weeks))).await
    }

    async fn start_with(demo: Option<(i64, u32)>) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let static_dir = dir.path().join("dist");
        std::fs::create_dir_all(&static_dir).unwrap();
        std::fs::write(
            static_dir.join("index.html"),
            "<html><head><title>test shell</title></head></html>",
        )
        .unwrap();
        std::fs::write(static_dir.join("app.css"), "body{}").unwrap();
        let mut config = Config::default();
        config.store.data_dir = dir.path().join("data");
        config.server.static_dir = static_dir;
        if let Some((end, weeks)) = demo {
            let mut store = epicenter_backend::store::RedbStore::open(
                &config.store.data_dir,
                graph_core::model::BucketWidth::FIVE_MINUTES,
            )
            .unwrap();
            epicenter_backend::demo::load_demo(&mut store, end, weeks).unwrap();
        }
        let state = AppState::open(&config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
        TestApp {
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}
