//! Learning-rate schedulers that plug into burn's [`LrScheduler`](burn::lr_scheduler::LrScheduler)
//! and [`ModuleLrScheduler`](burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler).

mod plrs;

pub use plrs::{Plrs, PlrsConfig};
