//! The endpointer's thread: diffs each new set against the cache, runs closers, handles
//! invalidate-on-error, and publishes snapshots for `endpoints()`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select};

use crate::endpointer::{Snapshot, SnapshotState};
use crate::factory::Closer;
use crate::internal::shard::Sharded;
use crate::internal::worker::StopSignal;
use crate::{Clock, Error, Event, Factory, Instance, InstanceSet};

/// Instance -> endpoint cache. Owned by the endpointer thread only.
///
/// Memory per instance: the set is the event's own `Arc<[Instance]>` (shared, not
/// copied); `endpoints` holds one entry per instance whose factory call succeeded, in
/// set order skipping `failed`. Closers are kept sparse, with their endpoint's index,
/// so endpoints without one cost nothing there.
pub(crate) struct EndpointCache<E> {
    set: InstanceSet,
    /// Indices into `set` whose factory call failed (ascending): not cached, retried
    /// when the set next changes.
    failed: Vec<usize>,
    endpoints: Arc<[E]>,
    /// (index into `endpoints`, its closer), ascending by index.
    closers: Vec<(usize, Box<dyn Closer>)>,
    /// The set and endpoints an update replaced, dropped by [`EndpointCache::retire`]
    /// once the new snapshot is published: when the cache held the last reference,
    /// dropping them is N reference-count decrements that readers need not wait for.
    retired: Option<(InstanceSet, Arc<[E]>)>,
}

impl<E: Clone + 'static> EndpointCache<E> {
    pub(crate) fn new() -> EndpointCache<E> {
        EndpointCache {
            set: InstanceSet::default(),
            failed: Vec::new(),
            endpoints: Arc::from(Vec::new()),
            closers: Vec::new(),
            retired: None,
        }
    }

    pub(crate) fn endpoints(&self) -> &Arc<[E]> {
        &self.endpoints
    }

    /// Diffs `new` against the cache by one merge walk over both sorted sets: the
    /// factory runs for added instances only, a removed instance's closer runs once,
    /// unchanged instances keep their endpoint. Returns true if the endpoints changed.
    pub(crate) fn update(&mut self, new: &InstanceSet, factory: &dyn Factory<E>) -> bool {
        if Arc::ptr_eq(self.set.as_arc(), new.as_arc()) && self.failed.is_empty() {
            return false;
        }
        let mut endpoints = Vec::with_capacity(new.len());
        let mut closers = Vec::new();
        let mut failed = Vec::new();
        let mut changed = false;

        let mut old_closers = std::mem::take(&mut self.closers).into_iter().peekable();
        let mut closer_of = |j: usize| old_closers.next_if(|(at, _)| *at == j).map(|(_, c)| c);
        let mut old = live(&self.set, &self.failed).peekable();
        let mut k = 0;
        while k < new.len() || old.peek().is_some() {
            let order = match (old.peek(), new.get(k)) {
                (Some((_, o)), Some(n)) => (*o).cmp(n),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, _) => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (j, gone) = old.next().expect("peeked");
                    log::debug!(target: "waypost::endpointer", "instance {gone} removed");
                    close(closer_of(j), gone);
                    changed = true;
                }
                std::cmp::Ordering::Equal => {
                    let (j, _) = old.next().expect("peeked");
                    if let Some(closer) = closer_of(j) {
                        closers.push((endpoints.len(), closer));
                    }
                    endpoints.push(self.endpoints[j].clone());
                    k += 1;
                }
                std::cmp::Ordering::Greater => {
                    match make(factory, &new[k]) {
                        Ok((endpoint, closer)) => {
                            if let Some(closer) = closer {
                                closers.push((endpoints.len(), closer));
                            }
                            endpoints.push(endpoint);
                        }
                        Err(()) => failed.push(k),
                    }
                    changed = true;
                    k += 1;
                }
            }
        }
        drop(old);
        debug_assert!(old_closers.next().is_none(), "every old closer was taken");
        let old_set = std::mem::replace(&mut self.set, new.clone());
        self.failed = failed;
        self.closers = closers;
        let old_endpoints = if changed {
            std::mem::replace(&mut self.endpoints, Arc::from(endpoints))
        } else {
            Arc::from(Vec::new())
        };
        self.retired = Some((old_set, old_endpoints));
        changed
    }

    /// Drops what the last update replaced; call after publishing the new snapshot.
    pub(crate) fn retire(&mut self) {
        self.retired = None;
    }

    /// Closes every cached endpoint and empties the cache.
    pub(crate) fn close_all(&mut self) {
        let mut closers = std::mem::take(&mut self.closers).into_iter().peekable();
        for (j, instance) in live(&self.set, &self.failed) {
            if let Some((_, closer)) = closers.next_if(|(at, _)| *at == j) {
                close(Some(closer), instance);
            }
        }
        *self = EndpointCache::new();
    }
}

/// The cached instances with their index into `endpoints`/`closers`.
fn live<'a>(
    set: &'a InstanceSet,
    failed: &'a [usize],
) -> impl Iterator<Item = (usize, &'a Instance)> + 'a {
    let mut failed = failed.iter().copied().peekable();
    set.iter()
        .enumerate()
        .filter(move |(i, _)| {
            if failed.peek() == Some(i) {
                failed.next();
                false
            } else {
                true
            }
        })
        .enumerate()
        .map(|(j, (_, instance))| (j, instance))
}

fn make<E: 'static>(factory: &dyn Factory<E>, instance: &Instance) -> Result<crate::Made<E>, ()> {
    match catch_unwind(AssertUnwindSafe(|| factory.make(instance))) {
        Ok(Ok(made)) => {
            log::debug!(target: "waypost::endpointer", "instance {instance} added");
            Ok(made)
        }
        Ok(Err(err)) => {
            log::warn!(target: "waypost::endpointer", "factory failed for {instance}: {err}");
            Err(())
        }
        Err(_) => {
            log::warn!(target: "waypost::endpointer", "factory panicked for {instance}");
            Err(())
        }
    }
}

fn close(closer: Option<Box<dyn Closer>>, instance: &Instance) {
    if let Some(closer) = closer {
        if catch_unwind(AssertUnwindSafe(|| closer.close())).is_err() {
            log::warn!(target: "waypost::endpointer", "closer panicked for {instance}");
        }
    }
}

/// What the endpointer thread needs; moved into it.
pub(crate) struct Updater<E> {
    pub(crate) events: Receiver<Event>,
    pub(crate) ready: Option<Sender<()>>,
    pub(crate) shared: Arc<Sharded<Snapshot<E>>>,
    pub(crate) factory: Box<dyn Factory<E>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) invalidate_after: Option<Duration>,
}

impl<E: Clone + Send + Sync + 'static> Updater<E> {
    pub(crate) fn run(mut self, stop: &StopSignal) {
        let mut cache = EndpointCache::new();
        // Set while the registry reports errors and invalidation is armed.
        let mut timer: Option<Receiver<Instant>> = None;
        let mut last_error: Option<Arc<Error>> = None;
        loop {
            let timeout = timer.clone().unwrap_or_else(never);
            select! {
                recv(stop.channel()) -> _ => break,
                recv(timeout) -> _ => {
                    timer = None;
                    let err = last_error.clone().expect("timer armed only after an error");
                    log::warn!(target: "waypost::endpointer",
                        "registry errors outlasted the timeout; invalidating endpoints: {err}");
                    cache.close_all();
                    self.publish(&cache, SnapshotState::Invalidated(err));
                }
                recv(self.events) -> event => {
                    let Ok(mut event) = event else { break };
                    // Coalesce a backlog: only the newest complete state matters.
                    while let Ok(newer) = self.events.try_recv() {
                        event = newer;
                    }
                    match event {
                        Event::Instances(set) => {
                            let was_failed = last_error.take().is_some();
                            timer = None;
                            let changed = cache.update(&set, &*self.factory);
                            if changed || was_failed || self.ready.is_some() {
                                self.publish(&cache, SnapshotState::Ready);
                            }
                            cache.retire();
                            self.ready = None; // wakes wait_ready
                        }
                        Event::Error(err) => {
                            log::warn!(target: "waypost::endpointer", "registry error, keeping the last set: {err}");
                            let first = last_error.replace(err.clone()).is_none();
                            match self.invalidate_after {
                                Some(after) if first => {
                                    timer = Some(self.clock.after(self.clock.now() + after));
                                }
                                Some(_) if timer.is_none() => {
                                    // Already invalidated: report the newest error.
                                    self.publish(&cache, SnapshotState::Invalidated(err));
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        cache.close_all();
        self.publish(&cache, SnapshotState::Closed);
    }

    fn publish(&self, cache: &EndpointCache<E>, state: SnapshotState) {
        self.shared.set(Snapshot {
            endpoints: cache.endpoints().clone(),
            state,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn set(addrs: &[&str]) -> InstanceSet {
        addrs.iter().map(|a| Instance::new(*a)).collect()
    }

    #[test]
    fn merge_walk_touches_only_changes() {
        let made = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (m, c) = (made.clone(), closed.clone());
        let factory = move |i: &Instance| -> crate::Result<crate::Made<String>> {
            m.fetch_add(1, Ordering::SeqCst);
            if i.addr().starts_with("bad") {
                return Err(Error::factory("refused"));
            }
            let c = c.clone();
            let closer: Box<dyn Closer> = Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
            Ok((i.addr().to_owned(), Some(closer)))
        };
        let mut cache = EndpointCache::new();
        assert!(cache.update(&set(&["a:1", "b:1", "bad:1"]), &factory));
        assert_eq!(&cache.endpoints()[..], ["a:1", "b:1"]);
        assert_eq!(made.load(Ordering::SeqCst), 3);

        // b removed, c added, bad retried (still failing).
        assert!(cache.update(&set(&["a:1", "bad:1", "c:1"]), &factory));
        assert_eq!(&cache.endpoints()[..], ["a:1", "c:1"]);
        assert_eq!(made.load(Ordering::SeqCst), 5);
        assert_eq!(closed.load(Ordering::SeqCst), 1);

        cache.close_all();
        assert_eq!(closed.load(Ordering::SeqCst), 3);
        assert!(cache.endpoints().is_empty());
    }

    /// Closers are stored sparsely by endpoint index: each must stay with its own
    /// endpoint as others come and go around it.
    #[test]
    fn each_closer_stays_with_its_endpoint() {
        let (tx, closed) = crossbeam_channel::unbounded::<String>();
        let factory = move |i: &Instance| -> crate::Result<crate::Made<String>> {
            let addr = i.addr().to_owned();
            let closer: Option<Box<dyn Closer>> = if addr.starts_with('c') {
                let (tx, addr) = (tx.clone(), addr.clone());
                Some(Box::new(move || tx.send(addr).unwrap()))
            } else {
                None
            };
            Ok((addr, closer))
        };
        let mut cache = EndpointCache::new();
        cache.update(
            &set(&["a:1", "c1:1", "n1:1", "c2:1", "n2:1", "c3:1"]),
            &factory,
        );
        cache.update(&set(&["a:1", "b:1", "c2:1", "c3:1", "n2:1"]), &factory);
        assert_eq!(closed.try_iter().collect::<Vec<_>>(), ["c1:1"]);
        cache.update(&set(&["c0:1", "c3:1", "n2:1"]), &factory);
        assert_eq!(closed.try_iter().collect::<Vec<_>>(), ["c2:1"]);
        cache.close_all();
        let mut rest: Vec<_> = closed.try_iter().collect();
        rest.sort();
        assert_eq!(rest, ["c0:1", "c3:1"]);
    }
}
