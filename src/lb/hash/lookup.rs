//! The table a consistent hash looks keys up in, derived from each snapshot, and the
//! walk from a key's instance to the next ones.

use std::sync::Arc;

use super::{maglev, ring};
use crate::{Derived, Endpointer, Endpoints, Instance, Result};

/// Which table a [`ConsistentHash`](super::ConsistentHash) builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A ring hash of at least this many points.
    Ring(usize),
    /// A Maglev table.
    Maglev,
}

/// One snapshot's table: the instance (its index in the snapshot) of each entry, in
/// the order a walk visits them, and for a ring the hash of each point.
pub(crate) struct Lookup {
    owners: Box<[u32]>,
    ring: Option<Box<[u64]>>,
}

impl Lookup {
    /// The table of `kind` for `instances`.
    pub(crate) fn build(instances: &[Instance], kind: Kind) -> Lookup {
        let addrs: Vec<&str> = instances.iter().map(Instance::addr).collect();
        match kind {
            Kind::Ring(min_entries) => {
                let (hashes, owners) = ring::build(&addrs, min_entries);
                Lookup {
                    owners,
                    ring: Some(hashes),
                }
            }
            Kind::Maglev => Lookup {
                owners: maglev::build(&addrs),
                ring: None,
            },
        }
    }

    /// The entries of the table.
    pub(crate) fn len(&self) -> usize {
        self.owners.len()
    }

    /// The entry of `hash`. The table must not be empty.
    #[inline]
    fn start(&self, hash: u64) -> usize {
        match &self.ring {
            Some(hashes) => ring::position(hashes, hash),
            None => maglev::slot(hash, self.owners.len()),
        }
    }

    /// The instance `hash` belongs to, then the ones to fall back on, for a set of
    /// `n` instances (the table's): the instances of the entries that follow the key's
    /// (the ring's next points clockwise, Maglev's next slots), each run of one
    /// instance counted once, for at most `8 × n + 8` entries; then every instance in
    /// index order after the key's, so that each is visited at least once. The table
    /// must not be empty.
    #[inline]
    pub(crate) fn walk(&self, hash: u64, n: usize) -> Walk<'_> {
        let at = self.start(hash);
        let first = self.owners[at] as usize;
        Walk {
            owners: &self.owners,
            at,
            entries: self.owners.len().min(8 * n + 8),
            last: first,
            first,
            scanned: 0,
            n,
            started: false,
        }
    }
}

/// The instances a key may go to, in order: see [`Lookup::walk`].
pub(crate) struct Walk<'a> {
    owners: &'a [u32],
    at: usize,
    entries: usize,
    last: usize,
    first: usize,
    scanned: usize,
    n: usize,
    started: bool,
}

impl Iterator for Walk<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if !self.started {
            self.started = true;
            self.entries -= 1;
            return Some(self.first);
        }
        while self.entries > 0 {
            self.entries -= 1;
            self.at += 1;
            if self.at == self.owners.len() {
                self.at = 0;
            }
            let owner = self.owners[self.at] as usize;
            if owner != self.last {
                self.last = owner;
                return Some(owner);
            }
        }
        if self.scanned + 1 < self.n {
            self.scanned += 1;
            return Some((self.first + self.scanned) % self.n);
        }
        None
    }
}

/// Attaches a table of `kind` to `endpointer`'s snapshots. It is built on the
/// endpointer's thread when the set of addresses changes, and shared (one `Arc`) by
/// the snapshots of the same set.
pub(crate) fn attach<E: 'static, P: Endpointer<E>>(
    endpointer: &P,
    kind: Kind,
) -> Result<Derived<Arc<Lookup>>> {
    endpointer.derive(
        move |new: &Endpoints<E>, previous: Option<(&Endpoints<E>, &Arc<Lookup>)>| {
            if let Some((old, lookup)) = previous {
                let same = |a: &[Instance], b: &[Instance]| {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.addr() == y.addr())
                };
                if same(old.instances(), new.instances()) {
                    return lookup.clone();
                }
            }
            Arc::new(Lookup::build(new.instances(), kind))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(n: usize) -> Vec<Instance> {
        (0..n)
            .map(|i| Instance::new(format!("10.0.0.{i}:80")))
            .collect()
    }

    #[test]
    fn a_walk_starts_at_the_key_and_reaches_every_instance_once_scanned() {
        for kind in [Kind::Ring(64), Kind::Maglev] {
            let lookup = Lookup::build(&instances(7), kind);
            for hash in [0, 1 << 40, u64::MAX, 0x1234_5678_9ABC_DEF0] {
                let walk: Vec<usize> = lookup.walk(hash, 7).collect();
                assert_eq!(walk[0], lookup.owners[lookup.start(hash)] as usize);
                for i in 0..7 {
                    assert!(walk.contains(&i), "{kind:?}: {i} not in {walk:?}");
                }
                assert!(walk.len() <= 8 * 7 + 8 + 6);
            }
        }
        let one = Lookup::build(&instances(1), Kind::Maglev);
        assert_eq!(one.walk(5, 1).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn the_table_is_built_again_only_for_another_set() {
        let endpointer = crate::FixedEndpointer::new(vec![1, 2, 3]);
        let lookup = attach(&endpointer, Kind::Maglev).unwrap();
        let first = endpointer
            .endpoints()
            .unwrap()
            .derived(&lookup)
            .unwrap()
            .clone();
        // Attaching another deriver derives again for the same set.
        endpointer.derive(|_, _: Option<(_, &())>| ()).unwrap();
        let again = endpointer
            .endpoints()
            .unwrap()
            .derived(&lookup)
            .unwrap()
            .clone();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.len(), maglev::SIZE);
    }

    #[test]
    fn the_ring_walks_clockwise() {
        let lookup = Lookup::build(&instances(3), Kind::Ring(3));
        let hashes = lookup.ring.as_deref().unwrap();
        assert_eq!(hashes.len(), 3);
        let owner = |k: usize| lookup.owners[k % 3] as usize;
        let walk: Vec<usize> = lookup.walk(hashes[1], 3).take(3).collect();
        assert_eq!(walk, [owner(1), owner(2), owner(3)]);
    }
}
