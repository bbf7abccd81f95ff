//! Fail-over between two real agents when one hangs (SIGSTOP): the instancer and the
//! registrar reach the good one within the documented worst case. Its own test binary:
//! it starts two agents of its own and stops one of them.
#![cfg(all(feature = "consul", unix))]

mod support;

use std::time::{Duration, Instant};

use support::consul::{ConsulAgent, require_consul};
use support::events::{next, subscribe};
use waypost::Event;
use waypost::consul::{HttpClient, Instancer, Registrar};

const WAIT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack on top of the documented bounds.
const SLACK: Duration = Duration::from_secs(3);

fn client(hung: &ConsulAgent, good: &ConsulAgent) -> HttpClient {
    HttpClient::builder()
        .addresses([hung.http_base(), good.http_base()])
        .request_timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

#[test]
fn a_hung_agent_is_left_for_the_next_within_the_documented_bound() {
    if require_consul().is_none() {
        return;
    }
    let (Some(hung), Some(good)) = (ConsulAgent::new(), ConsulAgent::new()) else {
        return;
    };
    // Only the good agent knows the service.
    let body = r#"{"ID":"fo-1","Name":"fo","Address":"127.0.0.1","Port":7301}"#;
    assert_eq!(
        good.put("/v1/agent/service/register", body).unwrap().status,
        200
    );

    let client = client(&hung, &good);
    let instancer = Instancer::builder(&client, "fo")
        .wait(WAIT)
        .build()
        .unwrap();
    let events = subscribe(&instancer);
    let first = next(&events);
    assert!(
        matches!(&first, Event::Instances(set) if set.is_empty()),
        "the hung agent answers first, without the service: {first:?}"
    );
    let ttl = Duration::from_secs(3);
    let registrar = Registrar::builder(&client, "fo-reg", "127.0.0.1", 7302)
        .ttl(ttl)
        .build()
        .unwrap();
    let _registration = registrar.register().unwrap();
    let service_path = format!("/v1/agent/service/{}", registrar.id());
    assert_eq!(hung.get(&service_path).unwrap().status, 200);

    // The agent hangs with a blocking query in flight and heartbeats due.
    let stopped_at = Instant::now();
    hung.pause();

    // Instancer: the query in flight costs wait + wait/16 + one request timeout.
    // Registrar: the next heartbeat (within TTL/3) costs one request timeout, then the
    // good agent does not know the check, and the registrar registers there.
    let watch_bound = WAIT + WAIT / 16 + REQUEST_TIMEOUT + SLACK;
    let heartbeat_bound = ttl / 3 + REQUEST_TIMEOUT + SLACK;
    let (mut watch_took, mut heartbeat_took) = (None, None);
    while watch_took.is_none() || heartbeat_took.is_none() {
        let now = stopped_at.elapsed();
        assert!(
            watch_took.is_some() || now < watch_bound,
            "the good agent's set did not arrive within {watch_bound:?}"
        );
        assert!(
            heartbeat_took.is_some() || now < heartbeat_bound,
            "the registration did not reach the good agent within {heartbeat_bound:?}"
        );
        if heartbeat_took.is_none() && good.get(&service_path).unwrap().status == 200 {
            heartbeat_took = Some(now);
        }
        // The instancer's events, waited for with a bound that also paces the
        // registration probe above.
        let event = events.recv_timeout(Duration::from_millis(20));
        if watch_took.is_none() && matches!(event, Ok(Event::Instances(set)) if set.len() == 1) {
            watch_took = Some(stopped_at.elapsed());
        }
    }
    println!(
        "after the stop, the instancer reached the good agent in {watch_took:?}, the registrar in {heartbeat_took:?}"
    );
    // Thawed before the guards drop: a deregistration may ask the first address first,
    // and a hung one costs it a request timeout.
    hung.resume();
}
