//! Learning-rate schedulers that plug into burn's [`LrScheduler`](burn::lr_scheduler::LrScheduler)
//! and [`ModuleLrScheduler`](burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler).

mod plrs;
mod warmup;

pub use plrs::{Plrs, PlrsConfig};
pub use warmup::{Decay, WarmupDecay, WarmupDecayConfig};
