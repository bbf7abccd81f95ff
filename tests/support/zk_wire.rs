//! A raw ZooKeeper client for the harness, independent of waypost's own: just enough of
//! the wire protocol to open a session, create, read, watch and delete nodes,
//! authenticate, and end a session, or steal one to make it expire.
//!
//! The protocol (ZooKeeper 3.8, see `backends/zookeeper-dnsmasq-eureka.md` §5): every
//! frame in either direction is an int32 length and then a big-endian jute record
//! (`int` 4 bytes, `long` 8, `boolean` 1, `buffer`/`ustring` an int32 length and the
//! bytes with -1 for null, `vector` an int32 count and the items). The handshake has no
//! header: a ConnectRequest (protocol version, last zxid seen, timeout, session id,
//! password) and a trailing readOnly byte, answered by a ConnectResponse; a timeout of 0
//! in the answer means the session is gone. After it, a request is a header (xid,
//! opcode) and a body; a reply is a header (xid, zxid, error) and a body only when the
//! error is 0. Watch notifications come with xid -1, pings with xid -2, auth replies
//! with xid -4.
//!
//! # Forcing a session to expire
//!
//! [`expire_session`] opens a second connection with the victim's session id and
//! password (the server then moves the session to it and closes the victim's
//! connection) and sends closeSession: the session ends at once with its ephemerals,
//! and the victim's next reconnect is answered with timeout 0. Dropping a connection
//! does not end a session; only its timeout or closeSession does.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Create modes (the `flags` of create).
pub const PERSISTENT: i32 = 0;
pub const EPHEMERAL: i32 = 1;
pub const PERSISTENT_SEQUENTIAL: i32 = 2;
pub const EPHEMERAL_SEQUENTIAL: i32 = 3;

/// Opcodes the harness sends.
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const GET_CHILDREN: i32 = 8;
    pub const PING: i32 = 11;
    pub const AUTH: i32 = 100;
    pub const CLOSE_SESSION: i32 = -11;
}

/// Special xids.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
}

/// Error codes of a reply header (`KeeperException.Code`).
pub mod code {
    pub const OK: i32 = 0;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const SESSION_EXPIRED: i32 = -112;
    pub const AUTH_FAILED: i32 = -115;
}

/// Watch event types.
pub mod event {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// Permission bits of an ACL.
pub const PERM_ALL: i32 = 31;

/// Largest frame read: the server's own limit (jute.maxbuffer, 0xfffff) and headers.
const MAX_FRAME: usize = 2 << 20;
/// Bound of every read and write of the harness's sessions.
const IO_BOUND: Duration = Duration::from_secs(5);
/// The session timeout the harness asks for (the server clamps it to 1–60 s).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call failed.
#[derive(Debug)]
pub enum WireError {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The server answered with this error code (see [`code`]).
    Code(i32),
    /// The handshake was answered with timeout 0: the session does not exist (expired,
    /// closed, or a wrong password).
    Expired,
    /// The server sent something this client does not understand.
    Protocol(String),
}

impl WireError {
    /// The server's error code, if it answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            WireError::Code(code) => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "i/o: {e}"),
            WireError::Code(code) => write!(f, "server error {code}"),
            WireError::Expired => f.write_str("session expired"),
            WireError::Protocol(why) => write!(f, "protocol: {why}"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

pub type WireResult<T> = Result<T, WireError>;

/// A jute record being written.
#[derive(Debug, Default)]
pub struct Jute(Vec<u8>);

impl Jute {
    pub fn int(mut self, v: i32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: i64) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    pub fn boolean(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }
    /// A `buffer`; `None` is written as length -1.
    pub fn buffer(self, v: Option<&[u8]>) -> Self {
        match v {
            None => self.int(-1),
            Some(bytes) => {
                let mut out = self.int(i32::try_from(bytes.len()).expect("a short buffer"));
                out.0.extend(bytes);
                out
            }
        }
    }
    pub fn string(self, v: &str) -> Self {
        self.buffer(Some(v.as_bytes()))
    }
    /// The record as a frame: its int32 length, then the record.
    pub fn frame(self) -> Vec<u8> {
        let len = i32::try_from(self.0.len()).expect("a short frame");
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend(self.0);
        frame
    }
}

/// A jute record being read.
#[derive(Debug)]
pub struct Unjute<'a> {
    bytes: &'a [u8],
}

impl<'a> Unjute<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Unjute { bytes }
    }
    fn take(&mut self, n: usize) -> WireResult<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(WireError::Protocol(format!(
                "record ends early: {n} bytes wanted, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    pub fn int(&mut self) -> WireResult<i32> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub fn long(&mut self) -> WireResult<i64> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub fn boolean(&mut self) -> WireResult<bool> {
        Ok(self.take(1)?[0] != 0)
    }
    /// A `buffer`: `None` for length -1.
    pub fn buffer(&mut self) -> WireResult<Option<Vec<u8>>> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?.to_vec()))
    }
    pub fn string(&mut self) -> WireResult<String> {
        let bytes = self.buffer()?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|e| WireError::Protocol(format!("a ustring: {e}")))
    }
    pub fn strings(&mut self) -> WireResult<Vec<String>> {
        let count = self.int()?.max(0);
        (0..count).map(|_| self.string()).collect()
    }
    pub fn stat(&mut self) -> WireResult<Stat> {
        Ok(Stat {
            czxid: self.long()?,
            mzxid: self.long()?,
            ctime: self.long()?,
            mtime: self.long()?,
            version: self.int()?,
            cversion: self.int()?,
            aversion: self.int()?,
            ephemeral_owner: self.long()?,
            data_length: self.int()?,
            num_children: self.int()?,
            pzxid: self.long()?,
        })
    }
    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A node's `Stat` (68 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    /// The session that owns an ephemeral node; 0 for a persistent one.
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// A watch notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// See [`event`].
    pub kind: i32,
    pub state: i32,
    pub path: String,
}

/// What the server answered to a ConnectRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub protocol_version: i32,
    /// The negotiated session timeout in ms; 0 when the session does not exist.
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    /// The trailing readOnly byte, sent back because the request had one.
    pub read_only: Option<bool>,
}

/// The ConnectRequest frame: protocol version 0, `last_zxid` seen, the timeout asked
/// for, the session to resume (0 and 16 zero bytes for a new one), and the readOnly
/// byte (false) after the record.
pub fn connect_frame(
    last_zxid: i64,
    timeout: Duration,
    session_id: i64,
    password: &[u8],
) -> Vec<u8> {
    let timeout_ms = i32::try_from(timeout.as_millis()).expect("a timeout in i32 ms");
    Jute::default()
        .int(0)
        .long(last_zxid)
        .int(timeout_ms)
        .long(session_id)
        .buffer(Some(password))
        .boolean(false)
        .frame()
}

/// A request frame: header (xid, opcode) and body.
pub fn request_frame(xid: i32, op: i32, body: Jute) -> Vec<u8> {
    let mut record = Jute::default().int(xid).int(op);
    record.0.extend(body.0);
    record.frame()
}

/// Reads one frame's record; a length below 0 or above the limit is an error, never an
/// allocation of what the peer claims.
pub fn read_frame(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0; 4];
    stream.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, format!("frame length {len}")))?;
    let mut record = vec![0; len];
    stream.read_exact(&mut record)?;
    Ok(record)
}

/// Sends a ConnectRequest on `stream` and reads the answer.
fn handshake(
    stream: &mut TcpStream,
    last_zxid: i64,
    timeout: Duration,
    session_id: i64,
    password: &[u8],
) -> WireResult<Handshake> {
    stream.write_all(&connect_frame(last_zxid, timeout, session_id, password))?;
    let record = read_frame(stream)?;
    let mut r = Unjute::new(&record);
    Ok(Handshake {
        protocol_version: r.int()?,
        timeout_ms: r.int()?,
        session_id: r.long()?,
        password: r.buffer()?.unwrap_or_default(),
        read_only: r.rest().first().map(|&b| b != 0),
    })
}

fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_BOUND)?;
    stream.set_read_timeout(Some(IO_BOUND))?;
    stream.set_write_timeout(Some(IO_BOUND))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `world:anyone` with every permission: the ACL of an open node.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: PERM_ALL,
        scheme: "world".into(),
        id: "anyone".into(),
    }]
}

/// One entry of a node's ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

/// A session over one connection, driven one request at a time by the test: no I/O
/// thread and no pings, so it lives as long as its traffic (or the timeout) allows.
/// Notifications that arrive while a reply is awaited are kept for
/// [`next_event`](Self::next_event).
#[derive(Debug)]
pub struct RawSession {
    stream: TcpStream,
    addr: SocketAddr,
    handshake: Handshake,
    next_xid: i32,
    last_zxid: i64,
    events: Vec<WatchEvent>,
}

impl RawSession {
    /// A new session on `addr` asking for [`SESSION_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> WireResult<RawSession> {
        Self::connect_timeout(addr, SESSION_TIMEOUT)
    }

    /// A new session asking for `timeout` (the server clamps it to its min and max).
    pub fn connect_timeout(addr: SocketAddr, timeout: Duration) -> WireResult<RawSession> {
        Self::open(addr, 0, timeout, 0, &[0; 16])
    }

    /// Resumes session `session_id` on `addr` on a new connection, as a client does
    /// after losing one; [`WireError::Expired`] when the session is gone.
    pub fn resume(
        addr: SocketAddr,
        session_id: i64,
        password: &[u8],
        last_zxid: i64,
    ) -> WireResult<RawSession> {
        Self::open(addr, last_zxid, SESSION_TIMEOUT, session_id, password)
    }

    fn open(
        addr: SocketAddr,
        last_zxid: i64,
        timeout: Duration,
        session_id: i64,
        password: &[u8],
    ) -> WireResult<RawSession> {
        let mut stream = open(addr)?;
        let handshake = handshake(&mut stream, last_zxid, timeout, session_id, password)?;
        if handshake.timeout_ms <= 0 {
            return Err(WireError::Expired);
        }
        Ok(RawSession {
            stream,
            addr,
            handshake,
            next_xid: 1,
            last_zxid,
            events: Vec::new(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn session_id(&self) -> i64 {
        self.handshake.session_id
    }

    pub fn password(&self) -> &[u8] {
        &self.handshake.password
    }

    /// The session timeout the server granted.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.handshake.timeout_ms as u64)
    }

    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The highest zxid a reply carried.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Creates `path` with `data`, open to everyone, with `flags` ([`EPHEMERAL`], ...);
    /// the path created (with its sequence number for a sequential node).
    pub fn create(&mut self, path: &str, data: &[u8], flags: i32) -> WireResult<String> {
        self.create_with_acl(path, data, &open_acl(), flags)
    }

    pub fn create_with_acl(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        flags: i32,
    ) -> WireResult<String> {
        let mut body = Jute::default().string(path).buffer(Some(data));
        body = body.int(acl.len() as i32);
        for entry in acl {
            body = body
                .int(entry.perms)
                .string(&entry.scheme)
                .string(&entry.id);
        }
        let reply = self.call(op::CREATE, body.int(flags))?;
        Unjute::new(&reply).string()
    }

    /// Deletes `path` at any version.
    pub fn delete(&mut self, path: &str) -> WireResult<()> {
        self.call(op::DELETE, Jute::default().string(path).int(-1))?;
        Ok(())
    }

    /// The node's `Stat`, `None` when there is no node; with `watch`, an exists watch
    /// (set also when there is no node: it fires on creation).
    pub fn exists(&mut self, path: &str, watch: bool) -> WireResult<Option<Stat>> {
        match self.call(op::EXISTS, Jute::default().string(path).boolean(watch)) {
            Ok(reply) => Ok(Some(Unjute::new(&reply).stat()?)),
            Err(WireError::Code(code::NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data (empty for null) and `Stat`.
    pub fn get(&mut self, path: &str, watch: bool) -> WireResult<(Vec<u8>, Stat)> {
        let reply = self.call(op::GET_DATA, Jute::default().string(path).boolean(watch))?;
        let mut r = Unjute::new(&reply);
        Ok((r.buffer()?.unwrap_or_default(), r.stat()?))
    }

    /// The node's children, as the server lists them.
    pub fn children(&mut self, path: &str, watch: bool) -> WireResult<Vec<String>> {
        let reply = self.call(
            op::GET_CHILDREN,
            Jute::default().string(path).boolean(watch),
        )?;
        Unjute::new(&reply).strings()
    }

    /// `addauth SCHEME AUTH` (`digest`, `user:password`). A digest addauth always
    /// succeeds; a wrong password only fails to match an ACL later.
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> WireResult<()> {
        let body = Jute::default().int(0).string(scheme).buffer(Some(auth));
        self.send_and_wait(xid::AUTH, op::AUTH, body)?;
        Ok(())
    }

    /// One ping, answered with xid -2: keeps the session alive.
    pub fn ping(&mut self) -> WireResult<()> {
        self.send_and_wait(xid::PING, op::PING, Jute::default())?;
        Ok(())
    }

    /// Ends the session (closeSession): its ephemerals go at once. Waits for the reply
    /// and the server's close.
    pub fn close(mut self) -> WireResult<()> {
        let xid = self.take_xid();
        self.send_and_wait(xid, op::CLOSE_SESSION, Jute::default())?;
        self.ends_within(IO_BOUND);
        Ok(())
    }

    /// The next watch notification, waiting at most `bound`.
    pub fn next_event(&mut self, bound: Duration) -> WireResult<WatchEvent> {
        if !self.events.is_empty() {
            return Ok(self.events.remove(0));
        }
        self.stream.set_read_timeout(Some(bound))?;
        let frame = read_frame(&mut self.stream);
        self.stream.set_read_timeout(Some(IO_BOUND))?;
        let frame = frame?;
        let mut r = Unjute::new(&frame);
        let (xid, _zxid, _err) = (r.int()?, r.long()?, r.int()?);
        if xid != xid::NOTIFICATION {
            return Err(WireError::Protocol(format!(
                "xid {xid} while waiting for an event"
            )));
        }
        watch_event(&mut r)
    }

    /// Whether the server ends this connection (EOF or reset) within `bound`; anything
    /// read before is dropped.
    pub fn ends_within(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut buf = [0; 512];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    fn take_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        xid
    }

    /// A request with the next xid; the reply's body, or its error code.
    fn call(&mut self, op: i32, body: Jute) -> WireResult<Vec<u8>> {
        let xid = self.take_xid();
        self.send_and_wait(xid, op, body)
    }

    fn send_and_wait(&mut self, xid: i32, op: i32, body: Jute) -> WireResult<Vec<u8>> {
        self.stream.write_all(&request_frame(xid, op, body))?;
        loop {
            let frame = read_frame(&mut self.stream)?;
            let mut r = Unjute::new(&frame);
            let (got, zxid, err) = (r.int()?, r.long()?, r.int()?);
            if got == xid::NOTIFICATION {
                let event = watch_event(&mut r)?;
                self.events.push(event);
                continue;
            }
            if got != xid {
                return Err(WireError::Protocol(format!(
                    "reply xid {got}, wanted {xid}"
                )));
            }
            self.last_zxid = self.last_zxid.max(zxid);
            return match err {
                code::OK => Ok(r.rest().to_vec()),
                err => Err(WireError::Code(err)),
            };
        }
    }
}

fn watch_event(r: &mut Unjute<'_>) -> WireResult<WatchEvent> {
    Ok(WatchEvent {
        kind: r.int()?,
        state: r.int()?,
        path: r.string()?,
    })
}

/// Ends session `session_id` (whose password is `password`) on the server at `addr`,
/// from a connection of its own: a ConnectRequest that takes the session over (the
/// server closes the victim's connection), then closeSession, whose reply (or the
/// server's close) is awaited. Ephemerals go at once; the victim's next reconnect is
/// answered with timeout 0. [`WireError::Expired`] if the session was gone already.
/// Returns how long it took.
pub fn expire_session(addr: SocketAddr, session_id: i64, password: &[u8]) -> WireResult<Duration> {
    let started = Instant::now();
    // The handshake and the closeSession go out in one write: the server takes the
    // session over from its client and closes it before that client can reconnect
    // and take it back (waypost's client reconnects within milliseconds; sent one
    // after the other, the two raced).
    let mut stream = open(addr)?;
    let xid = 1;
    let mut both = connect_frame(0, SESSION_TIMEOUT, session_id, password);
    both.extend(request_frame(xid, op::CLOSE_SESSION, Jute::default()));
    stream.write_all(&both)?;
    let record = read_frame(&mut stream)?;
    let mut r = Unjute::new(&record);
    let (_version, timeout_ms, granted) = (r.int()?, r.int()?, r.long()?);
    if timeout_ms <= 0 {
        return Err(WireError::Expired);
    }
    if granted != session_id {
        return Err(WireError::Protocol(format!(
            "asked for session {session_id:#x}, got {granted:#x}"
        )));
    }
    // The reply, then the close; a close alone also means the session is ended.
    loop {
        match read_frame(&mut stream) {
            Ok(frame) => {
                let mut r = Unjute::new(&frame);
                let (got, _zxid, err) = (r.int()?, r.long()?, r.int()?);
                if got == xid {
                    if err != code::OK {
                        return Err(WireError::Code(err));
                    }
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(started.elapsed())
}
