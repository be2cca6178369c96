//! Human progress on stderr: `==> step`, then how long it took or why it failed.

use std::time::{Duration, Instant};

/// Runs one named step, printing its title first and its duration (or failure) after.
pub fn step<T>(title: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    eprintln!("==> {title}");
    let started = Instant::now();
    let result = work();
    match &result {
        Ok(_) => eprintln!("    {title}: ok ({})", human(started.elapsed())),
        Err(_) => eprintln!("    {title}: FAILED after {}", human(started.elapsed())),
    }
    result.map_err(|err| err.context(format!("step `{title}` failed")))
}

/// A duration the way people read it: `850ms`, `4.2s`, `3m05s`.
pub fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(4210)), "4.2s");
        assert_eq!(human(Duration::from_secs(185)), "3m05s");
    }

    #[test]
    fn failed_steps_name_themselves() {
        let err = step("compile", || -> anyhow::Result<()> { anyhow::bail!("boom") }).unwrap_err();
        assert_eq!(format!("{err:#}"), "step `compile` failed: boom");
    }
}
