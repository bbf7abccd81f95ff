//! `consul::Instancer`: blocking queries on `/v1/health/service/<name>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::client::{Client, HealthQuery, ServiceEntry};
use super::entries::{self, Skipped};
use crate::internal::backoff::Backoff;
use crate::internal::publisher::Publisher;
use crate::internal::worker::{Progress, StopSignal, Supervision, Worker};
use crate::{Error, Instance, Result};

const LOG: &str = "waypost::consul";
/// The longest `wait` Consul takes, and the longest min interval waypost takes.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// Watches one Consul service and publishes its healthy instances; see the
/// [module docs](super) for the watch loop, failure behaviour and threads.
///
/// ```no_run
/// use waypost::consul::{HttpClient, Instancer};
/// let client = HttpClient::builder().address("http://127.0.0.1:8500").build()?;
/// let instancer = Instancer::builder(&client, "api").tag("v2").build()?;
/// # Ok::<(), waypost::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping an instancer stops its watch"]
pub struct Instancer {
    publisher: Arc<Publisher>,
    worker: Mutex<Option<Worker>>,
}

/// Builds an [`Instancer`]; see [`Instancer::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct InstancerBuilder {
    client: Arc<dyn Client>,
    watch: Watch,
    first_fetch_timeout: Duration,
}

/// What the watch thread needs.
#[derive(Debug, Clone)]
struct Watch {
    service: String,
    tags: Vec<String>,
    include_warning: bool,
    wait: Duration,
    min_interval: Duration,
    backoff: (Duration, Duration),
}

impl Instancer {
    /// Starts a builder for `service`. The instancer's thread gets its own connections
    /// ([`Client::fork`]), so stopping it never disturbs other users of `client`.
    pub fn builder(client: &dyn Client, service: impl Into<String>) -> InstancerBuilder {
        InstancerBuilder {
            client: client.fork(),
            watch: Watch {
                service: service.into(),
                tags: Vec::new(),
                include_warning: false,
                wait: Duration::from_secs(300),
                min_interval: Duration::from_millis(100),
                backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            },
            first_fetch_timeout: Duration::from_secs(1),
        }
    }
}

impl InstancerBuilder {
    /// Only instances carrying `tag` (case-insensitive, as Consul compares). May be
    /// called several times: an instance must carry every tag. Default: no filter.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.watch.tags.push(tag.into());
        self
    }

    /// Replaces the tag filter with `tags` (all required).
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.watch.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Also list instances whose checks warn (none critical). Consul has no query flag
    /// for this, so the query asks for every instance and waypost drops those with a
    /// critical check: answers are larger when many instances fail. Default: false,
    /// passing only (`?passing`, filtered by the agent).
    pub fn include_warning(mut self, include: bool) -> Self {
        self.watch.include_warning = include;
        self
    }

    /// How long Consul may hold each blocking query (`wait`). Longer means fewer idle
    /// round trips; changes arrive at once either way. Default 5 minutes (Consul's
    /// default).
    ///
    /// Consul takes at most 10 minutes: `build()` refuses `Duration::ZERO` and anything
    /// over 10 minutes (`Duration::MAX` included) with [`Error::InvalidConfig`]
    /// (`wait`).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.watch.wait = wait;
        self
    }

    /// The least time between the starts of two queries when the first one's answer
    /// brought no newer index (index 0, an index reset, a query returning early), so
    /// the loop never spins. An answer with a newer index is followed at once: that
    /// query blocks until the next change, and a change right after another is not
    /// held back. Default 100 ms.
    ///
    /// - `Duration::ZERO` turns the guard off: every answer is followed at once, so an
    ///   agent that keeps answering at once without a newer index is queried in a loop.
    /// - At most 10 minutes, the longest `wait`: the guard is against spinning, not a
    ///   polling period. `build()` refuses more (`Duration::MAX` included) with
    ///   [`Error::InvalidConfig`] (`min_interval`), as a larger value would hold back
    ///   the watch for that long after every quiet `wait`.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.watch.min_interval = interval;
        self
    }

    /// Retry delays after an error: from `initial`, doubling up to `max`, with jitter
    /// (each delay is drawn from its upper half). Default 100 ms to 5 s: an agent
    /// restart is noticed within seconds. The same delays space restarts after a panic
    /// of the watch thread.
    ///
    /// - `Duration::ZERO` counts as 1 ms (for both), so a failing agent is never queried
    ///   in a busy loop.
    /// - `Duration::MAX` (or anything from about 100 years up) as `max` lets the delay
    ///   double without a cap (in practice up to `initial` times 2^20); as `initial`,
    ///   it means "never retry": after its first error the watch keeps the error state
    ///   and only waits for a stop.
    /// - `max` below `initial` is refused by `build()` with [`Error::InvalidConfig`]
    ///   (`backoff`).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.watch.backoff = (initial, max);
        self
    }

    /// How long `build()` waits for the first answer (instances or an error), so that
    /// the state is known when it returns, as Go kit's constructor does. It never fails
    /// `build()`: an unreachable agent becomes an error event and the watch keeps
    /// retrying. Default 1 s.
    ///
    /// `Duration::ZERO` returns at once (the state arrives later); `Duration::MAX`
    /// waits until the first answer, however long the agent takes (bounded by the
    /// client's timeouts).
    pub fn first_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.first_fetch_timeout = timeout;
        self
    }

    /// Validates, starts the `waypost-consul-watch` thread and waits for the first
    /// answer up to the first-fetch timeout. Errors: [`Error::InvalidConfig`] for an
    /// empty service name or tag, a zero or over-10-minute wait, an over-10-minute min
    /// interval, a backoff `max` below its `initial`; [`Error::Io`] if the thread
    /// cannot start.
    pub fn build(self) -> Result<Instancer> {
        let w = &self.watch;
        if w.service.is_empty() {
            return Err(Error::invalid_config("service", "must not be empty"));
        }
        if w.tags.iter().any(String::is_empty) {
            return Err(Error::invalid_config("tags", "a tag must not be empty"));
        }
        if w.wait.is_zero() || w.wait > MAX_WAIT {
            return Err(Error::invalid_config("wait", "must be within (0, 10 min]"));
        }
        if w.min_interval > MAX_WAIT {
            return Err(Error::invalid_config(
                "min_interval",
                "must be at most 10 min",
            ));
        }
        if w.backoff.1 < w.backoff.0 {
            return Err(Error::invalid_config(
                "backoff",
                "max must be at least initial",
            ));
        }
        let publisher = Arc::new(Publisher::new());
        let (first_tx, first_rx) = crossbeam_channel::bounded(1);
        let worker = {
            let (client, publisher, watch) = (self.client.clone(), publisher.clone(), self.watch);
            let cancel = self.client.clone();
            let supervision = Supervision {
                component: "consul watch",
                log_target: LOG,
                restart: Backoff::new(watch.backoff.0, watch.backoff.1),
            };
            let (reporter, first) = (publisher.clone(), first_tx.clone());
            Worker::spawn_supervised(
                "waypost-consul-watch",
                supervision,
                move || cancel.shutdown(),
                move |stop, progress| watch.run(&*client, &publisher, stop, &first_tx, progress),
                move |err| {
                    reporter.publish_error(err);
                    let _ = first.try_send(());
                },
            )?
        };
        let _ = first_rx.recv_timeout(self.first_fetch_timeout);
        Ok(Instancer {
            publisher,
            worker: Mutex::new(Some(worker)),
        })
    }
}

impl Watch {
    /// The watch loop; it returns only when stopped. Each answer is progress.
    fn run(
        &self,
        client: &dyn Client,
        publisher: &Publisher,
        stop: &StopSignal,
        first: &Sender<()>,
        progress: &Progress,
    ) {
        let mut index = 0;
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        // The start of the last query, when its answer brought no newer index: the
        // next query then waits for the min interval, so the loop cannot spin. An
        // answer with a newer index is followed at once (that query blocks), so a
        // change right after another is not held back.
        let mut throttle_from: Option<Instant> = None;
        loop {
            if let Some(start) = throttle_from.take() {
                let rest = self.min_interval.saturating_sub(start.elapsed());
                if !rest.is_zero() && stop.wait(rest) {
                    return;
                }
            }
            if stop.is_stopped() {
                return;
            }
            let started = Instant::now();
            let query = HealthQuery {
                passing_only: !self.include_warning,
                tags: &self.tags,
                index,
                wait: self.wait,
            };
            match client.health_service(&self.service, &query) {
                Ok(health) => {
                    progress.made();
                    backoff.reset();
                    if health.index <= index {
                        throttle_from = Some(started);
                    }
                    index = next_index(index, health.index);
                    publisher.publish_instances(self.instances(&health.entries));
                }
                Err(err) => {
                    if stop.is_stopped() {
                        return; // cut short by stop(): not news for subscribers
                    }
                    log::warn!(target: LOG, "watching {:?}: {err}", self.service);
                    publisher.publish_error(err);
                    // After an error start over: the agent may have restarted with a
                    // lower index, which a blocking query would wait out in full.
                    index = 0;
                    let _ = first.try_send(());
                    if stop.wait(backoff.next_delay()) {
                        return;
                    }
                }
            }
            let _ = first.try_send(());
        }
    }

    /// The entries that pass the health and tag filters, as instances; an entry the
    /// address parser refuses is left out with a `warn!` naming it.
    fn instances(&self, entries: &[ServiceEntry]) -> Vec<Instance> {
        let mut skipped = Skipped::default();
        let instances = entries::instances(entries, &self.tags, self.include_warning, &mut skipped);
        skipped.log(&self.service);
        instances
    }
}

/// The index for the next query, by Consul's rules for blocking queries: an index that
/// went backwards (agent restarted, state reset) starts over at 0 (answers at once); an
/// index of 0 in an answer is a Consul bug that would make every query return at once,
/// so it becomes 1 as Consul's docs advise.
pub(crate) fn next_index(previous: u64, answered: u64) -> u64 {
    if answered < previous {
        0
    } else {
        answered.max(1)
    }
}

crate::internal::publisher::instancer_methods!(Instancer, |self| {
    let worker = self.worker.lock().take();
    if let Some(mut worker) = worker {
        worker.stop();
    }
});

impl Drop for Instancer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[path = "instancer_tests.rs"]
mod tests;
