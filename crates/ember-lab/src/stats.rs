//! The summary statistics every report uses: mean, sample standard deviation, median, range.

use serde::{Deserialize, Serialize};

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
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl MeanStd {
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

/// The median (mean of the middle two for an even count), minimum and maximum of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MedianRange {
    pub median: f64,
    pub min: f64,
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
    pub slope: f64,
    pub intercept: f64,
    pub r_squared: f64,
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
}
