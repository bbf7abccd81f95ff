//! Consistent hashing (issue 23): what a pick costs and what a table costs to build,
//! ring beside Maglev, and how evenly each shares the keys.
//!
//! - `hashing/pick`: `pick_for` of an 8-byte key (a new one each call: a thread-local
//!   counter) plus the end of the call, for the ring and Maglev, bounded (factor 1.25,
//!   the default) and unbounded, beside round-robin's pick plus end, at N = 10 and
//!   1,000, on one and two threads (wall time / total operations, as in
//!   `balancers.rs`);
//! - `hashing/build`: the table built for a set of N = 100 and 1,000 instances (what
//!   the endpointer's thread does on each set change), as `ConsistentHash::build` does
//!   it for a fresh endpointer;
//! - then, outside criterion, the share of keys of the most and least loaded instance
//!   over the mean, for 1M random hashes, unbounded (`hashing/shares`).
//!
//! The key-movement figures are printed by `cargo test --test consistent_hash --
//! --nocapture`.

mod common;

use std::cell::Cell;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkGroup, Criterion, measurement::WallTime};
use waypost::FixedEndpointer;
use waypost::lb::{Balancer, ConsistentHash, ConsistentHashBuilder, RoundRobin};

use common::{Args, Ep, fixed_endpointer, instances, noop, one_thread, two_threads};

type Table<P> = fn(ConsistentHashBuilder<P>) -> ConsistentHashBuilder<P>;

fn ring<P>(b: ConsistentHashBuilder<P>) -> ConsistentHashBuilder<P> {
    b.default_ring()
}

fn maglev<P>(b: ConsistentHashBuilder<P>) -> ConsistentHashBuilder<P> {
    b.maglev()
}

/// The next key of this thread: 8 bytes of a counter.
fn next_key() -> [u8; 8] {
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    NEXT.with(|next| {
        let key = next.get();
        next.set(key + 1);
        key.to_le_bytes()
    })
}

fn bench_pair(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, op: impl Fn() + Sync) {
    group.bench_function(format!("{name}/one_thread"), |b| {
        b.iter_custom(|iters| one_thread(iters, &op))
    });
    group.bench_function(format!("{name}/two_threads"), |b| {
        b.iter_custom(|iters| two_threads(iters, &op))
    });
}

fn picks(c: &mut Criterion) {
    let mut group = c.benchmark_group("hashing/pick");
    for n in [10, 1_000] {
        let round_robin = RoundRobin::new(fixed_endpointer(n));
        bench_pair(&mut group, &format!("round_robin/{n}"), || {
            let pick = round_robin.pick().expect("pick");
            (*pick)();
            pick.success();
        });
        let tables: [(&str, Table<_>); 2] = [("ring", ring), ("maglev", maglev)];
        for (name, table) in tables {
            for (bound, factor) in [("", Some(1.25)), ("_unbounded", None)] {
                let lb = table(ConsistentHash::builder(fixed_endpointer(n)))
                    .bounded_load(factor)
                    .build()
                    .expect("consistent hash");
                bench_pair(&mut group, &format!("{name}{bound}/{n}"), || {
                    let pick = lb.pick_for(&next_key()).expect("pick");
                    (*pick)();
                    pick.success();
                });
            }
        }
    }
    group.finish();
}

fn builds(c: &mut Criterion) {
    let mut group = c.benchmark_group("hashing/build");
    for n in [100, 1_000] {
        let tables: [(&str, Table<_>); 2] = [("ring", ring), ("maglev", maglev)];
        for (name, table) in tables {
            group.bench_function(format!("{name}/{n}"), |b| {
                b.iter_batched(
                    || {
                        FixedEndpointer::with_instances(
                            instances(n).into_iter().map(|i| (i, noop())),
                        )
                    },
                    |endpointer: FixedEndpointer<Ep>| {
                        table(ConsistentHash::builder(endpointer))
                            .bounded_load(None)
                            .build()
                            .expect("consistent hash")
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

/// The most and least keys of one instance over the mean, for `hashes` random hashes.
fn shares(args: &Args) {
    let hashes: u64 = if args.bench { 1_000_000 } else { 10_000 };
    for n in [10, 100, 1_000] {
        let tables: [(&str, Table<_>); 2] = [("ring", ring), ("maglev", maglev)];
        for (name, table) in tables {
            let label = format!("hashing/shares/{name}/{n}");
            if !args.wants(&label) {
                continue;
            }
            let lb = table(ConsistentHash::builder(fixed_endpointer(n)))
                .bounded_load(None)
                .build()
                .expect("consistent hash");
            let mut counts = vec![0u64; n];
            let mut state = 0x5EED_u64;
            for _ in 0..hashes {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                counts[lb.pick_for_hash(z ^ (z >> 31)).expect("pick").index()] += 1;
            }
            let mean = hashes as f64 / n as f64;
            let max = *counts.iter().max().expect("n > 0") as f64 / mean;
            let min = *counts.iter().min().expect("n > 0") as f64 / mean;
            println!("{label}: max {max:.2}, min {min:.2} of the mean ({hashes} hashes)");
        }
    }
}

fn main() {
    let args = Args::parse();
    let mut c = common::criterion(Duration::from_secs(2), 20).configure_from_args();
    picks(&mut c);
    builds(&mut c);
    c.final_summary();
    shares(&args);
}
