//! A small, fast, non-cryptographic random source: SplitMix64 per thread.
//!
//! Used for backoff jitter and the random balancer. Not for anything secret.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

/// SplitMix64's increment (the "golden gamma", 2^64 / phi, odd): adding it walks the
/// state through every u64 before repeating.
pub(crate) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// One SplitMix64 step: advances `state` and returns a well-mixed 64-bit value.
#[inline]
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GAMMA);
    mix(*state)
}

/// The SplitMix64 output function: a bijection that spreads every input bit.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random u64 from this thread's generator, seeded from the OS-keyed hasher.
#[inline]
pub(crate) fn next_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
    }
    STATE.with(|s| {
        let mut state = s.get();
        let out = splitmix64(&mut state);
        s.set(state);
        out
    })
}

/// Maps a random u64 onto `0..n` (Lemire's multiply-shift; bias below 2^-32 for the
/// set sizes a balancer sees). `n` must be non-zero.
#[inline]
pub(crate) fn below(random: u64, n: usize) -> usize {
    debug_assert!(n > 0);
    ((u128::from(random) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range() {
        for n in [1usize, 2, 3, 10, 1000] {
            for _ in 0..1000 {
                assert!(below(next_u64(), n) < n);
            }
        }
        assert_eq!(below(u64::MAX, 10), 9);
        assert_eq!(below(0, 10), 0);
    }
}
