//! A fresh directory with one instance file in it, removed on drop.
//!
//! Shared by the crate's unit tests (through `#[path]`) and the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, unique to this process and call.
pub struct Scratch {
    pub dir: PathBuf,
    /// `instances.txt` in `dir`; not created until written.
    pub file: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "waypost-scratch-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("instances.txt");
        Scratch { dir, file }
    }

    /// Writes the file the recommended way: a temporary file renamed over it.
    pub fn replace(&self, text: &str) {
        self.replace_named("instances.txt", text);
    }

    /// Writes the file `name` in `dir` as [`replace`](Self::replace) does; its path.
    pub fn replace_named(&self, name: &str, text: &str) -> PathBuf {
        let (tmp, path) = (self.dir.join(format!(".{name}.tmp")), self.dir.join(name));
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &path).unwrap();
        path
    }

    /// Writes the file in place (same inode).
    pub fn write_in_place(&self, text: &str) {
        fs::write(&self.file, text).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
