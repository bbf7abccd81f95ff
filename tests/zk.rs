//! waypost's ZooKeeper client against a real ZooKeeper 3.8.0 on loopback
//! (tests/support/zookeeper.rs): calls under a chroot, a child watch, ephemeral nodes
//! gone at close, and a forced session expiry.

#![cfg(feature = "zk")]

mod support;

use std::time::Duration;

use support::zookeeper::{expire_session, shared};
use support::{BOUND, unique};
use waypost::zk::{Client, CreateMode, SessionEvent, WatchEvent};
use waypost::{Error, ZkErrorKind};

fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(4))
        .build()
        .expect("a client")
}

fn kind(err: &Error) -> ZkErrorKind {
    match err {
        Error::ZooKeeper(zk) => zk.kind,
        other => panic!("a ZooKeeper error: {other:?}"),
    }
}

#[test]
fn calls_under_a_chroot() {
    let Some(zk) = shared() else {
        return;
    };
    let root = format!("/{}", unique("chroot"));
    let plain = client(&zk.connect_string());
    plain.create_all(&root).unwrap();
    let c = client(&format!("{}{root}", zk.connect_string()));
    c.create_all("/services/api").unwrap();
    c.create_all("/services/api").unwrap(); // idempotent
    let created = c
        .create("/services/api/a", b"10.0.0.1:80", CreateMode::Persistent)
        .unwrap();
    assert_eq!(created, "/services/api/a", "the chroot is stripped");
    let seq = c
        .create("/services/api/n-", b"x", CreateMode::EphemeralSequential)
        .unwrap();
    assert!(seq.starts_with("/services/api/n-") && seq.len() == "/services/api/n-".len() + 10);
    let (data, stat) = c.get_data("/services/api/a").unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"10.0.0.1:80"[..], 0));
    let mut children = c.get_children("/services/api").unwrap();
    children.sort();
    assert_eq!(children.len(), 2);
    // The plain client sees the node under the chroot.
    assert!(
        plain
            .exists(&format!("{root}/services/api/a"))
            .unwrap()
            .is_some()
    );
    let err = c.get_data("/services/api/none").unwrap_err();
    assert_eq!(kind(&err), ZkErrorKind::NoNode);
    let err = c
        .create("/services/api/a", b"", CreateMode::Persistent)
        .unwrap_err();
    assert_eq!(kind(&err), ZkErrorKind::NodeExists);
    assert_eq!(
        kind(&c.delete("/services/api", None).unwrap_err()),
        ZkErrorKind::NotEmpty
    );
    assert_eq!(
        kind(&c.get_data("no/slash").unwrap_err()),
        ZkErrorKind::Invalid
    );
    c.delete("/services/api/a", Some(0)).unwrap();
    assert!(c.exists("/services/api/a").unwrap().is_none());
    c.close();
    assert_eq!(
        kind(&c.exists("/services").unwrap_err()),
        ZkErrorKind::Closed
    );
}

#[test]
fn a_child_watch_fires_once_and_close_removes_ephemerals() {
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("watch"));
    let watcher = client(&zk.connect_string());
    watcher.create_all(&path).unwrap();
    let (children, fired) = watcher.watch_children(&path).unwrap();
    assert!(children.is_empty());
    let owner = client(&zk.connect_string());
    owner
        .create(&format!("{path}/e"), b"10.0.0.2:80", CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(fired.recv_timeout(BOUND), Ok(WatchEvent::Changed));
    let (children, fired) = watcher.watch_children(&path).unwrap();
    assert_eq!(children, ["e"]);
    let started = std::time::Instant::now();
    owner.close();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fired.recv_timeout(BOUND),
        Ok(WatchEvent::Changed),
        "the ephemeral went"
    );
    assert!(watcher.get_children(&path).unwrap().is_empty());
    watcher.close();
}

#[test]
fn a_forced_expiry_is_told_and_a_new_session_follows() {
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("expiry"));
    let c = client(&zk.connect_string());
    c.create_all(&path).unwrap();
    c.create(&format!("{path}/e"), b"x", CreateMode::Ephemeral)
        .unwrap();
    let (_, fired) = c.watch_children(&path).unwrap();
    let events = c.session_events();
    let old = c.session_id();
    expire_session(zk.addr(), old, &c.session_password()).expect("expired");
    assert_eq!(fired.recv_timeout(BOUND), Ok(WatchEvent::SessionExpired));
    let mut seen = Vec::new();
    while seen.last() != Some(&SessionEvent::Connected { new_session: true }) {
        seen.push(events.recv_timeout(BOUND).expect("a session event"));
    }
    assert!(seen.contains(&SessionEvent::Expired), "{seen:?}");
    assert_ne!(c.session_id(), old);
    assert!(
        c.get_children(&path).unwrap().is_empty(),
        "the old session's ephemeral went"
    );
    c.close();
}
