//! Tests of the test-server launcher (`tests/support/server.rs`) and the Consul harness
//! on it (`tests/support/consul.rs`) against a real agent: ports, readiness, ACLs, TLS,
//! restarts, pause and resume, and that nothing outlives a test. Built with the
//! `consul` feature only, as the tests that use the harness are.
#![cfg(feature = "consul")]

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::consul::{self, ConsulAgent};
use support::http::http_request_timeout;
use support::server::{process_gone, process_paused};
use support::wait_until;

/// Waits (bounded) until the agent's process is gone or a zombie.
fn wait_gone(pid: u32) {
    wait_until(&format!("consul {pid} to exit"), || process_gone(pid));
}

#[test]
fn shared_agent_is_ready_and_answers() {
    let Some(agent) = consul::shared() else {
        return;
    };
    let again = consul::shared().expect("second call");
    assert!(
        std::ptr::eq(&*agent, &*again),
        "one shared agent per test binary"
    );
    let leader = agent.get("/v1/status/leader").expect("leader");
    assert_eq!(leader.status, 200);
    assert!(
        leader.body.trim().len() > 2,
        "leader known: {:?}",
        leader.body
    );
    let me = agent.get("/v1/agent/self").expect("agent/self");
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(me.body.contains("\"Config\""), "{}", me.body);
    eprintln!(
        "shared agent at {} ready after {:?}",
        agent.http_base(),
        agent.ready_after()
    );
}

#[test]
fn two_agents_at_once_get_their_own_ports() {
    if consul::require_consul().is_none() {
        return;
    }
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| ConsulAgent::new().expect("agent a"));
        let b = s.spawn(|| ConsulAgent::new().expect("agent b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.http_port(), b.http_port());
    assert_ne!(a.dir(), b.dir());
    for agent in [&a, &b] {
        assert_eq!(agent.get("/v1/agent/self").unwrap().status, 200);
    }
    eprintln!(
        "parallel starts ready after {:?} and {:?}",
        a.ready_after(),
        b.ready_after()
    );
}

#[test]
fn acl_agent_wants_the_master_token() {
    let Some(agent) = ConsulAgent::builder().acl().spawn() else {
        return;
    };
    let token = agent.master_token();
    assert_eq!(token.len(), 36, "uuid-shaped: {token}");
    let anonymous = agent.get("/v1/agent/self").unwrap();
    assert_eq!(anonymous.status, 403, "{}", anonymous.body);
    let master = agent
        .request("GET", "/v1/agent/self", Some(token), "")
        .unwrap();
    assert_eq!(master.status, 200, "{}", master.body);
    let wrong = agent
        .request("GET", "/v1/agent/self", Some("not-a-token"), "")
        .unwrap();
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    eprintln!("acl agent ready after {:?}", agent.ready_after());
}

/// Whether `curl` fetched `url` with these `(flag, file)` options; `None` when curl is
/// not installed.
fn curl(url: &str, files: &[(&str, &Path)]) -> Option<bool> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "--max-time", "5", "--fail"]);
    for (flag, file) in files {
        cmd.arg(flag).arg(file);
    }
    match cmd.arg(url).output() {
        Ok(out) => Some(out.status.success()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("curl: {e}"),
    }
}

fn https_port_accepts(agent: &ConsulAgent) {
    let base = agent.https_base();
    let addr = base.trim_start_matches("https://");
    TcpStream::connect(addr).unwrap_or_else(|e| panic!("https port {addr}: {e}"));
    for file in [agent.ca_pem_path(), agent.other_ca_pem_path()] {
        assert!(file.is_file(), "{}", file.display());
    }
    assert_ne!(
        std::fs::read(agent.ca_pem_path()).unwrap(),
        std::fs::read(agent.other_ca_pem_path()).unwrap()
    );
}

#[test]
fn tls_agent_serves_https_with_its_ca() {
    let Some(agent) = ConsulAgent::builder().tls().spawn() else {
        return;
    };
    https_port_accepts(&agent);
    assert_eq!(
        agent.get("/v1/agent/self").unwrap().status,
        200,
        "plain http stays on"
    );
    let url = format!("{}/v1/status/leader", agent.https_base());
    let (ca, other) = (agent.ca_pem_path(), agent.other_ca_pem_path());
    let Some(ok) = curl(&url, &[("--cacert", &ca)]) else {
        eprintln!("curl not installed: https checked for TCP only");
        return;
    };
    assert!(ok, "https with the agent's CA\n{}", agent.log_tail());
    assert_eq!(
        curl(&url, &[("--cacert", &other)]),
        Some(false),
        "another CA must not verify"
    );
}

#[test]
fn tls_agent_can_require_client_certificates() {
    let Some(agent) = ConsulAgent::builder().tls_verify_clients().spawn() else {
        return;
    };
    https_port_accepts(&agent);
    let (cert, key) = (agent.client_cert_path(), agent.client_key_path());
    assert!(cert.is_file() && key.is_file());
    assert_eq!(
        agent.get("/v1/agent/self").unwrap().status,
        200,
        "plain http stays on"
    );
    let url = format!("{}/v1/status/leader", agent.https_base());
    let ca = agent.ca_pem_path();
    let with_cert = curl(
        &url,
        &[("--cacert", &ca), ("--cert", &cert), ("--key", &key)],
    );
    let Some(with_cert) = with_cert else {
        eprintln!("curl not installed: https checked for TCP only");
        return;
    };
    assert!(
        with_cert,
        "client certificate accepted\n{}",
        agent.log_tail()
    );
    assert_eq!(
        curl(&url, &[("--cacert", &ca)]),
        Some(false),
        "no client certificate: refused"
    );
}

fn register(agent: &ConsulAgent, id: &str) {
    let body = format!(r#"{{"ID":"{id}","Name":"harness","Address":"127.0.0.1","Port":4321}}"#);
    let reply = agent.put("/v1/agent/service/register", &body).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn has_service(agent: &ConsulAgent, id: &str) -> bool {
    let reply = agent.get("/v1/agent/services").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body.contains(&format!("\"{id}\""))
}

#[test]
fn restart_fresh_keeps_the_port_and_forgets_registrations() {
    let Some(mut agent) = ConsulAgent::new() else {
        return;
    };
    let (base, old_pid) = (agent.http_base(), agent.pid().unwrap());
    register(&agent, "harness-1");
    assert!(has_service(&agent, "harness-1"));
    let t = Instant::now();
    agent.restart_fresh();
    eprintln!(
        "restart_fresh took {:?} (ready after {:?})",
        t.elapsed(),
        agent.ready_after()
    );
    assert!(process_gone(old_pid));
    assert_eq!(agent.http_base(), base);
    assert!(!has_service(&agent, "harness-1"), "fresh data dir forgets");
}

#[test]
fn stop_and_start_keep_the_port_and_registrations() {
    let Some(mut agent) = ConsulAgent::new() else {
        return;
    };
    let port = agent.http_port();
    register(&agent, "harness-2");
    let pid = agent.pid().unwrap();
    let t = Instant::now();
    agent.stop();
    eprintln!("stop took {:?}", t.elapsed());
    assert!(process_gone(pid) && agent.pid().is_none());
    assert!(
        agent.get("/v1/agent/self").is_err(),
        "nothing listens while stopped"
    );
    assert!(agent.dir().join("data").is_dir(), "stop keeps the data dir");
    agent.start();
    assert_eq!(agent.http_port(), port);
    assert!(
        has_service(&agent, "harness-2"),
        "same data dir keeps registrations"
    );
    assert!(agent.log_tail().contains("harness: starting consul"));
}

#[test]
fn a_paused_agent_answers_nothing_until_resumed_and_stop_kills_it() {
    let Some(mut agent) = ConsulAgent::new() else {
        return;
    };
    let pid = agent.pid().unwrap();
    agent.pause();
    assert!(process_paused(pid));
    // The kernel still accepts the connection; nothing answers it.
    let frozen = http_request_timeout(
        agent.http_port(),
        "GET",
        "/v1/agent/self",
        &[],
        "",
        Duration::from_millis(200),
    );
    assert!(frozen.is_err(), "a paused agent answered: {frozen:?}");
    agent.resume();
    assert_eq!(agent.get("/v1/agent/self").unwrap().status, 200);

    // SIGTERM does not end a stopped process: stop() must not wait for it.
    agent.pause();
    let t = Instant::now();
    agent.stop();
    eprintln!("stop of a paused agent took {:?}", t.elapsed());
    assert!(process_gone(pid));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    agent.start();
    assert_eq!(agent.get("/v1/agent/self").unwrap().status, 200);
}

#[test]
fn a_port_taken_during_a_stop_fails_loudly_then_start_recovers() {
    let Some(mut agent) = ConsulAgent::new() else {
        return;
    };
    agent.stop();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", agent.http_port())).unwrap();
    let t = Instant::now();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| agent.start()));
    let message = *failed
        .expect_err("start must fail")
        .downcast::<String>()
        .unwrap();
    eprintln!(
        "start with the http port taken failed after {:?}",
        t.elapsed()
    );
    assert!(message.contains("stayed taken"), "{message}");
    assert!(message.contains("address already in use"), "{message}");
    assert!(agent.pid().is_none());
    drop(squatter);
    agent.start();
    assert_eq!(agent.get("/v1/agent/self").unwrap().status, 200);
}

#[test]
fn drop_ends_the_agent_and_removes_its_dir() {
    let Some(agent) = ConsulAgent::new() else {
        return;
    };
    let (pid, dir): (u32, PathBuf) = (agent.pid().unwrap(), agent.dir().to_owned());
    assert!(dir.is_dir());
    let t = Instant::now();
    drop(agent);
    eprintln!("drop took {:?}", t.elapsed());
    assert!(process_gone(pid), "consul {pid} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Run only by [`agent_never_outlives_the_test_process`], in a child process: starts an
/// agent, pauses it (so only SIGKILL ends it), prints its pid and dir, and exits
/// without dropping it.
#[test]
#[ignore = "helper: run by agent_never_outlives_the_test_process"]
fn child_leaves_an_agent_behind() {
    if std::env::var_os("WAYPOST_HARNESS_CHILD").is_none() {
        return;
    }
    let agent = ConsulAgent::new().expect("consul in child");
    agent.pause();
    println!("pid={} dir={}", agent.pid().unwrap(), agent.dir().display());
    std::process::exit(0);
}

#[test]
fn agent_never_outlives_the_test_process() {
    if consul::require_consul().is_none() {
        return;
    }
    let out = support::bin::run_self(
        "child_leaves_an_agent_behind",
        &[("WAYPOST_HARNESS_CHILD", "1")],
        std::env::var("CI").ok().as_deref(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            panic!("child printed no pid:\n{stdout}\n{stderr}")
        });
    let (pid, dir) = line.split_once(" dir=").expect("pid=.. dir=..");
    let pid: u32 = pid.parse().unwrap();
    let t = Instant::now();
    wait_gone(pid);
    wait_until("the supervisor to remove the dir", || {
        !Path::new(dir).exists()
    });
    eprintln!(
        "orphaned paused agent gone {:?} after its test process",
        t.elapsed()
    );
}

#[test]
fn missing_binary_fails_in_ci_and_skips_loudly_otherwise() {
    support::bin::assert_missing_fails_in_ci_and_skips_locally(
        "shared_agent_is_ready_and_answers",
        "WAYPOST_CONSUL_BIN",
        "consul",
    );
}
