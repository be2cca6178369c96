//! H10: the NetworkPolicies, evaluated rather than pattern-matched.
//!
//! A small evaluator answers "may pod A open a TCP connection to port P of pod B?" the way the
//! NetworkPolicy API defines it (B's ingress policies and A's egress policies must both allow it),
//! and the app's intended flows are compared with its answers for every pair of workloads.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::ContainerPort,
        networking::v1::{NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use crate::harness::{Manifest, NAMESPACE, Object, Typed, Workload, selects};

/// The flows the app needs, by component: (from, to). Everything else between workloads is denied.
pub const INTENDED_FLOWS: &[(&str, &str)] = &[
    ("frontend", "backend"),
    ("test", "backend"),
    ("test", "frontend"),
    ("backend", "postgresql"),
];

/// Components whose ingress is open to any source on their ports: the UI is the app's entry point,
/// reached through an Ingress controller, a NodePort or a port-forward from unknown addresses.
const OPEN_INGRESS: &[&str] = &["frontend"];

/// Components that resolve Service names, so they need DNS egress.
const NEEDS_DNS: &[&str] = &["backend", "frontend", "test"];

struct Policy<'a> {
    object: &'a Object,
    spec: NetworkPolicySpec,
}

impl Policy<'_> {
    fn selects(&self, w: &Workload<'_>) -> bool {
        self.spec.pod_selector.as_ref().is_none_or(|s| selects(s, &w.labels))
    }

    fn has_type(&self, kind: &str) -> bool {
        match &self.spec.policy_types {
            Some(types) => types.iter().any(|t| t == kind),
            // The API's default: Ingress always, Egress when egress rules exist.
            None => kind == "Ingress" || self.spec.egress.is_some(),
        }
    }
}

/// Labels of the namespace the chart is rendered into.
fn namespace_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), NAMESPACE.to_owned())])
}

/// Does a peer match a pod of the release's namespace? ipBlock is assumed to match pods too (the
/// conservative reading: CNIs differ on whether pod IPs fall under ipBlock).
fn peer_matches(peer: &NetworkPolicyPeer, w: &Workload<'_>) -> bool {
    if peer.ip_block.is_some() {
        return true;
    }
    let namespace_ok = peer
        .namespace_selector
        .as_ref()
        .is_none_or(|s| selects(s, &namespace_labels()));
    let pod_ok = peer.pod_selector.as_ref().is_none_or(|s| selects(s, &w.labels));
    namespace_ok && pod_ok
}

fn port_allowed(rule_ports: Option<&Vec<NetworkPolicyPort>>, port: &ContainerPort) -> bool {
    let Some(rule_ports) = rule_ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    rule_ports.iter().any(|rule| {
        rule.protocol.as_deref().unwrap_or("TCP") == protocol
            && match &rule.port {
                None => true,
                Some(IntOrString::Int(n)) => (*n..=rule.end_port.unwrap_or(*n)).contains(&port.container_port),
                Some(IntOrString::String(name)) => port.name.as_deref() == Some(name.as_str()),
            }
    })
}

fn peers_allowed(peers: Option<&Vec<NetworkPolicyPeer>>, other: &Workload<'_>) -> bool {
    match peers {
        None => true,
        Some(peers) if peers.is_empty() => true,
        Some(peers) => peers.iter().any(|peer| peer_matches(peer, other)),
    }
}

fn ingress_allows(policies: &[Policy<'_>], from: &Workload<'_>, to: &Workload<'_>, port: &ContainerPort) -> bool {
    let applying: Vec<_> = policies
        .iter()
        .filter(|p| p.selects(to) && p.has_type("Ingress"))
        .collect();
    applying.is_empty()
        || applying.iter().any(|p| {
            p.spec
                .ingress
                .iter()
                .flatten()
                .any(|rule| peers_allowed(rule.from.as_ref(), from) && port_allowed(rule.ports.as_ref(), port))
        })
}

fn egress_allows(policies: &[Policy<'_>], from: &Workload<'_>, to: &Workload<'_>, port: &ContainerPort) -> bool {
    let applying: Vec<_> = policies
        .iter()
        .filter(|p| p.selects(from) && p.has_type("Egress"))
        .collect();
    applying.is_empty()
        || applying.iter().any(|p| {
            p.spec
                .egress
                .iter()
                .flatten()
                .any(|rule| peers_allowed(rule.to.as_ref(), to) && port_allowed(rule.ports.as_ref(), port))
        })
}

/// May `from` connect to `port` of `to`?
fn allowed(policies: &[Policy<'_>], from: &Workload<'_>, to: &Workload<'_>, port: &ContainerPort) -> bool {
    ingress_allows(policies, from, to, port) && egress_allows(policies, from, to, port)
}

/// Does some egress rule of a policy selecting `w` allow DNS (53, UDP and TCP) to another namespace?
fn dns_allowed(policies: &[Policy<'_>], w: &Workload<'_>, protocol: &str) -> bool {
    let dns = ContainerPort {
        container_port: 53,
        protocol: Some(protocol.to_owned()),
        ..Default::default()
    };
    policies
        .iter()
        .filter(|p| p.selects(w) && p.has_type("Egress"))
        .any(|p| {
            p.spec.egress.iter().flatten().any(|rule| {
                port_allowed(rule.ports.as_ref(), &dns)
                    && rule
                        .to
                        .iter()
                        .flatten()
                        .any(|peer| peer.namespace_selector.is_some() || peer.ip_block.is_some())
            })
        })
}

/// Everything H10 finds wrong in one manifest.
pub fn problems(m: &Manifest) -> Vec<(&Object, String)> {
    let policies: Vec<Policy<'_>> = m
        .objects
        .iter()
        .filter_map(|object| match &object.typed {
            Typed::NetworkPolicy(np) => Some(Policy {
                object,
                spec: np.spec.clone().unwrap_or_default(),
            }),
            _ => None,
        })
        .collect();
    let workloads = m.workloads();
    let mut problems = isolation_problems(&policies, &workloads);
    if policies.is_empty() {
        return problems;
    }
    problems.extend(dangling_selectors(&policies, &workloads));
    problems.extend(flow_problems(&policies, &workloads));
    problems
}

/// Every pod is isolated by a default-deny policy (both directions, no rule).
fn isolation_problems<'m>(policies: &[Policy<'m>], workloads: &[Workload<'m>]) -> Vec<(&'m Object, String)> {
    let mut problems = Vec::new();
    for w in workloads {
        let denied = policies.iter().any(|p| {
            p.selects(w)
                && p.has_type("Ingress")
                && p.has_type("Egress")
                && p.spec.ingress.as_ref().is_none_or(Vec::is_empty)
                && p.spec.egress.as_ref().is_none_or(Vec::is_empty)
        });
        if !denied {
            problems.push((
                w.object,
                "no default-deny (ingress and egress) NetworkPolicy selects its pods".to_owned(),
            ));
        }
        if !policies.iter().any(|p| p.selects(w)) {
            problems.push((w.object, "no NetworkPolicy selects its pods".to_owned()));
        }
    }
    problems
}

/// No policy or peer selector is dangling.
fn dangling_selectors<'m>(policies: &[Policy<'m>], workloads: &[Workload<'m>]) -> Vec<(&'m Object, String)> {
    let mut problems = Vec::new();
    for policy in policies {
        if !workloads.iter().any(|w| policy.selects(w)) {
            problems.push((policy.object, "its podSelector matches no workload".to_owned()));
        }
        let peers = policy
            .spec
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.from.iter().flatten())
            .chain(policy.spec.egress.iter().flatten().flat_map(|r| r.to.iter().flatten()));
        for peer in peers.filter(|peer| peer.namespace_selector.is_none() && peer.pod_selector.is_some()) {
            if !workloads.iter().any(|w| peer_matches(peer, w)) {
                problems.push((
                    policy.object,
                    format!("peer {:?} matches no workload", peer.pod_selector),
                ));
            }
        }
    }
    problems
}

/// The intended flows are open, every other flow between the release's pods is closed, and
/// each side holds on its own: a pod's ingress policy admits only its intended clients (unless
/// it is the app's open entry point) and its egress policy reaches only its intended servers.
fn flow_problems<'m>(policies: &[Policy<'m>], workloads: &[Workload<'m>]) -> Vec<(&'m Object, String)> {
    let mut problems = Vec::new();
    for from in workloads {
        for to in workloads.iter().filter(|to| to.component() != from.component()) {
            let intended = INTENDED_FLOWS.contains(&(from.component(), to.component()));
            for port in to.containers().flat_map(|c| c.ports.iter().flatten()) {
                let sides = [
                    (
                        "ingress",
                        ingress_allows(policies, from, to, port),
                        intended || OPEN_INGRESS.contains(&to.component()),
                    ),
                    ("egress", egress_allows(policies, from, to, port), intended),
                    ("end to end", allowed(policies, from, to, port), intended),
                ];
                for (side, open, expected) in sides.into_iter().filter(|(_, open, expected)| open != expected) {
                    problems.push((
                        to.object,
                        format!(
                            "{} -> {} port {} ({side}): {} but should be {}",
                            from.object.id(),
                            to.object.id(),
                            port.container_port,
                            if open { "allowed" } else { "denied" },
                            if expected { "allowed" } else { "denied" },
                        ),
                    ));
                }
            }
        }
        if NEEDS_DNS.contains(&from.component()) {
            for protocol in ["UDP", "TCP"] {
                if !dns_allowed(policies, from, protocol) {
                    problems.push((from.object, format!("no egress to the cluster DNS on 53/{protocol}")));
                }
            }
        }
    }
    problems
}
