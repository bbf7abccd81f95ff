//! The DNS client against scripted servers on loopback (`support::fake_dns`): what it
//! takes from an answer, which packets it drops, truncation and TCP, timeouts,
//! cancelling, fail-over between servers, and resolv.conf's search list and options.
#![cfg(feature = "dnssrv")]

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use support::BOUND;
use support::fake_dns::{Answer, FakeDns, Out, QTYPE_A, QTYPE_AAAA, QTYPE_SRV, Seen};
use support::scratch::Scratch;
use waypost::dnssrv::{Cancel, Client, ClientBuilder, Resolver, Srv, SrvLookup};
use waypost::{DnsError, DnsErrorKind, Error, Result};

const NAME: &str = "_api._tcp.example.test";

/// A client of these servers, names as given; 2 s per attempt, one attempt: a test
/// that expects an answer gets it long before.
fn client_of(servers: &[&FakeDns]) -> ClientBuilder {
    servers
        .iter()
        .fold(Client::builder(), |b, s| b.server(s.addr()))
        .timeout(Duration::from_secs(2))
        .attempts(1)
}

fn client(servers: &[&FakeDns]) -> Client {
    client_of(servers).build().unwrap()
}

fn lookup(client: &Client, name: &str) -> Result<SrvLookup> {
    client.lookup_srv(name, &Cancel::new())
}

fn dns_error<T: std::fmt::Debug>(result: Result<T>) -> Box<DnsError> {
    match result {
        Err(Error::Dns(dns)) => dns,
        other => panic!("not a DNS error: {other:?}"),
    }
}

/// The answer the tests want to see, and a decoy with another target.
fn right(seen: &Seen) -> Out {
    Answer::to(seen)
        .srv(10, 60, 8080, "right.example.test")
        .reply()
}

fn decoy(seen: &Seen) -> Answer {
    Answer::to(seen).srv(10, 60, 8080, "decoy.example.test")
}

fn targets(lookup: &SrvLookup) -> Vec<&str> {
    lookup.records.iter().map(|r| r.target.as_str()).collect()
}

#[test]
fn two_srv_records_come_back_with_their_addresses_and_ttl() {
    let fake = FakeDns::udp(|seen| {
        vec![
            Answer::to(seen)
                .ttl(30)
                .srv(10, 60, 8080, "a.example.test.")
                .srv(20, 0, 8081, "b.example.test")
                .ttl(45)
                .additional("a.example.test", Ipv4Addr::new(10, 0, 0, 1))
                .reply(),
        ]
    });
    let got = lookup(&client(&[&fake]), NAME).unwrap();
    assert_eq!(
        got.records,
        vec![
            Srv::new(10, 60, 8080, "a.example.test"),
            Srv::new(20, 0, 8081, "b.example.test"),
        ]
    );
    assert_eq!(
        got.addresses,
        vec![("a.example.test".to_owned(), IpAddr::from([10, 0, 0, 1]))]
    );
    assert_eq!(got.ttl, Some(Duration::from_secs(30)));
    let seen = fake.next_seen(BOUND);
    assert_eq!(
        (seen.name.as_str(), seen.qtype, seen.tcp),
        (NAME, QTYPE_SRV, false)
    );
}

#[test]
fn a_reply_with_another_id_is_dropped_and_the_right_one_used() {
    let fake = FakeDns::udp(|seen| vec![decoy(seen).id(seen.id ^ 0x5a5a).reply(), right(seen)]);
    let got = lookup(&client(&[&fake]), NAME).unwrap();
    assert_eq!(targets(&got), ["right.example.test"]);
}

#[test]
fn a_reply_to_another_question_is_dropped() {
    let fake = FakeDns::udp(|seen| {
        vec![
            decoy(seen)
                .question("_web._tcp.example.test", QTYPE_SRV)
                .reply(),
            decoy(seen).question(NAME, QTYPE_A).reply(),
            right(seen),
        ]
    });
    let got = lookup(&client(&[&fake]), NAME).unwrap();
    assert_eq!(targets(&got), ["right.example.test"]);
}

#[test]
fn a_packet_from_another_socket_never_reaches_the_connected_socket() {
    // The decoy is a perfect reply (id, question) sent first, to the client's port
    // learnt from the query, but from another source port.
    let fake = FakeDns::udp(|seen| vec![Out::FromElsewhere(decoy(seen).bytes()), right(seen)]);
    let got = lookup(&client(&[&fake]), NAME).unwrap();
    assert_eq!(targets(&got), ["right.example.test"]);
}

#[test]
fn a_malformed_packet_with_our_id_is_malformed() {
    let fake = FakeDns::udp(|seen| {
        let mut bytes = seen.id.to_be_bytes().to_vec();
        // QR, one question announced, then a compression pointer to nowhere.
        bytes.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 33]);
        vec![Out::Reply(bytes)]
    });
    let error = dns_error(lookup(&client(&[&fake]), NAME));
    assert_eq!(error.kind, DnsErrorKind::Malformed);
    assert_eq!(error.server, Some(fake.addr()));
    assert!(error.source.is_some());
}

#[test]
fn a_truncated_answer_without_tcp_is_truncated_and_never_used() {
    let fake = FakeDns::udp(|seen| vec![decoy(seen).truncated().reply()]);
    let error = dns_error(lookup(&client(&[&fake]), NAME));
    assert_eq!(error.kind, DnsErrorKind::Truncated);
    assert_eq!(error.server, Some(fake.addr()));
    assert!(Error::Dns(error).is_transient());
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp_for_the_full_set() {
    let fake = FakeDns::udp_and_tcp(|seen| match seen.tcp {
        false => vec![decoy(seen).truncated().reply()],
        true => vec![
            Answer::to(seen)
                .srv(1, 1, 1, "one.example.test")
                .srv(1, 1, 2, "two.example.test")
                .srv(1, 1, 3, "three.example.test")
                .reply(),
        ],
    });
    let got = lookup(&client(&[&fake]), NAME).unwrap();
    assert_eq!(
        targets(&got),
        ["one.example.test", "two.example.test", "three.example.test"]
    );
    let transports: Vec<bool> = fake.seen_now().iter().map(|s| s.tcp).collect();
    assert_eq!(transports, [false, true]);
}

#[test]
fn a_tcp_answer_truncated_again_or_of_length_zero_is_malformed() {
    for zero in [false, true] {
        let fake = FakeDns::udp_and_tcp(move |seen| match (seen.tcp, zero) {
            (false, _) => vec![decoy(seen).truncated().reply()],
            (true, false) => vec![decoy(seen).truncated().reply()],
            (true, true) => vec![Out::Raw(vec![0, 0])],
        });
        let error = dns_error(lookup(&client(&[&fake]), NAME));
        assert_eq!(error.kind, DnsErrorKind::Malformed, "zero length: {zero}");
    }
}

#[test]
fn a_silent_server_times_out_after_timeout_times_attempts() {
    let fake = FakeDns::udp(|_| vec![]);
    let client = client_of(&[&fake])
        .timeout(Duration::from_millis(200))
        .attempts(2)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = dns_error(lookup(&client, NAME));
    let took = started.elapsed();
    assert_eq!(error.kind, DnsErrorKind::Timeout);
    assert_eq!(error.server, Some(fake.addr()));
    assert_eq!((&*error.name, error.record_type), (NAME, "SRV"));
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(fake.seen_now().len(), 2, "one query per attempt");
}

#[test]
fn a_cancel_cuts_the_wait_on_a_silent_server_short() {
    let fake = FakeDns::udp(|_| vec![]);
    let client = client_of(&[&fake])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let cancel = Cancel::new();
    let (done_tx, done) = bounded(1);
    let asking = {
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("dns-lookup".into())
            .spawn(move || done_tx.send(client.lookup_srv(NAME, &cancel)).unwrap())
            .unwrap()
    };
    fake.next_seen(BOUND);
    let fired = Instant::now();
    cancel.cancel();
    let result = done.recv_timeout(BOUND).expect("the lookup returned");
    let took = fired.elapsed();
    assert_eq!(dns_error(result).kind, DnsErrorKind::Cancelled);
    assert!(took < Duration::from_secs(1), "{took:?}");
    asking.join().unwrap();
}

#[test]
fn servfail_moves_to_the_next_server() {
    let failing = FakeDns::udp(|seen| vec![Answer::to(seen).rcode(2).reply()]);
    let answering = FakeDns::udp(|seen| vec![right(seen)]);
    let got = lookup(&client(&[&failing, &answering]), NAME).unwrap();
    assert_eq!(targets(&got), ["right.example.test"]);
    assert_eq!(failing.seen_now().len(), 1);
    assert_eq!(answering.seen_now().len(), 1);
}

#[test]
fn refused_alone_is_refused_with_its_code_and_server() {
    let fake = FakeDns::udp(|seen| vec![Answer::to(seen).rcode(5).reply()]);
    let client = client_of(&[&fake]).attempts(2).build().unwrap();
    let error = dns_error(lookup(&client, NAME));
    assert_eq!(error.kind, DnsErrorKind::Refused);
    assert_eq!(error.rcode, Some(5));
    assert_eq!(error.server, Some(fake.addr()));
    assert_eq!(
        fake.seen_now().len(),
        2,
        "asked again on the second attempt"
    );
}

#[test]
fn nxdomain_is_an_empty_answer_with_the_negative_ttl() {
    let fake = FakeDns::udp(|seen| vec![Answer::to(seen).rcode(3).soa(300, 15).reply()]);
    let got = lookup(&client(&[&fake]), NAME).unwrap();
    assert!(got.records.is_empty());
    assert_eq!(got.ttl, Some(Duration::from_secs(15)));
}

#[test]
fn addresses_combine_a_then_aaaa_with_the_lowest_ttl() {
    let fake = FakeDns::udp(|seen| {
        let answer = Answer::to(seen);
        vec![match seen.qtype {
            QTYPE_A => answer.ttl(40).ip(Ipv4Addr::new(10, 0, 0, 1)).reply(),
            QTYPE_AAAA => answer.ttl(20).ip(Ipv6Addr::LOCALHOST).reply(),
            _ => answer.rcode(4).reply(),
        }]
    });
    let got = client(&[&fake])
        .lookup_ip("host.example.test", &Cancel::new())
        .unwrap();
    assert_eq!(
        got.addresses,
        [IpAddr::from([10, 0, 0, 1]), IpAddr::V6(Ipv6Addr::LOCALHOST)]
    );
    assert_eq!(got.ttl, Some(Duration::from_secs(20)));
    let types: Vec<u16> = fake.seen_now().iter().map(|s| s.qtype).collect();
    assert_eq!(types, [QTYPE_A, QTYPE_AAAA]);
}

#[test]
fn no_address_of_either_type_is_an_empty_answer() {
    let fake = FakeDns::udp(|seen| vec![Answer::to(seen).soa(60, 60).reply()]);
    let got = client(&[&fake])
        .lookup_ip("host.example.test", &Cancel::new())
        .unwrap();
    assert!(got.addresses.is_empty());
    assert_eq!(got.ttl, Some(Duration::from_secs(60)));
}

/// A client reading `conf` (its name servers on the fake's port).
fn client_with_conf(scratch: &Scratch, conf: &str, port: u16) -> ClientBuilder {
    let path = scratch.replace_named("resolv.conf", conf);
    Client::builder().resolv_conf(path).nameserver_port(port)
}

fn names(fake: &FakeDns) -> Vec<String> {
    fake.seen_now().into_iter().map(|s| s.name).collect()
}

#[test]
fn the_search_list_is_tried_in_order_until_a_positive_answer() {
    let fake = FakeDns::udp(|seen| match seen.name.as_str() {
        "api.b.test" => vec![right(seen)],
        _ => vec![Answer::to(seen).rcode(3).reply()],
    });
    let scratch = Scratch::new();
    let conf = "nameserver 127.0.0.1\nsearch a.test b.test c.test\noptions ndots:2\n";
    let client = client_with_conf(&scratch, conf, fake.port())
        .build()
        .unwrap();

    let got = lookup(&client, "api").unwrap();
    assert_eq!(targets(&got), ["right.example.test"]);
    assert_eq!(names(&fake), ["api.a.test", "api.b.test"], "stops at b");

    assert!(lookup(&client, "x.y.z").unwrap().records.is_empty());
    assert_eq!(
        names(&fake),
        ["x.y.z", "x.y.z.a.test", "x.y.z.b.test", "x.y.z.c.test"],
        "two dots: as is first"
    );

    assert!(lookup(&client, "api.").unwrap().records.is_empty());
    assert_eq!(names(&fake), ["api"], "absolute: alone");
}

#[test]
fn an_error_stops_the_search() {
    let fake = FakeDns::udp(|seen| vec![Answer::to(seen).rcode(2).reply()]);
    let scratch = Scratch::new();
    let conf = "nameserver 127.0.0.1\nsearch a.test b.test\noptions attempts:1\n";
    let client = client_with_conf(&scratch, conf, fake.port())
        .build()
        .unwrap();
    let error = dns_error(lookup(&client, "api"));
    assert_eq!(error.kind, DnsErrorKind::ServerFailure);
    assert_eq!(&*error.name, "api", "the name as given");
    assert_eq!(names(&fake), ["api.a.test"]);
}

#[test]
fn resolv_conf_options_set_attempts_and_timeout_unless_the_builder_does() {
    let failing = FakeDns::udp(|seen| vec![Answer::to(seen).rcode(2).reply()]);
    let scratch = Scratch::new();
    let conf = "nameserver 127.0.0.1\noptions attempts:3\n";
    let read = client_with_conf(&scratch, conf, failing.port())
        .build()
        .unwrap();
    dns_error(lookup(&read, NAME));
    assert_eq!(failing.seen_now().len(), 3, "attempts:3");
    let overridden = client_with_conf(&scratch, conf, failing.port())
        .attempts(1)
        .build()
        .unwrap();
    dns_error(lookup(&overridden, NAME));
    assert_eq!(failing.seen_now().len(), 1, "attempts(1) wins");

    // timeout:1, attempts:1: a silent server gives up after 1 s, not 5 s x 2.
    let silent = FakeDns::udp(|_| vec![]);
    let conf = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";
    let client = client_with_conf(&scratch, conf, silent.port())
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(dns_error(lookup(&client, NAME)).kind, DnsErrorKind::Timeout);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(silent.seen_now().len(), 1);
}

/// Two servers on one port, 127.0.0.1 and 127.0.0.2 (Linux routes all of 127/8 to
/// loopback), each answering its own target.
#[cfg(target_os = "linux")]
fn two_servers_on_one_port() -> (FakeDns, FakeDns) {
    let answer_with = |target: &'static str| {
        move |seen: &Seen| vec![Answer::to(seen).srv(1, 1, 1, target).reply()]
    };
    for _ in 0..50 {
        let first = FakeDns::udp_and_tcp(answer_with("first"));
        let second = FakeDns::try_on(
            Ipv4Addr::new(127, 0, 0, 2),
            first.port(),
            answer_with("second"),
        );
        if let Some(second) = second {
            return (first, second);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

#[cfg(target_os = "linux")]
#[test]
fn rotate_starts_each_query_at_the_next_server() {
    let (first, _second) = two_servers_on_one_port();
    let scratch = Scratch::new();
    let servers = "nameserver 127.0.0.1\nnameserver 127.0.0.2\n";
    let answered_by = |builder: ClientBuilder| -> Vec<String> {
        let client = builder.build().unwrap();
        (0..3)
            .map(|_| lookup(&client, NAME).unwrap().records[0].target.clone())
            .collect()
    };
    let rotating = format!("{servers}options rotate\n");
    assert_eq!(
        answered_by(client_with_conf(&scratch, &rotating, first.port())),
        ["first", "second", "first"]
    );
    assert_eq!(
        answered_by(client_with_conf(&scratch, &rotating, first.port()).rotate(false)),
        ["first", "first", "first"]
    );
    assert_eq!(
        answered_by(client_with_conf(&scratch, servers, first.port())),
        ["first", "first", "first"]
    );
}
