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
    /// Who hears how the call ends. Two fit inline (a load-aware balancer and a
    /// wrapper such as outlier ejection); more are kept in `more`, allocated only then.
    observers: [Option<Observer<E>>; 2],
    more: Option<Box<[Observer<E>]>>,
    /// When the call began, if an observer measures latency.
    started: Option<Instant>,
}

/// Who hears a call's end.
enum Observer<E> {
    /// An observer of the balancer's own.
    Shared(Arc<dyn CallObserver<E>>),
    /// Per-instance state in the snapshot's derived data, in `slot`: `ended` finds the
    /// picked instance's state there. The pick holds the snapshot, so nothing is
    /// cloned per pick.
    Derived { slot: usize, ended: EndedFn<E> },
}

/// How an [`Observer::Derived`] is told: the snapshot, the slot, the index, the outcome
/// and the start.
pub(crate) type EndedFn<E> = fn(&Endpoints<E>, usize, usize, Outcome, Option<Instant>);

impl<E> Observer<E> {
    #[inline]
    fn ended(
        &self,
        snapshot: &Endpoints<E>,
        index: usize,
        outcome: Outcome,
        started: Option<Instant>,
    ) {
        match self {
            Observer::Shared(observer) => observer.ended(snapshot, index, outcome, started),
            Observer::Derived { slot, ended } => ended(snapshot, *slot, index, outcome, started),
        }
    }
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
            observers: [None, None],
            more: None,
            started: None,
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
        self,
        observer: Arc<dyn CallObserver<E>>,
        started: Option<Instant>,
    ) -> Pick<E> {
        self.observed_by(Observer::Shared(observer), started)
    }

    /// As [`observed_also`](Pick::observed_also), for state kept in the snapshot's
    /// derived data in `slot`: `ended` finds it there at the call's end.
    #[inline]
    pub(crate) fn observed_in(
        self,
        slot: usize,
        ended: EndedFn<E>,
        started: Option<Instant>,
    ) -> Pick<E> {
        self.observed_by(Observer::Derived { slot, ended }, started)
    }

    #[inline(always)]
    fn observed_by(mut self, observer: Observer<E>, started: Option<Instant>) -> Pick<E> {
        self.started = self.started.or(started);
        match &mut self.observers {
            [free @ None, _] | [Some(_), free @ None] => *free = Some(observer),
            [Some(_), Some(_)] => {
                let mut more = self.more.take().map(Vec::from).unwrap_or_default();
                more.push(observer);
                self.more = Some(more.into_boxed_slice());
            }
        }
        self
    }

    /// When the call began, if an observer asked for the time.
    pub fn started(&self) -> Option<Instant> {
        self.started
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
    #[inline]
    pub fn success(mut self) {
        self.end(Outcome::Success);
    }

    /// Ends the call: it failed (a balancer that ejects outliers counts it).
    pub fn failure(mut self) {
        self.end(Outcome::Failure);
    }

    #[inline(always)]
    fn end(&mut self, outcome: Outcome) {
        for observer in &mut self.observers {
            if let Some(observer) = observer.take() {
                observer.ended(&self.snapshot, self.index, outcome, self.started);
            }
        }
        if let Some(more) = self.more.take() {
            for observer in more {
                observer.ended(&self.snapshot, self.index, outcome, self.started);
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
            .field("observed", &self.observers[0].is_some())
            .finish()
    }
}
