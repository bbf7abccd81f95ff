//! Discovery URLs: one string names a registry and what to watch in it.
//!
//! [`Target::parse`] reads a discovery URL into a [`Target`]: the registry, its
//! addresses, and the service, prefix, path or name to watch. The grammar, one scheme
//! a row (`[..]` is optional; hosts are `host[:port]`, IPv6 in brackets, several
//! separated by commas where the registry has several members):
//!
#![doc = include_str!("grammar.md")]
//! Default ports: Consul 8500, etcd 2379, ZooKeeper 2181, DNS 53, Eureka 8761. The
//! path and query values are percent-decoded. A DNS URL without a server uses the
//! system's resolvers (`/etc/resolv.conf`).
//!
//! **No credentials in URLs.** A URL ends up in logs, command lines and process
//! listings, so userinfo (`user:pass@host`) and a `token` query parameter are refused,
//! without echoing them; give credentials through the backend's options or its
//! environment variable (`CONSUL_HTTP_TOKEN`, for instance).
//!
//! Every error is [`Error::InvalidConfig`] whose `field` names the part at fault
//! (`url scheme`, `url host`, `url port`, `url path`, `url query`, `url userinfo`). A
//! scheme whose cargo feature is off is an error naming the feature to enable.
//!
//! [`discover`] turns a URL into a running [`Instancer`] of the right backend, and
//! [`register`] registers an instance there, with credentials and TLS settings from
//! [`DiscoveryOptions`].
//!
//! ```
//! use std::time::Duration;
//! use waypost::{DefaultEndpointer, DiscoveryOptions, Endpointer, Instance, MemoryRegistry};
//!
//! let _me = MemoryRegistry::global()
//!     .registrar("billing", Instance::parse("10.0.0.1:8080")?)
//!     .register()?;
//! // The boxed instancer goes straight into an endpointer.
//! let instancer = waypost::discover("memory://billing", &DiscoveryOptions::new().from_env())?;
//! let endpointer = DefaultEndpointer::new(instancer, |i| Ok(format!("http://{i}")))?;
//! endpointer.wait_ready(Duration::from_secs(1))?;
//! assert_eq!(*endpointer.endpoints()?, ["http://10.0.0.1:8080".to_owned()]);
//! # Ok::<(), waypost::Error>(())
//! ```

mod url;

use std::fmt;

pub use url::Target;

use crate::{Error, Instance, Instancer, MemoryRegistry, Registrar, Registration, Result};

/// Credentials and TLS for [`discover`]: what a URL must not carry.
///
/// Secrets are never shown by `Debug`. [`from_env`](DiscoveryOptions::from_env) fills
/// what is not set from the environment.
#[derive(Clone, Default)]
pub struct DiscoveryOptions {
    consul_token: Option<String>,
    etcd_user: Option<(String, String)>,
    zk_digest: Option<(String, String)>,
    eureka_basic_auth: Option<(String, String)>,
    ttl: Option<std::time::Duration>,
    poll_interval: Option<std::time::Duration>,
    #[cfg(feature = "tls")]
    tls: Option<crate::TlsConfig>,
}

impl DiscoveryOptions {
    /// No credentials, no TLS settings.
    pub fn new() -> DiscoveryOptions {
        DiscoveryOptions::default()
    }

    /// Consul's ACL token (sent as `X-Consul-Token`).
    pub fn consul_token(mut self, token: impl Into<String>) -> Self {
        self.consul_token = Some(token.into());
        self
    }

    /// etcd's user and password.
    pub fn etcd_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.etcd_user = Some((user.into(), password.into()));
        self
    }

    /// ZooKeeper's digest user and password.
    pub fn zk_digest(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.zk_digest = Some((user.into(), password.into()));
        self
    }

    /// Eureka's HTTP basic-auth user and password.
    pub fn eureka_basic_auth(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.eureka_basic_auth = Some((user.into(), password.into()));
        self
    }

    /// How long a [`register`]ed instance outlives this process's last heartbeat:
    /// Consul's TTL check, etcd's lease TTL, ZooKeeper's session timeout, Eureka's lease
    /// duration (renewed every third of it, so at least 3 s). Unset, each backend's
    /// default holds (10 s, 10 s, 10 s and 90 s). A value a backend cannot take is
    /// [`Error::InvalidConfig`] (`ttl`) from [`register`]. [`discover`] does not use it.
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How often [`discover`]'s instancer asks a registry that is polled: Eureka
    /// (default 30 s), DNS (instead of following the records' TTLs) and files
    /// (default 1 s). Consul, etcd, ZooKeeper and memory push their changes and do
    /// not use it. Each backend's `build()` checks it as its own builder does.
    pub fn poll_interval(mut self, interval: std::time::Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// The TLS settings of `consul+https`, `etcd+https` and `eureka+https`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Fills what is not set from the environment: `CONSUL_HTTP_TOKEN` (Consul's own
    /// variable), `ETCD_USERNAME` with `ETCD_PASSWORD`, `ZK_DIGEST_USER` with
    /// `ZK_DIGEST_PASSWORD`, `EUREKA_USERNAME` with `EUREKA_PASSWORD`.
    pub fn from_env(mut self) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let pair = |user: &str, password: &str| Some((var(user)?, var(password)?));
        self.consul_token = self.consul_token.or_else(|| var("CONSUL_HTTP_TOKEN"));
        self.etcd_user = self
            .etcd_user
            .or_else(|| pair("ETCD_USERNAME", "ETCD_PASSWORD"));
        self.zk_digest = self
            .zk_digest
            .or_else(|| pair("ZK_DIGEST_USER", "ZK_DIGEST_PASSWORD"));
        self.eureka_basic_auth =
            (self.eureka_basic_auth).or_else(|| pair("EUREKA_USERNAME", "EUREKA_PASSWORD"));
        self
    }
}

impl fmt::Debug for DiscoveryOptions {
    /// Says which credentials are set, never what they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryOptions")
            .field("consul_token", &self.consul_token.is_some())
            .field("etcd_user", &self.etcd_user.as_ref().map(|(u, _)| u))
            .field("zk_digest", &self.zk_digest.as_ref().map(|(u, _)| u))
            .field(
                "eureka_basic_auth",
                &self.eureka_basic_auth.as_ref().map(|(u, _)| u),
            )
            .field("ttl", &self.ttl)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// A running [`Instancer`] for the discovery URL `url` (see the [module docs](self)),
/// its client built with `options`. Its watch thread, if it has one, stops when the
/// instancer is stopped or dropped.
///
/// `memory://NAME` watches the service `NAME` of the process-wide
/// [`MemoryRegistry::global`].
///
/// Errors: the URL's (see [`Target::parse`]), then the backend's own when its client
/// or instancer cannot be built.
pub fn discover(url: &str, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    instancer_for(&Target::parse(url)?, options)
}

/// The instancer of an already parsed target; see [`discover`].
pub fn instancer_for(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    match target {
        Target::Consul { .. } => backends::consul(target, options),
        Target::Etcd { .. } => backends::etcd(target, options),
        Target::Zk { .. } => backends::zk(target, options),
        Target::DnsSrv { .. } | Target::DnsHost { .. } => backends::dns(target, options),
        Target::Eureka { .. } => backends::eureka(target, options),
        Target::File { path } => {
            let mut file = crate::FileInstancer::builder(path.clone());
            if let Some(interval) = options.poll_interval {
                file = file.poll_interval(interval);
            }
            Ok(Box::new(file.build()?))
        }
        Target::Memory { name } => Ok(Box::new(MemoryRegistry::global().instancer(name))),
    }
}

/// Registers `instance` in the registry the discovery URL `url` names, until the
/// returned [`Registration`] is dropped (or told to deregister); it keeps the
/// registration alive meanwhile (TTL, lease, session, heartbeat) as the backend's
/// registrar does, with its defaults.
///
/// - `consul://AGENT/SERVICE`: the service with the instance's host and port, its
///   tags, values (as service meta) and weight (as `Weights`), a TTL check kept
///   passing; query parameters are ignored;
/// - `etcd://MEMBERS/PREFIX`: a key under the prefix, its value carrying the
///   instance's metadata, on a lease kept alive;
/// - `zk://SERVERS/PATH`: an ephemeral child of the path (Curator's JSON with
///   `?format=curator`), the address only;
/// - `eureka://SERVERS/BASE/APP`: the app's instance, its values, weight and zone in
///   its metadata map, its lease renewed;
/// - `memory://NAME`: the service `NAME` of [`MemoryRegistry::global`], with all of
///   the instance's metadata.
///
/// [`DiscoveryOptions::ttl`] sets how long the registration outlives a process that
/// dies without deregistering.
///
/// `dns`, `dns+srv` and `file` URLs cannot register (their records are managed
/// elsewhere): [`Error::InvalidConfig`] (`url scheme`).
pub fn register(
    url: &str,
    instance: &Instance,
    options: &DiscoveryOptions,
) -> Result<Registration> {
    let target = Target::parse(url)?;
    let registrar: Box<dyn Registrar> = match &target {
        Target::Consul { .. } => backends::consul_registrar(&target, instance, options)?,
        Target::Etcd { .. } => backends::etcd_registrar(&target, instance, options)?,
        Target::Zk { .. } => backends::zk_registrar(&target, instance, options)?,
        Target::Eureka { .. } => backends::eureka_registrar(&target, instance, options)?,
        Target::Memory { name } => {
            Box::new(MemoryRegistry::global().registrar(name, instance.clone()))
        }
        Target::DnsSrv { .. } | Target::DnsHost { .. } | Target::File { .. } => {
            return Err(Error::invalid_config(
                "url scheme",
                "dns, dns+srv and file URLs cannot register: their records are managed elsewhere",
            ));
        }
    };
    let registration = registrar.register()?;
    // The registrar (and its keep-alive thread) lives as long as the registration.
    Ok(Registration::new(
        format!("{} at {url}", instance.addr()),
        move || {
            let done = registration.deregister();
            drop(registrar);
            done
        },
    ))
}

/// Why a target's backend is missing from this build.
#[allow(dead_code)] // not called when every backend is built in
fn left_out(target: &Target) -> Error {
    Error::invalid_config(
        "url scheme",
        format!(
            "this build of waypost leaves out the `{}` cargo feature",
            target.feature().unwrap_or("?")
        ),
    )
}

mod backends;
