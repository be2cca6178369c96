//! Getting the images onto the cluster's nodes for a deploy: each image loaded only where a node
//! lacks that exact image ID, and the result verified. (The nodes' architecture is read in
//! preflight, and the images are built for it.)

use std::path::Path;

use anyhow::{Context, bail};
use xshell::Shell;

use crate::{
    exec::runner::Runner,
    images::{BuildRecord, ImageRecord, Service},
    k8s::{
        node_images::{self, Loader},
        release::Release,
    },
    tools::engine::Engine,
};

/// The images of both services, refusing a record without one of them.
pub(super) fn image_of(record: &BuildRecord, service: Service) -> anyhow::Result<ImageRecord> {
    record.image(service).cloned().with_context(|| {
        format!(
            "the image record has no {} image: run `cargo xtask build-images`",
            service.name()
        )
    })
}

/// Says so when the images are dev-image builds, and refuses them for a cluster that is not
/// local unless `allow_dev` (`--allow-dev-images`): they are quick to build, not made to ship.
pub(super) fn check_profile(
    record: &BuildRecord,
    record_path: &Path,
    release: &Release,
    allow_dev: bool,
) -> anyhow::Result<()> {
    if record.profile.is_release() {
        return Ok(());
    }
    let profile = record.profile.name();
    if !release.kind.is_local() && !allow_dev {
        bail!(
            "the images in {} are {profile} builds (no LTO; for the inner loop, not to ship) and kube context {} \
             is not a local cluster: deploy release images (`cargo xtask deploy` without --no-build/--images builds \
             them, or `cargo xtask build-images` and then `deploy --no-build`), or pass --allow-dev-images to \
             deploy these anyway",
            record_path.display(),
            release.context
        );
    }
    eprintln!(
        "    note: these are {profile} images (tags dev-…, no LTO; for the inner loop, not to ship); \
         `cargo xtask build-images` builds the release ones"
    );
    Ok(())
}

/// An image only this machine holds (no registry in its name).
pub(super) fn is_local_reference(reference: &str) -> bool {
    node_images::qualify(reference).starts_with("docker.io/library/")
}

/// Loads each image a node lacks and verifies it arrived.
/// Returns the services whose image was loaded.
pub(super) fn load_images(
    sh: &Shell,
    runner: Runner,
    loader: &Loader,
    record: &BuildRecord,
    images: &[ImageRecord],
    archive_dir: &Path,
) -> anyhow::Result<Vec<Service>> {
    if !loader.loads(record.engine) {
        let how = match loader {
            Loader::Registry => "its nodes pull them from the registry",
            _ => "it runs on the Docker engine that holds them",
        };
        eprintln!("    nothing to load: {how}");
        return Ok(Vec::new());
    }
    loader.require_tools()?;
    let images = with_config_digests(sh, record, images, archive_dir)?;
    let before = loader.node_images(sh, &images, archive_dir)?;
    let mut loaded = Vec::new();
    for image in &images {
        let digest = short(image.node_id());
        let lacking: Vec<&str> = before
            .iter()
            .filter(|node| !node_images::holds(&node.images, image))
            .map(|node| node.node.as_str())
            .collect();
        if lacking.is_empty() && !before.is_empty() {
            eprintln!(
                "    {} (id {digest}) is already on {}: not loading it",
                image.reference,
                node_names(&before)
            );
            continue;
        }
        let lacking = if before.is_empty() {
            "the nodes".to_owned()
        } else {
            lacking.join(", ")
        };
        eprintln!("    {} (id {digest}) is not on {lacking}: loading it", image.reference);
        loader.load(sh, runner, record.engine, image, archive_dir)?;
        loaded.push(image.service);
    }
    if loaded.is_empty() || runner.is_dry_run() {
        return Ok(loaded);
    }
    verify(sh, loader, record, &images, &loaded, archive_dir)?;
    Ok(loaded)
}

/// After loading: every listed node holds every loaded image, or deploy stops here.
fn verify(
    sh: &Shell,
    loader: &Loader,
    record: &BuildRecord,
    images: &[ImageRecord],
    loaded: &[Service],
    archive_dir: &Path,
) -> anyhow::Result<()> {
    let after = loader.node_images(sh, images, archive_dir)?;
    if after.is_empty() {
        eprintln!("    loaded, but not verified: no node's images could be listed");
        return Ok(());
    }
    for image in images.iter().filter(|image| loaded.contains(&image.service)) {
        if let Some(node) = after.iter().find(|node| !node_images::holds(&node.images, image)) {
            bail!(
                "after loading, {} still does not hold {} (id {}); nothing was deployed. Load it by hand: {}",
                node_name(node),
                image.reference,
                image.node_id(),
                loader.load_hint(record.engine, &image.reference)
            );
        }
    }
    eprintln!("    verified: {} holds exactly the images built", node_names(&after));
    Ok(())
}

/// The images with their config digests: a record written before they were kept, from Docker,
/// names its images by the engine's id, which under the containerd image store is not what nodes
/// report, so Docker is asked (Podman's id is the config digest).
fn with_config_digests(
    sh: &Shell,
    record: &BuildRecord,
    images: &[ImageRecord],
    scratch: &Path,
) -> anyhow::Result<Vec<ImageRecord>> {
    images
        .iter()
        .map(|image| {
            let mut image = image.clone();
            if image.config_digest.is_none() && record.engine == Engine::Docker {
                image.config_digest = Some(Engine::Docker.config_digest(sh, &image.reference, scratch)?);
            }
            Ok(image)
        })
        .collect()
}

/// `node dev-control-plane`, or `the Docker engine`.
fn node_name(node: &node_images::NodeImages) -> String {
    if node.node.starts_with("the ") {
        node.node.clone()
    } else {
        format!("node {}", node.node)
    }
}

/// `node dev-control-plane`, `each of the 2 nodes (minikube, minikube-m02)`.
fn node_names(listed: &[node_images::NodeImages]) -> String {
    match listed {
        [one] => node_name(one),
        _ => format!(
            "each of the {} nodes ({})",
            listed.len(),
            listed.iter().map(|n| n.node.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The first 12 digits of a digest.
fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unqualified_names_are_local() {
        assert!(is_local_reference("todo-backend:abc"));
        assert!(!is_local_reference("registry.example.com/team/todo-backend:abc"));
    }
}
