//! The experiment-spec parser (`ember compare`) on hostile input. Every error must point at what is
//! wrong: a damaged value is named by its key (and, for TOML errors, its line), a missing key by its
//! name, and nothing panics. (That an error names the file holds by construction, so it is not what
//! these tests check.)

use std::path::Path;

use ember_lab::{CompareSpec, CompareSpecError};
use proptest::prelude::*;

const VALID: &str = r#"name = "demo"
description = "a valid spec"
seeds = [0, 1]
[model]
kind = "cnn"
widths = [8, 16]
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
optimizer = { name = "sgd", momentum = 0.9 }
scheduler = { name = "constant", lr = 0.05 }
[[arm]]
name = "later"
pending = "not yet"
"#;

/// Keys that may be left out of a valid spec.
const OPTIONAL: &[&str] = &[
    "description",
    "widths",
    "train_subset",
    "test_subset",
    "augment",
    "eval_batch_size",
    "device",
    "log_every",
    "pending",
];

/// What dropping the line `key = …` must name: `None` when the spec stays valid. An arm needs its
/// optimizer and scheduler tables unless it is pending, so dropping `pending` names `optimizer`.
fn expected_on_drop<'a>(_line: &str, key: &'a str) -> Option<&'a str> {
    if key == "pending" {
        Some("optimizer")
    } else if OPTIONAL.contains(&key) {
        None
    } else {
        Some(key)
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn load(dir: &Path, text: &[u8]) -> Result<CompareSpec, CompareSpecError> {
    let path = dir.join("hostile-spec.toml");
    std::fs::write(&path, text).unwrap();
    CompareSpec::load(&path)
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> Option<&str> {
    line.split_once(" = ").map(|(key, _)| key.trim())
}

/// Whether `err` points at `key`: a checked field that is it or lies under it (`train.epochs`,
/// `arm[1].name`, `arm[0].optimizer.name` for a damaged `optimizer` table), or a TOML error at
/// 1-based line `line` (when known) that quotes the key or shows its line.
fn names_key(err: &CompareSpecError, key: &str, line: Option<usize>) -> bool {
    let message = err.to_string();
    if err.field == "<toml>" {
        let at_line = line.is_none_or(|n| message.contains(&format!("at line {n},")));
        at_line && (message.contains(&format!("`{key}`")) || message.contains(&format!("{key} = ")))
    } else {
        err.field
            .split('.')
            .any(|segment| segment.split('[').next() == Some(key))
    }
}

/// Values TOML parsers and our checks find awkward, each complete on its line (no opening bracket
/// or quote that a later line could close).
fn awkward_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e309".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("true".to_string()),
        Just("\"\"".to_string()),
        Just("\"../..\"".to_string()),
        Just("\"a/b\"".to_string()),
        Just("[]".to_string()),
        Just("[0, 0]".to_string()),
        Just("{ x = 1 }".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("1979-05-27".to_string()),
        // Any printable text as a string…
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
        // …or bare, without the characters that open a multi-line construct.
        "[ -!#-&(-Z\\\\^-z|~]{1,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: no panic; a TOML error gives a line of the text, a read error means the bytes are
    /// not UTF-8, and a checked field is one the text actually sets.
    #[test]
    fn arbitrary_bytes_give_a_located_error(text in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = load(dir.path(), &text) {
            let message = e.to_string();
            match e.field.as_str() {
                "<file>" => prop_assert!(std::str::from_utf8(&text).is_err(), "{message}"),
                "<toml>" => {
                    let lines = text.split(|&b| b == b'\n').count();
                    let at = message
                        .split("at line ")
                        .nth(1)
                        .and_then(|rest| rest.split(',').next())
                        .and_then(|n| n.parse::<usize>().ok());
                    // A missing key has no position; a misplaced one is on a line of the text.
                    prop_assert!(
                        at.is_none_or(|n| (1..=lines).contains(&n)) && (at.is_some() || message.contains('`')),
                        "{message}"
                    );
                }
                field => {
                    let key = field.rsplit('.').next().unwrap().split('[').next().unwrap();
                    prop_assert!(
                        String::from_utf8_lossy(&text).contains(key),
                        "error names `{field}`, which the text does not set: {message}"
                    );
                }
            }
        }
    }

    /// One value replaced by an awkward one: accepted, or refused naming that key (at its line, for
    /// a TOML error).
    #[test]
    fn a_bad_value_is_named_by_its_key(line in 0usize..26, value in awkward_value()) {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<&str> = VALID.lines().collect();
        let line = line % lines.len();
        let Some(key) = key_of(lines[line]) else {
            return Ok(()); // a section header
        };
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == line { format!("{key} = {value}") } else { l.to_string() })
            .collect();
        if let Err(e) = load(dir.path(), text.join("\n").as_bytes()) {
            prop_assert!(
                names_key(&e, key, Some(line + 1)),
                "`{key} = {value}` refused without naming `{key}` at line {}: {e}",
                line + 1
            );
        }
    }

    /// One line dropped: a required key is named as missing; a dropped section header leaves its
    /// keys in the section above, and the error names one of them.
    #[test]
    fn a_dropped_line_is_named(dropped in 0usize..26) {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<&str> = VALID.lines().collect();
        let dropped = dropped % lines.len();
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != dropped)
            .map(|(_, l)| *l)
            .collect();
        let result = load(dir.path(), text.join("\n").as_bytes());
        let line = lines[dropped];
        match key_of(line) {
            Some(key) => match expected_on_drop(line, key) {
                None => prop_assert!(result.is_ok(), "optional `{key}` dropped: {:?}", result.err()),
                Some(named) => {
                    let e = result.expect_err("a required key was dropped");
                    prop_assert!(
                        names_key(&e, named, None),
                        "dropped `{line}`: `{named}` not named: {e}"
                    );
                }
            },
            None => {
                let e = result.expect_err("a section header was dropped");
                let section = line.trim_matches(|c| c == '[' || c == ']');
                let mut names: Vec<&str> = lines[dropped + 1..]
                    .iter()
                    .take_while(|l| !l.starts_with('['))
                    .filter_map(|l| key_of(l))
                    .collect();
                names.push(section);
                prop_assert!(
                    names.iter().any(|k| names_key(&e, k, None)),
                    "dropped `{line}`: none of {names:?} named: {e}"
                );
            }
        }
    }
}

/// Values of the right TOML type that no run could use, each refused naming its field.
#[test]
fn unusable_values_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("epochs = 2", "epochs = 0", "train.epochs"),
        ("batch_size = 32", "batch_size = 0", "train.batch_size"),
        (
            "eval_batch_size = 64",
            "eval_batch_size = 0",
            "train.eval_batch_size",
        ),
        ("log_every = 5", "log_every = 0", "train.log_every"),
        (
            "train_subset = 128",
            "train_subset = 0",
            "data.train_subset",
        ),
        ("test_subset = 64", "test_subset = 0", "data.test_subset"),
        ("device = \"flex\"", "device = \"cuda\"", "train.device"),
        (
            "dataset = \"generated\"",
            "dataset = \"cifar11\"",
            "data.dataset",
        ),
        ("seeds = [0, 1]", "seeds = []", "seeds"),
        ("seeds = [0, 1]", "seeds = [1, 1]", "seeds"),
        ("name = \"demo\"", "name = \"a/b\"", "name"),
        ("name = \"later\"", "name = \"sgd\"", "arm[1].name"),
        (
            "momentum = 0.9",
            "momentum = 1.5",
            "arm[0].optimizer.momentum",
        ),
        (
            "momentum = 0.9",
            "momentun = 0.9",
            "arm[0].optimizer.momentun",
        ),
        (
            "momentum = 0.9",
            "momentum = \"high\"",
            "arm[0].optimizer.momentum",
        ),
        ("lr = 0.05", "lr = 0", "arm[0].scheduler.lr"),
        ("lr = 0.05", "min_lr = 0.05", "arm[0].scheduler.lr"),
        (
            "name = \"constant\"",
            "name = \"warmup\"",
            "arm[0].scheduler.name",
        ),
        ("widths = [8, 16]", "widths = 8", "model.widths"),
        ("kind = \"cnn\"", "kind = \"resnet\"", "model.kind"),
    ];
    for (valid, bad, field) in cases {
        assert!(VALID.contains(valid), "{valid}");
        let err = load(dir.path(), VALID.replacen(valid, bad, 1).as_bytes()).unwrap_err();
        assert_eq!(err.field, field, "`{bad}`: {err}");
        assert!(
            err.to_string().contains(&format!("`{field}`")),
            "`{bad}`: {err}"
        );
    }
}

#[test]
fn the_undamaged_spec_loads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), VALID.as_bytes()).unwrap();
    assert_eq!(spec.arms.len(), 2);
    assert!(spec.arms[0].choice.is_some() && spec.arms[1].choice.is_none());
    assert_eq!(spec.train.log_every, Some(5));
}
