//! `consul::Instancer`: blocking queries on `/v1/health/service/<name>`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::client::{Client, HealthQuery};
use super::consistency::Consistency;
use super::shared::{Group, Key, Membership, Wanted};
use crate::internal::publisher::Publisher;
use crate::internal::watch::{self, Due, Early, Fetched, Source, Spec};
use crate::internal::worker::{StopSignal, Worker};
use crate::{Clock, Error, Result};

const LOG: &str = "waypost::consul";
/// The longest `wait` Consul takes, and the longest min interval waypost takes.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// Watches one Consul service and publishes its healthy instances; see the
/// [module docs](super) for the watch loop, failure behaviour and threads.
///
/// # Shared watches
/// The instancers built on one [`HttpClient`](super::HttpClient) (or its clones) for
/// the same service, tags, `include_warning`, `wait`, `min_interval`, `backoff`,
/// `consistency` and clock share one watch and one thread: a thousand instancers of
/// ten services make ten blocking queries, not a thousand. Each instancer still has its own subscribers;
/// one that joins a running watch gets its current state at once.
///
/// Consul keeps a blocking query open until its `wait` ends, even after the client has
/// closed the connection (hashicorp/consul#8524), and allows 200 connections per client
/// address. So when the last instancer of a watch stops, `stop()` returns at once and
/// the watch **lingers** until its query returns (at most one `wait`, 60 s by
/// default), reusing its connection instead of abandoning it on the agent; an
/// instancer built meanwhile takes it over. A lingering watch's thread is the one
/// exception to "joined on stop": it ends by itself once its query returns, and is
/// joined by the next instancer built on the client or when the last clone of the
/// client drops (which cuts a query still open short).
/// A custom [`Client`] shares watches only if it returns a
/// [`WatchGroup`](super::WatchGroup) from [`Client::watch_group`].
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
    watch: Mutex<Option<Watching>>,
}

/// How an instancer watches: with a watch of its own, or as a member of a shared one.
#[derive(Debug)]
enum Watching {
    Own(Worker),
    Shared(Membership),
}

/// Builds an [`Instancer`]; see [`Instancer::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct InstancerBuilder {
    client: Arc<dyn Client>,
    /// The client's group of shared watches, if it has one.
    group: Option<Arc<Group>>,
    watch: Watch,
    first_fetch_timeout: Duration,
    clock: Arc<dyn Clock>,
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
    consistency: Consistency,
}

impl Instancer {
    /// Starts a builder for `service`. The instancer's thread gets its own connections
    /// ([`Client::fork`]), so stopping it never disturbs other users of `client`.
    pub fn builder(client: &dyn Client, service: impl Into<String>) -> InstancerBuilder {
        InstancerBuilder {
            client: client.fork(),
            group: client.watch_group().map(|g| g.group().clone()),
            watch: Watch {
                service: service.into(),
                tags: Vec::new(),
                include_warning: false,
                wait: Duration::from_secs(60),
                min_interval: Duration::from_millis(100),
                backoff: (Duration::from_millis(100), Duration::from_secs(5)),
                consistency: Consistency::Default,
            },
            first_fetch_timeout: Duration::from_secs(1),
            clock: crate::clock::system(),
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
    /// round trips; changes arrive at once either way. Default 60 s (consul-template's):
    /// the agent keeps a query open until its `wait` ends even after the client has
    /// gone, so a shorter wait frees the connections of stopped watches sooner.
    ///
    /// Consul takes at most 10 minutes: `build()` refuses `Duration::ZERO` and anything
    /// over 10 minutes (`Duration::MAX` included) with [`Error::InvalidConfig`]
    /// (`wait`).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.watch.wait = wait;
        self
    }

    /// The least time between the starts of two queries, whatever the answers say: an
    /// agent that answers at once every time (a flapping service, a bug) is queried at
    /// most once per interval. A query that blocked for longer (the usual case: it
    /// waits for a change) is followed at once, so an isolated change still arrives in
    /// milliseconds; changes closer together than the interval are coalesced. Default
    /// 100 ms.
    ///
    /// - `Duration::ZERO` turns the limit off: every answer is followed at once.
    /// - At most 10 minutes, the longest `wait`: the limit is against spinning, not a
    ///   polling period. `build()` refuses more (`Duration::MAX` included) with
    ///   [`Error::InvalidConfig`] (`min_interval`).
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

    /// Which Consul server may answer: the leader (the default), or any server, maybe
    /// within a bound on how far it lags behind the leader. See [`Consistency`] for
    /// the trade-off. `build()` refuses a `max_stale` of `Duration::ZERO` with
    /// [`Error::InvalidConfig`] (`max_stale`); `Duration::MAX` bounds nothing.
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.watch.consistency = consistency;
        self
    }

    /// The clock every wait of the watch reads (the min interval, the backoff, the
    /// restart after a panic). Default: [`SystemClock`](crate::SystemClock); tests pass a
    /// [`ManualClock`](crate::ManualClock) and move it instead of sleeping.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validates, starts the `waypost-consul-watch` thread and waits for the first
    /// answer up to the first-fetch timeout. Errors: [`Error::InvalidConfig`] for an
    /// empty service name or tag, a zero or over-10-minute wait, an over-10-minute min
    /// interval, a backoff `max` below its `initial`, a zero `max_stale`; [`Error::Io`]
    /// if the thread cannot start.
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
        w.consistency.validate()?;
        let publisher = Arc::new(Publisher::new());
        let watching = match self.group.clone() {
            Some(group) => {
                let key = Key {
                    service: self.watch.service.clone(),
                    tags: self.watch.tags.clone(),
                    include_warning: self.watch.include_warning,
                    wait: self.watch.wait,
                    min_interval: self.watch.min_interval,
                    backoff: self.watch.backoff,
                    consistency: self.watch.consistency,
                    clock: Key::clock_id(&self.clock),
                };
                let timeout = self.first_fetch_timeout;
                Watching::Shared(group.join(key, &publisher, timeout, |main, wanted| {
                    self.start(main, Some(wanted))
                })?)
            }
            None => Watching::Own(self.start(publisher.clone(), None)?),
        };
        Ok(Instancer {
            publisher,
            watch: Mutex::new(Some(watching)),
        })
    }

    /// Starts the watch thread, publishing to `publisher`.
    fn start(self, publisher: Arc<Publisher>, wanted: Option<Wanted>) -> Result<Worker> {
        let spec = Spec {
            thread: "waypost-consul-watch",
            component: "consul watch",
            log_target: LOG,
            what: format!("{:?}", self.watch.service),
            min_interval: self.watch.min_interval,
            backoff: self.watch.backoff,
            first_fetch_timeout: self.first_fetch_timeout,
            clock: self.clock,
        };
        let cancel = self.client.clone();
        let source = Query {
            client: self.client,
            watch: self.watch,
            index: 0,
            wanted,
        };
        watch::start(spec, publisher, source, move || cancel.shutdown())
    }
}

/// The watch's requests: blocking queries from the last index.
struct Query {
    client: Arc<dyn Client>,
    watch: Watch,
    index: u64,
    /// For a shared watch: asked before each query whether an instancer still uses it.
    wanted: Option<Wanted>,
}

impl Source for Query {
    fn fetch(&mut self, _stop: &StopSignal, _early: &mut Early<'_>) -> Result<Fetched> {
        if self.wanted.as_ref().is_some_and(|w| !w.still()) {
            return Ok(Fetched::End);
        }
        let w = &self.watch;
        let query = HealthQuery {
            passing_only: !w.include_warning,
            tags: &w.tags,
            index: self.index,
            wait: w.wait,
            consistency: w.consistency,
        };
        // Each entry becomes its instance as the answer is read (HttpClient).
        match self.client.health_instances(&w.service, &query) {
            Ok(listed) => {
                self.index = next_index(self.index, listed.index);
                Ok(Fetched::Instances(listed.instances, Due::Now))
            }
            Err(err) => {
                // After an error start over: the agent may have restarted with a lower
                // index, which a blocking query would wait out in full.
                self.index = 0;
                Err(err)
            }
        }
    }

    fn reset(&mut self) {
        self.index = 0;
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
    let watch = self.watch.lock().take();
    match watch {
        Some(Watching::Own(mut worker)) => worker.stop(),
        // Returns at once; the shared watch ends after its query if nobody else uses it.
        Some(Watching::Shared(membership)) => membership.leave(&self.publisher),
        None => {}
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
