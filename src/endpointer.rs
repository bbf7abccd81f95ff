//! `Endpointer`: the current endpoints of a service, served from a cache.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use parking_lot::{MappedRwLockReadGuard, Mutex, RwLockReadGuard};

use crate::endpoint_cache::Updater;
use crate::internal::shard::Sharded;
use crate::internal::worker::Worker;
use crate::{Clock, Error, Event, Factory, Instancer, Result, SystemClock};

/// Something that serves the current endpoints of one service.
///
/// Balancers ([`crate::lb`]) pick from an `Endpointer`. Implemented by
/// [`DefaultEndpointer`], [`FixedEndpointer`], and `Arc`s of either.
pub trait Endpointer<E>: Send + Sync {
    /// The current endpoints, sorted by instance address.
    ///
    /// The guard borrows the endpointer's cache: hold it briefly (a pick, not a
    /// request), or call [`Endpoints::to_arc`] to keep a snapshot. It is an empty slice
    /// before the first state; an error after
    /// [`invalidate_on_error`](EndpointerOptions::invalidate_on_error) fired, or after
    /// close.
    fn endpoints(&self) -> Result<Endpoints<'_, E>>;
}

impl<E, T: Endpointer<E> + ?Sized> Endpointer<E> for Arc<T> {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<'_, E>> {
        (**self).endpoints()
    }
}

impl<E, T: Endpointer<E> + ?Sized> Endpointer<E> for &T {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<'_, E>> {
        (**self).endpoints()
    }
}

/// A short-lived read guard over the current endpoints; derefs to `[E]`.
///
/// Taking it allocates, sorts and clones nothing. While it is held the endpointer's
/// thread waits to publish a newer set on this thread's shard, so do not hold it across
/// a request: pick, clone what you need, drop.
pub struct Endpoints<'a, E> {
    guard: MappedRwLockReadGuard<'a, Arc<[E]>>,
}

impl<E> Endpoints<'_, E> {
    /// The snapshot as a shared slice, to keep after the guard is dropped.
    pub fn to_arc(&self) -> Arc<[E]> {
        Arc::clone(&self.guard)
    }
}

impl<E> Deref for Endpoints<'_, E> {
    type Target = [E];
    #[inline]
    fn deref(&self) -> &[E] {
        &self.guard
    }
}

impl<E: fmt::Debug> fmt::Debug for Endpoints<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What `endpoints()` serves; replicated into every shard by the endpointer thread.
pub(crate) struct Snapshot<E> {
    pub(crate) endpoints: Arc<[E]>,
    pub(crate) state: SnapshotState,
}

impl<E> Clone for Snapshot<E> {
    fn clone(&self) -> Self {
        Snapshot {
            endpoints: self.endpoints.clone(),
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) enum SnapshotState {
    Pending,
    Ready,
    Invalidated(Arc<Error>),
    Closed,
}

#[inline]
fn serve<E>(shared: &Sharded<Snapshot<E>>) -> Result<Endpoints<'_, E>> {
    let guard = shared.read();
    match &guard.state {
        SnapshotState::Ready | SnapshotState::Pending => Ok(Endpoints {
            guard: RwLockReadGuard::map(guard, |s| &s.endpoints),
        }),
        SnapshotState::Invalidated(err) => Err(Error::Invalidated(err.clone())),
        SnapshotState::Closed => Err(Error::Closed {
            component: "endpointer",
        }),
    }
}

/// A fixed list of endpoints: for tests, and for balancing over a configured list.
pub struct FixedEndpointer<E> {
    shared: Sharded<Snapshot<E>>,
}

impl<E: Send + Sync> FixedEndpointer<E> {
    /// Serves `endpoints` in the order given.
    pub fn new(endpoints: impl Into<Arc<[E]>>) -> FixedEndpointer<E> {
        FixedEndpointer {
            shared: Sharded::new(Snapshot {
                endpoints: endpoints.into(),
                state: SnapshotState::Ready,
            }),
        }
    }
}

impl<E: Send + Sync> Endpointer<E> for FixedEndpointer<E> {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<'_, E>> {
        serve(&self.shared)
    }
}

impl<E> fmt::Debug for FixedEndpointer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedEndpointer")
            .field("len", &self.shared.read().endpoints.len())
            .finish()
    }
}

/// Options for a [`DefaultEndpointer`]: data plus by-value setters.
#[derive(Clone, Debug)]
pub struct EndpointerOptions {
    invalidate_after: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl Default for EndpointerOptions {
    fn default() -> Self {
        EndpointerOptions {
            invalidate_after: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl EndpointerOptions {
    /// The defaults: keep the last good set for as long as the registry errs, on the
    /// system clock.
    pub fn new() -> EndpointerOptions {
        EndpointerOptions::default()
    }

    /// After the registry has reported errors for `timeout` without a good set in
    /// between, close every endpoint and have `endpoints()` return
    /// [`Error::Invalidated`] until the next good set. Default: never. A short timeout
    /// turns a registry hiccup into an outage; a long one keeps sending traffic to
    /// instances that may be gone. `Duration::ZERO` invalidates on the first error.
    pub fn invalidate_on_error(mut self, timeout: Duration) -> Self {
        self.invalidate_after = Some(timeout);
        self
    }

    /// The clock the invalidation timer reads. Default: [`SystemClock`]; tests pass a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// The standard [`Endpointer`]: subscribes to an [`Instancer`], turns each instance
/// into an endpoint with a [`Factory`], and serves the endpoints from a cache.
///
/// # Threads
/// It owns one thread, `waypost-endpointer`, that receives events, coalesces a backlog
/// to the newest event, diffs it against the cache (the factory runs only for added
/// instances; a removed instance's closer runs exactly once; unchanged instances keep
/// their endpoint), and publishes a new snapshot. [`close`](DefaultEndpointer::close)
/// and drop deregister from the instancer, join the thread and close every endpoint.
///
/// # Reading
/// [`endpoints`](Endpointer::endpoints) reads a snapshot behind one cache-padded
/// read/write lock per CPU; each thread reads its own, so readers on different threads
/// do not contend. Share the endpointer between threads by reference or in an `Arc`.
///
/// # Errors from the registry
/// On an error event the last good set is kept, unless
/// [`EndpointerOptions::invalidate_on_error`] says otherwise.
pub struct DefaultEndpointer<E> {
    shared: Arc<Sharded<Snapshot<E>>>,
    instancer: Arc<dyn Instancer>,
    events: Sender<Event>,
    ready: Receiver<()>,
    worker: Mutex<Worker>,
}

impl<E: Clone + Send + Sync + 'static> DefaultEndpointer<E> {
    /// Subscribes to `instancer` with default options.
    pub fn new(instancer: Arc<dyn Instancer>, factory: impl Factory<E>) -> Result<Self> {
        Self::with_options(instancer, factory, EndpointerOptions::default())
    }

    /// Subscribes to `instancer` with `options`.
    pub fn with_options(
        instancer: Arc<dyn Instancer>,
        factory: impl Factory<E>,
        options: EndpointerOptions,
    ) -> Result<Self> {
        let shared = Arc::new(Sharded::new(Snapshot {
            endpoints: Arc::from(Vec::new()),
            state: SnapshotState::Pending,
        }));
        let (events_tx, events_rx) = unbounded();
        let (ready_tx, ready_rx) = bounded(0);
        let updater = Updater {
            events: events_rx,
            ready: Some(ready_tx),
            shared: shared.clone(),
            factory: Box::new(factory),
            clock: options.clock,
            invalidate_after: options.invalidate_after,
        };
        let worker = Worker::start("waypost-endpointer", move |stop| updater.run(&stop))?;
        instancer.register(events_tx.clone());
        Ok(DefaultEndpointer {
            shared,
            instancer,
            events: events_tx,
            ready: ready_rx,
            worker: Mutex::new(worker),
        })
    }
}

impl<E> DefaultEndpointer<E> {
    /// Blocks until the first instance set has been cached, or `timeout` passes.
    ///
    /// Error events do not end the wait (the registry may recover); on timeout this
    /// returns [`Error::Timeout`]. After close it returns [`Error::Closed`].
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        match self.ready.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => Err(Error::timeout("the first instance set", timeout)),
            // The thread drops the sender on the first set, or when it exits.
            _ => match self.shared.read().state {
                SnapshotState::Closed => Err(Error::Closed {
                    component: "endpointer",
                }),
                _ => Ok(()),
            },
        }
    }

    /// Deregisters from the instancer, stops and joins the thread, and closes every
    /// endpoint. Idempotent; drop does the same.
    ///
    /// Do not call it (or drop the endpointer) while the same thread holds an
    /// [`Endpoints`] guard of it: the thread publishes the closed state before it ends,
    /// and that write waits for the guard.
    pub fn close(&self) {
        let mut worker = self.worker.lock();
        if worker.is_running() {
            self.instancer.deregister(&self.events);
            worker.stop();
        }
    }
}

impl<E: Send + Sync> Endpointer<E> for DefaultEndpointer<E> {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<'_, E>> {
        serve(&self.shared)
    }
}

impl<E> Drop for DefaultEndpointer<E> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<E> fmt::Debug for DefaultEndpointer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.shared.read();
        let state = match &snapshot.state {
            SnapshotState::Pending => "pending",
            SnapshotState::Ready => "ready",
            SnapshotState::Invalidated(_) => "invalidated",
            SnapshotState::Closed => "closed",
        };
        f.debug_struct("DefaultEndpointer")
            .field("state", &state)
            .field("len", &snapshot.endpoints.len())
            .finish()
    }
}
