//! Kronecker-factored methods: IF-Shampoo (inverse- and root-free) and the root-based Shampoo
//! baseline.

mod factor;
mod if_shampoo;
mod inverse_root;
mod shampoo;

pub use factor::{FactorStructure, KroneckerFactor, KroneckerFactors};
pub use if_shampoo::{IfShampoo, IfShampooConfig, IfShampooState};
pub use shampoo::{Shampoo, ShampooConfig, ShampooState};
