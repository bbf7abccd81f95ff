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
// Eureka alone: its instancer, which will use the watch settings, has not landed.
#![cfg_attr(
    all(
        feature = "eureka",
        not(any(feature = "etcd", feature = "zk", feature = "dnssrv"))
    ),
    allow(dead_code, unused_macros, unused_imports)
)]

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

// The backends whose builders share these (Consul keeps its own: its watch settings
// are the key of its shared watches).
#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
/// The settings every watch-loop instancer's builder shares, with their defaults:
/// the builders hold one and get their setters from [`watch_setters!`].
#[derive(Clone)]
pub(crate) struct WatchOptions {
    pub(crate) min_interval: Duration,
    pub(crate) backoff: (Duration, Duration),
    pub(crate) first_fetch_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
impl Default for WatchOptions {
    fn default() -> WatchOptions {
        WatchOptions {
            min_interval: Duration::from_millis(100),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            first_fetch_timeout: Duration::from_secs(1),
            clock: crate::clock::system(),
        }
    }
}

#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
impl std::fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchOptions")
            .field("min_interval", &self.min_interval)
            .field("backoff", &self.backoff)
            .field("first_fetch_timeout", &self.first_fetch_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
/// The longest minimum interval a builder takes: the limit is against spinning, not
/// a polling period.
pub(crate) const MAX_MIN_INTERVAL: Duration = Duration::from_secs(3600);

#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
impl WatchOptions {
    /// Refuses a minimum interval over an hour and a backoff `max` below its
    /// `initial`, naming the setting.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.min_interval > MAX_MIN_INTERVAL {
            return Err(crate::Error::invalid_config(
                "min_interval",
                "must be at most an hour",
            ));
        }
        if self.backoff.1 < self.backoff.0 {
            return Err(crate::Error::invalid_config(
                "backoff",
                "max must be at least initial",
            ));
        }
        Ok(())
    }

    /// The watch's [`Spec`] with these options.
    pub(crate) fn spec(
        &self,
        thread: &'static str,
        component: &'static str,
        log_target: &'static str,
        what: String,
    ) -> Spec {
        Spec {
            thread,
            component,
            log_target,
            what,
            min_interval: self.min_interval,
            backoff: self.backoff,
            first_fetch_timeout: self.first_fetch_timeout,
            clock: self.clock.clone(),
        }
    }
}

#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
/// The setters of [`WatchOptions`] for an instancer builder whose field `$field`
/// holds them: `min_interval`, `backoff`, `first_fetch_timeout`, `clock`, with one
/// set of docs for every backend.
macro_rules! watch_setters {
    ($field:ident) => {
        /// The least time between the starts of two requests to the registry, whatever
        /// the answers say, so that a registry that answers at once is never asked in
        /// a busy loop. Default 100 ms. `Duration::ZERO` turns the limit off; over an
        /// hour is refused by `build()` (`min_interval`).
        pub fn min_interval(mut self, interval: std::time::Duration) -> Self {
            self.$field.min_interval = interval;
            self
        }

        /// Retry delays after an error: from `initial`, doubling up to `max`, with
        /// jitter (each delay is drawn from its upper half). Default 100 ms to 5 s. The
        /// same delays space restarts after a panic of the watch thread.
        /// `Duration::ZERO` counts as 1 ms; `max` below `initial` is refused by
        /// `build()` (`backoff`).
        pub fn backoff(mut self, initial: std::time::Duration, max: std::time::Duration) -> Self {
            self.$field.backoff = (initial, max);
            self
        }

        /// How long `build()` waits for the first answer (instances or an error), so
        /// that the state is known when it returns. It never fails `build()`: an
        /// unreachable registry becomes an error event and the watch keeps retrying.
        /// Default 1 s; `Duration::ZERO` returns at once.
        pub fn first_fetch_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.$field.first_fetch_timeout = timeout;
            self
        }

        /// The clock every wait of the watch reads (the min interval, the poll
        /// interval, the backoff, the restart after a panic). Default:
        /// [`SystemClock`](crate::SystemClock); tests pass a
        /// [`ManualClock`](crate::ManualClock) and move it instead of sleeping.
        pub fn clock(mut self, clock: impl crate::Clock) -> Self {
            self.$field.clock = std::sync::Arc::new(clock);
            self
        }
    };
}
#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
pub(crate) use watch_setters;

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
