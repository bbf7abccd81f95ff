//! A fake [`Client`] for unit tests: health answers are scripted through a channel,
//! agent calls act on a tiny in-memory agent, and every call is recorded.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use parking_lot::Mutex;

use super::client::{Client, Health, HealthQuery, Service, ServiceRegistration};
use crate::{Error, HttpError, HttpErrorKind, Result};

/// A call the fake saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Health {
        index: u64,
        wait: Duration,
        passing_only: bool,
        tags: Vec<String>,
    },
    Register(String),
    Deregister(String),
    Pass(String),
    Lookup(String),
}

#[derive(Debug)]
struct Shared {
    answers: Receiver<Result<Health>>,
    ops: Sender<Op>,
    /// Service ids the fake agent knows.
    services: Mutex<BTreeSet<String>>,
    /// Make agent calls fail (as an unreachable agent would).
    down: Mutex<bool>,
}

/// One handle; forks share the script and the agent, each has its own shutdown.
#[derive(Debug)]
pub(crate) struct FakeClient {
    shared: Arc<Shared>,
    cancel: Mutex<Option<Sender<()>>>,
    cancelled: Receiver<()>,
}

/// The test's side: feeds answers, reads calls, changes the agent.
#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) answers: Sender<Result<Health>>,
    pub(crate) ops: Receiver<Op>,
    shared: Arc<Shared>,
}

pub(crate) fn fake() -> (FakeClient, Script) {
    let (answers_tx, answers) = unbounded();
    let (ops, ops_rx) = unbounded();
    let shared = Arc::new(Shared {
        answers,
        ops,
        services: Mutex::new(BTreeSet::new()),
        down: Mutex::new(false),
    });
    let script = Script {
        answers: answers_tx,
        ops: ops_rx,
        shared: shared.clone(),
    };
    (FakeClient::handle(shared), script)
}

/// An HTTP error of `kind` as the real client would report it.
pub(crate) fn http_error(kind: HttpErrorKind, status: Option<u16>) -> Error {
    let error = HttpError::new("consul", "GET /fake", "http://fake", kind);
    match status {
        Some(status) => error.with_status(status).into(),
        None => error.into(),
    }
}

impl Script {
    /// The agent forgets every registration (a restart with a fresh data dir).
    pub(crate) fn lose_registrations(&self) {
        self.shared.services.lock().clear();
    }
    pub(crate) fn knows(&self, id: &str) -> bool {
        self.shared.services.lock().contains(id)
    }
    pub(crate) fn set_down(&self, down: bool) {
        *self.shared.down.lock() = down;
    }
    /// The next recorded call, waiting at most 10 s.
    pub(crate) fn next_op(&self) -> Op {
        self.ops
            .recv_timeout(Duration::from_secs(10))
            .expect("a call within 10 s")
    }
}

impl FakeClient {
    fn handle(shared: Arc<Shared>) -> FakeClient {
        let (cancel, cancelled) = crossbeam_channel::bounded(0);
        FakeClient {
            shared,
            cancel: Mutex::new(Some(cancel)),
            cancelled,
        }
    }

    fn check(&self) -> Result<()> {
        if self.cancel.lock().is_none() {
            return Err(http_error(HttpErrorKind::Cancelled, None));
        }
        if *self.shared.down.lock() {
            return Err(http_error(HttpErrorKind::Connect, None));
        }
        Ok(())
    }

    fn record(&self, op: Op) {
        let _ = self.shared.ops.send(op);
    }
}

impl Client for FakeClient {
    fn health_service(&self, _service: &str, query: &HealthQuery<'_>) -> Result<Health> {
        self.record(Op::Health {
            index: query.index,
            wait: query.wait,
            passing_only: query.passing_only,
            tags: query.tags.to_vec(),
        });
        self.check()?;
        select! {
            recv(self.shared.answers) -> answer => answer.unwrap_or_else(|_| Err(http_error(HttpErrorKind::Transport, None))),
            recv(self.cancelled) -> _ => Err(http_error(HttpErrorKind::Cancelled, None)),
        }
    }

    fn register_service(&self, registration: &ServiceRegistration) -> Result<()> {
        self.record(Op::Register(registration.id.clone()));
        self.check()?;
        self.shared.services.lock().insert(registration.id.clone());
        Ok(())
    }

    fn deregister_service(&self, service_id: &str) -> Result<()> {
        self.record(Op::Deregister(service_id.into()));
        self.check()?;
        self.shared.services.lock().remove(service_id);
        Ok(())
    }

    fn pass_ttl(&self, check_id: &str) -> Result<()> {
        self.record(Op::Pass(check_id.into()));
        self.check()?;
        let id = check_id.strip_prefix("service:").unwrap_or(check_id);
        if self.shared.services.lock().contains(id) {
            Ok(())
        } else {
            // What Consul 1.8 answers for an unknown check: 500, not 404.
            Err(http_error(HttpErrorKind::Status, Some(500)))
        }
    }

    fn agent_service(&self, service_id: &str) -> Result<Option<Service>> {
        self.record(Op::Lookup(service_id.into()));
        self.check()?;
        Ok(self
            .shared
            .services
            .lock()
            .contains(service_id)
            .then(|| Service {
                id: service_id.into(),
                ..Service::default()
            }))
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(FakeClient::handle(self.shared.clone()))
    }

    fn shutdown(&self) {
        self.cancel.lock().take();
    }
}
