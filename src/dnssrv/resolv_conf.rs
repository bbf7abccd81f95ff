//! resolv.conf parsing (stub).
