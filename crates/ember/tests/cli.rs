//! The `ember` binary as a user meets it: a short run succeeds and reports, bad input is refused
//! with a message naming what was wrong.

use std::path::Path;
use std::process::{Command, Output};

fn ember(args: &[&str], runs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .arg("--runs-dir")
        .arg(runs)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ember runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn train_on_generated_data_reports_accuracy_and_writes_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = ember(
        &[
            "train",
            "--train-subset",
            "128",
            "--test-subset",
            "64",
            "--epochs",
            "1",
            "--widths",
            "8,16",
            "--batch-size",
            "32",
            "--optimizer",
            "adam",
            "--run-name",
            "quick",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test accuracy:"), "{stdout}");
    let run = dir.path().join("quick");
    for file in ["config.json", "metrics.jsonl", "summary.json"] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["optimizer"]["name"], "adam");
    assert_eq!(
        config["optimizer"]["epsilon"], 1e-8,
        "PyTorch's eps, not burn's 1e-5"
    );

    // Running again under the same name without --resume must not clobber the run.
    let again = ember(
        &[
            "train",
            "--train-subset",
            "128",
            "--test-subset",
            "64",
            "--epochs",
            "1",
            "--widths",
            "8,16",
            "--batch-size",
            "32",
            "--optimizer",
            "adam",
            "--run-name",
            "quick",
        ],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["train", "--lr", "-0.1"], "lr"),
        (&["train", "--momentum", "1.5"], "momentum"),
        (&["train", "--device", "cuda"], "unknown device `cuda`"),
        (
            &["train", "--dataset", "imagenet"],
            "unknown data set `imagenet`",
        ),
        (
            &[
                "train",
                "--dataset",
                "cifar10",
                "--data-dir",
                "/nonexistent/ember-data",
            ],
            "/nonexistent/ember-data",
        ),
    ];
    for (args, expected) in cases {
        let out = ember(args, dir.path());
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: expected `{expected}` in: {}",
            stderr(&out)
        );
    }
}
