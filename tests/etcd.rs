//! The etcd backend against a real etcd 3.4.23 member on loopback, shared by the tests
//! of this binary (tests/support/etcd.rs starts it; without the binary these tests
//! skip locally and fail under `CI=true`): keys put and deleted by etcdctl, lost and
//! revoked leases, compaction while the watch is cut off, values of every form side
//! by side, and the example.

#![cfg(feature = "etcd")]

mod support;

use std::time::Duration;

use crossbeam_channel::Receiver;

use support::events::{is_set, subscribe, wait_event};
use support::logs;
use support::tcp_proxy::TcpProxy;
use support::{BOUND, unique, wait_until};
use waypost::etcd::{HttpClient, Instancer, Registrar};
use waypost::{Endpointer, Event, ManualClock};

fn client(url: &str) -> HttpClient {
    HttpClient::builder()
        .address(url)
        .build()
        .expect("a client")
}

fn prefix(name: &str) -> String {
    format!("/{}/", unique(name))
}

/// A registrar for `addr` under `prefix` whose keepalives wait on a manual clock (held
/// back until the test moves it), and an instancer on the prefix, subscribed.
fn held_keepalives(
    client: &HttpClient,
    prefix: &str,
    addr: &str,
    ttl: Duration,
) -> (Registrar, ManualClock, Instancer, Receiver<Event>) {
    let clock = ManualClock::new();
    let registrar = Registrar::builder(client, prefix, addr)
        .ttl(ttl)
        .clock(clock.clone())
        .build()
        .expect("a registrar");
    let instancer = Instancer::builder(client, prefix)
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    (registrar, clock, instancer, rx)
}

#[test]
fn keys_put_and_deleted_by_etcdctl_come_and_go() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let p = prefix("etcdctl");
    let instancer = Instancer::builder(&client(&etcd.client_url()), p.as_str())
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    etcd.put(&format!("{p}a"), "10.0.0.1:8080");
    wait_event(&rx, "a", is_set(&["10.0.0.1:8080"]));
    etcd.put(&format!("{p}b"), "10.0.0.2:8080");
    wait_event(&rx, "a and b", is_set(&["10.0.0.1:8080", "10.0.0.2:8080"]));
    etcd.put(&format!("{p}a"), "10.0.0.3:8080");
    wait_event(&rx, "a moved", is_set(&["10.0.0.2:8080", "10.0.0.3:8080"]));
    etcd.del(&format!("{p}a"));
    wait_event(&rx, "b alone", is_set(&["10.0.0.2:8080"]));
    // A key beside the prefix is not listed.
    etcd.put(&format!("{}x", p.trim_end_matches('/')), "10.0.0.9:1");
    etcd.del(&format!("{p}b"));
    wait_event(&rx, "nothing", is_set(&[]));
}

#[test]
fn go_naming_waypost_json_and_a_bad_value_side_by_side() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    logs::capture();
    let p = prefix("forms");
    etcd.put(
        &format!("{p}go"),
        r#"{"Op":0,"Addr":"10.0.1.1:9000","Metadata":null}"#,
    );
    etcd.put(
        &format!("{p}waypost"),
        r#"{"addr":"10.0.1.2:9000","metadata":{"zone":"eu-1","weight":5}}"#,
    );
    etcd.put(&format!("{p}plain"), "10.0.1.3:9000");
    etcd.put(&format!("{p}broken"), "not an address at all");
    let instancer = Instancer::builder(&client(&etcd.client_url()), p.as_str())
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    let event = wait_event(
        &rx,
        "the three good values",
        is_set(&["10.0.1.1:9000", "10.0.1.2:9000", "10.0.1.3:9000"]),
    );
    let Event::Instances(set) = event else {
        unreachable!()
    };
    let meta = set
        .iter()
        .find(|i| i.addr() == "10.0.1.2:9000")
        .and_then(|i| i.metadata())
        .expect("metadata");
    assert_eq!((meta.zone(), meta.weight()), (Some("eu-1"), Some(5)));
    let broken_key = format!("{p}broken");
    wait_until("the bad key named in the log", || {
        logs::logged(
            log::Level::Warn,
            "waypost::etcd",
            &[&broken_key, "left out"],
        )
    });
    // A good key turned bad leaves; the others stay.
    etcd.put(&format!("{p}plain"), "10.0.1.3:0");
    wait_event(
        &rx,
        "plain gone",
        is_set(&["10.0.1.1:9000", "10.0.1.2:9000"]),
    );
}

#[test]
fn a_lease_that_lapses_while_keepalives_are_held_back_is_restored() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let client = client(&etcd.client_url());
    let (registrar, clock, _instancer, rx) = held_keepalives(
        &client,
        &prefix("lapse"),
        "10.0.2.1:80",
        Duration::from_secs(2),
    );
    let _registration = registrar.register().expect("register");
    wait_event(&rx, "registered", is_set(&["10.0.2.1:80"]));
    let first_lease = registrar.lease();
    // The manual clock holds the keepalives back: etcd lets the lease expire.
    wait_event(&rx, "the lease expired", is_set(&[]));
    // The next keepalive finds the lease gone, grants a new one and puts the key.
    clock.advance(Duration::from_secs(1));
    wait_event(&rx, "restored", is_set(&["10.0.2.1:80"]));
    assert_ne!(registrar.lease(), first_lease);
}

#[test]
fn a_lease_revoked_by_etcdctl_is_restored() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let client = client(&etcd.client_url());
    let (registrar, clock, _instancer, rx) = held_keepalives(
        &client,
        &prefix("revoked"),
        "10.0.3.1:80",
        Duration::from_secs(30),
    );
    let registration = registrar.register().expect("register");
    wait_event(&rx, "registered", is_set(&["10.0.3.1:80"]));
    etcd.lease_revoke(registrar.lease());
    wait_event(&rx, "revoked: the key went with its lease", is_set(&[]));
    clock.advance(Duration::from_secs(10)); // the next keepalive
    wait_event(&rx, "restored", is_set(&["10.0.3.1:80"]));
    registration.deregister().expect("deregister");
    wait_event(&rx, "deregistered", is_set(&[]));
}

#[test]
fn a_key_deleted_by_etcdctl_while_its_lease_lives_is_put_back() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let client = client(&etcd.client_url());
    let p = prefix("deleted");
    let (registrar, clock, _instancer, rx) =
        held_keepalives(&client, &p, "10.0.7.1:80", Duration::from_secs(30));
    let _registration = registrar.register().expect("register");
    wait_event(&rx, "registered", is_set(&["10.0.7.1:80"]));
    etcd.del(&format!("{p}10.0.7.1:80"));
    wait_event(&rx, "deleted by etcdctl", is_set(&[]));
    clock.advance(Duration::from_secs(10)); // the next keepalive
    wait_event(&rx, "put back", is_set(&["10.0.7.1:80"]));
}

#[test]
fn compaction_while_cut_off_gives_a_clean_relist() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let p = prefix("compact");
    etcd.put(&format!("{p}stays"), "10.0.4.1:80");
    etcd.put(&format!("{p}goes"), "10.0.4.2:80");
    let proxy = TcpProxy::start(etcd.addr());
    let client = client(&format!("http://{}", proxy.addr()));
    let instancer = Instancer::builder(&client, p.as_str())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    wait_event(&rx, "both", is_set(&["10.0.4.1:80", "10.0.4.2:80"]));
    proxy.pause();
    etcd.del(&format!("{p}goes"));
    etcd.put(&format!("{p}new"), "10.0.4.3:80");
    etcd.put(&format!("{p}new"), "10.0.4.4:80");
    etcd.compact(etcd.revision());
    proxy.resume();
    // The watch resumes from a compacted revision: etcd cancels it, and the list
    // gives the set as it is now: no stale instance, the last value of `new`.
    wait_event(
        &rx,
        "the set after compaction",
        is_set(&["10.0.4.1:80", "10.0.4.4:80"]),
    );
    // And the new stream works.
    etcd.put(&format!("{p}later"), "10.0.4.5:80");
    wait_event(
        &rx,
        "a put after the re-list",
        is_set(&["10.0.4.1:80", "10.0.4.4:80", "10.0.4.5:80"]),
    );
}

#[test]
fn stop_cuts_the_open_stream_and_joins() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let instancer = Instancer::builder(&client(&etcd.client_url()), prefix("stop").as_str())
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    wait_event(&rx, "the first set", is_set(&[]));
    // The stream opens right after the first set; a stop cuts it wherever it is.
    support::stop_promptly(&instancer);
}

#[test]
fn the_endpointer_serves_a_registration() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let client = client(&etcd.client_url());
    let p = prefix("endpointer");
    let registrar = Registrar::builder(&client, p.as_str(), "10.0.5.1:80")
        .build()
        .expect("a registrar");
    let registration = registrar.register().expect("register");
    let instancer = Instancer::builder(&client, p.as_str())
        .build()
        .expect("an instancer");
    let endpointer = support::events::addr_endpointer(instancer);
    endpointer.wait_ready(BOUND).expect("ready");
    assert_eq!(support::events::endpoints(&endpointer), ["10.0.5.1:80"]);
    drop(registration);
    wait_until("deregistered", || {
        endpointer.endpoints().is_ok_and(|e| e.is_empty())
    });
}

/// The example itself: its `run` is called here, `main` is not.
#[path = "../examples/etcd.rs"]
mod example;

#[test]
fn the_example_runs_for_two_seconds() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let p = prefix("example");
    etcd.put(&format!("{p}peer"), "10.0.6.1:80");
    let args = example::Args {
        addrs: vec![etcd.client_url()],
        prefix: p.clone(),
        register: Some("127.0.0.1:18080".into()),
        user: None,
        seconds: Some(2),
    };
    let (_interrupt, interrupted) = crossbeam_channel::bounded(1);
    let mut out = Vec::new();
    example::run(&args, &interrupted, &mut out).expect("the example runs");
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("10.0.6.1:80"), "{out}");
    assert!(out.contains("127.0.0.1:18080"), "{out}");
    assert!(out.contains("stopping"), "{out}");
    assert!(out.contains("a call goes to http://"), "{out}");
    // It deregistered on the way out.
    let left = etcd.etcdctl(&["get", "--prefix", &p, "--keys-only"]);
    assert!(!left.contains("127.0.0.1:18080"), "{left}");
}
