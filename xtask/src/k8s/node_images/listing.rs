//! Listing what each node of a cluster holds, node by node, the way each tool's own loader sees
//! its nodes: kind's internal nodes (not its load balancer), each node of a multi-node Minikube
//! profile, k3d's servers and agents, or the Docker engine a Docker Desktop-like cluster runs on.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use super::{NodeImage, NodeImages, qualify};
use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    images::ImageRecord,
    tools::engine::Engine,
};

/// Runs a read-only query and returns its stdout.
pub(super) fn read_only(cmd: xshell::Cmd<'_>) -> anyhow::Result<String> {
    let probe = probe::run(cmd, PROBE_TIMEOUT);
    if !probe.succeeded() {
        bail!("{}", probe.failure());
    }
    Ok(probe.stdout)
}

/// `<provider> exec <node> crictl images -o json`.
pub(super) fn crictl_images(sh: &Shell, provider: &str, node: &str) -> anyhow::Result<NodeImages> {
    let json = read_only(cmd!(sh, "{provider} exec {node} crictl images -o json"))?;
    Ok(NodeImages {
        node: node.to_owned(),
        images: parse_crictl_images(&json).with_context(|| format!("reading the images of node {node}"))?,
    })
}

/// The nodes `kind load` loads into: of the containers `kind get nodes` lists, those whose role
/// label is `control-plane` or `worker` (kind's `nodeutils.InternalNodes`). A cluster with several
/// control planes also has an `external-load-balancer` container, which has no container runtime.
pub(super) fn kind_nodes(sh: &Shell, provider: &str, cluster: &str) -> anyhow::Result<Vec<NodeImages>> {
    let nodes = read_only(cmd!(sh, "kind get nodes --name {cluster}"))?;
    // The query kind's docker and podman providers make for `Node.Role()`.
    let format = "{{ index .Config.Labels \"io.x-k8s.kind.role\"}}";
    let mut listed = Vec::new();
    for node in nodes.lines().map(str::trim).filter(|node| !node.is_empty()) {
        let role = read_only(cmd!(sh, "{provider} inspect --format {format} {node}"))
            .with_context(|| format!("reading the kind role of {node}"))?;
        if matches!(role.trim(), "control-plane" | "worker") {
            listed.push(crictl_images(sh, provider, node)?);
        }
    }
    Ok(listed)
}

/// What each node of a Minikube profile holds. `minikube image ls` merges the lists of all nodes
/// (and skips a node it cannot list), so with several nodes each is asked on its own through
/// `minikube ssh -n <node>` (minikube points crictl at the runtime's CRI socket, whatever the
/// runtime). One node: `minikube image ls` is that node's list.
pub(super) fn minikube_nodes(sh: &Shell, profile: &str) -> anyhow::Result<Vec<NodeImages>> {
    let nodes = parse_minikube_node_list(&read_only(cmd!(sh, "minikube node list -p {profile}"))?);
    if let [node] = nodes.as_slice() {
        let json = read_only(cmd!(sh, "minikube image ls --format json -p {profile}"))?;
        return Ok(vec![NodeImages {
            node: node.clone(),
            images: parse_minikube_images(&json)?,
        }]);
    }
    if nodes.is_empty() {
        bail!(
            "`minikube node list -p {profile}` lists no node: is the profile running? (minikube status -p {profile})"
        );
    }
    nodes
        .iter()
        .map(|node| {
            let json = read_only(cmd!(
                sh,
                "minikube ssh -p {profile} -n {node} -- sudo crictl images -o json"
            ))
            .with_context(|| format!("listing the images of Minikube node {node}"))?;
            Ok(NodeImages {
                node: node.clone(),
                images: parse_crictl_images(&json).with_context(|| format!("reading the images of node {node}"))?,
            })
        })
        .collect()
}

/// The Docker engine that Docker Desktop-like clusters run on, as one node: each image it holds
/// under its qualified name, with both its engine id and its config digest (they differ under the
/// containerd image store).
pub(super) fn docker_engine(sh: &Shell, images: &[ImageRecord], scratch: &Path) -> anyhow::Result<Vec<NodeImages>> {
    let mut held = Vec::new();
    for image in images {
        let reference = qualify(&image.reference);
        if !Engine::Docker.has_image(sh, &reference) {
            continue;
        }
        let (id, _) = Engine::Docker.image_info(sh, &reference)?;
        let config = Engine::Docker.config_digest(sh, &reference, scratch)?;
        for id in [id, config] {
            held.push(NodeImage {
                id,
                names: vec![reference.clone()],
            });
        }
    }
    Ok(vec![NodeImages {
        node: "the Docker engine".to_owned(),
        images: held,
    }])
}

/// Parses `minikube node list`: `<machine name>\t<ip>` per node (`minikube`, `minikube-m02`).
pub fn parse_minikube_node_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Parses `minikube image ls --format json`: `[{"id","repoDigests","repoTags","size"}]`, one
/// entry per image across all nodes (the runtime's `ListImage`).
pub fn parse_minikube_images(json: &str) -> anyhow::Result<Vec<NodeImage>> {
    // Minikube may print a warning line before the JSON.
    let json = json
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('['))
        .unwrap_or(json);
    let images: Vec<ListedImage> =
        serde_json::from_str(json.trim()).context("reading `minikube image ls --format json`")?;
    Ok(images.into_iter().map(ListedImage::into_node_image).collect())
}

/// Parses `crictl images -o json`: `{"images":[{"id":"sha256:...","repoTags":[...],...}]}`.
pub fn parse_crictl_images(json: &str) -> anyhow::Result<Vec<NodeImage>> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        images: Vec<ListedImage>,
    }
    let list: List = serde_json::from_str(json.trim()).context("reading `crictl images -o json`")?;
    Ok(list.images.into_iter().map(ListedImage::into_node_image).collect())
}

/// An image as crictl and `minikube image ls` list it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedImage {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
}

impl ListedImage {
    fn into_node_image(self) -> NodeImage {
        NodeImage {
            id: self.id.trim_start_matches("sha256:").to_owned(),
            names: self.repo_tags.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fixture: tests/fixtures/real-cluster/multinode-minikube/minikube-node-list.txt (SOURCES.md, item 6).
    #[test]
    fn minikube_node_lists_give_machine_names() {
        assert_eq!(
            parse_minikube_node_list("minikube\t192.168.49.2\nminikube-m02\t192.168.49.3\n"),
            ["minikube", "minikube-m02"]
        );
        assert!(parse_minikube_node_list("").is_empty());
    }
}
