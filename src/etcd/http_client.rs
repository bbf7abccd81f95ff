//! [`HttpClient`]: the real [`Client`] over etcd's v3 JSON gateway.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{Client, Lease, Range, WatchRequest, WatchResponse};
use super::wire::{
    IdRequest, KeepAliveLine, KeyRequest, LeaseAnswer, PutRequest, RangeAnswer, RangeRequest,
    WatchCreate, WatchCreateRequest, decode_watch_line, grpc_code, prefix_end,
};
use crate::internal::http::{Call, Http, HttpSettings, Renewable, Reply, Secret};
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::{Error, HttpError, HttpErrorKind, Result};

/// Which API prefix the gateway answers: not known yet, `/v3`, or `/v3beta`.
const API_UNKNOWN: u8 = 0;
const API_V3: u8 = 1;
const API_V3BETA: u8 = 2;

/// gRPC's "failed precondition": etcd's "authentication is not enabled".
const AUTH_NOT_ENABLED: i64 = 9;
/// gRPC's "unauthenticated": an invalid or expired token.
const UNAUTHENTICATED: i64 = 16;

/// The real [`Client`]: etcd's v3 JSON gateway (etcd 3.4 and later) through waypost's
/// shared HTTP plumbing.
///
/// Cloning shares the connections; [`Client::fork`] makes a client with its own. The
/// password and the auth token travel in request bodies and the `Authorization`
/// header only: never in a URL, a log line, an error or `Debug` output.
#[derive(Clone)]
pub struct HttpClient {
    http: Arc<Http>,
    shared: Arc<SharedState>,
}

/// What every clone and fork of one client shares.
struct SharedState {
    /// `API_*`: chosen at the first contact, for every fork.
    api: Arc<AtomicU8>,
    /// A user was given and the server said authentication is not enabled: calls go
    /// without a token.
    auth_off: AtomicBool,
    user: Option<String>,
}

/// Builds an [`HttpClient`]; see [`HttpClient::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until build()"]
pub struct HttpClientBuilder {
    settings: HttpSettings,
    user: Option<(String, Secret)>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("settings", &self.settings)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .finish()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("http", &self.http)
            .field("user", &self.shared.user)
            .finish_non_exhaustive()
    }
}

/// The default bound on one call: short, so that a call to a member that lost its
/// leader (which etcd holds for 5 to 7 s) moves on to the next member in time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

impl HttpClient {
    /// Starts a builder with the defaults listed on each setter.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            settings: HttpSettings {
                error_hook: crate::internal::http::backend_errors::etcd,
                request_timeout: REQUEST_TIMEOUT,
                ..HttpSettings::new("etcd", "http://127.0.0.1:2379")
            },
            user: None,
        }
    }
}

impl HttpClientBuilder {
    /// One member's client URL, replacing the list: `http://host:port`,
    /// `https://host:port` or `host:port` (http). Default `http://127.0.0.1:2379`. An
    /// `https://` address needs the `tls` feature (on by default).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.settings.servers = vec![address.into().into()];
        self
    }

    /// Several members' client URLs, tried in order. A call moves on to the next
    /// member when one cannot answer now: a failed connect or lookup, a timeout (a
    /// hung member, or one whose write waits on a lost leader), a 502-504, or etcd's
    /// "unavailable" (gRPC code 14, e.g. "request timed out, possibly due to previous
    /// leader failure") and "context deadline exceeded" (a member without quorum).
    /// Later calls start at the member that answered.
    pub fn addresses<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addresses: I) -> Self {
        self.settings.servers = addresses.into_iter().map(|a| a.into().into()).collect();
        self
    }

    /// etcd's username and password: the client gets a token from
    /// `auth/authenticate` before its first call, sends it (raw) in `Authorization`,
    /// and gets a new one whenever etcd says it expired (HTTP 401), trying the call
    /// once more, without the caller noticing. A wrong password makes every call fail
    /// with etcd's error (HTTP 400, [`code`](crate::HttpError::code) 3, "authentication
    /// failed"). If the server has authentication off, calls go without a token. The
    /// password and token are never logged or shown.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), Secret::new(password.into())));
        self
    }

    /// TLS for `https://` addresses: a custom CA, and a client certificate for a
    /// member started with `--client-cert-auth`. Default: the bundled Mozilla roots, no
    /// client certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Bound on name resolution, TCP connect and TLS handshake: the part of a call
    /// that `stop()` cannot cut short. Default 500 ms. `Duration::ZERO` is refused by
    /// `build()`; `Duration::MAX` sets no bound of its own.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Bound on one call (for a watch: on the stream's start). Default 2 s: etcd holds
    /// a write sent just after its leader died for 5 to 7 s before answering 503, and
    /// a request with a token from another etcd can hang; a short bound moves the call
    /// on to the next member instead. `Duration::ZERO` is refused by `build()`;
    /// `Duration::MAX` means no bound (`stop()` still cuts a call short).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Largest response body (and watch message) read, in bytes. Default 64 MiB.
    pub fn body_limit(mut self, bytes: u64) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Checks the settings. Errors: [`Error::InvalidConfig`] for an address that is
    /// not an http(s) URL (or carries credentials, or mixes https and http, or is
    /// `https://` without the `tls` feature), an empty user name, or a zero timeout or
    /// limit.
    pub fn build(self) -> Result<HttpClient> {
        let mut settings = self.settings;
        let api = Arc::new(AtomicU8::new(API_UNKNOWN));
        let mut user_name = None;
        if let Some((name, password)) = self.user {
            if name.is_empty() {
                return Err(Error::invalid_config("user", "the user name is empty"));
            }
            user_name = Some(name.clone());
            let api = api.clone();
            settings.renewable = Some(Arc::new(Renewable {
                header: "Authorization",
                current: parking_lot::RwLock::new(None),
                renew: Box::new(move |http| authenticate(http, &api, &name, &password)),
            }));
        }
        let settings = settings.validate()?;
        Ok(HttpClient {
            http: Arc::new(Http::new(Arc::new(settings))),
            shared: Arc::new(SharedState {
                api,
                auth_off: AtomicBool::new(false),
                user: user_name,
            }),
        })
    }
}

/// `auth/authenticate`: a new token for `name`.
fn authenticate(http: &Http, api: &AtomicU8, name: &str, password: &Secret) -> Result<Secret> {
    #[derive(Serialize)]
    struct Request<'a> {
        name: &'a str,
        password: &'a str,
    }
    #[derive(Deserialize)]
    struct Answer {
        token: String,
    }
    let body = serde_json::to_vec(&Request {
        name,
        password: password.value(),
    })
    .expect("strings serialize");
    let reply = call_api(http, api, "auth/authenticate", body)?;
    let answer: Answer = reply.success()?.json()?;
    log::debug!(target: super::LOG, "authenticated as {name:?}");
    Ok(Secret::new(answer.token))
}

/// POSTs `body` to `op` under the API prefix, choosing the prefix at the first contact:
/// `/v3`, or `/v3beta` when the gateway has no `/v3` routes (etcd 3.3).
fn call_api(http: &Http, api: &AtomicU8, op: &str, body: Vec<u8>) -> Result<Reply> {
    let known = api.load(Ordering::Relaxed);
    let prefix = if known == API_V3BETA {
        "/v3beta/"
    } else {
        "/v3/"
    };
    let path = format!("{prefix}{op}");
    let mut call = Call::new("POST", &path);
    call.body = Some(body);
    let reply = http.call(&call)?;
    if known == API_UNKNOWN {
        if route_missing(reply.status(), reply.body()) {
            log::debug!(target: super::LOG, "the gateway has no /v3 routes; using /v3beta");
            api.store(API_V3BETA, Ordering::Relaxed);
            return call_api(http, api, op, call.body.take().expect("set above"));
        }
        api.store(API_V3, Ordering::Relaxed);
    }
    Ok(reply)
}

/// A 404 that is not etcd's own error (which is JSON with a code): no such route.
fn route_missing(status: u16, body: &[u8]) -> bool {
    status == 404
        && crate::internal::http::backend_errors::etcd(status, body)
            .code
            .is_none()
}

impl HttpClient {
    fn api_prefix(&self) -> &'static str {
        match self.shared.api.load(Ordering::Relaxed) {
            API_V3BETA => "/v3beta/",
            _ => "/v3/",
        }
    }

    /// Gets the first token, when a user is set and none is held yet.
    fn authenticated(&self) -> Result<()> {
        if self.shared.user.is_none() || self.shared.auth_off.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.http.ensure_credential() {
            Err(Error::Http(h)) if h.code == Some(AUTH_NOT_ENABLED) => {
                log::info!(target: super::LOG,
                    "etcd has authentication off: calls go without a token");
                self.shared.auth_off.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }

    fn post<T: serde::de::DeserializeOwned>(&self, op: &str, body: &impl Serialize) -> Result<T> {
        self.authenticated()?;
        let body = serde_json::to_vec(body).expect("requests serialize");
        call_api(&self.http, &self.shared.api, op, body)?
            .success()?
            .json()
    }

    fn post_reply(&self, op: &str, body: &impl Serialize) -> Result<Reply> {
        self.authenticated()?;
        let body = serde_json::to_vec(body).expect("requests serialize");
        call_api(&self.http, &self.shared.api, op, body)
    }
}

/// A lease answer's `error` field as an error of the call `op`.
fn lease_error(op: &str, message: &str) -> Error {
    let endpoint = format!("POST /v3/{op}");
    HttpError::new("etcd", endpoint, "", HttpErrorKind::Status)
        .with_excerpt(message.chars().take(200).collect::<String>())
        .into()
}

impl Client for HttpClient {
    fn range_prefix(&self, prefix: &[u8]) -> Result<Range> {
        let request = RangeRequest {
            key: prefix.to_vec(),
            range_end: prefix_end(prefix),
        };
        let answer: RangeAnswer = self.post("kv/range", &request)?;
        Ok(Range {
            kvs: answer.kvs,
            revision: answer.header.revision,
        })
    }

    fn watch(
        &self,
        request: &WatchRequest<'_>,
        each: &mut dyn FnMut(WatchResponse) -> bool,
    ) -> Result<()> {
        self.authenticated()?;
        let body = serde_json::to_vec(&WatchCreate {
            create_request: WatchCreateRequest {
                key: request.prefix.to_vec(),
                range_end: prefix_end(request.prefix),
                start_revision: request.start_revision,
                progress_notify: true,
            },
        })
        .expect("requests serialize");
        let path = format!("{}watch", self.api_prefix());
        let mut call = Call::new("POST", &path);
        call.body = Some(body);
        // Ask the member to end the stream when it loses its leader (etcd's
        // require-leader metadata), so that a member cut off from its quorum does not
        // leave the watch silent.
        call.headers.push(("Grpc-Metadata-hasleader", "true"));
        // etcd refuses an expired token inside the stream (a cancel, "code =
        // Unauthenticated"), not with a 401: renew it and open the stream once more.
        let mut renewed = false;
        loop {
            let mut expired = false;
            self.http.stream(&call, request.idle, &mut |line| {
                let message = decode_watch_line(line).map_err(|why| {
                    Error::from(
                        HttpError::new("etcd", format!("POST {path}"), "", HttpErrorKind::Decode)
                            .with_excerpt(String::from_utf8_lossy(&line[..line.len().min(200)]))
                            .with_source(why),
                    )
                })?;
                if message.canceled
                    && !renewed
                    && self.shared.user.is_some()
                    && grpc_code(&message.cancel_reason) == Some(UNAUTHENTICATED)
                {
                    expired = true;
                    return Ok(false);
                }
                Ok(each(message))
            })?;
            if !expired {
                return Ok(());
            }
            renewed = true;
            log::debug!(target: super::LOG, "the watch's token expired; renewing it");
            self.http.renew_credential()?;
        }
    }

    fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        #[derive(Serialize)]
        struct Grant {
            #[serde(rename = "TTL")]
            ttl: u64,
        }
        let seconds = ttl.as_secs().max(1);
        let answer: LeaseAnswer = self.post("lease/grant", &Grant { ttl: seconds })?;
        if !answer.error.is_empty() {
            return Err(lease_error("lease/grant", &answer.error));
        }
        Ok(Lease {
            id: answer.id,
            ttl: Duration::from_secs(u64::try_from(answer.ttl).unwrap_or(0)),
        })
    }

    fn keep_alive(&self, id: i64) -> Result<Option<Duration>> {
        // One request and one `{"result":...}` line per renewal.
        let KeepAliveLine { result } = self.post("lease/keepalive", &IdRequest { id })?;
        if !result.error.is_empty() {
            return Err(lease_error("lease/keepalive", &result.error));
        }
        Ok((result.ttl > 0).then(|| Duration::from_secs(result.ttl as u64)))
    }

    fn revoke_lease(&self, id: i64) -> Result<()> {
        let reply = self.post_reply("lease/revoke", &IdRequest { id })?;
        if reply.status() == 404 && !route_missing(404, reply.body()) {
            return Ok(()); // "requested lease not found": gone already
        }
        reply.success().map(drop)
    }

    fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<()> {
        let request = PutRequest { key, value, lease };
        self.post_reply("kv/put", &request)?.success().map(drop)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.post_reply("kv/deleterange", &KeyRequest { key })?
            .success()
            .map(drop)
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(HttpClient {
            http: Arc::new(self.http.fork()),
            shared: self.shared.clone(),
        })
    }

    fn fork_with_timeout(&self, timeout: Duration) -> Arc<dyn Client> {
        Arc::new(HttpClient {
            http: Arc::new(self.http.fork_with_timeout(timeout)),
            shared: self.shared.clone(),
        })
    }

    fn shutdown(&self) {
        self.http.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let builder = HttpClient::builder().user("app", "s3cret-pw");
        assert!(!format!("{builder:?}").contains("s3cret"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
        assert!(HttpClient::builder().user("", "x").build().is_err());
    }
}
