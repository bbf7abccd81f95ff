//! Load balancers: pick one endpoint per call.
//!
//! A [`Balancer`] picks from an [`Endpointer`](crate::Endpointer)'s current endpoints.
//! [`RoundRobin`] and [`Random`] are safe to share between threads; [`Retry`] wraps any
//! balancer and tries again on another pick within a deadline.

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
