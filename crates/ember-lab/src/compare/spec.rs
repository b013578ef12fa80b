//! An experiment spec (`experiments/*.toml`): the model, data and training shared by every arm,
//! the seeds, and each arm's optimizer and learning-rate schedule as typed tables:
//!
//! ```toml
//! name = "fashion-mnist-mlp"
//! description = "SGD vs VAMO on an MLP"
//! seeds = [0, 1, 2, 3, 4]
//! reference = "sgd"            # optional: every other arm's difference to it is tested
//! target = { accuracy = 0.8 }  # optional: steps and seconds to reach it ({ loss = 0.5 } also)
//!
//! [model]
//! kind = "mlp"                 # cnn (widths, convs_per_stage), mlp (hidden), transformer (...)
//! hidden = [256]
//!
//! [data]
//! dataset = "fashion-mnist"
//! data_dir = "/usr/share/datasets/fashion-mnist"
//! train_subset = 20000
//! pixel_noise = 0.1            # optional: fixed Gaussian noise on every image (0..1 units)
//!
//! [train]
//! epochs = 3
//! batch_size = 64
//!
//! [[arm]]
//! name = "sgd"
//! optimizer = { name = "sgd", momentum = 0 }
//! scheduler = { name = "constant", lr = 0.05 }
//!
//! [[arm]]
//! name = "vamo"
//! optimizer = { name = "vamo", base = { name = "sgd", momentum = 0 }, vamo = { directions = 2 } }
//! scheduler = { name = "constant", lr = 0.05 }
//!
//! [[arm]]
//! name = "transformer-adamw"
//! pending = "needs a model that does not exist yet"
//! ```
//!
//! A language-modelling comparison names a text instead of a data set, a causal decoder as the
//! model and a step budget (all decoder fields required, `tie_embeddings` optional):
//!
//! ```toml
//! [model]
//! kind = "decoder"
//! context = 64
//! dim = 64
//! heads = 4
//! mlp_dim = 128
//! blocks = 2
//!
//! [data]
//! text = "datasets/local/shakespeare"  # a UTF-8 file or a folder of documents
//! tokenization = "chars"               # optional: chars (default) or bytes
//! holdout_every = 20                   # optional: validation and test get 1/20 each
//! eval_windows = 64                    # optional: windows per evaluation
//!
//! [train]
//! steps = 600
//! eval_every = 100
//! batch_size = 32                      # windows per step
//! ```
//!
//! Text runs are judged by their evaluation loss (lower is better), a sweep chooses on the
//! validation split the text's `holdout_every` holds out, and a target is a `{ loss = … }`.
//!
//! An arm's tables are the types `ember train` builds from its flags ([`OptimizerSpec`],
//! [`SchedulerSpec`]): a table names the variant and the knobs it changes, the rest are that
//! variant's defaults, and an unknown key is refused by name (see [`crate::spec::table`]).

use std::path::{Path, PathBuf};

use ember_data::Tokenization;
use ember_train::{
    is_folder_name, Budget, EvalSplit, NonFinitePolicy, RunDir, Selection, TrainSettings,
};
use serde::Deserialize;
use serde_json::Value;

use super::sweep::{self, Setting, Space, SweepSection};
use crate::spec::{
    AnyRunSpec, DataSpec, DatasetSpec, DecoderSpec, Holdout, ModelSpec, OptimizerSpec, RunSpec,
    SchedulerSpec, TextDataSpec, TextRunSpec,
};

/// An experiment spec, read and checked.
#[derive(Clone, Debug)]
pub struct CompareSpec {
    /// Names the run folders (`<runs>/<name>/<arm>-s<seed>`); letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// One or two sentences for the report.
    pub description: String,
    /// Every arm runs once per seed.
    pub seeds: Vec<u64>,
    /// What every arm trains on: its model and data.
    pub workload: Workload,
    /// The spec's `[train]`: budget, batch sizes and device, shared by every arm.
    pub train: TrainSection,
    /// The spec's `[[arm]]`s, in file order.
    pub arms: Vec<ArmSpec>,
    /// Present for a tuned comparison (see [`super::sweep`]).
    pub sweep: Option<SweepSection>,
    /// The arm every other arm is compared with (differences, tests, cost ratios).
    pub reference: Option<String>,
    /// The evaluation value whose first arrival each run's time is measured to.
    pub target: Option<Target>,
}

/// The model and data an experiment's arms share: images for a classifier, or a text for a causal
/// decoder.
#[derive(Clone, Debug)]
pub enum Workload {
    /// An image classifier, judged by accuracy.
    Images {
        /// The spec's `[model]`: its `kind` and shape.
        model: ModelSpec,
        /// The spec's `[data]`: the data set and what is done to it.
        data: DataSection,
    },
    /// A causal decoder on a text, judged by its evaluation loss.
    Text {
        /// The spec's `[model]` (`kind = "decoder"`): the decoder's shape.
        model: DecoderSpec,
        /// The spec's `[data]`: the text and how it is tokenised and split.
        data: TextSection,
    },
}

impl Workload {
    /// The metric runs are judged and trials chosen by: accuracy for images, loss for text.
    pub fn selection(&self) -> Selection {
        match self {
            Workload::Images { .. } => Selection::accuracy(),
            Workload::Text { .. } => Selection::loss(),
        }
    }

    /// What throughput counts: `images` or `tokens`.
    pub fn item_name(&self) -> &'static str {
        match self {
            Workload::Images { .. } => "images",
            Workload::Text { .. } => "tokens",
        }
    }

    /// The model and data in one line, for report headers.
    pub fn describe(&self) -> String {
        match self {
            Workload::Images { model, data } => format!(
                "Model `{}` {}; data `{}`{}{}{}",
                model.kind(),
                serde_json::to_string(model).expect("specs serialise"),
                data.dataset,
                data.train_subset
                    .map(|n| format!(", first {n} training images"))
                    .unwrap_or_default(),
                data.test_subset
                    .map(|n| format!(", {n} test images"))
                    .unwrap_or_default(),
                data.pixel_noise
                    .filter(|&s| s > 0.0)
                    .map(|s| format!(", pixel noise σ = {s}"))
                    .unwrap_or_default(),
            ),
            Workload::Text { model, data } => format!(
                "Causal decoder {}; text `{}` ({}, validation and test 1/{} each, {} windows of \
                 {} tokens per evaluation)",
                serde_json::to_string(model).expect("specs serialise"),
                data.text,
                data.tokenization_name(),
                data.holdout_every(),
                data.eval_windows(),
                model.context,
            ),
        }
    }
}

/// The text every arm of a language-modelling comparison trains and is evaluated on.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSection {
    /// A UTF-8 file (split by position) or a folder of documents (split by document).
    pub text: String,
    /// `chars` (the default: the corpus's characters) or `bytes`.
    pub tokenization: Option<String>,
    /// Validation and test get one part in this many each [default: 20].
    pub holdout_every: Option<usize>,
    /// Windows of the evaluation split each evaluation reads [default: 64].
    pub eval_windows: Option<usize>,
}

impl TextSection {
    fn tokenization(&self) -> Result<Tokenization, String> {
        match self.tokenization.as_deref() {
            None | Some("chars") => Ok(Tokenization::Chars),
            Some("bytes") => Ok(Tokenization::Bytes),
            Some(other) => Err(format!("`{other}` is not `chars` or `bytes`")),
        }
    }

    fn tokenization_name(&self) -> &str {
        self.tokenization.as_deref().unwrap_or("chars")
    }

    fn holdout_every(&self) -> usize {
        self.holdout_every.unwrap_or(20)
    }

    fn eval_windows(&self) -> usize {
        self.eval_windows.unwrap_or(64)
    }
}

/// `[model]` of a language-modelling comparison: `kind = "decoder"` and the decoder's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecoderTable {
    #[allow(dead_code)]
    kind: String,
    context: usize,
    dim: usize,
    heads: usize,
    mlp_dim: usize,
    blocks: usize,
    #[serde(default)]
    tie_embeddings: bool,
}

/// An evaluation value to reach: `{ accuracy = 0.8 }` (at or above) or `{ loss = 0.5 }` (at or
/// below), on the split the runs evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// `{ accuracy = … }`: reached at or above it (a fraction, e.g. 0.8).
    Accuracy(f64),
    /// `{ loss = … }`: reached at or below it.
    Loss(f64),
}

impl Target {
    /// The evaluation metric it is a value of.
    pub fn metric(self) -> &'static str {
        match self {
            Target::Accuracy(_) => "accuracy",
            Target::Loss(_) => "loss",
        }
    }

    /// The value to reach.
    pub fn value(self) -> f64 {
        match self {
            Target::Accuracy(v) | Target::Loss(v) => v,
        }
    }

    /// Whether an evaluation's `value` of [`Self::metric`] reached it.
    pub fn reached_by(self, value: f64) -> bool {
        match self {
            Target::Accuracy(t) => value >= t,
            Target::Loss(t) => value <= t,
        }
    }

    /// `50.0 % test accuracy` or `loss 1.40`, for report headers.
    pub fn describe(self, split: EvalSplit) -> String {
        match self {
            Target::Accuracy(t) => format!("{:.1} % {split} accuracy", 100.0 * t),
            Target::Loss(t) => format!("{split} loss {t}"),
        }
    }
}

/// The file as written; its free-form tables become typed in [`CompareSpec::load`]. `D` is the
/// `[data]` section's type, chosen before the whole file is read so that toml names the line of
/// a bad data key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile<D> {
    name: String,
    #[serde(default)]
    description: String,
    seeds: Vec<u64>,
    model: serde_json::Value,
    data: D,
    train: TrainSection,
    #[serde(rename = "arm")]
    arms: Vec<ArmFile>,
    sweep: Option<SweepSection>,
    reference: Option<String>,
    target: Option<Target>,
}

impl<D> SpecFile<D> {
    /// The `[data]` section apart from the rest.
    fn split_data(self) -> (SpecFile<()>, D) {
        let file = SpecFile {
            name: self.name,
            description: self.description,
            seeds: self.seeds,
            model: self.model,
            data: (),
            train: self.train,
            arms: self.arms,
            sweep: self.sweep,
            reference: self.reference,
            target: self.target,
        };
        (file, self.data)
    }
}

/// A spec's `[data]`, typed by whether it names a `text`.
enum DataFile {
    Images(DataSection),
    Text(TextSection),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmFile {
    name: String,
    optimizer: Option<Value>,
    scheduler: Option<Value>,
    pending: Option<String>,
    #[serde(default)]
    search: Space,
}

/// The data every arm trains and is evaluated on.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `generated`, `cifar10`, `cifar100`, `fashion-mnist` or `image-folder:PATH`.
    pub dataset: String,
    /// The folder holding the data files [default: `datasets/local`].
    pub data_dir: Option<String>,
    /// Train on the first N training images only; absent: all.
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test images only; absent: all.
    pub test_subset: Option<usize>,
    /// Crop + flip; absent: the data set's default.
    pub augment: Option<bool>,
    /// The standard deviation (0..1 intensity units) of the Gaussian noise added once to every
    /// train and test image; absent or 0 means none.
    pub pixel_noise: Option<f64>,
}

/// The budget (epochs for images; steps for text), batch sizes and device, shared by all arms.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Passes over the training images (image workloads).
    pub epochs: Option<usize>,
    /// Optimizer steps (text workloads).
    pub steps: Option<usize>,
    /// Steps per evaluation and checkpoint (text workloads).
    pub eval_every: Option<usize>,
    /// Images, or windows of text, per step.
    pub batch_size: usize,
    /// Images (or windows) per evaluation batch [default: 256].
    pub eval_batch_size: Option<usize>,
    /// `flex` when absent.
    #[serde(default = "default_device")]
    pub device: String,
    /// A metrics line every this many steps [default: 20].
    pub log_every: Option<usize>,
}

fn default_device() -> String {
    "flex".into()
}

impl TrainSection {
    /// The runs' budget; [`CompareSpec::load`] checked that the workload's fields are there.
    pub fn budget(&self) -> Budget {
        match (self.epochs, self.steps) {
            (Some(epochs), _) => Budget::Epochs { epochs },
            (None, steps) => Budget::Steps {
                steps: steps.unwrap_or(0),
                eval_every: self.eval_every.unwrap_or(0),
            },
        }
    }

    /// Evaluation rounds a finished run has: epochs, or steps / eval_every.
    pub fn rounds(&self) -> usize {
        match self.budget() {
            Budget::Epochs { epochs } => epochs,
            Budget::Steps { steps, eval_every } => steps / eval_every.max(1),
        }
    }

    /// `3 epochs` or `600 steps (evaluated every 100)`, for reports.
    pub fn describe(&self) -> String {
        match self.budget() {
            Budget::Epochs { epochs } => format!("{epochs} epochs"),
            Budget::Steps { steps, eval_every } => {
                format!("{steps} steps (evaluated every {eval_every})")
            }
        }
    }

    /// A report's x axis: `epoch` (a round is one) or `step` (a round is `eval_every` of them).
    pub fn round_axis(&self) -> (&'static str, f64) {
        match self.budget() {
            Budget::Epochs { .. } => ("epoch", 1.0),
            Budget::Steps { eval_every, .. } => ("step", eval_every as f64),
        }
    }

    /// What rounds are called in messages: `epochs` or `evaluation rounds`.
    pub fn round_name(&self) -> &'static str {
        match self.budget() {
            Budget::Epochs { .. } => "epochs",
            Budget::Steps { .. } => "evaluation rounds",
        }
    }

    /// The workload's budget fields present, the other's absent.
    fn check(&self, text: bool) -> Result<(), (String, String)> {
        let bad = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
        if text {
            if self.epochs.is_some() {
                return bad(
                    "train.epochs",
                    "a text workload trains for `steps` (with `eval_every`), not epochs",
                );
            }
            match (self.steps, self.eval_every) {
                (None, _) => return bad("train.steps", "a text workload needs a step budget"),
                (_, None) => {
                    return bad(
                        "train.eval_every",
                        "a text workload needs the steps per evaluation",
                    )
                }
                (Some(steps), Some(every)) if every == 0 || steps == 0 || steps % every != 0 => {
                    return Err((
                        "train.eval_every".into(),
                        format!("{every} must be at least 1 and divide steps = {steps}"),
                    ))
                }
                _ => {}
            }
        } else {
            for (field, value) in [
                ("train.steps", self.steps),
                ("train.eval_every", self.eval_every),
            ] {
                if value.is_some() {
                    return bad(field, "an image workload trains for `epochs`, not steps");
                }
            }
            match self.epochs {
                None => return bad("train.epochs", "an image workload needs `epochs`"),
                Some(0) => return bad("train.epochs", "must be at least 1"),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// One optimizer configuration to compare.
#[derive(Clone, Debug)]
pub struct ArmSpec {
    /// Names the arm in the report and its run folders.
    pub name: String,
    /// What it trains with; `None` only for a pending arm.
    pub choice: Option<ArmChoice>,
    /// Why this arm cannot run yet; it is listed in the report as pending instead of dropped.
    pub pending: Option<String>,
    /// The knobs a sweep searches (empty: the arm runs as written).
    pub search: Space,
}

/// An arm's optimizer and learning-rate schedule, typed, and the tables they were typed from (a
/// sweep writes its knobs into the tables and types them again).
#[derive(Clone, Debug)]
pub struct ArmChoice {
    /// The arm's `optimizer` table, typed (its batch size the run's).
    pub optimizer: OptimizerSpec,
    /// The arm's `scheduler` table, typed.
    pub scheduler: SchedulerSpec,
    tables: Value,
}

impl ArmChoice {
    /// Types `tables` (`{"optimizer": …, "scheduler": …}`) for runs of `batch_size` images a step;
    /// errors name the key path (`optimizer.momentum`).
    fn typed(tables: Value, batch_size: usize) -> Result<Self, crate::spec::table::TableError> {
        Ok(Self {
            optimizer: crate::spec::table::optimizer(&tables["optimizer"], batch_size)?,
            scheduler: crate::spec::table::scheduler(&tables["scheduler"])?,
            tables,
        })
    }

    /// The same arm with a sweep's `setting` written into its tables.
    pub fn with_setting(&self, setting: &Setting, batch_size: usize) -> Result<Self, String> {
        if setting.is_empty() {
            return Ok(self.clone());
        }
        let tables = sweep::space::apply(&self.tables, setting)?;
        Self::typed(tables, batch_size).map_err(|e| e.to_string())
    }
}

/// A spec that cannot be used, naming the file, the field and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: `{field}`: {message}", path.display())]
pub struct CompareSpecError {
    /// The spec file.
    pub path: PathBuf,
    /// The key path at fault, e.g. `train.batch_size` or `arm[0].optimizer.momentum` (`<file>`
    /// or `<toml>` when the file cannot be read or parsed).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl CompareSpec {
    /// Reads and checks the spec at `path`.
    pub fn load(path: &Path) -> Result<Self, CompareSpecError> {
        let fail = |field: &str, message: String| CompareSpecError {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail("<file>", e.to_string()))?;
        // toml names the key and the line; keep its message whole.
        let toml_error = |e: toml::de::Error| fail("<toml>", e.to_string().trim_end().to_string());
        let table: toml::Table = toml::from_str(&text).map_err(toml_error)?;
        let is_text = table.get("data").and_then(|d| d.get("text")).is_some();
        let (file, data) = if is_text {
            let (file, data) = toml::from_str::<SpecFile<TextSection>>(&text)
                .map_err(toml_error)?
                .split_data();
            (file, DataFile::Text(data))
        } else {
            let (file, data) = toml::from_str::<SpecFile<DataSection>>(&text)
                .map_err(toml_error)?
                .split_data();
            (file, DataFile::Images(data))
        };
        Self::from_file(file, data).map_err(|(field, message)| fail(&field, message))
    }

    /// Types the file's tables and checks what types cannot: names usable as folder names,
    /// unique arms and seeds, sizes, every arm's run.
    fn from_file(file: SpecFile<()>, data: DataFile) -> Result<Self, (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_string(), message));
        if file.train.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        let workload = Self::workload(&file.model, data)?;
        let text = matches!(workload, Workload::Text { .. });
        file.train.check(text)?;
        let mut arms = Vec::with_capacity(file.arms.len());
        for (i, arm) in file.arms.into_iter().enumerate() {
            let choice = match (arm.optimizer, arm.scheduler) {
                (Some(optimizer), Some(scheduler)) => Some(
                    ArmChoice::typed(
                        serde_json::json!({"optimizer": optimizer, "scheduler": scheduler}),
                        file.train.batch_size,
                    )
                    .map_err(|e| (format!("arm[{i}].{}", e.key), e.message))?,
                ),
                (None, None) if arm.pending.is_some() => None,
                (optimizer, _) => {
                    let missing = if optimizer.is_none() {
                        "optimizer"
                    } else {
                        "scheduler"
                    };
                    return bad(
                        &format!("arm[{i}].{missing}"),
                        "an arm that is not pending needs an `optimizer` and a `scheduler` table"
                            .into(),
                    );
                }
            };
            if !arm.search.is_empty() && file.sweep.is_none() {
                return bad(
                    &format!("arm[{i}].search"),
                    "a search space needs a [sweep] section".into(),
                );
            }
            for (path, dimension) in &arm.search {
                let field = format!("arm[{i}].search.{path}");
                dimension.validate().map_err(|e| (field.clone(), e))?;
                // Every value a trial may write must make a valid arm.
                if let Some(choice) = &choice {
                    for setting in
                        sweep::space::settings(&[(path.clone(), dimension.clone())].into(), 2, 0)
                    {
                        choice
                            .with_setting(&setting, file.train.batch_size)
                            .map_err(|e| (field.clone(), e))?;
                    }
                }
            }
            arms.push(ArmSpec {
                name: arm.name,
                choice,
                pending: arm.pending,
                search: arm.search,
            });
        }
        if let Some(sweep) = &file.sweep {
            if sweep.trials == 0 {
                return bad("sweep.trials", "must be at least 1".into());
            }
            match (sweep.validation, text) {
                (Some(_), true) => {
                    return bad(
                        "sweep.validation",
                        "a text workload validates on the split `data.holdout_every` holds out"
                            .into(),
                    )
                }
                (None, false) => {
                    return bad(
                        "sweep.validation",
                        "the number of training images to hold out for validation".into(),
                    )
                }
                (Some(0), false) => {
                    return bad("sweep.validation", "must be at least 1".into());
                }
                _ => {}
            }
            if text && sweep.target_accuracy.is_some() {
                return bad(
                    "sweep.target_accuracy",
                    "a text workload has no accuracy: name a `target = { loss = … }`".into(),
                );
            }
            if let Some(t) = sweep.target_accuracy {
                if !(t > 0.0 && t <= 1.0) {
                    return bad(
                        "sweep.target_accuracy",
                        format!("must be an accuracy in (0, 1], got {t}"),
                    );
                }
            }
        }
        let spec = CompareSpec {
            name: file.name,
            description: file.description,
            seeds: file.seeds,
            workload,
            train: file.train,
            arms,
            sweep: file.sweep,
            reference: file.reference,
            target: file.target,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Types `[model]` against `[data]`: a text trains a `decoder`, images any other model.
    fn workload(model: &Value, data: DataFile) -> Result<Workload, (String, String)> {
        let is_decoder = model.get("kind").and_then(Value::as_str) == Some("decoder");
        let data = match (data, is_decoder) {
            (DataFile::Images(data), false) => {
                return Ok(Workload::Images {
                    model: crate::spec::table::model(model).map_err(|e| (e.key, e.message))?,
                    data,
                })
            }
            (DataFile::Images(_), true) => {
                return Err((
                    "model.kind".into(),
                    "a `decoder` trains on a text: name it as `data.text`".into(),
                ))
            }
            (DataFile::Text(_), false) => {
                return Err((
                    "model.kind".into(),
                    "a text workload trains a `decoder`".into(),
                ))
            }
            (DataFile::Text(data), true) => data,
        };
        let table: DecoderTable = serde_json::from_value(model.clone())
            .map_err(|e| ("model".to_string(), e.to_string()))?;
        data.tokenization()
            .map_err(|e| ("data.tokenization".to_string(), e))?;
        Ok(Workload::Text {
            model: DecoderSpec {
                context: table.context,
                dim: table.dim,
                heads: table.heads,
                mlp_dim: table.mlp_dim,
                blocks: table.blocks,
                tie_embeddings: table.tie_embeddings,
            },
            data,
        })
    }

    /// The metric runs are judged and trials chosen by.
    pub fn selection(&self) -> Selection {
        self.workload.selection()
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_string(), message));
        if !is_folder_name(&self.name) {
            return bad(
                "name",
                format!(
                    "`{}` must be a non-empty folder name (letters, digits, -, _, .)",
                    self.name
                ),
            );
        }
        if self.seeds.is_empty() {
            return bad("seeds", "needs at least one seed".into());
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            return bad("seeds", format!("{:?} repeats a seed", self.seeds));
        }
        for (field, value) in [
            ("train.eval_batch_size", self.train.eval_batch_size),
            ("train.log_every", self.train.log_every),
        ] {
            if value == Some(0) {
                return bad(field, "must be at least 1 when given".into());
            }
        }
        if self.arms.is_empty() {
            return bad("arm", "needs at least one [[arm]]".into());
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if !is_folder_name(&arm.name) {
                return bad(
                    &format!("arm[{i}].name"),
                    format!(
                        "`{}` must be a non-empty folder name (letters, digits, -, _, .)",
                        arm.name
                    ),
                );
            }
            if self.arms[..i].iter().any(|a| a.name == arm.name) {
                return bad(
                    &format!("arm[{i}].name"),
                    format!("`{}` names two arms", arm.name),
                );
            }
        }
        if let Some(reference) = &self.reference {
            if !self.runnable_arms().any(|a| &a.name == reference) {
                let names: Vec<&str> = self.runnable_arms().map(|a| a.name.as_str()).collect();
                return bad(
                    "reference",
                    format!(
                        "`{reference}` is not an arm that runs (arms: {})",
                        names.join(", ")
                    ),
                );
            }
        }
        match self.target {
            Some(Target::Accuracy(_)) if matches!(self.workload, Workload::Text { .. }) => {
                return bad(
                    "target.accuracy",
                    "a text workload has no accuracy: name a `{ loss = … }`".into(),
                );
            }
            Some(Target::Accuracy(t)) if !(t > 0.0 && t <= 1.0) => {
                return bad(
                    "target.accuracy",
                    format!("must be an accuracy in (0, 1], got {t}"),
                );
            }
            Some(Target::Loss(t)) if !(t.is_finite() && t > 0.0) => {
                return bad("target.loss", format!("must be a positive loss, got {t}"));
            }
            _ => {}
        }
        // Everything a run checks before loading data, for one seed of the first runnable arm
        // (the shared sections) and every arm's own tables.
        if let Workload::Images { data, .. } = &self.workload {
            if let Err(e) = data.dataset.parse::<DatasetSpec>() {
                return bad("data.dataset", e.to_string());
            }
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if arm.choice.is_some() {
                let run = match self.unchecked_run(
                    arm,
                    &Setting::new(),
                    self.seeds[0],
                    EvalSplit::Test,
                ) {
                    Ok(run) => run,
                    Err(e) => return bad(&format!("arm[{i}]"), format!("{e:#}")),
                };
                if let Err(e) = run.validate() {
                    return bad(&spec_field(i, e.field), e.message);
                }
            }
        }
        Ok(())
    }

    /// The arms that run (not pending).
    pub fn runnable_arms(&self) -> impl Iterator<Item = &ArmSpec> {
        self.arms.iter().filter(|a| a.pending.is_none())
    }

    /// The run of `arm` with `seed` and a sweep's chosen `setting` (empty: the arm as written):
    /// the shared sections, the arm's tables, the seed; no progress bar; in a sweep, trained on
    /// the training set less the validation split and evaluated on the test set. An arm that is
    /// pending, or whose setting does not give a valid optimizer, is an error naming the arm.
    pub fn run_spec(
        &self,
        arm: &ArmSpec,
        seed: u64,
        setting: &Setting,
    ) -> anyhow::Result<AnyRunSpec> {
        self.run_with(arm, setting, seed, EvalSplit::Test)
    }

    /// The run of one sweep trial of `arm`: the first seed, evaluated on the validation split.
    pub fn trial_spec(&self, arm: &ArmSpec, setting: &Setting) -> anyhow::Result<AnyRunSpec> {
        self.run_with(arm, setting, self.seeds[0], EvalSplit::Validation)
    }

    /// [`Self::unchecked_run`], checked: an error names the arm and the spec field.
    fn run_with(
        &self,
        arm: &ArmSpec,
        setting: &Setting,
        seed: u64,
        evaluate: EvalSplit,
    ) -> anyhow::Result<AnyRunSpec> {
        let run = self.unchecked_run(arm, setting, seed, evaluate)?;
        // Checked here, not only when the file was read: a sweep's chosen setting lands in the
        // tables after that.
        run.validate().map_err(|e| {
            let index = self
                .arms
                .iter()
                .position(|a| a.name == arm.name)
                .unwrap_or(0);
            anyhow::anyhow!(
                "arm `{}`: `{}`: {}",
                arm.name,
                spec_field(index, e.field),
                e.message
            )
        })?;
        Ok(run)
    }

    /// The run of `arm` with `setting` and `seed`, evaluated on `evaluate` in a sweep (else on
    /// test), before [`AnyRunSpec::validate`].
    fn unchecked_run(
        &self,
        arm: &ArmSpec,
        setting: &Setting,
        seed: u64,
        evaluate: EvalSplit,
    ) -> anyhow::Result<AnyRunSpec> {
        let choice = arm
            .choice
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("arm `{}` is pending", arm.name))?
            .with_setting(setting, self.train.batch_size)
            .map_err(|e| anyhow::anyhow!("arm `{}`: {e}", arm.name))?;
        let evaluate = if self.sweep.is_some() {
            evaluate
        } else {
            EvalSplit::Test
        };
        let train = TrainSettings {
            budget: self.train.budget(),
            batch_size: self.train.batch_size,
            eval_batch_size: self.train.eval_batch_size.unwrap_or(256),
            seed,
            log_every: self.train.log_every.unwrap_or(20),
            progress: false,
            on_nonfinite: NonFinitePolicy::default(),
        };
        let (model, data) = match &self.workload {
            Workload::Images { model, data } => (model, data),
            Workload::Text { model, data } => {
                return Ok(AnyRunSpec::Text(
                    TextRunSpec {
                        data: TextDataSpec {
                            path: data.text.clone().into(),
                            tokenization: data.tokenization().map_err(anyhow::Error::msg)?,
                            holdout_every: data.holdout_every(),
                            evaluate,
                            eval_windows: data.eval_windows(),
                        },
                        model: model.clone(),
                        optimizer: choice.optimizer,
                        scheduler: choice.scheduler,
                        train,
                        device: self.train.device.clone(),
                    }
                    .with_seed(seed),
                ));
            }
        };
        let dataset = data
            .dataset
            .parse()
            .map_err(|e| anyhow::anyhow!("data.dataset `{}`: {e}", data.dataset))?;
        let run = RunSpec {
            model: model.clone(),
            data: DataSpec {
                dataset,
                data_dir: data.data_dir.as_deref().unwrap_or("datasets/local").into(),
                download: false,
                train_subset: data.train_subset,
                test_subset: data.test_subset,
                augment: data.augment,
                pixel_noise: data.pixel_noise.unwrap_or(0.0),
                validation: self
                    .sweep
                    .as_ref()
                    .and_then(|s| s.validation.map(|size| Holdout { size, seed: s.seed })),
                evaluate,
            },
            optimizer: choice.optimizer,
            scheduler: choice.scheduler,
            train,
            device: self.train.device.clone(),
        }
        .with_seed(seed);
        Ok(AnyRunSpec::Image(run))
    }

    /// The run folder of `arm` with `seed` under `runs_dir`.
    pub fn run_dir(&self, runs_dir: &Path, arm: &ArmSpec, seed: u64) -> RunDir {
        RunDir::new(
            runs_dir
                .join(&self.name)
                .join(format!("{}-s{seed}", arm.name)),
        )
    }
}

/// Where in a spec file the field a run's check names lies, for arm `index`.
fn spec_field(index: usize, field: &str) -> String {
    match field {
        "device" => "train.device".to_string(),
        "pixel_noise" | "train_subset" | "test_subset" | "holdout_every" | "eval_windows" => {
            format!("data.{field}")
        }
        "context" | "dim" | "heads" | "mlp_dim" | "blocks" => format!("model.{field}"),
        "batch_size" | "eval_batch_size" | "epochs" | "steps" | "eval_every" | "log_every" => {
            format!("train.{field}")
        }
        "lr" | "min_lr" | "max_lr" | "step_epochs" | "gamma" => {
            format!("arm[{index}].scheduler.{field}")
        }
        field => format!("arm[{index}].optimizer.{field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "demo"
seeds = [0, 1]
[model]
kind = "cnn"
widths = [8, 16]
[data]
dataset = "generated"
train_subset = 128
[train]
epochs = 2
batch_size = 32
[[arm]]
name = "sgd"
optimizer = { name = "sgd", momentum = 0.9 }
scheduler = { name = "constant", lr = 0.05 }
[[arm]]
name = "vamo"
optimizer = { name = "vamo", base = { name = "rf-rmsprop" }, vamo = { directions = 2 } }
scheduler = { name = "plrs", min_lr = 0.01, max_lr = 0.05 }
[[arm]]
name = "later"
pending = "needs a model that does not exist yet"
"#;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("spec.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_final_run_that_cannot_be_built_is_an_error_naming_arm_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CompareSpec::load(&write(dir.path(), SPEC)).unwrap();
        // A setting whose value the optimizer refuses (a sweep's choice written into the tables)
        // must fail the final run loudly: it used to be skipped without a word.
        let setting = Setting::from([("optimizer.momentum".to_string(), -1.0)]);
        let err = spec.run_spec(&spec.arms[0], 0, &setting).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("arm `sgd`") && text.contains("momentum"),
            "{text}"
        );
        assert!(spec.run_spec(&spec.arms[0], 0, &Setting::new()).is_ok());
    }

    #[test]
    fn bad_specs_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (SPEC.replace("epochs = 2", "epoch = 2"), "epoch"),
            (SPEC.replace("seeds = [0, 1]", "seeds = [0, 0]"), "seeds"),
            (
                SPEC.replace("name = \"later\"", "name = \"sgd\""),
                "arm[2].name",
            ),
            (SPEC.replace("name = \"demo\"", "name = \"a/b\""), "name"),
            (
                SPEC.replace(
                    "train_subset = 128",
                    "train_subset = 128\npixel_noise = -0.1",
                ),
                "data.pixel_noise",
            ),
            (
                SPEC.replace("batch_size = 32", "batch_size = -1"),
                "batch_size",
            ),
            (
                SPEC.replace("scheduler = { name = \"constant\", lr = 0.05 }", ""),
                "arm[0].scheduler",
            ),
            (
                SPEC.replace("momentum = 0.9 }", "momentum = 1.5 }"),
                "arm[0].optimizer.momentum",
            ),
            (
                SPEC.replace("momentum = 0.9 }", "momentun = 0.9 }"),
                "arm[0].optimizer",
            ),
            (
                SPEC.replace("lr = 0.05 }", "lr = -1 }"),
                "arm[0].scheduler.lr",
            ),
            (SPEC.replace("widths = [8, 16]", "width = [8]"), "model"),
            (
                SPEC.replace("batch_size = 32", "batch_size = 32\ndevice = \"tpu\""),
                "train.device",
            ),
        ];
        for (text, field) in cases {
            let err = CompareSpec::load(&write(dir.path(), &text)).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("spec.toml"), "{message}");
            assert!(message.contains(field), "expected `{field}` in: {message}");
        }
        let err = CompareSpec::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(err.to_string().contains("missing.toml"));
    }

    /// A change to the spec format must not strand the committed experiments.
    #[test]
    fn every_committed_experiment_spec_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                CompareSpec::load(&path).unwrap_or_else(|e| panic!("{e}"));
                loaded += 1;
            }
        }
        assert!(loaded >= 10, "{loaded} specs in {}", dir.display());
    }

    const TEXT_SPEC: &str = r#"
name = "lm"
seeds = [0, 1]
reference = "adamw"
target = { loss = 2.0 }
[model]
kind = "decoder"
context = 32
dim = 16
heads = 2
mlp_dim = 32
blocks = 1
[data]
text = "corpus"
[train]
steps = 40
eval_every = 10
batch_size = 8
[sweep]
trials = 2
[[arm]]
name = "adamw"
optimizer = { name = "adamw" }
scheduler = { name = "cosine", lr = 3e-3, warmup_steps = 5 }
search = { "scheduler.lr" = { grid = [1e-3, 3e-3] } }
"#;

    #[test]
    fn a_text_spec_becomes_language_modelling_runs_judged_by_loss() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CompareSpec::load(&write(dir.path(), TEXT_SPEC)).unwrap();
        assert_eq!(spec.selection(), Selection::loss());
        assert_eq!(
            (spec.train.rounds(), spec.train.round_axis()),
            (4, ("step", 10.0))
        );
        let trial = spec
            .trial_spec(
                &spec.arms[0],
                &Setting::from([("scheduler.lr".into(), 1e-3)]),
            )
            .unwrap();
        let AnyRunSpec::Text(trial) = trial else {
            panic!("{trial:?}")
        };
        assert_eq!(trial.data.evaluate, EvalSplit::Validation);
        assert_eq!(
            (trial.data.holdout_every, trial.data.eval_windows),
            (20, 64)
        );
        assert_eq!(trial.scheduler.lr(), 1e-3);
        assert_eq!(
            trial.train.budget,
            Budget::Steps {
                steps: 40,
                eval_every: 10
            }
        );
        let AnyRunSpec::Text(last) = spec.run_spec(&spec.arms[0], 1, &Setting::new()).unwrap()
        else {
            panic!("an image run from a text spec")
        };
        assert_eq!((last.data.evaluate, last.train.seed), (EvalSplit::Test, 1));
    }

    #[test]
    fn bad_text_specs_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                TEXT_SPEC.replace("steps = 40\neval_every = 10", "epochs = 2"),
                "train.epochs",
            ),
            (
                TEXT_SPEC.replace("eval_every = 10", "eval_every = 15"),
                "train.eval_every",
            ),
            (
                TEXT_SPEC.replace("eval_every = 10\n", ""),
                "train.eval_every",
            ),
            (
                TEXT_SPEC.replace("[sweep]\n", "[sweep]\nvalidation = 100\n"),
                "sweep.validation",
            ),
            (
                TEXT_SPEC.replace("{ loss = 2.0 }", "{ accuracy = 0.5 }"),
                "target.accuracy",
            ),
            (
                TEXT_SPEC.replace("kind = \"decoder\"", "kind = \"mlp\""),
                "model.kind",
            ),
            (TEXT_SPEC.replace("blocks = 1\n", ""), "model"),
            (TEXT_SPEC.replace("heads = 2", "heads = 3"), "model.heads"),
            (
                TEXT_SPEC.replace(
                    "text = \"corpus\"",
                    "text = \"corpus\"\ntokenization = \"words\"",
                ),
                "data.tokenization",
            ),
            (
                TEXT_SPEC.replace("text = \"corpus\"", "text = \"corpus\"\nholdout_every = 1"),
                "data.holdout_every",
            ),
            (
                TEXT_SPEC.replace("text = \"corpus\"", "dataset = \"cifar10\""),
                "model.kind",
            ),
        ];
        for (text, field) in cases {
            let err = CompareSpec::load(&write(dir.path(), &text)).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }
}
