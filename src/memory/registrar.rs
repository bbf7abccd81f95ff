//! `MemoryRegistrar`: one instance's registration in the memory registry.

use std::fmt;

use crate::{Instance, Registrar, Result};

/// Registers one instance under one service of a
/// [`MemoryRegistry`](super::MemoryRegistry); made by
/// [`MemoryRegistry::registrar`](super::MemoryRegistry::registrar).
///
/// Each registrar is its own registration: two registrars for the same address keep
/// the address listed until both have deregistered. Like every backend's registrar,
/// dropping it deregisters.
pub struct MemoryRegistrar {
    registry: super::MemoryRegistry,
    service: Box<str>,
    id: u64,
    instance: Instance,
}

impl MemoryRegistrar {
    pub(super) fn new(
        registry: super::MemoryRegistry,
        service: Box<str>,
        id: u64,
        instance: Instance,
    ) -> Self {
        MemoryRegistrar {
            registry,
            service,
            id,
            instance,
        }
    }

    /// The registered instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }
}

impl Registrar for MemoryRegistrar {
    fn register(&self) -> Result<()> {
        self.registry.insert(&self.service, self.id, &self.instance);
        Ok(())
    }
    fn deregister(&self) -> Result<()> {
        self.registry.remove(&self.service, self.id);
        Ok(())
    }
}

impl Drop for MemoryRegistrar {
    fn drop(&mut self) {
        self.registry.remove(&self.service, self.id);
    }
}

impl fmt::Debug for MemoryRegistrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRegistrar")
            .field("service", &self.service)
            .field("instance", &self.instance)
            .finish()
    }
}
