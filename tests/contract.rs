//! The public contract, checked at compile time: what is Send + Sync, what implements
//! the core traits.

use std::sync::Arc;

use waypost::lb::{Random, Retry, RoundRobin};
use waypost::memory::{MemoryInstancer, MemoryRegistrar};
use waypost::{
    DefaultEndpointer, Endpointer, Error, Event, FixedEndpointer, FixedInstancer, Instance,
    Instancer, ManualClock, MemoryRegistry, Registrar, SystemClock,
};

fn send_sync<T: Send + Sync>() {}
fn instancer<T: Instancer>() {}
fn registrar<T: Registrar>() {}
fn endpointer<E, T: Endpointer<E>>() {}

type Ep = Arc<dyn Fn() + Send + Sync>;

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Error>();
    send_sync::<Event>();
    send_sync::<Instance>();
    send_sync::<MemoryRegistry>();
    send_sync::<ManualClock>();
    send_sync::<SystemClock>();
    send_sync::<DefaultEndpointer<Ep>>();
    send_sync::<FixedEndpointer<Ep>>();
    send_sync::<RoundRobin<DefaultEndpointer<Ep>>>();
    send_sync::<Random<Arc<DefaultEndpointer<Ep>>>>();
    send_sync::<Retry<RoundRobin<DefaultEndpointer<Ep>>>>();
}

#[test]
fn every_backend_implements_the_core_traits() {
    instancer::<FixedInstancer>();
    instancer::<MemoryInstancer>();
    instancer::<Arc<dyn Instancer>>();
    registrar::<MemoryRegistrar>();
    registrar::<Box<dyn Registrar>>();
    endpointer::<Ep, DefaultEndpointer<Ep>>();
    endpointer::<Ep, FixedEndpointer<Ep>>();
    endpointer::<Ep, Arc<DefaultEndpointer<Ep>>>();
}
