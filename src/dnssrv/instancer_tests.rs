//! The instancer against a scripted resolver (Go kit's lookup function) and a manual
//! clock: no DNS, no sleeps.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::*;
use crate::dnssrv::IpLookup;
use crate::{DnsError, DnsErrorKind, Event, ManualClock};

const BOUND: Duration = Duration::from_secs(10);

/// What the scripted resolver answers next.
enum Answer {
    Srv(SrvLookup),
    Ip(IpLookup),
    Fail(DnsErrorKind),
    /// Blocks until cancelled, then answers `Cancelled`.
    Hang,
}

/// Answers each query with the next scripted answer and reports the query.
#[derive(Debug)]
struct Scripted {
    answers: Mutex<Receiver<Answer>>,
    asked: Sender<String>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Answer")
    }
}

impl Scripted {
    fn answer(&self, query: String, name: &str, cancel: &Cancel) -> Result<Answer> {
        let _ = self.asked.send(query);
        let next = self
            .answers
            .lock()
            .recv_timeout(BOUND)
            .expect("a scripted answer");
        match next {
            Answer::Fail(kind) => Err(DnsError::new(kind, name, "SRV").into()),
            Answer::Hang => {
                let until = Instant::now() + BOUND;
                while !cancel.is_cancelled() {
                    assert!(Instant::now() < until, "never cancelled");
                    std::thread::yield_now();
                }
                Err(DnsError::new(DnsErrorKind::Cancelled, name, "SRV").into())
            }
            other => Ok(other),
        }
    }
}

impl Resolver for Scripted {
    fn lookup_srv(&self, name: &str, cancel: &Cancel) -> Result<SrvLookup> {
        match self.answer(format!("SRV {name}"), name, cancel)? {
            Answer::Srv(lookup) => Ok(lookup),
            _ => panic!("an SRV answer was expected for {name}"),
        }
    }

    fn lookup_ip(&self, host: &str, cancel: &Cancel) -> Result<IpLookup> {
        match self.answer(format!("IP {host}"), host, cancel)? {
            Answer::Ip(lookup) => Ok(lookup),
            _ => panic!("an address answer was expected for {host}"),
        }
    }
}

struct Harness {
    answers: Sender<Answer>,
    asked: Receiver<String>,
    events: Receiver<Event>,
    clock: ManualClock,
    instancer: Option<Instancer>,
}

impl Harness {
    /// An instancer from `builder` on the scripted resolver and a manual clock; the
    /// first answers are given before `build()` (which waits for the first).
    fn start(builder: InstancerBuilder, first: Vec<Answer>) -> Harness {
        let (answers, answers_rx) = unbounded();
        let (asked_tx, asked) = unbounded();
        for answer in first {
            answers.send(answer).unwrap();
        }
        let clock = ManualClock::new();
        let instancer = builder
            .resolver(Scripted {
                answers: Mutex::new(answers_rx),
                asked: asked_tx,
            })
            .clock(clock.clone())
            .first_fetch_timeout(BOUND)
            .build()
            .expect("an instancer");
        let (tx, events) = unbounded();
        instancer.subscribe(tx);
        Harness {
            answers,
            asked,
            events,
            clock,
            instancer: Some(instancer),
        }
    }

    fn asked(&self) -> String {
        self.asked.recv_timeout(BOUND).expect("a query")
    }

    fn event(&self) -> Event {
        self.events.recv_timeout(BOUND).expect("an event")
    }

    fn set(&self) -> Vec<Instance> {
        match self.event() {
            Event::Instances(set) => set.iter().cloned().collect(),
            Event::Error(err) => panic!("an error event: {err}"),
        }
    }

    fn addrs(&self) -> Vec<String> {
        self.set().iter().map(|i| i.addr().to_owned()).collect()
    }

    /// Waits until the watch waits on the clock, and checks no query started.
    fn waiting(&self) {
        let until = Instant::now() + BOUND;
        while self.clock.pending_timers() == 0 {
            assert!(Instant::now() < until, "the watch never waited");
            std::thread::yield_now();
        }
        assert!(self.asked.try_recv().is_err(), "a query started early");
    }
}

fn srv(records: &[(u16, u16, u16, &str)]) -> SrvLookup {
    SrvLookup::new(
        records
            .iter()
            .map(|&(priority, weight, port, target)| Srv::new(priority, weight, port, target))
            .collect(),
    )
}

const NAME: &str = "_api._tcp.example.test";

#[test]
fn two_records_are_two_instances_with_priority_and_weight() {
    let lookup = srv(&[
        (10, 60, 8080, "node1.example.test."),
        (20, 0, 8081, "node2.example.test."),
    ]);
    let h = Harness::start(Instancer::srv(NAME), vec![Answer::Srv(lookup)]);
    assert_eq!(h.asked(), format!("SRV {NAME}"));
    let set = h.set();
    let got: Vec<(&str, Option<u32>, Option<&str>)> = set
        .iter()
        .map(|i| {
            let m = i.metadata().expect("metadata");
            (i.addr(), m.weight(), m.get("priority"))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("node1.example.test:8080", Some(60), Some("10")),
            ("node2.example.test:8081", Some(0), Some("20")),
        ],
        "every priority group, weight 0 kept"
    );
}

#[test]
fn the_lowest_priority_only_option_drops_the_backup_groups() {
    let lookup = srv(&[
        (20, 1, 1, "b"),
        (10, 1, 1, "a1"),
        (10, 1, 2, "a2"),
        (30, 1, 1, "c"),
    ]);
    let h = Harness::start(
        Instancer::srv(NAME).lowest_priority_only(),
        vec![Answer::Srv(lookup)],
    );
    assert_eq!(h.addrs(), ["a1:1", "a2:2"]);
}

#[test]
fn port_zero_leaves_out_its_record_only_and_a_root_target_is_no_service() {
    let lookup = srv(&[(10, 1, 0, "zero"), (10, 1, 80, "good")]);
    let h = Harness::start(
        Instancer::srv(NAME).ttl_bounds(Duration::from_secs(1), Duration::from_secs(1)),
        vec![Answer::Srv(lookup), Answer::Srv(srv(&[(0, 0, 0, ".")]))],
    );
    assert_eq!(h.addrs(), ["good:80"]);
    h.asked();
    h.waiting();
    h.clock.advance(Duration::from_secs(1));
    h.asked();
    assert_eq!(
        h.addrs(),
        Vec::<String>::new(),
        "\".\": decidedly not available"
    );
}

#[test]
fn a_negative_answer_is_an_empty_set_not_an_error() {
    let h = Harness::start(
        Instancer::srv(NAME),
        vec![Answer::Srv(SrvLookup::default())],
    );
    assert!(h.set().is_empty());
}

#[test]
fn resolved_targets_use_the_additional_section_then_ask() {
    let lookup = srv(&[
        (10, 5, 80, "a.example.test."),
        (10, 5, 81, "b.example.test."),
    ])
    .with_address("A.example.test.", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
    .with_address("a.example.test", IpAddr::V6(Ipv6Addr::LOCALHOST))
    .with_ttl(Duration::from_secs(60));
    let b = IpLookup::new(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))])
        .with_ttl(Duration::from_secs(7));
    let h = Harness::start(
        Instancer::srv(NAME).resolve_targets(),
        vec![Answer::Srv(lookup), Answer::Ip(b)],
    );
    assert_eq!(h.asked(), format!("SRV {NAME}"));
    assert_eq!(
        h.asked(),
        "IP b.example.test",
        "only the target without addresses"
    );
    let set = h.set();
    let got: Vec<(&str, Option<&str>)> = set
        .iter()
        .map(|i| (i.addr(), i.metadata().and_then(|m| m.get("target"))))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.1:80", Some("a.example.test")),
            ("10.0.0.2:81", Some("b.example.test")),
            ("[::1]:80", Some("a.example.test")),
        ]
    );
    // The next query follows the lowest TTL of everything used: 7 s.
    h.waiting();
    h.clock.advance(Duration::from_millis(6_999));
    h.waiting();
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(h.asked(), format!("SRV {NAME}"));
}

#[test]
fn host_mode_makes_an_instance_of_each_address() {
    let ips = IpLookup::new(vec![
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]);
    let h = Harness::start(
        Instancer::host("api.example.test:8080"),
        vec![Answer::Ip(ips)],
    );
    assert_eq!(h.asked(), "IP api.example.test");
    assert_eq!(h.addrs(), ["10.0.0.1:8080", "[::1]:8080"]);
}

#[test]
fn polling_follows_the_ttl_within_the_floor_and_ceiling() {
    let (floor, ceiling) = (Duration::from_secs(5), Duration::from_secs(300));
    let answers = vec![
        Answer::Srv(srv(&[(1, 1, 1, "a")]).with_ttl(Duration::from_secs(30))),
        Answer::Srv(srv(&[(1, 1, 1, "a")]).with_ttl(Duration::from_secs(1))),
        Answer::Srv(srv(&[(1, 1, 1, "a")]).with_ttl(Duration::from_secs(86_400))),
        Answer::Srv(srv(&[(1, 1, 1, "a")])),
    ];
    let h = Harness::start(Instancer::srv(NAME).ttl_bounds(floor, ceiling), answers);
    h.asked();
    // TTL 30 s: asked again at 30 s, not before; then the floor (TTL 1 s), the
    // ceiling (TTL one day), and the floor again for an answer without a TTL.
    for after in [Duration::from_secs(30), floor, ceiling, floor] {
        h.waiting();
        h.clock.advance(after - Duration::from_millis(1));
        h.waiting();
        h.clock.advance(Duration::from_millis(1));
        h.asked();
    }
}

#[test]
fn a_fixed_interval_ignores_the_ttl() {
    let answers = vec![
        Answer::Srv(srv(&[(1, 1, 1, "a")]).with_ttl(Duration::from_secs(3600))),
        Answer::Srv(srv(&[(1, 1, 1, "a")]).with_ttl(Duration::from_secs(3600))),
    ];
    let h = Harness::start(
        Instancer::srv(NAME).interval(Duration::from_secs(2)),
        answers,
    );
    h.asked();
    h.waiting();
    h.clock.advance(Duration::from_secs(2));
    h.asked();
}

#[test]
fn an_error_is_an_event_the_last_set_stays_and_recovery_follows() {
    let answers = vec![
        Answer::Srv(srv(&[(1, 1, 80, "a")])),
        Answer::Fail(DnsErrorKind::ServerFailure),
        Answer::Srv(srv(&[(1, 1, 80, "b")])),
    ];
    let h = Harness::start(
        Instancer::srv(NAME)
            .interval(Duration::from_secs(1))
            .backoff(Duration::from_secs(2), Duration::from_secs(2)),
        answers,
    );
    assert_eq!(h.addrs(), ["a:80"]);
    h.asked();
    h.waiting();
    h.clock.advance(Duration::from_secs(1));
    h.asked();
    match h.event() {
        Event::Error(err) => assert!(
            matches!(&*err, Error::Dns(dns) if dns.kind == DnsErrorKind::ServerFailure),
            "{err}"
        ),
        other => panic!("an error event was expected: {other:?}"),
    }
    // A late subscriber gets the last set and the error: the set stays.
    let (tx, late) = unbounded();
    h.instancer.as_ref().unwrap().subscribe(tx);
    let first = late.recv_timeout(BOUND).unwrap();
    assert!(
        matches!(&first, Event::Instances(set) if set.len() == 1),
        "{first:?}"
    );
    // The backoff, then the next answer.
    h.waiting();
    h.clock.advance(Duration::from_secs(2));
    h.asked();
    assert_eq!(h.addrs(), ["b:80"]);
}

#[test]
fn stop_cuts_a_query_in_flight_short_and_joins() {
    let answers = vec![Answer::Srv(srv(&[(1, 1, 80, "a")])), Answer::Hang];
    let mut h = Harness::start(
        Instancer::srv(NAME).interval(Duration::from_secs(1)),
        answers,
    );
    h.asked();
    h.waiting();
    h.clock.advance(Duration::from_secs(1));
    h.asked(); // now hanging until cancelled
    let instancer = h.instancer.take().unwrap();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        instancer.stop();
        let _ = done_tx.send(());
    });
    done.recv_timeout(BOUND).expect("stop() returned");
    let _ = h.answers.send(Answer::Hang); // nobody asks any more
}

#[test]
fn bad_settings_are_refused() {
    let refused = |b: InstancerBuilder, field: &str| {
        let b = b.resolver(Scripted {
            answers: Mutex::new(unbounded().1),
            asked: unbounded().0,
        });
        match b.build() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    };
    refused(Instancer::srv(""), "name");
    refused(Instancer::host("api.example.test"), "host");
    refused(Instancer::host("api.example.test:0"), "host");
    refused(Instancer::host("api.example.test:http"), "host");
    refused(Instancer::host("10.0.0.1:99999"), "host");
    refused(
        Instancer::srv(NAME).ttl_bounds(Duration::ZERO, Duration::from_secs(1)),
        "ttl_bounds",
    );
    refused(
        Instancer::srv(NAME).ttl_bounds(Duration::from_secs(2), Duration::from_secs(1)),
        "ttl_bounds",
    );
    refused(Instancer::srv(NAME).interval(Duration::ZERO), "interval");
    refused(
        Instancer::srv(NAME).backoff(Duration::from_secs(2), Duration::from_secs(1)),
        "backoff",
    );
}
