//! The one HTTP plumbing every HTTP backend (Consul, etcd, Eureka) shares.
//!
//! - [`HttpSettings`]: server base URLs, credential headers, TLS (feature `tls`; without
//!   it an `https://` server is refused), timeouts, body limit; validated once, shared
//!   by `Arc`.
//! - [`Http`]: one ureq agent plus those settings. Each thread that may be stopped owns
//!   its own `Http` ([`Http::fork`]): ureq agent clones share one pool and
//!   `Agent::shutdown()` kills every clone, so a watch and a heartbeat never share one.
//!   [`Http::shutdown`] cuts the request in flight (a long poll included) at once; the
//!   `Http` is then dead, and a thread that goes on forks a new one.
//! - [`Http::call`]: one request with fail-over to the next server when one cannot
//!   answer (connect or lookup failure, timeout, 502-504, or what the backend's error
//!   hook calls unavailable), a whole-call timeout (a long poll adds its wait), the
//!   body read under a limit; [`Reply::json`] decodes into a typed struct. Every
//!   failure is an [`Error::Http`](crate::Error::Http) naming backend, method and path
//!   (never the query string or a header), server, status, the backend's own code and
//!   message ([`backend_errors`]) or a short excerpt of a bad body.
//! - [`Http::call_json`]: the same for a JSON body decoded as it arrives, so that a
//!   large answer is never held whole (the whole-call timeout then covers decoding).
//! - [`Http::stream`]: the same for a body of newline-delimited JSON objects handed
//!   over as they arrive, bounded by an idle timeout instead of a whole-call one.
//! - A [`Renewable`] credential (etcd's token) is renewed when an answer says it
//!   expired, and the call tried once more.
//! - [`encoding`]: serde helpers for base64 bytes and int64-as-string fields.
//!
//! Credential headers are [`Secret`]s: their values are never formatted or logged, and
//! are masked wherever a server echoes them into a body an error keeps; what an error
//! quotes is capped.
//!
//! Name resolution is ureq's own: it bounds each lookup by the resolve timeout with an
//! unnamed, detached helper thread (for an IP literal too), which may outlive a stop by
//! one lookup's time (the README's thread promise says so). The only way to replace
//! it is ureq's `unversioned` resolver API, which may change in any minor release, and
//! waypost accepts every ureq 3.x from 3.5 on.

pub(crate) mod backend_errors;
pub(crate) mod encoding;
pub(crate) mod error;
mod reply;
mod settings;
mod stream;
#[cfg_attr(not(feature = "consul"), allow(unused_imports))] // Consul's stateful decoding
pub(crate) use stream::Decode;
#[cfg(feature = "tls")]
mod tls;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ureq::http::{Request, Response};
use ureq::{Agent, Body};

use crate::clock::finite;
use crate::{Error, HttpErrorKind, Result};
use error::Site;

pub(crate) use reply::{Reply, encode};
#[cfg_attr(not(feature = "etcd"), allow(unused_imports))] // Renewable: etcd's
pub(crate) use settings::{HttpSettings, Renewable, Secret};

/// One HTTP agent with its settings; see the module docs.
pub(crate) struct Http {
    settings: Arc<HttpSettings>,
    agent: Agent,
    cancelled: AtomicBool,
    /// The server that answered last: calls start there.
    /// Shared by every fork: a server one thread found failing is skipped by the others.
    preferred: Arc<AtomicUsize>,
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
    /// Extra headers of this call (not credentials: their values may be logged).
    pub(crate) headers: Vec<(&'static str, &'static str)>,
}

thread_local! {
    /// This thread is getting a new renewable credential: its calls neither send the
    /// old one nor renew.
    static RENEWING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// gRPC's "unauthenticated", as etcd's gateway reports an expired token.
const UNAUTHENTICATED: i64 = 16;

/// What one server's response came to, in [`Http::exchange`].
enum Outcome<T> {
    Answer(T),
    /// This server cannot serve now: the next one is asked (the error is returned if
    /// none can).
    MoveOn(Error),
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: &'static str, path: &'a str) -> Call<'a> {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            long_poll: Duration::ZERO,
            headers: Vec::new(),
        }
    }
}

impl Http {
    pub(crate) fn new(settings: Arc<HttpSettings>) -> Http {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0) // a redirect could carry the credential headers elsewhere
            .user_agent(concat!("waypost/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            // ureq adds its timeouts to instants: one that means "forever" is passed
            // as none, so that addition cannot overflow and panic.
            .timeout_connect(finite(settings.connect_timeout))
            .timeout_resolve(finite(settings.connect_timeout))
            .max_idle_connections_per_host(2);
        #[cfg(feature = "tls")]
        let config = match &settings.tls {
            Some(tls) => config.tls_config(tls.to_ureq()),
            None => config,
        };
        Http {
            agent: config.build().new_agent(),
            settings,
            cancelled: AtomicBool::new(false),
            preferred: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A new `Http` with the same settings and its own agent (its own pool), for a
    /// thread that must be stoppable on its own. It shares the preferred server with
    /// this one: what one thread learnt about a failing server, the others use.
    pub(crate) fn fork(&self) -> Http {
        self.fork_with(self.settings.clone())
    }

    /// A [`fork`](Self::fork) whose calls each end within `timeout` at most: its request
    /// timeout is the smaller of this one's and `timeout` (a long poll still adds its
    /// wait).
    #[cfg_attr(not(any(feature = "consul", feature = "etcd")), allow(dead_code))]
    pub(crate) fn fork_with_timeout(&self, timeout: Duration) -> Http {
        let mut settings = HttpSettings::clone(&self.settings);
        settings.request_timeout = settings.request_timeout.min(timeout);
        self.fork_with(Arc::new(settings))
    }

    fn fork_with(&self, settings: Arc<HttpSettings>) -> Http {
        let http = Http::new(settings);
        Http {
            preferred: self.preferred.clone(),
            ..http
        }
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

    /// Sends `call` to the preferred server, moving on to the next when this one
    /// cannot answer now (a failed connect or lookup, a timeout, a 502, 503 or 504;
    /// see [`error::is_unavailable`]); returns the first answer, whatever its status,
    /// and the last server's answer or failure when none could. The server that
    /// answers becomes the preferred one, so a watch leaves a hung server for good.
    ///
    /// Worst case, a hung server costs a plain call one request timeout, and a long
    /// poll already in flight its wait plus jitter plus one request timeout, before the
    /// next server is asked.
    pub(crate) fn call(&self, call: &Call<'_>) -> Result<Reply> {
        let reply = self.call_once(call)?;
        if self.expired(reply.status(), reply.body()) && self.renew()? {
            return self.call_once(call);
        }
        Ok(reply)
    }

    fn call_once(&self, call: &Call<'_>) -> Result<Reply> {
        self.exchange(call, None, |site, response, last| {
            let reply = self.read(site, response)?;
            Ok(match !last && self.unavailable(&reply) {
                true => Outcome::MoveOn(reply.status_error()),
                false => Outcome::Answer(reply),
            })
        })
    }

    /// A streamed call (etcd's watch): the body is read as newline-delimited JSON
    /// objects, each handed to `each` as it arrives, until the server ends the stream
    /// or `each` answers `false`. There is no whole-call timeout: the response must
    /// begin within the request timeout, and then no read may wait longer than `idle`
    /// (a hung server). [`shutdown`](Self::shutdown) cuts it at once. Fail-over is as
    /// for [`call`](Self::call) until a server answers with a 2xx; a stream that breaks
    /// later is an error, and the caller opens a new one.
    ///
    /// A stream cut in the middle of an object is an error (after the whole objects
    /// before it were handed over); so is an object over the body limit.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))] // etcd's watch
    pub(crate) fn stream(
        &self,
        call: &Call<'_>,
        idle: Duration,
        each: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        match self.stream_once(call, idle, each) {
            Err(Error::Http(h)) if self.renewable_error(&h) && self.renew()? => {
                self.stream_once(call, idle, each)
            }
            other => other,
        }
    }

    fn stream_once(
        &self,
        call: &Call<'_>,
        idle: Duration,
        each: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.exchange(call, Some(idle), |site, response, last| {
            if response.status().is_success() {
                return self.read_stream(site, response, each).map(Outcome::Answer);
            }
            let reply = self.read(site, response)?;
            Err(match !last && self.unavailable(&reply) {
                true => return Ok(Outcome::MoveOn(reply.status_error())),
                false => reply.status_error(),
            })
        })
    }

    /// Whether an answer says the renewable credential expired: 401, or the backend's
    /// code 16 ("unauthenticated").
    fn expired(&self, status: u16, body: &[u8]) -> bool {
        self.settings.renewable.is_some()
            && (status == 401
                || (!(200..300).contains(&status)
                    && (self.settings.error_hook)(status, body).code == Some(UNAUTHENTICATED)))
    }

    fn renewable_error(&self, err: &crate::HttpError) -> bool {
        self.settings.renewable.is_some()
            && (err.status == Some(401) || err.code == Some(UNAUTHENTICATED))
    }

    /// Gets a new credential through the backend's `renew`; false if there is none to
    /// renew or this thread is renewing already (the renewal's own calls do not renew).
    fn renew(&self) -> Result<bool> {
        /// Ends this thread's renewal, also when `renew` panics.
        struct Renewing;
        impl Drop for Renewing {
            fn drop(&mut self) {
                RENEWING.with(|r| r.set(false));
            }
        }
        let Some(renewable) = &self.settings.renewable else {
            return Ok(false);
        };
        if RENEWING.with(|r| r.replace(true)) {
            return Ok(false);
        }
        let renewing = Renewing;
        log::debug!(target: "waypost::http", "{}: the credential expired; renewing it", self.settings.backend);
        let renewed = (renewable.renew)(self);
        drop(renewing);
        *renewable.current.write() = Some(renewed?);
        Ok(true)
    }

    /// Gets the renewable credential when none is held yet (before a first call: a
    /// server may answer a call without one with an error that is not "expired").
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn ensure_credential(&self) -> Result<()> {
        match &self.settings.renewable {
            Some(renewable) if renewable.current.read().is_none() => self.renew().map(drop),
            _ => Ok(()),
        }
    }

    /// Gets a new renewable credential now: the server said the one held expired in a
    /// way [`call`](Self::call) cannot see (etcd: inside a watch stream).
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn renew_credential(&self) -> Result<()> {
        self.renew().map(drop)
    }

    /// The renewable credential as it is now; none for the renewal's own calls (etcd
    /// refuses even `auth/authenticate` with a stale token).
    fn token(&self) -> Option<Secret> {
        if RENEWING.with(std::cell::Cell::get) {
            return None;
        }
        (self.settings.renewable.as_ref()).and_then(|r| r.current.read().clone())
    }

    /// Whether an answer says "this server cannot serve now": 502-504, or what the
    /// backend's error hook calls unavailable.
    fn unavailable(&self, reply: &Reply) -> bool {
        error::is_unavailable_status(reply.status())
            || (!reply.is_success()
                && (self.settings.error_hook)(reply.status(), reply.body()).unavailable)
    }

    /// Sends `call` to the preferred server, moving on to the next when this one
    /// cannot answer now (a failed connect or lookup, a timeout, or what `answered`
    /// calls unavailable; see [`error::is_unavailable`]); `answered` gets each server's
    /// response and whether it is the last server to try. The server that answers
    /// becomes the preferred one, so a watch leaves a hung server for good.
    ///
    /// Worst case, a hung server costs a plain call one request timeout, and a long
    /// poll already in flight its wait plus jitter plus one request timeout, before the
    /// next server is asked.
    fn exchange<T>(
        &self,
        call: &Call<'_>,
        idle: Option<Duration>,
        mut answered: impl FnMut(Site<'_>, Response<Body>, bool) -> Result<Outcome<T>>,
    ) -> Result<T> {
        let servers = &self.settings.servers;
        let first = self.preferred.load(Ordering::Relaxed) % servers.len();
        let token = self.token();
        let mut last_err = None;
        for k in 0..servers.len() {
            let i = (first + k) % servers.len();
            let site = Site {
                backend: self.settings.backend,
                method: call.method,
                path: call.path,
                server: &servers[i],
                secrets: &self.settings.headers,
                token: token.as_ref(),
                hook: self.settings.error_hook,
            };
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(site.error(HttpErrorKind::Cancelled, None, None, None));
            }
            let moved_on = match self.send(&site, call, idle) {
                Ok(response) => match answered(site, response, k + 1 == servers.len())? {
                    Outcome::Answer(answer) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Ok(answer);
                    }
                    Outcome::MoveOn(err) => err,
                },
                Err(err) if error::is_unavailable(&err) && !self.cancelled() => {
                    site.transport_error(err, false)
                }
                Err(err) => return Err(site.transport_error(err, self.cancelled())),
            };
            log::debug!(target: "waypost::http", "{} {} {}: {moved_on}; trying the next server",
                site.backend, site.method, site.server);
            last_err = Some(moved_on);
            // The next call starts past this server too.
            self.preferred
                .store((i + 1) % servers.len(), Ordering::Relaxed);
        }
        Err(last_err.expect("at least one server"))
    }

    /// Hands each newline-delimited object of a 2xx stream to `each`.
    fn read_stream(
        &self,
        site: Site<'_>,
        response: Response<Body>,
        each: &mut dyn FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        use std::io::{BufRead, Read};
        let status = response.status().as_u16();
        let mut reader = std::io::BufReader::new(response.into_body().into_reader());
        let limit = self.settings.body_limit;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut reader)
                .take(limit.saturating_add(1))
                .read_until(b'\n', &mut line)
                .map_err(|err| {
                    let err = match err.downcast::<ureq::Error>() {
                        Ok(err) => err,
                        Err(err) => ureq::Error::Io(err),
                    };
                    site.transport_error(err, self.cancelled())
                        .with_status(status)
                })?;
            if read as u64 > limit {
                let err = ureq::Error::BodyExceedsLimit(limit);
                return Err(site.transport_error(err, false).with_status(status));
            }
            let object = line.trim_ascii();
            if !line.ends_with(b"\n") && self.cancelled() {
                // shutdown() closes the connection: an end that is not the server's.
                return Err(site.error(HttpErrorKind::Cancelled, Some(status), None, None));
            }
            if object.starts_with(b"{\"error\"") {
                // A server's error line (etcd: `{"error":{"grpc_code":14,...}}` when it
                // shuts down or loses its leader; the last one may come without a newline):
                // the stream is over.
                let code = (self.settings.error_hook)(status, object).code;
                if code.is_some() {
                    return Err(site.error(
                        HttpErrorKind::Status,
                        Some(status),
                        Some(object),
                        None,
                    ));
                }
            }
            if !line.ends_with(b"\n") {
                if object.is_empty() {
                    return Ok(()); // the end of the stream
                }
                let why = "the stream ended in the middle of an object";
                return Err(site.error(
                    HttpErrorKind::Transport,
                    Some(status),
                    Some(object),
                    Some(why.into()),
                ));
            }
            if !object.is_empty() && !each(object)? {
                return Ok(());
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Sends the request; `idle` (a stream) replaces the whole-call timeout by the
    /// request timeout for the response to begin and `idle` for each read.
    fn send(
        &self,
        site: &Site<'_>,
        call: &Call<'_>,
        idle: Option<Duration>,
    ) -> Result<Response<Body>, ureq::Error> {
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
        for (name, value) in &call.headers {
            request = request.header(*name, *value);
        }
        if let (Some(renewable), Some(Secret(value))) = (&self.settings.renewable, site.token) {
            request = request.header(renewable.header, &**value);
        }
        match &call.body {
            None => self.run(request.body(())?, call, idle),
            Some(body) => {
                let request = request.header("content-type", "application/json");
                self.run(request.body(&body[..])?, call, idle)
            }
        }
    }

    /// Runs `request` bounded as [`send`](Self::send) says (a bound of "forever" is
    /// none; `shutdown` still cuts it).
    fn run<B: ureq::AsSendBody>(
        &self,
        request: Request<B>,
        call: &Call<'_>,
        idle: Option<Duration>,
    ) -> Result<Response<Body>, ureq::Error> {
        let request = self.agent.configure_request(request);
        let request = match idle {
            None => {
                let whole = self.settings.request_timeout.saturating_add(call.long_poll);
                request.timeout_per_call(finite(whole))
            }
            Some(idle) => request
                .timeout_per_call(None)
                .timeout_recv_response(finite(self.settings.request_timeout))
                .timeout_per_read(finite(idle)),
        };
        self.agent.run(request.build())
    }

    fn read(&self, site: Site<'_>, mut response: Response<Body>) -> Result<Reply> {
        let mut reply = self.head(&site, &mut response);
        reply.body = self.read_body(&site, &mut response)?;
        Ok(reply)
    }

    /// Status and headers of `response`, taken out of it; the body is left to read.
    fn head(&self, site: &Site<'_>, response: &mut Response<Body>) -> Reply {
        Reply {
            status: response.status().as_u16(),
            headers: std::mem::take(response.headers_mut()),
            body: Vec::new(),
            backend: site.backend,
            method: site.method,
            path: site.path.into(),
            server: site.server.into(),
            settings: self.settings.clone(),
            token: site.token.cloned(),
        }
    }

    /// The whole body, under the limit.
    fn read_body(&self, site: &Site<'_>, response: &mut Response<Body>) -> Result<Vec<u8>> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.settings.body_limit)
            .read_to_vec()
            .map_err(|err| self.body_error(site, err, status))?;
        log::trace!(target: "waypost::http", "{} {} {} -> {status}, {} bytes",
            site.backend, site.method, site.path, body.len());
        Ok(body)
    }

    /// A failure while reading the body of an answer with `status`.
    fn body_error(&self, site: &Site<'_>, err: ureq::Error, status: u16) -> Error {
        site.transport_error(err, self.cancelled())
            .with_status(status)
    }
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
