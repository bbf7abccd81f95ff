//! A `consul::Client` written outside the crate, as a user's fake would be: the wire
//! types and errors are `#[non_exhaustive]`, so this file builds every value through
//! constructors, `Default` and public fields, never a struct literal. If it compiles,
//! users can still write fakes.
#![cfg(feature = "consul")]

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use parking_lot::Mutex;
use waypost::consul::{
    Client, Health, HealthCheck, HealthQuery, Instancer, Node, Service, ServiceEntry,
    ServiceRegistration, Weights,
};
use waypost::{Error, Event, HttpError, HttpErrorKind, Result};

const BOUND: Duration = Duration::from_secs(10);

/// Health answers come from a channel; `shutdown` cuts a waiting query short.
#[derive(Debug)]
struct MyFake {
    answers: Receiver<Result<Health>>,
    cancel: Mutex<Option<Sender<()>>>,
    cancelled: Receiver<()>,
}

impl MyFake {
    fn new(answers: Receiver<Result<Health>>) -> MyFake {
        let (cancel, cancelled) = bounded(0);
        MyFake {
            answers,
            cancel: Mutex::new(Some(cancel)),
            cancelled,
        }
    }
}

fn cancelled() -> Error {
    HttpError::new(
        "consul",
        "GET /v1/health/service",
        "fake://",
        HttpErrorKind::Cancelled,
    )
    .into()
}

impl Client for MyFake {
    fn health_service(&self, _service: &str, _query: &HealthQuery<'_>) -> Result<Health> {
        select! {
            recv(self.answers) -> answer => answer.unwrap_or_else(|_| Err(cancelled())),
            recv(self.cancelled) -> _ => Err(cancelled()),
        }
    }
    fn register_service(&self, _registration: &ServiceRegistration) -> Result<()> {
        Ok(())
    }
    fn deregister_service(&self, _service_id: &str) -> Result<()> {
        Ok(())
    }
    fn pass_ttl(&self, _check_id: &str) -> Result<()> {
        Ok(())
    }
    fn agent_service(&self, service_id: &str) -> Result<Option<Service>> {
        let mut service = Service::new("10.0.0.1", 8080);
        service.id = service_id.into();
        Ok(Some(service))
    }
    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(MyFake::new(self.answers.clone()))
    }
    fn shutdown(&self) {
        self.cancel.lock().take();
    }
}

fn entry(id: &str, address: &str, port: u16) -> ServiceEntry {
    let mut service = Service::new(address, port);
    service.id = id.into();
    service.service = "api".into();
    service.tags = vec!["v2".into()];
    service.meta.insert("version".into(), "2.1".into());
    service.weights = Some(Weights::new(10, 1));
    let mut node = Node::new("node-1", "192.0.2.1");
    node.datacenter = "dc1".into();
    let mut entry = ServiceEntry::new(node, service);
    entry.checks.push(HealthCheck::new("serfHealth", "passing"));
    entry
}

#[test]
fn a_fake_client_written_outside_the_crate_drives_an_instancer() {
    let (answers, script) = unbounded();
    let fake = MyFake::new(script);
    answers
        .send(Ok(Health::new(
            vec![
                entry("api-1", "10.0.0.1", 8080),
                entry("api-0", "10.0.0.2", 0),
            ],
            7,
        )))
        .unwrap();
    let instancer = Instancer::builder(&fake, "api")
        .first_fetch_timeout(BOUND)
        .build()
        .unwrap();
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);

    // The entry with port 0 makes no instance; the other keeps its metadata.
    match rx.recv_timeout(BOUND).unwrap() {
        Event::Instances(set) => {
            assert_eq!(set.len(), 1);
            assert_eq!(set[0].addr(), "10.0.0.1:8080");
            let meta = set[0].metadata().unwrap();
            assert_eq!(meta.tags().collect::<Vec<_>>(), ["v2"]);
            assert_eq!(meta.get("version"), Some("2.1"));
            assert_eq!(meta.get("service_id"), Some("api-1"));
            assert_eq!((meta.weight(), meta.zone()), (Some(10), Some("dc1")));
        }
        Event::Error(err) => panic!("expected a set: {err}"),
    }

    // An HTTP error built outside the crate reaches subscribers typed.
    let unavailable = HttpError::new(
        "consul",
        "GET /v1/health/service/api",
        "http://127.0.0.1:8500",
        HttpErrorKind::Status,
    )
    .with_status(503)
    .with_excerpt("No cluster leader");
    answers.send(Err(unavailable.into())).unwrap();
    match rx.recv_timeout(BOUND).unwrap() {
        Event::Error(err) => {
            assert_eq!(err.status(), Some(503));
            match &*err {
                Error::Http(http) => {
                    assert_eq!(http.excerpt.as_deref(), Some("No cluster leader"))
                }
                other => panic!("expected an HTTP error: {other:?}"),
            }
        }
        Event::Instances(set) => panic!("expected an error: {set:?}"),
    }
    instancer.stop();
}

#[test]
fn queries_are_built_from_default() {
    let (answers, script) = unbounded();
    let fake = MyFake::new(script);
    answers.send(Ok(Health::default())).unwrap();
    let tags = ["v2".to_owned()];
    let mut query = HealthQuery::default();
    assert!(query.passing_only && query.tags.is_empty() && query.index == 0);
    query.tags = &tags;
    query.index = 7;
    query.wait = Duration::from_secs(60);
    let health = fake.health_service("api", &query).unwrap();
    assert!(health.entries.is_empty());
    assert_eq!(fake.agent_service("x").unwrap().unwrap().port, 8080);
}
