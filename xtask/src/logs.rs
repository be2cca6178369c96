//! `cargo xtask logs [backend|frontend]`: the logs of the release's pods, every line prefixed
//! with its pod and container, streamed through the secret scrubber (`--follow` keeps going until
//! Ctrl-C; `--previous` shows the run before the last restart).

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use clap::Args;
use xshell::Shell;

use crate::{
    images::Service,
    k8s::{
        release::{Access, ReleaseArgs, STREAM_TIMEOUT, WRITE_TIMEOUT},
        secret,
    },
    redact::Redactor,
};

/// Arguments of `cargo xtask logs`.
#[derive(Debug, Clone, Args)]
pub struct Logs {
    /// Only this component's pods [default: all of the release's pods].
    #[arg(value_enum)]
    pub component: Option<Service>,
    /// Keep streaming new lines until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The log of each container's previous run (before its last restart: why it crashed).
    #[arg(long, short = 'p')]
    pub previous: bool,
    /// Lines to show from the end of each container's log (-1 for all).
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub tail: i64,
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
}

impl Logs {
    /// Streams the logs to stdout.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let release = self.target.resolve(sh, Access::Read)?;
        let mut redactor = Redactor::default();
        if let Ok(Some(values)) = secret::read(sh, &release) {
            values.values().for_each(|value| redactor.add(value));
        }
        let selector = match self.component {
            Some(service) => release.component_selector(service.name()),
            None => release.selector(),
        };
        let tail = format!("--tail={}", self.tail);
        // A follow never ends by itself: no request timeout for it.
        let timeout = if self.follow { STREAM_TIMEOUT } else { WRITE_TIMEOUT };
        let cmd = release
            .kubectl(sh, timeout)
            .args(["logs", "-l", &selector, "--all-containers", "--prefix", &tail])
            .args(self.follow.then_some("--follow"))
            .args(self.follow.then_some("--max-log-requests=20"))
            .args(self.previous.then_some("--previous"));
        let shown = cmd.to_string();
        eprintln!("$ {shown}");
        let mut child = Command::from(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not run `{shown}`"))?;
        let stdout = child.stdout.take().context("kubectl's stdout")?;
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading the logs")?;
            writeln!(out, "{}", redactor.redact(&line))?;
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("`{shown}` failed ({status})");
        }
        Ok(())
    }
}
