//! `zk::Registrar`: this instance as an ephemeral node, re-created after an expiry.

use std::fmt;
use std::time::Duration;

use crossbeam_channel::select;
use parking_lot::Mutex;

use super::client::{Client, CreateMode, SessionEvent};
use super::instancer::Layout;
use crate::internal::backoff::Backoff;
use crate::internal::keeper::Keeper;
use crate::internal::worker::{StopSignal, Supervision, Worker};
use crate::{Error, Instance, Registration, Result, ZkErrorKind};

const LOG: &str = "waypost::zk";

/// Registers one instance as the ephemeral node `path/name` with the instance as its
/// data; see the [module docs](super).
///
/// The node lives as long as the client's session. When the session expires (the
/// client was cut off longer than the session timeout), ZooKeeper deletes the node; a
/// `waypost-zk-registrar` thread sees the new session and creates the node again.
///
/// A node already there when creating is read: if this session owns it, it is kept;
/// if another session does (a previous run of this process whose session has not
/// expired yet), it is deleted and created again, as Curator's service discovery
/// does, so that this run's registration is what is listed at once rather than after
/// the old session's timeout. A create whose connection was lost with no answer is
/// checked the same way before it is tried again, so a retry never leaves two nodes.
pub struct Registrar {
    keeper: Keeper<Shared>,
}

struct Shared {
    client: Client,
    parent: String,
    /// The node's name, or for a sequential node the prefix the server appends to.
    prefix: String,
    sequential: bool,
    /// The node as last created.
    node: Mutex<String>,
    /// The session the node was last created in.
    created_in: std::sync::atomic::AtomicI64,
    data: Vec<u8>,
}

/// Builds a [`Registrar`]; see [`Registrar::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct RegistrarBuilder {
    client: Client,
    path: String,
    addr: String,
    name: Option<String>,
    sequential: bool,
    layout: Layout,
}

impl Registrar {
    /// A builder for the instance at `addr` (`host:port`) as a child of `path`.
    pub fn builder(
        client: &Client,
        path: impl Into<String>,
        addr: impl Into<String>,
    ) -> RegistrarBuilder {
        RegistrarBuilder {
            client: client.clone(),
            path: path.into(),
            addr: addr.into(),
            name: None,
            sequential: false,
            layout: Layout::Plain,
        }
    }

    /// A registrar for `addr` as the node `path/name`, data `host:port`: the same as
    /// `Registrar::builder(client, path, addr).name(name).build()`.
    pub fn new(client: &Client, path: &str, name: &str, addr: &str) -> Result<Registrar> {
        Registrar::builder(client, path, addr).name(name).build()
    }

    /// The node's path (for a sequential node: as last created, or its prefix before
    /// the first registration).
    pub fn node(&self) -> String {
        self.keeper.shared().node.lock().clone()
    }
}

impl RegistrarBuilder {
    /// The node's name. Default: the address.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A sequential node: ZooKeeper appends a sequence number to the name. waypost
    /// puts a unique prefix in the name (`_c_<random>-`), so that after a create whose
    /// connection was lost it finds its own node among the children instead of
    /// creating a second one.
    pub fn sequential(mut self) -> Self {
        self.sequential = true;
        self
    }

    /// The data's layout. With [`Layout::Curator`] the node is Curator's
    /// `ServiceInstance` JSON (service name: the last segment of the path; id: the
    /// node's name), so that Java services using Curator's service discovery find
    /// this instance. Default [`Layout::Plain`]: `host:port`.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Validates. Errors: [`Error::InvalidInstance`] for a bad address,
    /// [`Error::InvalidConfig`] for a path that is not absolute or a name with `/`.
    pub fn build(self) -> Result<Registrar> {
        let instance = Instance::parse(&self.addr)?;
        if !self.path.starts_with('/') {
            return Err(Error::invalid_config("path", "must be absolute"));
        }
        let name = self.name.unwrap_or_else(|| self.addr.clone());
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid_config(
                "name",
                "must not be empty nor contain '/'",
            ));
        }
        let parent = self.path.trim_end_matches('/').to_owned();
        let prefix = match self.sequential {
            true => format!(
                "_c_{:016x}{:016x}-{name}",
                crate::internal::rand::next_u64(),
                crate::internal::rand::next_u64()
            ),
            false => name.clone(),
        };
        let data = match self.layout {
            Layout::Plain => instance.addr().as_bytes().to_vec(),
            Layout::Curator => curator_json(&parent, &name, &instance),
        };
        let shared = Shared {
            client: self.client,
            node: Mutex::new(format!("{parent}/{prefix}")),
            created_in: std::sync::atomic::AtomicI64::new(0),
            parent,
            prefix,
            sequential: self.sequential,
            data,
        };
        Ok(Registrar {
            keeper: Keeper::new(shared, Shared::delete),
        })
    }
}

/// Curator's `ServiceInstance` JSON for `instance`, as its default serializer writes
/// it (no `enabled`: Curator reads a missing one as enabled).
fn curator_json(parent: &str, id: &str, instance: &Instance) -> Vec<u8> {
    let service = parent.rsplit('/').next().unwrap_or_default();
    let host = instance.host().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let value = serde_json::json!({
        "name": service,
        "id": id,
        "address": host,
        "port": instance.port(),
        "sslPort": null,
        "payload": null,
        "registrationTimeUTC": now,
        "serviceType": "DYNAMIC",
        "uriSpec": null,
    });
    serde_json::to_vec(&value).expect("JSON values serialize")
}

impl Shared {
    /// Creates the node (and its parents), or keeps it if this session owns it.
    fn create(&self) -> Result<()> {
        self.create_node()?;
        // The session that owns the node: a later new session must create it again
        // (the session may have changed during the create: asking is exact).
        let node = self.node.lock().clone();
        let owner = self
            .client
            .exists(&node)?
            .map_or(0, |stat| stat.ephemeral_owner);
        self.created_in
            .store(owner, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn create_node(&self) -> Result<()> {
        let client = &self.client;
        client.create_all(&self.parent)?;
        if self.sequential {
            return self.create_sequential();
        }
        let node = format!("{}/{}", self.parent, self.prefix);
        *self.node.lock() = node.clone();
        for _ in 0..3 {
            match client.create(&node, &self.data, CreateMode::Ephemeral) {
                Ok(_) => return Ok(()),
                Err(Error::ZooKeeper(e))
                    if matches!(
                        e.kind,
                        ZkErrorKind::NodeExists | ZkErrorKind::ConnectionLoss
                    ) =>
                {
                    match client.exists(&node)? {
                        Some(stat) if stat.ephemeral_owner == client.session_id() => return Ok(()),
                        Some(stat) => {
                            log::info!(target: LOG,
                                "{node} belongs to another session ({:#x}); creating it again",
                                stat.ephemeral_owner);
                            match client.delete(&node, Some(stat.version)) {
                                Ok(()) => {}
                                Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NoNode => {}
                                Err(err) => return Err(err),
                            }
                        }
                        None => {} // the lost create did not happen: try again
                    }
                }
                Err(err) => return Err(err),
            }
        }
        client
            .create(&node, &self.data, CreateMode::Ephemeral)
            .map(drop)
    }

    /// A sequential node: after a lost create, this session's node is looked for by
    /// its unique prefix before another is made.
    fn create_sequential(&self) -> Result<()> {
        let client = &self.client;
        let base = format!("{}/{}", self.parent, self.prefix);
        for _ in 0..3 {
            match client.create(&base, &self.data, CreateMode::EphemeralSequential) {
                Ok(created) => {
                    *self.node.lock() = created;
                    return Ok(());
                }
                Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::ConnectionLoss => {
                    for child in client.get_children(&self.parent)? {
                        if !child.starts_with(&self.prefix) {
                            continue;
                        }
                        let path = format!("{}/{child}", self.parent);
                        if let Some(stat) = client.exists(&path)? {
                            if stat.ephemeral_owner == client.session_id() {
                                *self.node.lock() = path;
                                return Ok(());
                            }
                        }
                    }
                }
                Err(err) => return Err(err),
            }
        }
        let created = client.create(&base, &self.data, CreateMode::EphemeralSequential)?;
        *self.node.lock() = created;
        Ok(())
    }

    /// The registrar's thread: on every new session, create the node again.
    fn keep(&self, events: &crossbeam_channel::Receiver<SessionEvent>, stop: &StopSignal) {
        let mut retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut owed = false;
        loop {
            let timer = match owed {
                true => crossbeam_channel::after(retry.next_delay()),
                false => crossbeam_channel::never(),
            };
            select! {
                recv(stop.channel()) -> _ => return,
                recv(events) -> event => match event {
                    // The first connection, or one the node was already made in, owes
                    // nothing.
                    Ok(SessionEvent::Connected { new_session: true }) => {
                        owed = self.client.session_id()
                            != self.created_in.load(std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(_) => continue,
                    Err(_) => return,
                },
                recv(timer) -> _ => {}
            }
            if !owed {
                continue;
            }
            match self.create() {
                Ok(()) => {
                    log::info!(target: LOG, "registered {} again in a new session", self.node.lock());
                    owed = false;
                    retry.reset();
                }
                Err(err) => {
                    log::warn!(target: LOG, "registering {} again: {err}", self.node.lock())
                }
            }
        }
    }
}

impl crate::Registrar for Registrar {
    fn register(&self) -> Result<Registration> {
        Registrar::register(self)
    }
    fn deregister(&self) -> Result<()> {
        Registrar::deregister(self)
    }
}

impl Registrar {
    /// Creates the node and starts the thread that re-creates it after an expiry;
    /// returns the guard that deregisters on drop.
    pub fn register(&self) -> Result<Registration> {
        // Subscribed before the create: an expiry right after it is not missed.
        let events = self.keeper.shared().client.session_events();
        self.keeper.register(
            Shared::create,
            |shared| format!("zookeeper node {:?}", shared.node.lock()),
            |shared| {
                let shared = shared.clone();
                let supervision = Supervision {
                    component: "zookeeper registrar",
                    log_target: LOG,
                    restart: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
                    clock: crate::clock::system(),
                };
                Worker::spawn_supervised(
                    "waypost-zk-registrar",
                    supervision,
                    || {},
                    move |stop, _progress| shared.keep(&events, stop),
                    |_| {},
                )
                .map(Some)
            },
        )
    }

    /// Stops the thread and deletes the node; `Ok` when not registered or already gone.
    pub fn deregister(&self) -> Result<()> {
        self.keeper.deregister()
    }
}

impl Shared {
    /// Deletes the node; one already gone is `Ok`.
    fn delete(&self) -> Result<()> {
        let node = self.node.lock().clone();
        match self.client.delete(&node, None) {
            Ok(()) => Ok(()),
            Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NoNode => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("node", &*self.keeper.shared().node.lock())
            .field("registered", &self.keeper.status().0)
            .finish()
    }
}
