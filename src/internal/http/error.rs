//! Turning what ureq reports into waypost's typed [`HttpError`].

use std::io;

use super::Secret;
use super::backend_errors::ErrorHook;
use crate::{Error, HttpError, HttpErrorKind};

/// Where a failure happened: names the call without credentials (no query string, no
/// headers).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) backend: &'static str,
    pub(crate) method: &'static str,
    pub(crate) path: &'a str,
    pub(crate) server: &'a str,
    /// The credential headers, whose values are masked in anything an error keeps.
    pub(crate) secrets: &'a [(&'static str, Secret)],
    /// The renewable credential as it was sent, masked too.
    pub(crate) token: Option<&'a Secret>,
    /// Decodes the backend's error bodies.
    pub(crate) hook: ErrorHook,
}

/// How many characters of a body an error keeps.
const EXCERPT_CHARS: usize = 200;

/// How many characters of a source error's message an error keeps: a decoder's message
/// quotes the bad value, which may be megabytes.
const SOURCE_CHARS: usize = 300;

/// What a credential's value becomes in an excerpt or a message.
const MASK: &str = "<redacted>";

impl Site<'_> {
    pub(crate) fn error(
        &self,
        kind: HttpErrorKind,
        status: Option<u16>,
        body: Option<&[u8]>,
        source: Option<crate::BoxError>,
    ) -> Error {
        // A body the backend explains (an error status) gives its message and code; a
        // body that failed to decode is quoted as it is.
        let decoded = match (kind, body) {
            (HttpErrorKind::Status, Some(body)) => (self.hook)(status.unwrap_or(0), body),
            _ => Default::default(),
        };
        let excerpt = match &decoded.message {
            Some(message) => excerpt(message.as_bytes(), self.secrets, self.token),
            None => body.and_then(|b| excerpt(b, self.secrets, self.token)),
        };
        Error::Http(Box::new(HttpError {
            backend: self.backend,
            endpoint: format!("{} {}", self.method, self.path).into(),
            server: self.server.into(),
            kind,
            status,
            excerpt,
            code: decoded.code,
            source: source.map(|s| capped(s, self.secrets, self.token)),
        }))
    }

    /// Maps a ureq error. `cancelled` is true when `stop()` shut the agent down, which
    /// makes any failure a cancellation, whatever ureq saw.
    pub(crate) fn transport_error(&self, err: ureq::Error, cancelled: bool) -> Error {
        let kind = if cancelled {
            HttpErrorKind::Cancelled
        } else {
            classify(&err, self.server.starts_with("https:"))
        };
        self.error(kind, None, None, Some(Box::new(err)))
    }
}

fn classify(err: &ureq::Error, https: bool) -> HttpErrorKind {
    use ureq::Error as U;
    match err {
        U::Timeout(_) => HttpErrorKind::Timeout,
        U::HostNotFound | U::ConnectionFailed => HttpErrorKind::Connect,
        U::BodyExceedsLimit(_) => HttpErrorKind::BodyTooLarge,
        U::Tls(_) | U::TlsRequired => HttpErrorKind::Tls,
        #[cfg(feature = "tls")]
        U::Pem(_) | U::Rustls(_) => HttpErrorKind::Tls,
        U::Io(e) if is_lookup_failure(e) => HttpErrorKind::Connect,
        U::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => HttpErrorKind::Connect,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HttpErrorKind::Timeout,
            // rustls reports a failed handshake or a bad record as InvalidData wrapping
            // its own error; over https nothing else in ureq uses that kind.
            io::ErrorKind::InvalidData if https => HttpErrorKind::Tls,
            _ => HttpErrorKind::Transport,
        },
        _ => HttpErrorKind::Transport,
    }
}

/// A failed name lookup. ureq passes on the standard library's error, whose kind is not
/// a stable one to match on; its message is ("failed to lookup address information: ...",
/// from `ToSocketAddrs` on Unix). `HttpErrorKind::Connect` covers DNS, so this is one.
fn is_lookup_failure(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
        || err
            .to_string()
            .starts_with("failed to lookup address information")
}

/// True for failures that say "this server cannot answer now", so the next server of
/// the list is tried: a failed connect or name lookup, and a timeout of any phase (a
/// hung server). A reset or a cut answer is not one: the server got the request.
pub(crate) fn is_unavailable(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Timeout(_) => true,
        other => matches!(
            classify(other, false),
            HttpErrorKind::Connect | HttpErrorKind::Timeout
        ),
    }
}

/// True for statuses that say "this server cannot answer now" (a proxy or a node that
/// lost its cluster): 502, 503, 504. A 500 is an answer (Consul's 500s say what is
/// wrong with the request).
pub(crate) fn is_unavailable_status(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// `source` with its message masked and cut to [`SOURCE_CHARS`] when it quotes a
/// credential or is long; kept as it is (its type and chain intact) otherwise.
fn capped(
    source: crate::BoxError,
    secrets: &[(&'static str, Secret)],
    token: Option<&Secret>,
) -> crate::BoxError {
    let message = source.to_string();
    let masked = mask(&message, secrets, token);
    if masked == message && message.chars().count() <= SOURCE_CHARS {
        return source;
    }
    let mut cut: String = masked.chars().take(SOURCE_CHARS).collect();
    if masked.chars().count() > SOURCE_CHARS {
        cut.push('…');
    }
    cut.into()
}

/// `text` with every credential value replaced by [`MASK`].
fn mask(text: &str, secrets: &[(&'static str, Secret)], token: Option<&Secret>) -> String {
    let mut out = text.to_owned();
    for Secret(value) in secrets.iter().map(|(_, s)| s).chain(token) {
        if !value.is_empty() && out.contains(&**value) {
            out = out.replace(&**value, MASK);
        }
    }
    out
}

/// How many bytes of a body [`excerpt`] reads: enough that a credential cut by the
/// window is still whole when masked. One more byte tells that the body goes on.
pub(crate) fn excerpt_window(secrets: &[(&'static str, Secret)], token: Option<&Secret>) -> usize {
    let longest = (secrets.iter().map(|(_, s)| s).chain(token))
        .map(|Secret(v)| v.len())
        .max()
        .unwrap_or(0);
    EXCERPT_CHARS * 4 + longest
}

/// The first characters of `body` as text, credentials masked, control characters
/// replaced, trimmed.
pub(crate) fn excerpt(
    body: &[u8],
    secrets: &[(&'static str, Secret)],
    token: Option<&Secret>,
) -> Option<Box<str>> {
    let window = &body[..body.len().min(excerpt_window(secrets, token))];
    let text = mask(&String::from_utf8_lossy(window), secrets, token);
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS || body.len() > EXCERPT_CHARS * 4 {
        out.push('…');
    }
    let trimmed = out.trim();
    (!trimmed.is_empty()).then(|| trimmed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt(b"  \n", &[], None).as_deref(), None);
        assert_eq!(
            excerpt(b"<html>\r\n502</html>", &[], None).as_deref(),
            Some("<html>  502</html>")
        );
        let long = vec![b'x'; 10_000];
        let e = excerpt(&long, &[], None).unwrap();
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn classifies_common_failures() {
        let refused = ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(is_unavailable(&refused));
        assert_eq!(classify(&refused, false), HttpErrorKind::Connect);
        let lookup = ureq::Error::Io(io::Error::other(
            "failed to lookup address information: Name or service not known",
        ));
        assert_eq!(classify(&lookup, false), HttpErrorKind::Connect);
        assert!(is_unavailable(&lookup));
        assert!(is_unavailable(&ureq::Error::Timeout(
            ureq::Timeout::RecvResponse
        )));
        let eof = ureq::Error::Io(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(!is_unavailable(&eof));
        assert_eq!(classify(&eof, true), HttpErrorKind::Transport);
        let bad = ureq::Error::Io(io::Error::from(io::ErrorKind::InvalidData));
        assert_eq!(classify(&bad, true), HttpErrorKind::Tls);
        assert_eq!(
            classify(&ureq::Error::BodyExceedsLimit(3), false),
            HttpErrorKind::BodyTooLarge
        );
    }
}
