//! The synchronous DNS client: UDP with EDNS0, TCP on truncation, the name servers
//! and search list of resolv.conf.

mod exchange;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use log::debug;

use super::resolv_conf::ResolvConf;
use super::resolver::{Cancel, IpLookup, Resolver, SrvLookup};
use super::wire::{self, Answer, Query, RecordType};
use crate::{DnsError, DnsErrorKind, Error, Result};

const LOG: &str = "waypost::dnssrv";

/// A DNS client that asks SRV and address records, blocking the calling thread; it
/// implements [`Resolver`]. Cheap to clone (clones share one configuration); starts
/// no thread.
///
/// ```no_run
/// use std::time::Duration;
/// use waypost::dnssrv::{Cancel, Client, Resolver};
///
/// let client = Client::builder().timeout(Duration::from_secs(1)).build()?;
/// let answer = client.lookup_srv("_api._tcp.example.test", &Cancel::new())?;
/// for srv in &answer.records {
///     println!("{}:{} (priority {}, weight {})", srv.target, srv.port, srv.priority, srv.weight);
/// }
/// # Ok::<(), waypost::Error>(())
/// ```
///
/// # Transport
///
/// Each attempt sends the query over UDP from a fresh socket, connected to the
/// server, on a port the OS picks at random, so that a datagram from anywhere else
/// is never read. The query carries a random id and an EDNS0 record advertising a
/// UDP payload of 1232 bytes ([`udp_payload_size`](ClientBuilder::udp_payload_size)).
/// A packet that is not a reply to the query (another id, another question) is
/// dropped and the wait goes on. A truncated answer (TC=1) is never used, not even in
/// part (dnsmasq sends a partial set): the query goes again over TCP to the same
/// server, and if TCP fails the attempt fails with [`DnsErrorKind::Truncated`].
///
/// # Failures and retries
///
/// A timeout, SERVFAIL, REFUSED, another error code, an answer that does not decode,
/// or a socket error moves the query to the next server; `attempts` rounds are made
/// over the servers (each attempt waits up to `timeout`), starting at the first
/// server, or at the next one for each query with `rotate`. When every attempt
/// fails, the last error is returned as an [`Error::Dns`] naming the server and the
/// response code. A silent server costs `timeout x attempts` per server.
///
/// A negative answer (NXDOMAIN, or the name without records of the type) is not an
/// error: it is `Ok` with no records, with the zone's negative TTL when the server
/// sent its SOA.
///
/// [`lookup_ip`](Resolver::lookup_ip) asks A, then AAAA, of each name: the addresses
/// come IPv4 first, the TTL is the lower of both answers, and an error on either
/// query is the lookup's error (never half a set that would flap).
///
/// # Search list
///
/// Without explicit [`server`](ClientBuilder::server)s, names are completed as glibc
/// does with resolv.conf's `search` (or `domain`) and `ndots`: a name with fewer than
/// `ndots` dots is tried with each search domain first, then as is; another as is
/// first; a name ending in `.` only as is. A negative answer moves to the next name;
/// the first positive answer is returned; an error stops the search.
///
/// # Cancelling
///
/// The [`Cancel`] given to a lookup cuts it short with
/// [`DnsErrorKind::Cancelled`]: UDP waits in slices of 50 ms and looks at it between
/// them, and a TCP connection is shut down at once. A TCP connect is bounded by the
/// timeout only.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Name servers, search list and options, the builder's settings applied.
    conf: ResolvConf,
    udp_payload_size: u16,
    /// The server the next query starts at, with `rotate`.
    next: AtomicUsize,
}

/// Builds a [`Client`]; see [`Client::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct ClientBuilder {
    resolv_conf: Option<PathBuf>,
    servers: Vec<SocketAddr>,
    nameserver_port: u16,
    timeout: Option<Duration>,
    attempts: Option<u32>,
    rotate: Option<bool>,
    udp_payload_size: u16,
}

impl Client {
    /// A builder: the name servers, search list and options of `/etc/resolv.conf`
    /// unless set otherwise.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            resolv_conf: None,
            servers: Vec::new(),
            nameserver_port: 53,
            timeout: None,
            attempts: None,
            rotate: None,
            udp_payload_size: wire::DEFAULT_UDP_PAYLOAD,
        }
    }

    /// The client `/etc/resolv.conf` describes: `Client::builder().build()`.
    pub fn system() -> Result<Client> {
        Client::builder().build()
    }
}

const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

impl ClientBuilder {
    /// The resolv.conf to read at [`build`](Self::build): default
    /// `/etc/resolv.conf`. Its name servers are used unless [`server`](Self::server)
    /// gives others; its options (`timeout`, `attempts`, `rotate`) unless set here.
    /// With explicit servers, the file is read only if this was called.
    pub fn resolv_conf(mut self, path: impl Into<PathBuf>) -> Self {
        self.resolv_conf = Some(path.into());
        self
    }

    /// Asks `server` instead of resolv.conf's name servers; several calls give
    /// several servers, tried in that order. Names are then asked as given, with no
    /// search list.
    pub fn server(mut self, server: SocketAddr) -> Self {
        self.servers.push(server);
        self
    }

    /// The port of resolv.conf's name servers, which the file cannot give: default
    /// 53. For a local resolver listening on another port (and tests).
    pub fn nameserver_port(mut self, port: u16) -> Self {
        self.nameserver_port = port;
        self
    }

    /// The time one attempt waits for an answer (and bounds a TCP connect and read):
    /// default resolv.conf's `timeout`, else 5 s. Shorter moves to the next server
    /// sooner, but gives up on a slow upstream that would have answered.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many rounds over the servers a query makes: default resolv.conf's
    /// `attempts`, else 2. More rides out packet loss; a dead server costs `timeout`
    /// per round.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// Starts each query at the next server, spreading the load, rather than always
    /// at the first (which keeps a preferred server preferred): default resolv.conf's
    /// `rotate`, else off.
    pub fn rotate(mut self, rotate: bool) -> Self {
        self.rotate = Some(rotate);
        self
    }

    /// The UDP payload size advertised with EDNS0: default 1232, which avoids IP
    /// fragmentation. Larger lets a big SRV set come in one datagram instead of a
    /// truncated one followed by TCP, at the risk of fragments lost on the way. At
    /// least 512.
    pub fn udp_payload_size(mut self, size: u16) -> Self {
        self.udp_payload_size = size;
        self
    }

    /// Reads resolv.conf and checks the settings. Errors: [`Error::File`] when the
    /// file cannot be read; [`Error::InvalidConfig`] for a zero timeout, zero
    /// attempts, or a UDP payload size under 512.
    pub fn build(self) -> Result<Client> {
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid_config("timeout", "must be more than zero"));
        }
        if self.attempts == Some(0) {
            return Err(Error::invalid_config("attempts", "must be at least 1"));
        }
        if self.udp_payload_size < 512 {
            return Err(Error::invalid_config(
                "udp_payload_size",
                "must be at least 512",
            ));
        }
        let path = match (&self.resolv_conf, self.servers.is_empty()) {
            (Some(path), _) => Some(path.as_path()),
            (None, true) => Some(Path::new(DEFAULT_RESOLV_CONF)),
            (None, false) => None,
        };
        let mut conf = match path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => ResolvConf::parse(&text),
                Err(source) => {
                    return Err(Error::File {
                        path: Arc::from(path),
                        source,
                    });
                }
            },
            None => ResolvConf::default(),
        };
        if self.servers.is_empty() {
            for server in &mut conf.nameservers {
                server.set_port(self.nameserver_port);
            }
        } else {
            conf.nameservers = self.servers;
            conf.search.clear();
        }
        conf.timeout = self.timeout.unwrap_or(conf.timeout);
        conf.attempts = self.attempts.unwrap_or(conf.attempts);
        conf.rotate = self.rotate.unwrap_or(conf.rotate);
        debug!(target: LOG, "dns client: {conf:?}");
        Ok(Client {
            inner: Arc::new(Inner {
                conf,
                udp_payload_size: self.udp_payload_size,
                next: AtomicUsize::new(0),
            }),
        })
    }
}

impl Resolver for Client {
    fn lookup_srv(&self, name: &str, cancel: &Cancel) -> Result<SrvLookup> {
        let answer = self.search(name, &[RecordType::Srv], cancel)?;
        Ok(SrvLookup {
            records: answer.srv,
            addresses: answer.addresses,
            ttl: answer.ttl,
        })
    }

    fn lookup_ip(&self, host: &str, cancel: &Cancel) -> Result<IpLookup> {
        let answer = self.search(host, &[RecordType::A, RecordType::Aaaa], cancel)?;
        Ok(IpLookup {
            addresses: answer.ips,
            ttl: answer.ttl,
        })
    }
}

impl Client {
    /// Asks each name the search list makes of `name` for the `types` (their
    /// answers combined, in that order) until one is positive; the last negative
    /// answer when none is.
    fn search(&self, name: &str, types: &[RecordType], cancel: &Cancel) -> Result<Answer> {
        let record_type = types.first().map_or("", |t| t.as_str());
        if let Err(why) = wire::check_name(name) {
            return Err(DnsError::new(DnsErrorKind::InvalidName, name, record_type)
                .with_source(why)
                .into());
        }
        let mut last = Answer::default();
        for candidate in self.inner.conf.candidates(name) {
            let mut combined = Answer::default();
            for &record_type in types {
                let query = match Query::new(&candidate, record_type, self.inner.udp_payload_size) {
                    Ok(query) => query,
                    Err(why) => {
                        debug!(target: LOG, "dns {name:?}: {candidate:?} skipped: {why}");
                        break;
                    }
                };
                let answer = self.query(name, &query, record_type, cancel)?;
                combined.srv.extend(answer.srv);
                combined.ips.extend(answer.ips);
                combined.addresses.extend(answer.addresses);
                combined.ttl = match (combined.ttl, answer.ttl) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if !combined.is_negative() {
                return Ok(combined);
            }
            debug!(target: LOG, "dns {record_type} {candidate:?}: no records");
            last = combined;
        }
        Ok(last)
    }

    /// Sends `query` to the servers in turn, `attempts` rounds, until one answers.
    fn query(
        &self,
        name: &str,
        query: &Query,
        record_type: RecordType,
        cancel: &Cancel,
    ) -> Result<Answer> {
        let conf = &self.inner.conf;
        let servers = &conf.nameservers;
        let start = match conf.rotate {
            true => self.inner.next.fetch_add(1, Ordering::Relaxed) % servers.len().max(1),
            false => 0,
        };
        let ask = exchange::Ask {
            name,
            record_type,
            query,
            cancel,
            timeout: conf.timeout,
        };
        let mut last = None;
        for attempt in 1..=conf.attempts {
            for i in 0..servers.len() {
                let server = servers[(start + i) % servers.len()];
                let error = match ask.exchange(server) {
                    Ok(answer) => return Ok(answer),
                    Err(error) => error,
                };
                let cancelled = error.kind == DnsErrorKind::Cancelled;
                let error = Error::from(error);
                if cancelled {
                    return Err(error);
                }
                debug!(
                    target: LOG,
                    "{error} (attempt {attempt} of {}, server {} of {})",
                    conf.attempts,
                    i + 1,
                    servers.len()
                );
                last = Some(error);
            }
        }
        Err(last.unwrap_or_else(|| {
            DnsError::new(DnsErrorKind::Timeout, name, record_type.as_str()).into()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_at_build() {
        let server = SocketAddr::from(([127, 0, 0, 1], 53));
        let builder = || Client::builder().server(server);
        for (built, field) in [
            (builder().timeout(Duration::ZERO).build(), "timeout"),
            (builder().attempts(0).build(), "attempts"),
            (builder().udp_payload_size(511).build(), "udp_payload_size"),
        ] {
            match built {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(builder().udp_payload_size(512).build().is_ok());
    }

    #[test]
    fn a_missing_resolv_conf_is_a_file_error() {
        let missing = std::env::temp_dir().join("waypost-no-such-dir/resolv.conf");
        match Client::builder().resolv_conf(&missing).build() {
            Err(Error::File { path, source }) => {
                assert_eq!(&*path, missing.as_path());
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_names_fail_before_anything_is_sent() {
        // A server that would never answer: the error must come without waiting.
        let client = Client::builder()
            .server(SocketAddr::from(([192, 0, 2, 1], 53)))
            .build()
            .unwrap();
        for bad in ["", ".", "a..b", &"x".repeat(64)] {
            match client.lookup_srv(bad, &Cancel::new()) {
                Err(Error::Dns(dns)) => {
                    assert_eq!(dns.kind, DnsErrorKind::InvalidName, "{bad:?}");
                    assert_eq!(dns.record_type, "SRV");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
