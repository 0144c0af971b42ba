//! Log lines written to stderr by a thread of their own.
//!
//! The dispatcher logs a line for every run it creates. Written where it is formatted, each
//! line was a `write(2)` on the task that ran the event: while a backlog drained, 7–25% of
//! the dispatcher's CPU went to logging (`docs/performance.md`). Here the task formats the
//! line and queues it; the writer thread writes a line at once after a quiet spell, and
//! while lines keep coming, whatever has queued every 5 ms in as few calls as it can.
//!
//! Nothing is dropped: a full queue holds the logging task back until the writer catches up,
//! as a slow stderr did before. [`flush`] writes out what is queued (processes call it before
//! they exit, and a panic calls it before its message is printed).

use std::io::{self, BufWriter, Write};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for the writer before a logging task waits with them.
const QUEUE: usize = 8192;
/// How much of what queued the writer gathers into one write.
const BUFFER: usize = 64 * 1024;
/// How long a line may wait for the writer while it is busy.
const ROUND: Duration = Duration::from_millis(5);
/// The longest [`flush`] waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Queued {
    Line(Vec<u8>),
    /// Everything queued before it is written: say so.
    Flush(SyncSender<()>),
}

/// The queue to the writer thread; without one (the thread could not be started), lines
/// are written where they are logged.
#[derive(Clone)]
pub struct Lines {
    queue: Option<SyncSender<Queued>>,
}

static LINES: OnceLock<Lines> = OnceLock::new();

impl Lines {
    /// The process's writer, started on the first call.
    pub fn get() -> Self {
        LINES
            .get_or_init(|| {
                let (queue, queued) = sync_channel(QUEUE);
                let started = std::thread::Builder::new()
                    .name("log-writer".into())
                    .spawn(move || write_all(queued, io::stderr()));
                Self {
                    queue: started.is_ok().then_some(queue),
                }
            })
            .clone()
    }

    fn send(&self, line: Vec<u8>) {
        let unsent = match &self.queue {
            Some(queue) => match queue.send(Queued::Line(line)) {
                Ok(()) => return,
                Err(unsent) => unsent.0,
            },
            None => Queued::Line(line),
        };
        // No writer: write it here rather than lose it.
        if let Queued::Line(line) = unsent {
            let _ = io::stderr().write_all(&line);
        }
    }
}

/// Writes out every line queued so far, waiting for the writer at most a couple of seconds.
pub fn flush() {
    let Some(queue) = LINES.get().and_then(|lines| lines.queue.as_ref()) else {
        return;
    };
    let (done, written) = sync_channel(1);
    if queue.send(Queued::Flush(done)).is_ok() {
        let _ = written.recv_timeout(FLUSH_WAIT);
    }
}

/// What one log line is formatted into before it is queued.
pub struct Line<'a> {
    lines: &'a Lines,
    text: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            self.lines.send(std::mem::take(&mut self.text));
        }
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            lines: self,
            text: Vec::new(),
        }
    }
}

/// The writer thread. Quiet, it waits on the queue, so the first line after a quiet spell is
/// written at once. Busy, it writes what queued during each [`ROUND`] and sleeps between
/// rounds instead of waiting on the queue, so that no logging task wakes it: a wake-up per
/// line cost more than the write it saved. A round that finds nothing makes it quiet again.
fn write_all(queued: Receiver<Queued>, out: impl Write) {
    let mut out = BufWriter::with_capacity(BUFFER, out);
    while let Ok(first) = queued.recv() {
        let mut next = Some(first);
        while next.is_some() {
            while let Some(item) = next {
                match item {
                    Queued::Line(line) => {
                        let _ = out.write_all(&line);
                    }
                    Queued::Flush(done) => {
                        let _ = out.flush();
                        let _ = done.send(());
                    }
                }
                next = queued.try_recv().ok();
            }
            let _ = out.flush();
            std::thread::sleep(ROUND);
            next = queued.try_recv().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Stands in for stderr: what was written, and in how many calls.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut captured = self.0.lock().expect("captured");
            captured.0.extend_from_slice(bytes);
            captured.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_queued_together_are_written_in_order_in_one_call() {
        let (queue, queued) = sync_channel(QUEUE);
        let lines = Lines {
            queue: Some(queue.clone()),
        };
        for n in 0..100 {
            let mut line = lines.make_writer();
            writeln!(line, "line {n}").expect("formatted");
        }
        let (done, written) = sync_channel(1);
        queue.send(Queued::Flush(done)).expect("queued");
        drop((lines, queue));
        let captured = Captured::default();
        // Everything was queued before the writer's round: it is written in one call.
        write_all(queued, captured.clone());
        written.recv().expect("flushed");
        let (text, calls) = captured.0.lock().expect("captured").clone();
        let expected: String = (0..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(String::from_utf8(text).expect("text"), expected);
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_flush_returns_once_the_lines_before_it_are_written() {
        let (queue, queued) = sync_channel(QUEUE);
        let lines = Lines {
            queue: Some(queue.clone()),
        };
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            std::thread::spawn(move || write_all(queued, captured))
        };
        // The first line wakes the writer; the rest come while it is busy, between rounds.
        for n in 0..50 {
            writeln!(lines.make_writer(), "line {n}").expect("formatted");
        }
        let (done, written) = sync_channel(1);
        queue.send(Queued::Flush(done)).expect("queued");
        written.recv().expect("flushed");
        let text = captured.0.lock().expect("captured").0.clone();
        let expected: String = (0..50).map(|n| format!("line {n}\n")).collect();
        assert_eq!(String::from_utf8(text).expect("text"), expected);
        drop((lines, queue));
        writer.join().expect("the writer ends with its queue");
    }

    #[test]
    fn a_line_is_written_once_its_writer_is_dropped_and_not_before() {
        let (queue, queued) = sync_channel(QUEUE);
        let lines = Lines { queue: Some(queue) };
        let mut line = lines.make_writer();
        write!(line, "half ").expect("formatted");
        assert!(queued.try_recv().is_err(), "queued before the line ended");
        writeln!(line, "and the rest").expect("formatted");
        drop(line);
        match queued.try_recv() {
            Ok(Queued::Line(text)) => assert_eq!(text, b"half and the rest\n"),
            _ => panic!("the line was not queued"),
        }
    }
}
