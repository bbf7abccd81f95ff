//! One suite, written once, that every backend runs. Two parts:
//!
//! - The instancer part, for any [`Instancer`]: the backend is a [`Source`], instancers
//!   plus a way for the test to add and remove instances (a registrar, a file write, a
//!   DNS config change). Two checks need more, and run where a backend has it: a
//!   registry that can fail and recover ([`Outage`]), and a first answer the test can
//!   hold back ([`HeldAnswer`]).
//! - The registrar part, for a backend that registers ([`Registry`]); what a
//!   registration does is seen through the backend's own instancer.
//!
//! Each check is a function named for what it checks, run by tests/conformance.rs as a
//! test of its own, on a service name of its own. Checks wait with a bound, calling
//! [`Source::tick`] as they wait (a backend on a manual clock moves it there).

use std::sync::{Arc, RwLockReadGuard};

use crossbeam_channel::Receiver;
use waypost::{DefaultEndpointer, EndpointerState, Event, Instancer, Registrar};

use super::events::{addr_endpointer, addrs, endpoints, subscribe};
use super::{counting_threads, starting_threads, stop_promptly, unique, wait_until};

/// What the instancer part needs from a backend.
pub trait Source {
    /// Short name for messages.
    fn name(&self) -> &str;
    /// An instancer watching `service`.
    fn instancer(&self, service: &str) -> Arc<dyn Instancer>;
    /// Makes `addr` (`host:port`) one of `service`'s instances in the registry.
    fn add(&self, service: &str, addr: &str);
    /// Takes `addr` out of `service`'s instances.
    fn remove(&self, service: &str, addr: &str);
    /// Lets the registry's time pass, called again and again while a check waits:
    /// a backend whose instancers poll on a manual clock moves it a poll interval.
    fn tick(&self) {}
    /// The name (or its prefix) of the thread an instancer runs, if `stop()` joins it.
    fn watch_thread(&self) -> Option<&str> {
        None
    }
}

/// A registry the test can make fail, and recover.
pub trait Outage: Source {
    /// From now on the instancers of `service` get errors from the registry.
    fn fail(&self, service: &str);
    /// The registry answers again, with what it held before.
    fn recover(&self, service: &str);
}

/// A registry whose first answer to a new instancer the test can hold back.
pub trait HeldAnswer: Source {
    /// An instancer watching `service`, returned once it waits for the registry's first
    /// answer, which is held until [`release`](Self::release).
    fn held_instancer(&self, service: &str) -> Arc<dyn Instancer>;
    /// Lets the held answer come.
    fn release(&self);
}

/// What the registrar part needs: a registrar, and the instancer of [`Source`] to see
/// what it does.
pub trait Registry: Source {
    /// A registrar for `addr` (`host:port`) under `service`; not yet registered.
    fn registrar(&self, service: &str, addr: &str) -> Box<dyn Registrar>;
}

const A: &str = "127.0.0.1:7001";
const B: &str = "127.0.0.1:7002";

// ---- the instancer part ----

/// Two instances in the registry: an endpointer on the instancer serves both.
pub fn two_instances_are_seen(b: &impl Source) {
    let _turn = starting_threads();
    let service = service(b, "two");
    b.add(&service, A);
    b.add(&service, B);
    let e = endpointer(b, &service);
    serves(b, &e, "both instances", &[A, B]);
}

/// One of two taken out: it goes and the other stays; then the last goes too.
pub fn a_removed_instance_goes(b: &impl Source) {
    let _turn = starting_threads();
    let service = service(b, "removed");
    let e = endpointer(b, &service);
    b.add(&service, A);
    b.add(&service, B);
    serves(b, &e, "both instances", &[A, B]);
    b.remove(&service, B);
    serves(b, &e, "the removed one to go", &[A]);
    b.remove(&service, A);
    serves(b, &e, "the last one to go", &[]);
}

/// A registry error after a set: the endpointer goes on serving that set and says it
/// may be stale; once the registry answers again it serves what the registry holds.
/// (A registry just back may first answer a set still being restored: Consul's
/// catalog is empty until the agent syncs its services again.)
pub fn an_error_keeps_the_last_set(b: &impl Outage) {
    let _turn = starting_threads();
    let service = service(b, "error");
    b.add(&service, A);
    let e = endpointer(b, &service);
    serves(b, &e, "the instance", &[A]);
    b.fail(&service);
    wait(b, "an error", || e.status().last_error.is_some());
    assert_eq!(endpoints(&e), [A], "{}: the last set is kept", b.name());
    assert_eq!(e.status().state, EndpointerState::Ready, "{}", b.name());
    b.recover(&service);
    wait(b, "the set from the registry again", || {
        e.status().last_error.is_none() && endpoints(&e) == [A]
    });
}

/// Until the registry first answers, an instancer sends nothing (no empty set that
/// would make every pick fail); the answer is then its first event.
pub fn nothing_is_sent_before_the_first_answer(b: &impl HeldAnswer) {
    let _turn = starting_threads();
    let service = service(b, "first");
    b.add(&service, A);
    let instancer = b.held_instancer(&service);
    let rx = subscribe(&*instancer);
    let e = addr_endpointer(instancer.clone());
    let sent = rx.try_recv();
    assert!(
        sent.is_err(),
        "{}: sent before the first answer: {sent:?}",
        b.name()
    );
    assert_eq!(e.status().state, EndpointerState::Pending, "{}", b.name());
    b.release();
    assert_eq!(addrs(&next_event(b, &rx)), [A], "{}", b.name());
    serves(b, &e, "the first answer", &[A]);
}

/// `stop()` returns in well under a second with the watch under way (a query in
/// flight, a poll pending), and again at once; a backend whose stop joins its watch
/// thread has none left.
pub fn stop_joins_promptly(b: &impl Source) {
    let _turn = counting_threads(); // no other check's threads are counted
    let service = service(b, "stop");
    b.add(&service, A);
    let instancer = b.instancer(&service);
    let rx = subscribe(&*instancer);
    next_event(b, &rx);
    stop_promptly(&*instancer);
    stop_promptly(&*instancer);
    if let Some(thread) = b.watch_thread() {
        super::wait_threads(thread, 0, &format!("{}: stop() joined", b.name()));
    }
}

// ---- the registrar part ----

/// A registration shows in the backend's instancer.
pub fn a_registration_is_visible(b: &impl Registry) {
    let _turn = starting_threads();
    let service = service(b, "visible");
    let r = b.registrar(&service, A);
    let _registration = r.register().expect("register");
    let e = endpointer(b, &service);
    serves(b, &e, "the registration", &[A]);
}

/// `deregister()` takes the registration out, and so does the guard's own
/// `Registration::deregister()`.
pub fn deregistration_removes_it(b: &impl Registry) {
    let Registering { _turn, e, r, .. } = registering(b, "deregistered");
    let _registration = r.register().expect("register");
    serves(b, &e, "the registration", &[A]);
    r.deregister().expect("deregister");
    serves(b, &e, "deregister() to take it out", &[]);
    let registration = r.register().expect("register again");
    serves(b, &e, "the registration again", &[A]);
    registration.deregister().expect("the guard's deregister");
    serves(b, &e, "the guard's deregister() to take it out", &[]);
}

/// Dropping the `Registration` guard deregisters, also when its registrar went first.
pub fn dropping_the_registration_deregisters(b: &impl Registry) {
    let Registering {
        _turn,
        service,
        e,
        r,
    } = registering(b, "dropped");
    let registration = r.register().expect("register");
    let marker = b.registrar(&service, B);
    let _marker = marker.register().expect("register the marker");
    serves(b, &e, "both", &[A, B]);
    drop(r); // the guard owns the registration
    drop(registration);
    serves(b, &e, "the guard's drop to deregister", &[B]);
}

/// `register()` and `deregister()` are idempotent: deregistering what is not
/// registered is `Ok`; registering twice keeps one registration (the first guard
/// dropped ends it); deregistering twice is `Ok`; a registrar registers again after.
pub fn the_calls_are_idempotent(b: &impl Registry) {
    let Registering { _turn, e, r, .. } = registering(b, "idempotent");
    r.deregister().expect("deregister before any register");
    let first = r.register().expect("register");
    let second = r.register().expect("register again");
    serves(b, &e, "one registration", &[A]);
    drop(first);
    serves(b, &e, "the first guard's drop to end it", &[]);
    second
        .deregister()
        .expect("the second guard, its registration gone");
    r.deregister().expect("deregister");
    r.deregister().expect("deregister again");
    let _again = r.register().expect("register after all that");
    serves(b, &e, "the registration back", &[A]);
}

// ---- helpers ----

/// How a registrar check starts: its turn, a service of its own, an endpointer
/// watching it, and a registrar for `A` there (not yet registered).
struct Registering {
    _turn: RwLockReadGuard<'static, ()>,
    service: String,
    e: DefaultEndpointer<String>,
    r: Box<dyn Registrar>,
}

fn registering(b: &impl Registry, check: &str) -> Registering {
    let _turn = starting_threads();
    let service = service(b, check);
    let (e, r) = (endpointer(b, &service), b.registrar(&service, A));
    Registering {
        _turn,
        service,
        e,
        r,
    }
}

/// A service name of this check's own.
fn service(b: &impl Source, check: &str) -> String {
    unique(&format!("conf-{}-{check}", b.name()))
}

fn endpointer(b: &impl Source, service: &str) -> DefaultEndpointer<String> {
    addr_endpointer(b.instancer(service))
}

/// Waits (bounded, ticking the source) until `cond` holds.
fn wait(b: &impl Source, what: &str, mut cond: impl FnMut() -> bool) {
    wait_until(&format!("{}: {what}", b.name()), || {
        b.tick();
        cond()
    });
}

fn serves(b: &impl Source, e: &DefaultEndpointer<String>, what: &str, want: &[&str]) {
    wait(b, what, || {
        e.status().state == EndpointerState::Ready && endpoints(e) == want
    });
}

fn next_event(b: &impl Source, rx: &Receiver<Event>) -> Event {
    let mut event = None;
    wait(b, "an event", || {
        event = rx.try_recv().ok();
        event.is_some()
    });
    event.expect("an event")
}
