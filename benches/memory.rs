//! Allocation counts, with a counting global allocator (not criterion).
//!
//! - Bench 6: memory per cached instance at N = 100,000: the bytes still live after
//!   building the instance list and a ready endpointer over it, divided by N, without
//!   and with the address strings' allocations.
//! - Bench 4 (and the read path): allocations and bytes per call.
//!
//! Bytes are the sizes requested from the allocator (`Layout::size`); malloc's own
//! per-block overhead and rounding are not included. Thread stacks are mapped, not
//! allocated, so they are not counted either.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;

use waypost::PushInstancer;
use waypost::lb::{Balancer, Random, Retry, RoundRobin};
use waypost::{Endpointer, FixedInstancer, Instance, Instancer};

use common::{Ep, addr, endpointer, factory, fixed_endpointer, noop};

/// Counts every allocation of every thread; bytes allocated while the current thread
/// is "tagged" are also counted on their own.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static TAGGED_LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static TAGGED: Cell<bool> = const { Cell::new(false) };
}

fn count(added: usize, removed: usize, new_block: bool) {
    if new_block {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
    ALLOCATED.fetch_add(added, Ordering::Relaxed);
    let delta = added as isize - removed as isize;
    LIVE.fetch_add(delta, Ordering::Relaxed);
    if TAGGED.with(Cell::get) {
        TAGGED_LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting around it does
// not allocate (atomics and a const-initialised thread-local `Cell` without a drop).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0, true);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0, true);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, layout.size(), false);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, layout.size(), true);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Counts {
    allocations: usize,
    allocated: usize,
    live: isize,
    tagged_live: isize,
}

fn counts() -> Counts {
    Counts {
        allocations: ALLOCATIONS.load(Ordering::SeqCst),
        allocated: ALLOCATED.load(Ordering::SeqCst),
        live: LIVE.load(Ordering::SeqCst),
        tagged_live: TAGGED_LIVE.load(Ordering::SeqCst),
    }
}

/// Runs `f` with this thread's allocations counted as address-string allocations.
fn tagged<T>(f: impl FnOnce() -> T) -> T {
    TAGGED.with(|t| t.set(true));
    let out = f();
    TAGGED.with(|t| t.set(false));
    out
}

/// The fixture's instances, each address `Arc<str>` made under the tag. Net of the tag
/// is exactly the live address allocations (the `format!` buffer is freed inside it).
fn tagged_instances(n: usize) -> Vec<Instance> {
    let mut list = Vec::with_capacity(n);
    for i in 0..n {
        let addr: Arc<str> = tagged(|| Arc::from(addr(i)));
        list.push(Instance::new(addr));
    }
    list
}

fn per(bytes: isize, n: usize) -> f64 {
    bytes as f64 / n as f64
}

/// Bench 6 for one way of feeding the endpointer.
fn memory_per_instance(
    n: usize,
    label: &str,
    instancer: impl FnOnce(Vec<Instance>) -> Arc<dyn Instancer>,
) {
    let base = counts();
    let list = tagged_instances(n);
    let after_list = counts();
    let instancer = instancer(list);
    let after_instancer = counts();
    let endpointer = endpointer(instancer.clone(), factory(noop()));
    assert_eq!(endpointer.endpoints().expect("endpoints").len(), n);
    let after = counts();

    let total = after.live - base.live;
    let addresses = after.tagged_live - base.tagged_live;
    println!("memory/{label}/{n}:");
    println!(
        "  live after the list:       {:>10} B ({:6.1} B/instance; address strings {:.1} B/instance)",
        after_list.live - base.live,
        per(after_list.live - base.live, n),
        per(addresses, n),
    );
    println!(
        "  + instancer:               {:>10} B ({:6.1} B/instance)",
        after_instancer.live - after_list.live,
        per(after_instancer.live - after_list.live, n),
    );
    println!(
        "  + ready endpointer:        {:>10} B ({:6.1} B/instance)",
        after.live - after_instancer.live,
        per(after.live - after_instancer.live, n),
    );
    println!(
        "  per instance: {:.1} B excluding address strings, {:.1} B including them \
         ({} allocations made in all, {:.2} per instance)",
        per(total - addresses, n),
        per(total, n),
        after.allocations - base.allocations,
        (after.allocations - base.allocations) as f64 / n as f64,
    );
    drop(endpointer);
    drop(instancer);
    let end = counts();
    println!(
        "  still live after dropping everything: {} B",
        end.live - base.live
    );
}

/// Allocations and bytes per call of `op`, over `calls` calls after one warm-up call.
fn per_call(label: &str, calls: usize, mut op: impl FnMut()) {
    op();
    let before = counts();
    for _ in 0..calls {
        op();
    }
    let after = counts();
    println!(
        "allocs/{label}: {:.3} allocations, {:.1} B per call over {calls} calls",
        (after.allocations - before.allocations) as f64 / calls as f64,
        (after.allocated - before.allocated) as f64 / calls as f64,
    );
}

fn main() {
    const N: usize = 100_000;
    memory_per_instance(N, "fixed", |list| Arc::new(FixedInstancer::new(list)));
    memory_per_instance(N, "backend", |list| {
        let instancer = PushInstancer::new();
        instancer.publish_instances(list);
        Arc::new(instancer)
    });

    let endpointer = fixed_endpointer(10);
    per_call("endpoints/10", 10_000, || {
        let endpoints = endpointer.endpoints().expect("endpoints");
        black_box(endpoints.len());
        black_box(endpoints.first());
    });
    let round_robin = RoundRobin::new(fixed_endpointer(10));
    per_call("round_robin/10", 10_000, || {
        black_box(round_robin.with_pick(|f: &Ep| f())).expect("pick");
    });
    let random = Random::new(fixed_endpointer(10));
    per_call("random/10", 10_000, || {
        black_box(random.with_pick(|f: &Ep| f())).expect("pick");
    });
    let retry = Retry::builder(RoundRobin::new(fixed_endpointer(10)))
        .max_attempts(3)
        .timeout(Duration::from_secs(1))
        .build()
        .expect("retry");
    per_call("retry/10", 10_000, || {
        let out = retry.call(|f: &Ep, deadline| -> Result<(), ()> {
            black_box(deadline);
            f();
            Ok(())
        });
        black_box(out).expect("first attempt succeeds");
    });
}
