//! The scenarios, one module each; [`run`] dispatches the parsed command line to one.

mod calls;
mod coldstart;
mod fanout;
mod gateway;
mod payload;
mod scale;
mod sessions;

use std::path::PathBuf;

use crate::cli::{Cli, Common, Scenario, Transport};
use crate::server::find_binary;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.scenario {
        Scenario::Calls(args) => calls::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Payload(args) => payload::run(args).await,
        Scenario::Coldstart(args) => coldstart::run(args).await,
        Scenario::Sessions(args) => sessions::run(args).await,
        Scenario::Gateway(args) => gateway::run(args).await,
        Scenario::Scale(args) => scale::run(args).await,
    }
}

/// Rounds must be at least one.
fn check_rounds(rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(rounds >= 1, "--rounds must be at least 1");
    Ok(())
}

/// The `switchboard-testkit` binary: `--testkit`, or the one next to this executable.
fn testkit(common: &Common) -> anyhow::Result<PathBuf> {
    find_binary(
        "switchboard-testkit",
        common.testkit.as_deref(),
        "--testkit",
    )
}

/// The transports asked for, or all of them.
fn transports(asked: &[Transport]) -> Vec<Transport> {
    if asked.is_empty() {
        Transport::ALL.to_vec()
    } else {
        asked.to_vec()
    }
}
