//! The benchmark's report: each scenario as measured, the goals with their verdicts, the table
//! printed for people, and the comparison with an earlier report.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Engine, oha::Outcome};
use crate::progress::human;

/// Highest p99 of the open-loop row, milliseconds.
const OPEN_LOOP_P99_GOAL_MS: f64 = 10.0;
/// Highest backend memory after the load, MiB.
const LOADED_RSS_GOAL_MIB: f64 = 20.0;
/// Longest start-up to /ready on a fresh SQLite file, milliseconds.
const STARTUP_GOAL_MS: f64 = 100.0;

/// Everything one run measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct BenchReport {
    /// Where it ran.
    #[serde(default)]
    pub machine: Machine,
    /// Milliseconds from process start to the first 200 from /ready.
    pub startup_ms: BTreeMap<String, f64>,
    /// Resident memory right after start-up, in MiB.
    pub idle_rss_mib: BTreeMap<String, f64>,
    /// Resident memory after all the load, in MiB.
    pub loaded_rss_mib: BTreeMap<String, f64>,
    /// One entry per load scenario.
    pub scenarios: Vec<Scenario>,
    /// Each goal, measured.
    #[serde(default)]
    pub goals: Vec<Goal>,
}

/// The machine and the tools of a run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU cores available (the servers and the load generator share them).
    pub cores: usize,
    /// The load generator's version.
    pub generator: String,
}

/// The outcome of one load scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// What was requested.
    pub name: String,
    /// How: `16 connections` (closed loop) or `1600 req/s` (open loop).
    #[serde(default)]
    pub pace: String,
    /// What was measured.
    #[serde(flatten)]
    pub measured: Outcome,
}

/// One goal of the project, measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Goal {
    /// What is measured.
    pub name: String,
    /// The figure.
    pub measured: f64,
    /// The bound it must meet.
    pub target: f64,
    /// `%`, `ms` or `MiB`.
    pub unit: String,
    /// Whether `measured` must be at least (true) or at most (false) `target`.
    pub at_least: bool,
    /// Whether it is met.
    pub pass: bool,
}

impl Goal {
    fn at_least(name: String, measured: f64, target: f64, unit: &str) -> Self {
        Self {
            name,
            measured,
            target,
            unit: unit.to_owned(),
            at_least: true,
            pass: measured >= target,
        }
    }

    fn at_most(name: String, measured: f64, target: f64, unit: &str) -> Self {
        Self {
            name,
            measured,
            target,
            unit: unit.to_owned(),
            at_least: false,
            pass: measured <= target,
        }
    }
}

/// What one engine's run measured, for its goals.
pub(super) struct EngineRun {
    pub engine: Engine,
    pub health: Scenario,
    pub list: Scenario,
    pub create: Scenario,
    pub mixed_list: Scenario,
    pub mixed_create: Scenario,
    pub startup_ms: f64,
    pub loaded_rss_mib: f64,
}

pub(super) fn scenario(name: String, pace: String, outcome: &Outcome) -> Scenario {
    Scenario {
        name,
        pace,
        measured: outcome.clone(),
    }
}

/// The goals of issue 13, from one run's rows.
pub(super) fn goals(runs: &[EngineRun], scenarios: &[Scenario]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for run in runs {
        let name = run.engine.name();
        let (list_goal, create_goal) = run.engine.ratio_goals();
        let share = |s: &Scenario| {
            if run.health.measured.throughput_rps > 0.0 {
                (s.measured.throughput_rps / run.health.measured.throughput_rps * 1000.0).round() / 10.0
            } else {
                0.0
            }
        };
        goals.push(Goal::at_least(
            format!("{name}: list of 20 throughput, share of /health's"),
            share(&run.list),
            list_goal * 100.0,
            "%",
        ));
        goals.push(Goal::at_least(
            format!("{name}: create throughput, share of /health's"),
            share(&run.create),
            create_goal * 100.0,
            "%",
        ));
        // The mix's p99 is at most the larger of its two halves' p99s (and at least the smaller).
        goals.push(Goal::at_most(
            format!("{name}: open-loop mix p99 (the larger of list's and create's)"),
            run.mixed_list.measured.p99_ms.max(run.mixed_create.measured.p99_ms),
            OPEN_LOOP_P99_GOAL_MS,
            "ms",
        ));
        goals.push(Goal::at_most(
            format!("{name}: backend memory (RSS) after the load"),
            run.loaded_rss_mib,
            LOADED_RSS_GOAL_MIB,
            "MiB",
        ));
        if run.engine == Engine::Sqlite {
            goals.push(Goal::at_most(
                "sqlite: start-up to /ready on a fresh file".to_owned(),
                run.startup_ms,
                STARTUP_GOAL_MS,
                "ms",
            ));
        }
    }
    let errors: u64 = scenarios.iter().map(|s| s.measured.errors).sum();
    goals.push(Goal::at_most(
        "failed requests, all rows".to_owned(),
        errors as f64,
        0.0,
        "",
    ));
    goals
}

pub(super) fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

pub(super) fn render(report: &BenchReport) -> String {
    let mut out = format!(
        "\n{} cores, load from {} on the same cores\n",
        report.machine.cores, report.machine.generator
    );
    for (name, ms) in &report.startup_ms {
        out.push_str(&format!(
            "{name:<18} /ready after {}, memory {:.1} MiB idle, {:.1} MiB after the load\n",
            human(Duration::from_secs_f64(ms / 1000.0)),
            report.idle_rss_mib.get(name).copied().unwrap_or_default(),
            report.loaded_rss_mib.get(name).copied().unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "\n{:<52} {:>14} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "scenario", "pace", "req/s", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    ));
    for s in &report.scenarios {
        out.push_str(&format!(
            "{:<52} {:>14} {:>8} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
            s.name,
            s.pace,
            s.measured.throughput_rps,
            s.measured.errors,
            s.measured.p50_ms,
            s.measured.p90_ms,
            s.measured.p99_ms,
            s.measured.p999_ms,
            s.measured.max_ms
        ));
    }
    out.push_str(&format!(
        "\n{:<62} {:>10} {:>10}  {}\n",
        "goal", "measured", "goal", "pass"
    ));
    for g in &report.goals {
        let bound = if g.at_least { ">=" } else { "<=" };
        out.push_str(&format!(
            "{:<62} {:>10} {:>10}  {}\n",
            g.name,
            format!("{}{}", g.measured, g.unit),
            format!("{bound} {}{}", g.target, g.unit),
            if g.pass { "pass" } else { "FAIL" }
        ));
    }
    out
}

pub(super) fn load(path: &Path) -> anyhow::Result<BenchReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a bench report", path.display()))
}

/// Fails when a scenario's p99 is more than 20% worse than the baseline's, or it had errors.
pub fn compare(current: &BenchReport, baseline: &BenchReport) -> anyhow::Result<()> {
    let mut regressions = Vec::new();
    for scenario in &current.scenarios {
        if scenario.measured.errors > 0 {
            regressions.push(format!("{}: {} errors", scenario.name, scenario.measured.errors));
        }
        if let Some(before) = baseline.scenarios.iter().find(|b| b.name == scenario.name)
            && scenario.measured.p99_ms > before.measured.p99_ms * 1.2
        {
            regressions.push(format!(
                "{}: p99 {:.2} ms, was {:.2} ms",
                scenario.name, scenario.measured.p99_ms, before.measured.p99_ms
            ));
        }
    }
    if regressions.is_empty() {
        eprintln!("    no regression against the baseline (p99 within +20%)");
        Ok(())
    } else {
        bail!("performance regressed:\n  - {}", regressions.join("\n  - "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, rps: f64, p99_ms: f64, errors: u64) -> Scenario {
        Scenario {
            name: name.into(),
            pace: "16 connections".into(),
            measured: Outcome {
                ok: 100,
                errors,
                throughput_rps: rps,
                seconds: 1.0,
                p50_ms: 1.0,
                p90_ms: 1.0,
                p99_ms,
                p999_ms: p99_ms,
                max_ms: p99_ms,
            },
        }
    }

    fn report(scenarios: Vec<Scenario>) -> BenchReport {
        BenchReport {
            machine: Machine::default(),
            startup_ms: BTreeMap::new(),
            idle_rss_mib: BTreeMap::new(),
            loaded_rss_mib: BTreeMap::new(),
            scenarios,
            goals: Vec::new(),
        }
    }

    #[test]
    fn a_p99_more_than_a_fifth_worse_or_any_error_is_a_regression() {
        let baseline = report(vec![scenario("list", 1.0, 10.0, 0)]);
        assert!(compare(&report(vec![scenario("list", 1.0, 11.9, 0)]), &baseline).is_ok());
        let err = compare(&report(vec![scenario("list", 1.0, 12.5, 0)]), &baseline)
            .unwrap_err()
            .to_string();
        assert!(err.contains("list: p99 12.50 ms, was 10.00 ms"), "{err}");
        assert!(
            compare(&report(vec![scenario("list", 1.0, 5.0, 3)]), &baseline)
                .unwrap_err()
                .to_string()
                .contains("3 errors")
        );
    }

    #[test]
    fn reports_written_before_goals_existed_still_load_as_baselines() {
        let old = r#"{"startup_ms": {"backend": 106.0}, "idle_rss_mib": {}, "loaded_rss_mib": {},
            "scenarios": [{"name": "backend GET /health", "ok": 1, "errors": 0, "throughput_rps": 1.0,
            "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 1.0, "p999_ms": 1.0, "max_ms": 1.0}]}"#;
        let report: BenchReport = serde_json::from_str(old).unwrap();
        assert!(report.goals.is_empty());
        assert_eq!(report.scenarios[0].pace, "");
    }

    fn run(engine: Engine, health: f64, list: f64, create: f64, p99: (f64, f64), rss: f64, startup: f64) -> EngineRun {
        EngineRun {
            engine,
            health: scenario("h", health, 1.0, 0),
            list: scenario("l", list, 1.0, 0),
            create: scenario("c", create, 1.0, 0),
            mixed_list: scenario("ml", 1600.0, p99.0, 0),
            mixed_create: scenario("mc", 400.0, p99.1, 0),
            startup_ms: startup,
            loaded_rss_mib: rss,
        }
    }

    #[test]
    fn goals_are_ratios_to_health_and_absolute_bounds() {
        let runs = [
            run(Engine::Sqlite, 10_000.0, 4_000.0, 1_990.0, (3.0, 9.0), 19.9, 99.0),
            run(Engine::Postgres, 10_000.0, 2_400.0, 1_000.0, (12.0, 2.0), 20.1, 500.0),
        ];
        let goals = goals(&runs, &[scenario("x", 1.0, 1.0, 0)]);
        let verdicts: Vec<(&str, f64, bool)> = goals.iter().map(|g| (g.name.as_str(), g.measured, g.pass)).collect();
        assert_eq!(
            verdicts,
            [
                ("sqlite: list of 20 throughput, share of /health's", 40.0, true),
                ("sqlite: create throughput, share of /health's", 19.9, false),
                (
                    "sqlite: open-loop mix p99 (the larger of list's and create's)",
                    9.0,
                    true
                ),
                ("sqlite: backend memory (RSS) after the load", 19.9, true),
                ("sqlite: start-up to /ready on a fresh file", 99.0, true),
                ("postgres: list of 20 throughput, share of /health's", 24.0, false),
                ("postgres: create throughput, share of /health's", 10.0, true),
                (
                    "postgres: open-loop mix p99 (the larger of list's and create's)",
                    12.0,
                    false
                ),
                ("postgres: backend memory (RSS) after the load", 20.1, false),
                ("failed requests, all rows", 0.0, true),
            ]
        );
        let with_errors = super::goals(&runs[..1], &[scenario("x", 1.0, 1.0, 2)]);
        assert!(!with_errors.last().unwrap().pass);
    }

    #[test]
    fn goals_print_as_measured_goal_and_verdict() {
        let mut report = report(vec![scenario("sqlite: GET /health", 10_000.0, 1.0, 0)]);
        report.goals = vec![
            Goal::at_least("sqlite: list share".into(), 43.1, 40.0, "%"),
            Goal::at_most("sqlite: p99".into(), 12.5, 10.0, "ms"),
        ];
        let text = render(&report);
        assert!(text.contains("43.1%"), "{text}");
        assert!(text.contains(">= 40%"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("sqlite: p99") && l.ends_with("FAIL")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("sqlite: list share") && l.ends_with("pass")),
            "{text}"
        );
    }
}
