//! Who shows the person the authorization URL: the [`Opener`] trait, [`BrowserOpener`]
//! (the `$BROWSER` convention) and [`PrintOpener`].
//!
//! A non-interactive context (a test, CI, a gateway) signs in through the same flow with an
//! opener that is a script: `SWITCHBOARD_BROWSER="my-script %s"` gets the URL, completes
//! the authorization its own way and lets the authorization server redirect to the
//! loopback callback.

use std::process::{Command, Stdio};

/// Shows `url` (an authorization URL: no secret in it, but a one-time `state`) to whoever
/// signs in for `server`. Returns once it is handed over; the flow then waits for the
/// callback.
pub trait Opener: Send + Sync + 'static {
    fn open(&self, server: &str, url: &str) -> Result<(), String>;
}

/// Prints the URL on stderr, for a person to open.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrintOpener;

impl Opener for PrintOpener {
    fn open(&self, server: &str, url: &str) -> Result<(), String> {
        eprintln!("To sign in to {server}, open this URL in a browser:\n  {url}");
        Ok(())
    }
}

/// Runs a browser command: `$SWITCHBOARD_BROWSER`, else `$BROWSER` (each a `:`-separated
/// list of commands, tried in order; `%s` in a command is replaced by the URL, else the
/// URL is its last argument), else the desktop's opener (`xdg-open`, `open` on macOS).
/// The URL is always printed on stderr too, for when no browser shows up.
#[derive(Debug, Clone, Default)]
pub struct BrowserOpener {
    /// Commands from the environment, read when the opener is made.
    commands: Vec<String>,
}

impl BrowserOpener {
    /// The commands of `$SWITCHBOARD_BROWSER`, else `$BROWSER`, else the desktop's.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let list = var("SWITCHBOARD_BROWSER").or_else(|| var("BROWSER"));
        Self::with_commands(list.as_deref().unwrap_or(if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        }))
    }

    /// An opener trying each command of `list` (`:`-separated, as `$BROWSER`).
    pub fn with_commands(list: &str) -> Self {
        BrowserOpener {
            commands: list
                .split(':')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
        }
    }
}

impl Opener for BrowserOpener {
    fn open(&self, server: &str, url: &str) -> Result<(), String> {
        PrintOpener.open(server, url)?;
        for command in &self.commands {
            let argv = command_line(command, url);
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            match Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
            {
                Ok(mut child) => {
                    tracing::debug!(%program, "handed the authorization URL to a browser command");
                    // Reap it whenever it ends; the flow waits for the callback, not for it.
                    std::thread::spawn(move || child.wait());
                    return Ok(());
                }
                Err(e) => tracing::debug!(%program, "browser command did not start: {e}"),
            }
        }
        // Printed above: a person can still open it.
        Ok(())
    }
}

/// `command` split on whitespace, with `%s` replaced by `url` (or `url` appended).
fn command_line(command: &str, url: &str) -> Vec<String> {
    let mut argv: Vec<String> = command.split_whitespace().map(String::from).collect();
    if argv.iter().any(|a| a.contains("%s")) {
        for arg in &mut argv {
            *arg = arg.replace("%s", url);
        }
    } else {
        argv.push(url.to_owned());
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_convention_replaces_or_appends_the_url() {
        assert_eq!(
            command_line("python3 d.py --open %s", "http://a/?x=1"),
            ["python3", "d.py", "--open", "http://a/?x=1"]
        );
        assert_eq!(command_line("firefox", "u"), ["firefox", "u"]);
        let opener = BrowserOpener::with_commands("a b: :c");
        assert_eq!(opener.commands, ["a b", "c"]);
    }
}
