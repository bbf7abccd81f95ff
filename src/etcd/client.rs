//! The narrow etcd [`Client`] trait (only the calls the instancer and registrar make)
//! and its payloads; [`HttpClient`](super::HttpClient) is the real one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::Result;
use crate::internal::http::encoding::{base64, int64};

/// The etcd calls waypost makes. [`HttpClient`](super::HttpClient) is the real one; tests give the
/// instancer and registrar a fake.
///
/// Keys and values are bytes, as etcd's are. Every call is bounded by a timeout. A
/// client can be [`fork`](Client::fork)ed into one with its own connections for a
/// thread that must be stoppable on its own, and [`shutdown`](Client::shutdown) cuts
/// that client's calls short, a watch stream included.
pub trait Client: Send + Sync + fmt::Debug {
    /// Every key under `prefix` with its value, and the store's revision the answer is
    /// from (`kv/range` with `range_end` the prefix's end).
    fn range_prefix(&self, prefix: &[u8]) -> Result<Range>;

    /// Watches the keys under `request.prefix` from `request.start_revision` on: each
    /// message of the stream goes to `each` as it arrives, until the server ends the
    /// stream, `each` answers `false`, or nothing arrives for `request.idle`
    /// (an error of kind [`Timeout`](crate::HttpErrorKind::Timeout)). A server's error line,
    /// or a stream cut in the middle of a message, is an error.
    fn watch(
        &self,
        request: &WatchRequest<'_>,
        each: &mut dyn FnMut(WatchResponse) -> bool,
    ) -> Result<()>;

    /// Grants a lease of `ttl` (whole seconds, at least one; etcd may grant more).
    fn grant_lease(&self, ttl: Duration) -> Result<Lease>;

    /// Renews lease `id` once: its TTL as granted again, or `None` when etcd no longer
    /// knows the lease (expired, revoked, or etcd restarted from empty).
    fn keep_alive(&self, id: i64) -> Result<Option<Duration>>;

    /// Revokes lease `id`, deleting its keys; an unknown lease is `Ok`.
    fn revoke_lease(&self, id: i64) -> Result<()>;

    /// Puts `key` = `value`, attached to lease `lease` (0: none).
    fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<()>;

    /// Deletes `key`; a missing key is `Ok`.
    fn delete(&self, key: &[u8]) -> Result<()>;

    /// A client with the same settings and its own connections, so that shutting it
    /// down affects nobody else.
    fn fork(&self) -> Arc<dyn Client>;

    /// A [`fork`](Client::fork) whose calls each give up after `timeout` at most (a
    /// watch: its start): the [`Registrar`](super::Registrar)'s keepalive bounds every
    /// call by TTL/3 this way, so that one call to a hung member cannot outlast the
    /// lease. [`HttpClient`](super::HttpClient) lowers its request timeout to `timeout`. The default is
    /// `fork()`: override it in a client whose calls can hang.
    fn fork_with_timeout(&self, timeout: Duration) -> Arc<dyn Client> {
        let _ = timeout;
        self.fork()
    }

    /// Cuts this client's calls short, now and later (they fail with
    /// [`HttpErrorKind::Cancelled`](crate::HttpErrorKind::Cancelled)). Idempotent.
    fn shutdown(&self);
}

/// What [`Client::watch`] is asked.
#[derive(Debug, Clone, Copy)]
pub struct WatchRequest<'a> {
    /// The key prefix watched.
    pub prefix: &'a [u8],
    /// The first revision whose changes are sent (inclusive).
    pub start_revision: i64,
    /// The longest time without a message before the stream is given up.
    pub idle: Duration,
}

/// One key and its value, as a range or a watch event gives it.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    /// The key.
    #[serde(with = "base64")]
    pub key: Vec<u8>,
    /// The value (empty for a delete event).
    #[serde(with = "base64")]
    pub value: Vec<u8>,
    /// The revision of the key's last change.
    #[serde(with = "int64")]
    pub mod_revision: i64,
    /// The lease the key is attached to (0: none).
    #[serde(with = "int64")]
    pub lease: i64,
}

impl KeyValue {
    /// A key and its value, changed at `mod_revision`.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, mod_revision: i64) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision,
            lease: 0,
        }
    }
}

/// What [`Client::range_prefix`] answers.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    /// The keys and values, in key order.
    pub kvs: Vec<KeyValue>,
    /// The store's revision the answer is from.
    pub revision: i64,
}

impl Range {
    /// An answer listing `kvs` at `revision`.
    pub fn new(kvs: Vec<KeyValue>, revision: i64) -> Range {
        Range { kvs, revision }
    }
}

/// What happened to a key, in a [`WatchEvent`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EventKind {
    /// The key was created or changed (etcd omits the type for a put).
    #[default]
    #[serde(rename = "PUT")]
    Put,
    /// The key was deleted.
    #[serde(rename = "DELETE")]
    Delete,
}

/// One change of one key.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WatchEvent {
    /// A put or a delete.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The key (and for a put its new value) with the revision of the change.
    pub kv: KeyValue,
}

impl WatchEvent {
    /// A put of `kv`.
    pub fn put(kv: KeyValue) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Put,
            kv,
        }
    }

    /// A delete of `key` at `revision`.
    pub fn delete(key: impl Into<Vec<u8>>, revision: i64) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::new(key, Vec::new(), revision),
        }
    }
}

/// One message of a watch stream.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchResponse {
    /// The store's revision when the message was sent (0 when the message has none,
    /// as on a cancel).
    pub revision: i64,
    /// The watch was created: the first message of a stream.
    pub created: bool,
    /// The watch was cancelled by the server; the stream brings nothing more.
    pub canceled: bool,
    /// With `canceled`: the start revision was compacted; this is the oldest revision
    /// still kept (0 otherwise).
    pub compact_revision: i64,
    /// With `canceled`: why, e.g. a permission denied (empty otherwise).
    pub cancel_reason: String,
    /// The changes, in revision order.
    pub events: Vec<WatchEvent>,
}

/// A lease granted by [`Client::grant_lease`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease's id.
    pub id: i64,
    /// The TTL etcd granted.
    pub ttl: Duration,
}

impl Lease {
    /// A lease `id` granted for `ttl`.
    pub fn new(id: i64, ttl: Duration) -> Lease {
        Lease { id, ttl }
    }
}
