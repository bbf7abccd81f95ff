//! An in-memory etcd behind the [`Client`] trait, for unit tests.
//!
//! A store with a revision counter, keys with their value, mod revision and lease,
//! leases that expire on a [`ManualClock`], a history of changes kept since the last
//! compaction, and watch streams that deliver it as etcd does: first a `created`
//! message whose header is the store's revision at that moment, then one message with
//! every change from the start revision on (the catch-up), then a message per change.
//! A start revision below the compaction point is cancelled with its
//! `compact_revision`.
//!
//! Nothing sleeps. A watch blocks on a channel until a change, a scripted end, its
//! fork's [`shutdown`](Client::shutdown), or [`Etcd::advance`] moving the clock past
//! its idle time (then an [`HttpErrorKind::Timeout`] error, as the real client's read
//! timeout gives). The fake arms no timer on the clock, so a test can read
//! [`ManualClock::pending_timers`] to know the code under test is waiting.
//!
//! The test's handle is [`Etcd`]: it changes the store, scripts failures (the next
//! calls of a kind fail, the next watches fail, end, or are cancelled; open streams
//! break or are cancelled), runs a hook just before or after a range's snapshot, and reads
//! every call made ([`Etcd::next_op`]) and how many of each kind ([`Etcd::count`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use parking_lot::Mutex;

use super::client::{
    Client, EventKind, KeyValue, Lease, Range, WatchEvent, WatchRequest, WatchResponse,
};
use crate::{Clock, Error, HttpError, HttpErrorKind, ManualClock, Result};

/// The capturing logger of the integration tests (one per test binary: `log` takes one
/// logger per process), for the unit tests that check what is logged.
#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/support/logs.rs"]
pub(crate) mod logs;

/// Generous bound on anything a test waits for.
pub(crate) const BOUND: Duration = Duration::from_secs(10);

/// The kinds of call, for [`Etcd::count`] and [`Etcd::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Range,
    Watch,
    Grant,
    KeepAlive,
    Revoke,
    Put,
    Delete,
}

/// A call the fake saw, recorded once its effect is in the store (so a test that
/// read it sees the store changed), in the order the calls ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A range; the revision it answered (0 when it failed).
    Range {
        revision: i64,
    },
    /// A watch from this revision: recorded once the watch is open (a change made
    /// after it is delivered), or when it failed or ended at once.
    Watch {
        start_revision: i64,
    },
    Grant {
        ttl: Duration,
    },
    KeepAlive(i64),
    Revoke(i64),
    Put {
        key: String,
        lease: i64,
    },
    Delete(String),
}

/// What the next watch does instead of following the store.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Fails before any message (a refused connect, a 5xx answer).
    Fail(Error),
    /// The server ends the stream before any message.
    End,
    /// One message, `created` and `canceled` with this reason (etcd's "permission
    /// denied").
    Cancel(String),
    /// The `created` message, then this failure (`None`: the server ends the stream).
    BreakAfterCreated(Option<Error>),
}

/// What reaches an open watch.
#[derive(Debug)]
enum Signal {
    /// Changes made at `revision`, when the clock read `at` (the stream's idle time
    /// counts from there, whenever the watch gets to read them).
    Changes(i64, Vec<WatchEvent>, Instant),
    /// The clock moved: check the idle time.
    Tick,
    /// The stream breaks: with an error, or ended by the server (`None`).
    Break(Option<Error>),
    /// The server cancels the watch with a reason.
    Cancel(String),
}

#[derive(Debug)]
struct LeaseState {
    ttl: Duration,
    deadline: Instant,
}

#[derive(Debug)]
struct Watcher {
    id: u64,
    prefix: Vec<u8>,
    tx: Sender<Signal>,
}

#[derive(Debug, Default)]
struct Store {
    revision: i64,
    /// History before this revision is gone (0: never compacted).
    compacted: i64,
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    /// Every change since the compaction point, in revision order.
    history: Vec<WatchEvent>,
    leases: BTreeMap<i64, LeaseState>,
    next_lease: i64,
    watchers: Vec<Watcher>,
    /// The clock's time, read when the lock was taken.
    now: Option<Instant>,
}

type Hook = Box<dyn FnOnce(&Etcd) + Send>;

struct Shared {
    clock: ManualClock,
    store: Mutex<Store>,
    ops: Sender<(Op, Instant)>,
    counts: Mutex<HashMap<Kind, usize>>,
    failures: Mutex<HashMap<Kind, VecDeque<Error>>>,
    plans: Mutex<VecDeque<Plan>>,
    before_range: Mutex<VecDeque<Hook>>,
    after_range: Mutex<VecDeque<Hook>>,
    next_watcher: AtomicU64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// One handle; forks share the store and the script, each has its own shutdown.
#[derive(Debug)]
pub(crate) struct FakeClient {
    shared: Arc<Shared>,
    cancel: Mutex<Option<Sender<()>>>,
    cancelled: Receiver<()>,
}

/// The test's side: the store, the script, the record of calls.
#[derive(Debug, Clone)]
pub(crate) struct Etcd {
    shared: Arc<Shared>,
    ops: Receiver<(Op, Instant)>,
}

/// A fake etcd on `clock`, and the client to hand to the code under test.
pub(crate) fn fake(clock: &ManualClock) -> (FakeClient, Etcd) {
    let (ops, ops_rx) = unbounded();
    let shared = Arc::new(Shared {
        clock: clock.clone(),
        store: Mutex::new(Store {
            revision: 1, // etcd's revision starts at 1 in an empty store
            next_lease: 0x1000,
            ..Store::default()
        }),
        ops,
        counts: Mutex::default(),
        failures: Mutex::default(),
        plans: Mutex::default(),
        before_range: Mutex::default(),
        after_range: Mutex::default(),
        next_watcher: AtomicU64::new(0),
    });
    let etcd = Etcd {
        shared: shared.clone(),
        ops: ops_rx,
    };
    (FakeClient::handle(shared), etcd)
}

/// An HTTP error of `kind` as the real client would report it.
pub(crate) fn http_error(kind: HttpErrorKind) -> Error {
    HttpError::new("etcd", "POST /v3/fake", "http://fake", kind).into()
}

/// A status error with etcd's code and message, as the real client reports an
/// answer such as 403 "permission denied".
pub(crate) fn status_error(status: u16, code: i64, message: &str) -> Error {
    HttpError::new(
        "etcd",
        "POST /v3/fake",
        "http://fake",
        HttpErrorKind::Status,
    )
    .with_status(status)
    .with_code(code)
    .with_excerpt(message)
    .into()
}

fn text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

impl Store {
    /// Records `events` as the changes of a new revision and tells the watchers.
    fn commit(&mut self, events: Vec<WatchEvent>) -> i64 {
        let now = self.now.expect("read under the lock");
        self.revision += 1;
        let revision = self.revision;
        let events: Vec<WatchEvent> = events
            .into_iter()
            .map(|mut e| {
                e.kv.mod_revision = revision;
                e
            })
            .collect();
        for event in &events {
            match event.kind {
                EventKind::Put => {
                    self.kvs.insert(event.kv.key.clone(), event.kv.clone());
                }
                EventKind::Delete => {
                    self.kvs.remove(&event.kv.key);
                }
            }
        }
        self.history.extend(events.iter().cloned());
        for watcher in &self.watchers {
            let mine: Vec<WatchEvent> = events
                .iter()
                .filter(|e| e.kv.key.starts_with(&watcher.prefix))
                .cloned()
                .collect();
            if !mine.is_empty() {
                let _ = watcher.tx.send(Signal::Changes(revision, mine, now));
            }
        }
        revision
    }

    fn put(&mut self, key: &[u8], value: &[u8], lease: i64) -> i64 {
        let mut kv = KeyValue::new(key, value, 0);
        kv.lease = lease;
        self.commit(vec![WatchEvent::put(kv)])
    }

    /// Deletes `keys` that exist, in one revision; the revision, or `None` when none
    /// existed (etcd does not move its revision then).
    fn delete(&mut self, keys: &[Vec<u8>]) -> Option<i64> {
        let events: Vec<WatchEvent> = keys
            .iter()
            .filter(|k| self.kvs.contains_key(*k))
            .map(|k| WatchEvent::delete(k.clone(), 0))
            .collect();
        (!events.is_empty()).then(|| self.commit(events))
    }

    /// Revokes lease `id`, deleting its keys; false if unknown.
    fn revoke(&mut self, id: i64) -> bool {
        if self.leases.remove(&id).is_none() {
            return false;
        }
        let keys: Vec<Vec<u8>> = (self.kvs.values())
            .filter(|kv| kv.lease == id)
            .map(|kv| kv.key.clone())
            .collect();
        self.delete(&keys);
        true
    }

    /// Reads the clock, and revokes every lease whose deadline it has reached.
    fn expire(&mut self, clock: &ManualClock) {
        let now = clock.now();
        self.now = Some(now);
        let due: Vec<i64> = (self.leases.iter())
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.revoke(id);
        }
    }
}

impl Etcd {
    fn store(&self) -> parking_lot::MutexGuard<'_, Store> {
        let mut store = self.shared.store.lock();
        store.expire(&self.shared.clock);
        store
    }

    /// Puts `key` = `value` without a lease; the new revision.
    pub(crate) fn put(&self, key: &str, value: &str) -> i64 {
        self.store().put(key.as_bytes(), value.as_bytes(), 0)
    }

    /// Deletes `key`; the new revision, or `None` when it did not exist.
    pub(crate) fn delete(&self, key: &str) -> Option<i64> {
        self.store().delete(&[key.as_bytes().to_vec()])
    }

    /// Compacts the history: a watch from below `revision` is cancelled.
    pub(crate) fn compact(&self, revision: i64) {
        let mut store = self.store();
        assert!(revision <= store.revision, "compacting the future");
        store.compacted = revision;
        store.history.retain(|e| e.kv.mod_revision >= revision);
    }

    /// The store's revision.
    pub(crate) fn revision(&self) -> i64 {
        self.store().revision
    }

    /// The value of `key` and its lease.
    pub(crate) fn get(&self, key: &str) -> Option<(String, i64)> {
        let store = self.store();
        let kv = store.kvs.get(key.as_bytes())?;
        Some((text(&kv.value), kv.lease))
    }

    /// The leases etcd knows, with their TTLs.
    pub(crate) fn leases(&self) -> Vec<(i64, Duration)> {
        (self.store().leases.iter())
            .map(|(id, l)| (*id, l.ttl))
            .collect()
    }

    /// Revokes lease `id` (deleting its keys), as an operator or a restart from an
    /// empty data dir would: a keepalive of it then answers `None`.
    pub(crate) fn revoke(&self, id: i64) {
        self.store().revoke(id);
    }

    /// Moves the clock forward, expires the leases whose time passed, and lets open
    /// watches check their idle time.
    pub(crate) fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
        let store = self.store();
        for watcher in &store.watchers {
            let _ = watcher.tx.send(Signal::Tick);
        }
    }

    /// The next call of `kind` fails with `err` (several calls queue up, in order).
    pub(crate) fn fail_next(&self, kind: Kind, err: Error) {
        assert_ne!(kind, Kind::Watch, "script watches with plan()");
        self.shared
            .failures
            .lock()
            .entry(kind)
            .or_default()
            .push_back(err);
    }

    /// What the next watch does (each plan serves one watch, in order; with none
    /// left, watches follow the store).
    pub(crate) fn plan(&self, plan: Plan) {
        self.shared.plans.lock().push_back(plan);
    }

    /// Breaks every open watch stream (after it delivered its `created` message):
    /// with `err`, or ended by the server when `None`.
    pub(crate) fn break_streams(&self, err: Option<Error>) {
        let mut store = self.store();
        store.watchers.retain(|w| {
            let _ = w.tx.send(Signal::Break(err.as_ref().map(clone_error)));
            false
        });
    }

    /// Cancels every open watch with `reason`.
    pub(crate) fn cancel_streams(&self, reason: &str) {
        let mut store = self.store();
        store.watchers.retain(|w| {
            let _ = w.tx.send(Signal::Cancel(reason.into()));
            false
        });
    }

    /// How many watches are open.
    pub(crate) fn open_watches(&self) -> usize {
        self.shared.store.lock().watchers.len()
    }

    /// Runs `hook` when the next range starts, before its snapshot: a change made
    /// there is in the list.
    pub(crate) fn before_next_range(&self, hook: impl FnOnce(&Etcd) + Send + 'static) {
        self.shared.before_range.lock().push_back(Box::new(hook));
    }

    /// Runs `hook` right after the next range has taken its snapshot, before it
    /// answers: a change made there lands between the list and the watch.
    pub(crate) fn after_next_range(&self, hook: impl FnOnce(&Etcd) + Send + 'static) {
        self.shared.after_range.lock().push_back(Box::new(hook));
    }

    /// How many calls of `kind` were made.
    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.shared.counts.lock().get(&kind).copied().unwrap_or(0)
    }

    /// The next call recorded, waiting at most [`BOUND`].
    pub(crate) fn next_op(&self) -> Op {
        self.next_op_at().0
    }

    /// The next call recorded with the clock's time when it was made.
    pub(crate) fn next_op_at(&self) -> (Op, Instant) {
        self.ops
            .recv_timeout(BOUND)
            .expect("a call within the bound")
    }

    /// The calls recorded and not read yet, without waiting.
    pub(crate) fn ops_so_far(&self) -> Vec<Op> {
        self.ops.try_iter().map(|(op, _)| op).collect()
    }
}

/// A copy of an error the fake scripted (the fake only scripts HTTP errors and
/// invalid configs).
fn clone_error(err: &Error) -> Error {
    match err {
        Error::Http(h) => {
            let mut copy = HttpError::new(h.backend, h.endpoint.clone(), h.server.clone(), h.kind);
            copy.status = h.status;
            copy.excerpt = h.excerpt.clone();
            copy.code = h.code;
            copy.into()
        }
        other => Error::invalid_config("fake", other.to_string()),
    }
}

/// Removes its watcher from the store when the watch call returns.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared
            .store
            .lock()
            .watchers
            .retain(|w| w.id != self.id);
    }
}

impl FakeClient {
    fn handle(shared: Arc<Shared>) -> FakeClient {
        let (cancel, cancelled) = crossbeam_channel::bounded(0);
        FakeClient {
            shared,
            cancel: Mutex::new(Some(cancel)),
            cancelled,
        }
    }

    /// Counts a call of `kind`; fails it when shut down or scripted to fail.
    fn begin(&self, kind: Kind) -> Result<()> {
        *self.shared.counts.lock().entry(kind).or_default() += 1;
        if self.cancel.lock().is_none() {
            return Err(http_error(HttpErrorKind::Cancelled));
        }
        let scripted = (self.shared.failures.lock().get_mut(&kind)).and_then(VecDeque::pop_front);
        scripted.map_or(Ok(()), Err)
    }

    fn record(&self, op: Op) {
        let _ = self.shared.ops.send((op, self.shared.clock.now()));
    }

    /// Records `op` once its effect is in the store, and passes its result on.
    fn done<T>(&self, op: Op, result: Result<T>) -> Result<T> {
        self.record(op);
        result
    }

    fn store(&self) -> parking_lot::MutexGuard<'_, Store> {
        let mut store = self.shared.store.lock();
        store.expire(&self.shared.clock);
        store
    }

    fn etcd(&self) -> Etcd {
        // The hook's handle records nothing itself: its receiver is never read.
        Etcd {
            shared: self.shared.clone(),
            ops: unbounded().1,
        }
    }

    /// Follows the store from `start` until the stream ends; see the module docs.
    fn follow(
        &self,
        request: &WatchRequest<'_>,
        after_created: Option<Option<Error>>,
        each: &mut dyn FnMut(WatchResponse) -> bool,
    ) -> Result<()> {
        let start = request.start_revision;
        let (tx, rx) = unbounded();
        let id = self.shared.next_watcher.fetch_add(1, Ordering::Relaxed);
        let (current, compacted, catch_up) = {
            let mut store = self.store();
            let compacted = (start > 0 && start < store.compacted).then_some(store.compacted);
            let catch_up: Vec<WatchEvent> = (store.history.iter())
                .filter(|e| e.kv.mod_revision >= start && e.kv.key.starts_with(request.prefix))
                .cloned()
                .collect();
            if compacted.is_none() && after_created.is_none() {
                store.watchers.push(Watcher {
                    id,
                    prefix: request.prefix.to_vec(),
                    tx,
                });
            }
            (store.revision, compacted, catch_up)
        };
        let opened = self.shared.clock.now();
        let _registered = Registered {
            shared: &self.shared,
            id,
        };
        self.record(Op::Watch {
            start_revision: start,
        });
        if let Some(compact_revision) = compacted {
            each(WatchResponse {
                created: true,
                canceled: true,
                compact_revision,
                ..WatchResponse::default()
            });
            return Ok(());
        }
        // As etcd: the created message carries the store's revision now, which may be
        // past changes the catch-up message brings next.
        let created = WatchResponse {
            revision: current,
            created: true,
            ..WatchResponse::default()
        };
        if !each(created) {
            return Ok(());
        }
        if let Some(end) = after_created {
            return end.map_or(Ok(()), Err);
        }
        if !catch_up.is_empty() {
            let message = WatchResponse {
                revision: current,
                events: catch_up,
                ..WatchResponse::default()
            };
            if !each(message) {
                return Ok(());
            }
        }
        let clock = &self.shared.clock;
        let mut last = opened;
        loop {
            let signal = select! {
                recv(rx) -> signal => signal.expect("the store holds the sender while registered"),
                recv(self.cancelled) -> _ => return Err(http_error(HttpErrorKind::Cancelled)),
            };
            match signal {
                Signal::Changes(revision, events, at) => {
                    let message = WatchResponse {
                        revision,
                        events,
                        ..WatchResponse::default()
                    };
                    if !each(message) {
                        return Ok(());
                    }
                    last = at;
                }
                Signal::Tick => {
                    if clock.now().saturating_duration_since(last) >= request.idle {
                        return Err(http_error(HttpErrorKind::Timeout));
                    }
                }
                Signal::Break(err) => return err.map_or(Ok(()), Err),
                Signal::Cancel(reason) => {
                    each(WatchResponse {
                        canceled: true,
                        cancel_reason: reason,
                        ..WatchResponse::default()
                    });
                    return Ok(());
                }
            }
        }
    }
}

impl Client for FakeClient {
    fn range_prefix(&self, prefix: &[u8]) -> Result<Range> {
        if let Err(err) = self.begin(Kind::Range) {
            self.record(Op::Range { revision: 0 });
            return Err(err);
        }
        let hook = self.shared.before_range.lock().pop_front();
        if let Some(hook) = hook {
            hook(&self.etcd());
        }
        let range = {
            let store = self.store();
            let kvs = (store.kvs.values())
                .filter(|kv| kv.key.starts_with(prefix))
                .cloned()
                .collect();
            Range::new(kvs, store.revision)
        };
        let hook = self.shared.after_range.lock().pop_front();
        if let Some(hook) = hook {
            hook(&self.etcd());
        }
        self.record(Op::Range {
            revision: range.revision,
        });
        Ok(range)
    }

    fn watch(
        &self,
        request: &WatchRequest<'_>,
        each: &mut dyn FnMut(WatchResponse) -> bool,
    ) -> Result<()> {
        let started = self.begin(Kind::Watch);
        let plan = match started {
            Ok(()) => self.shared.plans.lock().pop_front(),
            Err(_) => None,
        };
        let early = |this: &Self| {
            this.record(Op::Watch {
                start_revision: request.start_revision,
            })
        };
        match (started, plan) {
            (Err(err), _) => {
                early(self);
                Err(err)
            }
            (Ok(()), None) => self.follow(request, None, each),
            (Ok(()), Some(Plan::BreakAfterCreated(end))) => self.follow(request, Some(end), each),
            (Ok(()), Some(Plan::Fail(err))) => {
                early(self);
                Err(err)
            }
            (Ok(()), Some(Plan::End)) => {
                early(self);
                Ok(())
            }
            (Ok(()), Some(Plan::Cancel(reason))) => {
                early(self);
                each(WatchResponse {
                    created: true,
                    canceled: true,
                    cancel_reason: reason,
                    ..WatchResponse::default()
                });
                Ok(())
            }
        }
    }

    fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        let result = self.begin(Kind::Grant).map(|()| {
            let ttl = Duration::from_secs(ttl.as_secs().max(1));
            let deadline = self.shared.clock.now() + ttl;
            let mut store = self.store();
            store.next_lease += 1;
            let id = store.next_lease;
            store.leases.insert(id, LeaseState { ttl, deadline });
            Lease::new(id, ttl)
        });
        self.done(Op::Grant { ttl }, result)
    }

    fn keep_alive(&self, id: i64) -> Result<Option<Duration>> {
        let result = self.begin(Kind::KeepAlive).map(|()| {
            let now = self.shared.clock.now();
            let mut store = self.store();
            store.leases.get_mut(&id).map(|lease| {
                lease.deadline = now + lease.ttl;
                lease.ttl
            })
        });
        self.done(Op::KeepAlive(id), result)
    }

    fn revoke_lease(&self, id: i64) -> Result<()> {
        let result = self.begin(Kind::Revoke).map(|()| {
            self.store().revoke(id);
        });
        self.done(Op::Revoke(id), result)
    }

    fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<()> {
        let result = self.begin(Kind::Put).and_then(|()| {
            let mut store = self.store();
            if lease != 0 && !store.leases.contains_key(&lease) {
                return Err(status_error(
                    404,
                    5,
                    "etcdserver: requested lease not found",
                ));
            }
            store.put(key, value, lease);
            Ok(())
        });
        let op = Op::Put {
            key: text(key),
            lease,
        };
        self.done(op, result)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let result = self.begin(Kind::Delete).map(|()| {
            self.store().delete(&[key.to_vec()]);
        });
        self.done(Op::Delete(text(key)), result)
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(FakeClient::handle(self.shared.clone()))
    }

    fn shutdown(&self) {
        self.cancel.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(
        client: &FakeClient,
        start: i64,
        stop_after: usize,
    ) -> (Vec<WatchResponse>, Result<()>) {
        let mut got = Vec::new();
        let request = WatchRequest {
            prefix: b"/s/",
            start_revision: start,
            idle: Duration::from_secs(5),
        };
        let result = client.watch(&request, &mut |m| {
            got.push(m);
            got.len() < stop_after
        });
        (got, result)
    }

    #[test]
    fn the_store_keeps_revisions_leases_and_history() {
        let clock = ManualClock::new();
        let (client, etcd) = fake(&clock);
        let r1 = etcd.put("/s/a", "1");
        etcd.put("/other", "x");
        let range = client.range_prefix(b"/s/").unwrap();
        assert_eq!(range.revision, r1 + 1);
        assert_eq!(range.revision, etcd.revision());
        assert_eq!(range.kvs.len(), 1);
        assert_eq!(range.kvs[0].mod_revision, r1);

        let lease = client.grant_lease(Duration::from_secs(3)).unwrap();
        client.put(b"/s/b", b"2", lease.id).unwrap();
        assert_eq!(etcd.get("/s/b"), Some(("2".into(), lease.id)));
        etcd.advance(Duration::from_secs(2));
        assert_eq!(
            client.keep_alive(lease.id).unwrap(),
            Some(Duration::from_secs(3))
        );
        etcd.advance(Duration::from_secs(2));
        assert!(etcd.get("/s/b").is_some(), "renewed: not expired yet");
        etcd.advance(Duration::from_secs(1));
        assert_eq!(etcd.get("/s/b"), None, "expired with its lease");
        assert_eq!(client.keep_alive(lease.id).unwrap(), None);
        assert!(client.put(b"/s/c", b"3", lease.id).is_err());
        assert_eq!(etcd.delete("/s/none"), None);
    }

    #[test]
    fn a_watch_catches_up_then_follows_and_a_compacted_start_is_cancelled() {
        let clock = ManualClock::new();
        let (client, etcd) = fake(&clock);
        let r1 = etcd.put("/s/a", "1");
        let r2 = etcd.put("/s/b", "2");
        let (got, result) = collect(&client, r1, 2);
        result.unwrap();
        assert!(got[0].created && got[0].revision == r2);
        let revisions: Vec<i64> = got[1].events.iter().map(|e| e.kv.mod_revision).collect();
        assert_eq!(revisions, [r1, r2]);

        etcd.compact(r2);
        let (got, result) = collect(&client, r1, 9);
        result.unwrap();
        assert!(got[0].canceled);
        assert_eq!(got[0].compact_revision, r2);
        assert_eq!(etcd.open_watches(), 0);

        // Live changes, then the idle time passing.
        let etcd2 = etcd.clone();
        let follower = std::thread::Builder::new()
            .name("fake-etcd-follower".into())
            .spawn(move || collect(&client, r2 + 1, 9))
            .unwrap();
        assert!(matches!(etcd2.next_op(), Op::Watch { .. }));
        assert!(matches!(etcd2.next_op(), Op::Watch { .. }));
        assert!(
            matches!(etcd2.next_op(), Op::Watch { start_revision } if start_revision == r2 + 1)
        );
        let r3 = etcd2.put("/s/c", "3");
        etcd2.advance(Duration::from_secs(5));
        let (got, result) = follower.join().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].events[0].kv.mod_revision, r3);
        assert!(result.unwrap_err().is_timeout());
    }

    #[test]
    fn shutdown_cuts_only_its_own_fork() {
        let clock = ManualClock::new();
        let (client, etcd) = fake(&clock);
        let fork = client.fork();
        let watching = fork.clone();
        let watcher = std::thread::Builder::new()
            .name("fake-etcd-watcher".into())
            .spawn(move || {
                let request = WatchRequest {
                    prefix: b"/s/",
                    start_revision: 2,
                    idle: Duration::from_secs(5),
                };
                watching.watch(&request, &mut |_| true)
            })
            .unwrap();
        assert!(matches!(etcd.next_op(), Op::Watch { .. }));
        fork.shutdown();
        let err = watcher.join().unwrap().unwrap_err();
        assert!(matches!(&err, Error::Http(h) if h.kind == HttpErrorKind::Cancelled));
        assert!(fork.range_prefix(b"/s/").is_err());
        assert!(client.range_prefix(b"/s/").is_ok());
    }
}
