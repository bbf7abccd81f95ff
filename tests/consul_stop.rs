//! `stop()` while the fake agent holds a blocking query: prompt, and the watch thread
//! is gone. Its own test binary, so no other test's threads are counted.
#![cfg(feature = "consul")]

mod support;

use std::time::{Duration, Instant};

use support::fake_http::{Answer, FakeHttp};
use support::{BOUND, threads_named};
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
    assert_eq!(threads_named("waypost-consul-watch"), 1);
    assert_eq!(
        entered.recv_timeout(BOUND).unwrap(),
        "9",
        "a blocking query is held"
    );

    let started = Instant::now();
    instancer.stop();
    let took = started.elapsed();
    println!("stop() with a blocking query held by the server took {took:?}");
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    assert_eq!(threads_named("waypost-"), 0, "the watch thread was joined");
    drop(instancer);
}
