//! Busy readers and long-held snapshots never hold up an update or `close()`.
//!
//! The first read path held a shard's `read_recursive` lock in the guard `endpoints()`
//! returned: 16 threads picking in a loop delayed an update by 1.6 s, and 8 threads
//! holding guards for 200 µs starved it (and `close()`) past 10 s. Here a snapshot holds
//! no lock, so every update reaches every thread promptly. Latency figures belong to
//! `benches/`; this test only bounds them.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{BOUND, wait_until};
use waypost::lb::{Balancer, RoundRobin};
use waypost::{DefaultEndpointer, Endpointer, Instance, PushInstancer};

const PICKERS: usize = 16;
const HOLDERS: usize = 8;
const UPDATES: u64 = 20;
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

fn set(k: u64) -> Vec<Instance> {
    (0..10)
        .map(|i| Instance::new(format!("10.0.{k}.{i}:80")))
        .collect()
}

/// Busy work standing for a request made while holding the snapshot.
fn work_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn updates_reach_every_busy_reader_within_a_second_and_close_returns() {
    let instancer = Arc::new(PushInstancer::new());
    instancer.publish_instances(set(0));
    let e =
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap();
    e.wait_ready(BOUND).unwrap();
    let lb = RoundRobin::new(&e);
    let seen: Vec<AtomicU64> = (0..PICKERS + HOLDERS).map(|_| AtomicU64::new(0)).collect();
    let stop = AtomicBool::new(false);
    let give_up = Instant::now() + 3 * BOUND;
    std::thread::scope(|s| {
        for (t, mine) in seen.iter().enumerate() {
            let (e, lb, stop) = (&e, &lb, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                    let Ok(snap) = e.endpoints() else { break }; // closed
                    if t < PICKERS {
                        let _ = lb.pick();
                    } else {
                        work_for(Duration::from_micros(200));
                    }
                    mine.store(snap.version(), Ordering::Relaxed);
                }
            });
        }

        let mut worst = Duration::ZERO;
        for k in 1..=UPDATES {
            let before = e.status().version;
            let published = Instant::now();
            instancer.publish_instances(set(k));
            wait_until("the update", || e.status().version > before);
            let version = e.status().version;
            while seen.iter().any(|v| v.load(Ordering::Relaxed) < version) {
                let late = published.elapsed();
                assert!(
                    late < VISIBLE_WITHIN,
                    "update {k} not seen by every thread after {late:?}"
                );
                std::thread::yield_now();
            }
            worst = worst.max(published.elapsed());
        }
        eprintln!(
            "slowest update to reach all {} threads: {worst:?}",
            seen.len()
        );

        let started = Instant::now();
        e.close();
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        assert!(took < Duration::from_secs(1), "close() took {took:?}");
    });
}
