//! Wrapping a per-parameter optimizer into burn's whole-module [`ModuleOptimizer`].

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{ModuleOptimizer, Optimizer};

/// `optim` as a [`ModuleOptimizer`], with per-parameter gradient clipping when configured (the
/// `init()` half of every config; `build()` returns the bare optimizer for parameter groups).
pub(crate) fn into_module_optimizer<O: Optimizer>(
    optim: O,
    grad_clipping: Option<&GradientClippingConfig>,
) -> ModuleOptimizer {
    let module_optim = ModuleOptimizer::from(optim);
    match grad_clipping {
        Some(config) => module_optim.with_grad_clipping(config.init()),
        None => module_optim,
    }
}
