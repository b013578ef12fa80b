//! Helpers shared by the integration tests that run on the wgpu backend.

/// Whether a Vulkan driver (for example Mesa's lavapipe) is installed; the wgpu tests skip, with a
/// message, when none is.
pub fn vulkan_driver_available() -> bool {
    let found = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".json"));
    if !found {
        eprintln!("skipping: no Vulkan driver (install mesa-vulkan-drivers libvulkan1)");
    } else if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa prints a warning on every start without it; any writable directory will do.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    found
}
