//! Name resolution for the HTTP agents, without ureq's unnamed helper thread.
//!
//! ureq bounds a lookup by running `getaddrinfo` on a fresh, unnamed, detached thread,
//! even for an IP literal. waypost names every thread it starts, and most registry
//! addresses are IP literals, so: an IP literal is parsed here with no lookup and no
//! thread; a host name is looked up on a thread named `waypost-resolve`, bounded by the
//! resolve timeout. That thread is joined when the answer comes in time; when it does
//! not, the call fails with a timeout and the thread ends by itself as soon as the
//! system resolver returns (it holds nothing but the name).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// The resolver every waypost agent uses.
#[derive(Debug, Default)]
pub(crate) struct NamedResolver;

impl Resolver for NamedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
            .ok_or(ureq::Error::HostNotFound)?;
        let mut out = self.empty();
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if let Ok(ip) = literal.unwrap_or(host).parse::<IpAddr>() {
            out.push(SocketAddr::new(ip, port));
            return Ok(out);
        }
        // ureq keeps at most 16 addresses.
        for addr in lookup(format!("{host}:{port}"), timeout)?
            .into_iter()
            .take(16)
        {
            out.push(addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// `getaddrinfo` on a named thread, bounded by the timeout.
fn lookup(name: String, timeout: NextTimeout) -> Result<Vec<SocketAddr>, ureq::Error> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let thread = std::thread::Builder::new()
        .name("waypost-resolve".into())
        .spawn(move || {
            let found = name.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
            let _ = tx.send(found);
        })?;
    match rx.recv_timeout(*timeout.after) {
        Ok(found) => {
            let _ = thread.join(); // it has sent its answer: it is ending
            Ok(found?)
        }
        Err(_) => Err(ureq::Error::Timeout(timeout.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let config = ureq::Agent::config_builder().build();
        NamedResolver
            .resolve(&uri, &config, timeout)
            .map(|found| found.iter().copied().collect())
    }

    #[test]
    fn literals_need_no_lookup_and_no_thread() {
        assert_eq!(
            resolve("http://127.0.0.1:8500/v1").unwrap(),
            ["127.0.0.1:8500".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve("https://[::1]/").unwrap(),
            ["[::1]:443".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn names_are_looked_up() {
        let found = resolve("http://localhost:80/").unwrap();
        assert!(found.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }
}
