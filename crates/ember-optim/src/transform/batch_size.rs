//! The batch size B that root-free methods multiply into their curvature estimate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// A shared, settable batch size B.
///
/// Root-free methods (Lin et al., ICML 2024) estimate curvature as `B·g⊙g` (or `B·G Gᵀ`): `g` is
/// the gradient of the *mean* loss over B examples, so `B·g gᵀ` is the curvature scale, and without
/// it the best damping and learning rate move with the batch size. burn's
/// [`Optimizer::step`](burn::optim::Optimizer::step) only sees one tensor and its gradient, so B
/// reaches the optimizer through this handle:
///
/// * a fixed B: set `batch_size: Some(B)` in the config; `build()`/`init()` write it into the
///   optimizer's handle;
/// * a B that changes (last partial batch, gradient accumulation, curriculum): create a handle,
///   pass it to the config's `build_with_batch_size`/`init_with_batch_size`, keep a clone, and call
///   [`set`](Self::set) before each optimizer step. Every clone of the handle — including the
///   optimizer inside a cloned [`ModuleOptimizer`](burn::optim::ModuleOptimizer) — reads the same
///   value.
///
/// A step taken while B is unset panics with a message saying how to set it: a silently wrong B
/// rescales the curvature and makes the tuned damping meaningless.
///
/// B is read once per parameter tensor per step (a relaxed atomic load); set it before calling
/// `ModuleOptimizer::step`, not during.
#[derive(Clone, Debug, Default)]
pub struct BatchSizeHandle {
    /// 0 means "not set yet": a batch size is always at least 1.
    value: Arc<AtomicUsize>,
}

impl BatchSizeHandle {
    /// A handle with no batch size yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle already holding `batch_size`.
    pub fn with_value(batch_size: usize) -> Result<Self, OptimConfigError> {
        let handle = Self::new();
        handle.set(batch_size)?;
        Ok(handle)
    }

    /// Set B for the next steps; rejects 0.
    pub fn set(&self, batch_size: usize) -> Result<(), OptimConfigError> {
        self.set_checked(FieldCheck::new("BatchSizeHandle"), batch_size)
    }

    fn set_checked(&self, check: FieldCheck, batch_size: usize) -> Result<(), OptimConfigError> {
        check.at_least_one("batch_size", batch_size)?;
        self.value.store(batch_size, Ordering::Relaxed);
        Ok(())
    }

    /// The current B, or `None` if it was never set.
    pub fn get(&self) -> Option<usize> {
        match self.value.load(Ordering::Relaxed) {
            0 => None,
            b => Some(b),
        }
    }

    /// The current B; panics naming `optimizer` when it was never set.
    pub(crate) fn expect(&self, optimizer: &str) -> usize {
        self.get().unwrap_or_else(|| {
            panic!(
                "{optimizer}: the batch size B is not set. Give it in the config \
                 (`.with_batch_size(Some(b))`) or build with `init_with_batch_size(handle)` \
                 and call `handle.set(b)` before stepping."
            )
        })
    }

    /// Write a config's fixed batch size into this handle (nothing when `None`).
    pub(crate) fn seeded(
        self,
        config: &'static str,
        batch_size: Option<usize>,
    ) -> Result<Self, OptimConfigError> {
        if let Some(b) = batch_size {
            self.set_checked(FieldCheck::new(config), b)?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value() {
        let handle = BatchSizeHandle::new();
        let clone = handle.clone();
        assert_eq!(clone.get(), None);
        handle.set(32).unwrap();
        assert_eq!(clone.get(), Some(32));
        clone.set(7).unwrap();
        assert_eq!(handle.get(), Some(7));
    }

    #[test]
    fn zero_is_rejected_and_named() {
        let err = BatchSizeHandle::new().set(0).unwrap_err();
        assert_eq!(err.field, "batch_size");
        let err = BatchSizeHandle::new()
            .seeded("RfRmsPropConfig", Some(0))
            .unwrap_err();
        assert_eq!(err.field, "batch_size");
        assert!(err.to_string().contains("RfRmsPropConfig.batch_size = 0"));
    }

    #[test]
    #[should_panic(expected = "batch size B is not set")]
    fn unset_batch_size_panics_with_instructions() {
        BatchSizeHandle::new().expect("RfRmsProp");
    }
}
