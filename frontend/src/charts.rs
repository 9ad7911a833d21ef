//! Charts drawn with plotters on a canvas: site activity in the header and an edge's
//! metric in the edge detail, each against the same hours in earlier weeks.

use graph_core::api::{ActivityResponse, EdgeSeriesResponse, SeriesPoint};
use graph_core::model::{Metric, Tick, WEEK};
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;

const BACKGROUND: RGBColor = RGBColor(18, 25, 32);
const GRID: RGBColor = RGBColor(42, 52, 65);
const MUTED: RGBColor = RGBColor(139, 152, 165);
const WEEKS: RGBColor = RGBColor(83, 96, 110);
const BAND: RGBColor = RGBColor(79, 163, 255);
const ANOMALY: RGBColor = RGBColor(255, 93, 93);
const NOW: RGBColor = RGBColor(230, 237, 243);

/// The colour a metric is drawn in (matches the stylesheet).
pub fn metric_colour(m: Metric) -> RGBColor {
    match m {
        Metric::Latency => RGBColor(242, 163, 58),
        Metric::Requests => RGBColor(90, 176, 255),
        Metric::Errors | Metric::ErrorRate => RGBColor(255, 93, 93),
    }
}

/// `HH:MM` of a tick, UTC.
fn clock(t: i64) -> String {
    let s = t.rem_euclid(86_400);
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// Sizes the canvas's drawing buffer to its displayed size, so nothing is blurred.
fn fit(canvas: &HtmlCanvasElement) {
    let (w, h) = (canvas.client_width(), canvas.client_height());
    if w > 0 && h > 0 {
        canvas.set_width(w as u32);
        canvas.set_height(h as u32);
    }
}

/// One metric of a series point.
pub fn metric_value(p: &SeriesPoint, m: Metric) -> Option<f64> {
    match m {
        Metric::Requests => Some(p.requests),
        Metric::Errors => Some(p.errors),
        Metric::Latency => p.latency_ms,
        Metric::ErrorRate => p.error_rate.map(|r| r * 100.0),
    }
}

/// Mean and sample standard deviation of `values` (at least two).
fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, var.sqrt()))
}

/// The baseline band at each time of the range: mean ± 2 standard deviations of the
/// earlier weeks' values at the same time of week (where at least two weeks have one).
pub fn baseline_band(series: &EdgeSeriesResponse, m: Metric) -> Vec<(Tick, f64, f64)> {
    let mut by_tick: std::collections::BTreeMap<Tick, Vec<f64>> = Default::default();
    for w in &series.weeks {
        let shift = i64::from(w.weeks_ago) * WEEK;
        for p in &w.points {
            if let Some(v) = metric_value(p, m) {
                by_tick.entry(p.tick + shift).or_default().push(v);
            }
        }
    }
    by_tick
        .into_iter()
        .filter_map(|(t, vs)| {
            mean_sd(&vs).map(|(mu, sd)| (t, (mu - 2.0 * sd).max(0.0), mu + 2.0 * sd))
        })
        .collect()
}

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("the chart could not be drawn: {e}")
}

/// Draws `m` of the edge over the range: each earlier week as a thin grey line, the
/// baseline band, today in the metric's colour, anomalous points as red dots and the
/// tick shown as a vertical line.
pub fn draw_edge(
    canvas: &HtmlCanvasElement,
    series: &EdgeSeriesResponse,
    m: Metric,
    at: Tick,
) -> Result<(), String> {
    fit(canvas);
    let backend =
        CanvasBackend::with_canvas_object(canvas.clone()).ok_or_else(|| err("no 2D context"))?;
    let root = backend.into_drawing_area();
    root.fill(&BACKGROUND).map_err(err)?;
    let day0 = series.from - series.from.rem_euclid(86_400);
    let hours = |t: i64| (t - day0) as f64 / 3600.0;
    let (from, to) = (hours(series.from), hours(series.to));
    let today: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter_map(|p| metric_value(p, m).map(|v| (hours(p.tick), v)))
        .collect();
    let weeks: Vec<Vec<(f64, f64)>> = series
        .weeks
        .iter()
        .map(|w| {
            let shift = i64::from(w.weeks_ago) * WEEK;
            w.points
                .iter()
                .filter_map(|p| metric_value(p, m).map(|v| (hours(p.tick + shift), v)))
                .collect()
        })
        .collect();
    let band: Vec<(f64, f64, f64)> = baseline_band(series, m)
        .into_iter()
        .map(|(t, lo, hi)| (hours(t), lo, hi))
        .collect();
    let top = today
        .iter()
        .map(|p| p.1)
        .chain(weeks.iter().flatten().map(|p| p.1))
        .chain(band.iter().map(|b| b.2))
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.08 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(52)
        .build_cartesian_2d(from..to.max(from + 1.0), 0.0..top)
        .map_err(err)?;
    let unit = match m {
        Metric::Latency => "ms",
        Metric::ErrorRate => "%",
        _ => "",
    };
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(BACKGROUND)
        .axis_style(GRID)
        .label_style(("sans-serif", 11).into_font().color(&MUTED))
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&|h| clock((h * 3600.0).round() as i64))
        .y_label_formatter(&|v| format!("{v:.0}{unit}"))
        .draw()
        .map_err(err)?;
    if band.len() >= 2 {
        let mut outline: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
        outline.extend(band.iter().rev().map(|b| (b.0, b.1)));
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                BAND.mix(0.16).filled(),
            )))
            .map_err(err)?;
    }
    for w in weeks {
        chart
            .draw_series(LineSeries::new(w, WEEKS.stroke_width(1)))
            .map_err(err)?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(hours(at), 0.0), (hours(at), top)],
            NOW.mix(0.5).stroke_width(1),
        )))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(today, metric_colour(m).stroke_width(2)))
        .map_err(err)?;
    let flagged = series.points.iter().filter(|p| {
        p.anomalous
            .iter()
            .any(|x| *x == m || (m == Metric::ErrorRate && *x == Metric::Errors))
    });
    chart
        .draw_series(flagged.filter_map(|p| {
            metric_value(p, m).map(|v| Circle::new((hours(p.tick), v), 3, ANOMALY.filled()))
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Draws site activity over the range against earlier weeks (a small sparkline for
/// the header, no axes).
pub fn draw_activity(canvas: &HtmlCanvasElement, a: &ActivityResponse) -> Result<(), String> {
    fit(canvas);
    let backend =
        CanvasBackend::with_canvas_object(canvas.clone()).ok_or_else(|| err("no 2D context"))?;
    let root = backend.into_drawing_area();
    root.fill(&RGBColor(22, 29, 38)).map_err(err)?;
    let weeks: Vec<Vec<(i64, f64)>> = a
        .weeks
        .iter()
        .map(|w| {
            let shift = i64::from(w.weeks_ago) * WEEK;
            w.points.iter().map(|(t, v)| (t + shift, *v)).collect()
        })
        .collect();
    let top = a
        .points
        .iter()
        .map(|p| p.1)
        .chain(weeks.iter().flatten().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.05 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .margin(2)
        .build_cartesian_2d(a.from..a.to.max(a.from + 1), 0.0..top)
        .map_err(err)?;
    for w in weeks {
        chart
            .draw_series(LineSeries::new(w, WEEKS.stroke_width(1)))
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(a.points.clone(), BAND.stroke_width(2)))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_core::api::{ClusterInfo, WeekSeries};
    use graph_core::model::ClusterId;

    fn point(tick: Tick, latency: f64) -> SeriesPoint {
        SeriesPoint {
            tick,
            requests: 10.0,
            errors: 0.0,
            latency_ms: Some(latency),
            error_rate: Some(0.0),
            anomalous: vec![],
            storm: vec![],
        }
    }

    #[test]
    fn the_band_is_two_standard_deviations_of_earlier_weeks_at_the_same_time() {
        let c = ClusterInfo {
            id: ClusterId(0),
            name: "a".into(),
            service: "a".into(),
            dc: None,
            tier: None,
        };
        let s = EdgeSeriesResponse {
            src: c.clone(),
            dst: c,
            method: None,
            from: WEEK * 10,
            to: WEEK * 10 + 300,
            bucket_width_s: 300,
            points: vec![point(WEEK * 10, 50.0)],
            weeks: [10.0, 20.0, 30.0]
                .iter()
                .enumerate()
                .map(|(i, v)| WeekSeries {
                    weeks_ago: i as u32 + 1,
                    points: vec![
                        point(WEEK * (9 - i as i64), *v),
                        point(WEEK * (9 - i as i64) + 300, 1.0),
                    ],
                })
                .collect(),
        };
        let band = baseline_band(&s, Metric::Latency);
        assert_eq!(band.len(), 2);
        let (t, lo, hi) = band[0];
        assert_eq!(t, WEEK * 10);
        // mean 20, sd 10: 0 (clamped from 0) to 40.
        assert_eq!((lo, hi), (0.0, 40.0));
        assert_eq!(band[1], (WEEK * 10 + 300, 1.0, 1.0));
        assert_eq!(clock(WEEK * 10 + 3600 * 13 + 300), "13:05");
    }
}
