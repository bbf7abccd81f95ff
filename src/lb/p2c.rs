//! `P2c`: the less loaded of two random endpoints (least outstanding requests).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[cfg(doc)]
use crate::Error;
use crate::lb::choose;
use crate::lb::random::Source;
use crate::lb::table::{self, Keep, Table};
use crate::lb::{CallObserver, Outcome, Pick};
use crate::{Derived, Endpointer, Endpoints, Instance, Result};

/// Picks the less loaded of two endpoints drawn at random: the power of two choices,
/// with the load being the calls in flight (least outstanding requests).
///
/// # Algorithm
/// Mitzenmacher's power of two choices ("The Power of Two Choices in Randomized Load
/// Balancing", 2001), as Finagle's `P2C` and Envoy's `LEAST_REQUEST` (with its default
/// `choice_count` of 2) use it. Each pick draws two distinct endpoints uniformly at
/// random and takes the one with fewer calls in flight, a tie going to a coin toss.
/// The count of an instance rises when a [`Pick`] of it is made and falls when the
/// pick ends, however it ends ([`Pick::success`], [`Pick::failure`] or a drop). One
/// endpoint is always picked; two or more never give the same endpoint twice in one
/// draw.
///
/// Compared with round-robin, a slow instance gathers calls in flight and is then
/// passed over: the load follows each instance's speed without measuring any time.
/// Compared with always taking the least loaded of all, two random choices keep many
/// clients from all rushing to the same idle instance, and cost O(1).
///
/// # State
/// Each instance's count lives beside the endpointer's snapshots (attached with
/// [`Endpointer::derive`], so the endpointer must support it: every endpointer of
/// waypost does), on a cache line of its own, keyed by the instance's address: it
/// survives set changes for instances that stay, starts at zero for new ones, and is
/// dropped with the last pick of an instance that left. A pick reads no clock, takes
/// no lock and allocates nothing; it writes the picked instance's line only.
///
/// # Errors
/// An empty set is [`Error::NoEndpoints`]; an error from the endpointer is returned
/// unchanged. [`P2c::new`] fails with [`Error::InvalidConfig`] for an endpointer that
/// cannot carry derived data.
///
/// ```
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Balancer, P2c};
///
/// let lb = P2c::new(FixedEndpointer::new(vec!["a", "b"]))?;
/// let busy = lb.pick()?; // one call in flight on one of them...
/// let next = lb.pick()?; // ...so the next goes to the other
/// assert_ne!(*busy, *next);
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct P2c<P> {
    endpointer: P,
    source: Source,
    table: Derived<Table<Load>>,
}

/// One instance's calls in flight, on a line of its own (with the `Arc`'s counts,
/// which every pick of it writes too).
#[repr(align(128))]
pub(crate) struct Load {
    in_flight: AtomicUsize,
}

impl Load {
    /// The calls in flight now.
    #[inline]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl<E> CallObserver<E> for Load {
    #[inline]
    fn ended(&self, _: &Endpoints<E>, _: usize, _: Outcome, _: Option<Instant>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct NewLoad;

impl Keep<Load> for NewLoad {
    fn make(&self, _: &Instance) -> Load {
        Load {
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl<P> P2c<P> {
    /// A least-outstanding-requests balancer over `endpointer`, drawing from each
    /// thread's own random generator.
    pub fn new<E: 'static>(endpointer: P) -> Result<Self>
    where
        P: Endpointer<E>,
    {
        P2c::with_source(endpointer, Source::thread())
    }

    /// As [`new`](P2c::new), with draws that follow from `seed`: a thread picking
    /// alone sees the same sequence on every run (with the same loads), for tests.
    pub fn with_seed<E: 'static>(endpointer: P, seed: u64) -> Result<Self>
    where
        P: Endpointer<E>,
    {
        P2c::with_source(endpointer, Source::seeded(seed))
    }

    fn with_source<E: 'static>(endpointer: P, source: Source) -> Result<Self>
    where
        P: Endpointer<E>,
    {
        let table = table::track(&endpointer, Arc::new(NewLoad))?;
        Ok(P2c {
            endpointer,
            source,
            table,
        })
    }

    /// The endpointer this balancer picks from.
    pub fn endpointer(&self) -> &P {
        &self.endpointer
    }

    /// The calls in flight on each endpoint of `snapshot` (one taken from this
    /// balancer's endpointer), in its order; `None` for a snapshot it keeps no
    /// counts for.
    pub fn in_flight<E>(&self, snapshot: &Endpoints<E>) -> Option<Vec<usize>> {
        let table = snapshot.derived(&self.table)?;
        Some(table.states.iter().map(|load| load.in_flight()).collect())
    }

    #[inline]
    fn choose<E: 'static>(
        &self,
        endpoints: Endpoints<E>,
        usable: impl Fn(&Endpoints<E>, usize) -> bool,
    ) -> Result<Pick<E>> {
        let n = endpoints.len();
        let table = match choose::table_or_random(&endpoints, &self.table, &self.source)? {
            Ok(table) => table,
            Err(i) => return Ok(Pick::new(endpoints, i)), // no table: unobserved
        };
        let i = choose::two(&self.source, n, |i| usable(&endpoints, i))
            .choose(|i| table.get(i).in_flight());
        table.get(i).in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(table::observe(Pick::new(endpoints, i), &self.table, None))
    }
}

choose::two_choice_balancer!(P2c);

impl<P: fmt::Debug> fmt::Debug for P2c<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P2c")
            .field("endpointer", &self.endpointer)
            .field("seeded", &self.source.is_seeded())
            .finish()
    }
}
