//! ZooKeeper's client wire protocol, with no I/O: frames, jute records, codes, paths.
//!
//! Checked against ZooKeeper's record definitions (`zookeeper.jute`) and the classes
//! of ZooKeeper 3.8.0, and measured against a 3.8.0 server.
//!
//! # The protocol in brief
//!
//! - Every packet, both ways, is a [`frame`]: an int32 byte count, then that
//!   many bytes. Numbers are big-endian; a `buffer`, `ustring` or `vector` is an int32
//!   length (-1 for null) and its contents ([`codec`]).
//! - A connection starts with a [`ConnectRequest`](handshake::ConnectRequest) and its
//!   [`ConnectResponse`](handshake::ConnectResponse), without headers. Both carry a
//!   read-only flag after the jute record: 45 bytes and 37 bytes with a 16-byte
//!   password (36 from a server answering a request without the flag). A response
//!   with a timeout of 0 means the session is gone.
//! - After it, a request is a [`RequestHeader`](records::RequestHeader) (xid, opcode)
//!   and a body ([`requests`]); a reply is a [`ReplyHeader`](records::ReplyHeader)
//!   (xid, zxid, error), and a body only on success. Normal xids count up from 1 and
//!   are answered in order; pings, `addauth` and SetWatches use fixed negative xids,
//!   and notifications come with xid -1 ([`codes::xid`]).
//! - A server closes the connection without a reply when a request is over its
//!   `jute.maxbuffer` (1 MiB by default), when a reconnect's last zxid is ahead of
//!   its own, and after `AuthFailed` or closeSession.
//!
//! # Bounds
//!
//! Nothing here trusts a length from the network. The [`FrameDecoder`](frame::FrameDecoder)
//! refuses a frame over its limit (4 MiB by default) or under zero and holds only the
//! bytes that arrived; a record's buffer, string or vector is checked against the
//! bytes left in its frame before anything is taken. Every decode returns a
//! [`ProtoError`](error::ProtoError), never panics.
//!
//! # Layers
//!
//! This is the lowest of the ZooKeeper client's layers (codec; session thread; calls;
//! instancer and registrar). It says "need more bytes" where a socket would block.
// Complete for the protocol's records waypost may need (setData, ACL reads, the
// helper aliases), more than the client sends today.
#![allow(dead_code)]

pub(crate) mod acl;
pub(crate) mod codec;
pub(crate) mod codes;
pub(crate) mod error;
pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod path;
pub(crate) mod records;
pub(crate) mod requests;
mod sha1;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
