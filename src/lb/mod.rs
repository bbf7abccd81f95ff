//! Load balancers: pick one endpoint per call.
//!
//! A [`Balancer`] picks from an [`Endpointer`](crate::Endpointer)'s current endpoints
//! and returns a [`Pick`]: the endpoint, kept open for the call, and the way the
//! call's outcome reaches balancers that learn from it. Every balancer here is safe to
//! share between threads (one per service, in an `Arc` or a static), and picks
//! allocate nothing.
//!
//! # Which one
//!
//! - [`RoundRobin`]: each endpoint in turn, from a random start. The default choice
//!   when instances are alike: the load is spread exactly evenly, the pick costs one
//!   uncontended atomic add. It does not notice a slow or failing instance.
//! - [`Random`]: uniformly at random (seedable for tests). Even on average, with no
//!   shared state at all; for many clients with few calls each, where round-robin's
//!   per-client order would not matter anyway.
//! - [`P2c`]: the less loaded of two random endpoints, the load being the calls in
//!   flight (least outstanding requests). Follows each instance's speed without
//!   measuring time: a slow instance gathers calls and is passed over. The default
//!   choice when instances may differ; one per-instance atomic add per pick.
//! - [`PeakEwma`]: the same two choices, the cost being a peak-sensitive moving
//!   average of each instance's latency times its calls in flight (Finagle, Linkerd).
//!   Reacts to a slowing instance from its first slow answer; reads the clock at each
//!   pick and each end. Pair it with outlier ejection (a fast-failing instance looks
//!   fast to it).
//! - [`OutlierEjection`]: wraps any of these and sets aside, for a while, an instance
//!   whose calls failed 5 times in a row (Envoy's defaults), with a panic threshold
//!   that balances over all instances when too few are left.
//! - [`WeightedRoundRobin`]: round-robin by the instances' weights (metadata),
//!   exact over every cycle and never a burst; as cheap as round-robin.
//! - [`ConsistentHash`]: the same key to the same instance
//!   ([`pick_for`](ConsistentHash::pick_for)), few keys moved when the set changes,
//!   and no instance over 1.25 times the average of keys in flight (bounded load).
//! - [`ZonePreference`]: wraps any balancer and keeps calls in the local zone while it
//!   has instances, spilling to every zone otherwise.
//! - [`SlowStart`]: wraps any balancer so a new instance's share ramps up over 30 s.
//! - [`Retry`]: wraps any balancer, and tries the call again on another pick when it
//!   fails, at most `max_attempts` times within one deadline, optionally within a
//!   [`RetryBudget`] (retries at most 20 % of calls plus 10 a second) and with a
//!   backoff. Use it for idempotent calls only (see its docs for how to keep the
//!   others from being retried).
//!
//! Balancers that learn from calls keep their per-instance state beside the
//! endpointer's snapshots ([`Endpointer::derive`](crate::Endpointer::derive)), keyed by
//! instance address: it survives set changes for instances that stay, a new instance
//! starts neutral, and a removed one's state is dropped. A pick allocates nothing and
//! takes no lock shared between threads. How much each buys, in a simulation of slow,
//! failing and uneven servers, is in `benches/README.md`.

mod budget;
mod choose;
mod eject;
mod hash;
mod p2c;
mod peak_ewma;
mod pick;
mod random;
mod retry;
mod round_robin;
mod slow_start;
mod table;
mod weighted;
mod zone;

pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use eject::{
    Ejected, EjectionEvent, EjectionReason, EjectionStatus, OutlierEjection, OutlierEjectionBuilder,
};
pub use hash::{ConsistentHash, ConsistentHashBuilder};
pub use p2c::P2c;
pub use peak_ewma::{PeakEwma, PeakEwmaBuilder};
pub use pick::{CallObserver, Outcome, Pick};
pub use random::Random;
pub use retry::{AttemptError, Deadline, Retry, RetryBuilder, RetryError, RetryStop};
pub use round_robin::RoundRobin;
pub use slow_start::{SlowStart, SlowStartBuilder};
pub use weighted::WeightedRoundRobin;
pub use zone::{ZonePreference, ZonePreferenceBuilder};

use std::sync::Arc;

use crate::{DeriveAny, Endpoints, Error, Result};

/// Picks one endpoint per call.
///
/// [`pick`](Balancer::pick) returns a [`Pick`]: the endpoint, kept open for as long as
/// the pick lives, and the way the call's outcome reaches a balancer that learns from
/// it. The trait is object-safe, so a balancer chosen from configuration can be a
/// `Box<dyn Balancer<E>>`; [`with_pick`](Balancer::with_pick) is a convenience for
/// sized balancers (boxes included).
///
/// An empty endpoint set is [`Error::NoEndpoints`]; an
/// endpointer's own error (invalidated, closed) is passed through.
///
/// ```
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Balancer, Random, RoundRobin};
/// let endpoints = || FixedEndpointer::new(vec!["a", "b"]);
/// let configured = "random";
/// let lb: Box<dyn Balancer<&str>> = match configured {
///     "random" => Box::new(Random::new(endpoints())),
///     _ => Box::new(RoundRobin::new(endpoints())),
/// };
/// let pick = lb.pick()?;
/// assert!(["a", "b"].contains(&*pick));
/// # Ok::<(), waypost::Error>(())
/// ```
pub trait Balancer<E>: Send + Sync {
    /// Picks one endpoint for one call. End the call with
    /// [`Pick::success`]/[`Pick::failure`], or drop the pick.
    fn pick(&self) -> Result<Pick<E>>;

    /// Runs `f` on a picked endpoint; the call ends (with no outcome) when `f`
    /// returns. The endpoint is not closed under `f`, and no lock is held, so `f` may
    /// make the whole request.
    fn with_pick<R>(&self, f: impl FnOnce(&E) -> R) -> Result<R>
    where
        Self: Sized,
    {
        let pick = self.pick()?;
        Ok(f(&pick))
    }

    /// As [`pick`](Balancer::pick), but an endpoint for which `usable(snapshot, index)`
    /// is true, when the balancer finds one: what a wrapper that sets instances aside
    /// ([`OutlierEjection`]) calls, so that the inner balancer's own choice (its
    /// order, its load comparison) is made among the usable ones. When none is usable
    /// the balancer may return an unusable pick; the caller checks.
    ///
    /// The default asks [`pick`](Balancer::pick) up to 8 times and returns the first
    /// usable pick, else the last one. The balancers of this module skip unusable
    /// endpoints in their own way: round-robin moves on to the next, random and the
    /// two-choice balancers draw again, then look for any usable one.
    fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
        let mut pick = self.pick()?;
        for _ in 1..DEFAULT_REPICKS {
            if usable(pick.snapshot(), pick.index()) {
                break;
            }
            pick = self.pick()?;
        }
        Ok(pick)
    }

    /// Attaches a deriver to the endpointer this balancer picks from (see
    /// [`Endpointer::attach`](crate::Endpointer::attach)): how a wrapper keeps its
    /// per-instance state beside each snapshot. The default refuses with
    /// [`Error::InvalidConfig`]; every balancer of this module passes it on.
    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        drop(derive);
        Err(Error::invalid_config(
            "balancer",
            "this balancer cannot attach per-instance state to its endpointer",
        ))
    }
}

/// What [`Balancer::pick_if`] asks of an endpoint: is the one at this index of this
/// snapshot usable?
pub type Usable<'a, E> = dyn Fn(&Endpoints<E>, usize) -> bool + 'a;

/// How many picks [`Balancer::pick_if`]'s default makes at most.
const DEFAULT_REPICKS: usize = 8;

/// Forwards every method of [`Balancer`] to `(**self)`, for the pointer impls.
macro_rules! forward_balancer {
    () => {
        #[inline]
        fn pick(&self) -> Result<Pick<E>> {
            (**self).pick()
        }
        #[inline]
        fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
            (**self).pick_if(usable)
        }
        fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
            (**self).attach(derive)
        }
    };
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for Arc<B> {
    forward_balancer!();
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for Box<B> {
    forward_balancer!();
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for &B {
    forward_balancer!();
}
