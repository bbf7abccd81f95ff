//! ZooKeeper: waypost's own synchronous client, over `std::net::TcpStream`.
//!
//! Work in progress: the wire protocol, the session and the client are here; the
//! instancer and registrar come next.

mod client;
mod instancer;
pub(crate) mod proto;
mod registrar;
mod session;

pub use client::{Client, ClientBuilder, CreateMode, SessionEvent, Stat, WatchEvent};
pub use instancer::{Instancer, InstancerBuilder, Layout};
pub use registrar::{Registrar, RegistrarBuilder};
