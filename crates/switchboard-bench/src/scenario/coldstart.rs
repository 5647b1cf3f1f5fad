//! `coldstart`: how long a user waits for `switchboard tools --config F` against a few stdio
//! testkit servers: process start, config load, spawning and initializing every server,
//! listing tools, printing, and shutting the servers down. One warm-up run, then `--rounds`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;
use tokio::time::Instant;

use crate::cli::ColdstartArgs;
use crate::measure::median;
use crate::report::{Report, Row, note};
use crate::server::find_binary;

/// Longest one `switchboard tools` run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

pub async fn run(args: ColdstartArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    let testkit = super::testkit(&args.common)?;
    let switchboard = find_binary("switchboard", args.switchboard.as_deref(), "--switchboard")?;
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let config = dir.path().join("switchboard.toml");
    let mut toml = String::new();
    for i in 0..args.servers {
        toml.push_str(&format!(
            "[servers.s{i}]\ncommand = {}\nargs = [\"--transport\", \"stdio\"]\n\n",
            toml_string(&testkit.display().to_string())
        ));
    }
    std::fs::write(&config, toml).context("cannot write the temp config")?;

    let mut report = Report::new(args.common.json);
    let mut walls = Vec::new();
    for round in 0..=args.common.rounds {
        let started = Instant::now();
        let mut child = Command::new(&switchboard)
            .arg("tools")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", switchboard.display()))?;
        let output = tokio::time::timeout(RUN_LIMIT, async {
            let stdout = child.stdout.take();
            let mut out = Vec::new();
            if let Some(mut stdout) = stdout {
                tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out).await?;
            }
            let status = child.wait().await?;
            anyhow::Ok((status, out))
        })
        .await
        .context("switchboard tools did not finish within 60 s")??;
        let wall = started.elapsed();
        let (status, stdout) = output;
        anyhow::ensure!(
            status.success(),
            "switchboard tools failed ({status}); output: {}",
            String::from_utf8_lossy(&stdout)
        );
        let listed = String::from_utf8_lossy(&stdout)
            .lines()
            .filter(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|name| name.ends_with("__echo"))
            })
            .count();
        anyhow::ensure!(
            listed == args.servers,
            "expected {} echo tools in the output, saw {listed}",
            args.servers
        );
        if round == 0 {
            note(format!(
                "  coldstart warm-up: {:.0} ms",
                wall.as_secs_f64() * 1e3
            ));
        } else {
            note(format!(
                "  coldstart round {round}: {:.0} ms",
                wall.as_secs_f64() * 1e3
            ));
            walls.push(wall.as_secs_f64() * 1e3);
        }
    }
    let min = walls.iter().copied().fold(f64::INFINITY, f64::min);
    let max = walls.iter().copied().fold(0.0, f64::max);
    report.push(
        Row::new("coldstart")
            .with("servers", args.servers)
            .with("rounds", walls.len())
            .num("wall_ms", median(walls), 1)
            .num("min_ms", min, 1)
            .num("max_ms", max, 1),
    );
    report.finish();
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
