//! The Eureka backend against the Eureka server double (tests/support/eureka_double.rs;
//! no real Eureka server can be installed here), and against two third-party clients
//! that validate both the double and waypost's wire format: eureka-js-client (JSON)
//! and py-eureka-client (XML), driven as child processes.
#![cfg(feature = "eureka")]

mod support;

use std::time::Duration;

use support::eureka_clients::{ClientConfig, EurekaClient, require_ejs, require_py};
use support::eureka_double::{Broken, EurekaDouble};
use support::events::{addr_endpointer, endpoints, is_error, is_set, next, subscribe, wait_event};
use support::wait_until;
use waypost::Event;
use waypost::eureka::{Client, HttpClient, InstanceInfo, Instancer, Registrar, Status};

/// Polls every 100 ms: the double answers from its registry, with no response cache.
const POLL: Duration = Duration::from_millis(100);

fn client(urls: &[String]) -> HttpClient {
    HttpClient::builder()
        .servers(urls.iter().cloned())
        .request_timeout(Duration::from_secs(2))
        .build()
        .expect("a client")
}

fn instancer(client: &HttpClient, app: &str) -> Instancer {
    Instancer::app(client, app)
        .interval(POLL)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .expect("an instancer")
}

fn registrar(client: &HttpClient, app: &str, addr: &str) -> Registrar {
    Registrar::builder(client, app, addr)
        .renewal_interval(Duration::from_secs(1))
        .lease_duration(Duration::from_secs(3))
        .build()
        .expect("a registrar")
}

#[test]
fn a_registration_shows_in_the_server_and_in_the_instancer_and_goes_on_drop() {
    let d = EurekaDouble::start();
    let c = client(&[d.url()]);
    let r = Registrar::builder(&c, "payments", "127.0.0.1:8080")
        .metadata("zone", "eu-1")
        .renewal_interval(Duration::from_secs(1))
        .lease_duration(Duration::from_secs(3))
        .build()
        .unwrap();
    let registration = r.register().unwrap();
    let shown = d.wait_instances("payments", "registered", |i| i.len() == 1);
    let one = &shown[0];
    assert_eq!(
        (
            one.app.as_str(),
            one.id.as_str(),
            one.port,
            one.status.as_str()
        ),
        ("PAYMENTS", "127.0.0.1:payments:8080", 8080, "UP")
    );
    assert_eq!(one.metadata.get("zone").map(String::as_str), Some("eu-1"));
    let i = instancer(&c, "payments");
    let rx = subscribe(&i);
    let event = wait_event(&rx, "the instance", is_set(&["127.0.0.1:8080"]));
    if let Event::Instances(set) = &event {
        assert_eq!(
            set.iter().next().unwrap().metadata().unwrap().zone(),
            Some("eu-1")
        );
    }
    // Heartbeats renew it.
    d.wait_instances("payments", "a renewal", |i| {
        i.first().is_some_and(|i| i.renewals >= 1)
    });
    drop(registration);
    d.wait_request("the cancel", |r| r.method == "DELETE");
    assert!(d.instances("payments").is_empty());
    wait_event(&rx, "the instance gone", is_set(&[]));
}

#[test]
fn a_renewal_answered_404_registers_again() {
    let d = EurekaDouble::start();
    let c = client(&[d.url()]);
    let r = registrar(&c, "orders", "127.0.0.1:9000");
    let _registration = r.register().unwrap();
    d.wait_instances("orders", "registered", |i| i.len() == 1);
    let mark = d.mark();
    assert!(d.forget("orders", "127.0.0.1:orders:9000"));
    d.wait_request_from(mark, "a renewal answered 404", |r| {
        r.method == "PUT" && r.status == 404
    });
    d.wait_request_from(mark, "the registration again", |r| {
        r.method == "POST" && r.status == 204
    });
    d.wait_instances("orders", "back", |i| i.len() == 1);
}

#[test]
fn lease_expiry_removes_an_instance_whose_renewals_stop() {
    let d = EurekaDouble::config()
        .eviction_interval(Duration::from_millis(100))
        .start();
    let c = client(&[d.url()]);
    // Registered once, never renewed: a process that died.
    let mut info = InstanceInfo::new("ghost", "g-1", "127.0.0.1", "127.0.0.1").with_port(7000);
    info.lease_duration = Duration::from_secs(1);
    c.register(&info).unwrap();
    let i = instancer(&c, "ghost");
    let rx = subscribe(&i);
    wait_event(&rx, "the instance", is_set(&["127.0.0.1:7000"]));
    wait_event(&rx, "the instance evicted", is_set(&[]));
}

#[test]
fn out_of_service_instances_are_left_out_and_return_when_up() {
    let d = EurekaDouble::start();
    let c = client(&[d.url()]);
    let a = registrar(&c, "shop", "127.0.0.1:8001");
    let b = registrar(&c, "shop", "127.0.0.1:8002");
    let (_ra, _rb) = (a.register().unwrap(), b.register().unwrap());
    let i = instancer(&c, "shop");
    let rx = subscribe(&i);
    wait_event(&rx, "both", is_set(&["127.0.0.1:8001", "127.0.0.1:8002"]));
    b.set_out_of_service(true).unwrap();
    wait_event(&rx, "b out of service", is_set(&["127.0.0.1:8001"]));
    // Its own status does not undo an operator's override.
    b.set_status(Status::Up).unwrap();
    assert_eq!(d.instances("shop")[1].status, "OUT_OF_SERVICE");
    b.set_out_of_service(false).unwrap();
    wait_event(&rx, "b back", is_set(&["127.0.0.1:8001", "127.0.0.1:8002"]));
    // Its own DOWN takes it out too.
    a.set_status(Status::Down).unwrap();
    wait_event(&rx, "a down", is_set(&["127.0.0.1:8002"]));
}

#[test]
fn one_of_two_servers_down_fails_over_for_registrar_and_instancer() {
    let first = EurekaDouble::start();
    let second = EurekaDouble::start();
    let c = client(&[first.url(), second.url()]);
    let r = registrar(&c, "failover", "127.0.0.1:8100");
    let _registration = r.register().unwrap();
    first.wait_instances("failover", "on the first", |i| i.len() == 1);
    assert!(
        second.instances("failover").is_empty(),
        "no replication between peers"
    );
    let e = addr_endpointer(instancer(&c, "failover"));
    wait_until("the set", || endpoints(&e) == ["127.0.0.1:8100"]);
    first.stop();
    // The renewal goes to the second server, which does not know it: 404, register.
    second.wait_request("a renewal answered 404", |r| {
        r.method == "PUT" && r.status == 404
    });
    second.wait_instances("failover", "registered on the second", |i| i.len() == 1);
    // The instancer reads the second server now, and still sees it.
    second.wait_request("a read", |r| r.method == "GET");
    wait_until("the set from the second server", || {
        e.status().last_error.is_none() && endpoints(&e) == ["127.0.0.1:8100"]
    });
}

#[test]
fn broken_answers_are_typed_error_events_and_the_last_set_stays() {
    let d = EurekaDouble::start();
    let c = client(&[d.url()]);
    let r = registrar(&c, "fragile", "127.0.0.1:8200");
    let _registration = r.register().unwrap();
    let e = addr_endpointer(instancer(&c, "fragile"));
    wait_until("the set", || endpoints(&e) == ["127.0.0.1:8200"]);
    for broken in [Broken::MalformedJson, Broken::Html(500), Broken::WrongShape] {
        let mark = d.mark();
        d.script_reads(1, broken.clone());
        wait_until("an error", || e.status().last_error.is_some());
        let err = e.status().last_error.unwrap();
        assert!(
            matches!(&*err, waypost::Error::Http(h) if matches!(h.kind, waypost::HttpErrorKind::Decode | waypost::HttpErrorKind::Status)),
            "{broken:?}: {err}"
        );
        assert_eq!(
            endpoints(&e),
            ["127.0.0.1:8200"],
            "{broken:?}: the last set stays"
        );
        wait_until("recovery", || e.status().last_error.is_none());
        assert!(d.requests().len() > mark);
    }
}

#[test]
fn an_unknown_app_is_empty_but_a_wrong_base_path_is_an_error() {
    let d = EurekaDouble::start();
    let right = client(&[d.url()]);
    let i = instancer(&right, "nobody");
    let event = next(&subscribe(&i));
    assert!(
        matches!(&event, Event::Instances(set) if set.is_empty()),
        "{event:?}"
    );
    let wrong = client(&[format!("{}/v2", d.url())]);
    let i = instancer(&wrong, "nobody");
    let event = next(&subscribe(&i));
    assert!(is_error(&event), "{event:?}");
}

#[test]
fn third_party_clients_and_waypost_see_each_other() {
    let d = EurekaDouble::start();
    let c = client(&[d.url()]);
    let mut clients: Vec<EurekaClient> = Vec::new();
    if let Some(ejs) = require_ejs() {
        clients.push(EurekaClient::spawn(
            &ejs,
            &ClientConfig::new(&d.url(), "interop", "ejs-1", 9101),
        ));
    }
    if let Some(py) = require_py() {
        clients.push(EurekaClient::spawn(
            &py,
            &ClientConfig::new(&d.url(), "interop", "py-1", 9102),
        ));
    }
    if clients.is_empty() {
        return; // skipped loudly by require_*
    }
    for client in &mut clients {
        client.wait_event("registered");
    }
    // Their registrations in waypost's instancer.
    let i = instancer(&c, "interop");
    let rx = subscribe(&i);
    let want: Vec<String> = clients
        .iter()
        .map(|c| match c.kind() {
            support::eureka_clients::Kind::Ejs => "127.0.0.1:9101".to_owned(),
            support::eureka_clients::Kind::Py => "127.0.0.1:9102".to_owned(),
        })
        .collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    wait_event(&rx, "the clients' instances", is_set(&want));
    // waypost's registration in their lookups.
    let r = registrar(&c, "interop", "127.0.0.1:9100");
    let _registration = r.register().unwrap();
    for client in &mut clients {
        let kind = client.kind();
        let mut seen = false;
        for _ in 0..50 {
            if client.lookup("interop").sees("127.0.0.1:interop:9100") {
                seen = true;
                break;
            }
            // Their caches refresh on their own fetch interval (300 ms, py: 1 s):
            // wait for the next fetch, bounded, before asking again.
            client.wait_event("fetched");
        }
        assert!(
            seen,
            "{kind:?} never saw waypost's instance: {:#?}",
            client.events()
        );
    }
}

/// The example itself: its `run` is called here, `main` is not.
#[path = "../examples/eureka.rs"]
mod example;

#[test]
fn the_example_runs_for_two_seconds() {
    let d = EurekaDouble::start();
    let c = client(&[d.url()]);
    let peer = registrar(&c, "example", "127.0.0.1:8300");
    let _peer = peer.register().unwrap();
    let args = example::Args {
        servers: vec![d.url()],
        app: "example".into(),
        register: Some("127.0.0.1:8301".into()),
        interval: POLL,
        seconds: Some(2),
    };
    let (_interrupt, interrupted) = crossbeam_channel::bounded(1);
    let mut out = Vec::new();
    example::run(&args, &interrupted, &mut out).expect("the example runs");
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("127.0.0.1:8300") && out.contains("127.0.0.1:8301"),
        "{out}"
    );
    assert!(out.contains("a call goes to http://"), "{out}");
    assert_eq!(d.instances("example").len(), 1, "the example deregistered");
}
