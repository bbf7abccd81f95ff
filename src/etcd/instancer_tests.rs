//! The instancer against the in-memory fake etcd, on a manual clock: no test sleeps.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};

use super::*;
use crate::etcd::fake::{self, BOUND, Etcd, Kind, Op, Plan, http_error, logs};
use crate::{Event, ManualClock};

const P: &str = "/svc/api/";

struct Harness {
    instancer: Instancer,
    etcd: Etcd,
    clock: ManualClock,
    events: Receiver<Event>,
    client: fake::FakeClient,
}

/// An instancer of `prefix` on a manual clock, with no min interval and a backoff of
/// 1 s to 60 s (so a test that moves the clock less than a delay knows nothing
/// fires). `setup` fills the store first; the subscription sees every set from the
/// first list on.
fn start_at(
    prefix: &str,
    setup: impl FnOnce(&Etcd),
    configure: impl FnOnce(InstancerBuilder) -> InstancerBuilder,
) -> Harness {
    let clock = ManualClock::new();
    let (client, etcd) = fake::fake(&clock);
    // The first list waits until the test has subscribed, so that it sees every set
    // published, not just the latest.
    let (subscribed, gate) = crossbeam_channel::bounded::<()>(0);
    etcd.before_next_range(move |_| {
        let _ = gate.recv_timeout(BOUND);
    });
    setup(&etcd);
    let builder = Instancer::builder(&client, prefix)
        .clock(clock.clone())
        .min_interval(Duration::ZERO)
        .backoff(Duration::from_secs(1), Duration::from_secs(60))
        .first_fetch_timeout(Duration::ZERO);
    let instancer = configure(builder).build().unwrap();
    let (tx, events) = unbounded();
    instancer.subscribe(tx);
    drop(subscribed);
    Harness {
        instancer,
        etcd,
        clock,
        events,
        client,
    }
}

fn start(setup: impl FnOnce(&Etcd)) -> Harness {
    start_at(P, setup, |b| b)
}

fn key(name: &str) -> String {
    format!("{P}{name}")
}

impl Harness {
    fn event(&self) -> Event {
        self.events.recv_timeout(BOUND).expect("an event")
    }

    /// The next event, which must be a set: its addresses.
    fn set(&self) -> Vec<String> {
        match self.event() {
            Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
            Event::Error(err) => panic!("expected a set, got the error event {err}"),
        }
    }

    /// The next event, which must be an error.
    fn error(&self) -> Arc<Error> {
        match self.event() {
            Event::Error(err) => err,
            Event::Instances(set) => panic!("expected an error event, got {set:?}"),
        }
    }

    /// Waits for the next range, then the next watch: returns the range's revision
    /// and the watch's start revision.
    fn list_then_watch(&self) -> (i64, i64) {
        let Op::Range { revision } = self.etcd.next_op() else {
            panic!("expected a range")
        };
        let Op::Watch { start_revision } = self.etcd.next_op() else {
            panic!("expected a watch")
        };
        (revision, start_revision)
    }

    /// Waits for the next watch, past a list made before it: a retry may list again
    /// or not.
    fn retried_watch(&self) -> i64 {
        loop {
            match self.etcd.next_op() {
                Op::Range { .. } => continue,
                Op::Watch { start_revision } => return start_revision,
                other => panic!("expected a watch, got {other:?}"),
            }
        }
    }

    /// The next error event, past sets (a list may publish the set again).
    fn error_skipping_sets(&self) -> Arc<Error> {
        loop {
            if let Event::Error(err) = self.event() {
                return err;
            }
        }
    }

    /// The next set other than `skip`, past error events (a retry may list and publish
    /// the set again, and the error again).
    fn set_skipping(&self, skip: &[&str]) -> Vec<String> {
        loop {
            if let Event::Instances(set) = self.event() {
                let set: Vec<String> = set.iter().map(|i| i.addr().to_owned()).collect();
                if set != skip {
                    return set;
                }
            }
        }
    }

    /// Waits until the watch loop has armed its timer (a backoff), then checks that
    /// no call was made meanwhile.
    fn waiting(&self) {
        let until = Instant::now() + BOUND;
        while self.clock.pending_timers() == 0 {
            assert!(Instant::now() < until, "the watch never waited");
            std::thread::yield_now();
        }
        assert_eq!(self.etcd.ops_so_far(), [], "a call while waiting");
    }

    /// Checks, right after a move of the clock, that the loop's timer did not fire:
    /// still armed, and no call made (a timer that fired and was armed again made
    /// its calls first).
    fn still_waiting(&self, why: &str) {
        assert_eq!(self.clock.pending_timers(), 1, "{why}");
        assert_eq!(self.etcd.ops_so_far(), [], "{why}");
    }

    /// No event is waiting now. Call it after a sync point: a call the watch thread
    /// makes after publishing whatever it had to.
    fn quiet(&self) {
        if let Ok(event) = self.events.try_recv() {
            panic!("unexpected event {event:?}");
        }
    }
}

#[test]
fn the_first_list_is_published_then_each_change_as_a_complete_set() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
        etcd.put(&key("b"), "10.0.0.2:80");
        etcd.put("/svc/other/x", "10.9.9.9:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80"]);
    let (listed, start) = h.list_then_watch();
    assert_eq!(
        start,
        listed + 1,
        "the watch starts after the listed revision"
    );

    h.etcd.put(&key("c"), "10.0.0.3:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    h.etcd.delete(&key("a"));
    assert_eq!(h.set(), ["10.0.0.2:80", "10.0.0.3:80"]);
    h.etcd.put(&key("b"), "10.0.0.4:80"); // a key moves to another address
    assert_eq!(h.set(), ["10.0.0.3:80", "10.0.0.4:80"]);
    // Keys outside the prefix, and a put that changes nothing, publish nothing: the
    // next event is the next real change.
    h.etcd.put("/svc/other/y", "10.9.9.8:80");
    h.etcd.put(&key("c"), "10.0.0.3:80");
    h.etcd.put(&key("d"), "10.0.0.5:80");
    assert_eq!(h.set(), ["10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"]);
    assert_eq!(
        (h.etcd.count(Kind::Range), h.etcd.count(Kind::Watch)),
        (1, 1)
    );
}

#[test]
fn an_empty_prefix_publishes_an_empty_set() {
    let h = start(|_| {});
    assert_eq!(h.set(), Vec::<String>::new());
    h.list_then_watch();
    h.etcd.put(&key("a"), "10.0.0.1:80");
    assert_eq!(h.set(), ["10.0.0.1:80"]);
}

/// etcd's first message on a watch (`created`) carries the store's revision when the
/// watch was made, and the changes since the start revision come after it: a key put
/// between the list and the watch's start must still arrive, once.
#[test]
fn a_put_between_the_list_and_the_watch_is_published_once() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
        etcd.after_next_range(|etcd| {
            etcd.put(&key("b"), "10.0.0.2:80");
        });
    });
    assert_eq!(h.set(), ["10.0.0.1:80"], "the list, taken before the put");
    let (listed, start) = h.list_then_watch();
    assert_eq!(start, listed + 1);
    assert_eq!(
        h.set(),
        ["10.0.0.1:80", "10.0.0.2:80"],
        "the put, from the watch"
    );
    h.etcd.put(&key("c"), "10.0.0.3:80");
    assert_eq!(
        h.set(),
        ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
        "the next change, and nothing in between"
    );
}

#[test]
fn a_broken_stream_re_lists_without_missing_or_repeating_a_change() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
        etcd.put(&key("x"), "10.0.0.9:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.9:80"]);
    h.list_then_watch();

    // While the watch is cut off: y comes and goes, x goes. Then, between the new list
    // and the new watch, z comes.
    h.etcd.before_next_range(|etcd| {
        etcd.put(&key("y"), "10.0.0.7:80");
        etcd.delete(&key("y"));
        etcd.delete(&key("x"));
    });
    h.etcd.after_next_range(|etcd| {
        etcd.put(&key("z"), "10.0.0.3:80");
    });
    h.etcd
        .break_streams(Some(http_error(HttpErrorKind::Transport)));
    assert_eq!(h.set(), ["10.0.0.1:80"], "x deleted while cut off is gone");
    let (listed, start) = h.list_then_watch();
    assert_eq!(start, listed + 1, "no replay from before the new list");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.3:80"], "z, once");
    h.etcd.put(&key("w"), "10.0.0.4:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80"]);
    // y never showed up, and a stream that had delivered breaking is no error.
    assert_eq!(
        (h.etcd.count(Kind::Range), h.etcd.count(Kind::Watch)),
        (2, 2)
    );
}

#[test]
fn a_stream_the_server_ends_re_lists_without_an_error_event() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    for _ in 0..3 {
        h.list_then_watch();
        // Streams that worked a while (a second) before the server ended them.
        h.etcd.advance(Duration::from_secs(1));
        h.etcd.break_streams(None);
        // The re-list finds the same set: nothing to publish.
    }
    h.list_then_watch();
    h.quiet();
    h.etcd.put(&key("b"), "10.0.0.2:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80"]);
}

#[test]
fn a_compaction_leads_to_exactly_one_re_list() {
    let compacted_at = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let at = compacted_at.clone();
    let h = start(move |etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
        // Between the list and the watch: two puts, then a compaction past the
        // watch's start revision.
        etcd.after_next_range(move |etcd| {
            etcd.put(&key("b"), "10.0.0.2:80");
            let revision = etcd.put(&key("c"), "10.0.0.3:80");
            etcd.compact(revision);
            at.store(revision, std::sync::atomic::Ordering::SeqCst);
        });
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    let (listed, start) = h.list_then_watch();
    assert_eq!(start, listed + 1);
    let compacted = compacted_at.load(std::sync::atomic::Ordering::SeqCst);
    assert!(start < compacted);
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    let (relisted, restart) = h.list_then_watch();
    assert_eq!((relisted, restart), (compacted, compacted + 1));
    h.quiet(); // no error event
    h.etcd.put(&key("d"), "10.0.0.4:80");
    assert_eq!(
        h.set(),
        ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"]
    );
    assert_eq!(
        (h.etcd.count(Kind::Range), h.etcd.count(Kind::Watch)),
        (2, 2)
    );
}

#[test]
fn a_cancel_with_a_reason_is_an_error_retried_after_the_backoff_never_in_a_tight_loop() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    let denied = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
    h.etcd.plan(Plan::Cancel(denied.into()));
    h.etcd.cancel_streams(denied);
    let err = h.error();
    assert!(err.to_string().contains("permission denied"), "{err}");
    // Parked on the backoff (at least half of 1 s): no list, however long we look.
    h.waiting();
    h.clock.advance(Duration::from_millis(499));
    h.still_waiting("retried before the backoff");
    assert_eq!(h.etcd.count(Kind::Range), 1);
    h.clock.advance(Duration::from_millis(501));
    // The retry (a list, if it lists again, and a watch): cancelled again, and
    // parked on the backoff again (the same error twice is no news for subscribers:
    // the publisher may leave it out).
    h.retried_watch();
    h.waiting();
    assert_eq!(h.etcd.count(Kind::Watch), 2);
    assert!(h.etcd.count(Kind::Range) <= 2, "one list per retry at most");
    // The next retry succeeds and the watch follows the store again.
    h.clock.advance(Duration::from_secs(60));
    h.retried_watch();
    h.etcd.put(&key("b"), "10.0.0.2:80");
    assert_eq!(
        h.set_skipping(&["10.0.0.1:80"]),
        ["10.0.0.1:80", "10.0.0.2:80"]
    );
}

#[test]
fn a_watch_cancelled_again_and_again_backs_off_further_each_time() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    for _ in 0..3 {
        h.etcd
            .plan(Plan::Cancel("etcdserver: permission denied".into()));
    }
    h.etcd.cancel_streams("etcdserver: permission denied");
    h.error();
    h.waiting();
    h.clock.advance(Duration::from_secs(1)); // the first delay is at most 1 s
    h.retried_watch();
    h.waiting();
    h.clock.advance(Duration::from_secs(1));
    h.still_waiting(
        "the second retry came within 1 s: the backoff did not grow (the list between \
         two cancelled watches reset it)",
    );
}

/// A watch retried after a cancel reopens from the revision it had, without a list:
/// once it is created again, subscribers hear the set again, so the error does not
/// stand until the next change.
#[test]
fn a_watch_reopened_after_a_cancel_tells_the_set_again() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    h.etcd.cancel_streams("etcdserver: permission denied");
    h.error();
    h.waiting();
    h.clock.advance(Duration::from_secs(1)); // the first delay is at most 1 s
    h.retried_watch();
    assert_eq!(h.set(), ["10.0.0.1:80"], "the set again, after the error");
}

#[test]
fn two_breaks_in_a_row_with_nothing_delivered_are_an_error_with_backoff() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    // The open stream worked a while: its break re-lists. The
    // next stream fails before anything: a re-list again. The one after ends before
    // anything too: the second in a row, an error.
    h.etcd.plan(Plan::Fail(http_error(HttpErrorKind::Connect)));
    h.etcd.plan(Plan::End);
    h.etcd.advance(Duration::from_secs(1)); // the open stream worked a while
    h.etcd
        .break_streams(Some(http_error(HttpErrorKind::Transport)));
    h.list_then_watch();
    h.list_then_watch();
    let err = h.error();
    assert!(
        err.to_string().contains("ended twice in a row"),
        "{err}: names what happened"
    );
    h.waiting();
    assert_eq!(
        (h.etcd.count(Kind::Range), h.etcd.count(Kind::Watch)),
        (3, 3)
    );
    // After the backoff: a watch that works (a list first, or not).
    h.clock.advance(Duration::from_secs(1));
    h.retried_watch();
    h.etcd.put(&key("b"), "10.0.0.2:80");
    assert_eq!(
        h.set_skipping(&["10.0.0.1:80"]),
        ["10.0.0.1:80", "10.0.0.2:80"]
    );
}

/// Like a cancelled watch, streams that fail before they bring anything, again and
/// again, must be retried with a growing backoff: the second error's delay is drawn
/// from [1 s, 2 s] here, so moving the clock by 1 s must not fire it.
#[test]
fn streams_failing_before_anything_again_and_again_back_off_further_each_time() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    for _ in 0..4 {
        h.etcd.plan(Plan::Fail(fake::status_error(
            500,
            2,
            "etcdserver: request timed out",
        )));
    }
    h.etcd.advance(Duration::from_secs(1)); // the stream worked a while
    h.etcd.break_streams(None); // a re-list and a new watch, which fails
    h.list_then_watch();
    h.retried_watch(); // fails again: the second in a row, an error
    h.error_skipping_sets();
    h.waiting();
    h.clock.advance(Duration::from_secs(1)); // the first delay is at most 1 s
    h.retried_watch(); // fails: an error
    h.waiting();
    h.clock.advance(Duration::from_secs(1));
    h.still_waiting(
        "the second retry came within 1 s: the backoff did not grow (the list between \
         two failed watches reset it)",
    );
}

#[test]
fn a_second_failure_to_start_the_watch_is_the_error_the_event_carries() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    h.set();
    h.list_then_watch();
    h.etcd.plan(Plan::Fail(http_error(HttpErrorKind::Connect)));
    h.etcd.plan(Plan::Fail(fake::status_error(
        503,
        14,
        "etcdserver: no leader",
    )));
    h.etcd.advance(Duration::from_secs(1)); // the stream worked a while
    h.etcd.break_streams(None);
    h.list_then_watch();
    h.list_then_watch();
    let err = h.error();
    assert_eq!(err.status(), Some(503), "{err}");
}

/// A member that creates every watch and ends it at once (a proxy that cuts streams,
/// a member shutting down): the first such break re-lists, the second in a row is an
/// error event with backoff, not a list-and-watch loop at the minimum interval.
#[test]
fn streams_that_break_right_after_their_created_message_are_an_error_the_second_time() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    h.set();
    h.list_then_watch();
    h.etcd.plan(Plan::BreakAfterCreated(Some(http_error(
        HttpErrorKind::Transport,
    ))));
    h.etcd.plan(Plan::BreakAfterCreated(None));
    h.etcd.advance(Duration::from_secs(1)); // the first stream worked a while
    h.etcd.break_streams(None);
    h.list_then_watch(); // created, then cut at once: a re-list
    h.list_then_watch(); // created, then ended at once: the second in a row
    h.error_skipping_sets();
    h.waiting();
    assert_eq!(
        (h.etcd.count(Kind::Range), h.etcd.count(Kind::Watch)),
        (3, 3)
    );
}

#[test]
fn an_idle_stream_is_reopened_without_an_error_event() {
    let h = start_at(
        P,
        |etcd| {
            etcd.put(&key("a"), "10.0.0.1:80");
        },
        |b| b.reopen_after(Duration::from_secs(5)),
    );
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    // 4 s of silence: still the same stream, which then brings a change.
    h.etcd.advance(Duration::from_secs(4));
    h.etcd.put(&key("b"), "10.0.0.2:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(h.etcd.count(Kind::Watch), 1);
    // 5 s of silence since that change: a new list and a new stream.
    h.etcd.advance(Duration::from_secs(5));
    let (listed, start) = h.list_then_watch();
    assert_eq!(start, listed + 1);
    h.quiet(); // neither an error event nor the same set again
    h.etcd.put(&key("c"), "10.0.0.3:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
}

#[test]
fn a_failed_list_is_an_error_event_retried_after_the_backoff() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
        etcd.fail_next(Kind::Range, http_error(HttpErrorKind::Connect));
    });
    let err = h.error();
    assert!(err.is_transient(), "{err}");
    assert_eq!(h.etcd.next_op(), Op::Range { revision: 0 });
    h.waiting();
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.set(), ["10.0.0.1:80"]);
}

/// How many records the capturing logger holds at `warn!` that name `key`.
fn warnings_naming(key: &str) -> usize {
    logs::records()
        .iter()
        .filter(|(level, target, text)| {
            *level == log::Level::Warn && target == LOG && text.contains(key)
        })
        .count()
}

#[test]
fn a_bad_value_is_left_out_logged_once_and_the_other_instances_stay() {
    logs::capture();
    let prefix = "/svc/logged-once/";
    let bad = format!("{prefix}bad");
    let bad2 = bad.clone();
    let h = start_at(
        prefix,
        move |etcd| {
            etcd.put(&format!("{prefix}a"), "10.0.0.1:80");
            etcd.put(&bad2, "not an address");
        },
        |b| b.reopen_after(Duration::from_secs(5)),
    );
    assert_eq!(h.set(), ["10.0.0.1:80"]);
    h.list_then_watch();
    assert_eq!(warnings_naming(&bad), 1);
    // Two re-lists, after a break and after an idle stream: not logged again.
    h.etcd.break_streams(None);
    h.list_then_watch();
    h.etcd.advance(Duration::from_secs(5));
    h.list_then_watch();
    assert_eq!(warnings_naming(&bad), 1, "logged again at a re-list");
    // A new bad value is news; a good one brings the instance in.
    h.etcd.put(&bad, "{\"addr\":");
    h.etcd.put(&format!("{prefix}b"), "10.0.0.2:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(warnings_naming(&bad), 2);
    h.etcd.put(&bad, "10.0.0.3:80");
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
}

#[test]
fn a_put_from_a_good_value_to_a_bad_one_removes_the_instance() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
        etcd.put(&key("b"), "10.0.0.2:80");
    });
    assert_eq!(h.set(), ["10.0.0.1:80", "10.0.0.2:80"]);
    h.list_then_watch();
    h.etcd.put(&key("a"), "10.0.0.1:99999");
    assert_eq!(h.set(), ["10.0.0.2:80"]);
    h.etcd.put(&key("b"), "{\"Addr\":\"10.0.0.2\"}"); // no port, no default port
    assert_eq!(h.set(), Vec::<String>::new());
    h.etcd.put(&key("a"), "10.0.0.1:80");
    assert_eq!(h.set(), ["10.0.0.1:80"]);
}

#[test]
fn go_naming_values_and_the_default_port() {
    let setup = |etcd: &Etcd| {
        etcd.put(&key("go-1"), r#"{"Op":0,"Addr":"10.0.0.5"}"#);
        etcd.put(
            &key("go-2"),
            r#"{"Op":0,"Addr":"10.0.0.6:9000","Metadata":{"weight":3,"zone":"eu-1"}}"#,
        );
        etcd.put(&key("plain"), "[2001:db8::1]:443");
    };
    let h = start_at(P, setup, |b| b.default_port(8080));
    let set = match h.event() {
        Event::Instances(set) => set,
        other => panic!("{other:?}"),
    };
    let addrs: Vec<&str> = set.iter().map(Instance::addr).collect();
    assert_eq!(
        addrs,
        ["10.0.0.5:8080", "10.0.0.6:9000", "[2001:db8::1]:443"]
    );
    let meta = set[1].metadata().expect("metadata");
    assert_eq!((meta.weight(), meta.zone()), (Some(3), Some("eu-1")));

    // Without a default port, the address without one is left out.
    let h = start_at(P, setup, |b| b);
    assert_eq!(h.set(), ["10.0.0.6:9000", "[2001:db8::1]:443"]);
    // A Go program's later put, with the default port missing too.
    h.list_then_watch();
    h.etcd.put(
        &key("go-3"),
        r#"{"Op":0,"Addr":"10.0.0.7:7000","Metadata":null}"#,
    );
    assert_eq!(
        h.set(),
        ["10.0.0.6:9000", "10.0.0.7:7000", "[2001:db8::1]:443"]
    );
}

#[test]
fn stop_mid_stream_returns_promptly_and_joins_the_thread() {
    let h = start(|etcd| {
        etcd.put(&key("a"), "10.0.0.1:80");
    });
    h.set();
    h.list_then_watch();
    assert_eq!(h.etcd.open_watches(), 1);
    let started = Instant::now();
    h.instancer.stop();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "stop() took {took:?}");
    assert!(h.instancer.worker.lock().is_none(), "the worker is gone");
    assert_eq!(h.etcd.open_watches(), 0, "the watch call returned");
    h.quiet(); // a stop is not an error event
    // Only the instancer's fork was shut down.
    assert!(h.client.range_prefix(P.as_bytes()).is_ok());
    h.instancer.stop(); // idempotent
    drop(h.instancer); // and drop after stop is fine
}

#[test]
fn drop_stops_the_watch() {
    let h = start(|_| {});
    h.set();
    h.list_then_watch();
    drop(h.instancer);
    assert_eq!(h.etcd.open_watches(), 0);
}

#[test]
fn invalid_settings_are_refused() {
    let clock = ManualClock::new();
    let (client, _etcd) = fake::fake(&clock);
    let b = || Instancer::builder(&client, P);
    for (builder, field) in [
        (Instancer::builder(&client, ""), "prefix"),
        (b().reopen_after(Duration::from_millis(999)), "reopen_after"),
        (b().reopen_after(Duration::ZERO), "reopen_after"),
        (b().reopen_after(Duration::from_secs(3601)), "reopen_after"),
        (b().reopen_after(Duration::MAX), "reopen_after"),
        (b().min_interval(Duration::from_secs(3601)), "min_interval"),
        (
            b().backoff(Duration::from_secs(2), Duration::from_secs(1)),
            "backoff",
        ),
    ] {
        match builder.build() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // The bounds themselves are accepted.
    for builder in [
        b().reopen_after(Duration::from_secs(1)),
        b().reopen_after(Duration::from_secs(3600)),
        b().backoff(Duration::ZERO, Duration::ZERO),
    ] {
        builder
            .first_fetch_timeout(Duration::ZERO)
            .build()
            .unwrap()
            .stop();
    }
}
