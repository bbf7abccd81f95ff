//! What a key's value may be, and what the registrar writes: see the module docs,
//! "Values".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Instance, Metadata, Result};

/// The largest value read as an instance; a larger one is a bad value (etcd allows
/// 1.5 MiB, far beyond any address with metadata).
const MAX_VALUE: usize = 64 << 10;

/// A JSON value: waypost's form (`addr`, `metadata`) or the Go naming package's
/// (`Op`, `Addr`, `Metadata`); Go's JSON decoder matches names without regard to case,
/// so each form reads the other's.
#[derive(Deserialize)]
struct Json {
    #[serde(alias = "Addr")]
    addr: Option<String>,
    #[serde(alias = "Metadata", default)]
    metadata: Value,
    /// Go's endpoint operation (0 add, 1 delete): accepted and ignored, as a key's
    /// presence is what lists it.
    #[serde(rename = "Op", alias = "op", default)]
    _op: Value,
}

/// The instance a key's value names, with `default_port` for an address without one.
pub(crate) fn parse(value: &[u8], default_port: Option<u16>) -> Result<Instance> {
    let bad = |reason: &str| {
        let shown = String::from_utf8_lossy(&value[..value.len().min(200)]);
        Error::invalid_instance(&shown, reason)
    };
    if value.len() > MAX_VALUE {
        return Err(bad("the value is over 64 KiB"));
    }
    let text = std::str::from_utf8(value).map_err(|_| bad("the value is not UTF-8"))?;
    let text = text.trim();
    if !text.starts_with('{') {
        return address(text, default_port);
    }
    let json: Json = serde_json::from_str(text).map_err(|e| bad(&format!("bad JSON: {e}")))?;
    let Some(addr) = json.addr else {
        return Err(bad("the JSON value has no \"addr\" (or \"Addr\")"));
    };
    let instance = address(&addr, default_port)?;
    let Value::Object(metadata) = json.metadata else {
        // Go programs may put anything in Metadata: only an object is read.
        return Ok(instance);
    };
    let mut builder = Instance::builder(instance.addr_arc().clone());
    for (key, value) in metadata {
        builder = match (key.as_str(), value) {
            ("weight", Value::Number(n)) => {
                let weight = n.as_u64().and_then(|w| u32::try_from(w).ok());
                builder.weight(weight.ok_or_else(|| bad("\"weight\" is not a u32"))?)
            }
            ("weight", _) => return Err(bad("\"weight\" is not a number")),
            ("zone", Value::String(zone)) => builder.zone(zone),
            ("zone", _) => return Err(bad("\"zone\" is not a string")),
            ("scheme", Value::String(scheme)) => builder.scheme(scheme),
            ("scheme", _) => return Err(bad("\"scheme\" is not a string")),
            ("tags", Value::Array(tags)) => {
                let mut builder = builder;
                for tag in tags {
                    let Value::String(tag) = tag else {
                        return Err(bad("a tag is not a string"));
                    };
                    builder = builder.tag(tag);
                }
                builder
            }
            ("tags", _) => return Err(bad("\"tags\" is not an array")),
            ("values", Value::Object(values)) => {
                let mut builder = builder;
                for (k, v) in values {
                    let Value::String(v) = v else {
                        return Err(bad("a value of \"values\" is not a string"));
                    };
                    builder = builder.value(k, v);
                }
                builder
            }
            ("values", _) => return Err(bad("\"values\" is not an object")),
            // Other keys (a Go program's own) are not waypost's.
            _ => builder,
        };
    }
    Ok(builder.build())
}

/// `text` as a strict address; with `default_port`, a host alone gets that port.
fn address(text: &str, default_port: Option<u16>) -> Result<Instance> {
    let err = match Instance::parse(text) {
        Ok(instance) => return Ok(instance),
        Err(err) => err,
    };
    let Some(port) = default_port else {
        return Err(err);
    };
    let with_port = if text.contains(':') && !text.starts_with('[') {
        format!("[{text}]:{port}") // an IPv6 address alone
    } else {
        format!("{text}:{port}")
    };
    // A text that already had a port (and was refused for something else) gets the
    // first error, not one about the text with two ports.
    Instance::parse(&with_port).map_err(|_| err)
}

/// The value the registrar writes for `addr` with `metadata`: the plain address when
/// there is none, else waypost's JSON form, which Go's naming package reads too.
pub(crate) fn encode(addr: &str, metadata: Option<&Metadata>) -> Vec<u8> {
    let Some(meta) = metadata else {
        return addr.as_bytes().to_vec();
    };
    let mut object = serde_json::Map::new();
    if let Some(weight) = meta.weight() {
        object.insert("weight".into(), weight.into());
    }
    if let Some(zone) = meta.zone() {
        object.insert("zone".into(), zone.into());
    }
    if let Some(scheme) = meta.scheme() {
        object.insert("scheme".into(), scheme.into());
    }
    if meta.tags().len() > 0 {
        object.insert("tags".into(), meta.tags().collect::<Vec<_>>().into());
    }
    let values: BTreeMap<&str, &str> = meta.values().collect();
    if !values.is_empty() {
        object.insert(
            "values".into(),
            serde_json::to_value(values).expect("strings"),
        );
    }
    let mut value = serde_json::Map::new();
    value.insert("addr".into(), addr.into());
    value.insert("metadata".into(), object.into());
    serde_json::to_vec(&value).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> Instance {
        parse(value.as_bytes(), None).unwrap()
    }

    #[test]
    fn plain_go_naming_and_waypost_forms() {
        assert_eq!(ok("10.0.0.1:8080").addr(), "10.0.0.1:8080");
        assert_eq!(ok(" api.internal:80\n").addr(), "api.internal:80");
        let go = ok(r#"{"Op":0,"Addr":"10.0.0.2:9000","Metadata":{"version":"1.2"}}"#);
        assert_eq!(go.addr(), "10.0.0.2:9000");
        assert!(go.metadata().is_none()); // "version" is not a waypost key
        let go = ok(r#"{"Op":0,"Addr":"10.0.0.2:9000","Metadata":"anything"}"#);
        assert_eq!(go.addr(), "10.0.0.2:9000");
        let w = ok(
            r#"{"addr":"10.0.0.3:80","metadata":{"weight":3,"zone":"eu-1","tags":["v2"],"values":{"k":"v"}}}"#,
        );
        let meta = w.metadata().unwrap();
        assert_eq!(
            (
                meta.weight(),
                meta.zone(),
                meta.has_tag("v2"),
                meta.get("k")
            ),
            (Some(3), Some("eu-1"), true, Some("v"))
        );
    }

    #[test]
    fn default_port_only_for_an_address_without_one() {
        let go = br#"{"Op":0,"Addr":"10.0.0.1"}"#;
        assert!(parse(go, None).is_err());
        assert_eq!(parse(go, Some(8080)).unwrap().addr(), "10.0.0.1:8080");
        assert_eq!(
            parse(b"2001:db8::1", Some(80)).unwrap().addr(),
            "[2001:db8::1]:80"
        );
        assert_eq!(parse(b"h:81", Some(80)).unwrap().addr(), "h:81");
        let err = parse(b"10.0.0.1:0", Some(80)).unwrap_err().to_string();
        assert!(err.contains("10.0.0.1:0"), "{err}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_value() {
        for bad in [
            &b""[..],
            b"not an address",
            b"10.0.0.1:99999",
            b"{",
            b"{\"metadata\":{}}",
            b"{\"addr\":\"10.0.0.1:80\",\"metadata\":{\"weight\":-1}}",
            b"{\"addr\":\"10.0.0.1:80\",\"metadata\":{\"tags\":[1]}}",
            b"{\"addr\":\"10.0.0.1:80\",\"addr\":\"10.0.0.2:80\"}",
            b"\xff\xfe",
        ] {
            let err = parse(bad, None).unwrap_err();
            assert!(
                err.is_invalid_input(),
                "{:?}: {err}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse(&vec![b'a'; MAX_VALUE + 1], None).is_err());
    }

    #[test]
    fn encode_round_trips() {
        assert_eq!(encode("10.0.0.1:80", None), b"10.0.0.1:80");
        let i = Instance::builder("10.0.0.1:80")
            .weight(2)
            .zone("z")
            .tag("a")
            .value("k", "v")
            .build();
        let bytes = encode(i.addr(), i.metadata());
        let back = parse(&bytes, None).unwrap();
        assert!(back.same(&i), "{}", String::from_utf8_lossy(&bytes));
    }
}
