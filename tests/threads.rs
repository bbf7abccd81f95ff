//! Every thread waypost starts is named, and gone after close, stop or drop.
//!
//! One test in its own binary, so no other test's threads are counted.

mod support;

use support::events::addr_endpointer;
use support::{BOUND, threads_named, wait_until};
use waypost::{DefaultEndpointer, FixedInstancer, MemoryRegistry};

fn endpointer() -> DefaultEndpointer<String> {
    let e = addr_endpointer(FixedInstancer::new(["a:1"]));
    e.wait_ready(BOUND).unwrap();
    e
}

#[test]
fn no_thread_is_left_after_close_stop_or_drop() {
    assert_eq!(threads_named("waypost-"), 0);

    let closed = endpointer();
    let dropped = endpointer();
    let registry = MemoryRegistry::new();
    let on_memory = addr_endpointer(registry.instancer("svc"));
    // A thread names itself as it starts: wait for the third to get that far.
    wait_until("three named threads", || {
        threads_named("waypost-endpointer") == 3 && threads_named("waypost-factory") == 3
    });

    // close() joins: the thread has ended when it returns. (A joined thread can stay
    // listed in /proc/self/task for a moment after, until the kernel reaps it: the
    // count is waited for, with a bound.)
    closed.close();
    gone_to(2);
    drop(dropped);
    gone_to(1);
    drop(registry);
    drop(on_memory);

    let scratch = support::scratch::Scratch::new();
    let file = waypost::FileInstancer::new(&scratch.file).unwrap();
    wait_until("the file watch thread", || {
        threads_named("waypost-file-watch") == 1
    });
    let watched = addr_endpointer(file);
    drop(watched); // drops the last handle of the instancer: its drop stops and joins

    wait_until("no waypost thread left (one outlived its owner)", || {
        threads_named("waypost-") == 0
    });
}

/// Waits (bounded) until `n` endpointer and `n` factory threads are listed.
fn gone_to(n: usize) {
    wait_until(&format!("{n} endpointer and factory threads left"), || {
        threads_named("waypost-endpointer") == n && threads_named("waypost-factory") == n
    });
}
