//! Property tests of what the Eureka backend decodes from the network: the decoders of
//! reads never panic, whatever bytes they get; every instance of an answer is either
//! decoded or reported left out; and what a registration sends reads back as it was.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::client::{InstanceInfo, Status};
use super::wire::{ApplicationAnswer, ApplicationsAnswer, AppsCount, Decoded, register_body};

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

/// Pieces of the JSON Eureka servers write, and of what breaks decoders: glued at
/// random they make text that is almost JSON, and often is.
const ATOMS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\"",
    "\\",
    "\"applications\"",
    "\"application\"",
    "\"instance\"",
    "\"name\"",
    "\"instanceId\"",
    "\"hostName\"",
    "\"app\"",
    "\"ipAddr\"",
    "\"status\"",
    "\"overriddenstatus\"",
    "\"overriddenStatus\"",
    "\"port\"",
    "\"securePort\"",
    "\"$\"",
    "\"@enabled\"",
    "\"@class\"",
    "\"metadata\"",
    "\"leaseInfo\"",
    "\"renewalIntervalInSecs\"",
    "\"durationInSecs\"",
    "\"dataCenterInfo\"",
    "\"vipAddress\"",
    "\"UP\"",
    "\"OUT_OF_SERVICE\"",
    "\"true\"",
    "\"false\"",
    "\"java.util.Collections$EmptyMap\"",
    "\"8080\"",
    "\"70000\"",
    "\"-1\"",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"é\"",
    "true",
    "false",
    "null",
    "0",
    "-1",
    "8080",
    "65536",
    "1e308",
    "-0.0",
    "0.5",
    "18446744073709551615",
    "9223372036854775808",
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
            proptest::collection::btree_map(proptest::sample::select(ATOMS), json_leaf(), 0..6)
                .prop_map(|m| {
                    Value::Object(
                        m.into_iter()
                            .map(|(k, v)| (k.trim_matches('"').into(), v))
                            .collect(),
                    )
                }),
        ]
    })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u16>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ]
}

fn decode_all(bytes: &[u8]) {
    if let Ok(answer) = serde_json::from_slice::<ApplicationsAnswer>(bytes) {
        let _ = answer.decode();
    }
    if let Ok(answer) = serde_json::from_slice::<ApplicationAnswer>(bytes) {
        let _ = answer.decode();
    }
    if let Ok(count) = serde_json::from_slice::<AppsCount>(bytes) {
        let _ = count.count();
    }
}

/// How many instances an answer accounts for: decoded or left out.
fn accounted(decoded: &Decoded) -> usize {
    decoded.instances.len() + decoded.skipped.shown.len() + decoded.skipped.more
}

fn status() -> impl Strategy<Value = Status> {
    proptest::sample::select(vec![
        Status::Up,
        Status::Down,
        Status::Starting,
        Status::OutOfService,
        Status::Unknown,
    ])
}

fn instance_info() -> impl Strategy<Value = InstanceInfo> {
    let ids = (
        "[A-Za-z0-9-]{1,12}",
        "[A-Za-z0-9:._-]{1,20}",
        "\\PC{0,12}",
        "\\PC{0,12}",
    );
    let ports = (
        any::<Option<u16>>(),
        any::<Option<u16>>(),
        status(),
        status(),
    );
    let texts = proptest::collection::vec(proptest::option::of("\\PC{0,12}"), 6);
    let rest = (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,8}", 0..4),
        "\\PC{0,8}",
    );
    (ids, ports, texts, rest).prop_map(
        |((app, id, host, ip), (port, secure, s, o), texts, (renew, lease, metadata, dc))| {
            let mut info = InstanceInfo::new(&app, &id, &host, &ip).with_status(s);
            info.app = app; // as given: the body upper-cases it
            info.port = port;
            info.secure_port = secure;
            info.overridden_status = o;
            info.vip_address = texts[0].clone();
            info.secure_vip_address = texts[1].clone();
            info.home_page_url = texts[2].clone();
            info.status_page_url = texts[3].clone();
            info.health_check_url = texts[4].clone();
            info.data_center = dc;
            info.renewal_interval = Duration::from_millis(renew);
            info.lease_duration = Duration::from_millis(lease);
            info.metadata = metadata;
            info
        },
    )
}

/// What `info` reads back as after a registration: the app upper case, no override,
/// whole seconds (at least 1, at most Java's int), no disabled or empty fields, no
/// `@class` in the metadata.
fn as_read_back(mut info: InstanceInfo) -> InstanceInfo {
    let set = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let secs = |d: Duration| Duration::from_secs(d.as_secs().clamp(1, i32::MAX as u64));
    info.app = info.app.to_ascii_uppercase();
    info.overridden_status = Status::Unknown;
    info.port = info.port.filter(|p| *p > 0);
    info.secure_port = info.secure_port.filter(|p| *p > 0);
    info.vip_address = set(info.vip_address);
    info.secure_vip_address = set(info.secure_vip_address);
    info.home_page_url = set(info.home_page_url);
    info.status_page_url = set(info.status_page_url);
    info.health_check_url = set(info.health_check_url);
    if info.data_center.trim().is_empty() {
        info.data_center = "MyOwn".into();
    }
    info.renewal_interval = secs(info.renewal_interval);
    info.lease_duration = secs(info.lease_duration);
    info.metadata.remove("@class");
    info
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_decoders_never_panic_on_bytes(body in any::<Vec<u8>>()) {
        decode_all(&body);
    }

    #[test]
    fn the_decoders_never_panic_on_jsonish_bodies(body in jsonish()) {
        decode_all(&body);
        let text = String::from_utf8(body).expect("atoms are text");
        for wrapped in [
            format!(r#"{{"applications":{{"application":{text}}}}}"#),
            format!(r#"{{"application":{{"instance":{text}}}}}"#),
            format!(r#"{{"application":{{"instance":{{"port":{text}}}}}}}"#),
        ] {
            decode_all(wrapped.as_bytes());
        }
    }

    /// Whatever the values of an instance's fields, an answer either fails as a whole
    /// or accounts for each of its instances.
    #[test]
    fn every_instance_is_decoded_or_reported(
        fields in proptest::collection::vec(
            proptest::collection::btree_map(
                proptest::sample::select(ATOMS).prop_map(|a| a.trim_matches('"').to_owned()),
                json_value(),
                0..8,
            ),
            0..4,
        ),
        other in json_value(),
    ) {
        let instances: Vec<Value> = fields
            .into_iter()
            .map(|m| Value::Object(m.into_iter().collect()))
            .chain([other])
            .collect();
        let n = instances.len();
        let body = json!({"application": {"name": "APP", "instance": instances}});
        let decoded = serde_json::from_slice::<ApplicationAnswer>(body.to_string().as_bytes())
            .map(ApplicationAnswer::decode);
        prop_assert!(decoded.is_ok(), "{body}");
        prop_assert_eq!(accounted(&decoded.unwrap()), n);
        decode_all(json!({"applications": {"application": body["application"].clone()}}).to_string().as_bytes());
    }

    /// A registration body, read back as the server lists it, gives the instance sent.
    #[test]
    fn a_registration_reads_back_as_sent(info in instance_info(), now in any::<u64>()) {
        let body: Value = serde_json::from_slice(&register_body(&info, now)).expect("JSON");
        let listed = json!({"application": {"name": "IGNORED", "instance": body["instance"].clone()}});
        let decoded = serde_json::from_slice::<ApplicationAnswer>(listed.to_string().as_bytes())
            .expect("decodes")
            .decode();
        prop_assert!(decoded.skipped.shown.is_empty(), "{:?}", decoded.skipped);
        prop_assert_eq!(decoded.instances, vec![as_read_back(info)]);
    }
}

#[test]
fn metadata_keeps_every_key_but_the_marker() {
    let info = InstanceInfo::new("a", "b", "c", "d")
        .with_metadata("@class", "x")
        .with_metadata("k", "v");
    let body: Value = serde_json::from_slice(&register_body(&info, 0)).unwrap();
    let got: BTreeMap<String, String> =
        serde_json::from_value(body["instance"]["metadata"].clone()).unwrap();
    assert_eq!(got, BTreeMap::from([("k".to_owned(), "v".to_owned())]));
}
