//! Health entries that do not make an instance: the real client and instancer against an
//! in-process fake agent answering entries Consul 1.8.7 really accepts from a
//! registrant (ports 0, 70000 and -1; addresses with a space, NUL, brackets and a
//! port, none at all).
//! Each such entry is left out with a `warn!` naming it; the others are published.
#![cfg(feature = "consul")]

mod support;

use std::time::Instant;

use crossbeam_channel::{Sender, bounded};
use support::BOUND;
use support::events::{is_set, next_addrs, subscribe, wait_event};
use support::fake_http::{Answer, FakeHttp};
use waypost::consul::{HttpClient, Instancer};

/// Warnings of the Consul backend that mention `needle`.
fn warnings_naming(needle: &str) -> Vec<String> {
    support::logs::records()
        .iter()
        .filter(|(level, target, text)| {
            *level == log::Level::Warn
                && target.starts_with("waypost::consul")
                && text.contains(needle)
        })
        .map(|(_, _, text)| text.clone())
        .collect()
}

/// One health entry; `port` is raw JSON so that it can be out of range.
fn entry(id: &str, service_address: &str, node_address: &str, port: &str) -> String {
    let node = serde_json::json!({
        "Node": format!("node-{id}"), "Address": node_address, "Datacenter": "dc1",
    });
    let checks = serde_json::json!([{"CheckID": "serfHealth", "Status": "passing"}]);
    let (id, address) = (serde_json::json!(id), serde_json::json!(service_address));
    format!(
        r#"{{"Node":{node},"Checks":{checks},"Service":{{"ID":{id},"Service":"web",
            "Address":{address},"Port":{port},"Tags":[],"Meta":{{}}}}}}"#
    )
}

/// An agent answering `entries` at once, then holding every blocking query until the
/// returned sender drops (so each test sees exactly one answer).
fn serve(entries: Vec<String>) -> (FakeHttp, Sender<()>) {
    let body = format!("[{}]", entries.join(","));
    let (release, held) = bounded::<()>(0);
    let server = FakeHttp::start(move |seen| {
        if seen.query_value("index").is_some() {
            let _ = held.recv_timeout(BOUND);
        }
        Answer::json(body.clone()).header("X-Consul-Index", 5)
    });
    (server, release)
}

#[test]
fn entries_that_make_no_valid_instance_are_skipped_with_a_warning() {
    support::logs::capture();
    let refused = [
        ("port-0", "10.0.0.2", "", "0"),
        ("port-70000", "10.0.0.3", "", "70000"),
        ("port-minus-1", "10.0.0.4", "", "-1"),
        ("space", "10.0.0.1 evil", "", "80"),
        ("bracketed-v4", "[10.0.0.1:9999]", "", "80"),
        ("nul", "10.0.0.5\u{0}", "", "80"),
        ("no-address", "", "", "80"),
    ];
    let accepted = [
        ("plain", "10.0.0.1", "192.0.2.1", "80"),
        ("node-fallback", "", "192.0.2.9", "81"),
        ("v6", "2001:DB8:0:0::1", "", "443"),
        ("v6-zone", "fe80::1%eth0", "", "8080"),
        ("name", "api-1.example.test", "", "9000"),
    ];
    let (server, _release) = serve(
        accepted
            .iter()
            .chain(&refused)
            .map(|&(id, service, node, port)| entry(id, service, node, port))
            .collect(),
    );
    let client = HttpClient::builder()
        .address(server.base())
        .build()
        .unwrap();
    let instancer = Instancer::builder(&client, "web")
        .first_fetch_timeout(BOUND)
        .build()
        .unwrap();

    // The service's address, else the node's; IPv6 in canonical form, in brackets.
    assert_eq!(
        next_addrs(&subscribe(&instancer)),
        [
            "10.0.0.1:80",
            "192.0.2.9:81",
            "[2001:db8::1]:443",
            "[fe80::1%eth0]:8080",
            "api-1.example.test:9000",
        ]
    );
    for (id, ..) in refused {
        let warnings = warnings_naming(&format!("{id:?}"));
        assert!(
            !warnings.is_empty(),
            "no warning names {id:?}: {:?}",
            support::logs::records()
        );
        assert!(
            warnings.iter().all(|w| w.contains("\"web\"")),
            "the warning names the service: {warnings:?}"
        );
    }
    for (id, ..) in accepted {
        assert!(warnings_naming(&format!("{id:?}")).is_empty(), "{id}");
    }
}

#[test]
fn a_flood_of_bad_entries_logs_a_few_lines_and_a_count() {
    support::logs::capture();
    let mut entries: Vec<String> = (0..500)
        .map(|n| entry(&format!("flood-{n}"), "10.0.0.1", "", "0"))
        .collect();
    entries.push(entry("flood-good", "10.0.0.1", "", "80"));
    let (server, _release) = serve(entries);
    let client = HttpClient::builder()
        .address(server.base())
        .build()
        .unwrap();
    let started = Instant::now();
    let instancer = Instancer::builder(&client, "flood")
        .first_fetch_timeout(BOUND)
        .build()
        .unwrap();
    assert_eq!(next_addrs(&subscribe(&instancer)), ["10.0.0.1:80"]);
    instancer.stop();
    let lines = warnings_naming("\"flood");
    assert!(
        (2..=10).contains(&lines.len()),
        "{} lines for one answer: {lines:#?}",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.contains("495 more")),
        "the rest are counted: {lines:#?}"
    );
    assert!(started.elapsed() < BOUND);
}

#[test]
fn a_real_agent_lists_what_a_registrant_sent_and_the_watch_skips_the_bad_ones() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    support::logs::capture();
    let service = format!("entries-{}", std::process::id());
    // What Consul 1.8.7 takes from any registrant without complaint.
    let registrations = [
        ("good", r#""Address":"10.0.0.1","Port":80"#),
        ("v6", r#""Address":"2001:DB8:0:0::1","Port":443"#),
        ("real-port-0", r#""Address":"10.0.0.2","Port":0"#),
        ("real-port-70000", r#""Address":"10.0.0.3","Port":70000"#),
        ("real-port-minus-1", r#""Address":"10.0.0.4","Port":-1"#),
        ("real-space", r#""Address":"10.0.0.1 evil","Port":80"#),
        ("real-bracketed", r#""Address":"[10.0.0.1:9999]","Port":80"#),
    ];
    for (id, fields) in registrations {
        let body = format!(r#"{{"ID":"{id}","Name":"{service}",{fields}}}"#);
        let reply = agent
            .put("/v1/agent/service/register", &body)
            .expect("register");
        assert_eq!(reply.status, 200, "Consul refused {id}: {}", reply.body);
    }
    let client = HttpClient::builder()
        .address(agent.http_base())
        .build()
        .unwrap();
    let instancer = Instancer::builder(&client, service.as_str())
        .first_fetch_timeout(BOUND)
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    let good = ["10.0.0.1:80", "[2001:db8::1]:443"];
    wait_event(&rx, "the good entries", is_set(&good));
    instancer.stop();
    for (id, _) in registrations
        .iter()
        .filter(|(id, _)| id.starts_with("real-"))
    {
        assert!(
            !warnings_naming(&format!("{id:?}")).is_empty(),
            "no warning names {id}"
        );
    }
    for (id, _) in registrations {
        let _ = agent.put(&format!("/v1/agent/service/deregister/{id}"), "");
    }
}
