//! `cargo xtask doctor` end to end: the real binary, with recording stand-ins for every program it
//! runs and PATH set to the stand-ins alone. Each scenario asserts the table, the JSON, the exit
//! code, and exactly which commands were run (all of them read-only queries).

mod cluster;
mod tools;

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
const PODMAN_INFO_NETAVARK: &str = include_str!("../../fixtures/podman-info-4.3-netavark.json");
const PODMAN_INFO_CNI: &str = include_str!("../../fixtures/podman-info-4.3-cni.json");

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
