//! The ring of a ring hash: several points per instance on a 64-bit circle.
//!
//! # Algorithm
//! Karger et al., "Consistent Hashing and Random Trees" (STOC 1997), laid out as
//! Envoy's `RING_HASH`: each instance is hashed at several points of the circle of
//! 64-bit values, the point `k` of instance `addr` being XXH64 of the text
//! `"{addr}_{k}"`; the points are sorted, and a key belongs to the instance of the
//! first point at or after its hash, wrapping round (found by binary search).
//!
//! The ring has at least `min_entries` points (Envoy's `minimum_ring_size`, default
//! 1,024). Where Envoy gives each of N instances `ceil(min_entries / N)` points,
//! waypost rounds that count up to a power of two: the count then stays the same
//! when one instance joins or leaves (unless N crosses a power-of-two ratio of
//! `min_entries`), so the points of the others stay where they were, and only the
//! keys of the instance that joined or left move.

use super::xxh64::xxh64;

/// The most points a ring is asked for (Envoy's `maximum_ring_size` default, 8M).
pub(crate) const MAX_ENTRIES: usize = 1 << 23;

/// How many points each of `n` instances gets for a ring of at least `min_entries`.
pub(crate) fn points_per_instance(min_entries: usize, n: usize) -> usize {
    min_entries.div_ceil(n.max(1)).max(1).next_power_of_two()
}

/// The points of a ring over `addrs` (any order), sorted: each point's hash, and the
/// index in `addrs` of the instance it belongs to. A tie between two hashes goes to
/// the lower address, so the ring depends only on the set of addresses.
pub(crate) fn build(addrs: &[&str], min_entries: usize) -> (Box<[u64]>, Box<[u32]>) {
    let per = points_per_instance(min_entries, addrs.len());
    let mut points: Vec<(u64, u32)> = Vec::with_capacity(per * addrs.len());
    let mut text = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        text.clear();
        text.extend_from_slice(addr.as_bytes());
        text.push(b'_');
        let prefix = text.len();
        for k in 0..per {
            text.truncate(prefix);
            text.extend_from_slice(k.to_string().as_bytes());
            points.push((xxh64(&text, 0), i as u32));
        }
    }
    points.sort_unstable_by(|a, b| {
        (a.0.cmp(&b.0)).then_with(|| addrs[a.1 as usize].cmp(addrs[b.1 as usize]))
    });
    let (hashes, owners): (Vec<u64>, Vec<u32>) = points.into_iter().unzip();
    (hashes.into(), owners.into())
}

/// The position in `hashes` (sorted) of the point that `hash` belongs to: the first
/// at or after it, wrapping round to the first point. `hashes` must not be empty.
#[inline]
pub(crate) fn position(hashes: &[u64], hash: u64) -> usize {
    let at = hashes.partition_point(|&point| point < hash);
    if at == hashes.len() { 0 } else { at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_per_instance_are_a_power_of_two_covering_the_minimum() {
        assert_eq!(points_per_instance(1024, 10), 128);
        assert_eq!(points_per_instance(1024, 9), 128);
        assert_eq!(points_per_instance(1024, 100), 16);
        assert_eq!(points_per_instance(1024, 1000), 2);
        assert_eq!(points_per_instance(1024, 5000), 1);
        assert_eq!(points_per_instance(1, 0), 1);
    }

    #[test]
    fn the_ring_is_sorted_and_depends_only_on_the_set() {
        let (hashes, owners) = build(&["b:1", "a:1", "c:1"], 16);
        assert_eq!(hashes.len(), 3 * 8);
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
        let (same, reordered) = build(&["a:1", "b:1", "c:1"], 16);
        assert_eq!(hashes, same);
        let names = |owners: &[u32], addrs: &[&'static str]| -> Vec<&'static str> {
            owners.iter().map(|&i| addrs[i as usize]).collect()
        };
        assert_eq!(
            names(&owners, &["b:1", "a:1", "c:1"]),
            names(&reordered, &["a:1", "b:1", "c:1"])
        );
        // Envoy's point text: the first point of "a:1" is the hash of "a:1_0".
        assert!(same.contains(&xxh64(b"a:1_0", 0)));
    }

    #[test]
    fn a_key_goes_to_the_next_point_wrapping_round() {
        let hashes = [10, 20, 30];
        assert_eq!(position(&hashes, 0), 0);
        assert_eq!(position(&hashes, 10), 0);
        assert_eq!(position(&hashes, 11), 1);
        assert_eq!(position(&hashes, 30), 2);
        assert_eq!(position(&hashes, 31), 0);
        assert_eq!(position(&hashes, u64::MAX), 0);
    }
}
