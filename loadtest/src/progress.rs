//! A status line while a run is going: rewritten in place on stderr every second when stderr
//! is a terminal, else one log line every five seconds.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters the generator bumps and the reporter reads.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub errors: AtomicU64,
    terminal: bool,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Progress {
        Progress {
            label: label.to_owned(),
            total,
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, elapsed: Duration) -> String {
        let sent = self.sent.load(Ordering::Relaxed);
        let accepted = self.accepted.load(Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed);
        let answered = accepted + errors;
        format!(
            "{}: {:>5.1} s  sent {sent}/{}  accepted {accepted}  errors {errors}  in flight {}",
            self.label,
            elapsed.as_secs_f64(),
            self.total,
            sent.saturating_sub(answered),
        )
    }

    /// Prints the status until the returned task is aborted.
    pub fn spawn_reporter(self: Arc<Self>, start: Instant) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = if self.terminal {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(5)
            };
            let mut ticker = tokio::time::interval_at((start + every).into(), every);
            loop {
                ticker.tick().await;
                let line = self.line(start.elapsed());
                let mut stderr = std::io::stderr().lock();
                if self.terminal {
                    let _ = write!(stderr, "\r{line}\x1b[K");
                    let _ = stderr.flush();
                } else {
                    let _ = writeln!(stderr, "{line}");
                }
            }
        })
    }

    /// Clears the status line.
    pub fn finish(&self) {
        if self.terminal {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_what_is_in_flight() {
        let progress = Progress::new("ingest", 100);
        progress.sent.store(10, Ordering::Relaxed);
        progress.accepted.store(7, Ordering::Relaxed);
        progress.errors.store(1, Ordering::Relaxed);
        let line = progress.line(Duration::from_millis(2500));
        assert!(
            line.starts_with("ingest:   2.5 s  sent 10/100  accepted 7  errors 1  in flight 2"),
            "{line}"
        );
    }
}
