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

mod measure;
pub mod oha;
mod report;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;
use todo_service::contract::DEFAULT_TEST_DATABASE_URL;
use xshell::{Shell, cmd};

pub use self::report::{BenchReport, Goal, Machine, Scenario};
use self::{
    measure::Measure,
    report::{compare, goals, load, render},
};
use crate::{
    build_images,
    exec::service::{Logs, Services},
    progress::step,
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
    /// Seconds each throughput (closed-loop) row runs, in all.
    #[arg(long, default_value_t = 8)]
    pub duration: u64,
    /// The throughput rows run in turn this many times, each for its share of `--duration`
    /// (/health, list, create, /health, ...), so a change of the machine's speed during the run
    /// reaches every row alike and the shares of /health compare like with like.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
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
        default_value = DEFAULT_TEST_DATABASE_URL,
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// Where to write the results [default: target/bench/latest.json].
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// An earlier result: fail when any scenario's p99 is more than 20% worse than there.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Measure the inner loop instead: `cargo xtask dev` on a copy of the tree, with real edits,
    /// cargo and Podman, and stand-ins for the cluster's tools (xtask/benches/inner_loop.rs)
    /// [JSON default: target/bench/inner-loop.json].
    #[arg(
        long,
        conflicts_with_all = ["baseline", "engines", "duration", "rounds", "connections", "rate", "open_loop_seconds"]
    )]
    pub inner_loop: bool,
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

impl Bench {
    /// Builds, then per engine starts the backend on a fresh database, measures it and stops it;
    /// prints and writes the report; fails when a goal is missed or the baseline regressed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if self.inner_loop {
            return inner_loop(sh, self.json.as_deref());
        }
        self.round_duration()?;
        let oha = tools::require(oha::OHA)?;
        if self.engines.contains(&Engine::Postgres) {
            tools::require(PSQL)?;
        }
        let generator = oha::version(&oha)?;
        let bin_dir = step("build the release binaries (as in the images)", || {
            build_images::host_release_binaries(sh)
        })?;
        let data = fresh_dir(&crate::target_dir().join("bench").join("data"))?;
        // The services' own logs, one file per service and engine (see `Logs::Files`).
        let logs = fresh_dir(&crate::target_dir().join("bench").join("logs"))?;
        eprintln!("    the services' logs: {}", logs.display());
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
            let mut measure = Measure {
                bench: &self,
                sh,
                data: &data,
                oha: &oha,
                // How long a service may take to become ready.
                services: Services::new(&bin_dir, Logs::Files(logs.join(engine.name())), Duration::from_secs(30)),
                report: &mut report,
            };
            // The frontend is measured once, beside the first engine's backend.
            runs.push(measure.engine(*engine, i == 0)?);
        }
        report.goals = goals(&runs, &report.scenarios);
        print!("{}", render(&report));
        // Paths typed by the user are taken from where they are, like every path argument.
        let path = self.json.as_deref().map_or_else(
            || crate::target_dir().join("bench").join("latest.json"),
            crate::from_caller,
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("    written to {}", path.display());
        if let Some(baseline) = &self.baseline {
            compare(&report, &load(&crate::from_caller(baseline))?)?;
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
}

impl Bench {
    /// How long each throughput row runs per round: `--duration` shared by `--rounds`, at least a
    /// second (shorter runs would measure oha's start and its connections more than the server).
    fn round_duration(&self) -> anyhow::Result<Duration> {
        let each = Duration::from_secs(self.duration) / self.rounds;
        if each < Duration::from_secs(1) {
            bail!(
                "--duration {} in --rounds {} gives each round {}; give each round at least 1s \
                 (a longer --duration or fewer --rounds)",
                self.duration,
                self.rounds,
                crate::progress::human(each)
            );
        }
        Ok(each)
    }
}

/// `bench --inner-loop`: the `inner_loop` bench of xtask, which prints its stages and goals
/// and fails when a goal is missed. Built in the dev profile, whose dependencies are built
/// already, rather than cargo's optimized bench profile: it measures `dev`, not itself.
fn inner_loop(sh: &Shell, json: Option<&Path>) -> anyhow::Result<()> {
    tools::require(tools::PODMAN)?;
    let path = json.map_or_else(
        || crate::target_dir().join("bench").join("inner-loop.json"),
        crate::from_caller,
    );
    cmd!(
        sh,
        "cargo bench -p xtask --bench inner_loop --profile dev -- --json {path}"
    )
    .run()
    .context("the inner-loop bench failed or missed a goal (see above)")
}

/// Empties (or creates) the folder `dir`; returns it.
fn fresh_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: Bench,
    }

    #[test]
    fn the_throughput_rows_run_in_rounds_of_at_least_a_second() {
        use clap::Parser;
        let bench = |args: &[&str]| Cli::try_parse_from([&["bench"], args].concat()).map(|c| c.bench);
        let default = bench(&[]).unwrap();
        assert_eq!((default.duration, default.rounds), (8, 4));
        assert_eq!(default.round_duration().unwrap(), Duration::from_secs(2));
        assert_eq!(
            bench(&["--duration", "3", "--rounds", "2"])
                .unwrap()
                .round_duration()
                .unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            bench(&["--rounds", "1"]).unwrap().round_duration().unwrap(),
            Duration::from_secs(8)
        );
        let err = bench(&["--duration", "2"])
            .unwrap()
            .round_duration()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--duration 2 in --rounds 4 gives each round 500ms"),
            "{err}"
        );
        assert!(bench(&["--rounds", "0"]).is_err());
    }

    #[test]
    fn the_inner_loop_bench_refuses_the_load_generators_flags() {
        use clap::Parser;
        let parsed = Cli::try_parse_from(["bench", "--inner-loop", "--json", "out.json"]).unwrap();
        assert!(parsed.bench.inner_loop);
        assert!(!Cli::try_parse_from(["bench"]).unwrap().bench.inner_loop);
        for flags in [
            ["--engine", "sqlite"],
            ["--rate", "100"],
            ["--duration", "2"],
            ["--connections", "4"],
            ["--rounds", "2"],
            ["--open-loop-seconds", "5"],
            ["--baseline", "old.json"],
        ] {
            let err = Cli::try_parse_from(["bench", "--inner-loop", flags[0], flags[1]]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict, "{flags:?}");
        }
    }
}
