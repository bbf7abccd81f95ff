//! `MemoryInstancer`: the memory registry's view of one service.

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::internal::publisher::Publisher;
use crate::{Event, Instancer};

/// Watches one service of a [`MemoryRegistry`](super::MemoryRegistry); made by
/// [`MemoryRegistry::instancer`](super::MemoryRegistry::instancer).
///
/// Changes arrive synchronously from the registrars, so there is no thread. After
/// [`stop`](Instancer::stop) (or drop) the registry no longer pushes to it.
#[derive(Debug)]
pub struct MemoryInstancer {
    publisher: Arc<Publisher>,
    registry: Option<super::MemoryRegistry>,
}

impl MemoryInstancer {
    pub(super) fn new(publisher: Arc<Publisher>, registry: super::MemoryRegistry) -> Self {
        MemoryInstancer {
            publisher,
            registry: Some(registry),
        }
    }
}

impl Instancer for MemoryInstancer {
    fn register(&self, tx: Sender<Event>) {
        self.publisher.register(tx);
    }
    fn subscribe_latest(&self) -> crate::Subscription {
        self.publisher.subscribe_latest()
    }
    fn deregister(&self, tx: &Sender<Event>) {
        self.publisher.deregister(tx);
    }
    fn stop(&self) {
        if let Some(registry) = &self.registry {
            registry.unwatch(&self.publisher);
        }
    }
}
