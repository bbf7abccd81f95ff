//! The load-aware balancers through the public API: P2C, peak EWMA, outlier ejection
//! with its panic threshold, the retry budget and backoff; on the manual clock, across
//! set changes and under threads.

mod support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use parking_lot::Mutex;
use support::wait_until;
use waypost::lb::{
    Balancer, EjectionEvent, OutlierEjection, OutlierEjectionBuilder, P2c, PeakEwma, Pick, Retry,
    RetryBudget, RetryStop, RoundRobin,
};
use waypost::{
    Clock, DefaultEndpointer, Endpointer, FixedEndpointer, Instance, ManualClock, PushInstancer,
};

const SECOND: Duration = Duration::from_secs(1);

fn endpointer(n: usize) -> FixedEndpointer<usize> {
    FixedEndpointer::new((0..n).collect::<Vec<usize>>())
}

/// A pick of endpoint `want`, the other picks made on the way dropped.
fn pick_of<B: Balancer<usize>>(lb: &B, want: usize) -> Pick<usize> {
    for _ in 0..10_000 {
        let pick = lb.pick().unwrap();
        if *pick == want {
            return pick;
        }
    }
    panic!("endpoint {want} never picked");
}

/// A pick of endpoint `want` from a balancer that avoids it: the other picks made on
/// the way are held (so they cost more) until it comes, then dropped.
fn pick_holding_others<B: Balancer<usize>>(lb: &B, want: usize) -> Pick<usize> {
    let mut others = Vec::new();
    for _ in 0..10_000 {
        let pick = lb.pick().unwrap();
        if *pick == want {
            return pick;
        }
        others.push(pick);
    }
    panic!("endpoint {want} never picked");
}

// ---- determinism ----

#[test]
fn seeded_picks_repeat_their_sequence() {
    let sequence = |seed| -> Vec<usize> {
        let p2c = P2c::with_seed(endpointer(10), seed).unwrap();
        let clock = ManualClock::new();
        let ewma = PeakEwma::builder(endpointer(10))
            .clock(clock)
            .seed(seed)
            .build()
            .unwrap();
        let mut held = Vec::new();
        let mut out = Vec::new();
        for k in 0..200 {
            let (a, b) = (p2c.pick().unwrap(), ewma.pick().unwrap());
            out.extend([*a, *b]);
            if k % 3 == 0 {
                held.extend([a, b]); // loads differ, and shape the next picks
            }
        }
        out
    };
    assert_eq!(sequence(7), sequence(7));
    assert_ne!(sequence(7), sequence(8));
}

#[test]
fn every_observer_of_a_pick_hears_its_end() {
    struct Heard(Mutex<Vec<waypost::lb::Outcome>>);
    impl<E> waypost::lb::CallObserver<E> for Heard {
        fn ended(
            &self,
            _: &waypost::Endpoints<E>,
            _: usize,
            outcome: waypost::lb::Outcome,
            _: Option<std::time::Instant>,
        ) {
            self.0.lock().push(outcome);
        }
    }
    let clock = ManualClock::new();
    let lb = OutlierEjection::builder(P2c::with_seed(endpointer(1), 1).unwrap())
        .clock(clock)
        .build()
        .unwrap();
    let heard = Arc::new(Heard(Mutex::new(Vec::new())));
    // P2C and the ejection observe inline; a third and a fourth observer too.
    for _ in 0..5 {
        let pick = lb.pick().unwrap();
        let pick = pick.observed_also(heard.clone(), None);
        pick.observed_also(heard.clone(), None).failure();
    }
    assert_eq!(heard.0.lock().len(), 10);
    assert_eq!(
        lb.status().ejected().len(),
        1,
        "the ejection heard its five failures"
    );
    let snapshot = lb.inner().endpointer().endpoints().unwrap();
    assert_eq!(
        lb.inner().in_flight(&snapshot).unwrap(),
        [0],
        "P2C heard every end"
    );
}

// ---- P2C ----

#[test]
fn p2c_never_picks_the_busier_of_two() {
    let lb = P2c::with_seed(endpointer(2), 1).unwrap();
    let busy = lb.pick().unwrap();
    for _ in 0..1_000 {
        let pick = lb.pick().unwrap();
        assert_ne!(*pick, *busy, "the busier of two was picked");
    }
}

#[test]
fn p2c_never_picks_the_busiest_when_loads_differ() {
    // Ten endpoints with loads 0..9 (endpoint i has i calls in flight).
    let lb = P2c::with_seed(endpointer(10), 2).unwrap();
    let mut held = Vec::new();
    for i in 0..10 {
        for _ in 0..i {
            held.push(pick_of(&lb, i));
        }
    }
    let snapshot = lb.endpointer().endpoints().unwrap();
    assert_eq!(
        lb.in_flight(&snapshot).unwrap(),
        (0..10).collect::<Vec<_>>()
    );
    let mut seen = [0usize; 10];
    for _ in 0..5_000 {
        seen[*lb.pick().unwrap()] += 1;
    }
    assert_eq!(
        seen[9], 0,
        "the busiest is never the less loaded of two: {seen:?}"
    );
    // Endpoint 0 is picked whenever it is drawn: 2/10 of the draws.
    assert!(seen[0] > 800 && seen[0] < 1_200, "{seen:?}");
    drop(held);
    assert_eq!(lb.in_flight(&snapshot).unwrap(), vec![0; 10]);
}

#[test]
fn p2c_with_one_endpoint_picks_it() {
    let lb = P2c::new(endpointer(1)).unwrap();
    let held: Vec<_> = (0..3).map(|_| lb.pick().unwrap()).collect();
    assert!(held.iter().all(|p| **p == 0));
    let empty = P2c::new(FixedEndpointer::<usize>::new(vec![])).unwrap();
    assert!(empty.pick().is_err_and(|e| e.is_no_endpoints()));
}

#[test]
fn in_flight_falls_however_the_call_ends() {
    let lb = P2c::with_seed(endpointer(3), 3).unwrap();
    let snapshot = lb.endpointer().endpoints().unwrap();
    let total = || lb.in_flight(&snapshot).unwrap().iter().sum::<usize>();
    let (a, b, c) = (lb.pick().unwrap(), lb.pick().unwrap(), lb.pick().unwrap());
    assert_eq!(total(), 3);
    a.success();
    b.failure();
    assert_eq!(total(), 1);
    drop(c);
    assert_eq!(total(), 0);
}

// ---- peak EWMA ----

#[test]
fn peak_ewma_decays_and_peaks_on_the_manual_clock() {
    let clock = ManualClock::new();
    let lb = PeakEwma::builder(endpointer(2))
        .clock(clock.clone())
        .seed(4)
        .build()
        .unwrap();
    let snapshot = lb.endpointer().endpoints().unwrap();
    let estimate = |i: usize| lb.estimates(&snapshot).unwrap()[i].as_secs_f64() * 1e3;
    let close = |got: f64, want: f64| assert!((got - want).abs() < 0.01, "{got} ms, not {want}");
    let e = (-1f64).exp();
    // New instances start at 30 ms, decaying with τ = 10 s.
    close(estimate(0), 30.0);
    clock.advance(10 * SECOND);
    close(estimate(0), 30.0 * e);
    // A slower sample is taken at once: the peak.
    let pick = pick_of(&lb, 0);
    clock.advance(Duration::from_millis(100));
    pick.success();
    close(estimate(0), 100.0);
    // τ later a 10 ms sample blends in with weight 1 - e^-1.
    clock.advance(10 * SECOND - Duration::from_millis(10));
    let pick = pick_holding_others(&lb, 0);
    clock.advance(Duration::from_millis(10));
    pick.failure(); // failures are timed too
    close(estimate(0), 100.0 * e + 10.0 * (1.0 - e));
    // The slow history steers picks to the other.
    let picks: Vec<usize> = (0..50).map(|_| *lb.pick().unwrap()).collect();
    assert!(picks.iter().all(|&i| i == 1), "{picks:?}");
}

#[test]
fn peak_ewma_weighs_the_calls_in_flight() {
    let clock = ManualClock::new();
    let lb = PeakEwma::builder(endpointer(2))
        .clock(clock.clone())
        .build()
        .unwrap();
    // Equal estimates: the one with a call in flight costs twice as much.
    let busy = lb.pick().unwrap();
    for _ in 0..100 {
        assert_ne!(*lb.pick().unwrap(), *busy);
    }
    let snapshot = lb.endpointer().endpoints().unwrap();
    assert_eq!(lb.in_flight(&snapshot).unwrap().iter().sum::<usize>(), 1);
    assert!(
        PeakEwma::builder(endpointer(1))
            .decay(Duration::ZERO)
            .build()
            .is_err()
    );
}

// ---- outlier ejection ----

type RoundRobinEjection = OutlierEjection<RoundRobin<FixedEndpointer<usize>>>;
type RoundRobinEjectionBuilder = OutlierEjectionBuilder<RoundRobin<FixedEndpointer<usize>>>;

/// Outlier ejection over round-robin on the manual clock, its events collected.
fn ejecting(
    n: usize,
    clock: &ManualClock,
    configure: impl FnOnce(RoundRobinEjectionBuilder) -> RoundRobinEjectionBuilder,
) -> (RoundRobinEjection, Receiver<EjectionEvent>) {
    let (tx, rx) = unbounded();
    let builder = OutlierEjection::builder(RoundRobin::with_seed(endpointer(n), 0))
        .clock(clock.clone())
        .on_event(move |e| tx.send(e.clone()).unwrap());
    (configure(builder).build().unwrap(), rx)
}

/// Fails `times` calls of endpoint `i`.
fn fail<B: Balancer<usize>>(lb: &B, i: usize, times: usize) {
    for _ in 0..times {
        pick_of(lb, i).failure();
    }
}

fn ejected(lb: &RoundRobinEjection) -> Vec<String> {
    let status = lb.status();
    status
        .ejected()
        .iter()
        .map(|e| e.instance().addr().to_owned())
        .collect()
}

#[test]
fn the_fifth_consecutive_failure_ejects() {
    let clock = ManualClock::new();
    let (lb, events) = ejecting(10, &clock, |b| b);
    fail(&lb, 3, 4);
    pick_of(&lb, 3).success(); // resets the count
    fail(&lb, 3, 4);
    drop(pick_of(&lb, 3)); // a drop neither counts nor resets
    assert!(ejected(&lb).is_empty());
    assert!(events.try_recv().is_err());
    fail(&lb, 3, 1);
    assert_eq!(ejected(&lb), ["fixed-3:1"]);
    match events.try_recv().unwrap() {
        EjectionEvent::Ejected {
            instance,
            reason,
            ejection,
            duration,
        } => {
            assert_eq!(instance.addr(), "fixed-3:1");
            assert_eq!(reason.to_string(), "5 consecutive failures");
            assert_eq!((ejection, duration), (1, 30 * SECOND));
        }
        other => panic!("{other:?}"),
    }
    let status = lb.status();
    let e = &status.ejected()[0];
    assert_eq!(
        (e.since(), e.until()),
        (clock.now(), clock.now() + 30 * SECOND)
    );
    assert_eq!(
        (status.usable(), status.total(), status.panic()),
        (9, 10, false)
    );
    for _ in 0..100 {
        assert_ne!(*lb.pick().unwrap(), 3);
    }
}

#[test]
fn failures_of_calls_in_flight_at_an_ejection_do_not_count_after_it() {
    let clock = ManualClock::new();
    let (lb, _events) = ejecting(10, &clock, |b| b);
    let in_flight: Vec<_> = (0..4).map(|_| pick_of(&lb, 3)).collect();
    fail(&lb, 3, 5);
    assert_eq!(ejected(&lb), ["fixed-3:1"]);
    for pick in in_flight {
        pick.failure(); // ended while ejected
    }
    clock.advance(30 * SECOND);
    fail(&lb, 3, 4);
    assert!(ejected(&lb).is_empty(), "ejected before five new failures");
    fail(&lb, 3, 1);
    assert_eq!(ejected(&lb), ["fixed-3:1"]);
}

#[test]
fn ejections_last_30_s_then_60_s_and_the_multiplier_decays() {
    let clock = ManualClock::new();
    let (lb, events) = ejecting(10, &clock, |b| b);
    // Ejected for `expected`: still out just before, back exactly then.
    let ejection_lasts = |expected: Duration| {
        fail(&lb, 3, 5);
        assert_eq!(ejected(&lb), ["fixed-3:1"]);
        clock.advance(expected - Duration::from_millis(1));
        assert_eq!(ejected(&lb), ["fixed-3:1"], "back before {expected:?}");
        assert!((0..30).all(|_| *lb.pick().unwrap() != 3));
        clock.advance(Duration::from_millis(1));
        assert!(
            (0..10).any(|_| *lb.pick().unwrap() == 3),
            "not back at {expected:?}"
        );
        assert!(ejected(&lb).is_empty());
    };
    ejection_lasts(30 * SECOND);
    ejection_lasts(60 * SECOND); // again at once: twice as long
    ejection_lasts(90 * SECOND);
    clock.advance(10 * SECOND); // one interval in service: the multiplier falls by one
    ejection_lasts(90 * SECOND);
    clock.advance(30 * SECOND); // three intervals: back to the base
    ejection_lasts(30 * SECOND);
    let kinds: Vec<&str> = events
        .try_iter()
        .map(|e| match e {
            EjectionEvent::Ejected { .. } => "ejected",
            EjectionEvent::Returned { .. } => "returned",
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["ejected", "returned"].repeat(5));
}

#[test]
fn ejections_never_exceed_the_time_cap() {
    let clock = ManualClock::new();
    let (lb, _events) = ejecting(10, &clock, |b| b.max_ejection_time(100 * SECOND));
    for expected in [30, 60, 90, 100, 100] {
        fail(&lb, 5, 5);
        let status = lb.status();
        let e = &status.ejected()[0];
        assert_eq!(e.until() - e.since(), expected * SECOND);
        clock.advance(expected * SECOND);
    }
}

#[test]
fn at_most_ten_percent_or_one_are_ejected() {
    for (n, cap) in [(3, 1), (10, 1), (19, 1), (20, 2), (35, 3)] {
        let clock = ManualClock::new();
        let (lb, _events) = ejecting(n, &clock, |b| b);
        for i in 0..n {
            fail(&lb, i, 5);
        }
        assert_eq!(lb.status().ejected().len(), cap, "{n} instances");
    }
    // Without always_eject_one, fewer than ten instances eject none.
    let clock = ManualClock::new();
    let (lb, _events) = ejecting(9, &clock, |b| b.always_eject_one(false));
    fail(&lb, 0, 20);
    assert!(ejected(&lb).is_empty());
}

#[test]
fn panic_engages_below_half_and_is_off_at_zero() {
    // With the 10 %-or-one cap, a set of one is the set that can reach panic: its one
    // instance ejected leaves 0 % in service.
    let clock = ManualClock::new();
    let (lb, events) = ejecting(1, &clock, |b| b);
    fail(&lb, 0, 5);
    let status = lb.status();
    assert!(status.panic());
    assert_eq!((status.usable(), status.ejected().len()), (0, 1));
    assert_eq!(*lb.pick().unwrap(), 0, "in panic the ejected one is picked");
    clock.advance(30 * SECOND);
    assert!(!lb.status().panic());
    let kinds: Vec<String> = events
        .try_iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["Ejected", "PanicEntered", "Returned", "PanicLeft"]);

    // Two instances, all of them ejectable: one out leaves 50 %, not below; two out
    // is panic.
    let (lb, _events) = ejecting(2, &clock, |b| b.max_ejection_percent(100));
    fail(&lb, 0, 5);
    assert!(!lb.status().panic());
    assert!((0..10).all(|_| *lb.pick().unwrap() == 1));
    fail(&lb, 1, 5);
    assert!(lb.status().panic());
    let picked: Vec<usize> = (0..10).map(|_| *lb.pick().unwrap()).collect();
    assert!(picked.contains(&0) && picked.contains(&1), "{picked:?}");

    // Threshold 0: no panic, and no instance in service is no endpoints.
    let (lb, _events) = ejecting(1, &clock, |b| b.panic_threshold(0));
    fail(&lb, 0, 5);
    assert!(!lb.status().panic());
    assert!(lb.pick().is_err_and(|e| e.is_no_endpoints()));
    clock.advance(30 * SECOND);
    assert_eq!(*lb.pick().unwrap(), 0);
}

#[test]
fn ejection_wraps_the_load_aware_balancers() {
    let clock = ManualClock::new();
    let p2c = OutlierEjection::builder(P2c::with_seed(endpointer(10), 9).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    fail(&p2c, 4, 5);
    assert_eq!(p2c.status().ejected().len(), 1);
    // An ejected instance has nothing in flight, so P2C would favour it: the ejection
    // keeps it out of the two choices.
    assert!((0..500).all(|_| *p2c.pick().unwrap() != 4));
    let ewma = PeakEwma::builder(endpointer(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let ewma = OutlierEjection::builder(ewma)
        .clock(clock.clone())
        .build()
        .unwrap();
    fail(&ewma, 2, 5);
    assert!((0..500).all(|_| *ewma.pick().unwrap() != 2));
    let snapshot = ewma.inner().endpointer().endpoints().unwrap();
    assert_eq!(ewma.inner().in_flight(&snapshot).unwrap(), vec![0; 10]);
}

#[test]
fn settings_out_of_range_are_refused() {
    let build = |f: fn(RoundRobinEjectionBuilder) -> RoundRobinEjectionBuilder| {
        f(OutlierEjection::builder(RoundRobin::new(endpointer(1))))
            .build()
            .unwrap_err()
            .to_string()
    };
    assert!(build(|b| b.consecutive_failures(0)).contains("consecutive_failures"));
    assert!(build(|b| b.base_ejection_time(Duration::ZERO)).contains("base_ejection_time"));
    assert!(build(|b| b.interval(Duration::ZERO)).contains("interval"));
    assert!(build(|b| b.max_ejection_percent(101)).contains("max_ejection_percent"));
    assert!(build(|b| b.panic_threshold(101)).contains("panic_threshold"));
}

/// A manual clock that counts how often it is read.
#[derive(Clone, Debug, Default)]
struct CountingClock {
    clock: ManualClock,
    reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl Clock for CountingClock {
    fn now(&self) -> std::time::Instant {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.clock.now()
    }
    fn after(&self, deadline: std::time::Instant) -> Receiver<std::time::Instant> {
        self.clock.after(deadline)
    }
}

#[test]
fn only_latency_and_ejections_read_the_clock() {
    let clock = CountingClock::default();
    let reads = || clock.reads.load(std::sync::atomic::Ordering::Relaxed);
    let lb = OutlierEjection::builder(P2c::new(endpointer(10)).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let before = reads();
    for _ in 0..100 {
        // A failure, then a success on the same instance: never two in a row.
        let pick = lb.pick().unwrap();
        let i = *pick;
        pick.failure();
        pick_of(&lb, i).success();
    }
    assert_eq!(reads(), before, "nothing ejected: no clock read");
    fail(&lb, 1, 5);
    let before = reads();
    drop(lb.pick().unwrap());
    assert_eq!(reads(), before + 1, "something ejected: one read per pick");

    let ewma = PeakEwma::builder(endpointer(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let before = reads();
    ewma.pick().unwrap().success();
    assert_eq!(
        reads(),
        before + 2,
        "peak EWMA: one read at the pick, one at the end"
    );
}

// ---- state across set changes ----

#[test]
fn state_survives_for_instances_that_stay_and_is_dropped_for_the_others() {
    let instancer = Arc::new(PushInstancer::new());
    let set = |addrs: &[&str]| {
        instancer.publish_instances(addrs.iter().map(|a| Instance::new(*a)).collect());
    };
    set(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    let endpointer = Arc::new(
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap(),
    );
    endpointer.wait_ready(5 * SECOND).unwrap();
    let clock = ManualClock::new();
    let p2c = P2c::with_seed(endpointer.clone(), 5).unwrap();
    let lb = OutlierEjection::builder(P2c::with_seed(endpointer.clone(), 6).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let by_addr = |want: &str| {
        (0..10_000)
            .map(|_| p2c.pick().unwrap())
            .find(|p| **p == want)
            .unwrap()
    };
    let held = [by_addr("10.0.0.1:80"), by_addr("10.0.0.2:80")];
    for _ in 0..5 {
        let pick = (0..10_000)
            .map(|_| lb.pick().unwrap())
            .find(|p| **p == "10.0.0.1:80")
            .unwrap();
        pick.failure();
    }
    assert_eq!(lb.status().ejected().len(), 1);

    // .2 leaves, .4 comes: .1 keeps its call in flight and its ejection; .4 starts at 0.
    set(&["10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80"]);
    wait_until("the new set", || {
        endpointer
            .endpoints()
            .unwrap()
            .iter()
            .any(|e| e == "10.0.0.4:80")
    });
    let snapshot = endpointer.endpoints().unwrap();
    assert_eq!(p2c.in_flight(&snapshot).unwrap(), [1, 0, 0]);
    assert_eq!(lb.status().ejected()[0].instance().addr(), "10.0.0.1:80");
    assert_eq!(lb.status().total(), 3);
    drop(held); // the removed instance's call ends on its old state

    // .1 leaves and comes back: it starts afresh, in service.
    set(&["10.0.0.3:80", "10.0.0.4:80"]);
    wait_until("1 gone", || endpointer.endpoints().unwrap().len() == 2);
    assert!(lb.status().ejected().is_empty());
    set(&["10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80"]);
    wait_until("1 back", || endpointer.endpoints().unwrap().len() == 3);
    assert!(lb.status().ejected().is_empty());
    let snapshot = endpointer.endpoints().unwrap();
    assert_eq!(p2c.in_flight(&snapshot).unwrap(), [0, 0, 0]);
    assert!((0..100).any(|_| *lb.pick().unwrap() == "10.0.0.1:80"));
}

#[test]
fn a_balancer_attached_later_keeps_the_earlier_ones_state() {
    let endpointer = endpointer(3);
    let p2c = P2c::with_seed(&endpointer, 1).unwrap();
    let held = pick_of(&p2c, 2);
    let _later = P2c::new(&endpointer).unwrap();
    let snapshot = endpointer.endpoints().unwrap();
    assert_eq!(p2c.in_flight(&snapshot).unwrap(), [0, 0, 1]);
    drop(held);
}

// ---- concurrency ----

#[test]
fn in_flight_counts_return_to_zero_after_many_threads() {
    let clock = ManualClock::new();
    let endpointer = endpointer(10);
    let p2c = P2c::new(&endpointer).unwrap();
    let ewma = PeakEwma::builder(&endpointer)
        .clock(clock.clone())
        .build()
        .unwrap();
    let ejecting = OutlierEjection::builder(P2c::new(&endpointer).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let lbs: [&(dyn Fn() -> Pick<usize> + Sync); 3] =
        [&|| p2c.pick().unwrap(), &|| ewma.pick().unwrap(), &|| {
            ejecting.pick().unwrap()
        }];
    thread::scope(|s| {
        for t in 0..8 {
            let lbs = &lbs;
            s.spawn(move || {
                let mut held = Vec::new();
                for k in 0..20_000usize {
                    held.push(lbs[(t + k) % 3]());
                    if held.len() > 4 {
                        let pick = held.swap_remove(k % held.len());
                        match (k * 7 + t) % 3 {
                            0 => pick.success(),
                            1 if *pick == 0 => pick.failure(),
                            _ => drop(pick),
                        }
                    }
                }
            });
        }
    });
    let snapshot = endpointer.endpoints().unwrap();
    assert_eq!(p2c.in_flight(&snapshot).unwrap(), vec![0; 10]);
    assert_eq!(ewma.in_flight(&snapshot).unwrap(), vec![0; 10]);
    assert_eq!(ejecting.inner().in_flight(&snapshot).unwrap(), vec![0; 10]);
}

// ---- retry budget and backoff ----

#[test]
fn the_budget_allows_its_share_under_a_steady_load() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder().clock(clock.clone()).build().unwrap();
    // 100 calls a second, each wanting a retry: 20 % of them plus 10 a second pass
    // once the reserve of the first window is spent.
    let mut allowed_per_second = Vec::new();
    for _ in 0..40 {
        let mut allowed = 0;
        for _ in 0..100 {
            budget.deposit();
            allowed += usize::from(budget.try_withdraw());
            clock.advance(Duration::from_millis(10));
        }
        allowed_per_second.push(allowed);
    }
    let steady = &allowed_per_second[20..];
    let mean = steady.iter().sum::<usize>() as f64 / steady.len() as f64;
    assert!(
        (mean - 30.0).abs() < 1.5,
        "{mean} retries a second: {allowed_per_second:?}"
    );
    assert!(
        allowed_per_second[0] == 100,
        "the reserve lets the first second through"
    );
}

#[test]
fn a_retry_the_budget_refuses_ends_the_call_saying_so() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder()
        .min_retries_per_sec(0)
        .percent(20.0)
        .clock(clock.clone())
        .build()
        .unwrap();
    let retry = Retry::builder(RoundRobin::new(endpointer(3)))
        .max_attempts(2)
        .clock(clock.clone())
        .budget(budget)
        .build()
        .unwrap();
    let (mut retried, mut refused) = (0, 0);
    for _ in 0..1_000 {
        let err = retry.call(|_: &usize, _| Err::<(), ()>(())).unwrap_err();
        match err.reason() {
            RetryStop::MaxAttempts => retried += 1,
            RetryStop::Budget => {
                refused += 1;
                assert_eq!(err.attempts().len(), 1);
                assert_eq!(err.reason().to_string(), "the retry budget is spent");
            }
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_millis(5));
    }
    // 20 % of the calls are retried (5 s of calls: all inside the 10 s window).
    assert!(
        (195..=205).contains(&retried),
        "{retried} retried, {refused} refused"
    );
}

#[test]
fn backoff_waits_on_the_clock_within_its_jitter() {
    let clock = ManualClock::new();
    let retry = Retry::builder(RoundRobin::new(endpointer(2)))
        .max_attempts(3)
        .timeout(60 * SECOND)
        .clock(clock.clone())
        .backoff(SECOND, 10 * SECOND)
        .build()
        .unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    thread::scope(|s| {
        let call = s.spawn(|| {
            retry.call(|_: &usize, _| {
                attempts.lock().push(clock.now());
                Err::<(), ()>(())
            })
        });
        // Each wait is on the manual clock: it fires only when moved, within ±20 %.
        for wait in [1.0, 1.6] {
            wait_until("the backoff's timer", || clock.pending_timers() == 1);
            clock.advance(Duration::from_secs_f64(wait * 0.8 - 0.001));
            assert_eq!(clock.pending_timers(), 1, "fired before {wait} s × 0.8");
            clock.advance(Duration::from_secs_f64(wait * 0.4 + 0.002));
            assert_eq!(clock.pending_timers(), 0, "not fired by {wait} s × 1.2");
        }
        assert_eq!(
            call.join().unwrap().unwrap_err().reason(),
            RetryStop::MaxAttempts
        );
    });
    assert_eq!(attempts.lock().len(), 3);
    assert!(
        Retry::builder(RoundRobin::new(endpointer(1)))
            .backoff(SECOND, Duration::ZERO)
            .build()
            .is_err()
    );
}

#[test]
fn a_backoff_never_waits_past_the_deadline() {
    let clock = ManualClock::new();
    let retry = Retry::builder(RoundRobin::new(endpointer(2)))
        .timeout(2 * SECOND)
        .clock(clock.clone())
        .backoff(10 * SECOND, 10 * SECOND)
        .build()
        .unwrap();
    thread::scope(|s| {
        let call = s.spawn(|| retry.call(|_: &usize, _| Err::<(), ()>(())));
        wait_until("the backoff's timer", || clock.pending_timers() == 1);
        clock.advance(2 * SECOND);
        let err = call.join().unwrap().unwrap_err();
        assert_eq!(
            (err.reason(), err.attempts().len()),
            (RetryStop::Timeout, 1)
        );
    });
}
