//! Missing data: a series without a usable current value is reported as missing, never
//! as an anomaly. (Missing baseline values only shrink the sample: see `baseline`.)

use crate::model::{Counters, Metric};

use super::result::MissingReason;
use super::series::CellValue;

/// The current value of `metric`, or why there is none.
pub(crate) fn current_value(value: &CellValue, metric: Metric) -> Result<f64, MissingReason> {
    match value {
        CellValue::NoData => Err(MissingReason::NoData),
        CellValue::Invalid => Err(MissingReason::Invalid),
        CellValue::Valid(c) => value_of(c, metric),
    }
}

fn value_of(c: &Counters, metric: Metric) -> Result<f64, MissingReason> {
    match c.metric(metric) {
        None => Err(MissingReason::NoRequests),
        Some(v) if v.is_finite() => Ok(v),
        Some(_) => Err(MissingReason::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_requests_is_a_value_for_counts_and_missing_for_ratios() {
        let zero = CellValue::Valid(Counters::default());
        assert_eq!(current_value(&zero, Metric::Requests), Ok(0.0));
        assert_eq!(current_value(&zero, Metric::Errors), Ok(0.0));
        assert_eq!(
            current_value(&zero, Metric::Latency),
            Err(MissingReason::NoRequests)
        );
        assert_eq!(
            current_value(&zero, Metric::ErrorRate),
            Err(MissingReason::NoRequests)
        );
        assert_eq!(
            current_value(&CellValue::NoData, Metric::Requests),
            Err(MissingReason::NoData)
        );
        assert_eq!(
            current_value(&CellValue::Invalid, Metric::Requests),
            Err(MissingReason::Invalid)
        );
        // f32 subnormal requests with a large sum: an infinite mean is not a value
        let tiny = CellValue::Valid(Counters {
            requests: 1e-320,
            errors: 0.0,
            latency_ms_sum: 1e300,
        });
        assert_eq!(
            current_value(&tiny, Metric::Latency),
            Err(MissingReason::Invalid)
        );
    }
}
