//! One ZooKeeper session over `std::net::TcpStream`.
//!
//! A named I/O thread (`waypost-zk-session`) owns the reading half of the connection:
//! it connects, shakes hands, reads replies and notifications, pings when the
//! connection has been quiet for a third of the negotiated timeout, drops a
//! connection that has been silent for two thirds of it (the Java client's rule), and
//! reconnects to the next server with the same session id and password. Callers write
//! their requests under the state lock, which also hands out xids, so requests go out
//! in xid order, and wait on a channel for their reply, matched by xid.
//!
//! After a reconnect the thread sends `addauth` again for every credential, then
//! SetWatches with the last zxid seen, so a change missed while disconnected is
//! notified at once. A handshake answered with a timeout of 0 means the session
//! expired: pending calls fail with `SessionExpired`, every watcher and session
//! subscriber is told, and a new session starts. A server that closes the connection
//! right after the handshake (its last zxid is behind ours) is skipped.
//!
//! The thread waits on a socket read whose timeout is the next deadline (a ping due,
//! or the silence limit), never on a polling slice.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, unbounded};
use parking_lot::{Condvar, Mutex};

use super::proto::codec::{Encode, decode_exact};
use super::proto::codes::{ErrorCode, EventType, OpCode, xid};
use super::proto::error::ProtoError;
use super::proto::frame::{FrameDecoder, encode_frame};
use super::proto::handshake::{ConnectRequest, ConnectResponse, PASSWORD_LEN};
use super::proto::records::{
    AuthPacket, Reply, ReplyHeader, RequestHeader, SetWatches, WatcherEvent,
};

const LOG: &str = "waypost::zk";

/// How a session is set up.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// `host:port` of each server of the ensemble, tried in turn.
    pub(crate) servers: Vec<String>,
    /// The session timeout asked for; the server clamps it to its bounds.
    pub(crate) session_timeout: Duration,
    /// Bound on a TCP connect and on the handshake's answer.
    pub(crate) connect_timeout: Duration,
    /// Bound on a call: waiting for a connection, then for the reply.
    pub(crate) request_timeout: Duration,
    /// Credentials sent with `addauth` on every connection: (scheme, auth bytes).
    pub(crate) auth: Vec<AuthPacket>,
    /// Largest frame read or written.
    pub(crate) max_frame: usize,
}

/// What a call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The server answered with this error code.
    Server(ErrorCode),
    /// The connection was lost with the call in flight, or none could be made in time.
    ConnectionLoss,
    /// No reply within the request timeout.
    Timeout,
    /// The session is closed.
    Closed,
    /// A request too large to send, or a reply that does not decode.
    Proto(ProtoError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server(code) => write!(f, "the server answered {code}"),
            Self::ConnectionLoss => f.write_str("the connection to ZooKeeper was lost"),
            Self::Timeout => f.write_str("no reply within the request timeout"),
            Self::Closed => f.write_str("the session is closed"),
            Self::Proto(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Which one-shot watch a call leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WatchKind {
    /// getData: the node changes or goes.
    Data,
    /// exists on a node that is not there: it is created.
    Exist,
    /// getChildren: a child comes or goes, or the node goes.
    Child,
}

/// Why a one-shot watch fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The watched node, or its children, changed (or the node went).
    Changed,
    /// The session expired, and its watches with it: read again to watch again.
    SessionExpired,
}

pub(crate) use WatchEvent as Watched;

/// A change of a ZooKeeper session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// Connected to a server; `new_session` when this is a new session (the first, or
    /// one after an expiry), false for a reconnect of the same session.
    Connected {
        /// A new session (the first, or one after an expiry): its ephemeral nodes
        /// and watches are gone; false for a reconnect of the same session.
        new_session: bool,
    },
    /// The connection was lost; the thread reconnects.
    Disconnected,
    /// The session expired; a new one follows.
    Expired,
}

/// A reply: its header and its body (empty on error).
pub(crate) type Answer = (ReplyHeader, Vec<u8>);

struct Pending {
    op: OpCode,
    reply: Sender<Result<Answer, CallError>>,
    watch: Option<(WatchKind, String, Sender<Watched>)>,
}

#[derive(Default)]
struct State {
    /// The writing half of the connection, while connected.
    conn: Option<TcpStream>,
    /// A clone of the stream while its handshake runs: `close()` shuts it down, so
    /// a close never waits for a handshake nor lets one finish into a served
    /// connection.
    handshaking: Option<TcpStream>,
    session_id: i64,
    password: Vec<u8>,
    last_zxid: i64,
    negotiated: Duration,
    next_xid: i32,
    pending: HashMap<i32, Pending>,
    watches: HashMap<(WatchKind, String), Vec<Sender<Watched>>>,
    subscribers: Vec<Sender<SessionEvent>>,
    closing: bool,
    last_send: Option<Instant>,
}

struct Inner {
    config: Config,
    state: Mutex<State>,
    connected: Condvar,
    /// Closed (dropped) by `close()`: wakes the thread in a backoff wait.
    stop: Mutex<Option<Sender<()>>>,
}

/// One session, its I/O thread and its state; see the module docs.
pub(crate) struct Session {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("Session")
            .field("servers", &self.inner.config.servers)
            .field("session_id", &format_args!("{:#x}", state.session_id))
            .field("connected", &state.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts the I/O thread, which connects at once. Calls wait for the connection
    /// (up to their timeout).
    pub(crate) fn start(config: Config) -> io::Result<Session> {
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let inner = Arc::new(Inner {
            config,
            state: Mutex::new(State {
                password: vec![0; PASSWORD_LEN],
                next_xid: 1,
                ..State::default()
            }),
            connected: Condvar::new(),
            stop: Mutex::new(Some(stop_tx)),
        });
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("waypost-zk-session".into())
            .spawn(move || run(&thread_inner, &stop_rx))?;
        Ok(Session {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A channel of the session's state changes from now on.
    pub(crate) fn subscribe(&self) -> Receiver<SessionEvent> {
        let (tx, rx) = unbounded();
        self.inner.state.lock().subscribers.push(tx);
        rx
    }

    /// The session id and password (for tests that expire it on purpose).
    pub(crate) fn credentials(&self) -> (i64, Vec<u8>) {
        let state = self.inner.state.lock();
        (state.session_id, state.password.clone())
    }

    /// Sends one request and waits for its reply. With `watch`, the watcher is
    /// registered when the reply is a success (or, for an exists, `NoNode`), before
    /// any later notification is read.
    pub(crate) fn call(
        &self,
        op: OpCode,
        body: &dyn Encode,
        watch: Option<(WatchKind, String, Sender<Watched>)>,
    ) -> Result<Answer, CallError> {
        self.call_until(op, body, watch, None)
    }

    /// [`call`](Self::call), given up (as [`CallError::Closed`]) as soon as `cancel`
    /// says so (a message or its sender's drop): a watch thread's stop.
    pub(crate) fn call_until(
        &self,
        op: OpCode,
        body: &dyn Encode,
        watch: Option<(WatchKind, String, Sender<Watched>)>,
        cancel: Option<&Receiver<()>>,
    ) -> Result<Answer, CallError> {
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let cancelled =
            || cancel.is_some_and(|c| !matches!(c.try_recv(), Err(TryRecvError::Empty)));
        let (tx, rx) = bounded(1);
        {
            let mut state = self.inner.state.lock();
            loop {
                if state.closing || cancelled() {
                    return Err(CallError::Closed);
                }
                if state.conn.is_some() {
                    break;
                }
                // While disconnected, a canceller is checked every 50 ms: a condition
                // variable cannot wait on a channel too.
                let until = match cancel {
                    Some(_) => deadline.min(Instant::now() + Duration::from_millis(50)),
                    None => deadline,
                };
                if self
                    .inner
                    .connected
                    .wait_until(&mut state, until)
                    .timed_out()
                    && Instant::now() >= deadline
                {
                    return Err(CallError::ConnectionLoss);
                }
            }
            let xid = state.next_xid;
            state.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
            let frame = encode_frame(
                &[&RequestHeader { xid, op }, body],
                self.inner.config.max_frame,
            )
            .map_err(CallError::Proto)?;
            send(&mut state, &frame).map_err(|_| CallError::ConnectionLoss)?;
            state.pending.insert(
                xid,
                Pending {
                    op,
                    reply: tx,
                    watch,
                },
            );
        }
        let never = crossbeam_channel::never();
        let cancel = cancel.unwrap_or(&never);
        crossbeam_channel::select! {
            recv(rx) -> answer => answer.unwrap_or(Err(CallError::ConnectionLoss)),
            recv(cancel) -> _ => Err(CallError::Closed),
            default(deadline.saturating_duration_since(Instant::now())) => Err(CallError::Timeout),
        }
    }

    /// Closes the session (its ephemeral nodes go at once) and joins the thread.
    /// Idempotent.
    pub(crate) fn close(&self) {
        let connected = {
            let state = self.inner.state.lock();
            state.conn.is_some() && !state.closing
        };
        if connected {
            // Best effort: the server removes the ephemerals when it gets it.
            match self.call(OpCode::CloseSession, &(), None) {
                Ok(_) | Err(CallError::ConnectionLoss) => {}
                Err(err) => log::debug!(target: LOG, "closing the session: {err}"),
            }
        }
        {
            let mut state = self.inner.state.lock();
            state.closing = true;
            for stream in [&state.conn, &state.handshaking].into_iter().flatten() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            self.inner.connected.notify_all();
        }
        drop(self.inner.stop.lock().take());
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

fn send(state: &mut State, frame: &[u8]) -> io::Result<()> {
    let conn = state.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?;
    let sent = conn.write_all(frame);
    if sent.is_err() {
        let _ = conn.shutdown(Shutdown::Both); // the reader sees it and reconnects
    }
    state.last_send = Some(Instant::now());
    sent
}

fn tell(state: &mut State, event: SessionEvent) {
    state.subscribers.retain(|s| s.send(event).is_ok());
}

/// The I/O thread: connect, serve the connection, reconnect, until closed.
fn run(inner: &Inner, stop: &Receiver<()>) {
    let servers = &inner.config.servers;
    let mut next = 0usize;
    let mut failed_in_a_row = 0usize;
    loop {
        if inner.state.lock().closing {
            return;
        }
        let server = &servers[next % servers.len()];
        next += 1;
        match connect(inner, server) {
            Ok((stream, decoder, new_session)) => {
                failed_in_a_row = 0;
                serve(inner, stream, decoder, new_session);
            }
            Err(err) => {
                log::debug!(target: LOG, "connecting to {server}: {err}");
                failed_in_a_row += 1;
            }
        }
        if failed_in_a_row >= servers.len() {
            // Every server refused: wait a little before the next round.
            failed_in_a_row = 0;
            let pause = inner.config.connect_timeout.min(Duration::from_secs(1));
            if stop.recv_timeout(pause).is_err() && inner.state.lock().closing {
                return;
            }
        }
    }
}

/// What a handshake leaves: the stream, the decoder holding any bytes read past the
/// handshake's answer, and whether the session is new.
type Connected = (TcpStream, FrameDecoder, bool);

/// Connects to `server` and shakes hands.
fn connect(inner: &Inner, server: &str) -> io::Result<Connected> {
    let config = &inner.config;
    let addrs: Vec<SocketAddr> = server.to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, config.connect_timeout) {
            Ok(stream) => return handshake(inner, stream),
            Err(err) => last = err,
        }
    }
    Err(last)
}

fn handshake(inner: &Inner, stream: TcpStream) -> io::Result<Connected> {
    {
        let mut state = inner.state.lock();
        if state.closing {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "closing"));
        }
        state.handshaking = Some(stream.try_clone()?);
    }
    let shaken = shake_hands(inner, stream);
    inner.state.lock().handshaking = None;
    shaken
}

fn shake_hands(inner: &Inner, mut stream: TcpStream) -> io::Result<Connected> {
    let config = &inner.config;
    stream.set_nodelay(true)?;
    let (session_id, password, last_zxid) = {
        let state = inner.state.lock();
        (state.session_id, state.password.clone(), state.last_zxid)
    };
    let timeout_ms = i32::try_from(config.session_timeout.as_millis()).unwrap_or(i32::MAX);
    let request = ConnectRequest::resume(session_id, password, last_zxid, timeout_ms);
    let frame = encode_frame(&[&request], config.max_frame).map_err(invalid)?;
    stream.write_all(&frame)?;
    stream.set_read_timeout(Some(config.connect_timeout))?;
    let mut decoder = FrameDecoder::with_limit(config.max_frame);
    let body = read_frame(&mut stream, &mut decoder)?.ok_or_else(|| {
        // Closed without an answer: this server is behind our last zxid.
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "closed during the handshake",
        )
    })?;
    let response: ConnectResponse = decode_exact(&body).map_err(invalid)?;
    let mut state = inner.state.lock();
    if response.is_expired() {
        if session_id != 0 {
            log::warn!(target: LOG, "session {session_id:#x} expired; starting a new one");
            expire(&mut state);
        }
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "session expired",
        ));
    }
    let new_session = response.session_id != session_id;
    state.session_id = response.session_id;
    state.password = response.password;
    state.negotiated = Duration::from_millis(u64::try_from(response.timeout_ms).unwrap_or(0));
    drop(state);
    Ok((stream, decoder, new_session))
}

/// The session is gone: fail what waits, tell every watcher, start afresh.
fn expire(state: &mut State) {
    state.session_id = 0;
    state.password = vec![0; PASSWORD_LEN];
    state.last_zxid = 0;
    for (_, pending) in state.pending.drain() {
        let _ = pending
            .reply
            .send(Err(CallError::Server(ErrorCode::SessionExpired)));
    }
    for (_, watchers) in state.watches.drain() {
        for watcher in watchers {
            let _ = watcher.send(Watched::SessionExpired);
        }
    }
    tell(state, SessionEvent::Expired);
}

/// Serves one connection until it breaks or the session closes.
fn serve(inner: &Inner, mut stream: TcpStream, mut decoder: FrameDecoder, new_session: bool) {
    let config = &inner.config;
    let writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(err) => {
            log::warn!(target: LOG, "cloning the connection: {err}");
            return;
        }
    };
    let negotiated = {
        let mut state = inner.state.lock();
        if state.closing {
            return; // closed during the handshake: the stream drops here
        }
        state.conn = Some(writer);
        // addauth first, then the watches, before any caller's request.
        let mut setup = Ok(());
        for auth in &config.auth {
            let frame = encode_frame(
                &[
                    &RequestHeader {
                        xid: xid::AUTH,
                        op: OpCode::Auth,
                    },
                    auth,
                ],
                config.max_frame,
            );
            setup = setup
                .and_then(|()| frame.map_err(invalid))
                .and_then(|f| send(&mut state, &f));
        }
        if !state.watches.is_empty() {
            let mut set = SetWatches {
                relative_zxid: state.last_zxid,
                data_watches: Vec::new(),
                exist_watches: Vec::new(),
                child_watches: Vec::new(),
            };
            for (kind, path) in state.watches.keys() {
                match kind {
                    WatchKind::Data => set.data_watches.push(path.clone()),
                    WatchKind::Exist => set.exist_watches.push(path.clone()),
                    WatchKind::Child => set.child_watches.push(path.clone()),
                }
            }
            let header = RequestHeader {
                xid: xid::SET_WATCHES,
                op: OpCode::SetWatches,
            };
            let frame = encode_frame(&[&header, &set], config.max_frame);
            setup = setup
                .and_then(|()| frame.map_err(invalid))
                .and_then(|f| send(&mut state, &f));
        }
        if let Err(err) = setup {
            log::warn!(target: LOG, "setting up the connection: {err}");
            state.conn = None;
            return;
        }
        tell(&mut state, SessionEvent::Connected { new_session });
        inner.connected.notify_all();
        state.negotiated
    };
    let ping_after = negotiated / 3;
    let silence_limit = negotiated * 2 / 3;
    let mut last_recv = Instant::now();
    // Bytes that came with the handshake's answer.
    if let Err(err) = drain(inner, &mut decoder) {
        return lost(inner, &err);
    }
    let mut buf = vec![0u8; 64 << 10];
    let broke = loop {
        let now = Instant::now();
        let last_send = inner.state.lock().last_send.unwrap_or(now);
        let ping_due = last_send + ping_after;
        let silent_at = last_recv + silence_limit;
        if now >= silent_at {
            break io::Error::new(io::ErrorKind::TimedOut, "the server was silent too long");
        }
        if now >= ping_due {
            let frame = encode_frame(
                &[&RequestHeader {
                    xid: xid::PING,
                    op: OpCode::Ping,
                }],
                config.max_frame,
            )
            .expect("a ping fits");
            if let Err(err) = send(&mut inner.state.lock(), &frame) {
                break err;
            }
            continue;
        }
        let wait = ping_due.min(silent_at).saturating_duration_since(now);
        if let Err(err) = stream.set_read_timeout(Some(wait.max(Duration::from_millis(1)))) {
            break err;
        }
        match stream.read(&mut buf) {
            Ok(0) => break io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed"),
            Ok(n) => {
                last_recv = Instant::now();
                decoder.push(&buf[..n]);
                if let Err(err) = drain(inner, &mut decoder) {
                    break err;
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(err) => break err,
        }
    };
    lost(inner, &broke);
}

/// The connection is gone: fail what waits on it, and say so.
fn lost(inner: &Inner, why: &io::Error) {
    let mut state = inner.state.lock();
    state.conn = None;
    for (_, pending) in state.pending.drain() {
        let _ = pending.reply.send(Err(CallError::ConnectionLoss));
    }
    if !state.closing {
        log::debug!(target: LOG, "connection lost ({why}); reconnecting");
        tell(&mut state, SessionEvent::Disconnected);
    }
}

/// Handles every whole frame the decoder holds.
fn drain(inner: &Inner, decoder: &mut FrameDecoder) -> io::Result<()> {
    while let Some(frame) = decoder.next_frame().map_err(invalid)? {
        let reply = Reply::parse(&frame).map_err(invalid)?;
        let header = reply.header;
        let mut state = inner.state.lock();
        if header.zxid > state.last_zxid {
            state.last_zxid = header.zxid;
        }
        match header.xid {
            xid::NOTIFICATION => {
                let event: WatcherEvent = reply.decode().map_err(invalid)?;
                notify(&mut state, event);
            }
            xid::PING | xid::SET_WATCHES => {}
            xid::AUTH => {
                if let Some(code) = header.error() {
                    log::warn!(target: LOG, "addauth was refused: {code}");
                }
            }
            xid => {
                let Some(pending) = state.pending.remove(&xid) else {
                    continue; // its caller gave up
                };
                let error = header.error();
                let watched = error.is_none()
                    || (pending.op == OpCode::Exists && error == Some(ErrorCode::NoNode));
                if let (true, Some((kind, path, watcher))) = (watched, pending.watch) {
                    state.watches.entry((kind, path)).or_default().push(watcher);
                }
                let answer = match error {
                    None => Ok((header, reply.body.to_vec())),
                    Some(code) => Err(CallError::Server(code)),
                };
                let _ = pending.reply.send(answer);
            }
        }
    }
    Ok(())
}

/// Delivers a notification to the one-shot watchers it fires.
fn notify(state: &mut State, event: WatcherEvent) {
    let kinds: &[WatchKind] = match event.event_type {
        EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data, WatchKind::Exist],
        EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
        EventType::NodeChildrenChanged => &[WatchKind::Child],
        _ => &[],
    };
    for kind in kinds {
        if let Some(watchers) = state.watches.remove(&(*kind, event.path.clone())) {
            for watcher in watchers {
                let _ = watcher.send(Watched::Changed);
            }
        }
    }
}

/// Reads until one whole frame is there; `None` on a clean end of stream.
fn read_frame(stream: &mut TcpStream, decoder: &mut FrameDecoder) -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.next_frame().map_err(invalid)? {
            return Ok(Some(frame));
        }
        match stream.read(&mut buf)? {
            0 => return Ok(None),
            n => decoder.push(&buf[..n]),
        }
    }
}

fn invalid(err: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
