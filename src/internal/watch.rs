//! The one watch loop every polling, long-poll and streaming backend runs.
//!
//! A backend supplies a [`Source`]: one request to its registry, answering a set of
//! instances (or "unchanged") and when the next request is due. The loop does the
//! rest, the same way for every backend:
//! - **first answer:** `start()` returns once the first request is answered (a set or
//!   an error published, a set confirmed, or an answer still [pending](Fetched::Pending)),
//!   or after the first-fetch timeout;
//! - **errors:** an error becomes an error event (the publisher keeps the last set for
//!   late subscribers), and the next request waits for the backoff delay, with jitter;
//!   it is logged at `warn!` with its causes, and again only when it changes: repeats
//!   of the same error (at every level of its causes) are `debug!` lines, so an outage
//!   warns once, not once per retry;
//! - **rate limit:** no two requests start closer together than the minimum interval,
//!   whatever the answers say; a request that blocked for longer is followed at once,
//!   so an isolated change arrives in milliseconds;
//! - **time:** every wait (rate limit, backoff, the source's next due time, the restart
//!   after a panic) reads the injected [`Clock`], so tests move a manual clock;
//! - **stop:** a stop interrupts every wait (the source's canceller interrupts a
//!   request in flight), and the named thread is joined;
//! - **panics:** a panic in the source becomes an error event; the loop restarts after
//!   the backoff and stops after [`PANICS_IN_A_ROW`](super::worker::PANICS_IN_A_ROW);
//! - **answer times:** each answer, repeats included, is recorded for the endpointer's
//!   `status()`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded, never, select};

use super::backoff::Backoff;
use super::publisher::Publisher;
use super::worker::{Progress, StopSignal, Supervision, Worker};
use crate::{Clock, Instance, Result};

/// When a source wants its next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// As soon as the rate limit allows: a long poll, whose request blocks until a
    /// change.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))] // the long polls: Consul's
    Now,
    /// This long after the answer: a poll interval, a record's TTL.
    After(Duration),
}

/// One answer of a registry.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The complete current set.
    Instances(Vec<Instance>, Due),
    /// The registry answered and the set has not changed (a file that was not touched):
    /// the set is confirmed, nothing is published.
    Unchanged(Due),
    /// The registry answered, but the answer is not ready to be told: a file that
    /// changed is published only once the next read agrees. Nothing is published and
    /// nothing is confirmed (for `status()` it is no answer), but the request counts as
    /// done: progress for the supervisor, the backoff starts over, and `start()` stops
    /// waiting for a first answer.
    Pending(Due),
    /// Nobody needs the watch any more (a shared watch whose last user left): the
    /// loop ends, and with it the thread. Nothing is published.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))] // shared Consul watches
    End,
}

/// One backend's requests. It runs on the watch thread only.
pub(crate) trait Source: Send + 'static {
    /// One request. A long poll may block; `stop` is for sources that wait in pieces,
    /// and the canceller given to [`start`] interrupts a request in flight. A streaming
    /// request (etcd's watch) tells each complete set as it arrives through `early`,
    /// and returns when the stream ends.
    fn fetch(&mut self, stop: &StopSignal, early: &mut Early<'_>) -> Result<Fetched>;

    /// Forgets what a panic may have left half done (the watch starts over).
    fn reset(&mut self) {}
}

/// What a streaming request tells while it is still open: each set is published at
/// once, and counts as an answer as a [`Fetched::Instances`] does (progress, the
/// backoff starts over, `start()` stops waiting).
pub(crate) struct Early<'a> {
    publisher: &'a Publisher,
    progress: &'a Progress,
    clock: &'a dyn Clock,
    backoff: &'a mut Backoff,
    failing: &'a mut Option<String>,
    first: &'a Sender<()>,
}

impl Early<'_> {
    /// Publishes the complete current set.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))] // etcd's watch stream
    pub(crate) fn instances(&mut self, instances: Vec<Instance>) {
        self.answered();
        self.publisher
            .publish_instances_at(instances, self.clock.now());
        let _ = self.first.try_send(());
    }

    fn answered(&mut self) {
        self.progress.made();
        self.backoff.reset();
        *self.failing = None;
    }
}

/// How a watch runs: its thread, its limits and its clock.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    /// The thread's name, e.g. `waypost-consul-watch`.
    pub(crate) thread: &'static str,
    /// Names the watch in errors and logs, e.g. `"consul watch"`.
    pub(crate) component: &'static str,
    /// The `log` target, e.g. `"waypost::consul"`.
    pub(crate) log_target: &'static str,
    /// What is watched, for log lines (a service name, a path).
    pub(crate) what: String,
    /// The least time between the starts of two requests.
    pub(crate) min_interval: Duration,
    /// Retry delays after an error, and restart delays after a panic.
    pub(crate) backoff: (Duration, Duration),
    /// How long [`start`] waits for the first answer or error.
    pub(crate) first_fetch_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Starts the watch thread and waits up to the first-fetch timeout (real time: it
/// bounds a caller's wait) for the first answer or error. `cancel` runs on stop, before
/// the join: it must make a request in flight return (shut the thread's HTTP agent).
pub(crate) fn start(
    spec: Spec,
    publisher: Arc<Publisher>,
    mut source: impl Source,
    cancel: impl FnOnce() + Send + Sync + 'static,
) -> Result<Worker> {
    let (first_tx, first_rx) = bounded(1);
    let supervision = Supervision {
        component: spec.component,
        log_target: spec.log_target,
        restart: Backoff::new(spec.backoff.0, spec.backoff.1),
        clock: spec.clock.clone(),
    };
    let first_timeout = spec.first_fetch_timeout;
    let (reporter, first) = (publisher.clone(), first_tx.clone());
    let mut restarted = false;
    let worker = Worker::spawn_supervised(
        spec.thread,
        supervision,
        cancel,
        move |stop, progress| {
            if std::mem::replace(&mut restarted, true) {
                source.reset();
            }
            run(&spec, &mut source, &publisher, stop, progress, &first_tx);
        },
        move |err| {
            reporter.publish_error(err);
            let _ = first.try_send(());
        },
    )?;
    let _ = first_rx.recv_timeout(first_timeout);
    Ok(worker)
}

/// The loop; it returns only when stopped.
fn run(
    spec: &Spec,
    source: &mut impl Source,
    publisher: &Publisher,
    stop: &StopSignal,
    progress: &Progress,
    first: &Sender<()>,
) {
    let clock = &*spec.clock;
    let mut backoff = Backoff::new(spec.backoff.0, spec.backoff.1);
    // When the source (or the backoff) wants the next request; None: never.
    let mut due = Some(clock.now());
    let mut last_start: Option<Instant> = None;
    // The last error with its causes, while errors come in a row: a repeat is no news.
    let mut failing: Option<String> = None;
    loop {
        let limit = last_start.map(|at| at.checked_add(spec.min_interval));
        let next = match (due, limit) {
            (None, _) | (_, Some(None)) => None,
            (Some(due), None) => Some(due),
            (Some(due), Some(Some(limit))) => Some(due.max(limit)),
        };
        if wait_until(clock, stop, next) {
            return;
        }
        let started = clock.now();
        last_start = Some(started);
        let mut early = Early {
            publisher,
            progress,
            clock,
            backoff: &mut backoff,
            failing: &mut failing,
            first,
        };
        let answer = source.fetch(stop, &mut early);
        let now = clock.now();
        due = match answer {
            Ok(fetched) => {
                progress.made();
                backoff.reset();
                failing = None;
                let next = match fetched {
                    Fetched::Instances(instances, next) => {
                        publisher.publish_instances_at(instances, now);
                        next
                    }
                    Fetched::Unchanged(next) => {
                        publisher.confirm(now);
                        next
                    }
                    Fetched::Pending(next) => next,
                    Fetched::End => return,
                };
                match next {
                    Due::Now => Some(now),
                    Due::After(after) => now.checked_add(after),
                }
            }
            Err(err) => {
                if stop.is_stopped() {
                    return; // cut short by stop(): not news for subscribers
                }
                let text = with_causes(&err);
                if failing.as_ref() == Some(&text) {
                    log::debug!(target: spec.log_target, "watching {}, again: {text}", spec.what);
                } else {
                    log::warn!(target: spec.log_target, "watching {}: {text}", spec.what);
                    failing = Some(text);
                }
                publisher.publish_error_at(err, now);
                now.checked_add(backoff.next_delay())
            }
        };
        let _ = first.try_send(());
    }
}

/// `err` and each of its causes (`source()`), joined by `": "`: `Display` leaves the
/// cause out (an I/O error on a file names the file, not what went wrong).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Waits on `clock` until `at` (`None`: forever) or a stop; true if stopped.
pub(crate) fn wait_until(clock: &dyn Clock, stop: &StopSignal, at: Option<Instant>) -> bool {
    match at {
        Some(at) if at <= clock.now() => stop.is_stopped(),
        Some(at) => select! {
            recv(stop.channel()) -> _ => true,
            recv(clock.after(at)) -> _ => stop.is_stopped(),
        },
        None => select! {
            recv(stop.channel()) -> _ => true,
            recv(never::<Instant>()) -> _ => unreachable!(),
        },
    }
}

/// Waits on `clock` for `duration` or a stop; true if stopped. A duration too large for
/// the clock waits for the stop alone.
pub(crate) fn wait_for(clock: &dyn Clock, stop: &StopSignal, duration: Duration) -> bool {
    wait_until(clock, stop, clock.now().checked_add(duration))
}

/// An error as a source returns it, for tests of the loop.
#[cfg(test)]
pub(crate) fn test_error(message: &'static str) -> crate::Error {
    crate::Error::invalid_config("test", message)
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
