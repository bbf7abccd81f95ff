//! Reading what an instancer sends and what an endpointer serves, each wait bounded by
//! [`BOUND`](super::BOUND): the helpers every test file would otherwise write again.

use std::time::Instant;

use crossbeam_channel::{Receiver, unbounded};
use waypost::{DefaultEndpointer, Endpointer, Event, Instance, Instancer};

use super::BOUND;

/// A subscription to `instancer`: its current state (if any) and every later change.
pub fn subscribe(instancer: &dyn Instancer) -> Receiver<Event> {
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    rx
}

/// The next event; panics after the bound.
pub fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(BOUND).expect("an event within the bound")
}

/// The addresses of the next event, which must be a set.
pub fn next_addrs(rx: &Receiver<Event>) -> Vec<String> {
    addrs(&next(rx))
}

/// Waits for an event that satisfies `want`, skipping others; panics with `what` after
/// the bound.
pub fn wait_event(rx: &Receiver<Event>, what: &str, want: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + BOUND;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(event) if want(&event) => return event,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// The addresses of a set, in its (sorted) order; panics on an error event.
pub fn addrs(event: &Event) -> Vec<String> {
    match event {
        Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
        Event::Error(err) => panic!("expected a set, got an error event: {err}"),
    }
}

/// Whether an event is the set of exactly these addresses.
pub fn is_set<'a>(want: &'a [&'a str]) -> impl Fn(&Event) -> bool + 'a {
    move |e| matches!(e, Event::Instances(_)) && addrs(e) == want
}

pub fn is_error(event: &Event) -> bool {
    matches!(event, Event::Error(_))
}

/// An event in one line: a set's addresses joined by spaces, or `error: ` and the
/// error's message.
pub fn describe(event: &Event) -> String {
    match event {
        Event::Instances(_) => addrs(event).join(" "),
        Event::Error(err) => format!("error: {err}"),
    }
}

/// An endpointer over `instancer` whose endpoints are the instances' addresses.
pub fn addr_endpointer(instancer: impl Instancer + 'static) -> DefaultEndpointer<String> {
    DefaultEndpointer::new(instancer, |i: &Instance| Ok(i.addr().to_owned()))
        .expect("an endpointer")
}

/// What `endpointer` serves now; empty when it serves an error.
pub fn endpoints(endpointer: &impl Endpointer<String>) -> Vec<String> {
    endpointer
        .endpoints()
        .map(|e| e.to_vec())
        .unwrap_or_default()
}
