//! Bench 5: one instance changes in a set of N = 10,000 and 100,000, Go kit's method.
//!
//! The registry's list is kept unsorted (ascending i); change k replaces element
//! `(k*7919+13) mod N` by `new-k:9090`. Timed, per change, from handing the new list to
//! the instancer's publisher until a reader's `endpoints()` shows the new snapshot:
//!
//! - `unsorted/N`: the list as a backend gets it (`publish_instances`, which derives the
//!   sorted set from the last one when the registry repeats its order);
//! - `sorted/N`: an already sorted list, published as `Event::instances(list)`;
//! - `fresh/N`: as `unsorted`, but every address is a fresh allocation at every change,
//!   as when a backend parses the registry's answer anew (Go kit's benchmark, like
//!   `unsorted`, hands over the same strings each time, which lets comparisons stop
//!   at a pointer check).
//!
//! Copying the list (the registry's answer) is not timed. Between changes the bench
//! waits until the old snapshot is freed, so each change starts from an idle
//! endpointer; that extra time is reported on its own ("settled"). Each change must
//! call the factory exactly once: checked at every change, and printed.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use waypost::PushInstancer;
use waypost::{DefaultEndpointer, Endpointer, Event, Instance};

use common::{Ep, counting_factory, endpointer, instances, noop};

/// How the new list reaches the publisher.
#[derive(Clone, Copy, Debug)]
enum Path {
    Unsorted,
    Sorted,
    Fresh,
}

/// One instancer + endpointer pair, and the registry's list it follows.
struct Fixture {
    path: Path,
    /// The registry's list: sorted for `Path::Sorted`, else unsorted.
    list: Vec<Instance>,
    k: usize,
    instancer: Arc<PushInstancer>,
    endpointer: DefaultEndpointer<Ep>,
    calls: Arc<AtomicUsize>,
    /// Factory calls, changes, time from visible to the old snapshot freed.
    made: usize,
    changes: usize,
    settle: Duration,
}

impl Fixture {
    fn new(n: usize, path: Path) -> Fixture {
        let mut list = instances(n);
        let instancer = Arc::new(PushInstancer::new());
        match path {
            Path::Unsorted | Path::Fresh => instancer.publish_instances(list.clone()),
            Path::Sorted => {
                list.sort();
                instancer.publish(Event::instances(list.clone()));
            }
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let endpointer = endpointer(instancer.clone(), counting_factory(noop(), calls.clone()));
        assert_eq!(endpointer.endpoints().expect("endpoints").len(), n);
        assert_eq!(calls.load(Ordering::SeqCst), n);
        Fixture {
            path,
            list,
            k: 0,
            instancer,
            endpointer,
            calls,
            made: 0,
            changes: 0,
            settle: Duration::ZERO,
        }
    }

    /// Applies the next change to the registry's list; returns the list to publish.
    fn next_list(&mut self) -> Vec<Instance> {
        let n = self.list.len();
        let at = (self.k * 7919 + 13) % n;
        let new = Instance::new(format!("new-{}:9090", self.k));
        self.k += 1;
        match self.path {
            Path::Unsorted | Path::Fresh => self.list[at] = new,
            Path::Sorted => {
                self.list.remove(at);
                let to = self.list.binary_search(&new).expect_err("new address");
                self.list.insert(to, new);
            }
        }
        match self.path {
            Path::Fresh => self.list.iter().map(|i| Instance::new(i.addr())).collect(),
            Path::Unsorted | Path::Sorted => self.list.clone(),
        }
    }

    /// One change; returns the time from publishing to visible.
    fn change(&mut self) -> Duration {
        let list = self.next_list();
        let before = self.endpointer.endpoints().expect("endpoints").to_arc();
        let calls = self.calls.load(Ordering::SeqCst);

        let start = Instant::now();
        match self.path {
            Path::Unsorted | Path::Fresh => self.instancer.publish_instances(list),
            Path::Sorted => self.instancer.publish(Event::instances(list)),
        }
        loop {
            let now = self.endpointer.endpoints().expect("endpoints");
            if now.as_ptr() != before.as_ptr() {
                assert_eq!(now.len(), self.list.len());
                break;
            }
            drop(now);
            std::hint::spin_loop();
        }
        let visible = start.elapsed();

        // Untimed for the figure: wait until the old snapshot is gone everywhere.
        let settle = Instant::now();
        let old = Arc::downgrade(&before);
        drop(before);
        while old.strong_count() > 0 {
            std::hint::spin_loop();
        }
        self.settle += settle.elapsed();

        let made = self.calls.load(Ordering::SeqCst) - calls;
        assert_eq!(made, 1, "factory calls for change {}", self.k);
        self.made += made;
        self.changes += 1;
        visible
    }
}

/// One line per fixture, printed after the criterion runs.
static SUMMARY: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("updates");
    for n in [10_000, 100_000] {
        for path in [Path::Unsorted, Path::Sorted, Path::Fresh] {
            let mut fixture = Fixture::new(n, path);
            let name = format!("{}/{n}", format!("{path:?}").to_lowercase());
            group.bench_function(&name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| fixture.change()).sum())
            });
            if fixture.changes == 0 {
                continue; // filtered out
            }
            SUMMARY.lock().unwrap().push(format!(
                "updates/{name}: {} changes, {} factory calls ({:.3} per change); \
                 settled (old snapshot freed) {:.1} us after visible, on average",
                fixture.changes,
                fixture.made,
                fixture.made as f64 / fixture.changes as f64,
                fixture.settle.as_secs_f64() * 1e6 / fixture.changes as f64,
            ));
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(4), 10);
    targets = updates
}

fn main() {
    benches();
    for line in SUMMARY.lock().unwrap().iter() {
        println!("{line}");
    }
    Criterion::default().configure_from_args().final_summary();
}
