//! The etcd backend against a real 3-member etcd 3.4.23 cluster on loopback
//! (tests/support/etcd_cluster.rs): the member in use killed, the leader changing, and
//! a member cut off from its quorum.

#![cfg(feature = "etcd")]

mod support;

use std::time::{Duration, Instant};

use support::etcd_cluster::Cluster;
use support::events::{is_error, is_set, subscribe, wait_event};
use support::unique;
use waypost::etcd::{HttpClient, Instancer, Registrar};

/// A client that tries the members in the order given.
fn client(urls: Vec<String>) -> HttpClient {
    HttpClient::builder()
        .addresses(urls)
        .build()
        .expect("a client")
}

#[test]
fn killing_the_member_in_use_and_the_leader_changes_nothing_for_the_user() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let leader = cluster.wait_leader();
    // The client starts at the leader: the member in use is the one that dies, and the
    // cluster elects a new leader at the same time.
    let mut urls = cluster.client_urls();
    urls.rotate_left(leader);
    let client = client(urls);
    let p = format!("/{}/", unique("cluster"));
    let registrar = Registrar::builder(&client, p.as_str(), "10.1.0.1:80")
        .ttl(Duration::from_secs(3))
        .build()
        .expect("a registrar");
    let instancer = Instancer::builder(&client, p.as_str())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    let _registration = registrar.register().expect("register");
    wait_event(&rx, "registered", is_set(&["10.1.0.1:80"]));

    cluster.kill(leader);
    // (etcdctl's own writes hang until a new leader is there: it is waited for.)
    let new_leader = cluster.wait_leader();
    assert_ne!(new_leader, leader);
    cluster
        .member(new_leader)
        .put(&format!("{p}peer"), "10.1.0.2:80");
    wait_event(
        &rx,
        "a put on a survivor, through the others",
        is_set(&["10.1.0.1:80", "10.1.0.2:80"]),
    );
    // The keepalives go on through the survivors: after twice the TTL the
    // registration is still there (its lease would have lapsed otherwise).
    let lapsed = Instant::now() + Duration::from_secs(6);
    while Instant::now() < lapsed {
        match rx.recv_timeout(lapsed.saturating_duration_since(Instant::now())) {
            Ok(event) => assert!(
                is_set(&["10.1.0.1:80", "10.1.0.2:80"])(&event),
                "the set changed: {}",
                support::events::describe(&event)
            ),
            Err(_) => break,
        }
    }
    let keys = cluster
        .member(new_leader)
        .etcdctl(&["get", "--prefix", &p, "--keys-only"]);
    assert!(keys.contains("10.1.0.1:80"), "{keys}");
    cluster.member(new_leader).del(&format!("{p}peer"));
    wait_event(
        &rx,
        "the set after the leader changed",
        is_set(&["10.1.0.1:80"]),
    );
}

#[test]
fn a_member_cut_off_from_its_quorum_gives_an_error_event() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let p = format!("/{}/", unique("quorum"));
    cluster.member(0).put(&format!("{p}a"), "10.2.0.1:80");
    // Only member 0: nothing to fail over to.
    let client = client(vec![cluster.member(0).client_url()]);
    let instancer = Instancer::builder(&client, p.as_str())
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    wait_event(&rx, "the first set", is_set(&["10.2.0.1:80"]));
    cluster.pause(1);
    cluster.pause(2);
    let cut = Instant::now();
    // etcd ends the stream ("no leader", asked for with hasleader) and the list that
    // follows fails within the request timeout.
    wait_event(&rx, "an error event", is_error);
    let took = cut.elapsed();
    eprintln!("quorum lost -> error event: {took:?}");
    assert!(
        took < Duration::from_secs(8),
        "the error came after {took:?}"
    );
    cluster.resume(1);
    cluster.resume(2);
    cluster.wait_leader();
    cluster.member(0).put(&format!("{p}b"), "10.2.0.2:80");
    wait_event(
        &rx,
        "back after the quorum",
        is_set(&["10.2.0.1:80", "10.2.0.2:80"]),
    );
}
