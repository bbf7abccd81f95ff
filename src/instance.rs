//! `Instance`: one running copy of a service, as a registry names it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

mod addr;

/// One instance of a service: the address the registry gives (`host:port`, a DNS name
/// and port, `[::1]:80`, ...) plus optional metadata.
///
/// Identity is the address string: equality, ordering and hashing look at nothing else,
/// so an instance whose metadata changes is still "the same instance" and keeps its
/// endpoint. Use [`Instance::same`] to compare metadata too.
///
/// The address is an `Arc<str>` and the metadata sits behind one `Arc`, so a plain
/// instance is one allocation and a clone is a reference-count increment.
///
/// # Checked and unchecked
///
/// Addresses from outside the program (a registry, a file, configuration) go through
/// [`Instance::parse`] or [`str::parse`] ([`FromStr`]), which accept exactly one
/// spelling of each address, so that two strings never name one endpoint as two
/// instances; every waypost backend builds its instances this way. [`Instance::new`],
/// [`Instance::builder`] and `From<&str>` take the string as given, for literals a
/// program trusts (tests, benchmarks, fixed lists).
///
/// ```
/// use waypost::Instance;
/// let a: Instance = "10.0.0.1:8080".parse()?;
/// assert_eq!(a.host(), Some("10.0.0.1"));
/// assert_eq!(a.port(), Some(8080));
/// let b = Instance::builder("10.0.0.2:8080").weight(3).zone("eu-1").tag("v2").build();
/// assert_eq!(b.metadata().unwrap().weight(), Some(3));
/// assert!(a < b);
///
/// for other_spelling in ["10.0.0.1:+8080", "10.0.0.1:08080", "010.0.0.1:8080"] {
///     assert!(other_spelling.parse::<Instance>().is_err());
/// }
/// # Ok::<(), waypost::Error>(())
/// ```
#[derive(Clone)]
pub struct Instance {
    addr: Arc<str>,
    meta: Option<Arc<Metadata>>,
}

/// What a registry knows about an instance beyond its address.
///
/// Every field is optional; registries fill what they have (Consul: tags, meta, weights,
/// node, datacenter; the file backend: weight, zone, tags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    weight: Option<u32>,
    zone: Option<Box<str>>,
    scheme: Option<Box<str>>,
    tags: Vec<Box<str>>,
    values: BTreeMap<Box<str>, Box<str>>,
}

impl Metadata {
    /// The instance's relative weight, if the registry gives one.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }
    /// The zone, rack or datacenter the instance runs in.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }
    /// The scheme to reach it (`http`, `https`, ...), if known.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }
    /// Tags in the order the registry gave them.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = &str> {
        self.tags.iter().map(|t| &**t)
    }
    /// True if the instance carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| &**t == tag)
    }
    /// A key/value the registry attached (Consul service meta, node name, ...).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|v| &**v)
    }
    /// Every key/value, sorted by key.
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (&**k, &**v))
    }
}

/// Builds an [`Instance`] with metadata; see [`Instance::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct InstanceBuilder {
    addr: Arc<str>,
    meta: Metadata,
}

impl InstanceBuilder {
    /// Sets the weight (default: none).
    pub fn weight(mut self, weight: u32) -> Self {
        self.meta.weight = Some(weight);
        self
    }
    /// Sets the zone (default: none).
    pub fn zone(mut self, zone: impl Into<Box<str>>) -> Self {
        self.meta.zone = Some(zone.into());
        self
    }
    /// Sets the scheme (default: none).
    pub fn scheme(mut self, scheme: impl Into<Box<str>>) -> Self {
        self.meta.scheme = Some(scheme.into());
        self
    }
    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<Box<str>>) -> Self {
        self.meta.tags.push(tag.into());
        self
    }
    /// Adds a key/value; a later value for the same key wins.
    pub fn value(mut self, key: impl Into<Box<str>>, value: impl Into<Box<str>>) -> Self {
        self.meta.values.insert(key.into(), value.into());
        self
    }
    /// The instance; metadata is left out entirely when nothing was set.
    pub fn build(self) -> Instance {
        let meta = (self.meta != Metadata::default()).then(|| Arc::new(self.meta));
        Instance {
            addr: self.addr,
            meta,
        }
    }
}

impl Instance {
    /// An instance with no metadata, its address taken as given: **not checked**.
    ///
    /// For literals the program trusts (tests, benchmarks, a fixed list in code). An
    /// address from outside the program goes through [`Instance::parse`] instead: an
    /// unchecked `host:80` and `host:080` would be two instances of one endpoint, and
    /// [`host`](Instance::host) and [`port`](Instance::port) return `None` for what
    /// they cannot read.
    pub fn new(addr: impl Into<Arc<str>>) -> Instance {
        Instance {
            addr: addr.into(),
            meta: None,
        }
    }

    /// An instance from a `host:port` address, checked strictly, so that each address
    /// has exactly one spelling. The same parser as [`str::parse`] ([`FromStr`]).
    ///
    /// - **Port:** ASCII digits only, without sign or leading zeros, in 1..=65535.
    /// - **Host**, one of:
    ///   - an IPv4 address in dotted-quad form without leading zeros (`10.0.0.1`);
    ///   - an IPv6 address in brackets, in the canonical form of RFC 5952 (lower case,
    ///     longest run of zeros compressed: `[2001:db8::1]`, not `[2001:DB8:0:0::1]`),
    ///     optionally with a zone of name characters (`[fe80::1%eth0]`). Brackets hold
    ///     only IPv6;
    ///   - a name of ASCII letters, digits, `-`, `_` and `.`: at most 253 bytes,
    ///     non-empty labels of at most 63 bytes, an optional final `.`. A name whose
    ///     last label is all digits must be an IPv4 address (resolvers read `010.0.0.1`,
    ///     `127.1` or `2130706433` as other spellings of addresses).
    ///
    /// Spaces, control characters, NUL and non-ASCII text are refused everywhere.
    ///
    /// Errors: [`Error::InvalidInstance`](crate::Error::InvalidInstance) naming the
    /// input (cut to 200 characters) and the reason.
    ///
    /// ```
    /// use waypost::Instance;
    /// assert_eq!(Instance::parse("[fe80::1%eth0]:80")?.host(), Some("fe80::1%eth0"));
    /// for refused in ["host:0", "[10.0.0.1]:80", "::1:80", "10.0.0.1 evil:80", "[0:0::1]:80"] {
    ///     assert!(Instance::parse(refused).unwrap_err().is_invalid_input());
    /// }
    /// # Ok::<(), waypost::Error>(())
    /// ```
    pub fn parse(addr: &str) -> crate::Result<Instance> {
        match addr::check(addr) {
            Ok(()) => Ok(Instance::new(addr)),
            Err(reason) => Err(crate::Error::invalid_instance(addr, reason)),
        }
    }

    /// Starts an instance with metadata. The address is taken as given, as by
    /// [`Instance::new`]; to check it, parse it first and pass
    /// [`addr_arc`](Instance::addr_arc) of the result (no copy).
    pub fn builder(addr: impl Into<Arc<str>>) -> InstanceBuilder {
        InstanceBuilder {
            addr: addr.into(),
            meta: Metadata::default(),
        }
    }

    /// The address as the registry gave it.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The shared address string, for holding on to it without a copy.
    pub fn addr_arc(&self) -> &Arc<str> {
        &self.addr
    }

    /// The host part of a `host:port` address (IPv6 without brackets, with its zone),
    /// if the address has that shape and a valid port. Always `Some` for a parsed
    /// instance.
    pub fn host(&self) -> Option<&str> {
        addr::host_port(&self.addr).map(|(h, _)| h)
    }

    /// The port of a `host:port` address, if it has one in its one valid spelling
    /// (see [`Instance::parse`]). Always `Some` for a parsed instance.
    pub fn port(&self) -> Option<u16> {
        addr::host_port(&self.addr).map(|(_, p)| p)
    }

    /// The metadata, if the registry gave any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.meta.as_deref()
    }

    /// Same address *and* same metadata (equality `==` looks at the address only).
    pub fn same(&self, other: &Instance) -> bool {
        (Arc::ptr_eq(&self.addr, &other.addr) || self.addr == other.addr)
            && match (&self.meta, &other.meta) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                _ => false,
            }
    }
}

impl PartialEq for Instance {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.addr, &other.addr) || self.addr == other.addr
    }
}
impl Eq for Instance {}
impl PartialOrd for Instance {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Instance {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.addr, &other.addr) {
            return Ordering::Equal;
        }
        self.addr.cmp(&other.addr)
    }
}
impl Hash for Instance {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.addr.hash(state)
    }
}
impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.meta {
            None => fmt::Debug::fmt(&*self.addr, f),
            Some(m) => f
                .debug_struct("Instance")
                .field("addr", &&*self.addr)
                .field("meta", m)
                .finish(),
        }
    }
}
impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}
impl FromStr for Instance {
    type Err = crate::Error;

    /// [`Instance::parse`].
    fn from_str(addr: &str) -> crate::Result<Instance> {
        Instance::parse(addr)
    }
}
/// Unchecked, as [`Instance::new`]: for trusted literals.
impl From<&str> for Instance {
    fn from(addr: &str) -> Instance {
        Instance::new(addr)
    }
}
/// Unchecked, as [`Instance::new`]: for trusted literals.
impl From<String> for Instance {
    fn from(addr: String) -> Instance {
        Instance::new(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        let v6 = Instance::new("[::1]:443");
        assert_eq!((v6.host(), v6.port()), (Some("::1"), Some(443)));
        assert_eq!(
            Instance::new("svc.example.test:80").host(),
            Some("svc.example.test")
        );
        assert_eq!(Instance::new("no-port").port(), None);
        assert_eq!(
            Instance::new("::1:80").port(),
            None,
            "bare IPv6 is ambiguous"
        );
    }

    #[test]
    fn parse_and_from_str_agree() {
        for input in [
            "10.0.0.1:80",
            "[::1]:80",
            "host:0080",
            "host:+80",
            "a b:80",
            "",
        ] {
            let parsed = Instance::parse(input).map(|i| i.addr().to_owned());
            let from_str = input.parse::<Instance>().map(|i| i.addr().to_owned());
            assert_eq!(parsed.is_ok(), from_str.is_ok(), "{input:?}");
            if let Ok(addr) = parsed {
                assert_eq!(addr, input);
                assert_eq!(from_str.unwrap(), input);
            }
        }
    }

    #[test]
    fn a_refusal_names_the_input_and_why() {
        match Instance::parse("host:0080") {
            Err(crate::Error::InvalidInstance(d)) => {
                assert_eq!(&*d.input, "host:0080");
                assert!(d.reason.contains("leading zeros"), "{}", d.reason);
                assert_eq!((d.path.as_ref(), d.line), (None, None));
            }
            other => panic!("expected InvalidInstance, got {other:?}"),
        }
        // A long input is cut to 200 characters, on a character boundary.
        let long = format!("{}:80", "é".repeat(300));
        match Instance::parse(&long) {
            Err(crate::Error::InvalidInstance(d)) => {
                assert_eq!(d.input.chars().count(), 200);
                assert!(d.input.starts_with("éé") && d.input.ends_with('…'));
            }
            other => panic!("expected InvalidInstance, got {other:?}"),
        }
    }

    #[test]
    fn parsed_instances_have_host_and_port() {
        for (input, host, port) in [
            ("10.0.0.1:80", "10.0.0.1", 80),
            ("[2001:db8::1]:443", "2001:db8::1", 443),
            ("[fe80::1%eth0]:8080", "fe80::1%eth0", 8080),
            ("api.example.test.:65535", "api.example.test.", 65535),
        ] {
            let i = Instance::parse(input).unwrap();
            assert_eq!((i.host(), i.port()), (Some(host), Some(port)), "{input}");
        }
    }

    #[test]
    fn unchecked_instances_read_only_the_valid_port_spelling() {
        for odd in ["h:0080", "h:+80", "h:0", "h:70000"] {
            let i = Instance::new(odd);
            assert_eq!((i.host(), i.port()), (None, None), "{odd}");
        }
    }

    #[test]
    fn identity_is_the_address() {
        let a = Instance::builder("h:1").weight(1).build();
        let b = Instance::builder("h:1").weight(2).build();
        assert_eq!(a, b);
        assert!(!a.same(&b));
        assert!(a.same(&a.clone()));
        assert!(Instance::builder("h:1").build().metadata().is_none());
    }

    #[test]
    fn is_small() {
        assert_eq!(std::mem::size_of::<Instance>(), 24);
    }
}
