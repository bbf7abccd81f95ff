//! `MemoryRegistrar`: one instance's registration in the memory registry.

use std::fmt;

use crate::{Instance, Registrar, Registration, Result};

/// Registers one instance under one service of a
/// [`MemoryRegistry`](super::MemoryRegistry); made by
/// [`MemoryRegistry::registrar`](super::MemoryRegistry::registrar).
///
/// Each registrar is its own registration: two registrars for the same address keep
/// the address listed until both have deregistered. The [`Registration`] that
/// [`register`](Registrar::register) returns deregisters when dropped.
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
    fn register(&self) -> Result<Registration> {
        MemoryRegistrar::register(self)
    }
    fn deregister(&self) -> Result<()> {
        MemoryRegistrar::deregister(self)
    }
}

impl MemoryRegistrar {
    /// Lists the instance; the guard returned removes it when dropped.
    pub fn register(&self) -> Result<Registration> {
        self.registry.insert(&self.service, self.id, &self.instance);
        let (registry, service, id) = (self.registry.clone(), self.service.clone(), self.id);
        Ok(Registration::new(
            format!("{} {}", self.service, self.instance),
            move || {
                registry.remove(&service, id);
                Ok(())
            },
        ))
    }
    /// Removes the instance. `Ok` when it is not listed.
    pub fn deregister(&self) -> Result<()> {
        self.registry.remove(&self.service, self.id);
        Ok(())
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
