//! A value behind one cache-padded read/write lock per CPU.
//!
//! Readers take the read lock of "their" shard (a per-thread index), so two threads
//! reading at once touch different cache lines; the rare writer writes every shard.
//! This keeps the endpoint cache lock-protected while readers do not contend.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};

/// Aligns its content to 128 bytes: two 64-byte lines, since adjacent-line prefetching
/// pairs them on x86.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
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

/// A value replicated into one padded `RwLock` per shard.
#[derive(Debug)]
pub(crate) struct Sharded<T> {
    shards: Box<[Padded<RwLock<T>>]>,
}

impl<T: Clone> Sharded<T> {
    pub(crate) fn new(value: T) -> Sharded<T> {
        Sharded {
            shards: (0..count())
                .map(|_| Padded(RwLock::new(value.clone())))
                .collect(),
        }
    }

    /// Reads this thread's shard. Recursive, so a thread that holds a guard can take
    /// another while a writer waits, without deadlock.
    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        // count() is a power of two and index() < count(); the mask keeps the bounds
        // check trivially true even if shards were built for a different count.
        let i = index() & (self.shards.len() - 1);
        self.shards[i].0.read_recursive()
    }

    /// Replaces the value in every shard. Old values are dropped after every lock is
    /// released, so a `Drop` of `T` never runs under a lock.
    pub(crate) fn set(&self, value: T) {
        let mut old = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            old.push(std::mem::replace(&mut *shard.0.write(), value.clone()));
        }
        drop(value);
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_sees_a_write() {
        let s = Sharded::new(1);
        s.set(2);
        assert!(s.shards.iter().all(|sh| *sh.0.read() == 2));
        assert_eq!(*s.read(), 2);
    }

    #[test]
    fn padding_is_two_lines() {
        assert_eq!(std::mem::align_of::<Padded<u8>>(), 128);
        assert!(count().is_power_of_two());
        assert!(index() < count());
    }
}
