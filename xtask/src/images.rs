//! What the images are and what `build-images` produced: names, ports, content-addressed tags,
//! and the record under `target/images/images.json` that `deploy` and `e2e` read.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tools::engine::Engine;

/// One of the two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// The API.
    Backend,
    /// The web UI.
    Frontend,
}

impl Service {
    /// Both, in start order.
    pub const ALL: [Service; 2] = [Service::Backend, Service::Frontend];

    /// The crate, binary and folder name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Backend => "backend",
            Self::Frontend => "frontend",
        }
    }

    /// The image repository name.
    pub fn image(self) -> &'static str {
        match self {
            Self::Backend => "todo-backend",
            Self::Frontend => "todo-frontend",
        }
    }

    /// The port the image listens on.
    pub fn port(self) -> u16 {
        match self {
            Self::Backend => 8000,
            Self::Frontend => 3000,
        }
    }

    /// Where the binary lives inside the image (its Dockerfile copies it there).
    pub fn binary_path(self) -> String {
        format!("/usr/local/bin/{}", self.name())
    }
}

/// The cargo profile the images' binaries are built with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// `[profile.release]`: thin LTO, one codegen unit; the images to ship.
    #[default]
    Release,
    /// `[profile.dev-image]`: no LTO, many codegen units, incremental; for the inner loop only.
    /// Its tags start with `dev-`.
    DevImage,
}

impl Profile {
    /// The profile's name, as cargo and the workspace's Cargo.toml spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::DevImage => "dev-image",
        }
    }

    /// The tag of an image of this profile whose content hashes to `hash`: the hash alone for
    /// release, `dev-<hash>` otherwise, so that no dev image can pass for a release one.
    pub fn tag(self, hash: &str) -> String {
        match self {
            Self::Release => hash.to_owned(),
            Self::DevImage => format!("dev-{hash}"),
        }
    }

    /// Whether this is the profile of the images to ship.
    pub fn is_release(self) -> bool {
        self == Self::Release
    }

    /// The profile an image reference (`todo-backend:dev-<hash>`, `registry/todo-frontend:<hash>`)
    /// was built with, read from its tag: the tag is the only record a running pod carries.
    pub fn of_reference(reference: &str) -> Self {
        // The tag follows the last `:` after the last `/` (a registry may have a port).
        let name = reference.rsplit('/').next().unwrap_or(reference);
        let tag = name
            .split_once('@')
            .map_or(name, |(name, _)| name)
            .rsplit_once(':')
            .map(|(_, tag)| tag);
        match tag {
            Some(tag) if tag.starts_with("dev-") => Self::DevImage,
            _ => Self::Release,
        }
    }
}

/// One built image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Which service.
    pub service: Service,
    /// Repository name, e.g. `todo-backend`.
    pub name: String,
    /// Content-addressed tag.
    pub tag: String,
    /// `name:tag`, or `registry/name:tag` when pushed.
    pub reference: String,
    /// The engine's image id (hex). Under Docker's containerd image store this is the digest of
    /// the image's manifest or index, not of its config.
    pub id: String,
    /// The digest of the image's config (hex): what a node's container runtime calls the image's
    /// id (`crictl images`, the `docker images` of a Minikube node). Absent in records written
    /// before it was kept; `deploy` then asks the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// False when an image with this tag already existed and was reused.
    pub built: bool,
    /// The commit the binary was built from (`-dirty` with local changes), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// What `build-images` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The engine that holds the images.
    pub engine: Engine,
    /// The CPU architecture they are for (`amd64`, `arm64`).
    pub arch: String,
    /// The cargo profile their binaries were built with (release in records written before the
    /// profile was kept, which were all release builds).
    #[serde(default)]
    pub profile: Profile,
    /// One entry per service.
    pub images: Vec<ImageRecord>,
}

impl BuildRecord {
    /// Where the record of the last build lives.
    pub fn path() -> PathBuf {
        crate::images_dir().join("images.json")
    }

    /// Reads the record of the last build.
    pub fn load() -> anyhow::Result<Self> {
        Self::load_from(&Self::path())
    }

    /// Reads a record from a file of its own.
    pub fn load_from(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "no image record at {} (run `cargo xtask build-images` first)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid image record", path.display()))
    }

    /// Writes the record of the last build.
    pub fn save(&self) -> anyhow::Result<()> {
        self.save_to(&Self::path())
    }

    /// Writes the record to a file of its own.
    pub fn save_to(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The image of one service.
    pub fn image(&self, service: Service) -> Option<&ImageRecord> {
        self.images.iter().find(|i| i.service == service)
    }
}

impl ImageRecord {
    /// The digest a node's runtime knows the image by: the config digest when recorded, else the
    /// engine's id (the same thing for Podman and Docker's classic store).
    pub fn node_id(&self) -> &str {
        self.config_digest.as_deref().unwrap_or(&self.id)
    }
}

/// The tag for an image made of these files: the first 12 hex digits of a SHA-256 over each
/// file's name and bytes. Same inputs, same tag; any change, a new tag.
pub fn content_tag(files: &[(&str, &[u8])]) -> String {
    let mut hasher = Sha256::new();
    for (name, bytes) in files {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The `/etc/passwd` of the images: only the non-root user they run as.
pub const PASSWD: &str = "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_content() {
        let a = content_tag(&[("Dockerfile", b"FROM scratch"), ("backend", b"binary-1")]);
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            a,
            content_tag(&[("Dockerfile", b"FROM scratch"), ("backend", b"binary-1")])
        );
        assert_ne!(
            a,
            content_tag(&[("Dockerfile", b"FROM scratch"), ("backend", b"binary-2")])
        );
        assert_ne!(
            a,
            content_tag(&[("Dockerfile", b"FROM scratch "), ("backend", b"binary-1")])
        );
        // Moving bytes between files changes the tag too.
        assert_ne!(
            content_tag(&[("a", b"xy"), ("b", b"")]),
            content_tag(&[("a", b"x"), ("b", b"y")])
        );
    }

    #[test]
    fn dev_image_tags_can_never_be_a_release_tag() {
        let hash = content_tag(&[("frontend", b"binary")]);
        assert_eq!(Profile::Release.tag(&hash), hash);
        let dev = Profile::DevImage.tag(&hash);
        assert_eq!(dev, format!("dev-{hash}"));
        // A release tag is exactly 12 hex digits; `d`, `e` are hex but `v` and `-` are not, so
        // no dev tag has that shape.
        assert!(!dev.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(Profile::DevImage.name(), "dev-image");
        assert!(Profile::Release.is_release() && !Profile::DevImage.is_release());
    }

    #[test]
    fn a_running_image_names_its_profile_by_its_tag() {
        for (reference, profile) in [
            ("todo-backend:dev-0123456789ab", Profile::DevImage),
            (
                "registry.local:5000/team/todo-frontend:dev-0123456789ab",
                Profile::DevImage,
            ),
            ("todo-backend:0123456789ab", Profile::Release),
            // A registry host or path that says "dev-" is not a tag.
            ("dev-registry:5000/todo-backend:0123456789ab", Profile::Release),
            ("registry/dev-team/todo-backend:0123456789ab", Profile::Release),
            ("todo-backend", Profile::Release),
        ] {
            assert_eq!(Profile::of_reference(reference), profile, "{reference}");
        }
    }

    #[test]
    fn a_record_without_a_profile_is_a_release_build() {
        // What build-images wrote before the profile was recorded (all release builds).
        let old = r#"{"engine": "podman", "arch": "amd64", "images": []}"#;
        let record: BuildRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.profile, Profile::Release);
        let unknown = r#"{"engine": "podman", "arch": "amd64", "profile": "fast", "images": []}"#;
        assert!(serde_json::from_str::<BuildRecord>(unknown).is_err());
    }

    #[test]
    fn the_record_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let record = BuildRecord {
            engine: Engine::Podman,
            arch: "amd64".into(),
            profile: Profile::DevImage,
            images: vec![ImageRecord {
                service: Service::Backend,
                name: "todo-backend".into(),
                tag: "0123456789ab".into(),
                reference: "todo-backend:0123456789ab".into(),
                id: "fdcc2154d45a".into(),
                config_digest: Some("fdcc2154d45a".into()),
                size_bytes: 11_000_000,
                built: true,
                revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            }],
        };
        let path = dir.path().join("images.json");
        record.save_to(&path).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"profile\": \"dev-image\"")
        );
        assert_eq!(BuildRecord::load_from(&path).unwrap(), record);
        // A record written before the config digest was kept still reads, without one.
        let old = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"config_digest\": \"fdcc2154d45a\",\n", "");
        assert!(!old.contains("config_digest"), "{old}");
        std::fs::write(&path, old).unwrap();
        let read = BuildRecord::load_from(&path).unwrap();
        assert_eq!(read.images[0].config_digest, None);
        assert_eq!(read.profile, Profile::DevImage);
        assert_eq!(read.images[0].node_id(), "fdcc2154d45a");
        assert!(
            BuildRecord::load_from(&dir.path().join("nope/images.json"))
                .unwrap_err()
                .to_string()
                .contains("cargo xtask build-images")
        );
    }
}
