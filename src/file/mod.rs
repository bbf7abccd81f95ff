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
//!     .poll_interval(Duration::from_millis(500))
//!     .build()?;
//! let (tx, rx) = waypost::crossbeam_channel::unbounded();
//! instancer.subscribe(tx);
//! match rx.recv_timeout(Duration::from_secs(1)).unwrap() {
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
//!   lines are ignored; `\r\n` line ends are accepted. The file must be UTF-8.
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
//! The constructor reads the file once, synchronously, so the instancer has a state at
//! once. Then a thread polls the file's metadata (`stat`: on Unix its device and inode,
//! everywhere its modification time and size) every
//! [`poll_interval`](FileInstancerBuilder::poll_interval), one second by default, and
//! reads the file only when that changed.
//!
//! - **Replace the file by atomic rename** (write a temporary file in the same directory,
//!   then `rename` it over the watched path; most tools' "atomic write" does this).
//!   A new inode means a complete new file: it is read and published at the next poll.
//!   Swapping a symlink (as Kubernetes does for ConfigMap volumes) counts too, since
//!   the path is followed.
//! - **Writes in place** (same inode, new modification time or size) may be seen half
//!   done. The file is read, but its content is published only when the next poll reads
//!   the very same bytes; while a writer keeps changing it, nothing is published. Such a
//!   change therefore takes two poll intervals or more to arrive. Two in-place writes
//!   within one tick of the file system's clock that leave the size unchanged can go
//!   unnoticed: another reason to prefer the rename. Off Unix there is no inode to
//!   compare, so every change is handled as an in-place write.
//! - Unchanged content is not published again: re-reading a file, or renaming in an
//!   identical one, sends nothing.
//!
//! # Failure behaviour
//!
//! - A missing file, or any other error opening or reading it, publishes an
//!   [`Error::File`](crate::Error::File) event (`NotFound` for a missing file; invalid
//!   UTF-8 is `InvalidData`); subscribers keep the last good set. This holds at start
//!   too: a file that does not exist yet is not a constructor error.
//! - The thread keeps polling at the same interval and recovers by itself: once the
//!   file is readable again, whatever its inode, it is read and published at once.
//! - Errors are logged with `log::warn!` under the target `waypost::file`, an I/O error
//!   once per outage rather than once per poll; changes are logged with `log::debug!`.
//! - A panic in the watch thread (a bug in waypost) is published as an
//!   [`Error::Panicked`](crate::Error::Panicked) event and logged with `log::error!`;
//!   the watch starts again within one poll interval and reads the file afresh. The
//!   third panic with no completed poll in between ends the thread; its error event
//!   says that the watch stopped, and the last good set is all subscribers keep.
//!
//! # Threads
//!
//! Each [`FileInstancer`] owns one thread, named `waypost-file-watch`. It waits between
//! polls on a stop channel, never in a bare sleep, so [`stop`](crate::Instancer::stop)
//! and drop return within milliseconds, whatever the poll interval, and join it.

mod instancer;
mod parse;

pub use instancer::{FileInstancer, FileInstancerBuilder};
pub use parse::parse;
