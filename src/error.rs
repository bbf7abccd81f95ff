//! The one error type of waypost.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error from user code (a factory, a closer) or a dependency.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with waypost's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in waypost.
///
/// The enum is `#[non_exhaustive]`: backends add variants as they arrive, so match the
/// variants you care about and keep a catch-all arm. Payloads are typed (paths, line
/// numbers, durations) and [`std::error::Error::source`] returns the underlying cause
/// where there is one. Predicates such as [`Error::is_timeout`] answer the common
/// questions without a match.
///
/// Large payloads are boxed so that an `Error` stays small (it travels inside every
/// `Result` on the hot path; a test pins its size).
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// A balancer had no endpoints to choose from: the instancer has sent no state yet,
    /// the registry lists no instances, or every factory call failed.
    NoEndpoints,
    /// A blocking wait gave up after the given duration.
    Timeout {
        /// What was being waited for, e.g. `"first state"`.
        operation: &'static str,
        /// How long the caller waited.
        after: Duration,
        /// Why it did not arrive, when that is known: e.g. the registry's last error
        /// while an endpointer waited for its first set. Also the `source()`.
        cause: Option<Arc<Error>>,
    },
    /// The component was closed or stopped and can no longer serve the call.
    Closed {
        /// Which component, e.g. `"endpointer"`.
        component: &'static str,
    },
    /// A builder was given a value it cannot use; `build()` reports it.
    InvalidConfig {
        /// The setting at fault.
        field: &'static str,
        /// Why the value was refused.
        reason: Box<str>,
    },
    /// An instance address or instance line could not be understood.
    InvalidInstance(Box<InvalidInstance>),
    /// An I/O error outside a file, e.g. starting a thread or opening a socket.
    Io {
        /// What waypost was doing, e.g. `"starting the endpointer thread"`.
        operation: &'static str,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An I/O error on a file, e.g. the file backend's instance file.
    File {
        /// The file.
        path: Arc<Path>,
        /// The underlying I/O error (`NotFound` for a missing file).
        source: std::io::Error,
    },
    /// A user factory refused to build an endpoint.
    Factory(BoxError),
    /// An HTTP registry (Consul, etcd, Eureka) could not be reached, answered with an
    /// error status, or sent a body that could not be decoded.
    Http(Box<HttpError>),
    /// A ZooKeeper call failed: the server answered an error code, the connection was
    /// lost with the call in flight, the session expired, or no reply came in time.
    ZooKeeper(Box<ZkError>),
    /// A DNS query failed: no answer in time, the server answered an error code
    /// (SERVFAIL, REFUSED...), or the answer to the query could not be decoded.
    Dns(Box<DnsError>),
    /// A registry's errors lasted longer than the endpointer's
    /// [`invalidate_on_error`](crate::EndpointerOptions::invalidate_on_error) timeout:
    /// the cached endpoints were closed. The source is the registry's latest error.
    Invalidated(Arc<Error>),
    /// A background thread of waypost panicked, in waypost's code or in user code it
    /// runs (a factory, a closer, an endpoint's `Drop`). The thread logged it at
    /// `error!` level; what happens next is documented where the thread is.
    Panicked {
        /// Which thread or component, e.g. `"endpointer"`, `"consul watch"`.
        component: &'static str,
        /// The panic's message, when it was a string.
        message: Box<str>,
    },
}

/// Details of an [`Error::InvalidInstance`]: the offending text, where it came from, why.
///
/// `#[non_exhaustive]`: read the fields, build one with [`InvalidInstance::new`].
#[non_exhaustive]
#[derive(Debug)]
pub struct InvalidInstance {
    /// The text that could not be understood, cut to 200 characters (the last one an
    /// ellipsis `…` when cut), so a huge input never lands whole in a log line.
    pub input: Box<str>,
    /// The file it came from, if any.
    pub path: Option<Arc<Path>>,
    /// Its 1-based line number in that file, if any.
    pub line: Option<usize>,
    /// What is wrong with it.
    pub reason: Box<str>,
}

/// Details of an [`Error::Http`]: which call, what went wrong, what the server said.
///
/// Never holds credentials: the endpoint is a method and path (no query string), and
/// request headers are not kept.
///
/// `#[non_exhaustive]`: read the fields, build one (e.g. in a fake `consul::Client`)
/// with [`HttpError::new`] and the `with_` methods.
#[non_exhaustive]
#[derive(Debug)]
pub struct HttpError {
    /// The backend that made the call, e.g. `"consul"`.
    pub backend: &'static str,
    /// Method and path of the call, e.g. `"GET /v1/health/service/api"`.
    pub endpoint: Box<str>,
    /// The server's base URL that was tried (scheme, host, port).
    pub server: Box<str>,
    /// What went wrong.
    pub kind: HttpErrorKind,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The start of a body that was an error or could not be decoded, cut to a few
    /// hundred bytes, credentials masked; the backend's own message when it sent one
    /// that waypost decodes.
    pub excerpt: Option<Box<str>>,
    /// The backend's own error code, when its error body carries one (etcd: the gRPC
    /// code, e.g. 14 unavailable, 16 unauthenticated).
    pub code: Option<i64>,
    /// The underlying error (I/O, TLS, JSON), if any.
    pub source: Option<BoxError>,
}

/// How many characters of an invalid input an [`InvalidInstance`] keeps.
const INPUT_CHARS: usize = 200;

impl InvalidInstance {
    /// Details for `input` refused for `reason`, with no file position. An input over
    /// 200 characters is cut to 199 and an ellipsis `…`.
    pub fn new(input: &str, reason: impl Into<Box<str>>) -> InvalidInstance {
        let input = match input.char_indices().nth(INPUT_CHARS - 1) {
            Some((cut, _)) if input[cut..].chars().nth(1).is_some() => {
                format!("{}…", &input[..cut]).into()
            }
            _ => input.into(),
        };
        InvalidInstance {
            input,
            path: None,
            line: None,
            reason: reason.into(),
        }
    }

    /// Names the file the input came from.
    pub fn with_path(mut self, path: impl Into<Arc<Path>>) -> InvalidInstance {
        self.path = Some(path.into());
        self
    }

    /// Names the input's 1-based line number.
    pub fn with_line(mut self, line: usize) -> InvalidInstance {
        self.line = Some(line);
        self
    }
}

impl From<InvalidInstance> for Error {
    fn from(details: InvalidInstance) -> Error {
        Error::InvalidInstance(Box::new(details))
    }
}

impl HttpError {
    /// A failure of `kind` in the call `endpoint` (method and path, e.g.
    /// `"GET /v1/health/service/api"`; never a query string or a credential) of
    /// `backend` (e.g. `"consul"`) to `server` (its base URL), with no status, excerpt
    /// or source.
    pub fn new(
        backend: &'static str,
        endpoint: impl Into<Box<str>>,
        server: impl Into<Box<str>>,
        kind: HttpErrorKind,
    ) -> HttpError {
        HttpError {
            backend,
            endpoint: endpoint.into(),
            server: server.into(),
            kind,
            status: None,
            excerpt: None,
            code: None,
            source: None,
        }
    }

    /// Sets the backend's own error code.
    pub fn with_code(mut self, code: i64) -> HttpError {
        self.code = Some(code);
        self
    }

    /// Sets the HTTP status the server answered.
    pub fn with_status(mut self, status: u16) -> HttpError {
        self.status = Some(status);
        self
    }

    /// Sets the start of the body, kept as given: cut it to a few hundred bytes.
    pub fn with_excerpt(mut self, excerpt: impl Into<Box<str>>) -> HttpError {
        self.excerpt = Some(excerpt.into());
        self
    }

    /// Sets the underlying error, the [`source`](std::error::Error::source) of the
    /// [`Error::Http`].
    pub fn with_source(mut self, source: impl Into<BoxError>) -> HttpError {
        self.source = Some(source.into());
        self
    }
}

impl From<HttpError> for Error {
    fn from(details: HttpError) -> Error {
        Error::Http(Box::new(details))
    }
}

/// Details of an [`Error::ZooKeeper`]: which call, on which path, what went wrong.
#[non_exhaustive]
#[derive(Debug)]
pub struct ZkError {
    /// What went wrong.
    pub kind: ZkErrorKind,
    /// The call, e.g. `"getChildren"`.
    pub operation: &'static str,
    /// The path of the call, as the caller gave it (without a chroot).
    pub path: Box<str>,
    /// ZooKeeper's own error code, when the server answered one (e.g. -101 NoNode).
    pub code: Option<i32>,
}

impl ZkError {
    /// A failure of `kind` in `operation` on `path`.
    pub fn new(kind: ZkErrorKind, operation: &'static str, path: impl Into<Box<str>>) -> Self {
        ZkError {
            kind,
            operation,
            path: path.into(),
            code: None,
        }
    }

    /// Sets ZooKeeper's error code.
    pub fn with_code(mut self, code: i32) -> Self {
        self.code = Some(code);
        self
    }
}

impl From<ZkError> for Error {
    fn from(details: ZkError) -> Error {
        Error::ZooKeeper(Box::new(details))
    }
}

/// What kind of ZooKeeper failure a [`ZkError`] is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZkErrorKind {
    /// The node (or, for a create, its parent) does not exist.
    NoNode,
    /// A create of a node that exists.
    NodeExists,
    /// The node's ACL refuses the session.
    NoAuth,
    /// A delete of a node with children.
    NotEmpty,
    /// The version given is not the node's.
    BadVersion,
    /// The session expired; a new one is being made.
    SessionExpired,
    /// The connection was lost with the call in flight, or none could be made in
    /// time; the call may or may not have been applied.
    ConnectionLoss,
    /// No reply within the request timeout.
    Timeout,
    /// The client was closed.
    Closed,
    /// A path ZooKeeper would refuse, a request too large, or a reply that does not
    /// decode.
    Invalid,
    /// Another error code from the server (see [`ZkError::code`]).
    Server,
}

impl ZkErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ZkErrorKind::NoNode => "no such node",
            ZkErrorKind::NodeExists => "the node exists",
            ZkErrorKind::NoAuth => "not authorized",
            ZkErrorKind::NotEmpty => "the node has children",
            ZkErrorKind::BadVersion => "bad version",
            ZkErrorKind::SessionExpired => "session expired",
            ZkErrorKind::ConnectionLoss => "connection lost",
            ZkErrorKind::Timeout => "timed out",
            ZkErrorKind::Closed => "closed",
            ZkErrorKind::Invalid => "invalid request or reply",
            ZkErrorKind::Server => "server error",
        }
    }
}

/// Details of an [`Error::Dns`]: which name, which type, which server, what went wrong.
#[non_exhaustive]
#[derive(Debug)]
pub struct DnsError {
    /// What went wrong.
    pub kind: DnsErrorKind,
    /// The name asked, as the caller gave it.
    pub name: Box<str>,
    /// The record type asked, e.g. `"SRV"`.
    pub record_type: &'static str,
    /// The name server of the last attempt, when one was tried.
    pub server: Option<std::net::SocketAddr>,
    /// The response code the server answered (2 SERVFAIL, 5 REFUSED...), for
    /// [`DnsErrorKind::ServerFailure`], [`DnsErrorKind::Refused`] and
    /// [`DnsErrorKind::Rcode`].
    pub rcode: Option<u16>,
    /// The underlying error: an I/O error, or why an answer did not decode.
    pub source: Option<BoxError>,
}

impl DnsError {
    /// A failure of `kind` for a query of `record_type` records of `name`.
    pub fn new(kind: DnsErrorKind, name: impl Into<Box<str>>, record_type: &'static str) -> Self {
        DnsError {
            kind,
            name: name.into(),
            record_type,
            server: None,
            rcode: None,
            source: None,
        }
    }

    /// Sets the server asked.
    pub fn with_server(mut self, server: std::net::SocketAddr) -> Self {
        self.server = Some(server);
        self
    }

    /// Sets the response code answered.
    pub fn with_rcode(mut self, rcode: u16) -> Self {
        self.rcode = Some(rcode);
        self
    }

    /// Sets the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl From<DnsError> for Error {
    fn from(details: DnsError) -> Error {
        Error::Dns(Box::new(details))
    }
}

/// What kind of DNS failure a [`DnsError`] is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsErrorKind {
    /// No answer from any server within the timeout and attempts.
    Timeout,
    /// A server answered SERVFAIL (code 2).
    ServerFailure,
    /// A server answered REFUSED (code 5): e.g. a name outside what it serves.
    Refused,
    /// A server answered another error code (see [`DnsError::rcode`]).
    Rcode,
    /// The answer to our query could not be decoded, or broke the protocol (a
    /// truncated answer over TCP, a TCP length of zero).
    Malformed,
    /// The answer was truncated over UDP and the TCP query that must follow failed
    /// (no listener, the connection broke): the partial set is never used.
    Truncated,
    /// A socket could not be opened, or a send or receive failed.
    Io,
    /// The query was cut short by `stop()`.
    Cancelled,
    /// The name cannot be asked: empty, a label over 63 bytes, over 255 bytes in all.
    InvalidName,
}

impl DnsErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            DnsErrorKind::Timeout => "timed out",
            DnsErrorKind::ServerFailure => "server failure (SERVFAIL)",
            DnsErrorKind::Refused => "refused (REFUSED)",
            DnsErrorKind::Rcode => "error response code",
            DnsErrorKind::Malformed => "malformed answer",
            DnsErrorKind::Truncated => "truncated over UDP, and TCP failed",
            DnsErrorKind::Io => "socket error",
            DnsErrorKind::Cancelled => "cancelled by stop",
            DnsErrorKind::InvalidName => "invalid name",
        }
    }
}

/// What kind of HTTP failure an [`HttpError`] is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// Could not connect (refused, unreachable, DNS failure).
    Connect,
    /// A connect, read or overall timeout passed.
    Timeout,
    /// The TLS handshake failed (unknown CA, bad certificate, wrong name).
    Tls,
    /// The server answered with a status that is not a success.
    Status,
    /// The body was not what the call expects (bad JSON, wrong content type).
    Decode,
    /// The body was larger than the configured limit.
    BodyTooLarge,
    /// The request was cut short by `stop()`.
    Cancelled,
    /// Another transport error (connection closed mid-response, protocol error).
    Transport,
}

impl Error {
    /// An [`Error::Factory`] from any error, for a factory that returns waypost errors.
    pub fn factory<E: Into<BoxError>>(err: E) -> Error {
        Error::Factory(err.into())
    }

    /// An [`Error::InvalidConfig`].
    pub fn invalid_config(field: &'static str, reason: impl Into<Box<str>>) -> Error {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }

    /// An [`Error::Timeout`] with no known cause.
    pub fn timeout(operation: &'static str, after: Duration) -> Error {
        Error::Timeout {
            operation,
            after,
            cause: None,
        }
    }

    /// An [`Error::Panicked`] from a payload caught with `catch_unwind`.
    pub fn panicked(component: &'static str, payload: &(dyn std::any::Any + Send)) -> Error {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).into()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.as_str().into()
        } else {
            "a non-string payload".into()
        };
        Error::Panicked { component, message }
    }

    /// An [`Error::InvalidInstance`] for a bare input without a file position (the
    /// input cut to 200 characters, see [`InvalidInstance::new`]).
    pub fn invalid_instance(input: &str, reason: impl Into<Box<str>>) -> Error {
        InvalidInstance::new(input, reason).into()
    }

    /// True for [`Error::Timeout`], an I/O timeout, and a timeout under
    /// [`Error::Invalidated`].
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Io { source, .. } | Error::File { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            Error::Http(http) => http.kind == HttpErrorKind::Timeout,
            Error::ZooKeeper(zk) => zk.kind == ZkErrorKind::Timeout,
            Error::Dns(dns) => dns.kind == DnsErrorKind::Timeout,
            Error::Invalidated(inner) => inner.is_timeout(),
            _ => false,
        }
    }

    /// True for errors that may go away if the call is made again (on another
    /// endpoint, or a little later), so a [`Retry`](crate::lb::Retry) should go on:
    ///
    /// - [`Error::Timeout`], and I/O timeouts;
    /// - [`Error::NoEndpoints`] (the set may refill);
    /// - I/O errors of a connection: refused, reset, aborted, not connected, broken
    ///   pipe, interrupted;
    /// - [`Error::Http`] that could not connect (refused, unreachable, or the name did
    ///   not resolve), timed out, or broke off mid-answer; and the statuses 429, 502,
    ///   503 and 504.
    ///
    /// False for everything else: configuration and input ([`Error::InvalidConfig`],
    /// [`Error::InvalidInstance`]), answers that cannot be decoded or are too large,
    /// other 4xx and 5xx statuses, TLS failures, a closed, invalidated or failed
    /// endpointer, and factory errors.
    ///
    /// A retry over your own error type classifies it in the callback of
    /// [`Retry::call_with`](crate::lb::Retry::call_with); for example, an error type
    /// that wraps waypost's errors beside its own:
    ///
    /// ```
    /// use waypost::lb::{AttemptError, Retry, RoundRobin};
    /// use waypost::{Error, FixedEndpointer};
    ///
    /// #[derive(Debug)]
    /// enum CallError {
    ///     Waypost(Error),
    ///     Rejected { status: u16 },
    /// }
    ///
    /// let retry = Retry::new(RoundRobin::new(FixedEndpointer::new(vec!["a", "b"])));
    /// let mut calls = 0;
    /// let result = retry.call_with(
    ///     |_: &&str, _deadline| {
    ///         calls += 1;
    ///         Err::<(), _>(CallError::Rejected { status: 400 })
    ///     },
    ///     |_attempt, error: &AttemptError<CallError>| match error {
    ///         AttemptError::Balancer(e) => e.is_transient(),
    ///         AttemptError::Endpoint(CallError::Waypost(e)) => e.is_transient(),
    ///         AttemptError::Endpoint(CallError::Rejected { status }) => *status >= 500,
    ///         _ => false,
    ///     },
    /// );
    /// assert!(result.is_err());
    /// assert_eq!(calls, 1, "a 400 is not retried");
    /// ```
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            Error::Timeout { .. } | Error::NoEndpoints => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                TimedOut
                    | WouldBlock
                    | ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | BrokenPipe
                    | Interrupted
            ),
            Error::ZooKeeper(zk) => matches!(
                zk.kind,
                ZkErrorKind::ConnectionLoss | ZkErrorKind::Timeout | ZkErrorKind::SessionExpired
            ),
            Error::Dns(dns) => matches!(
                dns.kind,
                DnsErrorKind::Timeout
                    | DnsErrorKind::ServerFailure
                    | DnsErrorKind::Truncated
                    | DnsErrorKind::Io
            ),
            Error::Http(http) => match http.kind {
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Transport => true,
                HttpErrorKind::Status => matches!(http.status, Some(429 | 502 | 503 | 504)),
                _ => false,
            },
            _ => false,
        }
    }

    /// True for [`Error::NoEndpoints`].
    pub fn is_no_endpoints(&self) -> bool {
        matches!(self, Error::NoEndpoints)
    }

    /// True for [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. })
    }

    /// True when the error says the instance set may be stale: an [`Error::Invalidated`].
    pub fn is_invalidated(&self) -> bool {
        matches!(self, Error::Invalidated(_))
    }

    /// The HTTP status of an [`Error::Http`] answered by the server.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http(http) => http.status,
            _ => None,
        }
    }

    /// True for errors a caller cannot fix by retrying: bad configuration or input.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidConfig { .. } | Error::InvalidInstance(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoEndpoints => f.write_str("no endpoints available"),
            Error::Timeout {
                operation,
                after,
                cause,
            } => {
                write!(f, "timed out after {after:?} waiting for {operation}")?;
                match cause {
                    Some(cause) => write!(f, "; last error: {cause}"),
                    None => Ok(()),
                }
            }
            Error::Closed { component } => write!(f, "{component} is closed"),
            Error::InvalidConfig { field, reason } => {
                write!(f, "invalid configuration for `{field}`: {reason}")
            }
            Error::InvalidInstance(d) => {
                f.write_str("invalid instance")?;
                if let Some(path) = &d.path {
                    write!(f, " in {}", path.display())?;
                }
                if let Some(line) = d.line {
                    write!(f, " at line {line}")?;
                }
                write!(f, ": {} ({:?})", d.reason, d.input)
            }
            Error::Io { operation, .. } => write!(f, "I/O error {operation}"),
            Error::File { path, .. } => write!(f, "I/O error on {}", path.display()),
            Error::Http(h) => {
                write!(f, "{} {} on {}: ", h.backend, h.endpoint, h.server)?;
                match (h.kind, h.status) {
                    (HttpErrorKind::Status, Some(status)) => write!(f, "status {status}")?,
                    (kind, _) => write!(f, "{}", kind.as_str())?,
                }
                if let Some(code) = h.code {
                    write!(f, ", code {code}")?;
                }
                match &h.excerpt {
                    Some(excerpt) => write!(f, " ({excerpt:?})"),
                    None => Ok(()),
                }
            }
            Error::ZooKeeper(zk) => {
                write!(
                    f,
                    "zookeeper {} {:?}: {}",
                    zk.operation,
                    zk.path,
                    zk.kind.as_str()
                )?;
                match zk.code {
                    Some(code) => write!(f, " (code {code})"),
                    None => Ok(()),
                }
            }
            Error::Dns(dns) => {
                write!(
                    f,
                    "dns {} {:?}: {}",
                    dns.record_type,
                    dns.name,
                    dns.kind.as_str()
                )?;
                if let Some(rcode) = dns.rcode {
                    write!(f, " (code {rcode})")?;
                }
                match dns.server {
                    Some(server) => write!(f, " from {server}"),
                    None => Ok(()),
                }
            }
            Error::Factory(_) => f.write_str("endpoint factory failed"),
            Error::Invalidated(_) => {
                f.write_str("endpoints invalidated after registry errors outlasted the timeout")
            }
            Error::Panicked { component, message } => {
                write!(f, "{component} thread panicked: {message}")
            }
        }
    }
}

impl HttpErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            HttpErrorKind::Connect => "cannot connect",
            HttpErrorKind::Timeout => "timed out",
            HttpErrorKind::Tls => "TLS handshake failed",
            HttpErrorKind::Status => "error status",
            HttpErrorKind::Decode => "cannot decode the body",
            HttpErrorKind::BodyTooLarge => "body too large",
            HttpErrorKind::Cancelled => "cancelled by stop",
            HttpErrorKind::Transport => "transport error",
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::File { source, .. } => Some(source),
            Error::Factory(source) => Some(&**source),
            Error::Http(http) => http.source.as_deref().map(|s| s as _),
            Error::Dns(dns) => dns.source.as_deref().map(|s| s as _),
            Error::Invalidated(source) => Some(&**source),
            Error::Timeout {
                cause: Some(cause), ..
            } => Some(&**cause),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 40,
            "Error grew to {} bytes",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn source_is_wired() {
        let io = Error::Io {
            operation: "reading",
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"),
        };
        assert!(io.is_timeout());
        assert_eq!(io.source().unwrap().to_string(), "slow");

        let wrapped = Error::Invalidated(Arc::new(io));
        assert!(wrapped.is_timeout());
        assert!(wrapped.is_invalidated());
        assert!(wrapped.source().unwrap().to_string().contains("reading"));

        let f = Error::factory("refused");
        assert_eq!(f.source().unwrap().to_string(), "refused");
        assert!(Error::NoEndpoints.source().is_none());
    }

    #[test]
    fn display_names_the_position() {
        let e: Error = InvalidInstance::new("nope", "missing port")
            .with_path(Path::new("/tmp/x"))
            .with_line(3)
            .into();
        let text = e.to_string();
        assert!(
            text.contains("/tmp/x") && text.contains("line 3") && text.contains("missing port")
        );
        assert!(e.is_invalid_input());
    }

    #[test]
    fn invalid_input_is_cut_to_200_characters_on_a_boundary() {
        let first_199 = |s: &str| s.chars().take(199).collect::<String>();
        let mixed = "x\0€".repeat(100);
        for (input, kept) in [
            ("a".repeat(200), "a".repeat(200)),
            ("a".repeat(201), format!("{}…", "a".repeat(199))),
            ("€".repeat(500), format!("{}…", "€".repeat(199))),
            (mixed.clone(), format!("{}…", first_199(&mixed))),
        ] {
            let details = InvalidInstance::new(&input, "why");
            assert_eq!(&*details.input, kept.as_str());
            assert!(details.input.chars().count() <= 200);
        }
    }

    #[test]
    fn http_error_builds_outside_a_struct_literal() {
        let e: Error = HttpError::new("consul", "GET /x", "http://a", HttpErrorKind::Status)
            .with_status(503)
            .with_excerpt("busy")
            .with_source("overloaded")
            .into();
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.source().unwrap().to_string(), "overloaded");
        assert!(e.to_string().contains("status 503"), "{e}");
    }
}
