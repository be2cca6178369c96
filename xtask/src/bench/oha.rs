//! The load generator: [oha](https://github.com/hatoo/oha), run as a program, and its JSON report
//! (`--output-format json`) read back.
//!
//! Closed-loop rows keep `--connections` requests in flight for a fixed time (throughput).
//! Open-loop rows send at a fixed arrival rate (`-q`) and, with `--latency-correction`, time each
//! request from the moment it was due, not from when a free connection sent it: a slow answer
//! cannot hide the requests queued behind it (no coordinated omission).

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::tools::Tool;

/// The generator, with the command that installs the version the parser was written against.
pub const OHA: Tool = Tool {
    program: "oha",
    purpose: "generates the benchmark's load (closed-loop, and fixed-rate open-loop without coordinated omission)",
    install: "cargo install --locked oha@1.16.0",
};

/// How a row sends its requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// This many connections, each sending its next request when the last is answered.
    Closed { connections: usize },
    /// A fixed arrival rate (requests per second), latency counted from each request's due time.
    Open { rate: f64, connections: usize },
}

/// One kind of request, repeated.
#[derive(Debug, Clone)]
pub struct Load {
    /// The URL requested.
    pub url: String,
    /// `POST` with this JSON body, or `GET` when `None`.
    pub post_json: Option<String>,
    /// Extra headers (`name: value`).
    pub headers: Vec<String>,
    /// How requests are paced.
    pub pace: Pace,
    /// How long it runs.
    pub duration: Duration,
    /// The status every answer should have.
    pub expect_status: u16,
}

impl Load {
    /// oha's arguments for this load (the URL last).
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--no-tui".into(),
            "--output-format".into(),
            "json".into(),
            "-z".into(),
            format!("{}ms", self.duration.as_millis()),
            // Requests still in flight at the end are awaited and counted, not reported as errors.
            "--wait-ongoing-requests-after-deadline".into(),
        ];
        match self.pace {
            Pace::Closed { connections } => args.extend(["-c".into(), connections.to_string()]),
            Pace::Open { rate, connections } => args.extend([
                "-c".into(),
                connections.to_string(),
                "-q".into(),
                rate.to_string(),
                "--latency-correction".into(),
            ]),
        }
        if let Some(body) = &self.post_json {
            args.extend([
                "-m".into(),
                "POST".into(),
                "-T".into(),
                "application/json".into(),
                "-d".into(),
                body.clone(),
            ]);
        }
        for header in &self.headers {
            args.extend(["-H".into(), header.clone()]);
        }
        args.push(self.url.clone());
        args
    }

    /// Runs oha (its own `Shell`, so several loads can run at once from threads) and reads its report.
    pub fn run(&self, oha: &Path) -> anyhow::Result<Outcome> {
        let sh = Shell::new()?;
        let args = self.args();
        // Quiet: the arguments carry a bearer token; what ran is described by the caller instead.
        let output = cmd!(sh, "{oha} {args...}")
            .quiet()
            .ignore_status()
            .output()
            .context("running oha")?;
        if !output.status.success() {
            bail!(
                "oha failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let text = String::from_utf8(output.stdout).context("oha printed something that is not UTF-8")?;
        parse(&text, self.expect_status)
    }
}

/// What one load measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Answers with the expected status.
    pub ok: u64,
    /// Other answers, and requests that got no answer.
    pub errors: u64,
    /// Expected answers per second over the whole run.
    pub throughput_rps: f64,
    /// Seconds the load ran (absent from reports written before it was recorded).
    #[serde(default)]
    pub seconds: f64,
    /// Latency percentiles, milliseconds: p50, p90, p99, p99.9.
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

/// The parts of oha's JSON report that are read (see `schema.json` in oha's repository).
#[derive(Debug, Deserialize)]
struct Report {
    summary: Summary,
    #[serde(rename = "latencyPercentiles")]
    latency_percentiles: BTreeMap<String, Option<f64>>,
    #[serde(rename = "statusCodeDistribution")]
    status_code_distribution: BTreeMap<String, u64>,
    #[serde(rename = "errorDistribution")]
    error_distribution: BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
struct Summary {
    /// Seconds the run took.
    total: f64,
    /// Slowest request, seconds (null when nothing was answered).
    slowest: Option<f64>,
}

/// Reads oha's JSON report: expected answers count as `ok`, any other status or failed request as
/// an error; times become milliseconds.
pub fn parse(json: &str, expect_status: u16) -> anyhow::Result<Outcome> {
    let report: Report = serde_json::from_str(json).context("oha's JSON report has an unexpected shape")?;
    let mut ok = 0;
    let mut errors: u64 = report.error_distribution.values().sum();
    for (status, count) in &report.status_code_distribution {
        if status.parse::<u16>().ok() == Some(expect_status) {
            ok += count;
        } else {
            errors += count;
        }
    }
    let percentile = |key: &str| -> anyhow::Result<f64> {
        match report.latency_percentiles.get(key) {
            Some(seconds) => Ok(ms(seconds.unwrap_or(0.0))),
            None => bail!("oha's report has no {key} latency"),
        }
    };
    if report.summary.total <= 0.0 {
        bail!("oha's report says the run took no time");
    }
    Ok(Outcome {
        ok,
        errors,
        throughput_rps: (ok as f64 / report.summary.total).round(),
        seconds: report.summary.total,
        p50_ms: percentile("p50")?,
        p90_ms: percentile("p90")?,
        p99_ms: percentile("p99")?,
        p999_ms: percentile("p99.9")?,
        max_ms: ms(report.summary.slowest.unwrap_or(0.0)),
    })
}

impl Outcome {
    /// Several runs of one load read as one: answers, errors and time added up, the throughput over
    /// the whole time, and each percentile the highest of the runs' — an upper bound of the whole's
    /// (at most 1% of each run's requests took longer than its p99, so at most 1% of all took
    /// longer than the highest p99), since oha's report keeps no per-request times to merge.
    pub fn combine(runs: &[Outcome]) -> anyhow::Result<Outcome> {
        let highest = |field: fn(&Outcome) -> f64| runs.iter().map(field).fold(0.0, f64::max);
        let ok = runs.iter().map(|r| r.ok).sum();
        let seconds: f64 = runs.iter().map(|r| r.seconds).sum();
        if seconds <= 0.0 {
            bail!("no run to combine, or runs that took no time");
        }
        Ok(Outcome {
            ok,
            errors: runs.iter().map(|r| r.errors).sum(),
            throughput_rps: (ok as f64 / seconds).round(),
            seconds,
            p50_ms: highest(|r| r.p50_ms),
            p90_ms: highest(|r| r.p90_ms),
            p99_ms: highest(|r| r.p99_ms),
            p999_ms: highest(|r| r.p999_ms),
            max_ms: highest(|r| r.max_ms),
        })
    }
}

/// Seconds to milliseconds, three decimals.
fn ms(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1000.0
}

/// oha's version line (`oha 1.16.0`), recorded with the results.
pub fn version(oha: &Path) -> anyhow::Result<String> {
    let sh = Shell::new()?;
    Ok(cmd!(sh, "{oha} --version").quiet().read()?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the real oha 1.16.0 against the release backend; see tests/fixtures/oha/README.md.
    const CLOSED_GET: &str = include_str!("../../tests/fixtures/oha/closed-get-tasks.json");
    const OPEN_POST: &str = include_str!("../../tests/fixtures/oha/open-post-tasks.json");
    const REFUSED: &str = include_str!("../../tests/fixtures/oha/connection-refused.json");
    const WRONG_STATUS: &str = include_str!("../../tests/fixtures/oha/closed-get-unauthorized.json");

    #[test]
    fn a_closed_loop_report_gives_throughput_and_percentiles() {
        let outcome = parse(CLOSED_GET, 200).unwrap();
        assert!(outcome.ok > 0 && outcome.errors == 0, "{outcome:?}");
        assert!(outcome.throughput_rps > 0.0);
        assert!(
            0.0 < outcome.p50_ms
                && outcome.p50_ms <= outcome.p90_ms
                && outcome.p90_ms <= outcome.p99_ms
                && outcome.p99_ms <= outcome.p999_ms
                && outcome.p999_ms <= outcome.max_ms,
            "{outcome:?}"
        );
    }

    #[test]
    fn an_open_loop_report_counts_201s_as_ok() {
        let outcome = parse(OPEN_POST, 201).unwrap();
        assert!(outcome.ok > 0 && outcome.errors == 0, "{outcome:?}");
        // The same report read as if 200 were expected: every answer is an error.
        let strict = parse(OPEN_POST, 200).unwrap();
        assert_eq!((strict.ok, strict.errors), (0, outcome.ok));
    }

    #[test]
    fn unexpected_statuses_and_failed_connections_are_errors() {
        let unauthorized = parse(WRONG_STATUS, 200).unwrap();
        assert_eq!(unauthorized.ok, 0);
        assert!(unauthorized.errors > 0);
        assert_eq!(unauthorized.throughput_rps, 0.0);

        let refused = parse(REFUSED, 200).unwrap();
        assert_eq!(refused.ok, 0);
        assert!(refused.errors > 0, "{refused:?}");
    }

    #[test]
    fn runs_combine_into_one_with_the_throughput_of_the_whole_time_and_the_highest_percentiles() {
        let first = parse(CLOSED_GET, 200).unwrap();
        assert!((first.seconds - 2.003586783).abs() < 1e-9, "{first:?}");
        let second = Outcome {
            ok: 1000,
            errors: 2,
            throughput_rps: 500.0,
            seconds: 2.0,
            p50_ms: 9.0,
            p90_ms: 0.1,
            p99_ms: 0.2,
            p999_ms: 99.0,
            max_ms: 100.0,
        };
        let both = Outcome::combine(&[first.clone(), second]).unwrap();
        assert_eq!((both.ok, both.errors), (first.ok + 1000, 2));
        assert!((both.seconds - (first.seconds + 2.0)).abs() < 1e-9);
        // 4,293 answers in 4.0036 s: not the mean of the two runs' rates (1,644 and 500 req/s).
        assert_eq!(both.throughput_rps, ((first.ok + 1000) as f64 / both.seconds).round());
        assert_eq!(both.throughput_rps, 1072.0);
        assert_eq!(
            (both.p50_ms, both.p90_ms, both.p99_ms, both.p999_ms, both.max_ms),
            (9.0, first.p90_ms, first.p99_ms, 99.0, 100.0)
        );
        assert_eq!(Outcome::combine(std::slice::from_ref(&first)).unwrap(), first);
        assert!(Outcome::combine(&[]).is_err());
    }

    #[test]
    fn a_report_of_another_shape_is_an_error() {
        let err = parse(r#"{"summary": {}}"#, 200).unwrap_err();
        assert!(format!("{err:#}").contains("unexpected shape"), "{err:#}");
    }

    #[test]
    fn arguments_select_the_pace_and_the_method() {
        let load = Load {
            url: "http://127.0.0.1:1/api/v1/tasks".into(),
            post_json: Some(r#"{"title":"x"}"#.into()),
            headers: vec!["authorization: Bearer t".into()],
            pace: Pace::Open {
                rate: 400.0,
                connections: 16,
            },
            duration: Duration::from_secs(30),
            expect_status: 201,
        };
        let args = load.args().join(" ");
        assert_eq!(
            args,
            "--no-tui --output-format json -z 30000ms --wait-ongoing-requests-after-deadline \
             -c 16 -q 400 --latency-correction -m POST -T application/json -d {\"title\":\"x\"} \
             -H authorization: Bearer t http://127.0.0.1:1/api/v1/tasks"
        );
        let closed = Load {
            pace: Pace::Closed { connections: 8 },
            post_json: None,
            headers: Vec::new(),
            ..load
        };
        assert!(
            closed
                .args()
                .join(" ")
                .ends_with("-c 8 http://127.0.0.1:1/api/v1/tasks")
        );
        assert!(!closed.args().contains(&"-q".to_owned()));
    }
}
