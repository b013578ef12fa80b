//! The batch size B that root-free methods multiply into their curvature estimate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// A shared, settable batch size B, for training loops whose batches are not all the same size.
///
/// Root-free methods (Lin et al., ICML 2024) estimate curvature as `B·g⊙g` (or `B·G Gᵀ`): `g` is
/// the gradient of the *mean* loss over B examples, so `B·g gᵀ` is the curvature scale, and without
/// it the best damping and learning rate move with the batch size. burn's
/// [`Optimizer::step`](burn::optim::Optimizer::step) only sees one tensor and its gradient, so B
/// reaches the optimizer in one of two ways, chosen when it is built:
///
/// * **fixed**: the config's required `batch_size` (e.g. `RfRmsPropConfig::new(128).init()`).
///   Right when every batch has B examples — burn's `DataLoader` yields a *smaller last batch*
///   unless the data set's length is a multiple of B, and with a fixed B that one step per epoch
///   over-weights its curvature by `B / b`;
/// * **per step**: a handle passed to `init_with_batch_size` (or `build_with_batch_size`); the
///   config's `batch_size` becomes the handle's starting value and the training code calls
///   [`set`](Self::set) with each batch's size before the optimizer steps (in burn-train, from
///   `TrainStep::step`, which sees the batch). Every clone of the handle — including the one inside
///   a cloned [`ModuleOptimizer`](burn::optim::ModuleOptimizer) — reads the same value.
///
/// B is read once per parameter tensor per step (a relaxed atomic load); set it before
/// `ModuleOptimizer::step` runs, not during.
///
/// ```
/// use ember_optim::{BatchSizeHandle, RfRmsPropConfig};
///
/// let batch_size = BatchSizeHandle::new();
/// let optim = RfRmsPropConfig::new(64).init_with_batch_size(batch_size.clone());
/// assert_eq!(batch_size.get(), 64); // the config's B is the starting value
/// batch_size.set(10)?; // e.g. the last, partial batch of an epoch
/// assert_eq!(batch_size.get(), 10);
/// assert!(batch_size.set(0).is_err());
/// # Ok::<(), ember_optim::OptimConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct BatchSizeHandle {
    /// 0 until an optimizer built with this handle writes its config's B into it; a step only
    /// ever reads a handle its optimizer has seeded, so 0 is never used as a batch size.
    value: Arc<AtomicUsize>,
}

impl BatchSizeHandle {
    /// A handle to pass to a config's `init_with_batch_size`/`build_with_batch_size`, which
    /// write the config's `batch_size` into it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set B for the next steps; rejects 0 (and leaves the value unchanged).
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `batch_size` when it is 0.
    pub fn set(&self, batch_size: usize) -> Result<(), OptimConfigError> {
        FieldCheck::new("BatchSizeHandle").at_least_one("batch_size", batch_size)?;
        self.value.store(batch_size, Ordering::Relaxed);
        Ok(())
    }

    /// The current B (0 only before an optimizer was built with this handle).
    pub fn get(&self) -> usize {
        self.value.load(Ordering::Relaxed)
    }

    /// A fresh handle holding a config's already validated `batch_size`.
    #[cfg(test)]
    pub(crate) fn fixed(batch_size: usize) -> Self {
        let handle = Self::new();
        handle.seed(batch_size);
        handle
    }

    /// Write a config's validated `batch_size` into this handle as its starting value.
    pub(crate) fn seed(&self, batch_size: usize) {
        self.value.store(batch_size.max(1), Ordering::Relaxed);
    }

    /// B for the step being taken.
    pub(crate) fn current(&self) -> usize {
        self.get().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value() {
        let handle = BatchSizeHandle::new();
        let clone = handle.clone();
        assert_eq!(clone.get(), 0);
        handle.set(32).unwrap();
        assert_eq!(clone.get(), 32);
        clone.set(7).unwrap();
        assert_eq!(handle.get(), 7);
    }

    #[test]
    fn zero_is_rejected_named_and_ignored() {
        let handle = BatchSizeHandle::fixed(5);
        let err = handle.set(0).unwrap_err();
        assert_eq!(err.field, "batch_size");
        assert!(err.to_string().contains("BatchSizeHandle.batch_size = 0"));
        assert_eq!(handle.get(), 5);
    }
}
