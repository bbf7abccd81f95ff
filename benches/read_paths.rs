//! Alternative designs for the endpointer's read path (`endpoints()`), measured side by
//! side so that one can be chosen on figures. Self-contained: none of waypost's code is
//! used; each design is a small struct below over the same [`View`] (1,000 `u64`s
//! behind an `Arc<[u64]>`, a version, and a `retire` token standing for the snapshot's
//! closers: the snapshot is "freed" once every copy of the token is gone).
//!
//! ```sh
//! cargo bench --bench read_paths                 # everything, about 90 s
//! cargo bench --bench read_paths -- two_threads  # a criterion name filter
//! ```
//!
//! The requirements a design must meet:
//! 1. what a reader holds holds no lock a writer waits on; a writer never waits on user
//!    code; nested reads on one thread never deadlock; readers on different CPUs write
//!    no shared cache line;
//! 2. a removed endpoint is closed only once no reader can still use a snapshot that
//!    contains it, and snapshots are freed promptly: a thread that read once and went
//!    idle must not keep an old snapshot alive;
//! 3. an owned form (derefs to the slice, `Send`, can be kept) stays available; a
//!    borrowed form may be added beside it for the hot path.
//!
//! The designs (the letters are the bench names' prefixes):
//! - **a `sharded`**: today's design, copied. One cache-padded `parking_lot::RwLock<Arc<View>>`
//!   per shard (available parallelism rounded up to a power of two), a thread-local shard
//!   index handed out round-robin; a read is the fair read lock, an `Arc::clone`, the
//!   unlock, and later the owned value's drop: 4 atomic read-modify-writes, all on lines
//!   of the thread's own shard. Meets 1, 2 and 3.
//! - **b `arcswap_owned`**: `ArcSwap::load_full`, an owned `Arc<View>`. Meets 2 and 3;
//!   breaks 1's last clause: every reader increments and decrements the one shared
//!   reference count, a line all readers write.
//! - **c `arcswap_guard`**: `ArcSwap::load`, the `Guard` (borrowed form). The fast path
//!   writes only a debt slot in the thread's own node, so meets 1 (the writer is
//!   lock-free: it pays outstanding debts itself, never waits) and 2 (a store turns
//!   outstanding guards into owners, so the old snapshot goes with the last guard; an
//!   idle thread holds nothing). `Guard<Arc<View>>` is `Send` (asserted at compile time
//!   in `main`) and has no lifetime, so it could even be kept, but each thread has 8 fast
//!   slots shared by every `ArcSwap` (arc-swap's "Too many Guards" limitation); past 8
//!   guards alive on one thread a load takes the fallback path, which increments the
//!   shared reference count. `one_thread/c_arcswap_guard_8_held` measures that path.
//! - **d `arcswap_cache`**: a thread-local `arc_swap::Cache` (one slot, keyed by the
//!   instance), read through a closure. Breaks 2: an idle thread's cache keeps the last
//!   snapshot it saw alive until that thread reads again or exits.
//! - **e `tl_versioned`**: a global (per instance) `AtomicU64` version beside design a;
//!   each thread caches `(instance, version, Arc<View>)` and refreshes it from a's shards
//!   when the version moved; a read is one atomic load and a thread-local compare, then
//!   the closure gets `&View`. Breaks 2 exactly like d.
//! - **f `rwlock`**: one plain `parking_lot::RwLock<Arc<View>>`, the slice read under the
//!   read guard: the Rust twin of Go kit's `sync.RWMutex`. Breaks 1 throughout: all
//!   readers write one lock word, a writer waits for every reader's code, and a nested
//!   `read()` while a writer is queued deadlocks (parking_lot's read lock is fair).
//! - **g `sharded_borrowed`**: a's shard read lock held while a closure reads the view,
//!   no `Arc` clone (2 atomics instead of 4). Readers do not contend, but it breaks 1: a
//!   writer waits for the closure (user code), and a nested read on a shard with a queued
//!   writer deadlocks.
//!
//! Each design is measured on one thread (criterion `iter`: read, `black_box` the length
//! and the first element, drop); on two threads released together by a barrier, timed as
//! (latest end - earliest start) / total operations ("wall/total", Go kit's measure),
//! with each thread's own ns/op printed beside it and in the summary at the end; and,
//! for a to e, the same two with a writer thread publishing a new view every 1 ms.
//! Before the benchmarks, `main` checks requirement 2 for each design: a thread reads
//! once and idles while a new view is published, and the old snapshot must be gone.
//!
//! Outcome (issue 13; figures in `benches/README.md`): only a and c meet 1-3. c beat a
//! here (6.5 vs 10.8 ns on one thread, 4.6 vs 5.9 ns wall/total on two), but the real
//! endpointer rebuilt on sharded arc-swap guards measured the same as a in
//! `benches/endpoints.rs` (A/B alternated in one session: 8.8-14.8 vs 10.5-14.3 ns one
//! thread, 5.2-7.9 vs 5.5-7.0 ns two threads), so a stays, and arc-swap stays a
//! dev-dependency of this file only.

use std::cell::RefCell;
use std::hint::black_box;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache, Guard};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use parking_lot::RwLock;

/// Endpoints per view.
const N: usize = 1_000;
/// Criterion's samples per benchmark; the last this many two-thread runs are the samples.
const SAMPLES: usize = 30;
/// How often the writer of the `writer_1ms` benchmarks publishes.
const WRITE_EVERY: Duration = Duration::from_millis(1);

/// One snapshot as a reader sees it.
#[derive(Clone)]
struct View {
    endpoints: Arc<[u64]>,
    version: u64,
    /// Shared by every copy of one snapshot (a's shards make one copy each); stands for
    /// the closers the snapshot holds back. Its `Weak` tells whether any copy is alive.
    retire: Arc<()>,
}

impl View {
    fn new(endpoints: &Arc<[u64]>, version: u64) -> View {
        View {
            endpoints: Arc::clone(endpoints),
            version,
            retire: Arc::new(()),
        }
    }
}

/// What every design offers the harness: run `f` on the current view (through whatever
/// form the design hands out, dropped right after), and publish a new view.
trait ReadPath: Sync {
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R;
    fn publish(&self, view: View);
}

/// A new instance number, to key the thread-local caches of d and e.
fn next_id() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// a. sharded (today's design)

/// Aligned to 128 bytes: two 64-byte lines, which adjacent-line prefetching pairs.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Available parallelism as a power of two, at most 64.
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 64)
            .next_power_of_two()
    })
}

/// This thread's shard, handed out round-robin on a thread's first read.
#[inline]
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    INDEX.with(|cell| {
        let i = cell.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT.fetch_add(1, Ordering::Relaxed) & (shard_count() - 1);
        cell.set(i);
        i
    })
}

/// One shard's own copy of the view, in an allocation of its own lines.
type ShardCopy = Arc<Padded<View>>;

struct Sharded {
    shards: Box<[Padded<RwLock<ShardCopy>>]>,
}

impl Sharded {
    fn new(view: View) -> Sharded {
        Sharded {
            shards: (0..shard_count())
                .map(|_| Padded(RwLock::new(Arc::new(Padded(view.clone())))))
                .collect(),
        }
    }

    #[inline]
    fn shard(&self) -> &RwLock<ShardCopy> {
        &self.shards[shard_index() & (self.shards.len() - 1)]
    }

    /// The owned read: the read lock for one reference-count increment.
    #[inline]
    fn read(&self) -> ShardCopy {
        Arc::clone(&self.shard().read())
    }

    /// g's borrowed read: the read lock held for the whole of `f`.
    #[inline]
    fn with_locked<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let guard = self.shard().read();
        f(&guard)
    }

    /// Gives every shard a copy of `view`; the replaced copies are returned, to be
    /// dropped once no lock is held.
    fn set(&self, view: &View) -> Vec<ShardCopy> {
        self.shards
            .iter()
            .map(|shard| std::mem::replace(&mut *shard.write(), Arc::new(Padded(view.clone()))))
            .collect()
    }
}

impl ReadPath for Sharded {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let owned = self.read();
        f(&owned)
    }

    fn publish(&self, view: View) {
        drop(self.set(&view));
    }
}

// ---------------------------------------------------------------------------------------
// b. arc-swap, owned

struct ArcSwapOwned {
    swap: Padded<ArcSwap<View>>,
}

impl ArcSwapOwned {
    fn new(view: View) -> ArcSwapOwned {
        ArcSwapOwned {
            swap: Padded(ArcSwap::from_pointee(view)),
        }
    }

    #[inline]
    fn read(&self) -> Arc<View> {
        self.swap.load_full()
    }
}

impl ReadPath for ArcSwapOwned {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let owned = self.read();
        f(&owned)
    }

    fn publish(&self, view: View) {
        self.swap.store(Arc::new(view));
    }
}

// ---------------------------------------------------------------------------------------
// c. arc-swap, guard

struct ArcSwapGuard {
    swap: Padded<ArcSwap<View>>,
}

impl ArcSwapGuard {
    fn new(view: View) -> ArcSwapGuard {
        ArcSwapGuard {
            swap: Padded(ArcSwap::from_pointee(view)),
        }
    }

    #[inline]
    fn read(&self) -> Guard<Arc<View>> {
        self.swap.load()
    }
}

impl ReadPath for ArcSwapGuard {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let guard = self.read();
        f(&guard)
    }

    fn publish(&self, view: View) {
        self.swap.store(Arc::new(view));
    }
}

// ---------------------------------------------------------------------------------------
// d. arc-swap, thread-local Cache

struct ArcSwapCached {
    swap: Arc<ArcSwap<View>>,
    id: usize,
}

type ViewCache = Cache<Arc<ArcSwap<View>>, Arc<View>>;

thread_local! {
    /// One cache per thread, for the instance whose id it carries.
    static CACHE: RefCell<Option<(usize, ViewCache)>> = const { RefCell::new(None) };
}

impl ArcSwapCached {
    fn new(view: View) -> ArcSwapCached {
        ArcSwapCached {
            swap: Arc::new(ArcSwap::from_pointee(view)),
            id: next_id(),
        }
    }
}

impl ReadPath for ArcSwapCached {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        CACHE.with(|slot| {
            let Ok(mut slot) = slot.try_borrow_mut() else {
                // A nested read (inside another read's closure): no cache.
                return f(&self.swap.load());
            };
            if slot.as_ref().is_none_or(|(id, _)| *id != self.id) {
                *slot = Some((self.id, Cache::new(Arc::clone(&self.swap))));
            }
            let (_, cache) = slot.as_mut().expect("just set");
            f(cache.load())
        })
    }

    fn publish(&self, view: View) {
        self.swap.store(Arc::new(view));
    }
}

// ---------------------------------------------------------------------------------------
// e. thread-local versioned cache over a

struct TlVersioned {
    shards: Sharded,
    /// The version last published; readers only load it.
    version: Padded<AtomicU64>,
    id: usize,
}

struct TlEntry {
    id: usize,
    version: u64,
    view: ShardCopy,
}

thread_local! {
    static VERSIONED: RefCell<Option<TlEntry>> = const { RefCell::new(None) };
}

impl TlVersioned {
    fn new(view: View) -> TlVersioned {
        let version = view.version;
        TlVersioned {
            shards: Sharded::new(view),
            version: Padded(AtomicU64::new(version)),
            id: next_id(),
        }
    }
}

impl ReadPath for TlVersioned {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        // Loaded before the shard is read: a copy newer than this version may be cached
        // under it (a race with a writer), which only costs one more refresh.
        let current = self.version.load(Ordering::Acquire);
        VERSIONED.with(|slot| {
            if let Ok(cached) = slot.try_borrow() {
                if let Some(entry) = cached.as_ref() {
                    if entry.id == self.id && entry.version == current {
                        return f(&entry.view);
                    }
                }
            }
            let view = self.shards.read();
            // Stale inside another read's closure (borrowed): this read goes uncached.
            if let Ok(mut cached) = slot.try_borrow_mut() {
                *cached = Some(TlEntry {
                    id: self.id,
                    version: current,
                    view: Arc::clone(&view),
                });
            }
            f(&view)
        })
    }

    fn publish(&self, view: View) {
        let version = view.version;
        drop(self.shards.set(&view));
        self.version.store(version, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------------
// f. one plain RwLock

struct PlainRwLock {
    lock: Padded<RwLock<Arc<View>>>,
}

impl PlainRwLock {
    fn new(view: View) -> PlainRwLock {
        PlainRwLock {
            lock: Padded(RwLock::new(Arc::new(view))),
        }
    }
}

impl ReadPath for PlainRwLock {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let guard = self.lock.read();
        f(&guard)
    }

    fn publish(&self, view: View) {
        let old = std::mem::replace(&mut *self.lock.write(), Arc::new(view));
        drop(old);
    }
}

// ---------------------------------------------------------------------------------------
// g. sharded, borrowed under the shard's read lock

struct ShardedBorrowed {
    shards: Sharded,
}

impl ShardedBorrowed {
    fn new(view: View) -> ShardedBorrowed {
        ShardedBorrowed {
            shards: Sharded::new(view),
        }
    }
}

impl ReadPath for ShardedBorrowed {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        self.shards.with_locked(f)
    }

    fn publish(&self, view: View) {
        drop(self.shards.set(&view));
    }
}

// ---------------------------------------------------------------------------------------
// Harness

/// The work of one read: the length and the first element, through the snapshot.
#[inline]
fn touch(view: &View) {
    black_box(view.endpoints.len());
    black_box(view.endpoints.first());
}

fn endpoints() -> Arc<[u64]> {
    (0..N as u64).collect()
}

/// One two-thread run: wall/total and each thread's own time per operation, in ns.
#[derive(Clone, Copy)]
struct TwoThreadRun {
    wall_per_total: f64,
    per_thread: [f64; 2],
}

/// `iters` reads on each of two threads released together; returns wall time / 2, so
/// that criterion's per-iteration figure is wall time / total operations.
fn two_threads<P: ReadPath>(path: &P, iters: u64, runs: &mut Vec<TwoThreadRun>) -> Duration {
    let start = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    // Per-thread set-up (shard index, thread-local caches, arc-swap's
                    // debt node) outside the timing.
                    path.with(touch);
                    start.wait();
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        path.with(touch);
                    }
                    (t0, Instant::now())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("bench thread"))
            .collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("two spans");
    let last = spans.iter().map(|s| s.1).max().expect("two spans");
    let wall = last - first;
    let per_op = |d: Duration| d.as_nanos() as f64 / iters as f64;
    runs.push(TwoThreadRun {
        wall_per_total: wall.as_nanos() as f64 / (2 * iters) as f64,
        per_thread: [
            per_op(spans[0].1 - spans[0].0),
            per_op(spans[1].1 - spans[1].0),
        ],
    });
    wall / 2
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Two-thread figures, one line per benchmark, printed again at the end.
struct Summary {
    lines: Vec<String>,
}

impl Summary {
    /// Medians over the measurement samples (the last `SAMPLES` runs; fewer under
    /// `cargo test --benches`). Nothing for a benchmark the filter skipped.
    fn add(&mut self, name: &str, runs: &[TwoThreadRun]) {
        if runs.is_empty() {
            return;
        }
        let samples = &runs[runs.len().saturating_sub(SAMPLES)..];
        let wall = median(samples.iter().map(|r| r.wall_per_total).collect());
        let t0 = median(samples.iter().map(|r| r.per_thread[0]).collect());
        let t1 = median(samples.iter().map(|r| r.per_thread[1]).collect());
        let line = format!(
            "{name:<44} wall/total {wall:7.2} ns   per thread {t0:7.2} / {t1:7.2} ns ({} samples)",
            samples.len()
        );
        println!("  {line}");
        self.lines.push(line);
    }
}

/// The benchmark group and the two-thread figures gathered so far.
struct Benches<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    summary: Summary,
}

impl Benches<'_, '_> {
    /// One thread (criterion `iter`) and two threads of `path`, named
    /// `{prefix}one_thread/{name}` and `{prefix}two_threads/{name}`.
    fn path<P: ReadPath>(&mut self, prefix: &str, name: &str, path: &P) {
        self.group
            .bench_function(format!("{prefix}one_thread/{name}"), |b| {
                path.with(touch);
                b.iter(|| path.with(touch))
            });
        let mut runs = Vec::new();
        let id = format!("{prefix}two_threads/{name}");
        self.group.bench_function(&id, |b| {
            b.iter_custom(|iters| two_threads(path, iters, &mut runs))
        });
        self.summary.add(&id, &runs);
    }
}

/// Runs `body` while a thread publishes a new view of `path` every [`WRITE_EVERY`];
/// prints how many it published.
fn with_writer<P: ReadPath>(path: &P, body: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    let published = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let endpoints = endpoints();
            let (mut version, started) = (1, Instant::now());
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(WRITE_EVERY);
                path.publish(View::new(&endpoints, version));
                version += 1;
            }
            (version - 1, started.elapsed())
        });
        body();
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer")
    });
    if published.0 > 0 {
        println!(
            "  (writer: {} views in {:.1} s, one per {:.2} ms)",
            published.0,
            published.1.as_secs_f64(),
            published.1.as_secs_f64() * 1e3 / published.0 as f64
        );
    }
}

/// Requirement 2: a thread reads once and stays idle (alive) while a new view is
/// published. Returns whether the old snapshot was freed then, and whether it was freed
/// once the idle thread had exited.
fn idle_reader_check<P: ReadPath>(make: impl FnOnce(View) -> P) -> (bool, bool) {
    let endpoints = endpoints();
    let first = View::new(&endpoints, 0);
    let retire: Weak<()> = Arc::downgrade(&first.retire);
    let path = make(first);
    let (read, checked) = (Barrier::new(2), Barrier::new(2));
    let freed_while_idle = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            path.with(touch);
            read.wait();
            checked.wait();
        });
        read.wait();
        path.publish(View::new(&endpoints, 1));
        let freed = retire.upgrade().is_none();
        checked.wait();
        reader.join().expect("idle reader");
        freed
    });
    (freed_while_idle, retire.upgrade().is_none())
}

fn check_requirement_2() {
    fn line(name: &str, (idle, exited): (bool, bool)) {
        let verdict = match (idle, exited) {
            (true, _) => "freed while the reader idles: meets 2",
            (false, true) => "kept alive by the idle reader until it exited: breaks 2",
            (false, false) => "still alive after the reader exited: leak",
        };
        println!("  {name:<20} {verdict}");
    }
    println!("requirement 2, a thread that read once and idles while a new view is published:");
    line("a sharded", idle_reader_check(Sharded::new));
    line("b arcswap_owned", idle_reader_check(ArcSwapOwned::new));
    line("c arcswap_guard", idle_reader_check(ArcSwapGuard::new));
    line("d arcswap_cache", idle_reader_check(ArcSwapCached::new));
    line("e tl_versioned", idle_reader_check(TlVersioned::new));
    line("f rwlock", idle_reader_check(PlainRwLock::new));
    line(
        "g sharded_borrowed",
        idle_reader_check(ShardedBorrowed::new),
    );
}

/// Compile-time facts reported by the bench: the forms a reader can keep or send.
fn assert_send<T: Send>() {}

fn main() {
    assert_send::<Guard<Arc<View>>>();
    assert_send::<ShardCopy>();
    assert_send::<Arc<View>>();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(SAMPLES)
        .configure_from_args();
    println!("shards: {}, N = {N}", shard_count());
    check_requirement_2();

    let mut group = c.benchmark_group("read_paths");
    let mut b = Benches {
        group: &mut group,
        summary: Summary { lines: Vec::new() },
    };
    let view = || View::new(&endpoints(), 0);

    b.path("", "a_sharded", &Sharded::new(view()));
    b.path("", "b_arcswap_owned", &ArcSwapOwned::new(view()));
    b.path("", "c_arcswap_guard", &ArcSwapGuard::new(view()));
    {
        // Every fast debt slot of this thread taken (arc-swap has 8 per thread): each
        // load takes the fallback path.
        let path = ArcSwapGuard::new(view());
        let held: Vec<_> = (0..8).map(|_| path.read()).collect();
        b.group
            .bench_function("one_thread/c_arcswap_guard_8_held", |b| {
                b.iter(|| path.with(touch))
            });
        drop(held);
    }
    b.path("", "d_arcswap_cache", &ArcSwapCached::new(view()));
    b.path("", "e_tl_versioned", &TlVersioned::new(view()));
    b.path("", "f_rwlock", &PlainRwLock::new(view()));
    b.path("", "g_sharded_borrowed", &ShardedBorrowed::new(view()));

    let w = "writer_1ms/";
    let path = Sharded::new(view());
    with_writer(&path, || b.path(w, "a_sharded", &path));
    let path = ArcSwapOwned::new(view());
    with_writer(&path, || b.path(w, "b_arcswap_owned", &path));
    let path = ArcSwapGuard::new(view());
    with_writer(&path, || b.path(w, "c_arcswap_guard", &path));
    let path = ArcSwapCached::new(view());
    with_writer(&path, || b.path(w, "d_arcswap_cache", &path));
    let path = TlVersioned::new(view());
    with_writer(&path, || b.path(w, "e_tl_versioned", &path));

    let lines = std::mem::take(&mut b.summary.lines);
    group.finish();
    c.final_summary();
    if !lines.is_empty() {
        println!("\ntwo threads (medians of the samples):");
        for line in &lines {
            println!("  {line}");
        }
    }
}
