//! Rules D of helm/POLICY.md, R1 to R7: resources, probes and graceful termination.

use super::*;

pub(super) fn r1_resources(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let resources = container.resources.clone().unwrap_or_default();
            for (part, map, key) in [
                ("requests.cpu", resources.requests.as_ref(), "cpu"),
                ("requests.memory", resources.requests.as_ref(), "memory"),
                ("limits.memory", resources.limits.as_ref(), "memory"),
            ] {
                if !quantity_is_set(map, key) {
                    c.flag(w.object, Some(&container.name), format!("{part} is not set"));
                }
            }
            if !quantity_is_set(resources.limits.as_ref(), "cpu") {
                c.flag_as("R1.cpu-limit", w.object, Some(&container.name), "no CPU limit");
            }
        }
    }
}

pub(super) fn r2_readiness_probe(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers().filter(|c| serving(c)) {
            if container.readiness_probe.is_none() {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "serving container without readinessProbe",
                );
            }
        }
    }
}

pub(super) fn r3_liveness_probe(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers().filter(|c| serving(c)) {
            if container.liveness_probe.is_none() {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "serving container without livenessProbe",
                );
            }
        }
    }
}

/// What a probe asks, without its timing.
fn probe_action(probe: &Probe) -> serde_json::Value {
    serde_json::json!({
        "exec": probe.exec, "httpGet": probe.http_get, "tcpSocket": probe.tcp_socket, "grpc": probe.grpc,
    })
}

pub(super) fn r4_distinct_probes(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let (Some(liveness), Some(readiness)) = (&container.liveness_probe, &container.readiness_probe) else {
                continue;
            };
            if probe_action(liveness) == probe_action(readiness) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "liveness and readiness probes ask the same thing",
                );
            }
            let path = |p: &Probe| p.http_get.as_ref().and_then(|h| h.path.clone());
            if path(liveness).is_some() && path(liveness) == path(readiness) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("both probes GET {:?}", path(liveness)),
                );
            }
            let window =
                |p: &Probe| i64::from(p.failure_threshold.unwrap_or(3)) * i64::from(p.period_seconds.unwrap_or(10));
            if window(liveness) <= window(readiness) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!(
                        "liveness gives up after {} s, not later than readiness ({} s)",
                        window(liveness),
                        window(readiness)
                    ),
                );
            }
        }
    }
}

pub(super) fn r5_probe_ports(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for (kind, probe) in probes(container) {
                let Some(probe) = probe else { continue };
                let reference = probe
                    .http_get
                    .as_ref()
                    .map(|h| h.port.clone())
                    .or_else(|| probe.tcp_socket.as_ref().map(|t| t.port.clone()))
                    .or_else(|| probe.grpc.as_ref().map(|g| IntOrString::Int(g.port)));
                if let Some(reference) = reference
                    && !ports(container).iter().any(|port| port_matches(&reference, port))
                {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("{kind} port {reference:?} is not a container port"),
                    );
                }
            }
        }
    }
}

pub(super) fn r6_startup_and_timeouts(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers().filter(|c| serving(c)) {
            let liveness_delay = container
                .liveness_probe
                .as_ref()
                .and_then(|p| p.initial_delay_seconds)
                .unwrap_or(0);
            if container.startup_probe.is_none() && liveness_delay == 0 {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "no startupProbe and no liveness initialDelaySeconds",
                );
            }
            for (kind, probe) in probes(container) {
                if probe.is_some_and(|p| p.timeout_seconds.is_none()) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("{kind} has no explicit timeoutSeconds"),
                    );
                }
            }
        }
    }
}

pub(super) fn r7_graceful_termination(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let grace = w.spec.termination_grace_period_seconds.unwrap_or(30);
        for container in w.containers().filter(|c| serving(c)) {
            let pre_stop = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
            let Some(pre_stop) = pre_stop else {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "serving container without lifecycle.preStop",
                );
                continue;
            };
            if let Some(sleep) = &pre_stop.sleep {
                let env = c.m.environment(container);
                let (Some(drain), Some(timeout)) = (
                    env_number(&env, "SHUTDOWN_DRAIN_SECONDS"),
                    env_number(&env, "SHUTDOWN_TIMEOUT_SECONDS"),
                ) else {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        "SHUTDOWN_DRAIN_SECONDS/SHUTDOWN_TIMEOUT_SECONDS not set",
                    );
                    continue;
                };
                let needed = sleep.seconds + drain + timeout + 5;
                if grace < needed {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!(
                            "terminationGracePeriodSeconds {grace} < preStop {} + drain {drain} + timeout {timeout} + 5",
                            sleep.seconds
                        ),
                    );
                }
                if !(1..=30).contains(&sleep.seconds) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("preStop sleeps {} s", sleep.seconds),
                    );
                }
            } else if let Some(exec) = &pre_stop.exec {
                // An exec hook that bounds itself (`--timeout=N`) must fit the grace period too.
                let bound = exec
                    .command
                    .iter()
                    .flatten()
                    .find_map(|arg| arg.strip_prefix("--timeout=").and_then(|n| n.parse::<i64>().ok()));
                match bound {
                    Some(seconds) if grace < seconds + 5 => c.flag(
                        w.object,
                        Some(&container.name),
                        format!("terminationGracePeriodSeconds {grace} < preStop timeout {seconds} + 5"),
                    ),
                    None => c.flag(
                        w.object,
                        Some(&container.name),
                        "preStop exec without a --timeout bound",
                    ),
                    _ => {}
                }
            } else {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "preStop is neither a sleep nor a bounded exec",
                );
            }
        }
    }
}
