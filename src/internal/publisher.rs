//! The one fan-out every Instancer uses.
//!
//! A backend computes instance lists and calls `publish_*`; the publisher keeps the
//! latest state, drops a state equal to the last one, sends the current state to new
//! subscribers at once, prunes subscribers whose receiver is gone, and never blocks on a
//! slow subscriber.

use crossbeam_channel::{Sender, TrySendError};
use parking_lot::Mutex;

use crate::{Error, Event, Instance, InstanceSet};

/// Shared state of one instancer: latest event plus subscribers.
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// None until the registry first answered: then nothing is sent to subscribers.
    latest: Option<Event>,
    /// The last set published (kept across error events).
    last_set: Option<InstanceSet>,
    /// The last instance list as the backend gave it, before sorting: when the registry
    /// repeats its order, the next set is derived from the last sorted one in O(changes).
    last_raw: Vec<Instance>,
    subscribers: Vec<Subscriber>,
}

#[derive(Debug)]
struct Subscriber {
    tx: Sender<Event>,
    /// Its bounded channel was full when the latest state was sent: it gets the latest
    /// state at the next publish, even one that is otherwise dropped as unchanged.
    missed: bool,
}

/// Below this many instances a plain sort is as cheap as the incremental path.
const INCREMENTAL_MIN: usize = 64;

impl Publisher {
    pub(crate) fn new() -> Publisher {
        Publisher::default()
    }

    /// Adds a subscriber and sends it the current state, if there is one.
    pub(crate) fn register(&self, tx: Sender<Event>) {
        let mut state = self.state.lock();
        let mut sub = Subscriber { tx, missed: false };
        if let Some(latest) = &state.latest {
            if !sub.offer(latest) {
                return; // receiver already gone
            }
        }
        state.subscribers.push(sub);
    }

    /// Removes every subscription made with a sender of the same channel.
    pub(crate) fn deregister(&self, tx: &Sender<Event>) {
        self.state
            .lock()
            .subscribers
            .retain(|s| !s.tx.same_channel(tx));
    }

    /// Publishes a complete instance list in any order, possibly with duplicates.
    pub(crate) fn publish_instances(&self, raw: Vec<Instance>) {
        let mut state = self.state.lock();
        let set = match &state.last_set {
            Some(last) if incremental_ok(&state.last_raw, &raw) => {
                match apply_changes(last, &state.last_raw, &raw) {
                    Some(Changes::None) => last.clone(),
                    Some(Changes::Set(set)) => set,
                    None => sorted(&raw),
                }
            }
            _ => sorted(&raw),
        };
        let old_raw = std::mem::replace(&mut state.last_raw, raw);
        let old = state.publish(Event::Instances(set));
        // Freeing a large old list (N reference counts, maybe N strings) need not hold
        // up the next publish or register.
        drop(state);
        drop((old_raw, old));
    }

    /// Publishes an error event: the last set may be stale.
    pub(crate) fn publish_error(&self, err: Error) {
        self.publish(Event::error(err));
    }

    /// Publishes an event as it is.
    pub(crate) fn publish(&self, event: Event) {
        let mut state = self.state.lock();
        let old_raw = match &event {
            Event::Instances(_) => std::mem::take(&mut state.last_raw),
            Event::Error(_) => Vec::new(),
        };
        let old = state.publish(event);
        drop(state);
        drop((old_raw, old));
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
}

fn describe(event: &Event) -> String {
    match event {
        Event::Instances(set) => format!("{} instances", set.len()),
        Event::Error(err) => format!("error: {err}"),
    }
}

fn sorted(raw: &[Instance]) -> InstanceSet {
    InstanceSet::new(raw.to_vec())
}

fn incremental_ok(last_raw: &[Instance], raw: &[Instance]) -> bool {
    raw.len() >= INCREMENTAL_MIN && last_raw.len() == raw.len()
}

enum Changes {
    None,
    Set(InstanceSet),
}

/// Derives the new sorted set from the last one when `raw` differs from `last_raw` in a
/// few positions only. None when that does not hold or duplicates make it unsafe; the
/// caller then sorts from scratch.
fn apply_changes(last: &InstanceSet, last_raw: &[Instance], raw: &[Instance]) -> Option<Changes> {
    if last.len() != last_raw.len() {
        return None; // the last list had duplicates
    }
    let limit = raw.len() / 32;
    let mut changed = Vec::new();
    for (i, (old, new)) in last_raw.iter().zip(raw).enumerate() {
        if !old.same(new) {
            if changed.len() == limit {
                return None;
            }
            changed.push(i);
        }
    }
    if changed.is_empty() {
        return Some(Changes::None);
    }
    let mut next = last.to_vec();
    for &i in &changed {
        let at = next.binary_search(&last_raw[i]).ok()?;
        next.remove(at);
    }
    for &i in &changed {
        match next.binary_search(&raw[i]) {
            Ok(_) => return None, // a duplicate: let the full path choose the first
            Err(at) => next.insert(at, raw[i].clone()),
        }
    }
    Some(Changes::Set(InstanceSet::from_sorted_unchecked(next)))
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
        p.register(tx);
        assert!(rx.try_recv().is_err());
        p.publish_instances(vec![Instance::new("a:1")]);
        assert_eq!(addrs(&rx.try_recv().unwrap()), ["a:1"]);
    }

    #[test]
    fn incremental_path_matches_a_full_sort() {
        let p = Publisher::new();
        let (tx, rx) = unbounded();
        p.register(tx);
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
        p.register(tx);
        p.publish_instances(vec![Instance::builder("a:1").weight(1).build()]);
        p.publish_instances(vec![Instance::builder("a:1").weight(1).build()]);
        p.publish_instances(vec![Instance::builder("a:1").weight(2).build()]);
        assert_eq!(rx.try_iter().count(), 2);
    }

    #[test]
    fn a_full_bounded_subscriber_gets_the_latest_later() {
        let p = Publisher::new();
        let (tx, rx) = bounded(1);
        p.register(tx);
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
        p.register(tx);
        drop(rx);
        p.publish_error(Error::NoEndpoints);
        assert_eq!(p.subscriber_count(), 0);
    }
}
