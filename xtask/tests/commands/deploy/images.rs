//! Deploy's images: loaded and verified before the upgrade, by name or as archives, per cluster kind.

use super::*;

#[test]
fn missing_images_are_loaded_and_verified_before_the_upgrade_with_the_built_tags() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on_each(
            "image ls --format json -p minikube",
            vec![
                Reply::ok(fixture("minikube-image-ls-without-ours.json")),
                Reply::ok(fixture("minikube-image-ls-with-ours.json")),
            ],
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let archive = |image: &str| {
        fixture_path(&format!("{}.tar", image.replace(':', "-")))
            .display()
            .to_string()
    };
    let invocations = standins.invocations();
    assert_in_order(
        &invocations,
        &[
            "kubectl config current-context --request-timeout=5s",
            "helm version --short",
            &format!("kubectl {}", query("get nodes -o json")),
            "minikube image ls --format json -p minikube",
            &format!("podman tag {BACKEND_IMAGE} docker.io/library/{BACKEND_IMAGE}"),
            &format!(
                "podman save -o {} docker.io/library/{BACKEND_IMAGE}",
                archive(BACKEND_IMAGE)
            ),
            &format!("minikube image load {} -p minikube", archive(BACKEND_IMAGE)),
            &format!("podman tag {FRONTEND_IMAGE} docker.io/library/{FRONTEND_IMAGE}"),
            &format!(
                "podman save -o {} docker.io/library/{FRONTEND_IMAGE}",
                archive(FRONTEND_IMAGE)
            ),
            &format!("minikube image load {} -p minikube", archive(FRONTEND_IMAGE)),
            // Verified on the node before the release is touched.
            "minikube image ls --format json -p minikube",
            &format!("kubectl {}", query("get namespace todo -o json")),
            &format!("kubectl {}", query("get secret todo-secrets -o json")),
            &format!("helm {} --max 256 -o json", helm_args("history todo")),
            &upgrade_helm3(),
        ],
    );
    assert_kubectl_is_explicit(&invocations);
    assert!(
        run.stderr.contains(&format!(
            "{BACKEND_IMAGE} (id 9f4c2b7e1d3a) is not on minikube: loading it"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("verified: node minikube holds exactly the images built")
    );
    assert_eq!(
        run.stdout,
        format!(
            "deployed release todo revision 3 to minikube (namespace todo)\n  backend   {BACKEND_IMAGE}  1/1 pods \
             ready\n  frontend  {FRONTEND_IMAGE}  2/2 pods ready\n  open      http://192.168.49.2:30000/\n"
        )
    );
    assert_no_secret("stdout", &run.stdout);
    assert_no_secret("stderr", &run.stderr);
}

#[test]
fn images_the_node_already_holds_are_not_loaded_but_another_build_under_the_same_tag_is() {
    let standins = StandIns::new();
    let run = deploy(&standins, &healthy(), &["--json"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_never(&invocations, "minikube image load");
    assert_never(&invocations, "podman");
    assert!(invocations.contains(&upgrade_helm3()), "{invocations:#?}");
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["ok"], true);
    assert_eq!(outcome["revision"], 3);
    assert_eq!(outcome["images"][0]["reference"], BACKEND_IMAGE);
    assert_eq!(outcome["images"][0]["loaded"], false);
    assert_eq!(outcome["url"], "http://192.168.49.2:30000/");

    // The node holds `todo-backend:<tag>`, but not this build of it: the ID decides.
    let standins = StandIns::new();
    let stale = fixture("minikube-image-ls-with-ours.json").replace(BACKEND_ID, &BACKEND_ID.replace('9', "8"));
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on_each(
            "image ls --format json -p minikube",
            vec![Reply::ok(stale), Reply::ok(fixture("minikube-image-ls-with-ours.json"))],
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    let loads: Vec<&String> = invocations
        .iter()
        .filter(|line| line.starts_with("minikube image load"))
        .collect();
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert!(loads[0].contains("todo-backend-3f2a9c1b7d4e.tar"), "{loads:?}");
}

#[test]
fn an_image_that_does_not_arrive_stops_the_deploy_before_the_release_is_touched() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on(
            "image ls --format json -p minikube",
            Reply::ok(fixture("minikube-image-ls-without-ours.json")),
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_never(&invocations, "helm upgrade");
    for change in ["create", "label", "patch"] {
        assert_never(&invocations, &format!("kubectl {}", write(change)));
    }
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(&format!(
            "error: step `images into the cluster` failed: after loading, node minikube still does not hold \
             {BACKEND_IMAGE} (id {BACKEND_ID}); nothing was deployed. Load it by hand: podman tag"
        )),
        "{error}"
    );
}

#[test]
fn docker_built_images_go_to_kind_by_name() {
    let standins = StandIns::new();
    let record = record_built_with(&standins, "docker");
    let crictl = |with_ours: bool| {
        let mut images = vec![
            serde_json::json!({"id": "sha256:873ed75102791e5b0b8a7fcd41606c92fcec98d56d05ead4ac5131650004c136", "repoTags": ["registry.k8s.io/pause:3.10"], "repoDigests": [], "size": "320368", "uid": null, "username": "", "spec": null, "pinned": true}),
        ];
        if with_ours {
            let listed: Value = serde_json::from_str(&fixture("minikube-image-ls-with-ours.json")).unwrap();
            for image in listed.as_array().unwrap().iter().skip(3) {
                images.push(serde_json::json!({"id": format!("sha256:{}", image["id"].as_str().unwrap()), "repoTags": image["repoTags"], "repoDigests": [], "size": image["size"], "uid": {"value": "65532"}, "username": "", "spec": null, "pinned": false}));
            }
        }
        Reply::ok(serde_json::json!({ "images": images }).to_string())
    };
    let programs = vec![
        Program::new("kind")
            .on("get nodes --name dev", Reply::ok("dev-control-plane\n"))
            .on("load docker-image * --name dev", Reply::ok("")),
        Program::new("docker")
            .on_each(
                "exec dev-control-plane crictl images -o json",
                vec![crictl(false), crictl(false), crictl(true)],
            )
            .on(
                "inspect --format {{ index .Config.Labels \"io.x-k8s.kind.role\"}} dev-control-plane",
                Reply::ok("control-plane\n"),
            )
            // The record predates config digests: `docker save`'s manifest.json names them.
            .on("save -o * todo-*", Reply::ok("")),
        Program::new("tar")
            .on(
                "-xOf *todo-backend* manifest.json",
                Reply::ok(fixture("real-cluster/image-identity/docker-save-containerd/manifest.json")),
            )
            .on(
                "-xOf *todo-frontend* manifest.json",
                Reply::ok(r#"[{"Config":"blobs/sha256/2e7d9a4c6b1f3e8d0a5c7b9e2f4d6a8c1e3b5d7f9a0c2e4b6d8f1a3c5e7b9d0f","RepoTags":["todo-frontend:8e1d2c3b4a5f"],"Layers":[]}]"#),
            ),
    ];
    let programs = [programs, deployed_release_in("kind-dev").to_vec()].concat();
    let run = xtask(
        &standins,
        &programs,
        &["deploy", "--no-smoke", "--images", &record, "--dry-run"],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "$ kind load docker-image {BACKEND_IMAGE} --name dev\n$ kind load docker-image {FRONTEND_IMAGE} --name dev\n$ helm upgrade --install todo helm --kube-context kind-dev"
        )),
        "{}",
        run.stdout
    );
    assert_never(&standins.invocations(), "podman");
}

#[test]
fn podman_built_images_go_to_k3d_as_archives() {
    let standins = StandIns::new();
    let programs = vec![
        Program::new("k3d").on("image import * -c demo", Reply::ok("")),
        Program::new("docker")
            .on(
                "ps --filter label=k3d.cluster=demo --format {{.Names}} {{.Label \"k3d.role\"}}",
                Reply::ok("k3d-demo-serverlb loadbalancer\nk3d-demo-server-0 server\n"),
            )
            .on(
                "exec k3d-demo-server-0 crictl images -o json",
                Reply::ok(r#"{"images":[]}"#),
            ),
        Program::new("podman")
            .on("tag * docker.io/library/*", Reply::ok(""))
            .on("save -o * docker.io/library/*", Reply::ok("")),
    ];
    let programs = [programs, deployed_release_in("k3d-demo").to_vec()].concat();
    let images = fixture_path("images.json").display().to_string();
    let run = xtask(
        &standins,
        &programs,
        &["deploy", "--no-smoke", "--images", &images, "--dry-run"],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let archive = fixture_path("todo-backend-3f2a9c1b7d4e.tar").display().to_string();
    assert!(
        run.stdout.starts_with(&format!(
            "$ podman tag {BACKEND_IMAGE} docker.io/library/{BACKEND_IMAGE}\n$ podman save -o {archive} docker.io/library/{BACKEND_IMAGE}\n$ k3d image import {archive} -c demo\n"
        )),
        "{}",
        run.stdout
    );
}
