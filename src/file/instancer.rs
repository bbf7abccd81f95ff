//! `FileInstancer`: a watch thread that polls one instance file.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::parse;
use crate::internal::backoff::Backoff;
use crate::internal::publisher::Publisher;
use crate::internal::worker::{Progress, StopSignal, Supervision, Worker};
use crate::{Error, Result};

const LOG: &str = "waypost::file";
const THREAD_NAME: &str = "waypost-file-watch";

/// Watches a file of instances, one per line, and publishes its content as the instance
/// set; see the [module docs](crate::file) for the format and how changes are detected.
///
/// # Threads
/// The constructor reads the file once on the caller's thread, so the instancer has a
/// state at once (a set, or an error event), then starts one thread,
/// `waypost-file-watch`, that polls the file every
/// [`poll_interval`](FileInstancerBuilder::poll_interval).
/// [`stop`](Self::stop) and drop end that thread and join it; a stop cuts the wait
/// between polls short, so it returns within milliseconds. Share the instancer between
/// threads by reference or in an `Arc`; it is not `Clone`.
///
/// A panic in the watch thread (a bug) is an [`Error::Panicked`] event and an `error!`
/// line; the watch starts again within one poll interval and reads the file afresh. A
/// third panic with no completed poll in between ends the thread, with a final error
/// event that says so.
#[must_use = "dropping an instancer stops its watch"]
pub struct FileInstancer {
    path: Arc<Path>,
    poll_interval: Duration,
    publisher: Arc<Publisher>,
    worker: Mutex<Worker>,
}

/// Configures a [`FileInstancer`]; made by [`FileInstancer::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct FileInstancerBuilder {
    path: PathBuf,
    poll_interval: Duration,
}

impl FileInstancer {
    /// Watches `path` with the default options (a poll every second).
    ///
    /// A missing or invalid file is not an error here: the instancer starts with an
    /// error event and recovers when the file is fixed. The only error is failing to
    /// start the watch thread ([`Error::Io`]).
    pub fn new(path: impl Into<PathBuf>) -> Result<FileInstancer> {
        FileInstancer::builder(path).build()
    }

    /// Starts configuring an instancer for `path`.
    pub fn builder(path: impl Into<PathBuf>) -> FileInstancerBuilder {
        FileInstancerBuilder {
            path: path.into(),
            poll_interval: Duration::from_secs(1),
        }
    }

    /// The watched path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl FileInstancerBuilder {
    /// How often the watch thread looks at the file's metadata (default: 1 s).
    ///
    /// - `Duration::ZERO` is refused by [`build`](Self::build) with
    ///   [`Error::InvalidConfig`] (`poll_interval`): it would poll in a busy loop.
    /// - `Duration::MAX` (or anything from about 100 years up) means "never poll": the
    ///   file is read once, by `build`, and the thread only waits for a stop.
    ///
    /// A poll is one `stat` call; the file is read only when it changed. A change made
    /// by atomic rename is published within one interval; one made in place within two
    /// or more (see the [module docs](crate::file#watch-mechanism)). Shorter intervals
    /// notice changes sooner for a few more system calls.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Reads the file once, then starts the watch thread.
    ///
    /// Fails with [`Error::InvalidConfig`] for a zero poll interval and with
    /// [`Error::Io`] if the thread cannot be started; a missing or invalid file becomes
    /// an error event instead.
    pub fn build(self) -> Result<FileInstancer> {
        if self.poll_interval.is_zero() {
            return Err(Error::invalid_config(
                "poll_interval",
                "must be greater than zero",
            ));
        }
        let path: Arc<Path> = Arc::from(self.path);
        let publisher = Arc::new(Publisher::new());
        let mut watcher = Watcher::new(path.clone(), publisher.clone());
        watcher.poll();
        let interval = self.poll_interval;
        let supervision = Supervision {
            component: "file watch",
            log_target: LOG,
            restart: Backoff::new(interval, interval),
            clock: Arc::new(crate::SystemClock),
        };
        let reporter = publisher.clone();
        let mut restarted = false;
        let worker = Worker::spawn_supervised(
            THREAD_NAME,
            supervision,
            || {},
            move |stop, progress| {
                if std::mem::replace(&mut restarted, true) {
                    watcher.forget(); // a panic may have left it half updated
                }
                watcher.run(stop, interval, progress);
            },
            move |err| reporter.publish_error(err),
        )?;
        Ok(FileInstancer {
            path,
            poll_interval: interval,
            publisher,
            worker: Mutex::new(worker),
        })
    }
}

crate::internal::publisher::instancer_methods!(FileInstancer, |self| {
    self.worker.lock().stop();
});

impl Drop for FileInstancer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for FileInstancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileInstancer")
            .field("path", &self.path)
            .field("poll_interval", &self.poll_interval)
            .field("running", &self.worker.lock().is_running())
            .finish()
    }
}

/// What one look at the file's metadata tells: which file the path names and whether
/// its content may have changed since.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    /// (device, inode) on Unix: a new one means the path was replaced by another file.
    /// None elsewhere, where every change is treated as made in place.
    id: Option<(u64, u64)>,
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            Some((meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let id = None;
        Stamp {
            id,
            modified: meta.modified().ok(),
            len: meta.len(),
        }
    }
}

/// The watch thread's state. Also used once on the caller's thread for the first read.
struct Watcher {
    path: Arc<Path>,
    publisher: Arc<Publisher>,
    /// The file last read; None before the first read and after an I/O error, so that
    /// the next file found at the path is published at once, whatever its inode.
    seen: Option<Stamp>,
    /// Content of a file changed in place, read on the last poll and not yet published:
    /// it is published once a poll reads the same bytes again.
    pending: Option<Vec<u8>>,
    /// The kind of the I/O error last reported, to warn once per outage, not per poll.
    failing: Option<io::ErrorKind>,
}

impl Watcher {
    fn new(path: Arc<Path>, publisher: Arc<Publisher>) -> Watcher {
        Watcher {
            path,
            publisher,
            seen: None,
            pending: None,
            failing: None,
        }
    }

    /// Polls every `interval` until stopped; each completed poll is progress.
    fn run(&mut self, stop: &StopSignal, interval: Duration, progress: &Progress) {
        log::debug!(target: LOG, "watching {} every {interval:?}", self.path.display());
        while !stop.wait(interval) {
            self.poll();
            progress.made();
        }
        log::debug!(target: LOG, "stopped watching {}", self.path.display());
    }

    /// Forgets the file read last, so the next poll reads and publishes it at once.
    fn forget(&mut self) {
        self.seen = None;
        self.pending = None;
        self.failing = None;
    }

    /// One look at the file: a `stat`, and a read if it changed or a change is pending.
    fn poll(&mut self) {
        let stamp = match fs::metadata(&self.path) {
            Ok(meta) => Stamp::of(&meta),
            Err(err) => return self.fail(err),
        };
        if self.pending.is_none() && self.seen.as_ref() == Some(&stamp) {
            return;
        }
        // The stamp that counts is the one of the file actually opened: the path may
        // have been replaced between the `stat` above and the open.
        let (stamp, bytes) = match self.read() {
            Ok(read) => read,
            Err(err) => return self.fail(err),
        };
        self.failing = None;
        let replaced = self.seen.as_ref().is_none_or(|seen| seen.id != stamp.id);
        self.seen = Some(stamp);
        if replaced || self.pending.as_deref() == Some(&bytes[..]) {
            self.pending = None;
            self.publish(&bytes);
        } else {
            log::debug!(
                target: LOG,
                "{} changed in place; publishing once it reads the same on the next poll",
                self.path.display()
            );
            self.pending = Some(bytes);
        }
    }

    fn read(&self) -> io::Result<(Stamp, Vec<u8>)> {
        let mut file = File::open(&self.path)?;
        let stamp = Stamp::of(&file.metadata()?);
        let mut bytes = Vec::with_capacity(stamp.len.try_into().unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        Ok((stamp, bytes))
    }

    fn publish(&self, bytes: &[u8]) {
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => parse(text, Some(&self.path)),
            Err(err) => Err(Error::File {
                path: self.path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, err),
            }),
        };
        match parsed {
            Ok(instances) => {
                log::debug!(
                    target: LOG,
                    "{} lists {} instances",
                    self.path.display(),
                    instances.len()
                );
                self.publisher.publish_instances(instances);
            }
            Err(err) => {
                match &err {
                    Error::File { source, .. } => log::warn!(target: LOG, "{err}: {source}"),
                    _ => log::warn!(target: LOG, "{err}; keeping the last good set"),
                }
                self.publisher.publish_error(err);
            }
        }
    }

    /// Reports an I/O error and forgets the file, so that whatever file appears next at
    /// the path is read and published at once.
    fn fail(&mut self, source: io::Error) {
        self.seen = None;
        self.pending = None;
        if self.failing != Some(source.kind()) {
            self.failing = Some(source.kind());
            log::warn!(target: LOG, "cannot read {}: {source}", self.path.display());
        }
        self.publisher.publish_error(Error::File {
            path: self.path.clone(),
            source,
        });
    }
}

#[cfg(test)]
#[path = "../../tests/support/scratch.rs"]
mod scratch;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use crossbeam_channel::{Receiver, unbounded};

    use super::scratch::Scratch;

    /// A watcher polled by hand (no thread), and its subscriber.
    fn watcher(scratch: &Scratch) -> (Watcher, Receiver<Event>) {
        let publisher = Arc::new(Publisher::new());
        let (events_tx, events) = unbounded();
        publisher.subscribe(events_tx);
        let watcher = Watcher::new(Arc::from(scratch.file.as_path()), publisher);
        (watcher, events)
    }

    fn next(events: &Receiver<Event>) -> Option<Vec<String>> {
        events.try_recv().ok().map(|event| match event {
            Event::Instances(set) => set.iter().map(|i| i.addr().to_owned()).collect(),
            Event::Error(err) => vec![format!("error: {err}")],
        })
    }

    #[test]
    fn in_place_changes_wait_for_a_second_identical_read() {
        let scratch = Scratch::new();
        scratch.write_in_place("a:1\n");
        let (mut w, events) = watcher(&scratch);
        w.poll();
        assert_eq!(
            next(&events).unwrap(),
            ["a:1"],
            "the first read is published"
        );

        scratch.write_in_place("a:1\nb:2\n");
        w.poll();
        assert_eq!(next(&events), None, "not yet confirmed");
        w.poll();
        assert_eq!(next(&events).unwrap(), ["a:1", "b:2"]);
        w.poll();
        assert_eq!(next(&events), None, "unchanged: not even read");
        assert!(w.pending.is_none());

        // A writer still at work: every poll reads something new, nothing is published.
        scratch.write_in_place("a:1\nb:2\nc:");
        w.poll();
        scratch.write_in_place("a:1\nb:2\nc:3\n");
        w.poll();
        assert_eq!(next(&events), None);
        w.poll();
        assert_eq!(next(&events).unwrap(), ["a:1", "b:2", "c:3"]);
    }

    #[test]
    fn a_replaced_file_is_published_at_once_and_repeats_are_dropped() {
        let scratch = Scratch::new();
        scratch.replace("a:1\n");
        let (mut w, events) = watcher(&scratch);
        w.poll();
        assert_eq!(next(&events).unwrap(), ["a:1"]);

        scratch.replace("b:1\n");
        w.poll();
        assert_eq!(next(&events).unwrap(), ["b:1"]);
        let before = w.seen.clone().unwrap();

        scratch.replace("b:1\n");
        w.poll();
        assert_ne!(
            w.seen.clone().unwrap().id,
            before.id,
            "the new file was read"
        );
        assert_eq!(next(&events), None, "identical content: no event");
    }

    #[test]
    fn io_errors_forget_the_file_and_recover() {
        let scratch = Scratch::new();
        let (mut w, events) = watcher(&scratch);
        w.poll();
        let err = next(&events).unwrap();
        assert!(err[0].starts_with("error: I/O error on"), "{err:?}");
        w.poll();
        assert_eq!(next(&events), None, "the same error is not sent twice");

        scratch.write_in_place("a:1\n");
        w.poll();
        assert_eq!(
            next(&events).unwrap(),
            ["a:1"],
            "a returning file needs no second read"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_event() {
        let scratch = Scratch::new();
        fs::write(&scratch.file, b"a:1 zone=\xff\n").unwrap();
        let (mut w, events) = watcher(&scratch);
        w.poll();
        assert!(next(&events).unwrap()[0].starts_with("error:"));
        assert!(w.seen.is_some(), "a content error keeps the file's stamp");
    }
}
