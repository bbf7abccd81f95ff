//! `Subscription`: a receiver of an instancer's events that never holds more than the
//! newest state.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::{Error, Event};

/// A subscription to an [`Instancer`](crate::Instancer) made by
/// [`Instancer::subscribe_latest`](crate::Instancer::subscribe_latest): a receiver of
/// [`Event`]s that never holds more than the newest state, however long it goes unread.
///
/// What it holds at most is the newest instance set and, if an error came after that
/// set, the newest error: two events. Reading it therefore yields the state the
/// instancer is in, in the order that matters (the set first, then "it may be stale"),
/// and a subscriber that falls behind skips the sets in between, but never loses the
/// newest set to a later error. (A plain subscription with
/// [`Instancer::subscribe`](crate::Instancer::subscribe) on an unbounded channel keeps
/// every event until it is read, which pins every set in memory meanwhile.)
///
/// It derefs to the [`Receiver`], so `recv`, `recv_timeout` and `select!` work as on
/// any channel. Dropping it ends the subscription.
///
/// ```
/// use waypost::{Error, Event, Instance, Instancer, PushInstancer};
/// let instancer = PushInstancer::new();
/// let events = instancer.subscribe_latest();
/// for port in 1..=100 {
///     instancer.publish_instances(vec![Instance::new(format!("10.0.0.1:{port}"))]);
/// }
/// instancer.publish_error(Error::NoEndpoints);
/// let held: Vec<Event> = events.try_iter().collect();
/// assert_eq!(held.len(), 2, "the newest set, then the error after it");
/// assert!(matches!(&held[0], Event::Instances(set) if set[0].addr() == "10.0.0.1:100"));
/// assert!(matches!(&held[1], Event::Error(_)));
/// ```
pub struct Subscription {
    rx: Receiver<Event>,
    /// For a plain channel: the sender that was registered, to deregister it.
    registered: Option<Sender<Event>>,
    /// The publisher keeps a `Weak` of this: when it is gone, the subscription is.
    _alive: Arc<()>,
    answers: Option<Arc<Answers>>,
}

impl Subscription {
    /// Wraps a plain channel, for an instancer that is not built on waypost's own
    /// fan-out: it holds whatever the instancer sends (the default of
    /// [`Instancer::subscribe_latest`](crate::Instancer::subscribe_latest)).
    ///
    /// `registered` is the sender given to [`Instancer::subscribe`](crate::Instancer::subscribe),
    /// so that the subscriber can [`deregister`](crate::Instancer::unsubscribe) it.
    pub fn from_channel(registered: Sender<Event>, rx: Receiver<Event>) -> Subscription {
        Subscription {
            rx,
            registered: Some(registered),
            _alive: Arc::new(()),
            answers: None,
        }
    }

    pub(crate) fn new(rx: Receiver<Event>, alive: Arc<()>, answers: Arc<Answers>) -> Self {
        Subscription {
            rx,
            registered: None,
            _alive: alive,
            answers: Some(answers),
        }
    }

    /// For a subscription over a plain channel, the sender that was registered with
    /// the instancer: pass it to [`Instancer::unsubscribe`](crate::Instancer::unsubscribe)
    /// to unsubscribe at once rather than when the instancer next sends.
    pub fn registered(&self) -> Option<&Sender<Event>> {
        self.registered.as_ref()
    }

    /// The channel itself.
    pub fn receiver(&self) -> &Receiver<Event> {
        &self.rx
    }

    /// What the instancer's registry last answered, when the instancer records it
    /// (every instancer of waypost does): unlike events, every answer counts, also one
    /// that repeats the current set.
    pub(crate) fn answers(&self) -> Option<&Arc<Answers>> {
        self.answers.as_ref()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The publisher holds a clone of the receiver until it notices this is gone:
        // leave it nothing to pin meanwhile.
        while self.rx.try_recv().is_ok() {}
    }
}

impl std::ops::Deref for Subscription {
    type Target = Receiver<Event>;
    fn deref(&self) -> &Receiver<Event> {
        &self.rx
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("pending", &self.rx.len())
            .finish()
    }
}

/// The registry's answers as one instancer saw them: shared by its publisher (which
/// writes) and its subscriptions (which read).
#[derive(Debug, Default)]
pub(crate) struct Answers {
    state: Mutex<AnswerState>,
}

/// A copy of [`Answers`] at one moment.
#[derive(Clone, Debug, Default)]
pub(crate) struct AnswerState {
    /// When the registry last answered with a set (changed or not).
    pub(crate) last_ok: Option<Instant>,
    /// The registry's latest error, if the latest answer was one.
    pub(crate) last_error: Option<Arc<Error>>,
    /// When the current run of errors began.
    pub(crate) error_since: Option<Instant>,
    /// How many errors in a row, repeats included.
    pub(crate) errors_in_a_row: u64,
}

impl Answers {
    /// Takes over `other`'s record (an instancer joining a running watch).
    pub(crate) fn copy_from(&self, other: &Answers) {
        let copy = other.get();
        *self.state.lock() = copy;
    }

    pub(crate) fn ok(&self, at: Instant) {
        let mut s = self.state.lock();
        s.last_ok = Some(at);
        s.last_error = None;
        s.error_since = None;
        s.errors_in_a_row = 0;
    }

    pub(crate) fn error(&self, err: &Arc<Error>, at: Instant) {
        let mut s = self.state.lock();
        s.last_error = Some(err.clone());
        s.error_since.get_or_insert(at);
        s.errors_in_a_row = s.errors_in_a_row.saturating_add(1);
    }

    pub(crate) fn get(&self) -> AnswerState {
        self.state.lock().clone()
    }
}
