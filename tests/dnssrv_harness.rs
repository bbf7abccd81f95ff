//! Tests of the dnsmasq harness (`tests/support/dnsmasq.rs` on the launcher in
//! `server.rs`) against a real dnsmasq 2.90, seen through dig: SRV records and their
//! fields, a change of records on the same port, the additional section, truncation
//! over UDP, negative answers, a server stopped and started again, a port taken
//! meanwhile. The harness uses no part of waypost, so this file is built with every
//! feature set.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use support::dnsmasq::{
    DigReply, DigSrv, Dnsmasq, PROBE_BOUND, Records, answers_udp, version_bind_query,
};
use support::server::process_gone;

const SVC: &str = "_svc._tcp.example.test";

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> DigSrv {
    DigSrv {
        priority,
        weight,
        port,
        target: target.to_owned(),
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Two SRV records of [`SVC`] and an address for each target.
fn two_nodes() -> Records {
    Records::new()
        .srv(SVC, "node1.example.test", 8080, 10, 60)
        .srv(SVC, "node2.example.test", 8081, 20, 40)
        .host("node1.example.test", v4(11))
        .host("node2.example.test", v4(12))
}

/// `n` SRV records of [`SVC`], `nodeNN.example.test:90NN`, each with an address.
fn many_nodes(n: u8) -> Records {
    (1..=n).fold(Records::new(), |r, i| {
        let target = format!("node{i:02}.example.test");
        r.srv(SVC, &target, 9000 + u16::from(i), 10, 10)
            .host(&target, v4(i))
    })
}

#[test]
fn config_query_and_dig_output_are_read_right() {
    let conf = two_nodes().ttl(5).conf();
    assert!(
        conf.contains("srv-host=_svc._tcp.example.test,node1.example.test,8080,10,60\n"),
        "dnsmasq's order: target, port, priority, weight\n{conf}"
    );
    assert!(conf.contains("host-record=node2.example.test,127.0.0.12\n"));
    let q = version_bind_query(0x1234);
    assert_eq!(q[..4], [0x12, 0x34, 0, 0]);
    assert_eq!(q[4..6], [0, 1], "one question");
    assert_eq!(q[12..26], *b"\x07version\x04bind\x00");
    assert_eq!(q[26..], [0, 16, 0, 3], "TXT, CHAOS");

    assert_eq!(
        DigSrv::parse("10 60 8080 node1.example.test."),
        Some(srv(10, 60, 8080, "node1.example.test"))
    );
    assert_eq!(DigSrv::parse(";; communications error"), None);
    assert_eq!(DigSrv::parse("10 60 8080"), None);
    let out = "\
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr tc aa rd ra; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;_svc._tcp.example.test.\t\tIN\tSRV

;; ANSWER SECTION:
_svc._tcp.example.test.\t0\tIN\tSRV\t10 40 8081 node2.example.test.
_svc._tcp.example.test.\t0\tIN\tSRV\t10 60 8080 node1.example.test.

;; ADDITIONAL SECTION:
node1.example.test.\t0\tIN\tA\t127.0.0.11

;; Query time: 0 msec
";
    let reply = DigReply::parse(out);
    assert_eq!(reply.status, "NOERROR");
    assert_eq!(reply.flags, ["qr", "tc", "aa", "rd", "ra"]);
    assert!(reply.has_flag("tc"));
    assert_eq!(reply.answers("SRV"), 2);
    assert_eq!(reply.additional.len(), 1);
    assert!(reply.authority.is_empty());
}

#[test]
fn dig_sees_two_srv_records_with_their_fields() {
    let began = Instant::now();
    let Some(dns) = Dnsmasq::start(&two_nodes().ttl(5)) else {
        return;
    };
    eprintln!(
        "dnsmasq on {}: ready {:?} after spawn, {:?} after start()",
        dns.addr(),
        dns.ready_after(),
        began.elapsed()
    );
    assert_eq!(
        dns.dig_srv(SVC),
        [
            srv(10, 60, 8080, "node1.example.test"),
            srv(20, 40, 8081, "node2.example.test"),
        ]
    );
    let reply = dns.dig_reply(&["SRV", SVC]);
    assert_eq!(reply.status, "NOERROR");
    assert!(reply.has_flag("aa"), "{reply:?}");
    assert!(
        reply
            .answer
            .iter()
            .all(|r| r.split_whitespace().nth(1) == Some("5")),
        "--local-ttl=5 on every answer: {reply:?}"
    );
    assert!(dns.answers());
    // UDP and TCP on one port: the readiness probe went over UDP, dig_srv over TCP.
    assert!(answers_udp(dns.addr(), PROBE_BOUND));
    // Its config and log are in its temp dir.
    assert!(dns.dir().join("dnsmasq.conf").is_file());
    assert!(
        dns.log_tail().contains("started, version 2.90"),
        "{}",
        dns.log_tail()
    );
}

#[test]
fn set_records_changes_the_set_on_the_same_port() {
    let Some(mut dns) = Dnsmasq::start(&two_nodes()) else {
        return;
    };
    let (port, pid) = (dns.port(), dns.pid());
    let mut took = Vec::new();
    for round in 0..5u16 {
        let records = Records::new()
            .srv(SVC, "node3.example.test", 7000 + round, 5, 1)
            .host("node3.example.test", v4(13));
        let began = Instant::now();
        dns.set_records(&records);
        took.push(began.elapsed());
        assert_eq!(dns.port(), port, "the port clients know");
        assert_eq!(
            dns.dig_srv(SVC),
            [srv(5, 1, 7000 + round, "node3.example.test")],
            "only the new record"
        );
        assert_eq!(dns.records(), records);
    }
    assert_ne!(dns.pid(), pid, "a new process");
    eprintln!(
        "set_records (stop, start, ready) took {took:?}; the last start was ready {:?} after spawn",
        dns.ready_after()
    );
    // Back to nothing at all: a known domain without the name.
    dns.set_records(&Records::new());
    assert_eq!(dns.dig_srv(SVC), []);
    assert_eq!(dns.dig_reply(&["SRV", SVC]).status, "NXDOMAIN");
}

#[test]
fn host_records_appear_in_the_additional_section() {
    let records = two_nodes().host("node2.example.test", IpAddr::V6(Ipv6Addr::LOCALHOST));
    let Some(dns) = Dnsmasq::start(&records) else {
        return;
    };
    let reply = dns.dig_reply(&["+tcp", "SRV", SVC]);
    assert_eq!(reply.answers("SRV"), 2, "{reply:?}");
    let additional = reply.additional.join("\n");
    for (name, rtype, ip) in [
        ("node1.example.test.", "A", "127.0.0.11"),
        ("node2.example.test.", "A", "127.0.0.12"),
        ("node2.example.test.", "AAAA", "::1"),
    ] {
        assert!(
            reply.additional.iter().any(|r| {
                let words: Vec<&str> = r.split_whitespace().collect();
                words.first() == Some(&name)
                    && words.get(3) == Some(&rtype)
                    && words.get(4) == Some(&ip)
            }),
            "{name} {rtype} {ip} in\n{additional}"
        );
    }
    // The same addresses asked for directly.
    assert_eq!(
        dns.dig(&["+short", "A", "node1.example.test"]).trim(),
        "127.0.0.11"
    );
    assert_eq!(
        dns.dig(&["+short", "AAAA", "node2.example.test"]).trim(),
        "::1"
    );
}

#[test]
fn forty_records_truncate_over_udp_and_come_whole_over_tcp() {
    let Some(mut dns) = Dnsmasq::start(&many_nodes(40)) else {
        return;
    };
    // UDP with EDNS 1232, not retried over TCP: cut, and partial.
    let udp = dns.dig_reply(&["+ignore", "+notcp", "SRV", SVC]);
    assert_eq!(udp.status, "NOERROR", "{udp:?}");
    assert!(udp.has_flag("tc"), "{udp:?}");
    let partial = udp.answers("SRV");
    assert!((1..40).contains(&partial), "{partial} of 40 over UDP");
    // Without EDNS: 512 bytes, fewer still.
    let plain = dns.dig_reply(&["+ignore", "+notcp", "+noedns", "SRV", SVC]);
    assert!(plain.has_flag("tc"), "{plain:?}");
    assert!(plain.answers("SRV") < partial, "{plain:?}");
    // TCP: all of them, with every address.
    let tcp = dns.dig_reply(&["+tcp", "SRV", SVC]);
    assert!(!tcp.has_flag("tc"), "{tcp:?}");
    assert_eq!(tcp.answers("SRV"), 40);
    assert_eq!(tcp.additional.len(), 40, "{tcp:?}");
    assert_eq!(dns.dig_srv(SVC).len(), 40);
    eprintln!(
        "40 SRV: UDP EDNS 1232 gave {partial} with tc, UDP without EDNS {}, TCP 40",
        plain.answers("SRV")
    );

    // A larger UDP limit, asked for by the client: whole over UDP.
    dns.set_records(&many_nodes(40).edns_packet_max(4096));
    let big = dns.dig_reply(&["+ignore", "+notcp", "+bufsize=4096", "SRV", SVC]);
    assert!(!big.has_flag("tc"), "{big:?}");
    assert_eq!(big.answers("SRV"), 40);
}

#[test]
fn unknown_names_are_nxdomain_other_types_nodata_other_domains_refused() {
    let Some(dns) = Dnsmasq::start(&two_nodes()) else {
        return;
    };
    let nx = dns.dig_reply(&["SRV", "_nope._tcp.example.test"]);
    assert_eq!(nx.status, "NXDOMAIN", "{nx:?}");
    assert!(nx.answer.is_empty());
    assert_eq!(
        dns.dig_reply(&["+tcp", "A", "nothere.example.test"]).status,
        "NXDOMAIN"
    );
    let nodata = dns.dig_reply(&["AAAA", "node1.example.test"]);
    assert_eq!(nodata.status, "NOERROR", "{nodata:?}");
    assert!(nodata.answer.is_empty(), "{nodata:?}");
    let elsewhere = dns.dig_reply(&["SRV", "_svc._tcp.example.org"]);
    assert_eq!(elsewhere.status, "REFUSED", "{elsewhere:?}");
}

#[test]
fn a_stopped_server_answers_nothing_until_started_again_on_its_port() {
    let Some(mut dns) = Dnsmasq::start(&two_nodes()) else {
        return;
    };
    let (port, pid) = (dns.port(), dns.pid().expect("running"));
    let began = Instant::now();
    dns.stop();
    let stopped = began.elapsed();
    assert!(process_gone(pid));
    assert_eq!(dns.pid(), None);
    assert!(!dns.answers());
    for proto in ["+notcp", "+tcp"] {
        let began = Instant::now();
        let out = dns.dig(&[proto, "+time=1", "+tries=1", "SRV", SVC]);
        let took = began.elapsed();
        assert!(
            out.contains("no servers could be reached"),
            "{proto}: {out}"
        );
        assert!(took < Duration::from_secs(3), "{proto}: dig took {took:?}");
        assert!(DigReply::parse(&out).status.is_empty());
    }

    let began = Instant::now();
    dns.start_again();
    let back = began.elapsed();
    assert_eq!(dns.port(), port);
    assert_eq!(dns.dig_srv(SVC).len(), 2);
    dns.start_again(); // a no-op while running
    eprintln!(
        "stop took {stopped:?}; start_again took {back:?} (ready {:?} after spawn)",
        dns.ready_after()
    );

    // Paused (SIGSTOP), it keeps its port and answers nothing; resumed, it answers.
    dns.pause();
    assert!(!dns.answers());
    dns.resume();
    assert!(dns.answers());
}

#[test]
fn a_port_taken_while_stopped_is_a_clear_panic() {
    let Some(mut dns) = Dnsmasq::start(&two_nodes()) else {
        return;
    };
    dns.stop();
    let squatter = UdpSocket::bind(dns.addr()).expect("take the stopped server's UDP port");
    let result = catch_unwind(AssertUnwindSafe(|| dns.start_again()));
    let message = match result {
        Ok(()) => panic!("dnsmasq started on a taken port"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "(not a string)".into()),
    };
    assert!(
        message.contains("was taken while dnsmasq was stopped"),
        "{message}"
    );
    assert!(
        message.contains("Address already in use"),
        "the log's tail: {message}"
    );
    drop(squatter);
    dns.start_again();
    assert_eq!(dns.dig_srv(SVC).len(), 2);
}

#[test]
fn two_at_once_get_their_own_ports_and_dirs_and_go_on_drop() {
    let Some(a) = Dnsmasq::start(&two_nodes()) else {
        return;
    };
    let b = Dnsmasq::start(&Records::new().srv(SVC, "other.example.test", 1, 2, 3))
        .expect("found once");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_eq!(a.dig_srv(SVC).len(), 2);
    assert_eq!(b.dig_srv(SVC), [srv(2, 3, 1, "other.example.test")]);
    let (pid, dir, addr) = (b.pid().expect("running"), b.dir().to_owned(), b.addr());
    drop(b);
    assert!(process_gone(pid));
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!answers_udp(addr, PROBE_BOUND));
    assert_eq!(a.dig_srv(SVC).len(), 2, "the other one untouched");
}

#[test]
fn missing_binaries_fail_in_ci_and_skip_loudly_otherwise() {
    let test = "dig_sees_two_srv_records_with_their_fields";
    for (var, name) in [
        ("WAYPOST_DNSMASQ_BIN", "dnsmasq"),
        ("WAYPOST_DIG_BIN", "dig"),
    ] {
        support::bin::assert_missing_fails_in_ci_and_skips_locally(test, var, name);
    }
}
