//! The DNS backend against a real dnsmasq (2.90) on loopback: the harness in
//! tests/support/dnsmasq.rs starts one per test and restarts it on the same port to
//! change the records (dnsmasq reads SRV records only at start). `dig` is the
//! reference client the sets are checked against.
#![cfg(feature = "dnssrv")]

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use support::dnsmasq::{Dnsmasq, Records};
use support::events::{addrs, describe, is_error, is_set, next, subscribe, wait_event};
use waypost::dnssrv::{Cancel, Client, Instancer, InstancerBuilder, Resolver};
use waypost::{DnsErrorKind, Error, Event, Instance};

const NAME: &str = "_api._tcp.example.test";
/// TTL-driven polling at a 100 ms floor: dnsmasq serves TTL 0.
const FLOOR: Duration = Duration::from_millis(100);

fn client(dns: &Dnsmasq) -> Client {
    Client::builder()
        .server(dns.addr())
        .timeout(Duration::from_millis(500))
        .attempts(2)
        .build()
        .expect("a client")
}

/// An SRV instancer on `dns`, polling at the floor, retrying fast.
fn srv(dns: &Dnsmasq, name: &str) -> InstancerBuilder {
    Instancer::srv(name)
        .resolver(client(dns))
        .ttl_bounds(FLOOR, Duration::from_secs(1))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
}

fn two() -> Records {
    Records::new()
        .srv(NAME, "node1.example.test", 8080, 10, 60)
        .srv(NAME, "node2.example.test", 8081, 10, 40)
        .host(
            "node1.example.test",
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)),
        )
        .host(
            "node2.example.test",
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 12)),
        )
}

fn set(event: &Event) -> Vec<Instance> {
    match event {
        Event::Instances(set) => set.iter().cloned().collect(),
        Event::Error(err) => panic!("an error event: {err}"),
    }
}

#[test]
fn two_srv_records_are_two_instances_with_weight_and_priority() {
    let Some(dns) = Dnsmasq::start(&two()) else {
        return;
    };
    let instancer = srv(&dns, NAME).build().unwrap();
    let rx = subscribe(&instancer);
    let event = next(&rx);
    let got: Vec<(String, Option<u32>, Option<String>)> = set(&event)
        .iter()
        .map(|i| {
            let m = i.metadata().unwrap();
            (
                i.addr().to_owned(),
                m.weight(),
                m.get("priority").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "node1.example.test:8080".into(),
                Some(60),
                Some("10".into())
            ),
            (
                "node2.example.test:8081".into(),
                Some(40),
                Some("10".into())
            ),
        ]
    );
}

#[test]
fn dig_and_waypost_agree_on_the_set() {
    let records = two().srv(NAME, "node3.example.test", 8082, 20, 0).srv(
        NAME,
        "node4.example.test",
        9000,
        30,
        5,
    );
    let Some(dns) = Dnsmasq::start(&records) else {
        return;
    };
    let dug = dns.dig_srv(NAME);
    let lookup = client(&dns).lookup_srv(NAME, &Cancel::new()).unwrap();
    let mut ours: Vec<(u16, u16, u16, String)> = lookup
        .records
        .iter()
        .map(|s| (s.priority, s.weight, s.port, s.target.clone()))
        .collect();
    ours.sort();
    let theirs: Vec<(u16, u16, u16, String)> = dug
        .iter()
        .map(|s| (s.priority, s.weight, s.port, s.target.clone()))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 4);
}

#[test]
fn a_record_added_then_removed_is_seen_at_the_next_poll() {
    let Some(mut dns) = Dnsmasq::start(&two()) else {
        return;
    };
    let instancer = srv(&dns, NAME).build().unwrap();
    let rx = subscribe(&instancer);
    wait_event(
        &rx,
        "two",
        is_set(&["node1.example.test:8080", "node2.example.test:8081"]),
    );
    let three = two().srv(NAME, "node3.example.test", 8082, 10, 10);
    let changed = Instant::now();
    dns.set_records(&three);
    wait_event(
        &rx,
        "the added record",
        is_set(&[
            "node1.example.test:8080",
            "node2.example.test:8081",
            "node3.example.test:8082",
        ]),
    );
    eprintln!("record added -> event: {:?}", changed.elapsed());
    dns.set_records(&Records::new().srv(NAME, "node3.example.test", 8082, 10, 10));
    wait_event(
        &rx,
        "the removed records",
        is_set(&["node3.example.test:8082"]),
    );
}

#[test]
fn every_priority_group_by_default_the_lowest_on_request() {
    let records = Records::new()
        .srv(NAME, "main.example.test", 80, 10, 1)
        .srv(NAME, "backup.example.test", 80, 20, 1);
    let Some(dns) = Dnsmasq::start(&records) else {
        return;
    };
    let all = srv(&dns, NAME).build().unwrap();
    let lowest = srv(&dns, NAME).lowest_priority_only().build().unwrap();
    let all_rx = subscribe(&all);
    assert_eq!(
        addrs(&next(&all_rx)),
        ["backup.example.test:80", "main.example.test:80"]
    );
    assert_eq!(addrs(&next(&subscribe(&lowest))), ["main.example.test:80"]);
}

#[test]
fn forty_records_truncated_over_udp_are_all_seen_over_tcp() {
    let mut records = Records::new();
    for i in 0..40u16 {
        records = records.srv(NAME, &format!("node{i:02}.example.test"), 9000 + i, 10, 1);
    }
    let Some(dns) = Dnsmasq::start(&records) else {
        return;
    };
    // dig over UDP sees the truncation (and a partial set)...
    let udp = dns.dig_reply(&["+ignore", "+notcp", "SRV", NAME]);
    assert!(udp.has_flag("tc") && udp.answers("SRV") < 40, "{udp:?}");
    // ... and waypost asks again over TCP: all forty.
    let instancer = srv(&dns, NAME).build().unwrap();
    let event = next(&subscribe(&instancer));
    assert_eq!(set(&event).len(), 40, "{}", describe(&event));
}

#[test]
fn targets_resolve_to_the_addresses_of_the_additional_section() {
    let records = two().host("node1.example.test", IpAddr::V6(Ipv6Addr::LOCALHOST));
    let Some(dns) = Dnsmasq::start(&records) else {
        return;
    };
    let instancer = srv(&dns, NAME).resolve_targets().build().unwrap();
    let event = next(&subscribe(&instancer));
    let got: Vec<(String, Option<String>)> = set(&event)
        .iter()
        .map(|i| {
            let target = i
                .metadata()
                .and_then(|m| m.get("target"))
                .map(str::to_owned);
            (i.addr().to_owned(), target)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("127.0.0.11:8080".into(), Some("node1.example.test".into())),
            ("127.0.0.12:8081".into(), Some("node2.example.test".into())),
            ("[::1]:8080".into(), Some("node1.example.test".into())),
        ]
    );
}

#[test]
fn host_mode_lists_every_address_of_the_name() {
    let records = Records::new()
        .host("api.example.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21)))
        .host("api.example.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 22)))
        .host("api.example.test", IpAddr::V6(Ipv6Addr::LOCALHOST));
    let Some(dns) = Dnsmasq::start(&records) else {
        return;
    };
    let instancer = Instancer::host("api.example.test:8443")
        .resolver(client(&dns))
        .ttl_bounds(FLOOR, Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(
        addrs(&next(&subscribe(&instancer))),
        ["127.0.0.21:8443", "127.0.0.22:8443", "[::1]:8443"]
    );
}

#[test]
fn an_unknown_name_is_an_empty_set_and_a_refused_one_an_error() {
    let Some(dns) = Dnsmasq::start(&two()) else {
        return;
    };
    // NXDOMAIN under example.test (dnsmasq's --local): no service, not an error.
    let missing = srv(&dns, "_nope._tcp.example.test").build().unwrap();
    let event = next(&subscribe(&missing));
    assert!(set(&event).is_empty(), "{}", describe(&event));
    // Outside the domain dnsmasq serves: REFUSED, an error event.
    let refused = srv(&dns, "_api._tcp.elsewhere.test").build().unwrap();
    let event = next(&subscribe(&refused));
    match &event {
        Event::Error(err) => assert!(
            matches!(&**err, Error::Dns(d) if d.kind == DnsErrorKind::Refused && d.rcode == Some(5)),
            "{err}"
        ),
        other => panic!("an error was expected: {}", describe(other)),
    }
}

#[test]
fn a_stopped_server_is_an_error_the_set_stays_and_it_recovers() {
    let Some(mut dns) = Dnsmasq::start(&two()) else {
        return;
    };
    let instancer = srv(&dns, NAME).build().unwrap();
    let endpointer = support::events::addr_endpointer(instancer);
    let want = ["node1.example.test:8080", "node2.example.test:8081"];
    support::wait_until("the set", || {
        support::events::endpoints(&endpointer) == want
    });
    dns.stop();
    support::wait_until("an error", || endpointer.status().last_error.is_some());
    assert_eq!(
        support::events::endpoints(&endpointer),
        want,
        "the last set stays"
    );
    dns.start_again();
    support::wait_until("recovery", || endpointer.status().last_error.is_none());
    assert_eq!(support::events::endpoints(&endpointer), want);
}

/// The client, telling each query as it starts.
#[derive(Debug)]
struct Telling {
    client: Client,
    asked: crossbeam_channel::Sender<()>,
}

impl Resolver for Telling {
    fn lookup_srv(
        &self,
        name: &str,
        cancel: &Cancel,
    ) -> waypost::Result<waypost::dnssrv::SrvLookup> {
        let _ = self.asked.send(());
        self.client.lookup_srv(name, cancel)
    }
    fn lookup_ip(&self, host: &str, cancel: &Cancel) -> waypost::Result<waypost::dnssrv::IpLookup> {
        let _ = self.asked.send(());
        self.client.lookup_ip(host, cancel)
    }
}

#[test]
fn stop_is_prompt_while_a_query_waits_on_a_paused_server() {
    let Some(dns) = Dnsmasq::start(&two()) else {
        return;
    };
    // A long timeout: only a stop that cuts the query short is prompt.
    let client = Client::builder()
        .server(dns.addr())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (asked_tx, asked) = crossbeam_channel::unbounded();
    let instancer = Instancer::srv(NAME)
        .resolver(Telling {
            client,
            asked: asked_tx,
        })
        .interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    assert!(!is_error(&next(&rx)));
    asked.recv_timeout(support::BOUND).expect("the first query");
    // Paused within the second before the next query: that one waits on it.
    dns.pause();
    asked
        .recv_timeout(support::BOUND)
        .expect("a query to the paused server");
    let took = support::stop_promptly(&instancer);
    dns.resume();
    eprintln!("stop mid-query: {took:?}");
}

#[path = "../examples/dnssrv.rs"]
mod example;

#[test]
fn the_example_runs_for_two_seconds() {
    let Some(dns) = Dnsmasq::start(&two()) else {
        return;
    };
    let args = example::Args {
        name: Some(NAME.into()),
        host: None,
        server: Some(dns.addr()),
        resolve: true,
        floor: FLOOR,
        seconds: Some(2),
    };
    let (_interrupt, interrupted) = crossbeam_channel::bounded(1);
    let mut out = Vec::new();
    example::run(&args, &interrupted, &mut out).expect("the example runs");
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("127.0.0.11:8080") && out.contains("127.0.0.12:8081"),
        "{out}"
    );
    assert!(out.contains("a call goes to http://"), "{out}");
}
