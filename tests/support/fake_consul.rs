//! Consul [`Client`]s for integration tests. A scripted one: the test feeds health
//! answers through a channel, scripts TTL passes that panic, and reads every call made
//! (a scripted panic is what a buggy `Client` of a user's own does on the watch or
//! heartbeat thread). And a [`Spy`] around a real client, telling when each health
//! query starts.
#![cfg(feature = "consul")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use parking_lot::Mutex;
use waypost::consul::{
    Client, Health, HealthQuery, Node, Service, ServiceEntry, ServiceRegistration,
};
use waypost::{Error, Result};

use super::BOUND;

/// What the next health query does.
#[derive(Debug)]
pub enum Step {
    /// Answers with these instances (`host:port` each) at this index.
    Answer {
        index: u64,
        addrs: Vec<&'static str>,
    },
    /// Fails with an error.
    Fail,
    /// Panics with this message.
    Panic(&'static str),
}

/// A call the client saw.
#[derive(Debug, Clone)]
pub enum Op {
    Health { index: u64 },
    Register(Box<ServiceRegistration>),
    Deregister(String),
    Pass,
    Lookup,
}

#[derive(Debug)]
struct Shared {
    steps: Receiver<Step>,
    ops: Sender<Op>,
    /// How many of the next TTL passes panic.
    panicking_passes: AtomicU32,
}

/// One handle; forks share the script, each has its own shutdown.
#[derive(Debug)]
pub struct ScriptedClient {
    shared: Arc<Shared>,
    cancel: Mutex<Option<Sender<()>>>,
    cancelled: Receiver<()>,
}

/// The test's side of the script.
#[derive(Debug)]
pub struct Script {
    pub steps: Sender<Step>,
    pub ops: Receiver<Op>,
    shared: Arc<Shared>,
}

pub fn scripted() -> (ScriptedClient, Script) {
    let (steps_tx, steps) = unbounded();
    let (ops, ops_rx) = unbounded();
    let shared = Arc::new(Shared {
        steps,
        ops,
        panicking_passes: AtomicU32::new(0),
    });
    let script = Script {
        steps: steps_tx,
        ops: ops_rx,
        shared: shared.clone(),
    };
    (ScriptedClient::handle(shared), script)
}

impl Script {
    pub fn answer(&self, index: u64, addrs: &[&'static str]) {
        self.send(Step::Answer {
            index,
            addrs: addrs.to_vec(),
        });
    }

    pub fn send(&self, step: Step) {
        self.steps.send(step).unwrap();
    }

    /// The next `n` TTL passes panic.
    pub fn panic_passes(&self, n: u32) {
        self.shared.panicking_passes.store(n, Ordering::SeqCst);
    }

    /// The next recorded call, waiting at most `BOUND`.
    pub fn next_op(&self) -> Op {
        self.ops
            .recv_timeout(BOUND)
            .expect("a call within the bound")
    }

    /// The index of the next call, which must be a health query.
    pub fn next_query(&self) -> u64 {
        match self.next_op() {
            Op::Health { index } => index,
            other => panic!("expected a health query, got {other:?}"),
        }
    }
}

/// The error a failing step answers with.
pub fn failure() -> Error {
    Error::timeout("the scripted agent", Duration::ZERO)
}

impl ScriptedClient {
    fn handle(shared: Arc<Shared>) -> ScriptedClient {
        let (cancel, cancelled) = crossbeam_channel::bounded(0);
        ScriptedClient {
            shared,
            cancel: Mutex::new(Some(cancel)),
            cancelled,
        }
    }

    fn record(&self, op: Op) {
        let _ = self.shared.ops.send(op);
    }

    fn live(&self) -> Result<()> {
        match *self.cancel.lock() {
            Some(_) => Ok(()),
            None => Err(Error::Closed {
                component: "scripted client",
            }),
        }
    }
}

fn entry(addr: &str) -> ServiceEntry {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    ServiceEntry::new(
        Node::default(),
        Service::new(host, port.parse().expect("a port")),
    )
}

impl Client for ScriptedClient {
    fn health_service(&self, _service: &str, query: &HealthQuery<'_>) -> Result<Health> {
        self.record(Op::Health { index: query.index });
        self.live()?;
        let step = select! {
            recv(self.shared.steps) -> step => step.map_err(|_| failure())?,
            recv(self.cancelled) -> _ => return Err(Error::Closed { component: "scripted client" }),
        };
        match step {
            Step::Answer { index, addrs } => {
                Ok(Health::new(addrs.into_iter().map(entry).collect(), index))
            }
            Step::Fail => Err(failure()),
            Step::Panic(message) => panic!("{message}"),
        }
    }

    fn register_service(&self, registration: &ServiceRegistration) -> Result<()> {
        self.record(Op::Register(Box::new(registration.clone())));
        self.live()
    }

    fn deregister_service(&self, service_id: &str) -> Result<()> {
        self.record(Op::Deregister(service_id.into()));
        self.live()
    }

    fn pass_ttl(&self, _check_id: &str) -> Result<()> {
        self.record(Op::Pass);
        self.live()?;
        let panics = &self.shared.panicking_passes;
        if panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("scripted pass panic");
        }
        Ok(())
    }

    fn agent_service(&self, _service_id: &str) -> Result<Option<Service>> {
        self.record(Op::Lookup);
        self.live()?;
        Ok(Some(Service::default()))
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(ScriptedClient::handle(self.shared.clone()))
    }

    fn shutdown(&self) {
        self.cancel.lock().take();
    }
}

/// A client that forwards to another, reports each health query's index as the query
/// starts, and can make TTL passes fail (a process too busy to heartbeat).
#[derive(Debug)]
pub struct Spy {
    inner: Arc<dyn Client>,
    queries: Sender<u64>,
    hold_passes: Arc<AtomicBool>,
}

/// The test's side of a [`Spy`].
#[derive(Debug)]
pub struct Spied {
    /// The index of every health query, as it starts.
    pub queries: Receiver<u64>,
    hold_passes: Arc<AtomicBool>,
}

/// A spy around `inner`, and what it reports.
pub fn spy(inner: impl Client + 'static) -> (Spy, Spied) {
    let (queries, rx) = unbounded();
    let hold_passes = Arc::new(AtomicBool::new(false));
    let spied = Spied {
        queries: rx,
        hold_passes: hold_passes.clone(),
    };
    let spy = Spy {
        inner: Arc::new(inner),
        queries,
        hold_passes,
    };
    (spy, spied)
}

impl Spied {
    /// Waits (bounded) until a blocking query (one with an index) starts.
    pub fn blocking_query(&self) {
        let deadline = Instant::now() + BOUND;
        while self
            .queries
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a blocking query within the bound")
            == 0
        {}
    }

    /// While `hold` is true every TTL pass fails.
    pub fn hold_passes(&self, hold: bool) {
        self.hold_passes.store(hold, Ordering::SeqCst);
    }
}

impl Client for Spy {
    fn health_service(&self, service: &str, query: &HealthQuery<'_>) -> Result<Health> {
        let _ = self.queries.send(query.index);
        self.inner.health_service(service, query)
    }
    fn register_service(&self, registration: &ServiceRegistration) -> Result<()> {
        self.inner.register_service(registration)
    }
    fn deregister_service(&self, service_id: &str) -> Result<()> {
        self.inner.deregister_service(service_id)
    }
    fn pass_ttl(&self, check_id: &str) -> Result<()> {
        if self.hold_passes.load(Ordering::SeqCst) {
            return Err(Error::invalid_config("test", "passes held"));
        }
        self.inner.pass_ttl(check_id)
    }
    fn agent_service(&self, service_id: &str) -> Result<Option<Service>> {
        self.inner.agent_service(service_id)
    }
    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(Spy {
            inner: self.inner.fork(),
            queries: self.queries.clone(),
            hold_passes: self.hold_passes.clone(),
        })
    }
    fn shutdown(&self) {
        self.inner.shutdown()
    }
}
