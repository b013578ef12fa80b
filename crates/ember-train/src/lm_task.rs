//! Language modelling as a [`Task`]: next-token cross-entropy of a [`CausalDecoder`] on context
//! windows of a tokenised text, a step budget with an evaluation every `eval_every` steps on a
//! fixed set of held-out windows, validation loss (lower is better) as the selection metric, and
//! bits per byte or character and perplexity beside it.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use ember_data::{TextSplits, TokenSplit, Tokenization};
use ember_models::CausalDecoder;

use crate::task::{BatchPosition, Budget, Fingerprint, RoundPlan, Task};
use crate::{EvalSplit, Evaluation, Selection, SettingsError};

/// Windows of token ids and the tokens that follow each, on the training device.
#[derive(Clone, Debug)]
pub struct TokenBatch {
    /// `[batch, context]`.
    pub inputs: Tensor<2, Int>,
    /// `[batch, context]`: `inputs` shifted by one token.
    pub targets: Tensor<2, Int>,
}

/// Next-token prediction on `splits`: training windows drawn from `(seed, step)`, evaluation on
/// up to `eval_windows` consecutive windows of the validation (or test) split.
pub struct LanguageModelling {
    train: TokenSplit,
    eval: TokenSplit,
    eval_split: EvalSplit,
    eval_starts: Vec<usize>,
    tokenization: Tokenization,
    batch_size: usize,
    eval_batch_size: usize,
    context: usize,
    seed: u64,
    device: Device,
    fingerprint: String,
    loss: CrossEntropyLoss,
}

impl LanguageModelling {
    /// The task on `splits`, evaluated on `eval_split`'s first `eval_windows` windows.
    ///
    /// # Errors
    ///
    /// A size of 0, or an evaluation split without one whole window, naming the field.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        splits: &TextSplits,
        eval_split: EvalSplit,
        context: usize,
        batch_size: usize,
        eval_batch_size: usize,
        eval_windows: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, SettingsError> {
        for (field, value) in [
            ("context", context),
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("eval_windows", eval_windows),
        ] {
            if value == 0 {
                return Err(SettingsError::new(field, "must be at least 1"));
            }
        }
        let eval = match eval_split {
            EvalSplit::Validation => splits.validation.clone(),
            EvalSplit::Test => splits.test.clone(),
        };
        let eval_starts = eval.eval_window_starts(context, eval_windows);
        if eval_starts.is_empty() {
            return Err(SettingsError::new(
                "context",
                format!(
                    "the {eval_split} split ({} tokens) holds no window of {context} tokens and \
                     its next token",
                    eval.tokens.len()
                ),
            ));
        }
        let mut hash = Fingerprint::default();
        for split in [&splits.train, &eval] {
            hash.word(split.tokens.len() as u64);
            for &t in &split.tokens {
                hash.word(u64::from(t));
            }
        }
        hash.word(splits.vocabulary.size() as u64);
        Ok(Self {
            train: splits.train.clone(),
            eval,
            eval_split,
            eval_starts,
            tokenization: splits.vocabulary.tokenization(),
            batch_size,
            eval_batch_size,
            context,
            seed,
            device: device.clone(),
            fingerprint: hash.hex(),
            loss: CrossEntropyLossConfig::new().init(device),
        })
    }

    /// The start offsets of the evaluation windows, in the order evaluation reads them.
    pub fn eval_window_starts(&self) -> &[usize] {
        &self.eval_starts
    }

    /// The tokens of the split evaluation reads (validation or test).
    pub fn eval_tokens(&self) -> &[u32] {
        &self.eval.tokens
    }

    /// The windows starting at `starts` of `split`, as a batch on `device`.
    fn batch(&self, split: &TokenSplit, starts: &[usize], device: &Device) -> TokenBatch {
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        for &start in starts {
            let (x, y) = split.window(start, self.context);
            inputs.extend(x.iter().map(|&t| i64::from(t)));
            targets.extend(y.iter().map(|&t| i64::from(t)));
        }
        let shape = [starts.len(), self.context];
        TokenBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, shape), device),
            targets: Tensor::from_data(TensorData::new(targets, shape), device),
        }
    }

    /// Non-overlapping windows (each with its next token) in the training split; at least 1.
    fn train_windows(&self) -> usize {
        (self.train.tokens.len().saturating_sub(1) / self.context).max(1)
    }

    /// `bits_per_byte` or `bits_per_char`: the loss in bits per token.
    fn bits_metric(&self) -> &'static str {
        match self.tokenization {
            Tokenization::Bytes => "bits_per_byte",
            Tokenization::Chars => "bits_per_char",
        }
    }
}

impl Task for LanguageModelling {
    type Model = CausalDecoder;
    type Batch = TokenBatch;

    fn plan(&self, budget: &Budget) -> Result<RoundPlan, SettingsError> {
        match *budget {
            Budget::Steps { steps, eval_every } => Ok(RoundPlan {
                rounds: steps / eval_every.max(1),
                steps_per_round: eval_every,
            }),
            Budget::Epochs { .. } => Err(SettingsError::new(
                "epochs",
                "language modelling trains for a number of steps, not epochs",
            )),
        }
    }

    fn train_batch(&self, position: BatchPosition) -> TokenBatch {
        let starts =
            self.train
                .train_window_starts(self.seed, position.step, self.batch_size, self.context);
        self.batch(&self.train, &starts, &self.device)
    }

    /// Consecutive non-overlapping windows over the whole training split.
    fn full_batches(&self) -> usize {
        (self.train_windows() / self.batch_size).max(1)
    }

    fn full_batch(&self, index: usize) -> TokenBatch {
        let starts: Vec<usize> = (0..self.batch_size)
            .map(|j| ((index * self.batch_size + j) % self.train_windows()) * self.context)
            .collect();
        self.batch(&self.train, &starts, &self.device)
    }

    fn loss(&self, model: &CausalDecoder, batch: &TokenBatch) -> Tensor<1> {
        mean_loss(&self.loss, model, batch)
    }

    /// Mean next-token loss over the fixed evaluation windows, with bits per token
    /// (`loss / ln 2`) and perplexity (`exp(loss)`), in inference mode.
    fn evaluate(&self, model: &CausalDecoder) -> Evaluation {
        let model = model.valid();
        let device = self.device.clone().inner();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let mut sum = Tensor::<1>::zeros([1], &device);
        for starts in self.eval_starts.chunks(self.eval_batch_size) {
            let batch = self.batch(&self.eval, starts, &device);
            sum = sum.add(mean_loss(&loss_fn, &model, &batch).mul_scalar(starts.len() as f64));
        }
        let loss = sum.into_scalar::<f64>() / self.eval_starts.len() as f64;
        Evaluation {
            split: self.eval_split,
            loss,
            metrics: [
                (
                    self.bits_metric().to_string(),
                    loss / std::f64::consts::LN_2,
                ),
                ("perplexity".to_string(), loss.exp()),
            ]
            .into(),
        }
    }

    fn selection(&self) -> Selection {
        Selection {
            metric: "loss".into(),
            higher_is_better: false,
        }
    }

    fn items_per_batch(&self) -> usize {
        self.batch_size * self.context
    }

    fn item_name(&self) -> &'static str {
        "tokens"
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// The mean next-token cross-entropy of `model` over every position of `batch`.
fn mean_loss(loss: &CrossEntropyLoss, model: &CausalDecoder, batch: &TokenBatch) -> Tensor<1> {
    let logits = model.forward(batch.inputs.clone());
    let [b, t, v] = logits.dims();
    loss.forward(
        logits.reshape([b * t, v]),
        batch.targets.clone().reshape([b * t]),
    )
}
