//! Fixtures shared by the benchmarks, matching Go kit's `sd` benchmarks so that the
//! figures compare: the same addresses, in the same (ascending, not lexicographic)
//! order, and an endpoint that is one shared no-op function.

// Each bench file uses a different part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use waypost::{DefaultEndpointer, Endpointer, Factory, FixedInstancer, Instance, Instancer};

/// The endpoint type: a shared function; cloning it is a 16-byte `Arc` clone.
pub type Ep = Arc<dyn Fn() + Send + Sync>;

/// How long to wait for an endpointer's first state.
pub const READY: Duration = Duration::from_secs(30);

/// Instance `i`'s address: `10.{(i>>16)&255}.{(i>>8)&255}.{i&255}:8080`.
pub fn addr(i: usize) -> String {
    format!("10.{}.{}.{}:8080", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// `n` instances in ascending `i` (which is not their sorted order).
pub fn instances(n: usize) -> Vec<Instance> {
    (0..n).map(|i| Instance::new(addr(i))).collect()
}

/// The one no-op function every instance's endpoint shares.
pub fn noop() -> Ep {
    Arc::new(|| {})
}

/// A factory handing out clones of `ep` (no allocation per instance).
pub fn factory(ep: Ep) -> impl Factory<Ep> {
    move |_: &Instance| -> waypost::Result<waypost::Made<Ep>> { Ok((ep.clone(), None)) }
}

/// Like [`factory`], counting its calls in `calls`.
pub fn counting_factory(ep: Ep, calls: Arc<AtomicUsize>) -> impl Factory<Ep> {
    move |_: &Instance| -> waypost::Result<waypost::Made<Ep>> {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok((ep.clone(), None))
    }
}

/// A ready endpointer over `instancer`.
pub fn endpointer(
    instancer: Arc<dyn Instancer>,
    factory: impl Factory<Ep>,
) -> DefaultEndpointer<Ep> {
    let endpointer = DefaultEndpointer::new(instancer, factory).expect("endpointer");
    endpointer.wait_ready(READY).expect("first state");
    endpointer
}

/// A ready endpointer over a `FixedInstancer` of `n` instances.
pub fn fixed_endpointer(n: usize) -> DefaultEndpointer<Ep> {
    let endpointer = endpointer(Arc::new(FixedInstancer::new(instances(n))), factory(noop()));
    assert_eq!(endpointer.endpoints().expect("endpoints").len(), n);
    endpointer
}

/// Runs `op` `iters` times on each of two threads started together, and returns the
/// wall time divided by two: criterion then reports wall time / total operations, Go
/// kit's measure for its parallel benchmarks. Time per operation as one thread sees
/// it is twice that.
///
/// Each thread reads the clock itself, right before its first timed operation and
/// right after its last; the wall time is the latest end minus the earliest start. So
/// every timed operation falls inside the interval, whichever thread a barrier wakes
/// first, and thread start-up and the barrier's wake-ups stay outside it.
pub fn two_threads<F: Fn() + Sync>(iters: u64, op: F) -> Duration {
    let start = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    // A first operation outside the timing: the thread's shard index
                    // and anything else per thread is set up here.
                    op();
                    start.wait();
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    (t0, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench thread"))
            .collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("two spans");
    let last = spans.iter().map(|s| s.1).max().expect("two spans");
    (last - first) / 2
}

/// `op` `iters` times on this thread.
pub fn one_thread<F: Fn()>(iters: u64, op: F) -> Duration {
    op();
    let t = Instant::now();
    for _ in 0..iters {
        op();
    }
    t.elapsed()
}

/// The criterion settings every bench uses: short warm-up and measurement, so a full run
/// stays near 100 s on 2 cores.
#[allow(dead_code)] // memory.rs is a plain main without criterion
pub fn criterion(measure: Duration, samples: usize) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measure)
        .sample_size(samples)
}
