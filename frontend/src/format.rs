//! Formatting numbers and times for people.

use graph_core::model::{Metric, Tick};

/// `2026-11-18 10:15 UTC`.
pub fn time(tick: Tick) -> String {
    let iso =
        js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(tick as f64 * 1000.0)).to_iso_string();
    let iso: String = iso.into();
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

/// A metric's value with its unit.
pub fn value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Latency => format!("{v:.1} ms"),
        Metric::Requests | Metric::Errors => format!("{v:.0}"),
        Metric::ErrorRate => format!("{:.2} %", v * 100.0),
    }
}

/// `+12 %` or `x3.1` for large changes.
pub fn deviation(rel: Option<f64>) -> String {
    match rel {
        None => "new".into(),
        Some(r) if r >= 1.0 => format!("x{:.1}", 1.0 + r),
        Some(r) => format!("{:+.0} %", r * 100.0),
    }
}
