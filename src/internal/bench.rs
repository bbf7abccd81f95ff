//! NOT PART OF THE API: a hook for the crate's own benchmarks (`benches/updates.rs`).
//!
//! It lets a benchmark push an arbitrary instance list through the same [`Publisher`]
//! every backend uses, which the public API cannot do (a memory registry's change is a
//! deregistration plus a registration, each republishing the whole list). Hidden from
//! the docs; it may change or vanish in any release.

use crossbeam_channel::Sender;

use crate::internal::publisher::Publisher;
use crate::{Event, Instance, Instancer};

/// An [`Instancer`] fed by hand, the way a backend's watch thread feeds its publisher.
#[derive(Debug, Default)]
pub struct BenchInstancer {
    publisher: Publisher,
}

impl BenchInstancer {
    /// An instancer with no state yet.
    pub fn new() -> BenchInstancer {
        BenchInstancer::default()
    }

    /// What a backend does with a registry answer: a complete list in any order.
    pub fn publish_unsorted(&self, instances: Vec<Instance>) {
        self.publisher.publish_instances(instances);
    }

    /// Publishes an event as it is (e.g. [`Event::instances`] of a sorted list).
    pub fn publish(&self, event: Event) {
        self.publisher.publish(event);
    }
}

impl Instancer for BenchInstancer {
    fn register(&self, tx: Sender<Event>) {
        self.publisher.register(tx);
    }
    fn deregister(&self, tx: &Sender<Event>) {
        self.publisher.deregister(tx);
    }
    fn stop(&self) {}
}
