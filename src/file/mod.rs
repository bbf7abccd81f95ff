//! An [`Instancer`](crate::Instancer) over a file of instances, one per line: for
//! services whose instances are written by configuration management, a sidecar, a
//! Kubernetes ConfigMap, or a person.
//!
//! ```
//! use std::time::Duration;
//! use waypost::file::FileInstancer;
//! use waypost::{Event, Instancer};
//!
//! # let dir = std::env::temp_dir().join(format!("waypost-file-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("api.instances");
//! std::fs::write(&path, "10.0.0.1:8080 weight=2 zone=eu-1\n10.0.0.2:8080 tag=canary\n")?;
//!
//! let instancer = FileInstancer::builder(&path)
//!     .poll_interval(Duration::from_millis(200))
//!     .build()?;
//! let (tx, rx) = waypost::crossbeam_channel::unbounded();
//! instancer.subscribe(tx);
//! // The set comes once a second read, one poll interval after the first, agrees.
//! match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
//!     Event::Instances(set) => assert_eq!(set.len(), 2),
//!     Event::Error(err) => panic!("{err}"),
//! }
//! instancer.stop();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Format
//!
//! ```text
//! # api service, eu
//! 10.0.0.1:8080   weight=2 zone=eu-1 tag=v2 tag=canary
//! 10.0.0.2:8080   zone=eu-2          # drained on Fridays
//! [2001:db8::7]:8080
//! api-3.example.test:8080
//! ```
//!
//! - One instance per line: a `host:port` address, then optional fields separated by
//!   spaces or tabs. The address is checked by [`Instance::parse`](crate::Instance::parse),
//!   which accepts one spelling per address: an IPv4 address (`10.0.0.1`), an IPv6
//!   address in canonical form in brackets (`[2001:db8::1]`, zone allowed:
//!   `[fe80::1%eth0]`) or a name of ASCII letters, digits, `-`, `_` and `.`; a port of
//!   plain digits in 1..=65535 without leading zeros (`:80`, not `:080` or `:+80`). The
//!   fields are `weight=N` (an integer in `u32`), `zone=Z`, and `tag=T` (repeatable,
//!   order kept). They become the instance's [`Metadata`](crate::Metadata).
//! - `#` starts a comment wherever it appears, so it cannot occur in a value. Blank
//!   lines are ignored; `\r\n` line ends are accepted. The file must be UTF-8; a
//!   byte-order mark at its start is ignored.
//! - An empty file (or one with comments only) is a valid, empty instance set.
//! - A bad line (an address `Instance::parse` refuses, unknown field, field without `=`, empty value, bad
//!   weight, `weight` or `zone` given twice) makes the *whole file* invalid: the
//!   instancer publishes an [`Error::InvalidInstance`](crate::Error::InvalidInstance)
//!   naming the path and the 1-based line number, and subscribers keep the last good
//!   set. A partial set is never published.
//! - An address listed twice is published once, with the metadata of its first line.
//!
//! [`parse`] is the same parser as a plain function, for checking a file before
//! installing it.
//!
//! # Watch mechanism
//!
//! A thread, `waypost-file-watch`, reads the file as it starts, then polls it every
//! [`poll_interval`](FileInstancerBuilder::poll_interval), one second by default. A
//! poll opens the file and looks at the open file's metadata (on Unix its device and
//! inode, everywhere its modification time and size); it reads the file only when that
//! changed, or to confirm a change.
//!
//! - **Nothing half written is published.** A file the watch has not read before (the
//!   first one, a new inode, a file back after an error) or whose size or
//!   modification time changed is published only once two reads one poll interval
//!   apart give the very same bytes. A change is therefore published **between one and
//!   two poll intervals after it is written** (after it was *last* written: while a
//!   writer keeps changing the file, nothing is published). This holds at start too:
//!   [`build`](FileInstancerBuilder::build) returns after the first read, and the first
//!   set comes one interval later; an error (a missing file, say) is the state at once.
//! - **Replace the file by atomic rename** all the same (write a temporary file in the
//!   same directory, then `rename` it over the watched path; most tools' "atomic
//!   write" does this; Kubernetes swaps a symlink for ConfigMap volumes, which counts
//!   too, since the path is followed). The second read guards against a writer caught
//!   in the middle, not against one that pauses mid-file for longer than an interval.
//!   Two in-place writes within one tick of the file system's clock that leave the
//!   size unchanged can go unnoticed: another reason to prefer the rename. Off Unix
//!   there is no inode to compare, so a replaced file is noticed by its time and size.
//! - Unchanged content is not published again: re-reading a file, or renaming in an
//!   identical one, sends nothing. A poll that finds the file unchanged confirms the
//!   set (an endpointer's [`status`](crate::DefaultEndpointer::status) tells when).
//! - **Regular files only.** On Unix the file is opened without blocking and its type is
//!   checked on the open file, so a FIFO (which would wait for a writer), a device such
//!   as `/dev/zero` (which never ends), a directory or a socket is an error event, and
//!   blocks neither `build` nor `stop`. A symlink to a regular file is fine.
//! - **Reads are capped** at [`max_file_size`](FileInstancerBuilder::max_file_size),
//!   16 MiB by default: a larger file is an error event, and is not read further.
//!
//! # Failure behaviour
//!
//! - A missing file, or any other error opening or reading it, publishes an
//!   [`Error::File`](crate::Error::File) event naming the path; its `source()` says
//!   what went wrong: `NotFound` for a missing file, `InvalidInput` for one that is not
//!   a regular file (the message says what it is), `FileTooLarge` for one over the cap,
//!   `InvalidData` for invalid UTF-8. Subscribers keep the last good set. This holds at
//!   start too: a file that does not exist yet is not a constructor error.
//! - The thread keeps polling at the same interval (an error is retried one interval
//!   later) and recovers by itself: once the file is readable again, whatever its
//!   inode, it is read, and published once the next read agrees.
//! - Errors are logged with `log::warn!` under the target `waypost::file`, with their
//!   cause, once per outage rather than once per poll (repeats are `log::debug!`
//!   lines); changes are logged with `log::debug!`.
//! - A panic in the watch thread (a bug in waypost) is published as an
//!   [`Error::Panicked`](crate::Error::Panicked) event and logged with `log::error!`;
//!   the watch starts again within one poll interval and reads the file afresh. The
//!   third panic with no completed poll in between ends the thread; its error event
//!   says that the watch stopped, and the last good set is all subscribers keep.
//!
//! # Threads
//!
//! Each [`FileInstancer`] owns one thread, named `waypost-file-watch`, running the
//! watch loop every backend shares. It waits between polls on its
//! [`clock`](FileInstancerBuilder::clock) and a stop channel, never in a bare sleep,
//! and never blocks on the file's type, so [`stop`](crate::Instancer::stop) and drop
//! return within milliseconds, whatever the poll interval, and join it.

mod instancer;
mod parse;
mod read;

pub use instancer::{FileInstancer, FileInstancerBuilder};
pub use parse::parse;
