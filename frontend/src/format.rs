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

/// `10:15` (UTC), for times on the day shown.
pub fn clock(tick: Tick) -> String {
    let s = tick.rem_euclid(86_400);
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// The value of a `datetime-local` input showing `tick` in UTC: `2026-11-18T10:15`.
pub fn input_value(tick: Tick) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(tick as f64 * 1000.0))
        .to_iso_string()
        .into();
    iso[..16].to_string()
}

/// Parses a `datetime-local` value as UTC, Unix seconds.
pub fn parse_input(value: &str) -> Option<i64> {
    let ms = js_sys::Date::parse(&format!("{value}:00Z"));
    ms.is_finite().then(|| (ms / 1000.0) as i64)
}

/// `12 min before`, `2 h 5 min after`.
pub fn offset(seconds_before: i64) -> String {
    let m = seconds_before.abs() / 60;
    let amount = if m >= 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{m} min")
    };
    if seconds_before >= 0 {
        format!("{amount} before")
    } else {
        format!("{amount} after")
    }
}

/// The change of a metric against its expectation: percentage points for error rates
/// (a ratio against almost nothing says little), otherwise [`deviation`].
pub fn change(metric: Metric, value: f64, expected: f64, rel: Option<f64>) -> String {
    match metric {
        Metric::ErrorRate => format!("{:+.1} pp", (value - expected) * 100.0),
        _ => deviation(rel),
    }
}

fn date(tick: Tick) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(tick as f64 * 1000.0))
}

/// The browser's time zone and its offset at `tick`: `Europe/Moscow, UTC+3`.
pub fn time_zone(tick: Tick) -> String {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    let name = js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| "local time".into());
    let minutes = -(date(tick).get_timezone_offset() as i64);
    let (sign, m) = if minutes < 0 {
        ('−', -minutes)
    } else {
        ('+', minutes)
    };
    let offset = if m % 60 == 0 {
        format!("UTC{sign}{}", m / 60)
    } else {
        format!("UTC{sign}{}:{:02}", m / 60, m % 60)
    };
    format!("{name}, {offset}")
}

/// `Wed 18 Nov 03:05` in the browser's time zone.
pub fn local(tick: Tick) -> String {
    let d = date(tick);
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {} {:02}:{:02}",
        DAYS[d.get_day() as usize % 7],
        d.get_date(),
        MONTHS[d.get_month() as usize % 12],
        d.get_hours(),
        d.get_minutes()
    )
}

/// `03:05` in the browser's time zone.
pub fn local_clock(tick: Tick) -> String {
    let d = date(tick);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The start of the browser-local day holding `tick`, plus `hours`.
pub fn local_day_start(tick: Tick, hours: u32) -> Tick {
    let d = date(tick);
    let start = js_sys::Date::new_with_year_month_day_hr_min_sec(
        d.get_full_year(),
        d.get_month() as i32,
        d.get_date() as i32,
        hours as i32,
        0,
        0,
    );
    (start.get_time() / 1000.0) as Tick
}

/// The value of a `datetime-local` input showing `tick` in the browser's time zone.
pub fn local_input_value(tick: Tick) -> String {
    let d = date(tick);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}

/// Parses a `datetime-local` value in the browser's time zone, Unix seconds.
pub fn parse_local_input(value: &str) -> Option<i64> {
    // Without a zone, a date-time string is local time.
    let ms = js_sys::Date::parse(&format!("{value}:00"));
    ms.is_finite().then(|| (ms / 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_people_say_them() {
        assert_eq!(change(Metric::ErrorRate, 0.0301, 0.0, None), "+3.0 pp");
        assert_eq!(change(Metric::Latency, 52.3, 12.6, Some(3.15)), "x4.2");
        assert_eq!(change(Metric::Requests, 80.0, 100.0, Some(-0.2)), "-20 %");
        assert_eq!(deviation(None), "new");
        assert_eq!(offset(21 * 60), "21 min before");
        assert_eq!(offset(-125 * 60), "2 h 5 min after");
        assert_eq!(clock(86_400 * 3 + 10 * 3600 + 15 * 60), "10:15");
    }
}
