//! Deliberate exceptions to the rules, each with its reason. An entry that no longer matches any
//! finding fails the policy test, so the list cannot go stale.

use crate::rules::Finding;

/// One exception.
#[derive(Debug)]
pub struct Allow {
    /// The rule id (or rule part, like `R1.cpu-limit`).
    pub rule: &'static str,
    /// `Kind/name`, or `*` for every object.
    pub object: &'static str,
    /// Only in this values file; None for all.
    pub values: Option<&'static str>,
    /// Only findings whose message contains this; None for all.
    pub detail: Option<&'static str>,
    /// Why it is allowed.
    pub reason: &'static str,
}

impl Allow {
    /// Does this entry excuse the finding?
    pub fn matches(&self, finding: &Finding) -> bool {
        self.rule == finding.rule
            && (self.object == "*" || self.object == finding.object)
            && self.values.is_none_or(|values| values == finding.values)
            && self.detail.is_none_or(|detail| finding.message.contains(detail))
    }
}

/// The exceptions (see "Known conflicts" in helm/POLICY.md).
pub const ALLOWLIST: &[Allow] = &[
    Allow {
        rule: "R1.cpu-limit",
        object: "*",
        values: None,
        detail: None,
        reason: "no CPU limits, as kube-score's --ignore-container-cpu-limit argues: CFS throttling adds tail \
                 latency and strands idle CPU; CPU requests reserve what each pod needs, memory is limited",
    },
    Allow {
        rule: "R15.always",
        object: "*",
        values: None,
        detail: None,
        reason: "images reach the cluster by `minikube image load` with content-addressed tags; `Always` would \
                 ask a registry that does not have them and fail",
    },
    Allow {
        rule: "R11",
        object: "Deployment/todo-backend",
        values: None,
        detail: Some("its pods back a SQLite database"),
        reason: "a SQLite file on a ReadWriteOnce claim has exactly one writer: Recreate, never two pods at once \
                 (PostgreSQL removes the exception)",
    },
    Allow {
        rule: "H11",
        object: "Service/todo-frontend",
        values: Some("values-dev.yaml"),
        detail: Some("NodePort"),
        reason: "Minikube without an Ingress addon reaches the UI on NodePort 30000; only the frontend, only in \
                 values-dev.yaml, and the backend stays ClusterIP",
    },
    Allow {
        rule: "H10",
        object: "*",
        values: Some("ci/network-policies-off-values.yaml"),
        detail: Some("NetworkPolicy"),
        reason: "networkPolicy.enabled=false is the documented switch for clusters whose network plugin does not \
                 enforce NetworkPolicies",
    },
];
