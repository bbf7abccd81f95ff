//! One suite, written once, that every Instancer + Registrar pair runs.
//!
//! A backend's test provides a [`Backend`]; [`run`] checks what every backend must do
//! the same way: registrations become visible through a `DefaultEndpointer`,
//! deregistration removes them, dropping a registrar deregisters, and `stop()` joins
//! the instancer's thread promptly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use waypost::{DefaultEndpointer, Endpointer, Instance, Instancer, Registrar};

use super::{BOUND, wait_until};

/// What the suite needs from a backend.
pub trait Backend {
    /// Short name for messages.
    fn name(&self) -> &str;
    /// An instancer watching `service`.
    fn instancer(&self, service: &str) -> Arc<dyn Instancer>;
    /// A registrar for `addr` (`host:port`) under `service`; not yet registered.
    fn registrar(&self, service: &str, addr: &str) -> Box<dyn Registrar>;
    /// Prefix of the instancer's watch thread name (`None` if it has no thread).
    fn watch_thread(&self) -> Option<&str>;
}

fn endpoints(e: &DefaultEndpointer<String>) -> Vec<String> {
    e.endpoints().map(|eps| eps.to_vec()).unwrap_or_default()
}

/// Runs every check against `backend`, each on its own service name.
pub fn run(backend: &dyn Backend) {
    let tag = format!("{}-{}", std::process::id(), backend.name());
    register_two_deregister_one(backend, &format!("conf-a-{tag}"));
    registration_drop_deregisters(backend, &format!("conf-b-{tag}"));
    stop_joins_promptly(backend, &format!("conf-c-{tag}"));
}

fn endpointer(backend: &dyn Backend, service: &str) -> DefaultEndpointer<String> {
    let endpointer = DefaultEndpointer::new(backend.instancer(service), |i: &Instance| {
        Ok(i.addr().to_owned())
    })
    .expect("endpointer");
    endpointer
        .wait_ready(BOUND)
        .unwrap_or_else(|e| panic!("{}: no first state: {e}", backend.name()));
    endpointer
}

fn register_two_deregister_one(backend: &dyn Backend, service: &str) {
    let a = backend.registrar(service, "127.0.0.1:7001");
    let b = backend.registrar(service, "127.0.0.1:7002");
    let _a = a.register().expect("register a");
    let _b = b.register().expect("register b");
    let _again = a.register().expect("register is idempotent");
    let e = endpointer(backend, service);
    wait_until("both instances", || {
        endpoints(&e) == ["127.0.0.1:7001", "127.0.0.1:7002"]
    });
    b.deregister().expect("deregister b");
    b.deregister().expect("deregister is idempotent");
    wait_until("b to go", || endpoints(&e) == ["127.0.0.1:7001"]);
    a.deregister().expect("deregister a");
    wait_until("a to go", || endpoints(&e).is_empty());
}

fn registration_drop_deregisters(backend: &dyn Backend, service: &str) {
    let e = endpointer(backend, service);
    let r = backend.registrar(service, "127.0.0.1:7003");
    let registration = r.register().expect("register");
    wait_until("the instance", || endpoints(&e) == ["127.0.0.1:7003"]);
    // The guard owns the registration: the registrar may go first.
    drop(r);
    let marker = backend.registrar(service, "127.0.0.1:7004");
    let _marker = marker.register().expect("register the marker");
    wait_until("the marker", || endpoints(&e).len() == 2);
    assert_eq!(endpoints(&e), ["127.0.0.1:7003", "127.0.0.1:7004"]);
    drop(registration);
    wait_until("the guard's drop to deregister", || {
        endpoints(&e) == ["127.0.0.1:7004"]
    });
}

fn stop_joins_promptly(backend: &dyn Backend, service: &str) {
    let instancer = backend.instancer(service);
    let (tx, rx) = crossbeam_channel::unbounded();
    instancer.subscribe(tx);
    let _ = rx.recv_timeout(BOUND); // let the watch get going
    let started = Instant::now();
    instancer.stop();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "{}: stop took {took:?}",
        backend.name()
    );
    instancer.stop(); // idempotent
    if let Some(thread) = backend.watch_thread() {
        drop(instancer);
        wait_until("the watch thread to end", || {
            super::threads_named(thread) == 0
        });
    }
}
