//! Helpers shared by the unit tests: tensors from slices on the `flex` CPU backend, values back as
//! `Vec<f32>`, relative comparisons against f64 references.

use burn::tensor::{Device, Tensor, TensorData};

pub(crate) fn device() -> Device {
    // burn materialises reloaded optimizer state on `Device::default()`, which is wgpu whenever the
    // workspace compiles it in: that would start a GPU adapter (or panic without a Vulkan driver)
    // in the save/load tests. Pin the default to the CPU backend these tests run on.
    static PIN_DEFAULT: std::sync::Once = std::sync::Once::new();
    PIN_DEFAULT.call_once(|| std::env::set_var("BURN_DEVICE", "flex"));
    Device::flex()
}

pub(crate) fn tensor<const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &device())
}

pub(crate) fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// `|a − e| ≤ rtol·max(1, |e|)` element-wise.
pub(crate) fn assert_close(actual: &[f32], expected: &[f64], rtol: f64) {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let tol = rtol * e.abs().max(1.0);
        assert!(
            (a as f64 - e).abs() <= tol,
            "element {i}: got {a}, expected {e} (tolerance {tol})\n\
             actual:   {actual:?}\nexpected: {expected:?}"
        );
    }
}

use burn::module::Initializer;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tolerance;

/// A save/load round trip of the optimizer state must not change the next step (the shape of
/// burn's own `assert_optimizer_resume`): two steps on a `Linear(3, 2)`, bytes out and into a fresh
/// optimizer, then one more step with both.
pub(crate) fn assert_resume(create: impl Fn() -> ModuleOptimizer) {
    let device = device().autodiff();
    let mut model = LinearConfig::new(3, 2).init(&device);
    let input = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, -0.5, 2.0, 0.25, 1.5, -1.0], [2, 3]),
        &device,
    );
    let grads = |model: &Linear, scale: f32| {
        GradientsParams::from_grads(
            model
                .forward(input.clone())
                .mul_scalar(scale)
                .square()
                .sum()
                .backward(),
            model,
        )
    };

    let lr = 0.01;
    let mut original = create();
    for scale in [1.0, 0.3] {
        let g = grads(&model, scale);
        model = original.step(lr, model, g);
    }
    assert!(!original.to_record().is_empty());
    let bytes = original.into_bytes().unwrap();
    let mut restored = create().from_bytes(bytes).unwrap();

    let expected = original.step(lr, model.clone(), grads(&model, -0.2));
    let actual = restored.step(lr, model.clone(), grads(&model, -0.2));
    // The step must have moved the parameters, or the comparison proves nothing.
    let moved = (expected.weight.val() - model.weight.val())
        .abs()
        .sum()
        .into_scalar::<f32>();
    assert!(moved > 0.0);
    expected
        .weight
        .to_data()
        .assert_approx_eq::<f32>(&actual.weight.to_data(), Tolerance::absolute(1e-6));
    expected
        .bias
        .unwrap()
        .to_data()
        .assert_approx_eq::<f32>(&actual.bias.unwrap().to_data(), Tolerance::absolute(1e-6));
}

/// 50 steps on a noiseless least-squares problem `y = X w* + b*` (16 examples, 4 features, mean
/// squared error) must cut the loss by at least 10x.
pub(crate) fn assert_decreases_least_squares(create: impl Fn() -> ModuleOptimizer, lr: f64) {
    let device = device().autodiff();
    let mut model = LinearConfig::new(4, 1)
        .with_initializer(Initializer::Zeros)
        .init(&device);
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.7).sin()).collect();
    let w_star = [1.0f32, -2.0, 0.5, 1.5];
    let y: Vec<f32> = (0..16)
        .map(|r| (0..4).map(|j| x[r * 4 + j] * w_star[j]).sum::<f32>() + 0.3)
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(x, [16, 4]), &device);
    let y = Tensor::<2>::from_data(TensorData::new(y, [16, 1]), &device);
    let loss = |model: &Linear| (model.forward(x.clone()) - y.clone()).square().mean();

    let initial = loss(&model).into_scalar::<f32>();
    let mut optim = create();
    for _ in 0..50 {
        let grads = GradientsParams::from_grads(loss(&model).backward(), &model);
        model = optim.step(lr, model, grads);
    }
    let last = loss(&model).into_scalar::<f32>();
    assert!(
        last.is_finite() && last < 0.1 * initial,
        "loss {initial} -> {last} after 50 steps"
    );
}

use crate::{RecordState, StateSink, StateSource};

/// Flatten `state` and rebuild it, as a save/load through burnpack does.
pub(crate) fn round_trip<S: RecordState>(state: &S) -> S {
    let mut sink = StateSink::default();
    state.state_flatten("p", &mut sink);
    let mut source = StateSource::new(sink.scalars.into_iter().collect());
    for (name, data) in sink.tensors {
        source.insert_tensor(name, data);
    }
    S::state_unflatten("p", &mut source, &device()).expect("state must rebuild")
}

/// Two steps of `optim` on a `[2, 4]` parameter in `dtype` (the state passing through a
/// save/load round trip in between) must keep the dtype and stay within `rtol` of the f32 run.
pub(crate) fn assert_half_precision_tracks_f32<O: burn::optim::Optimizer>(
    optim: &O,
    dtype: burn::tensor::FloatDType,
    rtol: f64,
) {
    let theta = tensor::<2>(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [2, 4]);
    let grads = [
        tensor::<2>(&[0.3, -0.2, 0.1, 0.4, -0.5, 0.6, 0.2, -0.1], [2, 4]),
        tensor::<2>(&[-0.1, 0.4, 0.2, -0.3, 0.2, 0.1, -0.4, 0.3], [2, 4]),
    ];
    let run = |theta: Tensor<2>, cast: bool| {
        let cast = |t: Tensor<2>| if cast { t.cast(dtype) } else { t };
        let (theta, state) = optim.step(0.1, cast(theta), cast(grads[0].clone()), None);
        let state = round_trip(&state.unwrap());
        let (theta, _) = optim.step(0.1, theta, cast(grads[1].clone()), Some(state));
        theta
    };
    let half = run(theta.clone(), true);
    assert_eq!(half.dtype(), burn::tensor::DType::from(dtype));
    let full: Vec<f64> = values(run(theta, false))
        .iter()
        .map(|&x| x as f64)
        .collect();
    assert_close(&values(half), &full, rtol);
}
