//! ZooKeeper: discover instances as the children of a path, register this one as an
//! ephemeral node. Feature `zk`. waypost has its own small synchronous client over
//! `std::net::TcpStream` (no well-kept runtime-free one exists for Rust).
//!
//! ```no_run
//! use std::time::Duration;
//! use waypost::zk::{Client, Instancer, Registrar};
//! use waypost::DefaultEndpointer;
//!
//! let client = Client::builder("10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181").build()?;
//! // This process, listed as long as its session lives: /services/api/10.0.0.7:8080.
//! let _me = Registrar::new(&client, "/services/api", "10.0.0.7:8080", "10.0.0.7:8080")?
//!     .register()?;
//! let instancer = Instancer::builder(&client, "/services/payments").build()?;
//! let endpointer = DefaultEndpointer::new(instancer, |i| Ok(format!("http://{i}")))?;
//! endpointer.wait_ready(Duration::from_secs(2))?;
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! # Sessions
//!
//! A [`Client`] holds one session with the ensemble, served by one named thread,
//! `waypost-zk-session`: it connects, pings after a third of the negotiated timeout
//! of quiet, drops a connection silent for two thirds of it, and reconnects to the
//! next server with the same session (sending `addauth` again, then the watches with
//! the last zxid seen, so a change missed while disconnected is notified at once). A
//! server killed under a session costs a reconnect of tens of milliseconds on
//! loopback; the session, its ephemeral nodes and its watches survive. A session that
//! expired (cut off for longer than its timeout) is told to watchers and to
//! [`Client::session_events`], and a new session starts at once.
//!
//! Every call has a timeout (`request_timeout`, 5 s), and fails with a typed
//! [`Error::ZooKeeper`](crate::Error::ZooKeeper) ([`ZkErrorKind`](crate::ZkErrorKind):
//! `NoNode`, `NoAuth`, `ConnectionLoss`, ...). [`Client::close`] ends the session
//! (its ephemeral nodes go at once) and joins the thread.
//!
//! Digest credentials ([`ClientBuilder::digest`]) are sent with `addauth` on every
//! connection. ZooKeeper never refuses a digest: a wrong password just matches no ACL,
//! so the error shows on the first call to a node whose ACL asks for it (`NoAuth`).
//!
//! # Watch mechanism
//!
//! An [`Instancer`] (thread `waypost-zk-watch`) lists the children of its path with a
//! one-shot child watch, reads each child's data, and publishes the set; when the
//! watch fires (a child came or went) or the session expires, it lists again. A path
//! that does not exist is an empty set, looked at again every
//! [`missing_poll`](InstancerBuilder::missing_poll). A child whose data names no
//! instance is left out with a `warn!` naming it, once per version; the other
//! children stay.
//!
//! # Layouts
//!
//! - [`Layout::Plain`] (Go kit's): each child's data is `host:port`.
//! - [`Layout::Curator`] (`curator-x-discovery`'s `ServiceDiscovery`): each child of
//!   `base/<service>` is a `ServiceInstance` JSON, `{"name","id","address","port",
//!   "sslPort",...}`; an instance with `"enabled": false` is left out, as Curator's
//!   `ServiceProvider` does (its `queryForInstances` lists them). Curator's default
//!   serializer writes no `enabled` at all, which reads as enabled.
//!
//! # Registration
//!
//! A [`Registrar`] creates an ephemeral node (its parents first), and a thread,
//! `waypost-zk-registrar`, creates it again in every later session that does not own
//! it (after an expiry). A node already there is kept if this session owns it, and
//! replaced if another session does (a previous run's, not expired yet), as Curator
//! does, so that this run is listed at once rather than after the old session's
//! timeout. A create whose connection was lost without an answer is checked before
//! it is tried again (for a sequential node, by the unique `_c_<random>-` prefix of
//! its name), so a retry never leaves two nodes.

mod client;
mod instancer;
pub(crate) mod proto;
mod registrar;
mod session;

pub use client::{Client, ClientBuilder, CreateMode, NodeAcl, SessionEvent, Stat, WatchEvent};
pub use instancer::{Instancer, InstancerBuilder, Layout};
pub use registrar::{Registrar, RegistrarBuilder};
