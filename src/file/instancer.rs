//! `FileInstancer`: one instance file, polled on the shared watch loop.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::parse;
use super::read::{self, Stamp};
use crate::internal::publisher::Publisher;
use crate::internal::watch::{self, Due, Early, Fetched, Source, Spec};
use crate::internal::worker::{StopSignal, Worker};
use crate::{Clock, Error, Result, SystemClock};

const LOG: &str = "waypost::file";
/// How long `build()` waits for the first read: a bound for a file system that hangs.
const FIRST_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Watches a file of instances, one per line, and publishes its content as the instance
/// set; see the [module docs](crate::file) for the format and how changes are detected.
///
/// # Threads
/// The constructor starts one thread, `waypost-file-watch`, which reads the file at
/// once and then polls it every
/// [`poll_interval`](FileInstancerBuilder::poll_interval); the constructor returns
/// once that first read is done (see [`build`](FileInstancerBuilder::build)).
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
    max_file_size: u64,
    clock: Arc<dyn Clock>,
}

impl FileInstancer {
    /// Watches `path` with the default options (a poll every second).
    ///
    /// A missing or invalid file is not an error here but an error event (a missing
    /// one is the state when `new` returns, an invalid one follows a poll later), and
    /// the instancer recovers when the file is fixed. The only error is failing to
    /// start the watch thread ([`Error::Io`]).
    pub fn new(path: impl Into<PathBuf>) -> Result<FileInstancer> {
        FileInstancer::builder(path).build()
    }

    /// Starts configuring an instancer for `path`.
    pub fn builder(path: impl Into<PathBuf>) -> FileInstancerBuilder {
        FileInstancerBuilder {
            path: path.into(),
            poll_interval: Duration::from_secs(1),
            max_file_size: 16 << 20,
            clock: Arc::new(SystemClock),
        }
    }

    /// The watched path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl FileInstancerBuilder {
    /// How often the watch thread looks at the file (default: 1 s).
    ///
    /// A poll opens the file and looks at its metadata (device, inode, modification
    /// time, size); it reads the file only when that changed, or to confirm a change.
    /// A change is published once two reads one interval apart agree, so it is
    /// published **between one and two intervals after it is written** (with the
    /// default, 1 to 2 s); a file still being written waits until the writer has been
    /// done for a whole interval (see the [module docs](crate::file#watch-mechanism)).
    /// Shorter intervals publish changes sooner for a few more system calls; they also
    /// space the retries after an error, which come one interval apart.
    ///
    /// `build()` refuses, with [`Error::InvalidConfig`] (`poll_interval`),
    /// `Duration::ZERO` (a busy loop) and anything from about 100 years up
    /// (`Duration::MAX` included): with no second read the file would never be
    /// published. For a list that never changes, use
    /// [`FixedInstancer`](crate::FixedInstancer) with [`parse`](crate::file::parse).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The largest file read, in bytes (default: 16 MiB, about 300,000 lines). A larger
    /// file is an [`Error::File`] event (`FileTooLarge`) and is not read past
    /// `bytes + 1`, whatever its metadata claims, so a path that names an endless file
    /// cannot fill the memory. `0` is refused by `build()` with
    /// [`Error::InvalidConfig`] (`max_file_size`).
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// The clock every wait of the watch reads (the poll interval, the retry after an
    /// error, the restart after a panic). Default: [`SystemClock`]; tests pass a
    /// [`ManualClock`](crate::ManualClock) and move it instead of sleeping.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validates, starts the `waypost-file-watch` thread and waits for its first read
    /// of the file: microseconds for a local file, at most 1 s (a file system that
    /// hangs). That read publishes nothing when the file is readable (a set waits for
    /// the second read, one poll interval later), but an error is the state at once:
    /// a missing file, one that is not a regular file, too large, or unreadable.
    ///
    /// Fails with [`Error::InvalidConfig`] for a zero or endless poll interval or a
    /// zero `max_file_size`, and with [`Error::Io`] if the thread cannot be started; a
    /// missing or invalid file becomes an error event instead.
    pub fn build(self) -> Result<FileInstancer> {
        if self.poll_interval.is_zero() {
            return Err(Error::invalid_config(
                "poll_interval",
                "must be greater than zero",
            ));
        }
        if crate::clock::finite(self.poll_interval).is_none() {
            return Err(Error::invalid_config(
                "poll_interval",
                "must be less than about 100 years: a change is published once a second \
                 read, one interval later, agrees",
            ));
        }
        if self.max_file_size == 0 {
            return Err(Error::invalid_config(
                "max_file_size",
                "must be at least one byte",
            ));
        }
        let path: Arc<Path> = Arc::from(self.path);
        let publisher = Arc::new(Publisher::new());
        let interval = self.poll_interval;
        let spec = Spec {
            thread: "waypost-file-watch",
            component: "file watch",
            log_target: LOG,
            what: path.display().to_string(),
            // No two reads closer than one interval, errors and their retries included.
            min_interval: interval,
            backoff: (interval, interval),
            first_fetch_timeout: FIRST_READ_TIMEOUT,
            clock: self.clock,
        };
        let source = Poll {
            path: path.clone(),
            interval,
            max_file_size: self.max_file_size,
            told: None,
            pending: None,
        };
        let worker = watch::start(spec, publisher.clone(), source, || {})?;
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

/// The watch's requests: one look at the file per poll.
struct Poll {
    path: Arc<Path>,
    interval: Duration,
    max_file_size: u64,
    /// The file whose content was last told (published, or refused as invalid), and
    /// whether it was valid: while the path names that very file, unchanged, a poll
    /// reads nothing. None before the first read and after an I/O error.
    told: Option<(Stamp, bool)>,
    /// Content read on the last poll and not yet told: it is, once the next poll reads
    /// the very same bytes.
    pending: Option<Vec<u8>>,
}

impl Source for Poll {
    fn fetch(&mut self, _stop: &StopSignal, _early: &mut Early<'_>) -> Result<Fetched> {
        self.poll()
    }

    fn reset(&mut self) {
        self.told = None;
        self.pending = None;
    }
}

impl Poll {
    /// One look at the file: open it, compare its metadata with the file last told,
    /// and read it if it changed or a change awaits its second read.
    fn poll(&mut self) -> Result<Fetched> {
        let due = Due::After(self.interval);
        let opened = self.io(read::open(&self.path))?;
        if let (Some((stamp, valid)), None) = (&self.told, &self.pending) {
            if *stamp == opened.stamp {
                // An invalid file that did not change: its error stands, and confirms
                // no set.
                return Ok(if *valid {
                    Fetched::Unchanged(due)
                } else {
                    Fetched::Pending(due)
                });
            }
        }
        let stamp = opened.stamp.clone();
        let bytes = self.io(opened.read(self.max_file_size))?;
        if self.pending.as_deref() != Some(&bytes[..]) {
            log::debug!(
                target: LOG,
                "{} changed; publishing it once the next read agrees",
                self.path.display()
            );
            self.pending = Some(bytes);
            return Ok(Fetched::Pending(due));
        }
        self.pending = None;
        let parsed = self.parse(&bytes);
        self.told = Some((stamp, parsed.is_ok()));
        let instances = parsed?;
        log::debug!(
            target: LOG,
            "{} lists {} instances",
            self.path.display(),
            instances.len()
        );
        Ok(Fetched::Instances(instances, due))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Vec<crate::Instance>> {
        match std::str::from_utf8(bytes) {
            Ok(text) => parse(text, Some(&self.path)),
            Err(err) => Err(Error::File {
                path: self.path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, err),
            }),
        }
    }

    /// An I/O error as an [`Error::File`]; the file is forgotten, so that whatever file
    /// the path names next is read afresh.
    fn io<T>(&mut self, result: io::Result<T>) -> Result<T> {
        result.map_err(|source| {
            self.reset();
            Error::File {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
#[path = "../../tests/support/scratch.rs"]
mod scratch;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use super::scratch::Scratch;

    /// A source polled by hand, on this thread, with a 64-byte cap.
    fn poll(scratch: &Scratch) -> Poll {
        Poll {
            path: Arc::from(scratch.file.as_path()),
            interval: Duration::from_secs(1),
            max_file_size: 64,
            told: None,
            pending: None,
        }
    }

    /// One poll's answer, in short: the addresses published, "pending", "unchanged", or
    /// the error.
    fn once(source: &mut Poll) -> String {
        match source.poll() {
            Ok(Fetched::Instances(set, _)) => {
                let addrs: Vec<_> = set.iter().map(|i| i.addr()).collect();
                addrs.join(" ")
            }
            Ok(Fetched::Pending(_)) => "pending".into(),
            Ok(Fetched::Unchanged(_)) => "unchanged".into(),
            Ok(Fetched::End) => "end".into(),
            Err(err) => format!(
                "error: {err}: {}",
                std::error::Error::source(&err).map_or(String::new(), |s| s.to_string())
            ),
        }
    }

    #[test]
    fn a_change_is_published_once_two_reads_agree_the_first_read_included() {
        let scratch = Scratch::new();
        // Caught mid-write: the last line is cut, and would read as another port.
        scratch.write_in_place("10.0.0.1:8080\n10.0.0.2:80");
        let mut source = poll(&scratch);
        assert_eq!(once(&mut source), "pending", "the first read waits too");
        scratch.write_in_place("10.0.0.1:8080\n10.0.0.2:8080\n");
        assert_eq!(
            once(&mut source),
            "pending",
            "the bytes changed: wait again"
        );
        assert_eq!(once(&mut source), "10.0.0.1:8080 10.0.0.2:8080");
        assert_eq!(once(&mut source), "unchanged", "not even read");

        scratch.replace("10.0.0.3:8080\n");
        assert_eq!(
            once(&mut source),
            "pending",
            "a new inode waits for its second read"
        );
        assert_eq!(once(&mut source), "10.0.0.3:8080");
    }

    #[test]
    fn a_writer_still_appending_publishes_nothing_until_it_stops() {
        let scratch = Scratch::new();
        scratch.write_in_place("a:1\n");
        let mut source = poll(&scratch);
        once(&mut source);
        assert_eq!(once(&mut source), "a:1");
        let mut text = String::from("a:1\n");
        for line in ["b:2\n", "c:3\n", "d:4\n"] {
            text.push_str(line);
            scratch.write_in_place(&text);
            assert_eq!(once(&mut source), "pending", "{text:?}");
        }
        assert_eq!(once(&mut source), "a:1 b:2 c:3 d:4");
    }

    #[test]
    fn io_errors_forget_the_file() {
        let scratch = Scratch::new();
        let mut source = poll(&scratch);
        assert!(once(&mut source).starts_with("error: I/O error on"));
        scratch.replace("a:1\n");
        assert_eq!(once(&mut source), "pending");
        assert_eq!(once(&mut source), "a:1");
        fs::remove_file(&scratch.file).unwrap();
        assert!(once(&mut source).starts_with("error:"));
        scratch.replace("a:1\n");
        assert_eq!(
            once(&mut source),
            "pending",
            "a file that returns is read afresh"
        );
        assert_eq!(once(&mut source), "a:1");
    }

    #[test]
    fn an_unchanged_invalid_file_confirms_nothing() {
        let scratch = Scratch::new();
        scratch.replace("a:1 weight=lots\n");
        let mut source = poll(&scratch);
        assert_eq!(once(&mut source), "pending");
        assert!(once(&mut source).contains("line 1"));
        assert_eq!(once(&mut source), "pending", "its error stands");
        fs::write(&scratch.file, b"a:1 zone=\xff\n").unwrap();
        once(&mut source);
        assert!(once(&mut source).contains("invalid utf-8"));
    }

    #[test]
    fn a_file_over_the_cap_is_an_error_and_one_at_the_cap_is_read() {
        let scratch = Scratch::new();
        let at_cap = format!("{:<63}\n", "10.0.0.1:80");
        scratch.replace(&at_cap);
        let mut source = poll(&scratch);
        once(&mut source);
        assert_eq!(once(&mut source), "10.0.0.1:80");
        scratch.replace(&format!("{at_cap}#"));
        let err = once(&mut source);
        assert!(
            err.contains("larger than max_file_size (64 bytes)"),
            "{err}"
        );
        assert!(err.contains(&scratch.file.display().to_string()), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_address() {
        let scratch = Scratch::new();
        scratch.replace("\u{feff}10.0.0.1:80\n");
        let mut source = poll(&scratch);
        once(&mut source);
        assert_eq!(once(&mut source), "10.0.0.1:80");
    }
}
