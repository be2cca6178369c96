//! The GitHub Actions workflow users run in their fork against real clusters
//! (`.github/workflows/cluster.yml`). It cannot run here, so this suite checks what can be
//! checked without a cluster: every command it runs is a `cargo xtask` command that the real
//! xtask binary accepts with exactly those flags, every action is pinned to a release and given
//! only inputs that release declares, and each job deploys, smoke-tests and uploads the
//! diagnostics bundle when it fails.

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Workflow {
    jobs: BTreeMap<String, Job>,
}

#[derive(Debug, Deserialize)]
struct Job {
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
struct Step {
    name: Option<String>,
    uses: Option<String>,
    run: Option<String>,
    #[serde(rename = "if")]
    condition: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, serde_yaml_ng::Value>,
}

impl Step {
    fn label(&self) -> &str {
        self.name
            .as_deref()
            .or(self.uses.as_deref())
            .unwrap_or("(unnamed step)")
    }
}

/// The inputs each pinned action declares, read from its `action.yml` at the tag used.
const ACTIONS: &[(&str, &[&str])] = &[
    // github.com/actions/checkout, tag v7.0.1 (commit 3d3c42e5): no inputs are used here.
    ("actions/checkout@v7.0.1", &[]),
    // github.com/helm/kind-action, action.yml at tag v1.14.0 (commit ef37e7f3).
    (
        "helm/kind-action@v1.14.0",
        &[
            "version",
            "config",
            "kubeconfig",
            "node_image",
            "cluster_name",
            "wait",
            "verbosity",
            "kubectl_version",
            "registry",
            "registry_image",
            "registry_name",
            "registry_port",
            "registry_enable_delete",
            "install_only",
            "ignore_failed_clean",
            "cloud_provider",
        ],
    ),
    // github.com/medyagh/setup-minikube, action.yml at tag v0.0.21 (commit e9e035a8).
    (
        "medyagh/setup-minikube@v0.0.21",
        &[
            "start",
            "cache",
            "minikube-version",
            "driver",
            "container-runtime",
            "kubernetes-version",
            "cpus",
            "memory",
            "network-plugin",
            "cni",
            "addons",
            "extra-config",
            "feature-gates",
            "listen-address",
            "mount-path",
            "nodes",
            "install-path",
            "wait",
            "insecure-registry",
            "start-args",
        ],
    ),
    // github.com/actions/upload-artifact, action.yml at tag v7.0.0 (commit bbbca2dd).
    (
        "actions/upload-artifact@v7.0.0",
        &[
            "name",
            "path",
            "if-no-files-found",
            "retention-days",
            "compression-level",
            "overwrite",
            "include-hidden-files",
            "archive",
        ],
    ),
];

fn workflow_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/cluster.yml")
}

fn workflow() -> Workflow {
    let path = workflow_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The command lines of a `run:` script (comments and blank lines dropped).
fn command_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Checks one command line against the real xtask binary: its subcommand and flags must parse.
/// `--help` at the end makes clap stop after parsing everything before it, so an unknown
/// subcommand, an unknown flag or a value its parser refuses fails, and nothing is run.
fn check_command(line: &str) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["cargo", "xtask", args @ ..] = words.as_slice() else {
        return Err(format!(
            "`{line}` is not a `cargo xtask` command; the workflow runs only those"
        ));
    };
    if args
        .iter()
        .any(|arg| arg.contains(['$', '"', '\'', '|', ';', '&', '`']))
    {
        return Err(format!("`{line}` uses shell syntax this check cannot follow"));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .arg("--help")
        .output()
        .map_err(|err| format!("running xtask: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "xtask refuses `{line}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn every_command_the_workflow_runs_exists_with_those_flags() {
    let workflow = workflow();
    let mut checked = 0;
    for (job, spec) in &workflow.jobs {
        for step in &spec.steps {
            for line in step.run.as_deref().map(command_lines).unwrap_or_default() {
                check_command(line).unwrap_or_else(|err| panic!("job {job}, step {}: {err}", step.label()));
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} commands found in the workflow");
}

#[test]
fn the_check_refuses_what_xtask_would_refuse() {
    for line in [
        "cargo xtask up --no-such-flag",
        "cargo xtask deploy-everything",
        "cargo xtask smoke --namespace Not_A_Label",
        "kubectl get pods",
    ] {
        assert!(check_command(line).is_err(), "`{line}` was accepted");
    }
    check_command("cargo xtask smoke --kube-context kind-todo").expect("a valid command is accepted");
}

#[test]
fn every_action_is_pinned_to_a_release_and_given_only_its_inputs() {
    for (job, spec) in &workflow().jobs {
        for step in spec.steps.iter().filter(|step| step.uses.is_some()) {
            let uses = step.uses.as_deref().unwrap();
            let Some((_, inputs)) = ACTIONS.iter().find(|(action, _)| *action == uses) else {
                panic!("job {job} uses {uses}, which is not one of the pinned actions this test knows")
            };
            for input in step.with.keys() {
                assert!(
                    inputs.contains(&input.as_str()),
                    "job {job}: {uses} has no input `{input}`"
                );
            }
        }
    }
}

/// The run lines of a job, in order.
fn runs(job: &Job) -> Vec<&str> {
    job.steps
        .iter()
        .filter_map(|step| step.run.as_deref())
        .flat_map(command_lines)
        .collect()
}

#[test]
fn each_cluster_job_deploys_smoke_tests_and_uploads_the_bundle_on_failure() {
    let workflow = workflow();
    // kind names the context of cluster NAME `kind-NAME` (kind: pkg/cluster/internal/kubeconfig,
    // KINDClusterKey); minikube names it after its profile, `minikube` by default.
    let kind_context = {
        let kind = &workflow.jobs["kind"];
        let setup = kind
            .steps
            .iter()
            .find(|step| step.uses.as_deref() == Some("helm/kind-action@v1.14.0"));
        let name = setup
            .and_then(|step| step.with.get("cluster_name"))
            .and_then(|value| value.as_str());
        format!("kind-{}", name.expect("the kind job names its cluster"))
    };
    for (job, context) in [("kind", kind_context.as_str()), ("minikube", "minikube")] {
        let spec = workflow.jobs.get(job).unwrap_or_else(|| panic!("no {job} job"));
        let lines = runs(spec);
        let up = format!("cargo xtask up --kube-context {context}");
        let smoke = format!("cargo xtask smoke --kube-context {context}");
        let position = |wanted: &str| lines.iter().position(|line| *line == wanted);
        let (Some(up_at), Some(smoke_at)) = (position(&up), position(&smoke)) else {
            panic!("job {job} must run `{up}` then `{smoke}`; it runs {lines:?}")
        };
        assert!(up_at < smoke_at, "job {job} smoke-tests before deploying");
        let upload = spec
            .steps
            .iter()
            .find(|step| {
                step.uses
                    .as_deref()
                    .is_some_and(|uses| uses.starts_with("actions/upload-artifact@"))
            })
            .unwrap_or_else(|| panic!("job {job} uploads nothing"));
        assert_eq!(
            upload.condition.as_deref(),
            Some("failure()"),
            "job {job}: upload only on failure"
        );
        assert_eq!(
            upload.with.get("path").and_then(|value| value.as_str()),
            Some("target/diagnostics/"),
            "job {job}: the bundle deploy writes on failure"
        );
    }
}
