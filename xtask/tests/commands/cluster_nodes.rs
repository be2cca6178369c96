//! Clusters of several nodes (issue 12 items 5 and 6): each node that runs pods is checked on its
//! own, and only those. Fixtures: `tests/fixtures/real-cluster/{kind-ha,multinode-minikube,
//! image-identity}/`, cited in `tests/fixtures/real-cluster/SOURCES.md`.

use std::fs;

use serde_json::Value;

use crate::support::{
    cluster::{
        BACKEND_IMAGE, FRONTEND_IMAGE, assert_in_order, assert_never, change, deploy_record, deployed_release_in,
        fixture, healthy,
    },
    standins::{Program, Reply, StandIns},
};

fn real(name: &str) -> String {
    fixture(&format!("real-cluster/{name}"))
}

/// `fixtures/images.json` as built by `engine`, with its config digests recorded (= the ids).
fn record(standins: &StandIns, engine: &str) -> String {
    let mut record: Value = serde_json::from_str(&fixture("images.json")).unwrap();
    record["engine"] = engine.into();
    for image in record["images"].as_array_mut().unwrap() {
        image["config_digest"] = image["id"].clone();
    }
    let path = standins.scratch("record").join("images.json");
    fs::write(&path, record.to_string()).unwrap();
    path.display().to_string()
}

/// kind's per-node role query (`docker inspect --format '{{ index .Config.Labels
/// "io.x-k8s.kind.role"}}' <node>`, kind `pkg/cluster/internal/providers/docker/node.go`).
fn role_query(node: &str) -> String {
    format!("inspect --format {{{{ index .Config.Labels \"io.x-k8s.kind.role\"}}}} {node}")
}

// Item 5: kind with three control planes and two workers has a load balancer container that
// `kind get nodes` lists but that runs no crictl; `kind load` skips it, and so must the check.
#[test]
fn kind_with_several_control_planes_is_checked_on_the_nodes_kind_loads_into() {
    let standins = StandIns::new();
    let record = record(&standins, "docker");
    let crictl = |name: &str| {
        Reply::ok(real(&format!(
            "image-identity/crictl-images-kind-node-{name}-ours.json"
        )))
    };
    let mut docker = Program::new("docker")
        .on(
            &role_query("dev-external-load-balancer"),
            Reply::ok(real("kind-ha/docker-inspect-role-external-load-balancer.txt")),
        )
        .on(
            &role_query("dev-control-plane*"),
            Reply::ok(real("kind-ha/docker-inspect-role-control-plane.txt")),
        )
        .on(&role_query("dev-worker*"), Reply::ok("worker\n"))
        .on(
            "exec dev-external-load-balancer crictl images -o json",
            Reply::fail(126, real("kind-ha/docker-exec-crictl-external-load-balancer.stderr")),
        )
        // kind loaded into every node but dev-worker2 (say, it was restarting).
        .on("exec dev-worker2 crictl images -o json", crictl("without"));
    for node in [
        "dev-control-plane3",
        "dev-worker",
        "dev-control-plane",
        "dev-control-plane2",
    ] {
        docker = docker.on_each(
            &format!("exec {node} crictl images -o json"),
            vec![crictl("without"), crictl("with")],
        );
    }
    let kind = Program::new("kind")
        .on("get nodes --name dev", Reply::ok(real("kind-ha/kind-get-nodes.txt")))
        .on("load docker-image * --name dev", Reply::ok(""));
    let programs = [vec![kind, docker], deployed_release_in("kind-dev").to_vec()].concat();
    let run = deploy_record(&standins, &programs, &record);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_never(&invocations, "docker exec dev-external-load-balancer");
    assert_never(&invocations, "helm upgrade");
    assert_in_order(
        &invocations,
        &[
            "kind get nodes --name dev",
            &format!("docker {}", role_query("dev-external-load-balancer")),
            &format!("kind load docker-image {BACKEND_IMAGE} --name dev"),
            &format!("kind load docker-image {FRONTEND_IMAGE} --name dev"),
            "docker exec dev-worker2 crictl images -o json",
        ],
    );
    assert!(
        run.stderr.contains(&format!(
            "{BACKEND_IMAGE} (id 9f4c2b7e1d3a) is not on dev-worker2, dev-control-plane3, dev-worker, \
             dev-control-plane, dev-control-plane2: loading it"
        )),
        "{}",
        run.stderr
    );
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.contains(&format!(
            "after loading, node dev-worker2 still does not hold {BACKEND_IMAGE}"
        )),
        "{error}"
    );
}

// Item 6: `minikube image ls` merges the nodes' lists, so images on the first node look present
// on the second too; each node is asked on its own, the images loaded, and each checked again.
#[test]
fn a_multi_node_minikube_is_checked_node_by_node() {
    let standins = StandIns::new();
    let record = record(&standins, "podman");
    let ssh = |node: &str| format!("ssh -p minikube -n {node} -- sudo crictl images -o json");
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on(
                "node list -p minikube",
                Reply::ok(real("multinode-minikube/minikube-node-list.txt")),
            )
            .on(
                "image ls --format json -p minikube",
                Reply::ok(real("multinode-minikube/minikube-image-ls-merged.json")),
            )
            .on(
                &ssh("minikube"),
                Reply::ok(real("multinode-minikube/crictl-images-minikube.json")),
            )
            .on_each(
                &ssh("minikube-m02"),
                vec![
                    Reply::ok(real("multinode-minikube/crictl-images-minikube-m02.json")),
                    Reply::ok(real("multinode-minikube/crictl-images-minikube.json")),
                ],
            )
    });
    let run = deploy_record(&standins, &programs, &record);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_never(&invocations, "minikube image ls");
    let load = |image: &str| {
        let archive = standins
            .scratch("record")
            .join(format!("{}.tar", image.replace(':', "-")));
        format!("minikube image load {} -p minikube", archive.display())
    };
    assert_in_order(
        &invocations,
        &[
            "minikube node list -p minikube",
            &format!("minikube {}", ssh("minikube")),
            &format!("minikube {}", ssh("minikube-m02")),
            &load(BACKEND_IMAGE),
            &load(FRONTEND_IMAGE),
            // Verified on each node before the release is touched.
            &format!("minikube {}", ssh("minikube")),
            &format!("minikube {}", ssh("minikube-m02")),
        ],
    );
    let loads = invocations
        .iter()
        .filter(|l| l.starts_with("minikube image load "))
        .count();
    assert_eq!(loads, 2, "{invocations:#?}");
    assert!(
        run.stderr.contains(&format!(
            "{BACKEND_IMAGE} (id 9f4c2b7e1d3a) is not on minikube-m02: loading it"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("verified: each of the 2 nodes (minikube, minikube-m02) holds exactly the images built"),
        "{}",
        run.stderr
    );
}
