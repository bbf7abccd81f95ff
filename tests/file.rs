//! The file backend against real files in a temporary directory: a real watch thread,
//! waited for on the subscriber channel with `recv_timeout` as an upper bound only.

use std::fs;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use waypost::crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use waypost::file::{FileInstancer, FileInstancerBuilder};
use waypost::{Error, Event, Instancer};

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

/// Short enough to keep the tests fast, long enough not to spin.
const POLL: Duration = Duration::from_millis(10);
/// An upper bound for an event that should come within a few polls.
const PATIENCE: Duration = Duration::from_secs(5);

/// Tests that count watch threads hold this exclusively; every other test that starts an
/// instancer holds it shared, for as long as its instancer lives.
static THREADS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    THREADS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    THREADS.write().unwrap_or_else(|e| e.into_inner())
}

/// The file backend's ways into a [`Scratch`] directory.
trait Watch {
    fn builder(&self) -> FileInstancerBuilder;
    /// An instancer with a short poll interval, and a subscriber.
    fn watch(&self) -> (FileInstancer, Receiver<Event>);
}

impl Watch for Scratch {
    fn builder(&self) -> FileInstancerBuilder {
        FileInstancer::builder(&self.file).poll_interval(POLL)
    }

    fn watch(&self) -> (FileInstancer, Receiver<Event>) {
        let instancer = self.builder().build().unwrap();
        let (tx, rx) = unbounded();
        instancer.subscribe(tx);
        (instancer, rx)
    }
}

fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}"))
}

/// The next event, which must be a set: its addresses.
fn next_set(rx: &Receiver<Event>) -> Vec<String> {
    match next(rx) {
        Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
        Event::Error(err) => panic!("expected a set, got error: {err}"),
    }
}

/// The next event, which must be an error.
fn next_error(rx: &Receiver<Event>) -> std::sync::Arc<Error> {
    match next(rx) {
        Event::Error(err) => err,
        Event::Instances(set) => panic!("expected an error, got {set:?}"),
    }
}

fn assert_not_found(err: &Error) {
    match err {
        Error::File { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}")
        }
        other => panic!("expected Error::File, got {other:?}"),
    }
}

#[test]
fn the_full_set_is_there_on_register() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("# api\n10.0.0.2:80 weight=3\n10.0.0.1:80 zone=a tag=x\n10.0.0.2:80\n");
    let instancer = FileInstancer::new(&scratch.file).unwrap();
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    // Sent inside register(), before any poll: the constructor read the file.
    match rx.try_recv().expect("the state is sent at once") {
        Event::Instances(set) => {
            let addrs: Vec<_> = set.iter().map(|i| i.addr()).collect();
            assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80"]);
            assert_eq!(
                set[1].metadata().unwrap().weight(),
                Some(3),
                "first line wins"
            );
            assert!(set[0].metadata().unwrap().has_tag("x"));
        }
        Event::Error(err) => panic!("{err}"),
    }
    assert!(format!("{instancer:?}").contains("instances.txt"));
}

#[test]
fn an_atomic_rename_publishes_the_new_set() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:1\n");
    let (_instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:1"]);
    scratch.replace("a:1\nb:2\n");
    assert_eq!(next_set(&rx), ["a:1", "b:2"]);
    scratch.replace("c:3\n");
    assert_eq!(next_set(&rx), ["c:3"]);
}

#[test]
fn a_bad_line_is_an_error_event_until_fixed() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:1\n");
    let (_instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:1"]);

    scratch.replace("a:1\n# fine so far\nb:2 weight=lots\n");
    let err = next_error(&rx);
    match &*err {
        Error::InvalidInstance(d) => {
            assert_eq!(d.line, Some(3));
            assert_eq!(d.path.as_deref(), Some(scratch.file.as_path()));
        }
        other => panic!("expected InvalidInstance, got {other:?}"),
    }

    scratch.replace("a:1\nb:2 weight=2\n");
    assert_eq!(next_set(&rx), ["a:1", "b:2"]);
}

#[test]
fn an_address_the_parser_refuses_is_an_error_event_naming_its_line() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:80\n");
    let (_instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:80"]);

    // Each line is another spelling of an address the parser refuses; the whole file
    // is refused and the set stays, until the line is fixed.
    for (bad, why) in [
        ("a:0080", "leading zeros"),
        ("a:+80", "ASCII digits"),
        ("[10.0.0.1]:80", "only IPv6"),
        ("10.0.0.1\0:80", "'\\0'"),
    ] {
        scratch.replace(&format!("# header\nb:80\n{bad} weight=2\n"));
        let err = next_error(&rx);
        match &*err {
            Error::InvalidInstance(d) => {
                assert_eq!(d.line, Some(3), "{bad}");
                assert_eq!(&*d.input, bad);
                assert!(d.reason.contains(why), "{bad}: {}", d.reason);
                assert_eq!(d.path.as_deref(), Some(scratch.file.as_path()));
                assert!(err.to_string().contains("line 3"), "{err}");
            }
            other => panic!("expected InvalidInstance, got {other:?}"),
        }
        scratch.replace("a:80\n");
        assert_eq!(next_set(&rx), ["a:80"]);
    }
}

#[test]
fn a_file_missing_at_start_is_an_error_then_recovers() {
    let _guard = shared();
    let scratch = Scratch::new();
    let (_instancer, rx) = scratch.watch();
    assert_not_found(&next_error(&rx));
    // Created by rename: created in place, a poll could see it still empty, and a file
    // that reappears is published at once.
    scratch.replace("a:1\n");
    assert_eq!(next_set(&rx), ["a:1"]);
}

#[test]
fn a_deleted_file_is_an_error_then_recovers() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:1\n");
    let (_instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:1"]);
    fs::remove_file(&scratch.file).unwrap();
    assert_not_found(&next_error(&rx));
    scratch.replace("a:1\n");
    assert_eq!(
        next_set(&rx),
        ["a:1"],
        "the same set again, after the error"
    );
}

#[test]
fn an_in_place_write_is_published_once_confirmed() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:1\n");
    let (_instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:1"]);
    // Same inode: truncated, then written. A poll in between sees an empty file, which
    // must not be published; the complete file is, after a second identical read.
    fs::write(&scratch.file, "a:1\nb:2\nc:3\n").unwrap();
    assert_eq!(next_set(&rx), ["a:1", "b:2", "c:3"]);
    assert!(rx.try_recv().is_err());
}

#[test]
fn identical_content_renamed_in_publishes_nothing() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:1\nb:2\n");
    let (_instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:1", "b:2"]);
    scratch.replace("b:2\na:1\n");
    // Many polls' worth of quiet (the in-crate unit test checks the same step by step).
    assert_eq!(
        rx.recv_timeout(POLL * 10).err(),
        Some(RecvTimeoutError::Timeout),
        "the same set must not be sent again"
    );
    scratch.replace("a:1\n");
    assert_eq!(next_set(&rx), ["a:1"]);
}

#[test]
fn a_zero_poll_interval_is_refused() {
    let scratch = Scratch::new();
    let err = FileInstancer::builder(&scratch.file)
        .poll_interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "poll_interval",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn instancer_is_shareable() {
    fn check<T: Instancer + Send + Sync + std::fmt::Debug + 'static>() {}
    check::<FileInstancer>();
}

#[cfg(target_os = "linux")]
mod threads {
    use super::*;

    /// Threads of this process named `waypost-file-watch` (`comm` keeps 15 bytes).
    fn watch_threads() -> usize {
        fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == "waypost-file-wa")
            .count()
    }

    /// Waits, up to a bound, for the count to reach `want`: a thread names itself just
    /// after it starts, and leaves `/proc` just after a join returns.
    fn assert_watch_threads(want: usize) {
        let deadline = Instant::now() + PATIENCE;
        while watch_threads() != want {
            assert!(
                Instant::now() < deadline,
                "{} watch threads, expected {want}",
                watch_threads()
            );
            std::thread::yield_now();
        }
    }

    /// Long enough that a stop which waited for the next poll would be caught.
    const SLOW: Duration = Duration::from_secs(60);

    #[test]
    fn stop_is_prompt_and_joins_the_thread() {
        let _guard = exclusive();
        let scratch = Scratch::new();
        scratch.replace("a:1\n");
        assert_watch_threads(0);
        let instancer = scratch.builder().poll_interval(SLOW).build().unwrap();
        assert_watch_threads(1);

        let started = Instant::now();
        instancer.stop();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_watch_threads(0);
        instancer.stop(); // idempotent

        // Stopped: registering still gets the last state, and no more.
        let (tx, rx) = unbounded();
        instancer.subscribe(tx);
        assert!(matches!(rx.try_recv(), Ok(Event::Instances(_))));
    }

    #[test]
    fn drop_joins_the_thread() {
        let _guard = exclusive();
        let scratch = Scratch::new();
        assert_watch_threads(0);
        let instancer = scratch.builder().poll_interval(SLOW).build().unwrap();
        assert_watch_threads(1);
        let started = Instant::now();
        drop(instancer);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_watch_threads(0);
    }
}

#[test]
fn an_endpointer_made_after_a_typo_starts_from_the_last_good_set() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("a:1\nb:2\n");
    let (instancer, rx) = scratch.watch();
    assert_eq!(next_set(&rx), ["a:1", "b:2"]);
    scratch.replace("a:1\nb:2 weight=lots\n");
    next_error(&rx);
    // Made during the outage, it starts where the others are: the last good set.
    let endpointer =
        waypost::DefaultEndpointer::new(std::sync::Arc::new(instancer), |i: &waypost::Instance| {
            Ok(i.addr().to_owned())
        })
        .unwrap();
    endpointer.wait_ready(PATIENCE).unwrap();
    let endpoints = waypost::Endpointer::endpoints(&endpointer).unwrap();
    assert_eq!(&endpoints[..], ["a:1", "b:2"]);
    assert!(
        endpointer.status().last_error.is_some(),
        "and knows it may be stale"
    );
}
