//! `cargo xtask status`: the release at a glance — revision, chart and app versions, each pod's
//! readiness, restarts and image, the app's URL, and any problem the rollout diagnosis sees (with
//! what to do). Read-only.

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use xshell::Shell;

use crate::k8s::objects::{self, Event, Pod, PodExt};
use crate::{
    deploy::diagnose::{self, Problem},
    images::{BuildRecord, Profile},
    k8s::{
        node_images::Loader,
        release::{Access, AppUrl, ReleaseArgs},
    },
    timestamps,
    tools::helm::Helm,
};

/// Arguments of `cargo xtask status`.
#[derive(Debug, Clone, Args)]
pub struct Status {
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The status report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The kube context.
    pub context: String,
    /// The namespace.
    pub namespace: String,
    /// The release.
    pub release: String,
    /// Its latest revision.
    pub revision: u32,
    /// That revision's status (`deployed`, `failed`, `pending-upgrade`, ...).
    pub status: String,
    /// When it was made.
    pub updated: String,
    /// Helm's note about it.
    pub description: String,
    /// `todo-0.1.0`.
    pub chart: String,
    /// The chart's appVersion.
    pub app_version: String,
    /// Where to open the app, or what to run to reach it.
    pub app: AppUrl,
    /// The release's pods.
    pub pods: Vec<PodRow>,
    /// What is wrong, pod by pod.
    pub problems: Vec<Problem>,
}

/// One pod.
#[derive(Debug, Serialize)]
pub struct PodRow {
    /// Its name.
    pub name: String,
    /// Its component.
    pub component: String,
    /// Ready containers of all (`1/1`).
    pub ready: String,
    /// Restarts of its containers.
    pub restarts: u32,
    /// Running, Pending, CrashLoopBackOff, ...
    pub state: String,
    /// The images it runs.
    pub images: Vec<String>,
    /// The cargo profile its images were built with (`dev-image` when any tag says `dev-`).
    pub profile: Profile,
}

impl Status {
    /// Prints the release's status.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let release = self.target.resolve(sh, Access::Read)?;
        let helm = Helm::find(sh)?;
        let Some(history) = release.history(sh, &helm)? else {
            bail!(
                "release {} is not installed in namespace {} (kube context {}): cargo xtask deploy",
                release.name,
                release.namespace,
                release.context
            );
        };
        let Some(latest) = history.last().cloned() else {
            bail!("release {} has no revisions", release.name);
        };
        let selector = release.selector();
        let pods: Vec<Pod> = objects::parse_items(
            &release.query(sh, &["get", "pods", "-l", &selector, "-o", "json"])?,
            "pods",
        )?;
        let events: Vec<Event> =
            objects::parse_items(&release.query(sh, &["get", "events", "-o", "json"])?, "events").unwrap_or_default();
        let app = release
            .services(sh)
            .map(|services| release.app_url(sh, &services))
            .unwrap_or_else(|err| AppUrl::Hint(format!("could not read the Services: {err:#}")));

        let record = BuildRecord::load().ok();
        let loader = Loader::for_cluster(&release.kind);
        let hint = |image: &str| loader.hint_for(record.as_ref()?, image);
        let now = timestamps::now_unix();
        let problems = pods
            .iter()
            .filter_map(|pod| diagnose::diagnose(std::slice::from_ref(pod), &events, now, &hint))
            .collect();
        let report = Report {
            context: release.context.clone(),
            namespace: release.namespace.clone(),
            release: release.name.clone(),
            revision: latest.revision,
            status: latest.status,
            updated: latest.updated,
            description: latest.description,
            chart: latest.chart,
            app_version: latest.app_version,
            app,
            pods: pods
                .iter()
                .map(|pod| PodRow {
                    name: pod.name().to_owned(),
                    component: pod.component().to_owned(),
                    ready: pod.ready_count(),
                    restarts: pod.restarts(),
                    state: pod.state(),
                    profile: pod_profile(&pod.images()),
                    images: pod.images(),
                })
                .collect(),
            problems,
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render(&report));
        }
        Ok(())
    }
}

/// A pod's build profile: dev-image when any of its images is one.
fn pod_profile(images: &[String]) -> Profile {
    if images
        .iter()
        .any(|image| Profile::of_reference(image) == Profile::DevImage)
    {
        Profile::DevImage
    } else {
        Profile::Release
    }
}

/// The report for people.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "release  {} revision {} ({}), updated {}\n         {}\nchart    {}, app version {}\nwhere    kube context {}, namespace {}\napp      {}\n\n",
        report.release,
        report.revision,
        report.status,
        report.updated,
        report.description,
        report.chart,
        report.app_version,
        report.context,
        report.namespace,
        report.app.describe(),
    );
    if report.pods.is_empty() {
        out.push_str("no pods\n");
    } else {
        let width = report.pods.iter().map(|p| p.name.len()).max().unwrap_or(3).max(3);
        out.push_str(&format!(
            "{:<width$}  {:<10}  {:<5}  {:<8}  {:<26}  IMAGE\n",
            "POD", "COMPONENT", "READY", "RESTARTS", "STATE"
        ));
        for pod in &report.pods {
            out.push_str(&format!(
                "{:<width$}  {:<10}  {:<5}  {:<8}  {:<26}  {}\n",
                pod.name,
                pod.component,
                pod.ready,
                pod.restarts,
                pod.state,
                pod.images.join(", ")
            ));
        }
    }
    let dev: Vec<&str> = (report.pods.iter())
        .filter(|pod| pod.profile == Profile::DevImage)
        .map(|pod| pod.name.as_str())
        .collect();
    if !dev.is_empty() {
        out.push_str(&format!(
            "\nnote: {} run{} dev-image builds (the inner loop's: no LTO, tags dev-…; not to ship)\n",
            dev.join(", "),
            if dev.len() == 1 { "s" } else { "" }
        ));
    }
    if !report.problems.is_empty() {
        out.push_str("\nproblems:\n");
        for problem in &report.problems {
            out.push_str(&format!("  - {}\n    what to do: {}\n", problem.reason, problem.fix));
        }
    }
    out
}
