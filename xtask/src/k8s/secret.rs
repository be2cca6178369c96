//! The Secret the chart reads (`todo-secrets`, never created by the chart): its keys, how a
//! value is generated and checked, and reading, creating and patching it.
//!
//! Secret values never appear on a command line (echoed, and visible to every user in `ps`), in
//! a file, or in anything printed: they reach kubectl on its stdin as a JSON object. Keys are set
//! with `stringData` (the API server encodes them), so no value is ever base64-encoded here.
//!
//! `kubectl create -f -` and `kubectl patch --patch-file=/dev/stdin` are used rather than
//! `kubectl apply`: apply would keep a second copy of every value in its
//! `last-applied-configuration` annotation.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde_json::json;
use xshell::Shell;

use crate::k8s::objects::{self, Secret};
use crate::{
    exec::{
        probe::{self, PROBE_TIMEOUT},
        runner::Runner,
    },
    k8s::release::{QUERY_TIMEOUT, Release, WRITE_TIMEOUT, is_not_found},
    redact::Redactor,
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
    pub fn check(self, value: &str) -> Result<(), String> {
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
    let secret: Secret = objects::parse_object(&probe.stdout, "secret")?;
    let mut values = BTreeMap::new();
    for (key, bytes) in secret.data.unwrap_or_default() {
        let decoded = String::from_utf8(bytes.0)
            .ok()
            .with_context(|| format!("key {key} of Secret {SECRET_NAME} is not UTF-8 text"))?;
        values.insert(key, decoded);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert!(SecretKey::JwtSecret.check("short").is_err());
        assert!(SecretKey::JwtSecret.check(&"x".repeat(32)).is_ok());
        assert!(SecretKey::DatabaseUrl.check("mysql://x").is_err());
        assert!(SecretKey::DatabaseUrl.check("postgres://u:p@h/db").is_ok());
        assert!(SecretKey::OpenaiApiKey.check("").is_err());
    }
}
