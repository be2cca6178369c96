//! `cargo xtask secrets`: creates the Secret the app reads, or changes single keys of it, without
//! a value ever reaching a command line, a file or the terminal (see [`crate::k8s::secret`]).

use std::{
    collections::BTreeMap,
    io::{BufRead, IsTerminal, Write},
};

use anyhow::{Context, bail};
use clap::Args;
use xshell::Shell;

use crate::{
    exec::runner::Runner,
    k8s::{
        release::{Access, Release, ReleaseArgs, WRITE_TIMEOUT},
        secret::{SECRET_NAME, SecretKey, create, patch, random_hex, read},
    },
    progress::step,
};

/// Arguments of `cargo xtask secrets`.
#[derive(Debug, Clone, Args)]
pub struct Secrets {
    /// Which release (and so which namespace and cluster).
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Replace JWT_SECRET with a new random one (everyone is logged out) and restart the pods.
    #[arg(long)]
    pub rotate_jwt: bool,
    /// Set OPENAI_API_KEY from the environment variable of that name.
    #[arg(long)]
    pub openai_key_from_env: bool,
    /// Set DATABASE_URL (database.type=external) from the environment variable of that name.
    #[arg(long)]
    pub database_url_from_env: bool,
    /// Set POSTGRES_PASSWORD (database.type=postgresql) from the environment variable of that name.
    #[arg(long)]
    pub postgres_password_from_env: bool,
    /// Ask for this key's value on the terminal, without echoing it (repeatable).
    #[arg(long, value_enum, value_name = "KEY")]
    pub prompt: Vec<SecretKey>,
    /// Print the commands that would change the cluster, and run none.
    #[arg(long)]
    pub dry_run: bool,
}

impl Secrets {
    /// Creates or updates the Secret; restarts the release's pods when an existing Secret changed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let runner = Runner::new(self.dry_run);
        let release = self.target.resolve(sh, Access::Change)?;
        eprintln!("    {}", release.describe());
        let wanted = self.wanted_values()?;
        step(&format!("namespace {}", release.namespace), || {
            release.ensure_namespace(sh, runner)
        })?;
        let existing = step(&format!("read Secret {SECRET_NAME} (values stay private)"), || {
            read(sh, &release)
        })?;
        let jwt = SecretKey::JwtSecret.name().to_owned();
        match existing {
            None => {
                let mut values = wanted;
                if let std::collections::btree_map::Entry::Vacant(missing) = values.entry(jwt) {
                    missing.insert(random_hex(32)?);
                }
                step(&format!("create Secret {SECRET_NAME}"), || {
                    create(sh, runner, &release, &values)
                })?;
                println!(
                    "Secret {SECRET_NAME} created in namespace {} with keys: {}",
                    release.namespace,
                    key_list(values.keys())
                );
            }
            Some(current) => {
                let mut changes: BTreeMap<String, String> = wanted
                    .into_iter()
                    .filter(|(key, value)| current.get(key) != Some(value))
                    .collect();
                if self.rotate_jwt || !current.contains_key(&jwt) {
                    changes.entry(jwt).or_insert(random_hex(32)?);
                }
                if changes.is_empty() {
                    println!(
                        "Secret {SECRET_NAME} in namespace {} is up to date (keys: {})",
                        release.namespace,
                        key_list(current.keys())
                    );
                    return Ok(());
                }
                step(&format!("update Secret {SECRET_NAME}"), || {
                    patch(sh, runner, &release, &changes)
                })?;
                println!(
                    "Secret {SECRET_NAME} in namespace {}: set {}",
                    release.namespace,
                    key_list(changes.keys())
                );
                restart_deployments(sh, runner, &release)?;
            }
        }
        Ok(())
    }

    /// The values asked for, from the environment or the terminal, each checked.
    fn wanted_values(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        let from_env = [
            (self.openai_key_from_env, SecretKey::OpenaiApiKey),
            (self.database_url_from_env, SecretKey::DatabaseUrl),
            (self.postgres_password_from_env, SecretKey::PostgresPassword),
        ];
        for (wanted, key) in from_env {
            if wanted {
                let value = std::env::var(key.name()).unwrap_or_default();
                if value.trim().is_empty() {
                    bail!("{} is not set in the environment", key.name());
                }
                values.insert(key.name().to_owned(), value.trim().to_owned());
            }
        }
        for key in &self.prompt {
            values.insert(key.name().to_owned(), prompt_hidden(key.name())?);
        }
        for (name, value) in &values {
            if let Some(key) = SecretKey::from_name(name) {
                key.check(value).map_err(anyhow::Error::msg)?;
            }
        }
        Ok(values)
    }
}

/// The pods read the Secret only when they start (the chart's checksum annotation cannot see an
/// existing Secret), so a changed value takes effect by restarting the release's Deployments.
fn restart_deployments(sh: &Shell, runner: Runner, release: &Release) -> anyhow::Result<()> {
    let selector = release.selector();
    let names = release.query(sh, &["get", "deployments", "-l", &selector, "-o", "name"])?;
    let deployments: Vec<&str> = names.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if deployments.is_empty() {
        eprintln!(
            "    no Deployments of release {} yet: the new values apply when it is deployed",
            release.name
        );
        return Ok(());
    }
    step("restart the pods so they read the new values", || {
        runner.run_on_stderr(
            release
                .kubectl(sh, WRITE_TIMEOUT)
                .args(["rollout", "restart"])
                .args(&deployments),
        )
    })
}

fn key_list<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    keys.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// Reads one line from the terminal with echo turned off.
fn prompt_hidden(label: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "cannot ask for {label}: stdin is not a terminal (set {label} in the environment and use the --...-from-env flag)"
        );
    }
    eprint!("{label} (typing is not shown): ");
    std::io::stderr().flush()?;
    let original = tcgetattr(&stdin).context("reading the terminal's settings")?;
    let mut hidden = original.clone();
    hidden.local_flags.remove(LocalFlags::ECHO);
    hidden.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &hidden).context("turning off echo")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &original).context("restoring the terminal")?;
    read.context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
