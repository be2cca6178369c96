//! Running other programs, one way per intent: [`runner`] for commands that change something
//! (printed instead under `--dry-run`), [`probe`] for read-only questions with a deadline,
//! [`background`] for a program that runs alongside (port-forwards, log streams, Helm's wait),
//! [`interrupt`] for Ctrl-C while one must not be cut off, [`service`] for the app's own
//! binaries started locally, and [`http`] to wait until an endpoint answers 200.

pub mod background;
pub mod http;
pub mod interrupt;
pub mod probe;
pub mod runner;
pub mod service;
