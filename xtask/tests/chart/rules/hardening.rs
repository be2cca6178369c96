//! Rules C of helm/POLICY.md: hardening beyond the Pod Security Standards.

use super::*;

pub(super) fn h1_read_only_root_filesystem(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let claim_names: BTreeSet<String> = w
            .claim_templates
            .iter()
            .filter_map(|claim| claim.metadata.name.clone())
            .collect();
        for container in w.containers() {
            if sc(container).read_only_root_filesystem != Some(true) {
                c.flag(w.object, Some(&container.name), "readOnlyRootFilesystem is not true");
            }
            for mount in container
                .volume_mounts
                .iter()
                .flatten()
                .filter(|m| m.read_only != Some(true))
            {
                let volume = w.spec.volumes.iter().flatten().find(|v| v.name == mount.name);
                let writable_ok = claim_names.contains(&mount.name)
                    || volume.is_some_and(|v| v.empty_dir.is_some() || v.persistent_volume_claim.is_some());
                if !writable_ok {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("{} is writable but neither an emptyDir nor a claim", mount.mount_path),
                    );
                }
            }
        }
    }
}

pub(super) fn h2_high_user_and_group(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w.spec.security_context.clone().unwrap_or_default();
        for container in w.containers() {
            let user = sc(container).run_as_user.or(pod.run_as_user);
            let group = sc(container).run_as_group.or(pod.run_as_group);
            if user.is_none_or(|id| id <= 10_000) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("runAsUser {user:?} is not above 10000"),
                );
            }
            if group.is_none_or(|id| id <= 10_000) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("runAsGroup {group:?} is not above 10000"),
                );
            }
        }
    }
}

pub(super) fn h3_no_service_account_token(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec.automount_service_account_token != Some(false) {
            c.flag(w.object, None, "automountServiceAccountToken is not false");
        }
    }
}

pub(super) fn h4_own_service_account(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec.service_account.is_some() {
            c.flag(w.object, None, "the deprecated serviceAccount field is used");
        }
        match w.spec.service_account_name.as_deref() {
            None | Some("" | "default") => c.flag(w.object, None, "serviceAccountName is unset or `default`"),
            Some(name) if c.m.find("ServiceAccount", name).is_none() => c.flag(
                w.object,
                None,
                format!("ServiceAccount {name} is not rendered by the chart"),
            ),
            Some(_) => {}
        }
    }
}

pub(super) fn h5_pinned_image_tags(c: &mut Check<'_>) {
    let app_version = app_version();
    for w in c.m.workloads() {
        for container in w.containers() {
            let image = container.image.as_deref().unwrap_or_default();
            let last = image.rsplit('/').next().unwrap_or(image);
            let Some((repository, tag)) = last.split_once(':') else {
                c.flag(w.object, Some(&container.name), format!("image {image:?} has no tag"));
                continue;
            };
            if tag == "latest" || tag.is_empty() {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("image {image:?} uses tag {tag:?}"),
                );
            }
            let ours = repository == "todo-backend" || repository == "todo-frontend";
            let git_sha = tag.len() >= 7 && tag.chars().all(|ch| ch.is_ascii_hexdigit());
            if ours && tag != app_version && !git_sha {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("image {image:?}: tag is neither appVersion {app_version} nor a git SHA"),
                );
            }
        }
    }
}

pub(super) fn h6_no_secret_literals(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for var in container.env.iter().flatten() {
                let Some(value) = &var.value else { continue };
                if secret_like_name(&var.name) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("env {} is a secret given as a literal", var.name),
                    );
                }
                if url_has_credentials(value) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("env {} holds a URL with credentials", var.name),
                    );
                }
            }
        }
    }
    // The same holds for ConfigMaps, which reach the containers through envFrom.
    for object in c.m.of_kind("ConfigMap") {
        let Typed::ConfigMap(cm) = &object.typed else { continue };
        for (key, value) in cm.data.iter().flatten() {
            if secret_like_name(key) {
                c.flag(object, None, format!("key {key} looks like a secret"));
            }
            if url_has_credentials(value) {
                c.flag(object, None, format!("key {key} holds a URL with credentials"));
            }
        }
    }
}

pub(super) fn h7_no_duplicate_env(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let mut seen = BTreeSet::new();
            for var in container.env.iter().flatten() {
                if !seen.insert(var.name.as_str()) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("env {} is set twice", var.name),
                    );
                }
            }
        }
    }
}

pub(super) fn h8_unprivileged_ports(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for port in ports(container)
                .iter()
                .filter(|p| p.container_port == 22 || p.container_port < 1024)
            {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("containerPort {}", port.container_port),
                );
            }
        }
    }
}

pub(super) fn h9_release_namespace(c: &mut Check<'_>) {
    for object in &c.m.objects {
        if object.kind() == "Namespace" {
            continue;
        }
        let namespace = object.raw["metadata"]["namespace"].as_str();
        if namespace != Some(NAMESPACE) {
            c.flag(
                object,
                None,
                format!("metadata.namespace is {namespace:?}, not the release namespace"),
            );
        }
    }
}

pub(super) fn h11_internal_services(c: &mut Check<'_>) {
    for object in c.m.of_kind("Service") {
        let Typed::Service(service) = &object.typed else {
            continue;
        };
        let kind = service
            .spec
            .as_ref()
            .and_then(|s| s.type_.clone())
            .unwrap_or_else(|| "ClusterIP".into());
        if kind != "ClusterIP" {
            c.flag(
                object,
                None,
                format!("type {kind} exposes the Service outside the cluster"),
            );
        }
    }
}

pub(super) fn h12_namespace_labels(c: &mut Check<'_>) {
    for object in c.m.of_kind("Namespace") {
        if object
            .labels()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str)
            != Some("restricted")
        {
            c.flag(object, None, "no pod-security.kubernetes.io/enforce: restricted label");
        }
    }
}

// H10 lives in its own module: it evaluates the policies instead of matching fields.
pub(super) fn h10_network_policies(c: &mut Check<'_>) {
    for (object, message) in crate::netpol::problems(c.m) {
        c.flag(object, None, message);
    }
}
