//! The handshake: the first packet each way on a connection, without headers.

use std::fmt;

use super::codec::{Decode, Encode, Reader, Writer};
use super::error::ProtoError;

/// The length of a session password, as the server hands it out.
pub(crate) const PASSWORD_LEN: usize = 16;

/// The first packet on a connection, without a request header. A new session sends
/// session id 0 and 16 zero bytes of password; a reconnect sends the session's id and
/// password and the last zxid it saw (a server behind it closes without a reply).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConnectRequest {
    pub(crate) protocol_version: i32,
    pub(crate) last_zxid_seen: i64,
    /// The session timeout asked for; the server clamps it to its bounds.
    pub(crate) timeout_ms: i32,
    pub(crate) session_id: i64,
    pub(crate) password: Vec<u8>,
    /// Whether a read-only server may take the session. It follows the jute record,
    /// outside it, as modern clients send it; `None` when absent (an old client).
    pub(crate) read_only: Option<bool>,
}

impl ConnectRequest {
    /// Bytes of a request with a 16-byte password and the read-only flag: 44 + 1.
    pub(crate) const SIZE: usize = 45;

    /// A request for a new session.
    pub(crate) fn new_session(timeout_ms: i32) -> Self {
        Self::resume(0, vec![0; PASSWORD_LEN], 0, timeout_ms)
    }

    /// A request to carry on `session_id` on a new connection.
    pub(crate) fn resume(
        session_id: i64,
        password: Vec<u8>,
        last_zxid_seen: i64,
        timeout_ms: i32,
    ) -> Self {
        Self {
            protocol_version: 0,
            last_zxid_seen,
            timeout_ms,
            session_id,
            password,
            read_only: Some(false),
        }
    }
}

impl fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("protocol_version", &self.protocol_version)
            .field(
                "last_zxid_seen",
                &format_args!("{:#x}", self.last_zxid_seen),
            )
            .field("timeout_ms", &self.timeout_ms)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Encode for ConnectRequest {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.protocol_version);
        w.write_long(self.last_zxid_seen);
        w.write_int(self.timeout_ms);
        w.write_long(self.session_id);
        w.write_buffer(&self.password);
        if let Some(read_only) = self.read_only {
            w.write_bool(read_only);
        }
    }
}

impl Decode for ConnectRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            protocol_version: r.read_int()?,
            last_zxid_seen: r.read_long()?,
            timeout_ms: r.read_int()?,
            session_id: r.read_long()?,
            password: r.read_bytes()?,
            read_only: read_trailing_bool(r)?,
        })
    }
}

/// The server's answer to a [`ConnectRequest`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConnectResponse {
    pub(crate) protocol_version: i32,
    /// The negotiated session timeout; 0 (or less) when the session asked for has
    /// expired, been closed, or the password was wrong: see
    /// [`is_expired`](Self::is_expired).
    pub(crate) timeout_ms: i32,
    pub(crate) session_id: i64,
    pub(crate) password: Vec<u8>,
    /// Whether the server is read-only; present only if the request had its flag.
    pub(crate) read_only: Option<bool>,
}

impl ConnectResponse {
    /// Bytes of a response with a 16-byte password and no read-only flag (37 with it).
    pub(crate) const SIZE: usize = 36;

    /// The session is gone: the server answered timeout 0 (session id 0, a zero
    /// password) and is closing the connection. A new session is needed.
    pub(crate) fn is_expired(&self) -> bool {
        self.timeout_ms <= 0
    }
}

impl fmt::Debug for ConnectResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectResponse")
            .field("protocol_version", &self.protocol_version)
            .field("timeout_ms", &self.timeout_ms)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Encode for ConnectResponse {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.protocol_version);
        w.write_int(self.timeout_ms);
        w.write_long(self.session_id);
        w.write_buffer(&self.password);
        if let Some(read_only) = self.read_only {
            w.write_bool(read_only);
        }
    }
}

impl Decode for ConnectResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            protocol_version: r.read_int()?,
            timeout_ms: r.read_int()?,
            session_id: r.read_long()?,
            password: r.read_bytes()?,
            read_only: read_trailing_bool(r)?,
        })
    }
}

/// The handshake's read-only flag: a bool if any byte is left, else absent.
fn read_trailing_bool(r: &mut Reader<'_>) -> Result<Option<bool>, ProtoError> {
    match r.remaining() {
        0 => Ok(None),
        _ => r.read_bool().map(Some),
    }
}
