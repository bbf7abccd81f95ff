//! `etcd::Registrar`: puts this instance under a prefix with a lease, and keeps the
//! lease alive.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::LOG;
use super::client::Client;
use super::value;
use crate::internal::backoff::Backoff;
use crate::internal::keeper::Keeper;
use crate::internal::watch::wait_until;
use crate::internal::worker::{Progress, StopSignal, Supervision, Worker};
use crate::{Clock, Error, Instance, InstanceBuilder, Registration, Result};

/// etcd's largest lease TTL (`MaxLeaseTTL`).
const MAX_TTL: Duration = Duration::from_secs(9_000_000_000);

/// Registers one instance in etcd as `prefix + id`, attached to a lease that a
/// `waypost-etcd-keepalive` thread keeps alive; see the [module docs](super).
///
/// [`register`](crate::Registrar::register) grants the lease, puts the key and starts
/// the thread, which renews the lease every TTL/3. When etcd answers that it no longer
/// knows the lease (it expired during a partition, was revoked, or etcd restarted
/// from empty), the thread grants a new one and puts the key again at once, so the
/// instance is back within one TTL of the loss being noticed. After each renewal it
/// reads the key back and puts it again if it was deleted or changed meanwhile. Keepalive errors are
/// logged (`warn`, target `waypost::etcd`) and retried. The returned
/// [`Registration`] deregisters on drop: it stops the thread (joined), deletes the key
/// and revokes the lease.
///
/// ```no_run
/// use std::time::Duration;
/// use waypost::etcd::{HttpClient, Registrar};
/// let client = HttpClient::builder().build()?;
/// let registrar = Registrar::builder(&client, "/services/api/", "10.0.0.7:8080")
///     .zone("eu-1")
///     .ttl(Duration::from_secs(10))
///     .build()?;
/// let _registration = registrar.register()?; // deregisters on drop
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct Registrar {
    keeper: Keeper<Shared>,
}

struct Shared {
    client: Arc<dyn Client>,
    key: Vec<u8>,
    value: Vec<u8>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    /// The lease the key is attached to; 0: none.
    lease: AtomicI64,
    /// The TTL etcd granted the lease, in seconds.
    granted: AtomicU64,
}

/// Builds a [`Registrar`]; see [`Registrar::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct RegistrarBuilder {
    client: Arc<dyn Client>,
    prefix: Vec<u8>,
    addr: String,
    id: Option<String>,
    metadata: Option<InstanceBuilder>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl Registrar {
    /// Starts a builder for the instance at `addr` (`host:port`, checked by
    /// [`Instance::parse`]) under `prefix` (e.g. `/services/api/`).
    pub fn builder(
        client: &dyn Client,
        prefix: impl Into<Vec<u8>>,
        addr: impl Into<String>,
    ) -> RegistrarBuilder {
        RegistrarBuilder {
            client: client.fork(),
            prefix: prefix.into(),
            addr: addr.into(),
            id: None,
            metadata: None,
            ttl: Duration::from_secs(10),
            clock: crate::clock::system(),
        }
    }

    /// The key registered: the prefix and the id.
    pub fn key(&self) -> &[u8] {
        &self.keeper.shared().key
    }

    /// The lease the key is attached to now (0 when not registered).
    pub fn lease(&self) -> i64 {
        self.keeper.shared().lease.load(Ordering::SeqCst)
    }
}

impl RegistrarBuilder {
    /// The key's last part, after the prefix. Default: the address.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    fn meta(self, f: impl FnOnce(InstanceBuilder) -> InstanceBuilder) -> Self {
        let builder = self
            .metadata
            .unwrap_or_else(|| Instance::builder(self.addr.as_str()));
        Self {
            metadata: Some(f(builder)),
            ..self
        }
    }

    /// The weight listed with the instance. Any metadata makes the value JSON (see the
    /// module docs, "Values"); with none it is the plain address.
    pub fn weight(self, weight: u32) -> Self {
        self.meta(|m| m.weight(weight))
    }

    /// The zone listed with the instance.
    pub fn zone(self, zone: impl Into<Box<str>>) -> Self {
        self.meta(|m| m.zone(zone))
    }

    /// The scheme listed with the instance (e.g. `https`).
    pub fn scheme(self, scheme: impl Into<Box<str>>) -> Self {
        self.meta(|m| m.scheme(scheme))
    }

    /// A tag listed with the instance.
    pub fn tag(self, tag: impl Into<Box<str>>) -> Self {
        self.meta(|m| m.tag(tag))
    }

    /// A key/value listed with the instance.
    pub fn value(self, key: impl Into<Box<str>>, value: impl Into<Box<str>>) -> Self {
        self.meta(|m| m.value(key, value))
    }

    /// The lease's TTL: how long the key outlives this process's last keepalive.
    /// Whole seconds (a fraction is rounded up); etcd grants at least about 1.5 times
    /// its election timeout (2 s with its defaults). Default 10 s.
    ///
    /// - Under 1 s, or over etcd's largest TTL (9,000,000,000 s; `Duration::MAX`
    ///   included), is refused by `build()` with [`Error::InvalidConfig`] (`ttl`).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The clock the keepalive thread waits on. Default:
    /// [`SystemClock`](crate::SystemClock); a test passes a
    /// [`ManualClock`](crate::ManualClock) to hold the keepalives back.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validates. Errors: [`Error::InvalidConfig`] for an empty prefix or id, an id
    /// with `/`, or a TTL out of range; [`Error::InvalidInstance`] for an address that
    /// [`Instance::parse`] refuses.
    pub fn build(self) -> Result<Registrar> {
        if self.prefix.is_empty() {
            return Err(Error::invalid_config("prefix", "must not be empty"));
        }
        let instance = Instance::parse(&self.addr)?;
        let id = self.id.unwrap_or_else(|| self.addr.clone());
        if id.is_empty() || id.contains('/') {
            return Err(Error::invalid_config(
                "id",
                "must not be empty nor contain '/'",
            ));
        }
        if self.ttl < Duration::from_secs(1) || self.ttl > MAX_TTL {
            return Err(Error::invalid_config(
                "ttl",
                "must be at least 1 s and at most 9,000,000,000 s",
            ));
        }
        let ttl = Duration::from_secs(self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0));
        let metadata = self.metadata.map(InstanceBuilder::build);
        let value = value::encode(
            instance.addr(),
            metadata.as_ref().and_then(Instance::metadata),
        );
        let mut key = self.prefix;
        key.extend_from_slice(id.as_bytes());
        let shared = Shared {
            client: self.client,
            key,
            value,
            ttl,
            clock: self.clock,
            lease: AtomicI64::new(0),
            granted: AtomicU64::new(ttl.as_secs()),
        };
        Ok(Registrar {
            keeper: Keeper::new(shared, Shared::remove),
        })
    }
}

impl Shared {
    fn key_text(&self) -> String {
        format!("{:?}", String::from_utf8_lossy(&self.key))
    }

    /// Puts the key with the current lease, or a new one when there is none or etcd no
    /// longer knows it.
    fn put(&self, client: &dyn Client) -> Result<()> {
        let mut lease = self.lease.load(Ordering::SeqCst);
        if lease != 0 && client.keep_alive(lease)?.is_none() {
            lease = 0;
        }
        if lease == 0 {
            let granted = client.grant_lease(self.ttl)?;
            lease = granted.id;
            self.lease.store(lease, Ordering::SeqCst);
            let seconds = granted.ttl.as_secs().max(1);
            self.granted.store(seconds, Ordering::SeqCst);
        }
        client.put(&self.key, &self.value, lease)
    }

    /// Puts the key again if it is gone or changed while its lease lives (someone
    /// deleted or overwrote it): one range after each renewal.
    fn check_key(&self, client: &dyn Client, lease: i64) -> Result<()> {
        let range = client.range_prefix(&self.key)?;
        let ours = range
            .kvs
            .iter()
            .any(|kv| kv.key == self.key && kv.value == self.value && kv.lease == lease);
        if ours {
            return Ok(());
        }
        log::warn!(target: LOG, "{} was deleted or changed; putting it again", self.key_text());
        client.put(&self.key, &self.value, lease)
    }

    /// The time between two keepalives: a third of the granted TTL.
    fn interval(&self) -> Duration {
        Duration::from_secs(self.granted.load(Ordering::SeqCst)) / 3
    }

    /// The keepalive loop: renew every TTL/3; when the lease is lost, grant a new one
    /// and put the key again; on errors retry sooner. A renewal is progress.
    fn keep_alive(&self, client: &dyn Client, stop: &StopSignal, progress: &Progress) {
        let clock = &*self.clock;
        let mut retry = Backoff::new(Duration::from_millis(100), self.interval());
        let mut due = clock.now().checked_add(self.interval());
        loop {
            if wait_until(clock, stop, due) {
                return;
            }
            let lease = self.lease.load(Ordering::SeqCst);
            let outcome = match client.keep_alive(lease) {
                Ok(Some(_)) => self.check_key(client, lease),
                Ok(None) => {
                    log::warn!(target: LOG,
                        "etcd lost the lease of {}; granting a new one and putting the key again",
                        self.key_text());
                    self.lease.store(0, Ordering::SeqCst);
                    self.put(client).inspect(|()| {
                        log::info!(target: LOG, "registered {} again", self.key_text());
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
                    self.interval()
                }
                Err(err) => {
                    log::warn!(target: LOG, "keeping {} alive: {err}", self.key_text());
                    retry.next_delay().min(self.interval())
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
    /// Puts the key (with a new lease, or the current one if etcd still knows it) and
    /// starts the keepalive thread if it is not running (also when it ended after
    /// panics); returns the guard that deregisters on drop.
    pub fn register(&self) -> Result<Registration> {
        self.keeper.register(
            |shared| shared.put(&*shared.client),
            |shared| format!("etcd key {}", shared.key_text()),
            |shared| {
                let interval = shared.interval();
                // Every keepalive call gives up after TTL/3, so that the next one is
                // tried, on a new connection, before the lease runs out.
                let client = shared.client.fork_with_timeout(interval);
                let cancel = client.clone();
                let shared = shared.clone();
                let supervision = Supervision {
                    component: "etcd keepalive",
                    log_target: LOG,
                    restart: Backoff::new(
                        Duration::from_millis(100).min(interval / 2),
                        interval / 2,
                    ),
                    clock: shared.clock.clone(),
                };
                Worker::spawn_supervised(
                    "waypost-etcd-keepalive",
                    supervision,
                    move || cancel.shutdown(),
                    move |stop, progress| shared.keep_alive(&*client, stop, progress),
                    |_| {}, // logged by the supervisor; the lease's TTL tells etcd
                )
                .map(Some)
            },
        )
    }

    /// Stops and joins the keepalive thread, deletes the key and revokes the lease.
    /// `Ok` when not registered. Both are tried; the first error is returned.
    pub fn deregister(&self) -> Result<()> {
        self.keeper.deregister()
    }
}

impl Shared {
    /// Deletes the key and revokes the lease (both tried; the first error returned).
    fn remove(&self) -> Result<()> {
        let client = &*self.client;
        let deleted = client.delete(&self.key);
        let revoked = match self.lease.load(Ordering::SeqCst) {
            0 => Ok(()),
            lease => client.revoke_lease(lease),
        };
        deleted?;
        revoked?;
        self.lease.store(0, Ordering::SeqCst);
        Ok(())
    }
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (registered, keepalive) = self.keeper.status();
        f.debug_struct("Registrar")
            .field("key", &self.keeper.shared().key_text())
            .field("lease", &self.lease())
            .field("registered", &registered)
            .field("keepalive", &keepalive)
            .finish()
    }
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
