//! Bounded load: the keys in flight on each instance and in all, and the bound on
//! each instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::internal::shard::Padded;
use crate::lb::table::Keep;
use crate::lb::{CallObserver, Outcome};
use crate::{Endpoints, Instance};

/// The keys in flight on one instance, on a line of its own, and the balancer's
/// total, which its picks count in too.
#[repr(align(128))]
pub(crate) struct Load {
    in_flight: AtomicUsize,
    total: Arc<Padded<AtomicUsize>>,
}

impl Load {
    /// The keys in flight now.
    #[inline]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one more key in flight if fewer than `capacity` are: true if it did.
    /// Two threads racing for the last place cannot both take it.
    #[inline]
    pub(crate) fn try_take(&self, capacity: usize) -> bool {
        let mut seen = self.in_flight.load(Ordering::Relaxed);
        while seen < capacity {
            match self.in_flight.compare_exchange_weak(
                seen,
                seen + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => seen = now,
            }
        }
        false
    }

    /// Counts one more key in flight, whatever the bound.
    #[inline]
    pub(crate) fn take(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }
}

impl<E> CallObserver<E> for Load {
    #[inline]
    fn ended(&self, _: &Endpoints<E>, _: usize, _: Outcome, _: Option<Instant>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Makes the load of an instance new to the set: none in flight, counting in `.0`.
pub(crate) struct NewLoad(pub(crate) Arc<Padded<AtomicUsize>>);

impl Keep<Load> for NewLoad {
    fn make(&self, _: &Instance) -> Load {
        Load {
            in_flight: AtomicUsize::new(0),
            total: self.0.clone(),
        }
    }
}

/// The most keys one of `n` instances may have in flight when `keys` are (the new
/// one included): `ceil(factor × keys / n)`, at least 1 for a factor of at least 1.
#[inline]
pub(crate) fn capacity(factor: f64, keys: usize, n: usize) -> usize {
    (factor * keys as f64 / n as f64).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_the_ceiling_of_the_factor_times_the_average() {
        assert_eq!(capacity(1.25, 1, 10), 1);
        assert_eq!(capacity(1.25, 8, 1), 10);
        assert_eq!(capacity(1.25, 40, 10), 5);
        assert_eq!(capacity(1.25, 41, 10), 6);
        assert_eq!(capacity(1.0, 30, 3), 10);
        assert_eq!(capacity(2.0, 5, 10), 1);
    }

    #[test]
    fn a_place_is_taken_only_below_the_capacity() {
        let load = NewLoad(Arc::default()).make(&Instance::new("a:1"));
        assert!(load.try_take(2));
        assert!(load.try_take(2));
        assert!(!load.try_take(2));
        load.take();
        assert_eq!(load.in_flight(), 3);
        assert!(load.try_take(4));
    }
}
