//! The strict `host:port` grammar of [`Instance::parse`](super::Instance::parse): one
//! spelling per address, so that two strings never name the same endpoint as two
//! different instances.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why an address was refused, for [`InvalidInstance::reason`](crate::InvalidInstance).
pub(super) type Reason = Cow<'static, str>;

/// The longest host, in bytes: DNS's limit for a name in text form.
pub(crate) const MAX_HOST: usize = 253;
/// The longest label of a name, in bytes (DNS).
const MAX_LABEL: usize = 63;

/// Checks `addr` against the grammar (see [`Instance::parse`](super::Instance::parse)).
pub(super) fn check(addr: &str) -> Result<(), Reason> {
    let (host, port, bracketed) = split(addr)?;
    check_port(port)?;
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.len() > MAX_HOST {
        return Err(format!(
            "the host is {} bytes long, more than {MAX_HOST}",
            host.len()
        )
        .into());
    }
    if bracketed {
        check_ipv6(host)
    } else if host.contains(':') {
        Err("a host with `:` must be an IPv6 address in brackets: `[2001:db8::1]:80`".into())
    } else {
        check_name(host)
    }
}

/// Host (without brackets), port text, and whether the host was in brackets.
fn split(addr: &str) -> Result<(&str, &str, bool), Reason> {
    if let Some(rest) = addr.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("`[` without a closing `]`".into());
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err("expected `:port` right after `]`".into());
        };
        return Ok((host, port, true));
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => Ok((host, port, false)),
        None => Err("expected `host:port`: the port is missing".into()),
    }
}

/// The port, when `port` is its one spelling: ASCII digits, no sign, no leading zero,
/// 1..=65535.
pub(super) fn port(port: &str) -> Option<u16> {
    check_port(port).ok()
}

fn check_port(port: &str) -> Result<u16, Reason> {
    if port.is_empty() {
        return Err("the port after `:` is empty".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port must be ASCII digits only (no sign, no space)".into());
    }
    if port.len() > 1 && port.starts_with('0') {
        return Err("the port must not have leading zeros".into());
    }
    // At most 5 digits fit in a u32 without overflow and cover 65535.
    match port.parse::<u32>() {
        Ok(n @ 1..=65535) if port.len() <= 5 => Ok(n as u16),
        _ => Err("the port must be in 1..=65535".into()),
    }
}

/// Between brackets: an IPv6 address in canonical form (RFC 5952, as `Ipv6Addr`
/// prints it), then optionally `%zone`.
fn check_ipv6(host: &str) -> Result<(), Reason> {
    let (ip, zone) = match host.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (host, None),
    };
    let Ok(parsed) = ip.parse::<Ipv6Addr>() else {
        return Err(if ip.parse::<Ipv4Addr>().is_ok() {
            "brackets hold only IPv6 addresses: write an IPv4 address without them".into()
        } else {
            "not an IPv6 address between the brackets".into()
        });
    };
    let canonical = parsed.to_string();
    if canonical != ip {
        return Err(format!(
            "the IPv6 address is not in canonical form (RFC 5952): write `[{canonical}]`"
        )
        .into());
    }
    match zone {
        Some("") => Err("the IPv6 zone after `%` is empty".into()),
        Some(zone) => match zone.chars().find(|&c| !is_name_char(c)) {
            Some(c) => Err(format!(
                "{c:?} is not allowed in an IPv6 zone (ASCII letters, digits, `-`, `_`, `.`)"
            )
            .into()),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// An IPv4 address in dotted-quad form, or a name: ASCII letters, digits, `-`, `_` and
/// `.`, non-empty labels of at most 63 bytes, an optional final `.`.
///
/// A name whose last label is all digits must be an IPv4 address: resolvers read
/// `010.0.0.1`, `127.1` or `2130706433` as addresses in other spellings (octal, short
/// forms, one number), and no top-level domain is all digits, so such a host is either
/// a second spelling of an address or a typo.
fn check_name(host: &str) -> Result<(), Reason> {
    if let Some(c) = host.chars().find(|&c| !is_name_char(c)) {
        return Err(format!(
            "{c:?} is not allowed in a host (ASCII letters, digits, `-`, `_`, `.`; IPv6 in brackets)"
        )
        .into());
    }
    let labels = host.strip_suffix('.').unwrap_or(host);
    let mut last = "";
    for label in labels.split('.') {
        if label.is_empty() {
            return Err("the host has an empty label (a leading `.` or `..`)".into());
        }
        if label.len() > MAX_LABEL {
            return Err(format!("a label of the host is longer than {MAX_LABEL} bytes").into());
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) && host.parse::<Ipv4Addr>().is_err() {
        return Err(
            "a host ending in a numeric label must be an IPv4 address in dotted-quad form \
             without leading zeros (e.g. `10.0.0.1`)"
                .into(),
        );
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The host (IPv6 without brackets, zone kept) and port of an address, without checking
/// the host: for the accessors of an instance made by [`Instance::new`](super::Instance::new).
pub(super) fn host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port_text, bracketed) = split(addr).ok()?;
    if !bracketed && host.contains(':') {
        return None;
    }
    Some((host, port(port_text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        let name253 = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(name253.len(), 253);
        let accepted = [
            "10.0.0.1:80",
            "0.0.0.0:1",
            "255.255.255.255:65535",
            "localhost:8080",
            "api-1.svc.example.test:443",
            "api_v2.internal:9000",
            "svc.cluster.local.:80",
            "1host:80",
            "host-10:80",
            "[::1]:80",
            "[2001:db8::1]:443",
            "[fe80::1%eth0]:80",
            "[fe80::1%25]:80",
            "[::ffff:10.0.0.1]:80",
            &format!("{name253}:80"),
        ];
        for addr in accepted {
            assert_eq!(check(addr), Ok(()), "{addr}");
        }
    }

    #[test]
    fn refused() {
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        assert_eq!(long.len(), 254);
        let refused: &[(&str, &str)] = &[
            ("", "port is missing"),
            ("host", "port is missing"),
            ("host:", "empty"),
            (":80", "host is empty"),
            ("host:0", "1..=65535"),
            ("host:65536", "1..=65535"),
            ("host:99999999999", "1..=65535"),
            ("host:+80", "ASCII digits"),
            ("host:-1", "ASCII digits"),
            ("host:0080", "leading zeros"),
            ("host:00", "leading zeros"),
            ("host: 80", "ASCII digits"),
            ("host:8o", "ASCII digits"),
            ("host:\u{0663}", "ASCII digits"),
            ("::1:80", "in brackets"),
            ("2001:db8::1:80", "in brackets"),
            ("a:b:80", "in brackets"),
            ("[::1]", "`:port`"),
            ("[::1]80", "`:port`"),
            ("[::1:80", "closing `]`"),
            ("[10.0.0.1]:80", "only IPv6"),
            ("[10.0.0.1:9999]:80", "not an IPv6"),
            ("[host]:80", "not an IPv6"),
            ("[]:80", "host is empty"),
            ("[0:0::1]:80", "write `[::1]`"),
            ("[FE80::1]:80", "write `[fe80::1]`"),
            ("[fe80::1%]:80", "zone"),
            ("[fe80::1%eth 0]:80", "zone"),
            ("10.0.0.1 evil:80", "' '"),
            ("host\0:80", "'\\0'"),
            ("ho\nst:80", "'\\n'"),
            ("ho\tst:80", "'\\t'"),
            ("ho\u{7f}st:80", "'\\u{7f}'"),
            ("hôst:80", "'ô'"),
            ("host/x:80", "'/'"),
            ("user@host:80", "'@'"),
            ("ho%st:80", "'%'"),
            ("ho]st:80", "']'"),
            (".host:80", "empty label"),
            ("a..b:80", "empty label"),
            (".:80", "empty label"),
            (&format!("{}.test:80", "x".repeat(64)), "63"),
            (&format!("{long}:80"), "254 bytes"),
            ("010.0.0.1:80", "dotted-quad"),
            ("10.0.0.256:80", "dotted-quad"),
            ("127.1:80", "dotted-quad"),
            ("2130706433:80", "dotted-quad"),
            ("10.0.0.1.:80", "dotted-quad"),
        ];
        for &(addr, why) in refused {
            match check(addr) {
                Ok(()) => panic!("{addr:?} was accepted"),
                Err(reason) => assert!(reason.contains(why), "{addr:?}: {reason}"),
            }
        }
    }

    #[test]
    fn one_spelling_per_port() {
        assert_eq!(port("80"), Some(80));
        for other in ["+80", "080", "0080", " 80", "80 ", "0"] {
            assert_eq!(port(other), None, "{other:?}");
        }
    }

    #[test]
    fn host_port_does_not_check_the_host() {
        assert_eq!(host_port("[fe80::1%eth0]:80"), Some(("fe80::1%eth0", 80)));
        assert_eq!(host_port("a b:80"), Some(("a b", 80)));
        assert_eq!(host_port("a:0080"), None);
        assert_eq!(host_port("::1:80"), None);
    }
}
