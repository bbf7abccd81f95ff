//! The watch loop against a fake client.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};

use super::*;
use crate::consul::client::{Health, HealthCheck, Node, Service, ServiceEntry, Weights};
use crate::consul::fake::{Op, Script, fake, http_error};
use crate::{Event, HttpErrorKind, Instance, InstanceSet};

const BOUND: Duration = Duration::from_secs(10);

fn entry(id: &str, address: &str, port: u16, statuses: &[&str], tags: &[&str]) -> ServiceEntry {
    ServiceEntry {
        node: Node {
            node: "node-1".into(),
            address: "192.0.2.1".into(),
            datacenter: "dc1".into(),
        },
        service: Service {
            id: id.into(),
            service: "web".into(),
            address: address.into(),
            port,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            meta: BTreeMap::new(),
            weights: Some(Weights {
                passing: 10,
                warning: 1,
            }),
        },
        checks: statuses
            .iter()
            .map(|s| HealthCheck {
                check_id: format!("check-{s}"),
                status: s.to_string(),
            })
            .collect(),
    }
}

fn health(index: u64, entries: Vec<ServiceEntry>) -> Result<Health> {
    Ok(Health { entries, index })
}

fn start(
    configure: impl FnOnce(InstancerBuilder) -> InstancerBuilder,
) -> (Instancer, Script, Receiver<Event>) {
    let (client, script) = fake();
    let builder = Instancer::builder(&client, "web").first_fetch_timeout(Duration::ZERO);
    let instancer = configure(builder).build().unwrap();
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    (instancer, script, rx)
}

fn next_event(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(BOUND).expect("an event")
}

fn addrs(event: &Event) -> Vec<String> {
    match event {
        Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
        Event::Error(err) => panic!("error event: {err}"),
    }
}

fn set(event: Event) -> InstanceSet {
    match event {
        Event::Instances(set) => set,
        Event::Error(err) => panic!("error event: {err}"),
    }
}

fn health_index(op: Op) -> u64 {
    match op {
        Op::Health { index, .. } => index,
        other => panic!("expected a health query, got {other:?}"),
    }
}

#[test]
fn follows_the_index_with_the_configured_wait() {
    let (_i, script, rx) = start(|b| b.wait(Duration::from_secs(42)).tags(["a", "b"]));
    let first = script.next_op();
    assert_eq!(
        first,
        Op::Health {
            index: 0,
            wait: Duration::from_secs(42),
            passing_only: true,
            tags: vec!["a".into(), "b".into()],
        }
    );
    script
        .answers
        .send(health(
            10,
            vec![entry("w1", "10.0.0.1", 80, &["passing"], &["a", "b"])],
        ))
        .unwrap();
    assert_eq!(addrs(&next_event(&rx)), ["10.0.0.1:80"]);
    assert_eq!(health_index(script.next_op()), 10);
}

#[test]
fn index_resets_when_it_goes_backwards_or_is_zero() {
    assert_eq!(next_index(0, 7), 7);
    assert_eq!(next_index(7, 7), 7);
    assert_eq!(next_index(7, 3), 0, "backwards: start over");
    assert_eq!(next_index(7, 0), 0, "backwards to 0: start over");
    assert_eq!(
        next_index(0, 0),
        1,
        "an index of 0 must not make every query return at once"
    );

    let (_i, script, _rx) = start(|b| b.min_interval(Duration::from_millis(1)));
    let mut seen = Vec::new();
    for answered in [10, 12, 5, 7, 0] {
        seen.push(health_index(script.next_op()));
        script.answers.send(health(answered, vec![])).unwrap();
    }
    seen.push(health_index(script.next_op()));
    assert_eq!(seen, [0, 10, 12, 0, 7, 0]);
    script.answers.send(health(0, vec![])).unwrap();
    assert_eq!(health_index(script.next_op()), 1);
}

/// Waits until the watch has armed a timer on `clock` (it waits for the rate limit),
/// then checks that no query started meanwhile.
fn waiting(clock: &crate::ManualClock, script: &Script) {
    let until = Instant::now() + BOUND;
    while clock.pending_timers() == 0 {
        assert!(Instant::now() < until, "the watch never waited");
        std::thread::yield_now();
    }
    assert!(script.ops.try_recv().is_err(), "a query started early");
}

#[test]
fn every_query_waits_the_min_interval_whatever_the_answer() {
    // An agent that answers at once, each time with a newer index (the case that sent
    // 16,700-18,750 queries a second before): one query per interval.
    let clock = crate::ManualClock::new();
    let c = clock.clone();
    let (_i, script, rx) = start(|b| b.clock(c).min_interval(Duration::from_millis(100)));
    let mut starts = Vec::new();
    for index in [10, 11, 12, 13] {
        assert_eq!(
            health_index(script.next_op()),
            if index == 10 { 0 } else { index - 1 }
        );
        starts.push(clock.now());
        let web = vec![entry("w1", "10.0.0.1", index as u16, &["passing"], &[])];
        script.answers.send(health(index, web)).unwrap();
        next_event(&rx);
        waiting(&clock, &script);
        clock.advance(Duration::from_millis(100));
    }
    for pair in starts.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
    }
}

#[test]
fn a_query_that_blocked_longer_than_the_interval_is_followed_at_once() {
    let clock = crate::ManualClock::new();
    let c = clock.clone();
    let (_i, script, rx) = start(|b| b.clock(c).min_interval(Duration::from_millis(100)));
    for index in [10, 11, 12] {
        script.next_op();
        // The query blocks for 30 s (no change), then the change comes.
        clock.advance(Duration::from_secs(30));
        let web = vec![entry("w1", "10.0.0.1", index as u16, &["passing"], &[])];
        script.answers.send(health(index, web)).unwrap();
        next_event(&rx);
    }
    // No clock move since the last answer: the next query went out at once.
    assert_eq!(health_index(script.next_op()), 12);
}

#[test]
fn errors_become_events_then_the_watch_recovers() {
    let (_i, script, rx) = start(|b| b.backoff(Duration::from_millis(1), Duration::from_millis(5)));
    let web1 = || vec![entry("w1", "10.0.0.1", 80, &["passing"], &[])];
    script.next_op();
    script.answers.send(health(10, web1())).unwrap();
    assert_eq!(addrs(&next_event(&rx)), ["10.0.0.1:80"]);

    assert_eq!(health_index(script.next_op()), 10);
    script
        .answers
        .send(Err(http_error(HttpErrorKind::Status, Some(403))))
        .unwrap();
    match next_event(&rx) {
        Event::Error(err) => assert_eq!(err.status(), Some(403)),
        other => panic!("{other:?}"),
    }
    // After an error the next query starts over, so a restarted agent's lower index
    // is not waited out.
    assert_eq!(health_index(script.next_op()), 0);
    script.answers.send(health(3, web1())).unwrap();
    assert_eq!(addrs(&next_event(&rx)), ["10.0.0.1:80"]);
}

#[test]
fn unchanged_answers_publish_nothing_new() {
    let (_i, script, rx) = start(|b| b.min_interval(Duration::from_millis(1)));
    let web1 = || vec![entry("w1", "10.0.0.1", 80, &["passing"], &[])];
    script.next_op();
    script.answers.send(health(10, web1())).unwrap();
    next_event(&rx);
    script.next_op();
    script.answers.send(health(11, web1())).unwrap();
    // The third query starts only after the second answer was handled.
    assert_eq!(health_index(script.next_op()), 11);
    assert!(
        rx.try_recv().is_err(),
        "an unchanged set was published again"
    );
}

#[test]
fn maps_addresses_and_metadata() {
    let (_i, script, rx) = start(|b| b);
    let mut with_meta = entry("w1", "", 8080, &["passing"], &["v2", "eu"]);
    with_meta
        .service
        .meta
        .insert("version".into(), "2.1".into());
    with_meta
        .service
        .meta
        .insert("node".into(), "shadowed".into());
    let v6 = entry("w2", "2001:db8::1", 443, &["passing"], &[]);
    script.next_op();
    script.answers.send(health(1, vec![with_meta, v6])).unwrap();
    let set = set(next_event(&rx));
    let addrs: Vec<_> = set.iter().map(Instance::addr).collect();
    assert_eq!(addrs, ["192.0.2.1:8080", "[2001:db8::1]:443"]);
    assert_eq!(set[1].host(), Some("2001:db8::1"));
    let meta = set[0].metadata().unwrap();
    assert_eq!(meta.tags().collect::<Vec<_>>(), ["v2", "eu"]);
    assert_eq!(meta.get("version"), Some("2.1"));
    assert_eq!(meta.get("node"), Some("node-1"));
    assert_eq!(meta.get("service_id"), Some("w1"));
    assert_eq!(meta.zone(), Some("dc1"));
    assert_eq!(meta.weight(), Some(10));
}

#[test]
fn filters_by_health_and_tags() {
    let entries = || {
        vec![
            entry("ok", "10.0.0.1", 80, &["passing", "passing"], &["A", "b"]),
            entry("warn", "10.0.0.2", 80, &["passing", "warning"], &["a", "b"]),
            entry(
                "crit",
                "10.0.0.3",
                80,
                &["warning", "critical"],
                &["a", "b"],
            ),
            entry("maint", "10.0.0.4", 80, &["critical"], &["a", "b"]),
            entry("untagged", "10.0.0.5", 80, &["passing"], &["a"]),
            entry("odd", "10.0.0.6", 80, &["unknown"], &["a", "b"]),
        ]
    };
    let (_i, script, rx) = start(|b| b.tag("a").tag("B"));
    script.next_op();
    script.answers.send(health(1, entries())).unwrap();
    assert_eq!(addrs(&next_event(&rx)), ["10.0.0.1:80"]);

    let (_i, script, rx) = start(|b| b.tags(["a", "b"]).include_warning(true));
    match script.next_op() {
        Op::Health { passing_only, .. } => assert!(!passing_only),
        other => panic!("{other:?}"),
    }
    script.answers.send(health(1, entries())).unwrap();
    let set = set(next_event(&rx));
    let addrs: Vec<_> = set.iter().map(Instance::addr).collect();
    assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(
        set[1].metadata().unwrap().weight(),
        Some(1),
        "warning weight"
    );
}

#[test]
fn build_waits_for_the_first_answer() {
    let (client, script) = fake();
    script
        .answers
        .send(health(
            4,
            vec![entry("w1", "10.0.0.1", 80, &["passing"], &[])],
        ))
        .unwrap();
    let instancer = Instancer::builder(&client, "web")
        .first_fetch_timeout(BOUND)
        .build()
        .unwrap();
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    assert_eq!(
        addrs(&rx.try_recv().expect("state known when build returns")),
        ["10.0.0.1:80"]
    );
}

#[test]
fn stop_cuts_a_blocking_query_and_joins() {
    let (instancer, script, rx) = start(|b| b);
    script.next_op(); // the query is in flight, and no answer will come
    let started = Instant::now();
    instancer.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(instancer.watch.lock().is_none());
    assert!(rx.try_recv().is_err(), "a stop is not an error event");
    instancer.stop();
}

#[test]
fn invalid_settings_are_refused() {
    let (client, _script) = fake();
    for builder in [
        Instancer::builder(&client, ""),
        Instancer::builder(&client, "web").tag(""),
        Instancer::builder(&client, "web").wait(Duration::ZERO),
        Instancer::builder(&client, "web").wait(Duration::from_secs(601)),
        Instancer::builder(&client, "web").min_interval(Duration::from_secs(601)),
        Instancer::builder(&client, "web").backoff(Duration::from_secs(1), Duration::ZERO),
    ] {
        assert!(builder.build().unwrap_err().is_invalid_input());
    }
}
