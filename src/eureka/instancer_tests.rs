//! The instancer against the in-memory fake and a manual clock.

use std::time::Instant;

use crossbeam_channel::{Receiver, unbounded};

use super::*;
use crate::eureka::fake::{Call, Eureka};
use crate::{Event, ManualClock};

const BOUND: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_secs(30);

struct Harness {
    eureka: Eureka,
    clock: ManualClock,
    events: Receiver<Event>,
    _instancer: Instancer,
}

impl Harness {
    fn start(
        eureka: Eureka,
        build: impl FnOnce(InstancerBuilder) -> InstancerBuilder,
        query: &str,
    ) -> Harness {
        let clock = ManualClock::new();
        let client = eureka.client();
        let builder = match query.strip_prefix("vip:") {
            Some(vip) => Instancer::vip(&client, vip),
            None => Instancer::app(&client, query),
        };
        let instancer = build(builder.clock(clock.clone()).first_fetch_timeout(BOUND))
            .build()
            .expect("an instancer");
        let (tx, events) = unbounded();
        instancer.subscribe(tx);
        Harness {
            eureka,
            clock,
            events,
            _instancer: instancer,
        }
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

    /// Moves the clock past the next poll, once the watch waits on it.
    fn next_poll(&self) {
        let until = Instant::now() + BOUND;
        while self.clock.pending_timers() == 0 {
            assert!(Instant::now() < until, "the watch never waited");
            std::thread::yield_now();
        }
        self.clock.advance(EVERY);
    }
}

fn info(id: &str, host: &str, ip: &str, port: u16) -> InstanceInfo {
    InstanceInfo::new("payments", id, host, ip).with_port(port)
}

#[test]
fn only_up_instances_as_host_name_and_port() {
    let eureka = Eureka::new();
    eureka.put(info("a", "a.example.test", "10.0.0.1", 8080).with_metadata("zone", "eu-1"));
    eureka.put(info("b", "b.example.test", "10.0.0.2", 8080).with_status(Status::Down));
    eureka.put(info("c", "c.example.test", "10.0.0.3", 8080).with_status(Status::Starting));
    let h = Harness::start(eureka, |b| b, "Payments");
    let set = h.set();
    assert_eq!(set.len(), 1, "{set:?}");
    let a = &set[0];
    assert_eq!(a.addr(), "a.example.test:8080");
    let m = a.metadata().unwrap();
    assert_eq!(m.zone(), Some("eu-1"));
    assert_eq!(m.get("eureka.instance_id"), Some("a"));
    assert_eq!(m.get("eureka.app"), Some("PAYMENTS"));
    assert_eq!(m.get("eureka.vip"), Some("payments"));
    assert_eq!(m.get("eureka.data_center"), Some("MyOwn"));
}

#[test]
fn prefer_ip_address_and_the_secure_port_when_only_it_is_enabled() {
    let eureka = Eureka::new();
    eureka.put(info("a", "a.example.test", "10.0.0.1", 8080));
    eureka.put(
        InstanceInfo::new("payments", "s", "s.example.test", "10.0.0.9").with_secure_port(8443),
    );
    eureka.put(InstanceInfo::new(
        "payments",
        "none",
        "n.example.test",
        "10.0.0.8",
    ));
    let h = Harness::start(eureka, InstancerBuilder::prefer_ip_address, "payments");
    let set = h.set();
    let got: Vec<(&str, Option<&str>)> = set
        .iter()
        .map(|i| (i.addr(), i.metadata().and_then(|m| m.scheme())))
        .collect();
    assert_eq!(
        got,
        [("10.0.0.1:8080", None), ("10.0.0.9:8443", Some("https"))],
        "an instance with no port enabled is left out"
    );
}

#[test]
fn an_out_of_service_override_leaves_it_out_until_removed() {
    let eureka = Eureka::new();
    eureka.put(info("a", "a", "10.0.0.1", 1));
    eureka.put(info("b", "b", "10.0.0.2", 2));
    let h = Harness::start(eureka.clone(), |b| b.interval(EVERY), "payments");
    assert_eq!(h.addrs(), ["a:1", "b:2"]);
    let client = eureka.client();
    client
        .set_status_override("PAYMENTS", "b", Status::OutOfService)
        .unwrap();
    h.next_poll();
    assert_eq!(h.addrs(), ["a:1"]);
    client.remove_status_override("PAYMENTS", "b").unwrap();
    h.next_poll();
    assert_eq!(h.addrs(), ["a:1", "b:2"]);
}

#[test]
fn an_unknown_app_is_empty_only_when_the_base_path_answers() {
    let eureka = Eureka::new();
    let h = Harness::start(eureka.clone(), |b| b, "nobody");
    assert!(h.set().is_empty());
    h.eureka.drain();
    eureka.set_wrong_base(true);
    h.next_poll();
    match h.event() {
        Event::Error(err) => assert!(err.to_string().contains("404"), "{err}"),
        other => panic!("an error was expected: {other:?}"),
    }
    assert_eq!(h.eureka.next_call(), Call::App("NOBODY".into()));
    assert_eq!(h.eureka.next_call(), Call::AppsCount);
}

#[test]
fn an_error_keeps_the_last_set_and_recovery_follows() {
    let eureka = Eureka::new();
    eureka.put(info("a", "a", "10.0.0.1", 1));
    let h = Harness::start(eureka.clone(), |b| b.backoff(EVERY, EVERY), "payments");
    assert_eq!(h.addrs(), ["a:1"]);
    eureka.fail_next(1);
    h.next_poll();
    assert!(matches!(h.event(), Event::Error(_)));
    eureka.put(info("b", "b", "10.0.0.2", 2));
    h.next_poll();
    assert_eq!(h.addrs(), ["a:1", "b:2"]);
}

#[test]
fn a_vip_gathers_every_app_with_it() {
    let eureka = Eureka::new();
    eureka.put(info("a", "a", "10.0.0.1", 1).with_vip_address("shop"));
    eureka.put(
        InstanceInfo::new("orders", "o", "o", "10.0.0.3")
            .with_port(3)
            .with_vip_address("shop"),
    );
    eureka.put(info("x", "x", "10.0.0.4", 4));
    let h = Harness::start(eureka, |b| b, "vip:shop");
    assert_eq!(h.addrs(), ["a:1", "o:3"]);
}

#[test]
fn bad_settings_are_refused() {
    let eureka = Eureka::new();
    let client = eureka.client();
    for (builder, field) in [
        (Instancer::app(&client, ""), "app"),
        (Instancer::app(&client, "a/b"), "app"),
        (Instancer::vip(&client, " "), "vip"),
        (
            Instancer::app(&client, "a").interval(Duration::ZERO),
            "interval",
        ),
        (
            Instancer::app(&client, "a").min_interval(Duration::from_secs(7200)),
            "min_interval",
        ),
        (
            Instancer::app(&client, "a").backoff(Duration::from_secs(2), Duration::from_secs(1)),
            "backoff",
        ),
    ] {
        match builder.build() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}
