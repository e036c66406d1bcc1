//! Stopping and waiting for `ztrs demo --tun`: the SIGINT/SIGTERM flag every wait checks, and
//! the one polling helper that waits on an observable condition with a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a condition is looked at again (each look is a cheap local request or command).
const POLL: Duration = Duration::from_millis(25);

/// Set once SIGINT or SIGTERM arrives. Cloned into every thread of the demo, so each loop can
/// give up promptly and the teardown guard still runs (the default action would kill the
/// process and leave the namespaces behind).
#[derive(Clone)]
pub(super) struct Stop {
    flag: Arc<AtomicBool>,
}

impl Stop {
    pub(super) fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// `Err` once a stop was requested (for `?` in loops).
    pub(super) fn check(&self) -> Result<(), String> {
        if self.requested() {
            Err("interrupted by SIGINT or SIGTERM".to_owned())
        } else {
            Ok(())
        }
    }
}

/// Keeps the signal handlers alive; dropping it shuts down their runtime.
pub(super) struct SignalWatch {
    _runtime: tokio::runtime::Runtime,
}

/// Installs the SIGINT/SIGTERM handlers (before anything is created, so no signal can kill
/// the process half-way) and returns the flag they set.
pub(super) fn watch_signals() -> Result<(Stop, SignalWatch), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ztrs-demo-signals")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    let stop = Stop {
        flag: Arc::new(AtomicBool::new(false)),
    };
    // Created inside the runtime's context so the handlers are installed now, not at the
    // task's first poll.
    let signal = {
        let _context = runtime.enter();
        crate::cli::root::stop_signal()
    };
    let flag = Arc::clone(&stop.flag);
    runtime.spawn(async move {
        let name = signal.await;
        flag.store(true, Ordering::Relaxed);
        eprintln!("{name}: stopping the demo and removing its namespaces ...");
    });
    Ok((stop, SignalWatch { _runtime: runtime }))
}

/// One look at a condition.
pub(super) enum Look<T> {
    /// It holds, with what was observed.
    Done(T),
    /// Not yet; the reason is reported if the deadline passes.
    Pending(String),
    /// It can no longer hold (a daemon exited, a request was refused): stop waiting.
    Failed(String),
}

/// Polls `check` until it is done, fails, the deadline `limit` from now passes (an error
/// naming `what` and the last reason it was pending), or a stop is requested.
pub(super) fn wait_for<T>(
    what: &str,
    limit: Duration,
    stop: &Stop,
    mut check: impl FnMut() -> Look<T>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        stop.check()?;
        let reason = match check() {
            Look::Done(value) => return Ok(value),
            Look::Failed(reason) => return Err(format!("{what}: {reason}")),
            Look::Pending(reason) => reason,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {} s waiting for {what} (last: {reason})",
                limit.as_secs()
            ));
        }
        std::thread::sleep(POLL);
    }
}
