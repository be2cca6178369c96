//! Keeping secret values out of everything the workflow prints or saves: a [`Redactor`] knows
//! the values and scrubs any text; Helm values are scrubbed by key.

use std::{collections::BTreeSet, fmt};

use serde_json::{Value, json};

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
}
