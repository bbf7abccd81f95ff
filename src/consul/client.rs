//! The narrow Consul [`Client`] trait (only the calls the instancer and registrar
//! make), its payloads, and the real implementation [`HttpClient`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::consistency::Consistency;
use super::decode::{EntriesDecoder, ToInstances};
use super::entries::Skipped;
use super::shared::WatchGroup;
use crate::internal::http::Decode;
use crate::internal::http::{Call, Http, HttpSettings, Secret, encode};
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::{Error, Result};

const LOG: &str = "waypost::consul";

/// The Consul agent calls waypost makes. [`HttpClient`] is the real one; tests give the
/// instancer and registrar a fake.
///
/// Every call is bounded by a timeout. A client can be [`fork`](Client::fork)ed into
/// one with its own connections for a thread that must be stoppable on its own, and
/// [`shutdown`](Client::shutdown) cuts that client's calls short, the one in flight
/// included.
pub trait Client: Send + Sync + fmt::Debug {
    /// `GET /v1/health/service/<service>`: a blocking query when `query.index > 0`, from
    /// the server `query.consistency` allows. [`HttpClient`] decodes the answer entry
    /// by entry as it arrives and leaves out an entry that does not decode (see
    /// [`Health::entries`]).
    fn health_service(&self, service: &str, query: &HealthQuery<'_>) -> Result<Health>;

    /// What an [`Instancer`](super::Instancer) lists from the same query: the instances
    /// of the entries that carry every tag of `query` and pass its health filter (with
    /// `passing_only` false, those whose checks warn too, but none critical), and the
    /// answer's index. The default calls [`health_service`](Client::health_service)
    /// and converts its entries; [`HttpClient`] turns each entry into its instance as
    /// the answer is read, so a large answer is never held as entries.
    fn health_instances(&self, service: &str, query: &HealthQuery<'_>) -> Result<HealthInstances> {
        let health = self.health_service(service, query)?;
        let mut skipped = super::entries::Skipped::default();
        let include_warning = !query.passing_only;
        let instances =
            super::entries::instances(&health.entries, query.tags, include_warning, &mut skipped);
        skipped.log(service);
        Ok(HealthInstances {
            instances,
            index: health.index,
        })
    }

    /// `PUT /v1/agent/service/register`.
    fn register_service(&self, registration: &ServiceRegistration) -> Result<()>;

    /// `PUT /v1/agent/service/deregister/<id>`; an unknown id is `Ok`.
    fn deregister_service(&self, service_id: &str) -> Result<()>;

    /// `PUT /v1/agent/check/pass/<check_id>`.
    fn pass_ttl(&self, check_id: &str) -> Result<()>;

    /// `GET /v1/agent/service/<id>`: `None` when the agent does not know the service.
    fn agent_service(&self, service_id: &str) -> Result<Option<Service>>;

    /// A client with the same settings and its own connections, so that shutting it
    /// down affects nobody else.
    fn fork(&self) -> Arc<dyn Client>;

    /// A [`fork`](Client::fork) whose calls each give up, with an error, after
    /// `timeout` at most: the [`Registrar`](super::Registrar)'s heartbeat bounds every
    /// call by TTL/3 this way, so that one call to a hung agent cannot outlast the
    /// check's TTL. [`HttpClient`] lowers its request timeout to `timeout` (a blocking
    /// health query still adds its wait). The default is `fork()`, with no bound of its
    /// own: override it in a client whose calls can hang.
    fn fork_with_timeout(&self, timeout: Duration) -> Arc<dyn Client> {
        let _ = timeout;
        self.fork()
    }

    /// Cuts this client's calls short, now and later (they fail with
    /// [`HttpErrorKind::Cancelled`](crate::HttpErrorKind::Cancelled)). Idempotent.
    fn shutdown(&self);

    /// The group in which the instancers built on this client share their watches
    /// (see [`Instancer`](super::Instancer)); `None`, the default, gives each instancer
    /// a watch of its own. [`HttpClient`] and its clones share one group.
    fn watch_group(&self) -> Option<&WatchGroup> {
        None
    }
}

/// What [`Client::health_instances`] answers.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct HealthInstances {
    /// The instances listed, in the answer's order.
    pub instances: Vec<crate::Instance>,
    /// The `X-Consul-Index` header (0 when absent).
    pub index: u64,
}

impl HealthInstances {
    /// `instances` at `index`.
    pub fn new(instances: Vec<crate::Instance>, index: u64) -> HealthInstances {
        HealthInstances { instances, index }
    }
}

/// The parameters of a health query.
///
/// `#[non_exhaustive]`: start from [`HealthQuery::default`] and set the fields.
///
/// ```
/// # use std::time::Duration;
/// let mut query = waypost::consul::HealthQuery::default();
/// query.index = 42;
/// query.wait = Duration::from_secs(60);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct HealthQuery<'a> {
    /// Only instances whose checks all pass (`passing`).
    pub passing_only: bool,
    /// Every tag must be on the service (repeated `tag=`; Consul 1.8 ANDs them).
    pub tags: &'a [String],
    /// The `X-Consul-Index` of the last answer: Consul holds the query until the index
    /// moves past it or `wait` passes. 0 answers at once.
    pub index: u64,
    /// How long Consul may hold the query.
    pub wait: Duration,
    /// Which server may answer: the leader, or any server (`stale`), maybe within a
    /// bound on its lag that [`HttpClient`] checks against `X-Consul-LastContact`,
    /// asking again in default mode (same index and wait) when the answer is older.
    pub consistency: Consistency,
}

impl Default for HealthQuery<'_> {
    /// Passing instances only, no tag filter, index 0 (Consul answers at once), a
    /// wait of 5 minutes (Consul's default; used only once `index` is set), and the
    /// leader answers ([`Consistency::Default`]).
    fn default() -> Self {
        HealthQuery {
            passing_only: true,
            tags: &[],
            index: 0,
            wait: Duration::from_secs(300),
            consistency: Consistency::Default,
        }
    }
}

/// A health query's answer.
///
/// `#[non_exhaustive]`: build one with [`Health::new`] (or `Default`).
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// One entry per service instance. [`HttpClient`] leaves out, with a `warn!`
    /// naming it and the field at fault, an entry that does not fit these types
    /// (Consul accepts a port of 70000 or -1 from a registrant); the rest of the
    /// answer stands.
    pub entries: Vec<ServiceEntry>,
    /// The `X-Consul-Index` header (0 when absent).
    pub index: u64,
}

impl Health {
    /// An answer listing `entries` at `index`.
    pub fn new(entries: Vec<ServiceEntry>, index: u64) -> Health {
        Health { entries, index }
    }
}

/// One instance as `/v1/health/service` lists it.
///
/// `#[non_exhaustive]`, as are its parts: build one with [`ServiceEntry::new`] and set
/// the public fields, e.g. in a fake [`Client`].
///
/// ```
/// use waypost::consul::{HealthCheck, Node, Service, ServiceEntry};
/// let mut service = Service::new("10.0.0.1", 8080);
/// service.id = "api-1".into();
/// service.tags = vec!["v2".into()];
/// let mut entry = ServiceEntry::new(Node::new("node-1", "192.0.2.1"), service);
/// entry.checks.push(HealthCheck::new("serfHealth", "passing"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEntry {
    /// The node the instance runs on.
    pub node: Node,
    /// The service instance.
    pub service: Service,
    /// Its checks and its node's checks.
    #[serde(default, deserialize_with = "null_default")]
    pub checks: Vec<HealthCheck>,
}

impl ServiceEntry {
    /// The entry of `service` on `node`, with no checks (so it counts as passing).
    pub fn new(node: Node, service: Service) -> ServiceEntry {
        ServiceEntry {
            node,
            service,
            checks: Vec::new(),
        }
    }
}

/// A Consul node. `#[non_exhaustive]`: build one with [`Node::new`] or `Default`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    /// Node name.
    #[serde(default)]
    pub node: String,
    /// Node address, used when the service has none.
    #[serde(default)]
    pub address: String,
    /// Datacenter.
    #[serde(default)]
    pub datacenter: String,
}

impl Node {
    /// The node `name` at `address`, in the agent's datacenter (empty).
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Node {
        Node {
            node: name.into(),
            address: address.into(),
            datacenter: String::new(),
        }
    }
}

/// A service instance (health entry or agent service). `#[non_exhaustive]`: build one
/// with [`Service::new`] or `Default` and set the public fields.
#[non_exhaustive]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    /// Instance id.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Service name.
    #[serde(default)]
    pub service: String,
    /// Address; empty means "the node's address".
    #[serde(default)]
    pub address: String,
    /// Port.
    #[serde(default)]
    pub port: u16,
    /// Tags.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Service meta.
    #[serde(default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// DNS / balancing weights.
    #[serde(default)]
    pub weights: Option<Weights>,
}

impl Service {
    /// An instance at `address` and `port`; id, name, tags, meta and weights empty.
    /// An empty address means "the node's address".
    pub fn new(address: impl Into<String>, port: u16) -> Service {
        Service {
            address: address.into(),
            port,
            ..Service::default()
        }
    }
}

/// Consul's weights of an instance in each health state. `#[non_exhaustive]`: build
/// them with [`Weights::new`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    /// Weight while every check passes.
    pub passing: u32,
    /// Weight while a check warns.
    pub warning: u32,
}

impl Weights {
    /// Weight `passing` while every check passes, `warning` while one warns.
    pub fn new(passing: u32, warning: u32) -> Weights {
        Weights { passing, warning }
    }
}

/// One health check's state. `#[non_exhaustive]`: build one with [`HealthCheck::new`].
#[non_exhaustive]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// Check id.
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    /// `passing`, `warning`, `critical` (maintenance is `critical` too).
    #[serde(default)]
    pub status: String,
}

impl HealthCheck {
    /// Check `check_id` in `status` (`passing`, `warning` or `critical`).
    pub fn new(check_id: impl Into<String>, status: impl Into<String>) -> HealthCheck {
        HealthCheck {
            check_id: check_id.into(),
            status: status.into(),
        }
    }
}

/// What `PUT /v1/agent/service/register` takes. `#[non_exhaustive]`: start from
/// `Default` and set the fields.
#[non_exhaustive]
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceRegistration {
    /// Instance id, unique on the agent.
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Tags.
    pub tags: Vec<String>,
    /// Service meta.
    pub meta: BTreeMap<String, String>,
    /// Weights, if not Consul's default (1/1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// The health check, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckRegistration>,
}

/// The check registered with a service. Durations are Go duration strings (`"10s"`).
/// `#[non_exhaustive]`: start from `Default` and set the fields.
#[non_exhaustive]
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckRegistration {
    /// Check id (waypost uses `service:<id>`).
    #[serde(rename = "CheckID")]
    pub check_id: String,
    /// Human-readable name.
    pub name: String,
    /// TTL check: the agent marks it critical unless passed within this.
    #[serde(rename = "TTL", skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// HTTP check: the URL the agent GETs.
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// TCP check: the `host:port` the agent connects to.
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// How often the agent runs an HTTP/TCP check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Timeout of one HTTP/TCP check run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Reap the service after its check was critical this long (Consul: at least 1m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deregister_critical_service_after: Option<String>,
}

fn null_default<'de, D, T>(de: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// A duration as Go's `time.ParseDuration` reads it, in whole milliseconds (at least 1).
pub(crate) fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// The real [`Client`]: Consul's HTTP API through waypost's shared HTTP plumbing.
///
/// Cloning shares the connections; [`Client::fork`] makes a client with its own.
/// The ACL token travels in the `X-Consul-Token` header only: never in a URL, a log
/// line, an error or `Debug` output.
#[derive(Clone, Debug)]
pub struct HttpClient {
    http: Arc<Http>,
    datacenter: Option<Arc<str>>,
    /// Shared by the clones; a fork gets its own.
    watches: Arc<WatchGroup>,
}

/// Builds an [`HttpClient`]; see [`HttpClient::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build()"]
pub struct HttpClientBuilder {
    settings: HttpSettings,
    datacenter: Option<String>,
}

impl HttpClient {
    /// Starts a builder with the defaults listed on each setter.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            settings: HttpSettings {
                error_hook: crate::internal::http::backend_errors::consul,
                ..HttpSettings::new("consul", "http://127.0.0.1:8500")
            },
            datacenter: None,
        }
    }

    fn put(&self, path: &str, body: Option<Vec<u8>>) -> Result<crate::internal::http::Reply> {
        let mut call = Call::new("PUT", path);
        call.body = body;
        self.http.call(&call)
    }
}

impl HttpClientBuilder {
    /// One agent address, replacing the list: `http://host:port`, `https://host:port`
    /// or `host:port` (http). Default `http://127.0.0.1:8500`, the local agent, which is
    /// how Consul is meant to be used: every node runs an agent. An `https://` address
    /// needs the `tls` feature (on by default): without it `build()` refuses it with
    /// [`Error::InvalidConfig`] (`addresses`).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.settings.servers = vec![address.into().into()];
        self
    }

    /// Several agent addresses, tried in order. A call moves on to the next agent when
    /// one cannot answer now: a failed connect or name lookup, a timeout (a hung
    /// agent), or a 502, 503 or 504 (a proxy in front of a dead agent). A 500 is an
    /// answer and does not move on: Consul says with it what is wrong with the request.
    /// Later calls start at the agent that answered, so a watch leaves a hung agent for
    /// good.
    ///
    /// Worst case, a hung agent costs a plain call (a registration, a heartbeat) one
    /// [`request_timeout`](Self::request_timeout), and a blocking query already in
    /// flight its `wait` plus `wait`/16 plus one request timeout, before the next agent
    /// is asked. The agents should be of one datacenter: a watch keeps its index across
    /// them. Registering through a remote agent ties the registration to that agent's
    /// life; prefer the local one.
    pub fn addresses<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addresses: I) -> Self {
        self.settings.servers = addresses.into_iter().map(|a| a.into().into()).collect();
        self
    }

    /// The ACL token, sent as `X-Consul-Token` and never logged. Default: none (the
    /// agent's default token applies; with ACLs on that usually sees nothing: see the
    /// module docs).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token: String = token.into();
        self.settings
            .headers
            .retain(|(n, _)| *n != "X-Consul-Token");
        self.settings
            .headers
            .push(("X-Consul-Token", Secret::new(token)));
        self
    }

    /// Datacenter of health queries (`dc=`). Default: the agent's own.
    pub fn datacenter(mut self, datacenter: impl Into<String>) -> Self {
        self.datacenter = Some(datacenter.into());
        self
    }

    /// TLS for `https://` addresses. Default: the bundled Mozilla roots, no client
    /// certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Bound on name resolution, TCP connect and TLS handshake: the part of a call that
    /// `stop()` cannot cut short, so it also bounds how long a stop can take in the
    /// worst case. Default 500 ms; raise it for agents across a slow network.
    ///
    /// - `Duration::ZERO` is refused by `build()` with [`Error::InvalidConfig`]
    ///   (`connect_timeout`): no connection could be made.
    /// - `Duration::MAX` (or anything from about 100 years up) sets no connect bound of
    ///   its own: the [request timeout](Self::request_timeout) still bounds the whole
    ///   call, and the system's resolver and TCP timeouts apply. A `stop()` during a
    ///   connect to an unresponsive address then waits for those (on Linux up to about
    ///   two minutes for TCP).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Bound on one whole call. A blocking query gets its wait plus Consul's jitter
    /// (wait/16) on top. A health answer is decoded as it arrives, so the bound covers
    /// its decoding too (a 62 MiB answer takes well under a second in a release
    /// build). Default 10 s.
    ///
    /// - `Duration::ZERO` is refused by `build()` with [`Error::InvalidConfig`]
    ///   (`request_timeout`): every call would time out.
    /// - `Duration::MAX` (or anything from about 100 years up) means no bound: a call
    ///   waits as long as the agent takes (a blocking query, as long as Consul holds
    ///   it). `stop()` still cuts a call in flight short; the connect timeout still
    ///   bounds connecting.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Largest response body read, in bytes. Default 64 MiB; a health answer for a
    /// service with many instances and checks can be several MB.
    pub fn body_limit(mut self, bytes: u64) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Checks the settings. Errors: [`Error::InvalidConfig`] for an address that is not
    /// an http(s) URL (or carries credentials, or is `https://` in a build without the
    /// `tls` feature), a token that is not a valid header
    /// value, an empty datacenter, or a zero timeout or limit. A timeout of about 100
    /// years or more is valid and means "no bound" (see each setter).
    pub fn build(self) -> Result<HttpClient> {
        if self.datacenter.as_deref() == Some("") {
            return Err(Error::invalid_config("datacenter", "must not be empty"));
        }
        let settings = self.settings.validate()?;
        Ok(HttpClient {
            http: Arc::new(Http::new(Arc::new(settings))),
            datacenter: self.datacenter.map(Into::into),
            watches: Arc::default(),
        })
    }
}

impl HttpClient {
    /// One health query, in stale mode if `stale`; the answer, and how long ago its
    /// server last heard from the leader (`X-Consul-LastContact`), when it says.
    fn health<D: Decode>(
        &self,
        service: &str,
        query: &HealthQuery<'_>,
        stale: bool,
        decoder: &mut D,
    ) -> Result<(D::Value, u64, Option<Duration>)> {
        let path = format!("/v1/health/service/{}", encode(service));
        let mut call = Call::new("GET", &path);
        if query.passing_only {
            call.query.push(("passing", "1".into()));
        }
        for tag in query.tags {
            call.query.push(("tag", tag.clone()));
        }
        if let Some(dc) = &self.datacenter {
            call.query.push(("dc", dc.to_string()));
        }
        if stale {
            call.query.push(("stale", String::new()));
        }
        if query.index > 0 {
            call.query.push(("index", query.index.to_string()));
            call.query.push(("wait", go_duration(query.wait)));
            call.long_poll = query.wait.saturating_add(query.wait / 16);
        }
        // Each entry is decoded as the body arrives: the body is never held whole.
        let (reply, decoded) = self.http.call_decode(&call, decoder)?;
        let number = |name| {
            reply
                .header(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let index = number("x-consul-index").unwrap_or(0);
        let last_contact = number("x-consul-lastcontact").map(Duration::from_millis);
        Ok((decoded, index, last_contact))
    }

    /// [`health`](Self::health) with the consistency of `query`: a stale answer older
    /// than its `max_stale` is asked again in default mode. `log` tells what the
    /// decoder left out of the answer that is kept.
    fn health_consistent<D: Decode>(
        &self,
        service: &str,
        query: &HealthQuery<'_>,
        mut decoder: impl FnMut() -> D,
        log: impl Fn(&D),
    ) -> Result<(D::Value, u64)> {
        let consistency = query.consistency;
        let mut first = decoder();
        let (value, index, last_contact) =
            self.health(service, query, consistency.is_stale(), &mut first)?;
        if consistency.too_stale(last_contact) {
            log::debug!(target: LOG,
                "{service:?}: the answering server last heard from the leader {last_contact:?} \
                 ago, longer than max_stale; asking again in default mode");
            let mut again = decoder();
            let (value, index, _) = self.health(service, query, false, &mut again)?;
            log(&again);
            return Ok((value, index));
        }
        log(&first);
        Ok((value, index))
    }
}

impl Client for HttpClient {
    fn health_service(&self, service: &str, query: &HealthQuery<'_>) -> Result<Health> {
        let (entries, index) = self.health_consistent(
            service,
            query,
            || EntriesDecoder(Skipped::default()),
            |d| d.0.log(service),
        )?;
        Ok(Health { entries, index })
    }

    fn health_instances(&self, service: &str, query: &HealthQuery<'_>) -> Result<HealthInstances> {
        let decoder = || ToInstances {
            tags: query.tags,
            include_warning: !query.passing_only,
            skipped: Skipped::default(),
            refused: Skipped::default(),
        };
        let (instances, index) =
            self.health_consistent(service, query, decoder, |d| d.log(service))?;
        Ok(HealthInstances { instances, index })
    }

    fn register_service(&self, registration: &ServiceRegistration) -> Result<()> {
        let body = serde_json::to_vec(registration).expect("a registration serializes");
        self.put("/v1/agent/service/register", Some(body))?
            .success()
            .map(drop)
    }

    fn deregister_service(&self, service_id: &str) -> Result<()> {
        let path = format!("/v1/agent/service/deregister/{}", encode(service_id));
        let reply = self.put(&path, None)?;
        // 1.8.7 answers an unknown id with 200 (verified); later versions with 404.
        // Either way it is gone.
        if reply.status() == 404 {
            return Ok(());
        }
        reply.success().map(drop)
    }

    fn pass_ttl(&self, check_id: &str) -> Result<()> {
        let path = format!("/v1/agent/check/pass/{}", encode(check_id));
        self.put(&path, None)?.success().map(drop)
    }

    fn agent_service(&self, service_id: &str) -> Result<Option<Service>> {
        let path = format!("/v1/agent/service/{}", encode(service_id));
        let reply = self.http.call(&Call::new("GET", &path))?;
        if reply.status() == 404 {
            return Ok(None);
        }
        reply.success()?.json().map(Some)
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(HttpClient {
            http: Arc::new(self.http.fork()),
            datacenter: self.datacenter.clone(),
            watches: Arc::default(),
        })
    }

    fn fork_with_timeout(&self, timeout: Duration) -> Arc<dyn Client> {
        Arc::new(HttpClient {
            http: Arc::new(self.http.fork_with_timeout(timeout)),
            datacenter: self.datacenter.clone(),
            watches: Arc::default(),
        })
    }

    fn shutdown(&self) {
        self.http.shutdown();
    }

    fn watch_group(&self) -> Option<&WatchGroup> {
        Some(&self.watches)
    }
}
