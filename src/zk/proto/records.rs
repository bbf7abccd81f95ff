//! The session's records after the handshake: request and reply headers, `Stat`,
//! watch notifications, `addauth` and SetWatches. The operations' bodies are in
//! [`requests`](super::requests).

use std::fmt;

use super::codec::{Decode, Encode, Reader, Writer, decode_exact};
use super::codes::{ErrorCode, EventType, KeeperState, OpCode};
use super::error::ProtoError;

/// What precedes every request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    /// 1, 2, 3, ... for operations; one of [`xid`](super::codes::xid) otherwise.
    pub(crate) xid: i32,
    pub(crate) op: OpCode,
}

impl Encode for RequestHeader {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.xid);
        w.write_int(self.op.code());
    }
}

impl Decode for RequestHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            xid: r.read_int()?,
            op: OpCode::from_code(r.read_int()?)?,
        })
    }
}

/// What precedes every reply and notification after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyHeader {
    /// The request's xid, or [`xid::NOTIFICATION`](super::codes::xid::NOTIFICATION).
    pub(crate) xid: i32,
    /// The server's last zxid when it answered (-1 on a notification).
    pub(crate) zxid: i64,
    /// 0 on success, else an [`ErrorCode`].
    pub(crate) err: i32,
}

impl ReplyHeader {
    pub(crate) const SIZE: usize = 16;

    /// The error, `None` on success.
    pub(crate) fn error(&self) -> Option<ErrorCode> {
        (self.err != 0).then(|| ErrorCode::from_code(self.err))
    }
}

impl Encode for ReplyHeader {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.xid);
        w.write_long(self.zxid);
        w.write_int(self.err);
    }
}

impl Decode for ReplyHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            xid: r.read_int()?,
            zxid: r.read_long()?,
            err: r.read_int()?,
        })
    }
}

/// One frame after the handshake: a header and the body it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply<'a> {
    pub(crate) header: ReplyHeader,
    /// The body's bytes: empty for an error, whose reply has no body.
    pub(crate) body: &'a [u8],
}

impl<'a> Reply<'a> {
    /// Splits a frame into header and body. An error reply with a body is refused
    /// as [`ProtoError::TrailingBytes`]: the server sends none (measured on 3.8.0).
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Self, ProtoError> {
        let (head, body) =
            frame
                .split_at_checked(ReplyHeader::SIZE)
                .ok_or(ProtoError::Truncated {
                    needed: ReplyHeader::SIZE,
                    remaining: frame.len(),
                })?;
        let header = decode_exact::<ReplyHeader>(head)?;
        if header.err != 0 && !body.is_empty() {
            return Err(ProtoError::TrailingBytes(body.len()));
        }
        Ok(Self { header, body })
    }

    /// The body as a `T` that must fill it exactly.
    pub(crate) fn decode<T: Decode>(&self) -> Result<T, ProtoError> {
        decode_exact(self.body)
    }
}

/// A node's metadata: 68 bytes on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Stat {
    /// The zxid of the create.
    pub(crate) czxid: i64,
    /// The zxid of the last data change.
    pub(crate) mzxid: i64,
    /// Milliseconds since the epoch, as the server's clock had it.
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    /// Data changes since the create.
    pub(crate) version: i32,
    /// Child changes since the create.
    pub(crate) cversion: i32,
    /// ACL changes since the create.
    pub(crate) aversion: i32,
    /// The session owning an ephemeral node; 0 for a persistent one.
    pub(crate) ephemeral_owner: i64,
    pub(crate) data_length: i32,
    pub(crate) num_children: i32,
    /// The zxid of the last child change.
    pub(crate) pzxid: i64,
}

impl Stat {
    pub(crate) const SIZE: usize = 68;
}

impl Encode for Stat {
    fn encode(&self, w: &mut Writer) {
        w.write_long(self.czxid);
        w.write_long(self.mzxid);
        w.write_long(self.ctime);
        w.write_long(self.mtime);
        w.write_int(self.version);
        w.write_int(self.cversion);
        w.write_int(self.aversion);
        w.write_long(self.ephemeral_owner);
        w.write_int(self.data_length);
        w.write_int(self.num_children);
        w.write_long(self.pzxid);
    }
}

impl Decode for Stat {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            czxid: r.read_long()?,
            mzxid: r.read_long()?,
            ctime: r.read_long()?,
            mtime: r.read_long()?,
            version: r.read_int()?,
            cversion: r.read_int()?,
            aversion: r.read_int()?,
            ephemeral_owner: r.read_long()?,
            data_length: r.read_int()?,
            num_children: r.read_int()?,
            pzxid: r.read_long()?,
        })
    }
}

/// A watch notification: the body of a reply with xid -1. A watch fires once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatcherEvent {
    pub(crate) event_type: EventType,
    pub(crate) state: KeeperState,
    /// The watched node's path, as the server names it (chroot included).
    pub(crate) path: String,
}

impl Encode for WatcherEvent {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.event_type.code());
        w.write_int(self.state.code());
        w.write_ustring(&self.path);
    }
}

impl Decode for WatcherEvent {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            event_type: EventType::from_code(r.read_int()?),
            state: KeeperState::from_code(r.read_int()?),
            path: r.read_str()?,
        })
    }
}

/// `addauth`: credentials in a scheme, sent with xid -4. For `digest` the server
/// answers success even for a wrong password (which then grants nothing); an unknown
/// scheme gets `AuthFailed` and the connection closed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AuthPacket {
    /// Always 0.
    pub(crate) auth_type: i32,
    pub(crate) scheme: String,
    /// The credentials: for `digest`, `user:password`. Never shown by `Debug`.
    pub(crate) auth: Vec<u8>,
}

impl AuthPacket {
    pub(crate) fn digest(user: &str, password: &str) -> Self {
        Self {
            auth_type: 0,
            scheme: "digest".to_owned(),
            auth: format!("{user}:{password}").into_bytes(),
        }
    }
}

impl fmt::Debug for AuthPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthPacket")
            .field("auth_type", &self.auth_type)
            .field("scheme", &self.scheme)
            .field("auth", &format_args!("<{} bytes>", self.auth.len()))
            .finish()
    }
}

impl Encode for AuthPacket {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.auth_type);
        w.write_ustring(&self.scheme);
        w.write_buffer(&self.auth);
    }
}

impl Decode for AuthPacket {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            auth_type: r.read_int()?,
            scheme: r.read_str()?,
            auth: r.read_bytes()?,
        })
    }
}

/// Re-arms watches on a new connection (xid -8). The server fires at once every watch
/// whose node changed after `relative_zxid`, then answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SetWatches {
    /// The last zxid the client saw.
    pub(crate) relative_zxid: i64,
    pub(crate) data_watches: Vec<String>,
    pub(crate) exist_watches: Vec<String>,
    pub(crate) child_watches: Vec<String>,
}

impl Encode for SetWatches {
    fn encode(&self, w: &mut Writer) {
        w.write_long(self.relative_zxid);
        w.write_strings(&self.data_watches);
        w.write_strings(&self.exist_watches);
        w.write_strings(&self.child_watches);
    }
}

impl Decode for SetWatches {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            relative_zxid: r.read_long()?,
            data_watches: r.read_strings()?,
            exist_watches: r.read_strings()?,
            child_watches: r.read_strings()?,
        })
    }
}
