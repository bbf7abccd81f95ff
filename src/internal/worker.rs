//! A named background thread with a stop channel, stopped promptly and joined.
//!
//! The body gets a [`StopSignal`] and sleeps only through [`StopSignal::wait`]; `stop()`
//! disconnects the channel (so a wait returns at once), runs the canceller (e.g. shuts
//! down the thread's own HTTP agent, so a request in flight fails at once) and joins.

use std::fmt;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::{Error, Result};

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
    pub(crate) fn wait(&self, duration: Duration) -> bool {
        super::backoff::wait(&self.0, duration)
    }

    /// The channel itself, for a `select!` that waits on other channels too: it
    /// disconnects (a receive returns at once) when stop is requested.
    pub(crate) fn channel(&self) -> &Receiver<()> {
        &self.0
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

    /// True until stopped.
    pub(crate) fn is_running(&self) -> bool {
        self.thread.is_some()
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
}
