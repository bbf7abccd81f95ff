//! The bookkeeping every registrar that keeps its registration alive shares: whether
//! it is registered, the keep-alive thread, and the [`Registration`] guard whose drop
//! stops that thread and takes the registration out.
//!
//! The rules, the same for every backend:
//! - `register()` marks the registrar registered *before* it writes to the registry,
//!   so that after a partial failure `deregister()` still cleans up;
//! - it starts the keep-alive thread unless one runs (one that ended after panics is
//!   started again), so registering twice keeps one thread;
//! - `deregister()` (and the guard's) stops and joins the thread first, so that it
//!   cannot write the registration back, then removes the registration; it is `Ok`
//!   when not registered, and a failed removal leaves the registrar registered (a
//!   later `deregister()` tries again).

use std::sync::Arc;

use parking_lot::Mutex;

use super::worker::Worker;
use crate::{Registration, Result};

#[derive(Default)]
struct State {
    registered: bool,
    worker: Option<Worker>,
}

/// One registrar's registration state around its backend's `shared` part; see the
/// module docs. Cloning shares it (the guard holds a clone).
pub(crate) struct Keeper<S: Send + Sync + 'static> {
    shared: Arc<S>,
    state: Arc<Mutex<State>>,
    /// Takes the registration out of the registry.
    remove: fn(&S) -> Result<()>,
}

impl<S: Send + Sync + 'static> Clone for Keeper<S> {
    fn clone(&self) -> Self {
        Keeper {
            shared: self.shared.clone(),
            state: self.state.clone(),
            remove: self.remove,
        }
    }
}

impl<S: Send + Sync + 'static> Keeper<S> {
    /// A keeper of `shared`, not registered; `remove` takes the registration out.
    pub(crate) fn new(shared: S, remove: fn(&S) -> Result<()>) -> Keeper<S> {
        Keeper {
            shared: Arc::new(shared),
            state: Arc::default(),
            remove,
        }
    }

    /// The backend's part.
    pub(crate) fn shared(&self) -> &Arc<S> {
        &self.shared
    }

    /// Marks the registrar registered, writes the registration with `put`, and starts
    /// the keep-alive thread with `spawn` unless one runs (`spawn` may answer `None`:
    /// nothing to keep alive). The guard deregisters on drop; `what` names it in logs,
    /// read after `put` (a sequential node's name is known only then).
    pub(crate) fn register(
        &self,
        put: impl FnOnce(&S) -> Result<()>,
        what: impl FnOnce(&S) -> String,
        spawn: impl FnOnce(&Arc<S>) -> Result<Option<Worker>>,
    ) -> Result<Registration> {
        let mut state = self.state.lock();
        state.registered = true;
        put(&self.shared)?;
        let keeper = self.clone();
        let registration = Registration::new(what(&self.shared), move || keeper.deregister());
        if state.worker.as_ref().is_none_or(Worker::is_finished) {
            state.worker = spawn(&self.shared)?;
        }
        Ok(registration)
    }

    /// Stops and joins the keep-alive thread, then removes the registration if
    /// registered.
    pub(crate) fn deregister(&self) -> Result<()> {
        let mut state = self.state.lock();
        if let Some(mut worker) = state.worker.take() {
            worker.stop();
        }
        if !state.registered {
            return Ok(());
        }
        (self.remove)(&self.shared)?;
        state.registered = false;
        Ok(())
    }

    /// Runs `f` with whether the registrar is registered, while no register or
    /// deregister can run.
    #[cfg_attr(not(feature = "eureka"), allow(dead_code))] // Eureka's status changes
    pub(crate) fn while_held<T>(&self, f: impl FnOnce(bool) -> T) -> T {
        let state = self.state.lock();
        f(state.registered)
    }

    /// Whether a keep-alive thread runs (started and not ended after panics).
    #[cfg(test)]
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))] // etcd's tests
    pub(crate) fn keeping(&self) -> bool {
        let state = self.state.lock();
        state.worker.as_ref().is_some_and(|w| !w.is_finished())
    }

    /// Registered, and whether a keep-alive thread is there: for `Debug`.
    pub(crate) fn status(&self) -> (bool, bool) {
        let state = self.state.lock();
        (state.registered, state.worker.is_some())
    }
}
