//! waypost's ZooKeeper client against a real ZooKeeper 3.8.0 on loopback
//! (tests/support/zookeeper.rs): calls under a chroot, a child watch, ephemeral nodes
//! gone at close, and a forced session expiry.

#![cfg(feature = "zk")]

mod support;

use std::time::Duration;

use support::tcp_proxy::TcpProxy;
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

/// Expires `victim`'s session for sure: its connection (through `proxy`) is cut and
/// held while a second connection, straight to the server, takes the session over
/// and closes it; otherwise the victim, which reconnects within milliseconds, could
/// take its session back first.
fn expire(proxy: &TcpProxy, server: std::net::SocketAddr, victim: &Client) {
    let (id, password) = (victim.session_id(), victim.session_password());
    proxy.pause();
    expire_session(server, id, &password).expect("the session expired");
    proxy.resume();
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
    let proxy = TcpProxy::start(zk.addr());
    let c = client(&proxy.addr().to_string());
    c.create_all(&path).unwrap();
    c.create(&format!("{path}/e"), b"x", CreateMode::Ephemeral)
        .unwrap();
    let (_, fired) = c.watch_children(&path).unwrap();
    let events = c.session_events();
    let old = c.session_id();
    expire(&proxy, zk.addr(), &c);
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

#[test]
fn the_instancer_sees_registrations_come_and_go_and_survives_an_expiry() {
    use support::events::{is_set, subscribe, wait_event};
    use waypost::zk::{Instancer, Registrar};
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}/services/api", unique("instancer"));
    let (watcher_proxy, owner_proxy) = (TcpProxy::start(zk.addr()), TcpProxy::start(zk.addr()));
    let watcher = client(&watcher_proxy.addr().to_string());
    let instancer = Instancer::builder(&watcher, path.as_str())
        .missing_poll(Duration::from_millis(100))
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    wait_event(&rx, "nothing yet (no path)", is_set(&[]));
    let owner = client(&owner_proxy.addr().to_string());
    let registrar = Registrar::new(&owner, &path, "a", "10.0.0.1:80").unwrap();
    let registration = registrar.register().expect("register");
    wait_event(&rx, "registered", is_set(&["10.0.0.1:80"]));
    // A bad child is left out; the good one stays.
    watcher
        .create(
            &format!("{path}/bad"),
            b"not an address",
            CreateMode::Persistent,
        )
        .unwrap();
    let other = client(&zk.connect_string());
    other
        .create(&format!("{path}/b"), b"10.0.0.2:80", CreateMode::Ephemeral)
        .unwrap();
    wait_event(&rx, "two", is_set(&["10.0.0.1:80", "10.0.0.2:80"]));
    // The owner's session expires: its node goes, and the registrar puts it back in
    // the new session.
    expire(&owner_proxy, zk.addr(), &owner);
    wait_event(
        &rx,
        "back after the expiry",
        is_set(&["10.0.0.1:80", "10.0.0.2:80"]),
    );
    // The watcher's own session expires: it lists again in its new session.
    expire(&watcher_proxy, zk.addr(), &watcher);
    other.close();
    wait_event(
        &rx,
        "b gone, seen in the new session",
        is_set(&["10.0.0.1:80"]),
    );
    registration.deregister().expect("deregister");
    wait_event(&rx, "deregistered", is_set(&[]));
    support::stop_promptly(&instancer);
}

#[test]
fn killing_the_server_in_use_moves_the_session_and_keeps_everything() {
    use support::events::{is_set, subscribe, wait_event};
    use support::zookeeper::Ensemble;
    use waypost::zk::{Instancer, Registrar};
    let Some(mut ensemble) = Ensemble::start() else {
        return;
    };
    let connect = ensemble.connect_string();
    let c = Client::builder(&connect)
        .session_timeout(Duration::from_secs(6))
        .build()
        .expect("a client");
    let path = "/services/api";
    let registrar = Registrar::new(&c, path, "a", "10.4.0.1:80").unwrap();
    let _registration = registrar.register().unwrap();
    let instancer = Instancer::builder(&c, path).build().unwrap();
    let rx = subscribe(&instancer);
    wait_event(&rx, "registered", is_set(&["10.4.0.1:80"]));
    let sid = format!("sid=0x{:x}", c.session_id());
    let in_use = (0..3)
        .find(|&i| {
            ensemble
                .member(i)
                .four_letter("cons")
                .is_ok_and(|cons| cons.contains(&sid))
        })
        .expect("the server the session is on");
    let events = c.session_events();
    let killed = std::time::Instant::now();
    ensemble.kill(in_use);
    // The same session on another server: no expiry, the ephemeral node stays.
    loop {
        match events.recv_timeout(BOUND).expect("a session event") {
            SessionEvent::Connected { new_session } => {
                assert!(!new_session, "the session moved, it did not expire");
                break;
            }
            SessionEvent::Expired => panic!("the session expired"),
            SessionEvent::Disconnected => {}
        }
    }
    eprintln!("SIGKILL -> reconnected elsewhere: {:?}", killed.elapsed());
    let other = Client::builder(&ensemble.live_connect_string())
        .build()
        .expect("a client");
    other
        .create("/services/api/b", b"10.4.0.2:80", CreateMode::Ephemeral)
        .unwrap();
    wait_event(
        &rx,
        "a change after the move",
        is_set(&["10.4.0.1:80", "10.4.0.2:80"]),
    );
    assert!(
        other.exists("/services/api/a").unwrap().is_some(),
        "the ephemeral stayed"
    );
}

#[test]
fn a_sequential_registration_gets_a_numbered_node_with_a_unique_prefix() {
    use waypost::zk::Registrar;
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("sequential"));
    let c = client(&zk.connect_string());
    let registrar = Registrar::builder(&c, path.as_str(), "10.6.0.1:80")
        .name("api")
        .sequential()
        .build()
        .unwrap();
    let registration = registrar.register().unwrap();
    let node = registrar.node();
    let name = node.rsplit('/').next().unwrap();
    assert!(name.starts_with("_c_") && name.contains("-api"), "{name}");
    assert!(
        name[name.len() - 10..].bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    assert_eq!(c.get_children(&path).unwrap(), [name]);
    registration.deregister().unwrap();
    assert!(c.get_children(&path).unwrap().is_empty());
}

#[test]
fn an_expiry_while_on_a_follower_relists_and_the_registration_comes_back() {
    use support::events::{is_set, subscribe, wait_event};
    use support::zookeeper::Ensemble;
    use waypost::zk::{Instancer, Registrar};
    let Some(ensemble) = Ensemble::start() else {
        return;
    };
    let leader = ensemble.wait_leader();
    let follower = (leader + 1) % 3;
    let proxy = TcpProxy::start(ensemble.member(follower).addr());
    // The client is on the follower only (through the proxy).
    let c = client(&proxy.addr().to_string());
    let registrar = Registrar::new(&c, "/services/api", "a", "10.7.0.1:80").unwrap();
    let _registration = registrar.register().unwrap();
    let instancer = Instancer::builder(&c, "/services/api").build().unwrap();
    let rx = subscribe(&instancer);
    wait_event(&rx, "registered", is_set(&["10.7.0.1:80"]));
    let other = client(&ensemble.member(leader).connect_string());
    other
        .create("/services/api/b", b"10.7.0.2:80", CreateMode::Persistent)
        .unwrap();
    wait_event(&rx, "two", is_set(&["10.7.0.1:80", "10.7.0.2:80"]));
    // The session expires (taken over and closed through the leader) while the
    // client is cut off; meanwhile b goes.
    let (id, password) = (c.session_id(), c.session_password());
    proxy.pause();
    expire_session(ensemble.member(leader).addr(), id, &password).expect("expired");
    other.delete("/services/api/b", None).unwrap();
    proxy.resume();
    // A new session: the instancer lists again, the registrar creates its node again.
    wait_event(&rx, "the set in the new session", is_set(&["10.7.0.1:80"]));
    assert_ne!(c.session_id(), id);
    let stat = other
        .exists("/services/api/a")
        .unwrap()
        .expect("re-created");
    assert_eq!(stat.ephemeral_owner, c.session_id());
}

#[test]
fn stop_is_prompt_while_a_call_waits_on_a_hung_server() {
    use support::zookeeper::Zk;
    use waypost::zk::Instancer;
    let Some(server) = Zk::new() else {
        return;
    };
    let c = Client::builder(&server.connect_string())
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    c.create_all("/hung").unwrap();
    server.pause(); // the kernel takes the bytes; nothing answers
    // build() waits its first-fetch timeout for an answer that cannot come: by then
    // the first list is in flight.
    let instancer = Instancer::builder(&c, "/hung")
        .first_fetch_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    support::stop_promptly(&instancer);
    server.resume();
}

/// The example itself: its `run` is called here, `main` is not.
#[path = "../examples/zookeeper.rs"]
mod example;

#[test]
fn the_example_runs_for_two_seconds() {
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("example"));
    let c = client(&zk.connect_string());
    c.create_all(&path).unwrap();
    c.create(
        &format!("{path}/peer"),
        b"10.8.0.1:80",
        CreateMode::Persistent,
    )
    .unwrap();
    let args = example::Args {
        servers: zk.connect_string(),
        path: path.clone(),
        register: Some("127.0.0.1:18081".into()),
        curator: false,
        seconds: Some(2),
    };
    let (_interrupt, interrupted) = crossbeam_channel::bounded(1);
    let mut out = Vec::new();
    example::run(&args, &interrupted, &mut out).expect("the example runs");
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("10.8.0.1:80") && out.contains("127.0.0.1:18081"),
        "{out}"
    );
    assert!(out.contains("a call goes to http://"), "{out}");
    assert_eq!(
        c.get_children(&path).unwrap(),
        ["peer"],
        "it deregistered: {out}"
    );
}

#[test]
fn a_node_created_with_a_creator_acl_is_read_only_by_its_credentials() {
    use waypost::zk::NodeAcl;
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("acl"));
    let owner = Client::builder(&zk.connect_string())
        .digest("svc", "pw")
        .build()
        .unwrap();
    owner
        .create_with_acl(
            &path,
            b"10.9.0.1:80",
            CreateMode::Persistent,
            &[NodeAcl::creator(NodeAcl::ALL)],
        )
        .unwrap();
    assert_eq!(owner.get_data(&path).unwrap().0, b"10.9.0.1:80");
    let same = Client::builder(&zk.connect_string())
        .digest("svc", "pw")
        .build()
        .unwrap();
    assert!(same.get_data(&path).is_ok(), "the same credentials read");
    let anonymous = client(&zk.connect_string());
    assert_eq!(
        kind(&anonymous.get_data(&path).unwrap_err()),
        ZkErrorKind::NoAuth
    );
    // exists ignores ACLs.
    assert!(anonymous.exists(&path).unwrap().is_some());
    let err = owner
        .create_with_acl(&format!("{path}-none"), b"", CreateMode::Persistent, &[])
        .unwrap_err();
    assert_eq!(kind(&err), ZkErrorKind::Server, "an empty ACL is refused");
}

#[test]
fn a_node_left_by_another_session_is_replaced_by_the_registrar() {
    use waypost::zk::Registrar;
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("takeover"));
    // A previous run's node, its session still alive.
    let previous = client(&zk.connect_string());
    previous.create_all(&path).unwrap();
    previous
        .create(&format!("{path}/a"), b"10.9.1.1:80", CreateMode::Ephemeral)
        .unwrap();
    let now = client(&zk.connect_string());
    let registrar = Registrar::new(&now, &path, "a", "10.9.1.2:80").unwrap();
    let _registration = registrar.register().unwrap();
    let (data, stat) = now.get_data(&format!("{path}/a")).unwrap();
    assert_eq!(data, b"10.9.1.2:80");
    assert_eq!(stat.ephemeral_owner, now.session_id(), "this run owns it");
    // Registering again in the same session keeps the node.
    let again = registrar.register().unwrap();
    assert_eq!(
        now.get_data(&format!("{path}/a")).unwrap().1.czxid,
        stat.czxid
    );
    drop(again);
}

#[test]
fn a_change_made_while_disconnected_is_not_lost() {
    use support::events::{is_set, subscribe, wait_event};
    use waypost::zk::Instancer;
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("missed"));
    let proxy = TcpProxy::start(zk.addr());
    let c = client(&proxy.addr().to_string());
    c.create_all(&path).unwrap();
    let instancer = Instancer::builder(&c, path.as_str()).build().unwrap();
    let rx = subscribe(&instancer);
    wait_event(&rx, "empty", is_set(&[]));
    let events = c.session_events();
    // Cut off (not expired: the session outlives the cut); meanwhile a child comes.
    proxy.pause();
    let other = client(&zk.connect_string());
    other
        .create(&format!("{path}/a"), b"10.9.2.1:80", CreateMode::Persistent)
        .unwrap();
    proxy.resume();
    // The same session again: the watch, sent again with the last zxid seen, fires
    // at once for the change it missed.
    loop {
        match events.recv_timeout(BOUND).expect("a session event") {
            SessionEvent::Connected { new_session } => {
                assert!(!new_session, "the same session");
                break;
            }
            SessionEvent::Expired => panic!("the session expired"),
            SessionEvent::Disconnected => {}
        }
    }
    wait_event(&rx, "the missed child", is_set(&["10.9.2.1:80"]));
}
