//! Ctrl-C (and SIGTERM, SIGHUP) while a program that must not be cut off runs in the background.
//!
//! A terminal sends Ctrl-C's SIGINT to its whole foreground process group. Without a handler the
//! workflow dies at once, the pipes a child writes to lose their reader, and the child dies of
//! SIGPIPE at its next write: Helm, announcing its cancellation, is killed before it rolls the
//! release back, which then stays `pending-upgrade`. So while such a program runs (see
//! [`Guarded`]) a signal is only counted, for the caller to handle: forward it once, keep waiting,
//! and let a second one stop the wait. At any other time the handler ends the process as the
//! signal would have (exit code 130).

use std::sync::{
    Once,
    atomic::{AtomicUsize, Ordering},
};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// How many [`Guarded`] are alive: `dev` guards its whole session, and each deploy it runs guards
/// its Helm run inside it.
static GUARDED: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// Exit code of a process ended by Ctrl-C (128 + SIGINT), as shells report it.
pub const INTERRUPTED_EXIT_CODE: i32 = 130;

/// While alive (any of them, when nested), Ctrl-C is counted instead of ending the process.
#[derive(Debug)]
pub struct Guarded(());

impl Guarded {
    /// Installs the handler (once per process) and starts counting signals.
    pub fn start() -> Guarded {
        INSTALL.call_once(|| {
            let installed = ctrlc::set_handler(|| {
                SIGNALS.fetch_add(1, Ordering::SeqCst);
                if GUARDED.load(Ordering::SeqCst) == 0 {
                    std::process::exit(INTERRUPTED_EXIT_CODE);
                }
            });
            if let Err(err) = installed {
                eprintln!("    (cannot handle Ctrl-C: {err}; an interruption may leave the release pending)");
            }
        });
        GUARDED.fetch_add(1, Ordering::SeqCst);
        Guarded(())
    }

    /// How many signals arrived since the process started.
    pub fn signals(&self) -> usize {
        SIGNALS.load(Ordering::SeqCst)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        GUARDED.fetch_sub(1, Ordering::SeqCst);
    }
}
