//! etcd latencies against a real member on loopback (etcd 3.4.23, the test harness's
//! tuned single member).
//!
//! 1. Propagation: from `Registrar::register()` (or `deregister()`) returning to the
//!    change being in `endpoints()` of a `DefaultEndpointer` on an `etcd::Instancer`,
//!    over 100 isolated registrations (each 200 ms, twice the watch's minimum interval,
//!    after the previous change was seen).
//! 2. Stop: `Instancer::stop()` while its watch stream is open: 50 stops.
//!
//! Run: `cargo bench --bench etcd` (the README's test command, scripts/test.sh,
//! installs etcd). Prints median, p99 and max; figures go in benches/README.md.

#[path = "common/registry.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use registry::report;
use support::events::{addr_endpointer, next, subscribe};
use waypost::etcd::{HttpClient, Instancer, Registrar};

fn main() {
    // criterion-style flags (`--bench`) are passed by cargo; nothing to parse.
    let Some(etcd) = support::etcd::shared() else {
        eprintln!("etcd bench skipped: no etcd binary");
        return;
    };
    let client = HttpClient::builder()
        .address(etcd.client_url())
        .build()
        .expect("client");
    propagation(&client, 100);
    stop_latency(&client, 50);
}

fn propagation(client: &HttpClient, n: u16) {
    let prefix = "/bench/latency/";
    let instancer = Instancer::builder(client, prefix)
        .build()
        .expect("instancer");
    let endpointer = addr_endpointer(instancer);
    endpointer
        .wait_ready(Duration::from_secs(10))
        .expect("ready");
    // Twice the watch's minimum interval (100 ms).
    let spacing = Some(Duration::from_millis(200));
    let (mut added, mut removed) = registry::propagation(&endpointer, n, spacing, |i| {
        let addr = format!("127.0.0.1:{}", 20_000 + i);
        let registrar = Registrar::builder(client, prefix, addr.as_str())
            .build()
            .expect("registrar");
        (registrar.register().expect("register"), addr)
    });
    report(
        "isolated: register() returned -> in endpoints()",
        &mut added,
    );
    report(
        "isolated: deregister() returned -> gone from endpoints()",
        &mut removed,
    );
}

fn stop_latency(client: &HttpClient, n: usize) {
    let mut stops = Vec::new();
    for _ in 0..n {
        let instancer = Instancer::builder(client, "/bench/stop/")
            .build()
            .expect("instancer");
        next(&subscribe(&instancer));
        // The first list came back; the watch stream opens right after. Give it a
        // moment to be open (a measurement, not a test: a stop before it would only
        // flatter the figure slightly).
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        instancer.stop();
        stops.push(started.elapsed());
    }
    report("stop() during an open watch stream", &mut stops);
}
