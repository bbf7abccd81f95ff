//! The narrow Eureka [`Client`] trait (only the REST operations the instancer and the
//! registrar make) and its payloads; [`HttpClient`](super::HttpClient) is the real one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::Result;

/// The Eureka REST operations waypost makes (Netflix's "Eureka REST operations";
/// `{base}` is a server URL such as `http://host:8761/eureka`). App names are
/// case-insensitive; they go upper case on the wire.
///
/// [`HttpClient`](super::HttpClient) is the real one; tests give the instancer and
/// registrar a fake. A client can be [`fork`](Client::fork)ed into one with its own
/// connections for a thread that must be stoppable on its own, and
/// [`shutdown`](Client::shutdown) cuts that client's calls short.
pub trait Client: Send + Sync + fmt::Debug {
    /// `POST {base}/apps/{APP}` with the instance (Eureka answers 204). Registering an
    /// instance again replaces it: that is how its own status changes.
    fn register(&self, instance: &InstanceInfo) -> Result<()>;

    /// `PUT {base}/apps/{APP}/{ID}`: `Ok(true)` when renewed, `Ok(false)` when the
    /// server does not know the instance (404: register it again).
    fn renew(&self, app: &str, id: &str) -> Result<bool>;

    /// `DELETE {base}/apps/{APP}/{ID}`: `Ok(false)` when the server did not know it.
    fn cancel(&self, app: &str, id: &str) -> Result<bool>;

    /// `PUT {base}/apps/{APP}/{ID}/status?value=STATUS`: an operator's override (e.g.
    /// [`Status::OutOfService`]) that sticks over the instance's own status.
    fn set_status_override(&self, app: &str, id: &str, status: Status) -> Result<()>;

    /// `DELETE {base}/apps/{APP}/{ID}/status`: removes the override.
    fn remove_status_override(&self, app: &str, id: &str) -> Result<()>;

    /// `GET {base}/apps/{APP}`: its instances, or `None` when the server does not
    /// know the app (404).
    fn app(&self, app: &str) -> Result<Option<Vec<InstanceInfo>>>;

    /// `GET {base}/vips/{VIP}`: the instances of every app with that VIP address.
    fn vip(&self, vip: &str) -> Result<Vec<InstanceInfo>>;

    /// `GET {base}/apps/`: the server answers at this base path (the number of apps it
    /// holds). An app's 404 means "unknown app" only when this answers: a base path
    /// that 404s everywhere is an error.
    fn apps_count(&self) -> Result<usize>;

    /// A client with the same settings and its own connections, so that shutting it
    /// down affects nobody else.
    fn fork(&self) -> Arc<dyn Client>;

    /// Cuts this client's calls short, now and later (they fail with
    /// [`HttpErrorKind::Cancelled`](crate::HttpErrorKind::Cancelled)). Idempotent.
    fn shutdown(&self);
}

/// An instance's status in Eureka.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Ready to take traffic: the only status an instancer publishes.
    Up,
    /// Running, not to be used (it said so itself, e.g. failing its health check).
    Down,
    /// Starting, not ready yet.
    Starting,
    /// Taken out by an operator's override.
    OutOfService,
    /// Unknown (also "no override").
    Unknown,
}

impl Status {
    /// Eureka's name for it: `UP`, `DOWN`, `STARTING`, `OUT_OF_SERVICE`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::Down => "DOWN",
            Status::Starting => "STARTING",
            Status::OutOfService => "OUT_OF_SERVICE",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// The status Eureka's name (any case) stands for; anything else is
    /// [`Status::Unknown`], as Eureka's own client reads it.
    pub fn parse(name: &str) -> Status {
        match name.to_ascii_uppercase().as_str() {
            "UP" => Status::Up,
            "DOWN" => Status::Down,
            "STARTING" => Status::Starting,
            "OUT_OF_SERVICE" => Status::OutOfService,
            _ => Status::Unknown,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instance as Eureka holds it: what a registration sends and what reads answer.
/// Build one with [`InstanceInfo::new`] and its setters.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    /// The app's name, upper case (Eureka's `app`).
    pub app: String,
    /// Unique within the app (Eureka's `instanceId`).
    pub instance_id: String,
    /// Eureka's `hostName`.
    pub host_name: String,
    /// Eureka's `ipAddr`.
    pub ip_addr: String,
    /// The plain port, when enabled (`port` with `@enabled` true).
    pub port: Option<u16>,
    /// The secure port, when enabled (`securePort` with `@enabled` true).
    pub secure_port: Option<u16>,
    /// The status shown (the override when there is one, else the instance's own).
    pub status: Status,
    /// The operator's override, [`Status::Unknown`] when none.
    pub overridden_status: Status,
    /// The VIP address (`vipAddress`), often the app's name in lower case.
    pub vip_address: Option<String>,
    /// The secure VIP address (`secureVipAddress`).
    pub secure_vip_address: Option<String>,
    /// The data center's name (`dataCenterInfo.name`): `MyOwn` unless on AWS (`Amazon`).
    pub data_center: String,
    /// How often the instance renews its lease (`leaseInfo.renewalIntervalInSecs`).
    pub renewal_interval: Duration,
    /// How long the lease lasts without renewals (`leaseInfo.durationInSecs`).
    pub lease_duration: Duration,
    /// The instance's metadata map (Eureka's `@class` marker left out).
    pub metadata: BTreeMap<String, String>,
    /// `statusPageUrl`, when given.
    pub status_page_url: Option<String>,
    /// `homePageUrl`, when given.
    pub home_page_url: Option<String>,
    /// `healthCheckUrl`, when given.
    pub health_check_url: Option<String>,
}

impl InstanceInfo {
    /// An instance of `app` (upper-cased) with id `instance_id` on `host_name` and
    /// `ip_addr`, status UP, no port, data center `MyOwn`, lease renewed every 30 s for
    /// 90 s (Eureka's defaults), VIP address the app's name in lower case.
    pub fn new(app: &str, instance_id: &str, host_name: &str, ip_addr: &str) -> InstanceInfo {
        InstanceInfo {
            app: app.to_ascii_uppercase(),
            instance_id: instance_id.to_owned(),
            host_name: host_name.to_owned(),
            ip_addr: ip_addr.to_owned(),
            port: None,
            secure_port: None,
            status: Status::Up,
            overridden_status: Status::Unknown,
            vip_address: Some(app.to_ascii_lowercase()),
            secure_vip_address: None,
            data_center: "MyOwn".to_owned(),
            renewal_interval: Duration::from_secs(30),
            lease_duration: Duration::from_secs(90),
            metadata: BTreeMap::new(),
            status_page_url: None,
            home_page_url: None,
            health_check_url: None,
        }
    }

    /// Sets the plain port (enabled).
    pub fn with_port(mut self, port: u16) -> InstanceInfo {
        self.port = Some(port);
        self
    }

    /// Sets the secure port (enabled).
    pub fn with_secure_port(mut self, port: u16) -> InstanceInfo {
        self.secure_port = Some(port);
        self
    }

    /// Sets the status.
    pub fn with_status(mut self, status: Status) -> InstanceInfo {
        self.status = status;
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> InstanceInfo {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the VIP address.
    pub fn with_vip_address(mut self, vip: impl Into<String>) -> InstanceInfo {
        self.vip_address = Some(vip.into());
        self
    }
}
