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
//! - [`Retry`]: wraps either, and tries the call again on another pick when it fails,
//!   at most `max_attempts` times within one deadline. Use it for idempotent calls
//!   only (see its docs for how to keep the others from being retried).
//!
//! Load-aware balancers (least outstanding requests, latency-aware, outlier ejection)
//! build on [`Pick`]'s call feedback ([`CallObserver`]) and on data derived from each
//! snapshot ([`Endpointer::derive`](crate::Endpointer::derive)).

mod pick;
mod random;
mod retry;
mod round_robin;

pub use pick::{CallObserver, Outcome, Pick};
pub use random::Random;
pub use retry::{AttemptError, Deadline, Retry, RetryBuilder, RetryError, RetryStop};
pub use round_robin::RoundRobin;

use crate::Result;

/// Picks one endpoint per call.
///
/// [`pick`](Balancer::pick) returns a [`Pick`]: the endpoint, kept open for as long as
/// the pick lives, and the way the call's outcome reaches a balancer that learns from
/// it. The trait is object-safe, so a balancer chosen from configuration can be a
/// `Box<dyn Balancer<E>>`; [`with_pick`](Balancer::with_pick) is a convenience for
/// sized balancers (boxes included).
///
/// An empty endpoint set is [`Error::NoEndpoints`](crate::Error::NoEndpoints); an
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
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for std::sync::Arc<B> {
    #[inline]
    fn pick(&self) -> Result<Pick<E>> {
        (**self).pick()
    }
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for Box<B> {
    #[inline]
    fn pick(&self) -> Result<Pick<E>> {
        (**self).pick()
    }
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for &B {
    #[inline]
    fn pick(&self) -> Result<Pick<E>> {
        (**self).pick()
    }
}
