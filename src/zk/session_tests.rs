//! The session against scripted servers on loopback: bad frames, a server that closes
//! after the handshake, an expired session. No sleeps: every wait is on a channel with
//! a bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use super::*;
use crate::zk::proto::codec::Decode;
use crate::zk::proto::codec::Reader;
use crate::zk::proto::requests::GetChildrenRequest;

const BOUND: Duration = Duration::from_secs(10);

/// What a scripted server does with each connection, in turn.
#[derive(Clone)]
enum Script {
    /// Answers the handshake with a session (id, timeout), then sends these bytes and
    /// keeps the connection open (until the test ends).
    Session(i64, i32, Vec<u8>),
    /// The same, then closes the connection.
    SessionThenClose(i64, i32, Vec<u8>),
    /// Answers the handshake with an expired session (timeout 0), then closes.
    Expired,
    /// Reads the handshake and closes without an answer.
    CloseAtHandshake,
    /// Reads the handshake and never answers, holding the connection.
    Silent,
}

/// A server on loopback following `scripts`, one per connection (the last repeats);
/// it reports each handshake's session id on `handshakes`.
fn server(scripts: Vec<Script>) -> (String, Receiver<i64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("test-zk-server".into())
        .spawn(move || {
            let mut held = Vec::new();
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { return };
                let script = scripts[n.min(scripts.len() - 1)].clone();
                let Some(request) = read_handshake(&mut conn) else {
                    continue;
                };
                if tx.send(request.session_id).is_err() {
                    return; // the test is over
                }
                let close = matches!(script, Script::SessionThenClose(..));
                match script {
                    Script::Session(id, timeout_ms, then)
                    | Script::SessionThenClose(id, timeout_ms, then) => {
                        let response = ConnectResponse {
                            protocol_version: 0,
                            timeout_ms,
                            session_id: id,
                            password: vec![7; PASSWORD_LEN],
                            read_only: Some(false),
                        };
                        let frame = encode_frame(&[&response], 1 << 20).unwrap();
                        let _ = conn.write_all(&frame);
                        let _ = conn.write_all(&then);
                        if !close {
                            held.push(conn);
                        }
                    }
                    Script::Expired => {
                        let response = ConnectResponse {
                            protocol_version: 0,
                            timeout_ms: 0,
                            session_id: 0,
                            password: vec![0; PASSWORD_LEN],
                            read_only: Some(false),
                        };
                        let frame = encode_frame(&[&response], 1 << 20).unwrap();
                        let _ = conn.write_all(&frame);
                    }
                    Script::CloseAtHandshake => {}
                    Script::Silent => held.push(conn),
                }
            }
        })
        .unwrap();
    (addr, rx)
}

fn read_handshake(conn: &mut TcpStream) -> Option<ConnectRequest> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?.min(1024)];
    conn.read_exact(&mut body).ok()?;
    ConnectRequest::decode(&mut Reader::new(&body)).ok()
}

fn config(servers: Vec<String>) -> Config {
    Config {
        servers,
        session_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(300),
        auth: Vec::new(),
        max_frame: 1 << 20,
    }
}

fn next_event(events: &Receiver<SessionEvent>) -> SessionEvent {
    events.recv_timeout(BOUND).expect("a session event")
}

#[test]
fn a_huge_length_prefix_drops_the_connection_and_the_session_reconnects() {
    let huge = i32::MAX.to_be_bytes().to_vec();
    let (addr, handshakes) = server(vec![
        Script::Session(0x42, 30_000, huge),
        Script::Session(0x42, 30_000, Vec::new()),
    ]);
    let session = Session::start(config(vec![addr])).unwrap();
    let events = session.subscribe();
    assert_eq!(handshakes.recv_timeout(BOUND), Ok(0), "a new session first");
    // The frame claims 2 GiB: refused before anything is allocated; the connection
    // goes and the same session is resumed.
    assert_eq!(
        handshakes.recv_timeout(BOUND),
        Ok(0x42),
        "the same session again"
    );
    let mut seen = Vec::new();
    while seen.last() != Some(&SessionEvent::Connected { new_session: false }) {
        seen.push(next_event(&events));
    }
    assert!(seen.contains(&SessionEvent::Disconnected), "{seen:?}");
    session.close();
}

#[test]
fn garbage_and_a_cut_frame_are_a_reconnect_not_a_panic() {
    // A frame whose reply header is cut short, then a frame cut mid-way by the close.
    let mut garbage = 3i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[1, 2, 3]);
    let (addr, handshakes) = server(vec![
        Script::Session(0x43, 30_000, garbage),
        Script::SessionThenClose(0x43, 30_000, vec![0, 0, 0, 40, 1, 2]),
        Script::Session(0x43, 30_000, Vec::new()),
    ]);
    let session = Session::start(config(vec![addr])).unwrap();
    for _ in 0..3 {
        handshakes.recv_timeout(BOUND).expect("a handshake");
    }
    // The third connection answers nothing: a call times out, typed.
    let request = GetChildrenRequest {
        path: "/x".into(),
        watch: false,
    };
    let err = session
        .call(OpCode::GetChildren2, &request, None)
        .unwrap_err();
    assert!(
        matches!(err, CallError::Timeout | CallError::ConnectionLoss),
        "{err:?}"
    );
    session.close();
}

#[test]
fn a_server_that_closes_at_the_handshake_is_skipped_for_the_next() {
    let (behind, at_behind) = server(vec![Script::CloseAtHandshake]);
    let (good, at_good) = server(vec![Script::Session(0x44, 30_000, Vec::new())]);
    let session = Session::start(config(vec![behind, good])).unwrap();
    let events = session.subscribe();
    at_behind
        .recv_timeout(BOUND)
        .expect("the first server asked");
    at_good
        .recv_timeout(BOUND)
        .expect("the second server asked");
    assert_eq!(
        next_event(&events),
        SessionEvent::Connected { new_session: true }
    );
    assert_eq!(session.credentials().0, 0x44);
    session.close();
}

#[test]
fn an_expired_session_tells_watchers_and_subscribers_and_starts_a_new_one() {
    // The first connection's session; the connection then breaks (the scripted server
    // closes the second connection's handshake by answering "expired"), then a new
    // session.
    let (addr, handshakes) = server(vec![
        Script::Session(0x45, 30_000, i32::MAX.to_be_bytes().to_vec()),
        Script::Expired,
        Script::Session(0x46, 30_000, Vec::new()),
    ]);
    let session = Session::start(config(vec![addr])).unwrap();
    let events = session.subscribe();
    assert_eq!(handshakes.recv_timeout(BOUND), Ok(0));
    assert_eq!(handshakes.recv_timeout(BOUND), Ok(0x45), "resumed");
    assert_eq!(
        handshakes.recv_timeout(BOUND),
        Ok(0),
        "a new session after expiry"
    );
    let mut seen = Vec::new();
    while seen.last() != Some(&SessionEvent::Connected { new_session: true }) || seen.len() < 2 {
        seen.push(next_event(&events));
    }
    assert!(seen.contains(&SessionEvent::Expired), "{seen:?}");
    assert_eq!(session.credentials().0, 0x46);
    session.close();
}

#[test]
fn close_with_no_server_returns_promptly_and_joins() {
    // Nothing listens here (the port was free a moment ago).
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let session = Session::start(config(vec![addr])).unwrap();
    let request = GetChildrenRequest {
        path: "/x".into(),
        watch: false,
    };
    assert_eq!(
        session
            .call(OpCode::GetChildren2, &request, None)
            .unwrap_err(),
        CallError::ConnectionLoss
    );
    let started = Instant::now();
    session.close();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        session
            .call(OpCode::GetChildren2, &request, None)
            .unwrap_err(),
        CallError::Closed
    );
}

#[test]
fn close_during_a_handshake_returns_at_once_and_joins() {
    // The server takes the handshake and never answers; the connect timeout is far
    // longer than the bound below, so only a close that cuts the handshake passes.
    // (Before, the thread waited out the handshake and, had the answer come after
    // close() began, went on serving the connection: close() never returned.)
    let (addr, handshakes) = server(vec![Script::Silent]);
    let mut config = config(vec![addr]);
    config.connect_timeout = Duration::from_secs(600);
    let session = Arc::new(Session::start(config).unwrap());
    assert_eq!(
        handshakes.recv_timeout(BOUND),
        Ok(0),
        "a handshake under way"
    );
    let (done_tx, done) = bounded(1);
    // Not a scoped thread: a failing test must not wait for a close that hangs.
    let closing = session.clone();
    std::thread::spawn(move || {
        closing.close();
        let _ = done_tx.send(());
    });
    assert!(
        done.recv_timeout(BOUND).is_ok(),
        "close() returned while the handshake was pending"
    );
}
