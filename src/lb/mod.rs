//! Load balancers: pick one endpoint per call.
//!
//! A [`Balancer`] picks from an [`Endpointer`](crate::Endpointer)'s current endpoints.
//! [`RoundRobin`] and [`Random`] are safe to share between threads; [`Retry`] wraps any
//! balancer and tries again on another pick within a deadline.

mod random;
mod retry;
mod round_robin;

pub use random::Random;
pub use retry::{AttemptError, Retry, RetryBuilder, RetryError, RetryStop};
pub use round_robin::RoundRobin;

use crate::Result;

/// Picks one endpoint per call.
///
/// An empty endpoint set is [`Error::NoEndpoints`](crate::Error::NoEndpoints); an
/// endpointer's own error (invalidated, closed) is passed through.
pub trait Balancer<E>: Send + Sync {
    /// Runs `f` on the picked endpoint, borrowed: no clone of the endpoint.
    ///
    /// The snapshot the endpoint comes from is held while `f` runs, so the endpoint is
    /// not closed under `f` (see [`Endpoints`](crate::Endpoints)); it holds no lock, so
    /// `f` may make the whole request and take as long as it needs.
    fn with_pick<R>(&self, f: impl FnOnce(&E) -> R) -> Result<R>;

    /// A clone of the picked endpoint. The snapshot is let go at once: the endpoint's
    /// closer may run while the clone is in use. Prefer
    /// [`with_pick`](Balancer::with_pick) for a request.
    fn pick(&self) -> Result<E>
    where
        E: Clone,
    {
        self.with_pick(E::clone)
    }
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for std::sync::Arc<B> {
    #[inline]
    fn with_pick<R>(&self, f: impl FnOnce(&E) -> R) -> Result<R> {
        (**self).with_pick(f)
    }
}

impl<E, B: Balancer<E> + ?Sized> Balancer<E> for &B {
    #[inline]
    fn with_pick<R>(&self, f: impl FnOnce(&E) -> R) -> Result<R> {
        (**self).with_pick(f)
    }
}
