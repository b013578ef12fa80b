//! The three measurements, each on one [`Workload`]: the update of every per-parameter optimizer,
//! the whole step of every closure optimizer, and end-to-end training throughput.
//!
//! Candidates compared with each other are timed round-robin (one step of each in every round), so
//! that slow drifts of a shared machine (other processes, thermal state) affect all of them alike
//! and cancel in the ratios to Adam.

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use ember_models::AnyClassifier;
use ember_optim::closure::isolated_copy;
use ember_optim::{Batch, Objective};
use ember_train::{BatchPosition, ImageClassification, PassCounts, StepRule, Task, TaskObjective};

use crate::spec::OptimizerSpec;

use super::report::{EndToEndRow, Median, UpdateRow, WholeStepRow};
use super::workload::{Workload, FULL_DATA_BATCHES};
use super::Settings;

/// The learning rate of every timed step; small, so that no optimizer diverges during the run (an
/// optimizer's cost does not depend on it).
const LR: f64 = 1e-3;

/// burn's Adam with PyTorch's defaults, the baseline of every ratio.
fn adam() -> OptimizerSpec {
    let adam = OptimizerSpec::defaults().remove(0);
    debug_assert_eq!(adam.name(), "adam");
    adam
}

/// The base the closure optimizers step with: SGD + momentum, as their papers use.
fn sgd() -> OptimizerSpec {
    OptimizerSpec::defaults()
        .into_iter()
        .find(|s| s.name() == "sgd")
        .expect("defaults() holds SGD")
}

/// Every per-parameter optimizer with its defaults, then IF-Shampoo and Shampoo again with their
/// factors (inverse roots) updated every second step, the paper's T = 2: T sets their cost, and the
/// steps in between reuse what the last update computed.
fn update_specs() -> Vec<OptimizerSpec> {
    let mut specs = OptimizerSpec::defaults();
    let every_second: Vec<OptimizerSpec> = specs
        .iter()
        .filter_map(|spec| match spec {
            OptimizerSpec::IfShampoo(c) => {
                Some(OptimizerSpec::IfShampoo(c.clone().with_update_every(2)))
            }
            OptimizerSpec::Shampoo(c) => {
                Some(OptimizerSpec::Shampoo(c.clone().with_update_every(2)))
            }
            _ => None,
        })
        .collect();
    specs.extend(every_second);
    specs
}

/// The row label: the optimizer's name, with T for the Kronecker methods.
fn label(spec: &OptimizerSpec) -> String {
    match spec {
        OptimizerSpec::IfShampoo(c) => format!("{} (T = {})", spec.name(), c.update_every),
        OptimizerSpec::Shampoo(c) => format!("{} (T = {})", spec.name(), c.update_every),
        _ => spec.name().into(),
    }
}

/// One optimizer under test and the model it trains.
struct Arm<O> {
    optimizer: O,
    /// `None` only while a step holds it.
    model: Option<AnyClassifier>,
    times: Vec<f64>,
}

impl<O> Arm<O> {
    fn new(optimizer: O, workload: &Workload) -> Self {
        Self {
            optimizer,
            // Its own BatchNorm statistics, so arms do not share running state.
            model: Some(isolated_copy(&workload.model, true)),
            times: Vec::new(),
        }
    }

    fn model(&self) -> &AnyClassifier {
        self.model.as_ref().expect("model is back after every step")
    }

    fn take_model(&mut self) -> AnyClassifier {
        self.model.take().expect("model is back after every step")
    }
}

/// The update of every optimizer of [`update_specs`] on the gradients of one batch,
/// relative to Adam's, and the state each keeps per trainable parameter.
pub fn updates(w: &Workload, s: &Settings) -> anyhow::Result<Vec<UpdateRow>> {
    let specs = update_specs();
    // One gradient of the initial model, reused every step: the update's cost does not depend on
    // the gradient's values, and the forward and backward passes are not what is timed here.
    let (_, grads) = w.objective().gradient(&w.model, Batch::Current);
    let mut arms = specs
        .iter()
        .map(|spec| Ok(Arm::new(spec.build(w.batch_size)?, w)))
        .collect::<anyhow::Result<Vec<Arm<ModuleOptimizer>>>>()?;
    tracing::info!(
        "timing the update of {} optimizers on {} ({}) round-robin",
        arms.len(),
        w.kind.name(),
        w.choice
    );
    for round in 0..s.warmup + s.steps {
        for arm in arms.iter_mut() {
            // A fresh copy each step, owned by the step alone as a real gradient would be (an
            // optimizer may then update it in place).
            let step_grads = copy_of(&grads, arm.model());
            w.sync()?;
            let start = Instant::now();
            let model = arm.take_model();
            arm.model = Some(arm.optimizer.step(LR, model, step_grads));
            w.sync()?;
            if round >= s.warmup {
                arm.times.push(start.elapsed().as_secs_f64());
            }
        }
    }
    let trainable = w.kind.trainable_params() as f64;
    let mut rows: Vec<UpdateRow> = Vec::new();
    for (spec, arm) in specs.iter().zip(arms) {
        let step = Median::of(arm.times);
        let state_bytes = arm
            .optimizer
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("{} state: {e}", label(spec)))?
            .len();
        let adam = rows.first().map_or(step.median_s, |r| r.step.median_s);
        rows.push(UpdateRow {
            device: w.choice.to_string(),
            model: w.kind.name().into(),
            optimizer: label(spec),
            relative_to_adam: step.median_s / adam,
            step,
            state_bytes_per_param: state_bytes as f64 / trainable,
        });
    }
    Ok(rows)
}

/// A step rule with the objective that counts its passes.
struct Closure<'a> {
    rule: StepRule<AnyClassifier>,
    objective: TaskObjective<'a, ImageClassification<AnyClassifier>>,
    snapshot: PassCounts,
    timed_from: PassCounts,
}

/// The whole training step of Adam and of every closure optimizer (around SGD + momentum, default
/// knobs), round-robin on the same batch, with the passes each step runs.
pub fn whole_steps(w: &Workload, s: &Settings) -> anyhow::Result<Vec<WholeStepRow>> {
    let base = sgd();
    let specs: Vec<OptimizerSpec> = std::iter::once(adam())
        .chain(OptimizerSpec::closure_defaults(&base))
        .collect();
    let mut arms = Vec::with_capacity(specs.len());
    for spec in &specs {
        let closure = Closure {
            rule: spec.build_rule::<AnyClassifier>(w.batch_size)?,
            objective: w.objective(),
            snapshot: PassCounts::default(),
            timed_from: PassCounts::default(),
        };
        let mut arm = Arm::new(closure, w);
        // SVRG and VAMO take their snapshot over the full data here; untimed, as it happens once
        // an epoch in training.
        let model = arm.model.as_ref().expect("a fresh arm holds its model");
        let closure = &mut arm.optimizer;
        closure.rule.begin_epoch(0, model, &mut closure.objective);
        w.sync()?;
        closure.snapshot = closure.objective.passes;
        arms.push(arm);
    }
    tracing::info!(
        "timing the whole step of Adam and {} closure optimizers on {} ({}) round-robin",
        specs.len() - 1,
        w.kind.name(),
        w.choice
    );
    for round in 0..s.warmup + s.steps {
        for arm in arms.iter_mut() {
            if round == s.warmup {
                arm.optimizer.timed_from = arm.optimizer.objective.passes;
            }
            let start = Instant::now();
            let model = arm.take_model();
            let closure = &mut arm.optimizer;
            let step = closure.rule.step(LR.into(), model, &mut closure.objective);
            arm.model = Some(step.model);
            w.sync()?;
            if round >= s.warmup {
                arm.times.push(start.elapsed().as_secs_f64());
            }
        }
    }
    let mut rows: Vec<WholeStepRow> = Vec::new();
    for (spec, arm) in specs.iter().zip(arms) {
        let step = Median::of(arm.times);
        let Closure {
            objective,
            snapshot,
            timed_from,
            ..
        } = arm.optimizer;
        let per_step = |now: u64, then: u64| (now - then) as f64 / s.steps as f64;
        let adam = rows.first().map_or(step.median_s, |r| r.step.median_s);
        rows.push(WholeStepRow {
            device: w.choice.to_string(),
            model: w.kind.name().into(),
            optimizer: spec.name().into(),
            base: spec.base().map(|b| b.name().to_string()),
            relative_to_adam: step.median_s / adam,
            step,
            forward_per_step: per_step(objective.passes.forward, timed_from.forward),
            backward_per_step: per_step(objective.passes.backward, timed_from.backward),
            snapshot_forward: snapshot.forward,
            snapshot_backward: snapshot.backward,
        });
    }
    Ok(rows)
}

/// Training steps as `ember train` runs them with Adam, batch assembly included (every step builds
/// an augmented batch from the next indices of a shuffled epoch over the workload's images), timed
/// round-robin with the same step on a batch built and synchronised beforehand: the difference is
/// what the data path costs the step.
pub fn end_to_end(w: &Workload, s: &Settings) -> anyhow::Result<EndToEndRow> {
    let spec = adam();
    let mut rules = [
        spec.build_rule::<AnyClassifier>(w.batch_size)?,
        spec.build_rule::<AnyClassifier>(w.batch_size)?,
    ];
    let mut objective = w.objective();
    let mut models = [isolated_copy(&w.model, true), isolated_copy(&w.model, true)];
    let (mut whole, mut compute) = (Vec::with_capacity(s.steps), Vec::with_capacity(s.steps));
    tracing::info!(
        "timing end-to-end and compute-only training steps of {} on {}",
        w.kind.name(),
        w.choice
    );
    for step in 0..s.warmup + s.steps {
        let position = BatchPosition {
            round: step / FULL_DATA_BATCHES,
            index: step % FULL_DATA_BATCHES,
            step: step as u64,
        };
        // The task builds an epoch's order and augmentation draws at its first batch: inside the
        // end-to-end timer, as in training.
        let build = || w.task.train_batch(position);
        // End to end: the batch is built inside the timer.
        let start = Instant::now();
        objective.set_current(build());
        let [model, _] = &mut models;
        *model = rules[0]
            .step(LR.into(), model.clone(), &mut objective)
            .model;
        w.sync()?;
        let whole_s = start.elapsed().as_secs_f64();
        // Compute only: the same batch, ready on the device before the timer starts.
        objective.set_current(build());
        w.sync()?;
        let start = Instant::now();
        let [_, model] = &mut models;
        *model = rules[1]
            .step(LR.into(), model.clone(), &mut objective)
            .model;
        w.sync()?;
        if step >= s.warmup {
            whole.push(whole_s);
            compute.push(start.elapsed().as_secs_f64());
        }
    }
    let step = Median::of(whole);
    Ok(EndToEndRow {
        device: w.choice.to_string(),
        model: w.kind.name().into(),
        optimizer: spec.name().into(),
        images_per_s: w.batch_size as f64 / step.median_s,
        compute_only: Some(Median::of(compute)),
        // Filled in once every device has been measured.
        relative_to_first_device: f64::NAN,
        step,
    })
}

/// A fresh copy of `grads` for `model`'s parameters.
fn copy_of<M: Module>(grads: &GradientsParams, model: &M) -> GradientsParams {
    struct Copy<'a> {
        from: &'a GradientsParams,
        to: GradientsParams,
    }
    impl ModuleVisitor for Copy<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.from.get::<D>(param.id) {
                self.to.register(param.id, g.mul_scalar(1.0));
            }
        }
    }
    let mut copy = Copy {
        from: grads,
        to: GradientsParams::new(),
    };
    model.visit(&mut copy);
    copy.to
}
