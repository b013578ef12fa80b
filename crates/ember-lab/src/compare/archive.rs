//! A report's runs, kept beside it: the small files of every run of an experiment (config,
//! metrics, summary, a trial's divergence note; never checkpoints), copied from the runs folder
//! into `<report>/runs/<spec name>/` so that anyone with the report can re-render it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ember_train::write_atomically;

/// The files of a run folder a report is computed from.
const SMALL_FILES: [&str; 4] = [
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "diverged.txt",
];

/// The runs folder inside a report folder: it has the layout of `--runs-dir`.
pub fn archived_runs(out: &Path) -> PathBuf {
    out.join("runs")
}

/// Copies the small files of every finished run of `spec_name` under `runs_dir` (finals and
/// trials: folders with a `summary.json` or a divergence note) into [`archived_runs`]`(out)`,
/// each written atomically. Nothing to do when `runs_dir` is that folder already.
pub fn archive_runs(runs_dir: &Path, spec_name: &str, out: &Path) -> anyhow::Result<usize> {
    let archive = archived_runs(out);
    let source = runs_dir.join(spec_name);
    if same_folder(runs_dir, &archive) || !source.is_dir() {
        return Ok(0);
    }
    let mut copied = 0;
    let mut folders = vec![source.clone()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "checkpoints") {
                folders.push(path);
            }
        }
        let finished = ["summary.json", "diverged.txt"]
            .iter()
            .any(|f| folder.join(f).is_file());
        if !finished {
            continue;
        }
        let relative = folder
            .strip_prefix(runs_dir)
            .expect("walked from under runs_dir");
        for file in SMALL_FILES {
            let from = folder.join(file);
            if !from.is_file() {
                continue;
            }
            let to = archive.join(relative).join(file);
            let bytes =
                std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            std::fs::create_dir_all(to.parent().expect("a file in a folder"))
                .with_context(|| format!("creating {}", to.display()))?;
            write_atomically(&to, &bytes).with_context(|| format!("writing {}", to.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_small_files_of_finished_runs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let write = |path: &str| {
            let path = runs.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        };
        write("exp/a-s0/summary.json");
        write("exp/a-s0/metrics.jsonl");
        write("exp/a-s0/config.json");
        write("exp/a-s0/checkpoints/latest/model.mpk");
        write("exp/a-s1/config.json"); // unfinished: no summary
        write("exp/trials/a-t0/diverged.txt");
        write("other/b-s0/summary.json"); // another spec
        let out = dir.path().join("report");
        assert_eq!(archive_runs(&runs, "exp", &out).unwrap(), 4);
        let kept = archived_runs(&out);
        assert!(kept.join("exp/a-s0/metrics.jsonl").is_file());
        assert!(kept.join("exp/trials/a-t0/diverged.txt").is_file());
        assert!(!kept.join("exp/a-s0/checkpoints").exists());
        assert!(!kept.join("exp/a-s1").exists());
        assert!(!kept.join("other").exists());
        // Re-rendering from the archive copies nothing onto itself.
        assert_eq!(archive_runs(&kept, "exp", &out).unwrap(), 0);
    }
}
