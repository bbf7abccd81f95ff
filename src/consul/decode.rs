//! A health answer decoded entry by entry as it is read: each JSON entry becomes a
//! [`ServiceEntry`] (the fields the instancer reads, nothing else) and is gone before
//! the next is read, so the answer never exists as text or as a JSON tree.
//!
//! An entry that does not fit (Consul 1.8.7 accepts `Port: 70000` and `Port: -1` from
//! any registrant, and lists them) is left out and recorded, and the others stand.
//! That needs a decoder that never fails part-way through an entry: a typed decode
//! that fails in the middle leaves the stream there, and the rest of the answer could
//! not be read. So every field is first taken in a form that accepts any JSON value
//! and records a value of the wrong type or range instead of failing (see
//! `lenient.rs`); [`Fit`] then turns the entry into its typed form or names the first
//! field that does not fit.
//!
//! What still fails the whole answer: a body that is not a JSON array, broken JSON, a
//! key twice in one object, and any read error.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};

use super::client::{HealthCheck, Node, Service, ServiceEntry, Weights};
use super::entries::{EntryName, Skipped};
use super::lenient::{Field, Fit, Misfit, Nested, Shape, field};
use crate::Instance;
use crate::internal::http::Decode;

/// The entries of a health answer that fit, and those left out (for the tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) entries: Vec<ServiceEntry>,
    pub(super) skipped: Skipped,
}

#[cfg(test)]
impl<'de> Deserialize<'de> for Decoded {
    fn deserialize<D: de::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let (mut entries, mut skipped) = (Vec::new(), Skipped::default());
        let each = EachEntry {
            each: &mut |entry| entries.push(entry),
            skipped: &mut skipped,
        };
        each.deserialize(de)?;
        Ok(Decoded { entries, skipped })
    }
}

/// Hands each entry that fits to `each` as soon as it is decoded (it is gone before
/// the next is read), and records those left out in `skipped`.
pub(super) struct EachEntry<'a> {
    pub(super) each: &'a mut dyn FnMut(ServiceEntry),
    pub(super) skipped: &'a mut Skipped,
}

impl<'de> DeserializeSeed<'de> for EachEntry<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EachEntry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of health entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Nested<WireEntry>>()? {
            let fitted = match entry.0 {
                Ok(entry) => entry.fit(),
                Err(reason) => Err(format!("{}: {reason}", EntryName::UNKNOWN)),
            };
            match fitted {
                Ok(entry) => (self.each)(entry),
                Err(described) => self.skipped.add(|| described),
            }
        }
        Ok(())
    }
}

/// A health answer decoded into its entries (those that fit), the ones left out
/// recorded.
pub(super) struct EntriesDecoder(pub(super) Skipped);

impl Decode for EntriesDecoder {
    type Value = Vec<ServiceEntry>;

    fn decode<R: std::io::Read>(
        &mut self,
        json: &mut serde_json::Deserializer<serde_json::de::IoRead<R>>,
    ) -> serde_json::Result<Vec<ServiceEntry>> {
        let mut entries = Vec::new();
        let each = EachEntry {
            each: &mut |entry| entries.push(entry),
            skipped: &mut self.0,
        };
        each.deserialize(json)?;
        Ok(entries)
    }
}

/// A health answer decoded straight into what the watch lists: each entry becomes its
/// [`Instance`] (or nothing: filtered out, or refused and recorded) as it is read, so
/// no entry outlives its own decoding.
pub(super) struct ToInstances<'a> {
    pub(super) tags: &'a [String],
    pub(super) include_warning: bool,
    /// Entries that did not decode.
    pub(super) skipped: Skipped,
    /// Entries whose address the parser refused.
    pub(super) refused: Skipped,
}

impl ToInstances<'_> {
    /// One `warn!` per entry left out (a few of each kind, then a count).
    pub(super) fn log(&self, service: &str) {
        self.skipped.log(service);
        self.refused.log(service);
    }
}

impl Decode for ToInstances<'_> {
    type Value = Vec<Instance>;

    fn decode<R: std::io::Read>(
        &mut self,
        json: &mut serde_json::Deserializer<serde_json::de::IoRead<R>>,
    ) -> serde_json::Result<Vec<Instance>> {
        let (tags, include_warning) = (self.tags, self.include_warning);
        let mut instances = Vec::new();
        let refused = &mut self.refused;
        let each = EachEntry {
            each: &mut |entry| {
                if let Some(i) = super::entries::instance(&entry, tags, include_warning, refused) {
                    instances.push(i);
                }
            },
            skipped: &mut self.skipped,
        };
        each.deserialize(json)?;
        Ok(instances)
    }
}

// ---- the wire shape: only what the instancer reads ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireEntry {
    #[serde(default = "Nested::missing")]
    node: Nested<WireNode>,
    #[serde(default = "Nested::missing")]
    service: Nested<WireService>,
    #[serde(default)]
    checks: Nested<Vec<Nested<WireCheck>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WireNode {
    node: Field<String>,
    address: Field<String>,
    datacenter: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WireService {
    #[serde(rename = "ID")]
    id: Field<String>,
    service: Field<String>,
    address: Field<String>,
    port: Field<u16>,
    tags: Nested<Vec<Field<String>>>,
    meta: Nested<BTreeMap<String, Field<String>>>,
    weights: Option<Nested<WireWeights>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireWeights {
    #[serde(default = "Field::missing")]
    passing: Field<u32>,
    #[serde(default = "Field::missing")]
    warning: Field<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WireCheck {
    #[serde(rename = "CheckID")]
    check_id: Field<String>,
    status: Field<String>,
}

impl Shape for WireEntry {}
impl Shape for WireNode {}
impl Shape for WireService {}
impl Shape for WireWeights {}
impl Shape for WireCheck {}

impl Fit for WireNode {
    type Out = Node;
    fn fit(self) -> Result<Node, Misfit> {
        let mut node = Node::new(field(self.node, "Node")?, field(self.address, "Address")?);
        node.datacenter = field(self.datacenter, "Datacenter")?;
        Ok(node)
    }
}

impl Fit for WireService {
    type Out = Service;
    fn fit(self) -> Result<Service, Misfit> {
        let mut service = Service::new(field(self.address, "Address")?, field(self.port, "Port")?);
        service.id = field(self.id, "ID")?;
        service.service = field(self.service, "Service")?;
        service.tags = field(self.tags, "Tags")?;
        service.meta = field(self.meta, "Meta")?;
        service.weights = field(self.weights, "Weights")?;
        Ok(service)
    }
}

impl Fit for WireWeights {
    type Out = Weights;
    fn fit(self) -> Result<Weights, Misfit> {
        let passing = field(self.passing, "Passing")?;
        Ok(Weights::new(passing, field(self.warning, "Warning")?))
    }
}

impl Fit for WireCheck {
    type Out = HealthCheck;
    fn fit(self) -> Result<HealthCheck, Misfit> {
        let check_id = field(self.check_id, "CheckID")?;
        Ok(HealthCheck::new(check_id, field(self.status, "Status")?))
    }
}

impl WireEntry {
    /// The typed entry, or a line naming the entry (its service id and node, as far
    /// as they are known) and its first value that does not fit.
    fn fit(mut self) -> Result<ServiceEntry, String> {
        // The two names are taken out first, so that a misfit anywhere else can name
        // the entry; a part that is not an object has no name to give.
        let unknown = || Field(Err(String::new()));
        let id = match &mut self.service.0 {
            Ok(service) => std::mem::take(&mut service.id),
            Err(_) => unknown(),
        };
        let node = match &mut self.node.0 {
            Ok(node) => std::mem::take(&mut node.node),
            Err(_) => unknown(),
        };
        let describe = |id: Option<&str>, node: Option<&str>, misfit: Misfit| {
            format!("{}: {misfit}", EntryName::new(id, node))
        };
        let fitted = (|| {
            let mut entry =
                ServiceEntry::new(field(self.node, "Node")?, field(self.service, "Service")?);
            entry.checks = field(self.checks, "Checks")?;
            Ok(entry)
        })();
        let mut entry =
            fitted.map_err(|m| describe(id.0.as_deref().ok(), node.0.as_deref().ok(), m))?;
        match (id.0, node.0) {
            (Ok(id), Ok(node)) => {
                entry.service.id = id;
                entry.node.node = node;
                Ok(entry)
            }
            (Err(reason), node) => {
                let misfit = Misfit {
                    path: "Service.ID".into(),
                    reason,
                };
                Err(describe(None, node.as_deref().ok(), misfit))
            }
            (Ok(id), Err(reason)) => {
                let misfit = Misfit {
                    path: "Node.Node".into(),
                    reason,
                };
                Err(describe(Some(&id), None, misfit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of a Consul 1.8.7 answer, every field as the agent sends it.
    const REAL: &str = concat!(
        r#"{"Node":{"ID":"830ac50a-5dc2-d8c0-5a0c-a2e71947158b","Node":"test","Address":"127.0.0.1","Datacenter":"dc1","TaggedAddresses":{"lan":"127.0.0.1","lan_ipv4":"127.0.0.1","wan":"127.0.0.1","wan_ipv4":"127.0.0.1"},"Meta":{"consul-network-segment":""},"CreateIndex":11,"ModifyIndex":12}"#,
        r#","Service":{"ID":"web-10.0.0.1-8080","Service":"web","Tags":["v2","blue"],"Address":"10.0.0.1","TaggedAddresses":{"lan_ipv4":{"Address":"10.0.0.1","Port":8080},"wan_ipv4":{"Address":"10.0.0.1","Port":8080}},"Meta":{"team":"payments","version":"2.1.0"},"Port":8080,"Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"Proxy":{"MeshGateway":{},"Expose":{}},"Connect":{},"CreateIndex":13,"ModifyIndex":13}"#,
        r#","Checks":[{"Node":"test","CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing","Notes":"","Output":"Agent alive and reachable","ServiceID":"","ServiceName":"","ServiceTags":[],"Type":"","Definition":{},"CreateIndex":11,"ModifyIndex":11},{"Node":"test","CheckID":"service:web-10.0.0.1-8080","Name":"web health","Status":"passing","Notes":"","Output":"","ServiceID":"web-10.0.0.1-8080","ServiceName":"web","ServiceTags":["v2","blue"],"Type":"ttl","Definition":{},"CreateIndex":13,"ModifyIndex":14}]}"#,
    );

    /// Decoded from a reader, as the client does.
    fn decode(body: &str) -> serde_json::Result<Decoded> {
        serde_json::from_reader(body.as_bytes())
    }

    /// How the one entry of `[entry]` was skipped.
    fn skipped(entry: &str) -> String {
        let decoded = decode(&format!("[{entry}]")).unwrap();
        assert!(decoded.entries.is_empty(), "{entry} was not skipped");
        decoded.skipped.shown()[0].clone()
    }

    #[test]
    fn a_real_entry_keeps_what_the_instancer_reads() {
        let decoded = decode(&format!("[{REAL}]")).unwrap();
        assert!(decoded.skipped.shown().is_empty());
        let [entry] = &decoded.entries[..] else {
            panic!("{decoded:?}")
        };
        let (node, service) = (&entry.node, &entry.service);
        assert_eq!((&*node.node, &*node.address), ("test", "127.0.0.1"));
        assert_eq!(node.datacenter, "dc1");
        assert_eq!(
            (&*service.id, &*service.service),
            ("web-10.0.0.1-8080", "web")
        );
        assert_eq!((&*service.address, service.port), ("10.0.0.1", 8080));
        assert_eq!(service.tags, ["v2", "blue"]);
        let meta: Vec<_> = service.meta.iter().collect();
        assert_eq!(
            meta,
            [
                (&"team".into(), &"payments".into()),
                (&"version".into(), &"2.1.0".into())
            ]
        );
        assert_eq!(service.weights, Some(Weights::new(1, 1)));
        let checks: Vec<_> = entry
            .checks
            .iter()
            .map(|c| (&*c.check_id, &*c.status))
            .collect();
        assert_eq!(
            checks,
            [
                ("serfHealth", "passing"),
                ("service:web-10.0.0.1-8080", "passing")
            ]
        );
    }

    #[test]
    fn an_entry_that_does_not_fit_is_skipped_and_the_rest_stand() {
        let body = r#"[{"Node":{},"Service":{"ID":"a","Address":"10.0.0.1","Port":80}},
                       {"Node":{"Node":"n2"},"Service":{"ID":"b","Port":70000}},
                       {"Node":{},"Service":{"ID":"c","Port":-1}},
                       {"Node":5},
                       {"Node":{},"Service":{"ID":"d","Port":81},"Checks":null},
                       7,
                       {"Node":{"Node":null},"Service":{"ID":"e","Tags":null,"Meta":null,"Weights":null}}]"#;
        let decoded = decode(body).unwrap();
        let ids: Vec<_> = decoded.entries.iter().map(|e| &*e.service.id).collect();
        assert_eq!(ids, ["a", "d", "e"], "null counts as absent");
        assert_eq!(decoded.skipped.shown().len(), 4);
    }

    #[test]
    fn a_skipped_entry_is_named_with_the_field_at_fault() {
        let node = r#""Node":{"Node":"n1"}"#;
        for (entry, want) in [
            (
                format!(r#"{{{node},"Service":{{"ID":"big","Port":70000}}}}"#),
                r#"entry "big" on node "n1": Service.Port: invalid value: integer `70000`"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"neg","Port":-1}}}}"#),
                r#"entry "neg" on node "n1": Service.Port: invalid value: integer `-1`"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"text","Port":"80"}}}}"#),
                r#"entry "text" on node "n1": Service.Port: invalid type: string "80""#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"f","Port":80.5}}}}"#),
                r#"entry "f" on node "n1": Service.Port: invalid type: floating point"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"t","Tags":["a",{{"b":1}}]}}}}"#),
                r#"entry "t" on node "n1": Service.Tags[1]: invalid type: map"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"m","Meta":{{"k":2}}}}}}"#),
                r#"entry "m" on node "n1": Service.Meta["k"]: invalid type: integer `2`"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"w","Weights":{{"Passing":1}}}}}}"#),
                r#"entry "w" on node "n1": Service.Weights.Warning: missing"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"c"}},"Checks":[{{"Status":[]}}]}}"#),
                r#"entry "c" on node "n1": Checks[0].Status: invalid type: sequence"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":"x"}},"Checks":{{}}}}"#),
                r#"entry "x" on node "n1": Checks: invalid type: map, expected an array"#,
            ),
            (
                format!(r#"{{{node},"Service":{{"ID":7}}}}"#),
                r#"entry "?" on node "n1": Service.ID: invalid type: integer `7`"#,
            ),
            (
                r#"{"Node":{"Node":[]},"Service":{"ID":"nn"}}"#.into(),
                r#"entry "nn" on node "?": Node.Node: invalid type: sequence"#,
            ),
            (
                r#"{"Node":5,"Service":{"ID":"n5"}}"#.into(),
                r#"entry "n5" on node "?": Node: invalid type: integer `5`, expected an object"#,
            ),
            (
                format!(r#"{{{node}}}"#),
                r#"entry "?" on node "n1": Service: missing"#,
            ),
            (
                "true".into(),
                r#"entry "?" on node "?": invalid type: boolean `true`, expected an object"#,
            ),
        ] {
            let shown = skipped(&entry);
            assert!(
                shown.starts_with(want),
                "{entry}\n  gave {shown}\n  want {want}"
            );
        }
    }

    #[test]
    fn what_is_not_an_array_of_entries_fails_the_answer() {
        for body in [
            r#"{"Service":{}}"#,
            "null",
            r#"[{"Node":"#,
            r#"[{"Node":{},"Service":{"Port":8"#,
            r#"[{"Node":{},"Service":{"Tags":["a",tru]}}]"#,
            r#"[{"Node":{},"Service":{"ID":"a","ID":"b"}}]"#,
            r#"[{"Node":{},"Service":{}}] x"#,
        ] {
            assert!(decode(body).is_err(), "{body} decoded");
        }
    }
}
