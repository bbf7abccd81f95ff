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
//! Allocations per call are counted in `benches/memory.rs`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use waypost::lb::{Balancer, Random, Retry, RoundRobin};

use common::{Ep, fixed_endpointer, one_thread, two_threads};

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

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(3), 30);
    targets = balancers
}
criterion_main!(benches);
