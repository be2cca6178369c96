//! The `backend` binary: serve the Todo API, or probe one with `backend healthcheck`.

use std::process::ExitCode;

use backend::config::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck(args)) => todo_service::healthcheck::run(&args),
        None => serve(cli.config),
    }
}

fn serve(config: backend::config::Config) -> ExitCode {
    return_large_allocations_to_the_os();
    todo_service::telemetry::init(&config.log_filter, config.log_format);
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

/// glibc raises its mmap threshold each time a large block is freed, after which blocks of that
/// size (argon2 takes 19 MiB per hash) stay in the heap for good: a pod that served a few logins
/// would keep tens of MiB it no longer uses. A fixed threshold returns them to the system.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called once, before any other thread
    // exists, and M_MMAP_THRESHOLD with a positive value is always valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
