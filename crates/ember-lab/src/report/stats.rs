//! The summary statistics every report uses: mean, sample standard deviation, median, range, and
//! the 95 % intervals and tests of a comparison over seeds.
//!
//! Intervals are Student t over seeds, not a bootstrap: with the 5 seeds a comparison runs, a
//! bootstrap has only 126 distinct resamples and its percentile interval is known to cover too
//! little (it ignores that the standard deviation itself is estimated from 5 values); the t
//! interval accounts for that and is exact when the seeds' results are normal. The quantiles and
//! p-values come from `statrs`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The mean of `values` (0 for none).
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(sum, n), v| (sum + v, n + 1));
    sum / n.max(1) as f64
}

/// Mean and sample standard deviation (0 for one value).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanStd {
    /// The mean (0 for no values).
    pub mean: f64,
    /// The sample standard deviation (divisor n − 1; 0 for fewer than two values).
    pub std: f64,
    /// How many values.
    pub n: usize,
}

impl MeanStd {
    /// The mean and sample standard deviation of `values`.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = mean(values.iter().copied());
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Self { mean, std, n }
    }
}

/// The two-sided 95 % quantile of Student's t with `df` degrees of freedom (`t_{0.975, df}`).
fn t_975(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .expect("df > 0 is checked by every caller")
        .inverse_cdf(0.975)
}

/// The two-sided p-value of a t statistic with `df` degrees of freedom. A zero standard error
/// (identical differences) gives p = 0 for a non-zero mean and 1 for a zero one.
fn two_sided_p(mean: f64, se: f64, df: f64) -> f64 {
    if se == 0.0 {
        return if mean == 0.0 { 1.0 } else { 0.0 };
    }
    let t = StudentsT::new(0.0, 1.0, df).expect("df > 0 is checked by every caller");
    2.0 * t.sf((mean / se).abs())
}

/// A mean over seeds with its 95 % Student-t confidence interval (`lo`, `hi`: `None` for one
/// value, where there is no spread to estimate).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// The mean over seeds.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// How many values (seeds).
    pub n: usize,
    /// Lower end of the 95 % interval (`None` for one value).
    pub lo: Option<f64>,
    /// Upper end of the 95 % interval (`None` for one value).
    pub hi: Option<f64>,
}

impl MeanCi {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let MeanStd { mean, std, n } = MeanStd::of(values);
        let half = (n > 1).then(|| t_975((n - 1) as f64) * std / (n as f64).sqrt());
        Some(Self {
            mean,
            std,
            n,
            lo: half.map(|h| mean - h),
            hi: half.map(|h| mean + h),
        })
    }
}

/// How a difference between two arms was tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairingKind {
    /// Over the seeds both arms ran (same data order and initialisation): a paired t test.
    Paired,
    /// Over unpaired samples: Welch's t test (unequal variances).
    Welch,
}

/// A mean difference `a − b` with its 95 % interval and the two-sided p-value of "no difference".
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// The mean difference `a − b`.
    pub mean: f64,
    /// Lower end of its 95 % interval.
    pub lo: f64,
    /// Upper end of its 95 % interval.
    pub hi: f64,
    /// Two-sided p-value of "no difference".
    pub p_value: f64,
    /// Paired or Welch's test.
    pub kind: PairingKind,
    /// Pairs (paired) or the smaller of the two sample sizes (Welch).
    pub n: usize,
    /// Degrees of freedom of the t distribution (n − 1 paired; Welch–Satterthwaite otherwise).
    pub df: f64,
}

impl Difference {
    /// The 95 % interval and two-sided p-value of a mean difference with standard error `se`
    /// and `df` degrees of freedom.
    fn t_test(mean: f64, se: f64, df: f64, kind: PairingKind, n: usize) -> Self {
        let half = t_975(df) * se;
        Difference {
            mean,
            lo: mean - half,
            hi: mean + half,
            p_value: two_sided_p(mean, se, df),
            kind,
            n,
            df,
        }
    }
}

/// The paired t test of `a[i] − b[i]`; `None` with fewer than 2 pairs or unequal lengths.
pub fn paired_difference(a: &[f64], b: &[f64]) -> Option<Difference> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let MeanStd { mean, std, n } = MeanStd::of(&d);
    Some(Difference::t_test(
        mean,
        std / (n as f64).sqrt(),
        (n - 1) as f64,
        PairingKind::Paired,
        n,
    ))
}

/// Welch's t test of `mean(a) − mean(b)`, with the Welch–Satterthwaite degrees of freedom;
/// `None` unless both have at least 2 values, or when both have no spread at all.
pub fn welch_difference(a: &[f64], b: &[f64]) -> Option<Difference> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (sa, sb) = (MeanStd::of(a), MeanStd::of(b));
    let (va, vb) = (sa.std.powi(2) / sa.n as f64, sb.std.powi(2) / sb.n as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return None;
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64);
    Some(Difference::t_test(
        sa.mean - sb.mean,
        se,
        df,
        PairingKind::Welch,
        sa.n.min(sb.n),
    ))
}

/// The median (mean of the middle two for an even count), minimum and maximum of some values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MedianRange {
    /// The middle value (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl MedianRange {
    /// `None` for no values.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            0.5 * (values[n / 2 - 1] + values[n / 2])
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

/// A least-squares line `y = intercept + slope·x` and its R².
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Change in y per unit of x.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
    /// Share of y's variance the line explains (1 for constant y).
    pub r_squared: f64,
    /// Finite points the line was fitted to.
    pub points: usize,
}

/// Least squares through `(x, y)` points; `None` with fewer than 3 points or constant x.
pub fn fit_line(points: impl Iterator<Item = (f64, f64)>) -> Option<LinearFit> {
    let points: Vec<(f64, f64)> = points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r_squared = if syy == 0.0 {
        1.0
    } else {
        sxy * sxy / (sxx * syy)
    };
    Some(LinearFit {
        slope,
        intercept: my - slope * mx,
        r_squared,
        points: points.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_deviation() {
        let m = MeanStd::of(&[0.4, 0.5, 0.6]);
        assert!((m.mean - 0.5).abs() < 1e-12);
        // Sample deviation: sqrt((0.01 + 0 + 0.01) / 2) = 0.1 (the population one would be 0.0816).
        assert!((m.std - 0.1).abs() < 1e-12);
        assert_eq!(MeanStd::of(&[0.3]).std, 0.0);
        assert_eq!(mean([]), 0.0);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        let odd = MedianRange::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = MedianRange::of(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert!(MedianRange::of(Vec::new()).is_none());
    }

    // The constants below are scipy 1.17.1's output of experiments/stats-reference/scipy_reference.py
    // (`python scipy_reference.py` in a virtual environment with scipy and numpy).
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn the_t_quantile_is_the_published_table_value() {
        // Every t table: t_{0.975, 4} = 2.776, t_{0.975, 1} = 12.706, and 1.96 in the limit.
        assert!(close(t_975(4.0), 2.7764451051977934));
        assert!((t_975(1.0) - 12.706).abs() < 1e-3);
        assert!((t_975(1e6) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn a_mean_interval_over_five_seeds_matches_scipy() {
        let ci = MeanCi::of(&[0.41, 0.44, 0.39, 0.45, 0.42]).unwrap();
        assert!(close(ci.mean, 0.422));
        assert!(close(ci.lo.unwrap(), 0.3923556783493338));
        assert!(close(ci.hi.unwrap(), 0.45164432165066615));
        let one = MeanCi::of(&[0.3]).unwrap();
        assert_eq!((one.lo, one.hi, one.n), (None, None, 1));
        assert!(MeanCi::of(&[]).is_none());
    }

    #[test]
    fn a_paired_difference_matches_scipy_and_a_hand_computation() {
        let a = [0.512, 0.498, 0.530, 0.505, 0.521];
        let b = [0.490, 0.487, 0.501, 0.495, 0.499];
        let d = paired_difference(&a, &b).unwrap();
        // By hand: differences 0.022, 0.011, 0.029, 0.010, 0.022; mean 0.0188.
        assert!(close(d.mean, 0.0188));
        assert!(close(d.p_value, 0.0065776152896145045));
        assert!(close(d.lo, 0.008735625845220044));
        assert!(close(d.hi, 0.028864374154779993));
        assert_eq!((d.kind, d.n), (PairingKind::Paired, 5));
        // Swapping the arms flips the sign, not the p-value.
        let swapped = paired_difference(&b, &a).unwrap();
        assert!(close(swapped.mean, -0.0188) && close(swapped.p_value, d.p_value));
        assert!(paired_difference(&a[..1], &b[..1]).is_none());
        assert!(paired_difference(&a, &b[..4]).is_none());
        // Identical differences: no spread, so the test is certain.
        let same = paired_difference(&[1.0, 2.0], &[0.5, 1.5]).unwrap();
        assert_eq!((same.p_value, same.lo, same.hi), (0.0, 0.5, 0.5));
    }

    #[test]
    fn a_welch_difference_matches_scipy() {
        let x = [1.2, 1.5, 1.1, 1.9, 1.4];
        let y = [1.0, 1.05, 0.98, 1.02];
        let d = welch_difference(&x, &y).unwrap();
        assert!(close(d.mean, 0.4075));
        assert!(close(d.p_value, 0.04253611958938534));
        assert!(close(d.lo, 0.021985245688219246));
        assert!(close(d.hi, 0.7930147543117807));
        assert!(close(d.df, 4.091732206106168));
        assert_eq!(d.kind, PairingKind::Welch);
        assert!(welch_difference(&x, &y[..1]).is_none());
    }
}
