//! The balancers and `Retry` through the public API: fairness, uniformity, errors,
//! stopping rules, and no allocation on a first-try success.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::wait_until;
use waypost::lb::{
    AttemptError, Balancer, OutlierEjection, P2c, PeakEwma, Random, Retry, RetryError, RetryStop,
    RoundRobin, WeightedRoundRobin,
};
use waypost::{
    DefaultEndpointer, Endpointer, Endpoints, Error, FixedEndpointer, Instance, ManualClock,
    MemoryRegistry,
};

// ---- an allocator that counts this thread's allocations ----

struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: the allocator may run while this thread's locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const
// thread-local `Cell` without a destructor, so touching it never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// How many allocations `f` made on this thread.
fn allocations_in<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

// ---- helpers ----

fn ten() -> FixedEndpointer<usize> {
    FixedEndpointer::new((0..10).collect::<Vec<_>>())
}

fn counts(balancer: &impl Balancer<usize>, picks: usize) -> [usize; 10] {
    let mut counts = [0; 10];
    for _ in 0..picks {
        counts[*balancer.pick().unwrap()] += 1;
    }
    counts
}

/// Counts from two threads picking `picks` times each on one shared balancer.
fn counts_on_two_threads(balancer: &impl Balancer<usize>, picks: usize) -> [usize; 10] {
    let per_thread: Vec<[usize; 10]> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| s.spawn(|| counts(balancer, picks)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (t, c) in per_thread.iter().enumerate() {
        assert!(
            c.iter().all(|&n| n > 0),
            "thread {t} missed an endpoint: {c:?}"
        );
    }
    let mut total = [0; 10];
    for c in &per_thread {
        for (sum, n) in total.iter_mut().zip(c) {
            *sum += n;
        }
    }
    total
}

/// Pearson's chi-square statistic of `counts` against a uniform distribution.
fn chi_square(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum()
}

/// The 0.999 quantile of the chi-square distribution with 9 degrees of freedom.
const CHI2_9_DOF_999: f64 = 27.88;

/// An endpointer that always fails, to check errors pass through unchanged.
struct Failing;

impl Endpointer<usize> for Failing {
    fn endpoints(&self) -> waypost::Result<Endpoints<usize>> {
        Err(Error::Closed {
            component: "test endpointer",
        })
    }
}

/// An endpointer that is empty until `fill` is set.
struct Refilling {
    empty: FixedEndpointer<usize>,
    full: FixedEndpointer<usize>,
    fill: AtomicBool,
}

impl Endpointer<usize> for Refilling {
    fn endpoints(&self) -> waypost::Result<Endpoints<usize>> {
        if self.fill.load(Ordering::Relaxed) {
            self.full.endpoints()
        } else {
            self.empty.endpoints()
        }
    }
}

fn retry_on<B>(balancer: B, attempts: usize, timeout: Duration, clock: &ManualClock) -> Retry<B> {
    Retry::builder(balancer)
        .max_attempts(attempts)
        .timeout(timeout)
        .clock(clock.clone())
        .build()
        .unwrap()
}

// ---- the contract, at compile time ----

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RoundRobin<FixedEndpointer<usize>>>();
    check::<Random<FixedEndpointer<usize>>>();
    check::<Retry<RoundRobin<FixedEndpointer<usize>>>>();
    check::<Retry<Random<Arc<DefaultEndpointer<String>>>>>();
    check::<RetryError<std::io::Error>>();
    check::<AttemptError<std::io::Error>>();
    check::<P2c<Arc<DefaultEndpointer<String>>>>();
    check::<PeakEwma<FixedEndpointer<usize>>>();
    check::<OutlierEjection<P2c<FixedEndpointer<usize>>>>();
    check::<waypost::lb::RetryBudget>();
    check::<waypost::lb::EjectionStatus>();
    fn balancer<B: Balancer<usize>>() {}
    balancer::<P2c<FixedEndpointer<usize>>>();
    balancer::<OutlierEjection<PeakEwma<Arc<FixedEndpointer<usize>>>>>();
    balancer::<Box<dyn Balancer<usize>>>();
    balancer::<RoundRobin<FixedEndpointer<usize>>>();
    balancer::<Random<Arc<FixedEndpointer<usize>>>>();
    balancer::<Arc<RoundRobin<FixedEndpointer<usize>>>>();
}

// ---- round robin ----

#[test]
fn round_robin_is_exactly_even_on_one_thread() {
    let lb = RoundRobin::new(ten());
    assert_eq!(counts(&lb, 10_000), [1_000; 10]);
    let mut borrowed = [0; 10];
    for _ in 0..10_000 {
        lb.with_pick(|&i| borrowed[i] += 1).unwrap();
    }
    assert_eq!(borrowed, [1_000; 10]);
}

#[test]
fn round_robin_shared_by_two_threads_stays_even() {
    let lb = RoundRobin::new(ten());
    let total = counts_on_two_threads(&lb, 10_000);
    // Each thread walks its own counter evenly (or both share one), so the total can
    // be off by at most one partial round per thread.
    for (i, &n) in total.iter().enumerate() {
        assert!(
            n.abs_diff(2_000) <= 2,
            "endpoint {i}: {n} picks ({total:?})"
        );
    }
}

#[test]
fn round_robin_follows_a_changing_endpointer() {
    let registry = MemoryRegistry::new();
    let a = registry.registrar("svc", Instance::new("10.0.0.1:80"));
    let _a_registration = a.register().unwrap();
    let endpointer = DefaultEndpointer::new(Arc::new(registry.instancer("svc")), |i: &Instance| {
        Ok(i.addr().to_owned())
    })
    .unwrap();
    endpointer.wait_ready(Duration::from_secs(5)).unwrap();
    let lb = RoundRobin::new(endpointer);
    assert_eq!(lb.pick().unwrap().clone(), "10.0.0.1:80");
    a.deregister().unwrap();
    wait_until("no endpoints", || {
        lb.pick().is_err_and(|e| e.is_no_endpoints())
    });
}

// ---- random ----

#[test]
fn seeded_random_passes_chi_square() {
    let lb = Random::with_seed(ten(), 0x5EED);
    let c = counts(&lb, 100_000);
    let stat = chi_square(&c);
    assert!(stat < CHI2_9_DOF_999, "chi-square {stat:.2} over {c:?}");
}

#[test]
fn seeded_random_repeats_its_sequence() {
    let sequence = |seed| {
        let lb = Random::with_seed(ten(), seed);
        (0..1_000).map(|_| *lb.pick().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(sequence(7), sequence(7));
    assert_ne!(sequence(7), sequence(8));
}

#[test]
fn random_is_shareable_between_threads() {
    let seeded = Random::with_seed(ten(), 99);
    assert_eq!(
        counts_on_two_threads(&seeded, 10_000).iter().sum::<usize>(),
        20_000
    );
    let unseeded = Random::new(ten());
    assert_eq!(
        counts_on_two_threads(&unseeded, 10_000)
            .iter()
            .sum::<usize>(),
        20_000
    );
}

// ---- errors ----

#[test]
fn empty_sets_are_no_endpoints() {
    let empty = || FixedEndpointer::new(Vec::<usize>::new());
    let rr = RoundRobin::new(empty());
    let random = Random::new(empty());
    let seeded = Random::with_seed(empty(), 1);
    let balancers: [&dyn Fn() -> [waypost::Result<()>; 2]; 3] = [
        &|| [rr.pick().map(drop), rr.with_pick(|_| panic!("called"))],
        &|| {
            [
                random.pick().map(drop),
                random.with_pick(|_| panic!("called")),
            ]
        },
        &|| {
            [
                seeded.pick().map(drop),
                seeded.with_pick(|_| panic!("called")),
            ]
        },
    ];
    for (b, picks) in balancers.iter().enumerate() {
        for result in picks() {
            assert!(
                matches!(result, Err(Error::NoEndpoints)),
                "balancer {b}: {result:?}"
            );
        }
    }
}

#[test]
fn endpointer_errors_pass_through() {
    let closed = |r: waypost::Result<waypost::lb::Pick<usize>>| {
        matches!(
            r,
            Err(Error::Closed {
                component: "test endpointer"
            })
        )
    };
    assert!(closed(RoundRobin::new(Failing).pick()));
    assert!(closed(Random::new(Failing).pick()));
    assert!(closed(Random::with_seed(Failing, 3).pick()));
}

// ---- retry ----

#[test]
fn retry_on_an_empty_set_reports_every_pick() {
    let retry = Retry::new(RoundRobin::new(FixedEndpointer::new(Vec::<usize>::new())));
    let err = retry
        .call(|_: &usize, _| -> Result<(), ()> { panic!("no endpoint to call") })
        .unwrap_err();
    assert_eq!(err.reason(), RetryStop::MaxAttempts);
    assert_eq!(err.attempts().len(), 3);
    for attempt in err.attempts() {
        assert!(
            matches!(attempt, AttemptError::Balancer(Error::NoEndpoints)),
            "{attempt:?}"
        );
    }
}

#[test]
fn retry_goes_on_after_a_failed_pick() {
    let endpointer = Arc::new(Refilling {
        empty: FixedEndpointer::new(Vec::new()),
        full: FixedEndpointer::new(vec![42]),
        fill: AtomicBool::new(false),
    });
    let retry = Retry::new(RoundRobin::new(Arc::clone(&endpointer)));
    let out = retry.call_with(
        |&ep: &usize, _| Ok::<_, ()>(ep),
        |attempt, error| {
            assert_eq!(attempt, 1);
            assert!(error.balancer().is_some_and(Error::is_no_endpoints));
            endpointer.fill.store(true, Ordering::Relaxed);
            true
        },
    );
    assert_eq!(out.unwrap(), 42);
}

#[test]
fn retry_stops_at_max_attempts_with_every_error_in_order() {
    let clock = ManualClock::new();
    let retry = retry_on(RoundRobin::new(ten()), 4, Duration::from_secs(1), &clock);
    let mut calls = 0;
    let mut seen = Vec::new();
    let err = retry
        .call_with(
            |_: &usize, _| {
                calls += 1;
                Err::<(), _>(calls)
            },
            |attempt, _| {
                seen.push(attempt);
                true
            },
        )
        .unwrap_err();
    assert_eq!(calls, 4);
    assert_eq!(seen, [1, 2, 3, 4]);
    assert_eq!(err.reason(), RetryStop::MaxAttempts);
    let errors: Vec<i32> = err
        .attempts()
        .iter()
        .map(|a| *a.endpoint().unwrap())
        .collect();
    assert_eq!(errors, [1, 2, 3, 4]);
    assert!(matches!(err.last(), Some(AttemptError::Endpoint(4))));
}

#[test]
fn retry_stops_at_the_deadline() {
    let clock = ManualClock::new();
    let retry = retry_on(RoundRobin::new(ten()), 5, Duration::from_secs(1), &clock);
    let mut calls = 0;
    let err = retry
        .call(|_: &usize, _| {
            calls += 1;
            if calls == 2 {
                clock.advance(Duration::from_millis(1_500));
            }
            Err::<(), _>(calls)
        })
        .unwrap_err();
    assert_eq!(calls, 2);
    assert_eq!(err.reason(), RetryStop::Timeout);
    assert_eq!(err.attempts().len(), 2);
}

#[test]
fn retry_makes_no_attempt_at_exactly_the_deadline() {
    let clock = ManualClock::new();
    let retry = retry_on(RoundRobin::new(ten()), 5, Duration::from_secs(1), &clock);
    let mut calls = 0;
    let err = retry
        .call(|_: &usize, _| {
            calls += 1;
            clock.advance(Duration::from_secs(1));
            Err::<(), ()>(())
        })
        .unwrap_err();
    assert_eq!((calls, err.reason()), (1, RetryStop::Timeout));
}

#[test]
fn retry_stops_when_the_callback_says_so() {
    let clock = ManualClock::new();
    let retry = retry_on(RoundRobin::new(ten()), 5, Duration::from_secs(1), &clock);
    let mut calls = 0;
    let err = retry
        .call_with(
            |_: &usize, _| {
                calls += 1;
                Err::<(), ()>(())
            },
            |attempt, _| attempt < 2,
        )
        .unwrap_err();
    assert_eq!(calls, 2);
    assert_eq!(err.reason(), RetryStop::Callback);
    assert_eq!(err.attempts().len(), 2);
}

#[test]
fn retry_returns_a_later_success() {
    let clock = ManualClock::new();
    let retry = retry_on(RoundRobin::new(ten()), 3, Duration::from_secs(1), &clock);
    let mut calls = 0;
    let mut failures = 0;
    let out = retry.call_with(
        |&ep: &usize, _| {
            calls += 1;
            if calls == 1 { Err("refused") } else { Ok(ep) }
        },
        |_, _| {
            failures += 1;
            true
        },
    );
    assert!(out.unwrap() < 10);
    assert_eq!((calls, failures), (2, 1));
}

#[test]
fn retry_passes_start_plus_timeout_as_the_deadline() {
    let clock = ManualClock::new();
    let timeout = Duration::from_millis(750);
    let retry = retry_on(RoundRobin::new(ten()), 3, timeout, &clock);
    let start = waypost::Clock::now(&clock);
    let (mut deadlines, mut remaining) = (Vec::new(), Vec::new());
    let _ = retry.call(|_: &usize, deadline| {
        deadlines.push(deadline.at());
        remaining.push(deadline.remaining());
        clock.advance(Duration::from_millis(100));
        Err::<(), ()>(())
    });
    assert_eq!(deadlines, [start + timeout; 3]);
    let ms = Duration::from_millis;
    assert_eq!(
        remaining,
        [ms(750), ms(650), ms(550)],
        "read on the retry's clock"
    );
}

#[test]
fn retry_moves_on_to_the_next_endpoint() {
    let retry = Retry::new(RoundRobin::new(ten()));
    let mut tried = Vec::new();
    let out = retry.call(|&ep: &usize, _| {
        tried.push(ep);
        if tried.len() == 1 { Err(()) } else { Ok(ep) }
    });
    assert_eq!(out.unwrap(), tried[1]);
    assert_eq!(tried[1], (tried[0] + 1) % 10, "tried {tried:?}");
}

#[test]
fn retry_does_not_hold_the_endpointer_during_a_call() {
    // The endpointer thread must be able to publish a new set while `f` runs: if
    // `Retry` held the read guard of this thread's shard, the new set could never show.
    let registry = MemoryRegistry::new();
    let first = registry.registrar("svc", Instance::new("10.0.0.1:80"));
    let _first_registration = first.register().unwrap();
    let second = registry.registrar("svc", Instance::new("10.0.0.2:80"));
    let endpointer = Arc::new(
        DefaultEndpointer::new(Arc::new(registry.instancer("svc")), |i: &Instance| {
            Ok(i.addr().to_owned())
        })
        .unwrap(),
    );
    endpointer.wait_ready(Duration::from_secs(5)).unwrap();
    let retry = Retry::builder(RoundRobin::new(Arc::clone(&endpointer)))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let out = retry.call(|_: &String, _| {
        let _second_registration = second.register()?;
        wait_until("two endpoints", || {
            endpointer.endpoints().is_ok_and(|e| e.len() == 2)
        });
        Ok::<_, Error>(())
    });
    out.unwrap();
}

#[test]
fn retry_allocates_nothing_on_a_first_try_success() {
    type Endpoint = Arc<dyn Fn() -> u32 + Send + Sync>;
    let endpoints: Vec<Endpoint> = vec![Arc::new(|| 1), Arc::new(|| 2), Arc::new(|| 3)];
    let retry = Retry::new(RoundRobin::new(FixedEndpointer::new(endpoints)));
    let call = || retry.call(|ep: &Endpoint, _| Ok::<_, ()>(ep()));
    call().unwrap(); // warm-up: this thread's shard index and other lazy state
    let (out, allocations) = allocations_in(call);
    assert!(out.is_ok());
    assert_eq!(allocations, 0);
    // The counter works: a failing call allocates its error list.
    let (_, allocations) = allocations_in(|| retry.call(|_: &Endpoint, _| Err::<(), ()>(())));
    assert!(allocations > 0);
}

#[test]
fn load_aware_picks_allocate_nothing() {
    let clock = ManualClock::new();
    let p2c = P2c::new(ten()).unwrap();
    let ewma = PeakEwma::builder(ten())
        .clock(clock.clone())
        .build()
        .unwrap();
    let ejecting = OutlierEjection::builder(P2c::new(ten()).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let weighted = WeightedRoundRobin::new(ten()).unwrap();
    let lbs: [&dyn Balancer<usize>; 4] = [&p2c, &ewma, &ejecting, &weighted];
    for lb in lbs {
        let call = || {
            lb.pick().unwrap().success();
            lb.pick().unwrap().failure();
            drop(lb.pick().unwrap());
        };
        call(); // warm-up
        let ((), allocations) = allocations_in(call);
        assert_eq!(allocations, 0);
    }
    // With an instance ejected, picks skip it, still allocating nothing. (The calls
    // above may have failed on 3 already: fail it until it is out, at most 5 times.)
    for _ in 0..5 {
        if !ejecting.status().ejected().is_empty() {
            break;
        }
        let pick = (0..1000)
            .map(|_| ejecting.pick().unwrap())
            .find(|p| **p == 3);
        pick.unwrap().failure();
    }
    assert_eq!(ejecting.status().ejected().len(), 1);
    let ((), allocations) = allocations_in(|| {
        for _ in 0..100 {
            assert_ne!(*ejecting.pick().unwrap(), 3);
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn retry_error_displays_and_chains() {
    use std::error::Error as _;
    let retry = Retry::builder(RoundRobin::new(ten()))
        .max_attempts(2)
        .build()
        .unwrap();
    let err = retry
        .call(|_: &usize, _| Err::<(), _>(std::io::Error::other("refused")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "gave up after 2 failed attempts (the attempts ran out); \
         the last: the endpoint call failed: refused"
    );
    let last = err.source().expect("source is the last attempt");
    assert_eq!(last.source().unwrap().to_string(), "refused");
}

// ---- the pick handle, call feedback, dyn balancers, transient errors ----

/// A balancer that records how each call it picked ended: the shape a load-aware
/// balancer takes.
struct Recorder {
    inner: RoundRobin<FixedEndpointer<usize>>,
    seen: Arc<Seen>,
}

#[derive(Default)]
struct Seen(parking_lot::Mutex<Vec<(usize, waypost::lb::Outcome)>>);

impl Seen {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Vec<(usize, waypost::lb::Outcome)>> {
        self.0.lock()
    }
}

impl waypost::lb::CallObserver<usize> for Seen {
    fn ended(
        &self,
        snapshot: &Endpoints<usize>,
        index: usize,
        outcome: waypost::lb::Outcome,
        _started: Option<std::time::Instant>,
    ) {
        self.lock().push((snapshot[index], outcome));
    }
}

impl Balancer<usize> for Recorder {
    fn pick(&self) -> waypost::Result<waypost::lb::Pick<usize>> {
        let plain = self.inner.pick()?;
        let (snapshot, index) = (plain.snapshot().clone(), plain.index());
        Ok(waypost::lb::Pick::observed(
            snapshot,
            index,
            self.seen.clone(),
            None,
        ))
    }
}

#[test]
fn retry_reports_every_attempt_through_the_pick() {
    use waypost::lb::Outcome::*;
    let seen = Arc::new(Seen::default());
    let recorder = Recorder {
        inner: RoundRobin::with_seed(FixedEndpointer::new(vec![0usize, 1, 2]), 1),
        seen: seen.clone(),
    };
    let retry = Retry::new(recorder);
    let out = retry.call(|&ep: &usize, _| if ep == 2 { Ok(ep) } else { Err("refused") });
    let winner = out.unwrap();
    let outcomes: Vec<_> = seen.lock().iter().map(|&(_, o)| o).collect();
    assert_eq!(outcomes.last(), Some(&Success));
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| *o == Failure));
    assert_eq!(seen.lock().last().unwrap().0, winner);
    // A pick dropped without an outcome still ends the call, with no outcome.
    seen.lock().clear();
    drop(retry.balancer().pick().unwrap());
    assert_eq!(seen.lock()[0].1, Dropped);
}

#[test]
fn a_balancer_chosen_at_run_time_is_a_box_dyn() {
    for name in ["round-robin", "random"] {
        let endpoints = FixedEndpointer::new(vec![1u8, 2, 3]);
        let lb: Box<dyn Balancer<u8>> = match name {
            "random" => Box::new(Random::with_seed(endpoints, 9)),
            _ => Box::new(RoundRobin::new(endpoints)),
        };
        let pick = lb.pick().unwrap();
        assert!((1..=3).contains(&*pick));
        assert_eq!(pick.instance().addr(), format!("fixed-{}:1", pick.index()));
        assert!(lb.with_pick(|&n| n > 0).unwrap());
        let retry = Retry::new(lb);
        assert!(retry.call(|&n: &u8, _| Ok::<_, ()>(n)).is_ok());
    }
}

#[test]
fn retry_error_names_the_last_cause() {
    let retry = Retry::new(RoundRobin::new(ten()));
    let err = retry
        .call(|_: &usize, _| Err::<(), _>(std::io::Error::other("connection refused")))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("3 failed attempts") && text.contains("connection refused"),
        "{text}"
    );
}

#[test]
fn transient_errors_are_the_documented_ones() {
    use std::io::ErrorKind;
    use waypost::{HttpError, HttpErrorKind};
    let io = |kind| Error::Io {
        operation: "calling",
        source: std::io::Error::from(kind),
    };
    let http = |kind, status: Option<u16>| {
        let mut e = HttpError::new("consul", "GET /v1/x", "http://127.0.0.1:8500", kind);
        if let Some(s) = status {
            e = e.with_status(s);
        }
        Error::from(e)
    };
    let transient = [
        Error::timeout("a reply", Duration::from_secs(1)),
        Error::NoEndpoints,
        io(ErrorKind::ConnectionRefused),
        io(ErrorKind::ConnectionReset),
        io(ErrorKind::TimedOut),
        http(HttpErrorKind::Connect, None),
        http(HttpErrorKind::Timeout, None),
        http(HttpErrorKind::Status, Some(429)),
        http(HttpErrorKind::Status, Some(502)),
        http(HttpErrorKind::Status, Some(503)),
        http(HttpErrorKind::Status, Some(504)),
    ];
    for e in &transient {
        assert!(e.is_transient(), "{e}");
    }
    let lasting = [
        Error::invalid_config("timeout", "zero"),
        Error::invalid_instance("x", "no port"),
        http(HttpErrorKind::Decode, Some(200)),
        http(HttpErrorKind::Status, Some(400)),
        http(HttpErrorKind::Status, Some(404)),
        http(HttpErrorKind::Status, Some(500)),
        http(HttpErrorKind::Tls, None),
        io(ErrorKind::PermissionDenied),
        Error::Closed {
            component: "endpointer",
        },
    ];
    for e in &lasting {
        assert!(!e.is_transient(), "{e}");
    }
}

/// Hands out the first endpoint twice, then the others: as a round-robin counter shared
/// by several threads can.
struct Sticky {
    endpoints: FixedEndpointer<usize>,
    calls: std::sync::atomic::AtomicUsize,
}

impl Balancer<usize> for Sticky {
    fn pick(&self) -> waypost::Result<waypost::lb::Pick<usize>> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let snapshot = self.endpoints.endpoints()?;
        let index = if n < 2 { 0 } else { (n - 1) % snapshot.len() };
        Ok(waypost::lb::Pick::new(snapshot, index))
    }
}

#[test]
fn a_retry_avoids_the_endpoint_that_just_failed() {
    let sticky = Sticky {
        endpoints: FixedEndpointer::new(vec![0usize, 1, 2]),
        calls: Default::default(),
    };
    let retry = Retry::new(sticky);
    let mut tried = Vec::new();
    let out = retry.call(|&ep: &usize, _| {
        tried.push(ep);
        if ep == 0 { Err("down") } else { Ok(ep) }
    });
    assert_eq!(out.unwrap(), 1);
    assert_eq!(tried, [0, 1], "the second attempt went elsewhere");
}
