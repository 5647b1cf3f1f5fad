//! The scenarios, one module each; [`run`] dispatches the parsed command line to one.

mod calls;
mod coldstart;
mod fanout;
mod payload;
mod sessions;

use crate::cli::{Cli, Scenario};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.scenario {
        Scenario::Calls(args) => calls::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Payload(args) => payload::run(args).await,
        Scenario::Coldstart(args) => coldstart::run(args).await,
        Scenario::Sessions(args) => sessions::run(args).await,
    }
}

/// Rounds must be at least one.
fn check_rounds(rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(rounds >= 1, "--rounds must be at least 1");
    Ok(())
}
