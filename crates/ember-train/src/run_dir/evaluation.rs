//! What an evaluation measured, on which split, and which of its numbers a run is judged by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The data an evaluation ran on. Hyper-parameters are selected on the validation split; the
/// test split is for the reported numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvalSplit {
    /// The data set's test half.
    #[default]
    Test,
    /// A validation split held out of the training data.
    Validation,
}

impl EvalSplit {
    /// `test` or `validation`, as in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Test => "test",
            EvalSplit::Validation => "validation",
        }
    }
}

impl std::fmt::Display for EvalSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One evaluation of a model: its mean loss and the task's other metrics (`accuracy` for image
/// classification; `bits_per_char`/`bits_per_byte` and `perplexity` for language modelling).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The split evaluated: test or validation.
    pub split: EvalSplit,
    /// Mean loss per item (image, token).
    pub loss: f64,
    /// The task's other metrics by name (`accuracy`, `perplexity`, …), flattened into the JSON.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, f64>,
}

impl Evaluation {
    /// The value of `metric`: `loss`, or one of [`metrics`](Self::metrics).
    pub fn metric(&self, metric: &str) -> Option<f64> {
        if metric == "loss" {
            Some(self.loss)
        } else {
            self.metrics.get(metric).copied()
        }
    }
}

/// The evaluation metric a task's runs are compared and selected by, and its direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// A key of [`Evaluation::metric`]: `accuracy`, `loss`, ….
    pub metric: String,
    /// Whether a larger value is better (accuracy) or a smaller one (loss).
    pub higher_is_better: bool,
}

impl Selection {
    /// Accuracy, higher is better: image classification.
    pub fn accuracy() -> Self {
        Self {
            metric: "accuracy".into(),
            higher_is_better: true,
        }
    }

    /// Loss, lower is better: language modelling.
    pub fn loss() -> Self {
        Self {
            metric: "loss".into(),
            higher_is_better: false,
        }
    }

    /// Whether `a` is strictly better than `b` (a NaN is never better, and anything beats NaN).
    pub fn better(&self, a: f64, b: f64) -> bool {
        if a.is_nan() {
            return false;
        }
        if b.is_nan() {
            return true;
        }
        if self.higher_is_better {
            a > b
        } else {
            a < b
        }
    }

    /// The better of two values.
    pub fn best(&self, a: f64, b: f64) -> f64 {
        if self.better(b, a) {
            b
        } else {
            a
        }
    }

    /// Whether `value` reaches `target` (at or beyond it in the better direction).
    pub fn reaches(&self, value: f64, target: f64) -> bool {
        if self.higher_is_better {
            value >= target
        } else {
            value <= target
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_directions() {
        let acc = Selection::accuracy();
        assert!(acc.better(0.6, 0.5) && !acc.better(0.5, 0.6) && acc.better(0.1, f64::NAN));
        assert!(acc.reaches(0.5, 0.5) && !acc.reaches(0.49, 0.5));
        let loss = Selection::loss();
        assert!(loss.better(1.0, 2.0) && !loss.better(f64::NAN, 2.0));
        assert_eq!(loss.best(3.0, 2.0), 2.0);
        assert!(loss.reaches(1.4, 1.5) && !loss.reaches(1.6, 1.5));
    }
}
