//! `Event`: what an Instancer tells its subscribers.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::{Error, Instance};

/// What an [`Instancer`](crate::Instancer) sends: the complete current set of instances,
/// or an error.
///
/// An `Instances` event replaces everything known before: it is never a delta. An
/// `Error` event means "the registry could not be read, so the set last sent may be
/// stale"; it says nothing about whether those instances are still alive. Endpointers
/// keep serving the last set on an error event (unless told to invalidate after a
/// timeout). Both payloads are `Arc`s, so sending an event to many subscribers copies
/// nothing.
#[derive(Clone, Debug)]
pub enum Event {
    /// The complete, sorted, de-duplicated instance set.
    Instances(InstanceSet),
    /// The registry could not be read; the last set may be stale.
    Error(Arc<Error>),
}

impl Event {
    /// An `Instances` event from instances in any order (sorted and de-duplicated here).
    pub fn instances(instances: impl IntoIterator<Item = Instance>) -> Event {
        Event::Instances(InstanceSet::new(instances.into_iter().collect()))
    }

    /// An `Error` event.
    pub fn error(err: Error) -> Event {
        Event::Error(Arc::new(err))
    }

    /// True if both events carry the same state: the same instances with the same
    /// metadata, or errors that read the same.
    pub fn same(&self, other: &Event) -> bool {
        match (self, other) {
            (Event::Instances(a), Event::Instances(b)) => a.same(b),
            (Event::Error(a), Event::Error(b)) => Arc::ptr_eq(a, b) || same_chain(&**a, &**b),
            _ => false,
        }
    }
}

/// Two errors read the same at every level of their `source()` chain (Display leaves
/// the cause to `source()`, so comparing the top level alone would call `NotFound` and
/// `PermissionDenied` on one file the same error).
fn same_chain(a: &dyn std::error::Error, b: &dyn std::error::Error) -> bool {
    let (mut a, mut b) = (Some(a), Some(b));
    loop {
        match (a, b) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.to_string() == y.to_string() => {
                (a, b) = (x.source(), y.source());
            }
            _ => return false,
        }
    }
}

/// A sorted, de-duplicated, shared slice of instances: the payload of
/// [`Event::Instances`]. Derefs to `[Instance]`; cloning it is a reference-count bump.
///
/// Sorted by address so that consumers can diff two sets with one merge walk.
#[derive(Clone, Default)]
pub struct InstanceSet(Arc<[Instance]>);

impl InstanceSet {
    /// Sorts and de-duplicates `instances` by address. When two share an address, the
    /// first one given wins.
    pub fn new(mut instances: Vec<Instance>) -> InstanceSet {
        if !is_strictly_sorted(&instances) {
            instances.sort(); // stable, so the first of equal addresses stays first
            instances.dedup();
        }
        InstanceSet(instances.into())
    }

    /// Wraps a vector that the caller has kept sorted and free of duplicates. The
    /// promise is checked (one pass): if it does not hold, the vector is sorted here.
    pub fn from_sorted(instances: Vec<Instance>) -> InstanceSet {
        InstanceSet::new(instances)
    }

    /// Wraps a vector sorted and de-duplicated by construction (checked in debug
    /// builds only): for the publisher's incremental path, where a full check would be
    /// N string comparisons for nothing.
    pub(crate) fn from_sorted_unchecked(instances: Vec<Instance>) -> InstanceSet {
        debug_assert!(is_strictly_sorted(&instances));
        InstanceSet(instances.into())
    }

    /// The shared slice.
    pub fn as_arc(&self) -> &Arc<[Instance]> {
        &self.0
    }

    /// Same instances with the same metadata, in the same order.
    pub fn same(&self, other: &InstanceSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.len() == other.0.len()
                && self.0.iter().zip(other.0.iter()).all(|(a, b)| a.same(b)))
    }
}

fn is_strictly_sorted(instances: &[Instance]) -> bool {
    instances.windows(2).all(|w| w[0] < w[1])
}

impl Deref for InstanceSet {
    type Target = [Instance];
    fn deref(&self) -> &[Instance] {
        &self.0
    }
}

impl fmt::Debug for InstanceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl FromIterator<Instance> for InstanceSet {
    fn from_iter<T: IntoIterator<Item = Instance>>(iter: T) -> Self {
        InstanceSet::new(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_dedups_keeping_the_first() {
        let set = InstanceSet::new(vec![
            Instance::new("b:1"),
            Instance::builder("a:1").weight(1).build(),
            Instance::builder("a:1").weight(2).build(),
        ]);
        let addrs: Vec<_> = set.iter().map(Instance::addr).collect();
        assert_eq!(addrs, ["a:1", "b:1"]);
        assert_eq!(set[0].metadata().unwrap().weight(), Some(1));
    }

    #[test]
    fn same_compares_metadata_and_errors_by_text() {
        let a = Event::instances([Instance::builder("a:1").weight(1).build()]);
        let b = Event::instances([Instance::builder("a:1").weight(2).build()]);
        assert!(!a.same(&b));
        assert!(a.same(&a.clone()));
        let e1 = Event::error(Error::NoEndpoints);
        let e2 = Event::error(Error::NoEndpoints);
        assert!(e1.same(&e2));
        assert!(!e1.same(&a));
        let file = |kind| {
            Event::error(Error::File {
                path: std::path::Path::new("/x").into(),
                source: std::io::Error::from(kind),
            })
        };
        let (missing, denied) = (
            file(std::io::ErrorKind::NotFound),
            file(std::io::ErrorKind::PermissionDenied),
        );
        assert!(!missing.same(&denied), "the cause counts");
        assert!(missing.same(&file(std::io::ErrorKind::NotFound)));
    }
}
