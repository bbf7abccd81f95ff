//! Consul latencies and registry load against a real agent on loopback (Consul 1.8.7,
//! `-dev`), and the load one watch puts on a fake agent.
//!
//! 1. Propagation: from `Registrar::register()` (or `deregister()`) returning to the
//!    change being in `endpoints()` of a `DefaultEndpointer` on a `consul::Instancer`:
//!    isolated changes (each 250 ms, 2.5 min intervals, after the previous one) and
//!    back-to-back changes (each as soon as the previous one was seen).
//! 2. Stop: `Instancer::stop()` while a blocking query is in flight, for a watch of its
//!    own (a client that shares no watches: the query is cancelled and the thread
//!    joined) and for a shared watch (it lingers; `stop()` returns at once), and the
//!    drop of the last client clone that joins a lingering watch.
//! 3. Registry load: the queries per second of one watch against a fake agent that
//!    answers at once, each time with a newer index, for 3 s; and against the real agent
//!    while a service flaps (registered, deregistered) every 5 ms for 10 s.
//!
//! Run: `cargo bench --bench consul` (the agent comes from the test harness; the
//! README's test command, scripts/test.sh, installs it). Prints median, p99 and max; figures go in benches/README.md.

#[path = "common/registry.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use registry::report;
use support::events::{addr_endpointer, next, subscribe};
use support::fake_consul::spy;
use support::fake_http::{Answer, FakeHttp};
use waypost::consul::{Client, HttpClient, Instancer, Registrar};

fn main() {
    // criterion-style flags (`--bench`) are passed by cargo; nothing to parse.
    let Some(agent) = support::consul::ConsulAgent::new() else {
        eprintln!("consul bench skipped: no consul binary");
        return;
    };
    let client = HttpClient::builder()
        .address(agent.http_base())
        .build()
        .expect("client");
    propagation(&client, "isolated", Some(Duration::from_millis(250)), 40);
    propagation(&client, "back to back", None, 100);
    stop_latency(&client, &agent.http_base());
    load_on_a_fake_agent();
    load_while_flapping(&agent, &client);
}

fn propagation(client: &HttpClient, what: &str, spacing: Option<Duration>, n: u16) {
    let service = format!("latency-{}", what.replace(' ', "-"));
    let instancer = Instancer::builder(client, service.as_str())
        .build()
        .expect("instancer");
    let endpointer = addr_endpointer(instancer);
    endpointer
        .wait_ready(Duration::from_secs(10))
        .expect("ready");
    let (mut added, mut removed) = registry::propagation(&endpointer, n, spacing, |i| {
        let port = 20_000 + i;
        let registrar = Registrar::builder(client, service.as_str(), "127.0.0.1", port)
            .build()
            .expect("registrar");
        (
            registrar.register().expect("register"),
            format!("127.0.0.1:{port}"),
        )
    });
    report(
        &format!("{what}: register() returned -> in endpoints()"),
        &mut added,
    );
    report(
        &format!("{what}: deregister() returned -> gone from endpoints()"),
        &mut removed,
    );
}

fn stop_latency(client: &HttpClient, base: &str) {
    let (own, _spied) = spy(client.clone()); // a client of its own: no shared watches
    let mut stops = Vec::new();
    for _ in 0..50 {
        let instancer = held_query(&own);
        let started = Instant::now();
        instancer.stop();
        stops.push(started.elapsed());
    }
    report(
        "stop() during a blocking query, a watch of its own",
        &mut stops,
    );

    let mut stops = Vec::new();
    let mut drops = Vec::new();
    for _ in 0..20 {
        let shared = HttpClient::builder().address(base).build().expect("client");
        let instancer = held_query(&shared);
        let started = Instant::now();
        instancer.stop();
        stops.push(started.elapsed());
        let started = Instant::now();
        drop(shared); // the last clone: stops and joins the lingering watch
        drops.push(started.elapsed());
    }
    report("stop() during a blocking query, a shared watch", &mut stops);
    report(
        "drop of the last client clone, a watch lingering",
        &mut drops,
    );
}

/// An instancer whose blocking query is in flight.
fn held_query(client: &dyn Client) -> Instancer {
    let instancer = Instancer::builder(client, "latency")
        .build()
        .expect("instancer");
    next(&subscribe(&instancer));
    // The first answer came back; the next query is a blocking one with the answer's
    // index. Give it a moment to reach the agent (this is a measurement, not a test: a
    // stop before it is sent would only flatter the figure slightly).
    std::thread::sleep(Duration::from_millis(20));
    instancer
}

/// One watch against an agent that answers at once with a newer index every time.
fn load_on_a_fake_agent() {
    let index = Arc::new(AtomicU64::new(1));
    let counter = index.clone();
    let server = FakeHttp::start(move |_| {
        let next = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Answer::json("[]").header("X-Consul-Index", next)
    });
    let client = HttpClient::builder()
        .address(server.base())
        .build()
        .expect("client");
    let instancer = Instancer::builder(&client, "busy")
        .build()
        .expect("instancer");
    let (before, started) = (index.load(Ordering::SeqCst), Instant::now());
    std::thread::sleep(Duration::from_secs(3)); // the measuring window
    let queries = index.load(Ordering::SeqCst) - before;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "one watch, fake agent answering at once with a newer index: {queries} queries in {secs:.2} s = {:.1}/s (min_interval 100 ms)",
        queries as f64 / secs
    );
    drop(instancer);
}

/// One watch on the real agent while a service flaps every 5 ms for 10 s.
fn load_while_flapping(agent: &support::consul::ConsulAgent, client: &HttpClient) {
    let (spy, spied) = spy(client.clone());
    let instancer = Instancer::builder(&spy, "flapping")
        .build()
        .expect("instancer");
    let done = Arc::new(AtomicBool::new(false));
    let flapper = {
        let (done, port) = (done.clone(), agent.http_port());
        std::thread::spawn(move || {
            let body = r#"{"ID":"flap-1","Name":"flapping","Address":"127.0.0.1","Port":7777}"#;
            let mut flaps = 0u64;
            while !done.load(Ordering::SeqCst) {
                let path = if flaps % 2 == 0 {
                    "/v1/agent/service/register"
                } else {
                    "/v1/agent/service/deregister/flap-1"
                };
                let body = if flaps % 2 == 0 { body } else { "" };
                let _ = support::http::http_request(port, "PUT", path, &[], body);
                flaps += 1;
                std::thread::sleep(Duration::from_millis(5)); // the flapping period
            }
            flaps
        })
    };
    spied.queries.try_iter().for_each(drop); // the queries before the window
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(10)); // the measuring window
    let queries = spied.queries.try_iter().count();
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let flaps = flapper.join().expect("flapper");
    println!(
        "one watch, real agent, service flapping every 5 ms ({flaps} flaps): {queries} queries in {secs:.2} s = {:.1}/s",
        queries as f64 / secs
    );
    drop(instancer);
}
