//! The fan-out every instancer shares, seen through the memory registry.

mod support;

use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded};
use support::events::{addrs, next_addrs, subscribe};
use waypost::{Instance, MemoryRegistry};

#[test]
fn the_full_set_is_sent_at_once_on_register() {
    let registry = MemoryRegistry::new();
    let a = registry.registrar("svc", Instance::new("b:1"));
    let b = registry.registrar("svc", Instance::new("a:1"));
    let _a_registration = a.register().unwrap();
    let _b_registration = b.register().unwrap();
    let instancer = registry.instancer("svc");
    let rx = subscribe(&instancer);
    assert_eq!(
        addrs(&rx.try_recv().expect("sent during register")),
        ["a:1", "b:1"]
    );
    assert!(rx.try_recv().is_err());
}

#[test]
fn identical_states_are_not_sent_again() {
    let registry = MemoryRegistry::new();
    let instancer = registry.instancer("svc");
    let rx = subscribe(&instancer);
    assert!(next_addrs(&rx).is_empty());
    let first = registry.registrar("svc", Instance::new("a:1"));
    let _first_registration = first.register().unwrap();
    assert_eq!(next_addrs(&rx), ["a:1"]);
    // A second registration of the same address leaves the set as it was.
    let second = registry.registrar("svc", Instance::new("a:1"));
    let _second_registration = second.register().unwrap();
    first.deregister().unwrap();
    assert!(rx.try_recv().is_err(), "no event for an unchanged set");
    second.deregister().unwrap();
    assert!(next_addrs(&rx).is_empty());
}

#[test]
fn a_subscriber_that_never_reads_blocks_nobody() {
    let registry = MemoryRegistry::new();
    let instancer = registry.instancer("svc");
    let (stuck_tx, stuck_rx) = bounded(1);
    instancer.subscribe(stuck_tx);
    let rx = subscribe(&instancer);
    let started = Instant::now();
    let registrars: Vec<_> = (0..200)
        .map(|i| {
            let r = registry.registrar("svc", Instance::new(format!("h{i}:1")));
            r.register().unwrap()
        })
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "registering was held up"
    );
    assert_eq!(rx.try_iter().count(), 201, "the reader got every state");
    assert_eq!(stuck_rx.len(), 1);
    // Once it reads, the stuck subscriber gets the newest state at the next publish.
    stuck_rx.recv().unwrap();
    drop(registrars);
    let latest = stuck_rx.try_iter().last().map(|e| addrs(&e));
    assert_eq!(latest.map(|v| v.len()), Some(199));
}

#[test]
fn deregister_stops_delivery_and_dropped_receivers_are_harmless() {
    let registry = MemoryRegistry::new();
    let instancer = registry.instancer("svc");
    let (tx, rx) = unbounded();
    let (gone_tx, gone_rx) = unbounded();
    instancer.subscribe(tx.clone());
    instancer.subscribe(gone_tx);
    drop(gone_rx);
    assert!(next_addrs(&rx).is_empty());
    let r = registry.registrar("svc", Instance::new("a:1"));
    let _r_registration = r.register().unwrap();
    assert_eq!(next_addrs(&rx), ["a:1"]);
    instancer.unsubscribe(&tx);
    r.deregister().unwrap();
    assert!(rx.try_recv().is_err());
}

#[test]
fn many_subscribers_each_get_every_change() {
    let registry = MemoryRegistry::new();
    let instancer = registry.instancer("svc");
    let subscribers: Vec<_> = (0..50).map(|_| subscribe(&instancer)).collect();
    let mut held = Vec::new();
    for i in 0..20 {
        let r = registry.registrar("svc", Instance::new(format!("h{i:02}:1")));
        held.push(r.register().unwrap());
    }
    for rx in &subscribers {
        let sizes: Vec<usize> = rx.try_iter().map(|e| addrs(&e).len()).collect();
        assert_eq!(sizes, (0..=20).collect::<Vec<_>>());
    }
}

#[test]
fn a_stopped_instancer_gets_no_more_changes() {
    let registry = MemoryRegistry::new();
    let instancer = registry.instancer("svc");
    let rx = subscribe(&instancer);
    assert!(next_addrs(&rx).is_empty());
    instancer.stop();
    let _registration = registry
        .registrar("svc", Instance::new("a:1"))
        .register()
        .unwrap();
    assert!(rx.try_recv().is_err());
}
