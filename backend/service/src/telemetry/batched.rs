//! Log lines to stderr in batches: each line is appended to a shared buffer, and a writer thread
//! writes what gathered in one `write` every [`GATHER`] (none while nothing is logged).
//!
//! Written line by line, every request's log line was a `write` system call of its own, on the
//! request's worker thread: 3.6% of a PostgreSQL list request's backend CPU time (perf, JSON to a
//! file), and more into a pipe, whose reader (the container runtime) is woken for every line.
//!
//! Nothing is dropped: a burst that fills [`FLUSH_AT`] is written out by the thread logging it,
//! which waits for that. Lines keep their order: whoever writes takes [`Batched::writing`] before
//! taking the buffer. What is buffered is written when the [`LogGuard`] from
//! [`super::init`] drops (the process returning from `main`) and before a panic's message; a
//! process killed outright (SIGKILL, out of memory) loses at most the last [`GATHER`] of lines.

use std::{
    io::Write,
    sync::{
        Condvar, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread lets lines gather once one is waiting.
pub const GATHER: Duration = Duration::from_millis(10);
/// Buffered bytes at which the logging thread writes them out itself.
const FLUSH_AT: usize = 256 * 1024;

/// Where batches go: stderr, or a test's collector.
type Out = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The shared buffer and its writer thread.
pub struct Batched {
    buffer: Mutex<Vec<u8>>,
    /// Signalled when a line lands in an empty buffer.
    waiting: Condvar,
    /// Held while buffered lines are written out, so batches go out in order.
    writing: Mutex<()>,
    /// No writer thread could be started: each line is written as it comes.
    direct: AtomicBool,
    out: Out,
}

impl Batched {
    /// The process's batches to stderr, its writer thread started on first use.
    pub fn stderr() -> &'static Batched {
        static STDERR: OnceLock<&'static Batched> = OnceLock::new();
        STDERR.get_or_init(|| {
            Batched::start(|bytes| {
                // Nowhere to report a failed write of the log itself.
                let _ = std::io::stderr().lock().write_all(bytes);
            })
        })
    }

    /// Batches to `out`, with a writer thread of their own (which lives as long as the process).
    pub fn start(out: impl Fn(&[u8]) + Send + Sync + 'static) -> &'static Batched {
        let batched: &'static Batched = Box::leak(Box::new(Batched {
            buffer: Mutex::new(Vec::new()),
            waiting: Condvar::new(),
            writing: Mutex::new(()),
            direct: AtomicBool::new(false),
            out: Box::new(out),
        }));
        let spawned = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || batched.run());
        if spawned.is_err() {
            batched.direct.store(true, Ordering::Relaxed);
        }
        batched
    }

    fn run(&self) {
        loop {
            {
                let mut buffer = self.buffer();
                while buffer.is_empty() {
                    buffer = self
                        .waiting
                        .wait(buffer)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
            std::thread::sleep(GATHER);
            self.flush();
        }
    }

    /// Appends one formatted line (or several); writes the buffer out at once when it is full.
    fn append(&self, line: &[u8]) {
        let mut buffer = self.buffer();
        let was_empty = buffer.is_empty();
        buffer.extend_from_slice(line);
        let full = buffer.len() >= FLUSH_AT || self.direct.load(Ordering::Relaxed);
        drop(buffer);
        if full {
            self.flush();
        } else if was_empty {
            self.waiting.notify_one();
        }
    }

    /// Writes out everything buffered so far, in order.
    pub fn flush(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let batch = std::mem::take(&mut *self.buffer());
        if !batch.is_empty() {
            (self.out)(&batch);
        }
    }

    fn buffer(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<'a> MakeWriter<'a> for &'static Batched {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter(self)
    }
}

/// What the formatting layer writes one event's text into.
pub struct LineWriter(&'static Batched);

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes out the buffered lines when dropped (see [`super::init`]).
#[must_use = "buffered log lines are written when the guard drops"]
pub struct LogGuard(pub(super) &'static Batched);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn collecting() -> (&'static Batched, Arc<Mutex<Vec<Vec<u8>>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let sink = writes.clone();
        let batched = Batched::start(move |bytes| sink.lock().unwrap().push(bytes.to_vec()));
        (batched, writes)
    }

    #[test]
    fn lines_logged_together_go_out_in_one_write_in_order_and_soon() {
        let (batched, writes) = collecting();
        for n in 0..100 {
            batched
                .make_writer()
                .write_all(format!("line {n}\n").as_bytes())
                .unwrap();
        }
        let expected: String = (0..100).map(|n| format!("line {n}\n")).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while writes.lock().unwrap().concat().len() < expected.len() {
            assert!(std::time::Instant::now() < deadline, "not everything was written");
            std::thread::sleep(Duration::from_millis(1));
        }
        let writes = writes.lock().unwrap();
        assert_eq!(writes.concat(), expected.as_bytes());
        // Gathered: one write, or a few should the test thread be held up past the gathering.
        assert!(writes.len() < 10, "{} writes for 100 lines", writes.len());
    }

    #[test]
    fn a_burst_is_written_by_its_logger_and_nothing_is_lost_or_reordered() {
        let (batched, writes) = collecting();
        let line = vec![b'x'; 1023];
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let line = line.clone();
                std::thread::spawn(move || {
                    for n in 0..500 {
                        let mut text = format!("{thread} {n:04} ").into_bytes();
                        text.extend_from_slice(&line[text.len()..]);
                        text.push(b'\n');
                        batched.make_writer().write_all(&text).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(LogGuard(batched));
        let all = writes.lock().unwrap().concat();
        let lines: Vec<&[u8]> = all.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2000, "every line, once");
        for thread in 0..4 {
            let numbers: Vec<usize> = lines
                .iter()
                .map(|l| std::str::from_utf8(l).unwrap())
                .filter(|l| l.starts_with(&format!("{thread} ")))
                .map(|l| l[2..6].parse().unwrap())
                .collect();
            assert_eq!(
                numbers,
                (0..500).collect::<Vec<_>>(),
                "thread {thread}'s lines in order"
            );
        }
        // 2 MB logged: some of it went out because the buffer filled, before the guard; and the
        // buffer never held more than full plus a line from each logging thread.
        let writes = writes.lock().unwrap();
        assert!(writes.len() > 1);
        assert!(
            writes.iter().all(|w| w.len() <= FLUSH_AT + 4 * 1024),
            "a batch past the bound"
        );
    }

    #[test]
    fn the_guard_writes_what_is_buffered() {
        let (batched, writes) = collecting();
        batched.make_writer().write_all(b"last words\n").unwrap();
        drop(LogGuard(batched));
        assert_eq!(writes.lock().unwrap().concat(), b"last words\n");
    }
}
