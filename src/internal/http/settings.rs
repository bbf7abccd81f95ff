//! What an [`Http`](super::Http) is configured with: servers, credential headers, TLS,
//! timeouts, body limit; checked once by [`HttpSettings::validate`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tls")]
use crate::TlsConfig;
use crate::{Error, Result};

/// A header value that is never shown: `Debug` prints a placeholder.
#[derive(Clone)]
pub(crate) struct Secret(pub(super) Arc<str>);

impl Secret {
    pub(crate) fn new(value: impl Into<Arc<str>>) -> Secret {
        Secret(value.into())
    }

    /// The value, to send (never to log or format).
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn value(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A credential the server can expire (etcd's auth token): sent in `header`, renewed
/// by `renew` when an answer says it expired (status 401, or the backend's code 16,
/// "unauthenticated"), after which the call is tried once more. Shared by every fork
/// of the client, so one renewal serves them all.
pub(crate) struct Renewable {
    pub(crate) header: &'static str,
    pub(crate) current: parking_lot::RwLock<Option<Secret>>,
    /// Gets a new credential, through the `Http` given (with no renewal of its own).
    #[allow(clippy::type_complexity)]
    pub(crate) renew: Box<dyn Fn(&super::Http) -> Result<Secret> + Send + Sync>,
}

impl fmt::Debug for Renewable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renewable")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Everything an [`Http`](super::Http) needs; built by a backend's builder, checked by
/// [`HttpSettings::validate`].
#[derive(Clone, Debug)]
pub(crate) struct HttpSettings {
    /// Names the backend in errors and logs, e.g. `"consul"`.
    pub(crate) backend: &'static str,
    /// Base URLs (`scheme://host:port`, maybe a path prefix), tried in order.
    pub(crate) servers: Vec<Box<str>>,
    /// Credential headers sent with every request.
    pub(crate) headers: Vec<(&'static str, Secret)>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsConfig>,
    /// Bounds name resolution, TCP connect and the TLS handshake (what `shutdown`
    /// cannot cut short). Zero is refused; [`FOREVER`](crate::clock::FOREVER) or more
    /// means no bound of its own.
    pub(crate) connect_timeout: Duration,
    /// Bounds one whole call; a long poll adds its wait and jitter. Zero is refused;
    /// [`FOREVER`](crate::clock::FOREVER) or more means no bound.
    pub(crate) request_timeout: Duration,
    /// Largest body read, in bytes.
    pub(crate) body_limit: u64,
    /// Decodes the backend's error bodies (code, message, "unavailable").
    pub(crate) error_hook: super::backend_errors::ErrorHook,
    /// A credential renewed when it expires, sent besides `headers`.
    pub(crate) renewable: Option<Arc<Renewable>>,
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
            #[cfg(feature = "tls")]
            tls: None,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            body_limit: BODY_LIMIT,
            error_hook: super::backend_errors::plain,
            renewable: None,
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
        let https = |s: &str| s.starts_with("https://");
        let all_https = self.servers.iter().all(|s| https(s));
        if self.servers.iter().any(|s| https(s)) && !all_https {
            // A fail-over from https to http would send the credentials in clear.
            return Err(Error::invalid_config(
                "addresses",
                "https and http addresses are mixed: use https for every one",
            ));
        }
        #[cfg(feature = "tls")]
        if self.tls.is_some() && !all_https {
            return Err(Error::invalid_config(
                "addresses",
                "a TLS configuration is set but an address is http://: use https://",
            ));
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
pub(super) fn normalize_server(server: &str) -> Result<Box<str>> {
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
        Some("http") => {}
        Some("https") if cfg!(feature = "tls") => {}
        Some("https") => {
            return Err(refuse(
                "https needs waypost's `tls` feature, which this build leaves out",
            ));
        }
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
