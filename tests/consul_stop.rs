//! `stop()` while the fake agent holds a blocking query: prompt; the shared watch
//! lingers until its query returns, an instancer built meanwhile takes it over, and
//! dropping the client joins it. Its own test binary, so no other test's threads are
//! counted.
//!
//! ureq bounds each request's name lookup with a helper thread of its own: unnamed,
//! detached, started for an IP literal too. On Linux it inherits the name of the
//! thread that made the request, so while the watch thread's request resolves, two
//! threads are called `waypost-consul-`. The count is therefore taken while the
//! blocking query is held (no request is resolving), after the last helper has ended.
#![cfg(feature = "consul")]

mod support;

use std::time::{Duration, Instant};

use support::fake_http::{Answer, FakeHttp};
use support::{BOUND, threads_named, wait_until};
use waypost::consul::{HttpClient, Instancer};

#[test]
fn stop_during_a_held_blocking_query_is_prompt_and_joins() {
    let (entered_tx, entered) = crossbeam_channel::unbounded::<String>();
    let (_release, held) = crossbeam_channel::bounded::<()>(0);
    let server = FakeHttp::start(move |seen| {
        let index = seen.query_value("index");
        if let Some(index) = &index {
            let _ = entered_tx.send(index.clone());
            // Hold it as Consul would for the wait (5 minutes): until the test ends.
            let _ = held.recv_timeout(Duration::from_secs(300));
        }
        Answer::json("[]").header("X-Consul-Index", 9)
    });
    let client = HttpClient::builder()
        .address(server.base())
        .build()
        .unwrap();
    assert_eq!(threads_named("waypost-"), 0);
    let instancer = Instancer::builder(&client, "web").build().unwrap();
    assert_eq!(
        entered.recv_timeout(BOUND).unwrap(),
        "9",
        "a blocking query is held"
    );
    // The held query's lookup helper (an IP literal: a parse) ends at once; a second
    // watch thread would not, and would fail this wait.
    wait_until("one watch thread, its lookup helper gone", || {
        threads_named("waypost-consul-watch") == 1
    });

    let started = Instant::now();
    instancer.stop();
    let took = started.elapsed();
    println!("stop() with a blocking query held by the server took {took:?}");
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    // The watch is shared by the client's instancers: it lingers until its query
    // returns, rather than abandon an open query on the agent.
    assert_eq!(
        threads_named("waypost-consul-watch"),
        1,
        "the watch lingers"
    );

    // An instancer built meanwhile takes the watch over: its state at once, no query.
    let again = Instancer::builder(&client, "web").build().unwrap();
    let rx = support::events::subscribe(&again);
    assert!(
        matches!(rx.recv_timeout(BOUND).unwrap(), waypost::Event::Instances(s) if s.is_empty())
    );
    assert!(entered.try_recv().is_err(), "no second query");
    assert_eq!(threads_named("waypost-consul-watch"), 1);
    again.stop();

    // Dropping the last clone of the client stops the lingering watch and joins it.
    let started = Instant::now();
    drop(client);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "dropping the client took {took:?}"
    );
    // The watch thread was joined, and it started no lookup after the held query's,
    // whose helper was already gone (the wait covers only the kernel's reaping).
    support::wait_threads("waypost-", 0, "the watch thread was joined");
    drop((instancer, again));
}
