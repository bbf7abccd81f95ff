//! ZooKeeper latencies against real servers on loopback (ZooKeeper 3.8.0, the test
//! harness's standalone server and 3-node ensemble).
//!
//! 1. Propagation: from `Registrar::register()` (or `deregister()`) returning to the
//!    change being in `endpoints()` of a `DefaultEndpointer` on a `zk::Instancer`, over
//!    100 isolated registrations (each 200 ms, twice the watch's minimum interval,
//!    after the previous change was seen).
//! 2. Fail-over: from SIGKILL of the server a session is on to the first successful
//!    call on another server of the ensemble (10 kills).
//! 3. `close()`: ending a session with an ephemeral node (50 closes).
//!
//! Run: `cargo bench --bench zk --features zk` (the README's test command installs
//! ZooKeeper). Prints median, p99 and max; figures go in benches/README.md.

#[path = "common/registry.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use registry::report;
use support::events::addr_endpointer;
use support::zookeeper::{Ensemble, shared};
use waypost::zk::{Client, CreateMode, Instancer, Registrar};

fn main() {
    let Some(zk) = shared() else {
        eprintln!("zk bench skipped: no ZooKeeper");
        return;
    };
    let client = Client::builder(&zk.connect_string())
        .build()
        .expect("client");
    propagation(&client, 100);
    close_latency(&zk.connect_string(), 50);
    failover(10);
}

fn propagation(client: &Client, n: u16) {
    let path = "/bench/latency";
    let instancer = Instancer::builder(client, path).build().expect("instancer");
    let endpointer = addr_endpointer(instancer);
    endpointer
        .wait_ready(Duration::from_secs(10))
        .expect("ready");
    // Twice the watch's minimum interval (100 ms).
    let spacing = Some(Duration::from_millis(200));
    let (mut added, mut removed) = registry::propagation(&endpointer, n, spacing, |i| {
        let addr = format!("127.0.0.1:{}", 20_000 + i);
        let registrar = Registrar::new(client, path, &addr, &addr).expect("registrar");
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

fn close_latency(connect: &str, n: usize) {
    let mut closes = Vec::new();
    for i in 0..n {
        let c = Client::builder(connect).build().expect("client");
        c.create_all("/bench/close").expect("path");
        c.create(&format!("/bench/close/e{i}"), b"x", CreateMode::Ephemeral)
            .expect("ephemeral");
        let started = Instant::now();
        c.close();
        closes.push(started.elapsed());
    }
    report(
        "close() with an ephemeral node (closeSession, join)",
        &mut closes,
    );
}

fn failover(kills: usize) {
    let mut took = Vec::new();
    for _ in 0..kills {
        let Some(mut ensemble) = Ensemble::start() else {
            return;
        };
        let c = Client::builder(&ensemble.connect_string())
            .build()
            .expect("client");
        c.create_all("/bench/failover").expect("path");
        let sid = format!("sid=0x{:x}", c.session_id());
        let in_use = (0..3)
            .find(|&i| {
                ensemble
                    .member(i)
                    .four_letter("cons")
                    .is_ok_and(|cons| cons.contains(&sid))
            })
            .expect("the server in use");
        let started = Instant::now();
        ensemble.kill(in_use);
        while c.exists("/bench/failover").is_err() {}
        took.push(started.elapsed());
    }
    report(
        "SIGKILL of the server in use -> first successful call on another",
        &mut took,
    );
}
