//! Consul: discover instances through an agent's health API, register this one with
//! a TTL (or HTTP/TCP) check. Feature `consul` (on by default).
//!
//! ```no_run
//! use std::time::Duration;
//! use waypost::consul::{HttpClient, Instancer, Registrar};
//! use waypost::DefaultEndpointer;
//!
//! let client = HttpClient::builder()
//!     .address("http://127.0.0.1:8500")
//!     .token(std::env::var("CONSUL_HTTP_TOKEN").unwrap_or_default())
//!     .build()?;
//!
//! // This process, listed as long as it lives.
//! let _me = Registrar::builder(&client, "api", "10.0.0.7", 8080).build()?.register()?;
//!
//! // The passing instances of another service, as endpoints.
//! let instancer = Instancer::builder(&client, "users").tag("v2").build()?;
//! let endpointer = DefaultEndpointer::new(instancer, |i| Ok(format!("http://{i}")))?;
//! endpointer.wait_ready(Duration::from_secs(2))?;
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! # Watch mechanism
//!
//! An [`Instancer`] runs *blocking queries* on `/v1/health/service/<name>` in one
//! thread: the first query (`index` 0) answers at once; each next one sends the
//! `X-Consul-Index` of the last answer and a `wait` (default 60 s), and Consul
//! holds it until the service's health changes or the wait passes (plus up to wait/16
//! of jitter, which the request timeout allows for). Each answer is the complete
//! list, published as an [`Event`](crate::Event); an unchanged list publishes nothing.
//! The index follows Consul's rules: an index that goes backwards (agent restart)
//! starts over at 0, a 0 in an answer becomes 1, and after any error the next query
//! starts at 0 so that a restarted agent's lower index is not waited out. Two queries
//! never start closer than [`min_interval`](InstancerBuilder::min_interval) (100 ms),
//! whatever the answers say, so the loop cannot spin on answers that come back at once;
//! a query that blocked for longer is followed at once. This is the watch loop every
//! waypost backend shares: errors back off with jitter, every wait reads the builder's
//! [`clock`](InstancerBuilder::clock), and a panic restarts the watch.
//!
//! Which server answers: by default the agent forwards each query to the leader. With
//! [`consistency`](InstancerBuilder::consistency) set to
//! [`Consistency::Stale`], any server answers from its own copy (`?stale`): cheaper,
//! spread over the servers, and still answering while the cluster has no leader, but
//! possibly behind the leader. An optional `max_stale` bounds that lag, read from each
//! answer's `X-Consul-LastContact`: an older answer is asked again of the leader, as
//! consul-template's `max_stale` does. See [`Consistency`] for the trade-off.
//!
//! Which instances are listed:
//! - passing only (`?passing`), or with [`include_warning`](InstancerBuilder::include_warning)
//!   also those whose checks warn: Consul has no query flag for "not critical", so
//!   waypost then fetches every instance and drops those with a critical check;
//! - with every [`tag`](InstancerBuilder::tag) given: repeated `tag=` parameters,
//!   which Consul 1.8 ANDs (case-insensitively); waypost checks the tags again on its
//!   side, so an older agent that honours only one tag still gives the right set.
//!
//! Each [`Instance`](crate::Instance) is `address:port`, with the service's address or,
//! when it has none, its node's; an IPv6 address is put in brackets and written in
//! canonical form (`2001:DB8:0::1` becomes `[2001:db8::1]`), so one address spelled two
//! ways by two registrants is one instance. The result goes through
//! [`Instance::parse`](crate::Instance::parse). Its [`Metadata`](crate::Metadata):
//! the service's tags; its meta as key/values; the weight (`Weights.Passing`, or
//! `Weights.Warning` for a warning instance); the node's datacenter as the zone; the
//! node name as value `node` and the instance id as value `service_id` (these two win
//! over service meta keys of the same name).
//!
//! # Failure behaviour
//!
//! [`HttpClient`] decodes each answer entry by entry as it arrives: an entry keeps
//! only the fields waypost reads, and the body is never held whole, so a large answer
//! costs about what its entries and instances take, not several times its size (a
//! 62 MiB answer shaped as Consul 1.8.7 sends it peaks at about 0.8 times its size).
//! The [body limit](HttpClientBuilder::body_limit) applies as it is read.
//!
//! Consul lists whatever a registrant sent: 1.8.7 accepts `Port: 0`, `70000` or `-1`
//! and any address text. An entry that makes no instance (a port outside 1..=65535, an
//! address [`Instance::parse`](crate::Instance::parse) refuses such as
//! `10.0.0.1 evil` or `[10.0.0.1:9999]`, no address at all, or a field of the wrong
//! type) is left out of the set with a `warn!` (target `waypost::consul`) naming its
//! service id, node and the reason (for a field, which one, e.g. `Service.Port` for a
//! port of 70000); the other entries are published as usual. Each answer logs the
//! first five such entries and counts the rest in one more line. A body that is not a
//! JSON array of entries (broken JSON, a key twice in one object) fails the whole
//! answer, as below.
//!
//! A failed query (agent down, TLS failure, 403, bad body, timeout) becomes an error
//! event: subscribers keep the last set, which may now be stale. The watch retries with
//! capped exponential backoff and jitter (100 ms to 5 s) and publishes the set again as
//! soon as the agent answers. An agent restarted with a fresh data dir comes back
//! without its local registrations: the [`Registrar`]'s heartbeat notices (see below)
//! and registers again, and the watch sees the instance return.
//!
//! A [`Registrar`] registers with `PUT /v1/agent/service/register` and, for a TTL
//! check, passes it once before `register()` returns (a new TTL check starts critical,
//! and a re-registration keeps the old status). Its heartbeat passes the check every
//! TTL/3, counted from the start of the last pass, and each of its calls gives up after
//! TTL/3 ([`Client::fork_with_timeout`]): a call to a hung agent fails in time for the
//! next pass to be tried on a new connection, before the TTL runs out. When a pass
//! fails, it asks `GET /v1/agent/service/<id>`: a 404 means the agent lost the
//! registration (Consul 1.8 answers the failed pass with HTTP 500, not 404), and the
//! heartbeat registers again and passes the check, within one TTL. Heartbeat errors
//! are logged (`warn`, target `waypost::consul`); `register()` and `deregister()`
//! return theirs.
//!
//! A panic in either thread (a bug in waypost, or in your own [`Client`]) does not end
//! it silently. It is logged at `error!` and the loop starts again after its backoff
//! (the watch's [`backoff`](InstancerBuilder::backoff); within TTL/6 for the
//! heartbeat, so the check keeps passing). A watch also publishes an
//! [`Error::Panicked`](crate::Error::Panicked) event naming the panic. The third panic
//! with no good answer in between (a fetched set, a passed check) ends the thread: the
//! watch's final error event says so, and subscribers keep the last set; a stopped
//! heartbeat lets the check turn critical when its TTL passes, until `register()`
//! starts a new one.
//!
//! Every duration option accepts `Duration::ZERO` and `Duration::MAX` without a panic:
//! each setter says whether the value is refused by `build()` with
//! [`Error::InvalidConfig`](crate::Error::InvalidConfig) or what it does.
//!
//! # ACLs: an empty answer may mean "no permission"
//!
//! With ACLs enabled, a query without a token (or with a token lacking `service:read`
//! *and* `node:read`) is answered `200 []`: Consul filters out what the token may not
//! see instead of refusing. waypost cannot tell that from "no instances", so a
//! missing or too weak token shows up as an empty set, not as an error. Give the
//! client a token ([`HttpClientBuilder::token`]) with `service "<name>" { policy =
//! "read" }` and `node_prefix "" { policy = "read" }`. A wrong token is refused with
//! `403 ACL not found`, which is an error event. The token travels in the
//! `X-Consul-Token` header only and is never logged or shown in errors by waypost (ureq
//! logs raw request headers at `trace!`, target `ureq_proto`: keep that target above
//! trace in production; see the README, "Logging and credentials").
//!
//! # Threads and cloning
//!
//! Each [`Instancer`] owns one thread, `waypost-consul-watch`; each [`Registrar`] with
//! a TTL check owns one, `waypost-consul-heartbeat`, while registered. Each thread
//! has its own HTTP connections ([`Client::fork`]): `stop()`, `deregister()` or drop
//! shuts them down, which cuts a five-minute blocking query short at once, and joins
//! the thread (milliseconds; the connect timeout, 500 ms, bounds the worst case).
//! [`HttpClient`] clones share connections and are cheap; share one client between
//! instancers and registrars and let each fork its own.
//!
//! Build [`Instancer`]s on an [`HttpClient`], or on your own [`Client`] (the narrow
//! trait of the agent calls waypost makes), e.g. a fake in tests.

mod client;
mod consistency;
mod decode;
mod entries;
#[cfg(test)]
mod fake;
mod instancer;
mod lenient;
mod registrar;
mod shared;

pub use client::{
    CheckRegistration, Client, Health, HealthCheck, HealthInstances, HealthQuery, HttpClient,
    HttpClientBuilder, Node, Service, ServiceEntry, ServiceRegistration, Weights,
};
pub use consistency::Consistency;
pub use instancer::{Instancer, InstancerBuilder};
pub use registrar::{Registrar, RegistrarBuilder};
pub use shared::WatchGroup;
