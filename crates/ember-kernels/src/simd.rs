//! The widest vector instructions this CPU has, chosen at run time for the kernels' loops.
//!
//! The build targets baseline x86-64 (SSE2), so that one binary runs everywhere; a loop written
//! once with [`simd_versions`] is also compiled for AVX2 and AVX-512 and the best the CPU
//! supports runs (`is_x86_feature_detected!`, cached by std). The loops use no fused
//! multiply-add and reduce in a fixed lane order, so every version gives the same bits.

/// Instruction sets with their own compiled version, best first: 0 is AVX-512F, 1 is AVX2.
#[cfg(test)]
pub(crate) const VERSIONS: usize = 2;

/// Whether this CPU runs version `version` (see [`VERSIONS`]).
pub(crate) fn available(version: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match version {
            0 => std::arch::is_x86_feature_detected!("avx512f"),
            1 => std::arch::is_x86_feature_detected!("avx2"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = version;
        false
    }
}

/// The best version this CPU runs, `None` for the portable one.
pub(crate) fn best() -> Option<usize> {
    (0..2).find(|&version| available(version))
}

/// Defines `fn NAME(args)` that runs `body` compiled for the best instruction set available,
/// and a module `NAME` whose `with(version, args)` runs a chosen version (for tests).
macro_rules! simd_versions {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        // A kernel's slices and sizes are its arguments, however many there are.
        #[allow(clippy::too_many_arguments)]
        mod $name {
            #[allow(unused_imports)] // bodies that call nothing of their module's
            use super::*;

            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }

            /// Runs version `version` of crate::simd (`None`: the portable one). A version the
            /// CPU does not support runs the portable one.
            pub(super) fn with(version: Option<usize>, $($arg: $ty),*) $(-> $ret)? {
                match version.filter(|&v| $crate::simd::available(v)) {
                    // SAFETY: `available` checked that the CPU has the instructions.
                    #[cfg(target_arch = "x86_64")]
                    Some(0) => unsafe { avx512($($arg),*) },
                    #[cfg(target_arch = "x86_64")]
                    Some(1) => unsafe { avx2($($arg),*) },
                    _ => portable($($arg),*),
                }
            }
        }

        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) $(-> $ret)? {
            $name::with($crate::simd::best(), $($arg),*)
        }
    };
}

pub(crate) use simd_versions;
