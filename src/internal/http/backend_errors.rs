//! Each backend's error bodies, decoded into what an [`HttpError`](crate::HttpError)
//! keeps: the backend's own code, its message, and whether the answer says "this
//! server cannot serve now" (so the call moves on to the next server).

use serde::Deserialize;

/// What an error body says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BackendError {
    /// The backend's own code (etcd: the gRPC code).
    pub(crate) code: Option<i64>,
    /// The backend's message, in place of a raw excerpt of the body.
    pub(crate) message: Option<Box<str>>,
    /// The server cannot serve now (etcd: no leader, a member shutting down): the next
    /// server should be asked.
    pub(crate) unavailable: bool,
}

/// How one backend reads its error bodies: given the status and the body.
pub(crate) type ErrorHook = fn(u16, &[u8]) -> BackendError;

/// No decoding: the body's excerpt is the message.
pub(crate) fn plain(_status: u16, _body: &[u8]) -> BackendError {
    BackendError::default()
}

/// Consul answers errors in plain text ("rpc error making call: ..."): the trimmed
/// first line is its message; it has no codes, and its 500s are answers.
#[cfg_attr(not(feature = "consul"), allow(dead_code))]
pub(crate) fn consul(_status: u16, body: &[u8]) -> BackendError {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    BackendError {
        message: line.map(Into::into),
        ..BackendError::default()
    }
}

/// gRPC's "unavailable".
const GRPC_UNAVAILABLE: i64 = 14;
/// gRPC's "unknown", which etcd's gateway uses for a request that timed out inside the
/// cluster (no leader to answer it).
const GRPC_UNKNOWN: i64 = 2;

/// etcd's gRPC gateway: a unary error body `{"error","message","code"}`, or a watch
/// stream's error line `{"error":{"grpc_code","http_code","message","http_status"}}`.
/// Unavailable: code 14, or code 2 with "context deadline exceeded".
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
pub(crate) fn etcd(_status: u16, body: &[u8]) -> BackendError {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        Stream {
            error: StreamError,
        },
        Unary {
            error: Option<String>,
            message: Option<String>,
            code: Option<i64>,
        },
    }
    #[derive(Deserialize)]
    struct StreamError {
        grpc_code: Option<i64>,
        message: Option<String>,
    }
    let (code, message) = match serde_json::from_slice::<Body>(body) {
        Ok(Body::Stream { error }) => (error.grpc_code, error.message),
        Ok(Body::Unary {
            error,
            message,
            code,
        }) => (code, message.or(error)),
        Err(_) => return consul(_status, body),
    };
    let unavailable = code == Some(GRPC_UNAVAILABLE)
        || (code == Some(GRPC_UNKNOWN)
            && message
                .as_deref()
                .is_some_and(|m| m.contains("context deadline exceeded")));
    BackendError {
        code,
        message: message.map(Into::into),
        unavailable,
    }
}

/// Eureka (Spring's error answers): `{"status","error","message"}` JSON; a servlet
/// container's HTML error page, by its `<title>`; or text.
#[cfg_attr(not(feature = "eureka"), allow(dead_code))]
pub(crate) fn eureka(status: u16, body: &[u8]) -> BackendError {
    #[derive(Deserialize)]
    struct Body {
        error: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => BackendError {
            message: b
                .message
                .filter(|m| !m.is_empty())
                .or(b.error)
                .map(Into::into),
            ..BackendError::default()
        },
        Err(_) => match html_title(body) {
            Some(title) => BackendError {
                message: Some(title),
                ..BackendError::default()
            },
            None => consul(status, body),
        },
    }
}

/// The `<title>` of an HTML page (Tomcat's and Jetty's error pages name the status
/// there), looked for in its first 4 KiB.
#[cfg_attr(not(feature = "eureka"), allow(dead_code))]
fn html_title(body: &[u8]) -> Option<Box<str>> {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    // ASCII lower-casing keeps every byte offset of `text`.
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = text[start..end].trim();
    (!title.is_empty()).then(|| title.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_unary_and_stream_errors() {
        let compacted = br#"{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}"#;
        let e = etcd(400, compacted);
        assert_eq!(e.code, Some(11));
        assert!(e.message.unwrap().contains("compacted"));
        assert!(!e.unavailable);

        let token = br#"{"error":"etcdserver: invalid auth token","code":16}"#;
        let e = etcd(401, token);
        assert_eq!(
            (e.code, e.message.as_deref()),
            (Some(16), Some("etcdserver: invalid auth token"))
        );

        let closing = br#"{"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}}"#;
        let e = etcd(200, closing);
        assert_eq!((e.code, e.unavailable), (Some(14), true));
        assert_eq!(e.message.as_deref(), Some("transport is closing"));

        let no_leader = br#"{"error":"context deadline exceeded","code":2}"#;
        assert!(etcd(500, no_leader).unavailable);
        let bad_json = br#"{"error":"json: cannot unmarshal string","code":2}"#;
        assert!(!etcd(400, bad_json).unavailable);

        let html = b"<html>\n<body>502 Bad Gateway</body></html>";
        assert_eq!(etcd(502, html).code, None);
    }

    #[test]
    fn consul_and_eureka_messages() {
        let e = consul(500, b"\n  rpc error making call: No cluster leader\nmore\n");
        assert_eq!(
            e.message.as_deref(),
            Some("rpc error making call: No cluster leader")
        );
        assert_eq!((e.code, e.unavailable), (None, false));
        assert_eq!(consul(500, b"  \n").message, None);

        let spring = br#"{"timestamp":"2026-11-30T17:00:00.000+00:00","status":500,"error":"Internal Server Error","message":"","path":"/eureka/apps/X"}"#;
        assert_eq!(
            eureka(500, spring).message.as_deref(),
            Some("Internal Server Error")
        );
        assert_eq!(eureka(404, b"").message, None);
        let tomcat = "<!doctype html><html lang=\"en\"><head><title>HTTP Status 500 – \
                      Internal Server Error</title></head><body><h1>HTTP Status 500</h1></body></html>";
        assert_eq!(
            eureka(500, tomcat.as_bytes()).message.as_deref(),
            Some("HTTP Status 500 – Internal Server Error")
        );
        assert_eq!(
            eureka(502, b"<html><TITLE></TITLE>\n502 Bad Gateway</html>")
                .message
                .as_deref(),
            Some("<html><TITLE></TITLE>")
        );
    }
}
