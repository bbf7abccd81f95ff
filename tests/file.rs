//! The file backend against real files in a temporary directory: a real watch thread on
//! a manual clock. A test moves the clock one poll interval at a time and waits (with a
//! bound) until the watch has done that poll, so what a poll published, and that it
//! published nothing, is known without sleeping.

mod support;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::events::{addr_endpointer, addrs, describe, endpoints, subscribe};
use support::scratch::Scratch;
use support::{BOUND, stop_promptly, threads_named, wait_until};
use support::{counting_threads as exclusive, starting_threads as shared};
use waypost::crossbeam_channel::{Receiver, bounded};
use waypost::file::{FileInstancer, FileInstancerBuilder};
use waypost::{Clock, Error, Event, Instancer, ManualClock};

/// The poll interval on the manual clock.
const POLL: Duration = Duration::from_secs(1);

/// An instancer polling on a manual clock, and a subscriber.
struct Watched {
    instancer: Arc<FileInstancer>,
    events: Receiver<Event>,
    clock: ManualClock,
}

/// Watches the scratch file, with `configure` applied to the builder.
fn watch_with(
    scratch: &Scratch,
    configure: impl FnOnce(FileInstancerBuilder) -> FileInstancerBuilder,
) -> Watched {
    let clock = ManualClock::new();
    let builder = FileInstancer::builder(&scratch.file)
        .poll_interval(POLL)
        .clock(clock.clone());
    let instancer = Arc::new(configure(builder).build().unwrap());
    let events = subscribe(&*instancer);
    let watched = Watched {
        instancer,
        events,
        clock,
    };
    watched.idle();
    watched
}

fn watch(scratch: &Scratch) -> Watched {
    watch_with(scratch, |builder| builder)
}

/// A scratch file holding `text`, watched, one poll on: its set is published.
fn watching(text: &str) -> (Scratch, Watched) {
    let scratch = Scratch::new();
    scratch.replace(text);
    let w = watch(&scratch);
    w.poll();
    (scratch, w)
}

impl Watched {
    /// Waits until the watch is done with its poll and waits for the next one.
    fn idle(&self) {
        wait_until("the watch to wait for its next poll", || {
            self.clock.pending_timers() > 0
        });
    }

    /// Lets one poll interval pass, and waits until that poll is done.
    fn poll(&self) {
        self.idle();
        self.clock.advance(POLL);
        self.idle();
    }

    /// Two polls: a change's first read, and the read that confirms it.
    fn poll_twice(&self) {
        self.poll();
        self.poll();
    }

    /// What the polls so far published, in order: each set as its addresses joined by
    /// spaces, each error as `error: ` and its message.
    fn published(&self) -> Vec<String> {
        self.events
            .try_iter()
            .map(|event| describe(&event))
            .collect()
    }

    /// The one error published since the last look.
    fn error(&self) -> Arc<Error> {
        let mut events: Vec<Event> = self.events.try_iter().collect();
        match events.pop() {
            Some(Event::Error(err)) if events.is_empty() => err,
            other => panic!("expected one error, got {events:?} then {other:?}"),
        }
    }
}

/// The I/O error under an `Error::File` for `path`.
fn file_error<'a>(err: &'a Error, path: &std::path::Path) -> &'a std::io::Error {
    match err {
        Error::File { path: at, source } => {
            assert_eq!(&**at, path);
            source
        }
        other => panic!("expected Error::File, got {other:?}"),
    }
}

#[test]
fn build_returns_after_the_first_read_and_the_set_follows_one_interval_later() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("# api\n10.0.0.2:80 weight=3\n10.0.0.1:80 zone=a tag=x\n10.0.0.2:80\n");
    let w = watch(&scratch);
    assert_eq!(
        w.published(),
        [] as [String; 0],
        "read once, not yet confirmed"
    );
    w.poll();
    let event = w.events.try_recv().expect("the second read agreed");
    assert_eq!(addrs(&event), ["10.0.0.1:80", "10.0.0.2:80"]);
    let Event::Instances(set) = event else {
        unreachable!("addrs() took it for a set")
    };
    assert_eq!(
        set[1].metadata().unwrap().weight(),
        Some(3),
        "first line wins"
    );
    assert!(set[0].metadata().unwrap().has_tag("x"));
    assert!(format!("{:?}", w.instancer).contains("instances.txt"));
}

#[test]
fn an_atomic_rename_is_published_once_the_next_read_agrees() {
    let _guard = shared();
    let (scratch, w) = watching("a:1\n");
    assert_eq!(w.published(), ["a:1"]);
    scratch.replace("a:1\nb:2\n");
    w.poll();
    assert_eq!(w.published(), [] as [String; 0], "a new inode waits too");
    w.poll();
    assert_eq!(w.published(), ["a:1 b:2"]);
    scratch.replace("c:3\n");
    w.poll_twice();
    assert_eq!(w.published(), ["c:3"]);
}

#[test]
fn a_half_written_file_is_never_published() {
    let _guard = shared();
    let (scratch, w) = watching("10.0.0.1:8080\n");
    assert_eq!(w.published(), ["10.0.0.1:8080"]);
    // Same inode, caught mid-write: the cut last line reads as another port.
    scratch.write_in_place("10.0.0.1:8080\n10.0.0.2:80");
    w.poll();
    scratch.write_in_place("10.0.0.1:8080\n10.0.0.2:8080\n");
    w.poll();
    assert_eq!(w.published(), [] as [String; 0], "nothing while it changes");
    w.poll();
    assert_eq!(w.published(), ["10.0.0.1:8080 10.0.0.2:8080"]);
    w.poll();
    assert_eq!(w.published(), [] as [String; 0]);
}

#[test]
fn a_bad_line_is_an_error_event_until_fixed() {
    let _guard = shared();
    let (scratch, w) = watching("a:1\n");
    assert_eq!(w.published(), ["a:1"]);

    scratch.replace("a:1\n# fine so far\nb:2 weight=lots\n");
    w.poll_twice();
    match &*w.error() {
        Error::InvalidInstance(d) => {
            assert_eq!(d.line, Some(3));
            assert_eq!(d.path.as_deref(), Some(scratch.file.as_path()));
        }
        other => panic!("expected InvalidInstance, got {other:?}"),
    }
    w.poll();
    assert_eq!(w.published(), [] as [String; 0], "told once");

    scratch.replace("a:1\nb:2 weight=2\n");
    w.poll_twice();
    assert_eq!(w.published(), ["a:1 b:2"]);
}

#[test]
fn an_address_the_parser_refuses_is_an_error_event_naming_its_line() {
    let _guard = shared();
    let (scratch, w) = watching("a:80\n");
    assert_eq!(w.published(), ["a:80"]);

    // Each line is another spelling of an address the parser refuses; the whole file
    // is refused and the set stays, until the line is fixed.
    for (bad, why) in [
        ("a:0080", "leading zeros"),
        ("a:+80", "ASCII digits"),
        ("[10.0.0.1]:80", "only IPv6"),
        ("10.0.0.1\0:80", "'\\0'"),
    ] {
        scratch.replace(&format!("# header\nb:80\n{bad} weight=2\n"));
        w.poll_twice();
        let err = w.error();
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
        w.poll_twice();
        assert_eq!(w.published(), ["a:80"]);
    }
}

#[test]
fn a_file_missing_at_start_is_the_state_when_build_returns_then_recovers() {
    let _guard = shared();
    let scratch = Scratch::new();
    let w = watch(&scratch);
    let err = w.error();
    let source = file_error(&err, &scratch.file);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
    scratch.replace("a:1\n");
    w.poll();
    assert_eq!(w.published(), [] as [String; 0]);
    w.poll();
    assert_eq!(w.published(), ["a:1"]);
}

#[test]
fn a_deleted_file_is_an_error_then_recovers() {
    let _guard = shared();
    let (scratch, w) = watching("a:1\n");
    assert_eq!(w.published(), ["a:1"]);
    fs::remove_file(&scratch.file).unwrap();
    w.poll();
    let err = w.error();
    assert_eq!(
        file_error(&err, &scratch.file).kind(),
        std::io::ErrorKind::NotFound
    );
    scratch.replace("a:1\n");
    w.poll_twice();
    assert_eq!(
        w.published(),
        ["a:1"],
        "the same set again, after the error"
    );
}

#[test]
fn a_missing_file_warns_once_not_once_per_poll() {
    let _guard = shared();
    support::logs::capture();
    let scratch = Scratch::new();
    let w = watch(&scratch);
    for _ in 0..3 {
        w.poll();
    }
    let path = scratch.file.display().to_string();
    let logged = |level| {
        support::logs::records()
            .iter()
            .filter(|(l, target, text)| {
                *l == level && target == "waypost::file" && text.contains(&path)
            })
            .map(|(_, _, text)| text.clone())
            .collect::<Vec<_>>()
    };
    let warnings = logged(log::Level::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("No such file"),
        "with its cause: {warnings:?}"
    );
    assert_eq!(logged(log::Level::Debug).len(), 3, "the repeats");
    assert_eq!(w.published().len(), 1, "one error event too");
}

#[test]
fn identical_content_renamed_in_publishes_nothing() {
    let _guard = shared();
    let (scratch, w) = watching("a:1\nb:2\n");
    assert_eq!(w.published(), ["a:1 b:2"]);
    scratch.replace("b:2\na:1\n");
    for _ in 0..3 {
        w.poll();
    }
    assert_eq!(
        w.published(),
        [] as [String; 0],
        "the same set is not sent again"
    );
    scratch.replace("a:1\n");
    w.poll_twice();
    assert_eq!(w.published(), ["a:1"]);
}

#[test]
fn a_file_over_max_file_size_is_an_error_event_until_it_shrinks() {
    let _guard = shared();
    let scratch = Scratch::new();
    scratch.replace("10.0.0.1:80\n"); // 12 bytes
    let w = watch_with(&scratch, |b| b.max_file_size(12));
    w.poll();
    assert_eq!(w.published(), ["10.0.0.1:80"]);
    scratch.replace("10.0.0.1:80\n#");
    w.poll();
    let err = w.error();
    let source = file_error(&err, &scratch.file);
    assert_eq!(source.kind(), std::io::ErrorKind::FileTooLarge);
    assert!(
        source.to_string().contains("max_file_size (12 bytes)"),
        "{source}"
    );
    scratch.replace("10.0.0.2:80\n");
    w.poll_twice();
    assert_eq!(w.published(), ["10.0.0.2:80"]);
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    let _guard = shared();
    let (_scratch, w) = watching("\u{feff}10.0.0.1:80\r\n10.0.0.2:80\r\n");
    assert_eq!(w.published(), ["10.0.0.1:80 10.0.0.2:80"]);
}

#[test]
fn bad_options_are_refused() {
    let scratch = Scratch::new();
    let field = |builder: FileInstancerBuilder| match builder.build() {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let builder = || FileInstancer::builder(&scratch.file);
    assert_eq!(
        field(builder().poll_interval(Duration::ZERO)),
        "poll_interval"
    );
    assert_eq!(
        field(builder().poll_interval(Duration::MAX)),
        "poll_interval"
    );
    assert_eq!(field(builder().max_file_size(0)), "max_file_size");
}

#[test]
fn instancer_is_shareable() {
    fn check<T: Instancer + Send + Sync + std::fmt::Debug + 'static>() {}
    check::<FileInstancer>();
}

/// Paths that are not regular files: each is an error event that says what it is, and
/// neither the constructor nor the stop waits for it.
#[cfg(unix)]
mod not_regular {
    use super::*;

    /// Builds an instancer for `path` with the defaults (the system clock, a 1 s poll),
    /// takes its state and stops it, on a thread of its own so that a hang fails the
    /// test instead of stalling it. Returns the error the state must be.
    fn build_and_stop(path: &std::path::Path) -> Arc<Error> {
        let (done_tx, done) = bounded(1);
        let path = path.to_owned();
        std::thread::spawn(move || {
            let started = Instant::now();
            let instancer = FileInstancer::new(&path).unwrap();
            let built = started.elapsed();
            let state = subscribe(&instancer).try_recv();
            let started = Instant::now();
            instancer.stop();
            done_tx.send((built, state, started.elapsed())).unwrap();
        });
        let (built, state, stopped) = done.recv_timeout(BOUND).expect("new() and stop() returned");
        // new() waits up to 1 s for the first read: it returned before, with the read
        // done and its error published.
        assert!(built < Duration::from_secs(1), "new() took {built:?}");
        assert!(stopped < Duration::from_secs(1), "stop() took {stopped:?}");
        match state {
            Ok(Event::Error(err)) => err,
            other => panic!("expected an error state, got {other:?}"),
        }
    }

    fn assert_refused(err: &Error, path: &std::path::Path, what: &str) {
        let source = file_error(err, path);
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput);
        let message = source.to_string();
        assert!(
            message.contains(&format!("not a regular file but {what}")),
            "{message}"
        );
    }

    #[test]
    fn a_fifo_blocks_neither_new_nor_stop() {
        let _guard = shared();
        let scratch = Scratch::new();
        let made = std::process::Command::new("mkfifo")
            .arg(&scratch.file)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let err = build_and_stop(&scratch.file);
        assert_refused(&err, &scratch.file, "a FIFO");
    }

    #[test]
    fn a_symlink_to_dev_zero_is_refused_without_reading() {
        let _guard = shared();
        let scratch = Scratch::new();
        std::os::unix::fs::symlink("/dev/zero", &scratch.file).unwrap();
        let err = build_and_stop(&scratch.file);
        assert_refused(&err, &scratch.file, "a character device");
    }
}

#[cfg(target_os = "linux")]
mod threads {
    use super::*;

    const THREAD: &str = "waypost-file-watch";

    #[test]
    fn stop_is_prompt_and_joins_the_thread() {
        let _guard = exclusive();
        let scratch = Scratch::new();
        scratch.replace("a:1\n");
        assert_eq!(threads_named(THREAD), 0);
        let w = watch(&scratch);
        w.poll();
        wait_until("the watch thread to name itself", || {
            threads_named(THREAD) == 1
        });

        stop_promptly(&*w.instancer);
        support::wait_threads(THREAD, 0, "joined");
        w.instancer.stop(); // idempotent

        // Stopped: subscribing still gets the last state, and no more.
        let rx = subscribe(&*w.instancer);
        assert!(matches!(rx.try_recv(), Ok(Event::Instances(_))));
    }

    #[test]
    fn drop_joins_the_thread() {
        let _guard = exclusive();
        let scratch = Scratch::new();
        assert_eq!(threads_named(THREAD), 0);
        let w = watch(&scratch);
        wait_until("the watch thread to name itself", || {
            threads_named(THREAD) == 1
        });
        let started = Instant::now();
        drop(w);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(threads_named(THREAD), 0);
    }
}

#[test]
fn an_endpointer_made_after_a_typo_starts_from_the_last_good_set() {
    let _guard = shared();
    let (scratch, w) = watching("a:1\nb:2\n");
    assert_eq!(w.published(), ["a:1 b:2"]);
    scratch.replace("a:1\nb:2 weight=lots\n");
    w.poll_twice();
    w.error();
    // Made during the outage, it starts where the others are: the last good set.
    let endpointer = addr_endpointer(w.instancer.clone());
    endpointer.wait_ready(BOUND).unwrap();
    assert_eq!(endpoints(&endpointer), ["a:1", "b:2"]);
    assert!(
        endpointer.status().last_error.is_some(),
        "and knows it may be stale"
    );

    // Fixed, then left alone: each unchanged poll confirms the set for status().
    scratch.replace("a:1\nb:2\n");
    w.poll_twice();
    assert_eq!(endpointer.status().last_confirmed, Some(w.clock.now()));
    assert!(endpointer.status().last_error.is_none());
    w.poll();
    assert_eq!(
        endpointer.status().last_confirmed,
        Some(w.clock.now()),
        "confirmed again, not published"
    );
    assert_eq!(w.published(), ["a:1 b:2"]);
}
