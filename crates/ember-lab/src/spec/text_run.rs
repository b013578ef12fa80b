//! One language-modelling run, complete: `ember train --text PATH`'s flags become it, and its
//! `config.json` records it. The optimizer and schedule are the same typed specs image runs use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::Module;
use ember_data::{TextCorpus, TextSplits, Tokenization, Vocabulary};
use ember_models::{CausalDecoder, CausalDecoderConfig};
use ember_train::{
    DeviceChoice, EvalSplit, LanguageModelling, RoundPlan, RunDir, RunSummary, TrainParts,
    TrainSettings,
};
use serde::Serialize;

use super::{OptimizerSpec, SchedulerSpec, SpecError};

/// The file, in a language-modelling run's folder, that holds its character vocabulary (empty for
/// bytes): `ember sample` decodes with it.
pub const VOCABULARY_FILE: &str = "vocabulary.txt";

/// Where the text comes from and how it becomes tokens.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextDataSpec {
    /// A UTF-8 file (split by position) or a folder of documents (split by document).
    pub path: PathBuf,
    /// Tokens are bytes (vocabulary 256) or the text's characters; `config.json` records
    /// `bytes` or `chars`.
    #[serde(serialize_with = "tokenization_name")]
    pub tokenization: Tokenization,
    /// Validation and test get one part in this many each (20: 5 % each).
    pub holdout_every: usize,
    /// Evaluate on validation (the default) or test.
    pub evaluate: EvalSplit,
    /// Windows of the evaluation split each evaluation reads (consecutive, from its start).
    pub eval_windows: usize,
}

fn tokenization_name<S: serde::Serializer>(t: &Tokenization, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match t {
        Tokenization::Bytes => "bytes",
        Tokenization::Chars => "chars",
    })
}

/// The causal decoder's shape (its vocabulary comes from the data).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DecoderSpec {
    /// Longest sequence the model reads, in tokens (the training windows' length).
    pub context: usize,
    /// Width of the token states (the embedding size).
    pub dim: usize,
    /// Attention heads per block (must divide `dim`).
    pub heads: usize,
    /// Hidden width of each block's MLP.
    pub mlp_dim: usize,
    /// Pre-norm decoder blocks.
    pub blocks: usize,
    /// Whether the head reuses the token embedding.
    pub tie_embeddings: bool,
}

impl DecoderSpec {
    /// The decoder's config for a vocabulary of `vocab_size` tokens.
    pub fn config(&self, vocab_size: usize) -> CausalDecoderConfig {
        CausalDecoderConfig::new(vocab_size)
            .with_context(self.context)
            .with_dim(self.dim)
            .with_heads(self.heads)
            .with_mlp_dim(self.mlp_dim)
            .with_blocks(self.blocks)
            .with_tie_embeddings(self.tie_embeddings)
    }
}

/// A language-modelling run.
#[derive(Clone, Debug)]
pub struct TextRunSpec {
    /// The text and its tokenization and splits.
    pub data: TextDataSpec,
    /// The causal decoder's shape.
    pub model: DecoderSpec,
    /// The optimizer and its hyper-parameters (the root-free methods' batch size is
    /// [`tokens_per_step`](Self::tokens_per_step)).
    pub optimizer: OptimizerSpec,
    /// The learning-rate schedule.
    pub scheduler: SchedulerSpec,
    /// A step budget; `batch_size` counts windows.
    pub train: TrainSettings,
    /// `flex`, `ndarray`, `wgpu`, `wgpu:N` or `wgpu-cpu` ([`DeviceChoice`]).
    pub device: String,
}

#[derive(Serialize)]
struct TextRunConfig<'a> {
    task: &'static str,
    text: &'a TextDataSpec,
    decoder: &'a DecoderSpec,
    optimizer: &'a OptimizerSpec,
    scheduler: &'a SchedulerSpec,
    device: &'a str,
    train: &'a TrainSettings,
    ember_version: &'static str,
}

impl TextRunSpec {
    /// The same run with every seeded part (model initialisation, window draws, PLRS draws,
    /// VAMO/ZO directions) seeded by `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.train.seed = seed;
        self.optimizer = self.optimizer.with_seed(seed);
        self.scheduler = self.scheduler.with_seed(seed);
        self
    }

    /// Tokens the mean loss of one step averages over (windows × context): the batch size the
    /// root-free methods scale their curvature by.
    pub fn tokens_per_step(&self) -> usize {
        self.train.batch_size * self.model.context
    }

    /// Checks everything that can be checked without reading the text, naming the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.device
            .parse::<DeviceChoice>()
            .map_err(|e| SpecError::new("device", e.to_string()))?;
        if self.data.holdout_every < 3 {
            return Err(SpecError::new(
                "holdout_every",
                format!("must be at least 3, got {}", self.data.holdout_every),
            ));
        }
        if self.data.eval_windows == 0 {
            return Err(SpecError::new("eval_windows", "must be at least 1"));
        }
        // The vocabulary is the data's; any size ≥ 2 checks the shape.
        self.model
            .config(256)
            .validate()
            .map_err(|e| SpecError::new(e.field, e.message))?;
        self.train.validate().map_err(SpecError::from)?;
        self.optimizer.validate()?;
        self.scheduler.validate()
    }

    /// The run's `config.json`.
    pub fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(TextRunConfig {
            task: "language-modelling",
            text: &self.data,
            decoder: &self.model,
            optimizer: &self.optimizer,
            scheduler: &self.scheduler,
            device: &self.device,
            train: &self.train,
            ember_version: env!("CARGO_PKG_VERSION"),
        })
        .expect("a text run spec serialises")
    }

    /// Reads and tokenises the text and builds the decoder (seeded by the run's seed) and the
    /// task: what [`train`](Self::train) starts from, and what a replay kit records.
    ///
    /// # Errors
    /// The text cannot be read or split, or a setting is out of range (naming the field).
    pub fn start(&self) -> anyhow::Result<TextStart> {
        self.validate()?;
        let device_choice: DeviceChoice = self.device.parse()?;
        device_choice.pin_as_default();
        let corpus = TextCorpus::read(&self.data.path)
            .with_context(|| format!("reading the text {}", self.data.path.display()))?;
        let splits = corpus.split(
            self.data.tokenization,
            self.data.holdout_every,
            self.model.context + 1,
        )?;
        tracing::info!(
            "text: {} train / {} validation / {} test tokens, vocabulary {} ({})",
            splits.train.tokens.len(),
            splits.validation.tokens.len(),
            splits.test.tokens.len(),
            splits.vocabulary.size(),
            match self.data.tokenization {
                Tokenization::Bytes => "bytes",
                Tokenization::Chars => "characters",
            }
        );
        let device = device_choice.device()?;
        device.seed(self.train.seed);
        let model: CausalDecoder = self
            .model
            .config(splits.vocabulary.size())
            .init(&device)
            .map_err(|e| SpecError::new(e.field, e.message))?;
        let task = LanguageModelling::new(
            &splits,
            self.data.evaluate,
            self.model.context,
            self.train.batch_size,
            self.train.eval_batch_size,
            self.data.eval_windows,
            self.train.seed,
            &device,
        )
        .map_err(SpecError::from)?;
        let plan = ember_train::Task::plan(&task, &self.train.budget).map_err(SpecError::from)?;
        Ok(TextStart {
            splits,
            device_choice,
            model,
            task,
            plan,
        })
    }

    /// Reads and tokenises the text, builds the decoder (seeded by the run's seed), writes the
    /// vocabulary into the run folder and trains (continuing from the newest checkpoint with
    /// `resume`).
    pub fn train(&self, run: &RunDir, resume: bool) -> anyhow::Result<RunSummary> {
        let TextStart {
            splits,
            device_choice,
            model,
            task,
            plan,
        } = self.start()?;
        let parts = TrainParts {
            model,
            optimizer: self.optimizer.build_rule(self.tokens_per_step())?,
            scheduler: self
                .scheduler
                .build(plan.total_steps(), plan.steps_per_round)?,
            schedule_spans_run: self
                .scheduler
                .spans_run()
                .then(|| self.scheduler.name().to_string()),
        };
        tracing::info!(
            "training a causal decoder ({} parameters) with {} on {device_choice} for {} steps \
             ({} rounds of {}), run folder {}",
            parts.model.num_params(),
            self.optimizer.name(),
            plan.total_steps(),
            plan.rounds,
            plan.steps_per_round,
            run.root().display()
        );
        std::fs::create_dir_all(run.root())
            .with_context(|| format!("creating {}", run.root().display()))?;
        let vocabulary = run.root().join(VOCABULARY_FILE);
        ember_train::write_atomically(&vocabulary, splits.vocabulary.to_text().as_bytes())
            .with_context(|| format!("writing {}", vocabulary.display()))?;
        Ok(ember_train::train(
            run,
            &self.config_json(),
            &self.train,
            &task,
            parts,
            resume,
        )?)
    }
}

/// What a language-modelling run starts from ([`TextRunSpec::start`]).
pub struct TextStart {
    /// The tokenised train, validation and test splits and their vocabulary.
    pub splits: TextSplits,
    /// The spec's `device`, parsed (and pinned as burn's default device).
    pub device_choice: DeviceChoice,
    /// The freshly initialised decoder.
    pub model: CausalDecoder,
    /// The task: training windows drawn by the run's seed, and the evaluation split's windows.
    pub task: LanguageModelling,
    /// How the step budget divides into rounds (evaluations and checkpoints between them).
    pub plan: RoundPlan,
}

/// The vocabulary a language-modelling run trained with, from its folder.
pub fn read_vocabulary(run: &Path) -> anyhow::Result<Vocabulary> {
    let path = run.join(VOCABULARY_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: not a language-modelling run (no vocabulary)",
            path.display()
        )
    })?;
    Ok(Vocabulary::from_text(&text, &path)?)
}
