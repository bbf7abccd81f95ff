//! `eureka::Instancer`: the UP instances of an app (or a VIP address), polled.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::LOG;
use super::client::{Client, InstanceInfo, Status};
use crate::internal::publisher::Publisher;
use crate::internal::watch::{self, Due, Early, Fetched, Source, WatchOptions};
use crate::internal::worker::{StopSignal, Worker};
use crate::{Error, Instance, Result};

/// What an [`Instancer`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Query {
    /// `GET {base}/apps/{APP}`.
    App(String),
    /// `GET {base}/vips/{VIP}`.
    Vip(String),
}

/// Polls a Eureka server for the UP instances of an app or a VIP address; see the
/// [module docs](super).
///
/// One thread, `waypost-eureka-watch`, reads the app (or VIP) every
/// [`interval`](InstancerBuilder::interval) and publishes the set. `stop()` (or
/// drop) cuts a read in flight short and joins the thread.
#[derive(Debug)]
#[must_use = "dropping an instancer stops its watch"]
pub struct Instancer {
    publisher: Arc<Publisher>,
    worker: Mutex<Option<Worker>>,
}

/// Builds an [`Instancer`]; see [`Instancer::app`] and [`Instancer::vip`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct InstancerBuilder {
    client: Arc<dyn Client>,
    query: Query,
    interval: Duration,
    prefer_ip_address: bool,
    watch: WatchOptions,
}

/// Eureka clients' default registry fetch interval: 30 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

impl Instancer {
    /// A builder for the instances of `app` (any case: Eureka's app names are upper
    /// case). The instancer's thread gets its own connections ([`Client::fork`]).
    pub fn app(client: &dyn Client, app: &str) -> InstancerBuilder {
        InstancerBuilder::new(client, Query::App(app.to_ascii_uppercase()))
    }

    /// A builder for the instances of every app registered with the VIP address
    /// `vip`.
    pub fn vip(client: &dyn Client, vip: &str) -> InstancerBuilder {
        InstancerBuilder::new(client, Query::Vip(vip.to_owned()))
    }
}

impl InstancerBuilder {
    fn new(client: &dyn Client, query: Query) -> InstancerBuilder {
        InstancerBuilder {
            client: client.fork(),
            query,
            interval: DEFAULT_INTERVAL,
            prefer_ip_address: false,
            watch: WatchOptions::default(),
        }
    }

    /// How often the server is read. Default 30 s, as Eureka's own clients fetch. A
    /// real Eureka server answers reads from a cache refreshed every 30 s, so a change
    /// may take up to that long to show whatever the interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Instances as `ipAddr:port` instead of `hostName:port` (Spring Cloud's
    /// `preferIpAddress`).
    pub fn prefer_ip_address(mut self) -> Self {
        self.prefer_ip_address = true;
        self
    }

    watch::watch_setters!(watch);

    /// Validates, starts the thread and waits for the first answer up to the
    /// first-fetch timeout. Errors: [`Error::InvalidConfig`] for an empty app or VIP,
    /// a zero interval, a `min_interval` over an hour, a backoff `max` below its
    /// `initial`; [`Error::Io`] if the thread cannot start.
    pub fn build(self) -> Result<Instancer> {
        let (field, name) = match &self.query {
            Query::App(app) => ("app", app),
            Query::Vip(vip) => ("vip", vip),
        };
        if name.trim().is_empty() || name.contains('/') {
            return Err(Error::invalid_config(
                field,
                "must not be empty nor contain '/'",
            ));
        }
        if self.interval.is_zero() {
            return Err(Error::invalid_config("interval", "must be more than zero"));
        }
        self.watch.validate()?;
        let what = format!("{field} {name}");
        let spec = self
            .watch
            .spec("waypost-eureka-watch", "eureka watch", LOG, what);
        let publisher = Arc::new(Publisher::new());
        let cancel = self.client.clone();
        let source = Poll {
            client: self.client,
            query: self.query,
            interval: self.interval,
            prefer_ip_address: self.prefer_ip_address,
            bad: HashSet::new(),
        };
        let worker = watch::start(spec, publisher.clone(), source, move || cancel.shutdown())?;
        Ok(Instancer {
            publisher,
            worker: Mutex::new(Some(worker)),
        })
    }
}

/// The watch's source: one read per interval.
struct Poll {
    client: Arc<dyn Client>,
    query: Query,
    interval: Duration,
    prefer_ip_address: bool,
    /// Instances left out of the last answer (no port enabled, an address the parser
    /// refuses), warned about once while they stay.
    bad: HashSet<String>,
}

impl Source for Poll {
    fn fetch(&mut self, _stop: &StopSignal, _early: &mut Early<'_>) -> Result<Fetched> {
        let infos = match &self.query {
            Query::App(app) => match self.client.app(app)? {
                Some(infos) => infos,
                // Unknown app: an empty set, but only if the server answers at this
                // base path (one that 404s everywhere is an error, not "no instances").
                None => {
                    self.client.apps_count()?;
                    Vec::new()
                }
            },
            Query::Vip(vip) => self.client.vip(vip)?,
        };
        let mut bad = HashSet::new();
        let mut instances = Vec::with_capacity(infos.len());
        for info in infos.iter().filter(|i| i.status == Status::Up) {
            match to_instance(info, self.prefer_ip_address) {
                Ok(instance) => instances.push(instance),
                Err(err) => {
                    let key = format!("{}/{}", info.app, info.instance_id);
                    if !self.bad.contains(&key) {
                        log::warn!(target: LOG, "instance {key} is left out: {err}");
                    }
                    bad.insert(key);
                }
            }
        }
        self.bad = bad;
        Ok(Fetched::Instances(instances, Due::After(self.interval)))
    }
}

/// The instance an UP `info` stands for: `hostName:port` (or `ipAddr:port`), the
/// secure port with scheme `https` when only that one is enabled; Eureka's metadata
/// map, zone, data center, instance id, app and VIP in the metadata.
fn to_instance(info: &InstanceInfo, prefer_ip_address: bool) -> Result<Instance> {
    let host = match prefer_ip_address {
        true => &info.ip_addr,
        false => &info.host_name,
    };
    let (port, secure) = match (info.port, info.secure_port) {
        (Some(port), _) => (port, false),
        (None, Some(port)) => (port, true),
        (None, None) => {
            return Err(Error::invalid_instance(
                host,
                "neither port nor securePort is enabled",
            ));
        }
    };
    let addr = match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let parsed = Instance::parse(&addr)?;
    let mut b = Instance::builder(parsed.addr_arc().clone());
    if secure {
        b = b.scheme("https");
    }
    for (key, value) in &info.metadata {
        b = match key.as_str() {
            "zone" => b.zone(value.as_str()),
            "weight" => match value.parse::<u32>() {
                Ok(weight) => b.weight(weight),
                Err(_) => b.value(key.as_str(), value.as_str()),
            },
            _ => b.value(key.as_str(), value.as_str()),
        };
    }
    b = b
        .value("eureka.app", info.app.as_str())
        .value("eureka.instance_id", info.instance_id.as_str())
        .value("eureka.data_center", info.data_center.as_str());
    if let Some(vip) = &info.vip_address {
        b = b.value("eureka.vip", vip.as_str());
    }
    Ok(b.build())
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
