//! `Endpointer`: the current endpoints of a service, served from a cache.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use parking_lot::Mutex;

use crate::factory::FnFactory;
use crate::internal::shard::Sharded;
use crate::internal::worker::Worker;
use crate::maker::Maker;
use crate::snapshot::{DeriveAny, DeriveFn, Instances, Retire, Sink, Slot, View, ViewState};
use crate::subscription::Answers;
use crate::updater::{Control, Updater};
use crate::{BoxError, Derived, Endpoints, Error, Event, Instance, Instancer, IntoMade, Result};
use crate::{EndpointerOptions, EndpointerState, Status};

/// Something that serves the current endpoints of one service.
///
/// Balancers ([`crate::lb`]) pick from an `Endpointer`. Implemented by
/// [`DefaultEndpointer`], [`FixedEndpointer`], and `Arc`s and references of either.
pub trait Endpointer<E>: Send + Sync {
    /// The current snapshot: the endpoints sorted by instance address, beside their
    /// instances.
    ///
    /// The value holds no lock and copies nothing per endpoint; keep it for a call,
    /// clone it, send it to another thread. While it lives, none of its endpoints is
    /// closed (see [`Endpoints`]). It is empty before the first state; an error after
    /// [`invalidate_on_error`](EndpointerOptions::invalidate_on_error) fired, after
    /// close, or after the endpointer's thread panicked.
    fn endpoints(&self) -> Result<Endpoints<E>>;

    /// Attaches a deriver in its object-safe form and returns its slot; see
    /// [`derive`](Endpointer::derive), which is the way to call it.
    ///
    /// The default refuses with [`Error::InvalidConfig`]: an endpointer of your own
    /// that serves snapshots it does not publish itself has nowhere to run it.
    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        drop(derive);
        Err(Error::invalid_config(
            "derive",
            "this endpointer does not support derived data",
        ))
    }

    /// Has `derive` make data for the current snapshot and for every later one, on the
    /// endpointer's thread, so that no pick rebuilds it (a hash ring, a weighted
    /// schedule, per-instance state carried over for the instances that stay). It is
    /// called with the new snapshot, and the previous one with what it derived from
    /// it, if any. Read the data with [`Endpoints::derived`].
    ///
    /// Returns once the current snapshot carries the data (after an update in
    /// progress, if one is). `derive` runs before each snapshot is served, so its time
    /// adds to every update's; if it panics, that snapshot carries no data for it
    /// (`derived` is `None`) and the panic is logged.
    ///
    /// ```
    /// use waypost::{Endpointer, FixedEndpointer};
    /// let endpointer = FixedEndpointer::new(vec!["a", "b"]);
    /// let total = endpointer.derive(|new, _previous: Option<(_, &usize)>| new.len())?;
    /// assert_eq!(endpointer.endpoints()?.derived(&total), Some(&2));
    /// # Ok::<(), waypost::Error>(())
    /// ```
    fn derive<D, F>(&self, derive: F) -> Result<Derived<D>>
    where
        Self: Sized,
        E: 'static,
        F: Fn(&Endpoints<E>, Option<(&Endpoints<E>, &D)>) -> D + Send + Sync + 'static,
        D: Send + Sync + 'static,
    {
        self.attach(Arc::new(DeriveFn::new(derive)))
            .map(Derived::new)
    }
}

impl<E, T: Endpointer<E> + ?Sized> Endpointer<E> for Arc<T> {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<E>> {
        (**self).endpoints()
    }
    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        (**self).attach(derive)
    }
}

impl<E, T: Endpointer<E> + ?Sized> Endpointer<E> for &T {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<E>> {
        (**self).endpoints()
    }
    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        (**self).attach(derive)
    }
}

/// What `endpoints()` reads, and what the endpointer's thread writes.
pub(crate) struct Shared<E> {
    pub(crate) views: Sharded<View<E>>,
    pub(crate) derivers: Mutex<Vec<Arc<dyn DeriveAny<E>>>>,
    pub(crate) answers: Arc<Answers>,
    /// Since when an empty set is held back ([`EndpointerOptions::hold_on_empty`]).
    pub(crate) empty_held_since: Mutex<Option<Instant>>,
}

impl<E> Shared<E> {
    fn new(view: impl Fn() -> View<E>, answers: Arc<Answers>) -> Shared<E> {
        Shared {
            views: Sharded::new(view),
            derivers: Mutex::new(Vec::new()),
            answers,
            empty_held_since: Mutex::new(None),
        }
    }

    #[inline]
    fn serve(&self) -> Result<Endpoints<E>> {
        let view = self.views.read();
        match &view.state {
            ViewState::Ready | ViewState::Pending => Ok(Endpoints::new(view)),
            state => Err(state_error(state)),
        }
    }
}

fn state_error(state: &ViewState) -> Error {
    match state {
        ViewState::Invalidated(err) => Error::Invalidated(err.clone()),
        ViewState::Failed(err) => match &**err {
            Error::Panicked { component, message } => Error::Panicked {
                component,
                message: message.clone(),
            },
            _ => Error::Invalidated(err.clone()),
        },
        _ => Error::Closed {
            component: "endpointer",
        },
    }
}

/// A fixed list of endpoints: for tests, and for balancing over a configured list.
#[must_use = "dropping an endpointer closes its endpoints"]
pub struct FixedEndpointer<E> {
    shared: Shared<E>,
}

impl<E: Send + Sync + 'static> FixedEndpointer<E> {
    /// Serves `endpoints` in the order given. Each gets a placeholder instance,
    /// `fixed-{i}:1` for the i-th; use [`with_instances`](FixedEndpointer::with_instances)
    /// when a balancer should see real ones (weights, zones, identities).
    pub fn new(endpoints: impl Into<Arc<[E]>>) -> FixedEndpointer<E> {
        let endpoints = endpoints.into();
        let instances = (0..endpoints.len())
            .map(|i| Instance::new(format!("fixed-{i}:1")))
            .collect();
        FixedEndpointer::build(instances, endpoints)
    }

    /// Serves each endpoint beside its instance, in the order given.
    pub fn with_instances(pairs: impl IntoIterator<Item = (Instance, E)>) -> FixedEndpointer<E> {
        let (instances, endpoints): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        FixedEndpointer::build(instances.into(), endpoints.into())
    }

    fn build(instances: Arc<[Instance]>, endpoints: Arc<[E]>) -> FixedEndpointer<E> {
        let retire = Arc::new(Retire::detached());
        let shared = Shared::new(
            || View {
                endpoints: endpoints.clone(),
                instances: Instances::Whole(instances.clone()),
                derived: Arc::from(Vec::new()),
                version: 1,
                state: ViewState::Ready,
                retire: retire.clone(),
            },
            Arc::default(),
        );
        FixedEndpointer { shared }
    }
}

impl<E: Send + Sync + 'static> Endpointer<E> for FixedEndpointer<E> {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<E>> {
        self.shared.serve()
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        let mut derivers = self.shared.derivers.lock();
        derivers.push(derive);
        let current = self.shared.serve()?;
        let derived: Arc<[Slot]> = derivers
            .iter()
            .enumerate()
            // The current snapshot is also the previous one of the derivers already
            // attached: they carry their data over (per-instance state survives).
            .map(|(slot, d)| Some(d.derive_any(&current, Some(&current), slot)))
            .collect();
        let view = |v: &View<E>| View {
            endpoints: v.endpoints.clone(),
            instances: v.instances.clone(),
            derived: derived.clone(),
            version: v.version + 1,
            state: ViewState::Ready,
            retire: v.retire.clone(),
        };
        let old = self.shared.views.set(|| view(current.view()));
        drop((derivers, old));
        Ok(derived.len() - 1)
    }
}

impl<E> fmt::Debug for FixedEndpointer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedEndpointer")
            .field("len", &self.shared.views.read().endpoints.len())
            .finish()
    }
}

/// The standard [`Endpointer`]: subscribes to an [`Instancer`], turns each instance
/// into an endpoint with a factory closure (see [`Made`](crate::Made)), and serves the endpoints from a cache.
///
/// # The threads
/// It owns two threads: `waypost-endpointer` receives events and updates the cache,
/// and `waypost-factory` runs the factory for it, so that a slow factory call holds up
/// neither a removal nor a stop.
/// - A backlog of events is applied as the newest set, then the error state if an error
///   came after that set: a set is never lost to a later error.
/// - The new set is diffed against the cache by one merge walk: the factory runs only
///   for added instances, unchanged instances keep their endpoint (a change of metadata
///   alone keeps the endpoint and updates the instance).
/// - **Removals do not wait for the factory.** When an update both removes and adds, it
///   waits for the factory calls of the added instances for at most
///   [`EndpointerOptions::removal_grace`] (1 ms by default). Made within it, the update
///   is one snapshot. Otherwise a snapshot without the removed instances is published
///   then, and the added ones follow in a second snapshot once they are made: a slow
///   factory (a TLS connect) never keeps a removed instance in service.
/// - A stop or a newer event cuts a long update short after the current factory call
///   (what was made is kept, the rest is made after the newer event), so `close()`
///   waits for one factory call at most and a newer set is never held up by an older
///   one.
/// - A removed instance's closer runs exactly once, on `waypost-endpointer`, once no snapshot
///   that contains its endpoint is alive (see [`Endpoints`]); if the endpointer has
///   closed by then, on the thread that drops the last such snapshot.
///
/// # Reading
/// [`endpoints`](Endpointer::endpoints) clones a reference to the current snapshot from
/// one of several cache-padded cells (one per CPU; each thread reads its own), under a
/// fair read lock held for that one increment. Readers on different CPUs do not
/// contend, a writer never waits on a reader's code, and what a reader holds is no
/// lock. Share the endpointer between threads by reference or in an `Arc`.
///
/// # Errors from the registry
/// On an error event the last good set is kept, unless
/// [`EndpointerOptions::invalidate_on_error`] says otherwise. [`status`](Self::status)
/// tells how stale the set may be.
///
/// # Closing
/// [`close`](DefaultEndpointer::close) and drop stop the thread and close every
/// endpoint. They may be called from any thread, including from inside a factory, a
/// closer or a balancer call: from the endpointer's own threads (in a factory or
/// closer) `close()` marks the close and returns, and the threads finish closing by
/// themselves.
/// If the thread panics (in a factory's `Drop`, say), `endpoints()` returns
/// [`Error::Panicked`] from then on.
#[must_use = "dropping an endpointer closes its endpoints"]
pub struct DefaultEndpointer<E> {
    shared: Arc<Shared<E>>,
    /// Kept so the instancer lives as long as the endpointer.
    instancer: Arc<dyn Instancer>,
    /// The sender registered with an instancer that offers no subscription of its
    /// own, to deregister on close.
    registered: Option<Sender<Event>>,
    control: Sender<Control>,
    ready: Receiver<()>,
    /// Disconnects when the thread has ended.
    done: Receiver<()>,
    sink: Arc<Sink>,
    worker: Mutex<Option<Worker>>,
}

impl<E: Clone + Send + Sync + 'static> DefaultEndpointer<E> {
    /// Subscribes to `instancer` with default options; `factory` makes the endpoint of
    /// each instance (see [`Made`](crate::Made) for what it may return).
    ///
    /// The instancer is taken by value and kept as long as the endpointer lives; to
    /// share one, pass an `Arc` of it.
    pub fn new<F, M>(instancer: impl Instancer + 'static, factory: F) -> Result<Self>
    where
        F: Fn(&Instance) -> std::result::Result<M, BoxError> + Send + 'static,
        M: IntoMade<E> + 'static,
    {
        Self::with_options(instancer, factory, EndpointerOptions::default())
    }

    /// Subscribes to `instancer` with `options`.
    pub fn with_options<F, M>(
        instancer: impl Instancer + 'static,
        factory: F,
        options: EndpointerOptions,
    ) -> Result<Self>
    where
        F: Fn(&Instance) -> std::result::Result<M, BoxError> + Send + 'static,
        M: IntoMade<E> + 'static,
    {
        let instancer: Arc<dyn Instancer> = Arc::new(instancer);
        let events = instancer.subscribe_latest();
        let registered = events.registered().cloned();
        let (own_answers, answers) = match events.answers() {
            Some(answers) => (false, answers.clone()),
            None => (true, Arc::default()),
        };
        let (closings_tx, closings) = unbounded();
        let sink = Arc::new(Sink::new(closings_tx));
        let retire = Arc::new(Retire::new(sink.clone()));
        let shared = Arc::new(Shared::new(
            || View {
                endpoints: Arc::from(Vec::new()),
                instances: Instances::empty(),
                derived: Arc::from(Vec::new()),
                version: 0,
                state: ViewState::Pending,
                retire: retire.clone(),
            },
            answers,
        ));
        let (control_tx, control) = unbounded();
        let (ready_tx, ready) = bounded(0);
        let (done_tx, done) = bounded(0);
        let updater = Updater::new(
            events,
            shared.clone(),
            Maker::start(Box::new(FnFactory::new(factory)), sink.clone())?,
            &options,
            own_answers,
            (ready_tx, done_tx, control, closings),
            (sink.clone(), retire),
        );
        let worker = Worker::start("waypost-endpointer", move |stop| updater.run(&stop))?;
        Ok(DefaultEndpointer {
            shared,
            instancer,
            registered,
            control: control_tx,
            ready,
            done,
            sink,
            worker: Mutex::new(Some(worker)),
        })
    }
}

impl<E> DefaultEndpointer<E> {
    /// Blocks until the first instance set has been cached, or `timeout` passes.
    ///
    /// Error events do not end the wait (the registry may recover). On timeout this
    /// returns [`Error::Timeout`] whose `source()` (and message) is the registry's last
    /// error, if it reported one. After close it returns [`Error::Closed`].
    /// `Duration::MAX` waits for as long as it takes.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_ready_deadline(deadline),
            None => self.wait_until_ready(None, timeout),
        }
    }

    /// [`wait_ready`](Self::wait_ready) until `deadline` instead of for a duration.
    pub fn wait_ready_deadline(&self, deadline: Instant) -> Result<()> {
        let waited = deadline.saturating_duration_since(Instant::now());
        self.wait_until_ready(Some(deadline), waited)
    }

    fn wait_until_ready(&self, deadline: Option<Instant>, waited: Duration) -> Result<()> {
        let outcome = match deadline {
            Some(deadline) => self.ready.recv_deadline(deadline),
            None => self
                .ready
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match outcome {
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout {
                operation: "the first instance set",
                after: waited,
                cause: self.shared.answers.get().last_error,
            }),
            // The thread drops the sender on the first set, or when it exits.
            _ => match &self.shared.views.read().state {
                ViewState::Ready | ViewState::Pending | ViewState::Invalidated(_) => Ok(()),
                state => Err(state_error(state)),
            },
        }
    }

    /// How fresh the served set is: the endpointer's state, the size and version of
    /// the current snapshot, when the registry last confirmed a set (every answer
    /// counts, also one that repeats the set), and the registry's errors since.
    pub fn status(&self) -> Status {
        let view = self.shared.views.read();
        let answers = self.shared.answers.get();
        Status {
            state: match &view.state {
                ViewState::Pending => EndpointerState::Pending,
                ViewState::Ready => EndpointerState::Ready,
                ViewState::Invalidated(_) => EndpointerState::Invalidated,
                ViewState::Closed => EndpointerState::Closed,
                ViewState::Failed(_) => EndpointerState::Failed,
            },
            endpoints: view.endpoints.len(),
            version: view.version,
            last_confirmed: answers.last_ok,
            last_error: answers.last_error,
            error_since: answers.error_since,
            errors_in_a_row: answers.errors_in_a_row,
            empty_held_since: *self.shared.empty_held_since.lock(),
        }
    }

    /// Stops the threads and closes every endpoint (see [Closing](Self#closing)).
    /// Idempotent; drop does the same. Returns once the threads have ended, unless it
    /// is called on one of them.
    pub fn close(&self) {
        let worker = self.worker.lock().take();
        if let (Some(tx), Some(_)) = (&self.registered, &worker) {
            self.instancer.unsubscribe(tx);
        }
        match worker {
            // In a factory call: the endpointer's thread may be waiting for this call
            // to end, so it is told to stop and not waited for.
            Some(mut worker) if self.sink.on_factory_thread() => worker.signal(),
            Some(mut worker) => worker.stop(),
            None if self.sink.on_endpointer_thread() || self.sink.on_factory_thread() => {}
            // Another thread is closing: wait for the thread to end.
            None => while self.done.recv().is_ok() {},
        }
    }
}

impl<E: Send + Sync + 'static> Endpointer<E> for DefaultEndpointer<E> {
    #[inline]
    fn endpoints(&self) -> Result<Endpoints<E>> {
        self.shared.serve()
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        let slot = {
            let mut derivers = self.shared.derivers.lock();
            derivers.push(derive);
            derivers.len() - 1
        };
        let (tx, rx) = bounded(1);
        let on_own_thread = self.sink.on_endpointer_thread() || self.sink.on_factory_thread();
        if self.control.send(Control::Rederive(tx)).is_ok() && !on_own_thread {
            let _ = rx.recv(); // disconnected if the thread ends first
        }
        Ok(slot)
    }
}

impl<E> Drop for DefaultEndpointer<E> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<E> fmt::Debug for DefaultEndpointer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultEndpointer")
            .field("status", &self.status())
            .finish()
    }
}
