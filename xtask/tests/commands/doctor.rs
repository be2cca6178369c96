//! `cargo xtask doctor` end to end: the real binary, with recording stand-ins for every program it
//! runs and PATH set to the stand-ins alone. Each scenario asserts the table, the JSON, the exit
//! code, and exactly which commands were run (all of them read-only queries).

use crate::support::{
    cluster::without,
    standins::{Program, Reply, Run, StandIns, run},
};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Canned output, in the shapes the real tools print (see the parsers' unit tests for sources)

const KUBECTL_CLIENT: &str = r#"  "clientVersion": {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.2",
    "gitCommit": "67a30c0adcf52bd3f56ff0893ce19966be12991f",
    "gitTreeState": "clean",
    "buildDate": "2025-02-12T21:26:09Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64"
  },
  "kustomizeVersion": "v5.5.0""#;

fn kubectl_version(server: Option<&str>) -> String {
    match server {
        None => format!("{{\n{KUBECTL_CLIENT}\n}}\n"),
        Some(server) => format!(
            "{{\n{KUBECTL_CLIENT},\n  \"serverVersion\": {{\n    \"major\": \"1\",\n    \"minor\": \"32\",\n    \
             \"gitVersion\": \"{server}\",\n    \"gitCommit\": \"70d3cc986aa8221cd1dfb1121852688902d3bf53\",\n    \
             \"gitTreeState\": \"clean\",\n    \"buildDate\": \"2024-12-11T17:59:15Z\",\n    \"goVersion\": \"go1.23.3\",\n    \
             \"compiler\": \"gc\",\n    \"platform\": \"linux/amd64\"\n  }}\n}}\n"
        ),
    }
}

fn minified_config(context: &str, server: &str) -> String {
    format!(
        r#"{{
    "kind": "Config",
    "apiVersion": "v1",
    "preferences": {{}},
    "clusters": [{{"name": "{context}", "cluster": {{"server": "{server}", "certificate-authority-data": "DATA+OMITTED"}}}}],
    "users": [{{"name": "{context}", "user": {{"client-certificate-data": "DATA+OMITTED", "client-key-data": "DATA+OMITTED"}}}}],
    "contexts": [{{"name": "{context}", "context": {{"cluster": "{context}", "user": "{context}", "namespace": "default"}}}}],
    "current-context": "{context}"
}}
"#
    )
}

fn nodes(architecture: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","items":[{{"apiVersion":"v1","kind":"Node","metadata":{{"labels":{{"kubernetes.io/arch":"{architecture}","kubernetes.io/hostname":"minikube","kubernetes.io/os":"linux"}},"name":"minikube"}},"status":{{"nodeInfo":{{"architecture":"{architecture}","containerRuntimeVersion":"docker://27.4.1","kernelVersion":"6.8.0-52-generic","kubeProxyVersion":"v1.32.0","kubeletVersion":"v1.32.0","operatingSystem":"linux","osImage":"Ubuntu 22.04.5 LTS"}}}}}}],"kind":"List","metadata":{{"resourceVersion":""}}}}"#
    )
}

fn profile_list(status: &str) -> String {
    format!(
        r#"{{"invalid":[],"valid":[{{"Name":"minikube","Status":"{status}","Config":{{"Name":"minikube","KeepContext":false,"EmbedCerts":false,"MinikubeISO":"","KicBaseImage":"gcr.io/k8s-minikube/kicbase:v0.0.46","Memory":8192,"CPUs":4,"DiskSize":20000,"Driver":"docker","KubernetesConfig":{{"KubernetesVersion":"v1.32.0","ClusterName":"minikube","Namespace":"default","APIServerName":"minikubeCA","DNSDomain":"cluster.local","ContainerRuntime":"docker","NetworkPlugin":"cni","ServiceCIDR":"10.96.0.0/12"}},"Nodes":[{{"Name":"","IP":"192.168.49.2","Port":8443,"KubernetesVersion":"v1.32.0","ContainerRuntime":"docker","ControlPlane":true,"Worker":true}}],"Addons":{{"default-storageclass":true,"ingress":true,"metrics-server":true,"storage-provisioner":true}}}},"Active":true}}]}}"#
    )
}

const STATUS_RUNNING: &str = r#"{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#;
const STATUS_STOPPED: &str = r#"{"Name":"minikube","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}"#;
const ADDONS: &str = r#"{"ambassador":{"Profile":"minikube","Status":"disabled"},"dashboard":{"Profile":"minikube","Status":"disabled"},"default-storageclass":{"Profile":"minikube","Status":"enabled"},"ingress":{"Profile":"minikube","Status":"enabled"},"metrics-server":{"Profile":"minikube","Status":"enabled"},"storage-provisioner":{"Profile":"minikube","Status":"enabled"}}"#;

/// `df -Pk` for a filesystem mounted at `/` with `available_kib` free.
fn df(available_kib: u64) -> String {
    format!(
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
         /dev/vda         264212084 19535556 {available_kib:>9}      21% /\n"
    )
}

const GIB_IN_KIB: u64 = 1024 * 1024;

/// `podman info --format json` of Podman 4.3.1 on Debian 12 (this project's CI machine), with
/// `network_backend = "netavark"` in containers.conf, and as first used without netavark (CNI).
const PODMAN_INFO_NETAVARK: &str = include_str!("../fixtures/podman-info-4.3-netavark.json");
const PODMAN_INFO_CNI: &str = include_str!("../fixtures/podman-info-4.3-cni.json");

/// Everything present, supported and running: Docker and Podman, kubectl within one minor of
/// a running Minikube with the recommended addons, Helm 3, plenty of disk. kind and k3d are
/// installed too, to show they are asked nothing while their contexts are not current.
fn healthy() -> Vec<Program> {
    vec![
        Program::new("docker")
            .on("--version", Reply::ok("Docker version 27.4.1, build b9d17ea\n"))
            .on("info --format {{.ServerVersion}}", Reply::ok("27.4.1\n")),
        Program::new("podman")
            .on("--version", Reply::ok("podman version 5.3.1\n"))
            .on("info --format json", Reply::ok(PODMAN_INFO_NETAVARK)),
        Program::new("kubectl")
            .on("config current-context --request-timeout=5s", Reply::ok("minikube\n"))
            .on(
                "config view --minify -o json --request-timeout=5s",
                Reply::ok(minified_config("minikube", "https://192.168.49.2:8443")),
            )
            .on(
                "version -o json --request-timeout=5s",
                Reply::ok(kubectl_version(Some("v1.32.0"))),
            )
            .on(
                "get nodes -o json --request-timeout=5s",
                Reply::ok(nodes(xtask::k8s::context::host_architecture())),
            ),
        Program::new("helm").on("version --short", Reply::ok("v3.17.2+gcc0bbbd\n")),
        Program::new("minikube")
            .on("version --short", Reply::ok("v1.35.0\n"))
            .on("profile list -o json", Reply::ok(profile_list("Running")))
            .on("status -o json -p minikube", Reply::ok(STATUS_RUNNING))
            .on("addons list -o json -p minikube", Reply::ok(ADDONS)),
        Program::new("kind").on("version", Reply::ok("kind v0.26.0 go1.23.4 linux/amd64\n")),
        Program::new("k3d").on(
            "version",
            Reply::ok("k3d version v5.7.5\nk3s version v1.30.6-k3s1 (default)\n"),
        ),
        Program::new("df").on("-Pk *", Reply::ok(df(50 * GIB_IN_KIB))),
    ]
}

/// `programs` with `replacement` instead of the program of the same name.
fn replace(programs: Vec<Program>, replacement: Program) -> Vec<Program> {
    programs
        .into_iter()
        .map(|program| {
            if program.name() == replacement.name() {
                replacement.clone()
            } else {
                program
            }
        })
        .collect()
}

/// `programs` with one of them changed by `change`.
fn change(programs: Vec<Program>, name: &str, change: impl FnOnce(Program) -> Program) -> Vec<Program> {
    let program = programs
        .iter()
        .find(|program| program.name() == name)
        .cloned()
        .expect("the scenario has this program");
    replace(programs, change(program))
}

/// Runs `cargo xtask doctor [args]` (the built binary) against `programs`.
fn doctor(programs: &[Program], args: &[&str]) -> (Run, Vec<String>) {
    doctor_with_podman_helpers(programs, args, &[])
}

/// Like [`doctor`], with Podman's containers.conf (`CONTAINERS_CONF`) pointing its helper and CNI
/// plugin folders into the stand-ins' folder, where only `helpers` (such as `aardvark-dns`) exist.
/// Returns the folder too, for the paths doctor reports.
fn doctor_with_podman_helpers(programs: &[Program], args: &[&str], helpers: &[&str]) -> (Run, Vec<String>) {
    let standins = StandIns::new();
    standins.install_all(programs);
    let helper_dir = standins.scratch("podman-helpers");
    let cni_dir = standins.scratch("cni-plugins");
    for helper in helpers {
        std::fs::write(helper_dir.join(helper), "").unwrap();
    }
    let conf = standins.scratch("conf").join("containers.conf");
    std::fs::write(
        &conf,
        format!("[engine]\nhelper_binaries_dir = [{helper_dir:?}]\n\n[network]\ncni_plugin_dirs = [{cni_dir:?}]\n"),
    )
    .unwrap();
    let outcome = run(standins
        .command(env!("CARGO_BIN_EXE_xtask"))
        .env("CONTAINERS_CONF", &conf)
        .arg("doctor")
        .args(args));
    (outcome, standins.invocations())
}

fn project_root() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .display()
        .to_string()
}

/// The verbs doctor may run: queries that read and never change anything.
const READ_ONLY: &[&str] = &[
    "docker --version",
    "docker info --format {{.ServerVersion}}",
    "podman --version",
    "podman info --format json",
    "kubectl config current-context ",
    "kubectl config view --minify -o json ",
    "kubectl version -o json ",
    "kubectl get nodes -o json ",
    "helm version --short",
    "minikube version --short",
    "minikube profile list -o json",
    "minikube status -o json ",
    "minikube addons list -o json ",
    "kind version",
    "k3d version",
    "df -Pk ",
];

fn assert_read_only(invocations: &[String]) {
    for invocation in invocations {
        assert!(
            READ_ONLY.iter().any(|allowed| invocation.starts_with(allowed)),
            "doctor ran something that is not a known read-only query: {invocation}"
        );
        if invocation.starts_with("kubectl ") {
            assert!(
                invocation.ends_with(" --request-timeout=5s"),
                "kubectl without a request timeout: {invocation}"
            );
        }
    }
}

fn json_report(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}):\n{}", run.stdout))
}

fn json_check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no check named {name} in {report:#}"))
}

/// Asserts the table has this row, followed by exactly this `what to do` line (or none).
fn assert_row(table: &str, row: &str, fix: Option<&str>) {
    let lines: Vec<&str> = table.lines().collect();
    let at = lines
        .iter()
        .position(|line| *line == row)
        .unwrap_or_else(|| panic!("no row {row:?} in:\n{table}"));
    let next = lines.get(at + 1).copied().unwrap_or_default();
    match fix {
        Some(fix) => assert_eq!(next, format!("        -> what to do: {fix}"), "in:\n{table}"),
        None => assert!(!next.contains("what to do"), "unexpected fix under {row:?}:\n{table}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[test]
fn all_present_and_supported() {
    let (run, invocations) = doctor(&healthy(), &[]);
    let arch = xtask::k8s::context::host_architecture();
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "\
STATUS  CHECK            DETAIL
ok      docker           client 27.4.1, daemon 27.4.1
ok      podman           5.3.1
ok      container-dns    docker: embedded DNS on user-defined networks
ok      kubectl          v1.32.2 (cluster v1.32.0: within one minor)
ok      helm             v3.17.2 (Helm 3)
ok      minikube         v1.35.0
ok      kube-context     minikube: local (minikube), server https://192.168.49.2:8443
ok      cluster          reachable, Kubernetes v1.32.0
ok      minikube-status  minikube: host Running, kubelet Running, apiserver Running
ok      minikube-config  minikube: driver docker, 4 CPUs, 8192 MiB memory, Kubernetes v1.32.0 on docker
ok      minikube-addons  ingress enabled, metrics-server enabled
ok      architecture     {arch} (nodes and this machine)
ok      disk             50.0 GiB free on /

13 ok, 0 warn, 0 FAIL, 0 skip: ready
"
        )
    );
    assert!(run.stdout.is_ascii());
    assert!(
        run.stderr.contains("==> probe tools and cluster (read-only)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        invocations,
        [
            "docker --version".to_owned(),
            "docker info --format {{.ServerVersion}}".to_owned(),
            "podman --version".to_owned(),
            "helm version --short".to_owned(),
            "minikube version --short".to_owned(),
            "minikube profile list -o json".to_owned(),
            "kubectl config current-context --request-timeout=5s".to_owned(),
            "kubectl config view --minify -o json --request-timeout=5s".to_owned(),
            "kubectl version -o json --request-timeout=5s".to_owned(),
            "minikube status -o json -p minikube".to_owned(),
            "minikube addons list -o json -p minikube".to_owned(),
            "kubectl get nodes -o json --request-timeout=5s".to_owned(),
            format!("df -Pk {}", project_root()),
        ]
    );
    assert_read_only(&invocations);
}

#[test]
fn all_present_and_supported_as_json() {
    let (run, invocations) = doctor(&healthy(), &["--json"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let report = json_report(&run);
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|check| check["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "docker",
            "podman",
            "container-dns",
            "kubectl",
            "helm",
            "minikube",
            "kube-context",
            "cluster",
            "minikube-status",
            "minikube-config",
            "minikube-addons",
            "architecture",
            "disk"
        ]
    );
    for check in checks {
        assert_eq!(check["status"], "ok", "{check}");
        assert_eq!(check["fix"], Value::Null, "{check}");
    }
    assert_eq!(json_check(&report, "helm")["detail"], "v3.17.2 (Helm 3)");
    assert_read_only(&invocations);
}

#[test]
fn helm_missing_fails_with_the_install_command() {
    let (run, invocations) = doctor(&without(healthy(), "helm"), &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_row(
        &run.stdout,
        "FAIL    helm             not installed",
        Some("install helm: https://helm.sh/docs/intro/install/ (Helm 3 or 4)"),
    );
    assert!(
        run.stdout.ends_with("\n12 ok, 0 warn, 1 FAIL, 0 skip: not ready: do what the FAIL lines say, then run `cargo xtask doctor` again\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("error: 1 required check(s) failed"),
        "{}",
        run.stderr
    );
    assert!(
        !invocations.iter().any(|line| line.starts_with("helm")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&without(healthy(), "helm"), &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    let helm = json_check(&report, "helm");
    assert_eq!(helm["status"], "fail");
    assert_eq!(helm["detail"], "not installed");
    assert_eq!(
        helm["fix"],
        "install helm: https://helm.sh/docs/intro/install/ (Helm 3 or 4)"
    );
}

#[test]
fn helm_2_is_unsupported_with_an_upgrade_hint() {
    // Helm 2 prints its client version, then fails to find Tiller.
    let helm2 = Program::new("helm").on(
        "version --short",
        Reply::fail(1, "Error: could not find tiller\n").with_stdout("Client: v2.17.0+ga690bad\n"),
    );
    let programs = replace(healthy(), helm2);
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_row(
        &run.stdout,
        "FAIL    helm             v2.17.0: Helm 2 is not supported (Helm 3 or 4 is)",
        Some("upgrade Helm (Helm 2 and Tiller are end-of-life): https://helm.sh/docs/intro/install/"),
    );
    assert!(
        run.stdout.contains("\n12 ok, 0 warn, 1 FAIL, 0 skip: not ready"),
        "{}",
        run.stdout
    );
    assert!(invocations.contains(&"helm version --short".to_owned()));
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    assert_eq!(json_check(&report, "helm")["status"], "fail");
    assert_eq!(json_check(&report, "kubectl")["status"], "ok");
}

#[test]
fn minikube_stopped_fails_with_the_start_command() {
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on("profile list -o json", Reply::ok(profile_list("Stopped")))
            // `minikube status` exits 7 (host, cluster and kubernetes not running) when stopped.
            .on(
                "status -o json -p minikube",
                Reply::fail(7, "").with_stdout(STATUS_STOPPED),
            )
    });
    let programs = change(programs, "kubectl", |kubectl| {
        kubectl.on(
            "version -o json --request-timeout=5s",
            Reply::fail(
                1,
                "Unable to connect to the server: dial tcp 192.168.49.2:8443: connect: no route to host\n",
            )
            .with_stdout(kubectl_version(None)),
        )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let table = &run.stdout;
    assert_row(
        table,
        "ok      kubectl          v1.32.2 (cluster not reachable: version skew not checked)",
        None,
    );
    assert_row(
        table,
        "FAIL    cluster          not reachable: Unable to connect to the server: dial tcp 192.168.49.2:8443: connect: no route to host",
        Some("minikube start"),
    );
    assert_row(
        table,
        "FAIL    minikube-status  minikube: stopped (host Stopped, kubelet Stopped, apiserver Stopped)",
        Some("minikube start"),
    );
    assert_row(
        table,
        "ok      minikube-config  minikube: driver docker, 4 CPUs, 8192 MiB memory, Kubernetes v1.32.0 on docker",
        None,
    );
    assert_row(
        table,
        &format!(
            "skip    architecture     this machine is {}; no local cluster answered",
            xtask::k8s::context::host_architecture()
        ),
        None,
    );
    assert!(table.contains("\n10 ok, 0 warn, 2 FAIL, 1 skip: not ready"), "{table}");
    // A stopped cluster's nodes are not asked for.
    assert!(
        !invocations.iter().any(|line| line.starts_with("kubectl get")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    let status = json_check(&report, "minikube-status");
    assert_eq!(status["status"], "fail");
    assert_eq!(status["fix"], "minikube start");
    assert_eq!(json_check(&report, "architecture")["status"], "skip");
}

#[test]
fn a_missing_minikube_cluster_gets_the_recommended_start_command() {
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on("profile list -o json", Reply::ok(r#"{"invalid":[],"valid":[]}"#))
            .on(
                "status -o json -p minikube",
                Reply::fail(85, "").with_stdout(
                    r#"{"specversion":"1.0","id":"4b1e5a2c","source":"https://minikube.sigs.k8s.io/","type":"io.k8s.sigs.minikube.info","datacontenttype":"application/json","data":{"message":"Profile \"minikube\" not found. Run \"minikube profile list\" to view all profiles."}}"#,
                ),
            )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_row(
        &run.stdout,
        "FAIL    minikube-status  minikube: no such cluster yet",
        Some("minikube start --cpus=2 --memory=4096mb --addons=ingress --addons=metrics-server"),
    );
    assert_row(
        &run.stdout,
        "skip    minikube-config  minikube: no such cluster yet",
        None,
    );
    assert_row(
        &run.stdout,
        "skip    minikube-addons  minikube: no such cluster yet",
        None,
    );
    assert!(
        !invocations.iter().any(|line| line.starts_with("minikube addons")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);
}

#[test]
fn a_non_local_context_fails_and_its_cluster_is_left_alone() {
    let context = "gke_acme-prod_europe-west1_main";
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                "config current-context --request-timeout=5s",
                Reply::ok(format!("{context}\n")),
            )
            .on(
                "config view --minify -o json --request-timeout=5s",
                Reply::ok(minified_config(context, "https://34.77.10.20")),
            )
            .on(
                "version -o json --request-timeout=5s",
                Reply::ok(kubectl_version(Some("v1.31.4-gke.1256000"))),
            )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let table = &run.stdout;
    assert_row(
        table,
        &format!("FAIL    kube-context     {context}: not a local cluster (server https://34.77.10.20)"),
        Some("kubectl config use-context minikube"),
    );
    assert_row(
        table,
        "ok      kubectl          v1.32.2 (cluster v1.31.4-gke.1256000: within one minor)",
        None,
    );
    assert_row(
        table,
        "ok      cluster          reachable, Kubernetes v1.31.4-gke.1256000",
        None,
    );
    // Minikube is still the cluster to use, so it is still examined.
    assert_row(
        table,
        "ok      minikube-status  minikube: host Running, kubelet Running, apiserver Running",
        None,
    );
    assert!(table.contains("\n11 ok, 0 warn, 1 FAIL, 1 skip: not ready"), "{table}");
    // Nothing but `kubectl version` goes to somebody else's cluster.
    assert!(
        !invocations.iter().any(|line| line.starts_with("kubectl get")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    let check = json_check(&report, "kube-context");
    assert_eq!(check["status"], "fail");
    assert_eq!(check["fix"], "kubectl config use-context minikube");
}

#[test]
fn docker_client_without_daemon_passes_when_podman_is_present() {
    let programs = change(healthy(), "docker", |docker| {
        docker.on(
            "info --format {{.ServerVersion}}",
            Reply::fail(
                1,
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
            )
            .with_stdout("\n"),
        )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_row(
        &run.stdout,
        "warn    docker           client 27.4.1 only, daemon not reachable (Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?)",
        Some(
            "start the Docker daemon: sudo systemctl start docker (Docker Desktop: open it); or keep using podman, which works",
        ),
    );
    assert_row(&run.stdout, "ok      podman           5.3.1", None);
    // Podman is the engine now, so its DNS is examined; these helpers folders have no aardvark-dns.
    assert_row(
        &run.stdout,
        "warn    container-dns    podman netavark backend with no aardvark-dns: containers cannot find each other by name (cargo xtask e2e needs it)",
        Some("sudo apt-get install -y aardvark-dns   (Fedora/RHEL: sudo dnf install -y aardvark-dns)"),
    );
    assert!(
        invocations.contains(&"podman info --format json".to_owned()),
        "{invocations:?}"
    );
    assert!(
        run.stdout
            .ends_with("\n11 ok, 2 warn, 0 FAIL, 0 skip: ready (the warnings are advice)\n"),
        "{}",
        run.stdout
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 0);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], true);
    assert_eq!(json_check(&report, "docker")["status"], "warn");
    assert_eq!(json_check(&report, "podman")["status"], "ok");

    // Without podman the same docker is a failure: no engine can build images.
    let (alone, _) = doctor(&without(programs, "podman"), &[]);
    assert_eq!(alone.code, 1);
    assert!(
        alone
            .stdout
            .contains("FAIL    docker           client 27.4.1 only, daemon not reachable"),
        "{}",
        alone.stdout
    );
    assert_row(
        &alone.stdout,
        "FAIL    podman           not installed (docker or podman is needed)",
        Some(
            "install podman: sudo apt-get install -y podman runc netavark aardvark-dns   (other systems: https://podman.io/docs/installation)",
        ),
    );
}

/// The engine e2e uses without a Docker daemon: Podman, with the network backend `podman info`
/// reports and the DNS helper found (or not) where that containers.conf says Podman looks.
#[test]
fn podman_container_dns_is_reported_with_its_fix() {
    let no_daemon = change(healthy(), "docker", |docker| {
        docker.on(
            "info --format {{.ServerVersion}}",
            Reply::fail(
                1,
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
            )
            .with_stdout("\n"),
        )
    });
    let (netavark, invocations) = doctor_with_podman_helpers(&no_daemon, &[], &["netavark", "aardvark-dns"]);
    assert_eq!(netavark.code, 0, "{}", netavark.stderr);
    let row = netavark
        .stdout
        .lines()
        .find(|line| line.contains("container-dns"))
        .unwrap_or_else(|| panic!("no container-dns row:\n{}", netavark.stdout));
    assert!(
        row.starts_with(
            "ok      container-dns    podman netavark backend, containers find each other by name (aardvark-dns at /"
        ) && row.ends_with("/podman-helpers/aardvark-dns)"),
        "{row}"
    );
    assert_read_only(&invocations);

    let cni = change(no_daemon, "podman", |podman| {
        podman.on("info --format json", Reply::ok(PODMAN_INFO_CNI))
    });
    let (run, _) = doctor_with_podman_helpers(&cni, &[], &["aardvark-dns"]);
    assert_eq!(run.code, 0, "a warning, not a failure:\n{}", run.stdout);
    assert_row(
        &run.stdout,
        "warn    container-dns    podman cni backend with no dnsname: containers cannot find each other by name (cargo xtask e2e needs it)",
        Some(
            "sudo apt-get install -y golang-github-containernetworking-plugin-dnsname   (Fedora/RHEL: sudo dnf install -y \
             podman-plugins); or move to netavark: sudo apt-get install -y netavark aardvark-dns, set network_backend = \
             \"netavark\" under [network] in /etc/containers/containers.conf, then podman system reset",
        ),
    );
    let (json_run, _) = doctor_with_podman_helpers(&cni, &["--json"], &[]);
    let report = json_report(&json_run);
    let check = json_check(&report, "container-dns");
    assert_eq!(check["status"], "warn");
    assert_eq!(
        check["detail"],
        "podman cni backend with no dnsname: containers cannot find each other by name (cargo xtask e2e needs it)"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .starts_with("sudo apt-get install -y golang-github-containernetworking-plugin-dnsname"),
        "{check}"
    );

    let broken = change(cni, "podman", |podman| {
        podman.on("info --format json", Reply::fail(125, "Error: cannot open storage\n"))
    });
    let (run, _) = doctor_with_podman_helpers(&broken, &[], &[]);
    let row = run.stdout.lines().find(|line| line.contains("container-dns")).unwrap();
    assert!(
        row.starts_with("warn    container-dns    podman info failed, so container DNS is unknown: "),
        "{row}"
    );
}

#[test]
fn a_kind_context_needs_kind_not_minikube() {
    let programs = change(without(healthy(), "minikube"), "kubectl", |kubectl| {
        kubectl
            .on("config current-context --request-timeout=5s", Reply::ok("kind-dev\n"))
            .on(
                "config view --minify -o json --request-timeout=5s",
                Reply::ok(minified_config("kind-dev", "https://127.0.0.1:41235")),
            )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let table = &run.stdout;
    assert_row(
        table,
        "skip    minikube         not installed (not needed: the current context is kind cluster \"dev\")",
        None,
    );
    assert_row(table, "ok      kind             v0.26.0", None);
    assert_row(
        table,
        "ok      kube-context     kind-dev: local (kind cluster \"dev\"), server https://127.0.0.1:41235",
        None,
    );
    assert_row(table, "skip    minikube-status  minikube is not installed", None);
    assert!(invocations.contains(&"kind version".to_owned()), "{invocations:?}");
    assert!(
        !invocations.iter().any(|line| line.starts_with("k3d")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    // The same context without kind installed: kind is required for it.
    let (run, _) = doctor(&without(programs, "kind"), &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("FAIL    kind             not installed (the current context is kind cluster \"dev\")"),
        "{}",
        run.stdout
    );
}

#[test]
fn low_disk_space_warns_then_fails() {
    let at = |kib: u64| replace(healthy(), Program::new("df").on("-Pk *", Reply::ok(df(kib))));
    let (low, _) = doctor(&at(5 * GIB_IN_KIB), &[]);
    assert_eq!(low.code, 0);
    assert!(
        low.stdout
            .contains("warn    disk             5.0 GiB free on / (less than 10 GiB)"),
        "{}",
        low.stdout
    );
    let (full, _) = doctor(&at(GIB_IN_KIB), &["--json"]);
    assert_eq!(full.code, 1);
    let report = json_report(&full);
    assert_eq!(json_check(&report, "disk")["status"], "fail");
    assert_eq!(
        json_check(&report, "disk")["detail"],
        "1.0 GiB free on / (needs at least 2 GiB)"
    );
}

#[test]
fn help_describes_the_command() {
    let standins = StandIns::new();
    let help = run(standins.command(env!("CARGO_BIN_EXE_xtask")).args(["doctor", "--help"]));
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--json"), "{}", help.stdout);
    assert!(standins.invocations().is_empty(), "--help ran programs");
}
