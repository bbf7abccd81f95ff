//! Benches 2-4 at N = 10 instances, on one thread and on two threads sharing one
//! balancer (two-thread figures are wall time / total operations, Go kit's measure):
//!
//! 2. round-robin pick + no-op call, borrowed: `with_pick(|f| f())`;
//! 3. random, the same: `Random::new` (a per-thread generator) and `Random::with_seed(_, 42)`
//!    (one atomic SplitMix64 state per CPU shard, shared by the threads on that shard;
//!    Go kit's B3 single-thread case uses seed 42);
//! 4. `Retry` (3 attempts, 1 s) over round-robin, the first attempt succeeding (Retry
//!    picks a clone, so this includes one `Arc` clone and drop per call).
//!
//! Issue 22's costs: pick plus the end of the call (`pick.success()`) for every
//! balancer, beside round-robin's, at N = 10 and N = 1,000, on one and two threads
//! (group `load_aware`): round-robin, random, `P2c`, `PeakEwma` (system clock), and
//! `OutlierEjection` around round-robin, `P2c` and `PeakEwma` with nothing ejected, and
//! around `P2c` with one instance ejected (each pick then asks `P2c::pick_if`).
//!
//! Issue 23 adds `WeightedRoundRobin` (weights 1-5 in turn), `ZonePreference` around
//! round-robin (all instances local, and none local: every pick spills) and
//! `SlowStart` around round-robin (nothing ramping) to the same group; consistent
//! hashing is in `benches/hashing.rs`.
//!
//! Allocations per call are counted in `benches/memory.rs` and, for the load-aware
//! balancers, asserted zero in `tests/balancers.rs`.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use waypost::lb::{
    Balancer, OutlierEjection, P2c, PeakEwma, Random, Retry, RoundRobin, SlowStart,
    WeightedRoundRobin, ZonePreference,
};
use waypost::{FixedInstancer, Instance};

use common::{Ep, addr, endpointer, factory, fixed_endpointer, noop, one_thread, two_threads};

const N: usize = 10;

fn call(balancer: &impl Balancer<Ep>) {
    black_box(balancer.with_pick(|f| f())).expect("pick");
}

fn balancers(c: &mut Criterion) {
    let mut group = c.benchmark_group("balancers");

    let round_robin = RoundRobin::new(fixed_endpointer(N));
    group.bench_function("round_robin/one_thread", |b| {
        b.iter_custom(|iters| one_thread(iters, || call(&round_robin)))
    });
    group.bench_function("round_robin/two_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || call(&round_robin)))
    });

    let random = Random::new(fixed_endpointer(N));
    group.bench_function("random/one_thread", |b| {
        b.iter_custom(|iters| one_thread(iters, || call(&random)))
    });
    group.bench_function("random/two_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || call(&random)))
    });

    let seeded = Random::with_seed(fixed_endpointer(N), 42);
    group.bench_function("random_seeded/one_thread", |b| {
        b.iter_custom(|iters| one_thread(iters, || call(&seeded)))
    });
    group.bench_function("random_seeded/two_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || call(&seeded)))
    });

    let retry = Retry::builder(RoundRobin::new(fixed_endpointer(N)))
        .max_attempts(3)
        .timeout(Duration::from_secs(1))
        .build()
        .expect("retry");
    let attempt = || {
        let out = retry.call(|f: &Ep, deadline| -> Result<(), ()> {
            black_box(deadline);
            f();
            Ok(())
        });
        black_box(out).expect("first attempt succeeds");
    };
    group.bench_function("retry/one_thread", |b| {
        b.iter_custom(|iters| one_thread(iters, attempt))
    });
    group.bench_function("retry/two_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, attempt))
    });

    group.finish();
}

/// One call through `balancer`: the pick, the endpoint called, the call's end.
fn pick_and_end(balancer: &impl Balancer<Ep>) {
    let pick = balancer.pick().expect("pick");
    (*pick)();
    pick.success();
}

/// Fails calls on the first instance picked until the balancer ejects it.
fn eject_one(balancer: &OutlierEjection<P2c<waypost::DefaultEndpointer<Ep>>>) {
    let first = balancer.pick().expect("pick").instance().clone();
    while balancer.status().ejected().is_empty() {
        let pick = balancer.pick().expect("pick");
        if *pick.instance() == first {
            pick.failure();
        }
    }
}

fn bench_pair(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    balancer: &impl Balancer<Ep>,
) {
    group.bench_function(format!("{name}/one_thread"), |b| {
        b.iter_custom(|iters| one_thread(iters, || pick_and_end(balancer)))
    });
    group.bench_function(format!("{name}/two_threads"), |b| {
        b.iter_custom(|iters| two_threads(iters, || pick_and_end(balancer)))
    });
}

fn load_aware(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_aware");
    for n in [10, 1_000] {
        let round_robin = RoundRobin::new(fixed_endpointer(n));
        bench_pair(&mut group, &format!("round_robin/{n}"), &round_robin);
        let random = Random::new(fixed_endpointer(n));
        bench_pair(&mut group, &format!("random/{n}"), &random);
        let p2c = P2c::new(fixed_endpointer(n)).expect("p2c");
        bench_pair(&mut group, &format!("p2c/{n}"), &p2c);
        let ewma = PeakEwma::new(fixed_endpointer(n)).expect("peak ewma");
        bench_pair(&mut group, &format!("peak_ewma/{n}"), &ewma);
        let ejecting =
            OutlierEjection::new(RoundRobin::new(fixed_endpointer(n))).expect("ejection");
        bench_pair(&mut group, &format!("ejection_round_robin/{n}"), &ejecting);
        let ejecting =
            OutlierEjection::new(P2c::new(fixed_endpointer(n)).expect("p2c")).expect("ejection");
        bench_pair(&mut group, &format!("ejection_p2c/{n}"), &ejecting);
        let ejecting = OutlierEjection::new(PeakEwma::new(fixed_endpointer(n)).expect("ewma"))
            .expect("ejection");
        bench_pair(&mut group, &format!("ejection_peak_ewma/{n}"), &ejecting);
        // One instance ejected (on a manual clock, so it stays out): every pick asks
        // P2C for an instance in service (`pick_if`).
        let ejecting = OutlierEjection::builder(P2c::new(fixed_endpointer(n)).expect("p2c"))
            .clock(waypost::ManualClock::new())
            .build()
            .expect("ejection");
        eject_one(&ejecting);
        bench_pair(&mut group, &format!("ejection_p2c_one_out/{n}"), &ejecting);
        // Issue 23: weights 1 to 5, in turn.
        let weighted = (0..n).map(|i| Instance::builder(addr(i)).weight(1 + i as u32 % 5).build());
        let weighted = endpointer(
            Arc::new(FixedInstancer::new(weighted.collect::<Vec<_>>())),
            factory(noop()),
        );
        let weighted = WeightedRoundRobin::new(weighted).expect("weighted");
        bench_pair(&mut group, &format!("weighted_round_robin/{n}"), &weighted);
        // Issue 23's wrappers around round-robin, in their steady state: every
        // instance in the local zone; none in it (every pick spills: two inner picks,
        // the worst case); no instance ramping.
        let zoned = (0..n).map(|i| Instance::builder(addr(i)).zone("eu").build());
        let zoned = endpointer(
            Arc::new(FixedInstancer::new(zoned.collect::<Vec<_>>())),
            factory(noop()),
        );
        let zoned = ZonePreference::new(RoundRobin::new(zoned), "eu").expect("zone");
        bench_pair(&mut group, &format!("zone_round_robin/{n}"), &zoned);
        let spilling =
            ZonePreference::new(RoundRobin::new(fixed_endpointer(n)), "eu").expect("zone");
        bench_pair(
            &mut group,
            &format!("zone_spilling_round_robin/{n}"),
            &spilling,
        );
        let slow = SlowStart::new(RoundRobin::new(fixed_endpointer(n))).expect("slow start");
        bench_pair(&mut group, &format!("slow_start_round_robin/{n}"), &slow);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(3), 30);
    targets = balancers, load_aware
}
criterion_main!(benches);
