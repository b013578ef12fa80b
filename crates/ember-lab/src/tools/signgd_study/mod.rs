//! The SignGD training-dynamics study (ALGORITHMS.md §5; Li et al., ICLR 2025): full-batch training
//! of [`SignalNoiseAttention`] on the signal–noise data with SignGD, Adam and GD at several SNRs,
//! logging every step's probes, then finding the theory's four stages and the loss rates.
//!
//! Every arm at one SNR starts from the same data and the same initial weights, so differences
//! between arms are the optimizers' alone.

mod report;
mod stages;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use ember_data::{DataError, SignalNoiseConfig, SignalNoiseSet, SIGNAL_NOISE_PATCHES};
use ember_models::{ModelConfigError, Probes, SignalNoiseAttention, SignalNoiseAttentionConfig};
use ember_optim::SignGdConfig;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use ember_train::AtomicFile;

use crate::report::plot::PlotError;
use crate::spec::{OptimizerSpec, SpecError};

pub use report::{render_results, write_report};
pub use stages::{
    detect_stages, loss_rate, LossRate, Stages, StepSummary, NOISE_AGREEMENT,
    NOISE_TO_SIGNAL_ATTENTION,
};

/// Why the study could not run or report.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A study setting is out of range.
    #[error("invalid study setting `{field}`: {message}")]
    Config {
        /// The setting's name, e.g. `snrs` or `steps`.
        field: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// The signal–noise data could not be generated.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The attention model's config is invalid.
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    /// An arm's optimizer is invalid or cannot be built.
    #[error(transparent)]
    Optimizer(#[from] SpecError),
    /// A plot could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// A trace or report file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StudyError + '_ {
    move |source| StudyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One optimizer of the study with its learning rate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyArm {
    /// Short name used in file names, legends and tables.
    pub name: String,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerSpec,
    /// Its constant learning rate.
    pub lr: f64,
}

impl StudyArm {
    /// SignGD, Adam (β = 0.9, 0.999), Adam with small β (`small_beta` for both β₁ and β₂, the
    /// regime in which the paper relates Adam to SignGD) and plain GD.
    pub fn paper_arms(lr_sign: f64, lr_adam: f64, small_beta: f64, lr_gd: f64) -> Vec<StudyArm> {
        let adam = |beta_1, beta_2| OptimizerSpec::Adam {
            beta_1,
            beta_2,
            epsilon: 1e-8,
            weight_decay: 0.0,
        };
        vec![
            StudyArm {
                name: "signgd".into(),
                optimizer: OptimizerSpec::SignGd(SignGdConfig::new()),
                lr: lr_sign,
            },
            StudyArm {
                name: "adam".into(),
                optimizer: adam(0.9, 0.999),
                lr: lr_adam,
            },
            StudyArm {
                name: "adam-small-beta".into(),
                optimizer: adam(small_beta, small_beta),
                lr: lr_adam,
            },
            StudyArm {
                name: "gd".into(),
                optimizer: OptimizerSpec::Sgd {
                    momentum: 0.0,
                    nesterov: false,
                    weight_decay: 0.0,
                },
                lr: lr_gd,
            },
        ]
    }
}

/// Everything the study runs: data model, attention model, arms, SNRs and steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignGdStudyConfig {
    /// Patch dimension d.
    pub dim: usize,
    /// Training samples n (full batch).
    pub train_size: usize,
    /// Fresh samples for the test loss.
    pub test_size: usize,
    /// Non-zero noise coordinates s.
    pub noise_nonzeros: usize,
    /// ‖μ‖.
    pub signal_norm: f64,
    /// Each SNR = ‖μ‖/(σ_p √s) runs every arm (σ_p follows).
    pub snrs: Vec<f64>,
    /// m_k.
    pub key_width: usize,
    /// m_v.
    pub value_width: usize,
    /// σ₀.
    pub init_std: f64,
    /// Full-batch steps per run.
    pub steps: usize,
    /// Seeds the data and the initial weights.
    pub seed: u64,
    /// The optimizers run at every SNR (e.g. [`StudyArm::paper_arms`]).
    pub arms: Vec<StudyArm>,
}

impl SignGdStudyConfig {
    /// The data model at one SNR.
    pub fn data(&self, snr: f64) -> SignalNoiseConfig {
        SignalNoiseConfig {
            dim: self.dim,
            train_size: self.train_size,
            test_size: self.test_size,
            noise_nonzeros: self.noise_nonzeros,
            signal_norm: self.signal_norm,
            noise_std: 1.0,
            seed: self.seed,
        }
        .with_snr(snr)
    }

    /// The attention model.
    pub fn model(&self) -> SignalNoiseAttentionConfig {
        SignalNoiseAttentionConfig::new(self.dim)
            .with_key_width(self.key_width)
            .with_value_width(self.value_width)
            .with_init_std(self.init_std)
    }

    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<(), StudyError> {
        let bad = |field, message: String| Err(StudyError::Config { field, message });
        if self.snrs.is_empty() {
            return bad("snrs", "needs at least one SNR".into());
        }
        if let Some(snr) = self.snrs.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return bad(
                "snrs",
                format!("every SNR must be finite and positive, got {snr}"),
            );
        }
        if self.steps == 0 {
            return bad("steps", "must be at least 1".into());
        }
        if self.arms.is_empty() {
            return bad("arms", "needs at least one optimizer".into());
        }
        for arm in &self.arms {
            if !(arm.lr.is_finite() && arm.lr > 0.0) {
                return bad(
                    "lr",
                    format!(
                        "arm `{}`: must be finite and positive, got {}",
                        arm.name, arm.lr
                    ),
                );
            }
            if arm.name.is_empty() || arm.name.contains(['/', '\\']) {
                return bad(
                    "name",
                    format!(
                        "arm name {:?} must be non-empty and fit in a file name",
                        arm.name
                    ),
                );
            }
            arm.optimizer.validate()?;
        }
        self.data(self.snrs[0]).validate()?;
        self.model().validate()?;
        Ok(())
    }
}

/// One arm at one SNR: its trace and what was found in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyRun {
    /// The arm's name.
    pub arm: String,
    /// The signal-to-noise ratio ‖μ‖/(σ_p √s) of its data.
    pub snr: f64,
    /// Where each of the theory's four stages begins.
    pub stages: Stages,
    /// How the training loss falls: exponential or power-law fits.
    pub loss_rate: LossRate,
    /// Wall time of the arm's training and probing, seconds.
    pub wall_time_s: f64,
    /// Every step's summary (step 0 is the initialisation).
    pub trace: Vec<StepSummary>,
}

impl StudyRun {
    /// The last step's summary.
    pub fn last(&self) -> &StepSummary {
        self.trace
            .last()
            .expect("a run has at least its initial step")
    }
}

/// One line of a run's `<arm>.jsonl`: the step's losses and every probe.
#[derive(Serialize)]
struct ProbeRecord<'a> {
    step: usize,
    train_loss: f64,
    test_loss: f64,
    test_accuracy: f64,
    #[serde(flatten)]
    probes: &'a Probes,
}

/// A data set as tensors on `device`.
struct Tensors {
    inputs: Tensor<3>,
    labels: Tensor<1>,
}

impl Tensors {
    fn new(set: &SignalNoiseSet, device: &Device) -> Self {
        let shape = [set.len(), SIGNAL_NOISE_PATCHES, set.dim()];
        Self {
            inputs: Tensor::from_data(TensorData::new(set.inputs().to_vec(), shape), device),
            labels: Tensor::from_data(TensorData::new(set.labels().to_vec(), [set.len()]), device),
        }
    }
}

/// Mean logistic loss and accuracy (sign of f against y) of `model` on a set.
fn evaluate(model: &SignalNoiseAttention, set: &Tensors) -> (f64, f64) {
    let margins = model.forward(set.inputs.clone()).mul(set.labels.clone());
    let n = set.labels.dims()[0] as f64;
    let loss = burn::tensor::activation::softplus(margins.clone().neg(), 1.0)
        .mean()
        .into_scalar::<f32>() as f64;
    let correct = margins.greater_elem(0.0).int().sum().into_scalar::<i64>() as f64;
    (loss, correct / n)
}

/// Runs every arm at every SNR on `device` (an autodiff device, as [`crate::DeviceChoice::device`]
/// gives), writing each run's per-step probes to
/// `traces_dir/snr-<snr>/<arm>.jsonl`.
pub fn run_signgd_study(
    config: &SignGdStudyConfig,
    device: &Device,
    traces_dir: &Path,
    progress: bool,
) -> Result<Vec<StudyRun>, StudyError> {
    config.validate()?;
    let total = (config.snrs.len() * config.arms.len() * config.steps) as u64;
    let target = if progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps, eta {eta}")
            .expect("valid template"),
    );
    let mut runs = Vec::new();
    for &snr in &config.snrs {
        let split = config.data(snr).generate()?;
        let plain = device.clone().inner();
        let train = Tensors::new(&split.train, &plain);
        let test = Tensors::new(&split.test, &plain);
        let signal =
            Tensor::<1>::from_data(TensorData::new(split.signal.clone(), [config.dim]), &plain);
        device.seed(config.seed);
        let start = config.model().init(device)?;
        let dir = traces_dir.join(format!("snr-{snr}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        for arm in &config.arms {
            bar.set_message(format!("{} at SNR {snr}", arm.name));
            let path = dir.join(format!("{}.jsonl", arm.name));
            let clock = Instant::now();
            let trace = train_arm(config, arm, &start, &train, &test, &signal, &path, &bar)?;
            tracing::info!(
                "{} at SNR {snr}: train loss {:.3e}, test loss {:.3}, test accuracy {:.1}% after {} steps ({:.1}s)",
                arm.name,
                trace.last().map_or(f64::NAN, |s| s.train_loss),
                trace.last().map_or(f64::NAN, |s| s.test_loss),
                100.0 * trace.last().map_or(f64::NAN, |s| s.test_accuracy),
                config.steps,
                clock.elapsed().as_secs_f64()
            );
            runs.push(StudyRun {
                arm: arm.name.clone(),
                snr,
                stages: detect_stages(&trace),
                loss_rate: loss_rate(&trace),
                wall_time_s: clock.elapsed().as_secs_f64(),
                trace,
            });
        }
    }
    bar.finish_and_clear();
    Ok(runs)
}

/// Full-batch training of one arm from `start`, probing before every step and after the last.
#[allow(clippy::too_many_arguments)]
fn train_arm(
    config: &SignGdStudyConfig,
    arm: &StudyArm,
    start: &SignalNoiseAttention,
    train: &Tensors,
    test: &Tensors,
    signal: &Tensor<1>,
    path: &Path,
    bar: &ProgressBar,
) -> Result<Vec<StepSummary>, StudyError> {
    let autodiff = Tensors {
        inputs: train.inputs.clone().autodiff(),
        labels: train.labels.clone().autodiff(),
    };
    let mut model = start.clone();
    let mut optimizer = arm.optimizer.build(config.train_size)?;
    // Written atomically: the trace appears at `path` complete, or not at all.
    let mut out = AtomicFile::create(path).map_err(io(path))?;
    let mut trace = Vec::with_capacity(config.steps + 1);
    for step in 0..=config.steps {
        let current = model.valid();
        let probes = current.probe(train.inputs.clone(), train.labels.clone(), signal.clone());
        let (train_loss, _) = evaluate(&current, train);
        let (test_loss, test_accuracy) = evaluate(&current, test);
        let record = ProbeRecord {
            step,
            train_loss,
            test_loss,
            test_accuracy,
            probes: &probes,
        };
        serde_json::to_writer(&mut out, &record).map_err(|e| io(path)(e.into()))?;
        out.write_all(b"\n").map_err(io(path))?;
        trace.push(StepSummary::new(
            step,
            [train_loss, test_loss, test_accuracy],
            &probes,
        ));
        if step == config.steps {
            break;
        }
        let loss = model.logistic_loss(autodiff.inputs.clone(), autodiff.labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(arm.lr, model, grads);
        bar.inc(1);
    }
    out.commit().map_err(io(path))?;
    Ok(trace)
}
