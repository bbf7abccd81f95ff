//! `Registrar`: puts this service in a registry; `Registration`, the guard that owns
//! the registration and takes it out again.

use std::fmt;

use crate::Result;

/// Registers one instance of this service in a registry and removes it again.
///
/// [`register`](Registrar::register) returns a [`Registration`] guard, the one owner
/// of the registration: dropping the guard deregisters. The registrar itself does not
/// deregister when dropped, so it may go out of scope while its guard lives.
///
/// Both calls are idempotent: registering twice keeps one registration in the
/// registry (and returns a second guard for it: the first guard dropped ends it),
/// deregistering what is not registered is `Ok`. A registrar that must keep its
/// registration alive (TTL, lease, session, heartbeat) does so on its own named thread,
/// and restores the registration by itself if the registry loses it.
///
/// ```
/// use waypost::{Instance, MemoryRegistry, Registrar};
/// let registry = MemoryRegistry::new();
/// let registration = registry.registrar("api", Instance::new("10.0.0.1:80")).register()?;
/// assert_eq!(registry.instances("api").len(), 1);
/// drop(registration); // deregisters
/// assert!(registry.instances("api").is_empty());
/// # Ok::<(), waypost::Error>(())
/// ```
pub trait Registrar: Send + Sync {
    /// Registers the instance (again, if the registry lost it) and returns the guard
    /// that deregisters it when dropped.
    fn register(&self) -> Result<Registration>;

    /// Removes the instance and stops any keep-alive thread, whatever guards are alive.
    fn deregister(&self) -> Result<()>;
}

impl<T: Registrar + ?Sized> Registrar for Box<T> {
    fn register(&self) -> Result<Registration> {
        (**self).register()
    }
    fn deregister(&self) -> Result<()> {
        (**self).deregister()
    }
}

impl<T: Registrar + ?Sized> Registrar for std::sync::Arc<T> {
    fn register(&self) -> Result<Registration> {
        (**self).register()
    }
    fn deregister(&self) -> Result<()> {
        (**self).deregister()
    }
}

/// A live registration, as [`Registrar::register`] returns it: dropping it deregisters
/// (logging a failure at `warn!`); [`deregister`](Registration::deregister) does it now
/// and returns the outcome.
///
/// It owns what it needs to deregister, so it outlives the registrar that made it.
#[must_use = "dropping a Registration deregisters at once: keep it for as long as the service is up"]
pub struct Registration {
    what: String,
    deregister: Option<Box<dyn FnOnce() -> Result<()> + Send + Sync>>,
}

impl Registration {
    /// A guard that runs `deregister` once, when dropped or on
    /// [`Registration::deregister`]; `what` names the registration in logs and
    /// `Debug` (a service and instance, never a credential). For implementors of
    /// [`Registrar`].
    pub fn new(
        what: impl Into<String>,
        deregister: impl FnOnce() -> Result<()> + Send + Sync + 'static,
    ) -> Registration {
        Registration {
            what: what.into(),
            deregister: Some(Box::new(deregister)),
        }
    }

    /// Deregisters now and reports the outcome (drop can only log it).
    pub fn deregister(mut self) -> Result<()> {
        match self.deregister.take() {
            Some(deregister) => deregister(),
            None => Ok(()),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(deregister) = self.deregister.take() {
            if let Err(err) = deregister() {
                log::warn!(target: "waypost::registrar",
                    "deregistering {} on drop failed: {err}", self.what);
            }
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("what", &self.what)
            .field("live", &self.deregister.is_some())
            .finish()
    }
}
