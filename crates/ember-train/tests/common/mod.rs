//! Helpers shared by the integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether the wgpu tests can run here: a software Vulkan driver (Mesa's lavapipe, what `.ci/run`
/// installs) and the Vulkan loader are present.
///
/// Where they are not, the calling test prints `SKIPPED: <test>: <reason>` straight to the
/// terminal (past the test harness's output capture, so the skip shows in a normal `cargo test`
/// run) and should return; under `CI=true` it panics instead, since CI installs the driver and a
/// green run that tested nothing would hide its loss.
pub fn wgpu_tests_can_run(test: &str) -> bool {
    let Err(reason) = software_vulkan() else {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // Mesa prints a warning on every start without it; any private folder will do.
            std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        panic!(
            "{test}: CI=true but the wgpu tests cannot run: {reason} (.ci/run installs \
             mesa-vulkan-drivers libvulkan1)"
        );
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "SKIPPED: {test}: {reason} (install mesa-vulkan-drivers libvulkan1; CI=true makes this a failure)"
    );
    false
}

/// `Ok` when a software Vulkan driver and the loader are installed, else why not.
fn software_vulkan() -> Result<PathBuf, String> {
    // The loader's own override: when set, only the files it names are drivers.
    let listed = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
        .iter()
        .find_map(|name| std::env::var_os(name).filter(|v| !v.is_empty()));
    let candidates: Vec<PathBuf> = match &listed {
        Some(files) => std::env::split_paths(files).collect(),
        None => ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect(),
    };
    let driver = candidates
        .into_iter()
        .find(|path| is_software_driver(path))
        .ok_or_else(|| match &listed {
            Some(files) => format!(
                "no software Vulkan driver among VK_DRIVER_FILES/VK_ICD_FILENAMES = {}",
                files.to_string_lossy()
            ),
            None => "no software Vulkan driver (lavapipe) in /usr/share/vulkan/icd.d or \
                     /etc/vulkan/icd.d"
                .to_string(),
        })?;
    let loader_dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/lib64",
        "/lib",
        "/usr/local/lib",
    ];
    if !loader_dirs
        .iter()
        .any(|d| Path::new(d).join("libvulkan.so.1").exists())
    {
        return Err("the Vulkan loader libvulkan.so.1 is not installed".into());
    }
    Ok(driver)
}

/// A Vulkan driver manifest (ICD JSON) of a CPU implementation: lavapipe or SwiftShader.
fn is_software_driver(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.ends_with(".json")
        && (name.starts_with("lvp_icd")
            || text.contains("libvulkan_lvp")
            || text.to_lowercase().contains("swiftshader"))
}

/// The loop on image classification of `data`, as the lab builds it.
pub fn train(
    run: &ember_train::RunDir,
    config: &serde_json::Value,
    settings: &ember_train::TrainSettings,
    data: &ember_train::TrainData,
    parts: ember_train::TrainParts<ember_models::SmallCnn>,
    device: &burn::prelude::Device,
    resume: bool,
) -> Result<ember_train::RunSummary, ember_train::TrainError> {
    let task = ember_train::ImageClassification::new(
        data,
        settings.batch_size,
        settings.eval_batch_size,
        settings.seed,
        device,
    )?;
    ember_train::train(run, config, settings, &task, parts, resume)
}
