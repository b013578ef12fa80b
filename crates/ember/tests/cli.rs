//! The `ember` binary as a user meets it: a short run succeeds and reports, bad input is refused
//! with a message naming what was wrong.

use std::path::Path;
use std::process::{Command, Output};

mod output;
use output::{stderr, stdout};

fn ember(args: &[&str], runs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .arg("--runs-dir")
        .arg(runs)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ember runs")
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
fn transformer_trains_on_noisy_images_and_records_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = ember(
        &[
            "train",
            "--model",
            "transformer",
            "--dim",
            "16",
            "--heads",
            "2",
            "--mlp-dim",
            "32",
            "--pool",
            "mean",
            "--pixel-noise",
            "0.05",
            "--train-subset",
            "128",
            "--test-subset",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--optimizer",
            "adamw",
            "--run-name",
            "tf",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.path().join("tf");
    assert!(run.join("summary.json").exists());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"], "transformer");
    assert_eq!(config["transformer"]["dim"], 16);
    assert_eq!(config["transformer"]["patch_size"], 4);
    assert_eq!(config["transformer"]["pool"], "mean");
    assert_eq!(config["pixel_noise"], 0.05);
    assert!(
        config.get("widths").is_none(),
        "cnn settings leak: {config}"
    );
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 13] = [
        (&["train", "--lr", "-0.1"], "lr"),
        // A run name is a folder under --runs-dir, never a path out of it.
        (
            &["train", "--run-name", "../../escaped"],
            "--run-name \"../../escaped\": a run's name is one folder name",
        ),
        (&["train", "--run-name", "/tmp/abs"], "not a path"),
        (&["train", "--run-name", "a/b", "--resume"], "not a path"),
        (
            &["train", "--optimizer", "gam", "--gam-beta", "1.5"],
            "GamConfig.beta = 1.5",
        ),
        (
            &["train", "--optimizer", "sam", "--base-optimizer", "gam"],
            "--base-optimizer must be a per-parameter optimizer",
        ),
        (
            &["train", "--optimizer", "vamo", "--zo-directions", "0"],
            "directions",
        ),
        (&["train", "--momentum", "1.5"], "momentum"),
        (
            &["train", "--model", "transformer", "--patch-size", "5"],
            "patch_size",
        ),
        (&["train", "--pixel-noise", "-0.1"], "pixel_noise"),
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

#[test]
fn lr_find_writes_its_curve_and_prints_a_plrs_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("lr-find");
    let out = ember(
        &[
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
            out_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ember train") && stdout.contains("--scheduler plrs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--min-lr") && stdout.contains("--max-lr"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("--steps") && !stdout.contains("--end-lr"),
        "lr-find's own flags are not for `ember train`: {stdout}"
    );
    let csv = std::fs::read_to_string(out_dir.join("lr_find.csv")).unwrap();
    assert!(csv.starts_with("step,lr,loss,smoothed_loss\n"), "{csv}");
    assert!(csv.lines().count() > 2);
    let png = std::fs::read(out_dir.join("lr_find.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("lr_find.json")).unwrap()).unwrap();
    let (min, max) = (
        json["suggestion"]["min_lr"].as_f64().unwrap(),
        json["suggestion"]["max_lr"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min < max, "{json}");
    assert_eq!(json["config"]["optimizer"]["name"], "sgd");

    let bad = ember(&["lr-find", "--end-lr", "1e-6"], dir.path());
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("end_lr"), "{}", stderr(&bad));
}

/// `ember` with arguments only (no `--runs-dir`).
fn ember_bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ember runs")
}

#[test]
fn plot_draws_several_runs_from_their_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (name, accuracies) in [("a", [0.3, 0.5, 0.6]), ("b", [0.2, 0.4, 0.65])] {
        let run = dir.path().join(name);
        std::fs::create_dir_all(&run).unwrap();
        let mut lines = String::new();
        for (epoch, accuracy) in accuracies.iter().enumerate() {
            let step = 10 * (epoch + 1);
            lines += &format!(
                "{{\"kind\":\"step\",\"step\":{step},\"epoch\":{},\"train_loss\":{},\"lr\":0.1,\"wall_time_s\":{step},\"images_per_s\":100}}\n",
                epoch + 1,
                2.0 - accuracy
            );
            lines += &format!(
                "{{\"kind\":\"epoch\",\"step\":{step},\"epoch\":{},\"train_loss\":1.0,\"test_loss\":{},\"test_accuracy\":{accuracy},\"lr\":0.1,\"wall_time_s\":{step},\"images_per_s\":100}}\n",
                epoch + 1,
                1.0 - accuracy
            );
        }
        std::fs::write(run.join("metrics.jsonl"), lines).unwrap();
        runs.push(run);
    }
    let runs_arg = format!("{},{}", runs[0].display(), runs[1].display());
    let png = dir.path().join("accuracy.png");
    let out = ember_bare(&[
        "plot",
        "--runs",
        &runs_arg,
        "--labels",
        "plrs,cosine",
        "--x",
        "epoch",
        "--y",
        "test_accuracy",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");

    let svg = dir.path().join("loss.svg");
    let out = ember_bare(&[
        "plot",
        "--runs",
        &runs_arg,
        "--x",
        "step",
        "--y",
        "train_loss",
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg"),
        "default labels are the folder names"
    );
    assert!(text.contains("\na\n") && text.contains("\nb\n"), "{text}");

    let runs_and_out = |out: &'static str| vec!["plot", "--runs", runs_arg.as_str(), "--out", out];
    let cases: [(Vec<&str>, &str); 3] = [
        (
            [runs_and_out("x.png"), vec!["--labels", "only-one"]].concat(),
            "one label per run",
        ),
        (runs_and_out("accuracy.gif"), "accuracy.gif"),
        (
            vec!["plot", "--runs", "/nonexistent/run", "--out", "x.png"],
            "/nonexistent/run",
        ),
    ];
    for (args, expected) in cases {
        let out = ember_bare(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: expected `{expected}` in: {}",
            stderr(&out)
        );
    }
}

#[test]
fn multi_pass_optimizers_train_and_report_their_passes() {
    let dir = tempfile::tempdir().unwrap();
    // (optimizer, forward passes per step, backward passes per step) on 4 steps of 32 images: a
    // VAMO/SVRG snapshot covers the 4 full-data batches once per epoch.
    let cases = [
        ("gam", 4.0, 4.0),
        ("sam", 2.0, 2.0),
        ("vamo", 5.0, 1.0),
        ("svrg", 3.0, 3.0),
    ];
    for (optimizer, forward, backward) in cases {
        let out = ember(
            &[
                "train",
                "--model",
                "mlp",
                "--hidden",
                "16",
                "--optimizer",
                optimizer,
                "--base-optimizer",
                "adamw",
                "--train-subset",
                "128",
                "--test-subset",
                "64",
                "--batch-size",
                "32",
                "--epochs",
                "1",
                "--run-name",
                optimizer,
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{optimizer}: {}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(optimizer).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            summary["summary"]["forward_passes_per_step"], forward,
            "{optimizer}"
        );
        assert_eq!(
            summary["summary"]["backward_passes_per_step"], backward,
            "{optimizer}"
        );
        assert_eq!(summary["config"]["optimizer"]["name"], optimizer);
        assert_eq!(summary["config"]["optimizer"]["base"]["name"], "adamw");
    }
}

#[test]
fn compare_runs_every_arm_then_skips_finished_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tiny.toml");
    std::fs::write(
        &spec,
        r#"
name = "tiny"
seeds = [0, 1]
[model]
kind = "mlp"
hidden = [16]
[data]
dataset = "generated"
train_subset = 128
test_subset = 64
[train]
epochs = 1
batch_size = 32
[[arm]]
name = "sgd"
optimizer = { name = "sgd" }
scheduler = { name = "constant", lr = 0.05 }
[[arm]]
name = "sam"
optimizer = { name = "sam" }
scheduler = { name = "constant", lr = 0.05 }
[[arm]]
name = "someday"
pending = "its optimizer does not exist yet"
"#,
    )
    .unwrap();
    let compare = |extra: &[&str]| {
        let mut args = vec!["compare", spec.to_str().unwrap()];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(&args)
            .arg("--runs-dir")
            .arg(dir.path().join("runs"))
            .env("RUST_LOG", "info")
            .output()
            .expect("ember runs")
    };
    let out = compare(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Asking for a second epoch resumes every run from its epoch-1 checkpoint.
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replace("epochs = 1", "epochs = 2")).unwrap();
    let out = compare(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/tiny/sam-s1/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["summary"]["resumed_from_round"], 1);
    assert_eq!(summary["summary"]["rounds"], 2);
    let report = dir.path().join("tiny");
    let results = std::fs::read_to_string(report.join("results.md")).unwrap();
    for expected in [
        "| sgd | 2/2 |",
        "| sam | 2/2 |",
        "| someday | – | pending: its optimizer does not exist yet",
    ] {
        assert!(
            results.contains(expected),
            "`{expected}` missing from:\n{results}"
        );
    }
    assert!(
        results.contains("2.00 + 2.00"),
        "SAM's passes per step:\n{results}"
    );
    for plot in ["test-accuracy-vs-epoch.png", "train-loss-vs-wall.png"] {
        assert!(report.join(plot).exists(), "{plot}");
    }
    for run in ["sgd-s0", "sgd-s1", "sam-s0", "sam-s1"] {
        assert!(
            dir.path()
                .join("runs/tiny")
                .join(run)
                .join("summary.json")
                .exists(),
            "{run}"
        );
    }

    // A second invocation trains nothing: every run finished.
    let again = compare(&[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).matches("finished earlier, skipped").count(),
        4,
        "{}",
        stderr(&again)
    );

    // A typo in the spec is refused with the key named.
    std::fs::write(
        &spec,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("epochs = 2", "epoch = 2"),
    )
    .unwrap();
    let bad = compare(&["--report-only"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("epoch"), "{}", stderr(&bad));
}

#[test]
fn compare_help_says_that_a_sweep_tunes_the_arms() {
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["compare", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for expected in ["[sweep]", "validation split", "reference", "target"] {
        assert!(
            help.contains(expected),
            "`{expected}` missing from:\n{help}"
        );
    }
}

#[test]
fn bench_report_writes_json_and_markdown_for_every_optimizer() {
    let dir = tempfile::tempdir().unwrap();
    let (json, markdown) = (dir.path().join("bench.json"), dir.path().join("bench.md"));
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["bench", "report", "--device", "flex"])
        .args([
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--json",
        ])
        .arg(&json)
        .arg("--markdown")
        .arg(&markdown)
        .env("RUST_LOG", "warn")
        .env("EMBER_COMMIT", "test123")
        .output()
        .expect("ember runs");
    assert!(out.status.success(), "{}", stderr(&out));

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["ember_commit"], "test123");
    assert_eq!(report["devices"], serde_json::json!(["flex"]));
    // 10 per-parameter optimizers (and IF-Shampoo and Shampoo again at T = 2), and Adam + 5
    // closure optimizers, for each of the two models.
    assert_eq!(report["updates"].as_array().unwrap().len(), 24);
    let labels: Vec<&str> = report["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["optimizer"].as_str())
        .collect();
    assert!(labels.contains(&"if-shampoo (T = 2)"), "{labels:?}");
    assert_eq!(report["whole_steps"].as_array().unwrap().len(), 12);
    assert_eq!(report["end_to_end"].as_array().unwrap().len(), 2);
    let gam = report["whole_steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["optimizer"] == "gam")
        .unwrap();
    assert_eq!(gam["forward_per_step"], 4.0);
    assert_eq!(gam["backward_per_step"], 4.0);
    assert_eq!(report["updates"][0]["optimizer"], "adam");
    // Every ratio to Adam is a finite, positive number (a zero or missing Adam timing would make
    // them infinite, NaN or null). Adam's own row is 1 by definition, so it proves nothing.
    let rows = report["updates"].as_array().unwrap().iter();
    for row in rows.chain(report["whole_steps"].as_array().unwrap()) {
        let ratio = row["relative_to_adam"].as_f64().unwrap_or(f64::NAN);
        assert!(ratio.is_finite() && ratio > 0.0, "{row}");
    }

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("ember commit `test123`"), "{md}");
    assert!(md.contains("### TwoLayerTransformer"), "{md}");
    assert!(md.contains("| `svrg` (sgd) |"), "{md}");
    assert!(md.contains("wgpu (GPU)"), "{md}");
}

#[test]
fn bench_profile_times_every_layer_and_reads_torch_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (json, markdown) = (dir.path().join("ember.json"), dir.path().join("profile.md"));
    let profile = |torch: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(["bench", "profile", "--batch-size", "2", "--reps", "2"])
            .args(["--warmup", "0", "--torch"])
            .arg(torch)
            .arg("--json")
            .arg(&json)
            .arg("--markdown")
            .arg(&markdown)
            .env("RUST_LOG", "warn")
            .output()
            .expect("ember runs")
    };
    // A torch profile that is not one is refused, naming the file, before any timing.
    let bad = dir.path().join("torch.json");
    std::fs::write(&bad, "{\"framework\": \"torch\"").unwrap();
    let out = profile(&bad);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("torch.json"), "{}", stderr(&out));
    assert!(!json.exists());

    // A hand-written PyTorch profile (tests/data/profile.json) is read and shown beside it.
    std::fs::copy(
        env!("CARGO_MANIFEST_DIR").to_string() + "/tests/data/profile.json",
        &bad,
    )
    .unwrap();
    let out = profile(&bad);
    assert!(out.status.success(), "{}", stderr(&out));
    let ember: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let parts = ember["parts"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["layer"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 24, "{names:?}");
    assert_eq!((names[0], names[23]), ("conv1", "loss"));
    assert_eq!(parts[0]["input"], serde_json::json!([2, 3, 32, 32]));
    assert_eq!(parts[22]["output"], serde_json::json!([2, 10]));
    for part in parts {
        let (f, b) = (part["forward_ms"].as_f64(), part["backward_ms"].as_f64());
        assert!(
            f.is_some_and(|t| t > 0.0) && b.is_some_and(|t| t > 0.0),
            "{part}"
        );
    }
    assert!(ember["step"]["images_per_s"].as_f64().unwrap() > 0.0);
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("| conv | "), "{md}");
    let conv1 = md.lines().find(|l| l.starts_with("| conv1 |")).unwrap();
    assert!(
        conv1.contains("| 1.00 ms | 2.00 ms |"),
        "torch's figures beside Ember's: {conv1}"
    );
    assert!(
        md.contains("| `aten::convolution_backward` | 1.00 s | 30 |"),
        "{md}"
    );
}

#[test]
fn bench_profile_splits_the_transformer_into_attention_parts_named_as_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("ember.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args([
            "bench",
            "profile",
            "--model",
            "transformer",
            "--batch-size",
            "2",
        ])
        .args(["--reps", "1", "--warmup", "0", "--json"])
        .arg(&json)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ember runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let ember: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(ember["model"], "TwoLayerTransformer");
    let parts = ember["parts"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["layer"].as_str().unwrap()).collect();
    let block = |b: usize| {
        [
            "norm{}a",
            "qkv{}",
            "scores{}",
            "softmax{}",
            "context{}",
            "out{}",
            "residual{}a",
        ]
        .into_iter()
        .chain(["norm{}b", "mlp_in{}", "gelu{}", "mlp_out{}", "residual{}b"])
        .map(move |n| n.replace("{}", &b.to_string()))
    };
    let expected: Vec<String> = ["patchify", "embed", "tokens"]
        .into_iter()
        .map(String::from)
        .chain(block(1))
        .chain(block(2))
        .chain(["norm", "head", "loss"].into_iter().map(String::from))
        .collect();
    assert_eq!(names, expected);
    let shape = |name: &str, field: &str| {
        let part = parts.iter().find(|p| p["layer"] == name).unwrap();
        part[field].clone()
    };
    // 64 patches of 4×4×3 and a class token; 4 heads of 16.
    assert_eq!(shape("embed", "input"), serde_json::json!([2, 64, 48]));
    assert_eq!(shape("qkv1", "output"), serde_json::json!([2, 4, 65, 16]));
    assert_eq!(
        shape("scores2", "output"),
        serde_json::json!([2, 4, 65, 65])
    );
    assert_eq!(shape("context1", "output"), serde_json::json!([2, 65, 64]));
    assert_eq!(shape("gelu1", "input"), serde_json::json!([2, 65, 128]));
    assert_eq!(shape("loss", "output"), serde_json::json!([]));
    assert!(ember["step"]["images_per_s"].as_f64().unwrap() > 0.0);
    assert!(ember["batch_assembly_ms"].is_null());
}

#[test]
fn study_signgd_writes_traces_plots_and_results_and_refuses_a_bad_snr() {
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, traces) = (dir.path().join("out"), dir.path().join("traces"));
    let study = |snr: &str| {
        Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(["study", "signgd", "--quiet", "--snr", snr])
            .args(["--steps", "6", "--dim", "40", "--train-size", "4"])
            .args(["--test-size", "10", "--noise-nonzeros", "3"])
            .arg("--out")
            .arg(&out_dir)
            .arg("--traces-dir")
            .arg(&traces)
            .env("RUST_LOG", "warn")
            .output()
            .expect("ember runs")
    };
    let out = study("1,0.5");
    assert!(out.status.success(), "{}", stderr(&out));
    let results = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    assert!(results.contains("## SNR 0.5"), "{results}");
    for file in ["loss-snr1.png", "softmax-snr0.5.png", "summary.json"] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    let trace = std::fs::read_to_string(traces.join("snr-0.5/adam-small-beta.jsonl")).unwrap();
    assert_eq!(trace.lines().count(), 7, "steps 0..=6");

    let bad = study("0");
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("`snrs`"), "{}", stderr(&bad));
}
