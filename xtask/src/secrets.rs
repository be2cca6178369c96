//! The Secret the chart reads (`todo-secrets`, never created by the chart) and `cargo xtask
//! secrets`, which creates and updates it.
//!
//! Secret values never appear on a command line (echoed, and visible to every user in `ps`), in
//! a file, or in anything printed: they reach kubectl on its stdin as a JSON object, and a
//! [`Redactor`] that knows them scrubs every tool output the workflow shows or saves. Keys are
//! set with `stringData` (the API server encodes them), so no value is ever base64-encoded here.
//!
//! `kubectl create -f -` and `kubectl patch --patch-file=/dev/stdin` are used rather than
//! `kubectl apply`: apply would keep a second copy of every value in its
//! `last-applied-configuration` annotation.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    io::{BufRead, IsTerminal, Write},
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use xshell::Shell;

use crate::{
    probe::{self, PROBE_TIMEOUT},
    progress::step,
    release::{Access, QUERY_TIMEOUT, Release, ReleaseArgs, WRITE_TIMEOUT, is_not_found},
    runner::Runner,
};

/// The Secret's name: the chart's default `secrets.existingSecret`.
pub const SECRET_NAME: &str = "todo-secrets";

/// A key the chart reads from the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SecretKey {
    /// Signs the login tokens (always needed; at least 32 bytes).
    #[value(name = "JWT_SECRET")]
    JwtSecret,
    /// The PostgreSQL server's URL (database.type=external).
    #[value(name = "DATABASE_URL")]
    DatabaseUrl,
    /// The in-cluster PostgreSQL's password (database.type=postgresql).
    #[value(name = "POSTGRES_PASSWORD")]
    PostgresPassword,
    /// The chat assistant's API key (backend.openai.enabled).
    #[value(name = "OPENAI_API_KEY")]
    OpenaiApiKey,
}

impl SecretKey {
    /// The key in the Secret (also the environment variable it is read from).
    pub fn name(self) -> &'static str {
        match self {
            SecretKey::JwtSecret => "JWT_SECRET",
            SecretKey::DatabaseUrl => "DATABASE_URL",
            SecretKey::PostgresPassword => "POSTGRES_PASSWORD",
            SecretKey::OpenaiApiKey => "OPENAI_API_KEY",
        }
    }

    /// The key of that name.
    pub fn from_name(name: &str) -> Option<SecretKey> {
        [
            SecretKey::JwtSecret,
            SecretKey::DatabaseUrl,
            SecretKey::PostgresPassword,
            SecretKey::OpenaiApiKey,
        ]
        .into_iter()
        .find(|key| key.name() == name)
    }

    /// The command that sets this key.
    pub fn fix(self) -> String {
        match self {
            SecretKey::JwtSecret => "cargo xtask secrets".to_owned(),
            SecretKey::DatabaseUrl => {
                "DATABASE_URL=postgres://... cargo xtask secrets --database-url-from-env".to_owned()
            }
            SecretKey::PostgresPassword => {
                "POSTGRES_PASSWORD=$(openssl rand -hex 24) cargo xtask secrets --postgres-password-from-env".to_owned()
            }
            SecretKey::OpenaiApiKey => "cargo xtask secrets --openai-key-from-env (with OPENAI_API_KEY set)".to_owned(),
        }
    }

    /// Why a value cannot be used, if it cannot.
    fn check(self, value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Err(format!("{} is empty", self.name()));
        }
        match self {
            SecretKey::JwtSecret if value.len() < 32 => Err("JWT_SECRET must be at least 32 characters".to_owned()),
            SecretKey::DatabaseUrl if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) => {
                Err("DATABASE_URL must be a postgres:// URL".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// `bytes` random bytes as hex (a fresh JWT secret is 32 of them).
pub fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer).map_err(|err| anyhow::anyhow!("no system randomness: {err}"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

// ---------------------------------------------------------------------------------------------
// Keeping values out of what is shown

/// Knows the secret values and replaces each with [`Redactor::MARK`] in any text.
#[derive(Clone, Default)]
pub struct Redactor {
    values: BTreeSet<String>,
}

impl fmt::Debug for Redactor {
    // Never the values themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    /// What a secret value is replaced with.
    pub const MARK: &'static str = "[redacted]";

    /// Remembers a value (and the password inside a URL). Values shorter than 4 characters are
    /// ignored: scrubbing them would mangle ordinary text and hides nothing.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() >= 4 {
            self.values.insert(value.to_owned());
        }
        if let Some(password) = url_password(value) {
            self.add(password);
        }
    }

    /// `text` with every known value replaced (longest first, so a value that contains another is
    /// replaced whole).
    pub fn redact(&self, text: &str) -> String {
        let mut values: Vec<&String> = self.values.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut text = text.to_owned();
        for value in values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), Self::MARK);
            }
        }
        text
    }
}

/// The password of `scheme://user:password@host/...`.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (credentials, _) = rest.split_once('@')?;
    let (_, password) = credentials.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// Replaces the values of keys that hold secrets (`jwtSecret`, `password`, `apiKey`, `token`, a
/// URL with credentials) anywhere in a JSON document such as `helm get values -o json`.
pub fn redact_secret_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let key = key.to_ascii_lowercase();
                let secret_key = (key.contains("secret") && key != "existingsecret")
                    || key.contains("password")
                    || key.contains("apikey")
                    || (key.contains("token") && !key.contains("ttl"));
                let secret_url = item.as_str().is_some_and(|s| url_password(s).is_some());
                if (secret_key && item.is_string()) || secret_url {
                    *item = Value::String(Redactor::MARK.to_owned());
                } else {
                    redact_secret_keys(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secret_keys),
        _ => {}
    }
}

/// Whether a `--set key=value` would put a secret on a command line.
pub fn is_secret_value_key(key: &str) -> bool {
    let mut probe = json!({ key.rsplit('.').next().unwrap_or(key): "x" });
    redact_secret_keys(&mut probe);
    probe.as_object().and_then(|m| m.values().next()) == Some(&Value::String(Redactor::MARK.to_owned()))
        || key == "database.external.url"
}

// ---------------------------------------------------------------------------------------------
// The Secret in the cluster

/// The Secret's values by key (decoded, kept in memory only), or `None` when it does not exist.
pub fn read(sh: &Shell, release: &Release) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let probe = probe::run(
        release
            .kubectl(sh, QUERY_TIMEOUT)
            .args(["get", "secret", SECRET_NAME, "-o", "json"]),
        PROBE_TIMEOUT,
    );
    if !probe.succeeded() {
        if is_not_found(&probe.stderr) {
            return Ok(None);
        }
        bail!("reading Secret {SECRET_NAME}: {}", probe.failure());
    }
    let secret: Value = serde_json::from_str(&probe.stdout).context("reading the Secret's JSON")?;
    let mut values = BTreeMap::new();
    for (key, encoded) in secret["data"].as_object().into_iter().flatten() {
        let decoded = encoded
            .as_str()
            .and_then(crate::manifests::base64_decode)
            .with_context(|| format!("key {key} of Secret {SECRET_NAME} is not UTF-8 text"))?;
        values.insert(key.clone(), decoded);
    }
    Ok(Some(values))
}

/// Creates the Secret with these values (sent on stdin).
pub fn create(sh: &Shell, runner: Runner, release: &Release, values: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": release.namespace,
            "labels": {"app.kubernetes.io/part-of": "todo", "app.kubernetes.io/managed-by": "cargo-xtask"},
        },
        "stringData": values,
    });
    runner.run_on_stderr_with_stdin(
        release.kubectl(sh, WRITE_TIMEOUT).args(["create", "-f", "-"]),
        &manifest.to_string(),
    )
}

/// Sets these keys of the existing Secret (sent on stdin), keeping the others.
pub fn patch(sh: &Shell, runner: Runner, release: &Release, values: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let patch = json!({ "stringData": values });
    runner.run_on_stderr_with_stdin(
        release.kubectl(sh, WRITE_TIMEOUT).args([
            "patch",
            "secret",
            SECRET_NAME,
            "--type=merge",
            "--patch-file=/dev/stdin",
        ]),
        &patch.to_string(),
    )
}

/// What `deploy` needs: the Secret exists and has a JWT_SECRET (a random one is made once). Every
/// value it holds is given to `redactor`.
pub fn ensure_for_deploy(sh: &Shell, runner: Runner, release: &Release, redactor: &mut Redactor) -> anyhow::Result<()> {
    let jwt = SecretKey::JwtSecret.name();
    match read(sh, release)? {
        Some(values) => {
            values.values().for_each(|value| redactor.add(value));
            if values.contains_key(jwt) {
                let keys: Vec<&str> = values.keys().map(String::as_str).collect();
                eprintln!("    Secret {SECRET_NAME} exists (keys: {})", keys.join(", "));
                return Ok(());
            }
            let secret = random_hex(32)?;
            redactor.add(&secret);
            eprintln!("    Secret {SECRET_NAME} has no {jwt}: adding a random one");
            patch(sh, runner, release, &BTreeMap::from([(jwt.to_owned(), secret)]))
        }
        None => {
            let secret = random_hex(32)?;
            redactor.add(&secret);
            create(sh, runner, release, &BTreeMap::from([(jwt.to_owned(), secret)]))?;
            eprintln!("    created Secret {SECRET_NAME} with a random {jwt} (manage it with `cargo xtask secrets`)");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `cargo xtask secrets`

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_url_passwords_are_redacted() {
        let mut redactor = Redactor::default();
        redactor.add("0123456789abcdef0123456789abcdef");
        redactor.add("postgres://todo:s3cr3t-pw@db.example.com:5432/todo");
        redactor.add("ab");
        let text = "jwt=0123456789abcdef0123456789abcdef url=postgres://todo:s3cr3t-pw@db:5432 ab";
        assert_eq!(
            redactor.redact(text),
            "jwt=[redacted] url=postgres://todo:[redacted]@db:5432 ab"
        );
        assert_eq!(format!("{redactor:?}"), "Redactor(3 values)");
    }

    #[test]
    fn secret_keys_are_redacted_in_values() {
        let mut values = json!({
            "secrets": {"existingSecret": "todo-secrets", "jwtSecret": "abc"},
            "backend": {"openai": {"apiKey": "sk-1", "model": "gpt"}, "tokenTtlSeconds": 60},
            "database": {"external": {"url": "postgres://u:p@h/db"}, "postgresql": {"password": "pw"}}
        });
        redact_secret_keys(&mut values);
        assert_eq!(values["secrets"]["existingSecret"], "todo-secrets");
        assert_eq!(values["secrets"]["jwtSecret"], Redactor::MARK);
        assert_eq!(values["backend"]["openai"]["apiKey"], Redactor::MARK);
        assert_eq!(values["backend"]["openai"]["model"], "gpt");
        assert_eq!(values["backend"]["tokenTtlSeconds"], 60);
        assert_eq!(values["database"]["external"]["url"], Redactor::MARK);
        assert_eq!(values["database"]["postgresql"]["password"], Redactor::MARK);
    }

    #[test]
    fn secret_set_keys_are_recognised() {
        for key in [
            "secrets.jwtSecret",
            "backend.openai.apiKey",
            "database.postgresql.password",
            "database.external.url",
        ] {
            assert!(is_secret_value_key(key), "{key}");
        }
        for key in ["backend.logLevel", "secrets.existingSecret", "backend.tokenTtlSeconds"] {
            assert!(!is_secret_value_key(key), "{key}");
        }
    }

    #[test]
    fn values_are_checked() {
        assert!(SecretKey::JwtSecret.check("short").is_err());
        assert!(SecretKey::JwtSecret.check(&"x".repeat(32)).is_ok());
        assert!(SecretKey::DatabaseUrl.check("mysql://x").is_err());
        assert!(SecretKey::DatabaseUrl.check("postgres://u:p@h/db").is_ok());
        assert!(SecretKey::OpenaiApiKey.check("").is_err());
    }
}
