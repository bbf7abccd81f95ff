//! Shared test helpers: waiting with a bound, counting threads, unique names, a
//! scriptable instancer; events and endpoints in `events`, servers in `server` (real
//! registries in `consul`, `etcd`, `zookeeper` and `dnsmasq`, Curator in `curator`), a
//! scripted DNS server in `fake_dns`, a breakable TCP path in `tcp_proxy`, a Eureka
//! server double in `eureka_double` and the third-party Eureka clients that check it in
//! `eureka_clients`.
#![allow(dead_code)] // each test binary uses a different part

pub mod bin;
pub mod conformance;
pub mod consul;
pub mod curator;
pub mod dnsmasq;
pub mod etcd;
pub mod etcd_cluster;
pub mod etcd_wire;
pub mod eureka_clients;
pub mod eureka_double;
pub mod events;
pub mod fake_consul;
pub mod fake_dns;
pub mod fake_etcd;
pub mod fake_http;
pub mod http;
pub mod java;
pub mod logs;
pub mod ports;
pub mod scratch;
pub mod server;
pub mod tcp_proxy;
pub mod zk_cli;
pub mod zk_ensemble;
pub mod zk_wire;
pub mod zookeeper;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use waypost::{Event, Instance, Instancer};

/// Generous upper bound for anything a test waits for.
pub const BOUND: Duration = Duration::from_secs(10);

/// Spins (yielding) until `cond` holds; panics with `what` after `BOUND`; returns how
/// long it took. An upper bound, not a sleep: it returns as soon as the condition holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < BOUND, "timed out waiting for {what}");
        std::thread::yield_now();
    }
    started.elapsed()
}

/// `name` made unique in this process and run: `name-PID-N`.
pub fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// Waits, within `BOUND`, for an event listing exactly `want` (addresses, in order),
/// skipping other events; panics with what came last when none does.
pub fn wait_for_set(rx: &Receiver<Event>, want: &[&str]) {
    let deadline = Instant::now() + BOUND;
    let mut last = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Instances(set))
                if set.iter().map(Instance::addr).eq(want.iter().copied()) =>
            {
                return;
            }
            Ok(event) => last = Some(event),
            Err(_) => panic!("no set {want:?} within {BOUND:?}; last event: {last:?}"),
        }
    }
}

/// Stops `instancer` and checks that the stop (which joins its thread) took well under
/// a second; returns how long it took.
pub fn stop_promptly(instancer: &dyn Instancer) -> Duration {
    let started = Instant::now();
    instancer.stop();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "stop() took {took:?}");
    took
}

/// Tests of one binary that count threads take turns with those that start threads:
/// a counting test holds [`counting_threads`], every other test that starts a waypost
/// thread holds [`starting_threads`] for as long as its threads live.
static THREADS: RwLock<()> = RwLock::new(());

/// The exclusive turn, for a test that counts threads.
pub fn counting_threads() -> RwLockWriteGuard<'static, ()> {
    THREADS.write().unwrap_or_else(|e| e.into_inner())
}

/// A shared turn, for a test whose threads a counting test must not see.
pub fn starting_threads() -> RwLockReadGuard<'static, ()> {
    THREADS.read().unwrap_or_else(|e| e.into_inner())
}

/// Waits (bounded) until `n` threads named `prefix...` are listed: after a join, the
/// kernel may list the joined thread in /proc a moment longer; an unjoined thread
/// (still running) fails the wait.
pub fn wait_threads(prefix: &str, n: usize, what: &str) {
    wait_until(what, || threads_named(prefix) == n);
}

/// How many threads of this process have a name starting with `prefix` (Linux: names
/// are cut to 15 bytes in /proc).
pub fn threads_named(prefix: &str) -> usize {
    let prefix = &prefix[..prefix.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// An instancer whose events the test sends by hand, keeping the trait's contract
/// (current state on register, no state before the first event).
#[derive(Default)]
pub struct ScriptedInstancer {
    state: Mutex<(Option<Event>, Vec<Sender<Event>>)>,
}

impl ScriptedInstancer {
    pub fn new() -> Arc<ScriptedInstancer> {
        Arc::new(ScriptedInstancer::default())
    }

    pub fn send(&self, event: Event) {
        let mut state = self.state.lock();
        state.1.retain(|tx| tx.send(event.clone()).is_ok());
        state.0 = Some(event);
    }

    pub fn set(&self, addrs: &[&str]) {
        self.send(Event::instances(addrs.iter().map(|a| Instance::new(*a))));
    }

    pub fn fail(&self, why: &str) {
        self.send(Event::error(waypost::Error::invalid_instance(
            why,
            "scripted failure",
        )));
    }

    pub fn subscribers(&self) -> usize {
        self.state.lock().1.len()
    }
}

impl Instancer for ScriptedInstancer {
    fn subscribe(&self, tx: Sender<Event>) {
        let mut state = self.state.lock();
        if let Some(event) = &state.0 {
            let _ = tx.send(event.clone());
        }
        state.1.push(tx);
    }
    fn unsubscribe(&self, tx: &Sender<Event>) {
        self.state.lock().1.retain(|t| !t.same_channel(tx));
    }
    fn stop(&self) {}
}
