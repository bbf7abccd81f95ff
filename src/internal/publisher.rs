//! The one fan-out every Instancer uses.
//!
//! A backend computes instance lists and calls `publish_*`; the publisher keeps the
//! latest state, drops a state equal to the last one, sends the current state to new
//! subscribers at once, prunes subscribers whose receiver is gone, and never blocks on a
//! slow subscriber.

use std::sync::{Arc, Weak};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use parking_lot::Mutex;

use crate::subscription::{Answers, Subscription};
use crate::{Error, Event, Instance, InstanceSet};

/// Gives a type with a `publisher` field the subscription methods as inherent methods
/// (so a user needs no `use waypost::Instancer`) and implements
/// [`Instancer`](crate::Instancer) with them; `stop` is the type's stop.
macro_rules! instancer_methods {
    ($ty:ty, |$this:ident| $stop:block) => {
        impl $ty {
            /// Subscribes `tx` to the events: the current state at once, if there is
            /// one, then every change; see [`Instancer`](crate::Instancer).
            #[doc(alias = "register")]
            #[doc(alias = "Register")]
            pub fn subscribe(&self, tx: crossbeam_channel::Sender<crate::Event>) {
                self.publisher.subscribe(tx);
            }

            /// A subscription that never holds more than the newest state; see
            /// [`Instancer::subscribe_latest`](crate::Instancer::subscribe_latest).
            pub fn subscribe_latest(&self) -> crate::Subscription {
                self.publisher.subscribe_latest()
            }

            /// Ends every subscription made with a sender of the same channel.
            #[doc(alias = "deregister")]
            #[doc(alias = "Deregister")]
            pub fn unsubscribe(&self, tx: &crossbeam_channel::Sender<crate::Event>) {
                self.publisher.unsubscribe(tx);
            }

            /// Stops watching the registry and joins the watch thread, if there is
            /// one. Idempotent; drop does the same. Subscribers get no more events.
            pub fn stop(&$this) $stop
        }

        impl crate::Instancer for $ty {
            fn subscribe(&self, tx: crossbeam_channel::Sender<crate::Event>) {
                <$ty>::subscribe(self, tx)
            }
            fn subscribe_latest(&self) -> crate::Subscription {
                <$ty>::subscribe_latest(self)
            }
            fn unsubscribe(&self, tx: &crossbeam_channel::Sender<crate::Event>) {
                <$ty>::unsubscribe(self, tx)
            }
            fn stop(&self) {
                <$ty>::stop(self)
            }
        }
    };
}
pub(crate) use instancer_methods;

/// Shared state of one instancer: latest event plus subscribers.
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    state: Mutex<State>,
    /// Every answer, repeats included, for the endpointers' `status()`.
    answers: Arc<Answers>,
}

#[derive(Debug, Default)]
struct State {
    /// None until the registry first answered: then nothing is sent to subscribers.
    latest: Option<Event>,
    /// The last set published (kept across error events).
    last_set: Option<InstanceSet>,
    /// The backend's last list, as positions into `last_set` in the backend's order:
    /// when the registry repeats its order, the next set is derived from the last
    /// sorted one in O(changes). Empty when the last list was short or had duplicates.
    last_order: Vec<u32>,
    subscribers: Vec<Subscriber>,
    /// Publishers that get every answer this one gets (repeats included, for their
    /// times): the instancers sharing one watch.
    children: Vec<Arc<Publisher>>,
}

#[derive(Debug)]
struct Subscriber {
    tx: Sender<Event>,
    /// Its bounded channel was full when the latest state was sent: it gets the latest
    /// state at the next publish, even one that is otherwise dropped as unchanged.
    missed: bool,
    /// For a [`Subscription`]: the publisher's clone of its receiver (drained before
    /// each send, so the channel never holds more than the newest state) and whether
    /// the subscription still exists.
    latest: Option<(Receiver<Event>, Weak<()>)>,
}

/// Below this many instances a plain sort is as cheap as the incremental path.
const INCREMENTAL_MIN: usize = 64;

impl Publisher {
    pub(crate) fn new() -> Publisher {
        Publisher::default()
    }

    /// Adds a subscriber and sends it the current state, if there is one: during an
    /// outage, the last good set and then the error, so it starts where the others are.
    pub(crate) fn subscribe(&self, tx: Sender<Event>) {
        self.add(Subscriber {
            tx,
            missed: false,
            latest: None,
        });
    }

    /// A subscription that never holds more than the newest state.
    pub(crate) fn subscribe_latest(&self) -> Subscription {
        let (tx, rx) = bounded(2);
        let alive = Arc::new(());
        self.add(Subscriber {
            tx,
            missed: false,
            latest: Some((rx.clone(), Arc::downgrade(&alive))),
        });
        Subscription::new(rx, alive, self.answers.clone())
    }

    fn add(&self, mut sub: Subscriber) {
        let mut state = self.state.lock();
        state.subscribers.retain(Subscriber::alive);
        if let Some(latest) = state.latest.clone() {
            if let (Event::Error(_), Some(set)) = (&latest, &state.last_set) {
                if !sub.offer(&Event::Instances(set.clone())) {
                    return;
                }
            }
            if !sub.offer(&latest) {
                return; // receiver already gone
            }
        }
        state.subscribers.push(sub);
    }

    /// Removes every subscription made with a sender of the same channel.
    pub(crate) fn unsubscribe(&self, tx: &Sender<Event>) {
        self.state
            .lock()
            .subscribers
            .retain(|s| !s.tx.same_channel(tx));
    }

    /// Publishes a complete instance list in any order, possibly with duplicates.
    pub(crate) fn publish_instances(&self, raw: Vec<Instance>) {
        self.publish_instances_at(raw, Instant::now());
    }

    /// [`publish_instances`](Self::publish_instances) of an answer that came `at`.
    pub(crate) fn publish_instances_at(&self, raw: Vec<Instance>, at: Instant) {
        self.answers.ok(at);
        let mut state = self.state.lock();
        let derived = match &state.last_set {
            Some(last) if incremental_ok(&state.last_order, &raw) => {
                apply_changes(last, &state.last_order, &raw)
            }
            _ => None,
        };
        let (set, order) = match derived {
            Some(Derived::Unchanged) => {
                let last = state.last_set.clone().expect("checked above");
                (last, std::mem::take(&mut state.last_order))
            }
            Some(Derived::Changed(set, order)) => (set, order),
            None => sorted(&raw),
        };
        let old_order = std::mem::replace(&mut state.last_order, order);
        state.forward(&Event::Instances(set.clone()), at);
        let old = state.publish(Event::Instances(set));
        // Freeing a large old list (N reference counts, maybe N strings) need not hold
        // up the next publish or register.
        drop(state);
        drop((raw, old_order, old));
    }

    /// Publishes an error event: the last set may be stale.
    pub(crate) fn publish_error(&self, err: Error) {
        self.publish(Event::error(err));
    }

    /// [`publish_error`](Self::publish_error) of an answer that came `at`.
    pub(crate) fn publish_error_at(&self, err: Error, at: Instant) {
        self.publish_at(Event::error(err), at);
    }

    /// Records an answer that confirmed the last set without publishing anything.
    pub(crate) fn confirm(&self, at: Instant) {
        self.answers.ok(at);
        for child in &self.state.lock().children {
            child.confirm(at);
        }
    }

    /// Publishes an event as it is.
    pub(crate) fn publish(&self, event: Event) {
        self.publish_at(event, Instant::now());
    }

    fn publish_at(&self, event: Event, now: Instant) {
        match &event {
            Event::Instances(_) => self.answers.ok(now),
            Event::Error(err) => self.answers.error(err, now),
        }
        let mut state = self.state.lock();
        let old_order = match &event {
            Event::Instances(_) => std::mem::take(&mut state.last_order),
            Event::Error(_) => Vec::new(),
        };
        state.forward(&event, now);
        let old = state.publish(event);
        drop(state);
        drop((old_order, old));
    }

    /// Makes `child` get every answer this publisher gets from now on, after the
    /// current state (the last set, then the error if the registry is failing) and the
    /// record of answers: a second instancer that joins a running watch starts where
    /// the first one is. Lock order: a parent's lock, then its child's.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))] // shared Consul watches
    pub(crate) fn attach(&self, child: Arc<Publisher>) {
        let mut state = self.state.lock();
        state.children.retain(|c| !Arc::ptr_eq(c, &child));
        child.answers.copy_from(&self.answers);
        {
            let mut theirs = child.state.lock();
            if let Some(set) = &state.last_set {
                let old = theirs.publish(Event::Instances(set.clone()));
                drop(old);
            }
            if let Some(latest @ Event::Error(_)) = &state.latest {
                let old = theirs.publish(latest.clone());
                drop(old);
            }
        }
        state.children.push(child);
    }

    /// Stops forwarding to `child`: its subscribers get nothing more from here.
    #[cfg_attr(not(feature = "consul"), allow(dead_code))]
    pub(crate) fn detach(&self, child: &Arc<Publisher>) {
        self.state
            .lock()
            .children
            .retain(|c| !Arc::ptr_eq(c, child));
    }

    /// How many subscribers are registered (pruned ones excluded once pruned).
    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        self.state.lock().subscribers.len()
    }
}

/// What a publish replaced or refused, for the caller to drop outside the lock.
type Replaced = (Option<Event>, Option<InstanceSet>);

impl State {
    /// Hands an answer to every child (under this publisher's lock, so a detached child
    /// gets nothing after its detach).
    fn forward(&self, event: &Event, at: Instant) {
        for child in &self.children {
            child.publish_at(event.clone(), at);
        }
    }

    fn publish(&mut self, event: Event) -> Replaced {
        if self.latest.as_ref().is_some_and(|last| last.same(&event)) {
            self.resend_missed();
            return (Some(event), None);
        }
        log::debug!(target: "waypost::publisher", "publishing {}", describe(&event));
        let old_set = match &event {
            Event::Instances(set) => self.last_set.replace(set.clone()),
            Event::Error(_) => None,
        };
        self.subscribers.retain_mut(|s| s.offer(&event));
        (self.latest.replace(event), old_set)
    }

    fn resend_missed(&mut self) {
        if let Some(latest) = &self.latest {
            self.subscribers
                .retain_mut(|s| !s.missed || s.offer(latest));
        }
    }
}

impl Subscriber {
    /// Sends without blocking; false if the receiver is gone.
    fn offer(&mut self, event: &Event) -> bool {
        if let Some((rx, alive)) = &self.latest {
            if alive.strong_count() == 0 {
                return false;
            }
            // Keep the newest set, then an error after it: nothing older.
            let (mut set, mut err) = (None, None);
            for held in rx.try_iter().chain(std::iter::once(event.clone())) {
                match held {
                    Event::Instances(s) => (set, err) = (Some(s), None),
                    Event::Error(e) => err = Some(e),
                }
            }
            let pending = set.map(Event::Instances).into_iter();
            for e in pending.chain(err.map(Event::Error)) {
                // Only this publisher sends, under its lock, into a channel it just
                // emptied with room for two: this cannot be full.
                if self.tx.try_send(e).is_err() {
                    return false;
                }
            }
            return true;
        }
        match self.tx.try_send(event.clone()) {
            Ok(()) => {
                self.missed = false;
                true
            }
            Err(TrySendError::Full(_)) => {
                self.missed = true;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn alive(&self) -> bool {
        match &self.latest {
            Some((_, alive)) => alive.strong_count() > 0,
            None => true,
        }
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Instances(set) => format!("{} instances", set.len()),
        Event::Error(err) => format!("error: {err}"),
    }
}

/// Sorts `raw` into a set and, for a list long enough to take the incremental path
/// next time, records where each entry landed.
fn sorted(raw: &[Instance]) -> (InstanceSet, Vec<u32>) {
    if raw.len() < INCREMENTAL_MIN || u32::try_from(raw.len()).is_err() {
        return (InstanceSet::new(raw.to_vec()), Vec::new());
    }
    let mut by_addr: Vec<u32> = (0..raw.len() as u32).collect();
    // Stable, so of equal addresses the first given stays first (and is kept).
    by_addr.sort_by(|&a, &b| raw[a as usize].cmp(&raw[b as usize]));
    let mut set = Vec::with_capacity(raw.len());
    let mut order = vec![0u32; raw.len()];
    for &i in &by_addr {
        let instance = &raw[i as usize];
        if set.last() != Some(instance) {
            set.push(instance.clone());
        }
        order[i as usize] = (set.len() - 1) as u32;
    }
    let duplicates = set.len() != raw.len();
    let set = InstanceSet::from_sorted_unchecked(set);
    (set, if duplicates { Vec::new() } else { order })
}

fn incremental_ok(last_order: &[u32], raw: &[Instance]) -> bool {
    raw.len() >= INCREMENTAL_MIN && last_order.len() == raw.len()
}

enum Derived {
    Unchanged,
    Changed(InstanceSet, Vec<u32>),
}

/// Derives the new sorted set from the last one when `raw` differs from the last list
/// (`last[last_order[i]]`) in a few positions only. None when that does not hold or a
/// duplicate makes it unsafe; the caller then sorts from scratch.
fn apply_changes(last: &InstanceSet, last_order: &[u32], raw: &[Instance]) -> Option<Derived> {
    let limit = raw.len() / 32;
    let mut changed = Vec::new();
    for (i, new) in raw.iter().enumerate() {
        if !last[last_order[i] as usize].same(new) {
            if changed.len() == limit {
                return None;
            }
            changed.push(i);
        }
    }
    if changed.is_empty() {
        return Some(Derived::Unchanged);
    }
    let mut removed: Vec<u32> = changed.iter().map(|&i| last_order[i]).collect();
    removed.sort_unstable();
    let mut added: Vec<usize> = changed.clone();
    added.sort_by(|&a, &b| raw[a].cmp(&raw[b]));
    if added.windows(2).any(|w| raw[w[0]] == raw[w[1]]) {
        return None; // two added entries share an address
    }
    // One merge walk of (last minus removed) with the added entries, recording where
    // every old position and every added entry lands.
    let mut next = Vec::with_capacity(raw.len());
    let mut moved = vec![u32::MAX; last.len()];
    let mut landed = vec![0u32; changed.len()]; // by rank in `added`
    let (mut r, mut a) = (0, 0);
    for (p, old) in last.iter().enumerate() {
        if r < removed.len() && removed[r] as usize == p {
            r += 1;
            continue;
        }
        while a < added.len() && raw[added[a]] <= *old {
            if raw[added[a]] == *old {
                return None; // a duplicate: let the full path choose the first
            }
            landed[a] = next.len() as u32;
            next.push(raw[added[a]].clone());
            a += 1;
        }
        moved[p] = next.len() as u32;
        next.push(old.clone());
    }
    for k in a..added.len() {
        landed[k] = next.len() as u32;
        next.push(raw[added[k]].clone());
    }
    let mut order: Vec<u32> = last_order.iter().map(|&p| moved[p as usize]).collect();
    for (rank, &i) in added.iter().enumerate() {
        order[i] = landed[rank];
    }
    Some(Derived::Changed(
        InstanceSet::from_sorted_unchecked(next),
        order,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{bounded, unbounded};

    fn addrs(event: &Event) -> Vec<String> {
        match event {
            Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
            Event::Error(e) => vec![format!("error: {e}")],
        }
    }

    #[test]
    fn nothing_is_sent_before_the_first_state() {
        let p = Publisher::new();
        let (tx, rx) = unbounded();
        p.subscribe(tx);
        assert!(rx.try_recv().is_err());
        p.publish_instances(vec![Instance::new("a:1")]);
        assert_eq!(addrs(&rx.try_recv().unwrap()), ["a:1"]);
    }

    #[test]
    fn incremental_path_matches_a_full_sort() {
        let p = Publisher::new();
        let (tx, rx) = unbounded();
        p.subscribe(tx);
        let mut raw: Vec<Instance> = (0..1000)
            .map(|i| Instance::new(format!("10.0.{}.{}:80", i / 256, i % 256)))
            .collect();
        p.publish_instances(raw.clone());
        rx.try_recv().unwrap();
        for k in 0..20usize {
            let at = (k * 7919 + 13) % raw.len();
            raw[at] = Instance::new(format!("new-{k}:9090"));
            p.publish_instances(raw.clone());
            let got = addrs(&rx.try_recv().unwrap());
            let mut want: Vec<String> = raw.iter().map(|i| i.addr().to_owned()).collect();
            want.sort();
            assert_eq!(got, want, "after change {k}");
        }
        // Same list again: nothing new.
        p.publish_instances(raw.clone());
        assert!(rx.try_recv().is_err());
        // A change that makes a duplicate falls back to the full path and dedups.
        raw[0] = raw[1].clone();
        p.publish_instances(raw.clone());
        assert_eq!(addrs(&rx.try_recv().unwrap()).len(), 999);
    }

    #[test]
    fn metadata_change_is_a_new_state() {
        let p = Publisher::new();
        let (tx, rx) = unbounded();
        p.subscribe(tx);
        p.publish_instances(vec![Instance::builder("a:1").weight(1).build()]);
        p.publish_instances(vec![Instance::builder("a:1").weight(1).build()]);
        p.publish_instances(vec![Instance::builder("a:1").weight(2).build()]);
        assert_eq!(rx.try_iter().count(), 2);
    }

    #[test]
    fn a_full_bounded_subscriber_gets_the_latest_later() {
        let p = Publisher::new();
        let (tx, rx) = bounded(1);
        p.subscribe(tx);
        p.publish_instances(vec![Instance::new("a:1")]);
        p.publish_instances(vec![Instance::new("b:1")]); // channel full: missed
        assert_eq!(addrs(&rx.try_recv().unwrap()), ["a:1"]);
        // An unchanged publish still delivers what was missed.
        p.publish_instances(vec![Instance::new("b:1")]);
        assert_eq!(addrs(&rx.try_recv().unwrap()), ["b:1"]);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn gone_receivers_are_pruned() {
        let p = Publisher::new();
        let (tx, rx) = unbounded();
        p.subscribe(tx);
        drop(rx);
        p.publish_error(Error::NoEndpoints);
        assert_eq!(p.subscriber_count(), 0);
    }
}
