//! Opening and reading the instance file: without blocking, regular files only, capped.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

/// `O_NONBLOCK` for `open(2)`, so that opening a FIFO returns at once instead of waiting
/// for a writer. waypost has no libc dependency, so the value is spelled out per target,
/// as the system headers define it. On a Unix not listed there is no flag: the file is
/// opened blocking, and a FIFO there holds up the watch thread (and its stop) until a
/// writer opens it.
#[cfg(unix)]
const O_NONBLOCK: i32 = if cfg!(any(target_os = "linux", target_os = "android")) {
    if cfg!(any(
        target_arch = "mips",
        target_arch = "mips32r6",
        target_arch = "mips64",
        target_arch = "mips64r6"
    )) {
        0o200
    } else if cfg!(any(target_arch = "sparc", target_arch = "sparc64")) {
        0x4000
    } else {
        0o4000
    }
} else if cfg!(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)) {
    0x0004
} else if cfg!(any(target_os = "solaris", target_os = "illumos")) {
    0x80
} else {
    0
};

/// What one look at the open file's metadata tells: which file the path named and
/// whether its content may have changed since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    /// (device, inode) on Unix: a new one means the path was replaced by another file.
    /// None elsewhere, where every change looks like one made in place.
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

/// The file a path named when it was opened, known to be a regular file.
#[derive(Debug)]
pub(super) struct Opened {
    file: File,
    /// The open file's own metadata (`fstat`), whatever the path names by now.
    pub(super) stamp: Stamp,
}

/// Opens `path` for reading without blocking (on Unix, `O_NONBLOCK`: a FIFO opens at
/// once), then checks on the open file that it is a regular file. Checking before the
/// open would race a swap of the path; anything else (a FIFO, a device such as
/// `/dev/zero`, a directory, a socket) is an `InvalidInput` error that names what it is.
pub(super) fn open(path: &Path) -> io::Result<Opened> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a regular file but {}: an instance file must be a regular file, or a \
                 symlink to one",
                kind(&meta)
            ),
        ));
    }
    Ok(Opened {
        stamp: Stamp::of(&meta),
        file,
    })
}

impl Opened {
    /// The whole file, if it has at most `cap` bytes; a larger one is a `FileTooLarge`
    /// error. At most `cap + 1` bytes are read, whatever the metadata said: a file may
    /// grow while it is read, and some (in `/proc`) report a size of 0.
    pub(super) fn read(self, cap: u64) -> io::Result<Vec<u8>> {
        let too_large = || {
            io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than max_file_size ({cap} bytes)"),
            )
        };
        if self.stamp.len > cap {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(usize::try_from(self.stamp.len).unwrap_or(0));
        self.file
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)?;
        if u64::try_from(bytes.len()).map_or(true, |len| len > cap) {
            return Err(too_large());
        }
        Ok(bytes)
    }
}

/// What a file that is not regular is, for the error message.
fn kind(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "another kind of file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_by_kind() {
        for (path, kind) in [("/dev/null", "a character device"), ("/", "a directory")] {
            let err = open(Path::new(path)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}");
            assert!(err.to_string().contains(kind), "{path}: {err}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_cap_holds_for_a_file_that_reports_no_size() {
        // A regular file of /proc: its metadata says 0 bytes, its content is longer.
        let opened = open(Path::new("/proc/self/status")).unwrap();
        assert_eq!(opened.stamp.len, 0);
        let err = opened.read(16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains("16 bytes"), "{err}");
        let whole = open(Path::new("/proc/self/status")).unwrap().read(1 << 20);
        assert!(whole.unwrap().len() > 16);
    }
}
