//! TLS for the HTTP backends (feature `tls`, on by default): [`TlsConfig`] says which
//! certificate authorities a backend trusts for an `https://` address, and which client
//! certificate it presents. One `TlsConfig` serves every HTTP backend (Consul now,
//! etcd and Eureka later); both types are also at the crate root.
//!
//! TLS is rustls (with the *ring* provider), through ureq. Without the `tls` feature
//! none of it is built, and an HTTP backend's `build()` refuses an `https://` address
//! with [`Error::InvalidConfig`] naming the feature, so a plain-HTTP deployment compiles
//! no cryptography at all.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

use crate::{Error, Result};

/// TLS settings for an `https://` registry address: the CAs to trust and an optional
/// client certificate (for servers started with `verify_incoming = true`).
///
/// Built with [`TlsConfig::builder`] from PEM bytes or PEM files; files are read and
/// every PEM block is parsed in [`TlsConfigBuilder::build`], so a bad file is reported
/// when the client is configured, not at the first request. Cloning is cheap (the
/// parsed certificates are shared). `Debug` never shows the private key.
///
/// Without a CA, the Mozilla roots bundled with `webpki-roots` are trusted, which suits a
/// registry behind a public certificate; a registry with its own CA (Consul's
/// `consul tls ca create`, an internal PKI) needs [`TlsConfigBuilder::ca_pem`] or
/// [`TlsConfigBuilder::ca_file`].
///
/// ```no_run
/// use waypost::tls::TlsConfig;
/// let tls = TlsConfig::builder()
///     .ca_file("/etc/consul.d/consul-agent-ca.pem")
///     .client_cert_files("/etc/waypost/client.pem", "/etc/waypost/client-key.pem")
///     .build()?;
/// # Ok::<(), waypost::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// The CAs to trust; none: the bundled roots.
    pub(crate) roots: Option<Arc<Vec<Certificate<'static>>>>,
    pub(crate) client: Option<ClientCert>,
}

/// Builds a [`TlsConfig`]; see [`TlsConfig::builder`].
#[derive(Default)]
pub struct TlsConfigBuilder {
    cas: Vec<Source>,
    client: Option<(Source, Source)>,
}

enum Source {
    Pem(Vec<u8>),
    File(PathBuf),
}

impl TlsConfig {
    /// Starts a configuration: no custom CA (the bundled Mozilla roots), no client
    /// certificate.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// True when a client certificate is configured.
    pub fn has_client_cert(&self) -> bool {
        self.client.is_some()
    }

    /// How many CA certificates are trusted instead of the bundled roots (0: the
    /// bundled roots).
    pub fn ca_count(&self) -> usize {
        self.roots.as_ref().map_or(0, |r| r.len())
    }
}

impl TlsConfigBuilder {
    /// Trusts the CA certificate(s) in `pem` (one or more `CERTIFICATE` blocks) instead
    /// of the bundled roots. May be called more than once; every CA given is trusted.
    /// Default: none, i.e. the bundled Mozilla roots.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.cas.push(Source::Pem(pem.into()));
        self
    }

    /// Like [`ca_pem`](Self::ca_pem), reading the PEM from `path` at `build()`.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.cas.push(Source::File(path.as_ref().to_path_buf()));
        self
    }

    /// Presents the client certificate chain in `cert_pem` with the private key in
    /// `key_pem` (PKCS#8, PKCS#1 or SEC1). Needed when the server verifies clients
    /// (Consul's `verify_incoming`). Default: no client certificate.
    pub fn client_cert_pem(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client = Some((Source::Pem(cert_pem.into()), Source::Pem(key_pem.into())));
        self
    }

    /// Like [`client_cert_pem`](Self::client_cert_pem), reading both files at `build()`.
    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client = Some((
            Source::File(cert.as_ref().to_path_buf()),
            Source::File(key.as_ref().to_path_buf()),
        ));
        self
    }

    /// Reads the files and parses every PEM block.
    ///
    /// Errors: [`Error::File`] for a file that cannot be read, [`Error::InvalidConfig`]
    /// for PEM without a certificate (field `tls.ca` or `tls.client_cert`) or a client
    /// certificate without exactly one private key (`tls.client_key`).
    pub fn build(self) -> Result<TlsConfig> {
        let mut roots = Vec::new();
        for source in &self.cas {
            let pem = source.read()?;
            let (certs, _) = parse("tls.ca", &pem)?;
            if certs.is_empty() {
                return Err(Error::invalid_config("tls.ca", "no CERTIFICATE block"));
            }
            roots.extend(certs);
        }
        let client = match &self.client {
            None => None,
            Some((cert, key)) => {
                let (chain, _) = parse("tls.client_cert", &cert.read()?)?;
                if chain.is_empty() {
                    return Err(Error::invalid_config(
                        "tls.client_cert",
                        "no CERTIFICATE block",
                    ));
                }
                let (_, mut keys) = parse("tls.client_key", &key.read()?)?;
                if keys.len() != 1 {
                    return Err(Error::invalid_config(
                        "tls.client_key",
                        format!("expected one private key, found {}", keys.len()),
                    ));
                }
                Some(ClientCert::new_with_certs(&chain, keys.remove(0)))
            }
        };
        Ok(TlsConfig {
            roots: (!self.cas.is_empty()).then(|| Arc::new(roots)),
            client,
        })
    }
}

impl Source {
    fn read(&self) -> Result<Vec<u8>> {
        match self {
            Source::Pem(pem) => Ok(pem.clone()),
            Source::File(path) => std::fs::read(path).map_err(|source| Error::File {
                path: Arc::from(path.as_path()),
                source,
            }),
        }
    }
}

type Parsed = (Vec<Certificate<'static>>, Vec<PrivateKey<'static>>);

fn parse(field: &'static str, pem: &[u8]) -> Result<Parsed> {
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        // The parser's message names the PEM problem, never key material.
        match item.map_err(|e| Error::invalid_config(field, format!("bad PEM: {e}")))? {
            PemItem::Certificate(cert) => certs.push(cert),
            PemItem::PrivateKey(key) => keys.push(key),
            _ => {}
        }
    }
    Ok((certs, keys))
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_count", &self.ca_count())
            .field("client_cert", &self.has_client_cert())
            .finish()
    }
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigBuilder")
            .field("cas", &self.cas.len())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_keyless_pem_is_refused() {
        let err = TlsConfig::builder().ca_pem("hello").build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "tls.ca",
                    ..
                }
            ),
            "{err}"
        );
        let err = TlsConfig::builder()
            .ca_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{err}");
        let err = TlsConfig::builder()
            .client_cert_pem("nope", "nope")
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "tls.client_cert",
                    ..
                }
            ),
            "{err}"
        );
    }
}
