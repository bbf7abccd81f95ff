//! The consistency option: `?stale` reaches the agent, an answer older than `max_stale`
//! (by `X-Consul-LastContact`) is asked again in default mode, and a stale watch works
//! on a real Consul 1.8.7 agent (a dev agent is its own leader).
#![cfg(feature = "consul")]

mod support;

use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use support::fake_http::{Answer, FakeHttp, Seen};
use support::{BOUND, wait_for_set};
use waypost::consul::{Client, Consistency, HealthQuery, HttpClient, Instancer, Registrar};
use waypost::{Error, Event};

/// One health entry at `address:80`.
fn entry(address: &str) -> String {
    format!(
        r#"{{"Node":{{"Node":"n1"}},"Service":{{"ID":"{address}","Address":"{address}","Port":80}}}}"#
    )
}

/// An agent whose servers lag: a stale query is answered by a follower that last
/// heard from the leader `lag_ms` ago and still lists 10.0.0.1 only; a default query is
/// answered by the leader, which already lists 10.0.0.2 as well. Every request is
/// sent to the returned receiver.
fn lagging_agent(lag_ms: u64) -> (FakeHttp, Receiver<Seen>) {
    let (seen_tx, seen) = unbounded();
    let agent = FakeHttp::start(move |request| {
        let _ = seen_tx.send(request.clone());
        if request.query_value("stale").is_some() {
            Answer::json(format!("[{}]", entry("10.0.0.1")))
                .header("X-Consul-Index", 9)
                .header("X-Consul-LastContact", lag_ms)
                .header("X-Consul-KnownLeader", true)
        } else {
            Answer::json(format!("[{},{}]", entry("10.0.0.1"), entry("10.0.0.2")))
                .header("X-Consul-Index", 10)
                .header("X-Consul-LastContact", 0)
                .header("X-Consul-KnownLeader", true)
        }
    });
    (agent, seen)
}

fn client(base: &str) -> HttpClient {
    HttpClient::builder().address(base).build().unwrap()
}

fn stale(max_stale: Option<Duration>) -> Consistency {
    Consistency::Stale { max_stale }
}

/// The addresses of a health query's answer.
fn ask(client: &HttpClient, query: &HealthQuery<'_>) -> Vec<String> {
    let health = client.health_service("web", query).unwrap();
    let addrs = health.entries.iter().map(|e| e.service.address.clone());
    addrs.collect()
}

/// A stale-or-not watch of `service` on `client`, and its events.
fn watch(
    client: &HttpClient,
    service: &str,
    consistency: Consistency,
) -> (Instancer, Receiver<Event>) {
    let instancer = Instancer::builder(client, service)
        .consistency(consistency)
        .first_fetch_timeout(BOUND)
        .build()
        .unwrap();
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    (instancer, rx)
}

fn is_stale(seen: &Seen) -> bool {
    // A bare `stale`, as Consul documents it.
    seen.query_values("stale") == [""]
}

#[test]
fn the_default_asks_the_leader_and_stale_asks_any_server() {
    let (agent, seen) = lagging_agent(100);
    let client = client(&agent.base());
    let mut query = HealthQuery::default();
    assert_eq!(query.consistency, Consistency::Default);
    assert_eq!(ask(&client, &query), ["10.0.0.1", "10.0.0.2"]);
    assert!(seen.try_recv().unwrap().query_values("stale").is_empty());

    query.consistency = stale(None);
    assert_eq!(ask(&client, &query), ["10.0.0.1"]);
    assert!(is_stale(&seen.try_recv().unwrap()));
    // Within its bound (or with none) a stale answer is taken: one request each.
    query.consistency = stale(Some(Duration::from_millis(100)));
    assert_eq!(ask(&client, &query), ["10.0.0.1"]);
    query.consistency = stale(Some(Duration::MAX));
    assert_eq!(ask(&client, &query), ["10.0.0.1"]);
    assert_eq!(seen.try_iter().filter(is_stale).count(), 2);
    assert!(seen.is_empty());
}

#[test]
fn an_answer_older_than_max_stale_is_asked_again_of_the_leader() {
    let (agent, seen) = lagging_agent(5_000);
    let client = client(&agent.base());
    let mut query = HealthQuery::default();
    query.consistency = stale(Some(Duration::from_secs(1)));
    query.index = 9;
    query.wait = Duration::from_secs(1);
    assert_eq!(
        ask(&client, &query),
        ["10.0.0.1", "10.0.0.2"],
        "the leader's set"
    );
    let (first, second) = (seen.try_recv().unwrap(), seen.try_recv().unwrap());
    assert!(is_stale(&first), "{first:?}");
    assert!(second.query_values("stale").is_empty(), "{second:?}");
    // The same query otherwise: same blocking index and wait, same filter.
    for seen in [&first, &second] {
        assert_eq!(seen.path, "/v1/health/service/web");
        assert_eq!(seen.query_value("index").as_deref(), Some("9"));
        assert_eq!(seen.query_value("wait").as_deref(), Some("1000ms"));
        assert_eq!(seen.query_value("passing").as_deref(), Some("1"));
    }
    assert!(seen.is_empty(), "two requests, no more");
}

#[test]
fn an_instancer_passes_its_consistency_on() {
    let (agent, seen) = lagging_agent(5_000);
    let client = client(&agent.base());
    let (instancer, rx) = watch(&client, "web", stale(Some(Duration::from_secs(2))));
    // Asked again: the leader's set.
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80"]);
    instancer.stop();
    let requests: Vec<bool> = seen.try_iter().map(|s| is_stale(&s)).collect();
    assert_eq!(&requests[..2], [true, false], "stale, then the leader");
}

#[test]
fn instancers_that_differ_in_consistency_do_not_share_a_watch() {
    let (agent, _seen) = lagging_agent(5_000);
    let client = client(&agent.base());
    // Same client, service and filters: only the consistency differs.
    let (leader, from_leader) = watch(&client, "web", Consistency::Default);
    let (any, from_any) = watch(&client, "web", stale(None));
    wait_for_set(&from_leader, &["10.0.0.1:80", "10.0.0.2:80"]);
    wait_for_set(&from_any, &["10.0.0.1:80"]);
    leader.stop();
    any.stop();
}

#[test]
fn a_zero_max_stale_is_refused_and_max_bounds_nothing() {
    let client = client("http://127.0.0.1:1");
    let zero = Instancer::builder(&client, "web").consistency(stale(Some(Duration::ZERO)));
    let Err(Error::InvalidConfig { field, .. }) = zero.build() else {
        panic!("a zero max_stale was taken");
    };
    assert_eq!(field, "max_stale");
    for fine in [
        stale(None),
        stale(Some(Duration::MAX)),
        Consistency::Default,
    ] {
        let instancer = Instancer::builder(&client, "web")
            .consistency(fine)
            .first_fetch_timeout(Duration::ZERO)
            .build();
        assert!(instancer.is_ok(), "{fine:?}");
    }
}

#[test]
fn a_stale_watch_on_a_real_agent_lists_the_set_and_follows_changes() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let client = client(&agent.http_base());
    let service = format!("stale-{}", std::process::id());
    let first = Registrar::builder(&client, service.as_str(), "10.0.0.1", 80)
        .no_check()
        .build()
        .unwrap();
    let _first = first.register().unwrap();

    // A direct stale query, bounded: the dev agent is the leader (LastContact 0).
    let mut query = HealthQuery::default();
    query.consistency = stale(Some(Duration::from_secs(1)));
    let health = client.health_service(&service, &query).unwrap();
    let addrs: Vec<_> = health.entries.iter().map(|e| &*e.service.address).collect();
    assert_eq!(addrs, ["10.0.0.1"]);
    assert!(health.index > 0);

    // A stale watch gets the set, then follows a change through its blocking queries.
    let (instancer, rx) = watch(&client, &service, stale(Some(Duration::from_secs(1))));
    wait_for_set(&rx, &["10.0.0.1:80"]);
    let second = Registrar::builder(&client, service.as_str(), "10.0.0.2", 80)
        .no_check()
        .build()
        .unwrap();
    let _second = second.register().unwrap();
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80"]);
    instancer.stop();
}
