//! Getting the images onto the cluster's nodes for a deploy: each image loaded only where a node
//! lacks that exact image ID, and the result verified. (The nodes' architecture is read in
//! preflight, and the images are built for it.)

use std::path::Path;

use anyhow::{Context, bail};
use xshell::Shell;

use crate::{
    exec::runner::Runner,
    images::{BuildRecord, ImageRecord, Service},
    k8s::node_images::{self, Loader},
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
    let before = loader.node_images(sh)?;
    let mut loaded = Vec::new();
    for image in images {
        let short: String = image.id.chars().take(12).collect();
        let lacking: Vec<&str> = before
            .iter()
            .filter(|node| !node_images::holds(&node.images, image))
            .map(|node| node.node.as_str())
            .collect();
        if lacking.is_empty() && !before.is_empty() {
            eprintln!(
                "    {} (id {short}) is already on the node: not loading it",
                image.reference
            );
            continue;
        }
        eprintln!("    {} (id {short}) is not on the node: loading it", image.reference);
        loader.load(sh, runner, record.engine, image, archive_dir)?;
        loaded.push(image.service);
    }
    if loaded.is_empty() || runner.is_dry_run() {
        return Ok(loaded);
    }
    let after = loader.node_images(sh)?;
    for image in images.iter().filter(|image| loaded.contains(&image.service)) {
        if let Some(node) = after.iter().find(|node| !node_images::holds(&node.images, image)) {
            bail!(
                "after loading, node {} still does not hold {} (id {}); nothing was deployed. Load it by hand: {}",
                node.node,
                image.reference,
                image.id,
                loader.load_hint(record.engine, &image.reference)
            );
        }
    }
    eprintln!("    verified: the node holds exactly the images built");
    Ok(loaded)
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
