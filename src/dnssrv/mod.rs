//! DNS: discover instances from SRV records (or the addresses of a host name), polled
//! as their TTLs run out. Feature `dnssrv`.
//!
//! (Module docs: written with the instancer.)

mod client;
mod instancer;
mod resolv_conf;
mod resolver;
mod wire;

pub use client::{Client, ClientBuilder};
pub use instancer::{Instancer, InstancerBuilder};
pub use resolver::{Cancel, IpLookup, Resolver, Srv, SrvLookup};
