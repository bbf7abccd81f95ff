//! The in-process registry: the embedded default for tests, demos and single-process use.
//!
//! A [`MemoryRegistry`] is a map from service name to registered instances, shared by
//! cloning. [`MemoryRegistry::registrar`] hands out a [`MemoryRegistrar`] for one
//! instance and [`MemoryRegistry::instancer`] a [`MemoryInstancer`] for one service.
//! Changes are pushed to instancers synchronously, inside `register()`/`deregister()`:
//! there is no watch thread, no polling and nothing that can fail, so a memory
//! instancer's first state is known at once (possibly the empty set).
//!
//! ```
//! use std::time::Duration;
//! use waypost::{DefaultEndpointer, Endpointer, Instance, MemoryRegistry};
//!
//! let registry = MemoryRegistry::new();
//! let registrar = registry.registrar("api", Instance::new("10.0.0.1:8080"));
//! let _registration = registrar.register()?;
//! let endpointer = DefaultEndpointer::new(registry.instancer("api"), |i| Ok(i.addr().to_owned()))?;
//! endpointer.wait_ready(Duration::from_secs(1))?;
//! assert_eq!(&endpointer.endpoints()?[..], ["10.0.0.1:8080"]);
//! # Ok::<(), waypost::Error>(())
//! ```

mod instancer;
mod registrar;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::Instance;
use crate::internal::publisher::Publisher;

pub use instancer::MemoryInstancer;
pub use registrar::MemoryRegistrar;

/// An in-process service registry. Clones share the same registry.
#[derive(Clone, Default)]
pub struct MemoryRegistry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    services: Mutex<HashMap<Box<str>, Service>>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Service {
    /// Registration id -> instance. Two registrations of one address keep it listed
    /// until both are gone.
    instances: BTreeMap<u64, Instance>,
    watchers: Vec<Weak<Publisher>>,
}

impl Service {
    fn current(&self) -> Vec<Instance> {
        self.instances.values().cloned().collect()
    }

    fn push(&mut self) {
        let current = self.current();
        self.watchers.retain(|w| match w.upgrade() {
            Some(publisher) => {
                publisher.publish_instances(current.clone());
                true
            }
            None => false,
        });
    }
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    /// The process-wide registry: what `memory://NAME` discovery URLs watch
    /// ([`discovery`](crate::discovery)). Clones share it.
    pub fn global() -> MemoryRegistry {
        static GLOBAL: std::sync::OnceLock<MemoryRegistry> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(MemoryRegistry::new).clone()
    }

    /// A registrar for `instance` under `service`. Nothing is registered until
    /// [`Registrar::register`](crate::Registrar::register) is called.
    pub fn registrar(&self, service: &str, instance: Instance) -> MemoryRegistrar {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        MemoryRegistrar::new(self.clone(), service.into(), id, instance)
    }

    /// An instancer for `service`; it has a state at once (the empty set when nothing is
    /// registered).
    pub fn instancer(&self, service: &str) -> MemoryInstancer {
        let publisher = Arc::new(Publisher::new());
        let mut services = self.inner.services.lock();
        let entry = services.entry(service.into()).or_default();
        publisher.publish_instances(entry.current());
        entry.watchers.push(Arc::downgrade(&publisher));
        MemoryInstancer::new(publisher, self.clone())
    }

    /// The instances registered under `service` now, sorted by address.
    pub fn instances(&self, service: &str) -> Vec<Instance> {
        let services = self.inner.services.lock();
        let mut list = services
            .get(service)
            .map(Service::current)
            .unwrap_or_default();
        list.sort();
        list.dedup();
        list
    }

    fn insert(&self, service: &str, id: u64, instance: &Instance) {
        let mut services = self.inner.services.lock();
        let entry = services.entry(service.into()).or_default();
        let same = entry.instances.get(&id).is_some_and(|i| i.same(instance));
        if !same {
            entry.instances.insert(id, instance.clone());
            entry.push();
        }
    }

    fn remove(&self, service: &str, id: u64) {
        let mut services = self.inner.services.lock();
        if let Some(entry) = services.get_mut(service) {
            if entry.instances.remove(&id).is_some() {
                entry.push();
            }
        }
    }

    fn unwatch(&self, publisher: &Arc<Publisher>) {
        let mut services = self.inner.services.lock();
        for service in services.values_mut() {
            service.watchers.retain(|w| {
                w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(publisher))
            });
        }
    }
}

impl fmt::Debug for MemoryRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let services = self.inner.services.lock();
        let mut map = f.debug_map();
        for (name, service) in services.iter() {
            map.entry(name, &service.instances.len());
        }
        map.finish()
    }
}
