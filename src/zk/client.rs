//! [`Client`]: the ZooKeeper calls waypost makes, over one [`Session`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};

use super::proto::acl::{Acl, Id};
use super::proto::codec::{Decode, Encode, decode_exact};
use super::proto::codes::{CreateMode as WireMode, ErrorCode, OpCode};
use super::proto::path::{Chroot, parent, validate_create_path, validate_path};
use super::proto::records::{AuthPacket, Stat as WireStat};
use super::proto::requests::{
    Create2Response, CreateRequest, DeleteRequest, GetChildren2Response, GetDataResponse,
    PathWatchRequest,
};
use super::session::{CallError, Config, Session, WatchKind};
use crate::{Error, Result, ZkError, ZkErrorKind};

/// How a node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent,
    /// Deleted when the session that created it ends (closed or expired).
    Ephemeral,
    /// Persistent, with a 10-digit sequence number appended to its name.
    PersistentSequential,
    /// Ephemeral, with a 10-digit sequence number appended to its name.
    EphemeralSequential,
}

impl CreateMode {
    fn wire(self) -> WireMode {
        match self {
            CreateMode::Persistent => WireMode::Persistent,
            CreateMode::Ephemeral => WireMode::Ephemeral,
            CreateMode::PersistentSequential => WireMode::PersistentSequential,
            CreateMode::EphemeralSequential => WireMode::EphemeralSequential,
        }
    }
}

/// Who may do what with a node: one entry of its access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAcl(Acl);

impl NodeAcl {
    /// Read permission.
    pub const READ: i32 = super::proto::acl::perms::READ;
    /// Every permission (read, write, create, delete, admin).
    pub const ALL: i32 = super::proto::acl::perms::ALL;

    /// Everyone may do everything (`world:anyone`, all permissions): what
    /// [`Client::create`] uses.
    pub fn open() -> NodeAcl {
        NodeAcl(Acl::new(Self::ALL, Id::world_anyone()))
    }

    /// Everyone may read (`world:anyone`, read).
    pub fn world_read() -> NodeAcl {
        NodeAcl(Acl::new(Self::READ, Id::world_anyone()))
    }

    /// `perms` for whatever identities the creating session added with its
    /// credentials (`auth:`): with [`ClientBuilder::digest`], only sessions with the
    /// same user and password.
    pub fn creator(perms: i32) -> NodeAcl {
        NodeAcl(Acl::new(perms, Id::creator()))
    }

    /// `perms` for the digest identity of `user` with `password`.
    pub fn digest(user: &str, password: &str, perms: i32) -> NodeAcl {
        NodeAcl(Acl::new(perms, Id::digest(user, password)))
    }
}

/// A node's metadata (the fields waypost reads of ZooKeeper's `Stat`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The zxid of the node's creation.
    pub czxid: i64,
    /// The zxid of its last change.
    pub mzxid: i64,
    /// Its data's version.
    pub version: i32,
    /// The session that owns it, if ephemeral (0 otherwise).
    pub ephemeral_owner: i64,
    /// How many children it has.
    pub num_children: i32,
}

impl From<WireStat> for Stat {
    fn from(s: WireStat) -> Stat {
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            version: s.version,
            ephemeral_owner: s.ephemeral_owner,
            num_children: s.num_children,
        }
    }
}

pub use super::session::{SessionEvent, WatchEvent};

/// A ZooKeeper client: one session with the ensemble and the calls waypost makes.
/// Clones share the session; [`close`](Client::close) (or dropping the last clone)
/// ends it and joins its thread.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    chroot: Option<Chroot>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.inner.session)
            .field("chroot", &self.inner.chroot.as_ref().map(Chroot::root))
            .finish()
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
#[must_use = "a builder does nothing until build()"]
pub struct ClientBuilder {
    servers: Vec<String>,
    chroot: Option<String>,
    session_timeout: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    auth: Vec<AuthPacket>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("servers", &self.servers)
            .field("chroot", &self.chroot)
            .field("session_timeout", &self.session_timeout)
            .field("auth", &self.auth.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for the ensemble `connect`: `host:port,host:port[/chroot]`, as
    /// ZooKeeper's own clients take it.
    pub fn builder(connect: &str) -> ClientBuilder {
        let (hosts, chroot) = match connect.find('/') {
            Some(at) => (&connect[..at], Some(connect[at..].to_owned())),
            None => (connect, None),
        };
        ClientBuilder {
            servers: hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            chroot,
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            auth: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// The session timeout asked for; the server clamps it to its own bounds (by
    /// default 2 to 20 ticks). Ephemeral nodes outlive a dead client by about this
    /// long. Default 10 s.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Bound on one TCP connect and handshake. Default 1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on one call, waiting for a connection included. Default 5 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Digest credentials, sent with `addauth` on every connection. ZooKeeper never
    /// refuses a digest: a wrong password just matches no ACL, and calls on nodes
    /// that ask for it fail with [`ZkErrorKind::NoAuth`].
    pub fn digest(mut self, user: &str, password: &str) -> Self {
        self.auth.push(AuthPacket::digest(user, password));
        self
    }

    /// Checks the settings and starts the session's thread, which connects at once
    /// (calls wait for it). Errors: [`Error::InvalidConfig`] for no server, a chroot
    /// that is not a valid path, or a zero timeout; [`Error::Io`] if the thread cannot
    /// start.
    pub fn build(self) -> Result<Client> {
        if self.servers.is_empty() {
            return Err(Error::invalid_config("servers", "no server address"));
        }
        let chroot = match self.chroot.as_deref() {
            None | Some("/") => None,
            Some(root) => Some(
                Chroot::new(root).map_err(|e| Error::invalid_config("chroot", e.to_string()))?,
            ),
        };
        for (field, value) in [
            ("session_timeout", self.session_timeout),
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(field, "must be more than zero"));
            }
        }
        let session = Session::start(Config {
            servers: self.servers,
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            auth: self.auth,
            max_frame: super::proto::frame::DEFAULT_MAX_FRAME,
        })
        .map_err(|source| Error::Io {
            operation: "starting the zookeeper session thread",
            source,
        })?;
        Ok(Client {
            inner: Arc::new(Inner { session, chroot }),
        })
    }
}

impl Client {
    /// Creates `path` with `data`, open to everyone (`world:anyone`); its path as
    /// created (with the sequence number of a sequential mode).
    pub fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.create_with_acl(path, data, mode, &[NodeAcl::open()])
    }

    /// Creates `path` with `data` and the access control list `acl` (e.g.
    /// [`NodeAcl::creator`] with [`ClientBuilder::digest`], and
    /// [`NodeAcl::world_read`]). An empty list is refused by the server
    /// ([`ZkErrorKind::Server`], InvalidACL).
    pub fn create_with_acl(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        acl: &[NodeAcl],
    ) -> Result<String> {
        let full = self.full_create_path(path, mode)?;
        let request = CreateRequest {
            path: full,
            data: data.to_vec(),
            acl: acl.iter().map(|a| a.0.clone()).collect(),
            mode: mode.wire(),
        };
        let created: Create2Response = self.call("create", path, OpCode::Create2, &request)?;
        Ok(self.strip(&created.path))
    }

    /// Creates every missing node of `path`, itself included, as persistent nodes
    /// with no data; `Ok` if they exist.
    pub fn create_all(&self, path: &str) -> Result<()> {
        check(path)?;
        let mut missing = Vec::new();
        let mut at = Some(path);
        while let Some(p) = at.filter(|p| *p != "/") {
            if self.exists(p)?.is_some() {
                break;
            }
            missing.push(p);
            at = parent(p);
        }
        for p in missing.into_iter().rev() {
            match self.create(p, &[], CreateMode::Persistent) {
                Ok(_) => {}
                Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NodeExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes `path` if its version is `version` (`None`: any version).
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        let request = DeleteRequest {
            path: self.full_path(path)?,
            version: version.unwrap_or(-1),
        };
        self.call::<()>("delete", path, OpCode::Delete, &request)
    }

    /// The node's metadata, or `None` if there is no such node.
    pub fn exists(&self, path: &str) -> Result<Option<Stat>> {
        let request = PathWatchRequest {
            path: self.full_path(path)?,
            watch: false,
        };
        match self.call::<WireStat>("exists", path, OpCode::Exists, &request) {
            Ok(stat) => Ok(Some(stat.into())),
            Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NoNode => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data and metadata.
    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.get_data_until(path, None)
    }

    /// [`get_data`](Self::get_data), given up when `cancel` fires.
    pub(crate) fn get_data_until(
        &self,
        path: &str,
        cancel: Option<&Receiver<()>>,
    ) -> Result<(Vec<u8>, Stat)> {
        let request = PathWatchRequest {
            path: self.full_path(path)?,
            watch: false,
        };
        let answer = self
            .inner
            .session
            .call_until(OpCode::GetData, &request, None, cancel);
        let answer: GetDataResponse = decoded("getData", path, answer)?;
        Ok((answer.data, answer.stat.into()))
    }

    /// The names of the node's children, in no particular order.
    pub fn get_children(&self, path: &str) -> Result<Vec<String>> {
        let request = PathWatchRequest {
            path: self.full_path(path)?,
            watch: false,
        };
        let answer: GetChildren2Response =
            self.call("getChildren", path, OpCode::GetChildren2, &request)?;
        Ok(answer.children)
    }

    /// The children, and a one-shot watch: the receiver gets one [`WatchEvent`] when
    /// a child comes or goes, the node goes, or the session expires.
    pub fn watch_children(&self, path: &str) -> Result<(Vec<String>, Receiver<WatchEvent>)> {
        self.watch_children_until(path, None)
    }

    /// [`watch_children`](Self::watch_children), given up when `cancel` fires.
    pub(crate) fn watch_children_until(
        &self,
        path: &str,
        cancel: Option<&Receiver<()>>,
    ) -> Result<(Vec<String>, Receiver<WatchEvent>)> {
        let full = self.full_path(path)?;
        let (tx, rx) = unbounded();
        let request = PathWatchRequest {
            path: full.clone(),
            watch: true,
        };
        let answer = self.inner.session.call_until(
            OpCode::GetChildren2,
            &request,
            Some((WatchKind::Child, full, tx)),
            cancel,
        );
        let answer: GetChildren2Response = decoded("getChildren", path, answer)?;
        Ok((answer.children, rx))
    }

    /// The session's state changes from now on.
    pub fn session_events(&self) -> Receiver<SessionEvent> {
        self.inner.session.subscribe()
    }

    /// The session's id (0 before the first connection).
    pub fn session_id(&self) -> i64 {
        self.inner.session.credentials().0
    }

    /// The session's password: with the id, what takes the session over on another
    /// connection (a test forces an expiry this way). Keep it secret.
    pub fn session_password(&self) -> Vec<u8> {
        self.inner.session.credentials().1
    }

    /// Ends the session (its ephemeral nodes go at once) and joins its thread.
    /// Idempotent; later calls fail with [`ZkErrorKind::Closed`].
    pub fn close(&self) {
        self.inner.session.close();
    }

    fn call<T: Decode>(
        &self,
        operation: &'static str,
        path: &str,
        op: OpCode,
        body: &dyn Encode,
    ) -> Result<T> {
        decoded(operation, path, self.inner.session.call(op, body, None))
    }

    fn full_path(&self, path: &str) -> Result<String> {
        check(path)?;
        Ok(match &self.inner.chroot {
            Some(chroot) => chroot.join(path),
            None => path.to_owned(),
        })
    }

    fn full_create_path(&self, path: &str, mode: CreateMode) -> Result<String> {
        validate_create_path(path, mode.wire().is_sequential()).map_err(|e| {
            Error::from(ZkError::new(ZkErrorKind::Invalid, "create", e.to_string()))
        })?;
        Ok(match &self.inner.chroot {
            Some(chroot) => chroot.join(path),
            None => path.to_owned(),
        })
    }

    fn strip(&self, server_path: &str) -> String {
        match &self.inner.chroot {
            Some(chroot) => chroot.strip(server_path).unwrap_or(server_path).to_owned(),
            None => server_path.to_owned(),
        }
    }
}

fn check(path: &str) -> Result<()> {
    validate_path(path)
        .map_err(|e| Error::from(ZkError::new(ZkErrorKind::Invalid, "path", e.to_string())))
}

/// A session call's answer, decoded, or its error as waypost's.
fn decoded<T: Decode>(
    operation: &'static str,
    path: &str,
    answer: std::result::Result<super::session::Answer, CallError>,
) -> Result<T> {
    let error = |kind: ZkErrorKind| ZkError::new(kind, operation, path);
    match answer {
        Ok((_, body)) => decode_exact(&body).map_err(|_| Error::from(error(ZkErrorKind::Invalid))),
        Err(CallError::Server(code)) => {
            let kind = match code {
                ErrorCode::NoNode => ZkErrorKind::NoNode,
                ErrorCode::NodeExists => ZkErrorKind::NodeExists,
                ErrorCode::NoAuth => ZkErrorKind::NoAuth,
                ErrorCode::NotEmpty => ZkErrorKind::NotEmpty,
                ErrorCode::BadVersion => ZkErrorKind::BadVersion,
                ErrorCode::SessionExpired => ZkErrorKind::SessionExpired,
                ErrorCode::ConnectionLoss => ZkErrorKind::ConnectionLoss,
                _ => ZkErrorKind::Server,
            };
            Err(error(kind).with_code(code.code()).into())
        }
        Err(CallError::ConnectionLoss) => Err(error(ZkErrorKind::ConnectionLoss).into()),
        Err(CallError::Timeout) => Err(error(ZkErrorKind::Timeout).into()),
        Err(CallError::Closed) => Err(error(ZkErrorKind::Closed).into()),
        Err(CallError::Proto(_)) => Err(error(ZkErrorKind::Invalid).into()),
    }
}
