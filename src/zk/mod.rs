//! ZooKeeper: waypost's own synchronous client, over `std::net::TcpStream`.
//!
//! Work in progress and not public yet: only the wire protocol ([`proto`]) is here.

pub(crate) mod proto;
#[allow(dead_code)] // the calls and the instancer that use it come next
pub(crate) mod session;
