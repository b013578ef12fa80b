//! A language-modelling run's replay kit: everything another implementation needs to train the
//! same model on the same data step for step — the decoder's initial weights, the token splits,
//! every step's window starts and learning rate, the evaluation windows. The PyTorch anchor
//! (`experiments/shakespeare/torch_anchor.py`) reads it, so that Ember's losses can be held against
//! PyTorch's from the same starting point instead of only in distribution.
//!
//! The kit is plain files: `replay.json` (the manifest), `initial-weights.json` (every parameter
//! by its burn path, in burn's layout: a `Linear` weight is `[inputs, outputs]`) and the two token
//! splits as little-endian `u32` (`train-tokens.u32`, `eval-tokens.u32`). JSON prints each `f32`
//! in its shortest exact form, so the weights read back bit for bit.

use std::path::Path;

use anyhow::Context;
use burn::module::Module;
use serde::Serialize;
use serde_json::{Map, Value};

use ember_train::{for_each_float_parameter, BatchPosition, Task};

use crate::spec::{TextRunSpec, TextStart};

/// The manifest's format name, so a reader can refuse a kit it does not know.
pub const REPLAY_FORMAT: &str = "ember-lm-replay/1";

/// What [`write_replay`] wrote, for the command line to report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayKit {
    /// Float values in `initial-weights.json` (the decoder's parameter count).
    pub parameters: usize,
    /// Optimizer steps of the run, each with its window starts and learning rate.
    pub steps: usize,
    /// Tokens in `train-tokens.u32`.
    pub train_tokens: usize,
    /// Tokens in `eval-tokens.u32` (the split the run evaluates on).
    pub eval_tokens: usize,
}

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    /// The run's own `config.json`.
    run: Value,
    vocab_size: usize,
    eval_split: String,
    /// `[steps][batch]`: step `s` trains on the windows starting at these train-token offsets.
    train_window_starts: Vec<Vec<usize>>,
    /// The learning rate of every step, as the run's scheduler gives it.
    lr: Vec<f64>,
    /// Evaluation reads these windows of the evaluation split, in batches of `eval_batch_size`.
    eval_window_starts: Vec<usize>,
    train_tokens_file: &'a str,
    eval_tokens_file: &'a str,
    weights_file: &'a str,
}

/// Writes `spec`'s replay kit into `dir` (created if missing; every file written atomically).
///
/// # Errors
/// The text cannot be read or split, the model or scheduler cannot be built (naming the field),
/// or a file cannot be written (naming it).
pub fn write_replay(spec: &TextRunSpec, dir: &Path) -> anyhow::Result<ReplayKit> {
    let TextStart {
        splits,
        model,
        task,
        plan,
        ..
    } = spec.start()?;
    // burn draws a parameter's initial values when it is first read, so the values depend on the
    // order of first reads (the decoder reads its positions before its embedding). One forward
    // pass reads them in the order the run's first step does: the weights recorded below are the
    // ones the run trains from.
    let first = task.train_batch(BatchPosition {
        round: 0,
        index: 0,
        step: 0,
    });
    let _ = model.forward(first.inputs);
    let steps = plan.total_steps();
    let (batch, context) = (spec.train.batch_size, spec.model.context);
    let train_window_starts: Vec<Vec<usize>> = (0..steps as u64)
        .map(|step| {
            splits
                .train
                .train_window_starts(spec.train.seed, step, batch, context)
        })
        .collect();
    let mut scheduler = spec.scheduler.build(steps, plan.steps_per_round)?;
    let lr: Vec<f64> = (0..steps).map(|_| scheduler.step().base()).collect();
    let eval = task.eval_tokens();
    let manifest = Manifest {
        format: REPLAY_FORMAT,
        run: spec.config_json(),
        vocab_size: splits.vocabulary.size(),
        eval_split: spec.data.evaluate.to_string(),
        train_window_starts,
        lr,
        eval_window_starts: task.eval_window_starts().to_vec(),
        train_tokens_file: "train-tokens.u32",
        eval_tokens_file: "eval-tokens.u32",
        weights_file: "initial-weights.json",
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        ember_train::write_atomically(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))
    };
    let weights = parameters_by_path(&model);
    let parameters = weights
        .values()
        .map(|w| w["values"].as_array().map_or(0, Vec::len))
        .sum();
    write(manifest.weights_file, &serde_json::to_vec(&weights)?)?;
    write(
        manifest.train_tokens_file,
        &little_endian(&splits.train.tokens),
    )?;
    write(manifest.eval_tokens_file, &little_endian(eval))?;
    write("replay.json", &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(ReplayKit {
        parameters,
        steps,
        train_tokens: splits.train.tokens.len(),
        eval_tokens: eval.len(),
    })
}

fn little_endian(tokens: &[u32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// Every float parameter of `model` as `{path: {"shape": [...], "values": [...]}}`, the path
/// joined from burn's field names (`blocks.0.attention.query.weight`).
fn parameters_by_path<M: Module>(model: &M) -> Map<String, Value> {
    let mut out = Map::new();
    for_each_float_parameter(model, |path, shape, values| {
        let values = values
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("converted to f32");
        out.insert(
            path.to_string(),
            serde_json::json!({ "shape": shape, "values": values }),
        );
    });
    out
}
