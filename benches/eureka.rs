//! Eureka latencies against the test harness's Eureka server double (no real Eureka
//! server can be installed here).
//!
//! Propagation: from `Registrar::register()` (or `deregister()`) returning to the
//! change being in `endpoints()` of a `DefaultEndpointer` on a `eureka::Instancer`
//! polling every 100 ms, over 50 isolated registrations, each made 100 to 199 ms
//! after the previous change was seen (a different phase of the poll interval each
//! time), so the figures spread over the interval as changes in life do.
//! A real Eureka server answers reads from a cache refreshed every 30 s, which adds up
//! to 30 s to this; the double has no such cache.
//!
//! Run: `cargo bench --bench eureka --features eureka`. Prints median, p99 and max;
//! figures go in benches/README.md.

#[allow(dead_code)] // its propagation loop spaces changes evenly; this one varies
#[path = "common/registry.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use registry::report;
use support::eureka_double::EurekaDouble;
use support::events::addr_endpointer;
use support::wait_until;
use waypost::Endpointer;
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
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for i in 0..50u16 {
        // Spacing the changes is the point here, not a wait for a result: each lands
        // at another phase of the poll (100 ms + 0..99 ms, stepping by 37 ms).
        let space = || {
            std::thread::sleep(Duration::from_millis(100 + (u64::from(i) * 37) % 100));
        };
        let addr = format!("127.0.0.1:{}", 20_000 + i);
        let registrar = Registrar::builder(&client, "bench", addr.as_str())
            .build()
            .expect("registrar");
        space();
        let registration = registrar.register().expect("register");
        let started = Instant::now();
        wait_until("the registration", || {
            endpointer.endpoints().is_ok_and(|e| e.contains(&addr))
        });
        added.push(started.elapsed());
        space();
        registration.deregister().expect("deregister");
        let started = Instant::now();
        wait_until("the deregistration", || {
            endpointer.endpoints().is_ok_and(|e| e.is_empty())
        });
        removed.push(started.elapsed());
    }
    report(
        "isolated: register() returned -> in endpoints(), 100 ms poll",
        &mut added,
    );
    report(
        "isolated: deregister() returned -> gone from endpoints(), 100 ms poll",
        &mut removed,
    );
}
