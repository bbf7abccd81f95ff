//! Property tests of what the etcd backend decodes from the network: the watch-line
//! decoder and the value parser never panic, whatever bytes they get, and what they
//! accept is what was sent.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::client::EventKind;
use super::value;
use super::wire::decode_watch_line;
use crate::Instance;
use crate::internal::base64::base64_encode;

/// Many cases: each is a decode of a few hundred bytes. `PROPTEST_CASES` overrides the
/// count for a longer hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        // A failure is reported (minimised) in the test output; no file is written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of the JSON etcd and Go programs write, and of what breaks decoders:
/// glued at random they make text that is almost JSON, and often is.
const ATOMS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\"",
    "\\",
    "\"result\"",
    "\"header\"",
    "\"revision\"",
    "\"cluster_id\"",
    "\"events\"",
    "\"kv\"",
    "\"prev_kv\"",
    "\"key\"",
    "\"value\"",
    "\"type\"",
    "\"PUT\"",
    "\"DELETE\"",
    "\"put\"",
    "\"mod_revision\"",
    "\"lease\"",
    "\"created\"",
    "\"canceled\"",
    "\"compact_revision\"",
    "\"cancel_reason\"",
    "\"error\"",
    "\"grpc_code\"",
    "true",
    "false",
    "null",
    "0",
    "-1",
    "1e308",
    "-0.0",
    "0.5",
    "18446744073709551615",
    "9223372036854775808",
    "\"9223372036854775807\"",
    "\"-9223372036854775808\"",
    "\"99999999999999999999\"",
    "\"\"",
    "\"L3N2Yy9h\"",
    "\"MTAuMC4wLjE6ODA=\"",
    "\"Zg\"",
    "\"Z\"",
    "\"====\"",
    "\"Zm9v!\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"é\"",
    "\"addr\"",
    "\"Addr\"",
    "\"metadata\"",
    "\"Metadata\"",
    "\"Op\"",
    "\"weight\"",
    "\"zone\"",
    "\"scheme\"",
    "\"tags\"",
    "\"values\"",
    "\"10.0.0.1:80\"",
    "\"10.0.0.1\"",
    "\"[::1]:80\"",
    "\"2001:db8::1\"",
    "\"h:0\"",
    "\"h:65536\"",
    "4294967296",
];

fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(ATOMS), 0..48)
        .prop_map(|atoms| atoms.concat().into_bytes())
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        proptest::sample::select(ATOMS).prop_map(|a| Value::from(a.trim_matches('"'))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An int64 as the gateway writes it (a string), or as other writers might.
fn int64() -> impl Strategy<Value = (Value, Option<i64>)> {
    prop_oneof![
        any::<i64>().prop_map(|n| (Value::from(n.to_string()), Some(n))),
        any::<i64>().prop_map(|n| (Value::from(n), Some(n))),
        any::<u64>().prop_map(|n| (Value::from(n), i64::try_from(n).ok())),
        "\\PC{0,6}".prop_map(|s| {
            let n = s.parse::<i64>().ok();
            (Value::from(s), n)
        }),
    ]
}

/// One event of a watch line, with what its key, value and revision should decode
/// to (`None`: the event may rightly make the line fail to decode).
type Expected = Option<(bool, Vec<u8>, Vec<u8>, i64)>;

fn event() -> impl Strategy<Value = (Value, Expected)> {
    (
        proptest::option::of(prop_oneof![Just("PUT"), Just("DELETE"), Just("OTHER")]),
        any::<Vec<u8>>(),
        any::<Vec<u8>>(),
        int64(),
        any::<bool>(),
    )
        .prop_map(|(kind, key, value, (revision, parsed), garble)| {
            let key_text = match garble {
                true => format!("{}!", base64_encode(&key)),
                false => base64_encode(&key),
            };
            let mut kv = json!({"key": key_text, "value": base64_encode(&value),
                                "mod_revision": revision});
            if value.is_empty() {
                kv.as_object_mut().unwrap().remove("value");
            }
            let mut event = json!({"kv": kv});
            if let Some(kind) = kind {
                event["type"] = Value::from(kind);
            }
            let good = !garble && kind != Some("OTHER");
            let expected = match (good, parsed) {
                (true, Some(revision)) => Some((kind == Some("DELETE"), key, value, revision)),
                _ => None,
            };
            (event, expected)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_watch_decoder_never_panics_on_bytes(line in any::<Vec<u8>>()) {
        let _ = decode_watch_line(&line);
    }

    #[test]
    fn the_watch_decoder_never_panics_on_jsonish_lines(line in jsonish()) {
        let _ = decode_watch_line(&line);
        let mut wrapped = b"{\"result\":".to_vec();
        wrapped.extend_from_slice(&line);
        wrapped.push(b'}');
        let _ = decode_watch_line(&wrapped);
    }

    #[test]
    fn the_watch_decoder_never_panics_on_any_json(result in json_value(), header in json_value()) {
        let _ = decode_watch_line(json!({"result": result}).to_string().as_bytes());
        let line = json!({"result": {"header": header, "events": [{"kv": result}]}});
        let _ = decode_watch_line(line.to_string().as_bytes());
    }

    /// A line of the gateway's shape is decoded to what it says, or refused when a
    /// field is bad; never half read.
    #[test]
    fn watch_lines_decode_to_what_they_say(
        events in proptest::collection::vec(event(), 0..5),
        (revision, parsed) in int64(),
        created in any::<bool>(),
    ) {
        let all_good = events.iter().all(|(_, e)| e.is_some());
        let line = json!({"result": {"header": {"cluster_id": "1", "revision": revision},
            "created": created, "events": events.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>()}});
        match (decode_watch_line(line.to_string().as_bytes()), parsed) {
            (Ok(message), Some(revision)) if all_good => {
                prop_assert_eq!(message.revision, revision);
                prop_assert_eq!(message.created, created);
                prop_assert_eq!(message.events.len(), events.len());
                for (got, (_, want)) in message.events.iter().zip(&events) {
                    let (delete, key, value, revision) = want.clone().unwrap();
                    prop_assert_eq!(got.kind == EventKind::Delete, delete);
                    prop_assert_eq!(&got.kv.key, &key);
                    prop_assert_eq!(&got.kv.value, &value);
                    prop_assert_eq!(got.kv.mod_revision, revision);
                }
            }
            (Err(_), Some(_)) if all_good => {
                prop_assert!(false, "a good line was refused: {line}");
            }
            (Ok(_), _) => prop_assert!(false, "a bad line was accepted: {line}"),
            (Err(_), _) => {}
        }
    }

    #[test]
    fn the_value_parser_never_panics_on_bytes(
        value in any::<Vec<u8>>(),
        port in proptest::option::of(any::<u16>()),
    ) {
        check_value(&value, port)?;
    }

    #[test]
    fn the_value_parser_never_panics_on_jsonish_values(
        value in jsonish(),
        port in proptest::option::of(any::<u16>()),
    ) {
        check_value(&value, port)?;
    }

    #[test]
    fn the_value_parser_never_panics_on_any_json(
        addr in prop_oneof![json_value(), "\\PC{0,20}".prop_map(Value::from),
                            Just(Value::from("10.0.0.1")), Just(Value::from("10.0.0.1:80"))],
        metadata in json_value(),
        op in json_value(),
        go_names in any::<bool>(),
        port in proptest::option::of(any::<u16>()),
    ) {
        let value = match go_names {
            true => json!({"Op": op, "Addr": addr, "Metadata": metadata}),
            false => json!({"addr": addr, "metadata": metadata}),
        };
        check_value(value.to_string().as_bytes(), port)?;
        check_value(json!({"metadata": value}).to_string().as_bytes(), port)?;
    }
}

/// Parses `value`: never a panic, and an instance accepted names an address that
/// `Instance::parse` accepts too.
fn check_value(value: &[u8], port: Option<u16>) -> Result<(), TestCaseError> {
    if let Ok(instance) = value::parse(value, port) {
        prop_assert!(
            Instance::parse(instance.addr()).is_ok(),
            "{:?} gave {}",
            String::from_utf8_lossy(value),
            instance.addr()
        );
    }
    Ok(())
}
