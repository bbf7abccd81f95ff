//! A panic in a background loop is never silent: a Consul watch whose `Client` panics
//! publishes an error event naming the panic and restarts after its backoff, and the
//! third panic in a row ends it with a final error event; a panicking heartbeat is
//! logged and restarted the same way. `stop()` still joins promptly.
//!
//! The file watch runs the same loop (`internal::watch`) and supervisor
//! (`internal::worker::supervise`), but runs no user code and has no panic to trigger
//! honestly; the Consul cases cover the shared mechanism, the loop's unit tests its
//! restart on the clock, and the supervisor's own unit tests its counting.
//!
//! The tests count this binary's threads by name, so they take turns (`serial()`).
#![cfg(feature = "consul")]

mod support;

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use support::events::subscribe;
use support::fake_consul::{Op, Script, Step, scripted};
use support::{counting_threads, threads_named, wait_until};
use waypost::consul::{Instancer, Registrar};
use waypost::{Error, Event};

const WATCH: &str = "waypost-consul-watch";
const HEARTBEAT: &str = "waypost-consul-heartbeat";

/// Takes this binary's turn and installs the capture logger (once).
fn serial() -> std::sync::RwLockWriteGuard<'static, ()> {
    support::logs::capture();
    let turn = counting_threads();
    support::logs::records().clear();
    turn
}

/// Whether an `error!` line of target `waypost::consul` contains every one of `parts`.
fn logged_error(parts: &[&str]) -> bool {
    support::logs::logged(log::Level::Error, "waypost::consul", parts)
}

fn watch(backoff: Duration) -> (Instancer, Script, Receiver<Event>) {
    let (client, script) = scripted();
    let instancer = Instancer::builder(&client, "web")
        .backoff(backoff, backoff)
        .first_fetch_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    (instancer, script, rx)
}

/// The next event as `Ok(addresses)` or `Err(the Panicked error's message)`.
fn next(rx: &Receiver<Event>) -> Result<Vec<String>, String> {
    match support::events::next(rx) {
        event @ Event::Instances(_) => Ok(support::events::addrs(&event)),
        Event::Error(err) => match &*err {
            Error::Panicked { component, message } => {
                assert_eq!(*component, "consul watch");
                Err(message.to_string())
            }
            other => panic!("not a panic: {other}"),
        },
    }
}

/// Stops promptly, and the watch thread is gone.
fn stop_and_join(instancer: &Instancer) {
    support::stop_promptly(instancer);
    assert_eq!(threads_named(WATCH), 0);
}

#[test]
fn a_watch_panic_is_an_error_event_and_the_watch_restarts() {
    let _turn = serial();
    let (instancer, script, rx) = watch(Duration::from_millis(1));
    assert_eq!(script.next_query(), 0);
    script.answer(10, &["10.0.0.1:80"]);
    assert_eq!(next(&rx).unwrap(), ["10.0.0.1:80"]);

    assert_eq!(script.next_query(), 10);
    script.send(Step::Panic("boom"));
    assert_eq!(next(&rx), Err("boom".to_owned()));
    assert!(logged_error(&[
        "consul watch thread panicked: boom",
        "restarting"
    ]));

    // The restarted watch starts over (index 0) and publishes the set again.
    assert_eq!(script.next_query(), 0);
    script.answer(11, &["10.0.0.1:80"]);
    assert_eq!(next(&rx).unwrap(), ["10.0.0.1:80"]);
    stop_and_join(&instancer);
}

#[test]
fn three_panics_in_a_row_end_the_watch_with_a_final_error_event() {
    let _turn = serial();
    let (instancer, script, rx) = watch(Duration::from_millis(1));
    for _ in 0..3 {
        assert_eq!(script.next_query(), 0);
        script.send(Step::Panic("boom"));
    }
    // "boom" (an identical second state may not be sent again), then the final one.
    let boom = Err("boom".to_owned());
    let mut events = vec![next(&rx)];
    while events.len() < 3 && events.last() == Some(&boom) {
        events.push(next(&rx));
    }
    let last = events.pop().unwrap();
    assert_eq!(last, Err("boom (3 panics in a row: stopped)".to_owned()));
    assert!(!events.is_empty() && events.iter().all(|e| *e == boom));
    wait_until("the watch thread to end", || threads_named(WATCH) == 0);
    assert!(logged_error(&["boom", "3 panics in a row", "stopped"]));
    let late: Vec<Op> = script.ops.try_iter().collect();
    assert!(late.is_empty(), "queried after stopping: {late:?}");
    stop_and_join(&instancer);
}

#[test]
fn an_answer_between_panics_starts_a_new_count() {
    let _turn = serial();
    let (instancer, script, rx) = watch(Duration::from_millis(1));
    let steps = [
        Step::Panic("one"),
        Step::Panic("two"),
        Step::Answer {
            index: 3,
            addrs: vec!["10.0.0.1:80"],
        },
        Step::Panic("three"),
        Step::Panic("four"),
        Step::Answer {
            index: 4,
            addrs: vec!["10.0.0.2:80"],
        },
    ];
    for step in steps {
        script.next_query();
        script.send(step);
    }
    let events: Vec<_> = (0..6).map(|_| next(&rx)).collect();
    let messages = ["one", "two", "three", "four"].map(|m| Err(m.to_owned()));
    assert_eq!(events[..2], messages[..2]);
    assert_eq!(events[2], Ok(vec!["10.0.0.1:80".to_owned()]));
    assert_eq!(events[3..5], messages[2..]);
    assert_eq!(
        events[5],
        Ok(vec!["10.0.0.2:80".to_owned()]),
        "still watching"
    );
    stop_and_join(&instancer);
}

#[test]
fn stop_cuts_the_restart_backoff_short() {
    let _turn = serial();
    let (instancer, script, rx) = watch(Duration::from_secs(3600));
    script.next_query();
    script.send(Step::Panic("boom"));
    assert_eq!(next(&rx), Err("boom".to_owned()));
    assert_eq!(threads_named(WATCH), 1, "waiting to restart");
    stop_and_join(&instancer);
}

/// A registrar with a 1 s TTL, registered: the heartbeat passes every 333 ms.
fn registered() -> (Registrar, waypost::Registration, Script) {
    let (client, script) = scripted();
    let registrar = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let registration = registrar.register().unwrap();
    assert!(matches!(script.next_op(), Op::Register(_)));
    assert!(matches!(script.next_op(), Op::Pass), "passed by register()");
    (registrar, registration, script)
}

#[test]
fn a_heartbeat_panic_is_logged_and_the_heartbeat_restarts() {
    let _turn = serial();
    let (registrar, _registration, script) = registered();
    script.panic_passes(1);
    assert!(matches!(script.next_op(), Op::Pass), "the pass that panics");
    assert!(
        matches!(script.next_op(), Op::Pass),
        "the restarted heartbeat"
    );
    assert!(logged_error(&[
        "consul heartbeat thread panicked",
        "restarting"
    ]));
    assert_eq!(threads_named(HEARTBEAT), 1);
    registrar.deregister().unwrap();
    assert_eq!(threads_named(HEARTBEAT), 0);
}

#[test]
fn three_heartbeat_panics_end_it_and_register_starts_a_new_one() {
    let _turn = serial();
    let (registrar, _registration, script) = registered();
    script.panic_passes(3);
    for _ in 0..3 {
        assert!(matches!(script.next_op(), Op::Pass));
    }
    wait_until("the heartbeat thread to end", || {
        threads_named(HEARTBEAT) == 0
    });
    assert!(logged_error(&[
        "3 panics in a row",
        "consul heartbeat thread has stopped"
    ]));

    let _registrar_registration = registrar.register().unwrap();
    assert!(matches!(script.next_op(), Op::Register(_)));
    assert!(matches!(script.next_op(), Op::Pass));
    assert!(
        matches!(script.next_op(), Op::Pass),
        "a new heartbeat passes"
    );
    assert_eq!(threads_named(HEARTBEAT), 1);
    let started = Instant::now();
    registrar.deregister().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(threads_named(HEARTBEAT), 0);
}
