//! `Registrar`: puts this service in a registry, and a guard that takes it out.

use std::fmt;

use crate::Result;

/// Registers one instance of this service in a registry and removes it again.
///
/// Both calls return `Result` and are idempotent: registering twice keeps one
/// registration, deregistering what is not registered is `Ok`. A registrar that must
/// keep its registration alive (TTL, lease, session, heartbeat) does so on its own named
/// thread, and restores the registration by itself if the registry loses it.
pub trait Registrar: Send + Sync {
    /// Registers the instance (again, if the registry lost it).
    fn register(&self) -> Result<()>;

    /// Removes the instance and stops any keep-alive thread.
    fn deregister(&self) -> Result<()>;
}

impl<T: Registrar + ?Sized> Registrar for Box<T> {
    fn register(&self) -> Result<()> {
        (**self).register()
    }
    fn deregister(&self) -> Result<()> {
        (**self).deregister()
    }
}

impl<T: Registrar + ?Sized> Registrar for std::sync::Arc<T> {
    fn register(&self) -> Result<()> {
        (**self).register()
    }
    fn deregister(&self) -> Result<()> {
        (**self).deregister()
    }
}

/// A live registration: registers on creation, deregisters on drop.
///
/// ```
/// use waypost::{Instance, MemoryRegistry, Registration};
/// let registry = MemoryRegistry::new();
/// {
///     let _reg = Registration::new(registry.registrar("api", Instance::new("10.0.0.1:80")))?;
///     assert_eq!(registry.instances("api").len(), 1);
/// }
/// assert!(registry.instances("api").is_empty());
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct Registration<R: Registrar> {
    registrar: Option<R>,
}

impl<R: Registrar> Registration<R> {
    /// Registers with `registrar`; the guard deregisters when dropped.
    pub fn new(registrar: R) -> Result<Registration<R>> {
        registrar.register()?;
        Ok(Registration {
            registrar: Some(registrar),
        })
    }

    /// The registrar behind the guard.
    pub fn registrar(&self) -> &R {
        self.registrar.as_ref().expect("present until drop")
    }

    /// Deregisters now and reports the outcome (drop can only log it).
    pub fn deregister(mut self) -> Result<()> {
        let registrar = self.registrar.take().expect("present until drop");
        registrar.deregister()
    }
}

impl<R: Registrar> Drop for Registration<R> {
    fn drop(&mut self) {
        if let Some(registrar) = self.registrar.take() {
            if let Err(err) = registrar.deregister() {
                log::warn!(target: "waypost::registrar", "deregistering on drop failed: {err}");
            }
        }
    }
}

impl<R: Registrar + fmt::Debug> fmt::Debug for Registration<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("registrar", &self.registrar)
            .finish()
    }
}
