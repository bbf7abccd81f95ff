//! [`HttpClient`]: the real [`Client`] over Eureka's REST API (JSON).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::client::{Client, InstanceInfo, Status};
use super::wire::{ApplicationAnswer, ApplicationsAnswer, AppsCount, Decoded, register_body};
use crate::internal::base64::base64_encode;
use crate::internal::http::{Call, Http, HttpSettings, Reply, Secret, encode};
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::{Error, Result};

/// The default bound on one call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Eureka answers XML unless asked for JSON: every call asks.
const ACCEPT_JSON: (&str, &str) = ("Accept", "application/json");

/// The real [`Client`]: Eureka's REST API (Netflix's `/eureka/v2` or Spring Cloud's
/// `/eureka` server) through waypost's shared HTTP plumbing, in JSON.
///
/// A Eureka cluster is a list of peers that replicate each other: a call goes to the
/// peer that answered last and moves on, in the order given, when one cannot answer
/// now (see [`HttpClientBuilder::server`]).
///
/// Cloning shares the connections; [`Client::fork`] makes a client with its own. The
/// Basic-auth password travels in the `Authorization` header only: never in a URL, a
/// log line, an error or `Debug` output.
///
/// ```no_run
/// use waypost::eureka::{Client, HttpClient, InstanceInfo};
/// let client = HttpClient::builder()
///     .server("http://eureka-1:8761/eureka")
///     .server("http://eureka-2:8761/eureka")
///     .build()?;
/// client.register(&InstanceInfo::new("api", "api-1", "host-1", "10.0.0.1").with_port(8080))?;
/// let instances = client.app("api")?.unwrap_or_default();
/// # Ok::<(), waypost::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpClient {
    http: Arc<Http>,
    /// The Basic-auth user, for `Debug`.
    user: Option<Arc<str>>,
}

/// Builds an [`HttpClient`]; see [`HttpClient::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until build()"]
pub struct HttpClientBuilder {
    settings: HttpSettings,
    basic_auth: Option<(String, Secret)>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("settings", &self.settings)
            .field("user", &self.basic_auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("http", &self.http)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Starts a builder with no server and the defaults listed on each setter.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            settings: HttpSettings {
                servers: Vec::new(),
                error_hook: crate::internal::http::backend_errors::eureka,
                request_timeout: REQUEST_TIMEOUT,
                ..HttpSettings::new("eureka", "")
            },
            basic_auth: None,
        }
    }
}

impl HttpClientBuilder {
    /// Adds a server's base URL: the path the REST operations live under, e.g.
    /// `http://host:8761/eureka` (Spring Cloud) or `http://host:8080/eureka/v2`
    /// (Netflix); a trailing slash is fine, `host:port/eureka` means http. Required.
    ///
    /// Several servers (the peers of one cluster) are tried in the order added: a call
    /// moves on to the next when one cannot answer now (a failed connect or name
    /// lookup, a timeout, a 502, 503 or 504); later calls start at the one that
    /// answered. Other answers, a 500 or a 404 included, are the answer.
    ///
    /// A URL with a user and password in it (`http://user:pass@host/eureka`, Spring's
    /// `defaultZone` form) is refused by `build()`: give them to
    /// [`basic_auth`](Self::basic_auth). An `https://` URL needs the `tls` feature (on
    /// by default).
    pub fn server(mut self, url: impl Into<String>) -> Self {
        self.settings.servers.push(url.into().into());
        self
    }

    /// Adds several servers' base URLs, in order; see [`server`](Self::server).
    pub fn servers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
        (self.settings.servers).extend(urls.into_iter().map(|url| url.into().into()));
        self
    }

    /// HTTP Basic authentication (`Authorization: Basic ...`) on every call, as a
    /// Spring Cloud server behind Spring Security expects. Default: none. The password
    /// is never logged or shown; over plain http it travels readable on the network,
    /// so prefer `https://` servers. A user name with `:` cannot be sent this way and
    /// is refused by `build()`.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), Secret::new(password.into())));
        self
    }

    /// TLS for `https://` servers: a custom CA, a client certificate. Default: the
    /// bundled Mozilla roots, no client certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Bound on name resolution, TCP connect and TLS handshake: the part of a call
    /// that [`shutdown`](Client::shutdown) cannot cut short, and how long a dead peer
    /// holds a call up before the next is asked. Default 500 ms. `Duration::ZERO` is
    /// refused by `build()`; `Duration::MAX` sets no bound of its own.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Bound on one whole call, after which a hung peer is left for the next. Default
    /// 5 s: Eureka answers from memory (a full registry of a few thousand instances in
    /// well under a second), so a slower answer means a peer in trouble. `Duration::ZERO`
    /// is refused by `build()`; `Duration::MAX` means no bound
    /// ([`shutdown`](Client::shutdown) still cuts a call short).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Largest response body read, in bytes. Default 64 MiB; a full registry
    /// (`GET /apps/`) of a large fleet can be several MB.
    pub fn body_limit(mut self, bytes: u64) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Checks the settings. Errors: [`Error::InvalidConfig`] for no server (`servers`),
    /// a server URL that is not an http(s) URL, carries a user and password, mixes
    /// https and http, or is `https://` without the `tls` feature (`servers`), an empty
    /// user name or one with `:` (`basic_auth`), or a zero timeout or limit.
    pub fn build(self) -> Result<HttpClient> {
        let mut settings = self.settings;
        if settings.servers.is_empty() {
            return Err(Error::invalid_config(
                "servers",
                "no server URL: add one with server(), e.g. http://host:8761/eureka",
            ));
        }
        if settings.servers.iter().any(|s| has_userinfo(s)) {
            // Never echo the URL: it holds a password.
            return Err(Error::invalid_config(
                "servers",
                "a server URL carries a user and password (user:password@host), which \
                 would show in logs and errors: give them to basic_auth(user, password) \
                 and leave them out of the URL",
            ));
        }
        let mut user = None;
        if let Some((name, password)) = self.basic_auth {
            if name.is_empty() {
                return Err(Error::invalid_config(
                    "basic_auth",
                    "the user name is empty",
                ));
            }
            if name.contains(':') {
                return Err(Error::invalid_config(
                    "basic_auth",
                    "the user name contains ':', which Basic authentication cannot carry",
                ));
            }
            let credentials = format!("{name}:{}", password.value());
            let header = format!("Basic {}", base64_encode(credentials.as_bytes()));
            settings
                .headers
                .push(("Authorization", Secret::new(header)));
            user = Some(name.into());
        }
        let settings = settings.validate().map_err(|err| match err {
            // The shared checks name their setting `addresses`; here it is `servers`.
            Error::InvalidConfig {
                field: "addresses",
                reason,
            } => Error::InvalidConfig {
                field: "servers",
                reason,
            },
            other => other,
        })?;
        Ok(HttpClient {
            http: Arc::new(Http::new(Arc::new(settings))),
            user,
        })
    }
}

/// Whether `url`'s authority holds a `user[:password]@`.
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// `/apps/{APP}`: Eureka keeps app names upper case.
fn app_path(app: &str) -> String {
    format!("/apps/{}", encode(&app.to_ascii_uppercase()))
}

/// `/apps/{APP}/{ID}`.
fn instance_path(app: &str, id: &str) -> String {
    format!("{}/{}", app_path(app), encode(id))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 404 as `false` (the server does not know it), any 2xx as `true`, anything else an
/// error.
fn known(reply: Reply) -> Result<bool> {
    match reply.status() {
        404 => Ok(false),
        _ => reply.success().map(|_| true),
    }
}

impl HttpClient {
    fn call(
        &self,
        method: &'static str,
        path: &str,
        query: Option<(&'static str, String)>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut call = Call::new(method, path);
        call.headers.push(ACCEPT_JSON);
        call.query.extend(query);
        if body.is_none() && method == "PUT" {
            // Else ureq sends an empty PUT chunked (`0\r\n\r\n`), which some servers
            // and proxies in front of Eureka read badly.
            call.headers.push(("Content-Length", "0"));
        }
        call.body = body;
        self.http.call(&call)
    }

    /// The instances a read decoded; those left out are logged.
    fn instances(path: &str, decoded: Decoded) -> Vec<InstanceInfo> {
        decoded.skipped.log(&format!("GET {path}"));
        decoded.instances
    }
}

impl Client for HttpClient {
    fn register(&self, instance: &InstanceInfo) -> Result<()> {
        let path = app_path(&instance.app);
        let body = register_body(instance, now_ms());
        self.call("POST", &path, None, Some(body))?.success()?;
        log::debug!(target: super::LOG, "registered {}/{} ({})",
            instance.app, instance.instance_id, instance.status);
        Ok(())
    }

    fn renew(&self, app: &str, id: &str) -> Result<bool> {
        let renewed = known(self.call("PUT", &instance_path(app, id), None, None)?)?;
        if !renewed {
            log::debug!(target: super::LOG, "renewing {app}/{id}: the server does not know it");
        }
        Ok(renewed)
    }

    fn cancel(&self, app: &str, id: &str) -> Result<bool> {
        let cancelled = known(self.call("DELETE", &instance_path(app, id), None, None)?)?;
        log::debug!(target: super::LOG, "cancelled {app}/{id}{}",
            if cancelled { "" } else { ": the server did not know it" });
        Ok(cancelled)
    }

    fn set_status_override(&self, app: &str, id: &str, status: Status) -> Result<()> {
        let path = format!("{}/status", instance_path(app, id));
        let query = Some(("value", status.as_str().to_owned()));
        self.call("PUT", &path, query, None)?.success().map(drop)
    }

    fn remove_status_override(&self, app: &str, id: &str) -> Result<()> {
        let path = format!("{}/status", instance_path(app, id));
        self.call("DELETE", &path, None, None)?.success().map(drop)
    }

    fn app(&self, app: &str) -> Result<Option<Vec<InstanceInfo>>> {
        let path = app_path(app);
        let reply = self.call("GET", &path, None, None)?;
        if reply.status() == 404 {
            return Ok(None);
        }
        let answer: ApplicationAnswer = reply.success()?.json()?;
        Ok(Some(HttpClient::instances(&path, answer.decode())))
    }

    fn vip(&self, vip: &str) -> Result<Vec<InstanceInfo>> {
        let path = format!("/vips/{}", encode(vip));
        let reply = self.call("GET", &path, None, None)?;
        if reply.status() == 404 {
            return Ok(Vec::new()); // the REST docs' "no instance has it"
        }
        let answer: ApplicationsAnswer = reply.success()?.json()?;
        Ok(HttpClient::instances(&path, answer.decode()))
    }

    fn apps_count(&self) -> Result<usize> {
        let reply = self.call("GET", "/apps/", None, None)?;
        let answer: AppsCount = reply.success()?.json()?;
        Ok(answer.count())
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(HttpClient {
            http: Arc::new(self.http.fork()),
            user: self.user.clone(),
        })
    }

    fn shutdown(&self) {
        self.http.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(builder: HttpClientBuilder) -> (&'static str, String) {
        match builder.build() {
            Err(Error::InvalidConfig { field, reason }) => (field, reason.into()),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn build_checks_the_servers() {
        let (field, reason) = refused(HttpClient::builder());
        assert_eq!(field, "servers");
        assert!(reason.contains("server()"), "{reason}");
        for bad in ["ftp://host/eureka", "http://", "http://host/eureka?x=1"] {
            let (field, _) = refused(HttpClient::builder().server(bad));
            assert_eq!(field, "servers", "{bad}");
        }
        let mixed = HttpClient::builder().servers(["https://a/eureka", "http://b/eureka"]);
        assert_eq!(refused(mixed).0, "servers");
        let ok = HttpClient::builder()
            .server("127.0.0.1:8761/eureka/")
            .servers(vec!["http://b:8761/eureka".to_owned()])
            .build()
            .unwrap();
        let servers = &ok.http.settings().servers;
        assert_eq!(servers.len(), 2);
        assert_eq!(&*servers[0], "http://127.0.0.1:8761/eureka");
        assert_eq!(ok.http.settings().request_timeout, REQUEST_TIMEOUT);
    }

    #[test]
    fn a_url_with_a_password_is_refused_naming_basic_auth() {
        for url in [
            "http://user:s3cret-pw@127.0.0.1:8761/eureka",
            "https://user:s3cret-pw@eureka/eureka/",
            "user:s3cret-pw@127.0.0.1:8761/eureka",
        ] {
            let err = HttpClient::builder().server(url).build().unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("basic_auth"), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert!(!has_userinfo("http://host:8761/eureka/@me"));
    }

    #[test]
    fn basic_auth_is_checked_and_never_shown() {
        let builder = HttpClient::builder()
            .server("http://127.0.0.1:8761/eureka")
            .basic_auth("app", "s3cret-pw");
        assert!(!format!("{builder:?}").contains("s3cret"));
        let client = builder.clone().build().unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
        assert!(format!("{client:?}").contains("app"));
        let headers = &client.http.settings().headers;
        assert_eq!(headers.len(), 1);
        // base64("app:s3cret-pw")
        assert_eq!(headers[0].1.value(), "Basic YXBwOnMzY3JldC1wdw==");
        let base = HttpClient::builder().server("http://127.0.0.1:8761/eureka");
        assert_eq!(refused(base.clone().basic_auth("", "x")).0, "basic_auth");
        assert_eq!(refused(base.basic_auth("a:b", "x")).0, "basic_auth");
    }

    #[test]
    fn paths_are_upper_case_and_escaped() {
        assert_eq!(app_path("web-app"), "/apps/WEB-APP");
        assert_eq!(app_path("a b/c"), "/apps/A%20B%2FC");
        assert_eq!(
            instance_path("web", "host:web:8080"),
            "/apps/WEB/host%3Aweb%3A8080"
        );
    }
}
