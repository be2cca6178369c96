//! A tool's version as it prints it: each tool has its own words around the number.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::exec::probe::{self, PROBE_TIMEOUT};

/// Runs a local, read-only `program args...` and returns the first version number it prints.
pub(crate) fn tool_version(sh: &Shell, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let probe = probe::run(cmd!(sh, "{program} {args...}"), PROBE_TIMEOUT);
    if !probe.succeeded() {
        bail!("{}", probe.failure());
    }
    version_token(&probe.stdout).with_context(|| {
        format!(
            "no version number in the output of `{}`: {:?}",
            probe.command, probe.stdout
        )
    })
}

/// The first version number in a tool's output, without `v` or suffixes: `Docker version
/// 28.2.2, build e6534b4` -> `28.2.2`; `kind v0.20.0 go1.20.4` -> `0.20.0` (a number glued to a
/// word, like `go1.20.4`, is not a version of the tool).
pub fn version_token(output: &str) -> Option<String> {
    let bytes = output.as_bytes();
    for (start, &byte) in bytes.iter().enumerate() {
        if !byte.is_ascii_digit() {
            continue;
        }
        // Accept `1.2`, `v1.2`; reject digits inside words (`go1.20`, `k3s`, `sha256`).
        let before = match start.checked_sub(1).map(|i| bytes[i]) {
            Some(b'v') => start.checked_sub(2).map(|i| bytes[i]),
            other => other,
        };
        if before.is_some_and(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let candidate = output[start..start + len].trim_end_matches('.');
        if candidate.contains('.') {
            return Some(candidate.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_are_found_in_each_tools_own_words() {
        let cases = [
            ("Docker version 28.2.2, build e6534b4\n", "28.2.2"),
            ("podman version 4.3.1\n", "4.3.1"),
            ("kind v0.20.0 go1.20.4 linux/amd64\n", "0.20.0"),
            ("k3d version v5.6.0\nk3s version v1.27.4-k3s1 (default)\n", "5.6.0"),
            ("v1.35.0\n", "1.35.0"),
            (
                "minikube version: v1.35.0\ncommit: dd5d320e41b5451cdf3c01891bc4e13d189586ed-dirty\n",
                "1.35.0",
            ),
        ];
        for (output, want) in cases {
            assert_eq!(version_token(output).as_deref(), Some(want), "{output:?}");
        }
        assert_eq!(version_token("no numbers here, sha256 or go1"), None);
    }
}
