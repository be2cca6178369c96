//! One cycle of `dev`: a change to the sources, carried to the cluster only as far as it goes.
//!
//! compile (cargo, both binaries as build-images builds them) -> image (only the services the
//! change can affect; the tag is a hash of the content, so an unchanged binary gives the tag the
//! cluster runs already) -> load (only images a node lacks) -> rolled out (`helm upgrade`, only
//! when a tag or the chart and its values changed; deploy's watch and diagnosis) -> serving (the
//! forwards opened again, then health, readiness and the backend's build through them).
//!
//! Each cycle ends with one line of stage times on stderr and, under `--json`, one [`Report`]
//! line on stdout.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde::Serialize;
use xshell::Shell;

use super::{Session, chart};
use crate::{
    build_images::BuildImages,
    deploy::Interrupted,
    images::{BuildRecord, Profile, Service},
    progress::human,
    watch::Change,
};

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Upgraded, rolled out, and the new build serves.
    Deployed,
    /// Rolled out, but the serving checks failed.
    NotServing,
    /// Rolled out; no serving checks (`--no-smoke`).
    RolledOut,
    /// Nothing the cluster runs changed (same image content, same chart): nothing deployed.
    Unchanged,
    /// cargo failed: the cluster was not touched.
    CompileError,
    /// An image could not be built, or loaded: the cluster was not upgraded.
    ImageError,
    /// The rollout failed: diagnosed and rolled back by Helm.
    RolloutFailed,
    /// Ctrl-C arrived during the rollout (Helm rolled back).
    Interrupted,
}

/// Milliseconds each stage took; `null` for a stage the cycle did not need.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stages {
    /// From the first save until the burst of saves settled (the debounce).
    pub saved: u128,
    /// cargo.
    pub compiled: Option<u128>,
    /// The images of the affected services.
    pub image: Option<u128>,
    /// Loading the changed images into the cluster.
    pub loaded: Option<u128>,
    /// `helm upgrade` until the rollout finished (or failed and was rolled back).
    pub rolled_out: Option<u128>,
    /// Until the forwards were open again and the new build answered.
    pub serving: Option<u128>,
}

/// One cycle, as a JSON line under `--json` (stable: documented in docs/deployment/inner-loop.md).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"cycle"`.
    pub event: &'static str,
    /// 1 for the first change after start-up, then 2, 3, ...
    pub cycle: u32,
    /// The files whose content changed, relative to the project root.
    pub changed: Vec<String>,
    /// What the change can affect: `backend`, `frontend`, `chart`.
    pub affected: Vec<&'static str>,
    /// The services whose image was built (or found already built) this cycle.
    pub built: Vec<Service>,
    /// The services whose image was loaded into the cluster.
    pub loaded: Vec<Service>,
    /// Whether `helm upgrade` ran.
    pub upgraded: bool,
    /// The image tags after the cycle: of the last build, which the cluster runs unless the
    /// cycle failed.
    pub tags: BTreeMap<Service, String>,
    /// The stages' durations.
    pub stages_ms: Stages,
    /// From the first save to the end of the cycle.
    pub total_ms: u128,
    /// How it ended.
    pub outcome: Ending,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl Report {
    fn new(number: u32, change: &Change) -> Report {
        let mut affected = change.affected.services();
        if change.affected.chart {
            affected.push("chart");
        }
        Report {
            event: "cycle",
            cycle: number,
            changed: change.paths.iter().map(|p| p.display().to_string()).collect(),
            affected,
            built: Vec::new(),
            loaded: Vec::new(),
            upgraded: false,
            tags: BTreeMap::new(),
            stages_ms: Stages {
                saved: (change.settled - change.saved).as_millis(),
                ..Stages::default()
            },
            total_ms: 0,
            outcome: Ending::Unchanged,
            error: None,
        }
    }

    /// `==> frontend/src/main.rs: saved 250ms -> compiled 1.2s -> image 300ms -> loaded 1.1s ->
    /// rolled out 3.0s -> serving 400ms (total 6.3s): deployed`.
    pub fn line(&self) -> String {
        let ms =
            |value: Option<u128>| value.map_or_else(|| "-".to_owned(), |ms| human(Duration::from_millis(ms as u64)));
        let stages = &self.stages_ms;
        let changed = crate::watch::describe(&self.changed);
        format!(
            "==> {changed}: saved {} -> compiled {} -> image {} -> loaded {} -> rolled out {} -> serving {} (total {}): {}",
            ms(Some(stages.saved)),
            ms(stages.compiled),
            ms(stages.image),
            ms(stages.loaded),
            ms(stages.rolled_out),
            ms(stages.serving),
            human(Duration::from_millis(self.total_ms as u64)),
            self.describe()
        )
    }

    fn describe(&self) -> String {
        let names = |services: &[Service]| services.iter().map(|s| s.name()).collect::<Vec<_>>().join(" and ");
        match self.outcome {
            Ending::Deployed => format!("deployed, serving ({})", self.what_changed(&names)),
            Ending::RolledOut => format!("rolled out ({})", self.what_changed(&names)),
            Ending::NotServing => "rolled out, but NOT serving (see above)".to_owned(),
            Ending::Unchanged if self.built.is_empty() => "nothing to deploy".to_owned(),
            Ending::Unchanged => format!("{} image unchanged: nothing to deploy", names(&self.built)),
            Ending::CompileError => "compile error (cargo's output above): the cluster is untouched".to_owned(),
            Ending::ImageError => "FAILED before the upgrade (see above): the cluster is untouched".to_owned(),
            Ending::RolloutFailed => "rollout FAILED and rolled back (diagnosis above)".to_owned(),
            Ending::Interrupted => "interrupted".to_owned(),
        }
    }

    fn what_changed(&self, names: &dyn Fn(&[Service]) -> String) -> String {
        if self.loaded.is_empty() {
            "chart only".to_owned()
        } else {
            format!("new {}", names(&self.loaded))
        }
    }
}

impl Session<'_> {
    /// Carries one change to the cluster as far as it goes, and reports it.
    pub(super) fn cycle(&mut self, change: &Change) -> Report {
        self.cycles += 1;
        let mut report = Report::new(self.cycles, change);
        let services: Vec<Service> = Service::ALL
            .into_iter()
            .filter(|s| change.affected.services().contains(&s.name()))
            .collect();
        eprintln!(
            "==> {} changed: {}",
            report.changed.join(", "),
            change.affected.describe()
        );
        if let Err(ending) = self.build(&services, &mut report) {
            report.outcome = ending;
        } else {
            report.outcome = self.deploy(&mut report);
        }
        report.tags = tags(&self.record);
        report.total_ms = change.saved.elapsed().as_millis();
        report
    }

    /// compile and image, for `services` (none: the chart alone changed).
    fn build(&mut self, services: &[Service], report: &mut Report) -> Result<(), Ending> {
        if services.is_empty() {
            return Ok(());
        }
        let build = BuildImages {
            engine: Some(self.record.engine),
            arch: Some(self.redeploy.arch()),
            profile: Profile::DevImage,
            only: match services {
                [one] => Some(*one),
                _ => None,
            },
            ..BuildImages::default()
        };
        let started = Instant::now();
        let binaries = build.compile(self.sh);
        report.stages_ms.compiled = Some(started.elapsed().as_millis());
        let binaries = binaries.map_err(|err| {
            report.error = Some(format!("{err:#}"));
            eprintln!(
                "==> the build failed (cargo's errors are above): the cluster is left as it is until the next good save"
            );
            Ending::CompileError
        })?;
        let started = Instant::now();
        let record = build.images_from(self.sh, &binaries);
        report.stages_ms.image = Some(started.elapsed().as_millis());
        self.record = record.map_err(|err| {
            report.error = Some(format!("{err:#}"));
            eprintln!("==> building the image failed: {err:#}");
            Ending::ImageError
        })?;
        report.built = services.to_vec();
        Ok(())
    }

    /// load, upgrade and serving checks, each only when needed.
    fn deploy(&mut self, report: &mut Report) -> Ending {
        let sh: &Shell = self.sh;
        let changed: Vec<Service> = Service::ALL
            .into_iter()
            .filter(|service| self.record.image(*service).map(|i| &i.tag) != self.deployed.tags.get(service))
            .collect();
        let chart = chart::fingerprint(&sh.current_dir(), self.redeploy.values_files());
        if changed.is_empty() && chart == self.deployed.chart {
            return Ending::Unchanged;
        }
        let rollout_began = Instant::now();
        if !changed.is_empty() {
            let started = Instant::now();
            let loaded = self.redeploy.load(sh, &BuildRecord::path());
            report.stages_ms.loaded = Some(started.elapsed().as_millis());
            match loaded {
                Ok(loaded) => report.loaded = loaded,
                Err(err) => return fail(report, Ending::ImageError, err),
            }
        }
        let started = Instant::now();
        report.upgraded = true;
        let upgraded = self.redeploy.upgrade(sh, &self.record);
        report.stages_ms.rolled_out = Some(started.elapsed().as_millis());
        if let Err(err) = upgraded {
            let ending = if err.downcast_ref::<Interrupted>().is_some() {
                Ending::Interrupted
            } else {
                Ending::RolloutFailed
            };
            return fail(report, ending, err);
        }
        self.deployed = Deployed {
            tags: tags(&self.record),
            chart,
        };
        let started = Instant::now();
        let serving = self.reach.after_rollout(sh, rollout_began.elapsed()).and_then(|()| {
            if self.check_serving {
                self.reach.check_serving(&self.deployed.tags[&Service::Backend])
            } else {
                Ok(())
            }
        });
        report.stages_ms.serving = Some(started.elapsed().as_millis());
        match serving {
            Ok(()) if self.check_serving => Ending::Deployed,
            Ok(()) => Ending::RolledOut,
            Err(err) => fail(report, Ending::NotServing, err),
        }
    }
}

/// What the cluster runs: the images' tags and the chart's fingerprint.
#[derive(Debug, Clone)]
pub(super) struct Deployed {
    /// Each service's tag.
    pub tags: BTreeMap<Service, String>,
    /// [`chart::fingerprint`] of the chart and values deployed.
    pub chart: String,
}

/// Each service's tag in `record`.
pub(super) fn tags(record: &BuildRecord) -> BTreeMap<Service, String> {
    record
        .images
        .iter()
        .map(|image| (image.service, image.tag.clone()))
        .collect()
}

/// Records the error and prints it (the diagnosis, if any, is above it).
fn fail(report: &mut Report, ending: Ending, err: anyhow::Error) -> Ending {
    eprintln!("==> {err:#}");
    report.error = Some(format!("{err:#}"));
    ending
}
