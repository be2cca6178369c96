//! Rules A and B of helm/POLICY.md: the Pod Security Standards, Baseline and Restricted.

use super::*;

// A. Baseline

pub(super) fn pss_b1_host_namespaces(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for (field, value) in [
            ("hostNetwork", w.spec.host_network),
            ("hostPID", w.spec.host_pid),
            ("hostIPC", w.spec.host_ipc),
        ] {
            if value == Some(true) {
                c.flag(w.object, None, format!("{field} is true"));
            }
        }
    }
}

pub(super) fn pss_b2_privileged(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            if sc(container).privileged == Some(true) {
                c.flag(w.object, Some(&container.name), "securityContext.privileged is true");
            }
        }
    }
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub(super) fn pss_b3_baseline_capabilities(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let added = sc(container).capabilities.and_then(|caps| caps.add).unwrap_or_default();
            for cap in added
                .iter()
                .filter(|cap| !BASELINE_CAPABILITIES.contains(&cap.as_str()))
            {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("capabilities.add has {cap}, beyond the baseline set"),
                );
            }
        }
    }
}

pub(super) fn pss_b4_host_path(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for volume in w.spec.volumes.iter().flatten().filter(|v| v.host_path.is_some()) {
            c.flag(w.object, None, format!("volume {} is a hostPath", volume.name));
        }
    }
}

pub(super) fn pss_b5_host_ports(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for port in ports(container) {
                if port.host_port.is_some_and(|host_port| host_port != 0) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("hostPort {:?}", port.host_port),
                    );
                }
            }
        }
    }
}

pub(super) fn pss_b6_app_armor(c: &mut Check<'_>) {
    let allowed = |kind: &str| kind == "RuntimeDefault" || kind == "Localhost";
    for w in c.m.workloads() {
        let pod_profile = w
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.app_armor_profile.as_ref());
        if let Some(profile) = pod_profile.filter(|p| !allowed(&p.type_)) {
            c.flag(w.object, None, format!("pod appArmorProfile {}", profile.type_));
        }
        for container in w.containers() {
            if let Some(profile) = sc(container).app_armor_profile.filter(|p| !allowed(&p.type_)) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("appArmorProfile {}", profile.type_),
                );
            }
        }
        for (key, value) in &w.annotations {
            if key.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && value != "runtime/default"
                && !value.starts_with("localhost/")
            {
                c.flag(w.object, None, format!("annotation {key}: {value}"));
            }
        }
    }
}

pub(super) fn pss_b7_se_linux(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec
            .security_context
            .as_ref()
            .is_some_and(|sc| sc.se_linux_options.is_some())
        {
            c.flag(w.object, None, "pod securityContext.seLinuxOptions is set");
        }
        for container in w.containers() {
            if sc(container).se_linux_options.is_some() {
                c.flag(w.object, Some(&container.name), "securityContext.seLinuxOptions is set");
            }
        }
    }
}

pub(super) fn pss_b8_proc_mount(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            if let Some(mount) = sc(container).proc_mount.filter(|mount| mount != "Default") {
                c.flag(w.object, Some(&container.name), format!("procMount {mount}"));
            }
        }
    }
}

pub(super) fn pss_b9_seccomp_not_unconfined(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.seccomp_profile.as_ref());
        if pod.is_some_and(|p| p.type_ == "Unconfined") {
            c.flag(w.object, None, "pod seccompProfile is Unconfined");
        }
        for container in w.containers() {
            if sc(container).seccomp_profile.is_some_and(|p| p.type_ == "Unconfined") {
                c.flag(w.object, Some(&container.name), "seccompProfile is Unconfined");
            }
        }
    }
}

pub(super) fn pss_b10_sysctls(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let sysctls = w.spec.security_context.as_ref().and_then(|sc| sc.sysctls.as_ref());
        if sysctls.is_some_and(|list| !list.is_empty()) {
            c.flag(w.object, None, "securityContext.sysctls is set");
        }
    }
}

// B. Restricted

const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

pub(super) fn pss_r1_volume_types(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for volume in w.spec.volumes.iter().flatten() {
            let as_json = serde_json::to_value(volume).expect("a Volume serializes");
            let kinds: Vec<&String> = as_json.as_object().into_iter().flatten().map(|(k, _)| k).collect();
            for kind in kinds.into_iter().filter(|k| *k != "name") {
                if !RESTRICTED_VOLUME_TYPES.contains(&kind.as_str()) {
                    c.flag(w.object, None, format!("volume {} is of type {kind}", volume.name));
                }
            }
        }
    }
}

pub(super) fn pss_r2_no_privilege_escalation(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            if sc(container).allow_privilege_escalation != Some(false) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "allowPrivilegeEscalation is not explicitly false",
                );
            }
        }
    }
}

pub(super) fn pss_r3_run_as_non_root(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w.spec.security_context.as_ref().and_then(|sc| sc.run_as_non_root);
        for container in w.containers() {
            match sc(container).run_as_non_root {
                Some(false) => c.flag(w.object, Some(&container.name), "runAsNonRoot is false"),
                None if pod != Some(true) => c.flag(
                    w.object,
                    Some(&container.name),
                    "runAsNonRoot is set neither here nor on the pod",
                ),
                _ => {}
            }
        }
    }
}

pub(super) fn pss_r4_not_root_user(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0) {
            c.flag(w.object, None, "pod runAsUser is 0");
        }
        for container in w.containers() {
            if sc(container).run_as_user == Some(0) {
                c.flag(w.object, Some(&container.name), "runAsUser is 0");
            }
        }
    }
}

pub(super) fn pss_r5_seccomp_profile(c: &mut Check<'_>) {
    let good = |kind: &str| kind == "RuntimeDefault" || kind == "Localhost";
    for w in c.m.workloads() {
        let pod = w
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.seccomp_profile.as_ref());
        if let Some(profile) = pod.filter(|p| !good(&p.type_)) {
            c.flag(w.object, None, format!("pod seccompProfile is {}", profile.type_));
        }
        let pod_ok = pod.is_some_and(|p| good(&p.type_));
        for container in w.containers() {
            match sc(container).seccomp_profile {
                Some(profile) if !good(&profile.type_) => c.flag(
                    w.object,
                    Some(&container.name),
                    format!("seccompProfile is {}", profile.type_),
                ),
                None if !pod_ok => c.flag(
                    w.object,
                    Some(&container.name),
                    "no seccompProfile RuntimeDefault/Localhost on the container or the pod",
                ),
                _ => {}
            }
        }
    }
}

pub(super) fn pss_r6_capabilities(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let caps = sc(container).capabilities.unwrap_or_default();
            if !caps.drop.iter().flatten().any(|cap| cap == "ALL") {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "capabilities.drop does not contain ALL",
                );
            }
            if caps.add.is_some_and(|add| !add.is_empty()) {
                c.flag(w.object, Some(&container.name), "capabilities.add is not empty");
            }
        }
    }
}

pub(super) fn pss_r7_non_root_groups(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w.spec.security_context.clone().unwrap_or_default();
        if pod.fs_group.is_none_or(|group| group == 0) {
            c.flag(w.object, None, format!("fsGroup is {:?}", pod.fs_group));
        }
        if pod.supplemental_groups.iter().flatten().any(|group| *group == 0) {
            c.flag(w.object, None, "supplementalGroups contains 0");
        }
        for container in w.containers() {
            let group = sc(container).run_as_group.or(pod.run_as_group);
            if group.is_none_or(|group| group == 0) {
                c.flag(w.object, Some(&container.name), format!("runAsGroup is {group:?}"));
            }
        }
    }
}
