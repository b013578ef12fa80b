//! Closure optimizers against independently computed references: GAM's direction on logistic
//! regression from a host-side closed-form gradient, pass counts, BatchNorm isolation, the
//! zeroth-order estimator's alignment with the true gradient, VAMO(α = 0) = SGD, SVRG's first step.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};

use super::counter_normal::DirectionKey;
use super::param_vec::ParamVec;
use super::zeroth_order::ZoPoints;
use super::*;
use crate::test_util;

fn ad_device() -> Device {
    test_util::device().autodiff()
}

fn floats(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()
}

/// A fixed logistic-regression problem: 8 examples, 5 features, labels in {0, 1}.
struct Logistic {
    x: Vec<[f64; 5]>,
    y: Vec<f64>,
}

impl Logistic {
    fn new() -> Self {
        let x = (0..8)
            .map(|i| {
                let f = i as f64;
                [
                    (0.7 * f).sin(),
                    (1.3 * f).cos(),
                    0.1 * f - 0.4,
                    ((f * 0.5).sin() * 2.0).tanh(),
                    1.0 - 0.05 * f * f,
                ]
            })
            .collect();
        let y = vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        Self { x, y }
    }

    /// Gradient of the mean log-loss at `theta = [w₀..w₄, b]`, in closed form.
    fn gradient(&self, theta: &[f64]) -> Vec<f64> {
        let n = self.x.len() as f64;
        let mut g = vec![0.0; 6];
        for (xi, yi) in self.x.iter().zip(&self.y) {
            let z: f64 = xi.iter().zip(theta).map(|(a, w)| a * w).sum::<f64>() + theta[5];
            let r = 1.0 / (1.0 + (-z).exp()) - yi;
            for k in 0..5 {
                g[k] += r * xi[k] / n;
            }
            g[5] += r / n;
        }
        g
    }

    fn inputs(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let flat: Vec<f32> = self.x.iter().flatten().map(|&v| v as f32).collect();
        let y: Vec<f32> = self.y.iter().map(|&v| v as f32).collect();
        (
            Tensor::from_data(TensorData::new(flat, [8, 5]), device),
            Tensor::from_data(TensorData::new(y, [8, 1]), device),
        )
    }
}

fn theta_of(model: &Linear) -> Vec<f64> {
    let mut t = floats(model.weight.val().inner());
    t.extend(floats(
        model.bias.as_ref().unwrap().val().inner().reshape([1, 1]),
    ));
    t
}

/// Counts the passes it serves.
#[derive(Default)]
struct Counts {
    gradients: usize,
    losses: usize,
}

struct LogisticObjective {
    x: Tensor<2>,
    y: Tensor<2>,
    counts: Counts,
}

impl LogisticObjective {
    fn mean_loss(&self, model: &Linear) -> Tensor<1> {
        let z = model.forward(self.x.clone());
        // log(1 + e^z) − y·z
        let per_example = (z.clone().exp() + 1.0).log() - z * self.y.clone();
        per_example.mean()
    }
}

impl Objective<Linear> for LogisticObjective {
    fn gradient(&mut self, model: &Linear, _batch: Batch) -> (Tensor<1>, GradientsParams) {
        self.counts.gradients += 1;
        let loss = self.mean_loss(model);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.detach(), grads)
    }

    fn loss(&mut self, model: &Linear, _batch: Batch) -> Tensor<1> {
        self.counts.losses += 1;
        self.mean_loss(model)
    }

    fn full_batches(&self) -> usize {
        1
    }
}

fn logistic_setup() -> (Logistic, Linear, LogisticObjective) {
    let device = ad_device();
    let problem = Logistic::new();
    let model = LinearConfig::new(5, 1).init(&device);
    let (x, y) = problem.inputs(&device);
    let objective = LogisticObjective {
        x,
        y,
        counts: Counts::default(),
    };
    (problem, model, objective)
}

fn plain_sgd() -> ModuleOptimizer {
    SgdConfig::new().init()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn axpy(a: f64, x: &[f64], b: f64, y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(p, q)| a * p + b * q).collect()
}

/// GAM's direction by the paper's formulas, in f64 on the host.
fn gam_reference(problem: &Logistic, theta: &[f64], c: &GamConfig) -> Vec<f64> {
    let eps = 1e-12;
    let g0 = problem.gradient(theta);
    let g1 = problem.gradient(&axpy(1.0, theta, c.grad_rho / (norm(&g0) + eps), &g0));
    let h0 = axpy(1.0, &g1, -1.0, &g0);
    let theta2 = axpy(1.0, theta, c.grad_norm_rho / (norm(&h0) + eps), &h0);
    let g2 = problem.gradient(&theta2);
    let g3 = problem.gradient(&axpy(1.0, &theta2, c.grad_rho / (norm(&g2) + eps), &g2));
    let h_plus = axpy(c.alpha, &g1, 1.0 - c.alpha, &g3);
    let w0 = if c.upstream_h_minus { 1.0 } else { c.beta };
    let h_minus = axpy(w0, &g0, 1.0 - c.beta, &g2);
    let dot: f64 = h_minus.iter().zip(&h_plus).map(|(a, b)| a * b).sum();
    let h_perp = axpy(1.0, &h_minus, -dot / (norm(&h_plus).powi(2) + eps), &h_plus);
    axpy(1.0, &h_plus, -c.gamma, &h_perp)
}

#[test]
fn gam_direction_matches_the_formula_and_takes_four_gradients() {
    for upstream in [false, true] {
        // Large radii so that the four gradients differ well beyond f32 rounding.
        let config = GamConfig::new()
            .with_grad_norm_rho(0.5)
            .with_grad_rho(0.3)
            .with_alpha(0.4)
            .with_beta(0.3)
            .with_gamma(0.5)
            .with_upstream_h_minus(upstream);
        let (problem, model, mut objective) = logistic_setup();
        let theta = theta_of(&model);
        let expected = gam_reference(&problem, &theta, &config);
        let mut gam = config.build().unwrap().with_base(plain_sgd());
        // SGD with lr 1: θ_new = θ − direction.
        let step = ClosureOptimizer::step(&mut gam, 1.0.into(), model, &mut objective);
        let moved = theta_of(&step.model);
        let direction: Vec<f64> = theta.iter().zip(&moved).map(|(a, b)| a - b).collect();
        for (k, (d, e)) in direction.iter().zip(&expected).enumerate() {
            assert!(
                (d - e).abs() <= 1e-5 + 1e-4 * e.abs(),
                "upstream={upstream} component {k}: {d} vs {e}"
            );
        }
        assert_eq!(objective.counts.gradients, 4);
        assert_eq!(objective.counts.losses, 0);
    }
    // The two h− weightings give different directions here, so the test tells them apart.
    let (problem, model, _) = logistic_setup();
    let theta = theta_of(&model);
    let paper = gam_reference(&problem, &theta, &GamConfig::new().with_gamma(0.5));
    let upstream = gam_reference(
        &problem,
        &theta,
        &GamConfig::new().with_gamma(0.5).with_upstream_h_minus(true),
    );
    assert!(norm(&axpy(1.0, &paper, -1.0, &upstream)) > 1e-6);
}

#[test]
fn sam_takes_two_gradients_and_steps_on_the_perturbed_one() {
    let (problem, model, mut objective) = logistic_setup();
    let theta = theta_of(&model);
    let g = problem.gradient(&theta);
    let expected = problem.gradient(&axpy(1.0, &theta, 0.2 / norm(&g), &g));
    let mut sam = SamConfig::new()
        .with_rho(0.2)
        .build()
        .unwrap()
        .with_base(plain_sgd());
    let step = ClosureOptimizer::step(&mut sam, 1.0.into(), model, &mut objective);
    let moved = theta_of(&step.model);
    for k in 0..6 {
        let d = theta[k] - moved[k];
        assert!(
            (d - expected[k]).abs() < 1e-5,
            "{k}: {d} vs {}",
            expected[k]
        );
    }
    assert_eq!(objective.counts.gradients, 2);
}

#[test]
fn zeroth_order_estimate_aligns_with_the_gradient() {
    let (problem, model, mut objective) = logistic_setup();
    let theta = theta_of(&model);
    let exact = problem.gradient(&theta);
    let q = 600;
    let points = ZoPoints::new(&model, model.clone().no_grad(), 1e-2, q, |j| DirectionKey {
        seed: 0,
        step: 0,
        j: j as u64,
    });
    let (coefficients, _) = points.coefficients(&mut objective, Batch::Current);
    assert_eq!(objective.counts.losses, q + 1);
    assert_eq!(objective.counts.gradients, 0);
    let estimate = points.estimate(&coefficients).to_grads(&model);
    let mut est = floats(estimate.get::<2>(model.weight.id).unwrap());
    est.extend(floats(
        estimate
            .get::<1>(model.bias.as_ref().unwrap().id)
            .unwrap()
            .reshape([1, 1]),
    ));
    let dot: f64 = est.iter().zip(&exact).map(|(a, b)| a * b).sum();
    let cosine = dot / (norm(&est) * norm(&exact));
    assert!(cosine > 0.9, "cosine {cosine}");
    // Unbiased in scale too: E[d·(uᵀg)·u] = g.
    let ratio = norm(&est) / norm(&exact);
    assert!((0.7..1.4).contains(&ratio), "norm ratio {ratio}");
}

#[test]
fn random_directions_are_unit_and_reproducible() {
    let (_, model, _) = logistic_setup();
    let template = ParamVec::from_params(&model);
    assert_eq!(template.num_elements(), 6);
    let key = |seed, step, j| DirectionKey { seed, step, j };
    let a = ParamVec::random_unit(&template, key(7, 2, 1));
    let b = ParamVec::random_unit(&template, key(7, 2, 1));
    let n: f64 = a.norm().into_scalar::<f64>();
    assert!((n - 1.0).abs() < 1e-5);
    assert_eq!(
        a.dot(&b).into_scalar::<f64>(),
        a.dot(&a).into_scalar::<f64>()
    );
    // Another seed, step or direction index: another direction.
    for (seed, step, j) in [(8, 2, 1), (7, 3, 1), (7, 2, 0), (7, 1, 2)] {
        let c = ParamVec::random_unit(&template, key(seed, step, j));
        assert!((c.norm().into_scalar::<f64>() - 1.0).abs() < 1e-5);
        let cos = a.dot(&c).into_scalar::<f64>();
        assert!(
            (cos - 1.0).abs() > 1e-3,
            "({seed}, {step}, {j}): cosine {cos}"
        );
    }
}

/// Linear → BatchNorm → Linear, so the BatchNorm statistics depend on the parameters.
#[derive(Module, Debug)]
struct Normed {
    input: Linear,
    norm: BatchNorm,
    head: Linear,
}

impl Normed {
    fn new(device: &Device) -> Self {
        Self {
            input: LinearConfig::new(5, 4).init(device),
            norm: BatchNormConfig::new(4).init(device),
            head: LinearConfig::new(4, 1).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [b, _] = x.dims();
        let h = self.input.forward(x).reshape([b, 4, 1]);
        self.head.forward(self.norm.forward(h).reshape([b, 4]))
    }

    fn running_mean(&self) -> Vec<f64> {
        floats(self.norm.running_mean.value_sync().inner().reshape([1, 4]))
    }
}

/// Batches of the logistic problem (four halves of varying order), for multi-step runs.
struct NormedObjective {
    batches: Vec<(Tensor<2>, Tensor<2>)>,
    current: usize,
    counts: Counts,
}

impl NormedObjective {
    fn new(device: &Device) -> Self {
        let (x, y) = Logistic::new().inputs(device);
        let batches = [[0, 1, 2, 3], [4, 5, 6, 7], [0, 2, 4, 6], [1, 3, 5, 7]]
            .iter()
            .map(|rows| {
                let idx = Tensor::<1, burn::tensor::Int>::from_data(
                    TensorData::new(rows.iter().map(|&r| r as i64).collect(), [4]),
                    device,
                );
                (x.clone().select(0, idx.clone()), y.clone().select(0, idx))
            })
            .collect();
        Self {
            batches,
            current: 0,
            counts: Counts::default(),
        }
    }

    fn mean_loss(&self, model: &Normed, batch: Batch) -> Tensor<1> {
        let (x, y) = match batch {
            Batch::Current => &self.batches[self.current],
            Batch::Full(i) => &self.batches[i],
        };
        let z = model.forward(x.clone());
        ((z.clone().exp() + 1.0).log() - z * y.clone()).mean()
    }
}

impl Objective<Normed> for NormedObjective {
    fn gradient(&mut self, model: &Normed, batch: Batch) -> (Tensor<1>, GradientsParams) {
        self.counts.gradients += 1;
        let loss = self.mean_loss(model, batch);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.detach(), grads)
    }

    fn loss(&mut self, model: &Normed, batch: Batch) -> Tensor<1> {
        self.counts.losses += 1;
        self.mean_loss(model, batch)
    }

    fn full_batches(&self) -> usize {
        2
    }
}

#[test]
fn batchnorm_statistics_move_with_the_first_pass_only() {
    let device = ad_device();
    let model = Normed::new(&device);
    let mut objective = NormedObjective::new(&device);
    // Reference: one training-mode forward at θ on a copy with its own statistics.
    let reference = isolated_copy(&model, true);
    let _ = objective.mean_loss(&reference, Batch::Current);
    let expected = reference.running_mean();
    assert!(expected.iter().any(|v| v.abs() > 1e-4), "statistics moved");

    let mut gam = GamConfig::new()
        .with_grad_norm_rho(0.5)
        .with_grad_rho(0.3)
        .build()
        .unwrap()
        .with_base(plain_sgd());
    let step = ClosureOptimizer::step(&mut gam, 0.1.into(), model, &mut objective);
    assert_eq!(objective.counts.gradients, 4);
    let after = step.model.running_mean();
    for (a, e) in after.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-6, "{after:?} vs {expected:?}");
    }
}

/// Runs `epochs` × 2 steps (batches 2 and 3 of [`NormedObjective`]) from a copy of `start` with
/// its own BatchNorm statistics and returns the final model.
fn run_normed(
    start: &Normed,
    mut step: impl FnMut(&mut NormedObjective, Normed, usize) -> Normed,
    epochs: usize,
) -> Normed {
    // Not `isolated_copy`: the harness must not depend on the code under test.
    let mut model = start.valid().train();
    let mut objective = NormedObjective::new(&ad_device());
    for epoch in 0..epochs {
        for current in [2, 3] {
            objective.current = current;
            model = step(&mut objective, model, epoch);
        }
    }
    model
}

/// Whether `run_normed` is at the first step of an epoch (its epochs step on batches 2 then 3).
fn at_epoch_start(objective: &NormedObjective) -> bool {
    objective.current == 2
}

fn all_floats(model: &Normed) -> Vec<f64> {
    let mut v = floats(model.input.weight.val().inner());
    v.extend(floats(model.head.weight.val().inner()));
    v.extend(model.running_mean());
    v
}

#[test]
fn vamo_with_zero_alpha_is_exactly_its_base_optimizer() {
    let sgd = || SgdConfig::new().init();
    let start = Normed::new(&ad_device());
    let mut base = sgd();
    let plain = run_normed(
        &start,
        |objective, model, _| {
            let (_, grads) = objective.gradient(&model, Batch::Current);
            base.step(0.1, model, grads)
        },
        2,
    );
    let run_vamo = |config: VamoConfig| {
        let mut vamo = config.init::<Normed>(sgd());
        run_normed(
            &start,
            |objective, model, epoch| {
                // run_normed calls with epoch 0, 0, 1, 1: a snapshot before each epoch's first step.
                if at_epoch_start(objective) {
                    vamo.begin_epoch(epoch, &model, objective);
                }
                vamo.step(0.1.into(), model, objective).model
            },
            2,
        )
    };
    let mixed = run_vamo(VamoConfig::new().with_alpha(Some(0.0)).with_directions(2));
    assert_eq!(all_floats(&plain), all_floats(&mixed));

    // With α > 0 the correction changes the trajectory.
    let corrected = run_vamo(VamoConfig::new().with_alpha(Some(1.0)));
    assert_ne!(all_floats(&plain), all_floats(&corrected));
}

#[test]
fn vamo_counts_passes_and_estimates_alpha_in_range() {
    let device = ad_device();
    let mut model = Normed::new(&device);
    let mut objective = NormedObjective::new(&device);
    let q = 3;
    let mut vamo = VamoConfig::new()
        .with_directions(q)
        .with_adaptive_alpha(true)
        .try_init::<Normed>(SgdConfig::new().init())
        .unwrap();
    vamo.begin_epoch(0, &model, &mut objective);
    // Snapshot: (q + 1) forward passes on each of the 2 full-data batches.
    assert_eq!(objective.counts.losses, 2 * (q + 1));
    let d = ParamVec::from_params(&model).num_elements() as f64;
    assert_eq!(vamo.diagnostics(), vec![("alpha", 1.0 / d)]);
    for current in [2, 3] {
        objective.current = current;
        model = vamo.step(0.05.into(), model, &mut objective).model;
    }
    assert_eq!(objective.counts.gradients, 2);
    assert_eq!(objective.counts.losses, 2 * (q + 1) + 2 * (q + 1));
    vamo.begin_epoch(1, &model, &mut objective);
    let alpha = vamo.diagnostics()[0].1;
    assert!((0.0..=1.0).contains(&alpha), "{alpha}");
    assert_ne!(alpha, 1.0 / d, "the adaptive estimate replaced the default");

    // α survives a save/load.
    let bytes = ClosureOptimizer::<Normed>::to_bytes(&vamo).unwrap();
    let mut fresh = VamoConfig::new()
        .with_adaptive_alpha(true)
        .try_init::<Normed>(SgdConfig::new().init())
        .unwrap();
    fresh.load_bytes(&bytes).unwrap();
    fresh.begin_epoch(1, &model, &mut objective);
    assert_eq!(fresh.diagnostics(), vamo.diagnostics());
}

#[test]
fn svrg_first_step_of_an_epoch_is_the_full_gradient() {
    let (problem, model, mut objective) = logistic_setup();
    let theta = theta_of(&model);
    let full = problem.gradient(&theta);
    let mut svrg = SvrgConfig::new().try_init::<Linear>(plain_sgd()).unwrap();
    svrg.begin_epoch(0, &model, &mut objective);
    let step = svrg.step(1.0.into(), model, &mut objective);
    let moved = theta_of(&step.model);
    for k in 0..6 {
        assert!((theta[k] - moved[k] - full[k]).abs() < 1e-6);
    }
    // One snapshot gradient, then two per step.
    assert_eq!(objective.counts.gradients, 3);
}

#[test]
fn zo_sgd_uses_forward_passes_only_and_resumes_its_directions() {
    let (_, model, mut objective) = logistic_setup();
    let config = ZoSgdConfig::new().with_directions(2).with_seed(3);
    let mut a = config
        .try_init(SgdConfig::new().with_momentum(None).init())
        .unwrap();
    let mut model_a = model.clone();
    for _ in 0..2 {
        model_a = ClosureOptimizer::step(&mut a, 0.1.into(), model_a, &mut objective).model;
    }
    assert_eq!(objective.counts.losses, 2 * 3);
    assert_eq!(objective.counts.gradients, 0);
    let bytes = ClosureOptimizer::<Linear>::to_bytes(&a).unwrap();
    let mut b = config.try_init(plain_sgd()).unwrap();
    ClosureOptimizer::<Linear>::load_bytes(&mut b, &bytes).unwrap();
    let next_a = ClosureOptimizer::step(&mut a, 0.1.into(), model_a.clone(), &mut objective);
    let next_b = ClosureOptimizer::step(&mut b, 0.1.into(), model_a, &mut objective);
    assert_eq!(theta_of(&next_a.model), theta_of(&next_b.model));
}

#[test]
fn gam_resumes_its_base_optimizer_state() {
    let momentum = || {
        SgdConfig::new()
            .with_momentum(Some(burn::optim::momentum::MomentumConfig::new()))
            .init()
    };
    let (_, model, mut objective) = logistic_setup();
    let mut a = GamConfig::new().build().unwrap().with_base(momentum());
    let mut model = ClosureOptimizer::step(&mut a, 0.1.into(), model, &mut objective).model;
    model = ClosureOptimizer::step(&mut a, 0.1.into(), model, &mut objective).model;
    let bytes = ClosureOptimizer::<Linear>::to_bytes(&a).unwrap();
    let mut b = GamConfig::new().build().unwrap().with_base(momentum());
    ClosureOptimizer::<Linear>::load_bytes(&mut b, &bytes).unwrap();
    let next_a = ClosureOptimizer::step(&mut a, 0.1.into(), model.clone(), &mut objective);
    let next_b = ClosureOptimizer::step(&mut b, 0.1.into(), model.clone(), &mut objective);
    assert_eq!(theta_of(&next_a.model), theta_of(&next_b.model));
    // A fresh optimizer (no momentum buffer) would step differently.
    let mut c = GamConfig::new().build().unwrap().with_base(momentum());
    let next_c = ClosureOptimizer::step(&mut c, 0.1.into(), model, &mut objective);
    assert_ne!(theta_of(&next_a.model), theta_of(&next_c.model));

    let mut truncated = bytes.clone();
    truncated.truncate(10);
    let err = ClosureOptimizer::<Linear>::load_bytes(&mut c, &truncated).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn gam_and_sam_init_around_a_base_as_with_base_does() {
    let err = GamConfig::new()
        .with_alpha(2.0)
        .try_init(SgdConfig::new().init())
        .err()
        .unwrap();
    assert_eq!(err.field, "alpha");
    let err = SamConfig::new()
        .with_rho(0.0)
        .try_init(SgdConfig::new().init())
        .err()
        .unwrap();
    assert_eq!(err.field, "rho");

    // `init` is `build` then `with_base`: the same first step.
    let (_, model, mut objective) = logistic_setup();
    let mut by_init = GamConfig::new().init(SgdConfig::new().init());
    let mut by_hand = GamConfig::new().build().unwrap().with_base(plain_sgd());
    let a = ClosureOptimizer::step(&mut by_init, 0.5.into(), model.clone(), &mut objective);
    let b = ClosureOptimizer::step(&mut by_hand, 0.5.into(), model.clone(), &mut objective);
    assert_eq!(theta_of(&a.model), theta_of(&b.model));
    let mut by_init = SamConfig::new().init(SgdConfig::new().init());
    let mut by_hand = SamConfig::new().build().unwrap().with_base(plain_sgd());
    let a = ClosureOptimizer::step(&mut by_init, 0.5.into(), model.clone(), &mut objective);
    let b = ClosureOptimizer::step(&mut by_hand, 0.5.into(), model, &mut objective);
    assert_eq!(theta_of(&a.model), theta_of(&b.model));
}

#[test]
#[should_panic(expected = "GamConfig.alpha = 2: expected a number in [0, 1]")]
fn gam_init_on_an_invalid_config_panics_naming_the_field() {
    let _ = GamConfig::new().with_alpha(2.0).init(plain_sgd());
}

#[test]
#[should_panic(expected = "SamConfig.rho = 0: expected a finite number > 0")]
fn sam_init_on_an_invalid_config_panics_naming_the_field() {
    let _ = SamConfig::new().with_rho(0.0).init(plain_sgd());
}

#[test]
fn invalid_knobs_name_their_field() {
    let err = GamConfig::new().with_beta(1.5).build().err().unwrap();
    assert_eq!(err.field, "beta");
    assert!(
        err.message.contains("GamConfig.beta = 1.5"),
        "{}",
        err.message
    );
    assert_eq!(
        GamConfig::new()
            .with_grad_rho(0.0)
            .build()
            .err()
            .unwrap()
            .field,
        "grad_rho"
    );
    assert_eq!(
        SamConfig::new()
            .with_rho(f64::NAN)
            .build()
            .err()
            .unwrap()
            .field,
        "rho"
    );
    let vamo = |c: VamoConfig| c.try_init::<Linear>(plain_sgd()).err().unwrap().field;
    assert_eq!(vamo(VamoConfig::new().with_alpha(Some(-0.1))), "alpha");
    assert_eq!(vamo(VamoConfig::new().with_mu(0.0)), "mu");
    assert_eq!(vamo(VamoConfig::new().with_directions(0)), "directions");
    assert_eq!(
        vamo(VamoConfig::new().with_snapshot_batches(Some(0))),
        "snapshot_batches"
    );
    assert_eq!(
        ZoSgdConfig::new()
            .with_directions(0)
            .try_init(plain_sgd())
            .err()
            .unwrap()
            .field,
        "directions"
    );
}

#[test]
fn zo_sgd_steps_along_the_gradient_on_average() {
    let (problem, model, mut objective) = logistic_setup();
    let theta = theta_of(&model);
    let exact = problem.gradient(&theta);
    let mut zo = ZoSgdConfig::new()
        .with_directions(600)
        .with_mu(1e-2)
        .try_init(plain_sgd())
        .unwrap();
    let step = ClosureOptimizer::step(&mut zo, 1.0.into(), model, &mut objective);
    let moved: Vec<f64> = theta
        .iter()
        .zip(theta_of(&step.model))
        .map(|(a, b)| a - b)
        .collect();
    let dot: f64 = moved.iter().zip(&exact).map(|(a, b)| a * b).sum();
    let cosine = dot / (norm(&moved) * norm(&exact)).max(1e-30);
    assert!(cosine > 0.9, "step {moved:?} vs gradient {exact:?}");
}

#[test]
fn zo_sgd_moves_a_freshly_initialised_model() {
    // Regression: a lazily initialised model (nothing read from it yet), as a trainer hands over.
    let device = ad_device();
    let model = LinearConfig::new(5, 1).init(&device);
    let (x, y) = Logistic::new().inputs(&device);
    let mut objective = LogisticObjective {
        x,
        y,
        counts: Counts::default(),
    };
    let mut zo = ZoSgdConfig::new()
        .with_mu(1e-2)
        .try_init(plain_sgd())
        .unwrap();
    let first = ClosureOptimizer::step(&mut zo, 0.1.into(), model, &mut objective).model;
    assert!(first.weight.val().is_require_grad());
    let before = theta_of(&first);
    let second = ClosureOptimizer::step(&mut zo, 0.1.into(), first, &mut objective).model;
    assert_ne!(before, theta_of(&second), "ZO-SGD must move the parameters");
}

#[test]
fn gradients_for_the_learner_give_the_closure_step_direction() {
    // The Learner path (a forward closure, the model's own first pass) and the trainer path
    // (WithBase on an Objective) must hand the optimizer the same direction: the paper's GAM,
    // computed independently on the host.
    let config = GamConfig::new()
        .with_grad_norm_rho(0.5)
        .with_grad_rho(0.3)
        .with_gamma(0.5);
    let (problem, model, objective) = logistic_setup();
    let theta = theta_of(&model);
    let expected = gam_reference(&problem, &theta, &config);
    let gam = config.build().unwrap();
    let mut passes = 0;
    let (grads, first_loss) = gam.gradients(&model, |m| {
        passes += 1;
        let loss = objective.mean_loss(m);
        (loss.clone(), loss.into_scalar::<f64>())
    });
    assert_eq!(passes, 4);
    assert!(first_loss > 0.0);
    let stepped = plain_sgd().step(1.0_f64, model, grads);
    let direction: Vec<f64> = theta
        .iter()
        .zip(theta_of(&stepped))
        .map(|(a, b)| a - b)
        .collect();
    for (d, e) in direction.iter().zip(&expected) {
        assert!((d - e).abs() <= 1e-5 + 1e-4 * e.abs(), "{d} vs {e}");
    }
}

#[test]
fn snapshot_methods_stepped_before_begin_epoch_take_their_snapshot_themselves() {
    let (_, model, mut objective) = logistic_setup();
    let mut explicit = SvrgConfig::new().init::<Linear>(plain_sgd());
    explicit.begin_epoch(0, &model, &mut objective);
    let expected = theta_of(
        &explicit
            .step(1.0.into(), model.clone(), &mut objective)
            .model,
    );
    let mut implicit = SvrgConfig::new().init::<Linear>(plain_sgd());
    let moved = theta_of(
        &implicit
            .step(1.0.into(), model.clone(), &mut objective)
            .model,
    );
    assert_eq!(moved, expected);

    let device = ad_device();
    let normed = Normed::new(&device);
    let mut objective = NormedObjective::new(&device);
    let mut vamo = VamoConfig::new().init::<Normed>(plain_sgd());
    let _ = vamo.step(0.05.into(), normed, &mut objective);
    let d = ParamVec::from_params(&Normed::new(&device)).num_elements() as f64;
    assert_eq!(vamo.diagnostics(), vec![("alpha", 1.0 / d)]);
}

#[test]
fn snapshot_methods_without_full_data_batches_do_not_panic() {
    // An objective with no full-data pass (e.g. a loss closure): the snapshot is the current
    // batch, so the correction vanishes and SVRG steps on the plain gradient.
    struct NoFullData(LogisticObjective);
    impl Objective<Linear> for NoFullData {
        fn gradient(&mut self, model: &Linear, batch: Batch) -> (Tensor<1>, GradientsParams) {
            self.0.gradient(model, batch)
        }
        fn loss(&mut self, model: &Linear, batch: Batch) -> Tensor<1> {
            self.0.loss(model, batch)
        }
        fn full_batches(&self) -> usize {
            0
        }
    }
    let (problem, model, objective) = logistic_setup();
    let theta = theta_of(&model);
    let gradient = problem.gradient(&theta);
    let mut objective = NoFullData(objective);
    let mut svrg = SvrgConfig::new().init::<Linear>(plain_sgd());
    let moved = theta_of(&svrg.step(1.0.into(), model.clone(), &mut objective).model);
    for k in 0..6 {
        assert!((theta[k] - moved[k] - gradient[k]).abs() < 1e-6);
    }
    let mut vamo = VamoConfig::new().init::<Linear>(plain_sgd());
    let _ = vamo.step(0.1.into(), model, &mut objective);
}

#[test]
#[should_panic(expected = "VamoConfig.mu = 0: expected a finite number > 0")]
fn init_on_an_invalid_config_panics_with_the_typed_message() {
    let _ = VamoConfig::new().with_mu(0.0).init::<Linear>(plain_sgd());
}
