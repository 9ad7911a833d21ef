//! The view's state in the address bar, so a link reproduces what someone saw: tick,
//! selected edge, filters, sort order, full-graph mode and chart metric. Pure
//! functions, tested natively.

use graph_core::model::{Metric, Tick};

/// Columns the edge table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Caller name.
    Caller,
    /// Callee name.
    Callee,
    /// Relative deviation of the worst anomaly.
    Deviation,
    /// Severity (the default).
    #[default]
    Severity,
    /// Start of the episode.
    Since,
}

impl SortKey {
    /// Every key, in column order.
    pub const ALL: [SortKey; 5] = [
        SortKey::Caller,
        SortKey::Callee,
        SortKey::Deviation,
        SortKey::Severity,
        SortKey::Since,
    ];

    /// Its name in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Caller => "caller",
            SortKey::Callee => "callee",
            SortKey::Deviation => "deviation",
            SortKey::Severity => "severity",
            SortKey::Since => "since",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Everything the URL holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewState {
    /// The tick shown; `None` follows the newest (live).
    pub tick: Option<Tick>,
    /// The selected edge, by cluster names.
    pub edge: Option<(String, String)>,
    /// Text a caller or callee name or service must contain.
    pub service: String,
    /// Data centre a caller or callee must be in.
    pub dc: String,
    /// Metric an edge must be anomalous in.
    pub metric: Option<Metric>,
    /// Sort column.
    pub sort: SortKey,
    /// The sort column's natural order reversed (names A-Z, the rest largest or
    /// newest first).
    pub reversed: bool,
    /// The full graph instead of the anomalous part.
    pub full: bool,
    /// The metric charted in the edge detail, when not the worst one.
    pub chart: Option<Metric>,
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes stay as they are.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Latency => "latency",
        Metric::Requests => "requests",
        Metric::Errors => "errors",
        Metric::ErrorRate => "error_rate",
    }
}

/// The value of query parameter `name`, decoded.
pub fn param(query: &str, name: &str) -> Option<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
}

/// Parses a metric's URL name.
pub fn parse_metric(s: &str) -> Option<Metric> {
    Metric::ALL.into_iter().find(|m| metric_name(*m) == s)
}

/// A metric's URL name.
pub fn metric_param(m: Metric) -> &'static str {
    metric_name(m)
}

impl ViewState {
    /// Reads a query string (with or without the leading `?`). Unknown or malformed
    /// parameters are ignored: a stale link still opens.
    pub fn from_query(query: &str) -> ViewState {
        let mut v = ViewState::default();
        for pair in query.trim_start_matches('?').split('&') {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            let val = decode(val);
            match k {
                "tick" => v.tick = val.parse().ok(),
                "edge" => {
                    v.edge = val
                        .split_once('>')
                        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                }
                "service" => v.service = val,
                "dc" => v.dc = val,
                "metric" => v.metric = parse_metric(&val),
                "sort" => v.sort = SortKey::parse(&val).unwrap_or_default(),
                "rev" => v.reversed = val == "1",
                "full" => v.full = val == "1",
                "chart" => v.chart = parse_metric(&val),
                _ => {}
            }
        }
        v
    }

    /// The query string, `?`-prefixed, or empty when everything is default.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(t) = self.tick {
            parts.push(format!("tick={t}"));
        }
        if let Some((a, b)) = &self.edge {
            parts.push(format!("edge={}", encode(&format!("{a}>{b}"))));
        }
        if !self.service.is_empty() {
            parts.push(format!("service={}", encode(&self.service)));
        }
        if !self.dc.is_empty() {
            parts.push(format!("dc={}", encode(&self.dc)));
        }
        if let Some(m) = self.metric {
            parts.push(format!("metric={}", metric_name(m)));
        }
        if self.sort != SortKey::default() {
            parts.push(format!("sort={}", self.sort.as_str()));
        }
        if self.reversed {
            parts.push("rev=1".into());
        }
        if self.full {
            parts.push("full=1".into());
        }
        if let Some(m) = self.chart {
            parts.push(format!("chart={}", metric_name(m)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// Replaces the address bar's query (`?a=b`, or empty) without a new history entry.
pub fn replace_query(query: &str) {
    let Some(w) = web_sys::window() else { return };
    let path = w.location().pathname().unwrap_or_else(|_| "/".into());
    if let Ok(h) = w.history() {
        let target = format!("{path}{query}");
        if let Err(e) = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&target)) {
            web_sys::console::warn_1(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_state_round_trips_through_the_query_string() {
        let v = ViewState {
            tick: Some(1_794_995_700),
            edge: Some(("messaging-proxy".into(), "messaging cdb/ü&x".into())),
            service: "pay ments".into(),
            dc: "eu-west".into(),
            metric: Some(Metric::ErrorRate),
            sort: SortKey::Since,
            reversed: true,
            full: true,
            chart: Some(Metric::Requests),
        };
        let q = v.to_query();
        assert!(q.starts_with("?tick=1794995700&edge=messaging-proxy%3Emessaging%20cdb"));
        assert!(!q[1..].contains(['?', ' ', '/']), "{q}");
        assert_eq!(ViewState::from_query(&q), v);
    }

    #[test]
    fn the_default_state_is_an_empty_query_and_junk_is_ignored() {
        assert_eq!(ViewState::default().to_query(), "");
        let v = ViewState::from_query("?tick=soon&edge=nogt&metric=x&sort=y&zz=1&%");
        assert_eq!(v, ViewState::default());
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("a+b%41"), "a bA");
    }
}
