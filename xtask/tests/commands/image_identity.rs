//! Which image a node holds, when Docker's containerd image store names images by their manifest
//! or index digest and nodes by their config digest (issue 12 item 1), and what deploy says it
//! verified (item 11). Fixtures: `tests/fixtures/real-cluster/image-identity/`, cited in
//! `tests/fixtures/real-cluster/SOURCES.md`.

use std::fs;

use serde_json::Value;

use crate::support::{
    cluster::{
        BACKEND_IMAGE, FRONTEND_IMAGE, assert_in_order, assert_never, change, deploy_record, deployed_release_in,
        fixture, healthy, rolled_out, upgrade_succeeds,
    },
    standins::{Program, Reply, StandIns},
};

/// The backend's config digest: what every node reports for it.
const BACKEND_CONFIG: &str = "9f4c2b7e1d3a5c8e0b6f4a2d9c7e5b3a1f8d6c4e2a0b9d7f5e3c1a8b6d4f2e0a";
/// The frontend's config digest.
const FRONTEND_CONFIG: &str = "2e7d9a4c6b1f3e8d0a5c7b9e2f4d6a8c1e3b5d7f9a0c2e4b6d8f1a3c5e7b9d0f";
/// The backend's manifest digest under the containerd store, built without attestations.
const BACKEND_MANIFEST: &str = "c4e117aad87804fe2f12f78078007e73322ad9d631b995fdea41437ad09efa5c";

fn real(name: &str) -> String {
    fixture(&format!("real-cluster/image-identity/{name}"))
}

/// `docker save`'s manifest.json (Docker >= 25, containerd store) naming `config` for `reference`.
fn saved_manifest(reference: &str, config: &str) -> String {
    real("docker-save-containerd-no-attestations/manifest.json")
        .replace(BACKEND_CONFIG, config)
        .replace(BACKEND_IMAGE, reference)
}

/// `tar -xOf <archive> manifest.json` for an archive of each image, giving these config digests.
fn tar(backend_config: &str) -> Program {
    Program::new("tar")
        .on(
            "-xOf *todo-backend* manifest.json",
            Reply::ok(saved_manifest(BACKEND_IMAGE, backend_config)),
        )
        .on(
            "-xOf *todo-frontend* manifest.json",
            Reply::ok(saved_manifest(FRONTEND_IMAGE, FRONTEND_CONFIG)),
        )
}

/// A copy of `record` (a fixture path) in the stand-ins' folder, so archives go there.
fn record_copy(standins: &StandIns, record: &str) -> String {
    let path = standins.scratch("record").join("images.json");
    fs::write(&path, fixture(record)).unwrap();
    path.display().to_string()
}

// Item 1: a record written by today's `build-images` under the containerd store (`id` = index
// digest, no config digest) deployed to Minikube, whose node reports config digests.
#[test]
fn under_the_containerd_image_store_nodes_are_compared_by_config_digest() {
    let standins = StandIns::new();
    let record = record_copy(
        &standins,
        "real-cluster/image-identity/images-docker-containerd-store.json",
    );
    let docker = Program::new("docker").on("save -o * todo-*", Reply::ok(""));
    let minikube_lists = |lists: Vec<&str>| {
        let replies = lists.into_iter().map(|name| Reply::ok(fixture(name))).collect();
        move |minikube: Program| minikube.on_each("image ls --format json -p minikube", replies)
    };
    let first = change(
        healthy(),
        "minikube",
        minikube_lists(vec![
            "minikube-image-ls-without-ours.json",
            "minikube-image-ls-with-ours.json",
        ]),
    );
    let programs = [first, vec![docker.clone(), tar(BACKEND_CONFIG)]].concat();
    let run = deploy_record(&standins, &programs, &record);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_in_order(
        &invocations,
        &[
            "minikube image ls --format json -p minikube",
            &format!("minikube image load {BACKEND_IMAGE} -p minikube"),
            &format!("minikube image load {FRONTEND_IMAGE} -p minikube"),
            "minikube image ls --format json -p minikube",
        ],
    );
    assert!(
        invocations
            .iter()
            .any(|line| line.starts_with("docker save -o ") && line.ends_with(&format!(" {BACKEND_IMAGE}"))),
        "the config digest comes from `docker save`: {invocations:#?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "{BACKEND_IMAGE} (id 9f4c2b7e1d3a) is not on minikube: loading it"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("verified: node minikube holds exactly the images built"),
        "{}",
        run.stderr
    );

    // The next deploy finds both on the node and loads nothing.
    let standins = StandIns::new();
    let record = record_copy(
        &standins,
        "real-cluster/image-identity/images-docker-containerd-store.json",
    );
    let again = change(
        healthy(),
        "minikube",
        minikube_lists(vec!["minikube-image-ls-with-ours.json"]),
    );
    let run = deploy_record(&standins, &[again, vec![docker, tar(BACKEND_CONFIG)]].concat(), &record);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_never(&standins.invocations(), "minikube image load");
    assert!(
        run.stderr.contains(&format!(
            "{BACKEND_IMAGE} (id 9f4c2b7e1d3a) is already on node minikube: not loading it"
        )),
        "{}",
        run.stderr
    );
}

// Item 1: BuildKit's default provenance attestation makes an index that `docker save` (and so
// `kind load`) cannot carry whole; Docker builds without it, Podman has no such flags, and the
// legacy builder (no buildx) rejects them.
#[test]
fn docker_builds_without_attestations_unless_it_is_the_legacy_builder() {
    let buildx_installed = || Reply::ok("github.com/docker/buildx v0.29.1 a32761aeb3debd39be1eca514af3693af0db334b\n");
    let build_line = |buildx: Reply, buildkit: &str| {
        let standins = StandIns::new();
        let docker = Program::new("docker")
            .on("info --format {{.ServerVersion}}", Reply::ok("29.0.1\n"))
            .on("buildx version", buildx);
        standins.install(&docker);
        let mut command = standins.command(env!("CARGO_BIN_EXE_xtask"));
        if !buildkit.is_empty() {
            command.env("DOCKER_BUILDKIT", buildkit);
        }
        let result = crate::support::standins::run(command.args([
            "build-images",
            "--dry-run",
            "--engine",
            "docker",
            "--only",
            "backend",
        ]));
        assert_eq!(result.code, 0, "{}", result.stderr);
        let line = result.stdout.lines().nth(1).unwrap_or_default().to_owned();
        (line, result.stderr)
    };
    let (line, _) = build_line(buildx_installed(), "");
    assert!(
        line.starts_with("$ docker build --provenance=false --sbom=false --tag todo-backend:<content-hash> "),
        "{line}"
    );
    // Docker's words when the buildx plugin is missing (docker/cli: unknown command).
    let (line, stderr) = build_line(
        Reply::fail(1, "docker: 'buildx' is not a docker command.\nSee 'docker --help'\n"),
        "",
    );
    assert!(
        line.starts_with("$ docker build --tag todo-backend:<content-hash> "),
        "{line}"
    );
    assert!(stderr.contains("legacy builder"), "{stderr}");
    // DOCKER_BUILDKIT=0 selects the legacy builder even with buildx installed.
    let (line, _) = build_line(buildx_installed(), "0");
    assert!(line.starts_with("$ docker build --tag "), "{line}");
}

/// kubectl and Helm of a Docker Desktop cluster where an upgrade succeeds at once and the pods
/// of `pods-rolled-out.json` are ready.
fn docker_desktop_release() -> Vec<Program> {
    let context = "docker-desktop";
    let query = |rest: &str| format!("--context {context} --namespace todo --request-timeout=5s {rest}");
    let helm_args = |verb: &str| format!("{verb} --kube-context {context} --namespace todo");
    let [kubectl, helm] = deployed_release_in(context);
    vec![rolled_out(kubectl, query), upgrade_succeeds(helm, helm_args)]
}

/// Docker Desktop's engine after `docker load` of the Podman-built archives: it holds both
/// images under their qualified names; under the containerd store its id is the manifest digest,
/// and `docker save` names the config `backend_config`.
fn docker_engine_after_load(backend_config: &str) -> Vec<Program> {
    let inspect = |image: &str| format!("image inspect --format {{{{.Id}}}} docker.io/library/{image}");
    let docker = Program::new("docker")
        .on("load -i *", Reply::ok("Loaded image: docker.io/library/todo-*\n"))
        .on_each(
            &inspect(BACKEND_IMAGE),
            vec![
                Reply::fail(
                    1,
                    format!("Error response from daemon: No such image: docker.io/library/{BACKEND_IMAGE}\n"),
                ),
                Reply::ok(format!("sha256:{BACKEND_MANIFEST}\n")),
            ],
        )
        .on_each(
            &inspect(FRONTEND_IMAGE),
            vec![
                Reply::fail(
                    1,
                    format!("Error response from daemon: No such image: docker.io/library/{FRONTEND_IMAGE}\n"),
                ),
                Reply::ok(format!("sha256:{FRONTEND_CONFIG}\n")),
            ],
        )
        .on(
            &format!("image inspect --format {{{{.Id}}}}|{{{{.Size}}}} docker.io/library/{BACKEND_IMAGE}"),
            Reply::ok(real("docker-image-inspect-format-containerd-no-attestations.txt")),
        )
        .on(
            &format!("image inspect --format {{{{.Id}}}}|{{{{.Size}}}} docker.io/library/{FRONTEND_IMAGE}"),
            Reply::ok(format!("sha256:{FRONTEND_CONFIG}|3411902\n")),
        )
        .on("save -o * docker.io/library/todo-*", Reply::ok(""));
    let podman = Program::new("podman")
        .on("tag * docker.io/library/*", Reply::ok(""))
        .on("save -o * docker.io/library/*", Reply::ok(""));
    vec![docker, podman, tar(backend_config)]
}

// Item 11: Podman-built images loaded into Docker Desktop's engine are checked there, by config
// digest; "verified" only when they are, and a different build there stops the deploy.
#[test]
fn images_loaded_into_the_docker_engine_are_verified_there_or_the_deploy_stops() {
    let podman_built: Value = serde_json::from_str(&fixture("images.json")).unwrap();
    assert_eq!(
        podman_built["engine"], "podman",
        "the scenario needs a Podman-built record"
    );
    let standins = StandIns::new();
    let record = record_copy(&standins, "images.json");
    let release = docker_desktop_release();
    let programs = [release.clone(), docker_engine_after_load(BACKEND_CONFIG)].concat();
    let run = deploy_record(&standins, &programs, &record);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    let load = invocations
        .iter()
        .position(|l| l.starts_with("docker load -i "))
        .expect("docker load");
    let checked_after = invocations[load..]
        .iter()
        .any(|l| l == &format!("docker image inspect --format {{{{.Id}}}} docker.io/library/{BACKEND_IMAGE}"));
    assert!(checked_after, "{invocations:#?}");
    assert!(
        run.stderr
            .contains("verified: the Docker engine holds exactly the images built"),
        "{}",
        run.stderr
    );

    // Another build under the same name in the engine: not verified, nothing deployed.
    let standins = StandIns::new();
    let record = record_copy(&standins, "images.json");
    let stale = BACKEND_CONFIG.replace('9', "8");
    let programs = [release, docker_engine_after_load(&stale)].concat();
    let run = deploy_record(&standins, &programs, &record);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(!run.stderr.contains("verified"), "{}", run.stderr);
    assert_never(&standins.invocations(), "helm upgrade");
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.contains(&format!(
            "after loading, the Docker engine still does not hold {BACKEND_IMAGE} (id {BACKEND_CONFIG})"
        )),
        "{error}"
    );
}

// Item 1: an image built before `--provenance=false` carries an attestation that `kind load`
// cannot import; the error says why and what to do.
#[test]
fn kind_failing_on_an_attestation_says_to_rebuild() {
    let standins = StandIns::new();
    let mut record: Value = serde_json::from_str(&real("images-docker-containerd-store.json")).unwrap();
    for (image, config) in record["images"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip([BACKEND_CONFIG, FRONTEND_CONFIG])
    {
        image["config_digest"] = config.into();
    }
    let path = standins.scratch("record").join("images.json");
    fs::write(&path, record.to_string()).unwrap();
    let kind = Program::new("kind")
        .on("get nodes --name dev", Reply::ok("dev-control-plane\n"))
        .on(
            "load docker-image * --name dev",
            Reply::fail(1, real("kind-load-docker-image-attestation-missing.stderr")),
        );
    let docker = Program::new("docker")
        .on(
            "inspect --format {{ index .Config.Labels \"io.x-k8s.kind.role\"}} dev-control-plane",
            Reply::ok("control-plane\n"),
        )
        .on(
            "exec dev-control-plane crictl images -o json",
            Reply::ok(real("crictl-images-kind-node-without-ours.json")),
        );
    let programs = [vec![kind, docker], deployed_release_in("kind-dev").to_vec()].concat();
    let run = deploy_record(&standins, &programs, &path.display().to_string());
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_never(&standins.invocations(), "helm upgrade");
    assert!(
        run.stderr.contains(
            "ctr: content digest sha256:7572d34bc41309ff8838d8043d141f6d781913e33b07608d553e73c1c91d81b9: not found"
        ),
        "kind's own words stay visible: {}",
        run.stderr
    );
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.contains("carries a provenance attestation") && error.contains("cargo xtask build-images"),
        "{error}"
    );
}
