//! `switchboard-bench`: measures Switchboard's engine against a bare rmcp client on loopback,
//! with `switchboard-testkit` as the server in its own process. This file only turns the
//! command line into a scenario run; the work is in the modules below.

mod cli;
mod client;
mod cluster;
mod load;
mod measure;
mod raw;
mod report;
mod scenario;
mod server;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenario::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
