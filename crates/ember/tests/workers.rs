//! `ember compare SPEC --worker` / `--shard I/N`: several processes on one experiment train every
//! run exactly once and write the report a single process writes; a worker killed while holding a
//! run loses it when its lease expires and the next worker resumes it to the uninterrupted
//! result; overlapping and resubmitted shards train nothing twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tuned comparison small enough for tests: one arm searches 3 learning rates, the other is
/// trained as written; finals on 2 seeds. 3 + 1 trials and 4 finals: 8 runs.
const SPEC: &str = r#"
name = "team"
seeds = [0, 1]
reference = "adam"
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
[[arm]]
name = "sgd"
optimizer = { name = "sgd", momentum = 0.0 }
scheduler = { name = "constant", lr = 0.1 }
search = { "scheduler.lr" = { grid = [0.01, 0.1, 0.3] } }
[[arm]]
name = "adam"
optimizer = { name = "adam" }
scheduler = { name = "constant", lr = 1e-3 }
"#;

const RUNS: [&str; 8] = [
    "trials/sgd-t0",
    "trials/sgd-t1",
    "trials/sgd-t2",
    "trials/adam-t0",
    "sgd-s0",
    "sgd-s1",
    "adam-s0",
    "adam-s1",
];

fn compare(spec: &Path, runs: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ember"));
    command
        .arg("compare")
        .arg(spec)
        .arg("--runs-dir")
        .arg(runs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How many times each run was trained, from the workers' logs ("claimed KEY, training").
fn trainings(outputs: &[Output]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for out in outputs {
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if let Some(rest) = line.split(": claimed ").nth(1) {
                let key = rest.trim_end_matches(", training").to_string();
                *counts.entry(key).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn every_run_once() -> BTreeMap<String, usize> {
    RUNS.iter().map(|r| (r.to_string(), 1)).collect()
}

/// results.json without what differs between two trainings of the same runs: wall times,
/// throughput and what is computed from them, and the optimizer state's serialised size (burn's
/// record encoding varies by a few bytes between identical states).
fn timeless(out: &Path) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.retain(|k, _| {
                    ![
                        "wall_time_s",
                        "items_per_s",
                        "step_time_ratio",
                        "seconds",
                        "optimizer_state_bytes",
                        "state_bytes_per_param",
                    ]
                    .contains(&k.as_str())
                });
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    strip(&mut json);
    json
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn three_workers_train_every_run_once_and_write_the_single_process_report() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("team.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let (runs, out) = (dir.path().join("runs"), dir.path().join("report"));
    let worker = || {
        compare(&spec, &runs, &out, &["--worker", "--lease", "2"])
            .spawn()
            .unwrap()
    };
    let (a, b) = (worker(), worker());
    std::thread::sleep(Duration::from_millis(700));
    let c = worker();
    let outputs: Vec<Output> = [a, b, c].into_iter().map(finish).collect();
    assert_eq!(
        trainings(&outputs),
        every_run_once(),
        "each run trained once"
    );

    // Nothing half-written: no temporary file left, every JSON file whole.
    for file in files(&runs) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "left behind: {}", file.display());
        if name.ends_with(".json") {
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(&file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }

    // The same spec in one process: the same report, wall times aside.
    let (alone_runs, alone_out) = (dir.path().join("alone-runs"), dir.path().join("alone"));
    let single = finish(
        compare(&spec, &alone_runs, &alone_out, &[])
            .spawn()
            .unwrap(),
    );
    assert!(
        trainings(&[single]).is_empty(),
        "a single process claims nothing"
    );
    assert_eq!(timeless(&out), timeless(&alone_out));
    // results.md line for line, but for the rows that hold wall times (the arms' rows of the
    // main table and of the time-to-target table: `| arm | seeds |`).
    let timeless_md = |out: &Path| {
        std::fs::read_to_string(out.join("results.md"))
            .unwrap()
            .lines()
            .filter(|l| !(l.starts_with("| sgd | 2/2 |") || l.starts_with("| adam | 2/2 |")))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (workers_md, single_md) = (timeless_md(&out), timeless_md(&alone_out));
    assert!(
        workers_md.iter().any(|l| l.starts_with("- sgd − adam")),
        "{workers_md:?}"
    );
    assert_eq!(workers_md, single_md);
}

#[test]
fn overlapping_and_resubmitted_shards_train_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("team.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let (runs, out) = (dir.path().join("runs"), dir.path().join("report"));
    let shard = |s: &str| {
        compare(&spec, &runs, &out, &["--shard", s, "--lease", "2"])
            .spawn()
            .unwrap()
    };
    // Shard 1/2 twice at once (a resubmitted array task overlapping the first), and 2/2.
    let outputs: Vec<Output> = [shard("1/2"), shard("1/2"), shard("2/2")]
        .into_iter()
        .map(finish)
        .collect();
    assert_eq!(trainings(&outputs), every_run_once());
    assert!(
        out.join("results.md").is_file(),
        "the last worker wrote the report"
    );
    // Resubmitted after the array finished: nothing to train.
    let again = finish(shard("1/2"));
    assert!(trainings(&[again]).is_empty());
    // A shard that does not exist is refused by name.
    let bad = compare(&spec, &runs, &out, &["--shard", "3/2"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("`3/2` is not a shard I/N"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// One arm, one seed, long enough (8 epochs over 4,096 images) to be killed in the middle.
const LONG_SPEC: &str = r#"
name = "long"
seeds = [0]
[model]
kind = "mlp"
hidden = [64]
[data]
dataset = "generated"
train_subset = 4096
test_subset = 64
[train]
epochs = 8
batch_size = 32
log_every = 8
[[arm]]
name = "sgd"
optimizer = { name = "sgd", momentum = 0.9 }
scheduler = { name = "cosine", lr = 0.05 }
"#;

#[test]
fn a_killed_workers_run_is_taken_over_after_its_lease_and_ends_as_if_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("long.toml");
    std::fs::write(&spec, LONG_SPEC).unwrap();
    let (runs, out) = (dir.path().join("runs"), dir.path().join("report"));
    let lease = ["--worker", "--lease", "2"];
    let mut first = compare(&spec, &runs, &out, &lease).spawn().unwrap();
    // Kill it once the run has a whole checkpoint to resume from: the second epoch's line is
    // written after the first epoch's checkpoint.
    let metrics = runs.join("long/sgd-s0/metrics.jsonl");
    let started = Instant::now();
    loop {
        let epochs = std::fs::read_to_string(&metrics)
            .map(|m| {
                m.lines()
                    .filter(|l| l.contains("\"kind\":\"eval\""))
                    .count()
            })
            .unwrap_or(0);
        if epochs >= 2 {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first worker finished before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no epoch");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL: no chance to release its claim
    first.wait().unwrap();
    let claims = runs.join("long/claims/sgd-s0");
    assert!(claims.join("lease-0").is_file());

    let second = finish(compare(&spec, &runs, &out, &lease).spawn().unwrap());
    assert_eq!(trainings(&[second])["sgd-s0"], 1);
    assert!(
        claims.join("lease-1").is_file(),
        "taken over under a new lease"
    );
    let summary = |runs: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(runs.join("long/sgd-s0/summary.json")).unwrap())
            .unwrap()
    };
    let resumed = summary(&runs);
    assert!(resumed["summary"]["resumed_from_round"].as_u64().unwrap() >= 1);

    let alone = dir.path().join("alone-runs");
    finish(
        compare(&spec, &alone, &dir.path().join("alone"), &[])
            .spawn()
            .unwrap(),
    );
    let uninterrupted = summary(&alone);
    for field in ["final_eval", "final_train_loss", "steps", "best_value"] {
        assert_eq!(
            resumed["summary"][field], uninterrupted["summary"][field],
            "{field}"
        );
    }
}
