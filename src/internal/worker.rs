//! A named background thread with a stop channel, stopped promptly and joined.
//!
//! The body gets a [`StopSignal`] and sleeps only through [`StopSignal::wait`]; `stop()`
//! disconnects the channel (so a wait returns at once), runs the canceller (e.g. shuts
//! down the thread's own HTTP agent, so a request in flight fails at once) and joins.
//!
//! A long-lived loop (a watch, a heartbeat) runs [supervised](Worker::spawn_supervised):
//! a panic in its body is caught, logged and reported, and the body starts again after
//! a backoff, until it panics [`PANICS_IN_A_ROW`] times without progress in between.

use std::cell::Cell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::sync::Arc;

use super::backoff::Backoff;
use crate::{Clock, Error, Result};

/// A supervised body that panics this many times with no [`Progress::made`] in
/// between is not started again: its thread ends.
pub(crate) const PANICS_IN_A_ROW: u32 = 3;

/// Told to the thread body: has `stop()` been called?
#[derive(Debug)]
pub(crate) struct StopSignal(Receiver<()>);

impl StopSignal {
    /// True once stop was requested.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))] // the network backends' loops
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self.0.try_recv(), Err(TryRecvError::Disconnected) | Ok(()))
    }

    /// Waits `duration` unless stopped first; true if stopped.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))] // the Consul heartbeat's
    pub(crate) fn wait(&self, duration: Duration) -> bool {
        super::backoff::wait(&self.0, duration)
    }

    /// The channel itself, for a `select!` that waits on other channels too: it
    /// disconnects (a receive returns at once) when stop is requested.
    pub(crate) fn channel(&self) -> &Receiver<()> {
        &self.0
    }
}

/// Handed to a supervised body, which calls [`Progress::made`] after each good answer
/// (a set fetched, a check passed): the panics before it no longer count.
#[derive(Debug, Default)]
pub(crate) struct Progress(Cell<bool>);

impl Progress {
    /// The body works: a later panic starts a new count, with the shortest backoff.
    pub(crate) fn made(&self) {
        self.0.set(true);
    }
}

/// How a supervised thread names itself and waits after a panic.
#[derive(Debug, Clone)]
pub(crate) struct Supervision {
    /// Names the thread in the [`Error::Panicked`] and the log, e.g. `"consul watch"`.
    pub(crate) component: &'static str,
    /// The `log` target of the `error!` lines, e.g. `"waypost::consul"`.
    pub(crate) log_target: &'static str,
    /// The delays before restarts; reset by [`Progress::made`].
    pub(crate) restart: Backoff,
    /// The clock the restart delays are waited on.
    pub(crate) clock: Arc<dyn Clock>,
}

/// Runs `body` until it returns, which it does only when `stop` is signalled. A panic
/// in it is caught and becomes an [`Error::Panicked`] naming the component and the
/// panic's message: logged at `error!`, handed to `report` (e.g. published as an
/// error event), and followed by a restart of `body` after the next backoff delay,
/// which a stop cuts short. The [`PANICS_IN_A_ROW`]th panic without progress in
/// between is final: its error says that the thread stopped, and `supervise` returns.
///
/// Each run calls `body` again. State that outlives a run (in the closure, or borrowed
/// by it: a publisher, a client) must stay usable after a panic; parking_lot locks do
/// not poison, and a body resets what a panic may leave half done (the file watch
/// forgets its last read, the Consul watch starts over at index 0). That is why the
/// unwind is asserted safe.
pub(crate) fn supervise(
    mut supervision: Supervision,
    stop: &StopSignal,
    mut body: impl FnMut(&StopSignal, &Progress),
    mut report: impl FnMut(Error),
) {
    let Supervision {
        component,
        log_target,
        ..
    } = supervision;
    let mut in_a_row = 0;
    loop {
        let progress = Progress::default();
        let Err(payload) = catch_unwind(AssertUnwindSafe(|| body(stop, &progress))) else {
            return;
        };
        if progress.0.get() {
            in_a_row = 0;
            supervision.restart.reset();
        }
        in_a_row += 1;
        let error = Error::panicked(component, &*payload);
        drop(payload);
        if in_a_row >= PANICS_IN_A_ROW {
            log::error!(target: log_target,
                "{error}; {in_a_row} panics in a row: the {component} thread has stopped");
            report(stopped(error, in_a_row));
            return;
        }
        let delay = supervision.restart.next_delay();
        log::error!(target: log_target, "{error}; restarting it in {delay:?}");
        report(error);
        if super::watch::wait_for(&*supervision.clock, stop, delay) {
            return;
        }
    }
}

/// The final error: the panic's, saying that the thread stopped.
fn stopped(error: Error, in_a_row: u32) -> Error {
    match error {
        Error::Panicked { component, message } => Error::Panicked {
            component,
            message: format!("{message} ({in_a_row} panics in a row: stopped)").into(),
        },
        other => other,
    }
}

/// The owner's handle: stop and join on [`Worker::stop`] or drop.
pub(crate) struct Worker {
    name: &'static str,
    stop: Option<Sender<()>>,
    cancel: Option<Box<dyn FnOnce() + Send + Sync>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts thread `name` running `body`; `cancel` runs on stop, before the join.
    pub(crate) fn spawn(
        name: &'static str,
        cancel: impl FnOnce() + Send + Sync + 'static,
        body: impl FnOnce(StopSignal) + Send + 'static,
    ) -> Result<Worker> {
        let (tx, rx) = crossbeam_channel::bounded(0);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(StopSignal(rx)))
            .map_err(|source| Error::Io {
                operation: "starting a background thread",
                source,
            })?;
        Ok(Worker {
            name,
            stop: Some(tx),
            cancel: Some(Box::new(cancel)),
            thread: Some(thread),
        })
    }

    /// Starts thread `name` running `body` under [`supervise`]; `cancel` runs on stop,
    /// before the join.
    pub(crate) fn spawn_supervised(
        name: &'static str,
        supervision: Supervision,
        cancel: impl FnOnce() + Send + Sync + 'static,
        body: impl FnMut(&StopSignal, &Progress) + Send + 'static,
        report: impl FnMut(Error) + Send + 'static,
    ) -> Result<Worker> {
        Worker::spawn(name, cancel, move |stop| {
            supervise(supervision, &stop, body, report);
        })
    }

    /// Starts thread `name` running `body`, with nothing to cancel on stop.
    pub(crate) fn start(
        name: &'static str,
        body: impl FnOnce(StopSignal) + Send + 'static,
    ) -> Result<Worker> {
        Worker::spawn(name, || {}, body)
    }

    /// Signals, cancels, joins. Idempotent. A panic in the thread is logged, not
    /// propagated.
    pub(crate) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() == std::thread::current().id() {
                return; // stopped from its own body: it ends when the body returns
            }
            if thread.join().is_err() {
                log::error!(target: "waypost::worker", "thread {} panicked", self.name);
            }
        }
    }

    /// Signals and cancels, but does not join: the thread ends by itself, unjoined.
    /// For a stop from a thread the worker's thread may be waiting on.
    pub(crate) fn signal(&mut self) {
        drop(self.stop.take());
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
        drop(self.thread.take());
    }

    /// True until stopped.
    pub(crate) fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    /// True once the thread's body has returned by itself (e.g. a supervised body that
    /// gave up after panics) or the worker was stopped.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))] // the registrar restarts one
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("running", &self.is_running())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn stop_interrupts_the_wait_runs_cancel_and_joins() {
        let (cancelled_tx, cancelled) = crossbeam_channel::bounded(1);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let mut worker = Worker::spawn(
            "waypost-test-worker",
            move || cancelled_tx.send(()).unwrap(),
            move |stop| {
                let stopped = stop.wait(Duration::from_secs(60));
                done_tx.send((stopped, stop.is_stopped())).unwrap();
            },
        )
        .unwrap();
        assert!(worker.is_running());
        let started = Instant::now();
        worker.stop();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!worker.is_running());
        assert!(cancelled.try_recv().is_ok());
        assert_eq!(done.try_recv().unwrap(), (true, true));
        worker.stop();
    }

    fn supervision(restart: Duration) -> Supervision {
        Supervision {
            component: "test watch",
            log_target: "waypost::test",
            restart: Backoff::new(restart, restart),
            clock: Arc::new(crate::SystemClock),
        }
    }

    /// Runs `body` supervised on this thread, with a stop that never comes, and returns
    /// how many runs it took and the messages reported.
    fn run_supervised(mut body: impl FnMut(u32, &Progress)) -> (u32, Vec<String>) {
        let (_keep, rx) = crossbeam_channel::bounded(0);
        let (mut runs, mut reports) = (0, Vec::new());
        supervise(
            supervision(Duration::from_millis(1)),
            &StopSignal(rx),
            |_, progress| {
                runs += 1;
                body(runs, progress);
            },
            |err| match err {
                Error::Panicked { component, message } => {
                    assert_eq!(component, "test watch");
                    reports.push(message.into_string());
                }
                other => panic!("{other:?}"),
            },
        );
        (runs, reports)
    }

    #[test]
    fn a_panic_is_reported_and_the_body_restarts() {
        let (runs, reports) = run_supervised(|run, _| {
            if run == 1 {
                panic!("boom {run}");
            }
        });
        assert_eq!((runs, reports), (2, vec!["boom 1".to_owned()]));
    }

    #[test]
    fn three_panics_in_a_row_are_final() {
        let (runs, reports) = run_supervised(|_, _| panic!("always"));
        assert_eq!(runs, PANICS_IN_A_ROW);
        assert_eq!(reports[..2], ["always", "always"]);
        assert_eq!(reports[2], "always (3 panics in a row: stopped)");
    }

    #[test]
    fn progress_starts_a_new_count() {
        let (runs, reports) = run_supervised(|run, progress| {
            if run == 3 {
                progress.made();
            }
            std::panic::panic_any(run); // a payload that is not a string
        });
        assert_eq!(runs, 5, "runs 1-2, then 3 (after progress), 4, 5");
        assert_eq!(reports.len(), 5);
        assert!(reports[0].contains("non-string"), "{reports:?}");
        assert!(reports[4].ends_with("stopped)"), "{reports:?}");
    }

    #[test]
    fn stop_cuts_the_restart_wait_and_joins() {
        let (reported_tx, reported) = crossbeam_channel::unbounded();
        let mut worker = Worker::spawn_supervised(
            "waypost-test-supervised",
            supervision(Duration::MAX),
            || {},
            |_, _| panic!("once"),
            move |err| reported_tx.send(err.to_string()).unwrap(),
        )
        .unwrap();
        let message = reported.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(message, "test watch thread panicked: once");
        assert!(!worker.is_finished(), "waiting to restart");
        let started = Instant::now();
        worker.stop();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(worker.is_finished());
        assert!(reported.try_recv().is_err(), "no restart after the stop");
    }
}
