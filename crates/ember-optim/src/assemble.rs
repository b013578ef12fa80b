//! Wrapping a per-parameter optimizer into burn's whole-module [`ModuleOptimizer`], and the
//! infallible `init()` every config offers beside its fallible `try_init()`.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{ModuleOptimizer, Optimizer};

use crate::OptimConfigError;

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

/// The value of a `try_init()`, or a panic with its error's message: `init()` is the drop-in for
/// burn's infallible `AdamConfig::init()`, and an invalid config must fail loudly there, naming
/// the field, rather than train with a value the method was never meant to see.
pub(crate) fn or_fail<T>(result: Result<T, OptimConfigError>) -> T {
    result.unwrap_or_else(|err| panic!("{err}"))
}

/// The `init`/`try_init` pair of a per-parameter optimizer's config, written once: the config has
/// `build()` (validating, bare optimizer) and a `grad_clipping` field. With `batch_size`, also the
/// pair handing back the [`BatchSizeHandle`](crate::BatchSizeHandle) the optimizer reads B from;
/// the bare optimizer then has `batch_size()`.
macro_rules! module_optimizer_init {
    () => {
        /// The whole-module optimizer (with gradient clipping when configured): the drop-in for
        /// `AdamConfig::new().init()`.
        ///
        /// # Panics
        ///
        /// On an invalid config, with [`try_init`](Self::try_init)'s message naming the field.
        pub fn init(&self) -> burn::optim::ModuleOptimizer {
            crate::assemble::or_fail(self.try_init())
        }

        /// [`init`](Self::init), returning the error naming the bad field instead of panicking.
        ///
        /// # Errors
        ///
        /// An [`OptimConfigError`](crate::OptimConfigError) naming the first field out of range.
        pub fn try_init(&self) -> Result<burn::optim::ModuleOptimizer, crate::OptimConfigError> {
            let optim = self.build()?;
            Ok(crate::assemble::into_module_optimizer(
                optim,
                self.grad_clipping.as_ref(),
            ))
        }
    };
    (batch_size) => {
        crate::assemble::module_optimizer_init!();

        /// [`init`](Self::init), and the handle it reads B from at every step, starting at the
        /// config's `batch_size`: set it from each batch when batches differ in size (see
        /// [`BatchSizeHandle`](crate::BatchSizeHandle)).
        ///
        /// # Panics
        ///
        /// As [`init`](Self::init).
        pub fn init_with_batch_size_handle(
            &self,
        ) -> (burn::optim::ModuleOptimizer, crate::BatchSizeHandle) {
            crate::assemble::or_fail(self.try_init_with_batch_size_handle())
        }

        /// [`init_with_batch_size_handle`](Self::init_with_batch_size_handle), returning the
        /// error instead of panicking.
        ///
        /// # Errors
        ///
        /// An [`OptimConfigError`](crate::OptimConfigError) naming the first field out of range.
        pub fn try_init_with_batch_size_handle(
            &self,
        ) -> Result<(burn::optim::ModuleOptimizer, crate::BatchSizeHandle), crate::OptimConfigError>
        {
            let optim = self.build()?;
            let handle = optim.batch_size().clone();
            Ok((
                crate::assemble::into_module_optimizer(optim, self.grad_clipping.as_ref()),
                handle,
            ))
        }
    };
}
pub(crate) use module_optimizer_init;
