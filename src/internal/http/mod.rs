//! The one HTTP plumbing every HTTP backend (Consul, etcd, Eureka) shares.
//!
//! - [`HttpSettings`]: server base URLs, credential headers, TLS, timeouts, body limit;
//!   validated once, shared by `Arc`.
//! - [`Http`]: one ureq agent plus those settings. Each thread that may be stopped owns
//!   its own `Http` ([`Http::fork`]): ureq agent clones share one pool and
//!   `Agent::shutdown()` kills every clone, so a watch and a heartbeat never share one.
//!   [`Http::shutdown`] cuts the request in flight (a long poll included) at once; the
//!   `Http` is then dead, and a thread that goes on forks a new one.
//! - [`Http::call`]: one request with fail-over to the next server on connection
//!   errors, a whole-call timeout (a long poll adds its wait), the body read under a
//!   limit; [`Reply::json`] decodes into a typed struct. Every failure is an
//!   [`Error::Http`] naming backend, method and path (never the query string or a
//!   header), server, status and a short excerpt of a bad body.
//!
//! Credential headers are [`Secret`]s: their values are never formatted, logged or put
//! in an error.

pub(crate) mod error;
mod tls;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use ureq::http::{HeaderMap, Request, Response};
use ureq::{Agent, Body};

use crate::{Error, HttpErrorKind, Result};
use error::Site;

pub use tls::{TlsConfig, TlsConfigBuilder};

/// A header value that is never shown: `Debug` prints a placeholder.
#[derive(Clone)]
pub(crate) struct Secret(Arc<str>);

impl Secret {
    pub(crate) fn new(value: impl Into<Arc<str>>) -> Secret {
        Secret(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything an [`Http`] needs; built by a backend's builder, checked by
/// [`HttpSettings::validate`].
#[derive(Clone, Debug)]
pub(crate) struct HttpSettings {
    /// Names the backend in errors and logs, e.g. `"consul"`.
    pub(crate) backend: &'static str,
    /// Base URLs (`scheme://host:port`, maybe a path prefix), tried in order.
    pub(crate) servers: Vec<Box<str>>,
    /// Credential headers sent with every request.
    pub(crate) headers: Vec<(&'static str, Secret)>,
    pub(crate) tls: Option<TlsConfig>,
    /// Bounds name resolution, TCP connect and the TLS handshake (what `shutdown`
    /// cannot cut short).
    pub(crate) connect_timeout: Duration,
    /// Bounds one whole call; a long poll adds its wait and jitter.
    pub(crate) request_timeout: Duration,
    /// Largest body read, in bytes.
    pub(crate) body_limit: u64,
}

/// Default connect (and resolve) timeout.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default bound on one call that is not a long poll.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default body limit: 64 MiB (a large service's health answer can pass ureq's 10 MB).
pub(crate) const BODY_LIMIT: u64 = 64 << 20;

impl HttpSettings {
    /// Defaults for `backend` with one server.
    pub(crate) fn new(backend: &'static str, server: &str) -> HttpSettings {
        HttpSettings {
            backend,
            servers: vec![server.into()],
            headers: Vec::new(),
            tls: None,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            body_limit: BODY_LIMIT,
        }
    }

    /// Checks every value and normalises the server URLs (no trailing slash).
    pub(crate) fn validate(mut self) -> Result<HttpSettings> {
        if self.servers.is_empty() {
            return Err(Error::invalid_config("addresses", "no server address"));
        }
        for server in &mut self.servers {
            *server = normalize_server(server)?;
        }
        for (name, Secret(value)) in &self.headers {
            if ureq::http::HeaderValue::from_str(value).is_err() {
                // Never echo the value: it is a credential.
                return Err(Error::invalid_config(
                    name,
                    "not a valid HTTP header value (control characters or non-ASCII)",
                ));
            }
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(field, "must be more than zero"));
            }
        }
        if self.body_limit == 0 {
            return Err(Error::invalid_config(
                "body_limit",
                "must be more than zero",
            ));
        }
        Ok(self)
    }
}

/// `http://host:port[/prefix]` without a trailing slash; `host:port` alone means http.
fn normalize_server(server: &str) -> Result<Box<str>> {
    let refuse = |reason: &str| Error::invalid_config("addresses", format!("{server:?}: {reason}"));
    let url = if server.contains("://") {
        server.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", server.trim_end_matches('/'))
    };
    if url.contains('@') {
        // A user:password in the URL would end up in errors and logs.
        return Err(Error::invalid_config(
            "addresses",
            "credentials in the URL are refused; use the backend's credential settings",
        ));
    }
    let uri: ureq::http::Uri = url.parse().map_err(|_| refuse("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(refuse("the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(refuse("no host"));
    }
    if uri.query().is_some() {
        return Err(refuse("no query string allowed"));
    }
    Ok(url.into())
}

/// One HTTP agent with its settings; see the module docs.
pub(crate) struct Http {
    settings: Arc<HttpSettings>,
    agent: Agent,
    cancelled: AtomicBool,
    /// The server that answered last: calls start there.
    preferred: AtomicUsize,
}

/// One request: method, escaped path, query, JSON body, extra time for a long poll.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) method: &'static str,
    pub(crate) path: &'a str,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Vec<u8>>,
    /// Added to the request timeout: a long poll's wait plus the server's jitter.
    pub(crate) long_poll: Duration,
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: &'static str, path: &'a str) -> Call<'a> {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            long_poll: Duration::ZERO,
        }
    }
}

/// An answer: any status, with the body read under the limit.
#[derive(Debug)]
pub(crate) struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    backend: &'static str,
    method: &'static str,
    path: Box<str>,
    server: Box<str>,
}

impl Http {
    pub(crate) fn new(settings: Arc<HttpSettings>) -> Http {
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0) // a redirect could carry the credential headers elsewhere
            .user_agent(concat!("waypost/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_resolve(Some(settings.connect_timeout))
            .max_idle_connections_per_host(2);
        if let Some(tls) = &settings.tls {
            config = config.tls_config(tls.to_ureq());
        }
        Http {
            agent: config.build().new_agent(),
            settings,
            cancelled: AtomicBool::new(false),
            preferred: AtomicUsize::new(0),
        }
    }

    /// A new `Http` with the same settings and its own agent (its own pool), for a
    /// thread that must be stoppable on its own.
    pub(crate) fn fork(&self) -> Http {
        let http = Http::new(self.settings.clone());
        http.preferred
            .store(self.preferred.load(Ordering::Relaxed), Ordering::Relaxed);
        http
    }

    #[cfg(test)]
    pub(crate) fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Cuts every request of this agent short, now and later: they fail with
    /// [`HttpErrorKind::Cancelled`]. Idempotent.
    pub(crate) fn shutdown(&self) {
        if !self.cancelled.swap(true, Ordering::SeqCst) {
            self.agent.clone().shutdown();
        }
    }

    /// Sends `call` to the preferred server, moving on to the next on connection
    /// errors; returns the first answer, whatever its status.
    pub(crate) fn call(&self, call: &Call<'_>) -> Result<Reply> {
        let servers = &self.settings.servers;
        let first = self.preferred.load(Ordering::Relaxed) % servers.len();
        let mut last_err = None;
        for k in 0..servers.len() {
            let i = (first + k) % servers.len();
            let site = Site {
                backend: self.settings.backend,
                method: call.method,
                path: call.path,
                server: &servers[i],
            };
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(site.error(HttpErrorKind::Cancelled, None, None, None));
            }
            match self.send(&site, call) {
                Ok(response) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return self.read(site, response);
                }
                Err(err) if error::is_unreachable(&err) && !self.cancelled() => {
                    log::debug!(target: "waypost::http", "{} {} {}: {err}; trying the next server",
                        site.backend, site.method, site.server);
                    last_err = Some(site.transport_error(err, false));
                }
                Err(err) => return Err(site.transport_error(err, self.cancelled())),
            }
        }
        Err(last_err.expect("at least one server"))
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn send(&self, site: &Site<'_>, call: &Call<'_>) -> Result<Response<Body>, ureq::Error> {
        let mut url = format!("{}{}", site.server, call.path);
        for (n, (key, value)) in call.query.iter().enumerate() {
            url.push(if n == 0 { '?' } else { '&' });
            url.push_str(key);
            if !value.is_empty() {
                url.push('=');
                url.push_str(&encode(value));
            }
        }
        let mut request = Request::builder().method(call.method).uri(url);
        for (name, Secret(value)) in &self.settings.headers {
            request = request.header(*name, &**value);
        }
        let timeout = self.settings.request_timeout + call.long_poll;
        match &call.body {
            None => self.run(request.body(())?, timeout),
            Some(body) => {
                let request = request.header("content-type", "application/json");
                self.run(request.body(&body[..])?, timeout)
            }
        }
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        request: Request<B>,
        timeout: Duration,
    ) -> Result<Response<Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .timeout_per_call(Some(timeout))
            .build();
        self.agent.run(request)
    }

    fn read(&self, site: Site<'_>, mut response: Response<Body>) -> Result<Reply> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.settings.body_limit)
            .read_to_vec()
            .map_err(|err| {
                site.transport_error(err, self.cancelled())
                    .with_status(status)
            })?;
        log::trace!(target: "waypost::http", "{} {} {} -> {status}, {} bytes",
            site.backend, site.method, site.path, body.len());
        Ok(Reply {
            status,
            headers: std::mem::take(response.headers_mut()),
            body,
            backend: site.backend,
            method: site.method,
            path: site.path.into(),
            server: site.server.into(),
        })
    }
}

impl Error {
    fn with_status(mut self, status: u16) -> Error {
        if let Error::Http(http) = &mut self {
            http.status = Some(status);
        }
        self
    }
}

impl Reply {
    fn site(&self) -> Site<'_> {
        Site {
            backend: self.backend,
            method: self.method,
            path: &self.path,
            server: &self.server,
        }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// Ok for a 2xx status; otherwise an [`HttpErrorKind::Status`] error with an
    /// excerpt of the body.
    pub(crate) fn success(self) -> Result<Reply> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(self.status_error())
        }
    }

    pub(crate) fn status_error(&self) -> Error {
        self.site().error(
            HttpErrorKind::Status,
            Some(self.status),
            Some(&self.body),
            None,
        )
    }

    /// Decodes a JSON body. A content type that is not JSON, or a body that does not
    /// decode into `T`, is an [`HttpErrorKind::Decode`] error with an excerpt.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let decode_error = |source: Option<crate::BoxError>| {
            self.site().error(
                HttpErrorKind::Decode,
                Some(self.status),
                Some(&self.body),
                source,
            )
        };
        if let Some(content_type) = self.header("content-type") {
            if !content_type.to_ascii_lowercase().contains("json") {
                return Err(decode_error(Some(
                    format!("content type {content_type:?} is not JSON").into(),
                )));
            }
        }
        serde_json::from_slice(&self.body).map_err(|e| decode_error(Some(Box::new(e))))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters: for one path
/// segment or one query value.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("backend", &self.settings.backend)
            .field("servers", &self.settings.servers)
            .field("cancelled", &self.cancelled())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
