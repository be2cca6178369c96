//! Waiting for an HTTP endpoint to answer 200: the one polling loop behind "wait until the
//! service is ready" for local processes (`service`) and containers (`e2e`). The smoke checks
//! wait through their own client (`smoke::client`), which keeps the session and reports the last
//! reply as a step failure.

use std::time::{Duration, Instant};

use anyhow::bail;

/// How to poll.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    /// Give up after this instant.
    pub deadline: Instant,
    /// Pause between attempts.
    pub interval: Duration,
    /// Limit of one attempt.
    pub attempt_timeout: Duration,
}

/// Calls `url` until it answers 200. Between attempts `still_waiting` may end the wait early
/// with its own error (the process exited, Ctrl-C). Past the deadline the error names the URL and
/// the last answer.
pub fn wait_for_ok(url: &str, poll: Poll, mut still_waiting: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(poll.attempt_timeout))
        .build()
        .into();
    loop {
        let last = match agent.get(url).call() {
            Ok(response) if response.status() == 200 => return Ok(()),
            Ok(response) => format!("HTTP {}", response.status().as_u16()),
            Err(error) => error.to_string(),
        };
        still_waiting()?;
        if Instant::now() >= poll.deadline {
            bail!("{url} did not answer 200 in time (last: {last})");
        }
        std::thread::sleep(poll.interval);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::TcpListener,
    };

    use super::*;

    /// A server answering `statuses` in turn, one connection each.
    fn server(statuses: &'static [u16]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ready", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for status in statuses {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buffer = [0; 1024];
                let _ = stream.read(&mut buffer);
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                stream.write_all(reply.as_bytes()).unwrap();
            }
        });
        url
    }

    fn poll(seconds: u64) -> Poll {
        Poll {
            deadline: Instant::now() + Duration::from_secs(seconds),
            interval: Duration::from_millis(5),
            attempt_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn waits_through_failures_until_200() {
        let url = server(&[503, 503, 200]);
        let mut checks = 0;
        wait_for_ok(&url, poll(10), || {
            checks += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(checks, 2, "checked between the two failed attempts");
    }

    #[test]
    fn the_caller_can_end_the_wait_and_the_deadline_names_the_last_answer() {
        let url = server(&[503, 503, 503, 503, 503, 503, 503, 503]);
        let err = wait_for_ok(&url, poll(10), || bail!("the backend exited")).unwrap_err();
        assert_eq!(err.to_string(), "the backend exited");
        let err = wait_for_ok(&url, poll(0), || Ok(())).unwrap_err();
        assert!(
            err.to_string().contains("did not answer 200 in time (last: HTTP 503)"),
            "{err}"
        );
    }
}
