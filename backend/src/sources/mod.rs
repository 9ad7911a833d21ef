//! Sources Epicenter reads on its own: engines speaking the Prometheus HTTP API that
//! it pulls call statistics from ([`prometheus`]), and OpenTelemetry traces sent to
//! its receiver ([`otlp`]). Pushed NDJSON is in [`crate::ingest`].

pub mod otlp;
pub mod prometheus;

use std::collections::BTreeMap;
use std::sync::Mutex;

use graph_core::api::PullView;

/// How each pull source is doing, by name, for `GET /api/v1/sources`.
#[derive(Debug, Default)]
pub struct Pulls {
    views: Mutex<BTreeMap<String, PullView>>,
}

impl Pulls {
    /// Sets up the status of source `name`.
    pub fn register(&self, name: &str, view: PullView) {
        self.views
            .lock()
            .expect("pulls lock")
            .insert(name.to_string(), view);
    }

    /// Changes the status of source `name` (registered before).
    pub fn update(&self, name: &str, change: impl FnOnce(&mut PullView)) {
        if let Some(v) = self.views.lock().expect("pulls lock").get_mut(name) {
            change(v);
        }
    }

    /// The status of source `name`, if it is a pull source.
    pub fn view(&self, name: &str) -> Option<PullView> {
        self.views.lock().expect("pulls lock").get(name).cloned()
    }

    /// Every pull source's status, by name.
    pub fn views(&self) -> Vec<(String, PullView)> {
        self.views
            .lock()
            .expect("pulls lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
