//! DNS: discover instances from SRV records (or the addresses of a host name), asked
//! again when the answer's TTL runs out. Feature `dnssrv`. Discovery only: DNS has
//! no registration.
//!
//! ```no_run
//! use std::time::Duration;
//! use waypost::dnssrv::{Client, Instancer};
//! use waypost::DefaultEndpointer;
//!
//! // The name servers of /etc/resolv.conf:
//! let instancer = Instancer::srv("_payments._tcp.example.test").build()?;
//! // Or one server, explicitly, and targets resolved to addresses:
//! let client = Client::builder().server("127.0.0.1:5353".parse().unwrap()).build()?;
//! let resolved = Instancer::srv("_payments._tcp.example.test")
//!     .resolver(client)
//!     .resolve_targets()
//!     .build()?;
//! let endpointer = DefaultEndpointer::new(instancer, |i| Ok(format!("http://{i}")))?;
//! endpointer.wait_ready(Duration::from_secs(2))?;
//! # drop(resolved);
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! # Records to instances
//!
//! [`Instancer::srv`] asks the SRV records of a name such as `_api._tcp.example.test`
//! (RFC 2782). Each record is an instance `target:port` (the target's trailing dot
//! removed), with the record's weight as the instance's
//! [`weight`](crate::Metadata::weight) and its priority as the metadata value
//! `priority`.
//!
//! - **Priority groups.** Every group is published by default: an instancer cannot
//!   know which targets are reachable, so dropping the backup groups would lose their
//!   fail-over. Balance on the lowest group yourself with the `priority` value, or
//!   ask for [`lowest_priority_only`](InstancerBuilder::lowest_priority_only) ("no
//!   fallback").
//! - **Weight 0** is kept, as weight 0. RFC 2782 gives such a record "a very small
//!   chance" of selection. The balancers in [`lb`](crate::lb) today (random,
//!   round-robin) ignore weights, so it gets the share of any other; a balancer that
//!   reads weights must say what 0 means (the rule waypost follows for those: never
//!   picked unless every instance of the set has weight 0).
//! - **Target `.`** means the service is decidedly not available at this name: such
//!   a record is no instance, so an answer of only that is the empty set.
//! - **Port 0** makes that record wrong (Go kit's `ErrPortZero`), not the answer: the
//!   record is left out with a `warn!` (once while it stays), the others are
//!   published. So is a target that is no valid host name.
//! - **Names or addresses.** Targets stay names by default. With
//!   [`resolve_targets`](InstancerBuilder::resolve_targets), each target becomes an
//!   instance per address, `address:port`, with the metadata value `target`; the
//!   addresses come from the answer's additional section, or from an A/AAAA query
//!   for a target it leaves out.
//!
//! [`Instancer::host`] asks the A and AAAA records of `host:port` instead: every
//! address of the name is an instance with that port, as gRPC's `dns` resolver does.
//!
//! # Polling
//!
//! DNS cannot be watched, so the thread `waypost-dns-watch` asks again when the
//! answer's TTL runs out (the lowest TTL of the records used), clamped between a
//! floor and a ceiling ([`ttl_bounds`](InstancerBuilder::ttl_bounds): 5 s and 5 min
//! by default), or at a fixed [`interval`](InstancerBuilder::interval). The shared
//! watch loop's minimum interval (100 ms) bounds it from below, whatever the TTLs
//! say. A change is seen at the next query: within the floor for records served
//! with TTL 0 (dnsmasq's default).
//!
//! - **Empty is not an error.** NXDOMAIN, or a name with no record of the type, is
//!   the empty set.
//! - **Errors keep the last set.** A timeout, SERVFAIL, REFUSED, or an answer that
//!   does not decode is an error event ([`Error::Dns`](crate::Error::Dns), with a
//!   [`DnsErrorKind`](crate::DnsErrorKind)); endpointers keep the last set, and the
//!   next query follows the backoff.
//!
//! # The client
//!
//! [`Client`] is a small synchronous DNS client on the caller's thread (no thread of
//! its own). It asks the name servers of `/etc/resolv.conf` (honouring `nameserver`,
//! `search`/`domain` with `ndots`, and `options timeout:`, `attempts:`, `rotate`), or
//! the servers given to [`ClientBuilder::server`]. Queries go over UDP with EDNS0
//! (1,232 bytes), from a connected socket on a random port with a random id; a
//! packet with another id, question or source is dropped and the wait goes on. An
//! answer truncated over UDP (TC) is asked again over TCP: a truncated answer holds a
//! *partial* set (dnsmasq sends 30 of 40 records), which is never used. The wire
//! format is simple-dns's.
//!
//! A stop ([`Cancel`]) cuts a query short: UDP waits in slices of 50 ms and looks at
//! the cancel between them (a UDP socket cannot be shut down from another thread),
//! and a TCP connection is shut down at once.
//!
//! Any [`Resolver`] can stand in for the client: a function of your own in tests, as
//! Go kit's lookup function does.

mod client;
mod instancer;
mod resolv_conf;
mod resolver;
mod wire;

pub use client::{Client, ClientBuilder};
pub use instancer::{DEFAULT_TTL_CEILING, DEFAULT_TTL_FLOOR, Instancer, InstancerBuilder};
pub use resolver::{Cancel, IpLookup, Resolver, Srv, SrvLookup};
