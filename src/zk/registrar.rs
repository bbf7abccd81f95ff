//! `zk::Registrar`: this instance as an ephemeral node, re-created after an expiry.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::select;
use parking_lot::Mutex;

use super::client::{Client, CreateMode, SessionEvent};
use crate::internal::backoff::Backoff;
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
    shared: Arc<Shared>,
    keeper: Arc<Mutex<Keeper>>,
}

struct Shared {
    client: Client,
    node: String,
    data: Vec<u8>,
}

#[derive(Default)]
struct Keeper {
    registered: bool,
    worker: Option<Worker>,
}

impl Registrar {
    /// A registrar for `addr` (`host:port`, checked by [`Instance::parse`]) as the node
    /// `path/name`. Errors: [`Error::InvalidInstance`] for a bad address,
    /// [`Error::InvalidConfig`] for a path that is not absolute or a name with `/`.
    pub fn new(client: &Client, path: &str, name: &str, addr: &str) -> Result<Registrar> {
        let instance = Instance::parse(addr)?;
        if !path.starts_with('/') {
            return Err(Error::invalid_config("path", "must be absolute"));
        }
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid_config(
                "name",
                "must not be empty nor contain '/'",
            ));
        }
        let node = format!("{}/{name}", path.trim_end_matches('/'));
        Ok(Registrar {
            shared: Arc::new(Shared {
                client: client.clone(),
                node,
                data: instance.addr().as_bytes().to_vec(),
            }),
            keeper: Arc::new(Mutex::new(Keeper::default())),
        })
    }

    /// The node's path.
    pub fn node(&self) -> &str {
        &self.shared.node
    }
}

impl Shared {
    /// Creates the node (and its parents), or keeps it if this session owns it.
    fn create(&self) -> Result<()> {
        let client = &self.client;
        if let Some(parent) = self
            .node
            .rsplit_once('/')
            .map(|(p, _)| p)
            .filter(|p| !p.is_empty())
        {
            client.create_all(parent)?;
        }
        for _ in 0..3 {
            match client.create(&self.node, &self.data, CreateMode::Ephemeral) {
                Ok(_) => return Ok(()),
                Err(Error::ZooKeeper(e))
                    if matches!(
                        e.kind,
                        ZkErrorKind::NodeExists | ZkErrorKind::ConnectionLoss
                    ) =>
                {
                    match client.exists(&self.node)? {
                        Some(stat) if stat.ephemeral_owner == client.session_id() => return Ok(()),
                        Some(stat) => {
                            log::info!(target: LOG,
                                "{} belongs to another session ({:#x}); creating it again",
                                self.node, stat.ephemeral_owner);
                            match client.delete(&self.node, Some(stat.version)) {
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
            .create(&self.node, &self.data, CreateMode::Ephemeral)
            .map(drop)
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
                    Ok(SessionEvent::Connected { new_session: true }) => owed = true,
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
                    log::info!(target: LOG, "registered {} again in a new session", self.node);
                    owed = false;
                    retry.reset();
                }
                Err(err) => log::warn!(target: LOG, "registering {} again: {err}", self.node),
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
        let mut keeper = self.keeper.lock();
        keeper.registered = true;
        let events = self.shared.client.session_events();
        self.shared.create()?;
        let (shared, keeper_arc) = (self.shared.clone(), self.keeper.clone());
        let registration = Registration::new(
            format!("zookeeper node {:?}", self.shared.node),
            move || deregister(&shared, &keeper_arc),
        );
        if keeper.worker.as_ref().is_none_or(Worker::is_finished) {
            let shared = self.shared.clone();
            let supervision = Supervision {
                component: "zookeeper registrar",
                log_target: LOG,
                restart: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
                clock: crate::clock::system(),
            };
            keeper.worker = Some(Worker::spawn_supervised(
                "waypost-zk-registrar",
                supervision,
                || {},
                move |stop, _progress| shared.keep(&events, stop),
                |_| {},
            )?);
        }
        Ok(registration)
    }

    /// Stops the thread and deletes the node; `Ok` when not registered or already gone.
    pub fn deregister(&self) -> Result<()> {
        deregister(&self.shared, &self.keeper)
    }
}

fn deregister(shared: &Shared, keeper: &Mutex<Keeper>) -> Result<()> {
    let mut keeper = keeper.lock();
    if let Some(mut worker) = keeper.worker.take() {
        worker.stop();
    }
    if !keeper.registered {
        return Ok(());
    }
    match shared.client.delete(&shared.node, None) {
        Ok(()) => {}
        Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NoNode => {}
        Err(err) => return Err(err),
    }
    keeper.registered = false;
    Ok(())
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("node", &self.shared.node)
            .field("registered", &self.keeper.lock().registered)
            .finish()
    }
}
