//! The benchmark and CPU-profile reports committed under `experiments/` are what today's renderers
//! make of the JSON committed beside them: a change to a renderer shows up here, and the committed
//! Markdown is regenerated with it rather than drifting from its numbers.

use std::path::{Path, PathBuf};

use ember_lab::tools::bench::profile::{read_profile, render_profile};
use ember_lab::tools::bench::{render_markdown, BenchReport};

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

/// Fails at the first line where `rendered` and the committed file part, naming the file.
fn assert_renders_as(rendered: &str, committed: &Path) {
    let text = read(committed);
    let first_difference = rendered
        .split('\n')
        .zip(text.split('\n'))
        .enumerate()
        .find(|(_, (a, b))| a != b);
    if let Some((line, (now, then))) = first_difference {
        panic!(
            "{} line {}:\ncommitted: {then}\nrendered:  {now}",
            committed.display(),
            line + 1
        );
    }
    assert_eq!(
        rendered,
        text,
        "{}: the lengths differ",
        committed.display()
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_cpu_profiles_re_render_unchanged() {
    // profile-NAME.md renders ember-NAME.json beside torch-NAME.json; profile-NAME-burn-ops.md
    // renders burn-NAME.json (EMBER_KERNELS=burn) beside the same torch-NAME.json.
    let results = experiments().join("cpu-profile/results");
    let mut rendered = 0;
    for entry in std::fs::read_dir(&results).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(name) = file
            .strip_prefix("profile-")
            .and_then(|f| f.strip_suffix(".md"))
        else {
            continue;
        };
        let (side, name) = match name.strip_suffix("-burn-ops") {
            Some(base) => ("burn", base),
            None => ("ember", name),
        };
        let ember = read_profile(&results.join(format!("{side}-{name}.json"))).unwrap();
        let torch = read_profile(&results.join(format!("torch-{name}.json"))).unwrap();
        assert_renders_as(&render_profile(&ember, Some(&torch)), &results.join(&file));
        rendered += 1;
    }
    assert!(
        rendered >= 8,
        "only {rendered} profiles in {}",
        results.display()
    );
}

#[test]
fn the_bench_report_re_renders_unchanged() {
    let json = read(&experiments().join("bench.json"));
    let report: BenchReport = serde_json::from_str(&json).unwrap();
    assert_eq!(
        render_markdown(&report),
        read(&experiments().join("bench.md"))
    );
}
