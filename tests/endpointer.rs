//! DefaultEndpointer: the cache, closers, errors, invalidation and the read path.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use support::{BOUND, ScriptedInstancer, wait_until};
use waypost::{
    Closer, DefaultEndpointer, Endpointer, EndpointerOptions, Error, FixedInstancer, Instance,
    Made, ManualClock,
};

/// Receives the address of every factory call, or of every closer run.
type Record = Receiver<String>;

/// A factory that reports every call and whose closers report every close.
fn recording() -> (
    impl Fn(&Instance) -> waypost::Result<Made<String>> + Send + 'static,
    Record,
    Record,
) {
    let (made_tx, made_rx) = unbounded();
    let (closed_tx, closed_rx) = unbounded();
    let factory = move |i: &Instance| -> waypost::Result<Made<String>> {
        made_tx.send(i.addr().to_owned()).unwrap();
        if i.addr().starts_with("bad") {
            return Err(Error::factory(format!("cannot reach {i}")));
        }
        let (tx, addr) = (closed_tx.clone(), i.addr().to_owned());
        let closer: Box<dyn Closer> = Box::new(move || tx.send(addr).unwrap());
        Ok((i.addr().to_owned(), Some(closer)))
    };
    (factory, made_rx, closed_rx)
}

fn current(e: &DefaultEndpointer<String>) -> Vec<String> {
    e.endpoints().map(|eps| eps.to_vec()).unwrap_or_default()
}

fn drain(rx: &Receiver<String>) -> Vec<String> {
    let mut got: Vec<String> = rx.try_iter().collect();
    got.sort();
    got
}

#[test]
fn serves_the_full_set_sorted_once_ready() {
    let instancer = Arc::new(FixedInstancer::new(["c:1", "a:1", "b:1"]));
    let e =
        DefaultEndpointer::new(instancer, |i: &Instance| Ok((i.addr().to_owned(), None))).unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(current(&e), ["a:1", "b:1", "c:1"]);
}

#[test]
fn nothing_before_the_first_state() {
    let instancer = ScriptedInstancer::new();
    let (factory, made, _) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    let err = e.wait_ready(Duration::from_millis(50)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(e.endpoints().unwrap().is_empty());
    assert!(made.try_recv().is_err());
    instancer.set(&["a:1"]);
    e.wait_ready(BOUND).unwrap();
    assert_eq!(current(&e), ["a:1"]);
}

#[test]
fn factory_once_per_new_instance_and_closer_once_per_removed() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let (factory, made, closed) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(drain(&made), ["a:1", "b:1"]);

    instancer.set(&["a:1", "b:1", "c:1"]);
    wait_until("c", || current(&e).len() == 3);
    assert_eq!(
        drain(&made),
        ["c:1"],
        "unchanged instances keep their endpoint"
    );

    instancer.set(&["a:1", "c:1"]);
    wait_until("b to go", || current(&e) == ["a:1", "c:1"]);
    // The closer runs once no snapshot holds b: just after the removal is served.
    assert_eq!(closed.recv_timeout(BOUND).unwrap(), "b:1");
    assert!(made.try_recv().is_err());

    // The same set again changes nothing.
    instancer.set(&["c:1", "a:1"]);
    instancer.set(&["a:1", "c:1", "d:1"]);
    wait_until("d", || current(&e).len() == 3);
    assert_eq!(drain(&made), ["d:1"]);
    assert!(closed.try_recv().is_err());

    e.close();
    assert_eq!(
        drain(&closed),
        ["a:1", "c:1", "d:1"],
        "close closes every endpoint"
    );
    e.close();
    drop(e);
    assert!(closed.try_recv().is_err(), "each closer runs exactly once");
    assert_eq!(instancer.subscribers(), 0, "close deregisters");
}

#[test]
fn factory_errors_leave_the_instance_out_and_are_retried_on_change() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "bad:1"]);
    let (factory, made, _) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(current(&e), ["a:1"]);
    assert_eq!(drain(&made), ["a:1", "bad:1"]);
    instancer.set(&["a:1", "b:1", "bad:1"]);
    wait_until("b", || current(&e).len() == 2);
    assert_eq!(drain(&made), ["b:1", "bad:1"]);
}

#[test]
fn a_panicking_factory_is_an_error_not_a_dead_thread() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["boom:1", "a:1"]);
    let e = DefaultEndpointer::new(instancer.clone(), |i: &Instance| {
        if i.addr().starts_with("boom") {
            panic!("factory bug");
        }
        Ok((i.addr().to_owned(), None))
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(current(&e), ["a:1"]);
    instancer.set(&["a:1", "b:1"]);
    wait_until("the thread to go on", || current(&e) == ["a:1", "b:1"]);
}

#[test]
fn error_events_keep_the_last_set() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let (factory, _made, closed) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    e.wait_ready(BOUND).unwrap();
    for i in 0..5 {
        instancer.fail(&format!("registry down {i}"));
    }
    instancer.set(&["a:1", "b:1", "c:1"]); // a marker that the errors were handled
    wait_until("the marker", || current(&e).len() == 3);
    assert!(closed.try_recv().is_err(), "errors close nothing");
}

#[test]
fn invalidate_on_error_after_the_timeout_and_recover() {
    let clock = ManualClock::new();
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let (factory, made, closed) = recording();
    let options = EndpointerOptions::new()
        .invalidate_on_error(Duration::from_secs(30))
        .clock(clock.clone());
    let e = DefaultEndpointer::with_options(instancer.clone(), factory, options).unwrap();
    e.wait_ready(BOUND).unwrap();
    drain(&made);

    instancer.fail("registry down");
    wait_until("the timer to be armed", || clock.pending_timers() == 1);
    instancer.fail("still down"); // does not restart the timer
    clock.advance(Duration::from_secs(29));
    assert_eq!(current(&e), ["a:1", "b:1"], "kept until the timeout");

    clock.advance(Duration::from_secs(1));
    wait_until("invalidation", || e.endpoints().is_err());
    let err = e.endpoints().unwrap_err();
    assert!(err.is_invalidated(), "{err}");
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("still down"),
        "the latest registry error is the source: {err:?}"
    );
    assert_eq!(drain(&closed), ["a:1", "b:1"]);

    instancer.set(&["b:1"]);
    wait_until("recovery", || current(&e) == ["b:1"]);
    assert_eq!(drain(&made), ["b:1"]);

    // A good event before the timeout disarms it.
    instancer.fail("blip");
    wait_until("a second timer", || clock.pending_timers() == 1);
    instancer.set(&["b:1", "c:1"]);
    wait_until("c", || current(&e).len() == 2);
    clock.advance(Duration::from_secs(60));
    instancer.set(&["b:1", "c:1", "d:1"]);
    wait_until("d", || current(&e).len() == 3);
    assert!(
        e.endpoints().is_ok(),
        "a disarmed timer must not invalidate"
    );
}

#[test]
fn a_backlog_is_coalesced_to_the_newest_event() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
    let blocked = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let (b, c) = (blocked.clone(), calls.clone());
    let e = DefaultEndpointer::new(instancer.clone(), move |i: &Instance| {
        c.fetch_add(1, Ordering::SeqCst);
        if i.addr() == "b:1" {
            b.store(true, Ordering::SeqCst);
            release_rx.recv_timeout(BOUND).ok();
        }
        Ok((i.addr().to_owned(), None))
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    instancer.set(&["a:1", "b:1"]);
    wait_until("the factory to block", || blocked.load(Ordering::SeqCst));
    instancer.set(&["a:1", "b:1", "x:1"]);
    instancer.set(&["a:1", "b:1", "y:1"]);
    instancer.set(&["a:1", "b:1", "z:1"]);
    release_tx.send(()).unwrap();
    wait_until("z", || current(&e) == ["a:1", "b:1", "z:1"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "x and y were skipped");
}

#[test]
fn closed_endpointer_says_so() {
    let e = DefaultEndpointer::new(Arc::new(FixedInstancer::new(["a:1"])), |i: &Instance| {
        Ok((i.addr().to_owned(), None))
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    e.close();
    assert!(e.endpoints().unwrap_err().is_closed());
    assert!(e.wait_ready(BOUND).unwrap_err().is_closed());
}

#[test]
fn guard_to_arc_outlives_the_guard() {
    let e = DefaultEndpointer::new(
        Arc::new(FixedInstancer::new(["a:1", "b:1"])),
        |i: &Instance| Ok((i.addr().to_owned(), None)),
    )
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    let snapshot = e.endpoints().unwrap().to_arc();
    drop(e);
    assert_eq!(&snapshot[..], ["a:1", "b:1"]);
}

/// Readers on several threads during heavy churn see only complete sets: never torn,
/// never a spurious empty set. Bounded by a count of changes.
#[test]
fn readers_never_see_a_torn_or_empty_set_during_churn() {
    let instancer = ScriptedInstancer::new();
    let even: Vec<String> = (0..16).map(|i| format!("even-{i:02}:1")).collect();
    let odd: Vec<String> = (0..16).map(|i| format!("odd-{i:02}:1")).collect();
    let set = |v: &[String]| {
        v.iter()
            .map(|s| Instance::new(s.as_str()))
            .collect::<Vec<_>>()
    };
    instancer.send(waypost::Event::instances(set(&even)));
    let e = DefaultEndpointer::new(instancer.clone(), |i: &Instance| {
        Ok((Arc::<str>::from(i.addr()), None))
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let eps = e.endpoints().unwrap();
                    // Removals are served before the factory makes the additions: a
                    // set replaced whole is empty in between, never a mix.
                    if eps.is_empty() {
                        continue;
                    }
                    assert_eq!(eps.len(), 16, "spurious or torn set");
                    let family = &eps[0][..eps[0].find('-').unwrap()];
                    assert!(
                        eps.iter().all(|ep| ep.starts_with(family)),
                        "torn set: {eps:?}"
                    );
                    assert!(eps.windows(2).all(|w| w[0] < w[1]), "unsorted: {eps:?}");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let mut last = "even";
        for round in 0..2_000 {
            let (next, family) = if round % 2 == 0 {
                (&odd, "odd")
            } else {
                (&even, "even")
            };
            instancer.send(waypost::Event::instances(set(next)));
            last = family;
        }
        wait_until("the last set", || {
            e.endpoints().unwrap()[0].starts_with(last)
        });
        done.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
}
