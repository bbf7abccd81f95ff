//! The endpoint cache: instance -> endpoint for the set the endpointer is on, diffed
//! against each new set by one merge walk, with the closers of its endpoints.
//! Owned by the endpointer thread ([`crate::updater`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::factory::Factory;
use crate::snapshot::{Closings, Instances};
use crate::{Closer, Instance, InstanceSet, Made};

const LOG: &str = "waypost::endpointer";

/// The set the cache was last built from, the positions in it with no endpoint (a
/// failed factory, an addition not made yet), the endpoints of the others in order,
/// and their closers, kept sparse as (index into `endpoints`, closer), ascending.
///
/// Memory per instance: the set is the event's own shared slice; one endpoint per
/// instance; closers cost nothing for endpoints without one.
pub(crate) struct EndpointCache<E> {
    pub(crate) set: InstanceSet,
    skip: Vec<usize>,
    pub(crate) endpoints: Arc<[E]>,
    closers: Vec<(usize, Box<dyn Closer>)>,
}

/// How a new set relates to the cache: kept entries as (index into the cache, position
/// in the new set), the new positions to add, the removed entries as (index into the
/// cache, position in the old set), and whether a kept instance changed its metadata.
pub(crate) struct Diff {
    pub(crate) keep: Vec<(usize, usize)>,
    pub(crate) add: Vec<usize>,
    pub(crate) removed: Vec<(usize, usize)>,
    pub(crate) changed: bool,
}

impl<E: Clone> EndpointCache<E> {
    pub(crate) fn new() -> EndpointCache<E> {
        EndpointCache {
            set: InstanceSet::default(),
            skip: Vec::new(),
            endpoints: Arc::from(Vec::new()),
            closers: Vec::new(),
        }
    }

    /// The instances of the cached endpoints, aligned with them.
    pub(crate) fn instances(&self) -> Instances {
        Instances::of(&self.set, &self.skip)
    }

    /// Every cached entry kept in place: (index into the cache, position in the set).
    pub(crate) fn keep_all(&self) -> Vec<(usize, usize)> {
        (live(&self.set, &self.skip).enumerate())
            .map(|(at, (pos, _))| (at, pos))
            .collect()
    }

    /// One merge walk of the cache against `set` (both sorted by address).
    pub(crate) fn diff(&self, set: &InstanceSet) -> Diff {
        let mut diff = Diff {
            keep: Vec::with_capacity(set.len().min(self.endpoints.len())),
            add: Vec::new(),
            removed: Vec::new(),
            changed: false,
        };
        let mut old = live(&self.set, &self.skip).enumerate().peekable();
        let mut k = 0;
        loop {
            let order = match (old.peek(), set.get(k)) {
                (Some((_, (_, o))), Some(n)) => (*o).cmp(n),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => break,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (at, (pos, _)) = old.next().expect("peeked");
                    diff.removed.push((at, pos));
                }
                std::cmp::Ordering::Greater => {
                    diff.add.push(k);
                    k += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (at, (_, instance)) = old.next().expect("peeked");
                    diff.changed |= !instance.same(&set[k]);
                    diff.keep.push((at, k));
                    k += 1;
                }
            }
        }
        diff
    }

    /// Makes the cache the kept entries plus `made` (both ascending in `set`), and
    /// returns the closers of the `removed` entries (as [`Diff`] gives them).
    pub(crate) fn install(
        &mut self,
        set: &InstanceSet,
        keep: &[(usize, usize)],
        made: Vec<(usize, Made<E>)>,
        removed: &[(usize, usize)],
    ) -> Closings {
        let len = keep.len() + made.len();
        let mut closers = Vec::new();
        let mut skip = Vec::new();
        let mut old_closers = std::mem::take(&mut self.closers).into_iter().peekable();
        let mut kept = keep.iter().peekable();
        let mut made = made.into_iter().peekable();
        let mut closings = Closings::default();
        let mut close = |at: usize, closer| {
            let pos = removed[removed.partition_point(|&(i, _)| i < at)].1;
            closings.0.push((self.set[pos].clone(), closer));
        };
        let mut k = 0; // the position in `set` the next endpoint is for
        // Collected from a `Range` map, so the `Arc` is allocated once at its final
        // size and filled in place (no copy of N endpoints from a Vec).
        let endpoints: Arc<[E]> = (0..len)
            .map(|here| {
                loop {
                    let at = k;
                    k += 1;
                    if let Some(&(i, _)) = kept.next_if(|&&(_, pos)| pos == at) {
                        while let Some((j, closer)) = old_closers.next_if(|(j, _)| *j < i) {
                            close(j, closer);
                        }
                        if let Some((_, closer)) = old_closers.next_if(|(j, _)| *j == i) {
                            closers.push((here, closer));
                        }
                        break self.endpoints[i].clone();
                    }
                    if let Some((_, Made { endpoint, closer })) =
                        made.next_if(|(pos, _)| *pos == at)
                    {
                        if let Some(closer) = closer {
                            closers.push((here, closer));
                        }
                        break endpoint;
                    }
                    skip.push(at);
                }
            })
            .collect();
        skip.extend(k..set.len());
        for (j, closer) in old_closers {
            close(j, closer);
        }
        debug_assert!(kept.next().is_none() && made.next().is_none());
        self.set = set.clone();
        self.skip = skip;
        self.endpoints = endpoints;
        self.closers = closers;
        closings
    }

    /// Empties the cache; returns every closer.
    pub(crate) fn clear(&mut self) -> Closings {
        let removed: Vec<(usize, usize)> = live(&self.set, &self.skip)
            .map(|(pos, _)| pos)
            .enumerate()
            .collect();
        self.install(&InstanceSet::default(), &[], Vec::new(), &removed)
    }
}

/// The positions in `set` that have an endpoint, with their instance.
fn live<'a>(
    set: &'a InstanceSet,
    skip: &'a [usize],
) -> impl Iterator<Item = (usize, &'a Instance)> + 'a {
    let mut skip = skip.iter().copied().peekable();
    set.iter()
        .enumerate()
        .filter(move |(at, _)| skip.next_if_eq(at).is_none())
}

/// Calls the factory, turning an error or a panic into a logged `Err`.
pub(crate) fn make<E: 'static>(
    factory: &dyn Factory<E>,
    instance: &Instance,
) -> Result<Made<E>, ()> {
    match catch_unwind(AssertUnwindSafe(|| factory.make(instance))) {
        Ok(Ok(made)) => {
            log::debug!(target: LOG, "instance {instance} added");
            Ok(made)
        }
        Ok(Err(err)) => {
            log::warn!(target: LOG, "factory failed for {instance}: {err}");
            Err(())
        }
        Err(_) => {
            log::warn!(target: LOG, "factory panicked for {instance}");
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(addrs: &[&str]) -> InstanceSet {
        addrs.iter().map(|a| Instance::new(*a)).collect()
    }

    /// One update as the endpointer thread makes it, in one step: the closers of the
    /// removed entries are returned.
    fn update(cache: &mut EndpointCache<String>, to: &[&str]) -> Vec<String> {
        let to = set(to);
        let diff = cache.diff(&to);
        let made: Vec<(usize, Made<String>)> = (diff.add.iter())
            .map(|&k| {
                let addr = to[k].addr().to_owned();
                let made = Made::new(addr.clone());
                let made = match addr.starts_with('c') {
                    true => made.on_close(move || CLOSED.with(|c| c.borrow_mut().push(addr))),
                    false => made,
                };
                (k, made)
            })
            .filter(|(k, _)| !to[*k].addr().starts_with("bad"))
            .collect();
        drop(cache.install(&to, &diff.keep, made, &diff.removed));
        CLOSED.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }

    thread_local! {
        static CLOSED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Closers are kept sparsely by endpoint index: each must stay with its own
    /// endpoint as others come, go and fail around it.
    #[test]
    fn each_closer_stays_with_its_endpoint() {
        let mut cache = EndpointCache::new();
        update(
            &mut cache,
            &["a:1", "bad:1", "c1:1", "n1:1", "c2:1", "n2:1", "c3:1"],
        );
        assert_eq!(
            &cache.endpoints[..],
            ["a:1", "c1:1", "c2:1", "c3:1", "n1:1", "n2:1"]
        );
        assert_eq!(cache.instances().get().len(), 6, "bad is left out of both");
        let closed = update(&mut cache, &["a:1", "b:1", "bad:1", "c2:1", "c3:1", "n2:1"]);
        assert_eq!(closed, ["c1:1"]);
        let closed = update(&mut cache, &["c0:1", "c3:1", "n2:1"]);
        assert_eq!(closed, ["c2:1"]);
        drop(cache.clear());
        let mut rest = CLOSED.with(|c| std::mem::take(&mut *c.borrow_mut()));
        rest.sort();
        assert_eq!(rest, ["c0:1", "c3:1"]);
        assert!(cache.endpoints.is_empty());
    }
}
