//! Live progress while servers connect, on stderr: one spinner line per server, redrawn in
//! place on a terminal; one plain line per event when stderr is piped or a file.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchboard::hub::Progress;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(100);

/// Shows [`Progress`] events; call [`Board::finish`] before printing anything else.
pub struct Board {
    live: Option<Live>,
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
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Board {
        if !std::io::stderr().is_terminal() {
            return Board { live: None };
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
                Some(format!(
                    "failed ({}, {}): {error}",
                    error.class(),
                    ms(elapsed)
                )),
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
                    "discovery failed ({}, {}): {error}",
                    error.class(),
                    ms(elapsed)
                )),
            ),
        };
        let Some(live) = &self.live else {
            eprintln!("{server}: {}", done.as_deref().unwrap_or("connecting"));
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

    /// Stops the spinners, leaving the last drawing in place.
    pub fn finish(mut self) {
        if let Some(live) = &mut self.live {
            live.stop.store(true, Ordering::Release);
            if let Some(ticker) = live.ticker.take() {
                let _ = ticker.join();
            }
        }
    }
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
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(out.as_bytes());
        let _ = stderr.flush();
    }
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
