//! The watch loop against a scripted source on a manual clock: no test sleeps.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::*;
use crate::{Event, ManualClock};

const BOUND: Duration = Duration::from_secs(10);

/// What the scripted source answers to each request, in turn.
enum Step {
    Set(&'static [&'static str], Due),
    Unchanged(Due),
    Pending(Due),
    Fail,
    Panic,
    /// A long poll: the request blocks while the clock moves on by this much.
    Block(Duration, &'static [&'static str]),
}

/// A source that reports each request (with the clock's time) and answers from a
/// channel of steps; with no step ready it blocks until one comes.
struct Scripted {
    steps: Receiver<Step>,
    calls: Sender<Instant>,
    clock: ManualClock,
}

impl Source for Scripted {
    fn fetch(&mut self, _stop: &StopSignal, _early: &mut Early<'_>) -> Result<Fetched> {
        let _ = self.calls.send(self.clock.now());
        let set = |addrs: &[&str]| addrs.iter().map(|a| Instance::new(*a)).collect();
        match self.steps.recv_timeout(BOUND).expect("a step") {
            Step::Set(addrs, due) => Ok(Fetched::Instances(set(addrs), due)),
            Step::Unchanged(due) => Ok(Fetched::Unchanged(due)),
            Step::Pending(due) => Ok(Fetched::Pending(due)),
            Step::Fail => Err(test_error("registry down")),
            Step::Panic => panic!("scripted panic"),
            Step::Block(by, addrs) => {
                self.clock.advance(by);
                Ok(Fetched::Instances(set(addrs), Due::Now))
            }
        }
    }
}

struct Harness {
    clock: ManualClock,
    steps: Sender<Step>,
    calls: Receiver<Instant>,
    events: Receiver<Event>,
    publisher: Arc<Publisher>,
    worker: Worker,
}

/// A watch with a 100 ms minimum interval and a fixed 1 s backoff (jitter draws from
/// its upper half: 0.5 to 1 s), whose first request answers `first`.
fn harness(first: Step) -> Harness {
    let clock = ManualClock::new();
    let (steps, steps_rx) = unbounded();
    let (calls_tx, calls) = unbounded();
    steps.send(first).unwrap();
    let publisher = Arc::new(Publisher::new());
    let spec = Spec {
        thread: "waypost-test-watch",
        component: "test watch",
        log_target: "waypost::test",
        what: "test".into(),
        min_interval: Duration::from_millis(100),
        backoff: (Duration::from_secs(1), Duration::from_secs(1)),
        first_fetch_timeout: BOUND,
        clock: Arc::new(clock.clone()),
    };
    let source = Scripted {
        steps: steps_rx,
        calls: calls_tx,
        clock: clock.clone(),
    };
    let worker = start(spec, publisher.clone(), source, || {}).unwrap();
    let (tx, events) = unbounded();
    publisher.subscribe(tx);
    Harness {
        clock,
        steps,
        calls,
        events,
        publisher,
        worker,
    }
}

impl Harness {
    /// The next request, waited for with a bound.
    fn call(&self) -> Instant {
        self.calls.recv_timeout(BOUND).expect("a request")
    }

    /// Waits until the loop has armed a timer (it waits on the clock), then checks
    /// that no request started meanwhile.
    fn waiting(&self) {
        let until = std::time::Instant::now() + BOUND;
        while self.clock.pending_timers() == 0 {
            assert!(std::time::Instant::now() < until, "the loop never waited");
            std::thread::yield_now();
        }
        assert!(self.calls.try_recv().is_err(), "a request started early");
    }

    fn event(&self) -> Event {
        self.events.recv_timeout(BOUND).expect("an event")
    }

    fn addrs(event: &Event) -> Vec<String> {
        match event {
            Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
            Event::Error(err) => vec![format!("error: {err}")],
        }
    }
}

#[test]
fn answers_at_once_are_held_to_the_minimum_interval() {
    let h = harness(Step::Set(&["a:1"], Due::Now));
    let t0 = h.call();
    assert_eq!(Harness::addrs(&h.event()), ["a:1"]);
    // Every answer comes back at once with news: still one request per interval.
    for (k, addrs) in [&["a:1", "b:1"][..], &["b:1"][..], &["c:1"][..]]
        .into_iter()
        .enumerate()
    {
        h.steps.send(Step::Set(addrs, Due::Now)).unwrap();
        h.waiting();
        h.clock.advance(Duration::from_millis(100));
        let at = h.call();
        assert_eq!(at - t0, Duration::from_millis(100) * (k as u32 + 1));
        assert_eq!(Harness::addrs(&h.event()), addrs);
    }
}

#[test]
fn a_request_that_blocked_longer_than_the_interval_is_followed_at_once() {
    let h = harness(Step::Block(Duration::from_secs(30), &["a:1"]));
    h.call();
    h.steps.send(Step::Set(&["b:1"], Due::Now)).unwrap();
    // No clock move: the 30 s block already outlasted the 100 ms interval.
    h.call();
    assert_eq!(Harness::addrs(&h.event()), ["a:1"]);
    assert_eq!(Harness::addrs(&h.event()), ["b:1"]);
}

#[test]
fn a_poll_interval_from_the_source_is_waited_on_the_clock() {
    let h = harness(Step::Unchanged(Due::After(Duration::from_secs(5))));
    let t0 = h.call();
    h.steps.send(Step::Set(&["a:1"], Due::Now)).unwrap();
    h.waiting();
    h.clock.advance(Duration::from_millis(4999));
    h.waiting();
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(h.call() - t0, Duration::from_secs(5));
    assert_eq!(Harness::addrs(&h.event()), ["a:1"]);
}

#[test]
fn an_unchanged_answer_publishes_nothing_but_confirms_the_set() {
    let h = harness(Step::Set(&["a:1"], Due::Now));
    h.call();
    h.event();
    let before = h
        .publisher
        .subscribe_latest()
        .answers()
        .unwrap()
        .get()
        .last_ok;
    h.steps.send(Step::Unchanged(Due::Now)).unwrap();
    h.steps.send(Step::Set(&["b:1"], Due::Now)).unwrap();
    h.waiting();
    h.clock.advance(Duration::from_millis(100));
    h.call();
    h.waiting();
    let confirmed = h
        .publisher
        .subscribe_latest()
        .answers()
        .unwrap()
        .get()
        .last_ok;
    assert!(
        confirmed > before,
        "the unchanged answer counts as an answer"
    );
    assert!(h.events.try_recv().is_err(), "and publishes nothing");
    h.clock.advance(Duration::from_millis(100));
    h.call();
    assert_eq!(Harness::addrs(&h.event()), ["b:1"]);
}

#[test]
fn a_pending_answer_ends_the_first_wait_and_neither_publishes_nor_confirms() {
    let started = std::time::Instant::now();
    let h = harness(Step::Pending(Due::After(Duration::from_secs(1))));
    assert!(
        started.elapsed() < BOUND,
        "start() waited past the pending answer"
    );
    let t0 = h.call();
    h.steps.send(Step::Set(&["a:1"], Due::Now)).unwrap();
    h.waiting();
    assert!(h.events.try_recv().is_err(), "nothing is published");
    let answers = h.publisher.subscribe_latest().answers().unwrap().get();
    assert!(answers.last_ok.is_none(), "nothing is confirmed");
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.call() - t0, Duration::from_secs(1), "its due time holds");
    assert_eq!(Harness::addrs(&h.event()), ["a:1"]);
}

#[test]
fn an_error_is_an_event_the_set_is_kept_and_the_retry_backs_off() {
    let h = harness(Step::Set(&["a:1"], Due::Now));
    h.call();
    h.event();
    h.steps.send(Step::Fail).unwrap();
    h.waiting();
    h.clock.advance(Duration::from_millis(100));
    let failed = h.call();
    assert!(Harness::addrs(&h.event())[0].contains("registry down"));
    // A late subscriber gets the last set, then the error.
    let (tx, late) = unbounded();
    h.publisher.subscribe(tx);
    assert_eq!(Harness::addrs(&late.recv_timeout(BOUND).unwrap()), ["a:1"]);
    assert!(Harness::addrs(&late.recv_timeout(BOUND).unwrap())[0].contains("registry down"));
    // The retry waits the backoff (0.5 to 1 s), not the min interval.
    h.steps.send(Step::Set(&["a:1"], Due::Now)).unwrap();
    h.waiting();
    h.clock.advance(Duration::from_millis(499));
    h.waiting();
    h.clock.advance(Duration::from_millis(501));
    let retried = h.call();
    assert!(retried - failed >= Duration::from_millis(500));
    assert_eq!(Harness::addrs(&h.event()), ["a:1"]);
}

#[test]
fn a_panic_is_an_error_event_and_the_watch_restarts_on_the_clock() {
    let h = harness(Step::Set(&["a:1"], Due::Now));
    h.call();
    h.event();
    h.steps.send(Step::Panic).unwrap();
    h.waiting();
    h.clock.advance(Duration::from_millis(100));
    h.call();
    let event = h.event();
    assert!(
        Harness::addrs(&event)[0].contains("scripted panic"),
        "{event:?}"
    );
    h.steps.send(Step::Set(&["b:1"], Due::Now)).unwrap();
    h.waiting(); // the restart waits on the clock too
    h.clock.advance(Duration::from_secs(1));
    h.call();
    assert_eq!(Harness::addrs(&h.event()), ["b:1"]);
}

#[test]
fn stop_interrupts_a_wait_of_any_length() {
    let mut h = harness(Step::Set(&["a:1"], Due::After(Duration::MAX)));
    h.call();
    h.event(); // then it waits for a stop alone: no timer
    let started = std::time::Instant::now();
    h.worker.stop();
    assert!(started.elapsed() < BOUND);
    assert!(!h.worker.is_running());
}

#[test]
fn an_error_is_told_with_its_causes() {
    let err = crate::Error::File {
        path: std::path::Path::new("/etc/api.instances").into(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
    };
    assert_eq!(with_causes(&err), "I/O error on /etc/api.instances: gone");
}
