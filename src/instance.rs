//! `Instance`: one running copy of a service, as a registry names it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

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
/// ```
/// use waypost::Instance;
/// let a = Instance::new("10.0.0.1:8080");
/// assert_eq!(a.host(), Some("10.0.0.1"));
/// assert_eq!(a.port(), Some(8080));
/// let b = Instance::builder("10.0.0.2:8080").weight(3).zone("eu-1").tag("v2").build();
/// assert_eq!(b.metadata().unwrap().weight(), Some(3));
/// assert!(a < b);
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
    /// An instance with no metadata. The address is taken as given; see
    /// [`Instance::parse`] for a checked `host:port`.
    pub fn new(addr: impl Into<Arc<str>>) -> Instance {
        Instance {
            addr: addr.into(),
            meta: None,
        }
    }

    /// An instance from a `host:port` address, checked: a non-empty host (an IPv6 host
    /// in brackets) and a port in 1..=65535.
    pub fn parse(addr: &str) -> crate::Result<Instance> {
        match split_host_port(addr) {
            Some((host, port)) if !host.is_empty() && port != 0 => Ok(Instance::new(addr)),
            _ => Err(crate::Error::invalid_instance(
                addr,
                "expected host:port with a port in 1..=65535",
            )),
        }
    }

    /// Starts an instance with metadata.
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

    /// The host part of a `host:port` address (IPv6 without brackets), if it has one.
    pub fn host(&self) -> Option<&str> {
        split_host_port(&self.addr).map(|(h, _)| h)
    }

    /// The port of a `host:port` address, if it has a valid one.
    pub fn port(&self) -> Option<u16> {
        split_host_port(&self.addr).map(|(_, p)| p)
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

fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    Some((host, port))
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
impl From<&str> for Instance {
    fn from(addr: &str) -> Instance {
        Instance::new(addr)
    }
}
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
    fn parse_rejects_bad_addresses() {
        for bad in [
            "",
            "host",
            ":80",
            "host:0",
            "host:70000",
            "host:x",
            "::1:80",
        ] {
            let err = Instance::parse(bad).unwrap_err();
            assert!(err.is_invalid_input(), "{bad}: {err}");
        }
        assert!(Instance::parse("[::1]:80").is_ok());
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
