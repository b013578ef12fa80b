#![cfg(feature = "flex")]
//! A tuned comparison end to end on tiny generated data: trials on the validation split, the best
//! one chosen, final runs on every seed evaluated on the test set, a diverged trial stopped and
//! kept, everything skipped when run again, and a changed search space refused; the report's
//! budget warning, differences to the reference, time to target, results.json, and a re-render
//! from the runs kept beside the report.

use std::path::Path;

use ember_lab::compare::{default_out, Experiment};

const SPEC: &str = r#"
name = "tiny-sweep"
seeds = [0, 1]
reference = "sgd"
target = { accuracy = 0.05 }
[model]
kind = "mlp"
hidden = [8]
[data]
dataset = "generated"
train_subset = 160
test_subset = 64
[train]
epochs = 2
batch_size = 32
log_every = 2
[sweep]
trials = 3
validation = 32
seed = 5
target_accuracy = 0.05
[[arm]]
name = "sgd"
optimizer = { name = "sgd", momentum = 0.0, weight_decay = 0.0 }
scheduler = { name = "cosine", lr = 0.1, warmup_steps = 2 }
search = { "scheduler.lr" = { grid = [0.01, 0.1, 1e9] } }
[[arm]]
name = "adam"
optimizer = { name = "adam" }
scheduler = { name = "constant", lr = 1e-3 }
"#;

fn config(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap()
}

#[test]
fn a_sweep_chooses_on_validation_and_reports_finals_on_test() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("tiny-sweep.toml");
    std::fs::write(&spec_path, SPEC).unwrap();
    let runs = dir.path().join("runs");
    let out = default_out(&spec_path);
    let experiment = Experiment {
        spec_path: &spec_path,
        runs_dir: &runs,
        out: &out,
    };
    let written = experiment.run(false).unwrap();

    let root = runs.join("tiny-sweep");
    // Three trials of the searched arm (the grid, in order), one of the other; the lr of 1e9
    // diverged and says so.
    for k in 0..3 {
        assert!(root.join(format!("trials/sgd-t{k}")).exists(), "trial {k}");
    }
    assert!(root.join("trials/sgd-t2/diverged.txt").exists());
    assert!(!root.join("trials/sgd-t2/summary.json").exists());
    assert!(root.join("trials/adam-t0/summary.json").exists());
    assert!(!root.join("trials/adam-t1").exists());

    // Trials evaluate on the validation split, finals on the test set; both train on the same
    // training images (the split is the sweep's, not the run's seed).
    let trial = config(&root.join("trials/sgd-t0"));
    assert_eq!(trial["evaluate"], "validation");
    assert_eq!(
        trial["validation"],
        serde_json::json!({"size": 32, "seed": 5})
    );
    assert_eq!(trial["train"]["seed"], 0);
    assert_eq!(trial["scheduler"]["lr"], 0.01);
    for seed in [0, 1] {
        let last = config(&root.join(format!("sgd-s{seed}")));
        assert_eq!(last["evaluate"], "test");
        assert_eq!(last["validation"], trial["validation"]);
        assert_eq!(last["train"]["seed"], seed);
        assert!(root.join(format!("adam-s{seed}/summary.json")).exists());
    }
    // The final runs use the trial with the best validation accuracy.
    let accuracy = |t: usize| -> f64 {
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("trials/sgd-t{t}/summary.json"))).unwrap(),
        )
        .unwrap();
        s["summary"]["final_eval"]["accuracy"].as_f64().unwrap()
    };
    let best = if accuracy(1) > accuracy(0) { 0.1 } else { 0.01 };
    assert_eq!(config(&root.join("sgd-s0"))["scheduler"]["lr"], best);

    let report = std::fs::read_to_string(&written.results).unwrap();
    assert!(report.contains("## Search"), "{report}");
    assert!(
        report.contains("| sgd | `scheduler.lr` grid [0.01, 0.1, 1000000000.0] | 3/3 (1) |"),
        "{report}"
    );
    assert!(report.contains(&format!("lr={best}")), "{report}");
    assert!(
        report.contains("time to 5.0 % validation accuracy"),
        "{report}"
    );
    assert!(written.plots.iter().any(|p| p.ends_with("sensitivity.png")));

    // adam is trained as written (one trial) while sgd searched three: the report says so.
    assert!(
        report.contains(
            "> **Warning.** Unequal budgets: trials planned — `adam` 1 against 3 for the other arms"
        ),
        "{report}"
    );
    assert!(report.contains("## Against `sgd`"), "{report}");
    assert!(
        report.contains("- adam − sgd: ") && report.contains("paired over 2 seeds."),
        "{report}"
    );
    assert!(
        report.contains("## Time to 5.0 % test accuracy"),
        "{report}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["spec"], "tiny-sweep");
    assert!(json["machine"].as_str().is_some_and(|m| m.contains("CPUs")));
    assert_eq!(json["arms"][1]["runs"].as_array().unwrap().len(), 2);
    assert_eq!(json["versus_reference"][0]["arm"], "adam");
    assert_eq!(json["versus_reference"][0]["final_value"]["kind"], "paired");
    // The per-seed numbers of results.json are the runs' own.
    let final_adam = |seed: u64| -> f64 {
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("adam-s{seed}/summary.json"))).unwrap(),
        )
        .unwrap();
        s["summary"]["final_eval"]["accuracy"].as_f64().unwrap()
    };
    assert_eq!(json["arms"][1]["runs"][1]["final_value"], final_adam(1));
    let mean = json["arms"][1]["final_value"]["mean"].as_f64().unwrap();
    assert!((mean - 0.5 * (final_adam(0) + final_adam(1))).abs() < 1e-12);

    // The runs' small files are kept beside the report, checkpoints never.
    let kept = out.join("runs/tiny-sweep");
    assert!(kept.join("adam-s1/metrics.jsonl").is_file());
    assert!(kept.join("trials/sgd-t2/diverged.txt").is_file());
    assert!(!kept.join("adam-s1/checkpoints").exists());
    // With the runs folder gone, --report-only renders the same report from them.
    let moved = dir.path().join("runs-moved");
    std::fs::rename(&runs, &moved).unwrap();
    let again = experiment.run(true).unwrap();
    assert_eq!(std::fs::read_to_string(&again.results).unwrap(), report);
    // The kept runs were measured where the earlier report says: its commit and machine stay.
    let results_json = out.join("results.json");
    let mut earlier: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results_json).unwrap()).unwrap();
    earlier["commit"] = "abc1234".into();
    earlier["machine"] = "Elsewhere CPU, 64 CPUs".into();
    std::fs::write(&results_json, earlier.to_string()).unwrap();
    let again = experiment.run(true).unwrap();
    let rerendered = std::fs::read_to_string(&again.results).unwrap();
    assert!(
        rerendered.contains("(commit abc1234; Elsewhere CPU, 64 CPUs)"),
        "{rerendered}"
    );
    std::fs::rename(&moved, &runs).unwrap();

    // Run again: every trial and final run is skipped (nothing retrained, the diverged trial too).
    let before = std::fs::read(root.join("sgd-s1/metrics.jsonl")).unwrap();
    let trial_before = std::fs::read(root.join("trials/sgd-t2/diverged.txt")).unwrap();
    experiment.run(false).unwrap();
    assert_eq!(
        std::fs::read(root.join("sgd-s1/metrics.jsonl")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(root.join("trials/sgd-t2/diverged.txt")).unwrap(),
        trial_before
    );

    // A changed search space would report old trials under new knobs: refused, naming the trial.
    std::fs::write(&spec_path, SPEC.replace("grid = [0.01,", "grid = [0.02,")).unwrap();
    let err = experiment.run(true).err().expect("refused").to_string();
    assert!(
        err.contains("sgd trial 0") && err.contains("scheduler.lr: 0.01 → 0.02"),
        "{err}"
    );
}

#[test]
fn a_search_space_is_checked_when_the_spec_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let cases = [
        (
            SPEC.replace("\"scheduler.lr\" = { grid", "\"scheduler.lrr\" = { grid"),
            "arm[0].search.scheduler.lrr",
        ),
        (
            SPEC.replace("grid = [0.01, 0.1, 1e9]", "log_uniform = [0.0, 1.0]"),
            "arm[0].search.scheduler.lr",
        ),
        (SPEC.replace("trials = 3", "trials = 0"), "sweep.trials"),
        (
            SPEC.replace("validation = 32", "validation = 0"),
            "sweep.validation",
        ),
        (
            SPEC.replace("target_accuracy = 0.05", "target_accuracy = 5"),
            "sweep.target_accuracy",
        ),
    ];
    for (text, field) in cases {
        std::fs::write(&path, text).unwrap();
        let err = ember_lab::CompareSpec::load(&path).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    // A search space without a [sweep] section is an error, not silently ignored.
    let text = SPEC.replace(
        "[sweep]\ntrials = 3\nvalidation = 32\nseed = 5\ntarget_accuracy = 0.05\n",
        "",
    );
    std::fs::write(&path, text).unwrap();
    let err = ember_lab::CompareSpec::load(&path).unwrap_err();
    assert_eq!(err.field, "arm[0].search", "{err}");
}
