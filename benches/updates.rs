//! Updates: how fast a change reaches readers, and what readers see while changes run.
//!
//! **Bench 5**, one instance changes in a set of N = 10,000 and 100,000 (Go kit's B5).
//! The registry's list is kept in its own order (ascending i); change k replaces
//! element `(k*7919+13) mod N` by `new-k:9090`. Each change follows the push protocol
//! of Go kit's B5 step by step: the list to hand over is copied from the registry's
//! (untimed), the current snapshot's version is read, the clock starts, the list is
//! handed over, and the bench spins on `endpoints()` until the new instance is served.
//! The factory is Go kit's "named" one (a new closure per instance that answers with
//! its address). The paths:
//!
//! - `direct/N`: Go kit's direct case. The unsorted list is handed over as a fresh
//!   event, `Event::instances(list)`, which sorts it in full (timed: the clock starts
//!   before the event is built), and sent straight to the endpointer's channel by an
//!   instancer of this file that does nothing else, as Go kit's harness does.
//! - `unsorted/N`: the list as a backend gets it (`PushInstancer::publish_instances`,
//!   which derives the sorted set from the last one when the registry repeats its
//!   order). Paired with Go kit's `instance.Cache` path.
//! - `sorted/N`: an already sorted list, published as `Event::instances(list)` (one
//!   pass to check the order). Not the same work as Go kit's direct path.
//! - `fresh/N`: as `unsorted`, but every address string is a fresh allocation at every
//!   change, as when a backend parses the registry's answer anew.
//!
//! Each path is measured twice: with criterion (the time per change, many changes;
//! `../shared/bench/sidebyside.sh` reads these), then with Go kit's own statistics: 3
//! runs of 200 changes (N = 10,000) or 50 (N = 100,000) from a fresh endpointer, the
//! median, p10 and p90 of the changes (`B5 ...` lines, one per run, as Go kit prints
//! them, and one `updates/PATH/N:` summary). Every change must call the factory exactly
//! once: checked at every change.
//!
//! Then two measurements of readers against a stream of changes (custom loops):
//!
//! - `endpoints_during_updates/100000`: one thread times each `endpoints()` call (take
//!   the snapshot, read its length and first element, drop it) while another streams
//!   one-instance changes at N = 100,000 through `publish_instances`, each waited for
//!   before the next; p50 to p99.9, the max, and the calls over 1 ms, over at least
//!   10^6 calls. The same reader alone (no updates) is the control.
//! - `visibility_16_readers/1000`: 16 threads loop on `endpoints()`, each noting when
//!   it first reads a snapshot with the newest marker instance; the time from publish
//!   until the last of the 16 has read it; median and max. The control replaces the
//!   endpointer with one atomic version number: what the scheduler alone costs.
//!
//! Without `--bench` (as under `cargo test --benches`) the custom loops run a few
//! rounds only.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use waypost::crossbeam_channel::Sender;
use waypost::{DefaultEndpointer, Endpointer, Event, Instance, Instancer, PushInstancer};

use common::{Args, Latencies, NamedEp, READY, instances, median, named_factory, quantile};

/// How the new list reaches the endpointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Direct,
    Unsorted,
    Sorted,
    Fresh,
}

impl Path {
    const ALL: [Path; 4] = [Path::Direct, Path::Unsorted, Path::Sorted, Path::Fresh];

    fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Unsorted => "unsorted",
            Path::Sorted => "sorted",
            Path::Fresh => "fresh",
        }
    }
}

/// Go kit's B5 "direct" instancer: each event goes straight to the subscribers'
/// channels; no state, no comparison with the last set.
#[derive(Default)]
struct DirectInstancer {
    subscribers: Mutex<Vec<Sender<Event>>>,
}

impl DirectInstancer {
    fn push(&self, event: Event) {
        for tx in self.subscribers.lock().unwrap().iter() {
            let _ = tx.send(event.clone());
        }
    }
}

impl Instancer for DirectInstancer {
    fn subscribe(&self, tx: Sender<Event>) {
        self.subscribers.lock().unwrap().push(tx);
    }
    fn unsubscribe(&self, tx: &Sender<Event>) {
        self.subscribers
            .lock()
            .unwrap()
            .retain(|s| !s.same_channel(tx));
    }
    fn stop(&self) {}
}

enum Feed {
    Push(Arc<PushInstancer>),
    Direct(Arc<DirectInstancer>),
}

/// How the bench waits for a change to be served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Spin on `endpoints()`, as Go kit's B5 (the time is the measurement).
    Spin,
    /// Poll every 100 us, leaving the CPU to the threads being measured.
    Poll,
}

/// One instancer + endpointer pair, and the registry's list it follows.
struct Fixture {
    path: Path,
    /// The registry's list: sorted for `Path::Sorted`, else in its own order.
    list: Vec<Instance>,
    k: usize,
    /// The address change `k - 1` added.
    added: String,
    feed: Feed,
    endpointer: Arc<DefaultEndpointer<NamedEp>>,
    calls: Arc<AtomicUsize>,
    /// Factory calls and changes so far.
    made: usize,
    changes: usize,
}

/// What one change took.
struct Change {
    /// From handing the list over until the new instance is served.
    visible: Duration,
    /// From handing the list over until that call returned.
    returned: Duration,
}

impl Fixture {
    /// Go kit's B5 setup: the initial N instances, then wait until all N are served.
    fn new(n: usize, path: Path) -> Fixture {
        let mut list = instances(n);
        if path == Path::Sorted {
            list.sort();
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let (feed, endpointer) = match path {
            Path::Direct => {
                let direct = Arc::new(DirectInstancer::default());
                let endpointer =
                    DefaultEndpointer::new(direct.clone(), named_factory(calls.clone()))
                        .expect("endpointer");
                direct.push(Event::instances(list.clone()));
                (Feed::Direct(direct), endpointer)
            }
            Path::Unsorted | Path::Fresh | Path::Sorted => {
                let instancer = Arc::new(PushInstancer::new());
                match path {
                    Path::Sorted => instancer.publish(Event::instances(list.clone())),
                    _ => instancer.publish_instances(list.clone()),
                }
                let endpointer =
                    DefaultEndpointer::new(instancer.clone(), named_factory(calls.clone()))
                        .expect("endpointer");
                (Feed::Push(instancer), endpointer)
            }
        };
        endpointer.wait_ready(READY).expect("first state");
        assert_eq!(endpointer.endpoints().expect("endpoints").len(), n);
        assert_eq!(calls.load(Ordering::SeqCst), n);
        Fixture {
            path,
            list,
            k: 0,
            added: String::new(),
            feed,
            endpointer: Arc::new(endpointer),
            calls,
            made: 0,
            changes: 0,
        }
    }

    /// B5 steps 1 and 2: the next change to the registry's list, and the copy of it to
    /// hand over.
    fn next_list(&mut self) -> Vec<Instance> {
        let n = self.list.len();
        let at = (self.k * 7919 + 13) % n;
        self.added = format!("new-{}:9090", self.k);
        let new = Instance::new(self.added.as_str());
        self.k += 1;
        match self.path {
            Path::Sorted => {
                self.list.remove(at);
                let to = self.list.binary_search(&new).expect_err("new address");
                self.list.insert(to, new);
            }
            _ => self.list[at] = new,
        }
        match self.path {
            Path::Fresh => self.list.iter().map(|i| Instance::new(i.addr())).collect(),
            _ => self.list.clone(),
        }
    }

    /// True once `snapshot` serves the instance the last change added (the endpointer
    /// may first publish the removal alone).
    fn serves_added(&self, snapshot: &[Instance]) -> bool {
        snapshot
            .binary_search_by(|i| i.addr().cmp(self.added.as_str()))
            .is_ok()
    }

    /// One change: B5 steps 1 to 5.
    fn change(&mut self, wait: Wait) -> Change {
        let list = self.next_list();
        let before = self.endpointer.endpoints().expect("endpoints").version();
        let calls = self.calls.load(Ordering::SeqCst);

        let t0 = Instant::now();
        match &self.feed {
            Feed::Direct(direct) => direct.push(Event::instances(list)),
            Feed::Push(instancer) if self.path == Path::Sorted => {
                instancer.publish(Event::instances(list))
            }
            Feed::Push(instancer) => instancer.publish_instances(list),
        }
        let returned = t0.elapsed();
        loop {
            let now = self.endpointer.endpoints().expect("endpoints");
            if now.version() != before && self.serves_added(now.instances()) {
                assert_eq!(now.len(), self.list.len());
                break;
            }
            drop(now);
            match wait {
                Wait::Spin => std::hint::spin_loop(),
                Wait::Poll => std::thread::sleep(Duration::from_micros(100)),
            }
        }
        let visible = t0.elapsed();

        let made = self.calls.load(Ordering::SeqCst) - calls;
        assert_eq!(made, 1, "factory calls for change {}", self.k);
        self.made += made;
        self.changes += 1;
        Change { visible, returned }
    }

    /// B5 step 6: N endpoints, and one of them answers with the address just added.
    fn check(&self) {
        let endpoints = self.endpointer.endpoints().expect("endpoints");
        assert_eq!(endpoints.len(), self.list.len());
        assert!(
            endpoints.iter().any(|ep| *ep() == *self.added),
            "no endpoint answers {}",
            self.added
        );
    }
}

/// Factory calls per change under criterion, one line per fixture.
static CRITERION_CALLS: Mutex<Vec<(String, usize, usize)>> = Mutex::new(Vec::new());

fn updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("updates");
    for n in [10_000, 100_000] {
        for path in Path::ALL {
            let name = format!("{}/{n}", path.name());
            let mut fixture: Option<Fixture> = None;
            group.bench_function(&name, |b| {
                let fixture = fixture.get_or_insert_with(|| Fixture::new(n, path));
                b.iter_custom(|iters| (0..iters).map(|_| fixture.change(Wait::Spin).visible).sum())
            });
            if let Some(f) = fixture {
                CRITERION_CALLS
                    .lock()
                    .unwrap()
                    .push((name, f.changes, f.made));
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(4), 10);
    targets = updates
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Go kit's B5 statistics for every path: `runs` runs of `pushes` changes each.
fn b5(args: &Args) {
    let criterion_calls = CRITERION_CALLS.lock().unwrap().clone();
    for path in Path::ALL {
        for (n, pushes) in [(10_000, 200), (100_000, 50)] {
            let name = format!("{}/{n}", path.name());
            if !args.wants(&format!("updates/{name}")) {
                continue;
            }
            let (runs, pushes) = if args.bench { (3, pushes) } else { (1, 3) };
            let mut medians = Vec::new();
            let mut per_run = Vec::new();
            let mut all = Vec::new();
            for _ in 0..runs {
                let mut fixture = Fixture::new(n, path);
                let mut visible = Vec::with_capacity(pushes);
                let mut returned = Vec::with_capacity(pushes);
                for k in 0..pushes {
                    let change = fixture.change(Wait::Spin);
                    visible.push(us(change.visible));
                    returned.push(us(change.returned));
                    if k == 0 || k == pushes - 1 {
                        fixture.check();
                    }
                }
                all.extend_from_slice(&visible);
                visible.sort_by(f64::total_cmp);
                returned.sort_by(f64::total_cmp);
                let mean = visible.iter().sum::<f64>() / pushes as f64;
                println!(
                    "B5 mode={} N={n} pushes={pushes} median_us={:.1} p10_us={:.1} p90_us={:.1} \
                     mean_us={mean:.1} min_us={:.1} max_us={:.1} push_return_median_us={:.2}",
                    path.name(),
                    quantile(&visible, 0.5),
                    quantile(&visible, 0.1),
                    quantile(&visible, 0.9),
                    visible[0],
                    visible[pushes - 1],
                    quantile(&returned, 0.5),
                );
                medians.push(quantile(&visible, 0.5));
                per_run.push(visible);
            }
            // As Go kit's table: the median of the run medians, p10 and p90 of the run
            // whose median that is.
            let mid = median(&medians);
            let run = per_run
                .iter()
                .min_by(|a, b| {
                    (quantile(a, 0.5) - mid)
                        .abs()
                        .total_cmp(&(quantile(b, 0.5) - mid).abs())
                })
                .expect("a run");
            let criterion = criterion_calls
                .iter()
                .find(|(id, ..)| *id == name)
                .map(|(_, changes, made)| {
                    format!(
                        "; criterion: {changes} changes, {made} factory calls ({:.3} per change)",
                        *made as f64 / (*changes).max(1) as f64
                    )
                })
                .unwrap_or_default();
            println!(
                "updates/{name}: B5 {runs} x {pushes} changes: median {:.0} us (runs {}), \
                 p10 {:.0} / p90 {:.0} us, mean {:.0} us, max {:.0} us{criterion}",
                mid,
                medians
                    .iter()
                    .map(|m| format!("{m:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                quantile(run, 0.1),
                quantile(run, 0.9),
                all.iter().sum::<f64>() / all.len() as f64,
                all.iter().copied().fold(0.0, f64::max),
            );
        }
    }
}

/// One timed `endpoints()` call: take the snapshot, read it, drop it. Returns the ns.
#[inline]
fn timed_read<E>(endpointer: &impl Endpointer<E>, latencies: &mut Latencies) -> u64 {
    let t0 = Instant::now();
    let endpoints = endpointer.endpoints().expect("endpoints");
    black_box(endpoints.len());
    black_box(endpoints.first());
    drop(endpoints);
    let ns = t0.elapsed().as_nanos() as u64;
    latencies.record(ns);
    ns
}

/// This thread's involuntary context switches so far (Linux), to tell the scheduler's
/// preemptions from the library's own delays.
fn preemptions() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A reader timing every call, in batches; the slow calls (over 1 ms) are sorted by
/// whether the thread was preempted during their batch.
struct Reader {
    latencies: Latencies,
    slow_preempted: u64,
    slow_not_preempted: u64,
    preemptions: u64,
}

impl Reader {
    /// Calls per batch: about 0.2 ms of calls, then one read of the switch count.
    const BATCH: usize = 4096;

    fn new() -> Reader {
        Reader {
            latencies: Latencies::new(),
            slow_preempted: 0,
            slow_not_preempted: 0,
            preemptions: 0,
        }
    }

    fn batch<E>(&mut self, endpointer: &impl Endpointer<E>) {
        let before = preemptions();
        let mut slow = 0;
        for _ in 0..Self::BATCH {
            if timed_read(endpointer, &mut self.latencies) > 1_000_000 {
                slow += 1;
            }
        }
        let switched = match (before, preemptions()) {
            (Some(b), Some(a)) => a - b,
            _ => 0,
        };
        self.preemptions += switched;
        if switched > 0 {
            self.slow_preempted += slow;
        } else {
            self.slow_not_preempted += slow;
        }
    }

    fn report(mut self, label: &str, extra: &str) {
        let ns = |v: u64| -> String {
            if v < 10_000 {
                format!("{v} ns")
            } else {
                format!("{:.1} us", v as f64 / 1e3)
            }
        };
        let l = &mut self.latencies;
        let (p50, p99, p999, p9999) = (
            l.quantile(0.5),
            l.quantile(0.99),
            l.quantile(0.999),
            l.quantile(0.9999),
        );
        println!(
            "{label}: {} calls{extra}: p50 {}, p99 {}, p99.9 {}, p99.99 {}, max {}; \
             over 100 us: {}, over 1 ms: {} ({} in a batch of {} calls during which the \
             reader was preempted, {} not); the reader was preempted {} times",
            l.len(),
            ns(p50),
            ns(p99),
            ns(p999),
            ns(p9999),
            ns(l.max()),
            l.over(100_000),
            l.over(1_000_000),
            self.slow_preempted,
            Self::BATCH,
            self.slow_not_preempted,
            self.preemptions,
        );
    }
}

/// `endpoints()` latency, call by call, while one-instance changes stream at N = 100,000.
fn endpoints_during_updates(args: &Args) {
    const N: usize = 100_000;
    let name = format!("updates/endpoints_during_updates/{N}");
    if !args.wants(&name) {
        return;
    }
    let (min_calls, min_updates) = if args.bench {
        (1_000_000, 100)
    } else {
        (10_000, 3)
    };
    let mut fixture = Fixture::new(N, Path::Unsorted);

    // The control: the same reader, no updates.
    let mut idle = Reader::new();
    timed_read(&fixture.endpointer, &mut Latencies::new());
    while idle.latencies.len() < min_calls {
        idle.batch(&fixture.endpointer);
    }
    idle.report(&format!("{name} (control, no updates)"), "");

    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let t0 = Instant::now();
    let (reader, visible) = std::thread::scope(|s| {
        let endpointer = fixture.endpointer.clone();
        let (stop, calls) = (&stop, &calls);
        let reader = s.spawn(move || {
            timed_read(&endpointer, &mut Latencies::new());
            let mut reader = Reader::new();
            while !stop.load(Ordering::Relaxed) {
                reader.batch(&endpointer);
                calls.store(reader.latencies.len(), Ordering::Relaxed);
            }
            reader
        });
        let mut visible = Vec::new();
        while visible.len() < min_updates || calls.load(Ordering::Relaxed) < min_calls {
            visible.push(us(fixture.change(Wait::Poll).visible));
        }
        stop.store(true, Ordering::Relaxed);
        (reader.join().expect("reader"), visible)
    });
    let mut visible = visible;
    visible.sort_by(f64::total_cmp);
    reader.report(
        &name,
        &format!(
            " during {} changes in {:.2} s (each visible after a median {:.0} us, \
             polled every 100 us)",
            visible.len(),
            t0.elapsed().as_secs_f64(),
            quantile(&visible, 0.5),
        ),
    );
}

/// One reader's notes, on a line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Seen {
    version: AtomicU64,
    /// Nanoseconds since the bench's epoch when this reader first read `version`.
    at: AtomicU64,
}

/// Time from publish until the last of 16 busy readers has read the new snapshot.
fn visibility(args: &Args) {
    const READERS: usize = 16;
    const N: usize = 1_000;
    const TIMEOUT: Duration = Duration::from_secs(10);
    let name = format!("updates/visibility_16_readers/{N}");
    if !args.wants(&name) {
        return;
    }
    let (updates, budget) = if args.bench {
        (200, Duration::from_secs(60))
    } else {
        (3, Duration::from_secs(20))
    };

    // The endpoint is the marker's number (u64::MAX for the other instances); the
    // marker `v-K:1` sorts after every `10.*` address, so it is the last endpoint.
    let marker = |k: u64| Instance::new(format!("v-{k}:1"));
    let factory = |instance: &Instance| {
        let k: u64 = instance
            .addr()
            .strip_prefix("v-")
            .and_then(|rest| rest.strip_suffix(":1"))
            .map_or(u64::MAX, |k| k.parse().expect("marker"));
        Ok(k)
    };
    let base = instances(N);
    let with_marker = |k: u64| {
        let mut list = base.clone();
        list.push(marker(k));
        list
    };
    let instancer = Arc::new(PushInstancer::new());
    instancer.publish_instances(with_marker(0));
    let endpointer = common::endpointer(instancer.clone(), factory);

    let epoch = Instant::now();
    let now_ns = || epoch.elapsed().as_nanos() as u64;

    // Runs `publish(k)` for k = from, from + 1, ... and measures, for each k, the time until the
    // first and the last reader's `Seen` says k; `read()` is one reader iteration's
    // version; `yield_each`: readers yield the CPU after each read.
    let run = |label: &str,
               yield_each: bool,
               from: u64,
               publish: &(dyn Fn(u64) + Sync),
               read: &(dyn Fn() -> u64 + Sync)| {
        let seen: Vec<Seen> = (0..READERS).map(|_| Seen::default()).collect();
        let stop = AtomicBool::new(false);
        let started = AtomicUsize::new(0);
        let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
        let mut timeouts = 0;
        std::thread::scope(|s| {
            for mine in &seen {
                let (stop, started) = (&stop, &started);
                s.spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let v = read();
                        if v != last && v != u64::MAX {
                            last = v;
                            mine.at.store(now_ns(), Ordering::Relaxed);
                            mine.version.store(v, Ordering::Release);
                        }
                        if yield_each {
                            std::thread::yield_now();
                        }
                    }
                });
            }
            while started.load(Ordering::SeqCst) < READERS {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            let t_all = Instant::now();
            for k in from..from + updates as u64 {
                if t_all.elapsed() > budget {
                    break;
                }
                let t0 = now_ns();
                publish(k);
                let deadline = Instant::now() + TIMEOUT;
                loop {
                    if seen.iter().all(|r| r.version.load(Ordering::Acquire) == k) {
                        let at = || seen.iter().map(|r| r.at.load(Ordering::Relaxed));
                        let lag = |t: Option<u64>| t.unwrap_or(t0).saturating_sub(t0) as f64;
                        firsts.push(lag(at().min()) / 1e3);
                        lasts.push(lag(at().max()) / 1e3);
                        break;
                    }
                    if Instant::now() > deadline {
                        timeouts += 1;
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                if timeouts > 0 {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        firsts.sort_by(f64::total_cmp);
        lasts.sort_by(f64::total_cmp);
        println!(
            "{label}: {READERS} {} readers, {} updates: until the last reader has read the \
             update: median {:.0} us, p90 {:.0} us, max {:.0} us; until the first has: \
             median {:.0} us, max {:.0} us{}",
            if yield_each { "yielding" } else { "busy" },
            lasts.len(),
            quantile(&lasts, 0.5),
            quantile(&lasts, 0.9),
            lasts.last().copied().unwrap_or(f64::NAN),
            quantile(&firsts, 0.5),
            firsts.last().copied().unwrap_or(f64::NAN),
            if timeouts > 0 {
                format!("; an update not read by every reader after {TIMEOUT:?}: stopped")
            } else {
                String::new()
            },
        );
    };

    for yield_each in [false, true] {
        let suffix = if yield_each {
            " (readers yield after each read)"
        } else {
            ""
        };
        // Every update's list is made before the clock starts.
        let first = endpointer.endpoints().expect("endpoints").last().copied();
        let from = first.expect("marker") + 1;
        let lists: Mutex<Vec<Vec<Instance>>> = Mutex::new(
            (from..from + updates as u64)
                .rev()
                .map(with_marker)
                .collect(),
        );
        run(
            &format!("{name}{suffix}"),
            yield_each,
            from,
            &|_| {
                let list = lists.lock().unwrap().pop().expect("a list per update");
                instancer.publish_instances(list)
            },
            &|| {
                let endpoints = endpointer.endpoints().expect("endpoints");
                *endpoints.last().expect("marker")
            },
        );
        // The control: no endpointer, one atomic number read in the same loop.
        let version = AtomicU64::new(0);
        run(
            &format!("{name}{suffix} (control: one atomic load, no endpointer)"),
            yield_each,
            1,
            &|k| version.store(k, Ordering::Release),
            &|| version.load(Ordering::Acquire),
        );
    }
}

fn main() {
    let args = Args::parse();
    benches();
    b5(&args);
    endpoints_during_updates(&args);
    visibility(&args);
    Criterion::default().configure_from_args().final_summary();
}
