//! A Eureka server double: an in-process HTTP/1.1 server on `127.0.0.1:0` that answers
//! Eureka's REST operations the way Netflix's server does (the operations of the
//! "Eureka REST operations" page, with the status codes and rules of its source:
//! `ApplicationResource`, `InstanceResource`, `AbstractInstanceRegistry`, the
//! status-override rules, `EurekaJacksonCodec` and the XML converters). It is checked
//! against two third-party clients, eureka-js-client and py-eureka-client
//! (`tests/eureka_double.rs`), so waypost's Eureka client can be tested on it.
//!
//! # Modelled
//! - Paths under a prefix (`/eureka` by default, `/eureka/v2` as Netflix's), a trailing
//!   slash or not; app names case-insensitive, kept and written upper case; any other
//!   path answers 404 with an HTML page, as a servlet container; a known path with
//!   another method 405.
//! - Register `POST /apps/APP`: JSON (`{"instance":{..}}`) or XML (`<instance>..`), by
//!   Content-Type (neither: 415); checked as `addInstance` does (400 with its message
//!   for a missing instanceId/hostName/ipAddr/app/dataCenterInfo or a mismatched app);
//!   204. A stored instance with a later `lastDirtyTimestamp` wins over the new one.
//! - Renew `PUT /apps/APP/ID`: 200, 404 when unknown, and 404 when the client's
//!   `lastDirtyTimestamp` is later than the server's (register again); a non-numeric
//!   one 500. `?status=` is accepted and, as on the real server, changes nothing (its
//!   resource method never reads it); `?overriddenstatus=` only matters for replicas.
//! - Cancel `DELETE /apps/APP/ID`: 200 / 404.
//! - Status override `PUT .../status?value=S` (unknown instance 404, bad value 500):
//!   stored by id, it becomes `status` and `overriddenstatus` and sticks over the
//!   instance's own UP or OUT_OF_SERVICE (re-registrations, renewals) until
//!   `DELETE .../status[?value=S]`, which sets the status to `value`, UNKNOWN without
//!   one; the next renewal of an UNKNOWN instance answers 404, so the client registers
//!   again. An instance saying DOWN or STARTING is believed over an override.
//! - Metadata `PUT .../metadata?k=v`: added, then the instance registered again (a new
//!   lease, ADDED), as Eureka does.
//! - Reads `GET /apps`, `/apps/delta`, `/apps/APP` (404 unknown), `/apps/APP/ID`,
//!   `/instances/ID` (404 unknown), `/vips/V`, `/svips/V` (200, empty when none match,
//!   as the server's source does; the wiki says 404): JSON when `Accept` contains
//!   "json" (Eureka's own test), XML otherwise, in the codecs' shapes
//!   (`{"$":N,"@enabled":"true"}` / `<port enabled="true">N</port>`, `dataCenterInfo`'s
//!   `@class` / `class`, `leaseInfo`, the empty-map marker, `actionType`, ...).
//!   `apps__hashcode` is always over the whole registry (`DOWN_1_UP_2_`);
//!   `versions__delta` is 1 on full reads and grows with each change on the delta.
//! - Delta: each instance changed within the retention window (3 min by default), once,
//!   with its last action (ADDED, MODIFIED, DELETED) and current state (a deleted one as
//!   it was removed). Entries leave the window exactly at its end (Eureka sweeps every
//!   30 s).
//! - Leases: `leaseInfo.durationInSecs` (90 s when absent; [`Config::lease_duration`]
//!   overrides it), renewed by heartbeats and status changes, checked by an eviction
//!   timer ([`Config::eviction_interval`], 60 s by default). Eureka's `Lease.renew()`
//!   bug (a renewed lease lasts twice its duration) is NOT modelled unless
//!   [`Config::lease_bug`] is set. An evicted instance is cancelled (DELETED).
//!
//! # Not modelled
//! - Self-preservation: every expired lease is evicted, however many.
//! - Peer replication (`x-netflix-discovery-replication`, 409 conflicts), regions,
//!   zones, ASGs, Amazon data-center info, the `sid` field, `x-eureka-accept` compact
//!   formats, gzip answers.
//! - The 30 s read-only response cache: reads see every write at once.
//! - Eviction's compensation for a late timer, and its random order.
//! - Chunked request bodies; `Expect: 100-continue`.
//!
//! # Test hooks
//! [`requests`](EurekaDouble::requests) and the bounded waits on them
//! ([`wait_request`](EurekaDouble::wait_request)) or on the registry
//! ([`wait_instances`](EurekaDouble::wait_instances)) are channel-based;
//! [`forget`](EurekaDouble::forget) drops an instance behind a client's back;
//! [`stop`](EurekaDouble::stop) / [`start_again`](EurekaDouble::start_again) keep the
//! port (and the registry; [`clear`](EurekaDouble::clear) empties it, as a restart);
//! [`script_reads`](EurekaDouble::script_reads) / [`script_writes`](EurekaDouble::script_writes)
//! make the next requests answer something broken ([`Broken`]).
//!
//! Threads: `eureka-double` accepts, `eureka-double-conn` serves one connection each
//! (keep-alive), `eureka-double-evict` evicts; all are joined by `stop` and on drop.

mod hooks;
mod instance;
mod registry;
mod render;
mod routes;
mod server;

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select, tick, unbounded};
use parking_lot::Mutex;

use super::BOUND;
use super::fake_http::Seen;
pub use hooks::{Broken, Logged, Registered};
use hooks::{broken_reply, registered};
use registry::{Registry, Rules};
use routes::Reply;

/// How the double is set up; [`start`](Config::start) starts it.
#[derive(Debug, Clone)]
pub struct Config {
    prefix: String,
    eviction_interval: Duration,
    rules: Rules,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            prefix: "/eureka".into(),
            eviction_interval: Duration::from_secs(60),
            rules: Rules {
                lease_override: None,
                delta_retention: Duration::from_secs(180),
                lease_bug: false,
            },
        }
    }
}

impl Config {
    /// The path the operations live under: `/eureka` (Spring Cloud's; the default) or
    /// `/eureka/v2` (Netflix's).
    pub fn prefix(mut self, prefix: &str) -> Config {
        self.prefix = format!("/{}", prefix.trim_matches('/'));
        self
    }

    /// How often expired leases are evicted (Eureka: 60 s, the default).
    pub fn eviction_interval(mut self, every: Duration) -> Config {
        self.eviction_interval = every;
        self
    }

    /// Every lease lasts `duration`, whatever `leaseInfo.durationInSecs` says.
    pub fn lease_duration(mut self, duration: Duration) -> Config {
        self.rules.lease_override = Some(duration);
        self
    }

    /// How long a change stays in `/apps/delta` (Eureka: 3 min, the default).
    pub fn delta_retention(mut self, retention: Duration) -> Config {
        self.rules.delta_retention = retention;
        self
    }

    /// Models Eureka's lease bug: once renewed, a lease lasts twice its duration.
    pub fn lease_bug(mut self, on: bool) -> Config {
        self.rules.lease_bug = on;
        self
    }

    /// Starts the double on a free port.
    pub fn start(self) -> EurekaDouble {
        EurekaDouble::with(self)
    }
}

/// What the threads share.
struct Shared {
    prefix: String,
    started: Instant,
    registry: Mutex<Registry>,
    /// The log, and the senders of the waits on it.
    log: Mutex<(Vec<Logged>, Vec<Sender<Logged>>)>,
    /// Woken after every request and eviction.
    watchers: Mutex<Vec<Sender<()>>>,
    reads: Mutex<VecDeque<Broken>>,
    writes: Mutex<VecDeque<Broken>>,
}

/// The double; stopped (threads joined) on drop. See the module docs.
pub struct EurekaDouble {
    shared: Arc<Shared>,
    port: u16,
    serving: Mutex<Option<server::Serving>>,
    /// Dropped to end the evictor.
    stop_evictor: Option<Sender<()>>,
    evictor: Option<JoinHandle<()>>,
}

impl EurekaDouble {
    /// A double with the defaults (`/eureka`, Eureka's timers).
    pub fn start() -> EurekaDouble {
        Config::default().start()
    }

    /// A [`Config`] to set up.
    pub fn config() -> Config {
        Config::default()
    }

    fn with(config: Config) -> EurekaDouble {
        let shared = Arc::new(Shared {
            prefix: config.prefix,
            started: Instant::now(),
            registry: Mutex::new(Registry::new(config.rules)),
            log: Mutex::new((Vec::new(), Vec::new())),
            watchers: Mutex::new(Vec::new()),
            reads: Mutex::new(VecDeque::new()),
            writes: Mutex::new(VecDeque::new()),
        });
        let serving = server::Serving::start(0, shared.clone());
        let (stop_evictor, stopped) = crossbeam_channel::bounded::<()>(0);
        let evictor = {
            let shared = shared.clone();
            let every = config.eviction_interval;
            std::thread::Builder::new()
                .name("eureka-double-evict".into())
                .spawn(move || evict_loop(&shared, &stopped, every))
                .expect("spawn the evictor")
        };
        EurekaDouble {
            port: serving.port(),
            shared,
            serving: Mutex::new(Some(serving)),
            stop_evictor: Some(stop_evictor),
            evictor: Some(evictor),
        }
    }

    /// `http://127.0.0.1:PORT/eureka` (the prefix, no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.shared.prefix)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `/eureka`, or the prefix configured.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().0.clone()
    }

    /// How many requests came so far: a mark for [`wait_request_from`](Self::wait_request_from).
    pub fn mark(&self) -> usize {
        self.shared.log.lock().0.len()
    }

    /// The first request (since the start) that `want` accepts, waiting for it within
    /// [`BOUND`]; panics naming `what` when none comes.
    pub fn wait_request(&self, what: &str, want: impl Fn(&Logged) -> bool) -> Logged {
        self.wait_request_from(0, what, want)
    }

    /// The first request from number `mark` on (see [`mark`](Self::mark)) that `want`
    /// accepts, within [`BOUND`].
    pub fn wait_request_from(
        &self,
        mark: usize,
        what: &str,
        want: impl Fn(&Logged) -> bool,
    ) -> Logged {
        let rx = {
            let mut log = self.shared.log.lock();
            if let Some(found) = log.0.iter().skip(mark).find(|r| want(r)) {
                return found.clone();
            }
            let (tx, rx) = unbounded();
            log.1.push(tx);
            rx
        };
        let deadline = Instant::now() + BOUND;
        loop {
            match rx.recv_deadline(deadline) {
                Ok(r) if want(&r) => return r,
                Ok(_) => {}
                Err(_) => panic!(
                    "no request {what} within {BOUND:?}; requests: {:#?}",
                    self.summary()
                ),
            }
        }
    }

    /// `METHOD path?query -> status`, one per request: for failure messages.
    pub fn summary(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| {
                let q = if r.query.is_empty() { "" } else { "?" };
                format!("{} {}{q}{} -> {}", r.method, r.path, r.query, r.status)
            })
            .collect()
    }

    /// The instances of `app` (any case), by id.
    pub fn instances(&self, app: &str) -> Vec<Registered> {
        let registry = self.shared.registry.lock();
        let app = app.to_uppercase();
        registry
            .all()
            .filter(|e| e.info.app == app)
            .map(registered)
            .collect()
    }

    /// Every instance, by app then id.
    pub fn all_instances(&self) -> Vec<Registered> {
        self.shared.registry.lock().all().map(registered).collect()
    }

    /// Waits within [`BOUND`] until `want` accepts the instances of `app`; they are
    /// checked after every request and eviction. Panics naming `what` otherwise.
    pub fn wait_instances(
        &self,
        app: &str,
        what: &str,
        want: impl Fn(&[Registered]) -> bool,
    ) -> Vec<Registered> {
        let (tx, rx) = unbounded();
        self.shared.watchers.lock().push(tx);
        let deadline = Instant::now() + BOUND;
        loop {
            let now = self.instances(app);
            if want(&now) {
                return now;
            }
            if rx.recv_deadline(deadline).is_err() {
                panic!("{what}: not within {BOUND:?}; {app}: {now:#?}");
            }
        }
    }

    /// Drops an instance as if the server had lost it (no DELETED in the delta): the
    /// client's next renewal gets 404. False when there was none.
    pub fn forget(&self, app: &str, id: &str) -> bool {
        let gone = self.shared.registry.lock().forget(&app.to_uppercase(), id);
        self.shared.notify();
        gone
    }

    /// Empties the registry, as a server started afresh.
    pub fn clear(&self) {
        self.shared.registry.lock().clear();
        self.shared.notify();
    }

    /// The next `n` reads (GET) answer `broken` instead; they are logged with that
    /// status.
    pub fn script_reads(&self, n: usize, broken: Broken) {
        self.shared
            .reads
            .lock()
            .extend(std::iter::repeat_n(broken, n));
    }

    /// The next `n` writes (POST, PUT, DELETE) answer `broken` and change nothing.
    pub fn script_writes(&self, n: usize, broken: Broken) {
        self.shared
            .writes
            .lock()
            .extend(std::iter::repeat_n(broken, n));
    }

    /// Stops serving: the port is closed and every open connection cut (threads
    /// joined); the registry is kept and leases go on expiring.
    pub fn stop(&self) {
        if let Some(serving) = self.serving.lock().take() {
            serving.stop();
        }
    }

    /// Serves again on the same port (after [`stop`](Self::stop)); panics when the port
    /// was taken meanwhile.
    pub fn start_again(&self) {
        let mut serving = self.serving.lock();
        if serving.is_none() {
            *serving = Some(server::Serving::start(self.port, self.shared.clone()));
        }
    }

    /// True while serving.
    pub fn is_serving(&self) -> bool {
        self.serving.lock().is_some()
    }
}

impl Drop for EurekaDouble {
    fn drop(&mut self) {
        self.stop();
        drop(self.stop_evictor.take());
        if let Some(evictor) = self.evictor.take() {
            let _ = evictor.join();
        }
    }
}

impl std::fmt::Debug for EurekaDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EurekaDouble")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Reads XML into the JSON shape of Eureka's codecs (attributes as `@name`, an
/// element's text beside attributes as `$`; a repeated child, or one named in `arrays`,
/// as an array): what the double accepts as an XML registration, and what tests compare
/// its XML reads with. `None` when it is not well formed.
pub fn xml_to_json(text: &str, arrays: &[&str]) -> Option<serde_json::Value> {
    render::xml_to_json(text, arrays)
}

fn evict_loop(shared: &Shared, stopped: &Receiver<()>, every: Duration) {
    let ticks = tick(every);
    loop {
        select! {
            recv(stopped) -> _ => return,
            recv(ticks) -> _ => {
                let evicted = shared.registry.lock().evict();
                if !evicted.is_empty() {
                    shared.notify();
                }
            }
        }
    }
}

impl Shared {
    fn notify(&self) {
        self.watchers.lock().retain(|tx| tx.send(()).is_ok());
    }

    /// Answers one request and logs it: `None` to close the connection unanswered.
    fn answer(&self, seen: Seen) -> Option<Reply> {
        let scripted = match seen.method.as_str() {
            "GET" | "HEAD" => self.reads.lock().pop_front(),
            _ => self.writes.lock().pop_front(),
        };
        let reply = match scripted {
            Some(broken) => broken_reply(broken),
            None => Some(self.route(&seen)),
        };
        let logged = Logged {
            status: reply.as_ref().map_or(0, |r| r.status),
            at: self.started.elapsed(),
            seen,
        };
        {
            let mut log = self.log.lock();
            log.1.retain(|tx| tx.send(logged.clone()).is_ok());
            log.0.push(logged);
        }
        self.notify();
        reply
    }

    fn route(&self, seen: &Seen) -> Reply {
        let path = seen.path.as_str();
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                routes::route(&mut self.registry.lock(), seen, rest)
            }
            _ => Reply::html_error(404),
        }
    }
}
