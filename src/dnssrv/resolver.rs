//! The narrow interface the instancer asks names through, its answers, and the
//! cancel handle that cuts a query short.

use std::fmt;
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::Result;

/// Answers SRV and address queries: the [`Client`](super::Client), or a function of
/// your own in tests (Go kit's lookup function).
///
/// A negative answer (NXDOMAIN, or the name with no record of the type) is
/// `Ok` with no records, not an error: the instancer publishes an empty set.
/// Errors are for answers that say nothing about the set: a timeout, SERVFAIL,
/// REFUSED, an answer that does not decode.
///
/// `cancel` is the instancer's stop: a query in flight should return soon after it
/// fires, with [`DnsErrorKind::Cancelled`](crate::DnsErrorKind::Cancelled).
pub trait Resolver: Send + Sync + fmt::Debug + 'static {
    /// The SRV records of `name` (e.g. `_api._tcp.example.test`).
    fn lookup_srv(&self, name: &str, cancel: &Cancel) -> Result<SrvLookup>;

    /// The A and AAAA records of `host`.
    fn lookup_ip(&self, host: &str, cancel: &Cancel) -> Result<IpLookup>;
}

/// One SRV record (RFC 2782).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Srv {
    /// Lower is preferred: a client uses the lowest group it can reach.
    pub priority: u16,
    /// Within a priority group, the relative share; 0 is "a very small chance".
    pub weight: u16,
    /// The port of the service on the target.
    pub port: u16,
    /// The target host name, without its trailing dot; `"."` (the root) alone means
    /// the service is decidedly not available at this name.
    pub target: String,
}

impl Srv {
    /// A record; a trailing dot of `target` is removed (the root stays `"."`).
    pub fn new(priority: u16, weight: u16, port: u16, target: impl Into<String>) -> Srv {
        let mut target = target.into();
        if target.len() > 1 && target.ends_with('.') {
            target.pop();
        }
        Srv {
            priority,
            weight,
            port,
            target,
        }
    }

    /// True for the root target `"."`: "decidedly not available".
    pub fn is_unavailable(&self) -> bool {
        self.target == "." || self.target.is_empty()
    }
}

/// The answer to an SRV query.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SrvLookup {
    /// The records, in the order of the answer.
    pub records: Vec<Srv>,
    /// Addresses of targets that came with the answer (its additional section), by
    /// target name without the trailing dot.
    pub addresses: Vec<(String, IpAddr)>,
    /// How long the answer may be kept: the lowest TTL of its records or, for a
    /// negative answer, the negative TTL of the zone's SOA when the server sent one.
    /// `None` when the answer says nothing.
    pub ttl: Option<Duration>,
}

impl SrvLookup {
    /// An answer with these records, no addresses and no TTL.
    pub fn new(records: Vec<Srv>) -> SrvLookup {
        SrvLookup {
            records,
            ..SrvLookup::default()
        }
    }

    /// Sets the TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> SrvLookup {
        self.ttl = Some(ttl);
        self
    }

    /// Adds an address of a target, as an additional section does.
    pub fn with_address(mut self, target: impl Into<String>, addr: IpAddr) -> SrvLookup {
        let mut target = target.into();
        if target.len() > 1 && target.ends_with('.') {
            target.pop();
        }
        self.addresses.push((target, addr));
        self
    }
}

/// The answer to an address query (A and AAAA).
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpLookup {
    /// IPv4 addresses first, then IPv6, each in the order of its answer.
    pub addresses: Vec<IpAddr>,
    /// As [`SrvLookup::ttl`]: the lowest TTL of both answers.
    pub ttl: Option<Duration>,
}

impl IpLookup {
    /// An answer with these addresses and no TTL.
    pub fn new(addresses: Vec<IpAddr>) -> IpLookup {
        IpLookup {
            addresses,
            ttl: None,
        }
    }

    /// Sets the TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> IpLookup {
        self.ttl = Some(ttl);
        self
    }
}

/// Cuts queries short: the instancer's stop fires it, and every query given it
/// returns soon after with [`DnsErrorKind::Cancelled`](crate::DnsErrorKind::Cancelled).
///
/// A UDP socket cannot be shut down from another thread, so the client receives in
/// short slices (50 ms) and looks at [`is_cancelled`](Self::is_cancelled) between
/// them; a TCP connection registered with it is shut down at once. Cloning shares
/// the handle.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    next: AtomicU64,
    streams: Mutex<Vec<(u64, TcpStream)>>,
}

impl Cancel {
    /// A handle not yet fired.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Fires: queries return, registered TCP connections are shut down. Idempotent.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        for (_, stream) in self.inner.streams.lock().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Registers a TCP connection to shut down on cancel (at once if already
    /// cancelled) until the guard drops.
    pub(crate) fn guard(&self, stream: &TcpStream) -> std::io::Result<TcpGuard<'_>> {
        let clone = stream.try_clone()?;
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.inner.streams.lock();
        if self.is_cancelled() {
            let _ = clone.shutdown(std::net::Shutdown::Both);
        } else {
            streams.push((id, clone));
        }
        Ok(TcpGuard { cancel: self, id })
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Unregisters a TCP connection from a [`Cancel`] on drop.
pub(crate) struct TcpGuard<'a> {
    cancel: &'a Cancel,
    id: u64,
}

impl Drop for TcpGuard<'_> {
    fn drop(&mut self) {
        self.cancel
            .inner
            .streams
            .lock()
            .retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn a_cancel_shuts_a_registered_stream_and_later_ones_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        let _held = listener.accept().unwrap();
        let cancel = Cancel::new();
        let guard = cancel.guard(&stream).unwrap();
        cancel.cancel();
        assert!(cancel.is_cancelled());
        let mut buf = [0u8; 1];
        assert_eq!(stream.read(&mut buf).unwrap_or(0), 0, "shut down");
        drop(guard);
        let mut late = TcpStream::connect(addr).unwrap();
        let _held2 = listener.accept().unwrap();
        let _guard = cancel.guard(&late).unwrap();
        assert_eq!(late.read(&mut buf).unwrap_or(0), 0, "shut at once");
        assert!(cancel.inner.streams.lock().is_empty());
    }

    #[test]
    fn srv_targets_lose_their_trailing_dot_but_the_root_stays() {
        assert_eq!(
            Srv::new(1, 2, 3, "a.example.test.").target,
            "a.example.test"
        );
        assert!(Srv::new(0, 0, 0, ".").is_unavailable());
        assert!(!Srv::new(0, 0, 1, "a").is_unavailable());
    }
}
