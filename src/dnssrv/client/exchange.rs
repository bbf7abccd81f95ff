//! One query to one server: UDP, then TCP if the answer was truncated.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use log::debug;

use super::LOG;
use crate::dnssrv::resolver::Cancel;
use crate::dnssrv::wire::{Answer, Query, RecordType, Reply};
use crate::{BoxError, DnsError, DnsErrorKind};

/// How long a UDP receive blocks before the cancel handle is looked at again.
const SLICE: Duration = Duration::from_millis(50);

/// The largest datagram: a server may send more than the payload size advertised,
/// and a cut datagram would not decode.
const MAX_DATAGRAM: usize = 65_535;

/// A query and what its errors are reported with.
pub(super) struct Ask<'a> {
    /// The name as the caller gave it (a search list may have completed it).
    pub(super) name: &'a str,
    pub(super) record_type: RecordType,
    pub(super) query: &'a Query,
    pub(super) cancel: &'a Cancel,
    /// The wait for one answer, and the bound of a TCP connect and read.
    pub(super) timeout: Duration,
}

impl Ask<'_> {
    /// Asks `server` once: an answer (positive or negative), or why not.
    pub(super) fn exchange(&self, server: SocketAddr) -> Result<Answer, DnsError> {
        match self.udp(server)? {
            Reply::Truncated => {
                debug!(target: LOG, "dns {} {:?}: truncated over UDP from {server}; asking over TCP", self.record_type.as_str(), self.name);
                self.tcp(server)
            }
            reply => self.settle(server, reply),
        }
    }

    fn error(&self, kind: DnsErrorKind, server: SocketAddr) -> DnsError {
        DnsError::new(kind, self.name, self.record_type.as_str()).with_server(server)
    }

    fn io_error(&self, server: SocketAddr, source: io::Error) -> DnsError {
        self.error(DnsErrorKind::Io, server).with_source(source)
    }

    /// Sends the query over a connected UDP socket and waits for a reply that is
    /// ours, dropping others, in slices that look at the cancel handle.
    fn udp(&self, server: SocketAddr) -> Result<Reply, DnsError> {
        let local = match server {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let socket = UdpSocket::bind(local).map_err(|e| self.io_error(server, e))?;
        // Connected: the kernel drops datagrams from any other address and port.
        socket
            .connect(server)
            .and_then(|()| socket.send(self.query.bytes()))
            .map_err(|e| self.io_error(server, e))?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            if self.cancel.is_cancelled() {
                return Err(self.error(DnsErrorKind::Cancelled, server));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.error(DnsErrorKind::Timeout, server));
            }
            socket
                .set_read_timeout(Some((deadline - now).min(SLICE)))
                .map_err(|e| self.io_error(server, e))?;
            let len = match socket.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if is_wait_over(&e) => continue,
                // e.g. ConnectionRefused: an ICMP port unreachable came back.
                Err(e) => return Err(self.io_error(server, e)),
            };
            match self.query.parse_reply(&buf[..len]) {
                Reply::NotOurs(why) => {
                    debug!(target: LOG, "dns {} {:?}: dropped a packet from {server}: {why}", self.record_type.as_str(), self.name);
                }
                reply => return Ok(reply),
            }
        }
    }

    /// Sends the query again over TCP to the same server (after a truncated UDP
    /// answer). Its failure to connect or to answer is `Truncated`; a TCP answer that
    /// is truncated again, not ours, or of length zero is `Malformed`.
    fn tcp(&self, server: SocketAddr) -> Result<Answer, DnsError> {
        let failed = |e: io::Error| match self.cancel.is_cancelled() {
            true => self.error(DnsErrorKind::Cancelled, server),
            false => self.error(DnsErrorKind::Truncated, server).with_source(e),
        };
        let mut stream = TcpStream::connect_timeout(&server, self.timeout).map_err(failed)?;
        let _guard = self.cancel.guard(&stream).map_err(failed)?;
        let query = self.query.bytes();
        let Ok(len) = u16::try_from(query.len()) else {
            return Err(self.malformed(server, "query longer than 65535 bytes".into()));
        };
        let mut frame = Vec::with_capacity(2 + query.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(query);
        let mut len = [0; 2];
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| stream.write_all(&frame))
            .and_then(|()| stream.read_exact(&mut len))
            .map_err(failed)?;
        let len = usize::from(u16::from_be_bytes(len));
        if len == 0 {
            return Err(self.malformed(server, "a TCP answer of length zero".into()));
        }
        let mut answer = vec![0; len];
        stream.read_exact(&mut answer).map_err(failed)?;
        match self.query.parse_reply(&answer) {
            Reply::Truncated => Err(self.malformed(server, "truncated over TCP".into())),
            Reply::NotOurs(why) => Err(self.malformed(
                server,
                format!("not a reply to the query over TCP: {why}").into(),
            )),
            reply => self.settle(server, reply),
        }
    }

    /// A reply, other than truncated or not ours, as the exchange's result.
    fn settle(&self, server: SocketAddr, reply: Reply) -> Result<Answer, DnsError> {
        match reply {
            Reply::Answer(answer) => Ok(answer),
            Reply::Failed { kind, rcode } => Err(self.error(kind, server).with_rcode(rcode)),
            Reply::Malformed(why) => Err(self.malformed(server, why)),
            Reply::Truncated | Reply::NotOurs(_) => {
                debug_assert!(false, "settled a reply the caller handles: {reply:?}");
                Err(self.malformed(server, "unexpected reply".into()))
            }
        }
    }

    fn malformed(&self, server: SocketAddr, why: BoxError) -> DnsError {
        self.error(DnsErrorKind::Malformed, server).with_source(why)
    }
}

/// True for the errors of a receive whose slice ran out.
fn is_wait_over(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
