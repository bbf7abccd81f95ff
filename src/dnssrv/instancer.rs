//! `dnssrv::Instancer`: the instances an SRV name (or a host name's addresses) lists,
//! asked again when the answer's TTL runs out.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::client::Client;
use super::resolver::{Cancel, Resolver, Srv, SrvLookup};
use crate::internal::publisher::Publisher;
use crate::internal::watch::{self, Due, Early, Fetched, Source, WatchOptions};
use crate::internal::worker::{StopSignal, Worker};
use crate::{Error, Instance, Result};

const LOG: &str = "waypost::dnssrv";

/// What an [`Instancer`] asks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Query {
    /// The SRV records of a name: each `target:port` is an instance.
    Srv(String),
    /// The A and AAAA records of a host: each address, with this port, is an instance.
    Host(String, u16),
}

/// When the next query is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Polling {
    /// When the answer's TTL runs out, clamped to `[floor, ceiling]`; an answer that
    /// gives no TTL (a negative answer without the zone's SOA) is asked again after
    /// `floor`.
    Ttl { floor: Duration, ceiling: Duration },
    /// At a fixed interval, whatever the TTLs say.
    Every(Duration),
}

/// Watches an SRV name, or the addresses of a host name, by polling; see the
/// [module docs](super).
///
/// One thread, `waypost-dns-watch`, asks the [`Resolver`], publishes the set, and
/// waits until the answer's TTL runs out (within the floor and ceiling) to ask again.
/// `stop()` (or drop) cuts a query in flight short and joins the thread.
#[must_use = "dropping an instancer stops its watch"]
pub struct Instancer {
    publisher: Arc<Publisher>,
    worker: Mutex<Option<Worker>>,
    query: Query,
}

impl fmt::Debug for Instancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instancer")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Instancer`]; see [`Instancer::srv`] and [`Instancer::host`].
#[must_use = "a builder does nothing until build()"]
pub struct InstancerBuilder {
    query: std::result::Result<Query, Error>,
    resolver: Option<Arc<dyn Resolver>>,
    lowest_priority_only: bool,
    resolve_targets: bool,
    polling: Polling,
    watch: WatchOptions,
}

impl fmt::Debug for InstancerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstancerBuilder")
            .field("query", &self.query)
            .field("resolver", &self.resolver)
            .field("lowest_priority_only", &self.lowest_priority_only)
            .field("resolve_targets", &self.resolve_targets)
            .field("polling", &self.polling)
            .finish_non_exhaustive()
    }
}

/// The default floor of TTL-driven polling: 5 s.
pub const DEFAULT_TTL_FLOOR: Duration = Duration::from_secs(5);
/// The default ceiling of TTL-driven polling: 5 min.
pub const DEFAULT_TTL_CEILING: Duration = Duration::from_secs(300);

impl Instancer {
    /// A builder for the SRV records of `name`, e.g. `_api._tcp.example.test`: each
    /// record is an instance `target:port`.
    pub fn srv(name: impl Into<String>) -> InstancerBuilder {
        InstancerBuilder::new(Ok(Query::Srv(name.into())))
    }

    /// A builder for the A and AAAA records of a host, given as `host:port` (e.g.
    /// `api.example.test:8080`): each address, with the port, is an instance, as
    /// gRPC's `dns` resolver does. A `host:port` without a valid port is refused at
    /// `build()`.
    pub fn host(host_port: &str) -> InstancerBuilder {
        InstancerBuilder::new(parse_host_port(host_port))
    }
}

fn parse_host_port(host_port: &str) -> Result<Query> {
    let refuse = |reason: &str| Err(Error::invalid_config("host", reason.to_string()));
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return refuse("must be host:port");
    };
    if host.is_empty() || host.contains(':') {
        return refuse("must be host:port, with a host name (not an address)");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => refuse("the port must be a number from 1 to 65535"),
        Ok(port) => Ok(Query::Host(host.to_string(), port)),
    }
}

impl InstancerBuilder {
    fn new(query: Result<Query>) -> InstancerBuilder {
        InstancerBuilder {
            query,
            resolver: None,
            lowest_priority_only: false,
            resolve_targets: false,
            polling: Polling::Ttl {
                floor: DEFAULT_TTL_FLOOR,
                ceiling: DEFAULT_TTL_CEILING,
            },
            watch: WatchOptions::default(),
        }
    }

    /// Who answers the queries. Default: a [`Client`] for the name servers of
    /// `/etc/resolv.conf` ([`Client::system`]), made at `build()`. A resolver of
    /// your own stands in for DNS in tests (Go kit's lookup function).
    pub fn resolver(mut self, resolver: impl Resolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Keeps only the records of the lowest priority value ("no fallback"). By
    /// default every priority group is published, each instance with its
    /// `priority` in its metadata: an instancer cannot know which targets are
    /// reachable, so dropping the backup groups would lose their fail-over.
    pub fn lowest_priority_only(mut self) -> Self {
        self.lowest_priority_only = true;
        self
    }

    /// Makes each SRV target an instance per address, `address:port`, with the
    /// target's name in the metadata value `target`. The addresses come from the
    /// answer's additional section, or from an A/AAAA query for a target it does not
    /// cover. By default targets stay names (`target:port`).
    pub fn resolve_targets(mut self) -> Self {
        self.resolve_targets = true;
        self
    }

    /// TTL-driven polling (the default): the next query when the answer's TTL runs
    /// out, but no sooner than `floor` and no later than `ceiling`. Default 5 s and
    /// 5 min. An answer with no TTL (a negative answer without the zone's SOA) is
    /// asked again after `floor`.
    pub fn ttl_bounds(mut self, floor: Duration, ceiling: Duration) -> Self {
        self.polling = Polling::Ttl { floor, ceiling };
        self
    }

    /// Polls every `interval`, whatever the TTLs say (instead of
    /// [`ttl_bounds`](Self::ttl_bounds)).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.polling = Polling::Every(interval);
        self
    }

    watch::watch_setters!(watch);

    /// Validates, makes the default client if none was given, starts the thread and
    /// waits for the first answer up to the first-fetch timeout.
    ///
    /// Errors: [`Error::InvalidConfig`] for an empty name, a `host:port` without a
    /// valid port, a zero floor or interval, a ceiling below the floor, a
    /// `min_interval` over an hour, a backoff `max` below its `initial`; the default client's errors (an unreadable
    /// `/etc/resolv.conf`).
    pub fn build(self) -> Result<Instancer> {
        let query = self.query?;
        let name = match &query {
            Query::Srv(name) | Query::Host(name, _) => name,
        };
        if name.trim().is_empty() {
            return Err(Error::invalid_config("name", "must not be empty"));
        }
        match self.polling {
            Polling::Ttl { floor, ceiling } => {
                if floor.is_zero() {
                    return Err(Error::invalid_config(
                        "ttl_bounds",
                        "floor must be more than zero",
                    ));
                }
                if ceiling < floor {
                    return Err(Error::invalid_config(
                        "ttl_bounds",
                        "ceiling must be at least the floor",
                    ));
                }
            }
            Polling::Every(interval) if interval.is_zero() => {
                return Err(Error::invalid_config("interval", "must be more than zero"));
            }
            Polling::Every(_) => {}
        }
        self.watch.validate()?;
        let resolver = match self.resolver {
            Some(resolver) => resolver,
            None => Arc::new(Client::system()?),
        };
        let what = match &query {
            Query::Srv(name) => format!("SRV {name}"),
            Query::Host(host, port) => format!("A/AAAA {host} (port {port})"),
        };
        let publisher = Arc::new(Publisher::new());
        let spec = self.watch.spec("waypost-dns-watch", "dns watch", LOG, what);
        let cancel = Cancel::new();
        let source = Records {
            resolver,
            query: query.clone(),
            lowest_priority_only: self.lowest_priority_only,
            resolve_targets: self.resolve_targets,
            polling: self.polling,
            cancel: cancel.clone(),
            bad: HashSet::new(),
        };
        // A stop cuts a query in flight short (UDP waits in 50 ms slices, TCP is shut).
        let worker = watch::start(spec, publisher.clone(), source, move || cancel.cancel())?;
        Ok(Instancer {
            publisher,
            worker: Mutex::new(Some(worker)),
            query,
        })
    }
}

/// The watch's source: one query (and, to resolve targets, one per target the
/// additional section does not cover).
struct Records {
    resolver: Arc<dyn Resolver>,
    query: Query,
    lowest_priority_only: bool,
    resolve_targets: bool,
    polling: Polling,
    cancel: Cancel,
    /// Records left out of the last answer, so each is warned about once while it
    /// stays.
    bad: HashSet<String>,
}

impl Source for Records {
    fn fetch(&mut self, _stop: &StopSignal, _early: &mut Early<'_>) -> Result<Fetched> {
        let (instances, ttl) = match self.query.clone() {
            Query::Srv(name) => {
                let lookup = self.resolver.lookup_srv(&name, &self.cancel)?;
                self.instances_of(&name, lookup)?
            }
            Query::Host(host, port) => {
                let lookup = self.resolver.lookup_ip(&host, &self.cancel)?;
                let instances = lookup
                    .addresses
                    .iter()
                    .map(|ip| Instance::new(socket_addr(*ip, port)))
                    .collect();
                (instances, lookup.ttl)
            }
        };
        Ok(Fetched::Instances(instances, Due::After(self.next(ttl))))
    }
}

impl Records {
    /// When the next query is due after an answer with `ttl`.
    fn next(&self, ttl: Option<Duration>) -> Duration {
        match self.polling {
            Polling::Every(interval) => interval,
            Polling::Ttl { floor, ceiling } => ttl.unwrap_or(floor).clamp(floor, ceiling),
        }
    }

    /// The instances of an SRV answer, and the TTL of everything they came from.
    fn instances_of(
        &mut self,
        name: &str,
        lookup: SrvLookup,
    ) -> Result<(Vec<Instance>, Option<Duration>)> {
        let mut ttl = lookup.ttl;
        let mut bad = HashSet::new();
        let mut records: Vec<&Srv> = Vec::with_capacity(lookup.records.len());
        for srv in &lookup.records {
            if srv.is_unavailable() {
                continue; // "." : decidedly not available here
            }
            if srv.port == 0 {
                // Go kit's ErrPortZero: this record is wrong, not the whole answer.
                let record = format!(
                    "{} {} {} {}",
                    srv.priority, srv.weight, srv.port, srv.target
                );
                if !self.bad.contains(&record) {
                    log::warn!(target: LOG, "SRV {name}: record {record:?} is left out: port 0");
                }
                bad.insert(record);
                continue;
            }
            records.push(srv);
        }
        if self.lowest_priority_only {
            if let Some(lowest) = records.iter().map(|srv| srv.priority).min() {
                records.retain(|srv| srv.priority == lowest);
            }
        }
        // Lowest priority first, so a target:port listed twice keeps its best group.
        records.sort_by_key(|srv| srv.priority);
        let mut instances = Vec::with_capacity(records.len());
        let mut seen = HashSet::new();
        for srv in records {
            let addrs: Vec<(String, Option<&str>)> = if self.resolve_targets {
                let mut ips: Vec<IpAddr> = lookup
                    .addresses
                    .iter()
                    .filter(|(target, _)| target.eq_ignore_ascii_case(&srv.target))
                    .map(|(_, ip)| *ip)
                    .collect();
                if ips.is_empty() {
                    let resolved = self.resolver.lookup_ip(&srv.target, &self.cancel)?;
                    ttl = min_ttl(ttl, resolved.ttl);
                    ips = resolved.addresses;
                }
                if ips.is_empty() {
                    let record = format!("{}:{} (no address)", srv.target, srv.port);
                    if !self.bad.contains(&record) {
                        log::warn!(target: LOG, "SRV {name}: target {} has no address; left out", srv.target);
                    }
                    bad.insert(record);
                }
                ips.into_iter()
                    .map(|ip| (socket_addr(ip, srv.port), Some(srv.target.as_str())))
                    .collect()
            } else {
                vec![(format!("{}:{}", srv.target, srv.port), None)]
            };
            for (addr, target) in addrs {
                let parsed = match Instance::parse(&addr) {
                    Ok(parsed) => parsed,
                    Err(err) => {
                        if !self.bad.contains(&addr) {
                            log::warn!(target: LOG, "SRV {name}: record {addr:?} is left out: {err}");
                        }
                        bad.insert(addr);
                        continue;
                    }
                };
                if !seen.insert(parsed.addr_arc().clone()) {
                    continue;
                }
                let mut builder = Instance::builder(parsed.addr_arc().clone())
                    .weight(u32::from(srv.weight))
                    .value("priority", srv.priority.to_string());
                if let Some(target) = target {
                    builder = builder.value("target", target);
                }
                instances.push(builder.build());
            }
        }
        self.bad = bad;
        Ok((instances, ttl))
    }
}

fn min_ttl(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn socket_addr(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

crate::internal::publisher::instancer_methods!(Instancer, |self| {
    if let Some(mut worker) = self.worker.lock().take() {
        worker.stop();
    }
});

impl Drop for Instancer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[path = "instancer_tests.rs"]
mod tests;
