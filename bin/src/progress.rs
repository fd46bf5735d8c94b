//! How a long command (`projections rebuild`, `verify`) says how it goes, on stderr: on a
//! terminal, one line rewritten in place a few times a second; otherwise (a log, a pipe) a
//! plain line every few seconds. Either way: events done of the total, the rate, the time left.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a line is written: often on a terminal, rarely into a log.
const ON_A_TERMINAL: Duration = Duration::from_millis(200);
const INTO_A_LOG: Duration = Duration::from_secs(5);

pub struct Reporter {
    what: String,
    started: Instant,
    terminal: bool,
    /// When the last line was written, and whether one is on the terminal's line now.
    last: Mutex<(Instant, bool)>,
}

impl Reporter {
    /// A reporter of `what` (`rebuilding sessions`), starting now.
    pub fn new(what: impl Into<String>) -> Self {
        let now = Instant::now();
        Self {
            what: what.into(),
            started: now,
            terminal: std::io::stderr().is_terminal(),
            last: Mutex::new((now, false)),
        }
    }

    /// `done` events of `total`: written when it is time for a line.
    pub fn report(&self, done: u64, total: u64) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let every = if self.terminal {
            ON_A_TERMINAL
        } else {
            INTO_A_LOG
        };
        if last.0.elapsed() < every {
            return;
        }
        let line = line(&self.what, done, total, self.started.elapsed());
        let mut stderr = std::io::stderr().lock();
        // Progress is a courtesy: a closed stderr must not fail the command.
        let _ = if self.terminal {
            write!(stderr, "\r\x1b[2K{line}")
        } else {
            writeln!(stderr, "{line}")
        };
        *last = (Instant::now(), self.terminal);
    }

    /// Ends the line on a terminal, so that what the command prints next starts afresh.
    pub fn finish(&self) {
        if let Ok(last) = self.last.lock() {
            if last.1 {
                let _ = writeln!(std::io::stderr());
            }
        }
    }
}

/// `what: done/total events (p %), rate/s, about t left`.
#[allow(clippy::cast_precision_loss)] // event counts, far below 2^52
fn line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let left = if rate > 0.0 {
        format!(
            ", about {} s left",
            (total.saturating_sub(done) as f64 / rate).ceil()
        )
    } else {
        String::new()
    };
    format!("{what}: {done}/{total} events ({percent:.0} %), {rate:.0}/s{left}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_what_how_far_how_fast_and_how_long_still() {
        let written = line(
            "rebuilding sessions",
            250_000,
            1_000_000,
            Duration::from_secs(5),
        );
        assert_eq!(
            written,
            "rebuilding sessions: 250000/1000000 events (25 %), 50000/s, about 15 s left"
        );
        assert!(line("verifying", 0, 0, Duration::ZERO).contains("(100 %)"));
    }
}
