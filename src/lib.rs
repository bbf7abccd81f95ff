//! Client-side service discovery and load balancing for blocking Rust.
//!
//! waypost lets a service find the instances of another service through a registry
//! and spread its calls over them, with plain threads and channels: no async runtime.
//! It is built for blocking services, threaded servers and codebases without tokio.
//!
//! # The model
//!
//! ```text
//!  registry ──watch──▶ Instancer ──Event──▶ Endpointer ──endpoints()──▶ Balancer ──▶ your call
//!  (memory, file,      (one thread,          (cache: instance -> endpoint,   (round-robin,
//!   consul, ...)        full sets)            factory + closer)               random, retry)
//!
//!  this service ──▶ Registrar ──register / keep alive / deregister──▶ registry
//! ```
//!
//! - An [`Instancer`] watches one service in a registry and sends [`Event`]s to its
//!   subscribers: the complete current set of [`Instance`]s, or an error meaning "the
//!   set may be stale". A new subscriber gets the current state at once.
//! - An [`Endpointer`] ([`DefaultEndpointer`]) subscribes to an instancer and turns each
//!   instance into an endpoint of your type with a factory closure (see [`Made`]), closing endpoints whose
//!   instance went away. [`Endpointer::endpoints`] returns a snapshot, [`Endpoints`]:
//!   each endpoint beside its instance, read without allocating or contending with
//!   other readers, holding no lock, and keeping its endpoints open while it lives.
//!   [`DefaultEndpointer::status`] tells how fresh the set is.
//! - A [`Balancer`](lb::Balancer) picks one endpoint per call: [`lb::RoundRobin`],
//!   [`lb::Random`]; [`lb::Retry`] tries again on another pick within a deadline.
//! - A [`Registrar`] puts this service in a registry and removes it again;
//!   a [`Registration`] guard deregisters on drop.
//!
//! # A tour
//!
//! Register two instances in the embedded [`MemoryRegistry`], watch them through an
//! endpointer, and call them round-robin with retries:
//!
//! ```
//! use std::time::Duration;
//! use waypost::lb::{Balancer, Retry, RoundRobin};
//! use waypost::{DefaultEndpointer, Endpointer, Instance, MemoryRegistry};
//!
//! let registry = MemoryRegistry::new();
//! let _a = registry.registrar("greeter", Instance::parse("10.0.0.1:8080")?).register()?;
//! let _b = registry.registrar("greeter", Instance::parse("10.0.0.2:8080")?).register()?;
//!
//! // The factory makes an endpoint per instance; here just a URL.
//! let endpointer = DefaultEndpointer::new(registry.instancer("greeter"), |i| {
//!     Ok(format!("http://{i}/hello"))
//! })?;
//! endpointer.wait_ready(Duration::from_secs(1))?;
//!
//! // A snapshot: each endpoint beside the instance it was made for.
//! for (instance, url) in endpointer.endpoints()?.pairs() {
//!     assert!(url.contains(instance.addr()));
//! }
//!
//! let balancer = RoundRobin::new(endpointer);
//! assert_ne!(*balancer.pick()?, *balancer.pick()?);
//!
//! let retry = Retry::builder(balancer).max_attempts(3).timeout(Duration::from_secs(1)).build()?;
//! let answer = retry.call(|url: &String, _deadline| -> Result<String, std::io::Error> {
//!     Ok(format!("called {url}")) // a real endpoint would make a request bounded by the deadline
//! });
//! assert!(answer.unwrap().starts_with("called http://10.0.0."));
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! An instancer can be watched by hand, too: every event is a complete set.
//!
//! ```
//! use waypost::{Event, MemoryRegistry, Instance};
//! let registry = MemoryRegistry::new();
//! let instancer = registry.instancer("greeter");
//! let (tx, rx) = waypost::crossbeam_channel::unbounded();
//! instancer.subscribe(tx);
//! let registrar = registry.registrar("greeter", Instance::new("10.0.0.1:8080"));
//! let _registration = registrar.register()?;
//! let sizes: Vec<usize> = rx.try_iter().map(|event| match event {
//!     Event::Instances(set) => set.len(),
//!     Event::Error(err) => panic!("{err}"),
//! }).collect();
//! assert_eq!(sizes, [0, 1]);
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! # From a threaded server
//!
//! One instancer, one endpointer and one balancer per service you call, built once at
//! start-up and shared by every worker thread (in an `Arc`, or a `static`): a pick
//! takes no lock and allocates nothing, and the threads do not contend.
//!
//! ```
//! use std::{sync::Arc, thread, time::Duration};
//! use waypost::lb::{Retry, RoundRobin};
//! use waypost::{DefaultEndpointer, Instance, MemoryRegistry};
//!
//! let registry = MemoryRegistry::new();
//! let _up = registry.registrar("users", Instance::new("10.0.0.1:8080")).register()?;
//! let endpointer = DefaultEndpointer::new(registry.instancer("users"), |i| {
//!     Ok(format!("http://{i}")) // an HTTP client per instance, in a real service
//! })?;
//! endpointer.wait_ready(Duration::from_secs(2))?;
//! let users = Arc::new(
//!     Retry::builder(RoundRobin::new(endpointer)).timeout(Duration::from_millis(800)).build()?,
//! );
//!
//! let workers: Vec<_> = (0..4)
//!     .map(|worker| {
//!         let users = Arc::clone(&users);
//!         thread::spawn(move || {
//!             // Per request: one call, its I/O bounded by what is left of the deadline.
//!             users.call(|base: &String, deadline| {
//!                 let timeout = deadline.remaining(); // give this to the socket / client
//!                 Ok::<_, std::io::Error>(format!("{base}/users/{worker} within {timeout:?}"))
//!             })
//!         })
//!     })
//!     .collect();
//! for worker in workers {
//!     assert!(worker.join().unwrap().is_ok());
//! }
//! // Shutdown: stop taking requests and join the workers first, then drop the balancer
//! // (its endpointer closes every endpoint), then the registration (or drop it first,
//! // to leave the registry before draining).
//! drop(users);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What not to do:
//! - Do not build an endpointer per request: each owns a thread and a subscription.
//! - Do not keep a snapshot ([`Endpoints`]) or a [`Pick`](lb::Pick) beyond the call: it
//!   keeps the endpoints it holds from being closed after their instances left.
//! - Do not block inside a factory or closer on something a worker thread holds: they
//!   run on the endpointer's threads (`waypost-factory`, `waypost-endpointer`).
//! - Give every call a timeout from its [`Deadline`](lb::Deadline): `Retry` cannot
//!   interrupt a call that ignores it.
//!
//! `examples/threaded_client.rs` in the repository is the same with real HTTP
//! servers, 8 worker threads and (with a flag) Consul.
//!
//!
//! Every thread waypost starts is named (`waypost-endpointer`, `waypost-factory`, `waypost-file-watch`,
//! ...), waits only on channels that a stop interrupts, and is joined by `close()`,
//! `stop()` or drop. Nothing runs in the background after its owner is gone.
//!
//! # Errors
//!
//! One error type, [`Error`], `#[non_exhaustive]`, with typed payloads, `source()` and
//! predicates such as [`Error::is_timeout`]. Bad input is a typed error, never a panic.
//!
//! # Backends
//!
//! - [`memory`]: an in-process registry, the embedded default for tests and demos.
//! - [`file`](mod@file): instances listed in a text file, re-read when it changes.
//! - [`consul`] (feature `consul`): blocking queries on a Consul agent's health API;
//!   registration with a TTL check kept passing by a heartbeat thread.
//! - [`etcd`] (feature `etcd`): watches of a key prefix through etcd's JSON gateway;
//!   registration on a lease kept alive.
//! - [`zk`] (feature `zk`): ZooKeeper children watches with waypost's own client;
//!   registration as an ephemeral node of a session kept alive.
//! - [`dnssrv`] (feature `dnssrv`): SRV or A/AAAA lookups, polled following the
//!   records' TTLs.
//! - [`eureka`] (feature `eureka`): an application's instances from a Eureka server's
//!   REST API; registration with a lease renewed by heartbeat.
//! - [`PushInstancer`]: complete sets from a source of your own, with the
//!   [`Instancer`] contract kept for you.
//!
//! The network backends are on by default. HTTP backends take a [`TlsConfig`] for
//! `https://` addresses (feature `tls`, on by default; without it such an address is
//! refused at `build()`).
//!
//! # Discovery URLs
//!
//! [`discover`] turns one string into a running instancer of the right backend, and
//! [`register`] registers an instance through one; credentials and TLS come from
//! [`DiscoveryOptions`], never from the URL. The grammar (details in
//! [`discovery`]):
//!
#![doc = include_str!("discovery/grammar.md")]
//!
//! The `waypost` command (feature `cli`) takes the same URLs: `waypost watch URL`
//! prints a service's instances as they change.
// Docs built without a feature still link its items' names: to this list.
#![cfg_attr(not(feature = "consul"), doc = "", doc = "[`consul`]: #backends")]
#![cfg_attr(not(feature = "etcd"), doc = "", doc = "[`etcd`]: #backends")]
#![cfg_attr(not(feature = "zk"), doc = "", doc = "[`zk`]: #backends")]
#![cfg_attr(not(feature = "dnssrv"), doc = "", doc = "[`dnssrv`]: #backends")]
#![cfg_attr(not(feature = "eureka"), doc = "", doc = "[`eureka`]: #backends")]
#![cfg_attr(not(feature = "tls"), doc = "", doc = "[`TlsConfig`]: #backends")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod clock;
mod endpoint_cache;
mod endpointer;
mod endpointer_options;
mod error;
mod event;
mod factory;
mod instance;
mod instancer;
mod internal;
mod maker;
mod registrar;
mod snapshot;
mod subscription;
mod updater;

#[cfg(feature = "consul")]
#[cfg_attr(docsrs, doc(cfg(feature = "consul")))]
pub mod consul;
pub mod discovery;
#[cfg(feature = "dnssrv")]
#[cfg_attr(docsrs, doc(cfg(feature = "dnssrv")))]
pub mod dnssrv;
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
#[cfg(feature = "eureka")]
#[cfg_attr(docsrs, doc(cfg(feature = "eureka")))]
pub mod eureka;
pub mod file;
pub mod lb;
pub mod memory;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
#[cfg(feature = "zk")]
#[cfg_attr(docsrs, doc(cfg(feature = "zk")))]
pub mod zk;

pub use clock::{Clock, ManualClock, SystemClock};
pub use discovery::{DiscoveryOptions, discover, register};
pub use endpointer::{DefaultEndpointer, Endpointer, FixedEndpointer};
pub use endpointer_options::{EndpointerOptions, EndpointerState, Status};
pub use error::{
    BoxError, DnsError, DnsErrorKind, Error, HttpError, HttpErrorKind, InvalidInstance, Result,
    ZkError, ZkErrorKind,
};
pub use event::{Event, InstanceSet};
pub use factory::{Closer, IntoMade, Made};
pub use file::{FileInstancer, FileInstancerBuilder};
pub use instance::{Instance, InstanceBuilder, Metadata};
pub use instancer::{FixedInstancer, Instancer, PushInstancer};
pub use memory::{MemoryInstancer, MemoryRegistrar, MemoryRegistry};
pub use registrar::{Registrar, Registration};
pub use snapshot::{DeriveAny, Derived, Endpoints};
pub use subscription::Subscription;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{TlsConfig, TlsConfigBuilder};

/// The channel crate waypost's [`Instancer`]s send [`Event`]s on.
pub use crossbeam_channel;

/// The README's examples, compiled and run as doctests so that they cannot drift from
/// the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
