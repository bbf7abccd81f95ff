//! Shared test helpers: waiting with a bound, counting threads, a scriptable instancer.
#![allow(dead_code)] // each test binary uses a different part

pub mod bin;
pub mod conformance;
pub mod consul;
pub mod fake_consul;
pub mod fake_http;
pub mod http;
pub mod logs;
pub mod ports;
pub mod scratch;
pub mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use waypost::{Event, Instance, Instancer};

/// Generous upper bound for anything a test waits for.
pub const BOUND: Duration = Duration::from_secs(10);

/// Spins (yielding) until `cond` holds; panics with `what` after `BOUND`.
/// An upper bound, not a sleep: it returns as soon as the condition holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Stops `instancer` and checks that the stop (which joins its thread) took well under
/// a second.
pub fn stop_promptly(instancer: &dyn Instancer) {
    let started = Instant::now();
    instancer.stop();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "stop() took {took:?}");
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
