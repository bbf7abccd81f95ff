//! `consul::Registrar`: registers this instance with the local agent and keeps a TTL
//! check passing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{CheckRegistration, Client, ServiceRegistration, Weights, go_duration};
use crate::clock::{FOREVER, finite};
use crate::internal::backoff::Backoff;
use crate::internal::keeper::Keeper;
use crate::internal::worker::{Progress, StopSignal, Supervision, Worker};
use crate::{Error, Registration, Result};

const LOG: &str = "waypost::consul";

/// Registers one service instance with a Consul agent; see the [module docs](super).
///
/// With a TTL check (the default) a `waypost-consul-heartbeat` thread passes the check
/// every TTL/3 and registers the instance again if the agent lost it. Each of its calls
/// gives up after TTL/3, so a hung agent connection cannot hold the next pass back
/// until the check has expired. With an HTTP or TCP check the agent probes the
/// instance and there is no thread.
/// [`register`](crate::Registrar::register) returns the [`Registration`] guard:
/// dropping it (or [`Registrar::deregister`](crate::Registrar::deregister)) stops the
/// heartbeat (joined) and removes the service. Dropping the registrar itself does not
/// deregister; the heartbeat thread ends when the registrar and every guard are gone.
///
/// A panic in the heartbeat (a bug, e.g. in your own [`Client`]) is logged at `error!`
/// and the heartbeat starts again within TTL/6, so the check stays passing. The third
/// panic with no passed check in between ends the thread (logged too): the agent then
/// marks the check critical once the TTL passes, and watchers stop listing the
/// instance. [`register`](crate::Registrar::register) starts a new heartbeat.
///
/// ```no_run
/// use std::time::Duration;
/// use waypost::consul::{HttpClient, Registrar};
/// let client = HttpClient::builder().build()?;
/// let registrar = Registrar::builder(&client, "api", "10.0.0.7", 8080)
///     .tag("v2")
///     .meta("version", "2.1.0")
///     .ttl(Duration::from_secs(10))
///     .build()?;
/// let _registration = registrar.register()?; // deregisters on drop
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct Registrar {
    /// Shared with every [`Registration`] this registrar returned, which deregisters
    /// through it.
    keeper: Keeper<Shared>,
}

struct Shared {
    client: Arc<dyn Client>,
    registration: ServiceRegistration,
    ttl: Option<Duration>,
}

/// Builds a [`Registrar`]; see [`Registrar::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct RegistrarBuilder {
    client: Arc<dyn Client>,
    registration: ServiceRegistration,
    check: Check,
    deregister_after: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Check {
    Ttl(Duration),
    Http { url: String, interval: Duration },
    Tcp { addr: String, interval: Duration },
    None,
}

impl Registrar {
    /// Starts a builder for an instance of `service` at `address:port`. `address` is
    /// what watchers connect to (an IP or a name); empty means "the agent's node
    /// address".
    pub fn builder(
        client: &dyn Client,
        service: impl Into<String>,
        address: impl Into<String>,
        port: u16,
    ) -> RegistrarBuilder {
        RegistrarBuilder {
            client: client.fork(),
            registration: ServiceRegistration {
                name: service.into(),
                address: address.into(),
                port,
                ..ServiceRegistration::default()
            },
            check: Check::Ttl(Duration::from_secs(10)),
            deregister_after: None,
        }
    }

    /// The instance id registered with the agent.
    pub fn id(&self) -> &str {
        &self.keeper.shared().registration.id
    }

    #[cfg(test)]
    pub(crate) fn heartbeat_running(&self) -> bool {
        self.keeper.status().1
    }
}

impl RegistrarBuilder {
    /// The instance id, unique on the agent. Default `<service>-<address>-<port>`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.registration.id = id.into();
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.registration.tags.push(tag.into());
        self
    }

    /// Adds a service meta key/value (watchers see it in [`Metadata::get`](crate::Metadata::get)).
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.registration.meta.insert(key.into(), value.into());
        self
    }

    /// Replaces all service meta.
    pub fn metas(mut self, meta: BTreeMap<String, String>) -> Self {
        self.registration.meta = meta;
        self
    }

    /// Weights while passing and while warning. Default: Consul's (1 and 1).
    pub fn weights(mut self, passing: u32, warning: u32) -> Self {
        self.registration.weights = Some(Weights { passing, warning });
        self
    }

    /// A TTL check kept passing by the heartbeat thread every `ttl`/3 (the default,
    /// 10 s), each call bounded by `ttl`/3 (or the client's request timeout, if
    /// shorter). Shorter notices a dead process sooner, at the cost of more agent calls.
    ///
    /// `build()` refuses, with [`Error::InvalidConfig`] (`ttl`), a TTL under 1 s
    /// (`Duration::ZERO` included: the check would expire between passes) and one of
    /// about 100 years or more (`Duration::MAX` included: a TTL that never expires is
    /// no check; use [`no_check`](Self::no_check)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.check = Check::Ttl(ttl);
        self
    }

    /// An HTTP check instead: the agent GETs `url` every `interval` (2xx passes, 429
    /// warns). No heartbeat thread. `build()` refuses, with [`Error::InvalidConfig`]
    /// (`check`), an empty `url`, an `interval` of `Duration::ZERO`, and one of about
    /// 100 years or more (`Duration::MAX` included: the agent would never run it).
    pub fn http_check(mut self, url: impl Into<String>, interval: Duration) -> Self {
        self.check = Check::Http {
            url: url.into(),
            interval,
        };
        self
    }

    /// A TCP check instead: the agent connects to `addr` (`host:port`) every `interval`.
    /// No heartbeat thread. The `interval` is checked as for
    /// [`http_check`](Self::http_check).
    pub fn tcp_check(mut self, addr: impl Into<String>, interval: Duration) -> Self {
        self.check = Check::Tcp {
            addr: addr.into(),
            interval,
        };
        self
    }

    /// No check at all: the instance counts as passing while registered.
    pub fn no_check(mut self) -> Self {
        self.check = Check::None;
        self
    }

    /// Let the agent remove the service once its check has been critical this long (a
    /// crashed process that never deregistered). Consul enforces at least one minute
    /// and reaps every 30 s. Default: never.
    ///
    /// `Duration::ZERO` asks for the least Consul allows (it raises it to one minute);
    /// `Duration::MAX` (or anything from about 100 years up) means never, the default.
    pub fn deregister_critical_service_after(mut self, after: Duration) -> Self {
        self.deregister_after = Some(after);
        self
    }

    /// Validates. Errors: [`Error::InvalidConfig`] for an empty service name or id, a
    /// TTL under 1 s or of 100 years or more, a check interval of zero or of 100 years
    /// or more, an empty check target, or `deregister_critical_service_after` without a
    /// check.
    pub fn build(self) -> Result<Registrar> {
        let mut reg = self.registration;
        if reg.name.is_empty() {
            return Err(Error::invalid_config("service", "must not be empty"));
        }
        if reg.id.is_empty() {
            reg.id = format!("{}-{}-{}", reg.name, reg.address, reg.port);
        }
        let mut check = CheckRegistration {
            check_id: format!("service:{}", reg.id),
            name: format!("{} health", reg.name),
            deregister_critical_service_after: self
                .deregister_after
                .and_then(finite)
                .map(go_duration),
            ..CheckRegistration::default()
        };
        let ttl = match self.check {
            Check::Ttl(ttl) if ttl < Duration::from_secs(1) || ttl >= FOREVER => {
                return Err(Error::invalid_config(
                    "ttl",
                    "must be at least 1 s and under 100 years",
                ));
            }
            Check::Ttl(ttl) => {
                check.ttl = Some(go_duration(ttl));
                Some(ttl)
            }
            Check::Http { url, interval }
            | Check::Tcp {
                addr: url,
                interval,
            } if url.is_empty() || interval.is_zero() || interval >= FOREVER => {
                return Err(Error::invalid_config(
                    "check",
                    "needs a target and an interval above zero and under 100 years",
                ));
            }
            Check::Http { url, interval } => {
                check.http = Some(url);
                check.interval = Some(go_duration(interval));
                None
            }
            Check::Tcp { addr, interval } => {
                check.tcp = Some(addr);
                check.interval = Some(go_duration(interval));
                None
            }
            Check::None if self.deregister_after.is_some() => {
                return Err(Error::invalid_config(
                    "deregister_critical_service_after",
                    "needs a check",
                ));
            }
            Check::None => None,
        };
        let has_check = check.ttl.is_some() || check.http.is_some() || check.tcp.is_some();
        reg.check = has_check.then_some(check);
        let shared = Shared {
            client: self.client,
            registration: reg,
            ttl,
        };
        Ok(Registrar {
            keeper: Keeper::new(shared, Shared::deregister),
        })
    }
}

impl Shared {
    fn check_id(&self) -> Option<&str> {
        self.registration
            .check
            .as_ref()
            .map(|c| c.check_id.as_str())
    }

    /// Registers, then passes a TTL check once: a new TTL check starts critical, and a
    /// re-registration keeps the old status.
    fn register(&self, client: &dyn Client) -> Result<()> {
        client.register_service(&self.registration)?;
        if let (Some(_), Some(check_id)) = (self.ttl, self.check_id()) {
            client.pass_ttl(check_id)?;
        }
        Ok(())
    }

    /// The heartbeat loop: pass every TTL/3; after a failed pass ask the agent whether
    /// it still knows the service, and register again if not. A passed check is
    /// progress.
    ///
    /// Passes start TTL/3 apart, counted from the start of the last one, and every call
    /// gives up after TTL/3 (`client` is a [`Client::fork_with_timeout`]): a call to a
    /// hung agent fails in time for the next pass to be tried, on a new connection,
    /// before the check's TTL runs out.
    fn heartbeat(
        &self,
        client: &dyn Client,
        stop: &StopSignal,
        ttl: Duration,
        progress: &Progress,
    ) {
        let id = &self.registration.id;
        let check_id = self.check_id().unwrap_or_default();
        let mut due = Instant::now() + ttl / 3;
        while !stop.wait(due.saturating_duration_since(Instant::now())) {
            due = Instant::now() + ttl / 3;
            let Err(err) = client.pass_ttl(check_id) else {
                progress.made();
                continue;
            };
            if stop.is_stopped() {
                return;
            }
            log::warn!(target: LOG, "passing the TTL check of {id:?}: {err}");
            match client.agent_service(id) {
                Ok(Some(_)) => {} // still registered: the next pass may work
                Ok(None) => {
                    log::warn!(target: LOG, "the agent lost {id:?}; registering it again");
                    match self.register(client) {
                        Ok(()) => log::info!(target: LOG, "registered {id:?} again"),
                        Err(err) => log::warn!(target: LOG, "registering {id:?} again: {err}"),
                    }
                }
                Err(err) if !stop.is_stopped() => {
                    log::warn!(target: LOG, "looking up {id:?}: {err}");
                }
                Err(_) => return,
            }
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
    /// Registers (again), passes a TTL check once, starts the heartbeat if not running
    /// (also when it ended after panics); returns the guard that deregisters on drop.
    pub fn register(&self) -> Result<Registration> {
        self.keeper.register(
            |shared| shared.register(&*shared.client),
            |shared| format!("consul service {:?}", shared.registration.id),
            |shared| {
                let Some(ttl) = shared.ttl else {
                    return Ok(None);
                };
                // Every heartbeat call gives up after TTL/3 (see `Shared::heartbeat`).
                let client = shared.client.fork_with_timeout(ttl / 3);
                let cancel = client.clone();
                let shared = shared.clone();
                // A restarted heartbeat passes within TTL/3 + TTL/6 of its start, so the
                // check stays passing through a panic.
                let supervision = Supervision {
                    component: "consul heartbeat",
                    log_target: LOG,
                    restart: Backoff::new(Duration::from_millis(100).min(ttl / 6), ttl / 6),
                    clock: Arc::new(crate::SystemClock),
                };
                Worker::spawn_supervised(
                    "waypost-consul-heartbeat",
                    supervision,
                    move || cancel.shutdown(),
                    move |stop, progress| shared.heartbeat(&*client, stop, ttl, progress),
                    |_| {}, // logged by the supervisor; the TTL tells the agent
                )
                .map(Some)
            },
        )
    }

    /// Stops and joins the heartbeat, then removes the service. `Ok` when not
    /// registered.
    pub fn deregister(&self) -> Result<()> {
        self.keeper.deregister()
    }
}

impl Shared {
    /// Removes the service from the agent.
    fn deregister(&self) -> Result<()> {
        self.client.deregister_service(&self.registration.id)
    }
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (registered, heartbeat) = self.keeper.status();
        f.debug_struct("Registrar")
            .field("registration", &self.keeper.shared().registration)
            .field("registered", &registered)
            .field("heartbeat", &heartbeat)
            .finish()
    }
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
