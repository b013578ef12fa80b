//! `set_enabled(false)` (what `EMBER_KERNELS=burn` does at start-up) makes every op burn's own:
//! the same bits as burn's ops. In its own test binary, since the switch is process-wide.

use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Distribution;

#[test]
fn switched_off_every_op_is_burns() {
    let device = Device::flex().autodiff();
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([2, 3, 6, 6], normal, &device);
    let w = Tensor::<4>::random([4, 3, 3, 3], normal, &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let gamma = Tensor::<1>::random([4], normal, &device);
    let beta = Tensor::<1>::random([4], normal, &device);
    let weight = Tensor::<2>::random([6, 4], normal, &device);
    let bias = Tensor::<1>::random([4], normal, &device);
    let run = || {
        let conv = ember_kernels::ops::conv2d(x.clone(), w.clone(), None, options.clone());
        let norm =
            ember_kernels::ops::batch_norm_train(conv.clone(), gamma.clone(), beta.clone(), 1e-5);
        let rows = x.clone().reshape([6, 36]).transpose();
        let linear = ember_kernels::ops::linear(rows.clone(), weight.clone(), Some(bias.clone()));
        vec![
            conv.into_data(),
            norm.output.into_data(),
            ember_kernels::ops::gelu(linear.clone()).into_data(),
            ember_kernels::ops::softmax(linear.clone(), 1).into_data(),
            ember_kernels::ops::layer_norm(linear.clone(), gamma.clone(), Some(beta.clone()), 1e-5)
                .into_data(),
            linear.into_data(),
        ]
    };
    let with_kernels = run();
    ember_kernels::set_enabled(false);
    assert!(!ember_kernels::enabled());
    let switched_off = run();
    let rows = x.clone().reshape([6, 36]).transpose();
    let linear = burn::tensor::module::linear(rows, weight.clone(), Some(bias.clone()));
    let conv = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone());
    let burns = vec![
        conv.clone().into_data(),
        burn::tensor::module::batch_norm_train(conv, gamma.clone(), beta.clone(), 1e-5)
            .output
            .into_data(),
        burn::tensor::activation::gelu(linear.clone()).into_data(),
        burn::tensor::activation::softmax(linear.clone(), 1).into_data(),
        burn::tensor::module::layer_norm(linear.clone(), gamma, Some(beta), 1e-5).into_data(),
        linear.into_data(),
    ];
    assert_eq!(switched_off, burns);
    // And the kernels' results were not burn's bits (they did run before the switch).
    assert_ne!(with_kernels, burns);
}
