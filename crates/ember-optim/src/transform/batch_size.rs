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
/// * **per step**: `init_with_batch_size_handle()` (or `build()` and the bare optimizer's
///   `batch_size()`) also hands back this handle, holding the config's `batch_size` as its starting
///   value; the training code calls [`set`](Self::set) with each batch's size before the optimizer
///   steps (in burn-train, from `TrainStep::step`, which sees the batch). Every clone of the
///   handle — including the one inside a cloned
///   [`ModuleOptimizer`](burn::optim::ModuleOptimizer) — reads the same value.
///
/// B is stated once, in the config: a handle only comes out of an optimizer built from one, so it
/// always holds a valid B and never disagrees with a second copy. It is read once per parameter
/// tensor per step (a relaxed atomic load); set it before `ModuleOptimizer::step` runs, not during.
///
/// ```
/// use ember_optim::RfRmsPropConfig;
///
/// let (optim, batch_size) = RfRmsPropConfig::new(64).init_with_batch_size_handle();
/// assert_eq!(batch_size.get(), 64); // the config's B is the starting value
/// batch_size.set(10)?; // e.g. the last, partial batch of an epoch
/// assert_eq!(batch_size.get(), 10);
/// assert!(batch_size.set(0).is_err());
/// assert_eq!(batch_size.get(), 10);
/// # Ok::<(), ember_optim::OptimConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BatchSizeHandle {
    /// Always ≥ 1: it starts at a validated config's B and `set` refuses 0.
    value: Arc<AtomicUsize>,
}

impl BatchSizeHandle {
    /// A handle starting at a config's already validated `batch_size` (≥ 1).
    pub(crate) fn starting_at(batch_size: usize) -> Self {
        debug_assert!(batch_size >= 1, "a validated config's batch size");
        Self {
            value: Arc::new(AtomicUsize::new(batch_size.max(1))),
        }
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

    /// The current B.
    pub fn get(&self) -> usize {
        self.value.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value() {
        let handle = BatchSizeHandle::starting_at(4);
        let clone = handle.clone();
        assert_eq!(clone.get(), 4);
        handle.set(32).unwrap();
        assert_eq!(clone.get(), 32);
        clone.set(7).unwrap();
        assert_eq!(handle.get(), 7);
    }

    #[test]
    fn zero_is_rejected_named_and_ignored() {
        let handle = BatchSizeHandle::starting_at(5);
        let err = handle.set(0).unwrap_err();
        assert_eq!(err.field, "batch_size");
        assert!(err.to_string().contains("BatchSizeHandle.batch_size = 0"));
        assert_eq!(handle.get(), 5);
    }
}
