//! The `Instancer` trait and its trivial implementation, `FixedInstancer`.

use crossbeam_channel::Sender;

use crate::internal::publisher::{Publisher, instancer_methods};
use crate::{Event, Instance, InstanceSet, Subscription};

/// Watches a registry for one service and pushes [`Event`]s to its subscribers.
///
/// The contract every implementation keeps:
/// - [`register`](Instancer::subscribe) sends the current state at once, if there is one,
///   then every change. Before its first answer from the registry an instancer has no
///   state and sends nothing (not an empty set, which would make every pick fail).
///   During an outage a new subscriber gets the last good set and then the error, so
///   it starts where the others are.
/// - Each event is the *complete* set (or an error meaning "the set may be stale").
///   Identical consecutive states are not sent twice.
/// - A subscriber whose receiver is dropped is pruned; a slow subscriber never blocks
///   the watch thread or the other subscribers.
/// - **Memory.** An event is a pointer, but the set it points to stays alive until
///   every subscriber has read past it: an unbounded channel that is never read pins
///   every set ever sent (10 such subscribers over 10,000 changes of 1,000 instances
///   held about 230 MiB). With a bounded channel that is full, the subscriber misses
///   that event and gets the newest state at the next publish. For a subscriber that
///   may fall behind, [`subscribe_latest`](Instancer::subscribe_latest) holds at most
///   the newest set and an error after it.
/// - [`stop`](Instancer::stop) (and drop) ends the watch thread and joins it promptly,
///   even in the middle of a long poll. Subscribers then get no more events.
pub trait Instancer: Send + Sync {
    /// Subscribes `tx` to this instancer's events (Go kit's `Register`). See the trait
    /// docs for what a channel that is not read holds.
    #[doc(alias = "register")]
    #[doc(alias = "Register")]
    fn subscribe(&self, tx: Sender<Event>);

    /// A subscription whose receiver never holds more than the newest state: the newest
    /// set, then an error if one came after it. Dropping it unsubscribes.
    ///
    /// The default implementation, for instancers not built on waypost's fan-out,
    /// registers an unbounded channel and holds whatever it is sent; every instancer in
    /// waypost overrides it.
    fn subscribe_latest(&self) -> Subscription {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.subscribe(tx.clone());
        Subscription::from_channel(tx, rx)
    }

    /// Ends every subscription made with a sender of the same channel
    /// ([`Sender::same_channel`]; Go kit's `Deregister`).
    #[doc(alias = "deregister")]
    #[doc(alias = "Deregister")]
    fn unsubscribe(&self, tx: &Sender<Event>);

    /// Stops watching the registry and joins the watch thread. Idempotent.
    fn stop(&self);
}

/// An Instancer whose set never changes: for tests, and for services whose instances
/// are configured rather than discovered.
///
/// ```
/// use waypost::{Event, FixedInstancer, Instancer};
/// let instancer = FixedInstancer::new(["10.0.0.2:80", "10.0.0.1:80"]);
/// let (tx, rx) = crossbeam_channel::unbounded();
/// instancer.subscribe(tx);
/// match rx.try_recv().unwrap() {
///     Event::Instances(set) => assert_eq!(set[0].addr(), "10.0.0.1:80"),
///     Event::Error(e) => panic!("{e}"),
/// }
/// ```
#[derive(Debug)]
#[must_use = "dropping an instancer stops its watch"]
pub struct FixedInstancer {
    publisher: Publisher,
}

impl FixedInstancer {
    /// An instancer that always reports `instances` (sorted and de-duplicated).
    pub fn new<I, T>(instances: I) -> FixedInstancer
    where
        I: IntoIterator<Item = T>,
        T: Into<Instance>,
    {
        let publisher = Publisher::new();
        let set: InstanceSet = instances.into_iter().map(Into::into).collect();
        publisher.publish(Event::Instances(set));
        FixedInstancer { publisher }
    }
}

instancer_methods!(FixedInstancer, |self| {
    // Nothing to stop: the set never changes.
    let _ = self;
});

/// An Instancer you feed by hand: for a registry waypost has no backend for, or a
/// discovery source of your own.
///
/// Call [`publish_instances`](PushInstancer::publish_instances) with each complete set
/// as your source gives it (any order, duplicates allowed) and
/// [`publish_error`](PushInstancer::publish_error) when it cannot be read; the
/// instancer keeps the [`Instancer`] contract for you: sorting and de-duplication,
/// nothing sent before the first state, the current state to every new subscriber,
/// no re-send of an unchanged state, pruning of gone subscribers, never blocking.
/// When your source repeats its order from one answer to the next, a change costs
/// time in proportion to what changed, not to the size of the set.
///
/// ```
/// use waypost::{Event, Instance, Instancer, PushInstancer};
/// let instancer = PushInstancer::new();
/// let (tx, rx) = crossbeam_channel::unbounded();
/// instancer.subscribe(tx);
/// assert!(rx.try_recv().is_err(), "no state yet");
/// instancer.publish_instances(vec![Instance::new("10.0.0.2:80"), Instance::new("10.0.0.1:80")]);
/// instancer.publish_instances(vec![Instance::new("10.0.0.2:80"), Instance::new("10.0.0.1:80")]);
/// assert_eq!(rx.try_iter().count(), 1, "the repeat is dropped");
/// ```
#[derive(Debug, Default)]
#[must_use = "dropping an instancer stops its watch"]
pub struct PushInstancer {
    publisher: Publisher,
}

impl PushInstancer {
    /// An instancer with no state yet.
    pub fn new() -> PushInstancer {
        PushInstancer::default()
    }

    /// Publishes the complete current set, in any order.
    pub fn publish_instances(&self, instances: Vec<Instance>) {
        self.publisher.publish_instances(instances);
    }

    /// Publishes an error: the source could not be read, the last set may be stale.
    pub fn publish_error(&self, err: crate::Error) {
        self.publisher.publish_error(err);
    }

    /// Publishes an event as it is (an [`Event::instances`] set is already sorted).
    pub fn publish(&self, event: Event) {
        self.publisher.publish(event);
    }
}

instancer_methods!(PushInstancer, |self| {
    // Nothing to stop: sets come from the caller.
    let _ = self;
});

/// An instancer behind a pointer is an instancer: an `Arc` shares one, and
/// [`discover`](crate::discover)'s `Box<dyn Instancer>` goes straight into
/// [`DefaultEndpointer::new`](crate::DefaultEndpointer::new).
macro_rules! forward_instancer {
    ($($pointer:ident)::+) => {
        impl<T: Instancer + ?Sized> Instancer for $($pointer)::+<T> {
            fn subscribe(&self, tx: Sender<Event>) {
                (**self).subscribe(tx)
            }
            fn subscribe_latest(&self) -> Subscription {
                (**self).subscribe_latest()
            }
            fn unsubscribe(&self, tx: &Sender<Event>) {
                (**self).unsubscribe(tx)
            }
            fn stop(&self) {
                (**self).stop()
            }
        }
    };
}

forward_instancer!(std::sync::Arc);
forward_instancer!(Box);
