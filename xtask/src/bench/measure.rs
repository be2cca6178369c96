//! One engine's measurement: its backend started on a fresh database (start-up time, memory),
//! seeded, loaded open-loop and then closed-loop in rounds, and — beside the first engine — the
//! frontend.

use std::{path::Path, sync::atomic::AtomicBool, time::Duration};

use anyhow::Context;

use serde_json::json;
use todo_service::contract::{HEALTH_PATH, SESSION_COOKIE};
use xshell::Shell;

use super::{
    BENCH_DATABASE, Bench, Engine, fresh_postgres_database,
    oha::{Load, Outcome, Pace},
    report::{BenchReport, EngineRun, Scenario, millis, scenario},
    rss_mib, seed,
};
use crate::{
    exec::service::Services,
    progress::{human, step},
};

/// The JWT secret of the benchmark's backend.
const SECRET: &str = "bench-secret-bench-secret-bench-secret-0";

/// What one measurement needs and what it records; `services` stop when it is dropped, whatever
/// happened.
pub(super) struct Measure<'a> {
    pub bench: &'a Bench,
    pub sh: &'a Shell,
    pub data: &'a Path,
    pub oha: &'a Path,
    pub services: Services,
    pub report: &'a mut BenchReport,
}

impl Measure<'_> {
    /// Measures the backend on `engine` (and the frontend beside it when `with_frontend`).
    pub fn engine(&mut self, engine: Engine, with_frontend: bool) -> anyhow::Result<EngineRun> {
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/todo.db", self.data.display()),
            Engine::Postgres => step(&format!("a fresh PostgreSQL database `{BENCH_DATABASE}`"), || {
                fresh_postgres_database(self.sh, &self.bench.postgres_url)
            })?,
        };
        let backend_name = format!("backend ({})", engine.name());
        let (backend, startup_ms) = self.start(
            "backend",
            &[
                ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                ("DATABASE_URL", database_url),
                ("JWT_SECRET", SECRET.to_owned()),
                ("LOG_FORMAT", "json".to_owned()),
            ],
        )?;
        self.report.startup_ms.insert(backend_name.clone(), startup_ms);
        self.report
            .idle_rss_mib
            .insert(backend_name.clone(), rss_mib(self.services.pid("backend")?)?);

        let (reader, writer) = step("seed: a user with 100 tasks, and a user to write as", || seed(&backend))?;
        let tasks = format!("{backend}/api/v1/tasks");
        let prefix = engine.name();
        // The open loop first, on the data as seeded: the closed-loop create rows then write as
        // fast as they can (tens of thousands of rows), and the checkpoints of that burst would
        // otherwise land in the latency row, which is meant to measure the steady 2,000 req/s.
        let (mixed_list, mixed_create) = self.open_loop(prefix, &tasks, &reader, &writer)?;
        let [health, list, create] = self.rounds(
            prefix,
            [
                (
                    format!("GET {HEALTH_PATH}"),
                    self.closed(format!("{backend}{HEALTH_PATH}"), None, false),
                ),
                (
                    "GET /api/v1/tasks?limit=20 (of 100)".to_owned(),
                    self.closed(format!("{tasks}?limit=20"), Some(&reader), false),
                ),
                (
                    "POST /api/v1/tasks".to_owned(),
                    self.closed(tasks.clone(), Some(&writer), true),
                ),
            ],
        )?;
        self.report.scenarios.extend([
            health.clone(),
            list.clone(),
            create.clone(),
            mixed_list.clone(),
            mixed_create.clone(),
        ]);
        if with_frontend {
            self.frontend(&backend, &reader)?;
        }
        let loaded_rss_mib = rss_mib(self.services.pid("backend")?)?;
        self.report.loaded_rss_mib.insert(backend_name, loaded_rss_mib);
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

    /// Starts one of the app's binaries and waits until it is ready; returns its URL and how
    /// long that took.
    fn start(&mut self, name: &'static str, env: &[(&str, String)]) -> anyhow::Result<(String, f64)> {
        let (url, took) = self.services.start(name, env, &AtomicBool::new(false))?;
        Ok((url, millis(took)))
    }

    /// A closed-loop load: `--connections` requests in flight for `--duration` seconds.
    fn closed(&self, url: String, token: Option<&str>, post: bool) -> Load {
        Load {
            url,
            post_json: post.then(|| json!({"title": "written by the benchmark"}).to_string()),
            headers: token
                .map(|t| format!("authorization: Bearer {t}"))
                .into_iter()
                .collect(),
            pace: Pace::Closed {
                connections: self.bench.connections,
            },
            duration: Duration::from_secs(self.bench.duration),
            expect_status: if post { 201 } else { 200 },
        }
    }

    /// Runs a closed-loop load and records its row.
    fn row(&mut self, name: String, load: Load) -> anyhow::Result<Scenario> {
        let pace = format!("{} connections", self.bench.connections);
        let outcome = step(&format!("load: {name} ({pace}, {}s)", self.bench.duration), || {
            load.run(self.oha)
        })?;
        let scenario = scenario(name, pace, &outcome);
        self.report.scenarios.push(scenario.clone());
        Ok(scenario)
    }

    /// The throughput rows, run in turn `--rounds` times for their share of `--duration` each
    /// (A B C A B C ...) and each read as one row: the machine's speed drifts by several percent
    /// within a minute here, and rows run one after the other would divide figures measured at
    /// different speeds.
    fn rounds<const N: usize>(&mut self, prefix: &str, rows: [(String, Load); N]) -> anyhow::Result<[Scenario; N]> {
        let rounds = self.bench.rounds;
        let each = self.bench.round_duration()?;
        let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
        let mut runs: [Vec<Outcome>; N] = std::array::from_fn(|_| Vec::new());
        for round in 1..=rounds {
            let title = format!(
                "load: {prefix}: round {round} of {rounds}: {}; {} each, {} connections",
                names.join(", "),
                human(each),
                self.bench.connections
            );
            step(&title, || {
                for ((name, load), runs) in rows.iter().zip(&mut runs) {
                    let load = Load {
                        duration: each,
                        ..load.clone()
                    };
                    runs.push(load.run(self.oha).with_context(|| format!("{prefix}: {name}"))?);
                }
                Ok(())
            })?;
        }
        let pace = format!("{} connections", self.bench.connections);
        let mut scenarios = Vec::with_capacity(N);
        for ((name, _), runs) in rows.iter().zip(&runs) {
            scenarios.push(scenario(
                format!("{prefix}: {name}"),
                pace.clone(),
                &Outcome::combine(runs)?,
            ));
        }
        Ok(scenarios
            .try_into()
            .unwrap_or_else(|_| unreachable!("one scenario per row")))
    }

    /// The open loop: both halves of the mix run at once, each at its share of the rate.
    fn open_loop(
        &mut self,
        prefix: &str,
        tasks: &str,
        reader: &str,
        writer: &str,
    ) -> anyhow::Result<(Scenario, Scenario)> {
        let bench = self.bench;
        let open = |url: String, token: &str, post: bool, share: f64, connections: usize| Load {
            url,
            post_json: post.then(|| json!({"title": "written at a fixed rate"}).to_string()),
            headers: vec![format!("authorization: Bearer {token}")],
            pace: Pace::Open {
                rate: f64::from(bench.rate) * share,
                connections,
            },
            duration: Duration::from_secs(bench.open_loop_seconds),
            expect_status: if post { 201 } else { 200 },
        };
        let list_load = open(format!("{tasks}?limit=20"), reader, false, 0.8, 32);
        let create_load = open(tasks.to_owned(), writer, true, 0.2, 16);
        let oha = self.oha;
        let (list_outcome, create_outcome) = step(
            &format!(
                "load: {prefix}: {} req/s open loop, 80% list / 20% create, {}s",
                bench.rate, bench.open_loop_seconds
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
            format!("{} req/s", f64::from(bench.rate) * 0.8),
            &list_outcome,
        );
        let mixed_create = scenario(
            format!("{prefix}: mixed, POST /api/v1/tasks (20%)"),
            format!("{} req/s", f64::from(bench.rate) * 0.2),
            &create_outcome,
        );
        Ok((mixed_list, mixed_create))
    }

    /// The frontend beside this backend: start-up, memory, and its task list page under load.
    fn frontend(&mut self, backend: &str, reader: &str) -> anyhow::Result<()> {
        let (frontend, startup_ms) = self.start(
            "frontend",
            &[
                ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                ("BACKEND_URL", backend.to_owned()),
                ("LOG_FORMAT", "json".to_owned()),
            ],
        )?;
        self.report.startup_ms.insert("frontend".into(), startup_ms);
        self.report
            .idle_rss_mib
            .insert("frontend".into(), rss_mib(self.services.pid("frontend")?)?);
        let page = Load {
            headers: vec![format!("cookie: {SESSION_COOKIE}={reader}")],
            ..self.closed(format!("{frontend}/"), None, false)
        };
        self.row("frontend: GET / (task list page)".to_owned(), page)?;
        self.report
            .loaded_rss_mib
            .insert("frontend".into(), rss_mib(self.services.pid("frontend")?)?);
        Ok(())
    }
}
