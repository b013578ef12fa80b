#![cfg(feature = "flex")]
//! Language modelling through the one training loop: a causal decoder learns a small text (its
//! validation loss falls far below the uniform guess), bits per character and perplexity are the
//! loss in other units, and a run resumed from a checkpoint equals the uninterrupted one.

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::AdamConfig;
use burn::prelude::*;
use ember_data::{TextCorpus, TextSplits, Tokenization};
use ember_models::{CausalDecoder, CausalDecoderConfig};
use ember_train::{
    Budget, EvalSplit, LanguageModelling, MetricsRecord, RecordKind, RunDir, TrainParts,
    TrainSettings,
};

const CONTEXT: usize = 16;

fn device() -> Device {
    static PIN_DEFAULT: std::sync::Once = std::sync::Once::new();
    PIN_DEFAULT.call_once(|| std::env::set_var("BURN_DEVICE", "flex"));
    Device::flex().autodiff()
}

/// The model is drawn from the device's shared generator: comparing two runs needs the lock.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A text with structure to learn: a short verse repeated with a varying line number.
fn splits() -> TextSplits {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verse.txt");
    let text: String = (0..80)
        .map(|i| {
            format!(
                "line {}: the quick brown fox jumps over the lazy dog.\n",
                i % 10
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    TextCorpus::read(&path)
        .unwrap()
        .split(Tokenization::Chars, 20, CONTEXT + 1)
        .unwrap()
}

fn settings(steps: usize) -> TrainSettings {
    TrainSettings {
        budget: Budget::Steps {
            steps,
            eval_every: 10,
        },
        batch_size: 8,
        eval_batch_size: 16,
        seed: 5,
        log_every: 5,
        progress: false,
        on_nonfinite: Default::default(),
    }
}

fn parts(vocab: usize) -> TrainParts<CausalDecoder> {
    let device = device();
    device.seed(3);
    TrainParts {
        model: CausalDecoderConfig::new(vocab)
            .with_context(CONTEXT)
            .with_dim(32)
            .with_heads(2)
            .with_mlp_dim(64)
            .with_blocks(2)
            .init(&device)
            .unwrap(),
        optimizer: AdamConfig::new().init().into(),
        scheduler: ModuleLrScheduler::new(3e-3),
        schedule_spans_run: None,
    }
}

fn task(splits: &TextSplits) -> LanguageModelling {
    LanguageModelling::new(
        splits,
        EvalSplit::Validation,
        CONTEXT,
        8,
        16,
        8,
        5,
        &device(),
    )
    .unwrap()
}

fn run(dir: &std::path::Path, name: &str, steps: usize, resume: bool) -> Vec<MetricsRecord> {
    let splits = splits();
    let run = RunDir::new(dir.join(name));
    let config = serde_json::json!({ "what": "language_model test" });
    ember_train::train(
        &run,
        &config,
        &settings(steps),
        &task(&splits),
        parts(splits.vocabulary.size()),
        resume,
    )
    .unwrap();
    run.read_metrics().unwrap()
}

#[test]
fn a_decoder_learns_the_text_and_reports_bits_and_perplexity() {
    let _serial = SEEDED.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let records = run(dir.path(), "lm", 60, false);
    let evals: Vec<&MetricsRecord> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Eval)
        .collect();
    assert_eq!(evals.len(), 6, "an evaluation every 10 of 60 steps");
    let vocab = splits().vocabulary.size() as f64;
    let last = evals.last().unwrap().eval.as_ref().unwrap();
    assert_eq!(last.split, EvalSplit::Validation);
    assert!(
        last.loss < 0.5 * vocab.ln(),
        "validation loss {} not far below the uniform guess ln {vocab} = {}",
        last.loss,
        vocab.ln()
    );
    let bits = last.metrics["bits_per_char"];
    assert!((bits - last.loss / std::f64::consts::LN_2).abs() < 1e-12);
    assert!((last.metrics["perplexity"] - last.loss.exp()).abs() < 1e-9);
    let summary = RunDir::new(dir.path().join("lm"))
        .read_summary()
        .unwrap()
        .unwrap()
        .0;
    assert_eq!((summary.steps, summary.rounds), (60, 6));
    assert_eq!(summary.selection.metric, "loss");
    assert!(!summary.selection.higher_is_better);
    assert!(summary.best_value <= summary.final_eval.loss);
}

#[test]
fn a_resumed_language_model_run_equals_the_uninterrupted_one() {
    let _serial = SEEDED.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let whole = run(dir.path(), "whole", 40, false);
    run(dir.path(), "halves", 20, false);
    let resumed = run(dir.path(), "halves", 40, true);
    let learning = |records: &[MetricsRecord]| -> Vec<(u64, u64, Option<u64>)> {
        records
            .iter()
            .map(|r| {
                (
                    r.step,
                    r.train_loss.to_bits(),
                    r.eval.as_ref().map(|e| e.loss.to_bits()),
                )
            })
            .collect()
    };
    assert_eq!(learning(&resumed), learning(&whole));
}

#[test]
fn an_image_budget_is_refused_by_name() {
    let splits = splits();
    let err = LanguageModelling::new(
        &splits,
        EvalSplit::Validation,
        CONTEXT,
        0,
        16,
        8,
        5,
        &device(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("batch_size"), "{err}");
    let task = task(&splits);
    let err = ember_train::Task::plan(&task, &Budget::Epochs { epochs: 2 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("steps, not epochs"), "{err}");
}
