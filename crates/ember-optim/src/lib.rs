#![doc = include_str!("../README.md")]

// `#[derive(RecordState)]` expands to `crate::RecordState`, `crate::StateSink`, … : it was written
// for use inside burn-optim, so the crate root must name these items.
extern crate alloc;
#[allow(unused_imports)]
use burn::optim::{join_index, join_path, RecordState, StateSink, StateSource};

pub mod closure;
pub use closure::{
    Batch, ClosureOptimizer, ClosureStep, DirectionRule, Gam, GamConfig, Objective, Sam, SamConfig,
    Svrg, SvrgConfig, Vamo, VamoConfig, WithBase, ZoSgd, ZoSgdConfig,
};

pub mod schedule;
pub use schedule::{Decay, Plrs, PlrsConfig, WarmupDecay, WarmupDecayConfig};

pub mod sign;
pub use sign::{SignDescent, SignGd, SignGdConfig, Signum, SignumConfig, SignumState};

mod error;
pub use error::OptimConfigError;

mod assemble;
mod field_check;
#[cfg(test)]
mod test_util;

pub mod transform;
pub use transform::{BatchSizeHandle, CurvatureAccumulation, RootFreeCurvature};

pub mod diagonal;
pub use diagonal::{
    RfAdaGrad, RfAdaGradConfig, RfAdamW, RfAdamWConfig, RfRmsProp, RfRmsPropConfig,
    RootFreeDiagonalState,
};

pub mod kronecker;
pub use kronecker::{
    FactorStructure, IfShampoo, IfShampooConfig, IfShampooState, KroneckerFactor, Shampoo,
    ShampooConfig, ShampooState,
};
