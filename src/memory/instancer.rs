//! `MemoryInstancer`: the memory registry's view of one service.

use std::sync::Arc;

use crate::internal::publisher::Publisher;

/// Watches one service of a [`MemoryRegistry`](super::MemoryRegistry); made by
/// [`MemoryRegistry::instancer`](super::MemoryRegistry::instancer).
///
/// Changes arrive synchronously from the registrars, so there is no thread. After
/// [`stop`](Self::stop) (or drop) the registry no longer pushes to it.
#[derive(Debug)]
#[must_use = "dropping an instancer stops its watch"]
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

crate::internal::publisher::instancer_methods!(MemoryInstancer, |self| {
    if let Some(registry) = &self.registry {
        registry.unwatch(&self.publisher);
    }
});
