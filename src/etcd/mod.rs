//! etcd v3: discover instances as the keys under a prefix, register this one as a key
//! with a lease. Feature `etcd` (on by default).
//!
//! ```no_run
//! use std::time::Duration;
//! use waypost::etcd::{HttpClient, Instancer, Registrar};
//! use waypost::DefaultEndpointer;
//!
//! let client = HttpClient::builder()
//!     .addresses(["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"])
//!     .build()?;
//!
//! // This process, listed as long as it lives: /services/api/10.0.0.7:8080.
//! let _me = Registrar::builder(&client, "/services/api/", "10.0.0.7:8080").build()?.register()?;
//!
//! // The instances of another service, as endpoints.
//! let instancer = Instancer::builder(&client, "/services/payments/").build()?;
//! let endpointer = DefaultEndpointer::new(instancer, |i| Ok(format!("http://{i}")))?;
//! endpointer.wait_ready(Duration::from_secs(2))?;
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! waypost talks to etcd's JSON gateway (`/v3/...`, or `/v3beta/...` on a gateway that
//! has no `/v3` routes, chosen at the first contact), which every etcd from 3.4 serves
//! on its client URLs: no gRPC, no async runtime.
//!
//! # Watch mechanism
//!
//! An [`Instancer`] lists the prefix (`kv/range`, linearizable), publishes the set, then
//! opens one watch stream (`watch`, one long POST whose answer is a line per message)
//! from the listed revision + 1. Each message's puts and deletes update the set, and
//! the complete set is published after each message that changed it. A change thus
//! arrives in about a millisecond on loopback. The watch starts over with a new list
//! and a new stream, so that nothing is missed or applied twice:
//! - when the start revision was compacted away (etcd cancels the watch with its
//!   `compact_revision`);
//! - when the stream breaks: the member died or was stopped (a cut connection, or its
//!   `{"error":...}` line), or a proxy closed it;
//! - when the stream brought nothing for [`reopen_after`](InstancerBuilder::reopen_after)
//!   (60 s): a member cut off from its quorum may keep a stream open and silent. The
//!   stream also carries etcd's require-leader flag (`hasleader`), so such a member
//!   usually ends it first.
//!
//! The list goes to the member that answered last and moves on to the next one when it
//! cannot answer (see [`HttpClientBuilder::addresses`]). A stream that breaks before it
//! brought a change, within a second of its start (a member that ends every stream at
//! once, a proxy that cuts them), or that never starts, is a failure: the second one in
//! a row is an error event, as is a failed list, and the watch then retries with
//! backoff (100 ms to 5 s, growing while the errors last), opening the stream again
//! from the revision it had, without a list in between; once the stream is created,
//! subscribers hear the set again. A watch that etcd cancels for another reason (e.g.
//! "permission denied") is an error event too, retried with backoff: never a tight
//! list-and-watch loop.
//!
//! # Values
//!
//! A key's value names one instance, in one of three forms:
//! - a plain address: `10.0.0.1:8080` (checked by [`Instance::parse`](crate::Instance::parse));
//! - the JSON of etcd's Go naming package (`go.etcd.io/etcd/client/v3/naming/endpoints`),
//!   so that services registered by Go programs are found:
//!   `{"Op":0,"Addr":"10.0.0.1:8080","Metadata":...}`. `Op` is accepted and ignored (a
//!   key's presence is what lists it); `Metadata` is read as below when it is an
//!   object, and ignored otherwise;
//! - waypost's JSON form, which the [`Registrar`] writes when the instance has metadata:
//!   `{"addr":"10.0.0.1:8080","metadata":{"weight":3,"zone":"eu-1","scheme":"https",
//!   "tags":["v2"],"values":{"version":"2.1"}}}`. Every metadata field is optional;
//!   other fields are ignored. Go's JSON decoder matches field names without regard to
//!   case, so Go's naming package reads this form too.
//!
//! An address without a port (`{"Addr":"10.0.0.1"}`) takes the
//! [`default_port`](InstancerBuilder::default_port) when one is set, and is a bad value
//! otherwise.
//!
//! A bad value (not UTF-8, not an address, broken JSON, no `addr`, a metadata field of
//! the wrong type, over 64 KiB) leaves its key out of the set, with a `warn!` (target
//! `waypost::etcd`) naming the key and what is wrong; the other keys' instances are
//! published as usual, so one bad key never blanks a service. A bad key is logged once
//! per value, not again at every list.
//!
//! # Registration
//!
//! A [`Registrar`] puts `prefix + id` (the id defaults to the address) with a lease of
//! its [`ttl`](RegistrarBuilder::ttl) (10 s), and a `waypost-etcd-keepalive` thread
//! renews the lease every TTL/3 (`lease/keepalive`, one request per renewal). A lease
//! can be lost: it expired while this process was cut off, someone revoked it, or etcd
//! restarted from an empty data dir. etcd then answers the keepalive without a TTL,
//! and the thread grants a new lease and puts the key again at once. After each renewal
//! it also reads the key back (one range), and puts it again if someone deleted or
//! changed it while the lease lived (an operator's `etcdctl del`). Deregistering
//! deletes the key and revokes the lease; errors are returned, never panicked on.
//!
//! # Several members, timeouts, leader loss
//!
//! Give the client every member's client URL ([`HttpClientBuilder::addresses`]). Every
//! call has a timeout: [`request_timeout`](HttpClientBuilder::request_timeout), 2 s,
//! bounds a call (and a watch's start), and the connect timeout (500 ms) its connect.
//! A call moves on to the next member on a failed connect, a timeout, a 502-504, or
//! etcd's "unavailable" answers. That covers a leader's death: a write sent to a
//! survivor just after it hangs until etcd gives up (5 to 7 s) and then answers 503,
//! and with the quorum lost it answers 500 "context deadline exceeded"; the short
//! timeout moves the call on long before either.
//!
//! # Authentication and TLS
//!
//! With [`HttpClientBuilder::user`] the client gets a token from `auth/authenticate`
//! before its first call and sends it in `Authorization`; when etcd says it expired
//! (tokens expire after `--auth-token-ttl` without use, 300 s by default), a new one is
//! fetched and the call tried again, without the caller noticing. A wrong password is
//! an [`Error::Http`](crate::Error::Http) with status 400 and code 3. The password and
//! the token never appear in waypost's logs, errors or `Debug` output (ureq logs raw
//! request headers at `trace!`, target `ureq_proto`: keep that target above trace in
//! production; see the README, "Logging and credentials"). With the `tls` feature,
//! `HttpClientBuilder::tls` takes a custom CA and a client certificate.
//!
//! # Threads
//!
//! Each [`Instancer`] owns one thread, `waypost-etcd-watch`; each registered
//! [`Registrar`] one, `waypost-etcd-keepalive`. Each has its own HTTP connections
//! ([`Client::fork`]): `stop()`, deregistering or drop shuts them down, which cuts an
//! open watch stream at once, and joins the thread. A panic in either thread is logged
//! at `error!` and the loop starts again after its backoff; the third in a row with
//! no good answer in between ends it (the watch's last error event says so).

mod client;
#[cfg(test)]
mod decode_props;
#[cfg(test)]
mod fake;
mod http_client;
mod instancer;
mod registrar;
mod value;
mod wire;

pub use client::{
    Client, EventKind, KeyValue, Lease, Range, WatchEvent, WatchRequest, WatchResponse,
};
pub use http_client::{HttpClient, HttpClientBuilder};
pub use instancer::{Instancer, InstancerBuilder};
pub use registrar::{Registrar, RegistrarBuilder};

const LOG: &str = "waypost::etcd";
