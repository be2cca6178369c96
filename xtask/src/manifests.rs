//! The chart as rendered by `helm template`, read the way the kubelet would read it: which
//! environment each container gets (ConfigMaps and Secrets resolved), which user it runs as,
//! which paths are writable, and which Service names reach it. `e2e` runs the images with
//! exactly these settings.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::images::Service;

/// How one container of the chart runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// The image reference.
    pub image: String,
    /// The environment, every reference resolved (sorted by name).
    pub env: BTreeMap<String, String>,
    /// `uid:gid` from the security contexts.
    pub user: Option<String>,
    /// `readOnlyRootFilesystem: true`.
    pub read_only_root: bool,
    /// `capabilities.drop` contains `ALL`.
    pub drop_all_capabilities: bool,
    /// `allowPrivilegeEscalation: false`.
    pub no_new_privileges: bool,
    /// Paths backed by an `emptyDir`.
    pub scratch_paths: Vec<String>,
    /// Paths backed by a PersistentVolumeClaim, with the claim's name.
    pub persistent_paths: Vec<(String, String)>,
    /// Names of the Services that select this pod.
    pub service_names: Vec<String>,
}

/// Renders the chart and returns every object as JSON.
pub fn render(sh: &Shell, helm: &Path, release: &str, chart: &Path, args: &[String]) -> anyhow::Result<Vec<Value>> {
    let output = cmd!(sh, "{helm} template {release} {chart} {args...}")
        .quiet()
        .read()
        .context("helm template failed")?;
    parse_documents(&output)
}

/// Splits a multi-document YAML stream into JSON values, skipping empty documents.
pub fn parse_documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value: Value = serde::Deserialize::deserialize(document).context("helm printed invalid YAML")?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The settings of the given service's container. `secrets` supplies values for Secrets the
/// chart references but does not render (an `existingSecret`), by key.
pub fn container_spec(
    documents: &[Value],
    service: Service,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<ContainerSpec> {
    let component = service.name();
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["labels"]["app.kubernetes.io/component"] == component)
        .with_context(|| format!("the chart renders no Deployment for the {component}"))?;
    let pod = &deployment["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == component).or_else(|| c.first()))
        .with_context(|| format!("the {component} Deployment has no container"))?;

    let mut spec = ContainerSpec {
        image: text(&container["image"]).to_owned(),
        ..ContainerSpec::default()
    };
    resolve_env(documents, container, secrets, &mut spec)?;
    read_security(pod, container, &mut spec);
    read_mounts(pod, container, &mut spec)?;
    spec.service_names = selecting_services(documents, deployment);
    Ok(spec)
}

/// The container's environment as the kubelet builds it: `envFrom` first, then `env`, every
/// ConfigMap and Secret reference resolved.
fn resolve_env(
    documents: &[Value],
    container: &Value,
    secrets: &BTreeMap<String, String>,
    spec: &mut ContainerSpec,
) -> anyhow::Result<()> {
    for source in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = source["configMapRef"]["name"].as_str() {
            spec.env.extend(object_data(documents, "ConfigMap", name)?);
        } else if let Some(name) = source["secretRef"]["name"].as_str() {
            spec.env.extend(secret_data(documents, name, secrets));
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = text(&variable["name"]).to_owned();
        let from = &variable["valueFrom"];
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_owned()
        } else if from["configMapKeyRef"].is_object() {
            let data = object_data(documents, "ConfigMap", text(&from["configMapKeyRef"]["name"]))?;
            data.get(text(&from["configMapKeyRef"]["key"]))
                .cloned()
                .with_context(|| format!("{name}: key missing from its ConfigMap"))?
        } else if from["secretKeyRef"].is_object() {
            let key = text(&from["secretKeyRef"]["key"]);
            let data = secret_data(documents, text(&from["secretKeyRef"]["name"]), secrets);
            data.get(key)
                .cloned()
                .with_context(|| format!("{name}: no value for Secret key {key}"))?
        } else {
            bail!("{name}: unsupported env source {from}");
        };
        spec.env.insert(name, value);
    }
    Ok(())
}

/// The user, read-only root filesystem, privilege escalation and capabilities (the container's
/// security context over the pod's).
fn read_security(pod: &Value, container: &Value, spec: &mut ContainerSpec) {
    let security = |field: &str| {
        let own = &container["securityContext"][field];
        if own.is_null() {
            pod["securityContext"][field].clone()
        } else {
            own.clone()
        }
    };
    if let Some(uid) = security("runAsUser").as_u64() {
        let gid = security("runAsGroup").as_u64().unwrap_or(uid);
        spec.user = Some(format!("{uid}:{gid}"));
    }
    spec.read_only_root = container["securityContext"]["readOnlyRootFilesystem"] == true;
    spec.no_new_privileges = container["securityContext"]["allowPrivilegeEscalation"] == false;
    spec.drop_all_capabilities = container["securityContext"]["capabilities"]["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
}

/// The writable paths: `emptyDir` scratch space and PersistentVolumeClaims.
fn read_mounts(pod: &Value, container: &Value, spec: &mut ContainerSpec) -> anyhow::Result<()> {
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let path = text(&mount["mountPath"]).to_owned();
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .with_context(|| format!("no volume for {path}"))?;
        if volume["emptyDir"].is_object() {
            spec.scratch_paths.push(path);
        } else if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
            spec.persistent_paths.push((claim.to_owned(), path));
        }
    }
    Ok(())
}

/// The names of the Services whose selector picks the Deployment's pods.
fn selecting_services(documents: &[Value], deployment: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for service in documents.iter().filter(|d| d["kind"] == "Service") {
        let selector = service["spec"]["selector"].as_object();
        if selector.is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v)) {
            names.push(text(&service["metadata"]["name"]).to_owned());
        }
    }
    names
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn object_data(documents: &[Value], kind: &str, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let object = documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("the chart references {kind} {name} but does not render it"))?;
    Ok(string_map(&object["data"]))
}

/// A rendered Secret's `stringData` (and `data`, base64-decoded), or else the supplied values.
fn secret_data(documents: &[Value], name: &str, supplied: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    match documents
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == name)
    {
        Some(secret) => {
            let mut data: BTreeMap<String, String> = string_map(&secret["data"])
                .into_iter()
                .filter_map(|(k, v)| Some((k, base64_decode(&v)?)))
                .collect();
            data.extend(string_map(&secret["stringData"]));
            data
        }
        None => supplied.clone(),
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes standard base64 (as in a Secret's `data`, padded or not, line breaks allowed) into
/// UTF-8 text; `None` if it is not.
pub(crate) fn base64_decode(input: &str) -> Option<String> {
    use base64::{
        Engine as _, alphabet,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = input.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    String::from_utf8(LENIENT.decode(compact).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_data_is_decoded_padded_or_not() {
        assert_eq!(base64_decode("dG9kbw==").as_deref(), Some("todo"));
        assert_eq!(base64_decode("dG9k\nbw").as_deref(), Some("todo"));
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(base64_decode("//79"), None, "not UTF-8");
    }

    const RENDERED: &str = r#"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: todo-backend}
data: {LISTEN_ADDR: "0.0.0.0:8000", DATABASE_URL: "sqlite:///data/todo.db"}
---
apiVersion: v1
kind: Secret
metadata: {name: rendered}
data: {TOKEN: aGVsbG8td29ybGQ=}
---
apiVersion: v1
kind: Service
metadata: {name: todo-backend}
spec: {selector: {app: todo, component: backend}}
---
apiVersion: v1
kind: Service
metadata: {name: todo-frontend}
spec: {selector: {app: todo, component: frontend}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: todo-backend, labels: {app.kubernetes.io/component: backend}}
spec:
  template:
    metadata: {labels: {app: todo, component: backend}}
    spec:
      securityContext: {runAsUser: 65532, runAsGroup: 65532}
      containers:
        - name: backend
          image: todo-backend:abc
          envFrom: [{configMapRef: {name: todo-backend}}]
          env:
            - {name: JWT_SECRET, valueFrom: {secretKeyRef: {name: todo-secrets, key: JWT_SECRET}}}
            - {name: TOKEN, valueFrom: {secretKeyRef: {name: rendered, key: TOKEN}}}
            - {name: PLAIN, value: "1"}
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: tmp, mountPath: /tmp}, {name: data, mountPath: /data}]
      volumes:
        - {name: tmp, emptyDir: {}}
        - {name: data, persistentVolumeClaim: {claimName: todo-backend}}
"#;

    #[test]
    fn reads_a_container_as_the_kubelet_would() {
        let documents = parse_documents(RENDERED).unwrap();
        let supplied = BTreeMap::from([("JWT_SECRET".to_owned(), "s3cret".to_owned())]);
        let spec = container_spec(&documents, Service::Backend, &supplied).unwrap();
        assert_eq!(spec.image, "todo-backend:abc");
        assert_eq!(spec.env["DATABASE_URL"], "sqlite:///data/todo.db");
        assert_eq!(spec.env["JWT_SECRET"], "s3cret");
        assert_eq!(spec.env["TOKEN"], "hello-world");
        assert_eq!(spec.env["PLAIN"], "1");
        assert_eq!(spec.user.as_deref(), Some("65532:65532"));
        assert!(spec.read_only_root && spec.no_new_privileges && spec.drop_all_capabilities);
        assert_eq!(spec.scratch_paths, ["/tmp"]);
        assert_eq!(spec.persistent_paths, [("todo-backend".to_owned(), "/data".to_owned())]);
        assert_eq!(spec.service_names, ["todo-backend"]);
        assert!(
            container_spec(&documents, Service::Frontend, &supplied)
                .unwrap_err()
                .to_string()
                .contains("no Deployment")
        );
    }

    #[test]
    fn a_missing_secret_value_is_an_error() {
        let documents = parse_documents(RENDERED).unwrap();
        let err = container_spec(&documents, Service::Backend, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }
}
