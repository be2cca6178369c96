//! One image of a `build-images` run: its inputs read from disk and hashed into its tag, its
//! build context staged, the engine's build (without attestations on BuildKit), and its record.

use std::cell::OnceCell;

use super::*;

/// What every image of one `build-images` run shares.
pub(super) struct ImageBuild<'a> {
    pub(super) sh: &'a Shell,
    pub(super) runner: Runner,
    pub(super) engine: Engine,
    pub(super) profile: Profile,
    pub(super) bin_dir: PathBuf,
    pub(super) revision: String,
    pub(super) created: String,
    /// The flags that keep attestations out, asked of Docker once per run and only if an image
    /// is built at all.
    pub(super) attestation: OnceCell<Vec<&'static str>>,
}

/// What one image is made of, read from disk.
pub(super) struct Inputs {
    dockerfile: Vec<u8>,
    binary_path: PathBuf,
    /// The tag: the profile's form of a hash over the files.
    tag: String,
}

impl ImageBuild<'_> {
    /// Builds one service's image unless the engine already holds its tag, and describes it.
    pub(super) fn image(&self, service: Service) -> anyhow::Result<ImageRecord> {
        let inputs = self.inputs(service)?;
        let reference = format!("{}:{}", service.image(), inputs.tag);
        let context = crate::images_dir().join(service.name());
        if !self.runner.is_dry_run() {
            stage_context(&context, service, &inputs)?;
        }
        let built = self.runner.is_dry_run() || !self.engine.has_image(self.sh, &reference);
        if built {
            self.engine_build(&inputs.tag, &reference, &context)?;
        } else {
            eprintln!("    {reference} already exists: nothing to build");
        }
        let (id, config_digest, size_bytes) = self.inspect(&reference)?;
        Ok(ImageRecord {
            service,
            name: service.image().to_owned(),
            tag: inputs.tag,
            reference,
            id,
            config_digest,
            size_bytes,
            built,
            revision: (self.revision != "unknown").then(|| self.revision.clone()),
        })
    }

    /// The Dockerfile, the binary's path, and the tag they give.
    fn inputs(&self, service: Service) -> anyhow::Result<Inputs> {
        let name = service.name();
        let dockerfile_path = self.sh.current_dir().join(name).join("Dockerfile");
        let dockerfile =
            std::fs::read(&dockerfile_path).with_context(|| format!("reading {}", dockerfile_path.display()))?;
        let binary_path = self.bin_dir.join(name);
        // A dry run builds nothing, so any binary on disk may be stale: show a placeholder tag.
        let hash = if self.runner.is_dry_run() {
            "<content-hash>".to_owned()
        } else {
            let binary = std::fs::read(&binary_path)
                .with_context(|| format!("the {name} binary is missing at {}", binary_path.display()))?;
            content_tag(&[
                ("Dockerfile", &dockerfile),
                ("passwd", PASSWD.as_bytes()),
                (name, &binary),
            ])
        };
        Ok(Inputs {
            dockerfile,
            binary_path,
            tag: self.profile.tag(&hash),
        })
    }

    /// `<engine> build` of the staged context, with the OCI label values.
    fn engine_build(&self, tag: &str, reference: &str, context: &Path) -> anyhow::Result<()> {
        let sh = self.sh;
        let program = self.engine.program();
        let labels = [
            format!("VERSION={tag}"),
            format!("REVISION={}", self.revision),
            format!("CREATED={}", self.created),
        ];
        let [version, revision, created] = &labels;
        let no_attestations = self.attestation.get_or_init(|| attestation_flags(sh, self.engine));
        // Its progress on stderr: stdout stays for the commands' JSON (`dev --json` prints a line per cycle).
        self.runner.run_on_stderr(cmd!(
            sh,
            "{program} build {no_attestations...} --tag {reference} --build-arg {version} --build-arg {revision} --build-arg {created} {context}"
        ))
    }

    /// The image's id, config digest and size, as the engine reports them.
    fn inspect(&self, reference: &str) -> anyhow::Result<(String, Option<String>, u64)> {
        if self.runner.is_dry_run() {
            return Ok(("<image-id>".to_owned(), None, 0));
        }
        let (id, size) = self.engine.image_info(self.sh, reference)?;
        let config = match self.engine {
            Engine::Podman => id.clone(),
            Engine::Docker => self.engine.config_digest(self.sh, reference, &crate::images_dir())?,
        };
        Ok((id, Some(config), size))
    }
}

/// Stages an image's context: only what the image is made of (its Dockerfile, passwd, binary).
fn stage_context(context: &Path, service: Service, inputs: &Inputs) -> anyhow::Result<()> {
    if context.exists() {
        std::fs::remove_dir_all(context).with_context(|| format!("clearing {}", context.display()))?;
    }
    std::fs::create_dir_all(context).with_context(|| format!("creating {}", context.display()))?;
    std::fs::write(context.join("Dockerfile"), &inputs.dockerfile)?;
    std::fs::write(context.join("passwd"), PASSWD)?;
    std::fs::copy(&inputs.binary_path, context.join(service.name()))
        .with_context(|| format!("staging {}", inputs.binary_path.display()))?;
    Ok(())
}

/// `--provenance=false --sbom=false` for Docker's BuildKit: by default it wraps a single-platform
/// image in an index with a provenance attestation, which `docker save` leaves out, so kind's
/// `ctr images import` fails on it (kind issues 3795, 3845). Podman makes no attestations; the
/// legacy builder (no buildx, or `DOCKER_BUILDKIT=0`) neither, and rejects the flags.
fn attestation_flags(sh: &Shell, engine: Engine) -> Vec<&'static str> {
    if engine != Engine::Docker {
        return Vec::new();
    }
    if docker_builds_with_buildkit(sh) {
        return vec!["--provenance=false", "--sbom=false"];
    }
    eprintln!(
        "    docker build is the legacy builder here (no `docker buildx`, or DOCKER_BUILDKIT=0): building \
         without --provenance/--sbom, which it does not know (it adds no attestations)"
    );
    Vec::new()
}

/// The source revision for the image label: the commit, marked `-dirty` with local changes.
pub(super) fn git_revision(sh: &Shell) -> String {
    let Ok(sha) = cmd!(sh, "git rev-parse HEAD").quiet().ignore_stderr().read() else {
        return "unknown".to_owned();
    };
    let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
        .quiet()
        .read()
        .is_ok_and(|s| !s.trim().is_empty());
    if dirty { format!("{sha}-dirty") } else { sha }
}
