//! The chart as rendered by `helm template`, read the way the kubelet would read it: which
//! environment each container gets (ConfigMaps and Secrets resolved), which user it runs as,
//! which paths are writable, and which Service names reach it. `e2e` runs the images with
//! exactly these settings. The objects are read into `k8s-openapi` types, the one model of
//! Kubernetes objects in xtask (`k8s::objects`).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, bail};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Container, PersistentVolumeClaim, PodSpec, Secret, Service as KubeService},
};
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

/// The objects of a rendered chart that xtask reads, by kind; other kinds are skipped.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The Deployments.
    pub deployments: Vec<Deployment>,
    /// The Services.
    pub services: Vec<KubeService>,
    /// The ConfigMaps.
    pub config_maps: Vec<ConfigMap>,
    /// The Secrets (`data` already base64-decoded by `k8s-openapi`).
    pub secrets: Vec<Secret>,
    /// The PersistentVolumeClaims.
    pub claims: Vec<PersistentVolumeClaim>,
}

/// Renders the chart and reads its objects.
pub fn render(sh: &Shell, helm: &Path, release: &str, chart: &Path, args: &[String]) -> anyhow::Result<Rendered> {
    let output = cmd!(sh, "{helm} template {release} {chart} {args...}")
        .quiet()
        .read()
        .context("helm template failed")?;
    Rendered::parse(&output)
}

impl Rendered {
    /// Reads a multi-document YAML stream (`helm template`, `helm get manifest`), skipping empty
    /// documents and kinds xtask does not read. An object of a read kind that does not have the
    /// API's shape is an error naming it.
    pub fn parse(yaml: &str) -> anyhow::Result<Rendered> {
        let mut rendered = Rendered::default();
        for document in serde_yaml_ng::Deserializer::from_str(yaml) {
            let value: Value = serde::Deserialize::deserialize(document).context("helm printed invalid YAML")?;
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let read = |error: serde_json::Error| anyhow::anyhow!("the chart's {kind} {name} cannot be read: {error}");
            match kind.as_str() {
                "Deployment" => rendered.deployments.push(serde_json::from_value(value).map_err(read)?),
                "Service" => rendered.services.push(serde_json::from_value(value).map_err(read)?),
                "ConfigMap" => rendered.config_maps.push(serde_json::from_value(value).map_err(read)?),
                "Secret" => rendered.secrets.push(serde_json::from_value(value).map_err(read)?),
                "PersistentVolumeClaim" => rendered.claims.push(serde_json::from_value(value).map_err(read)?),
                _ => {}
            }
        }
        Ok(rendered)
    }

    /// The settings of the given service's container. `secrets` supplies values for Secrets the
    /// chart references but does not render (an `existingSecret`), by key.
    pub fn container_spec(
        &self,
        service: Service,
        secrets: &BTreeMap<String, String>,
    ) -> anyhow::Result<ContainerSpec> {
        let component = service.name();
        let deployment = self
            .deployments
            .iter()
            .find(|d| label(&d.metadata.labels, "app.kubernetes.io/component") == Some(component))
            .with_context(|| format!("the chart renders no Deployment for the {component}"))?;
        let template = deployment.spec.as_ref().map(|s| &s.template);
        let pod = template
            .and_then(|t| t.spec.as_ref())
            .with_context(|| format!("the {component} Deployment has no pod spec"))?;
        let container = pod
            .containers
            .iter()
            .find(|c| c.name == component)
            .or_else(|| pod.containers.first())
            .with_context(|| format!("the {component} Deployment has no container"))?;

        let mut spec = ContainerSpec {
            image: container.image.clone().unwrap_or_default(),
            ..ContainerSpec::default()
        };
        self.resolve_env(container, secrets, &mut spec)?;
        read_security(pod, container, &mut spec);
        read_mounts(pod, container, &mut spec)?;
        let pod_labels = template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone());
        spec.service_names = self.selecting_services(&pod_labels.unwrap_or_default());
        Ok(spec)
    }

    /// The container's environment as the kubelet builds it: `envFrom` first, then `env`, every
    /// ConfigMap and Secret reference resolved.
    fn resolve_env(
        &self,
        container: &Container,
        secrets: &BTreeMap<String, String>,
        spec: &mut ContainerSpec,
    ) -> anyhow::Result<()> {
        for source in container.env_from.iter().flatten() {
            if let Some(config_map) = &source.config_map_ref {
                spec.env.extend(self.config_map_data(&config_map.name)?);
            } else if let Some(secret) = &source.secret_ref {
                spec.env.extend(self.secret_data(&secret.name, secrets));
            }
        }
        for variable in container.env.iter().flatten() {
            let name = &variable.name;
            let from = variable.value_from.as_ref();
            let value = if let Some(value) = &variable.value {
                value.clone()
            } else if let Some(key_ref) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                let data = self.config_map_data(&key_ref.name)?;
                data.get(&key_ref.key)
                    .cloned()
                    .with_context(|| format!("{name}: key missing from its ConfigMap"))?
            } else if let Some(key_ref) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                let data = self.secret_data(&key_ref.name, secrets);
                data.get(&key_ref.key)
                    .cloned()
                    .with_context(|| format!("{name}: no value for Secret key {}", key_ref.key))?
            } else {
                bail!("{name}: unsupported env source {from:?}");
            };
            spec.env.insert(name.clone(), value);
        }
        Ok(())
    }

    /// The names of the Services whose selector picks pods with these labels.
    fn selecting_services(&self, pod_labels: &BTreeMap<String, String>) -> Vec<String> {
        self.services
            .iter()
            .filter(|service| {
                let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
                selector.is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| pod_labels.get(k) == Some(v)))
            })
            .filter_map(|service| service.metadata.name.clone())
            .collect()
    }

    fn config_map_data(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let config_map = self
            .config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .with_context(|| format!("the chart references ConfigMap {name} but does not render it"))?;
        Ok(config_map.data.clone().unwrap_or_default())
    }

    /// A rendered Secret's `data` (decoded) and `stringData`, or else the supplied values.
    fn secret_data(&self, name: &str, supplied: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        match self.secrets.iter().find(|s| s.metadata.name.as_deref() == Some(name)) {
            Some(secret) => {
                let mut data: BTreeMap<String, String> = secret
                    .data
                    .iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
                    .collect();
                data.extend(secret.string_data.clone().unwrap_or_default());
                data
            }
            None => supplied.clone(),
        }
    }
}

fn label<'a>(labels: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    labels.as_ref()?.get(key).map(String::as_str)
}

/// The user, read-only root filesystem, privilege escalation and capabilities (the container's
/// security context over the pod's).
fn read_security(pod: &PodSpec, container: &Container, spec: &mut ContainerSpec) {
    let own = container.security_context.as_ref();
    let shared = pod.security_context.as_ref();
    let uid = own.and_then(|s| s.run_as_user).or(shared.and_then(|s| s.run_as_user));
    let gid = own.and_then(|s| s.run_as_group).or(shared.and_then(|s| s.run_as_group));
    if let Some(uid) = uid {
        spec.user = Some(format!("{uid}:{}", gid.unwrap_or(uid)));
    }
    spec.read_only_root = own.and_then(|s| s.read_only_root_filesystem) == Some(true);
    spec.no_new_privileges = own.and_then(|s| s.allow_privilege_escalation) == Some(false);
    spec.drop_all_capabilities = own
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
}

/// The writable paths: `emptyDir` scratch space and PersistentVolumeClaims.
fn read_mounts(pod: &PodSpec, container: &Container, spec: &mut ContainerSpec) -> anyhow::Result<()> {
    let volumes = pod.volumes.as_deref().unwrap_or_default();
    for mount in container.volume_mounts.iter().flatten() {
        let path = mount.mount_path.clone();
        let volume = volumes
            .iter()
            .find(|v| v.name == mount.name)
            .with_context(|| format!("no volume for {path}"))?;
        if volume.empty_dir.is_some() {
            spec.scratch_paths.push(path);
        } else if let Some(claim) = &volume.persistent_volume_claim {
            spec.persistent_paths.push((claim.claim_name.clone(), path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
  selector: {matchLabels: {app: todo, component: backend}}
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
        let rendered = Rendered::parse(RENDERED).unwrap();
        let supplied = BTreeMap::from([("JWT_SECRET".to_owned(), "s3cret".to_owned())]);
        let spec = rendered.container_spec(Service::Backend, &supplied).unwrap();
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
            rendered
                .container_spec(Service::Frontend, &supplied)
                .unwrap_err()
                .to_string()
                .contains("no Deployment")
        );
    }

    #[test]
    fn a_missing_secret_value_is_an_error() {
        let rendered = Rendered::parse(RENDERED).unwrap();
        let err = rendered.container_spec(Service::Backend, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn an_object_without_the_api_shape_is_named() {
        let err =
            Rendered::parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken}\ndata: [1, 2]\n").unwrap_err();
        assert!(err.to_string().contains("ConfigMap broken cannot be read"), "{err}");
        // A Secret's `data` must be base64, as the API server requires.
        let err = Rendered::parse("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {K: \"not base64!\"}\n")
            .unwrap_err();
        assert!(err.to_string().contains("Secret s cannot be read"), "{err}");
        let skipped =
            Rendered::parse("---\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n");
        assert!(
            skipped.unwrap().deployments.is_empty(),
            "other kinds and empty documents are skipped"
        );
    }
}
