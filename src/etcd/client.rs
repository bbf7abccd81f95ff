//! The narrow etcd [`Client`] trait (only the calls the instancer and registrar make),
//! its payloads, and the real implementation [`HttpClient`] over etcd's JSON gateway.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::internal::http::encoding::{base64, int64};
use crate::internal::http::{Call, Http, HttpSettings, Renewable, Reply, Secret};
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::{Error, HttpError, HttpErrorKind, Result};

/// The etcd calls waypost makes. [`HttpClient`] is the real one; tests give the
/// instancer and registrar a fake.
///
/// Keys and values are bytes, as etcd's are. Every call is bounded by a timeout. A
/// client can be [`fork`](Client::fork)ed into one with its own connections for a
/// thread that must be stoppable on its own, and [`shutdown`](Client::shutdown) cuts
/// that client's calls short, a watch stream included.
pub trait Client: Send + Sync + fmt::Debug {
    /// Every key under `prefix` with its value, and the store's revision the answer is
    /// from (`kv/range` with `range_end` the prefix's end).
    fn range_prefix(&self, prefix: &[u8]) -> Result<Range>;

    /// Watches the keys under `request.prefix` from `request.start_revision` on: each
    /// message of the stream goes to `each` as it arrives, until the server ends the
    /// stream, `each` answers `false`, or nothing arrives for `request.idle`
    /// (an error of kind [`Timeout`](HttpErrorKind::Timeout)). A server's error line,
    /// or a stream cut in the middle of a message, is an error.
    fn watch(
        &self,
        request: &WatchRequest<'_>,
        each: &mut dyn FnMut(WatchResponse) -> bool,
    ) -> Result<()>;

    /// Grants a lease of `ttl` (whole seconds, at least one; etcd may grant more).
    fn grant_lease(&self, ttl: Duration) -> Result<Lease>;

    /// Renews lease `id` once: its TTL as granted again, or `None` when etcd no longer
    /// knows the lease (expired, revoked, or etcd restarted from empty).
    fn keep_alive(&self, id: i64) -> Result<Option<Duration>>;

    /// Revokes lease `id`, deleting its keys; an unknown lease is `Ok`.
    fn revoke_lease(&self, id: i64) -> Result<()>;

    /// Puts `key` = `value`, attached to lease `lease` (0: none).
    fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<()>;

    /// Deletes `key`; a missing key is `Ok`.
    fn delete(&self, key: &[u8]) -> Result<()>;

    /// A client with the same settings and its own connections, so that shutting it
    /// down affects nobody else.
    fn fork(&self) -> Arc<dyn Client>;

    /// A [`fork`](Client::fork) whose calls each give up after `timeout` at most (a
    /// watch: its start): the [`Registrar`](super::Registrar)'s keepalive bounds every
    /// call by TTL/3 this way, so that one call to a hung member cannot outlast the
    /// lease. [`HttpClient`] lowers its request timeout to `timeout`. The default is
    /// `fork()`: override it in a client whose calls can hang.
    fn fork_with_timeout(&self, timeout: Duration) -> Arc<dyn Client> {
        let _ = timeout;
        self.fork()
    }

    /// Cuts this client's calls short, now and later (they fail with
    /// [`HttpErrorKind::Cancelled`]). Idempotent.
    fn shutdown(&self);
}

/// What [`Client::watch`] is asked.
#[derive(Debug, Clone, Copy)]
pub struct WatchRequest<'a> {
    /// The key prefix watched.
    pub prefix: &'a [u8],
    /// The first revision whose changes are sent (inclusive).
    pub start_revision: i64,
    /// The longest time without a message before the stream is given up.
    pub idle: Duration,
}

/// One key and its value, as a range or a watch event gives it.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    /// The key.
    #[serde(with = "base64")]
    pub key: Vec<u8>,
    /// The value (empty for a delete event).
    #[serde(with = "base64")]
    pub value: Vec<u8>,
    /// The revision of the key's last change.
    #[serde(with = "int64")]
    pub mod_revision: i64,
    /// The lease the key is attached to (0: none).
    #[serde(with = "int64")]
    pub lease: i64,
}

impl KeyValue {
    /// A key and its value, changed at `mod_revision`.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, mod_revision: i64) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision,
            lease: 0,
        }
    }
}

/// What [`Client::range_prefix`] answers.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    /// The keys and values, in key order.
    pub kvs: Vec<KeyValue>,
    /// The store's revision the answer is from.
    pub revision: i64,
}

impl Range {
    /// An answer listing `kvs` at `revision`.
    pub fn new(kvs: Vec<KeyValue>, revision: i64) -> Range {
        Range { kvs, revision }
    }
}

/// What happened to a key, in a [`WatchEvent`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EventKind {
    /// The key was created or changed (etcd omits the type for a put).
    #[default]
    #[serde(rename = "PUT")]
    Put,
    /// The key was deleted.
    #[serde(rename = "DELETE")]
    Delete,
}

/// One change of one key.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WatchEvent {
    /// A put or a delete.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The key (and for a put its new value) with the revision of the change.
    pub kv: KeyValue,
}

impl WatchEvent {
    /// A put of `kv`.
    pub fn put(kv: KeyValue) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Put,
            kv,
        }
    }

    /// A delete of `key` at `revision`.
    pub fn delete(key: impl Into<Vec<u8>>, revision: i64) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::new(key, Vec::new(), revision),
        }
    }
}

/// One message of a watch stream.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchResponse {
    /// The store's revision when the message was sent (0 when the message has none,
    /// as on a cancel).
    pub revision: i64,
    /// The watch was created: the first message of a stream.
    pub created: bool,
    /// The watch was cancelled by the server; the stream brings nothing more.
    pub canceled: bool,
    /// With `canceled`: the start revision was compacted; this is the oldest revision
    /// still kept (0 otherwise).
    pub compact_revision: i64,
    /// With `canceled`: why, e.g. a permission denied (empty otherwise).
    pub cancel_reason: String,
    /// The changes, in revision order.
    pub events: Vec<WatchEvent>,
}

/// A lease granted by [`Client::grant_lease`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease's id.
    pub id: i64,
    /// The TTL etcd granted.
    pub ttl: Duration,
}

impl Lease {
    /// A lease `id` granted for `ttl`.
    pub fn new(id: i64, ttl: Duration) -> Lease {
        Lease { id, ttl }
    }
}

// ---- the gateway's JSON shapes ----------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct Header {
    #[serde(with = "int64")]
    revision: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RangeAnswer {
    header: Header,
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeaseAnswer {
    #[serde(rename = "ID", with = "int64")]
    id: i64,
    #[serde(rename = "TTL", with = "int64")]
    ttl: i64,
    error: String,
}

#[derive(Deserialize)]
struct KeepAliveLine {
    result: LeaseAnswer,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WatchResult {
    header: Header,
    created: bool,
    canceled: bool,
    #[serde(with = "int64")]
    compact_revision: i64,
    cancel_reason: String,
    events: Vec<WatchEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchLine {
    result: WatchResult,
}

/// Decodes one line of a watch stream: `{"result":{...}}`. An error line is refused
/// by the shared HTTP stream reader before it gets here.
pub(crate) fn decode_watch_line(line: &[u8]) -> std::result::Result<WatchResponse, String> {
    let WatchLine { result } = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    Ok(WatchResponse {
        revision: result.header.revision,
        created: result.created,
        canceled: result.canceled,
        compact_revision: result.compact_revision,
        cancel_reason: result.cancel_reason,
        events: result.events,
    })
}

#[derive(Serialize)]
struct RangeRequest {
    #[serde(with = "base64")]
    key: Vec<u8>,
    #[serde(with = "base64")]
    range_end: Vec<u8>,
}

#[derive(Serialize)]
struct PutRequest<'a> {
    #[serde(serialize_with = "bytes")]
    key: &'a [u8],
    #[serde(serialize_with = "bytes")]
    value: &'a [u8],
    #[serde(with = "int64")]
    lease: i64,
}

#[derive(Serialize)]
struct KeyRequest<'a> {
    #[serde(serialize_with = "bytes")]
    key: &'a [u8],
}

#[derive(Serialize)]
struct IdRequest {
    #[serde(rename = "ID", with = "int64")]
    id: i64,
}

#[derive(Serialize)]
struct WatchCreate {
    create_request: WatchCreateRequest,
}

#[derive(Serialize)]
struct WatchCreateRequest {
    #[serde(with = "base64")]
    key: Vec<u8>,
    #[serde(with = "base64")]
    range_end: Vec<u8>,
    #[serde(with = "int64")]
    start_revision: i64,
    progress_notify: bool,
}

fn bytes<S: serde::Serializer>(bytes: &&[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    base64::serialize(bytes, s)
}

/// The end of the range of keys that start with `prefix`: the prefix with its last
/// byte below 0xff incremented (what follows dropped); "\0" (every key) when there is
/// no such byte.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

// ---- the real client ---------------------------------------------------------------

/// Which API prefix the gateway answers: not known yet, `/v3`, or `/v3beta`.
const API_UNKNOWN: u8 = 0;
const API_V3: u8 = 1;
const API_V3BETA: u8 = 2;

/// gRPC's "failed precondition": etcd's "authentication is not enabled".
const AUTH_NOT_ENABLED: i64 = 9;
/// gRPC's "unauthenticated": an invalid or expired token.
const UNAUTHENTICATED: i64 = 16;

/// The gRPC code a watch's `cancel_reason` names (`"rpc error: code = PermissionDenied
/// desc = ..."`), as its number.
pub(crate) fn grpc_code(reason: &str) -> Option<i64> {
    let name = reason.split("code = ").nth(1)?.split_whitespace().next()?;
    let codes = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    codes.iter().position(|c| *c == name).map(|n| n as i64)
}

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
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/svc/"), b"/svc0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn watch_lines_decode_with_defaults_omitted() {
        let created = br#"{"result":{"header":{"cluster_id":"1","revision":"8","raft_term":"2"},"created":true}}"#;
        let m = decode_watch_line(created).unwrap();
        assert!(m.created && !m.canceled && m.events.is_empty());
        assert_eq!(m.revision, 8);

        let events = br#"{"result":{"header":{"revision":"11"},"events":[{"kv":{"key":"L3N2Yy9h","create_revision":"7","mod_revision":"7","version":"1","value":"MQ=="}},{"type":"DELETE","kv":{"key":"L3N2Yy9h","mod_revision":"11"},"prev_kv":{"key":"L3N2Yy9h","value":"MQ=="}}]}}"#;
        let m = decode_watch_line(events).unwrap();
        assert_eq!(m.revision, 11);
        assert_eq!(m.events.len(), 2);
        assert_eq!(m.events[0].kind, EventKind::Put);
        assert_eq!(m.events[0].kv.key, b"/svc/a");
        assert_eq!(m.events[0].kv.value, b"1");
        assert_eq!(m.events[1].kind, EventKind::Delete);
        assert_eq!(m.events[1].kv.mod_revision, 11);

        let compacted = br#"{"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"canceled":true,"compact_revision":"12"}}"#;
        let m = decode_watch_line(compacted).unwrap();
        assert!(m.canceled);
        assert_eq!((m.compact_revision, m.revision), (12, 0));

        let denied = br#"{"result":{"header":{},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = PermissionDenied desc = etcdserver: permission denied"}}"#;
        let m = decode_watch_line(denied).unwrap();
        assert!(m.canceled && m.cancel_reason.contains("permission denied"));

        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"result\":1}",
            b"{\"other\":{}}",
            b"{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!\"}}]}}",
        ] {
            assert!(
                decode_watch_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn grpc_codes_of_cancel_reasons() {
        let denied = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
        assert_eq!(grpc_code(denied), Some(7));
        let token = "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token";
        assert_eq!(grpc_code(token), Some(16));
        assert_eq!(grpc_code("no code here"), None);
        assert_eq!(grpc_code("code = Nonsense"), None);
    }

    #[test]
    fn debug_never_shows_the_password() {
        let builder = HttpClient::builder().user("app", "s3cret-pw");
        assert!(!format!("{builder:?}").contains("s3cret"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
        assert!(HttpClient::builder().user("", "x").build().is_err());
    }
}
