//! The `switchboard-testkit` binary: a thin wrapper over [`switchboard_testkit::cli`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    switchboard_testkit::cli::main().await
}
