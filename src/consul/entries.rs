//! Health entries into instances: the health and tag filters, and each entry's address
//! through the strict parser. An entry that makes no instance is left out with a
//! warning; the rest of the answer stands. [`Skipped`] records such entries, here and
//! where an answer is decoded (`decode.rs`).

use std::fmt;
use std::net::Ipv6Addr;

use super::client::ServiceEntry;
use crate::{Instance, Result};

const LOG: &str = "waypost::consul";
/// How many skipped entries of one answer are logged one by one; the rest are counted.
const SHOWN: usize = 5;

/// Entries of one answer that were left out: the first few described, the rest
/// counted, so a fleet of bad registrations cannot flood the log.
#[derive(Debug, Default)]
pub(super) struct Skipped {
    shown: Vec<String>,
    more: usize,
}

impl Skipped {
    pub(super) fn add(&mut self, describe: impl FnOnce() -> String) {
        if self.shown.len() < SHOWN {
            self.shown.push(describe());
        } else {
            self.more += 1;
        }
    }

    /// The entries described so far.
    #[cfg(test)]
    pub(super) fn shown(&self) -> &[String] {
        &self.shown
    }

    /// One `warn!` per described entry, one for the rest.
    pub(super) fn log(&self, service: &str) {
        for entry in &self.shown {
            log::warn!(target: LOG, "{service:?}: skipped {entry}");
        }
        if self.more > 0 {
            log::warn!(
                target: LOG,
                "{service:?}: skipped {} more entries that make no instance",
                self.more
            );
        }
    }
}

/// Names an entry in a warning: its service id and node, as far as they are known.
pub(super) struct EntryName<'a> {
    id: Option<&'a str>,
    node: Option<&'a str>,
}

impl<'a> EntryName<'a> {
    /// An entry of which nothing is known (it is not even an object).
    pub(super) const UNKNOWN: EntryName<'static> = EntryName {
        id: None,
        node: None,
    };

    pub(super) fn new(id: Option<&'a str>, node: Option<&'a str>) -> EntryName<'a> {
        EntryName { id, node }
    }

    fn of_entry(entry: &'a ServiceEntry) -> EntryName<'a> {
        EntryName::new(Some(&entry.service.id), Some(&entry.node.node))
    }
}

impl fmt::Display for EntryName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug quoting: a registrant's text cannot forge a log line.
        write!(
            f,
            "entry {:?} on node {:?}",
            self.id.unwrap_or("?"),
            self.node.unwrap_or("?")
        )
    }
}

/// What the watch lists: the instances of the entries that carry every tag (compared
/// case-insensitively, as Consul does) and pass the health filter. Entries whose
/// address the parser refuses are logged as skipped.
pub(super) fn instances(
    entries: &[ServiceEntry],
    tags: &[String],
    include_warning: bool,
    skipped: &mut Skipped,
) -> Vec<Instance> {
    (entries.iter())
        .filter_map(|e| instance(e, tags, include_warning, skipped))
        .collect()
}

/// [`instances`] for one entry: its instance, or `None` when it is filtered out or its
/// address is refused (then recorded in `skipped`).
pub(super) fn instance(
    e: &ServiceEntry,
    tags: &[String],
    include_warning: bool,
    skipped: &mut Skipped,
) -> Option<Instance> {
    let tagged = (tags.iter()).all(|t| e.service.tags.iter().any(|s| s.eq_ignore_ascii_case(t)));
    if !tagged {
        return None;
    }
    let warning = health(e, include_warning)?;
    to_instance(e, warning)
        .map_err(|err| skipped.add(|| format!("{}: {err}", EntryName::of_entry(e))))
        .ok()
}

/// `Some(warning)` when the entry is listed: every check passes, or (when warnings
/// are wanted) warns; `None` when a check is critical.
fn health(entry: &ServiceEntry, include_warning: bool) -> Option<bool> {
    let mut warning = false;
    for check in &entry.checks {
        match check.status.as_str() {
            "passing" => {}
            "warning" if include_warning => warning = true,
            _ => return None,
        }
    }
    Some(warning)
}

/// The instance of `entry`; see the module docs of `consul` for the metadata mapping.
fn to_instance(entry: &ServiceEntry, warning: bool) -> Result<Instance> {
    let service = &entry.service;
    let plain = Instance::parse(&address(entry))?;
    let mut builder = Instance::builder(plain.addr_arc().clone());
    for tag in &service.tags {
        builder = builder.tag(tag.as_str());
    }
    for (key, value) in &service.meta {
        builder = builder.value(key.as_str(), value.as_str());
    }
    if let Some(w) = service.weights {
        builder = builder.weight(if warning { w.warning } else { w.passing });
    }
    if !entry.node.node.is_empty() {
        builder = builder.value("node", entry.node.node.as_str());
    }
    if !entry.node.datacenter.is_empty() {
        builder = builder.zone(entry.node.datacenter.as_str());
    }
    if !service.id.is_empty() {
        builder = builder.value("service_id", service.id.as_str());
    }
    Ok(builder.build())
}

/// `host:port` of an entry, for the parser to check: the service's address, or its
/// node's when it has none. An IPv6 address (Consul gives it bare) is written in
/// brackets and in canonical form, so that `2001:DB8:0::1` and `2001:db8::1`, which a
/// registrant may spell either way, are one instance.
fn address(entry: &ServiceEntry) -> String {
    let service = &entry.service;
    let host = match service.address.as_str() {
        "" => entry.node.address.as_str(),
        address => address,
    };
    let (ip, zone) = match host.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (host, None),
    };
    match (ip.parse::<Ipv6Addr>(), zone) {
        (Ok(ip), None) => format!("[{ip}]:{}", service.port),
        (Ok(ip), Some(zone)) => format!("[{ip}%{zone}]:{}", service.port),
        (Err(_), _) => format!("{host}:{}", service.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consul::client::{Node, Service};

    fn entry(service_address: &str, node_address: &str, port: u16) -> ServiceEntry {
        ServiceEntry::new(
            Node::new("n1", node_address),
            Service::new(service_address, port),
        )
    }

    #[test]
    fn addresses_for_the_parser() {
        for (service, node, port, want) in [
            ("10.0.0.1", "192.0.2.1", 80, "10.0.0.1:80"),
            ("", "192.0.2.1", 80, "192.0.2.1:80"),
            ("", "", 80, ":80"),
            ("2001:DB8:0:0::1", "", 443, "[2001:db8::1]:443"),
            ("fe80::1%eth0", "", 80, "[fe80::1%eth0]:80"),
            ("[::1]", "", 80, "[::1]:80"),
            ("10.0.0.1:9999", "", 80, "10.0.0.1:9999:80"),
            ("api.example.test", "", 0, "api.example.test:0"),
        ] {
            assert_eq!(address(&entry(service, node, port)), want);
        }
    }

    #[test]
    fn entries_whose_address_the_parser_refuses_are_skipped_and_named() {
        let named = |id: &str, address: &str, port| {
            let mut e = entry(address, "192.0.2.1", port);
            e.service.id = id.into();
            e
        };
        let entries = [
            named("port-0", "10.0.0.1", 0),            // 10.0.0.1:0
            named("bracketed", "[10.0.0.1:9999]", 80), // [10.0.0.1:9999]:80
            named("space", "10.0.0.1 evil", 80),       // 10.0.0.1 evil:80
            named("good", "10.0.0.1", 80),
        ];
        let mut skipped = Skipped::default();
        let listed = instances(&entries, &[], false, &mut skipped);
        let addrs: Vec<_> = listed.iter().map(Instance::addr).collect();
        assert_eq!(addrs, ["10.0.0.1:80"]);
        assert_eq!(skipped.shown.len(), 3, "{:?}", skipped.shown);
        for (shown, (id, address)) in skipped.shown.iter().zip([
            ("port-0", "10.0.0.1:0"),
            ("bracketed", "[10.0.0.1:9999]:80"),
            ("space", "10.0.0.1 evil:80"),
        ]) {
            assert!(
                shown.starts_with(&format!("entry {id:?} on node \"n1\": ")),
                "{shown}"
            );
            assert!(shown.contains(address), "names the address: {shown}");
        }
    }

    #[test]
    fn skipped_entries_beyond_the_first_few_are_counted() {
        let mut skipped = Skipped::default();
        for n in 0..12 {
            skipped.add(|| format!("entry {n}"));
        }
        assert_eq!((skipped.shown.len(), skipped.more), (SHOWN, 12 - SHOWN));
    }
}
