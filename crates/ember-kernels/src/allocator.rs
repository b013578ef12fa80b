//! Keeping freed tensor buffers in the process for reuse.
//!
//! By default glibc's malloc serves every block above a threshold (128 KiB, raised adaptively up to
//! 32 MiB) with a fresh `mmap` and unmaps it again on `free`. A training step allocates and frees
//! dozens of activation-sized buffers (8 MiB each for SmallCnn's first stage at batch 64), so each
//! step maps them anew and takes a page fault for every 4 KiB of every one of them: on the 2-core
//! AMD EPYC measured, about a quarter of the step's CPU time went to the kernel, and with freed
//! memory kept, burn's own SmallCnn step ran 17 % and the transformer's 27 % faster (`ember bench
//! devices`, the same binary with and without; experiments/cpu-profile/README.md).

/// Largest threshold glibc accepts for serving blocks from the heap (its `HEAP_MAX / 2` on 64-bit).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory at the heap's top kept rather than returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Makes glibc's malloc keep freed blocks up to 32 MiB for reuse instead of unmapping them, for
/// the rest of the process. Call it once, first thing in `main`, in a program that trains on the
/// CPU. Returns whether the setting took (`false` on platforms other than Linux with glibc, where
/// it does nothing). Memory that a step frees stays with the process, so its resident size is
/// that of its largest step, as it is with PyTorch's allocator.
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning parameters; it is safe to call at any
        // time, and the values are in the documented ranges.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_thresholds() {
        assert!(super::reuse_freed_memory());
    }
}
