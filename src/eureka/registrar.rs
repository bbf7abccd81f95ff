//! `eureka::Registrar`: registers this instance and renews its lease.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::LOG;
use super::client::{Client, InstanceInfo, Status};
use crate::internal::backoff::Backoff;
use crate::internal::keeper::Keeper;
use crate::internal::watch::wait_until;
use crate::internal::worker::{Progress, StopSignal, Supervision, Worker};
use crate::{Clock, Error, Instance, Registration, Result};

/// Registers one instance with a Eureka server and renews its lease from a
/// `waypost-eureka-heartbeat` thread; see the [module docs](super).
///
/// [`register`](crate::Registrar::register) sends the instance (status UP unless
/// told otherwise) and starts the thread, which renews the lease every renewal
/// interval (30 s by default). A renewal answered 404 means the server forgot the
/// instance (it expired, or the server restarted, or another server of the cluster
/// answered): the thread registers it again at once. Renewal errors are logged
/// (`warn`, target `waypost::eureka`) and retried sooner. The returned
/// [`Registration`] deregisters on drop: it stops the thread (joined) and cancels
/// the instance (`DELETE`).
///
/// ```no_run
/// use waypost::eureka::{HttpClient, Registrar};
/// let client = HttpClient::builder().server("http://10.0.0.2:8761/eureka").build()?;
/// let registrar = Registrar::builder(&client, "payments", "10.0.0.7:8080")
///     .metadata("zone", "eu-1")
///     .build()?;
/// let _registration = registrar.register()?; // cancels on drop
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct Registrar {
    keeper: Keeper<Shared>,
}

struct Shared {
    client: Arc<dyn Client>,
    /// What is registered; its own status changes with [`Registrar::set_status`].
    instance: Mutex<InstanceInfo>,
    clock: Arc<dyn Clock>,
}

/// Builds a [`Registrar`]; see [`Registrar::builder`].
#[must_use = "a builder does nothing until build()"]
pub struct RegistrarBuilder {
    client: Arc<dyn Client>,
    app: String,
    addr: String,
    instance_id: Option<String>,
    host_name: Option<String>,
    ip_addr: Option<String>,
    secure: bool,
    secure_port: Option<u16>,
    vip_address: Option<String>,
    metadata: Vec<(String, String)>,
    status: Status,
    renewal_interval: Duration,
    lease_duration: Duration,
    data_center: String,
    status_page_url: Option<String>,
    health_check_url: Option<String>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RegistrarBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrarBuilder")
            .field("app", &self.app)
            .field("addr", &self.addr)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// Starts a builder for the instance of `app` at `addr` (`host:port`, checked by
    /// [`Instance::parse`]): the host is the instance's `hostName` and, unless told
    /// otherwise, its `ipAddr`; the port its (plain) `port`.
    pub fn builder(client: &dyn Client, app: &str, addr: impl Into<String>) -> RegistrarBuilder {
        RegistrarBuilder {
            client: client.fork(),
            app: app.to_owned(),
            addr: addr.into(),
            instance_id: None,
            host_name: None,
            ip_addr: None,
            secure: false,
            secure_port: None,
            vip_address: None,
            metadata: Vec::new(),
            status: Status::Up,
            renewal_interval: Duration::from_secs(30),
            lease_duration: Duration::from_secs(90),
            data_center: "MyOwn".to_owned(),
            status_page_url: None,
            health_check_url: None,
            clock: crate::clock::system(),
        }
    }

    /// The instance as it is registered (or will be).
    pub fn instance(&self) -> InstanceInfo {
        self.keeper.shared().instance.lock().clone()
    }
}

impl RegistrarBuilder {
    /// The instance's id, unique within the app. Default `host:app:port` (lower-case
    /// app), as Spring Cloud names instances.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// The `hostName` registered. Default: the address's host.
    pub fn host_name(mut self, host: impl Into<String>) -> Self {
        self.host_name = Some(host.into());
        self
    }

    /// The `ipAddr` registered. Default: the address's host (give the IP here when
    /// the address names a host).
    pub fn ip_addr(mut self, ip: impl Into<String>) -> Self {
        self.ip_addr = Some(ip.into());
        self
    }

    /// The address's port is the secure port (`securePort` enabled, `port` disabled).
    pub fn secure(mut self) -> Self {
        self.secure = true;
        self
    }

    /// A secure port too (enabled), beside the address's plain port.
    pub fn secure_port(mut self, port: u16) -> Self {
        self.secure_port = Some(port);
        self
    }

    /// The VIP address. Default: the app's name in lower case.
    pub fn vip_address(mut self, vip: impl Into<String>) -> Self {
        self.vip_address = Some(vip.into());
        self
    }

    /// An entry of the instance's metadata map (e.g. `zone`).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The status registered first: [`Status::Up`] (the default) or
    /// [`Status::Starting`] (then [`Registrar::set_status`] to UP when ready).
    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// How often the lease is renewed. Default 30 s (Eureka's). At least 1 s, and
    /// less than the lease duration.
    pub fn renewal_interval(mut self, interval: Duration) -> Self {
        self.renewal_interval = interval;
        self
    }

    /// How long the server keeps the instance without renewals. Default 90 s
    /// (Eureka's). A real server evicts about twice this after the last renewal
    /// (a known Eureka quirk), plus up to its eviction period (60 s).
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// The data center's name. Default `MyOwn` (`Amazon` makes Eureka's own clients
    /// read AWS metadata).
    pub fn data_center(mut self, name: impl Into<String>) -> Self {
        self.data_center = name.into();
        self
    }

    /// `statusPageUrl`.
    pub fn status_page_url(mut self, url: impl Into<String>) -> Self {
        self.status_page_url = Some(url.into());
        self
    }

    /// `healthCheckUrl`.
    pub fn health_check_url(mut self, url: impl Into<String>) -> Self {
        self.health_check_url = Some(url.into());
        self
    }

    /// The clock the heartbeat thread waits on. Default:
    /// [`SystemClock`](crate::SystemClock); a test passes a
    /// [`ManualClock`](crate::ManualClock) and moves it.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validates. Errors: [`Error::InvalidConfig`] for an empty app or instance id
    /// (or one with `/`), a first status other than UP, DOWN or STARTING, a renewal
    /// interval under 1 s or not under the lease duration;
    /// [`Error::InvalidInstance`] for an address without a port, or one that
    /// [`Instance::parse`] refuses.
    pub fn build(self) -> Result<Registrar> {
        if self.app.trim().is_empty() || self.app.contains('/') {
            return Err(Error::invalid_config(
                "app",
                "must not be empty nor contain '/'",
            ));
        }
        let parsed = Instance::parse(&self.addr)?;
        let (Some(host), Some(port)) = (parsed.host(), parsed.port()) else {
            return Err(Error::invalid_instance(&self.addr, "needs host:port"));
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let id = self
            .instance_id
            .unwrap_or_else(|| format!("{host}:{}:{port}", self.app.to_ascii_lowercase()));
        if id.is_empty() || id.contains('/') {
            return Err(Error::invalid_config(
                "instance_id",
                "must not be empty nor contain '/'",
            ));
        }
        check_own_status(self.status, "status")?;
        if self.renewal_interval < Duration::from_secs(1)
            || self.renewal_interval >= self.lease_duration
        {
            return Err(Error::invalid_config(
                "renewal_interval",
                "must be at least 1 s and less than the lease duration",
            ));
        }
        let host_name = self.host_name.unwrap_or_else(|| host.clone());
        let ip_addr = self.ip_addr.unwrap_or(host);
        let mut info =
            InstanceInfo::new(&self.app, &id, &host_name, &ip_addr).with_status(self.status);
        if self.secure {
            info.secure_port = Some(port);
        } else {
            info.port = Some(port);
            info.secure_port = self.secure_port;
        }
        if let Some(vip) = self.vip_address {
            info.vip_address = Some(vip);
        }
        info.metadata.extend(self.metadata);
        info.renewal_interval = self.renewal_interval;
        info.lease_duration = self.lease_duration;
        info.data_center = self.data_center;
        info.status_page_url = self.status_page_url;
        info.health_check_url = self.health_check_url;
        let shared = Shared {
            client: self.client,
            instance: Mutex::new(info),
            clock: self.clock,
        };
        Ok(Registrar {
            keeper: Keeper::new(shared, Shared::cancel),
        })
    }
}

/// The statuses an instance sets itself; OUT_OF_SERVICE is an operator's override.
fn check_own_status(status: Status, field: &'static str) -> Result<()> {
    match status {
        Status::Up | Status::Down | Status::Starting => Ok(()),
        Status::OutOfService => Err(Error::invalid_config(
            field,
            "OUT_OF_SERVICE is an override: use set_out_of_service",
        )),
        Status::Unknown => Err(Error::invalid_config(field, "must be UP, DOWN or STARTING")),
    }
}

impl Shared {
    /// The app and the instance id.
    fn ids(&self) -> (String, String) {
        let info = self.instance.lock();
        (info.app.clone(), info.instance_id.clone())
    }

    /// Cancels the instance (`DELETE`); one the server no longer knows is `Ok`.
    fn cancel(&self) -> Result<()> {
        let (app, id) = self.ids();
        self.client.cancel(&app, &id).map(drop)
    }

    fn name(&self) -> String {
        let info = self.instance.lock();
        format!("{}/{}", info.app, info.instance_id)
    }

    fn register(&self, client: &dyn Client) -> Result<()> {
        let info = self.instance.lock().clone();
        client.register(&info)
    }

    fn interval(&self) -> Duration {
        self.instance.lock().renewal_interval
    }

    /// The heartbeat loop: renew every interval; a 404 registers again at once; an
    /// error is retried sooner (backoff, at most the interval). A renewal is progress.
    fn heartbeat(&self, client: &dyn Client, stop: &StopSignal, progress: &Progress) {
        let clock = &*self.clock;
        let interval = self.interval();
        let mut retry = Backoff::new(Duration::from_millis(100).min(interval), interval);
        let mut due = clock.now().checked_add(interval);
        loop {
            if wait_until(clock, stop, due) {
                return;
            }
            let (app, id) = self.ids();
            let outcome = match client.renew(&app, &id) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    log::warn!(target: LOG,
                        "the server forgot {}; registering it again", self.name());
                    self.register(client).inspect(|()| {
                        log::info!(target: LOG, "registered {} again", self.name());
                    })
                }
                Err(err) => Err(err),
            };
            if stop.is_stopped() {
                return;
            }
            let next = match outcome {
                Ok(()) => {
                    progress.made();
                    retry.reset();
                    interval
                }
                Err(err) => {
                    log::warn!(target: LOG, "renewing {}: {err}", self.name());
                    retry.next_delay().min(interval)
                }
            };
            due = clock.now().checked_add(next);
        }
    }
}

impl crate::Registrar for Registrar {
    fn register(&self) -> Result<Registration> {
        Registrar::register(self)
    }
    fn deregister(&self) -> Result<()> {
        Registrar::deregister(self)
    }
}

impl Registrar {
    /// Registers the instance and starts the heartbeat thread if it is not running
    /// (also when it ended after panics); returns the guard that deregisters on drop.
    pub fn register(&self) -> Result<Registration> {
        self.keeper.register(
            |shared| shared.register(&*shared.client),
            |shared| format!("eureka instance {}", shared.name()),
            |shared| {
                let client = shared.client.fork();
                let cancel = client.clone();
                let shared = shared.clone();
                let interval = shared.interval();
                let supervision = Supervision {
                    component: "eureka heartbeat",
                    log_target: LOG,
                    restart: Backoff::new(Duration::from_millis(100), interval / 2),
                    clock: shared.clock.clone(),
                };
                Worker::spawn_supervised(
                    "waypost-eureka-heartbeat",
                    supervision,
                    move || cancel.shutdown(),
                    move |stop, progress| shared.heartbeat(&*client, stop, progress),
                    |_| {}, // logged by the supervisor; the lease tells the server
                )
                .map(Some)
            },
        )
    }

    /// Stops and joins the heartbeat thread and cancels the instance (`DELETE`; one
    /// the server no longer knows is `Ok`). `Ok` when not registered.
    pub fn deregister(&self) -> Result<()> {
        self.keeper.deregister()
    }

    /// Changes the instance's own status (UP, DOWN or STARTING) by registering it
    /// again with it, as Eureka's clients do; later registrations (after a 404) keep
    /// it. An operator's OUT_OF_SERVICE override, when set, still wins on the server.
    /// Errors: [`Error::InvalidConfig`] for another status; the server's error (the
    /// status is kept for the next registration).
    pub fn set_status(&self, status: Status) -> Result<()> {
        check_own_status(status, "status")?;
        let shared = self.keeper.shared();
        shared.instance.lock().status = status;
        self.keeper.while_held(|registered| match registered {
            true => shared.register(&*shared.client),
            false => Ok(()),
        })
    }

    /// Sets (`true`) or removes (`false`) the OUT_OF_SERVICE override of this
    /// instance on the server (`PUT`/`DELETE .../status`): while set, the server shows
    /// the instance OUT_OF_SERVICE whatever its own status, and instancers leave it out.
    ///
    /// Eureka shows an instance whose override was removed as UNKNOWN until it is
    /// registered again (its next renewal is answered 404), so a registered instance
    /// is registered again at once after the removal, with its own status.
    pub fn set_out_of_service(&self, out: bool) -> Result<()> {
        let shared = self.keeper.shared();
        let (app, id) = shared.ids();
        let client = &*shared.client;
        if out {
            return client.set_status_override(&app, &id, Status::OutOfService);
        }
        client.remove_status_override(&app, &id)?;
        self.keeper.while_held(|registered| match registered {
            true => shared.register(client),
            false => Ok(()),
        })
    }
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (registered, heartbeat) = self.keeper.status();
        f.debug_struct("Registrar")
            .field("instance", &self.keeper.shared().name())
            .field("registered", &registered)
            .field("heartbeat", &heartbeat)
            .finish()
    }
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
