//! Per-instance state for balancers that learn from calls, kept beside each snapshot
//! and carried over, by instance identity, to the next.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::lb::{Balancer, CallObserver, Outcome, Pick};
use crate::snapshot::DeriveFn;
use crate::{DeriveAny, Derived, Endpointer, Endpoints, Instance, Result};

/// One state per endpoint of a snapshot, aligned with it: `states[i]` belongs to the
/// i-th instance. An instance that stays in the set keeps its state (the same `Arc`);
/// a new one starts from `make`; a removed one's state is dropped with the last
/// snapshot and pick that hold it.
pub(crate) struct Table<S> {
    pub(crate) states: Box<[Arc<S>]>,
}

impl<S> Table<S> {
    /// The state of the endpoint at `index` of the snapshot this table was made for.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> &Arc<S> {
        &self.states[index]
    }
}

/// What a table's states are made and dropped by.
pub(crate) trait Keep<S>: Send + Sync + 'static {
    /// A fresh state for an instance new to the set.
    fn make(&self, instance: &Instance) -> S;

    /// The set changed: `states` is the new table, `removed` the states of instances
    /// that left. Runs on the endpointer's thread, before the snapshot is served.
    fn changed(&self, states: &[Arc<S>], removed: &[Arc<S>]) {
        let _ = (states, removed);
    }
}

/// Makes a table for every snapshot, carrying states over by instance identity.
#[allow(clippy::type_complexity)]
fn deriver<E: 'static, S: Send + Sync + 'static>(
    keep: Arc<dyn Keep<S>>,
) -> impl Fn(&Endpoints<E>, Option<(&Endpoints<E>, &Table<S>)>) -> Table<S> + Send + Sync + 'static
{
    move |new, previous| {
        let mut kept: HashMap<&str, &Arc<S>> = match previous {
            Some((snapshot, table)) => (snapshot.instances().iter())
                .map(|instance| instance.addr())
                .zip(table.states.iter())
                .collect(),
            None => HashMap::new(),
        };
        let states: Box<[Arc<S>]> = (new.instances().iter())
            .map(|instance| match kept.remove(instance.addr()) {
                Some(state) => state.clone(),
                None => Arc::new(keep.make(instance)),
            })
            .collect();
        let removed: Vec<Arc<S>> = kept.into_values().cloned().collect();
        keep.changed(&states, &removed);
        Table { states }
    }
}

/// Attaches a table of `S` to `endpointer`'s snapshots.
pub(crate) fn track<E, S, P>(endpointer: &P, keep: Arc<dyn Keep<S>>) -> Result<Derived<Table<S>>>
where
    E: 'static,
    S: Send + Sync + 'static,
    P: Endpointer<E>,
{
    endpointer
        .attach(Arc::new(DeriveFn::new(deriver::<E, S>(keep))))
        .map(Derived::new)
}

/// Attaches a table of `S` to the snapshots of the endpointer `balancer` picks from.
pub(crate) fn track_through<E, S, B>(
    balancer: &B,
    keep: Arc<dyn Keep<S>>,
) -> Result<Derived<Table<S>>>
where
    E: 'static,
    S: Send + Sync + 'static,
    B: Balancer<E> + ?Sized,
{
    let derive: Arc<dyn DeriveAny<E>> = Arc::new(DeriveFn::new(deriver::<E, S>(keep)));
    balancer.attach(derive).map(Derived::new)
}

/// `pick`, its end heard by its instance's state in `table`.
#[inline]
pub(crate) fn observe<E, S>(
    pick: Pick<E>,
    table: &Derived<Table<S>>,
    started: Option<Instant>,
) -> Pick<E>
where
    E: 'static,
    S: CallObserver<E> + Send + Sync + 'static,
{
    pick.observed_in(table.slot(), ended::<E, S>, started)
}

/// Tells the state of the endpoint at `index` of `snapshot`, in the table in `slot`,
/// how its call ended.
fn ended<E, S>(
    snapshot: &Endpoints<E>,
    slot: usize,
    index: usize,
    outcome: Outcome,
    started: Option<Instant>,
) where
    E: 'static,
    S: CallObserver<E> + Send + Sync + 'static,
{
    if let Some(table) = snapshot.derived(&Derived::<Table<S>>::new(slot)) {
        table.get(index).ended(snapshot, index, outcome, started);
    }
}
