//! Tests of the etcd harness (`tests/support/etcd.rs` on the launcher in `server.rs`)
//! and of the TCP proxy (`tests/support/tcp_proxy.rs`) against a real etcd: readiness,
//! the gateway, restarts, TLS, auth, a three-member cluster losing its leader or its
//! quorum, and a proxy that breaks a watch. The harness uses no part of waypost, so
//! this file is built with every feature set.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::etcd::{
    self, Cluster, Etcd, RawWatch, b64, b64_decode, json_field, json_fields, prefix_end, watch_body,
};
use support::http::http_request_timeout;
use support::server::process_gone;
use support::tcp_proxy::TcpProxy;
use support::{BOUND, counting_threads, starting_threads, threads_named, unique, wait_until};

/// A wait that must come up empty: short, since it always runs to its end.
const SILENCE: Duration = Duration::from_millis(300);

/// `curl -sS ARGS`: whether it succeeded, and its stdout and stderr; `None` when curl
/// is not installed.
fn curl(args: &[&str], files: &[(&str, &Path)]) -> Option<(bool, String)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "5", "--fail-with-body"]);
    for (flag, file) in files {
        cmd.arg(flag).arg(file);
    }
    match cmd.args(args).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            Some((out.status.success(), text.into_owned()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("curl: {e}"),
    }
}

fn put_body(key: &str, value: &str) -> String {
    format!(r#"{{"key":"{}","value":"{}"}}"#, b64(key), b64(value))
}

fn range_body(key: &str) -> String {
    format!(r#"{{"key":"{}"}}"#, b64(key))
}

#[test]
fn wire_helpers_follow_etcds_conventions() {
    assert_eq!(b64("foo-v3"), "Zm9vLXYz");
    assert_eq!(b64("bar"), "YmFy");
    assert_eq!(b64("/svc/"), "L3N2Yy8=");
    assert_eq!(b64(""), "");
    assert_eq!(b64([0u8]), "AA==");
    for text in ["", "a", "ab", "abc", "/svc/x-1", "\u{e9}t\u{e9}"] {
        assert_eq!(b64_decode(&b64(text)).unwrap(), text.as_bytes());
    }
    assert_eq!(b64_decode("not base64!"), None);
    assert_eq!(prefix_end(b"/svc/"), b"/svc0");
    assert_eq!(prefix_end(b"a\xff\xff"), b"b");
    assert_eq!(prefix_end(b""), [0]);
    let body = watch_body("/svc/");
    assert_eq!(
        body,
        r#"{"create_request":{"key":"L3N2Yy8=","range_end":"L3N2YzA="}}"#
    );
    let reply = r#"{"header":{"member_id":"7","revision":"12"},"kvs":[{"key":"YQ==","create_revision":"3","value":"MQ=="},{"key":"Yg==","value":"Mg=="}],"more":true}"#;
    assert_eq!(json_field(reply, "revision").as_deref(), Some("12"));
    assert_eq!(json_fields(reply, "value"), ["MQ==", "Mg=="]);
    assert_eq!(json_field(reply, "more").as_deref(), Some("true"));
    assert_eq!(json_field(reply, "kvs"), None, "arrays are not values");
    assert_eq!(json_field(reply, "count"), None);
}

#[test]
fn shared_member_is_ready_and_answers_through_the_gateway() {
    let Some(member) = etcd::shared() else {
        return;
    };
    let again = etcd::shared().expect("second call");
    assert!(
        std::ptr::eq(&*member, &*again),
        "one shared member per test binary"
    );
    assert!(member.is_healthy());
    assert_eq!(member.client_url(), format!("http://{}", member.endpoint()));
    let key = format!("/{}/k", unique("shared"));
    let put = member.post("/v3/kv/put", &put_body(&key, "v1")).unwrap();
    assert_eq!(put.status, 200, "{}", put.body);
    let rev: i64 = json_field(&put.body, "revision").unwrap().parse().unwrap();
    let range = member.post("/v3/kv/range", &range_body(&key)).unwrap();
    assert_eq!(range.status, 200, "{}", range.body);
    assert_eq!(json_field(&range.body, "value"), Some(b64("v1")));
    assert_eq!(
        json_field(&range.body, "mod_revision"),
        Some(rev.to_string())
    );
    // etcdctl sees what the gateway wrote, and the other way round.
    assert_eq!(member.get(&key).as_deref(), Some("v1"));
    let rev2 = member.put(&key, "v2");
    assert!(rev2 > rev && member.revision() >= rev2);
    let range = member.post("/v3/kv/range", &range_body(&key)).unwrap();
    assert_eq!(json_field(&range.body, "value"), Some(b64("v2")));
    assert_eq!(member.del(&key), 1);
    assert_eq!(member.get(&key), None);
    eprintln!(
        "shared member at {} ready after {:?}",
        member.client_url(),
        member.ready_after()
    );
}

#[test]
fn lease_and_compaction_helpers_work_on_the_shared_member() {
    let Some(member) = etcd::shared() else {
        return;
    };
    let id = member.lease_grant(30);
    assert!(
        member.leases().contains(&id),
        "{id} in {:?}",
        member.leases()
    );
    let key = format!("/{}/leased", unique("lease"));
    let body = format!(
        r#"{{"key":"{}","value":"{}","lease":"{id}"}}"#,
        b64(&key),
        b64("x")
    );
    assert_eq!(member.post("/v3/kv/put", &body).unwrap().status, 200);
    member.lease_revoke(id);
    assert!(!member.leases().contains(&id));
    assert_eq!(member.get(&key), None, "revoking deletes the lease's keys");

    // A watch from before a compaction is canceled with the compact revision.
    let prefix = format!("/{}/", unique("compact"));
    let first = member.put(&format!("{prefix}a"), "1");
    let last = member.put(&format!("{prefix}b"), "2");
    member.compact(last);
    let body = format!(
        r#"{{"create_request":{{"key":"{}","range_end":"{}","start_revision":"{first}"}}}}"#,
        b64(&prefix),
        b64(prefix_end(prefix.as_bytes()))
    );
    let mut watch = RawWatch::open(member.addr(), "/v3/watch", &[], &body, BOUND).unwrap();
    assert_eq!(watch.status(), 200);
    watch.expect(r#""created":true"#, BOUND);
    let canceled = watch.expect(r#""canceled":true"#, BOUND);
    assert_eq!(
        json_field(&canceled, "compact_revision"),
        Some(last.to_string())
    );
}

#[test]
fn restart_and_kill_keep_data_pause_freezes_restart_fresh_loses_it() {
    let Some(mut member) = Etcd::new() else {
        return;
    };
    let (url, pid) = (member.client_url(), member.pid().unwrap());
    member.put("/keep/me", "1");
    let lease = member.lease_grant(60);
    let t = Instant::now();
    member.restart();
    eprintln!(
        "restart took {:?} (ready after {:?})",
        t.elapsed(),
        member.ready_after()
    );
    assert!(process_gone(pid));
    assert_eq!(member.client_url(), url, "same client port");
    assert_eq!(member.get("/keep/me").as_deref(), Some("1"));
    assert!(member.leases().contains(&lease));

    let pid = member.pid().unwrap();
    member.kill();
    assert!(process_gone(pid) && member.pid().is_none());
    assert!(!member.is_healthy());
    assert!(member.log_tail().contains("harness: SIGKILL"));
    member.start();
    assert_eq!(
        member.get("/keep/me").as_deref(),
        Some("1"),
        "a crash loses nothing"
    );

    // Paused, the kernel still takes connections and nothing answers them.
    member.pause();
    let frozen = http_request_timeout(member.client_port(), "GET", "/health", &[], "", SILENCE);
    assert!(frozen.is_err(), "a paused member answered: {frozen:?}");
    member.resume();
    assert!(member.is_healthy());

    let t = Instant::now();
    member.restart_fresh();
    eprintln!("restart_fresh took {:?}", t.elapsed());
    assert_eq!(member.client_url(), url);
    assert_eq!(
        member.get("/keep/me"),
        None,
        "a fresh data dir forgets keys"
    );
    assert!(member.leases().is_empty(), "and leases");

    let (pid, dir): (u32, PathBuf) = (member.pid().unwrap(), member.dir().to_owned());
    drop(member);
    assert!(process_gone(pid), "etcd {pid} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn tls_member_serves_https_with_its_ca() {
    let Some(member) = Etcd::builder().tls().spawn() else {
        return;
    };
    assert!(member.client_url().starts_with("https://127.0.0.1:"));
    for file in [
        member.ca_path(),
        member.other_ca_path(),
        member.server_cert_path(),
        member.server_key_path(),
        member.client_cert_path(),
        member.client_key_path(),
    ] {
        assert!(file.is_file(), "{}", file.display());
    }
    // etcdctl goes with --cacert.
    member.put("/tls/k", "v");
    assert_eq!(member.get("/tls/k").as_deref(), Some("v"));
    let url = format!("{}/v3/kv/range", member.client_url());
    let body = range_body("/tls/k");
    let (ca, other) = (member.ca_path(), member.other_ca_path());
    let Some((ok, out)) = curl(&["-X", "POST", &url, "-d", &body], &[("--cacert", &ca)]) else {
        eprintln!("curl not installed: https checked with etcdctl only");
        return;
    };
    assert!(ok, "gateway over https with the CA: {out}");
    assert!(out.contains(&b64("v")), "{out}");
    let localhost = url.replace("127.0.0.1", "localhost");
    let by_name = curl(
        &["-X", "POST", &localhost, "-d", &body],
        &[("--cacert", &ca)],
    );
    assert!(by_name.unwrap().0, "the certificate names localhost too");
    let (ok, out) = curl(&["-X", "POST", &url, "-d", &body], &[("--cacert", &other)]).unwrap();
    assert!(!ok, "an unrelated CA must not verify: {out}");
}

#[test]
fn tls_client_auth_member_wants_a_client_certificate() {
    let Some(member) = Etcd::builder().tls_client_auth().spawn() else {
        return;
    };
    // etcdctl goes with the client certificate.
    member.put("/mtls/k", "v");
    assert_eq!(member.get("/mtls/k").as_deref(), Some("v"));
    let url = format!("{}/v3/kv/range", member.client_url());
    let body = range_body("/mtls/k");
    let (ca, cert, key) = (
        member.ca_path(),
        member.client_cert_path(),
        member.client_key_path(),
    );
    let files = [("--cacert", &*ca), ("--cert", &*cert), ("--key", &*key)];
    let Some((ok, out)) = curl(&["-X", "POST", &url, "-d", &body], &files) else {
        eprintln!("curl not installed: client certificates checked with etcdctl only");
        return;
    };
    // The gateway itself reaches etcd with the server certificate as a client one.
    assert!(ok, "gateway with a client certificate: {out}");
    assert!(out.contains(&b64("v")), "{out}");
    let (ok, out) = curl(&["-X", "POST", &url, "-d", &body], &files[..1]).unwrap();
    assert!(!ok, "no client certificate: refused, got {out}");
}

#[test]
fn auth_gives_a_token_for_the_right_password_only() {
    let Some(member) = Etcd::builder().auth_token_ttl(3).spawn() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", member.pid().unwrap())).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("--auth-token-ttl\u{0}3\u{0}"),
        "the TTL flag is passed"
    );
    let auth = member.enable_auth("/app/");
    assert_eq!(
        (auth.user.as_str(), auth.password.as_str()),
        ("app", "apppw")
    );
    assert_eq!(auth.root_password, "rootpw");

    let right = member.authenticate(&auth.user, &auth.password).unwrap();
    assert_eq!(right.status, 200, "{}", right.body);
    let token = json_field(&right.body, "token").expect("a token");
    let wrong = member.authenticate(&auth.user, "nope").unwrap();
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert_eq!(json_field(&wrong.body, "code").as_deref(), Some("3"));
    assert!(
        wrong.body.contains("authentication failed"),
        "{}",
        wrong.body
    );

    let with_token = [("Authorization", token.as_str())];
    let inside = member.post_with("/v3/kv/put", &with_token, &put_body("/app/x", "1"));
    assert_eq!(inside.unwrap().status, 200);
    let outside = member
        .post_with("/v3/kv/range", &with_token, &range_body("/other"))
        .unwrap();
    assert_eq!(outside.status, 403, "{}", outside.body);
    assert_eq!(json_field(&outside.body, "code").as_deref(), Some("7"));
    let anonymous = member.post("/v3/kv/range", &range_body("/app/x")).unwrap();
    assert_eq!(anonymous.status, 400, "{}", anonymous.body);
    assert!(anonymous.body.contains("user name is empty"));
    // The harness's own calls go as root.
    member.put("/other", "2");
    assert_eq!(member.get("/app/x").as_deref(), Some("1"));
    assert!(member.is_healthy(), "/health needs no token");
}

#[test]
fn cluster_forms_finds_its_leader_and_survives_the_leaders_death() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    eprintln!("cluster formed after {:?}", cluster.formed_after());
    let urls = cluster.client_urls();
    assert_eq!(urls.len(), 3);
    assert!(cluster.members().iter().all(Etcd::is_healthy));
    let ids: Vec<&str> = (0..3).map(|i| cluster.member_id(i)).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    let members = cluster.etcdctl(&["member", "list"]);
    assert!(urls.iter().all(|u| members.contains(u)), "{members}");
    assert!(cluster.token().starts_with("waypost-etcd-"));

    let leader = cluster.wait_leader();
    assert_eq!(cluster.leader(), leader);
    cluster.member(leader).put("/c/before", "1");

    // A paused follower: the two others still have a leader. Resumed, it may call an
    // election at once (its timers ran out while it was stopped), so the leader may
    // change: any leader all three agree on will do.
    let follower = (leader + 1) % 3;
    cluster.pause(follower);
    assert!(!cluster.is_live(follower));
    assert!(cluster.statuses()[follower].is_none(), "paused: not asked");
    assert_ne!(cluster.wait_leader(), follower);
    cluster.resume(follower);
    assert!(cluster.is_live(follower));
    let leader = cluster.wait_leader();
    assert!(cluster.members().iter().all(Etcd::is_healthy));

    let t = Instant::now();
    cluster.kill(leader);
    let new_leader = cluster.wait_leader();
    eprintln!(
        "new leader {new_leader} {:?} after killing {leader}",
        t.elapsed()
    );
    assert_ne!(new_leader, leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &survivors {
        assert!(cluster.member(i).is_healthy(), "member {i}");
    }
    cluster.member(new_leader).put("/c/after", "2");

    let t = Instant::now();
    cluster.restart(leader);
    eprintln!("old leader rejoined after {:?}", t.elapsed());
    assert!(cluster.member(leader).is_healthy());
    assert_eq!(cluster.member(leader).get("/c/after").as_deref(), Some("2"));

    let pids: Vec<u32> = cluster.members().iter().map(|m| m.pid().unwrap()).collect();
    let dirs: Vec<PathBuf> = cluster.members().iter().map(|m| m.dir().into()).collect();
    let t = Instant::now();
    drop(cluster);
    eprintln!("cluster dropped in {:?}", t.elapsed());
    assert!(pids.iter().all(|&p| process_gone(p)), "{pids:?}");
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

/// The fact item of the harness's brief, kept as a test: a watch opened with
/// `Grpc-Metadata-hasleader: true` on a member that loses its quorum ends with one
/// `no leader` error; one without the header stays open, silent, and goes on after.
#[test]
fn a_hasleader_watch_ends_when_its_member_loses_the_quorum() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let leader = cluster.wait_leader();
    let a = (leader + 1) % 3; // a follower
    let others: Vec<usize> = (0..3).filter(|&i| i != a).collect();
    let member = cluster.member(a);
    let prefix = format!("/{}/", unique("hasleader"));
    let hasleader = [("Grpc-Metadata-hasleader", "true")];
    let body = watch_body(&prefix);
    let mut with = RawWatch::open(member.addr(), "/v3/watch", &hasleader, &body, BOUND).unwrap();
    let mut without = RawWatch::open(member.addr(), "/v3/watch", &[], &body, BOUND).unwrap();
    with.expect(r#""created":true"#, BOUND);
    without.expect(r#""created":true"#, BOUND);
    let first = format!("{prefix}first");
    assert_eq!(
        member
            .post("/v3/kv/put", &put_body(&first, "1"))
            .unwrap()
            .status,
        200
    );
    with.expect(&b64(&first), BOUND);
    without.expect(&b64(&first), BOUND);

    let t = Instant::now();
    for &i in &others {
        cluster.pause(i);
    }
    let error = with.expect("no leader", BOUND);
    let took = t.elapsed();
    assert_eq!(
        error,
        r#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
    );
    assert!(matches!(with.next(BOUND), Ok(None)), "then a clean end");
    let silent = without.next(SILENCE);
    assert!(
        silent
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "without the header: still open and silent, got {silent:?}"
    );

    let t2 = Instant::now();
    let mut fresh = RawWatch::open(member.addr(), "/v3/watch", &hasleader, &body, BOUND).unwrap();
    assert_eq!(fresh.status(), 503);
    assert_eq!(fresh.expect("no leader", BOUND), error);
    let refused_in = t2.elapsed();
    let range = format!(
        r#"{{"key":"{}","range_end":"{}","serializable":true}}"#,
        b64(&prefix),
        b64(prefix_end(prefix.as_bytes()))
    );
    let serializable = member.post("/v3/kv/range", &range).unwrap();
    assert_eq!(serializable.status, 200, "{}", serializable.body);
    assert_eq!(json_field(&serializable.body, "value"), Some(b64("1")));
    let with_header = member
        .post_with("/v3/kv/range", &hasleader, &range)
        .unwrap();
    assert_eq!(with_header.status, 503, "the header fails reads too");
    assert_eq!(json_field(&with_header.body, "code").as_deref(), Some("14"));
    assert!(!member.is_healthy());

    for &i in &others {
        cluster.resume(i);
    }
    cluster.wait_leader();
    let second = format!("{prefix}second");
    assert_eq!(
        member
            .post("/v3/kv/put", &put_body(&second, "2"))
            .unwrap()
            .status,
        200
    );
    without.expect(&b64(&second), BOUND);
    eprintln!(
        "hasleader watch ended {took:?} after the quorum went; a new one was refused in {refused_in:?}"
    );
}

/// An echo server on a free port, stopped and joined on drop.
struct Echo {
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Echo {
    fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::<std::sync::atomic::AtomicBool>::default();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || {
                std::thread::scope(|scope| {
                    for conn in listener.incoming() {
                        if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        let Ok(mut conn) = conn else { continue };
                        scope.spawn(move || {
                            let mut reader = conn.try_clone().unwrap();
                            let _ = std::io::copy(&mut reader, &mut conn);
                        });
                    }
                });
            })
            .unwrap();
        Echo {
            addr,
            thread: Some(thread),
            stop,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        let _ = self.thread.take().unwrap().join();
    }
}

/// Writes `text` and reads it back within `bound`.
fn echo(conn: &mut TcpStream, text: &str, bound: Duration) -> std::io::Result<String> {
    conn.set_read_timeout(Some(bound))?;
    conn.write_all(text.as_bytes())?;
    let mut back = vec![0; text.len()];
    conn.read_exact(&mut back)?;
    Ok(String::from_utf8(back).unwrap())
}

/// Reads until the peer closes; true for an end (EOF or reset), false on a timeout.
fn ends_within(conn: &mut TcpStream, bound: Duration) -> bool {
    conn.set_read_timeout(Some(bound)).unwrap();
    let mut buf = [0; 64];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn proxy_forwards_cuts_pauses_resumes_and_joins_its_threads() {
    let _count = counting_threads();
    let echo_server = Echo::start();
    let proxy = TcpProxy::start(echo_server.addr);
    assert_eq!(proxy.upstream(), echo_server.addr);
    let mut a = TcpStream::connect(proxy.addr()).unwrap();
    assert_eq!(echo(&mut a, "one", BOUND).unwrap(), "one");
    assert_eq!(proxy.open(), 1);

    proxy.cut();
    assert!(ends_within(&mut a, BOUND), "cut ends the connection");
    let mut b = TcpStream::connect(proxy.addr()).unwrap();
    assert_eq!(
        echo(&mut b, "two", BOUND).unwrap(),
        "two",
        "and forwards new ones"
    );

    proxy.pause();
    assert!(proxy.is_paused());
    assert!(ends_within(&mut b, BOUND), "pause ends current connections");
    let mut c = TcpStream::connect(proxy.addr()).expect("the kernel still accepts");
    wait_until("the proxy to hold the new connection", || proxy.held() == 1);
    let held = echo(&mut c, "three", SILENCE);
    assert!(held.is_err(), "nothing answers while paused: {held:?}");
    proxy.resume();
    let mut back = vec![0; "three".len()];
    c.set_read_timeout(Some(BOUND)).unwrap();
    c.read_exact(&mut back).unwrap();
    assert_eq!(
        back, b"three",
        "what was sent while held goes through on resume"
    );
    assert_eq!(echo(&mut c, "four", BOUND).unwrap(), "four");
    assert_eq!(proxy.accepted(), 3);
    assert!(
        threads_named("tcp-proxy") >= 2,
        "acceptor and connection threads"
    );

    drop(proxy);
    assert!(ends_within(&mut c, BOUND), "drop ends every connection");
    // Joined threads: a joined thread's task leaves /proc a moment after the join
    // returns (seen under load), so the count is waited for, bounded.
    wait_until("the proxy's joined threads to leave /proc", || {
        threads_named("tcp-proxy") == 0
    });
}

#[test]
fn proxy_breaks_an_etcd_watch_until_resumed() {
    let Some(member) = etcd::shared() else {
        return;
    };
    let _threads = starting_threads();
    let proxy = TcpProxy::start(member.addr());
    let prefix = format!("/{}/", unique("proxy"));
    let body = watch_body(&prefix);
    let mut watch = RawWatch::open(proxy.addr(), "/v3/watch", &[], &body, BOUND).unwrap();
    watch.expect(r#""created":true"#, BOUND);
    member.put(&format!("{prefix}a"), "1");
    watch.expect(&b64(format!("{prefix}a")), BOUND);

    proxy.pause();
    let broken = watch.next(BOUND);
    assert!(
        broken
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::UnexpectedEof),
        "a paused proxy cuts the stream mid-body: {broken:?}"
    );
    // A new watch is held: its request goes nowhere until resume.
    let mut raw = TcpStream::connect(proxy.addr()).unwrap();
    let request = format!(
        "POST /v3/watch HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{body}",
        proxy.addr(),
        body.len()
    );
    raw.write_all(request.as_bytes()).unwrap();
    raw.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = [0; 512];
    let held = raw.read(&mut buf);
    assert!(held.is_err(), "no answer while paused: {held:?}");
    assert_eq!(proxy.held(), 1);

    proxy.resume();
    raw.set_read_timeout(Some(BOUND)).unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + BOUND;
    while !seen.contains(r#""created":true"#) {
        assert!(Instant::now() < deadline, "no created after resume: {seen}");
        let n = raw.read(&mut buf).unwrap();
        assert!(n > 0, "ended after resume: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
}

#[test]
fn missing_binaries_fail_in_ci_and_skip_loudly_otherwise() {
    let test = "shared_member_is_ready_and_answers_through_the_gateway";
    for (var, name) in [
        ("WAYPOST_ETCD_BIN", "etcd"),
        ("WAYPOST_ETCDCTL_BIN", "etcdctl"),
    ] {
        if name == "etcdctl" && etcd::require_etcd().is_none() {
            continue; // etcd itself is missing: the first round said so
        }
        support::bin::assert_missing_fails_in_ci_and_skips_locally(test, var, name);
    }
}
