//! `cargo xtask bench`: measured figures for the release binaries the images run — start-up
//! time, memory, and latency and throughput under load — written as JSON and optionally
//! compared with an earlier result.
//!
//! The load is closed-loop: `--concurrency` clients each send the next request when the last
//! one is answered, for `--duration` seconds per scenario. The load generator shares this
//! machine's cores with the servers, so compare results from the same machine only.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;
use xshell::Shell;

use crate::{
    build_images,
    processes::{Logs, ServiceProcess, stop_all},
    progress::{human, step},
};

/// Arguments of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct Bench {
    /// Seconds each load scenario runs.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent clients in each scenario.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Where to write the results.
    #[arg(long, default_value = "target/bench/latest.json")]
    pub json: PathBuf,
    /// An earlier result: fail when any scenario's p99 is more than 20% worse than there.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

/// Everything one run measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct BenchReport {
    /// Milliseconds from process start to the first 200 from /health.
    pub startup_ms: BTreeMap<String, f64>,
    /// Resident memory right after start-up, in MiB.
    pub idle_rss_mib: BTreeMap<String, f64>,
    /// Resident memory after all the load, in MiB.
    pub loaded_rss_mib: BTreeMap<String, f64>,
    /// One entry per load scenario.
    pub scenarios: Vec<Scenario>,
}

/// The outcome of one load scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// What was requested.
    pub name: String,
    /// Requests answered as expected.
    pub ok: u64,
    /// Requests that failed or got an unexpected status.
    pub errors: u64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
}

impl Bench {
    /// Builds, starts both services, measures, stops them, writes the report.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let bin_dir = step("build the release binaries (as in the images)", || {
            build_images::host_release_binaries(sh)
        })?;
        let data = sh.current_dir().join("target/bench/data");
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        std::fs::create_dir_all(&data)?;
        let mut services = Vec::new();
        let outcome = self.measure(&bin_dir, &data, &mut services);
        stop_all(&mut services);
        let report = outcome?;
        print!("{}", render(&report));
        let path = sh.current_dir().join(&self.json);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        eprintln!("    written to {}", path.display());
        if let Some(baseline) = &self.baseline {
            compare(&report, &load(&sh.current_dir().join(baseline))?)?;
        }
        Ok(())
    }

    fn measure(&self, bin_dir: &Path, data: &Path, services: &mut Vec<ServiceProcess>) -> anyhow::Result<BenchReport> {
        let stop = AtomicBool::new(false);
        let timeout = Duration::from_secs(30);
        let secret = "bench-secret-bench-secret-bench-secret-0";
        let mut report = BenchReport {
            startup_ms: BTreeMap::new(),
            idle_rss_mib: BTreeMap::new(),
            loaded_rss_mib: BTreeMap::new(),
            scenarios: Vec::new(),
        };

        let started = Instant::now();
        services.push(ServiceProcess::start(
            "backend",
            &bin_dir.join("backend"),
            &[
                ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                ("DATABASE_URL", format!("sqlite://{}/todo.db", data.display())),
                ("JWT_SECRET", secret.to_owned()),
                ("LOG_FORMAT", "json".to_owned()),
            ],
            Logs::Discarded,
        )?);
        let backend = services[0].wait_ready(timeout, &stop)?;
        report.startup_ms.insert("backend".into(), millis(started.elapsed()));
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
        for service in services.iter() {
            report
                .idle_rss_mib
                .insert(service.name.to_owned(), rss_mib(service.child.id())?);
        }

        let token = step("create a user and 100 tasks", || seed(&backend))?;
        let auth = format!("Bearer {token}");
        let cookie = format!("todo_session={token}");
        let plans = [
            Plan::get("backend GET /health", format!("{backend}/health"), None),
            Plan::get(
                "backend GET /api/v1/tasks (20 of 100)",
                format!("{backend}/api/v1/tasks?limit=20"),
                Some(("authorization", &auth)),
            ),
            Plan::post("backend POST /api/v1/tasks", format!("{backend}/api/v1/tasks"), &auth),
            Plan::get(
                "frontend GET / (task list page)",
                format!("{frontend}/"),
                Some(("cookie", &cookie)),
            ),
        ];
        for plan in plans {
            let scenario = step(&format!("load: {}", plan.name), || {
                Ok(load_test(&plan, self.concurrency, Duration::from_secs(self.duration)))
            })?;
            report.scenarios.push(scenario);
        }
        for service in services.iter() {
            report
                .loaded_rss_mib
                .insert(service.name.to_owned(), rss_mib(service.child.id())?);
        }
        Ok(report)
    }
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

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Registers a user with 100 tasks; returns the token.
fn seed(backend: &str) -> anyhow::Result<String> {
    let agent = agent();
    let mut response = agent
        .post(format!("{backend}/api/v1/auth/register"))
        .send_json(json!({"email": "bench@example.com", "password": "bench-password"}))?;
    let body: serde_json::Value = response.body_mut().read_json()?;
    let token = body["token"].as_str().context("register returned no token")?.to_owned();
    for i in 0..100 {
        let response = agent
            .post(format!("{backend}/api/v1/tasks"))
            .header("authorization", format!("Bearer {token}"))
            .send_json(json!({"title": format!("task {i}"), "tags": ["bench"], "priority": "high"}))?;
        if response.status() != 201 {
            bail!("creating a task answered {}", response.status());
        }
    }
    Ok(token)
}

/// One kind of request, repeated.
struct Plan {
    name: String,
    url: String,
    header: Option<(String, String)>,
    post_json: bool,
}

impl Plan {
    fn get(name: &str, url: String, header: Option<(&str, &str)>) -> Self {
        Self {
            name: name.to_owned(),
            url,
            header: header.map(|(k, v)| (k.to_owned(), v.to_owned())),
            post_json: false,
        }
    }

    fn post(name: &str, url: String, auth: &str) -> Self {
        Self {
            name: name.to_owned(),
            url,
            header: Some(("authorization".to_owned(), auth.to_owned())),
            post_json: true,
        }
    }

    fn send(&self, agent: &ureq::Agent, n: u64) -> bool {
        let result = if self.post_json {
            let mut request = agent.post(&self.url);
            if let Some((k, v)) = &self.header {
                request = request.header(k, v);
            }
            request.send_json(json!({"title": format!("load {n}")}))
        } else {
            let mut request = agent.get(&self.url);
            if let Some((k, v)) = &self.header {
                request = request.header(k, v);
            }
            request.call()
        };
        match result {
            // Read the body so the connection is reused, as a real client would.
            Ok(mut response) => response.body_mut().read_to_vec().is_ok() && response.status().is_success(),
            Err(_) => false,
        }
    }
}

/// Runs `plan` from `concurrency` threads for `duration`; collects every latency.
fn load_test(plan: &Plan, concurrency: usize, duration: Duration) -> Scenario {
    let deadline = Instant::now() + duration;
    let results: Vec<(Vec<Duration>, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let agent = agent();
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        n += 1;
                        if plan.send(&agent, n) {
                            latencies.push(started.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let errors = results.iter().map(|(_, e)| e).sum();
    let mut latencies: Vec<Duration> = results.into_iter().flat_map(|(l, _)| l).collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| millis3(*d))
    };
    Scenario {
        name: plan.name.clone(),
        ok: latencies.len() as u64,
        errors,
        throughput_rps: (latencies.len() as f64 / duration.as_secs_f64()).round(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: latencies.last().map_or(0.0, |d| millis3(*d)),
    }
}

fn millis3(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn render(report: &BenchReport) -> String {
    let mut out = String::from("\n");
    for (name, ms) in &report.startup_ms {
        out.push_str(&format!(
            "{name:<9} /health after {}, memory {:.1} MiB idle, {:.1} MiB after the load\n",
            human(Duration::from_secs_f64(ms / 1000.0)),
            report.idle_rss_mib.get(name).copied().unwrap_or_default(),
            report.loaded_rss_mib.get(name).copied().unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "\n{:<42} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "scenario", "req/s", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    ));
    for s in &report.scenarios {
        out.push_str(&format!(
            "{:<42} {:>8} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
            s.name, s.throughput_rps, s.errors, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
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
        if scenario.errors > 0 {
            regressions.push(format!("{}: {} errors", scenario.name, scenario.errors));
        }
        if let Some(before) = baseline.scenarios.iter().find(|b| b.name == scenario.name)
            && scenario.p99_ms > before.p99_ms * 1.2
        {
            regressions.push(format!(
                "{}: p99 {:.2} ms, was {:.2} ms",
                scenario.name, scenario.p99_ms, before.p99_ms
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

    fn scenario(name: &str, p99_ms: f64, errors: u64) -> Scenario {
        Scenario {
            name: name.into(),
            ok: 100,
            errors,
            throughput_rps: 10.0,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms,
            p999_ms: p99_ms,
            max_ms: p99_ms,
        }
    }

    fn report(scenarios: Vec<Scenario>) -> BenchReport {
        BenchReport {
            startup_ms: BTreeMap::new(),
            idle_rss_mib: BTreeMap::new(),
            loaded_rss_mib: BTreeMap::new(),
            scenarios,
        }
    }

    #[test]
    fn a_p99_more_than_a_fifth_worse_or_any_error_is_a_regression() {
        let baseline = report(vec![scenario("list", 10.0, 0)]);
        assert!(compare(&report(vec![scenario("list", 11.9, 0)]), &baseline).is_ok());
        let err = compare(&report(vec![scenario("list", 12.5, 0)]), &baseline)
            .unwrap_err()
            .to_string();
        assert!(err.contains("list: p99 12.50 ms, was 10.00 ms"), "{err}");
        assert!(
            compare(&report(vec![scenario("list", 5.0, 3)]), &baseline)
                .unwrap_err()
                .to_string()
                .contains("3 errors")
        );
    }

    #[test]
    fn load_tests_measure_real_requests() {
        // Against a closed port every request fails: counted as errors, never as latencies.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let plan = Plan::get("closed", format!("http://127.0.0.1:{port}/"), None);
        let result = load_test(&plan, 2, Duration::from_millis(100));
        assert_eq!(result.ok, 0);
        assert!(result.errors > 0);
    }
}
