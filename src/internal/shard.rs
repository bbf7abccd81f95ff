//! A value replicated into one cache-padded cell per CPU, read without contention.
//!
//! Each shard holds its *own* `Arc` of the value, in its own padded allocation, behind
//! a padded `RwLock`. A reader takes the fair read lock of "its" shard (a per-thread
//! index) just long enough to clone that shard's `Arc`, and gets back a value that
//! holds no lock. So two threads reading at once touch different cache lines (their
//! lock words and their reference counts are on lines of their own), a writer never
//! waits on user code, and no nesting or holding of read values can deadlock.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

/// Aligns its content to 128 bytes: two 64-byte lines, since adjacent-line prefetching
/// pairs them on x86.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The number of shards: the CPUs this process may use, as a power of two, at most 64.
pub(crate) fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 64)
            .next_power_of_two()
    })
}

/// This thread's shard index, in `0..count()`. Threads take indices in turn as they
/// first ask, so the first `count()` threads all get different shards.
#[inline]
pub(crate) fn index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|cell| {
        let i = cell.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT.fetch_add(1, Ordering::Relaxed) & (count() - 1);
        cell.set(i);
        i
    })
}

/// One shard's own copy: a separately allocated, 128-byte aligned `Arc`, so the
/// reference counts of two shards never share a cache line.
pub(crate) type ShardCopy<T> = Arc<Padded<T>>;

/// A value replicated into one padded cell per shard.
#[derive(Debug)]
pub(crate) struct Sharded<T> {
    shards: Box<[Padded<RwLock<ShardCopy<T>>>]>,
}

impl<T> Sharded<T> {
    /// Every shard gets its own copy made by `make`.
    pub(crate) fn new(mut make: impl FnMut() -> T) -> Sharded<T> {
        Sharded {
            shards: (0..count())
                .map(|_| Padded(RwLock::new(Arc::new(Padded(make())))))
                .collect(),
        }
    }

    /// This thread's shard's copy. The fair read lock is held for one reference-count
    /// increment; a waiting writer therefore waits nanoseconds, never on a reader's
    /// code.
    #[inline]
    pub(crate) fn read(&self) -> ShardCopy<T> {
        // count() is a power of two and index() < count(); the mask keeps the bounds
        // check trivially true even if shards were built for a different count.
        let i = index() & (self.shards.len() - 1);
        Arc::clone(&self.shards[i].0.read())
    }

    /// Gives every shard a fresh copy made by `make`. The replaced copies are returned,
    /// to be dropped by the caller when it chooses (after every lock is released: a
    /// `Drop` of `T` never runs under a lock).
    pub(crate) fn set(&self, mut make: impl FnMut() -> T) -> Vec<ShardCopy<T>> {
        let mut old = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let fresh = Arc::new(Padded(make()));
            old.push(std::mem::replace(&mut *shard.0.write(), fresh));
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_sees_a_write_and_readers_keep_their_copy() {
        let s = Sharded::new(|| 1);
        let before = s.read();
        drop(s.set(|| 2));
        assert!(s.shards.iter().all(|sh| ***sh.0.read() == 2));
        assert_eq!(**s.read(), 2);
        assert_eq!(**before, 1, "a value read before the write is unchanged");
    }

    /// A thread that read once and went idle holds nothing: the replaced copy goes with
    /// the last read value that holds it, and at once if none does.
    #[test]
    fn a_replaced_copy_lives_as_long_as_its_last_reader() {
        let s = Sharded::new(|| Arc::new(1));
        let weak = Arc::downgrade(&s.read());
        let held = s.read();
        drop(s.set(|| Arc::new(2)));
        assert!(weak.upgrade().is_some(), "a held read keeps its copy");
        drop(held);
        assert!(weak.upgrade().is_none(), "nothing else holds it");
        let weak = Arc::downgrade(&s.read());
        drop(s.set(|| Arc::new(3)));
        assert!(
            weak.upgrade().is_none(),
            "an earlier, dropped read holds nothing"
        );
    }

    #[test]
    fn nested_reads_while_a_writer_waits_do_not_deadlock() {
        let s = Arc::new(Sharded::new(|| 0u64));
        let outer = s.read();
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for k in 1..1000 {
                    drop(s.set(|| k));
                }
            })
        };
        for _ in 0..10_000 {
            let inner = s.read();
            assert!(**inner >= **outer);
        }
        writer.join().unwrap();
        assert_eq!(**s.read(), 999);
    }
}
