//! Where a report's numbers come from: the commit (with a dirty flag) and the command.

use std::process::Command;

/// The commit measured or reported: `EMBER_COMMIT` when set (a build from a tarball, a binary run
/// elsewhere), else what git says of the working tree: the short hash, with `-dirty` when tracked
/// files have uncommitted changes; else `unknown`.
pub fn commit() -> String {
    if let Ok(commit) = std::env::var("EMBER_COMMIT") {
        if !commit.trim().is_empty() {
            return commit.trim().to_string();
        }
    }
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The machine a report was measured on: the CPU model (`/proc/cpuinfo`, as `lscpu` names it)
/// and the logical CPUs this process may use, e.g. `Intel(R) Xeon(R) Processor, 2 CPUs`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}, {cpus} CPUs")
}

/// `words` as one shell command line, each quoted where the shell needs it.
pub fn shell_command<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|w| shlex::try_quote(w).map_or_else(|_| w.to_string(), |q| q.into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// This process's arguments after the program name, as a command line to paste.
pub fn invocation() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    shell_command(args.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_where_the_shell_needs_it() {
        assert_eq!(
            shell_command(["train", "--data-dir", "my data", "--lr", "1e-3", "it's", ""]),
            r#"train --data-dir 'my data' --lr 1e-3 "it's" ''"#
        );
        // What the shell splits back is what went in.
        let line = shell_command(["a b", "c'd", "$HOME", "x"]);
        assert_eq!(
            shlex::split(&line).unwrap(),
            ["a b", "c'd", "$HOME", "x"].map(String::from)
        );
    }

    #[test]
    fn the_environment_names_the_commit() {
        // Set for this process only; no other test reads it.
        std::env::set_var("EMBER_COMMIT", " abc1234 ");
        assert_eq!(commit(), "abc1234");
        std::env::remove_var("EMBER_COMMIT");
    }
}
