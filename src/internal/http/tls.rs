//! What a [`TlsConfig`] means to ureq. Kept beside the agent that uses it, so the
//! public type in `crate::tls` names no ureq setting.

use ureq::tls::RootCerts;

use crate::TlsConfig;

impl TlsConfig {
    /// The ureq settings these stand for.
    pub(crate) fn to_ureq(&self) -> ureq::tls::TlsConfig {
        let roots = match &self.roots {
            Some(certs) => RootCerts::Specific(certs.clone()),
            None => RootCerts::WebPki,
        };
        ureq::tls::TlsConfig::builder()
            .root_certs(roots)
            .client_cert(self.client.clone())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_trusts_the_bundled_roots() {
        let tls = TlsConfig::builder().build().unwrap();
        assert_eq!(tls.ca_count(), 0);
        assert!(!tls.has_client_cert());
        assert!(matches!(tls.to_ureq().root_certs(), RootCerts::WebPki));
    }
}
