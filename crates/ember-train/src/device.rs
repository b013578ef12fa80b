use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

/// Which burn backend and which adapter to train on, as chosen on the command line.
///
/// burn 0.22 picks the backend at run time through the `Device`, so this is the single place that
/// turns a user's choice into one; the rest of the code is backend-agnostic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "backend", content = "index")]
pub enum DeviceChoice {
    /// burn's pure-Rust CPU backend (SIMD + rayon); the fastest CPU option here.
    Flex,
    /// burn's ndarray CPU backend (deprecated upstream, kept for comparison).
    Ndarray,
    /// The default wgpu adapter (the best GPU the driver reports).
    Wgpu,
    /// The n-th discrete GPU through wgpu.
    WgpuGpu(usize),
    /// A software (CPU) wgpu adapter such as Mesa's lavapipe: the GPU code path on a GPU-less machine.
    WgpuCpu,
}

/// The backend was not compiled into this binary, or the name is unknown.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// A name that is no device.
    #[error("unknown device `{0}`: expected flex, ndarray, wgpu, wgpu:N (N-th discrete GPU) or wgpu-cpu (software adapter)")]
    Unknown(String),
    /// A device whose backend this binary was built without (the name and its cargo feature).
    #[error("device `{0}` needs the cargo feature `{1}`, which this build was compiled without")]
    NotCompiled(DeviceChoice, &'static str),
}

impl DeviceChoice {
    /// The training device (autodiff enabled). The same handle without autodiff is `.inner()`.
    pub fn device(&self) -> Result<Device, DeviceError> {
        Ok(self.base_device()?.autodiff())
    }

    fn base_device(&self) -> Result<Device, DeviceError> {
        match self {
            #[cfg(feature = "flex")]
            DeviceChoice::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // deprecated upstream, kept as the comparison baseline
            DeviceChoice::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "wgpu")]
            DeviceChoice::WgpuGpu(index) => {
                Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(*index)))
            }
            #[cfg(feature = "wgpu")]
            DeviceChoice::WgpuCpu => Ok(Device::wgpu(burn::tensor::DeviceKind::Cpu)),
            #[allow(unreachable_patterns)]
            other => Err(DeviceError::NotCompiled(*other, other.feature())),
        }
    }

    /// Makes `Device::default()` resolve to this choice's backend, unless the user already set
    /// `BURN_DEVICE`.
    ///
    /// burn materialises reloaded optimizer state on `Device::default()`, which is wgpu whenever
    /// wgpu is compiled in: resuming a CPU run would otherwise start a GPU adapter, or panic on a
    /// machine without a Vulkan driver. Call this before any other thread starts.
    pub fn pin_as_default(&self) {
        if std::env::var_os("BURN_DEVICE").is_none() {
            let backend = match self {
                DeviceChoice::Flex => "flex",
                DeviceChoice::Ndarray => "ndarray",
                DeviceChoice::Wgpu | DeviceChoice::WgpuGpu(_) | DeviceChoice::WgpuCpu => "wgpu",
            };
            std::env::set_var("BURN_DEVICE", backend);
        }
    }

    /// The cargo feature that compiles this backend in.
    pub fn feature(&self) -> &'static str {
        match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::Ndarray => "ndarray",
            DeviceChoice::Wgpu | DeviceChoice::WgpuGpu(_) | DeviceChoice::WgpuCpu => "wgpu",
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Flex => write!(f, "flex"),
            DeviceChoice::Ndarray => write!(f, "ndarray"),
            DeviceChoice::Wgpu => write!(f, "wgpu"),
            DeviceChoice::WgpuGpu(i) => write!(f, "wgpu:{i}"),
            DeviceChoice::WgpuCpu => write!(f, "wgpu-cpu"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" => Ok(DeviceChoice::Flex),
            "ndarray" => Ok(DeviceChoice::Ndarray),
            "wgpu" => Ok(DeviceChoice::Wgpu),
            "wgpu-cpu" => Ok(DeviceChoice::WgpuCpu),
            other => other
                .strip_prefix("wgpu:")
                .and_then(|i| i.parse().ok())
                .map(DeviceChoice::WgpuGpu)
                .ok_or_else(|| DeviceError::Unknown(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_choice() {
        for text in ["flex", "ndarray", "wgpu", "wgpu:1", "wgpu-cpu"] {
            let choice: DeviceChoice = text.parse().unwrap();
            assert_eq!(choice.to_string(), text);
        }
        let err = "cuda".parse::<DeviceChoice>().unwrap_err();
        assert!(err.to_string().contains("unknown device `cuda`"));
        assert!("wgpu:x".parse::<DeviceChoice>().is_err());
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_gives_an_autodiff_device() {
        assert!(DeviceChoice::Flex.device().unwrap().is_autodiff());
    }
}
