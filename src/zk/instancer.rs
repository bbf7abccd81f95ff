//! `zk::Instancer`: the children of a path, each child's data an instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, select};
use parking_lot::Mutex;
use serde::Deserialize;

use super::client::{Client, WatchEvent};
use crate::internal::publisher::Publisher;
use crate::internal::watch::{self, Due, Early, Fetched, Source, WatchOptions};
use crate::internal::worker::{StopSignal, Worker};
use crate::{Error, Instance, Result, ZkErrorKind};

const LOG: &str = "waypost::zk";

/// How a child's data names an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Go kit's: the data is `host:port`.
    #[default]
    Plain,
    /// Curator's service discovery (`curator-x-discovery`): the data is the JSON of a
    /// `ServiceInstance` (`address`, `port` or `sslPort`, `id`, `name`, `enabled`...).
    /// An instance with `"enabled": false` is left out, as Curator's `ServiceProvider`
    /// does.
    Curator,
}

/// Watches the children of a path; see the [module docs](super).
///
/// One thread, `waypost-zk-watch`, lists the children with a child watch, reads each
/// child's data, publishes the set, and waits for the watch to fire (or the session
/// to expire) to list again. `stop()` (or drop) ends the wait at once and joins it.
#[derive(Debug)]
#[must_use = "dropping an instancer stops its watch"]
pub struct Instancer {
    publisher: Arc<Publisher>,
    worker: Mutex<Option<Worker>>,
}

/// Builds an [`Instancer`]; see [`Instancer::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct InstancerBuilder {
    client: Client,
    path: String,
    layout: Layout,
    missing_poll: Duration,
    watch: WatchOptions,
}

impl Instancer {
    /// A builder for the children of `path` (e.g. `/services/api`).
    pub fn builder(client: &Client, path: impl Into<String>) -> InstancerBuilder {
        InstancerBuilder {
            client: client.clone(),
            path: path.into(),
            layout: Layout::Plain,
            missing_poll: Duration::from_secs(1),
            watch: WatchOptions::default(),
        }
    }
}

impl InstancerBuilder {
    /// How children's data is read. Default [`Layout::Plain`].
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// While the path does not exist, the set is empty and the path is looked at again
    /// this often. Default 1 s.
    pub fn missing_poll(mut self, every: Duration) -> Self {
        self.missing_poll = every;
        self
    }

    watch::watch_setters!(watch);

    /// Validates, starts the thread and waits for the first answer up to the
    /// first-fetch timeout. Errors: [`Error::InvalidConfig`] for a path that is not
    /// absolute, a zero `missing_poll`, a `min_interval` over an hour, a backoff `max`
    /// below its `initial`.
    pub fn build(self) -> Result<Instancer> {
        if !self.path.starts_with('/') {
            return Err(Error::invalid_config("path", "must be absolute"));
        }
        if self.missing_poll.is_zero() {
            return Err(Error::invalid_config(
                "missing_poll",
                "must be more than zero",
            ));
        }
        self.watch.validate()?;
        let publisher = Arc::new(Publisher::new());
        let spec = self.watch.spec(
            "waypost-zk-watch",
            "zookeeper watch",
            LOG,
            format!("{:?}", self.path),
        );
        let source = Children {
            client: self.client,
            path: self.path,
            layout: self.layout,
            missing_poll: self.missing_poll,
            fired: None,
            bad: HashMap::new(),
        };
        // Waits end on the stop signal; a call in flight ends within the client's
        // request timeout.
        let worker = watch::start(spec, publisher.clone(), source, || {})?;
        Ok(Instancer {
            publisher,
            worker: Mutex::new(Some(worker)),
        })
    }
}

struct Children {
    client: Client,
    path: String,
    layout: Layout,
    missing_poll: Duration,
    /// The child watch of the last list, until it fires.
    fired: Option<Receiver<WatchEvent>>,
    /// Children whose data names no instance, with the zxid of the data logged.
    bad: HashMap<String, i64>,
}

impl Source for Children {
    fn fetch(&mut self, stop: &StopSignal, _early: &mut Early<'_>) -> Result<Fetched> {
        if let Some(fired) = self.fired.take() {
            select! {
                recv(fired) -> _ => {}
                recv(stop.channel()) -> _ => return Ok(Fetched::Pending(Due::Now)),
            }
        }
        // Calls end at once on a stop, even waiting on a hung server.
        let cancel = Some(stop.channel());
        let children = match self.client.watch_children_until(&self.path, cancel) {
            Ok((children, fired)) => {
                self.fired = Some(fired);
                children
            }
            Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NoNode => {
                return Ok(Fetched::Instances(
                    Vec::new(),
                    Due::After(self.missing_poll),
                ));
            }
            Err(err) => return Err(err),
        };
        let mut instances = Vec::with_capacity(children.len());
        let mut bad = HashMap::new();
        for child in children {
            let path = format!("{}/{child}", self.path.trim_end_matches('/'));
            let (data, stat) = match self.client.get_data_until(&path, cancel) {
                Ok(answer) => answer,
                Err(Error::ZooKeeper(e)) if e.kind == ZkErrorKind::NoNode => continue, // gone
                Err(err) => {
                    self.fired = None;
                    return Err(err);
                }
            };
            match parse(&data, self.layout) {
                Ok(Some(instance)) => instances.push(instance),
                Ok(None) => {} // disabled
                Err(err) => {
                    if self.bad.get(&child) != Some(&stat.mzxid) {
                        log::warn!(target: LOG, "child {path:?} is left out: {err}");
                    }
                    bad.insert(child, stat.mzxid);
                }
            }
        }
        self.bad = bad;
        Ok(Fetched::Instances(instances, Due::Now))
    }

    fn reset(&mut self) {
        self.fired = None;
    }
}

/// Curator's `ServiceInstance` JSON, the fields waypost reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CuratorInstance {
    address: String,
    port: Option<u16>,
    ssl_port: Option<u16>,
    id: Option<String>,
    name: Option<String>,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn enabled() -> bool {
    true
}

/// The instance a child's data names; `None` for a disabled Curator instance.
fn parse(data: &[u8], layout: Layout) -> Result<Option<Instance>> {
    let text = std::str::from_utf8(data)
        .map_err(|_| Error::invalid_instance(&String::from_utf8_lossy(data), "not UTF-8"))?;
    match layout {
        Layout::Plain => Instance::parse(text.trim()).map(Some),
        Layout::Curator => {
            let c: CuratorInstance = serde_json::from_str(text)
                .map_err(|e| Error::invalid_instance(text, format!("not Curator's JSON: {e}")))?;
            if !c.enabled {
                return Ok(None);
            }
            let (port, scheme) = match (c.port, c.ssl_port) {
                (Some(port), _) => (port, None),
                (None, Some(port)) => (port, Some("https")),
                (None, None) => return Err(Error::invalid_instance(text, "no port nor sslPort")),
            };
            let addr = if c.address.contains(':') && !c.address.starts_with('[') {
                format!("[{}]:{port}", c.address)
            } else {
                format!("{}:{port}", c.address)
            };
            let parsed = Instance::parse(&addr)?;
            let mut b = Instance::builder(parsed.addr_arc().clone());
            if let Some(scheme) = scheme {
                b = b.scheme(scheme);
            }
            if let Some(id) = c.id {
                b = b.value("id", id);
            }
            if let Some(name) = c.name {
                b = b.value("name", name);
            }
            Ok(Some(b.build()))
        }
    }
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
mod tests {
    use super::*;

    #[test]
    fn plain_and_curator_data() {
        assert_eq!(
            parse(b"10.0.0.1:80", Layout::Plain)
                .unwrap()
                .unwrap()
                .addr(),
            "10.0.0.1:80"
        );
        let curator = br#"{"name":"web","id":"a1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":null,"registrationTimeUTC":1796072129404,"serviceType":"DYNAMIC","uriSpec":null}"#;
        let i = parse(curator, Layout::Curator).unwrap().unwrap();
        assert_eq!(i.addr(), "10.0.0.1:8080");
        assert_eq!(i.metadata().unwrap().get("id"), Some("a1"));
        let disabled =
            br#"{"name":"web","id":"a2","address":"10.0.0.2","port":80,"enabled":false}"#;
        assert!(parse(disabled, Layout::Curator).unwrap().is_none());
        let ssl = br#"{"name":"web","id":"a3","address":"10.0.0.3","sslPort":443}"#;
        let i = parse(ssl, Layout::Curator).unwrap().unwrap();
        assert_eq!(
            (i.addr(), i.metadata().unwrap().scheme()),
            ("10.0.0.3:443", Some("https"))
        );
        for bad in [&b"nonsense"[..], b"{\"address\":\"x\"}", b"\xff"] {
            assert!(parse(bad, Layout::Curator).is_err());
        }
        assert!(parse(b"host", Layout::Plain).is_err());
    }
}
