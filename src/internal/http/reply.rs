//! [`Reply`]: an answer of any status, its body read; status checks and JSON decoding
//! into typed errors. And [`encode`] for path segments and query values.

use serde::de::DeserializeOwned;
use ureq::http::HeaderMap;

use super::error::Site;
use crate::{Error, HttpErrorKind, Result};

/// An answer: any status, with the body read under the limit (or, from
/// [`Http::call_json`](super::Http::call_json), its head only: the body was decoded as
/// it arrived).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) backend: &'static str,
    pub(super) method: &'static str,
    pub(super) path: Box<str>,
    pub(super) server: Box<str>,
    /// Where the credential values to mask in errors are.
    pub(super) settings: std::sync::Arc<super::HttpSettings>,
    /// The renewable credential the request carried, masked in errors too.
    pub(super) token: Option<super::Secret>,
}

impl Error {
    /// Adds the status of an answer whose body could not be read.
    pub(super) fn with_status(mut self, status: u16) -> Error {
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
            secrets: &self.settings.headers,
            token: self.token.as_ref(),
            hook: self.settings.error_hook,
        }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn body(&self) -> &[u8] {
        &self.body
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
        self.json_type()?;
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(&self.body, Box::new(e)))
    }

    /// Ok unless the answer names a content type that is not JSON (none is taken as
    /// JSON).
    pub(super) fn json_type(&self) -> Result<()> {
        let Some(content_type) = self.header("content-type") else {
            return Ok(());
        };
        if content_type.to_ascii_lowercase().contains("json") {
            return Ok(());
        }
        let why = format!("content type {content_type:?} is not JSON");
        Err(self.decode_error(&self.body, why.into()))
    }

    /// An [`HttpErrorKind::Decode`] error quoting the start of `body`.
    pub(super) fn decode_error(&self, body: &[u8], source: crate::BoxError) -> Error {
        self.site().error(
            HttpErrorKind::Decode,
            Some(self.status),
            Some(body),
            Some(source),
        )
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
