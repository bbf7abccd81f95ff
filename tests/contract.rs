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
    // Snapshots and picks may be kept and sent to other threads.
    send_sync::<waypost::Endpoints<Ep>>();
    send_sync::<waypost::lb::Pick<Ep>>();
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

/// Factories need no annotations: the bare endpoint, an endpoint with a closer, and
/// `?` on any error type all infer.
#[test]
fn factories_need_no_type_annotations() {
    let bare = DefaultEndpointer::new(FixedInstancer::new(["10.0.0.1:80"]), |i| {
        Ok(i.addr().to_owned())
    })
    .unwrap();
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = closed.clone();
    let with_closer = DefaultEndpointer::new(FixedInstancer::new(["10.0.0.1:80"]), move |i| {
        let port: u16 = i.addr().rsplit(':').next().unwrap_or_default().parse()?;
        let flag = flag.clone();
        Ok(waypost::Made::new(port)
            .on_close(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)))
    })
    .unwrap();
    bare.wait_ready(std::time::Duration::from_secs(5)).unwrap();
    with_closer
        .wait_ready(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(&bare.endpoints().unwrap()[..], ["10.0.0.1:80"]);
    assert_eq!(&with_closer.endpoints().unwrap()[..], [80]);
    with_closer.close();
    assert!(closed.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn balancers_are_object_safe() {
    fn boxed(lb: Box<dyn waypost::lb::Balancer<Ep>>) -> Box<dyn waypost::lb::Balancer<Ep>> {
        lb
    }
    let noop: Ep = Arc::new(|| {});
    let lb = boxed(Box::new(RoundRobin::new(FixedEndpointer::new(vec![noop]))));
    (lb.pick().unwrap())();
}
