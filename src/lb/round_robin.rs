//! `RoundRobin`: visits every endpoint in turn.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::internal::rand;
use crate::internal::shard::{self, Padded};
use std::sync::Arc;

use crate::lb::{Balancer, Pick, Usable};
use crate::{DeriveAny, Endpointer, Error, Result};

/// Picks the endpoints of an [`Endpointer`] in turn: round-robin.
///
/// # Algorithm
/// Classic round-robin, as Go kit's `lb.NewRoundRobin`: the pick is
/// `endpoints[counter % len]`, with the counter bumped by one atomic `fetch_add` per
/// pick. Unlike Go kit's single counter, there is one counter per CPU shard, each on
/// its own 128-byte padded line, and a thread bumps the counter of its own shard (the
/// same per-thread index the endpointer's sharded cache uses). Two threads picking at
/// once therefore never write the same cache line, and each thread on its own still
/// walks the set evenly. Each balancer starts at a random position (seedable with
/// [`RoundRobin::with_seed`]), and its counters at consecutive offsets from it, so
/// that neither many clients nor threads that start together pick the same endpoint
/// in lockstep.
///
/// # Fairness
/// On one thread the picks are exactly even: `k * len` picks visit every endpoint `k`
/// times. Across threads each thread's share is even, so the total is even up to one
/// partial round per thread. When the set changes the counter simply continues over
/// the new set; positions are counted in 32 bits, so every 2^32 picks of a thread the position shifts
/// once.
///
/// # Errors
/// An empty set is [`Error::NoEndpoints`]; an error from the endpointer
/// ([`Error::Invalidated`], [`Error::Closed`]) is returned unchanged.
///
/// ```
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Balancer, RoundRobin};
///
/// let lb = RoundRobin::new(FixedEndpointer::new(vec!["a", "b", "c"]));
/// let first = *lb.pick()?;
/// let second = *lb.pick()?;
/// let third = *lb.pick()?;
/// let mut seen = [first, second, third];
/// seen.sort();
/// assert_eq!(seen, ["a", "b", "c"]);
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct RoundRobin<P> {
    endpointer: P,
    counters: Counters,
}

/// One counter per CPU shard, each on a padded line of its own, at consecutive offsets
/// from a start: round-robin's positions (and weighted round-robin's).
pub(crate) struct Counters(Box<[Padded<AtomicUsize>]>);

impl Counters {
    /// Counters starting at `start` (truncated to 32 bits: positions are taken modulo
    /// the set's length in 32 bits), `start + 1`, ...
    pub(crate) fn starting_at(start: u64) -> Counters {
        let start = start as u32 as usize;
        Counters(
            (0..shard::count())
                .map(|i| Padded(AtomicUsize::new(start.wrapping_add(i))))
                .collect(),
        )
    }

    /// The next position on this thread's counter.
    #[inline]
    pub(crate) fn next(&self) -> usize {
        // The shard count is a power of two; the mask keeps the index in bounds.
        let i = shard::index() & (self.0.len() - 1);
        self.0[i].fetch_add(1, Ordering::Relaxed)
    }
}

impl std::ops::Deref for Counters {
    type Target = [Padded<AtomicUsize>];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<P> RoundRobin<P> {
    /// A round-robin balancer over `endpointer`'s current endpoints, starting at a
    /// random position (so that many clients started together do not all send their
    /// first calls to the first instance, as gRPC's round-robin does).
    pub fn new(endpointer: P) -> Self {
        RoundRobin::starting_at(endpointer, rand::next_u64())
    }

    /// As [`new`](RoundRobin::new), with the starting position drawn from `seed`, for
    /// tests: the same seed starts a given thread at the same position on every run.
    /// Each CPU shard's counter starts one position after the previous shard's (see
    /// the type docs), so two threads on different shards start one apart.
    pub fn with_seed(endpointer: P, seed: u64) -> Self {
        RoundRobin::starting_at(endpointer, rand::mix(seed))
    }

    fn starting_at(endpointer: P, start: u64) -> Self {
        RoundRobin {
            endpointer,
            counters: Counters::starting_at(start),
        }
    }

    /// The endpointer this balancer picks from.
    pub fn endpointer(&self) -> &P {
        &self.endpointer
    }

    #[inline]
    fn next(&self) -> usize {
        self.counters.next()
    }
}

impl<E, P: Endpointer<E>> Balancer<E> for RoundRobin<P> {
    #[inline(always)]
    fn pick(&self) -> Result<Pick<E>> {
        let endpoints = self.endpointer.endpoints()?;
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let i = position(self.next(), endpoints.len());
        Ok(Pick::new(endpoints, i))
    }

    /// Moves on along this thread's counter past unusable endpoints, at most once
    /// round the set: each thread still visits the usable ones in turn, evenly.
    fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
        let endpoints = self.endpointer.endpoints()?;
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let n = endpoints.len();
        let mut i = position(self.next(), n);
        for _ in 1..n {
            if usable(&endpoints, i) {
                break;
            }
            i = position(self.next(), n);
        }
        Ok(Pick::new(endpoints, i))
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        self.endpointer.attach(derive)
    }
}

/// `counter % len`, in 32 bits when `len` fits: a 64-bit division of a large counter
/// costs several times a 32-bit one, and is the pick's largest cost. The counter wraps
/// at 2^32 then, which shifts the position once in four billion picks.
#[inline]
pub(crate) fn position(counter: usize, len: usize) -> usize {
    match u32::try_from(len) {
        Ok(len) => (counter as u32 % len) as usize,
        Err(_) => counter % len,
    }
}

impl<P: fmt::Debug> fmt::Debug for RoundRobin<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobin")
            .field("endpointer", &self.endpointer)
            .field("shards", &self.counters.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedEndpointer;

    #[test]
    fn counters_are_padded_and_staggered() {
        let lb = RoundRobin::new(FixedEndpointer::new(vec![0u8]));
        assert_eq!(lb.counters.len(), shard::count());
        assert_eq!(std::mem::size_of::<Padded<AtomicUsize>>(), 128);
        let start = lb.counters[0].load(Ordering::Relaxed);
        for (i, c) in lb.counters.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), start.wrapping_add(i));
        }
    }

    #[test]
    fn the_start_is_random_and_seedable() {
        let starts = |make: &dyn Fn() -> RoundRobin<FixedEndpointer<usize>>| -> Vec<usize> {
            (0..32).map(|_| *make().pick().unwrap()).collect()
        };
        let endpoints = || FixedEndpointer::new((0..1000).collect::<Vec<usize>>());
        let random = starts(&|| RoundRobin::new(endpoints()));
        assert!(random.windows(2).any(|w| w[0] != w[1]), "{random:?}");
        let seeded = starts(&|| RoundRobin::with_seed(endpoints(), 7));
        assert!(seeded.windows(2).all(|w| w[0] == w[1]), "{seeded:?}");
    }

    #[test]
    fn consecutive_picks_on_one_thread_follow_the_order() {
        let lb = RoundRobin::new(FixedEndpointer::new(vec![0usize, 1, 2, 3, 4]));
        let first = *lb.pick().unwrap();
        for k in 1..20 {
            assert_eq!(*lb.pick().unwrap(), (first + k) % 5);
        }
    }

    #[test]
    fn picks_only_touch_this_threads_counter() {
        let lb = RoundRobin::new(FixedEndpointer::new(vec![0u8, 1]));
        let mine = shard::index() & (lb.counters.len() - 1);
        let before: Vec<usize> = lb
            .counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        for _ in 0..10 {
            drop(lb.pick().unwrap());
        }
        for (i, c) in lb.counters.iter().enumerate() {
            let moved = if i == mine { 10 } else { 0 };
            let expected = before[i].wrapping_add(moved);
            assert_eq!(c.load(Ordering::Relaxed), expected, "counter {i}");
        }
    }
}
