//! Consul latencies against a real agent on loopback (Consul 1.8.7, `-dev`).
//!
//! 1. Propagation: from `Registrar::register()` returning to the new instance being in
//!    `endpoints()` of a `DefaultEndpointer` on a `consul::Instancer`; 100 registrations.
//! 2. Stop: `Instancer::stop()` while a 5-minute blocking query is in flight; 50 stops.
//!
//! Run: `cargo bench --bench consul` (the agent comes from the test harness: see
//! scripts/fetch-consul.sh). Prints median, p99 and max; figures go in benches/README.md.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use waypost::consul::{HttpClient, Instancer, Registrar};
use waypost::{DefaultEndpointer, Endpointer, Instance};

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
    propagation(&client);
    stop_latency(&client);
}

fn propagation(client: &HttpClient) {
    let instancer = Instancer::builder(client, "latency")
        .build()
        .expect("instancer");
    let endpointer =
        DefaultEndpointer::new(Arc::new(instancer), |i: &Instance| Ok(i.addr().to_owned()))
            .expect("endpointer");
    endpointer
        .wait_ready(Duration::from_secs(10))
        .expect("ready");
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for i in 0..100u16 {
        let port = 20_000 + i;
        let want = format!("127.0.0.1:{port}");
        let registrar = Registrar::builder(client, "latency", "127.0.0.1", port)
            .build()
            .expect("registrar");
        let _registrar_registration = registrar.register().expect("register");
        added.push(until(|| {
            endpointer.endpoints().is_ok_and(|e| e.contains(&want))
        }));
        registrar.deregister().expect("deregister");
        removed.push(until(|| endpointer.endpoints().is_ok_and(|e| e.is_empty())));
    }
    report("register() returned -> in endpoints()", &mut added);
    report(
        "deregister() returned -> gone from endpoints()",
        &mut removed,
    );
}

fn stop_latency(client: &HttpClient) {
    let mut stops = Vec::new();
    for _ in 0..50 {
        let instancer = Instancer::builder(client, "latency")
            .wait(Duration::from_secs(300))
            .build()
            .expect("instancer");
        let (tx, rx) = crossbeam_channel::unbounded();
        instancer.subscribe(tx);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("first state");
        // The first answer came back; the next query is a blocking one with the
        // answer's index. Give it a moment to reach the agent (this is a measurement,
        // not a test: a stop before it is sent would only flatter the figure slightly).
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        instancer.stop();
        stops.push(started.elapsed());
    }
    report("stop() during a 5-minute blocking query", &mut stops);
}

/// Spins until `done` holds; the time it took. Bounded at 10 s.
fn until(mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no change in 10 s"
        );
        std::thread::yield_now();
    }
    started.elapsed()
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n = {}, median {:.2?}, p99 {:.2?}, max {:.2?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}
