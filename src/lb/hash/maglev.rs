//! The lookup table of Maglev hashing: every slot of a prime-sized table filled by
//! the instances in turn, each following its own permutation of the slots.
//!
//! # Algorithm
//! Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer"
//! (NSDI 2016), section 3.4. Each instance's permutation of the `M` slots (`M`
//! prime) comes from two hashes of its address: `offset = h1 mod M` and
//! `skip = h2 mod (M - 1) + 1`, its j-th preference being `(offset + j × skip) mod M`
//! (`skip` is coprime with `M`, so this visits every slot). The instances take turns,
//! each claiming its next preferred slot still free, until the table is full: every
//! instance gets `M / N` slots, give or take one. A key belongs to the instance in
//! slot `hash mod M` (here Lemire's multiply-shift, `hash × M / 2^64`, which spreads
//! the full 64-bit hash the same way without a division).
//!
//! `h1` and `h2` are XXH64 of the address with seeds 0 and 1. The instances take their
//! turns in the order of their addresses, so the table depends only on the set. `M`
//! is 65,537 (the paper's small table size), or for more than 6,553 instances the
//! first prime at or above 10 × N, so that each instance has at least ten slots.

use super::xxh64::xxh64;

/// The table size for sets of up to [`SMALL_SET`] instances: a prime.
pub(crate) const SIZE: usize = 65_537;

/// The largest set that gets [`SIZE`] slots (at least ten slots each).
const SMALL_SET: usize = SIZE / 10;

/// The table size for `n` instances: a prime of at least ten slots per instance.
pub(crate) fn size(n: usize) -> usize {
    if n <= SMALL_SET {
        return SIZE;
    }
    (n.saturating_mul(10)..)
        .find(|&m| is_prime(m))
        .unwrap_or(SIZE)
}

fn is_prime(m: usize) -> bool {
    m >= 2 && (2..).take_while(|d| d * d <= m).all(|d| m % d != 0)
}

/// The table for `addrs` (any order): for each slot, the index in `addrs` of the
/// instance it belongs to. Empty for an empty set.
pub(crate) fn build(addrs: &[&str]) -> Box<[u32]> {
    const FREE: u32 = u32::MAX;
    let n = addrs.len();
    if n == 0 {
        return Box::new([]);
    }
    let m = size(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|&i| addrs[i]);
    // Each instance's next preference and its step, in turn order.
    let mut next: Vec<usize> = Vec::with_capacity(n);
    let mut skip: Vec<usize> = Vec::with_capacity(n);
    for &i in &order {
        let addr = addrs[i].as_bytes();
        next.push((xxh64(addr, 0) % m as u64) as usize);
        skip.push((xxh64(addr, 1) % (m as u64 - 1)) as usize + 1);
    }
    let mut slots = vec![FREE; m].into_boxed_slice();
    let mut filled = 0;
    while filled < m {
        for (turn, &owner) in order.iter().enumerate() {
            let mut c = next[turn];
            while slots[c] != FREE {
                c += skip[turn];
                if c >= m {
                    c -= m;
                }
            }
            slots[c] = owner as u32;
            c += skip[turn];
            next[turn] = if c >= m { c - m } else { c };
            filled += 1;
            if filled == m {
                break;
            }
        }
    }
    slots
}

/// The slot of `hash` in a table of `len` slots.
#[inline]
pub(crate) fn slot(hash: u64, len: usize) -> usize {
    ((u128::from(hash) * len as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_prime_with_ten_slots_each() {
        assert!(is_prime(SIZE));
        assert_eq!(size(1), SIZE);
        assert_eq!(size(SMALL_SET), SIZE);
        let m = size(10_000);
        assert!(m >= 100_000 && is_prime(m), "{m}");
        assert!(!is_prime(1) && !is_prime(65_535) && is_prime(2));
    }

    #[test]
    fn every_slot_is_taken_evenly_and_the_table_depends_only_on_the_set() {
        let addrs = ["c:1", "a:1", "b:1", "d:1", "e:1"];
        let table = build(&addrs);
        assert_eq!(table.len(), SIZE);
        let mut counts = [0usize; 5];
        for &owner in table.iter() {
            counts[owner as usize] += 1;
        }
        for count in counts {
            assert!(count.abs_diff(SIZE / 5) <= 1, "{counts:?}");
        }
        let sorted = build(&["a:1", "b:1", "c:1", "d:1", "e:1"]);
        let name = |t: &[u32], a: &[&'static str], s: usize| a[t[s] as usize];
        for s in (0..SIZE).step_by(97) {
            assert_eq!(
                name(&table, &addrs, s),
                name(&sorted, &["a:1", "b:1", "c:1", "d:1", "e:1"], s)
            );
        }
        assert!(build(&[]).is_empty());
        assert!(build(&["x:1"]).iter().all(|&o| o == 0));
    }

    #[test]
    fn slots_cover_the_table() {
        assert_eq!(slot(0, SIZE), 0);
        assert_eq!(slot(u64::MAX, SIZE), SIZE - 1);
        assert_eq!(slot(1 << 63, 2), 1);
    }
}
