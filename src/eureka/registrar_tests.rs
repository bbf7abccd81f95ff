//! The registrar against the in-memory fake and a manual clock.

use std::time::Instant;

use super::*;
use crate::ManualClock;
use crate::eureka::fake::{Call, Eureka};

const BOUND: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_secs(30);

fn waiting(clock: &ManualClock) {
    let until = Instant::now() + BOUND;
    while clock.pending_timers() == 0 {
        assert!(Instant::now() < until, "the heartbeat never waited");
        std::thread::yield_now();
    }
}

fn registrar(eureka: &Eureka, clock: &ManualClock) -> Registrar {
    Registrar::builder(&eureka.client(), "payments", "10.0.0.7:8080")
        .metadata("zone", "eu-1")
        .clock(clock.clone())
        .build()
        .expect("a registrar")
}

const ID: &str = "10.0.0.7:payments:8080";

fn register_call(status: Status) -> Call {
    Call::Register {
        app: "PAYMENTS".into(),
        id: ID.into(),
        status,
    }
}

#[test]
fn registers_renews_each_interval_and_cancels_on_drop() {
    let eureka = Eureka::new();
    let clock = ManualClock::new();
    let r = registrar(&eureka, &clock);
    let registration = r.register().unwrap();
    assert_eq!(eureka.next_call(), register_call(Status::Up));
    let shown = eureka.get("payments", ID).expect("registered");
    assert_eq!(
        (shown.port, shown.metadata.get("zone").map(String::as_str)),
        (Some(8080), Some("eu-1"))
    );
    for _ in 0..2 {
        waiting(&clock);
        clock.advance(EVERY);
        assert_eq!(
            eureka.next_call(),
            Call::Renew {
                app: "PAYMENTS".into(),
                id: ID.into(),
                known: true
            }
        );
    }
    drop(registration);
    assert_eq!(
        eureka.next_call(),
        Call::Cancel {
            app: "PAYMENTS".into(),
            id: ID.into()
        }
    );
    assert!(eureka.get("payments", ID).is_none());
}

#[test]
fn a_renewal_answered_404_registers_again_at_once() {
    let eureka = Eureka::new();
    let clock = ManualClock::new();
    let r = registrar(&eureka, &clock);
    let _registration = r.register().unwrap();
    eureka.next_call();
    eureka.forget("payments", ID);
    waiting(&clock);
    clock.advance(EVERY);
    assert!(matches!(
        eureka.next_call(),
        Call::Renew { known: false, .. }
    ));
    assert_eq!(
        eureka.next_call(),
        register_call(Status::Up),
        "at once, no clock moved"
    );
    assert!(eureka.get("payments", ID).is_some());
}

#[test]
fn a_failed_renewal_is_retried_sooner_than_the_interval() {
    let eureka = Eureka::new();
    let clock = ManualClock::new();
    let r = registrar(&eureka, &clock);
    let _registration = r.register().unwrap();
    eureka.next_call();
    eureka.fail_next(1);
    waiting(&clock);
    clock.advance(EVERY);
    assert_eq!(eureka.next_call(), Call::Failed("renew"));
    waiting(&clock);
    clock.advance(Duration::from_millis(200)); // the backoff's first delay, at most
    assert!(matches!(
        eureka.next_call(),
        Call::Renew { known: true, .. }
    ));
}

#[test]
fn its_own_status_is_sent_by_registering_again_and_an_override_sticks() {
    let eureka = Eureka::new();
    let clock = ManualClock::new();
    let r = Registrar::builder(&eureka.client(), "payments", "10.0.0.7:8080")
        .status(Status::Starting)
        .clock(clock.clone())
        .build()
        .unwrap();
    let _registration = r.register().unwrap();
    assert_eq!(eureka.next_call(), register_call(Status::Starting));
    r.set_status(Status::Up).unwrap();
    assert_eq!(eureka.next_call(), register_call(Status::Up));
    r.set_out_of_service(true).unwrap();
    eureka.next_call();
    assert_eq!(
        eureka.get("payments", ID).unwrap().status,
        Status::OutOfService
    );
    // The instance's own status changes under the override: the override wins.
    r.set_status(Status::Up).unwrap();
    eureka.next_call();
    assert_eq!(
        eureka.get("payments", ID).unwrap().status,
        Status::OutOfService
    );
    r.set_out_of_service(false).unwrap();
    assert!(matches!(eureka.next_call(), Call::RemoveOverride { .. }));
    assert_eq!(
        eureka.next_call(),
        register_call(Status::Up),
        "its own status, at once"
    );
    assert_eq!(eureka.get("payments", ID).unwrap().status, Status::Up);
    assert!(matches!(
        r.set_status(Status::OutOfService),
        Err(Error::InvalidConfig {
            field: "status",
            ..
        })
    ));
}

#[test]
fn deregister_stops_the_heartbeat_and_a_forgotten_instance_is_ok() {
    let eureka = Eureka::new();
    let clock = ManualClock::new();
    let r = registrar(&eureka, &clock);
    let registration = r.register().unwrap();
    eureka.next_call();
    eureka.forget("payments", ID);
    registration
        .deregister()
        .expect("a forgotten instance cancels fine");
    assert!(matches!(eureka.next_call(), Call::Cancel { .. }));
    r.deregister().expect("idempotent");
    clock.advance(EVERY * 3);
    eureka.drain();
    assert_eq!(clock.pending_timers(), 0, "no heartbeat waits any more");
}

#[test]
fn bad_settings_are_refused() {
    let eureka = Eureka::new();
    let client = eureka.client();
    let refused = |b: RegistrarBuilder, field: &str| match b.build() {
        Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
        other => panic!("{field}: {other:?}"),
    };
    refused(Registrar::builder(&client, "", "10.0.0.1:80"), "app");
    refused(
        Registrar::builder(&client, "a", "10.0.0.1:80").instance_id("x/y"),
        "instance_id",
    );
    refused(
        Registrar::builder(&client, "a", "10.0.0.1:80").status(Status::OutOfService),
        "status",
    );
    refused(
        Registrar::builder(&client, "a", "10.0.0.1:80").renewal_interval(Duration::from_secs(90)),
        "renewal_interval",
    );
    assert!(matches!(
        Registrar::builder(&client, "a", "10.0.0.1").build(),
        Err(Error::InvalidInstance(_))
    ));
}
