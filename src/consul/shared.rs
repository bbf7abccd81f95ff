//! Watches shared by the instancers of one client.
//!
//! Consul keeps a blocking query open until its `wait` ends even when the client has
//! gone (hashicorp/consul#8524), and it allows 200 connections per client address. So
//! an instancer that cancelled its query on every stop would leave an open connection
//! on the agent for up to a `wait`, and a few hundred stops would get every request
//! from the host refused. Instead, the instancers of one [`HttpClient`](super::HttpClient)
//! (clones included) that watch the same service with the same filters share one
//! watch, counted by users; when the last user stops, the watch lingers until its query
//! returns, and an instancer built meanwhile takes it over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::bounded;
use parking_lot::Mutex;

use super::consistency::Consistency;
use crate::internal::publisher::Publisher;
use crate::internal::worker::Worker;
use crate::{Clock, Result};

/// The watches that the instancers built on one client share.
///
/// [`HttpClient`](super::HttpClient) keeps one for itself and its clones; the
/// [`Instancer`](super::Instancer) docs say how sharing works. Opaque: a custom
/// [`Client`](super::Client) that wants its instancers to share watches keeps one
/// (`WatchGroup::default()`) and returns it from
/// [`Client::watch_group`](super::Client::watch_group).
///
/// Dropping it (with the last clone of its client) stops every lingering watch, cutting
/// its query short, and joins it. Watches that instancers still use go on until their
/// last instancer stops.
#[derive(Debug, Default)]
pub struct WatchGroup {
    inner: Arc<Group>,
}

/// What identifies a watch: the same service, filters and watch options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) service: String,
    pub(crate) tags: Vec<String>,
    pub(crate) include_warning: bool,
    pub(crate) wait: Duration,
    pub(crate) min_interval: Duration,
    pub(crate) backoff: (Duration, Duration),
    pub(crate) consistency: Consistency,
    /// The clock, by address: two builders given the same `Arc`'d clock share.
    pub(crate) clock: usize,
}

impl Key {
    pub(crate) fn clock_id(clock: &Arc<dyn Clock>) -> usize {
        Arc::as_ptr(clock).cast::<()>() as usize
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Default)]
pub(crate) struct Group {
    watches: Mutex<HashMap<Key, Entry>>,
    /// Threads of watches that ended for want of users, joined on drop.
    ended: Mutex<Vec<Worker>>,
}

#[derive(Debug)]
struct Entry {
    /// Tells this watch from a later one for the same key.
    id: u64,
    /// What the watch publishes to; each instancer's own publisher is attached to it.
    publisher: Arc<Publisher>,
    users: usize,
    /// None while the watch is starting.
    worker: Option<Worker>,
}

/// An instancer's place in a shared watch.
#[derive(Debug)]
pub(crate) struct Membership {
    group: Arc<Group>,
    key: Key,
    id: u64,
}

impl WatchGroup {
    pub(crate) fn group(&self) -> &Arc<Group> {
        &self.inner
    }
}

impl Group {
    /// Joins the watch for `key` with `mine` (the new instancer's publisher): attaches
    /// it to the running watch, or starts one with `start` (given the watch's own
    /// publisher and a handle that tells the watch whether it is still wanted). Waits
    /// up to `first_fetch_timeout` for a first state, as a watch of its own would.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: Key,
        mine: &Arc<Publisher>,
        first_fetch_timeout: Duration,
        start: impl FnOnce(Arc<Publisher>, Wanted) -> Result<Worker>,
    ) -> Result<Membership> {
        self.prune();
        let (id, started) = {
            let mut watches = self.watches.lock();
            match watches.get_mut(&key) {
                Some(entry) => {
                    entry.users += 1;
                    entry.publisher.attach(mine.clone());
                    (entry.id, None)
                }
                None => {
                    let publisher = Arc::new(Publisher::new());
                    publisher.attach(mine.clone());
                    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                    let entry = Entry {
                        id,
                        publisher: publisher.clone(),
                        users: 1,
                        worker: None,
                    };
                    watches.insert(key.clone(), entry);
                    (id, Some(publisher))
                }
            }
        };
        let membership = Membership {
            group: self.clone(),
            key: key.clone(),
            id,
        };
        match started {
            Some(publisher) => {
                let wanted = Wanted {
                    group: Arc::downgrade(self),
                    key: key.clone(),
                    id,
                };
                // Outside the lock: start() waits for the first answer.
                match start(publisher, wanted) {
                    Ok(worker) => match self.watches.lock().get_mut(&key) {
                        Some(entry) if entry.id == id => entry.worker = Some(worker),
                        _ => self.ended.lock().push(worker),
                    },
                    Err(err) => {
                        let mut watches = self.watches.lock();
                        if watches.get(&key).is_some_and(|e| e.id == id) {
                            watches.remove(&key);
                        }
                        return Err(err);
                    }
                }
            }
            None => wait_first(mine, first_fetch_timeout),
        }
        Ok(membership)
    }

    /// Joins the threads of watches that have ended.
    fn prune(&self) {
        let finished: Vec<Worker> = {
            let mut ended = self.ended.lock();
            let (done, running) = std::mem::take(&mut *ended)
                .into_iter()
                .partition(Worker::is_finished);
            *ended = running;
            done
        };
        drop(finished); // joins, outside the lock
    }
}

impl Membership {
    /// The instancer stops: its publisher gets nothing more; the watch lingers if it
    /// was the last user, until its query returns.
    pub(crate) fn leave(self, mine: &Arc<Publisher>) {
        let mut watches = self.group.watches.lock();
        if let Some(entry) = (watches.get_mut(&self.key)).filter(|e| e.id == self.id) {
            entry.publisher.detach(mine);
            entry.users = entry.users.saturating_sub(1);
        }
    }
}

/// The watch thread's question: is anybody still using me? Asked before each query.
#[derive(Debug)]
pub(crate) struct Wanted {
    group: Weak<Group>,
    key: Key,
    id: u64,
}

impl Wanted {
    /// False when no instancer uses the watch any more: it then leaves the group (its
    /// thread is joined later) and must end.
    pub(crate) fn still(&self) -> bool {
        let Some(group) = self.group.upgrade() else {
            return false;
        };
        let mut watches = group.watches.lock();
        match watches.get(&self.key) {
            Some(entry) if entry.id != self.id => false, // a later watch took the key
            Some(entry) if entry.users > 0 => true,
            Some(_) => {
                let entry = watches.remove(&self.key).expect("present");
                drop(watches);
                if let Some(worker) = entry.worker {
                    group.ended.lock().push(worker);
                }
                log::debug!(target: "waypost::consul",
                    "the watch of {:?} has no instancer left: it ends", self.key.service);
                false
            }
            None => false,
        }
    }
}

impl Drop for WatchGroup {
    fn drop(&mut self) {
        // Lingering watches end now (their query cut short); watches still in use go
        // on with their instancers, which keep the group.
        let lingering: Vec<Worker> = {
            let mut watches = self.inner.watches.lock();
            let idle: Vec<Key> = (watches.iter())
                .filter(|(_, e)| e.users == 0)
                .map(|(k, _)| k.clone())
                .collect();
            (idle.iter())
                .filter_map(|k| watches.remove(k)?.worker)
                .collect()
        };
        drop(lingering); // stops and joins each, outside the lock
        let ended = std::mem::take(&mut *self.inner.ended.lock());
        drop(ended);
    }
}

/// Waits up to `timeout` until `publisher` has a state.
fn wait_first(publisher: &Publisher, timeout: Duration) {
    let (tx, rx) = bounded(1);
    publisher.subscribe(tx.clone());
    let _ = rx.recv_timeout(timeout);
    publisher.unsubscribe(&tx);
}
