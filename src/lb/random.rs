//! `Random`: picks uniformly at random.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::internal::rand::{self, GAMMA};
use crate::internal::shard::{self, Padded};
use std::sync::Arc;

use crate::lb::{Balancer, Pick, Usable, choose};
use crate::{DeriveAny, Endpointer, Error, Result};

/// Picks one of an [`Endpointer`]'s current endpoints uniformly at random.
///
/// # Algorithm
/// Uniform random selection, as Go kit's `lb.NewRandom`. The random numbers come from
/// `SplitMix64` (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number
/// Generators", OOPSLA 2014) and are mapped onto `0..len` with Lemire's
/// multiply-shift ("Fast Random Integer Generation in an Interval", 2019), whose bias
/// is below 2^-32 for any realistic set size.
///
/// # Threads and seeding
/// [`Random::new`] draws from a per-thread generator seeded by the OS, so threads
/// share no state at all. [`Random::with_seed`] is for tests: a thread picking alone
/// sees the same sequence on every run. Its state is one padded atomic per CPU shard,
/// advanced with a single `fetch_add` (lock-free, so sharing it between threads is
/// safe, where Go kit's seeded `rand.Rand` shared between goroutines is a data race).
/// Every shard starts from the seed, so a thread's sequence does not depend on which
/// shard it lands on; the price is that two threads on different shards draw the same
/// sequence, each uniform on its own.
///
/// # Errors
/// An empty set is [`Error::NoEndpoints`]; an error from the endpointer is returned
/// unchanged.
///
/// ```
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Balancer, Random};
///
/// let a = Random::with_seed(FixedEndpointer::new(vec![1, 2, 3]), 7);
/// let b = Random::with_seed(FixedEndpointer::new(vec![1, 2, 3]), 7);
/// for _ in 0..10 {
///     assert_eq!(*a.pick()?, *b.pick()?);
/// }
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct Random<P> {
    endpointer: P,
    source: Source,
}

/// Where a balancer's random numbers come from: the thread's own generator, or a
/// seeded state per CPU shard.
pub(crate) enum Source {
    /// The calling thread's own generator.
    Thread,
    /// One `SplitMix64` state per shard.
    Seeded(Box<[Padded<AtomicU64>]>),
}

impl Source {
    /// Draws from each calling thread's own generator.
    pub(crate) fn thread() -> Source {
        Source::Thread
    }

    /// Draws from one `SplitMix64` state per shard, every one starting at `seed`.
    pub(crate) fn seeded(seed: u64) -> Source {
        Source::Seeded(
            (0..shard::count())
                .map(|_| Padded(AtomicU64::new(seed)))
                .collect(),
        )
    }

    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        match self {
            Source::Thread => rand::next_u64(),
            Source::Seeded(states) => {
                // One SplitMix64 step as a single atomic add: the state before the add
                // plus the gamma is exactly the state `splitmix64` would have mixed.
                let state = &states[shard::index() & (states.len() - 1)];
                rand::mix(
                    state
                        .fetch_add(GAMMA, Ordering::Relaxed)
                        .wrapping_add(GAMMA),
                )
            }
        }
    }

    pub(crate) fn is_seeded(&self) -> bool {
        matches!(self, Source::Seeded(_))
    }
}

impl<P> Random<P> {
    /// A random balancer over `endpointer`, drawing from a per-thread generator.
    pub fn new(endpointer: P) -> Self {
        Random {
            endpointer,
            source: Source::thread(),
        }
    }

    /// A random balancer whose picks follow from `seed`: the same seed gives the same
    /// sequence on a thread that picks alone. See the type docs for several threads.
    pub fn with_seed(endpointer: P, seed: u64) -> Self {
        Random {
            endpointer,
            source: Source::seeded(seed),
        }
    }

    /// The endpointer this balancer picks from.
    pub fn endpointer(&self) -> &P {
        &self.endpointer
    }

    #[inline]
    fn next_u64(&self) -> u64 {
        self.source.next_u64()
    }
}

impl<E, P: Endpointer<E>> Balancer<E> for Random<P> {
    #[inline(always)]
    fn pick(&self) -> Result<Pick<E>> {
        let endpoints = self.endpointer.endpoints()?;
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let i = rand::below(self.next_u64(), endpoints.len());
        Ok(Pick::new(endpoints, i))
    }

    /// Draws again past unusable endpoints, a few times, then takes the first usable
    /// one after the last draw: uniform over the usable ones while they are most.
    fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
        let endpoints = self.endpointer.endpoints()?;
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let i = choose::one(&self.source, endpoints.len(), |i| usable(&endpoints, i));
        Ok(Pick::new(endpoints, i))
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        self.endpointer.attach(derive)
    }
}

impl<P: fmt::Debug> fmt::Debug for Random<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Random")
            .field("endpointer", &self.endpointer)
            .field("seeded", &self.source.is_seeded())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedEndpointer;

    #[test]
    fn seeded_steps_match_splitmix64() {
        let lb = Random::with_seed(FixedEndpointer::new(vec![0u8]), 42);
        let mut state = 42;
        for _ in 0..100 {
            assert_eq!(lb.next_u64(), rand::splitmix64(&mut state));
        }
    }

    #[test]
    fn seeds_differ() {
        let a = Random::with_seed(FixedEndpointer::new(vec![0u8]), 1);
        let b = Random::with_seed(FixedEndpointer::new(vec![0u8]), 2);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_ne!(xs, ys);
    }

    #[test]
    fn every_shard_starts_at_the_seed() {
        let lb = Random::with_seed(FixedEndpointer::new(vec![0u8]), 9);
        let Source::Seeded(states) = &lb.source else {
            panic!("not seeded")
        };
        assert_eq!(states.len(), shard::count());
        assert!(states.iter().all(|s| s.load(Ordering::Relaxed) == 9));
    }
}
