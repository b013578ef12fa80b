#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every config's `validate`: its defaults pass, and one value out of range is refused with
    /// an error naming the field (and, in the message, the config).
    #[test]
    fn every_config_validates_its_defaults_and_names_a_bad_field() {
        type Validation = Result<(), OptimConfigError>;
        let cases: Vec<(&str, &str, Validation, Validation)> = vec![
            (
                "RfRmsPropConfig",
                "beta2",
                RfRmsPropConfig::new(32).validate(),
                RfRmsPropConfig::new(32).with_beta2(1.5).validate(),
            ),
            (
                "RfAdaGradConfig",
                "damping",
                // β2 > 1 is fine for a running sum (not for RF-RMSProp's moving average).
                RfAdaGradConfig::new(32).with_beta2(1.5).validate(),
                RfAdaGradConfig::new(32).with_damping(-1.0).validate(),
            ),
            (
                "RfAdamWConfig",
                "beta1",
                RfAdamWConfig::new(32).validate(),
                RfAdamWConfig::new(32).with_beta1(1.5).validate(),
            ),
            (
                "IfShampooConfig",
                "update_every",
                IfShampooConfig::new(32).validate(),
                IfShampooConfig::new(32).with_update_every(0).validate(),
            ),
            (
                "ShampooConfig",
                "root_iterations",
                ShampooConfig::new().validate(),
                ShampooConfig::new().with_root_iterations(0).validate(),
            ),
            (
                "SignGdConfig",
                "weight_decay",
                SignGdConfig::new().validate(),
                SignGdConfig::new().with_weight_decay(-1.0).validate(),
            ),
            (
                "SignumConfig",
                "beta",
                SignumConfig::new().validate(),
                SignumConfig::new().with_beta(1.0).validate(),
            ),
            (
                "GamConfig",
                "alpha",
                GamConfig::new().validate(),
                GamConfig::new().with_alpha(2.0).validate(),
            ),
            (
                "SamConfig",
                "rho",
                SamConfig::new().validate(),
                SamConfig::new().with_rho(0.0).validate(),
            ),
            (
                "ZoSgdConfig",
                "directions",
                ZoSgdConfig::new().validate(),
                ZoSgdConfig::new().with_directions(0).validate(),
            ),
            (
                "VamoConfig",
                "alpha",
                VamoConfig::new().validate(),
                VamoConfig::new().with_alpha(Some(2.0)).validate(),
            ),
            (
                "SvrgConfig",
                "snapshot_batches",
                SvrgConfig::new().validate(),
                SvrgConfig::new().with_snapshot_batches(Some(0)).validate(),
            ),
            (
                "PlrsConfig",
                "max_lr",
                PlrsConfig::new(0.07, 0.1).validate(),
                PlrsConfig::new(0.1, 0.07).validate(),
            ),
            (
                "WarmupDecayConfig",
                "warmup_steps",
                WarmupDecayConfig::new(0.1, 10)
                    .with_warmup_steps(10)
                    .validate(),
                WarmupDecayConfig::new(0.1, 10)
                    .with_warmup_steps(11)
                    .validate(),
            ),
        ];
        for (config, field, good, bad) in cases {
            assert_eq!(good, Ok(()), "{config}");
            let err = bad.expect_err(config);
            assert_eq!(err.field, field, "{config}");
            assert!(
                err.message.starts_with(&format!("{config}.{field} = ")),
                "{config}: {}",
                err.message
            );
        }
    }

    /// `build` refuses what `validate` refuses, with the same error (it runs `validate` first).
    #[test]
    fn build_fails_with_validates_error() {
        let config = RfAdamWConfig::new(32).with_damping(-1.0);
        assert_eq!(config.build().err(), config.validate().err());
        let config = RfAdaGradConfig::new(0);
        assert_eq!(config.try_init().err(), config.validate().err());
        let config = ShampooConfig::new().with_max_dim(0);
        assert_eq!(config.build().err(), config.validate().err());
        let config = WarmupDecayConfig::new(0.1, 0);
        assert_eq!(config.build().err(), config.validate().err());
    }
}
