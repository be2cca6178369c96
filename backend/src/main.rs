//! The `backend` binary: serve the Todo API, or probe one with `backend healthcheck`.

use std::process::ExitCode;

use backend::config::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck(args)) => backend::healthcheck::run(&args),
        None => serve(cli.config),
    }
}

fn serve(config: backend::config::Config) -> ExitCode {
    backend::telemetry::init(&config.log_filter, config.log_format);
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
