//! What a run trains on and how it is judged: the one thing that differs between image
//! classification and language modelling. The loop ([`crate::train`]) is the same for both; a new
//! kind of task is a new implementation of [`Task`], not new branches in the loop.

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Evaluation, Selection, SettingsError};

/// How long a run trains, in the unit its task counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Budget {
    /// Passes over the training set, each one round (evaluation and checkpoint after each).
    Epochs {
        /// Passes over the training set.
        epochs: usize,
    },
    /// Optimizer steps, with an evaluation and a checkpoint every `eval_every` of them.
    Steps {
        /// Optimizer steps in the run; a multiple of `eval_every`.
        steps: usize,
        /// Steps per round.
        eval_every: usize,
    },
}

impl Budget {
    /// The budget's size in its own unit (epochs or steps): what a resume may raise.
    pub fn length(&self) -> usize {
        match *self {
            Budget::Epochs { epochs } => epochs,
            Budget::Steps { steps, .. } => steps,
        }
    }

    /// Checks the counts, naming the field.
    ///
    /// # Errors
    ///
    /// A count is 0, or `steps` is not a multiple of `eval_every`.
    pub fn validate(&self) -> Result<(), SettingsError> {
        match *self {
            Budget::Epochs { epochs: 0 } => Err(SettingsError::new("epochs", "must be at least 1")),
            Budget::Steps { steps, eval_every } => {
                if eval_every == 0 {
                    return Err(SettingsError::new("eval_every", "must be at least 1"));
                }
                if steps == 0 || steps % eval_every != 0 {
                    return Err(SettingsError::new(
                        "steps",
                        format!(
                            "must be a positive multiple of eval_every ({eval_every}), got {steps}"
                        ),
                    ));
                }
                Ok(())
            }
            Budget::Epochs { .. } => Ok(()),
        }
    }
}

/// A run's shape: `rounds` rounds of `steps_per_round` optimizer steps, each followed by an
/// evaluation and a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundPlan {
    /// Rounds in the run (epochs, or evaluations for language modelling).
    pub rounds: usize,
    /// Optimizer steps between two evaluations.
    pub steps_per_round: usize,
}

impl RoundPlan {
    /// Optimizer steps in the whole run.
    pub fn total_steps(&self) -> usize {
        self.rounds * self.steps_per_round
    }
}

/// Where a training batch sits in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPosition {
    /// The round (0-based).
    pub round: usize,
    /// The step within the round (0-based).
    pub index: usize,
    /// The step within the run (0-based): `round · steps_per_round + index`.
    pub step: u64,
}

/// A kind of training: what a batch is, the loss, what an evaluation reports and which of its
/// metrics is better when higher or lower.
///
/// Every batch must be a pure function of the run's seed and the batch's [`BatchPosition`], so
/// that a run resumed from a checkpoint sees the batches the uninterrupted run would have.
pub trait Task {
    /// The model trained.
    type Model: Module + 'static;
    /// One batch, on the training device.
    type Batch: Clone;

    /// The rounds and steps `budget` means for this task (an epoch: the training set once).
    ///
    /// # Errors
    ///
    /// A budget this task cannot use, naming the field.
    fn plan(&self, budget: &Budget) -> Result<RoundPlan, SettingsError>;

    /// The training batch at `position` (the loop asks for a round's batches in order).
    fn train_batch(&self, position: BatchPosition) -> Self::Batch;

    /// The number of fixed, un-augmented batches covering the training data, for the snapshot
    /// methods (SVRG, VAMO).
    fn full_batches(&self) -> usize;

    /// Full-data batch `index` (`< full_batches()`), the same every round.
    fn full_batch(&self, index: usize) -> Self::Batch;

    /// The mean loss of `model` on `batch` (a graph is recorded when the model requires
    /// gradients).
    fn loss(&self, model: &Self::Model, batch: &Self::Batch) -> Tensor<1>;

    /// The model evaluated (in inference mode) on the task's evaluation data.
    fn evaluate(&self, model: &Self::Model) -> Evaluation;

    /// The metric runs of this task are judged and selected by.
    fn selection(&self) -> Selection;

    /// What one training batch holds, counted in the task's items (images, tokens), for
    /// throughput.
    fn items_per_batch(&self) -> usize;

    /// The item's name in logs (`images`, `tokens`).
    fn item_name(&self) -> &'static str;

    /// A fingerprint of the training and evaluation data, kept in each checkpoint: resuming on
    /// different data is refused.
    fn fingerprint(&self) -> String;
}

/// 64-bit FNV-1a over 8-byte words, hex: equal inputs give equal fingerprints on every machine.
#[derive(Clone, Debug)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    /// Mixes one word in.
    pub fn word(&mut self, word: u64) {
        self.0 ^= word;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }

    /// Mixes bytes in, eight at a time.
    pub fn bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.word(u64::from(b));
        }
    }

    /// The fingerprint as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}
