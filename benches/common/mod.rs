//! Fixtures shared by the benchmarks, matching Go kit's `sd` benchmarks so that the
//! figures compare: the same addresses, in the same (ascending, not lexicographic)
//! order, and an endpoint that is one shared no-op function.

// Each bench file uses a different part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use waypost::{BoxError, DefaultEndpointer, Endpointer, FixedInstancer, Instance, Instancer};

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
pub fn factory(ep: Ep) -> impl Fn(&Instance) -> Result<Ep, BoxError> + Send + 'static {
    move |_| Ok(ep.clone())
}

/// Like [`factory`], counting its calls in `calls`.
pub fn counting_factory(
    ep: Ep,
    calls: Arc<AtomicUsize>,
) -> impl Fn(&Instance) -> Result<Ep, BoxError> + Send + 'static {
    move |_| {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(ep.clone())
    }
}

/// A ready endpointer over `instancer`.
pub fn endpointer<E: Clone + Send + Sync + 'static>(
    instancer: impl Instancer + 'static,
    factory: impl Fn(&Instance) -> Result<E, BoxError> + Send + 'static,
) -> DefaultEndpointer<E> {
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

/// The endpoint type of the update benches: one closure per instance that answers with
/// its instance's address (Go kit's "named factory" in B5).
pub type NamedEp = Arc<dyn Fn() -> Arc<str> + Send + Sync>;

/// A factory making a new [`NamedEp`] per instance (one allocation each, as Go kit's
/// named factory), counting its calls in `calls`.
pub fn named_factory(
    calls: Arc<AtomicUsize>,
) -> impl Fn(&Instance) -> Result<NamedEp, BoxError> + Send + 'static {
    move |instance| {
        calls.fetch_add(1, Ordering::Relaxed);
        let addr = instance.addr_arc().clone();
        let ep: NamedEp = Arc::new(move || addr.clone());
        Ok(ep)
    }
}

/// The `p` quantile (0..=1) of sorted `xs`, interpolating linearly between ranks, as
/// the Go kit harness does (the median of an even count is the mean of the two middle
/// values).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median of `xs` (any order).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Latencies in nanoseconds, counted exactly: one counter per nanosecond below
/// [`Latencies::EXACT`] ns, and every larger value kept as it is. Recording is an
/// increment, so millions of calls can be timed one by one.
pub struct Latencies {
    counts: Vec<u64>,
    large: Vec<u64>,
    n: u64,
}

impl Latencies {
    /// Values below this many nanoseconds go to a counter.
    pub const EXACT: u64 = 1 << 16;

    pub fn new() -> Latencies {
        Latencies {
            counts: vec![0; Self::EXACT as usize],
            large: Vec::new(),
            n: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.n += 1;
        match self.counts.get_mut(ns as usize) {
            Some(c) => *c += 1,
            None => self.large.push(ns),
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    /// The smallest value with at least `p` of all values at or below it (`p` in 0..=1).
    pub fn quantile(&mut self, p: f64) -> u64 {
        assert!(self.n > 0, "no latencies");
        let rank = ((p * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (ns, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ns as u64;
            }
        }
        self.large.sort_unstable();
        self.large[(rank - seen - 1) as usize]
    }

    pub fn max(&self) -> u64 {
        self.large
            .iter()
            .copied()
            .max()
            .unwrap_or_else(|| self.counts.iter().rposition(|&c| c > 0).unwrap_or(0) as u64)
    }

    /// How many values exceed `ns`.
    pub fn over(&self, ns: u64) -> u64 {
        let small: u64 = self.counts.iter().skip(ns as usize + 1).sum();
        small + self.large.iter().filter(|&&v| v > ns).count() as u64
    }
}

/// What the bench binary was asked, for the measurements that do not go through
/// criterion (custom timing loops): whether `cargo bench` runs it (`--bench`; without
/// it, as under `cargo test --benches`, the loops run a few rounds only, to check that
/// they work), and criterion's name filter if one was given. The filter is matched as a
/// plain substring of the measurement's name (criterion takes a regex; a plain name is
/// both).
pub struct Args {
    pub bench: bool,
    pub list: bool,
    pub filter: Option<String>,
}

impl Args {
    pub fn parse() -> Args {
        // criterion's options that take a value, when it is given as a separate word.
        const WITH_VALUE: &[&str] = &[
            "-c",
            "--color",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--format",
            "--profile-time",
            "--load-baseline",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--plotting-backend",
            "--output-format",
        ];
        let mut args = Args {
            bench: false,
            list: false,
            filter: None,
        };
        let mut words = std::env::args().skip(1);
        while let Some(w) = words.next() {
            match w.as_str() {
                "--bench" => args.bench = true,
                "--list" => args.list = true,
                w if WITH_VALUE.contains(&w) => {
                    words.next();
                }
                w if w.starts_with('-') => {}
                _ => args.filter = args.filter.or(Some(w)),
            }
        }
        args
    }

    /// True if the measurement `name` is to run.
    pub fn wants(&self, name: &str) -> bool {
        if self.list {
            println!("{name}: custom timing loop");
            return false;
        }
        self.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    }
}
