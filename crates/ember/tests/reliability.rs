//! The `ember` binary when things go wrong: a misspelt `--resume`, no font for the plots, a spec
//! whose epochs changed under finished runs, and a GPU stack that would fill stderr with noise.

#[path = "../../ember-train/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

mod output;
use output::{path, stderr, stdout};

fn ember(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ember"));
    command.args(args).env("RUST_LOG", "warn");
    command
}

#[test]
fn resume_of_a_run_that_does_not_exist_lists_the_runs_that_do() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    for name in ["alpha", "beta"] {
        std::fs::create_dir_all(runs.join(name)).unwrap();
        std::fs::write(runs.join(name).join("config.json"), "{}").unwrap();
    }
    let out = ember(&[
        "train",
        "--resume",
        "--run-name",
        "alpah",
        "--runs-dir",
        path(&runs),
    ])
    .env("RUST_LOG", "info")
    .output()
    .unwrap();
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        !text.contains("data: "),
        "refused before loading any data: {text}"
    );
    assert!(
        text.contains("nothing to resume") && text.contains("runs/alpah"),
        "{text}"
    );
    assert!(text.contains("alpha, beta"), "the runs that exist: {text}");
    assert!(!runs.join("alpah").exists(), "no fresh run was started");

    let out = ember(&["train", "--resume", "--runs-dir", path(&runs)])
        .output()
        .unwrap();
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("--run-name") && text.contains("alpha, beta"),
        "{text}"
    );
}

#[test]
fn lr_find_without_a_font_still_writes_and_prints_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("lr-find");
    let out = ember(&[
        "lr-find",
        "--train-subset",
        "256",
        "--test-subset",
        "32",
        "--widths",
        "8,16",
        "--batch-size",
        "16",
        "--steps",
        "20",
        "--start-lr",
        "1e-3",
        "--end-lr",
        "10",
        "--out",
        path(&out_dir),
        "--runs-dir",
        path(dir.path()),
    ])
    .env("EMBER_FONT", "/nonexistent/font.ttf")
    .output()
    .unwrap();
    let (text, printed) = (stderr(&out), stdout(&out));
    assert!(
        out.status.success(),
        "a missing font must not fail lr-find: {text}"
    );
    assert!(
        printed.contains("suggested max_lr") && printed.contains("--scheduler plrs"),
        "the suggestion is printed: {printed}"
    );
    assert!(out_dir.join("lr_find.csv").is_file());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("lr_find.json")).unwrap()).unwrap();
    assert!(
        json["suggestion"]["max_lr"].as_f64().unwrap() > 0.0,
        "{json}"
    );
    assert!(!out_dir.join("lr_find.png").exists());
    assert!(
        text.contains("WARN") && text.contains("lr_find.png") && text.contains("EMBER_FONT"),
        "the missing plot is a warning that says why: {text}"
    );
}

/// A finished run of `spec` for `epochs` in the files `ember train` wrote before the run folder had
/// one contract (`epoch` lines, `final_test_*` summary), which must still read (summary and
/// metrics; no config.json, which `ember compare` would check against the arm's flags).
fn fake_finished_run(run: &Path, epochs: usize) {
    std::fs::create_dir_all(run).unwrap();
    let mut metrics = String::new();
    for epoch in 1..=epochs {
        metrics += &format!(
            "{{\"kind\":\"epoch\",\"step\":{},\"epoch\":{epoch},\"train_loss\":{},\"test_loss\":1.0,\"test_accuracy\":{},\"lr\":0.05,\"wall_time_s\":{epoch}.0,\"images_per_s\":100.0}}\n",
            4 * epoch,
            2.0 / epoch as f64,
            0.3 + 0.1 * epoch as f64
        );
    }
    std::fs::write(run.join("metrics.jsonl"), metrics).unwrap();
    let summary = serde_json::json!({
        "summary": {
            "epochs": epochs, "steps": 4 * epochs, "final_train_loss": 1.0,
            "final_test_loss": 1.0, "final_test_accuracy": 0.5, "best_test_accuracy": 0.5,
            "wall_time_s": 2.0, "train_images_per_s": 100.0, "num_params": 10,
            "resumed_from_epoch": 0, "forward_passes_per_step": 1.0,
            "backward_passes_per_step": 1.0, "skipped_steps": 0
        },
        "config": {}
    });
    std::fs::write(run.join("summary.json"), summary.to_string()).unwrap();
}

#[test]
fn compare_without_a_font_still_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("nofont.toml");
    std::fs::write(
        &spec,
        "name = \"nofont\"\nseeds = [0]\n[model]\nkind = \"mlp\"\n[data]\ndataset = \"generated\"\n\
         [train]\nepochs = 2\nbatch_size = 32\n[[arm]]\nname = \"sgd\"\noptimizer = { name = \"sgd\" }\n\
         scheduler = { name = \"constant\", lr = 0.05 }\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    fake_finished_run(&runs.join("nofont/sgd-s0"), 2);
    let out = ember(&[
        "compare",
        path(&spec),
        "--report-only",
        "--runs-dir",
        path(&runs),
    ])
    .env("EMBER_FONT", "/nonexistent/font.ttf")
    .output()
    .unwrap();
    let text = stderr(&out);
    assert!(
        out.status.success(),
        "a missing font must not fail the report: {text}"
    );
    let results = std::fs::read_to_string(dir.path().join("nofont/results.md")).unwrap();
    assert!(results.contains("| sgd | 1/1 |"), "{results}");
    assert!(!dir
        .path()
        .join("nofont/test-accuracy-vs-epoch.png")
        .exists());
    assert!(
        text.contains("WARN") && text.contains("test-accuracy-vs-epoch.png"),
        "each missing plot is a warning: {text}"
    );
}

#[test]
fn compare_never_rewrites_a_finished_run_for_other_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("epochs.toml");
    let write_spec = |epochs: usize| {
        std::fs::write(
            &spec,
            format!(
                "name = \"epochs\"\nseeds = [0]\n[model]\nkind = \"mlp\"\nhidden = [8]\n\
                 [data]\ndataset = \"generated\"\ntrain_subset = 64\ntest_subset = 32\n\
                 [train]\nepochs = {epochs}\nbatch_size = 32\n\
                 [[arm]]\nname = \"constant\"\noptimizer = {{ name = \"sgd\" }}\n\
                 scheduler = {{ name = \"constant\", lr = 0.05 }}\n\
                 [[arm]]\nname = \"cosine\"\noptimizer = {{ name = \"sgd\" }}\n\
                 scheduler = {{ name = \"cosine\", lr = 0.05 }}\n"
            ),
        )
        .unwrap();
    };
    let runs = dir.path().join("runs");
    let compare = || {
        ember(&["compare", path(&spec), "--runs-dir", path(&runs)])
            .output()
            .unwrap()
    };
    let summary = |arm: &str| std::fs::read(runs.join(format!("epochs/{arm}-s0/summary.json")));
    write_spec(2);
    let out = compare();
    assert!(out.status.success(), "{}", stderr(&out));
    let (constant, cosine) = (summary("constant").unwrap(), summary("cosine").unwrap());

    // Fewer epochs: both finished runs are left alone, and the report does not count them.
    write_spec(1);
    let out = compare();
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    for arm in ["constant", "cosine"] {
        assert!(
            text.contains(&format!(
                "{arm} seed 0: {} finished 2 epochs but the spec asks for 1; left as it is",
                runs.join(format!("epochs/{arm}-s0")).display()
            )),
            "{text}"
        );
    }
    assert_eq!(summary("constant").unwrap(), constant, "summary rewritten");
    assert_eq!(summary("cosine").unwrap(), cosine, "summary rewritten");
    let results = std::fs::read_to_string(dir.path().join("epochs/results.md")).unwrap();
    assert!(results.contains("| constant | 0/1 |"), "{results}");

    // More epochs: the constant schedule resumes exactly; the cosine one spans the run, so its
    // resume is refused naming `epochs`, and its summary stays.
    write_spec(3);
    let out = compare();
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    let resumed: serde_json::Value = serde_json::from_slice(&summary("constant").unwrap()).unwrap();
    assert_eq!(resumed["summary"]["rounds"], 3);
    assert_eq!(resumed["summary"]["resumed_from_round"], 2);
    assert!(
        text.contains("cosine seed 0")
            && text.contains("epochs = 3")
            && text.contains("cosine schedule"),
        "{text}"
    );
    assert_eq!(summary("cosine").unwrap(), cosine, "summary rewritten");
}

/// On the software Vulkan adapter, with neither `RUST_LOG` nor `XDG_RUNTIME_DIR` set: Ember's own
/// progress shows, the autotuner's and Mesa's chatter does not. `RUST_LOG=info` still brings the
/// autotuner back, which also proves the first run did tune kernels.
#[test]
fn gpu_runs_keep_stderr_for_embers_own_messages() {
    if !common::wgpu_tests_can_run("gpu_runs_keep_stderr_for_embers_own_messages") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, rust_log: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ember"));
        command
            .args([
                "train", "--device", "wgpu-cpu", "--model", "mlp", "--hidden", "8",
            ])
            .args([
                "--train-subset",
                "32",
                "--test-subset",
                "16",
                "--batch-size",
                "16",
            ])
            .args(["--epochs", "1", "--quiet", "--run-name", name, "--runs-dir"])
            .arg(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("XDG_RUNTIME_DIR")
            // Tune afresh each time (no tuning results remembered on disk between the runs).
            .env("CUBECL_AUTOTUNE_CACHE", "false");
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let quiet = run("default-filter", None);
    assert!(
        quiet.contains("training Mlp"),
        "Ember's progress is shown: {quiet}"
    );
    assert!(!quiet.contains("Tuning"), "autotuner chatter: {quiet}");
    assert!(
        !quiet.contains("XDG_RUNTIME_DIR"),
        "Mesa's complaint: {quiet}"
    );
    let chatty = run("rust-log-info", Some("info"));
    assert!(
        chatty.contains("Tuning"),
        "RUST_LOG=info shows the autotuner: {chatty}"
    );
}

#[test]
fn study_without_a_font_still_writes_its_results_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, traces) = (dir.path().join("out"), dir.path().join("traces"));
    let out = ember(&["study", "signgd", "--quiet", "--snr", "1"])
        .args(["--steps", "4", "--dim", "40", "--train-size", "4"])
        .args(["--test-size", "10", "--noise-nonzeros", "3"])
        .arg("--out")
        .arg(&out_dir)
        .arg("--traces-dir")
        .arg(&traces)
        .env("EMBER_FONT", "/nonexistent/font.ttf")
        .output()
        .unwrap();
    let text = stderr(&out);
    assert!(
        out.status.success(),
        "a missing font must not fail the study: {text}"
    );
    assert!(out_dir.join("results.md").is_file() && out_dir.join("summary.json").is_file());
    assert!(!out_dir.join("loss-snr1.png").exists());
    assert!(
        text.contains("WARN") && text.contains("loss-snr1.png"),
        "{text}"
    );
}

#[test]
fn compare_refuses_to_report_a_finished_run_under_changed_arm_flags() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("flags.toml");
    let write_spec = |lr: &str| {
        std::fs::write(
            &spec,
            format!(
                "name = \"flags\"\nseeds = [0]\n[model]\nkind = \"mlp\"\nhidden = [8]\n\
                 [data]\ndataset = \"generated\"\ntrain_subset = 64\ntest_subset = 32\n\
                 [train]\nepochs = 1\nbatch_size = 32\n\
                 [[arm]]\nname = \"sgd\"\noptimizer = {{ name = \"sgd\" }}\n\
                 scheduler = {{ name = \"constant\", lr = {lr} }}\n"
            ),
        )
        .unwrap();
    };
    let runs = dir.path().join("runs");
    let compare = |extra: &[&str]| {
        let mut argv = vec!["compare", path(&spec), "--runs-dir", path(&runs)];
        argv.extend_from_slice(extra);
        ember(&argv).output().unwrap()
    };
    write_spec("0.05");
    let out = compare(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = std::fs::read(runs.join("flags/sgd-s0/summary.json")).unwrap();
    let results = std::fs::read(dir.path().join("flags/results.md")).unwrap();

    // The arm now asks for another learning rate: its finished run must not be reported as if it
    // had been trained with it, by a full run or by --report-only.
    write_spec("0.1");
    for extra in [&[][..], &["--report-only"][..]] {
        let out = compare(extra);
        let text = stderr(&out);
        assert!(!out.status.success(), "{extra:?}: {text}");
        assert!(
            text.contains("sgd seed 0") && text.contains("scheduler.lr: 0.05 → 0.1"),
            "{extra:?}: {text}"
        );
    }
    assert_eq!(
        std::fs::read(runs.join("flags/sgd-s0/summary.json")).unwrap(),
        summary
    );
    assert_eq!(
        std::fs::read(dir.path().join("flags/results.md")).unwrap(),
        results
    );

    // Restored, the report is written again.
    write_spec("0.05");
    let out = compare(&["--report-only"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
