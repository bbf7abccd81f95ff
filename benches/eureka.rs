//! Eureka latencies against the test harness's Eureka server double (no real Eureka
//! server can be installed here).
//!
//! Propagation: from `Registrar::register()` (or `deregister()`) returning to the
//! change being in `endpoints()` of a `DefaultEndpointer` on a `eureka::Instancer`
//! polling every 100 ms, over 50 isolated registrations (each 150 ms after the
//! previous change was seen, so that changes land anywhere in the poll interval).
//! A real Eureka server answers reads from a cache refreshed every 30 s, which adds up
//! to 30 s to this; the double has no such cache.
//!
//! Run: `cargo bench --bench eureka --features eureka`. Prints median, p99 and max;
//! figures go in benches/README.md.

#[path = "common/registry.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use registry::report;
use support::eureka_double::EurekaDouble;
use support::events::addr_endpointer;
use waypost::eureka::{HttpClient, Instancer, Registrar};

fn main() {
    let double = EurekaDouble::start();
    let client = HttpClient::builder()
        .server(double.url())
        .build()
        .expect("client");
    let instancer = Instancer::app(&client, "bench")
        .interval(Duration::from_millis(100))
        .build()
        .expect("instancer");
    let endpointer = addr_endpointer(instancer);
    endpointer
        .wait_ready(Duration::from_secs(10))
        .expect("ready");
    let spacing = Some(Duration::from_millis(150));
    let (mut added, mut removed) = registry::propagation(&endpointer, 50, spacing, |i| {
        let addr = format!("127.0.0.1:{}", 20_000 + i);
        let registrar = Registrar::builder(&client, "bench", addr.as_str())
            .build()
            .expect("registrar");
        (registrar.register().expect("register"), addr)
    });
    report(
        "isolated: register() returned -> in endpoints(), 100 ms poll",
        &mut added,
    );
    report(
        "isolated: deregister() returned -> gone from endpoints(), 100 ms poll",
        &mut removed,
    );
}
