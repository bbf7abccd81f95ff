//! The synchronous DNS client: UDP with EDNS0, TCP on truncation. (Stub: the
//! agreed API, filled in by the client work.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::resolver::{Cancel, IpLookup, Resolver, SrvLookup};
use crate::{Error, Result};

/// A DNS client; see the [module docs](super). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    _servers: Vec<SocketAddr>,
}

/// Builds a [`Client`]; see [`Client::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct ClientBuilder {
    _resolv_conf: PathBuf,
}

impl Client {
    /// A builder: the name servers of `/etc/resolv.conf` unless servers are given.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            _resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }

    /// The client `/etc/resolv.conf` describes.
    pub fn system() -> Result<Client> {
        Client::builder().build()
    }
}

impl ClientBuilder {
    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        Err(Error::invalid_config("dnssrv", "not yet"))
    }

    /// Asks `server` (several calls: several servers, tried in turn) instead of the
    /// name servers of resolv.conf.
    pub fn server(self, _server: SocketAddr) -> Self {
        self
    }

    /// The time one attempt waits for an answer.
    pub fn timeout(self, _timeout: Duration) -> Self {
        self
    }
}

impl Resolver for Client {
    fn lookup_srv(&self, _name: &str, _cancel: &Cancel) -> Result<SrvLookup> {
        Err(Error::invalid_config("dnssrv", "not yet"))
    }

    fn lookup_ip(&self, _host: &str, _cancel: &Cancel) -> Result<IpLookup> {
        Err(Error::invalid_config("dnssrv", "not yet"))
    }
}
