//! Getting exactly the images just built onto the cluster's nodes, and proving they are there.
//!
//! Each kind of local cluster has its own way in: `minikube image load`, `kind load`, `k3d image
//! import`, or nothing at all for clusters that run on the Docker engine that built the images
//! (Docker Desktop and friends). Minikube, kind and k3d read an image by name only from a Docker
//! daemon; images built with Podman travel as an archive (`podman save`). Podman names an
//! unqualified image `localhost/todo-backend:<tag>`, which is not the `todo-backend:<tag>` (that
//! is, `docker.io/library/todo-backend:<tag>`) a pod asks for, so the image is first tagged with
//! its fully qualified name and saved under that name.
//!
//! What a node holds is compared by image ID *and* name: a content-addressed tag makes a stale
//! image unlikely, the ID makes it impossible. The ID is the image's config digest, which is what
//! node runtimes report; Docker's containerd image store calls an image by its manifest or index
//! digest instead, so the record keeps both. Each node the loader loads into is asked on its own
//! (`listing.rs`).

mod listing;

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use self::listing::{crictl_images, read_only};
pub use self::listing::{parse_crictl_images, parse_minikube_images};
use crate::{
    exec::runner::Runner,
    images::{BuildRecord, ImageRecord},
    k8s::context::ClusterKind,
    tools::{self, engine::Engine},
};

/// How images reach the nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loader {
    /// `minikube image load` into this profile.
    Minikube {
        /// The Minikube profile.
        profile: String,
    },
    /// `kind load` into this cluster.
    Kind {
        /// The kind cluster's name.
        cluster: String,
    },
    /// `k3d image import` into this cluster.
    K3d {
        /// The k3d cluster's name.
        cluster: String,
    },
    /// The cluster runs on the local Docker engine (Docker Desktop, Rancher Desktop with dockerd,
    /// OrbStack, Colima): an image in that engine is an image on the node.
    DockerEngine,
    /// A remote cluster: its nodes pull from a registry (`--push --registry`).
    Registry,
}

/// The images one node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImages {
    /// The node (a kind or k3d node container, a Minikube machine such as `minikube-m02`).
    pub node: String,
    /// Its images.
    pub images: Vec<NodeImage>,
}

/// One image in a node's container runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    /// The image ID (hex, without `sha256:`).
    pub id: String,
    /// Its names (`docker.io/library/todo-backend:<tag>`).
    pub names: Vec<String>,
}

impl Loader {
    /// The way in for this kind of cluster.
    pub fn for_cluster(kind: &ClusterKind) -> Loader {
        match kind {
            ClusterKind::Minikube { profile } => Loader::Minikube {
                profile: profile.clone(),
            },
            ClusterKind::Kind { cluster } => Loader::Kind {
                cluster: cluster.clone(),
            },
            ClusterKind::K3d { cluster } => Loader::K3d {
                cluster: cluster.clone(),
            },
            ClusterKind::DockerDesktop | ClusterKind::RancherDesktop | ClusterKind::OrbStack | ClusterKind::Colima => {
                Loader::DockerEngine
            }
            ClusterKind::Remote => Loader::Registry,
        }
    }

    /// Checks that the programs this way needs are installed.
    pub fn require_tools(&self) -> anyhow::Result<()> {
        match self {
            Loader::Minikube { .. } => tools::require(tools::MINIKUBE).map(drop),
            Loader::Kind { .. } => {
                tools::require(tools::KIND)?;
                tools::require(kind_provider()).map(drop)
            }
            Loader::K3d { .. } => {
                tools::require(tools::K3D)?;
                tools::require(tools::DOCKER).map(drop)
            }
            Loader::DockerEngine => tools::require(tools::DOCKER).map(drop),
            Loader::Registry => Ok(()),
        }
    }

    /// What the nodes hold now: one list per node (read-only). Only a Docker engine's list
    /// depends on `images` (it is asked about each); `scratch` takes the archives that reading a
    /// Docker image's config digest needs.
    pub fn node_images(&self, sh: &Shell, images: &[ImageRecord], scratch: &Path) -> anyhow::Result<Vec<NodeImages>> {
        match self {
            Loader::Minikube { profile } => listing::minikube_nodes(sh, profile),
            Loader::Kind { cluster } => listing::kind_nodes(sh, kind_provider().program, cluster),
            Loader::K3d { cluster } => {
                let filter = format!("label=k3d.cluster={cluster}");
                let format = "{{.Names}} {{.Label \"k3d.role\"}}";
                let containers = read_only(cmd!(sh, "docker ps --filter {filter} --format {format}"))?;
                containers
                    .lines()
                    .filter_map(|line| line.split_once(' '))
                    .filter(|(_, role)| matches!(role.trim(), "server" | "agent"))
                    .map(|(node, _)| crictl_images(sh, "docker", node))
                    .collect()
            }
            Loader::DockerEngine => listing::docker_engine(sh, images, scratch),
            Loader::Registry => Ok(Vec::new()),
        }
    }

    /// Whether `image` must be checked on the nodes and loaded (false where the nodes read the
    /// builder's own store, or pull from a registry).
    pub fn loads(&self, engine: Engine) -> bool {
        match self {
            Loader::Minikube { .. } | Loader::Kind { .. } | Loader::K3d { .. } => true,
            Loader::DockerEngine => engine != Engine::Docker,
            Loader::Registry => false,
        }
    }

    /// Puts `image` (held by `engine`) on the nodes; archives go to `archive_dir` and are removed
    /// after loading.
    pub fn load(
        &self,
        sh: &Shell,
        runner: Runner,
        engine: Engine,
        image: &ImageRecord,
        archive_dir: &Path,
    ) -> anyhow::Result<()> {
        let reference = &image.reference;
        let archive = if engine == Engine::Docker && !matches!(self, Loader::DockerEngine) {
            None
        } else {
            Some(save_archive(sh, runner, engine, image, archive_dir)?)
        };
        let source = archive
            .as_deref()
            .map_or_else(|| reference.clone(), |a| a.display().to_string());
        let result = match self {
            Loader::Minikube { profile } => runner.run_on_stderr(cmd!(sh, "minikube image load {source} -p {profile}")),
            Loader::Kind { cluster } if archive.is_some() => {
                runner.run_on_stderr(cmd!(sh, "kind load image-archive {source} --name {cluster}"))
            }
            Loader::Kind { cluster } => runner
                .run_on_stderr(cmd!(sh, "kind load docker-image {source} --name {cluster}"))
                .context(
                    "if kind said `ctr: content digest sha256:...: not found`, the image carries a provenance \
                     attestation that `docker save` leaves out (kind issue 3795): rebuild it with `cargo xtask \
                     build-images`, which builds without one",
                ),
            Loader::K3d { cluster } => runner.run_on_stderr(cmd!(sh, "k3d image import {source} -c {cluster}")),
            Loader::DockerEngine => runner.run_on_stderr(cmd!(sh, "docker load -i {source}")),
            Loader::Registry => Ok(()),
        };
        if let Some(archive) = archive.filter(|_| !runner.is_dry_run()) {
            let _ = std::fs::remove_file(archive);
        }
        result
    }

    /// The commands that load `image` by hand, when it is one of the build in `record` (`None`
    /// for an image the workflow did not build).
    pub fn hint_for(&self, record: &BuildRecord, image: &str) -> Option<String> {
        let wanted = qualify(image);
        record
            .images
            .iter()
            .find(|i| qualify(&i.reference) == wanted)
            .map(|i| self.load_hint(record.engine, &i.reference))
    }

    /// The commands that load `reference` by hand, for messages.
    pub fn load_hint(&self, engine: Engine, reference: &str) -> String {
        let qualified = qualify(reference);
        let program = engine.program();
        let file = format!(
            "{}.tar",
            reference.rsplit('/').next().unwrap_or(reference).replace(':', "-")
        );
        let save = format!("{program} tag {reference} {qualified} && {program} save -o {file} {qualified}");
        let by_archive = engine != Engine::Docker;
        match self {
            Loader::Minikube { profile } if by_archive => format!("{save} && minikube image load {file} -p {profile}"),
            Loader::Minikube { profile } => format!("minikube image load {reference} -p {profile}"),
            Loader::Kind { cluster } if by_archive => {
                format!("{save} && kind load image-archive {file} --name {cluster}")
            }
            Loader::Kind { cluster } => format!("kind load docker-image {reference} --name {cluster}"),
            Loader::K3d { cluster } if by_archive => format!("{save} && k3d image import {file} -c {cluster}"),
            Loader::K3d { cluster } => format!("k3d image import {reference} -c {cluster}"),
            Loader::DockerEngine if by_archive => format!("{save} && docker load -i {file}"),
            Loader::DockerEngine => {
                format!("docker image inspect {reference} (rebuild with `cargo xtask build-images`)")
            }
            Loader::Registry => format!("push it: cargo xtask build-images --push --registry <registry> ({reference})"),
        }
    }
}

/// kind runs its nodes with Docker unless told to use Podman.
fn kind_provider() -> tools::Tool {
    match std::env::var("KIND_EXPERIMENTAL_PROVIDER").as_deref() {
        Ok("podman") => tools::PODMAN,
        _ => tools::DOCKER,
    }
}

/// `<engine> tag` to the fully qualified name, then `<engine> save` under that name.
fn save_archive(
    sh: &Shell,
    runner: Runner,
    engine: Engine,
    image: &ImageRecord,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let program = engine.program();
    let reference = &image.reference;
    let qualified = qualify(reference);
    let archive = dir.join(format!("{}-{}.tar", image.name, image.tag));
    if !runner.is_dry_run() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    runner.run_on_stderr(cmd!(sh, "{program} tag {reference} {qualified}"))?;
    runner.run_on_stderr(cmd!(sh, "{program} save -o {archive} {qualified}"))?;
    Ok(archive)
}

/// The name a container runtime gives a reference: `todo-backend:abc` is
/// `docker.io/library/todo-backend:abc`, `team/app:1` is `docker.io/team/app:1`; a name with a
/// registry host (`registry.example.com/app:1`, `localhost/app:1`) stays as it is.
pub fn qualify(reference: &str) -> String {
    match reference.split_once('/') {
        None => format!("docker.io/library/{reference}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => reference.to_owned(),
        Some(_) => format!("docker.io/{reference}"),
    }
}

/// Whether two image IDs are the same, ignoring `sha256:` and truncation (to at least 12 digits).
pub fn same_id(a: &str, b: &str) -> bool {
    let a = a.trim().trim_start_matches("sha256:");
    let b = b.trim().trim_start_matches("sha256:");
    let shorter = a.len().min(b.len());
    shorter >= 12 && a[..shorter] == b[..shorter]
}

/// Whether a node holds `image`: the same ID under the same (qualified) name. A node's runtime
/// names an image by its config digest; the engine's own id is accepted too (the same under
/// Podman and Docker's classic store; what `ctr images ls` shows under containerd, as kind's own
/// check accepts since kind PR 4238).
pub fn holds(images: &[NodeImage], image: &ImageRecord) -> bool {
    let name = qualify(&image.reference);
    images.iter().any(|held| {
        (same_id(&held.id, image.node_id()) || same_id(&held.id, &image.id))
            && held.names.iter().any(|n| qualify(n) == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::Service;

    fn record(reference: &str, id: &str) -> ImageRecord {
        ImageRecord {
            service: Service::Backend,
            name: "todo-backend".into(),
            tag: "3f2a9c1b7d4e".into(),
            reference: reference.into(),
            id: id.into(),
            config_digest: None,
            size_bytes: 1,
            built: true,
            revision: None,
        }
    }

    const ID: &str = "5d15003a1e2354c56b265a491e15d2d0f0195c0726789bbf031ad1445cfcf089";

    #[test]
    fn references_are_qualified_like_container_runtimes_do() {
        assert_eq!(qualify("todo-backend:abc"), "docker.io/library/todo-backend:abc");
        assert_eq!(qualify("team/app:1"), "docker.io/team/app:1");
        assert_eq!(
            qualify("registry.example.com/team/app:1"),
            "registry.example.com/team/app:1"
        );
        assert_eq!(qualify("localhost/todo-backend:abc"), "localhost/todo-backend:abc");
        assert_eq!(qualify("localhost:5000/app:1"), "localhost:5000/app:1");
    }

    #[test]
    fn ids_compare_without_prefix_or_truncation() {
        assert!(same_id(ID, &format!("sha256:{ID}")));
        assert!(same_id(&ID[..12], ID));
        assert!(!same_id(&ID[..6], ID));
        assert!(!same_id(ID, &ID.replace('5', "6")));
    }

    // Shape of `minikube image ls --format json` (cruntime.ListImage; the docker runtime adds
    // `docker.io/` to the tags and drops `sha256:` from the ids).
    #[test]
    fn a_node_holds_an_image_only_with_the_same_id_and_name() {
        let listed = format!(
            r#"[{{"id":"{ID}","repoDigests":[],"repoTags":["docker.io/library/todo-backend:3f2a9c1b7d4e"],"size":"11610376"}},{{"id":"sha256:1720605a4192ce6eae7c16368740823176266488c5b91439d1a8a247c4d45c71","repoDigests":[],"repoTags":["registry.k8s.io/pause:3.10"],"size":"736000"}}]"#
        );
        let images = parse_minikube_images(&listed).unwrap();
        assert_eq!(
            images[1].id,
            "1720605a4192ce6eae7c16368740823176266488c5b91439d1a8a247c4d45c71"
        );
        assert!(holds(&images, &record("todo-backend:3f2a9c1b7d4e", ID)));
        // Same name, another build: not held.
        assert!(!holds(
            &images,
            &record("todo-backend:3f2a9c1b7d4e", &ID.replace('d', "e"))
        ));
        // Same build under Podman's `localhost/` name: not what the pod asks for.
        let localhost = listed.replace("docker.io/library/", "localhost/");
        assert!(!holds(
            &parse_minikube_images(&localhost).unwrap(),
            &record("todo-backend:3f2a9c1b7d4e", ID)
        ));
    }

    // Shape of `crictl images -o json` (cri-tools' listImagesResponse).
    #[test]
    fn crictl_lists_are_read() {
        let json = format!(
            r#"{{"images":[{{"id":"sha256:{ID}","repoTags":["docker.io/library/todo-backend:3f2a9c1b7d4e"],"repoDigests":[],"size":"11610376","uid":null,"username":"65532","spec":null,"pinned":false}}]}}"#
        );
        let images = parse_crictl_images(&json).unwrap();
        assert!(holds(&images, &record("todo-backend:3f2a9c1b7d4e", ID)));
    }

    // Docker's containerd image store: the engine's id is the index digest, a kind node reports
    // the config digest (fixtures: tests/fixtures/real-cluster/image-identity/, SOURCES.md item 1).
    #[test]
    fn nodes_are_compared_by_config_digest_or_the_engines_id() {
        let path = |name: &str| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/real-cluster/image-identity")
                .join(name)
        };
        let node =
            parse_crictl_images(&std::fs::read_to_string(path("crictl-images-kind-node-with-ours.json")).unwrap())
                .unwrap();
        let record = BuildRecord::load_from(&path("images-docker-containerd-store.json")).unwrap();
        let mut backend = record.image(Service::Backend).unwrap().clone();
        assert!(!holds(&node, &backend), "the index digest is not what the node reports");
        backend.config_digest = Some("9f4c2b7e1d3a5c8e0b6f4a2d9c7e5b3a1f8d6c4e2a0b9d7f5e3c1a8b6d4f2e0a".into());
        assert!(holds(&node, &backend));
        // A node listed by `ctr images ls` shows the engine's (target) digest: accepted too.
        let by_target = vec![NodeImage {
            id: backend.id.clone(),
            names: vec!["docker.io/library/todo-backend:3f2a9c1b7d4e".into()],
        }];
        assert!(holds(&by_target, &backend));
    }

    #[test]
    fn load_hints_follow_the_cluster_and_the_builder() {
        let minikube = Loader::Minikube {
            profile: "minikube".into(),
        };
        assert_eq!(
            minikube.load_hint(Engine::Docker, "todo-backend:abc"),
            "minikube image load todo-backend:abc -p minikube"
        );
        assert_eq!(
            minikube.load_hint(Engine::Podman, "todo-backend:abc"),
            "podman tag todo-backend:abc docker.io/library/todo-backend:abc && podman save -o todo-backend-abc.tar \
             docker.io/library/todo-backend:abc && minikube image load todo-backend-abc.tar -p minikube"
        );
        let kind = Loader::for_cluster(&ClusterKind::Kind { cluster: "dev".into() });
        assert_eq!(
            kind.load_hint(Engine::Docker, "todo-backend:abc"),
            "kind load docker-image todo-backend:abc --name dev"
        );
    }
}
