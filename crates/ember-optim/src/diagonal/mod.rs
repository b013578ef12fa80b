//! Diagonal root-free methods (Lin et al., ICML 2024): RF-RMSProp, RF-AdaGrad, RF-AdamW.

mod rf_adagrad;
mod rf_adamw;
mod rf_rmsprop;

pub use rf_adagrad::{RfAdaGrad, RfAdaGradConfig};
pub use rf_adamw::{RfAdamW, RfAdamWConfig};
pub use rf_rmsprop::{RfRmsProp, RfRmsPropConfig, RootFreeDiagonalState};
