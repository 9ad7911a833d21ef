//! [`Severity`]: how bad a detection is, monotone in its deviation and its statistic.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Relative deviations beyond this count as this much (and an undefined one, against an
/// expectation of zero, counts as this much too).
pub const MAX_RELATIVE_DEVIATION: f64 = 10.0;

/// Upper bounds of the scores of grades 1 to 4; higher scores are grade 5.
const GRADE_BOUNDS: [f64; 4] = [0.1, 0.3, 1.0, 3.0];

/// How bad a detection is. `score = min(|relative deviation|, 10) · G / G_crit`, which
/// never decreases when either the deviation or the statistic grows, and `grade` is the
/// score in five steps (1: < 0.1, 2: < 0.3, 3: < 1, 4: < 3, 5: ≥ 3). With G a little
/// above G_crit: a 20 % rise is grade 2, a 50 % rise grade 3, a doubling grade 4,
/// a fourfold rise grade 5.
///
/// "Worse than when it was marked" means a higher score: see [`Severity::is_worse_than`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Severity {
    /// Continuous score, ≥ 0.
    pub score: f64,
    /// 1 (mild) to 5 (severe).
    pub grade: u8,
}

impl Severity {
    /// The severity of a deviation `relative` (`None` when the expectation was zero)
    /// with statistic `g` against critical value `g_crit`.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::detect::Severity;
    /// let mild = Severity::new(Some(0.25), 3.0, 2.9);
    /// let bad = Severity::new(Some(2.0), 3.0, 2.9);
    /// assert!(bad.is_worse_than(&mild));
    /// assert_eq!((mild.grade, bad.grade), (2, 4));
    /// assert_eq!(Severity::new(None, 3.0, 2.9).grade, 5);
    /// ```
    pub fn new(relative: Option<f64>, g: f64, g_crit: f64) -> Self {
        let dev = relative.map_or(MAX_RELATIVE_DEVIATION, |r| {
            if r.is_nan() {
                MAX_RELATIVE_DEVIATION
            } else {
                r.abs().min(MAX_RELATIVE_DEVIATION)
            }
        });
        let ratio = if g_crit > 0.0 && g.is_finite() && g >= 0.0 {
            g / g_crit
        } else {
            0.0
        };
        let score = dev * ratio;
        let grade = 1 + GRADE_BOUNDS.iter().filter(|&&b| score >= b).count() as u8;
        Severity { score, grade }
    }

    /// True when `self` is strictly more severe than `other`.
    pub fn is_worse_than(&self, other: &Severity) -> bool {
        self.score.total_cmp(&other.score) == Ordering::Greater
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn severity_never_drops_when_deviation_or_statistic_grows(
            rel in -20.0f64..20.0, more in 0.0f64..5.0,
            g in 0.0f64..6.0, more_g in 0.0f64..2.0, crit in 1.0f64..4.0,
        ) {
            let base = Severity::new(Some(rel), g, crit);
            let larger_dev = Severity::new(Some(rel.signum() * (rel.abs() + more)), g, crit);
            let larger_g = Severity::new(Some(rel), g + more_g, crit);
            prop_assert!(larger_dev.score >= base.score && larger_dev.grade >= base.grade);
            prop_assert!(larger_g.score >= base.score && larger_g.grade >= base.grade);
            prop_assert!((1..=5).contains(&base.grade));
        }
    }

    #[test]
    fn grades_span_one_to_five() {
        let grade = |rel: f64| Severity::new(Some(rel), 3.0, 3.0).grade;
        assert_eq!(
            [grade(0.05), grade(0.2), grade(0.5), grade(1.0), grade(4.0)],
            [1, 2, 3, 4, 5]
        );
        assert_eq!(Severity::new(Some(f64::NAN), f64::NAN, 2.0).score, 0.0);
    }
}
