//! Bench 1: `endpoints()` (take the guard, read the length and the first element) at
//! N = 10, 1,000 and 100,000 instances, on one thread and on two threads sharing one
//! endpointer. Two-thread figures are wall time / total operations (Go kit's measure).

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use waypost::Endpointer;

use common::{Ep, fixed_endpointer, one_thread, two_threads};

fn read(endpointer: &impl Endpointer<Ep>) {
    let endpoints = endpointer.endpoints().expect("endpoints");
    black_box(endpoints.len());
    black_box(endpoints.first());
}

fn endpoints(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoints");
    for n in [10, 1_000, 100_000] {
        let endpointer = fixed_endpointer(n);
        group.bench_function(format!("one_thread/{n}"), |b| {
            b.iter_custom(|iters| one_thread(iters, || read(&endpointer)))
        });
        group.bench_function(format!("two_threads/{n}"), |b| {
            b.iter_custom(|iters| two_threads(iters, || read(&endpointer)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(3), 30);
    targets = endpoints
}
criterion_main!(benches);
