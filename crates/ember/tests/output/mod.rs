//! What the `ember` binary printed, as text, for the CLI tests (each test binary uses some).
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as a command-line argument (the tests' temporary paths are UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
