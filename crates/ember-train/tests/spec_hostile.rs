//! The experiment-spec parser (`ember compare`) on hostile input: arbitrary text and damaged copies
//! of a valid spec must give `Ok` or an error naming the file, never a panic.

use std::path::Path;

use ember_train::CompareSpec;
use proptest::prelude::*;

const VALID: &str = r#"
name = "demo"
description = "a valid spec"
seeds = [0, 1]
[model]
kind = "cnn"
args = "--widths 8,16"
[data]
dataset = "generated"
train_subset = 128
test_subset = 64
augment = false
[train]
epochs = 2
batch_size = 32
eval_batch_size = 64
device = "flex"
log_every = 5
[[arm]]
name = "sgd"
args = "--optimizer sgd --lr 0.05"
[[arm]]
name = "later"
pending = "not yet"
"#;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Loads `text` from a file and checks the outcome: a valid spec, or an error naming the file.
fn check(dir: &Path, text: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.join("hostile-spec.toml");
    std::fs::write(&path, text).unwrap();
    if let Err(e) = CompareSpec::load(&path) {
        prop_assert!(e.to_string().contains("hostile-spec.toml"), "{e}");
    }
    Ok(())
}

/// Values TOML parsers and our checks find awkward.
fn awkward_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e309".to_string()),
        Just("nan".to_string()),
        Just("\"\"".to_string()),
        Just("\"../..\"".to_string()),
        Just("[]".to_string()),
        Just("{ x = 1 }".to_string()),
        Just("\"\\u0000\"".to_string()),
        "[ -~]{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes(text in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        check(dir.path(), &text)?;
    }

    #[test]
    fn damaged_valid_spec(
        cut in 0usize..VALID.len(),
        line in 0usize..30,
        value in awkward_value(),
        dropped in 0usize..30,
    ) {
        let dir = tempfile::tempdir().unwrap();
        // Truncated anywhere.
        check(dir.path(), &VALID.as_bytes()[..cut])?;
        // One value replaced by an awkward one, one line dropped.
        let lines: Vec<String> = VALID
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != dropped)
            .map(|(i, l)| match l.split_once(" = ") {
                Some((key, _)) if i == line => format!("{key} = {value}"),
                _ => l.to_string(),
            })
            .collect();
        check(dir.path(), lines.join("\n").as_bytes())?;
    }
}

#[test]
fn the_undamaged_spec_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, VALID).unwrap();
    let spec = CompareSpec::load(&path).unwrap();
    assert_eq!(spec.arms.len(), 2);
}
