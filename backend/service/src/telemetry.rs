//! Logging: `tracing` to stderr, as text or JSON lines, filtered by `RUST_LOG`, written in
//! batches (see [`batched`]).

mod batched;
mod json_lines;

use batched::Batched;
pub use batched::LogGuard;

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::{EnvFilter, fmt::format::JsonFields};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. An invalid filter falls back to `info` with a warning, so a
/// typo in `RUST_LOG` never stops the service. Lines are written in batches: keep the guard until
/// the process ends (it writes what is left), and a panic writes them before its message.
pub fn init(filter: &str, format: LogFormat) -> LogGuard {
    let batched = Batched::stderr();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        batched.flush();
        previous(info);
    }));
    let (env_filter, bad_filter) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(batched)
        .with_ansi(std::io::stderr().is_terminal());
    // `try_init` fails only when a subscriber is already installed (tests start several servers).
    let _ = match format {
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(json_lines::JsonLines)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Some(err) = bad_filter {
        tracing::warn!("RUST_LOG={filter:?} is not a valid filter ({err}); logging at info");
    }
    LogGuard(batched)
}
