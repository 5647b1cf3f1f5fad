//! Live progress while servers connect, on stderr: one spinner line per server, redrawn in
//! place on a terminal. [`Style::Kept`] (`check`) leaves the last drawing in place and, when
//! stderr is piped or a file, prints one plain line per event; [`Style::Transient`] (`tools`,
//! `call`) erases it when done and prints nothing when piped, as their output is what
//! scripts read. A row says how a server ended (ready with its tool count, failed with its
//! error class, disabled) but not the error itself: the command's own report says that once.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchboard::CallProgress;
use switchboard::hub::Progress;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(100);

/// Shows [`Progress`] events; call [`Board::done`] before printing anything else.
pub struct Board {
    live: Option<Live>,
    style: Style,
}

/// Whether the progress stays on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The last drawing stays; piped, one plain line per event.
    Kept,
    /// Erased when done; piped, nothing.
    Transient,
}

struct Live {
    rows: Arc<Mutex<Rows>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Rows {
    rows: Vec<Row>,
    /// Lines drawn last time (to move the cursor back over them).
    drawn: usize,
    frame: usize,
}

struct Row {
    server: String,
    started: Instant,
    /// `None` while connecting; then the final text.
    done: Option<String>,
}

impl Board {
    /// Spinners when stderr is a terminal; otherwise what `style` says.
    pub fn new(style: Style) -> Board {
        if !std::io::stderr().is_terminal() {
            return Board { live: None, style };
        }
        let rows = Arc::new(Mutex::new(Rows::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (rows, stop) = (rows.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(TICK);
                    let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
                    rows.frame += 1;
                    rows.draw();
                }
            })
        };
        Board {
            live: Some(Live {
                rows,
                stop,
                ticker: Some(ticker),
            }),
            style,
        }
    }

    pub fn show(&self, event: Progress<'_>) {
        let (server, done) = match event {
            Progress::Connecting { server } => (server, None),
            Progress::Ready {
                server,
                tools,
                elapsed,
            } => (
                server,
                Some(format!("ready ({tools} tools, {})", ms(elapsed))),
            ),
            Progress::Failed {
                server,
                error,
                elapsed,
            } => (
                server,
                Some(format!("failed ({}, {})", error.class(), ms(elapsed))),
            ),
            Progress::Disabled { server } => (server, Some("disabled".to_string())),
            Progress::Discovering { source } => (source, None),
            Progress::Discovered {
                source,
                servers,
                elapsed,
            } => (
                source,
                Some(format!("discovered {servers} servers ({})", ms(elapsed))),
            ),
            Progress::DiscoveryFailed {
                source,
                error,
                elapsed,
            } => (
                source,
                Some(format!(
                    "discovery failed ({}, {})",
                    error.class(),
                    ms(elapsed)
                )),
            ),
        };
        let Some(live) = &self.live else {
            if self.style == Style::Kept {
                eprintln!("{server}: {}", done.as_deref().unwrap_or("connecting"));
            }
            return;
        };
        let mut rows = live.rows.lock().unwrap_or_else(|e| e.into_inner());
        match rows.rows.iter_mut().find(|r| r.server == server) {
            Some(row) => row.done = done,
            None => rows.rows.push(Row {
                server: server.to_string(),
                started: Instant::now(),
                done,
            }),
        }
        rows.draw();
    }

    /// Stops the spinners, leaving the last drawing in place ([`Style::Kept`]) or erasing
    /// it ([`Style::Transient`]).
    pub fn done(mut self) {
        let Some(live) = &mut self.live else { return };
        live.stop.store(true, Ordering::Release);
        if let Some(ticker) = live.ticker.take() {
            let _ = ticker.join();
        }
        if self.style == Style::Transient {
            live.rows.lock().unwrap_or_else(|e| e.into_inner()).erase();
        }
    }
}

/// A call's progress as one line on stderr, redrawn in place with each notification and
/// erased when the call ends; nothing unless stderr is a terminal.
pub struct CallLine {
    tool: String,
    live: bool,
    state: Mutex<LineState>,
}

#[derive(Default)]
struct LineState {
    drawn: bool,
    /// A question is on screen: progress waits.
    paused: bool,
}

impl CallLine {
    pub fn new(tool: &str) -> CallLine {
        CallLine {
            tool: tool.to_owned(),
            live: std::io::stderr().is_terminal(),
            state: Mutex::default(),
        }
    }

    /// Draws `progress` over the last drawing.
    pub fn show(&self, progress: &CallProgress) {
        if !self.live {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.paused {
            return;
        }
        let text = format!("{}: {}", self.tool, describe(progress));
        write_stderr(&format!("\r\x1b[2K{}", clip(&text)));
        state.drawn = true;
    }

    /// Erases the line (when the call ends).
    pub fn clear(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::take(&mut state.drawn) {
            write_stderr("\r\x1b[2K");
        }
    }

    /// Erases the line and draws nothing until [`CallLine::resume`]: a question is asked.
    pub fn pause(&self) {
        self.clear();
        self.state.lock().unwrap_or_else(|e| e.into_inner()).paused = true;
    }

    pub fn resume(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).paused = false;
    }
}

/// `3/10 (30%) copying files`, `3 copying files` without a total.
fn describe(progress: &CallProgress) -> String {
    let mut text = match progress.total {
        Some(total) if total > 0.0 => format!(
            "{}/{} ({:.0}%)",
            progress.progress,
            total,
            100.0 * progress.progress / total
        ),
        _ => progress.progress.to_string(),
    };
    if let Some(message) = &progress.message {
        let message: String = message.chars().filter(|c| !c.is_control()).collect();
        text.push(' ');
        text.push_str(&message);
    }
    text
}

impl Rows {
    fn draw(&mut self) {
        let width = self.rows.iter().map(|r| r.server.len()).max().unwrap_or(0);
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let frame = FRAMES[self.frame % FRAMES.len()];
        for row in &self.rows {
            let status = match &row.done {
                Some(text) => format!("  {}", clip(text)),
                None => format!("{frame} connecting… {}", ms(row.started.elapsed())),
            };
            out.push_str(&format!("\r\x1b[2K{:<width$}  {status}\n", row.server));
        }
        self.drawn = self.rows.len();
        write_stderr(&out);
    }

    /// Moves back over the drawn lines and clears them.
    fn erase(&mut self) {
        if self.drawn > 0 {
            write_stderr(&format!("\x1b[{}A\r\x1b[J", self.drawn));
            self.drawn = 0;
        }
    }
}

fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// A line that wraps would break the redraw (it moves up one line per row): long texts are
/// cut here; the table printed afterwards has them whole.
fn clip(text: &str) -> String {
    const MAX: usize = 90;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

fn ms(elapsed: Duration) -> String {
    format!("{} ms", elapsed.as_millis())
}
