//! The `backend` binary: serve the Todo API, or probe one with `backend healthcheck`.

use std::process::ExitCode;

use backend::config::{Cli, Command};
use clap::Parser;

/// mimalloc rather than glibc's malloc: a list request allocates and frees some hundred small
/// blocks (rows, strings, JSON), and glibc's allocator took about a fifth of its instructions
/// (callgrind); with mimalloc the release backend served 45% more list requests per second
/// (`cargo xtask bench`). Built without transparent huge pages (`no_thp`, see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v3, the version libmimalloc-sys 0.1.49 builds by
/// default): the sixteenth option of `mi_option_e`. The test below checks it does what it says.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck(args)) => todo_service::healthcheck::run(&args),
        None => serve(cli.config),
    }
}

fn serve(config: backend::config::Config) -> ExitCode {
    return_freed_memory_at_once();
    // Dropped last, at the end of this function: writes the log lines still buffered.
    let _logs = todo_service::telemetry::init(&config.log_filter, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(backend::startup::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("backend stopped with an error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Freed memory goes back to the system at once instead of after mimalloc's default delay:
/// argon2 takes 19 MiB per hash, and a pod that served a few logins should not keep it.
fn return_freed_memory_at_once() {
    // SAFETY: mi_option_set only stores an option's value; any value is valid for this option.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident memory of this process, KiB.
    fn rss_kib() -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn freed_memory_goes_back_to_the_system_at_once() {
        return_freed_memory_at_once();
        let before = rss_kib();
        let block = std::hint::black_box(vec![1_u8; 48 << 20]);
        let holding = rss_kib();
        assert!(
            holding - before > 40 << 10,
            "the block was not resident: {before} -> {holding} KiB"
        );
        drop(block);
        let after = rss_kib();
        assert!(
            after - before < 8 << 10,
            "48 MiB freed, but RSS went {before} -> {holding} -> {after} KiB"
        );
    }
}
