//! DNS latencies against a real dnsmasq (2.90) on loopback, the test harness's.
//!
//! 1. Propagation: from a record change (dnsmasq restarted with the new records, the
//!    only way it reloads SRV) to the change being in `endpoints()` of a
//!    `DefaultEndpointer` on a `dnssrv::Instancer` polling at a 100 ms TTL floor
//!    (dnsmasq serves TTL 0), over 40 changes (a record added, then removed), each
//!    made a random part of a poll interval after the previous one was seen. Timed
//!    from the restart's start, and from dnsmasq answering the new set.
//! 2. One query: an SRV query of two records over UDP (500 queries), and of 40
//!    records, truncated over UDP and asked again over TCP (200 queries).
//!
//! Run: `cargo bench --bench dnssrv --features dnssrv` (the README's test command
//! installs dnsmasq). Prints median, p99 and max; figures go in benches/README.md.

#[allow(dead_code)] // the propagation loop is for registrars; DNS has none
#[path = "common/registry.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use registry::report;
use support::dnsmasq::{Dnsmasq, Records};
use support::events::addr_endpointer;
use support::wait_until;
use waypost::Endpointer;
use waypost::dnssrv::{Cancel, Client, Instancer, Resolver};

const NAME: &str = "_bench._tcp.example.test";

fn base() -> Records {
    Records::new()
        .srv(NAME, "a.example.test", 8080, 10, 1)
        .host("a.example.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)))
}

fn main() {
    let Some(mut dns) = Dnsmasq::start(&base()) else {
        eprintln!("dnssrv bench skipped: no dnsmasq");
        return;
    };
    let client = Client::builder()
        .server(dns.addr())
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    propagation(&mut dns, &client, 40);
    queries(&mut dns, &client);
}

fn propagation(dns: &mut Dnsmasq, client: &Client, n: usize) {
    let floor = Duration::from_millis(100);
    let instancer = Instancer::srv(NAME)
        .resolver(client.clone())
        .ttl_bounds(floor, floor)
        .build()
        .expect("instancer");
    let endpointer = addr_endpointer(instancer);
    endpointer
        .wait_ready(Duration::from_secs(10))
        .expect("ready");
    let (mut from_change, mut from_answer) = (Vec::new(), Vec::new());
    let added = "b.example.test:8081".to_owned();
    for i in 0..n {
        // A change lands anywhere in the poll interval, as it would in life: spacing
        // the changes is the point here, not a wait for a result.
        std::thread::sleep(Duration::from_millis(17 * (i as u64 % 7)));
        let add = i % 2 == 0;
        let records = match add {
            true => base().srv(NAME, "b.example.test", 8081, 10, 1),
            false => base(),
        };
        let started = Instant::now();
        dns.set_records(&records);
        let answering = Instant::now();
        wait_until("the change", || {
            endpointer
                .endpoints()
                .is_ok_and(|e| e.contains(&added) == add)
        });
        from_change.push(started.elapsed());
        from_answer.push(answering.elapsed());
    }
    report(
        "record change (restart started) -> endpoints(), 100 ms floor",
        &mut from_change,
    );
    report(
        "record change (dnsmasq answering it) -> endpoints(), 100 ms floor",
        &mut from_answer,
    );
}

fn queries(dns: &mut Dnsmasq, client: &Client) {
    let cancel = Cancel::new();
    let time = |what: &str, n: usize, want: usize| {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            let lookup = client.lookup_srv(NAME, &cancel).expect("an answer");
            samples.push(started.elapsed());
            assert_eq!(lookup.records.len(), want);
        }
        report(what, &mut samples);
    };
    dns.set_records(&base().srv(NAME, "b.example.test", 8081, 10, 1));
    time("SRV query, 2 records, UDP", 500, 2);
    let mut forty = Records::new();
    for i in 0..40u16 {
        forty = forty.srv(NAME, &format!("n{i:02}.example.test"), 9000 + i, 10, 1);
    }
    dns.set_records(&forty);
    time("SRV query, 40 records, truncated UDP then TCP", 200, 40);
}
