//! The heartbeat against an agent that hangs: every heartbeat call gives up after
//! TTL/3, so a call that is never answered cannot hold the next pass back until the
//! check's TTL has run out. The real client against fake agents on loopback: one that
//! accepts connections and never answers, one that answers the registration and then
//! holds every heartbeat call.
#![cfg(feature = "consul")]

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded, unbounded};
use support::BOUND;
use support::fake_http::{Answer, FakeHttp};
use waypost::HttpErrorKind;
use waypost::consul::{Client, HttpClient, Registrar};

/// The shortest TTL the registrar takes: passes (and the bound on each call) every
/// 333 ms.
const TTL: Duration = Duration::from_secs(1);
/// What a call may take beyond its bound on a busy machine. The unbounded call would
/// wait for the client's request timeout, 10 s.
const SLACK: Duration = Duration::from_millis(500);
const TOKEN: &str = "hb-secret-token-7f3a";

/// An agent that accepts every connection and never answers: each connection is read
/// until the client closes it.
fn silent_agent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(1..) = stream.read(&mut buf) {}
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_bounded_call_to_an_agent_that_never_answers_gives_up_in_time() {
    let client = HttpClient::builder()
        .address(silent_agent())
        .build()
        .unwrap();
    let bounded = client.fork_with_timeout(TTL / 3);
    let started = Instant::now();
    let err = bounded.pass_ttl("service:web-1").unwrap_err();
    let took = started.elapsed();
    println!(
        "a pass to a silent agent gave up after {took:?} (bound {:?})",
        TTL / 3
    );
    match &err {
        waypost::Error::Http(http) => assert_eq!(http.kind, HttpErrorKind::Timeout, "{err}"),
        other => panic!("expected an HTTP timeout: {other}"),
    }
    assert!(took < TTL / 3 + SLACK, "took {took:?}");
}

/// One request the agent saw, and when.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    at: Instant,
}

/// The next request, waiting at most `BOUND`.
fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(BOUND)
        .expect("a request within the bound")
}

fn is_pass(seen: &Seen) -> bool {
    seen.path.starts_with("/v1/agent/check/pass/")
}

#[test]
fn a_hung_agent_cannot_hold_the_heartbeat_past_ttl_over_3() {
    support::logs::capture();
    let (seen_tx, seen) = unbounded();
    let (release, held) = bounded::<()>(0);
    let passes = AtomicUsize::new(0);
    // Answers the registration, its first pass and the deregistration; holds every
    // later heartbeat call (a pass, a lookup) until the test ends.
    let agent = FakeHttp::start(move |request| {
        let _ = seen_tx.send(Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            at: Instant::now(),
        });
        let heartbeat = request.path.starts_with("/v1/agent/service/web")
            || (request.path.starts_with("/v1/agent/check/pass/")
                && passes.fetch_add(1, Ordering::SeqCst) > 0);
        if heartbeat {
            let _ = held.recv_timeout(BOUND);
        }
        Answer::json("{}")
    });
    let client = HttpClient::builder()
        .address(agent.base())
        .token(TOKEN)
        .build()
        .unwrap();
    let registrar = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .id("web-1")
        .ttl(TTL)
        .build()
        .unwrap();
    let registration = registrar.register().unwrap();
    assert_eq!(next(&seen).path, "/v1/agent/service/register");
    assert!(
        is_pass(&next(&seen)),
        "passed once before register() returns"
    );

    // The first heartbeat is held; the heartbeat gives up on it after TTL/3 and goes
    // on (looking the service up, which is held too), then passes again.
    let first = next(&seen);
    assert!(is_pass(&first), "{first:?}");
    let after = next(&seen);
    let gave_up = after.at - first.at;
    println!(
        "the held pass was given up after {gave_up:?} (bound {:?})",
        TTL / 3
    );
    assert!(
        gave_up < TTL / 3 + SLACK,
        "the next call came {gave_up:?} later"
    );
    assert_eq!(
        (after.method.as_str(), after.path.as_str()),
        ("GET", "/v1/agent/service/web-1")
    );
    let again = next(&seen);
    let took = again.at - first.at;
    println!("the next pass was tried {took:?} after the held one");
    assert!(is_pass(&again), "{again:?}");
    assert!(took < 2 * (TTL / 3 + SLACK), "took {took:?}");

    drop(registration); // stops the heartbeat (cutting its held call) and deregisters
    drop(release);
    let rest: Vec<Seen> = seen.try_iter().collect();
    assert!(
        rest.iter()
            .any(|s| s.path == "/v1/agent/service/deregister/web-1"),
        "{rest:?}"
    );
    assert!(
        support::logs::logged(
            log::Level::Warn,
            "waypost::consul",
            &["passing the TTL check", "web-1"]
        ),
        "the failed pass is logged"
    );
    let records = support::logs::records();
    assert!(
        records.iter().all(|(_, _, text)| !text.contains(TOKEN)),
        "the token is never logged"
    );
}
