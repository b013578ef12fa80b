//! The replay kit of a language-modelling run holds exactly what the run trains on: every step's
//! windows are the task's own batches, the learning rates are the schedule's (checked against
//! numbers worked out by hand), the weights are the seeded initialisation with every parameter
//! by its path and burn's shapes.

use std::path::Path;

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use ember_data::Tokenization;
use ember_lab::spec::{DecoderSpec, TextDataSpec};
use ember_lab::tools::replay::{write_replay, REPLAY_FORMAT};
use ember_lab::{OptimizerSpec, SchedulerSpec, TextRunSpec};
use ember_train::{
    read_metrics_file, BatchPosition, Budget, EvalSplit, NonFinitePolicy, RecordKind, RunDir, Task,
    TrainSettings,
};
use serde_json::Value;

const STEPS: usize = 6;

/// burn seeds one generator per process: tests that initialise a seeded model must not run at
/// the same time, or each draws from the other's stream.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded() -> std::sync::MutexGuard<'static, ()> {
    SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn spec(text: &Path, seed: u64) -> TextRunSpec {
    TextRunSpec {
        data: TextDataSpec {
            path: text.to_path_buf(),
            tokenization: Tokenization::Chars,
            holdout_every: 10,
            evaluate: EvalSplit::Validation,
            eval_windows: 3,
        },
        model: DecoderSpec {
            context: 8,
            dim: 8,
            heads: 2,
            mlp_dim: 16,
            blocks: 2,
            tie_embeddings: false,
        },
        optimizer: OptimizerSpec::named("adamw", 32).unwrap(),
        scheduler: SchedulerSpec::Cosine {
            lr: 1.0,
            min_lr: 0.0,
            warmup_steps: 2,
        },
        train: TrainSettings {
            budget: Budget::Steps {
                steps: STEPS,
                eval_every: 3,
            },
            batch_size: 4,
            eval_batch_size: 2,
            seed,
            log_every: 1,
            progress: false,
            on_nonfinite: NonFinitePolicy::Stop,
        },
        device: "flex".into(),
    }
    .with_seed(seed)
}

fn text(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("sonnet.txt");
    let text: String = (0..40)
        .map(|i| format!("{i}: shall I compare thee to a summer's day?\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    file
}

fn manifest(kit: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(kit.join("replay.json")).unwrap()).unwrap()
}

fn tokens(kit: &Path, name: &str) -> Vec<i64> {
    std::fs::read(kit.join(name))
        .unwrap()
        .chunks_exact(4)
        .map(|b| i64::from(u32::from_le_bytes(b.try_into().unwrap())))
        .collect()
}

fn ints(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn the_kit_holds_what_the_run_trains_on() {
    let _seeded = seeded();
    let dir = tempfile::tempdir().unwrap();
    let text = text(dir.path());
    let spec = spec(&text, 7);
    let kit_dir = dir.path().join("kit");
    let kit = write_replay(&spec, &kit_dir).unwrap();
    let manifest = manifest(&kit_dir);
    assert_eq!(manifest["format"], REPLAY_FORMAT);
    assert_eq!(kit.steps, STEPS);

    // Every step's windows, gathered from the kit's tokens at its starts, are the task's batch.
    let start = spec.start().unwrap();
    let train_tokens = tokens(&kit_dir, "train-tokens.u32");
    assert_eq!(train_tokens.len(), kit.train_tokens);
    let starts = manifest["train_window_starts"].as_array().unwrap();
    assert_eq!(starts.len(), STEPS);
    for (step, starts) in starts.iter().enumerate() {
        let starts = ints(starts);
        assert_eq!(starts.len(), 4, "batch size");
        let from_kit: Vec<i64> = starts
            .iter()
            .flat_map(|&s| train_tokens[s..s + 8].to_vec())
            .collect();
        let batch = start.task.train_batch(BatchPosition {
            round: step / 3,
            index: step % 3,
            step: step as u64,
        });
        let from_task = batch
            .inputs
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>();
        assert_eq!(from_kit, from_task.unwrap(), "step {step}");
    }
    assert_eq!(
        ints(&manifest["eval_window_starts"]),
        vec![0, 8, 16],
        "3 consecutive windows of 8"
    );
    assert_eq!(tokens(&kit_dir, "eval-tokens.u32").len(), kit.eval_tokens);

    // Warm-up from 0 over 2 steps, then cosine from 1 to 0 over the remaining 4.
    let lr: Vec<f64> = manifest["lr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let cos = |p: f64| 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
    let expected = [0.0, 0.5, 1.0, cos(0.25), cos(0.5), cos(0.75)];
    for (got, want) in lr.iter().zip(expected) {
        assert!(
            (got - want).abs() < 1e-12,
            "lr {lr:?}, expected {expected:?}"
        );
    }

    // Every parameter by its path, in burn's layout, adding up to the model's count.
    let weights: Value =
        serde_json::from_slice(&std::fs::read(kit_dir.join("initial-weights.json")).unwrap())
            .unwrap();
    let weights = weights.as_object().unwrap();
    let shape = |path: &str| ints(&weights[path]["shape"]);
    let vocab = manifest["vocab_size"].as_u64().unwrap() as usize;
    assert_eq!(shape("embedding.weight"), vec![vocab, 8]);
    assert_eq!(shape("positions"), vec![1, 8, 8]);
    assert_eq!(shape("blocks.1.attention.query.weight"), vec![8, 8]);
    assert_eq!(
        shape("blocks.0.mlp_in.weight"),
        vec![8, 16],
        "[inputs, outputs]"
    );
    assert_eq!(shape("blocks.0.attention_norm.gamma"), vec![8]);
    assert_eq!(shape("head.bias"), vec![vocab]);
    assert_eq!(kit.parameters, start.model.num_params());
    for (path, entry) in weights {
        let count: usize = ints(&entry["shape"]).iter().product();
        assert_eq!(entry["values"].as_array().unwrap().len(), count, "{path}");
    }
    let gamma = &weights["norm.gamma"]["values"];
    assert!(gamma.as_array().unwrap().iter().all(|v| v == 1.0));
}

#[test]
fn the_kit_is_a_function_of_the_seed() {
    let _seeded = seeded();
    let dir = tempfile::tempdir().unwrap();
    let text = text(dir.path());
    let read = |seed: u64, name: &str| {
        let kit = dir.path().join(format!("kit-{seed}-{name}"));
        write_replay(&spec(&text, seed), &kit).unwrap();
        (
            std::fs::read(kit.join("initial-weights.json")).unwrap(),
            manifest(&kit)["train_window_starts"].clone(),
        )
    };
    let (weights, windows) = read(3, "a");
    assert_eq!(
        (weights.clone(), windows.clone()),
        read(3, "b"),
        "same seed"
    );
    let (other_weights, other_windows) = read(4, "a");
    assert_ne!(
        weights, other_weights,
        "another seed initialises differently"
    );
    assert_ne!(windows, other_windows, "another seed draws other windows");
}

#[test]
fn a_missing_text_is_named() {
    let _seeded = seeded();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-text");
    let err = write_replay(&spec(&missing, 0), &dir.path().join("kit")).unwrap_err();
    assert!(format!("{err:#}").contains("no-such-text"), "{err:#}");
    assert!(!dir.path().join("kit").exists(), "nothing written");
}

/// Puts every parameter's value from a kit's `initial-weights.json` into a model, by path.
struct FromKit {
    path: Vec<String>,
    weights: serde_json::Map<String, Value>,
    loaded: usize,
}

impl ModuleMapper for FromKit {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let entry = &self.weights[&self.path.join(".")];
        let values: Vec<f32> = entry["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        self.loaded += 1;
        param.map(|t| Tensor::from_data(TensorData::new(values, t.shape()), &t.device()))
    }
}

#[test]
fn the_kit_holds_the_weights_the_run_trains_from() {
    let _seeded = seeded();
    let dir = tempfile::tempdir().unwrap();
    let text = text(dir.path());
    // The warm-up's first step has learning rate 0 (and so no weight decay either): the first
    // evaluation, after it, sees the initial weights.
    let mut spec = spec(&text, 11);
    spec.train.budget = Budget::Steps {
        steps: 2,
        eval_every: 1,
    };
    let kit = dir.path().join("kit");
    write_replay(&spec, &kit).unwrap();
    let run = RunDir::new(dir.path().join("run"));
    spec.train(&run, false).unwrap();
    let first_eval = read_metrics_file(&run.metrics(), EvalSplit::Validation)
        .unwrap()
        .into_iter()
        .find(|r| r.kind == RecordKind::Eval)
        .and_then(|r| r.eval)
        .unwrap();
    assert!(first_eval.loss.is_finite());

    let start = spec.start().unwrap();
    let weights: Value =
        serde_json::from_slice(&std::fs::read(kit.join("initial-weights.json")).unwrap()).unwrap();
    let mut mapper = FromKit {
        path: Vec::new(),
        weights: weights.as_object().unwrap().clone(),
        loaded: 0,
    };
    let model = start.model.map(&mut mapper);
    assert_eq!(mapper.loaded, mapper.weights.len());
    let from_kit = start.task.evaluate(&model).loss;
    assert!(
        (from_kit - first_eval.loss).abs() <= 1e-6 * first_eval.loss,
        "the kit's weights evaluate to {from_kit}, the run's initial weights to {}",
        first_eval.loss
    );
}
