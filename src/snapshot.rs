//! `Endpoints`: one snapshot of an endpointer, its endpoints beside their instances;
//! the per-snapshot data balancers derive; and when a removed endpoint is closed.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::internal::shard::ShardCopy;
use crate::{Closer, Error, Instance, InstanceSet};

/// One snapshot of an [`Endpointer`](crate::Endpointer)'s endpoints, sorted by
/// instance address, each beside the [`Instance`] it was made for.
///
/// It derefs to `[E]`; [`instances`](Endpoints::instances) is aligned with it (the
/// i-th endpoint belongs to the i-th instance), and an instance whose factory failed
/// is in neither. Taking one copies nothing per endpoint: it is a reference-count
/// increment, and it holds **no lock**, so it may be kept, cloned, nested and sent to
/// other threads freely; the endpointer publishes newer snapshots meanwhile.
///
/// # Closing
/// An endpoint's closer runs only once no snapshot that contains it is alive (and
/// every reader is served a snapshot without it): while you hold an `Endpoints`, none
/// of its endpoints is closed. So keep a snapshot for the length of a call, not for
/// good: holding one holds back the closers of everything removed since. A clone of an
/// endpoint taken *out* of a snapshot (what [`Balancer::pick`](crate::lb::Balancer::pick)
/// returns, or [`to_arc`](Endpoints::to_arc)) is not tracked: its closer may run while
/// you still use the clone.
pub struct Endpoints<E> {
    view: ShardCopy<View<E>>,
}

/// What one shard serves: the snapshot's parts, shared by every shard's copy.
pub(crate) struct View<E> {
    pub(crate) endpoints: Arc<[E]>,
    pub(crate) instances: Instances,
    pub(crate) derived: Arc<[Slot]>,
    pub(crate) version: u64,
    pub(crate) state: ViewState,
    /// Keeps the closers of endpoints removed after this snapshot from running.
    pub(crate) retire: Arc<Retire>,
}

/// A snapshot's instances: the whole set an update was made from (shared, nothing
/// copied), or that set less the positions with no endpoint (a failed factory, an
/// addition not made yet), copied out only when somebody first asks for them, so that
/// an update pays nothing for instances no balancer reads.
#[derive(Clone)]
pub(crate) enum Instances {
    Whole(Arc<[Instance]>),
    Subset(Arc<Subset>),
}

pub(crate) struct Subset {
    set: InstanceSet,
    /// Positions in `set` left out, ascending.
    skip: Box<[usize]>,
    built: OnceLock<Arc<[Instance]>>,
}

impl Instances {
    pub(crate) fn of(set: &InstanceSet, skip: &[usize]) -> Instances {
        if skip.is_empty() {
            return Instances::Whole(set.as_arc().clone());
        }
        Instances::Subset(Arc::new(Subset {
            set: set.clone(),
            skip: skip.into(),
            built: OnceLock::new(),
        }))
    }

    pub(crate) fn empty() -> Instances {
        Instances::Whole(Arc::from(Vec::new()))
    }

    #[inline]
    pub(crate) fn get(&self) -> &[Instance] {
        match self {
            Instances::Whole(all) => all,
            Instances::Subset(subset) => subset.built.get_or_init(|| {
                let mut skip = subset.skip.iter().copied().peekable();
                (subset.set.iter().enumerate())
                    .filter(|(at, _)| skip.next_if_eq(at).is_none())
                    .map(|(_, instance)| instance.clone())
                    .collect()
            }),
        }
    }
}

/// One balancer's derived data for one snapshot.
pub(crate) type Slot = Option<Arc<dyn Any + Send + Sync>>;

/// Whether `endpoints()` serves the view or an error.
#[derive(Clone, Debug)]
pub(crate) enum ViewState {
    Pending,
    Ready,
    Invalidated(Arc<Error>),
    Closed,
    Failed(Arc<Error>),
}

impl<E> Endpoints<E> {
    pub(crate) fn new(view: ShardCopy<View<E>>) -> Endpoints<E> {
        Endpoints { view }
    }

    /// A snapshot of `endpoints` beside `instances`, for an [`Endpointer`](crate::Endpointer)
    /// of your own. [`Error::InvalidConfig`] if their lengths differ.
    pub fn from_parts(
        instances: impl Into<Arc<[Instance]>>,
        endpoints: impl Into<Arc<[E]>>,
    ) -> crate::Result<Endpoints<E>> {
        let (instances, endpoints) = (instances.into(), endpoints.into());
        if instances.len() != endpoints.len() {
            return Err(Error::invalid_config(
                "endpoints",
                "one instance per endpoint is needed",
            ));
        }
        Ok(Endpoints::new(Arc::new(crate::internal::shard::Padded(
            View {
                endpoints,
                instances: Instances::Whole(instances),
                derived: Arc::from(Vec::new()),
                version: 0,
                state: ViewState::Ready,
                retire: Arc::new(Retire::detached()),
            },
        ))))
    }

    pub(crate) fn view(&self) -> &View<E> {
        &self.view
    }

    /// The instances, aligned with the endpoints.
    #[inline]
    pub fn instances(&self) -> &[Instance] {
        self.view.instances.get()
    }

    /// Each instance with its endpoint.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&Instance, &E)> {
        self.instances().iter().zip(self.view.endpoints.iter())
    }

    /// The endpoints as a shared slice, detached from this snapshot: it keeps the
    /// endpoints alive, but not their closers from running (see the type docs).
    pub fn to_arc(&self) -> Arc<[E]> {
        Arc::clone(&self.view.endpoints)
    }

    /// The snapshot's number: it grows by at least one with every snapshot an
    /// endpointer publishes, so two snapshots with the same version are the same.
    #[inline]
    pub fn version(&self) -> u64 {
        self.view.version
    }

    /// The data `derived` was attached to make for this snapshot (see
    /// [`Endpointer::derive`](crate::Endpointer::derive));
    /// `None` for a slot of another endpointer or type.
    #[inline]
    pub fn derived<D: Any>(&self, derived: &Derived<D>) -> Option<&D> {
        self.slot(derived.slot)?.downcast_ref()
    }

    fn slot(&self, slot: usize) -> Option<&(dyn Any + Send + Sync)> {
        self.view.derived.get(slot)?.as_deref()
    }
}

impl<E> Clone for Endpoints<E> {
    fn clone(&self) -> Self {
        Endpoints {
            view: Arc::clone(&self.view),
        }
    }
}

impl<E> Deref for Endpoints<E> {
    type Target = [E];
    #[inline]
    fn deref(&self) -> &[E] {
        &self.view.endpoints
    }
}

impl<E: fmt::Debug> fmt::Debug for Endpoints<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pairs()).finish()
    }
}

/// Data a balancer derives from each snapshot on the endpointer's thread, in the
/// object-safe form that [`Endpointer::attach`](crate::Endpointer::attach) takes.
///
/// Use [`Endpointer::derive`](crate::Endpointer::derive) with a closure rather than
/// implementing this: it wraps the closure and hands out a typed [`Derived`] handle.
pub trait DeriveAny<E>: Send + Sync + 'static {
    /// Derives for `new`; `slot` is where the previous snapshot keeps its data.
    fn derive_any(
        &self,
        new: &Endpoints<E>,
        previous: Option<&Endpoints<E>>,
        slot: usize,
    ) -> Arc<dyn Any + Send + Sync>;
}

/// A closure `Fn(&Endpoints<E>, Option<(&Endpoints<E>, &D)>) -> D` as a [`DeriveAny`].
pub(crate) struct DeriveFn<F, D> {
    f: F,
    _data: PhantomData<fn() -> D>,
}

impl<F, D> DeriveFn<F, D> {
    pub(crate) fn new(f: F) -> DeriveFn<F, D> {
        DeriveFn {
            f,
            _data: PhantomData,
        }
    }
}

impl<E, F, D> DeriveAny<E> for DeriveFn<F, D>
where
    E: 'static,
    F: Fn(&Endpoints<E>, Option<(&Endpoints<E>, &D)>) -> D + Send + Sync + 'static,
    D: Send + Sync + 'static,
{
    fn derive_any(
        &self,
        new: &Endpoints<E>,
        previous: Option<&Endpoints<E>>,
        slot: usize,
    ) -> Arc<dyn Any + Send + Sync> {
        let previous = previous.and_then(|p| Some((p, p.slot(slot)?.downcast_ref()?)));
        Arc::new((self.f)(new, previous))
    }
}

/// A handle to the data a closure given to
/// [`Endpointer::derive`](crate::Endpointer::derive) makes for every snapshot; see
/// [`Endpoints::derived`].
pub struct Derived<D> {
    slot: usize,
    _data: PhantomData<fn() -> D>,
}

impl<D> Derived<D> {
    pub(crate) fn new(slot: usize) -> Derived<D> {
        Derived {
            slot,
            _data: PhantomData,
        }
    }

    pub(crate) fn slot(&self) -> usize {
        self.slot
    }
}

impl<D> Clone for Derived<D> {
    fn clone(&self) -> Self {
        Derived::new(self.slot)
    }
}

impl<D> fmt::Debug for Derived<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Derived").field("slot", &self.slot).finish()
    }
}

/// Closers waiting for the snapshots that hold their endpoints to go.
///
/// Each published snapshot has one `Retire`, held by every shard's copy of it and by
/// every `Endpoints` taken from them. The closers of the endpoints an update removes go
/// to the `Retire` of the last snapshot that had them. Each `Retire` also holds the next
/// one, so a `Retire` lives as long as any snapshot published up to it: its closers run
/// only once no snapshot that could contain their endpoints is alive.
pub(crate) struct Retire {
    closings: Mutex<Closings>,
    next: Mutex<Option<Arc<Retire>>>,
    sink: Option<Arc<Sink>>,
}

impl Retire {
    pub(crate) fn new(sink: Arc<Sink>) -> Retire {
        Retire {
            closings: Mutex::new(Closings::default()),
            next: Mutex::new(None),
            sink: Some(sink),
        }
    }

    /// For snapshots that never retire anything (a fixed list).
    pub(crate) fn detached() -> Retire {
        Retire {
            closings: Mutex::new(Closings::default()),
            next: Mutex::new(None),
            sink: None,
        }
    }

    /// Makes `next` outlive this one.
    pub(crate) fn chain(&self, next: &Arc<Retire>) {
        *self.next.lock() = Some(next.clone());
    }

    /// Closers to run once this snapshot and every older one are gone.
    pub(crate) fn add(&self, mut closings: Closings) {
        self.closings.lock().0.append(&mut closings.0);
    }
}

impl Drop for Retire {
    fn drop(&mut self) {
        let closings = std::mem::take(self.closings.get_mut());
        match &self.sink {
            Some(sink) => sink.hand_over(closings),
            None => drop(closings),
        }
        // Drop the chain iteratively: a snapshot held through a million updates must
        // not recurse a million deep when it goes.
        let mut next = self.next.get_mut().take();
        while let Some(retire) = next {
            match Arc::into_inner(retire) {
                Some(mut last) => next = last.next.get_mut().take(),
                None => break,
            }
        }
    }
}

/// Where closers run: on the endpointer's thread, or, once that has ended, on the
/// thread that drops the last snapshot holding them.
pub(crate) struct Sink {
    pub(crate) tx: Sender<Closings>,
    /// The endpointer's thread.
    pub(crate) thread: OnceLock<ThreadId>,
    /// The endpointer's factory thread (`waypost-factory`).
    pub(crate) maker: OnceLock<ThreadId>,
}

impl Sink {
    pub(crate) fn new(tx: Sender<Closings>) -> Sink {
        Sink {
            tx,
            thread: OnceLock::new(),
            maker: OnceLock::new(),
        }
    }

    /// True on the endpointer's thread.
    pub(crate) fn on_endpointer_thread(&self) -> bool {
        self.thread.get() == Some(&std::thread::current().id())
    }

    /// True on the endpointer's factory thread (in a factory call).
    pub(crate) fn on_factory_thread(&self) -> bool {
        self.maker.get() == Some(&std::thread::current().id())
    }

    fn hand_over(&self, closings: Closings) {
        if closings.0.is_empty() {
            return;
        }
        if self.on_endpointer_thread() {
            drop(closings); // runs them here, on the endpointer's thread
        } else if let Err(unsent) = self.tx.send(closings) {
            drop(unsent); // the endpointer has ended: runs them on this thread
        }
    }
}

/// Closers with the instance each belongs to. Dropping it runs them, wherever it is
/// dropped: a closer is never lost, even one left in a channel whose thread ended.
#[derive(Default)]
pub(crate) struct Closings(pub(crate) Vec<(Instance, Box<dyn Closer>)>);

impl Drop for Closings {
    fn drop(&mut self) {
        for (instance, closer) in self.0.drain(..) {
            log::debug!(target: "waypost::endpointer", "closing the endpoint of {instance}");
            if catch_unwind(AssertUnwindSafe(|| closer.close())).is_err() {
                log::error!(target: "waypost::endpointer", "closer panicked for {instance}");
            }
        }
    }
}
