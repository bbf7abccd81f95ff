//! The Consul backend against a real `consul agent -dev` (1.8.7) on loopback.
//!
//! The harness (tests/support/consul.rs) finds the binary; without it these tests skip
//! loudly, and fail under CI=true.
#![cfg(feature = "consul")]

mod support;

use std::time::{Duration, Instant};

use support::consul::{ConsulAgent, shared};
use support::events::{
    addr_endpointer, addrs, endpoints, is_error, is_set, next, next_addrs, subscribe, wait_event,
};
use support::fake_consul::spy;
use support::{BOUND, stop_promptly, unique};
#[cfg(feature = "tls")]
use waypost::TlsConfig;
use waypost::consul::{HttpClient, Instancer, Registrar};
use waypost::{Event, HttpErrorKind};

fn client(base: &str) -> HttpClient {
    HttpClient::builder().address(base).build().unwrap()
}

fn http_kind(event: &Event) -> Option<(HttpErrorKind, Option<u16>)> {
    match event {
        Event::Error(err) => match &**err {
            waypost::Error::Http(h) => Some((h.kind, h.status)),
            _ => None,
        },
        Event::Instances(_) => None,
    }
}

#[test]
fn an_unpassed_ttl_check_drops_the_instance_until_heartbeats_resume() {
    let Some(agent) = shared() else { return };
    let (spy, spied) = spy(client(&agent.http_base()));
    let service = unique("ttl");
    let registrar = Registrar::builder(&spy, &service, "127.0.0.1", 7201)
        .ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    let instancer = Instancer::builder(&spy, &service).build().unwrap();
    let rx = subscribe(&instancer);
    wait_event(&rx, "the instance", is_set(&["127.0.0.1:7201"]));
    spied.hold_passes(true);
    let held = Instant::now();
    wait_event(&rx, "the TTL to lapse", is_set(&[]));
    println!(
        "instance left the passing set {:?} after heartbeats stopped (TTL 1 s)",
        held.elapsed()
    );
    spied.hold_passes(false);
    wait_event(&rx, "the instance to return", is_set(&["127.0.0.1:7201"]));
}

#[test]
fn several_tags_must_all_match() {
    let Some(agent) = shared() else { return };
    let client = client(&agent.http_base());
    let service = unique("tags");
    let regs: Vec<waypost::Registration> = [
        (7301, ["a", "b"].as_slice()),
        (7302, &["b"]),
        (7303, &["A", "c"]),
    ]
    .iter()
    .map(|(port, tags)| {
        let mut b = Registrar::builder(&client, &service, "127.0.0.1", *port);
        for t in *tags {
            b = b.tag(*t);
        }
        b.build().unwrap().register().unwrap()
    })
    .collect();
    let expect = |tags: &[&str], want: &[&str]| {
        let instancer = Instancer::builder(&client, &service)
            .tags(tags.iter().copied())
            .build()
            .unwrap();
        assert_eq!(next_addrs(&subscribe(&instancer)), want, "tags {tags:?}");
    };
    expect(&["a", "b"], &["127.0.0.1:7301"]);
    expect(&["a"], &["127.0.0.1:7301", "127.0.0.1:7303"]); // case-insensitive
    expect(&["b", "c"], &[]);
    drop(regs);
}

#[test]
fn metadata_reaches_the_instance() {
    let Some(agent) = shared() else { return };
    let client = client(&agent.http_base());
    let service = unique("meta");
    let registrar = Registrar::builder(&client, &service, "127.0.0.1", 7401)
        .id("meta-1")
        .tag("v2")
        .meta("version", "2.1.0")
        .weights(7, 2)
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    let instancer = Instancer::builder(&client, &service).build().unwrap();
    let event = next(&subscribe(&instancer));
    let Event::Instances(set) = event else {
        panic!("{event:?}")
    };
    let meta = set[0].metadata().expect("metadata");
    assert_eq!(meta.tags().collect::<Vec<_>>(), ["v2"]);
    assert_eq!(meta.get("version"), Some("2.1.0"));
    assert_eq!(meta.weight(), Some(7));
    assert_eq!(meta.get("service_id"), Some("meta-1"));
    assert_eq!(meta.zone(), Some("dc1"));
    assert!(meta.get("node").is_some_and(|n| !n.is_empty()));
}

#[test]
fn acl_tokens_decide_what_is_seen() {
    let Some(agent) = ConsulAgent::builder().acl().spawn() else {
        return;
    };
    let master = agent.master_token().to_owned();
    let with = |token: Option<&str>| {
        let b = HttpClient::builder().address(agent.http_base());
        match token {
            Some(t) => b.token(t),
            None => b,
        }
        .build()
        .unwrap()
    };
    let registrar = Registrar::builder(&with(Some(&master)), "db", "127.0.0.1", 7501)
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    // Without a token Consul answers 200 []: indistinguishable from "no instances".
    assert!(
        Registrar::builder(&with(None), "db", "127.0.0.1", 7502)
            .build()
            .unwrap()
            .register()
            .is_err()
    );
    let first = |client: &HttpClient| {
        let instancer = Instancer::builder(client, "db").build().unwrap();
        next(&subscribe(&instancer))
    };
    assert_eq!(addrs(&first(&with(None))), Vec::<String>::new());
    let wrong = first(&with(Some("00000000-0000-0000-0000-000000000001")));
    assert_eq!(
        http_kind(&wrong),
        Some((HttpErrorKind::Status, Some(403))),
        "{wrong:?}"
    );

    let policy = r#"{"Name":"db-read","Rules":"service \"db\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }"}"#;
    let reply = agent
        .request("PUT", "/v1/acl/policy", Some(&master), policy)
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = agent
        .request(
            "PUT",
            "/v1/acl/token",
            Some(&master),
            r#"{"Policies":[{"Name":"db-read"}]}"#,
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let read = token["SecretID"].as_str().unwrap().to_owned();
    assert_eq!(addrs(&first(&with(Some(&read)))), ["127.0.0.1:7501"]);
}

#[test]
#[cfg(feature = "tls")]
fn tls_with_the_right_ca_works_and_a_wrong_ca_is_a_tls_error() {
    let Some(agent) = ConsulAgent::builder().tls().spawn() else {
        return;
    };
    let over_https = |ca: std::path::PathBuf| {
        let tls = TlsConfig::builder().ca_file(ca).build().unwrap();
        HttpClient::builder()
            .address(agent.https_base())
            .tls(tls)
            .build()
            .unwrap()
    };
    let good = over_https(agent.ca_pem_path());
    let registrar = Registrar::builder(&good, "secure", "127.0.0.1", 7601)
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    let instancer = Instancer::builder(&good, "secure").build().unwrap();
    assert_eq!(next_addrs(&subscribe(&instancer)), ["127.0.0.1:7601"]);

    // stop() over TLS, during a blocking query.
    let (spy, spied) = spy(good.clone());
    let watching = Instancer::builder(&spy, "secure").build().unwrap();
    // The spy reports the blocking query as it starts: stop() may find it connecting,
    // sending or held by the agent, and must be prompt in every case (the held case
    // alone is pinned down deterministically by tests/consul_stop.rs).
    spied.blocking_query();
    let took = stop_promptly(&watching);
    println!("stop() during a blocking query over TLS took {took:?}");

    let instancer = Instancer::builder(&over_https(agent.other_ca_pem_path()), "secure")
        .build()
        .unwrap();
    let event = next(&subscribe(&instancer));
    assert_eq!(
        http_kind(&event).map(|k| k.0),
        Some(HttpErrorKind::Tls),
        "{event:?}"
    );
}

#[test]
#[cfg(feature = "tls")]
fn tls_with_a_client_certificate() {
    let Some(agent) = ConsulAgent::builder().tls_verify_clients().spawn() else {
        return;
    };
    let build = |with_cert: bool| {
        let mut tls = TlsConfig::builder().ca_file(agent.ca_pem_path());
        if with_cert {
            tls = tls.client_cert_files(agent.client_cert_path(), agent.client_key_path());
        }
        let client = HttpClient::builder()
            .address(agent.https_base())
            .tls(tls.build().unwrap())
            .build()
            .unwrap();
        let instancer = Instancer::builder(&client, "consul").build().unwrap();
        next(&subscribe(&instancer))
    };
    let with = build(true);
    assert_eq!(addrs(&with).len(), 1, "the agent's own service: {with:?}");
    let without = build(false);
    let kind = http_kind(&without).map(|k| k.0);
    println!("without a client certificate: {without:?}");
    assert_eq!(kind, Some(HttpErrorKind::Tls), "{without:?}");
}

#[test]
fn a_fresh_agent_restart_is_survived_by_watch_and_registration() {
    let Some(mut agent) = ConsulAgent::new() else {
        return;
    };
    let client = client(&agent.http_base());
    let registrar = Registrar::builder(&client, "phoenix", "127.0.0.1", 7701)
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    let instancer = std::sync::Arc::new(Instancer::builder(&client, "phoenix").build().unwrap());
    let rx = subscribe(&*instancer);
    let endpointer = addr_endpointer(instancer.clone());
    endpointer.wait_ready(BOUND).unwrap();
    wait_event(&rx, "the instance", is_set(&["127.0.0.1:7701"]));

    // While the agent is down only error events can come, so what the endpointer
    // serves then is exactly "the last set kept". (Once it is back with a fresh data
    // dir, it may truly list nothing until the heartbeat registers again: a real
    // empty set, which the endpointer must follow.)
    let restarted = Instant::now();
    agent.stop();
    wait_event(&rx, "an error event", is_error);
    assert_eq!(endpoints(&endpointer), ["127.0.0.1:7701"], "last set kept");
    agent.restart_fresh(); // wipes the data dir and starts on the same port
    wait_event(&rx, "the instance back", is_set(&["127.0.0.1:7701"]));
    println!(
        "registration restored and seen {:?} after the restart began",
        restarted.elapsed()
    );
    let reply = agent
        .get("/v1/agent/service/phoenix-127.0.0.1-7701")
        .unwrap();
    assert_eq!(reply.status, 200, "registered again: {}", reply.body);
}

#[test]
fn stop_cuts_a_blocking_query_short() {
    let Some(agent) = shared() else { return };
    let (spy, spied) = spy(client(&agent.http_base()));
    let instancer = Instancer::builder(&spy, "consul").build().unwrap();
    // As in the TLS test: stop() lands somewhere in the query's life, and must be
    // prompt wherever (tests/consul_stop.rs holds the request deterministically).
    spied.blocking_query();
    let took = stop_promptly(&instancer);
    println!("stop() during a blocking query (wait 5 min) took {took:?}");
}
