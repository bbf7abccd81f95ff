//! DefaultEndpointer: the cache, closers, errors, invalidation and the read path.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use support::events::endpoints;
use support::{BOUND, ScriptedInstancer, wait_until};
use waypost::{
    DefaultEndpointer, Endpointer, EndpointerOptions, Error, FixedInstancer, Instance, Made,
    ManualClock,
};

/// Receives the address of every factory call, or of every closer run.
type Record = Receiver<String>;

/// A factory that reports every call and whose closers report every close.
fn recording() -> (
    impl Fn(&Instance) -> Result<Made<String>, waypost::BoxError> + Send + 'static,
    Record,
    Record,
) {
    let (made_tx, made_rx) = unbounded();
    let (closed_tx, closed_rx) = unbounded();
    let factory = move |i: &Instance| {
        made_tx.send(i.addr().to_owned()).unwrap();
        if i.addr().starts_with("bad") {
            return Err(format!("cannot reach {i}").into());
        }
        let (tx, addr) = (closed_tx.clone(), i.addr().to_owned());
        Ok(Made::new(i.addr().to_owned()).on_close(move || tx.send(addr).unwrap()))
    };
    (factory, made_rx, closed_rx)
}

/// A factory's slow call for one address (a TLS connect, say): the call says it has
/// begun on `entered`, then blocks until `release` (or the bound).
struct Gate {
    addr: &'static str,
    entered_tx: crossbeam_channel::Sender<()>,
    entered: Receiver<()>,
    release_tx: crossbeam_channel::Sender<()>,
    release: Receiver<()>,
}

impl Gate {
    fn new(addr: &'static str) -> Arc<Gate> {
        let (entered_tx, entered) = crossbeam_channel::bounded(1);
        let (release_tx, release) = crossbeam_channel::bounded(1);
        Arc::new(Gate {
            addr,
            entered_tx,
            entered,
            release_tx,
            release,
        })
    }

    /// Called by the factory: blocks if `instance` is the gated one.
    fn pass(&self, instance: &Instance) {
        if instance.addr() == self.addr {
            self.entered_tx.send(()).unwrap();
            self.release.recv_timeout(BOUND).unwrap();
        }
    }

    fn wait_entered(&self) {
        self.entered.recv_timeout(BOUND).unwrap();
    }

    fn release(&self) {
        self.release_tx.send(()).unwrap();
    }
}

/// An endpointer serving `a:1` from a push instancer, whose factory blocks on `b:1`.
fn ready_on_a_with_b_gated() -> (
    Arc<waypost::PushInstancer>,
    DefaultEndpointer<String>,
    Arc<Gate>,
) {
    let instancer = Arc::new(waypost::PushInstancer::new());
    instancer.publish_instances(vec![Instance::new("a:1")]);
    let gate = Gate::new("b:1");
    let g = gate.clone();
    let e = DefaultEndpointer::new(instancer.clone(), move |i: &Instance| {
        g.pass(i);
        Ok(i.addr().to_owned())
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    (instancer, e, gate)
}

/// The next `n` items, each waited for with a bound (closers run just after the
/// snapshot without their endpoint is served), sorted.
fn collect(rx: &Receiver<String>, n: usize) -> Vec<String> {
    let mut got: Vec<String> = (0..n).map(|_| rx.recv_timeout(BOUND).unwrap()).collect();
    got.sort();
    got
}

fn drain(rx: &Receiver<String>) -> Vec<String> {
    let mut got: Vec<String> = rx.try_iter().collect();
    got.sort();
    got
}

#[test]
fn serves_the_full_set_sorted_once_ready() {
    let instancer = Arc::new(FixedInstancer::new(["c:1", "a:1", "b:1"]));
    let e = DefaultEndpointer::new(instancer, |i: &Instance| Ok(i.addr().to_owned())).unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(endpoints(&e), ["a:1", "b:1", "c:1"]);
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
    assert_eq!(endpoints(&e), ["a:1"]);
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
    wait_until("c", || endpoints(&e).len() == 3);
    assert_eq!(
        drain(&made),
        ["c:1"],
        "unchanged instances keep their endpoint"
    );

    instancer.set(&["a:1", "c:1"]);
    wait_until("b to go", || endpoints(&e) == ["a:1", "c:1"]);
    // The closer runs once no snapshot holds b: just after the removal is served.
    assert_eq!(closed.recv_timeout(BOUND).unwrap(), "b:1");
    assert!(made.try_recv().is_err());

    // The same set again changes nothing.
    instancer.set(&["c:1", "a:1"]);
    instancer.set(&["a:1", "c:1", "d:1"]);
    wait_until("d", || endpoints(&e).len() == 3);
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
    assert_eq!(endpoints(&e), ["a:1"]);
    assert_eq!(drain(&made), ["a:1", "bad:1"]);
    instancer.set(&["a:1", "b:1", "bad:1"]);
    wait_until("b", || endpoints(&e).len() == 2);
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
        Ok(i.addr().to_owned())
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(endpoints(&e), ["a:1"]);
    instancer.set(&["a:1", "b:1"]);
    wait_until("the thread to go on", || endpoints(&e) == ["a:1", "b:1"]);
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
    wait_until("the marker", || endpoints(&e).len() == 3);
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
    assert_eq!(endpoints(&e), ["a:1", "b:1"], "kept until the timeout");

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
    assert_eq!(collect(&closed, 2), ["a:1", "b:1"]);

    instancer.set(&["b:1"]);
    wait_until("recovery", || endpoints(&e) == ["b:1"]);
    assert_eq!(drain(&made), ["b:1"]);

    // A good event before the timeout disarms it.
    instancer.fail("blip");
    wait_until("a second timer", || clock.pending_timers() == 1);
    instancer.set(&["b:1", "c:1"]);
    wait_until("c", || endpoints(&e).len() == 2);
    clock.advance(Duration::from_secs(60));
    instancer.set(&["b:1", "c:1", "d:1"]);
    wait_until("d", || endpoints(&e).len() == 3);
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
        Ok(i.addr().to_owned())
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    instancer.set(&["a:1", "b:1"]);
    wait_until("the factory to block", || blocked.load(Ordering::SeqCst));
    instancer.set(&["a:1", "b:1", "x:1"]);
    instancer.set(&["a:1", "b:1", "y:1"]);
    instancer.set(&["a:1", "b:1", "z:1"]);
    release_tx.send(()).unwrap();
    wait_until("z", || endpoints(&e) == ["a:1", "b:1", "z:1"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "x and y were skipped");
}

#[test]
fn closed_endpointer_says_so() {
    let e = DefaultEndpointer::new(Arc::new(FixedInstancer::new(["a:1"])), |i: &Instance| {
        Ok(i.addr().to_owned())
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
        |i: &Instance| Ok(i.addr().to_owned()),
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
fn readers_never_see_a_mixed_or_unsorted_set_during_churn() {
    /// Sets the flag when dropped, also while unwinding.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

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
        Ok(Arc::<str>::from(i.addr()))
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let give_up = Instant::now() + BOUND;
                while !done.load(Ordering::Relaxed) && Instant::now() < give_up {
                    let eps = e.endpoints().unwrap();
                    // Removals are served before the factory makes the additions, and
                    // an update cut short by a newer set serves what it made: a set
                    // replaced whole may be empty or partial in between, never a mix.
                    if eps.is_empty() {
                        continue;
                    }
                    assert!(eps.len() <= 16, "spurious set: {eps:?}");
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
        // Whatever happens, the readers stop: a panic here must not leave them
        // spinning in a scope that waits for them.
        let stop_readers = Stop(&done);
        wait_until("the last set", || {
            e.endpoints()
                .unwrap()
                .first()
                .is_some_and(|ep| ep.starts_with(last))
        });
        drop(stop_readers);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
}

// ---- snapshots carry their instances; derived data ----

#[test]
fn snapshots_carry_aligned_instances_and_metadata_updates_keep_the_endpoint() {
    let instancer = waypost::PushInstancer::new();
    let weighted = |addr: &str, w: u32| Instance::builder(addr).weight(w).build();
    instancer.publish_instances(vec![
        weighted("c:1", 3),
        weighted("bad:1", 9),
        weighted("a:1", 1),
    ]);
    let instancer = Arc::new(instancer);
    let (factory, made, _) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    e.wait_ready(BOUND).unwrap();
    let snap = e.endpoints().unwrap();
    assert_eq!(
        &snap[..],
        ["a:1", "c:1"],
        "a failed factory leaves its instance out"
    );
    let addrs: Vec<&str> = snap.instances().iter().map(Instance::addr).collect();
    assert_eq!(addrs, ["a:1", "c:1"], "instances aligned with endpoints");
    for (instance, endpoint) in snap.pairs() {
        assert_eq!(instance.addr(), endpoint);
    }
    assert_eq!(snap.instances()[1].metadata().unwrap().weight(), Some(3));
    drain(&made);

    // Only the weight changes: the endpoint stays, the snapshot's instance moves on.
    instancer.publish_instances(vec![
        weighted("c:1", 7),
        weighted("bad:1", 9),
        weighted("a:1", 1),
    ]);
    wait_until("the new weight", || {
        let snap = e.endpoints().unwrap();
        snap.instances().get(1).and_then(|i| i.metadata()?.weight()) == Some(7)
    });
    assert_eq!(
        collect(&made, 1),
        ["bad:1"],
        "c is not made again; bad is retried"
    );
    assert!(
        snap.instances()[1].metadata().unwrap().weight() == Some(3),
        "old snapshot unchanged"
    );
}

#[test]
fn derived_data_is_built_per_snapshot_from_the_previous_one() {
    use std::collections::HashMap;
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let e =
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap();
    e.wait_ready(BOUND).unwrap();
    // Per-instance state carried over for the instances that stay: a counter per
    // address, the same Arc as long as the instance stays.
    type State = HashMap<String, Arc<AtomicUsize>>;
    let derived = e
        .derive(
            |new: &waypost::Endpoints<String>, previous: Option<(_, &State)>| {
                new.instances()
                    .iter()
                    .map(|i| {
                        let kept = previous.and_then(|(_, state)| state.get(i.addr()).cloned());
                        (i.addr().to_owned(), kept.unwrap_or_default())
                    })
                    .collect::<State>()
            },
        )
        .unwrap();
    let snap = e.endpoints().unwrap();
    let state = snap
        .derived(&derived)
        .expect("the current snapshot carries it at once");
    assert_eq!(state.len(), 2);
    state["a:1"].fetch_add(5, Ordering::SeqCst);

    instancer.set(&["a:1", "c:1"]);
    wait_until("c", || endpoints(&e) == ["a:1", "c:1"]);
    let snap = e.endpoints().unwrap();
    let state = snap.derived(&derived).unwrap();
    assert_eq!(
        state["a:1"].load(Ordering::SeqCst),
        5,
        "a's state survives the change"
    );
    assert_eq!(state["c:1"].load(Ordering::SeqCst), 0, "c starts neutral");
    assert!(!state.contains_key("b:1"), "b's state is dropped");
}

// ---- closers never run under a served endpoint; removals are not held up ----

#[derive(Clone, Debug)]
struct Conn {
    addr: String,
    closed: Arc<AtomicBool>,
}

#[test]
fn removal_is_served_before_a_slow_factory_and_no_pick_sees_a_closed_endpoint() {
    use waypost::lb::{Balancer, RoundRobin};
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let gate = Gate::new("z:1");
    let g = gate.clone();
    let e = Arc::new(
        DefaultEndpointer::new(instancer.clone(), move |i: &Instance| {
            g.pass(i);
            let closed = Arc::new(AtomicBool::new(false));
            let flag = closed.clone();
            let conn = Conn {
                addr: i.addr().to_owned(),
                closed,
            };
            Ok(Made::new(conn).on_close(move || flag.store(true, Ordering::SeqCst)))
        })
        .unwrap(),
    );
    e.wait_ready(BOUND).unwrap();
    let lb = RoundRobin::new(e.clone());
    let done = AtomicBool::new(false);
    let picks = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let deadline = Instant::now() + BOUND;
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let _ = lb.with_pick(|conn: &Conn| {
                        assert!(
                            !conn.closed.load(Ordering::SeqCst),
                            "picked closed {}",
                            conn.addr
                        );
                        picks.fetch_add(1, Ordering::Relaxed);
                    });
                    if let Ok(snap) = e.endpoints() {
                        assert!(snap.iter().all(|c| !c.closed.load(Ordering::SeqCst)));
                    }
                }
            });
        }
        wait_until("the readers to pick a", || {
            picks.load(Ordering::Relaxed) > 0
        });
        instancer.set(&["z:1"]);
        gate.wait_entered();
        // z's factory is blocked: a must already be gone from every read.
        wait_until("a's removal while z's factory blocks", || {
            e.endpoints().unwrap().is_empty()
        });
        let err = lb.pick().unwrap_err();
        assert!(err.is_no_endpoints(), "{err}");
        gate.release();
        wait_until("z", || e.endpoints().unwrap().len() == 1);
        done.store(true, Ordering::SeqCst);
    });
    assert!(picks.load(Ordering::Relaxed) > 0);
    assert_eq!(e.endpoints().unwrap()[0].addr, "z:1");
}

/// With a grace longer than the factory takes, an update that removes and adds is one
/// snapshot: no reader sees the set without both. A close during the grace still
/// waits for the current factory call only.
#[test]
fn an_update_made_within_the_removal_grace_is_one_snapshot() {
    let instancer = Arc::new(waypost::PushInstancer::new());
    instancer.publish_instances(vec![Instance::new("a:1")]);
    let gate = Gate::new("b:1");
    let g = gate.clone();
    let options = EndpointerOptions::new().removal_grace(Duration::MAX);
    let factory = move |i: &Instance| {
        g.pass(i);
        Ok(i.addr().to_owned())
    };
    let e = Arc::new(DefaultEndpointer::with_options(instancer.clone(), factory, options).unwrap());
    e.wait_ready(BOUND).unwrap();
    let before = e.status().version;

    instancer.publish_instances(vec![Instance::new("c:1"), Instance::new("b:1")]);
    gate.wait_entered();
    // c is made, b's factory call blocks: the removal of a waits with them.
    let held = e.endpoints().unwrap();
    assert_eq!(
        (held.version(), &held[..]),
        (before, &["a:1".to_owned()][..])
    );
    gate.release();
    wait_until("b and c served", || endpoints(&e) == ["b:1", "c:1"]);
    assert_eq!(
        e.status().version,
        before + 1,
        "one snapshot for the whole update"
    );

    // Blocked again in the grace (b removed, then added back), and closed meanwhile.
    instancer.publish_instances(vec![Instance::new("c:1")]);
    wait_until("c alone", || endpoints(&e) == ["c:1"]);
    instancer.publish_instances(vec![Instance::new("b:1")]);
    gate.wait_entered();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let other = e.clone();
    std::thread::spawn(move || {
        other.close();
        done_tx.send(()).unwrap();
    });
    assert_eq!(
        endpoints(&e),
        ["c:1"],
        "the removal of c waits for b's call"
    );
    gate.release(); // close() waits for the call in progress, not longer
    done.recv_timeout(BOUND).expect("close() returned");
    assert!(e.endpoints().unwrap_err().is_closed());
}

#[test]
fn a_held_snapshot_keeps_its_endpoints_open_until_dropped() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let (factory, _made, closed) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    e.wait_ready(BOUND).unwrap();
    let held = e.endpoints().unwrap();
    instancer.set(&["a:1"]);
    wait_until("b to go", || endpoints(&e) == ["a:1"]);
    instancer.set(&["a:1", "c:1"]);
    wait_until("c", || endpoints(&e).len() == 2);
    assert!(
        closed.try_recv().is_err(),
        "b stays open while a snapshot holds it"
    );
    assert_eq!(&held[..], ["a:1", "b:1"]);
    drop(held);
    assert_eq!(collect(&closed, 1), ["b:1"]);
    e.close();
    assert_eq!(drain(&closed), ["a:1", "c:1"]);
}

// ---- backlogs, late subscribers, status ----

#[test]
fn a_backlog_of_set_then_error_applies_the_set_with_the_error_state() {
    let (instancer, e, gate) = ready_on_a_with_b_gated();
    instancer.publish_instances(vec![Instance::new("a:1"), Instance::new("b:1")]);
    gate.wait_entered();
    // While the endpointer is busy: a new set without a, then an error.
    instancer.publish_instances(vec![Instance::new("b:1"), Instance::new("c:1")]);
    instancer.publish_error(Error::invalid_instance("x", "registry down"));
    gate.release();
    wait_until("the newest set", || endpoints(&e) == ["b:1", "c:1"]);
    let status = e.status();
    assert!(
        status.last_error.is_some(),
        "the error after the set is the state"
    );
    assert_eq!(status.state, waypost::EndpointerState::Ready);
}

#[test]
fn a_subscriber_joining_during_an_outage_starts_from_the_last_set() {
    let instancer = Arc::new(waypost::PushInstancer::new());
    instancer.publish_instances(vec![Instance::new("a:1"), Instance::new("b:1")]);
    instancer.publish_error(Error::invalid_instance("x", "registry down"));
    let e =
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap();
    e.wait_ready(BOUND).unwrap();
    assert_eq!(endpoints(&e), ["a:1", "b:1"]);
    assert!(e.status().last_error.is_some());
    // A plain subscriber too: the set, then the error.
    let (tx, rx) = unbounded();
    waypost::Instancer::subscribe(&*instancer, tx);
    let events: Vec<_> = rx.try_iter().collect();
    assert!(
        matches!(events.as_slice(), [waypost::Event::Instances(s), waypost::Event::Error(_)] if s.len() == 2)
    );
}

#[test]
fn status_counts_every_answer_and_wait_ready_names_the_last_error() {
    let instancer = Arc::new(waypost::PushInstancer::new());
    let e =
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap();
    instancer.publish_error(Error::invalid_instance("bogus", "registry down"));
    instancer.publish_error(Error::invalid_instance("bogus", "registry down"));
    let err = e.wait_ready(Duration::from_millis(20)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("registry down"), "{err}");
    let source = std::error::Error::source(&err).expect("the registry's error is the source");
    assert!(source.to_string().contains("invalid instance"), "{source}");
    let deadline = Instant::now() + Duration::from_millis(10);
    assert!(e.wait_ready_deadline(deadline).unwrap_err().is_timeout());

    let status = e.status();
    assert_eq!(
        status.errors_in_a_row, 2,
        "repeats count, though not re-sent"
    );
    assert!(status.error_since.is_some() && status.last_confirmed.is_none());
    assert_eq!(status.state, waypost::EndpointerState::Pending);

    instancer.publish_instances(vec![Instance::new("a:1")]);
    e.wait_ready(BOUND).unwrap();
    wait_until("status ready", || {
        e.status().state == waypost::EndpointerState::Ready
    });
    let first = e.status();
    assert!(first.last_error.is_none() && first.errors_in_a_row == 0);
    let confirmed = first.last_confirmed.unwrap();
    instancer.publish_instances(vec![Instance::new("a:1")]); // the same set again
    let again = e.status();
    assert!(
        again.last_confirmed.unwrap() > confirmed,
        "a repeat confirms the set"
    );
    assert_eq!(again.version, first.version, "but publishes nothing new");
}

// ---- panics, extreme durations ----

#[derive(Debug)]
struct Fragile {
    armed: Arc<AtomicBool>,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        Fragile {
            armed: self.armed.clone(),
        }
    }
}

impl Drop for Fragile {
    fn drop(&mut self) {
        if self.armed.load(Ordering::SeqCst) && !std::thread::panicking() {
            self.armed.store(false, Ordering::SeqCst);
            panic!("endpoint drop bug");
        }
    }
}

#[test]
fn a_panic_on_the_endpointer_thread_makes_endpoints_an_error() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let armed = Arc::new(AtomicBool::new(false));
    let flag = armed.clone();
    let e = DefaultEndpointer::new(instancer.clone(), move |_: &Instance| {
        Ok(Fragile {
            armed: flag.clone(),
        })
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    armed.store(true, Ordering::SeqCst);
    instancer.set(&["a:1"]);
    wait_until("the panic to surface", || e.endpoints().is_err());
    let err = e.endpoints().unwrap_err();
    assert!(matches!(err, Error::Panicked { .. }), "{err}");
    assert!(err.to_string().contains("endpoint drop bug"), "{err}");
    assert_eq!(e.status().state, waypost::EndpointerState::Failed);
    e.close();
}

#[test]
fn extreme_invalidation_timeouts_never_panic() {
    // MAX: never fires, however far the clock moves.
    let clock = ManualClock::new();
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let options = EndpointerOptions::new()
        .invalidate_on_error(Duration::MAX)
        .clock(clock.clone());
    let e = DefaultEndpointer::with_options(
        instancer.clone(),
        |i: &Instance| Ok(i.addr().to_owned()),
        options,
    )
    .unwrap();
    e.wait_ready(Duration::MAX).unwrap();
    instancer.fail("down");
    instancer.set(&["a:1", "b:1"]); // a marker: the error was handled
    wait_until("the marker", || endpoints(&e).len() == 2);
    instancer.fail("down again");
    clock.advance(Duration::from_secs(1 << 32));
    instancer.set(&["a:1", "b:1", "c:1"]);
    wait_until("the second marker", || endpoints(&e).len() == 3);
    assert!(e.status().state == waypost::EndpointerState::Ready);

    // ZERO: invalidates on the first error.
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let options = EndpointerOptions::new().invalidate_on_error(Duration::ZERO);
    let e = DefaultEndpointer::with_options(
        instancer.clone(),
        |i: &Instance| Ok(i.addr().to_owned()),
        options,
    )
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    instancer.fail("down");
    wait_until("invalidation", || {
        e.endpoints().is_err_and(|err| err.is_invalidated())
    });
}

// ---- close from anywhere ----

#[test]
fn close_from_a_balancer_call_and_from_a_factory_never_deadlocks() {
    use std::sync::OnceLock;
    use waypost::lb::{Balancer, RoundRobin};
    // From inside a pick, which holds a snapshot.
    let e = Arc::new(
        DefaultEndpointer::new(Arc::new(FixedInstancer::new(["a:1"])), |i: &Instance| {
            Ok(i.addr().to_owned())
        })
        .unwrap(),
    );
    e.wait_ready(BOUND).unwrap();
    let lb = RoundRobin::new(e.clone());
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        lb.with_pick(|_: &String| lb.endpointer().close()).unwrap();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(BOUND)
        .expect("close() inside a pick returned");
    assert!(e.endpoints().unwrap_err().is_closed());

    // From inside a factory, while another thread closes.
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let cell: Arc<OnceLock<Arc<DefaultEndpointer<String>>>> = Arc::new(OnceLock::new());
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let (go_tx, go) = crossbeam_channel::bounded::<()>(1);
    let inner = cell.clone();
    let (closed_tx, closed) = unbounded();
    let e = Arc::new(
        DefaultEndpointer::new(instancer.clone(), move |i: &Instance| {
            if i.addr() == "x:1" {
                entered_tx.send(()).unwrap();
                go.recv_timeout(BOUND).unwrap();
                inner.get().unwrap().close(); // on the endpointer's factory thread
            }
            let (tx, addr) = (closed_tx.clone(), i.addr().to_owned());
            Ok(Made::new(i.addr().to_owned()).on_close(move || tx.send(addr).unwrap()))
        })
        .unwrap(),
    );
    cell.set(e.clone()).ok().unwrap();
    e.wait_ready(BOUND).unwrap();
    instancer.set(&["a:1", "x:1"]);
    entered.recv_timeout(BOUND).unwrap();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let other = e.clone();
    std::thread::spawn(move || {
        other.close();
        done_tx.send(()).unwrap();
    });
    go_tx.send(()).unwrap();
    done.recv_timeout(BOUND)
        .expect("close() on another thread returned");
    assert!(e.endpoints().unwrap_err().is_closed());
    assert_eq!(collect(&closed, 2), ["a:1", "x:1"]);
}

#[test]
fn dropping_the_last_handle_inside_a_factory_closes_in_the_background() {
    use std::sync::Mutex;
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let slot: Arc<Mutex<Option<DefaultEndpointer<String>>>> = Arc::new(Mutex::new(None));
    let inner = slot.clone();
    let (closed_tx, closed) = unbounded();
    let e = DefaultEndpointer::new(instancer.clone(), move |i: &Instance| {
        if i.addr() == "drop:1" {
            drop(inner.lock().unwrap().take()); // the last handle, on the factory thread
        }
        let (tx, addr) = (closed_tx.clone(), i.addr().to_owned());
        Ok(Made::new(i.addr().to_owned()).on_close(move || tx.send(addr).unwrap()))
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    *slot.lock().unwrap() = Some(e);
    instancer.set(&["a:1", "drop:1"]);
    assert_eq!(
        collect(&closed, 2),
        ["a:1", "drop:1"],
        "the thread finished closing by itself"
    );
    wait_until("the close to deregister", || instancer.subscribers() == 0);
}

#[test]
fn close_waits_for_one_factory_call_not_a_whole_update() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["seed:1"]);
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let e = DefaultEndpointer::new(instancer.clone(), move |i: &Instance| {
        if i.addr() != "seed:1" {
            let _ = entered_tx.try_send(());
            // A slow factory: 5 ms per instance, 1,000 instances.
            let _ = crossbeam_channel::after(Duration::from_millis(5)).recv();
        }
        Ok(i.addr().to_owned())
    })
    .unwrap();
    e.wait_ready(BOUND).unwrap();
    let many: Vec<String> = (0..1000)
        .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    instancer.set(&many);
    entered.recv_timeout(BOUND).unwrap();
    let started = Instant::now();
    e.close();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "close() took {took:?} (a whole update is 5 s)"
    );
}

fn set10(k: u64) -> Vec<Instance> {
    (0..10)
        .map(|i| Instance::new(format!("10.0.{k}.{i}:80")))
        .collect()
}

#[test]
fn nested_and_long_held_snapshots_never_deadlock_a_writer() {
    let instancer = Arc::new(waypost::PushInstancer::new());
    instancer.publish_instances(set10(0));
    let e =
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap();
    e.wait_ready(BOUND).unwrap();
    let kept = e.endpoints().unwrap(); // held for the whole test
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 1..=200 {
                instancer.publish_instances(set10(k));
            }
            done.store(true, Ordering::SeqCst);
        });
        let deadline = Instant::now() + BOUND;
        while !done.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the writer never finished");
            let outer = e.endpoints().unwrap();
            let inner = e.endpoints().unwrap();
            let innermost = e.endpoints().unwrap();
            assert!(innermost.version() >= inner.version());
            assert!(inner.version() >= outer.version());
        }
    });
    wait_until("the last set", || {
        (e.endpoints().unwrap().first()).is_some_and(|ep| ep.starts_with("10.0.200."))
    });
    assert!(
        kept[0].starts_with("10.0.0."),
        "a held snapshot does not change"
    );
    e.close();
}

#[test]
fn an_update_cut_short_by_an_error_still_makes_the_rest() {
    let (instancer, e, gate) = ready_on_a_with_b_gated();
    instancer.publish_instances(["a:1", "b:1", "c:1", "d:1"].map(Instance::new).to_vec());
    gate.wait_entered();
    // An error arrives while b is being made: the update stops after b, applies the
    // error, and then makes c and d, though no newer set follows.
    instancer.publish_error(Error::invalid_instance("x", "registry down"));
    gate.release();
    wait_until("c and d", || endpoints(&e) == ["a:1", "b:1", "c:1", "d:1"]);
    assert!(e.status().last_error.is_some());
}

#[test]
fn an_empty_set_after_a_full_one_is_held_back_then_served() {
    let clock = ManualClock::new();
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1", "b:1"]);
    let (factory, _made, closed) = recording();
    let options = EndpointerOptions::new()
        .hold_on_empty(Duration::from_secs(30))
        .clock(clock.clone());
    let e = DefaultEndpointer::with_options(instancer.clone(), factory, options).unwrap();
    e.wait_ready(BOUND).unwrap();
    assert!(e.status().empty_held_since.is_none());

    // An empty answer: the last set is still served, flagged in the status.
    instancer.set(&[]);
    wait_until("the hold", || e.status().empty_held_since.is_some());
    assert_eq!(
        e.status().empty_held_since,
        Some(waypost::Clock::now(&clock))
    );
    assert_eq!(clock.pending_timers(), 1);
    assert_eq!(endpoints(&e), ["a:1", "b:1"]);
    // A full set within the hold ends it: served at once, nothing closed meanwhile.
    instancer.set(&["b:1", "c:1"]);
    wait_until("c", || endpoints(&e) == ["b:1", "c:1"]);
    assert!(e.status().empty_held_since.is_none());
    assert_eq!(collect(&closed, 1), ["a:1"]);

    // Empty again, and it stays empty past the hold: then it is served.
    instancer.set(&[]);
    wait_until("the second hold", || e.status().empty_held_since.is_some());
    wait_until("its timer", || clock.pending_timers() >= 1);
    clock.advance(Duration::from_secs(29));
    assert_eq!(endpoints(&e), ["b:1", "c:1"], "held until the time is up");
    clock.advance(Duration::from_secs(1));
    wait_until("the empty set", || endpoints(&e).is_empty());
    assert!(e.status().empty_held_since.is_none());
    assert_eq!(collect(&closed, 2), ["b:1", "c:1"]);

    // From an empty set, a later empty answer has nothing to hold.
    instancer.set(&["d:1"]);
    wait_until("d", || endpoints(&e) == ["d:1"]);
}

#[test]
fn without_the_option_an_empty_set_is_served_at_once() {
    let instancer = ScriptedInstancer::new();
    instancer.set(&["a:1"]);
    let (factory, _made, _closed) = recording();
    let e = DefaultEndpointer::new(instancer.clone(), factory).unwrap();
    e.wait_ready(BOUND).unwrap();
    instancer.set(&[]);
    wait_until("the empty set", || endpoints(&e).is_empty());
    assert!(e.status().empty_held_since.is_none());
}
