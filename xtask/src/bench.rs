//! `cargo xtask bench`: measured figures for the release binaries the images run — start-up
//! time, memory, and throughput and latency under load on SQLite and PostgreSQL — checked
//! against the project's goals, written as JSON and optionally compared with an earlier result.
//!
//! The load comes from oha (see [`oha`]). Throughput rows are closed-loop (`--connections`
//! requests in flight for `--duration` seconds); the latency row is open-loop: a fixed arrival
//! rate of 80% list and 20% create for `--open-loop-seconds`, each request timed from when it
//! was due. The goals are ratios to `/health` measured in the same run (so they hold on any
//! machine) and absolute latency, memory and start-up bounds. The generator shares this
//! machine's cores with the servers: compare results from the same machine only.

pub mod oha;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;
use xshell::{Shell, cmd};

use self::oha::{Load, Outcome, Pace};
use crate::{
    build_images,
    exec::service::{Logs, ServiceProcess, stop_all},
    progress::{human, step},
    tools::{self, Tool},
};

/// `psql`, to create the PostgreSQL run's fresh database.
const PSQL: Tool = Tool {
    program: "psql",
    purpose: "creates a fresh database for the PostgreSQL benchmark",
    install: "sudo apt-get install -y postgresql-client",
};

/// The database the PostgreSQL run creates afresh on the server of `--postgres-url`.
const BENCH_DATABASE: &str = "todo_bench";

/// Arguments of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct Bench {
    /// Seconds each throughput (closed-loop) row runs.
    #[arg(long, default_value_t = 8)]
    pub duration: u64,
    /// Connections kept busy in each throughput row.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Arrival rate of the open-loop latency row, requests per second (80% list, 20% create).
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// Seconds the open-loop latency row runs.
    #[arg(long, default_value_t = 30)]
    pub open_loop_seconds: u64,
    /// The database engines to measure, in order.
    #[arg(long = "engine", value_enum, default_values_t = [Engine::Sqlite, Engine::Postgres])]
    pub engines: Vec<Engine>,
    /// PostgreSQL server for the `postgres` run; a database `todo_bench` is created afresh on it.
    #[arg(
        long,
        env = "BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// Where to write the results.
    #[arg(long, default_value = "target/bench/latest.json")]
    pub json: PathBuf,
    /// An earlier result: fail when any scenario's p99 is more than 20% worse than there.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

/// A database engine the backend runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// A fresh SQLite file (the default deployment).
    Sqlite,
    /// A fresh database on a PostgreSQL server.
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The lowest list and create throughput, as a share of `/health`'s, that meets the goal.
    fn ratio_goals(self) -> (f64, f64) {
        match self {
            Self::Sqlite => (0.40, 0.20),
            Self::Postgres => (0.25, 0.10),
        }
    }
}

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
struct EngineRun {
    engine: Engine,
    health: Scenario,
    list: Scenario,
    create: Scenario,
    mixed_list: Scenario,
    mixed_create: Scenario,
    startup_ms: f64,
    loaded_rss_mib: f64,
}

impl Bench {
    /// Builds, then per engine starts the backend on a fresh database, measures it and stops it;
    /// prints and writes the report; fails when a goal is missed or the baseline regressed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let oha = tools::require(oha::OHA)?;
        if self.engines.contains(&Engine::Postgres) {
            tools::require(PSQL)?;
        }
        let generator = oha::version(&oha)?;
        let bin_dir = step("build the release binaries (as in the images)", || {
            build_images::host_release_binaries(sh)
        })?;
        let data = sh.current_dir().join("target/bench/data");
        if data.exists() {
            std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
        }
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let mut report = BenchReport {
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                generator,
            },
            startup_ms: BTreeMap::new(),
            idle_rss_mib: BTreeMap::new(),
            loaded_rss_mib: BTreeMap::new(),
            scenarios: Vec::new(),
            goals: Vec::new(),
        };
        let mut runs = Vec::new();
        for (i, engine) in self.engines.iter().enumerate() {
            let mut services = Vec::new();
            // The frontend is measured once, beside the first engine's backend.
            let outcome = self.measure(sh, *engine, i == 0, &bin_dir, &data, &oha, &mut services, &mut report);
            stop_all(&mut services);
            runs.push(outcome?);
        }
        report.goals = goals(&runs, &report.scenarios);
        print!("{}", render(&report));
        let path = sh.current_dir().join(&self.json);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("    written to {}", path.display());
        if let Some(baseline) = &self.baseline {
            compare(&report, &load(&sh.current_dir().join(baseline))?)?;
        }
        let missed: Vec<&str> = report
            .goals
            .iter()
            .filter(|g| !g.pass)
            .map(|g| g.name.as_str())
            .collect();
        if !missed.is_empty() {
            bail!("goals missed:\n  - {}", missed.join("\n  - "));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        sh: &Shell,
        engine: Engine,
        with_frontend: bool,
        bin_dir: &Path,
        data: &Path,
        oha: &Path,
        services: &mut Vec<ServiceProcess>,
        report: &mut BenchReport,
    ) -> anyhow::Result<EngineRun> {
        let stop = AtomicBool::new(false);
        let timeout = Duration::from_secs(30);
        let secret = "bench-secret-bench-secret-bench-secret-0";
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/todo.db", data.display()),
            Engine::Postgres => step(&format!("a fresh PostgreSQL database `{BENCH_DATABASE}`"), || {
                fresh_postgres_database(sh, &self.postgres_url)
            })?,
        };
        let backend_name = format!("backend ({})", engine.name());

        let started = Instant::now();
        services.push(ServiceProcess::start(
            "backend",
            &bin_dir.join("backend"),
            &[
                ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                ("DATABASE_URL", database_url),
                ("JWT_SECRET", secret.to_owned()),
                ("LOG_FORMAT", "json".to_owned()),
            ],
            Logs::Discarded,
        )?);
        let backend = services[0].wait_ready(timeout, &stop)?;
        let startup_ms = millis(started.elapsed());
        report.startup_ms.insert(backend_name.clone(), startup_ms);
        report
            .idle_rss_mib
            .insert(backend_name.clone(), rss_mib(services[0].child.id())?);

        let (reader, writer) = step("seed: a user with 100 tasks, and a user to write as", || seed(&backend))?;
        let tasks = format!("{backend}/api/v1/tasks");
        let closed = |url: String, token: Option<&str>, post: bool| Load {
            url,
            post_json: post.then(|| json!({"title": "written by the benchmark"}).to_string()),
            headers: token
                .map(|t| format!("authorization: Bearer {t}"))
                .into_iter()
                .collect(),
            pace: Pace::Closed {
                connections: self.connections,
            },
            duration: Duration::from_secs(self.duration),
            expect_status: if post { 201 } else { 200 },
        };
        let prefix = engine.name();
        let pace = format!("{} connections", self.connections);
        let row = |name: String, load: Load, report: &mut BenchReport| -> anyhow::Result<Scenario> {
            let outcome = step(&format!("load: {name} ({pace}, {}s)", self.duration), || load.run(oha))?;
            let scenario = scenario(name, pace.clone(), &outcome);
            report.scenarios.push(scenario.clone());
            Ok(scenario)
        };
        let health = row(
            format!("{prefix}: GET /health"),
            closed(format!("{backend}/health"), None, false),
            report,
        )?;
        let list = row(
            format!("{prefix}: GET /api/v1/tasks?limit=20 (of 100)"),
            closed(format!("{tasks}?limit=20"), Some(&reader), false),
            report,
        )?;

        // Open loop: both halves of the mix run at once, each at its share of the rate.
        let open = |url: String, token: &str, post: bool, share: f64, connections: usize| Load {
            url,
            post_json: post.then(|| json!({"title": "written at a fixed rate"}).to_string()),
            headers: vec![format!("authorization: Bearer {token}")],
            pace: Pace::Open {
                rate: f64::from(self.rate) * share,
                connections,
            },
            duration: Duration::from_secs(self.open_loop_seconds),
            expect_status: if post { 201 } else { 200 },
        };
        let list_load = open(format!("{tasks}?limit=20"), &reader, false, 0.8, 32);
        let create_load = open(tasks.clone(), &writer, true, 0.2, 16);
        let (list_outcome, create_outcome) = step(
            &format!(
                "load: {prefix}: {} req/s open loop, 80% list / 20% create, {}s",
                self.rate, self.open_loop_seconds
            ),
            || {
                std::thread::scope(|scope| {
                    let list = scope.spawn(|| list_load.run(oha));
                    let create = scope.spawn(|| create_load.run(oha));
                    let list = list.join().map_err(|_| anyhow::anyhow!("the list load panicked"))?;
                    let create = create.join().map_err(|_| anyhow::anyhow!("the create load panicked"))?;
                    Ok((list?, create?))
                })
            },
        )?;
        let mixed_list = scenario(
            format!("{prefix}: mixed, GET /api/v1/tasks?limit=20 (80%)"),
            format!("{} req/s", f64::from(self.rate) * 0.8),
            &list_outcome,
        );
        let mixed_create = scenario(
            format!("{prefix}: mixed, POST /api/v1/tasks (20%)"),
            format!("{} req/s", f64::from(self.rate) * 0.2),
            &create_outcome,
        );
        report.scenarios.push(mixed_list.clone());
        report.scenarios.push(mixed_create.clone());
        // After the open loop: the closed-loop create row writes as fast as it can (tens of
        // thousands of rows), and the checkpoints of that burst would otherwise land in the
        // latency row, which is meant to measure the steady 2,000 req/s.
        let create = row(
            format!("{prefix}: POST /api/v1/tasks"),
            closed(tasks.clone(), Some(&writer), true),
            report,
        )?;

        if with_frontend {
            let started = Instant::now();
            services.push(ServiceProcess::start(
                "frontend",
                &bin_dir.join("frontend"),
                &[
                    ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                    ("BACKEND_URL", backend.clone()),
                    ("LOG_FORMAT", "json".to_owned()),
                ],
                Logs::Discarded,
            )?);
            let frontend = services[1].wait_ready(timeout, &stop)?;
            report.startup_ms.insert("frontend".into(), millis(started.elapsed()));
            report
                .idle_rss_mib
                .insert("frontend".into(), rss_mib(services[1].child.id())?);
            let page = Load {
                headers: vec![format!("cookie: todo_session={reader}")],
                ..closed(format!("{frontend}/"), None, false)
            };
            row("frontend: GET / (task list page)".to_owned(), page, report)?;
            report
                .loaded_rss_mib
                .insert("frontend".into(), rss_mib(services[1].child.id())?);
        }
        let loaded_rss_mib = rss_mib(services[0].child.id())?;
        report.loaded_rss_mib.insert(backend_name, loaded_rss_mib);
        Ok(EngineRun {
            engine,
            health,
            list,
            create,
            mixed_list,
            mixed_create,
            startup_ms,
            loaded_rss_mib,
        })
    }
}

fn scenario(name: String, pace: String, outcome: &Outcome) -> Scenario {
    Scenario {
        name,
        pace,
        measured: outcome.clone(),
    }
}

/// Drops and creates [`BENCH_DATABASE`] on the server; returns its URL.
fn fresh_postgres_database(sh: &Shell, server_url: &str) -> anyhow::Result<String> {
    let drop = format!("DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)");
    let create = format!("CREATE DATABASE {BENCH_DATABASE}");
    // Quiet: the URL may hold a password.
    cmd!(sh, "psql {server_url} -v ON_ERROR_STOP=1 -q -c {drop} -c {create}")
        .quiet()
        .run()
        .context("creating the benchmark's PostgreSQL database (is the server of --postgres-url running?)")?;
    database_url(server_url, BENCH_DATABASE)
}

/// The URL of another database on the same server.
fn database_url(server_url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = server_url
        .split_once('?')
        .map_or((server_url, None), |(base, query)| (base, Some(query)));
    let (scheme, rest) = base
        .split_once("://")
        .context("--postgres-url must look like postgres://user@host:port/database")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{database}{query}"))
}

/// The goals of issue 13, from one run's rows.
fn goals(runs: &[EngineRun], scenarios: &[Scenario]) -> Vec<Goal> {
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

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Resident memory of a process, from /proc (Linux).
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc (bench needs Linux)")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok((kib / 1024.0 * 10.0).round() / 10.0)
}

/// Registers a user with 100 tasks (the list rows read them) and one without (the create rows
/// write as them, so the list keeps its size); returns both tokens.
fn seed(backend: &str) -> anyhow::Result<(String, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let register = |email: &str| -> anyhow::Result<String> {
        let mut response = agent
            .post(format!("{backend}/api/v1/auth/register"))
            .send_json(json!({"email": email, "password": "bench-password"}))?;
        let body: serde_json::Value = response.body_mut().read_json()?;
        Ok(body["token"]
            .as_str()
            .with_context(|| format!("register answered {} without a token: {body}", response.status()))?
            .to_owned())
    };
    let reader = register("reader@example.com")?;
    let writer = register("writer@example.com")?;
    for i in 0..100 {
        let response = agent
            .post(format!("{backend}/api/v1/tasks"))
            .header("authorization", format!("Bearer {reader}"))
            .send_json(json!({"title": format!("task {i}"), "tags": ["bench"], "priority": "high"}))?;
        if response.status() != 201 {
            bail!("creating a task answered {}", response.status());
        }
    }
    Ok((reader, writer))
}

fn render(report: &BenchReport) -> String {
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

fn load(path: &Path) -> anyhow::Result<BenchReport> {
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

    #[test]
    fn the_benchmark_database_lives_on_the_same_server() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "todo_bench").unwrap(),
            "postgres://postgres@127.0.0.1:5432/todo_bench"
        );
        assert_eq!(
            database_url("postgresql://u:pw@db/app?sslmode=require", "todo_bench").unwrap(),
            "postgresql://u:pw@db/todo_bench?sslmode=require"
        );
        assert_eq!(
            database_url("postgres://db", "todo_bench").unwrap(),
            "postgres://db/todo_bench"
        );
        assert!(database_url("not a url", "x").is_err());
    }
}
