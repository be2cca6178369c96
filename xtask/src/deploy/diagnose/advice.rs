//! What each kind of failure means and what fixes it, in plain words: the Secret or ConfigMap
//! (key) that is missing, why the scheduler refused, the values key that raises a memory limit,
//! and what an exit code usually means.

use crate::k8s::secret::{SECRET_NAME, SecretKey};

/// The reason and fix for a CreateContainerConfigError message, such as
/// `couldn't find key OPENAI_API_KEY in Secret todo/todo-secrets` or `secret "todo-secrets" not found`.
pub(super) fn missing_config(message: &str, component: &str, pod: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("couldn't find key ") {
        if let Some((key, object)) = rest.split_once(" in Secret ") {
            let secret = object.rsplit('/').next().unwrap_or(object).trim();
            let fix = match SecretKey::from_name(key) {
                Some(known) if secret == SECRET_NAME => format!("add it: {}", known.fix()),
                _ => format!("add key {key} to Secret {secret}"),
            };
            return (
                format!("{component} pod {pod} cannot start: the Secret {secret} has no key {key}"),
                fix,
            );
        }
        if let Some((key, object)) = rest.split_once(" in ConfigMap ") {
            let configmap = object.rsplit('/').next().unwrap_or(object).trim();
            return (
                format!("{component} pod {pod} cannot start: the ConfigMap {configmap} has no key {key}"),
                "the chart renders it: deploy again, and check `helm get manifest` if it persists".to_owned(),
            );
        }
    }
    if let Some(name) = message
        .strip_prefix("secret \"")
        .and_then(|rest| rest.strip_suffix("\" not found"))
    {
        let fix = if name == SECRET_NAME {
            "create it: cargo xtask secrets".to_owned()
        } else {
            format!("create Secret {name}, or point secrets.existingSecret at one that exists")
        };
        return (
            format!("{component} pod {pod} cannot start: the Secret {name} does not exist"),
            fix,
        );
    }
    if let Some(name) = message
        .strip_prefix("configmap \"")
        .and_then(|rest| rest.strip_suffix("\" not found"))
    {
        return (
            format!("{component} pod {pod} cannot start: the ConfigMap {name} does not exist"),
            "the chart renders it: deploy again, and check `helm get manifest` if it persists".to_owned(),
        );
    }
    (
        format!("{component} pod {pod} cannot start: {message}"),
        format!("kubectl describe pod {pod}"),
    )
}

pub(super) fn unschedulable_fix(message: &str, component: &str, pod: &str) -> String {
    let key = match component {
        "postgresql" => "database.postgresql.resources.requests".to_owned(),
        other => format!("{other}.resources.requests"),
    };
    if message.contains("Insufficient memory") || message.contains("Insufficient cpu") {
        let resource = if message.contains("Insufficient memory") {
            "memory"
        } else {
            "cpu"
        };
        format!(
            "the node has too little {resource} left: lower the request (cargo xtask deploy --set {key}.{resource}=...) \
             or give the cluster more (minikube delete && minikube start --cpus=2 --memory=4096mb, see \
             docs/deployment/minikube.md)"
        )
    } else if message.contains("PersistentVolumeClaim") {
        "no volume was provisioned for the claim: the cluster needs a default StorageClass \
         (Minikube: minikube addons enable default-storageclass && minikube addons enable storage-provisioner)"
            .to_owned()
    } else if message.contains("taint") {
        "the nodes' taints keep the pod off them: kubectl describe nodes".to_owned()
    } else {
        format!("kubectl describe pod {pod}")
    }
}

/// The values key of a component's memory limit.
pub(super) fn memory_values_key(component: &str) -> String {
    match component {
        "postgresql" => "database.postgresql.resources.limits.memory".to_owned(),
        other => format!("{other}.resources.limits.memory"),
    }
}

/// Twice a quantity such as `128Mi` or `1Gi` (`None` for forms not worth parsing).
pub(super) fn double_quantity(quantity: &str) -> Option<String> {
    let digits = quantity.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &quantity[digits.len()..];
    let value: u64 = digits.parse().ok()?;
    Some(format!("{}{unit}", value * 2))
}

/// What an exit code usually means, for people (`, killed by SIGKILL`).
pub(super) fn exit_meaning(code: i32) -> &'static str {
    match code {
        126 => " (the command cannot be executed)",
        127 => " (the command was not found)",
        134 => " (aborted: SIGABRT)",
        137 => " (killed: SIGKILL)",
        139 => " (segmentation fault)",
        143 => " (stopped: SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_double_with_their_unit() {
        assert_eq!(double_quantity("128Mi").as_deref(), Some("256Mi"));
        assert_eq!(double_quantity("1Gi").as_deref(), Some("2Gi"));
        assert_eq!(double_quantity("0.5Gi"), None);
    }

    #[test]
    fn config_errors_name_the_missing_piece_and_the_command() {
        let (reason, fix) = missing_config(
            "couldn't find key OPENAI_API_KEY in Secret todo/todo-secrets",
            "backend",
            "todo-backend-1",
        );
        assert_eq!(
            reason,
            "backend pod todo-backend-1 cannot start: the Secret todo-secrets has no key OPENAI_API_KEY"
        );
        assert!(fix.contains("cargo xtask secrets --openai-key-from-env"), "{fix}");
        let (reason, fix) = missing_config("secret \"todo-secrets\" not found", "backend", "p");
        assert!(reason.ends_with("the Secret todo-secrets does not exist"), "{reason}");
        assert_eq!(fix, "create it: cargo xtask secrets");
    }
}
