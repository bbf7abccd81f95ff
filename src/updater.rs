//! The endpointer's thread: applies each new set to the cache, publishes snapshots
//! (removals no later than a grace after the set arrives, whatever the factory does),
//! hands closers to the snapshots that must go before they run, and handles
//! invalidate-on-error. The factory runs on its own thread ([`crate::maker`]).

use std::iter;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, never, select};

use crate::EndpointerOptions;
use crate::endpoint_cache::EndpointCache;
use crate::endpointer::Shared;
use crate::internal::worker::StopSignal;
use crate::maker::{Batch, Maker};
use crate::snapshot::{Closings, Retire, Sink, Slot, View, ViewState};
use crate::subscription::Answers;
use crate::{Clock, Endpoints, Error, Event, InstanceSet, Made, Subscription};

const LOG: &str = "waypost::endpointer";

/// A request from the endpointer's handle to its thread.
pub(crate) enum Control {
    /// A deriver was attached: publish the current snapshot again with its data, then
    /// answer.
    Rederive(Sender<()>),
}

/// The channels the thread serves besides events: ready (dropped on the first set),
/// done (dropped when the thread ends), control and closings.
pub(crate) type Channels = (
    Sender<()>,
    Sender<()>,
    Receiver<Control>,
    Receiver<Closings>,
);

/// The endpointer thread's state: the cache and what it publishes to.
pub(crate) struct Updater<E> {
    events: Subscription,
    shared: Arc<Shared<E>>,
    /// The factory's thread. Declared before `_done`, so it is joined before `done`
    /// tells `close()` that this thread has ended.
    maker: Maker<E>,
    clock: Arc<dyn Clock>,
    invalidate_after: Option<Duration>,
    /// How long an update that removes and adds waits for its factory calls before it
    /// publishes the removals alone ([`EndpointerOptions::removal_grace`]).
    removal_grace: Duration,
    /// Record answers here from the events (the instancer keeps no record of its own).
    own_answers: bool,
    ready: Option<Sender<()>>,
    _done: Sender<()>,
    control: Receiver<Control>,
    closings: Receiver<Closings>,
    sink: Arc<Sink>,
    cache: EndpointCache<E>,
    retire: Arc<Retire>,
    version: u64,
    state: ViewState,
    /// Endpoint arrays that snapshots replaced, dropped once the update is served:
    /// freeing N endpoints need not hold up the next snapshot of the same update.
    graveyard: Vec<Arc<[E]>>,
    /// Positions of the cache's set whose factory call an update cut short (for a
    /// newer event) and did not reach.
    unmade: Vec<usize>,
    /// The registry's current run of errors, and the invalidation timer it armed.
    last_error: Option<Arc<Error>>,
    timer: Option<Receiver<Instant>>,
    /// How long an empty set after a non-empty one is held back, if at all.
    hold_on_empty: Option<Duration>,
    /// While one is held back: the timer that ends the hold.
    holding: Option<Receiver<Instant>>,
}

impl<E: Clone + Send + Sync + 'static> Updater<E> {
    pub(crate) fn new(
        events: Subscription,
        shared: Arc<Shared<E>>,
        maker: Maker<E>,
        options: &EndpointerOptions,
        own_answers: bool,
        (ready, done, control, closings): Channels,
        (sink, retire): (Arc<Sink>, Arc<Retire>),
    ) -> Updater<E> {
        let (clock, invalidate_after, removal_grace) = options.parts();
        Updater {
            events,
            shared,
            maker,
            clock,
            invalidate_after,
            removal_grace,
            own_answers,
            ready: Some(ready),
            _done: done,
            control,
            closings,
            sink,
            cache: EndpointCache::new(),
            retire,
            version: 0,
            state: ViewState::Pending,
            graveyard: Vec::new(),
            unmade: Vec::new(),
            last_error: None,
            timer: None,
            hold_on_empty: options.hold_on_empty_for(),
            holding: None,
        }
    }

    pub(crate) fn run(mut self, stop: &StopSignal) {
        let _ = self.sink.thread.set(std::thread::current().id());
        let end = match catch_unwind(AssertUnwindSafe(|| self.serve(stop))) {
            Ok(()) => ViewState::Closed,
            Err(payload) => {
                let err = Error::panicked("endpointer", &*payload);
                log::error!(target: LOG, "{err}; endpoints() now returns this error");
                ViewState::Failed(Arc::new(err))
            }
        };
        let finished = catch_unwind(AssertUnwindSafe(|| {
            let all = self.clear();
            self.publish(end, all);
        }));
        if finished.is_err() {
            log::error!(target: LOG, "panicked again while closing the endpoints");
        }
        // Closers still queued, and those of snapshots dropped after this, run when
        // their `Closings` drop: here, or on the thread that drops the last snapshot.
    }

    fn serve(&mut self, stop: &StopSignal) {
        let mut events = self.events.receiver().clone();
        loop {
            let timer = self.timer.clone().unwrap_or_else(never);
            let held = self.holding.clone().unwrap_or_else(never);
            select! {
                recv(stop.channel()) -> _ => return,
                recv(self.closings) -> closings => drop(closings),
                recv(self.control) -> msg => match msg {
                    Ok(control) => self.on_control(control),
                    Err(_) => return, // the handle is gone
                },
                recv(timer) -> _ => self.invalidate(),
                recv(held) -> _ => self.release_empty(stop),
                recv(events) -> event => match event {
                    Ok(event) => self.on_events(event, stop),
                    // The instancer dropped its side: keep serving the last set.
                    Err(_) => events = never(),
                },
            }
            self.graveyard.clear();
        }
    }

    /// Applies a backlog: the newest set, then the error state if an error came after
    /// it, so that a set is never lost to a later error.
    fn on_events(&mut self, first: Event, stop: &StopSignal) {
        let (mut set, mut error) = (None, None);
        for event in iter::once(first).chain(self.events.try_iter()) {
            if self.own_answers {
                record(&self.shared.answers, &event);
            }
            match event {
                Event::Instances(s) => (set, error) = (Some(s), None),
                Event::Error(e) => error = Some(e),
            }
        }
        let newer_set = set.is_some();
        if let Some(set) = set {
            if self.holds_back(&set) {
                self.hold_empty();
            } else {
                self.end_hold(&set);
                self.apply_set(&set, stop);
            }
        }
        if let Some(err) = error {
            self.apply_error(err);
        }
        if !newer_set && !self.unmade.is_empty() {
            self.finish_set(stop);
        }
    }

    /// Makes what an update cut short left unmade, for the set the cache is on.
    fn finish_set(&mut self, stop: &StopSignal) {
        let (set, add) = (self.cache.set.clone(), std::mem::take(&mut self.unmade));
        let keep = self.cache.keep_all();
        self.maker.start_job(&set, add);
        let made = self.made(stop);
        let unexpected = self.cache.install(&set, &keep, made, &[]);
        debug_assert!(unexpected.0.is_empty(), "every cached entry was kept");
        let state = self.state.clone();
        self.publish(state, unexpected);
    }

    fn apply_set(&mut self, set: &InstanceSet, stop: &StopSignal) {
        self.last_error = None;
        self.timer = None;
        let serving = matches!(self.state, ViewState::Ready) && self.ready.is_none();
        let diff = self.cache.diff(set);
        let (mut keep, mut removed) = (diff.keep, diff.removed);
        let removing = !removed.is_empty() || diff.changed;
        let adding = !diff.add.is_empty();
        let mut batch = None;
        if adding {
            self.maker.start_job(set, diff.add);
            if removing {
                // A grace too large for the clock waits for the factory, however long.
                batch = match Instant::now().checked_add(self.removal_grace) {
                    Some(until) => self.wait_made(Some(until), stop),
                    None => self.wait_made(None, stop),
                };
            }
        }
        if removing && batch.is_none() {
            // Removals first: no factory call may keep a removed instance in service.
            let closings = self.cache.install(set, &keep, Vec::new(), &removed);
            self.publish(ViewState::Ready, closings);
            // The cache is now the kept entries, in order.
            keep = (keep.iter().enumerate())
                .map(|(at, &(_, k))| (at, k))
                .collect();
            removed = Vec::new();
        }
        if adding {
            let made = match batch {
                Some(batch) => self.take_batch(batch),
                None => self.made(stop),
            };
            // Within the grace, the removals' closers go with this one snapshot.
            let closings = self.cache.install(set, &keep, made, &removed);
            self.publish(ViewState::Ready, closings);
        } else if !removing && !serving {
            // The first set, or a recovery, with nothing to make: only the state moves.
            self.publish(ViewState::Ready, Closings::default());
        }
        self.ready = None; // wakes wait_ready
    }

    /// Whether `set` is an empty set to hold back: the option is on and a non-empty
    /// set is served (or one is held back already).
    fn holds_back(&self, set: &InstanceSet) -> bool {
        set.is_empty()
            && self.hold_on_empty.is_some()
            && (self.holding.is_some()
                || (!self.cache.set.is_empty() && matches!(self.state, ViewState::Ready)))
    }

    /// Starts holding an empty set back, if not holding already. The registry did
    /// answer: a run of errors ends.
    fn hold_empty(&mut self) {
        self.last_error = None;
        self.timer = None;
        let Some(hold) = self.hold_on_empty.filter(|_| self.holding.is_none()) else {
            return;
        };
        let since = self.clock.now();
        log::warn!(target: LOG,
            "the registry answered an empty set after {} instances; serving them for up to {hold:?} more",
            self.cache.set.len());
        let end = since.checked_add(hold);
        self.holding = Some(end.map_or_else(never, |at| self.clock.after(at)));
        *self.shared.empty_held_since.lock() = Some(since);
    }

    /// A set other than a held-back empty one came: the hold, if any, ends.
    fn end_hold(&mut self, set: &InstanceSet) {
        if self.holding.take().is_some() {
            log::info!(target: LOG, "the registry answered {} instances again: empty set no longer held", set.len());
            *self.shared.empty_held_since.lock() = None;
        }
    }

    /// The hold ran out with the set still empty: serve it.
    fn release_empty(&mut self, stop: &StopSignal) {
        if self.holding.take().is_none() {
            return;
        }
        *self.shared.empty_held_since.lock() = None;
        if matches!(self.state, ViewState::Invalidated(_)) {
            return; // errors outlasted their timeout meanwhile: nothing is served anyway
        }
        log::warn!(target: LOG, "the registry's set has stayed empty for the hold: serving it");
        // Errors since the empty answer are still the registry's latest word: their run
        // and its invalidation timer go on.
        let (last_error, timer) = (self.last_error.take(), self.timer.take());
        self.apply_set(&InstanceSet::default(), stop);
        (self.last_error, self.timer) = (last_error, timer);
    }

    fn apply_error(&mut self, err: Arc<Error>) {
        log::warn!(target: LOG, "registry error, keeping the last set: {err}");
        let first = self.last_error.replace(err.clone()).is_none();
        match self.invalidate_after {
            Some(after) if first => {
                // A timeout too large for the clock never fires.
                let deadline = self.clock.now().checked_add(after);
                self.timer = Some(deadline.map_or_else(never, |at| self.clock.after(at)));
            }
            Some(_) if matches!(self.state, ViewState::Invalidated(_)) => {
                // Already invalidated: report the newest error.
                self.publish(ViewState::Invalidated(err), Closings::default());
            }
            _ => {}
        }
    }

    fn invalidate(&mut self) {
        self.timer = None;
        let Some(err) = self.last_error.clone() else {
            return;
        };
        log::warn!(target: LOG,
            "registry errors outlasted the timeout; invalidating endpoints: {err}");
        let all = self.clear();
        self.publish(ViewState::Invalidated(err), all);
    }

    /// What the job handed to the maker made, waiting as long as it takes (a stop or a
    /// newer event cuts the job short after the current factory call).
    fn made(&mut self, stop: &StopSignal) -> Vec<(usize, Made<E>)> {
        let batch = self.wait_made(None, stop).expect("no deadline");
        self.take_batch(batch)
    }

    /// The batch's endpoints; the positions its job did not reach are kept in
    /// `unmade`, to be made after the newer event if that event brings no set of its
    /// own.
    fn take_batch(&mut self, batch: Batch<E>) -> Vec<(usize, Made<E>)> {
        let Batch {
            add, made, reached, ..
        } = batch;
        if reached < add.len() {
            log::debug!(target: LOG, "update cut short after {reached} of {} new instances", add.len());
        }
        self.unmade.clear();
        self.unmade.extend_from_slice(&add[reached..]);
        made
    }

    /// Waits for the maker's batch until `until` (`None`: until it comes); `None` if
    /// the time ran out first. Meanwhile closers run and controls are answered; a stop
    /// or a newer event cancels the job, which then ends after its current factory call
    /// (a newer event, only after one call at least, so a stream of events cannot
    /// starve it). `until` still holds after a cancel: a removal waits for no slow
    /// call.
    fn wait_made(&mut self, until: Option<Instant>, stop: &StopSignal) -> Option<Batch<E>> {
        let done = self.maker.done().clone();
        let (stops, events) = (stop.channel().clone(), self.events.receiver().clone());
        let (closings, control) = (self.closings.clone(), self.control.clone());
        let (mut stopping, mut controls) = (false, true);
        loop {
            let mut select = Select::new();
            let on_done = select.recv(&done);
            let on_closings = select.recv(&closings);
            let on_stop = (!stopping).then(|| select.recv(&stops));
            let on_control = controls.then(|| select.recv(&control));
            let on_event = (!self.maker.cancelled()).then(|| select.recv(&events));
            let ready = match until {
                Some(at) => select.ready_deadline(at).ok()?,
                None => select.ready(),
            };
            drop(select);
            if ready == on_done {
                match done.try_recv() {
                    Ok(batch) => return Some(batch),
                    Err(e) if e.is_disconnected() => panic!("the factory thread has ended"),
                    Err(_) => {}
                }
            } else if ready == on_closings {
                drop(closings.try_recv());
            } else if Some(ready) == on_control {
                match control.try_recv() {
                    Ok(msg) => self.on_control(msg),
                    Err(e) if e.is_disconnected() => controls = false,
                    Err(_) => {}
                }
            } else if Some(ready) == on_stop || Some(ready) == on_event {
                // Stopping: end before the next call; a newer event: after this one.
                stopping |= Some(ready) == on_stop;
                self.maker.cancel(stopping);
            }
            if !controls && !stopping {
                // The handle is gone: close as for a stop.
                stopping = true;
                self.maker.cancel(true);
            }
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Rederive(done) => {
                let state = self.state.clone();
                self.publish(state, Closings::default());
                let _ = done.send(());
            }
        }
    }

    /// Empties the cache; returns every closer.
    fn clear(&mut self) -> Closings {
        self.unmade.clear();
        self.cache.clear()
    }

    /// Publishes the cache in `state` to every shard, then hands `removed` to the
    /// snapshot it replaced: they run once no snapshot up to that one is alive.
    fn publish(&mut self, state: ViewState, removed: Closings) {
        self.version += 1;
        let retire = Arc::new(Retire::new(self.sink.clone()));
        self.retire.chain(&retire);
        let replaced = std::mem::replace(&mut self.retire, retire);
        let derived = self.derive(&state);
        let instances = self.cache.instances();
        let view = || View {
            endpoints: self.cache.endpoints.clone(),
            instances: instances.clone(),
            derived: derived.clone(),
            version: self.version,
            state: state.clone(),
            retire: self.retire.clone(),
        };
        let old = self.shared.views.set(view);
        log::debug!(target: LOG, "published snapshot {} ({} endpoints)", self.version, self.cache.endpoints.len());
        self.state = state;
        for mut view in old {
            if let Some(view) = Arc::get_mut(&mut view) {
                let empty = Arc::from(Vec::new());
                self.graveyard
                    .push(std::mem::replace(&mut view.0.endpoints, empty));
            }
        }
        replaced.add(removed);
        drop(replaced); // runs the closers here if nothing older is held
    }

    /// Each attached deriver's data for the cache as it is about to be published.
    fn derive(&self, state: &ViewState) -> Arc<[Slot]> {
        let derivers = self.shared.derivers.lock().clone();
        if derivers.is_empty() || !matches!(state, ViewState::Ready | ViewState::Pending) {
            return Arc::from(Vec::new());
        }
        let previous = Endpoints::new(self.shared.views.read());
        let previous = matches!(previous.view().state, ViewState::Ready).then_some(&previous);
        let new = Endpoints::new(Arc::new(crate::internal::shard::Padded(View {
            endpoints: self.cache.endpoints.clone(),
            instances: self.cache.instances(),
            derived: Arc::from(Vec::new()),
            version: self.version,
            state: state.clone(),
            retire: self.retire.clone(),
        })));
        let derive = |(slot, d): (usize, &Arc<dyn crate::DeriveAny<E>>)| -> Slot {
            match catch_unwind(AssertUnwindSafe(|| d.derive_any(&new, previous, slot))) {
                Ok(data) => Some(data),
                Err(payload) => {
                    let err = Error::panicked("endpointer (derive)", &*payload);
                    log::error!(target: LOG, "{err}; this snapshot carries no data for it");
                    None
                }
            }
        };
        derivers.iter().enumerate().map(derive).collect()
    }
}

fn record(answers: &Answers, event: &Event) {
    match event {
        Event::Instances(_) => answers.ok(Instant::now()),
        Event::Error(err) => answers.error(err, Instant::now()),
    }
}
