//! Grubbs' test of one value against a baseline sample, and its critical values.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::model::Direction;

/// Grubbs' critical value for `n` points (baseline plus the tested value) at
/// significance `alpha`: `((n−1)/√n)·√(t²/(n−2+t²))` with `t` the upper quantile of
/// Student's t with `n−2` degrees of freedom at `alpha/(2n)` for [`Direction::Both`]
/// (two-sided) or `alpha/n` otherwise (one-sided). `None` when `n < 3` or `alpha` is
/// not in `(0, 1)`.
///
/// # Complexity
///
/// One t quantile (an incomplete-beta inversion, some microseconds); use
/// [`CriticalValues`] to compute each `n` once.
///
/// # Example
///
/// ```
/// use graph_core::detect::grubbs_critical;
/// use graph_core::model::Direction;
/// let g = grubbs_critical(30, 0.05, Direction::Both).unwrap();
/// assert!((g - 2.9085).abs() < 5e-5);
/// assert!(grubbs_critical(2, 0.05, Direction::Both).is_none());
/// ```
pub fn grubbs_critical(n: usize, alpha: f64, direction: Direction) -> Option<f64> {
    if n < 3 || !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let nf = n as f64;
    let tail = match direction {
        Direction::Both => alpha / (2.0 * nf),
        Direction::Up | Direction::Down => alpha / nf,
    };
    let dist = StudentsT::new(0.0, 1.0, nf - 2.0).ok()?;
    // The lower quantile is exact near 0, unlike `1 - tail`; the distribution is symmetric.
    let t = -dist.inverse_cdf(tail);
    let t2 = t * t;
    let g = (nf - 1.0) / nf.sqrt() * (t2 / (nf - 2.0 + t2)).sqrt();
    g.is_finite().then_some(g)
}

/// Critical values for one `alpha`, computed on first use for each (n, sidedness).
///
/// # Example
///
/// ```
/// use graph_core::detect::CriticalValues;
/// use graph_core::model::Direction;
/// let mut cv = CriticalValues::new(0.05);
/// let g = cv.get(10, Direction::Up).unwrap();
/// assert!((g - 2.1761).abs() < 5e-5);
/// ```
#[derive(Debug, Clone)]
pub struct CriticalValues {
    alpha: f64,
    // Index n; NaN = not computed yet, infinity = undefined.
    one_sided: Vec<f64>,
    two_sided: Vec<f64>,
}

impl CriticalValues {
    /// An empty cache for `alpha`.
    pub fn new(alpha: f64) -> Self {
        CriticalValues {
            alpha,
            one_sided: Vec::new(),
            two_sided: Vec::new(),
        }
    }

    /// The significance level.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The critical value for `n` points, as [`grubbs_critical`].
    ///
    /// # Complexity
    ///
    /// O(1) after the first call for the same `n` and sidedness.
    pub fn get(&mut self, n: usize, direction: Direction) -> Option<f64> {
        let table = match direction {
            Direction::Both => &mut self.two_sided,
            Direction::Up | Direction::Down => &mut self.one_sided,
        };
        if n >= table.len() {
            table.resize(n + 1, f64::NAN);
        }
        if table[n].is_nan() {
            table[n] = grubbs_critical(n, self.alpha, direction).unwrap_or(f64::INFINITY);
        }
        table[n].is_finite().then_some(table[n])
    }
}

/// Summary of a baseline sample, from which Grubbs' statistic for any tested value
/// follows in O(1).
///
/// Values are shifted by the first one before summing, and the spread is a centred
/// second pass, so a constant sample has a standard deviation of exactly 0.
///
/// ```
/// use graph_core::detect::SampleStats;
/// let s = SampleStats::from_values(&[5.0, 5.0, 5.0]).unwrap();
/// assert_eq!(s.std_dev(), 0.0);
/// assert_eq!(s.grubbs(5.0), 0.0); // all equal: nothing stands out
/// assert_eq!(s.grubbs(9.0), 3.0 / 4f64.sqrt()); // the maximum, (n-1)/sqrt(n)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    n: usize,
    shift: f64,
    // Mean of the shifted values.
    mean_shifted: f64,
    // Sum of squared deviations from the mean.
    m2: f64,
}

impl SampleStats {
    /// Summarises `values`; `None` for an empty slice.
    ///
    /// # Complexity
    ///
    /// O(n), two passes.
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::SampleStats;
    /// let s = SampleStats::from_values(&[1.0, 2.0, 3.0]).unwrap();
    /// assert_eq!((s.len(), s.mean(), s.std_dev()), (3, 2.0, 1.0));
    /// ```
    pub fn from_values(values: &[f64]) -> Option<Self> {
        let shift = *values.first()?;
        let n = values.len();
        let sum: f64 = values.iter().map(|v| v - shift).sum();
        let mean_shifted = sum / n as f64;
        let m2 = values
            .iter()
            .map(|v| {
                let d = (v - shift) - mean_shifted;
                d * d
            })
            .sum();
        Some(SampleStats {
            n,
            shift,
            mean_shifted,
            m2,
        })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a summary has at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.shift + self.mean_shifted
    }

    /// The sample standard deviation (n − 1 denominator); 0 for a single value.
    pub fn std_dev(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }

    /// Grubbs' statistic `G = |x − mean| / s` of `x` among the sample plus `x` (so over
    /// `n + 1` points, `s` with an `n` denominator). 0 when all points are equal.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::SampleStats;
    /// let s = SampleStats::from_values(&[10.0, 11.0, 9.0, 10.0]).unwrap();
    /// assert!(s.grubbs(30.0) > s.grubbs(12.0));
    /// ```
    pub fn grubbs(&self, x: f64) -> f64 {
        // Merging the sample with the single point x (Chan et al.): with
        // delta = x − mean, the merged mean moves by delta/(n+1), the merged sum of
        // squares is m2 + delta²·n/(n+1), and x − merged mean = delta·n/(n+1).
        let n = self.n as f64;
        let total = n + 1.0;
        let delta = (x - self.shift) - self.mean_shifted;
        let m2 = self.m2 + delta * delta * n / total;
        if m2 <= 0.0 || !m2.is_finite() {
            return 0.0;
        }
        let s = (m2 / n).sqrt();
        (delta.abs() * n / total) / s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn critical_values_match_published_tables() {
        assert!(close(
            grubbs_critical(10, 0.05, Direction::Both).unwrap(),
            2.2900
        ));
        assert!(close(
            grubbs_critical(30, 0.05, Direction::Both).unwrap(),
            2.9085
        ));
        assert!(close(
            grubbs_critical(31, 0.05, Direction::Both).unwrap(),
            2.9236
        ));
        assert!(close(
            grubbs_critical(10, 0.05, Direction::Up).unwrap(),
            2.1761
        ));
        assert!(close(
            grubbs_critical(10, 0.05, Direction::Down).unwrap(),
            2.1761
        ));
    }

    #[test]
    fn critical_values_are_undefined_for_tiny_samples_or_bad_alpha() {
        assert_eq!(grubbs_critical(2, 0.05, Direction::Both), None);
        assert_eq!(grubbs_critical(10, 0.0, Direction::Both), None);
        assert_eq!(grubbs_critical(10, f64::NAN, Direction::Both), None);
        let mut cv = CriticalValues::new(0.05);
        assert_eq!(cv.get(1, Direction::Up), None);
        assert_eq!(
            cv.get(31, Direction::Both),
            grubbs_critical(31, 0.05, Direction::Both)
        );
    }

    #[test]
    fn a_critical_value_never_exceeds_the_largest_possible_statistic() {
        for n in 3..200 {
            let g = grubbs_critical(n, 0.05, Direction::Both).unwrap();
            assert!(g < (n as f64 - 1.0) / (n as f64).sqrt(), "n = {n}");
        }
    }

    #[test]
    fn constant_baseline_with_a_different_value_gives_the_maximum_statistic() {
        let s = SampleStats::from_values(&[0.1; 30]).unwrap();
        assert_eq!(s.std_dev(), 0.0);
        assert_eq!(s.grubbs(0.1), 0.0);
        let max = 30.0 / 31f64.sqrt();
        assert!((s.grubbs(0.2) - max).abs() < 1e-12);
        assert!(s.grubbs(0.2) > grubbs_critical(31, 0.05, Direction::Both).unwrap());
    }

    proptest! {
        #[test]
        fn the_statistic_matches_the_textbook_formula(
            base in prop::collection::vec(-1e3f64..1e3, 2..40),
            x in -1e4f64..1e4,
        ) {
            let mut all = base.clone();
            all.push(x);
            let n = all.len() as f64;
            let mean = all.iter().sum::<f64>() / n;
            let s = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            prop_assume!(s > 1e-9);
            let expected = (x - mean).abs() / s;
            let got = SampleStats::from_values(&base).unwrap().grubbs(x);
            prop_assert!((got - expected).abs() <= 1e-9 * expected.max(1.0), "{got} vs {expected}");
        }
    }
}
