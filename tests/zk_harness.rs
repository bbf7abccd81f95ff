//! Tests of the ZooKeeper harness (`tests/support/zookeeper.rs` on the launcher in
//! `server.rs`, zkCli in `zk_cli.rs`, the raw wire client in `zk_wire.rs`, the
//! ensemble in `zk_ensemble.rs`) and of the Curator harness (`curator.rs`) against a
//! real ZooKeeper 3.8.0: readiness, restarts, zkCli, a session expired from a second
//! connection, digest ACLs, a three-server ensemble losing its leader, and Curator's
//! service discovery. The harness uses no part of waypost, so this file is built
//! with every feature set.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::curator::{CuratorInstance, CuratorJson, require_curator};
use support::java::ProcessDir;
use support::server::process_gone;
use support::zk_cli::answer;
use support::zookeeper::{
    self, EPHEMERAL, EPHEMERAL_SEQUENTIAL, Ensemble, Jute, Mode, PERSISTENT, RawSession, Unjute,
    WireError, Zk, ZkCli, code, connect_frame, event, expire_session, four_letter,
    four_letter_within, read_frame, request_frame,
};
use support::{BOUND, unique, wait_until};

/// A wait that must come up empty: short, since it always runs to its end.
const SILENCE: Duration = Duration::from_millis(300);

#[test]
fn wire_frames_follow_the_protocol_table() {
    // ConnectRequest: version, lastZxid, timeout, session, password, readOnly byte.
    let frame = connect_frame(
        0x12,
        Duration::from_secs(10),
        0x0100_0000_0000_0007,
        &[7; 16],
    );
    assert_eq!(frame.len(), 4 + 45);
    assert_eq!(frame[..4], 45i32.to_be_bytes());
    assert_eq!(frame[4..8], [0; 4], "protocol version 0");
    assert_eq!(frame[8..16], 0x12i64.to_be_bytes());
    assert_eq!(frame[16..20], 10_000i32.to_be_bytes());
    assert_eq!(frame[20..28], 0x0100_0000_0000_0007i64.to_be_bytes());
    assert_eq!(frame[28..32], 16i32.to_be_bytes());
    assert_eq!(frame[32..48], [7; 16]);
    assert_eq!(frame[48], 0, "readOnly false, after the record");
    // closeSession: a header and no body.
    let close = request_frame(1, -11, Jute::default());
    assert_eq!(close, [0, 0, 0, 8, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf5]);
    // A null buffer is length -1; a string is length and bytes.
    let record = Jute::default()
        .buffer(None)
        .string("/a")
        .boolean(true)
        .frame();
    assert_eq!(
        record,
        [
            0, 0, 0, 11, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, b'/', b'a', 1
        ]
    );
    let mut r = Unjute::new(&record[4..]);
    assert_eq!(r.buffer().unwrap(), None);
    assert_eq!(r.string().unwrap(), "/a");
    assert!(r.boolean().unwrap());
    assert!(r.int().is_err(), "past the end is an error, not a panic");
    // A Stat is 68 bytes.
    let stat = Unjute::new(&[0; 68]).stat().unwrap();
    assert_eq!(stat.ephemeral_owner, 0);
    assert!(Unjute::new(&[0; 67]).stat().is_err());
    // A frame length the harness will not allocate, and a negative one.
    for len in [i32::MAX, 3 << 20, -1] {
        let mut bytes: &[u8] = &len.to_be_bytes();
        let err = read_frame(&mut bytes).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{len}");
    }
    assert_eq!(
        Mode::parse("Zxid: 0x0\nMode: follower\nNode count: 5\n"),
        Some(Mode::Follower)
    );
    assert_eq!(
        Mode::parse("This ZooKeeper instance is not currently serving requests\n"),
        None
    );
    let noisy = "Connecting to 127.0.0.1:1\n\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n[a, b]\n";
    assert_eq!(answer(noisy), "[a, b]");
}

#[test]
fn shared_server_answers_four_letter_words_and_zkcli() {
    let Some(zk) = zookeeper::shared() else {
        return;
    };
    let again = zookeeper::shared().expect("second call");
    assert!(
        std::ptr::eq(&*zk, &*again),
        "one shared server per test binary"
    );
    eprintln!(
        "shared server at {} ready after {:?}",
        zk.connect_string(),
        zk.ready_after()
    );
    let srvr = zk.four_letter("srvr").unwrap();
    assert_eq!(Mode::parse(&srvr), Some(Mode::Standalone), "{srvr}");
    assert_eq!(zk.mode(), Some(Mode::Standalone));
    assert!(srvr.starts_with("Zookeeper version: 3.8."), "{srvr}");
    let mntr = four_letter(zk.addr(), "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    assert_eq!(zk.four_letter("ruok").unwrap(), "imok");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", zk.pid().unwrap())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"),
        "{cmdline}"
    );
    let cfg = std::fs::read_to_string(zk.dir().join("zoo.cfg")).unwrap();
    for line in [
        "maxClientCnxns=0",
        "maxSessionTimeout=60000",
        "4lw.commands.whitelist=*",
    ] {
        assert!(cfg.lines().any(|l| l == line), "{line} in {cfg}");
    }

    let base = format!("/{}", unique("cli"));
    let child = format!("{base}/a");
    let mut calls = Vec::new();
    let mut timed = |what: &str, call: &mut dyn FnMut()| {
        let t = Instant::now();
        call();
        calls.push((what.to_owned(), t.elapsed()));
    };
    timed("create", &mut || zk.create(&base, "x"));
    timed("create", &mut || zk.create(&child, r#"{"a b": -1}"#));
    timed("ls", &mut || assert_eq!(zk.ls(&base), ["a"]));
    timed("get", &mut || {
        assert_eq!(zk.get(&child).as_deref(), Some(r#"{"a b": -1}"#))
    });
    timed("exists", &mut || assert!(zk.exists(&child)));
    let exists = zk.try_zkcli(&["create", &child, "again"]);
    assert!(
        exists
            .as_ref()
            .is_err_and(|e| e.contains("Node already exists")),
        "{exists:?}"
    );
    timed("delete", &mut || zk.delete(&child));
    timed("get", &mut || assert_eq!(zk.get(&child), None));
    timed("ls", &mut || assert!(zk.ls(&base).is_empty()));
    zk.delete_all(&base);
    assert!(!zk.exists(&base));
    let total: Duration = calls.iter().map(|c| c.1).sum();
    eprintln!(
        "zkCli calls: {calls:?}, mean {:?}",
        total / calls.len() as u32
    );
}

#[test]
fn own_server_stops_starts_kills_pauses_and_cleans_up() {
    let Some(mut zk) = Zk::new() else {
        return;
    };
    let (port, pid) = (zk.port(), zk.pid().unwrap());
    let mut raw = RawSession::connect(zk.addr()).unwrap();
    raw.create("/keep", b"1", PERSISTENT).unwrap();
    raw.close().unwrap();
    let get = |zk: &Zk, path: &str| match RawSession::connect(zk.addr()).unwrap().get(path, false) {
        Ok((data, _)) => Some(String::from_utf8(data).unwrap()),
        Err(WireError::Code(code::NO_NODE)) => None,
        Err(e) => panic!("get {path}: {e}"),
    };

    zk.stop();
    assert!(process_gone(pid) && zk.pid().is_none());
    assert!(zk.four_letter("srvr").is_err(), "stopped: nothing listens");
    assert_eq!(zk.mode(), None);
    let t = Instant::now();
    zk.start();
    eprintln!(
        "start took {:?} (ready after {:?})",
        t.elapsed(),
        zk.ready_after()
    );
    assert_eq!(zk.port(), port, "same client port");
    assert_eq!(get(&zk, "/keep").as_deref(), Some("1"));

    let pid = zk.pid().unwrap();
    zk.kill();
    assert!(process_gone(pid));
    assert!(zk.log_tail().contains("harness: SIGKILL"));
    zk.restart();
    assert_eq!(
        get(&zk, "/keep").as_deref(),
        Some("1"),
        "a crash loses nothing"
    );

    // Paused, the kernel still takes connections and nothing answers them.
    zk.pause();
    let frozen = four_letter_within(zk.addr(), "srvr", SILENCE);
    assert!(frozen.is_err(), "a paused server answered: {frozen:?}");
    zk.resume();
    assert_eq!(zk.mode(), Some(Mode::Standalone));

    zk.restart_fresh();
    assert_eq!(
        get(&zk, "/keep"),
        None,
        "a fresh data dir forgets every node"
    );

    let (pid, dir): (u32, PathBuf) = (zk.pid().unwrap(), zk.dir().to_owned());
    drop(zk);
    assert!(process_gone(pid), "ZooKeeper {pid} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn a_second_connection_expires_a_session_at_once() {
    let Some(zk) = zookeeper::shared() else {
        return;
    };
    let base = format!("/{}", unique("expiry"));
    let eph = format!("{base}/eph");
    let mut victim = RawSession::connect(zk.addr()).unwrap();
    assert_eq!(
        victim.timeout(),
        Duration::from_secs(10),
        "granted as asked"
    );
    victim.create(&base, b"", PERSISTENT).unwrap();
    assert_eq!(victim.create(&eph, b"10.0.0.1:80", EPHEMERAL).unwrap(), eph);
    let mut observer = RawSession::connect(zk.addr()).unwrap();
    let stat = observer.exists(&eph, true).unwrap().expect("the ephemeral");
    assert_eq!(stat.ephemeral_owner, victim.session_id());

    let (sid, password) = (victim.session_id(), victim.password().to_vec());
    let took = expire_session(zk.addr(), sid, &password).unwrap();
    assert!(
        victim.ends_within(BOUND),
        "the server closes the victim's connection"
    );
    let deleted = observer.next_event(BOUND).unwrap();
    assert_eq!(
        (deleted.kind, deleted.path.as_str()),
        (event::NODE_DELETED, eph.as_str())
    );
    assert_eq!(observer.exists(&eph, false).unwrap(), None);
    assert!(zk.ls(&base).is_empty(), "zkCli sees it gone too");
    let resumed = RawSession::resume(zk.addr(), sid, &password, victim.last_zxid());
    assert!(matches!(resumed, Err(WireError::Expired)), "{resumed:?}");
    let twice = expire_session(zk.addr(), sid, &password);
    assert!(matches!(twice, Err(WireError::Expired)), "{twice:?}");
    eprintln!("session {sid:#x} expired in {took:?}");

    // Dropping the connection alone ends nothing: the session resumes with its node.
    let mut dropped = RawSession::connect(zk.addr()).unwrap();
    let kept = dropped
        .create(&format!("{base}/kept-"), b"", EPHEMERAL_SEQUENTIAL)
        .unwrap();
    assert_eq!(
        kept,
        format!("{base}/kept-0000000001"),
        "the parent's second child"
    );
    let (sid, password, zxid) = (
        dropped.session_id(),
        dropped.password().to_vec(),
        dropped.last_zxid(),
    );
    drop(dropped);
    let mut again = RawSession::resume(zk.addr(), sid, &password, zxid).unwrap();
    assert_eq!(again.session_id(), sid);
    assert!(again.exists(&kept, false).unwrap().is_some());
    again.close().unwrap();
    assert_eq!(
        observer.exists(&kept, false).unwrap(),
        None,
        "closeSession ends it"
    );
}

#[test]
fn wire_errors_watches_and_digest_acls() {
    let Some(zk) = zookeeper::shared() else {
        return;
    };
    let base = format!("/{}", unique("wire"));
    let mut s = RawSession::connect(zk.addr()).unwrap();
    s.create(&base, b"", PERSISTENT).unwrap();
    let err = s.create(&base, b"", PERSISTENT).unwrap_err();
    assert_eq!(err.code(), Some(code::NODE_EXISTS));
    let err = s.get(&format!("{base}/none"), false).unwrap_err();
    assert_eq!(err.code(), Some(code::NO_NODE));

    // A child watch fires for a node zkCli creates.
    assert!(s.children(&base, true).unwrap().is_empty());
    zk.create(&format!("{base}/by-cli"), "10.0.0.2:80");
    let changed = s.next_event(BOUND).unwrap();
    assert_eq!(
        (changed.kind, changed.path.as_str()),
        (event::NODE_CHILDREN_CHANGED, base.as_str())
    );
    assert_eq!(s.children(&base, false).unwrap(), ["by-cli"]);
    let (data, stat) = s.get(&format!("{base}/by-cli"), false).unwrap();
    assert_eq!(
        (data.as_slice(), stat.ephemeral_owner),
        (&b"10.0.0.2:80"[..], 0)
    );
    assert_eq!(s.delete(&base).unwrap_err().code(), Some(code::NOT_EMPTY));
    assert!(s.next_event(SILENCE).is_err(), "a watch fires once");

    // Digest ACL: the id is user:base64(sha1("user:pass")).
    let secret = format!("{base}/secret");
    s.create(&secret, b"s3cret", PERSISTENT).unwrap();
    let id = zk.set_acl_digest(&secret, "user", "pass");
    assert_eq!(id, "user:smGaoVKd/cQkjm7b88GyorAUz20=");
    let mut anonymous = RawSession::connect(zk.addr()).unwrap();
    assert_eq!(
        anonymous.get(&secret, false).unwrap_err().code(),
        Some(code::NO_AUTH)
    );
    assert!(
        anonymous.exists(&secret, false).unwrap().is_some(),
        "exists ignores ACLs"
    );
    anonymous.add_auth("digest", b"user:wrong").unwrap();
    assert_eq!(
        anonymous.get(&secret, false).unwrap_err().code(),
        Some(code::NO_AUTH)
    );
    let mut user = RawSession::connect(zk.addr()).unwrap();
    user.add_auth("digest", b"user:pass").unwrap();
    assert_eq!(user.get(&secret, false).unwrap().0, b"s3cret");
    assert_eq!(zk.get_as(&secret, "user", "pass").as_deref(), Ok("s3cret"));
    let wrong = zk.get_as(&secret, "user", "nope");
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("Insufficient permission")),
        "{wrong:?}"
    );
}

#[test]
fn ensemble_forms_finds_its_leader_and_survives_the_leaders_death() {
    let Some(mut ensemble) = Ensemble::start() else {
        return;
    };
    eprintln!("ensemble formed after {:?}", ensemble.formed_after());
    let leader = ensemble.wait_leader();
    assert_eq!(ensemble.leader(), leader);
    let modes: Vec<Option<Mode>> = (0..3).map(|i| ensemble.mode(i)).collect();
    assert_eq!(
        modes.iter().filter(|m| **m == Some(Mode::Follower)).count(),
        2,
        "{modes:?}"
    );
    let connect = ensemble.connect_string();
    assert_eq!(connect.split(',').count(), 3);
    let myid = std::fs::read_to_string(ensemble.member(1).data_dir().join("myid")).unwrap();
    assert_eq!(myid.trim(), "2");

    let path = format!("/{}", unique("ensemble"));
    let follower = (leader + 1) % 3;
    let mut raw = RawSession::connect(ensemble.member(follower).addr()).unwrap();
    raw.create(&path, b"before", PERSISTENT).unwrap();
    assert_eq!(
        session_server(raw.session_id()),
        follower + 1,
        "the creating server's myid"
    );

    let t = Instant::now();
    ensemble.kill(leader);
    let new_leader = ensemble.wait_leader();
    let elected = t.elapsed();
    assert_ne!(new_leader, leader);
    let t = Instant::now();
    let child = format!("{path}/after");
    ensemble.live().create(&child, "2");
    eprintln!(
        "new leader {new_leader} serving {elected:?} after killing {leader}; zkCli write via the two took {:?}",
        t.elapsed()
    );
    for i in (0..3).filter(|&i| i != leader) {
        let addr = ensemble.member(i).addr();
        wait_until("the write on every survivor", || {
            RawSession::connect(addr)
                .unwrap()
                .get(&child, false)
                .is_ok()
        });
    }

    let t = Instant::now();
    ensemble.restart(leader);
    eprintln!("old leader rejoined after {:?}", t.elapsed());
    assert_eq!(ensemble.mode(leader), Some(Mode::Follower));
    let rejoined = ensemble.member(leader).addr();
    wait_until("the write on the rejoined server", || {
        RawSession::connect(rejoined)
            .unwrap()
            .get(&child, false)
            .is_ok()
    });

    // A paused follower: the two others still serve.
    let follower = (0..3)
        .find(|&i| ensemble.mode(i) == Some(Mode::Follower))
        .unwrap();
    ensemble.pause(follower);
    assert!(!ensemble.is_live(follower) && ensemble.mode(follower).is_none());
    assert_eq!(ensemble.live_connect_string().split(',').count(), 2);
    let serving = ensemble.wait_leader();
    assert_ne!(serving, follower);
    ensemble.resume(follower);
    ensemble.wait_leader();

    let pids: Vec<u32> = ensemble
        .members()
        .iter()
        .map(|m| m.pid().unwrap())
        .collect();
    let dirs: Vec<PathBuf> = ensemble.members().iter().map(|m| m.dir().into()).collect();
    let t = Instant::now();
    drop(ensemble);
    eprintln!("ensemble dropped in {:?}", t.elapsed());
    assert!(pids.iter().all(|&p| process_gone(p)), "{pids:?}");
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

/// The myid of the server that created a session: the top byte of its id.
fn session_server(session_id: i64) -> usize {
    (session_id as u64 >> 56) as usize
}

#[test]
fn curator_registers_and_queries_through_the_real_service_discovery() {
    let t = Instant::now();
    let Some(curator) = require_curator() else {
        return;
    };
    eprintln!(
        "Curator ready in {:?} (javac {:?})",
        t.elapsed(),
        curator.compiled_in()
    );
    let Some(zk) = zookeeper::shared() else {
        return;
    };
    let (connect, base) = (zk.connect_string(), format!("/{}", unique("curator")));
    let (a1, a2) = std::thread::scope(|scope| {
        let spawn = |id: &'static str, address, port, json| {
            let (connect, base) = (&connect, &base);
            std::thread::Builder::new()
                .name(format!("curator-register-{id}"))
                .spawn_scoped(scope, move || {
                    curator.register_json(connect, base, "web", id, address, port, json)
                })
                .unwrap()
        };
        let a1 = spawn("a1", "10.0.0.1", 8080, CuratorJson::Compat);
        let a2 = spawn("a2", "10.0.0.2", 8081, CuratorJson::Disabled);
        (a1.join().unwrap(), a2.join().unwrap())
    });
    eprintln!(
        "registered through Curator in {:?} and {:?}",
        a1.registered_after(),
        a2.registered_after()
    );

    let json = zk.get(&format!("{base}/web/a1")).expect("Curator's node");
    eprintln!("Curator wrote {json}");
    assert!(
        json.starts_with(r#"{"name":"web","id":"a1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":null,"registrationTimeUTC":"#),
        "{json}"
    );
    assert!(
        json.ends_with(r#","serviceType":"DYNAMIC","uriSpec":null}"#),
        "no enabled field: {json}"
    );
    let disabled = zk.get(&format!("{base}/web/a2")).expect("Curator's node");
    assert!(
        disabled.ends_with(r#","uriSpec":null,"enabled":false}"#),
        "{disabled}"
    );
    let mut raw = RawSession::connect(zk.addr()).unwrap();
    let stat = raw
        .exists(&format!("{base}/web/a1"), false)
        .unwrap()
        .unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "an ephemeral node");

    // A node written by hand with the fewest fields Curator needs, as waypost may.
    let minimal = r#"{"name":"web","id":"w1","address":"127.0.0.1","port":9000}"#;
    raw.create(&format!("{base}/web/w1"), minimal.as_bytes(), EPHEMERAL)
        .unwrap();
    let instance = |id: &str, address: &str, port, enabled| CuratorInstance {
        id: id.into(),
        address: address.into(),
        port,
        enabled,
    };
    let t = Instant::now();
    let all = curator.query(&connect, &base, "web");
    eprintln!("Curator query took {:?}", t.elapsed());
    assert_eq!(
        all,
        [
            instance("a1", "10.0.0.1", 8080, true),
            instance("a2", "10.0.0.2", 8081, false),
            instance("w1", "127.0.0.1", 9000, true),
        ]
    );
    // Go kit's plain data beside Curator's: the query fails, a provider skips it.
    raw.create(&format!("{base}/web/plain"), b"10.0.0.9:80", EPHEMERAL)
        .unwrap();
    let failed = curator.try_query(&connect, &base, "web");
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.contains("JsonParseException")),
        "{failed:?}"
    );
    assert_eq!(
        curator.provider(&connect, &base, "web"),
        [
            instance("a1", "10.0.0.1", 8080, true),
            instance("w1", "127.0.0.1", 9000, true)
        ],
        "a provider leaves out disabled instances and what it cannot read"
    );

    let t = Instant::now();
    drop(a1);
    eprintln!("Curator registration ended in {:?}", t.elapsed());
    assert_eq!(
        raw.exists(&format!("{base}/web/a1"), false).unwrap(),
        None,
        "gone at once"
    );
    drop(a2);
    assert_eq!(
        raw.children(&format!("{base}/web"), false).unwrap().len(),
        2
    );
}

/// Helper of the next test, which runs this binary again on it alone: leaks a
/// [`ProcessDir`] and prints its path.
#[test]
fn leaks_a_process_dir_when_asked() {
    if std::env::var_os("WAYPOST_TEST_LEAK_DIR").is_none() {
        return;
    }
    let dir = ProcessDir::new("leak");
    println!("leaked {}", dir.path().display());
    std::mem::forget(dir);
}

#[test]
fn a_process_dir_goes_with_its_process() {
    let dir = ProcessDir::new("dropped");
    let path = dir.path().to_owned();
    assert!(path.is_dir());
    drop(dir);
    assert!(!path.exists());

    let out = support::bin::run_self(
        "leaks_a_process_dir_when_asked",
        &[("WAYPOST_TEST_LEAK_DIR", "1")],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let leaked = stdout
        .lines()
        .find_map(|l| l.strip_prefix("leaked "))
        .unwrap_or_else(|| panic!("no path in {stdout}"));
    wait_until("the janitor to remove the dir after its process", || {
        !std::path::Path::new(leaked).exists()
    });
}

#[test]
fn missing_java_or_jars_fail_in_ci_and_skip_loudly_otherwise() {
    for (test, var, name) in [
        (
            "shared_server_answers_four_letter_words_and_zkcli",
            "WAYPOST_ZOOKEEPER_JAR",
            "zookeeper",
        ),
        (
            "shared_server_answers_four_letter_words_and_zkcli",
            "WAYPOST_JAVA_BIN",
            "java",
        ),
        (
            "curator_registers_and_queries_through_the_real_service_discovery",
            "WAYPOST_CURATOR_JAR",
            "curator",
        ),
    ] {
        support::bin::assert_missing_fails_in_ci_and_skips_locally(test, var, name);
    }
}
