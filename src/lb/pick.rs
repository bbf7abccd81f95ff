//! `Pick`: one endpoint picked for one call, and how the call's end reaches a
//! balancer that learns from it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::{Endpoints, Instance};

/// One endpoint picked by a [`Balancer`](super::Balancer) for one call; derefs to the
/// endpoint.
///
/// It holds the snapshot the endpoint came from, so the endpoint is not closed while
/// the pick lives (see [`Endpoints`]); it holds no lock. End the call with
/// [`success`](Pick::success) or [`failure`](Pick::failure), or just drop the pick
/// (the call ended, with no outcome to report). Balancers that learn from calls
/// (least-loaded, latency-aware, outlier ejection) count the call from the pick to its
/// end and record the outcome; round-robin and random ignore it, at no cost: they read
/// no clock and keep no state per call.
///
/// ```
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Balancer, RoundRobin};
/// let lb = RoundRobin::new(FixedEndpointer::new(vec!["a", "b"]));
/// let pick = lb.pick()?;
/// let answer = format!("called {}", *pick); // the request, made on the endpoint
/// pick.success();
/// # Ok::<(), waypost::Error>(())
/// ```
#[must_use = "a pick is for a call: dropping it ends the call"]
pub struct Pick<E> {
    snapshot: Endpoints<E>,
    index: usize,
    call: Option<Call<E>>,
}

/// A call balancers observe: who to tell when it ends, and when it began (if an
/// observer measures latency). Two observers fit inline (a load-aware balancer and a
/// wrapper such as outlier ejection); more are kept in `more`, allocated only then.
struct Call<E> {
    observers: [Option<Arc<dyn CallObserver<E>>>; 2],
    more: Vec<Arc<dyn CallObserver<E>>>,
    started: Option<Instant>,
}

/// How a call ended, as a [`CallObserver`] learns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// [`Pick::success`].
    Success,
    /// [`Pick::failure`].
    Failure,
    /// The pick was dropped without an outcome: the call ended, nothing more is known.
    Dropped,
}

/// What a balancer that learns from calls implements to hear how each call it picked
/// ended. The balancer hands it to [`Pick::observed`].
///
/// Its per-instance state is best kept in data derived from each snapshot
/// ([`Endpointer::derive`](crate::Endpointer::derive)), which `snapshot` carries.
pub trait CallObserver<E>: Send + Sync {
    /// The call on the endpoint at `index` of `snapshot` ended with `outcome`;
    /// `started` is what the balancer passed to [`Pick::observed`].
    fn ended(
        &self,
        snapshot: &Endpoints<E>,
        index: usize,
        outcome: Outcome,
        started: Option<Instant>,
    );
}

impl<E> Pick<E> {
    /// The endpoint at `index` of `snapshot`, for a balancer that observes nothing.
    /// `index` must be in bounds (a pick of an empty snapshot is
    /// [`Error::NoEndpoints`](crate::Error::NoEndpoints), never a `Pick`).
    #[inline]
    pub fn new(snapshot: Endpoints<E>, index: usize) -> Pick<E> {
        assert!(index < snapshot.len(), "pick {index} of {}", snapshot.len());
        Pick {
            snapshot,
            index,
            call: None,
        }
    }

    /// As [`Pick::new`], for a balancer that learns from calls: `observer` hears how
    /// the call ends; `started` is when it began, if the observer needs latency.
    pub fn observed(
        snapshot: Endpoints<E>,
        index: usize,
        observer: Arc<dyn CallObserver<E>>,
        started: Option<Instant>,
    ) -> Pick<E> {
        Pick::new(snapshot, index).observed_also(observer, started)
    }

    /// Adds `observer` to those that hear how the call ends: what a wrapper around
    /// another balancer (outlier ejection) does to the inner balancer's pick. `started`
    /// is used when no earlier observer gave one; every observer is told the same
    /// start. Allocates nothing for the first two observers.
    pub fn observed_also(
        mut self,
        observer: Arc<dyn CallObserver<E>>,
        started: Option<Instant>,
    ) -> Pick<E> {
        match &mut self.call {
            None => {
                self.call = Some(Call {
                    observers: [Some(observer), None],
                    more: Vec::new(),
                    started,
                });
            }
            Some(call) => {
                call.started = call.started.or(started);
                match &mut call.observers[1] {
                    free @ None => *free = Some(observer),
                    Some(_) => call.more.push(observer),
                }
            }
        }
        self
    }

    /// When the call began, if an observer asked for the time.
    pub fn started(&self) -> Option<Instant> {
        self.call.as_ref().and_then(|c| c.started)
    }

    /// The picked endpoint.
    #[inline]
    pub fn endpoint(&self) -> &E {
        &self.snapshot[self.index]
    }

    /// The instance the endpoint was made for.
    pub fn instance(&self) -> &Instance {
        &self.snapshot.instances()[self.index]
    }

    /// The endpoint's position in [`snapshot`](Pick::snapshot).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The snapshot the endpoint was picked from.
    pub fn snapshot(&self) -> &Endpoints<E> {
        &self.snapshot
    }

    /// Ends the call: it succeeded.
    pub fn success(mut self) {
        self.end(Outcome::Success);
    }

    /// Ends the call: it failed (a balancer that ejects outliers counts it).
    pub fn failure(mut self) {
        self.end(Outcome::Failure);
    }

    fn end(&mut self, outcome: Outcome) {
        if let Some(call) = self.call.take() {
            let observers = call.observers.iter().flatten().chain(&call.more);
            for observer in observers {
                observer.ended(&self.snapshot, self.index, outcome, call.started);
            }
        }
    }
}

impl<E> Drop for Pick<E> {
    fn drop(&mut self) {
        self.end(Outcome::Dropped);
    }
}

impl<E> Deref for Pick<E> {
    type Target = E;
    #[inline]
    fn deref(&self) -> &E {
        self.endpoint()
    }
}

impl<E: fmt::Debug> fmt::Debug for Pick<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick")
            .field("endpoint", self.endpoint())
            .field("index", &self.index)
            .field("observed", &self.call.is_some())
            .finish()
    }
}
