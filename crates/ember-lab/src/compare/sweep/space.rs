//! A search space over an arm's knobs and the trials drawn from it.
//!
//! A dimension names a key of the arm's tables (`scheduler.lr`, `optimizer.damping`,
//! `optimizer.base.momentum`) and the values it may take; a trial is one value per dimension,
//! written over the arm's tables before they are typed, so a knob that does not exist is refused by
//! name exactly as in a hand-written arm.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::Deserialize;
use serde_json::Value;

/// The values one knob may take.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dimension {
    /// `[low, high]`, drawn uniformly in log space (learning rates, damping, weight decay).
    LogUniform([f64; 2]),
    /// `[low, high]`, drawn uniformly (momentum, β).
    Uniform([f64; 2]),
    /// One of these values.
    Grid(Vec<f64>),
}

impl Dimension {
    /// Checks the bounds, naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Dimension::LogUniform([low, high]) => {
                if !(low.is_finite() && high.is_finite() && *low > 0.0 && low <= high) {
                    return Err(format!(
                        "log_uniform needs 0 < low <= high, both finite, got [{low}, {high}]"
                    ));
                }
            }
            Dimension::Uniform([low, high]) => {
                if !(low.is_finite() && high.is_finite() && low <= high) {
                    return Err(format!(
                        "uniform needs low <= high, both finite, got [{low}, {high}]"
                    ));
                }
            }
            Dimension::Grid(values) => {
                if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
                    return Err(format!(
                        "grid needs at least one value, all finite, got {values:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn draw(&self, rng: &mut Pcg64) -> f64 {
        match self {
            Dimension::LogUniform([low, high]) => {
                (low.ln() + (high.ln() - low.ln()) * rng.random::<f64>()).exp()
            }
            Dimension::Uniform([low, high]) => low + (high - low) * rng.random::<f64>(),
            Dimension::Grid(values) => values[rng.random_range(0..values.len())],
        }
    }
}

/// Knob path (`scheduler.lr`) → its dimension; ordered, so trials are the same on every machine.
pub type Space = BTreeMap<String, Dimension>;

impl Dimension {
    /// Whether `value` lies at the edge of the dimension: a grid's smallest or largest value, or
    /// within the outer tenth of a range (on a log scale for `log_uniform`). A choice there
    /// suggests the best value may lie outside what was searched.
    pub fn at_edge(&self, value: f64) -> bool {
        let near = |low: f64, high: f64, v: f64| {
            let tenth = (high - low) / 10.0;
            v <= low + tenth || v >= high - tenth
        };
        match self {
            Dimension::LogUniform([low, high]) => near(low.ln(), high.ln(), value.ln()),
            Dimension::Uniform([low, high]) => near(*low, *high, value),
            Dimension::Grid(values) => {
                let (min, max) = values
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                values.len() > 1 && (value == min || value == max)
            }
        }
    }
}

/// One trial's knob values, by path.
pub type Setting = BTreeMap<String, f64>;

/// The settings an arm's trials try. A space of grids alone is tried exhaustively (its product, in
/// order) when it has at most `trials` points; otherwise `trials` random draws, seeded by `seed`
/// (the spec's sweep seed and the arm's index), so that a resumed sweep draws the same trials.
pub fn settings(space: &Space, trials: usize, seed: u64) -> Vec<Setting> {
    let grids: Option<Vec<(&String, &Vec<f64>)>> = space
        .iter()
        .map(|(path, d)| match d {
            Dimension::Grid(values) => Some((path, values)),
            _ => None,
        })
        .collect();
    if let Some(grids) = grids {
        let points: usize = grids.iter().map(|(_, v)| v.len()).product();
        if points <= trials {
            let mut all = vec![Setting::new()];
            for (path, values) in grids {
                all = all
                    .into_iter()
                    .flat_map(|s| {
                        values.iter().map(move |&v| {
                            let mut s = s.clone();
                            s.insert(path.clone(), v);
                            s
                        })
                    })
                    .collect();
            }
            return all;
        }
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..trials)
        .map(|_| {
            space
                .iter()
                .map(|(path, d)| (path.clone(), d.draw(&mut rng)))
                .collect()
        })
        .collect()
}

/// `tables` (`{"optimizer": {...}, "scheduler": {...}}`) with every knob of `setting` written in
/// at its path; a path that leaves the tables (`optimizer.base.momentum` without a `base` table)
/// creates the missing tables, and typing the result names any key that does not exist.
pub fn apply(tables: &Value, setting: &Setting) -> Result<Value, String> {
    let mut out = tables.clone();
    for (path, &value) in setting {
        let keys: Vec<&str> = path.split('.').collect();
        let (last, parents) = keys.split_last().expect("split yields one key at least");
        let mut slot = &mut out;
        for key in parents {
            let Some(map) = slot.as_object_mut() else {
                return Err(format!("`{path}`: `{key}` is not inside a table"));
            };
            slot = map
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
        }
        let Some(map) = slot.as_object_mut() else {
            return Err(format!("`{path}`: not inside a table"));
        };
        map.insert(last.to_string(), Value::from(value));
    }
    Ok(out)
}

/// A short label of a setting for reports: `lr=0.0123, damping=1e-4`.
pub fn label(setting: &Setting) -> String {
    setting
        .iter()
        .map(|(path, v)| {
            let knob = path.rsplit('.').next().unwrap_or(path);
            format!("{knob}={}", crate::tools::lr_find::round_significant(*v, 3))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(entries: &[(&str, Dimension)]) -> Space {
        entries
            .iter()
            .map(|(k, d)| (k.to_string(), d.clone()))
            .collect()
    }

    #[test]
    fn small_grids_are_tried_exhaustively_in_order() {
        let s = space(&[
            ("optimizer.momentum", Dimension::Grid(vec![0.0, 0.9])),
            ("scheduler.lr", Dimension::Grid(vec![0.01, 0.1, 1.0])),
        ]);
        let all = settings(&s, 6, 0);
        assert_eq!(all.len(), 6);
        let pairs: Vec<(f64, f64)> = all
            .iter()
            .map(|t| (t["optimizer.momentum"], t["scheduler.lr"]))
            .collect();
        assert_eq!(
            pairs,
            [
                (0.0, 0.01),
                (0.0, 0.1),
                (0.0, 1.0),
                (0.9, 0.01),
                (0.9, 0.1),
                (0.9, 1.0)
            ]
        );
        // Fewer trials than grid points: random draws from the grid instead.
        assert_eq!(settings(&s, 4, 0).len(), 4);
    }

    #[test]
    fn log_uniform_draws_cover_the_range_evenly_in_log_space_and_repeat_with_the_seed() {
        let s = space(&[("scheduler.lr", Dimension::LogUniform([1e-4, 1.0]))]);
        let draws: Vec<f64> = settings(&s, 4000, 3)
            .iter()
            .map(|t| t["scheduler.lr"])
            .collect();
        assert!(draws.iter().all(|&v| (1e-4..=1.0).contains(&v)));
        // Each decade holds a quarter of the draws (±3 standard errors of a binomial(4000, 1/4)).
        for decade in 0..4 {
            let (lo, hi) = (10f64.powi(-4 + decade), 10f64.powi(-3 + decade));
            let n = draws.iter().filter(|&&v| v >= lo && v < hi).count() as f64;
            assert!(
                (n - 1000.0).abs() < 3.0 * (4000.0f64 * 0.25 * 0.75).sqrt(),
                "{n}"
            );
        }
        let again: Vec<f64> = settings(&s, 4000, 3)
            .iter()
            .map(|t| t["scheduler.lr"])
            .collect();
        assert_eq!(draws, again);
        assert_ne!(settings(&s, 5, 4), settings(&s, 5, 3));
    }

    #[test]
    fn a_setting_is_written_into_the_tables_at_its_path() {
        let tables = serde_json::json!({
            "optimizer": {"name": "gam", "base": {"name": "sgd"}},
            "scheduler": {"name": "cosine", "lr": 0.1},
        });
        let setting: Setting = [
            ("scheduler.lr".to_string(), 0.02),
            ("optimizer.base.momentum".to_string(), 0.5),
        ]
        .into();
        let out = apply(&tables, &setting).unwrap();
        assert_eq!(out["scheduler"]["lr"], 0.02);
        assert_eq!(out["optimizer"]["base"]["momentum"], 0.5);
        assert_eq!(out["optimizer"]["base"]["name"], "sgd");
        assert_eq!(label(&setting), "momentum=0.5, lr=0.02");
        let bad: Setting = [("scheduler.lr.x".to_string(), 1.0)].into();
        assert!(apply(&tables, &bad).unwrap_err().contains("scheduler.lr.x"));
    }

    #[test]
    fn bad_dimensions_say_why() {
        assert!(Dimension::LogUniform([0.0, 1.0]).validate().is_err());
        assert!(Dimension::LogUniform([1.0, 0.1]).validate().is_err());
        assert!(Dimension::Uniform([0.0, f64::NAN]).validate().is_err());
        assert!(Dimension::Grid(vec![]).validate().is_err());
        assert!(Dimension::Grid(vec![0.1]).validate().is_ok());
    }
}
