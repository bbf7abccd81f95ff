//! A three-server ZooKeeper ensemble on loopback for integration tests, server by
//! server on the launcher in `server.rs` with the config of `zookeeper.rs`: kill,
//! restart, pause one server, find the leader. Re-exported as `zookeeper::Ensemble`.
//!
//! Each server has its own temp dir (`data/myid` holds its number), a client, a quorum
//! and an election port, all on 127.0.0.1, and the same `server.N=127.0.0.1:Q:E`
//! lines. The three JVMs start together; a server is ready once `srvr` says leader or
//! follower, which needs a quorum (two), so none is ready alone. Formed in 3.5–6 s on
//! two cores, most of it three JVMs starting at once. Measured (backends notes): a
//! killed follower changes nothing for the two others; a killed leader leaves the two
//! others serving again ~1.8 s later under a new leader; a restarted server rejoins as
//! a follower in ~3.7 s.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::server::{Port, Server, process_paused};
use super::zk_cli::{CliAt, cli_at};
use super::zookeeper::{Mode, Zk, ZkCli, ZkInstall, require_zookeeper, server_args, serving};

/// Three JVMs starting at once on two cores form in 3.5–6 s: allow far more on a
/// loaded machine.
const ENSEMBLE_READY_BOUND: Duration = Duration::from_secs(40);
/// Whole-ensemble starts when a server found its port taken.
const ENSEMBLE_ATTEMPTS: usize = 5;
/// The servers' names (temp dirs and logs are named after them).
const NAMES: [&str; 3] = ["zookeeper-n1", "zookeeper-n2", "zookeeper-n3"];

/// Three servers (myid 1..3, index 0..2 here). Dropping it kills every server
/// (SIGKILL: nothing to hand over) and removes the dirs.
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<Zk>,
    formed_after: Duration,
}

impl Ensemble {
    /// Starts three servers and waits until all three serve as leader or follower. A
    /// server that exits on a taken port makes the whole ensemble start again on new
    /// ports, since the others were told its ports. `None` when Java or the jar is
    /// missing; panics, with the logs' tails, if it won't form.
    pub fn start() -> Option<Ensemble> {
        let install = require_zookeeper()?;
        for _ in 0..ENSEMBLE_ATTEMPTS {
            if let Some(ensemble) = Self::form(&install) {
                return Some(ensemble);
            }
        }
        panic!("ZooKeeper ensemble: a port stayed taken over {ENSEMBLE_ATTEMPTS} starts");
    }

    /// One start of the whole ensemble; `None` when a server found its port taken.
    fn form(install: &ZkInstall) -> Option<Ensemble> {
        let lines: Arc<OnceLock<String>> = Arc::default();
        // Set when a server fails: the others stop waiting for a quorum.
        let abort = Arc::new(AtomicBool::new(false));
        let mut servers: Vec<Server> = (0..NAMES.len())
            .map(|i| {
                let (lines, abort, install) = (lines.clone(), abort.clone(), install.clone());
                Server::builder(NAMES[i], &install.java)
                    .port("client", Port::CLIENT)
                    // The others know these: they never move.
                    .port("quorum", Port::CLIENT)
                    .port("election", Port::CLIENT)
                    .args(move |ports, dir| {
                        write_myid(dir, i + 1);
                        let lines = lines.get().expect("the server lines");
                        server_args(&install, ports, dir, lines)
                    })
                    .ready(move |ports| {
                        abort.load(Ordering::SeqCst) || serving(ports.get("client"))
                    })
                    .ready_bound(ENSEMBLE_READY_BOUND)
                    .build()
            })
            .collect();
        // Each server chose its ports alone: two may have chosen the same number.
        let mut seen = HashSet::new();
        let all = servers.iter().flat_map(|s| {
            let p = s.ports();
            [p.get("client"), p.get("quorum"), p.get("election")]
        });
        if !all.into_iter().all(|port| seen.insert(port)) {
            return None;
        }
        let server_lines: String = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (q, e) = (s.ports().get("quorum"), s.ports().get("election"));
                format!("server.{}=127.0.0.1:{q}:{e}\n", i + 1)
            })
            .collect();
        lines.set(server_lines).expect("set once");

        let started = Instant::now();
        let outcomes: Vec<std::thread::Result<bool>> = std::thread::scope(|scope| {
            let starts: Vec<_> = servers
                .iter_mut()
                .map(|server| {
                    let abort = &abort;
                    std::thread::Builder::new()
                        .name(format!("{}-start", server.name()))
                        .spawn_scoped(scope, move || {
                            let outcome =
                                std::panic::catch_unwind(AssertUnwindSafe(|| server.start_once()));
                            if !matches!(outcome, Ok(true)) {
                                abort.store(true, Ordering::SeqCst);
                            }
                            outcome
                        })
                        .expect("spawn a server's start")
                })
                .collect();
            starts
                .into_iter()
                .map(|s| s.join().expect("start thread"))
                .collect()
        });
        let formed_after = started.elapsed();
        if abort.load(Ordering::SeqCst) {
            for server in &mut servers {
                server.kill();
            }
            for outcome in outcomes {
                if let Err(panic) = outcome {
                    std::panic::resume_unwind(panic);
                }
            }
            return None; // a port was taken: all again, on new ports
        }
        let members = servers
            .into_iter()
            .map(|s| Zk::from_server(s, install.clone()))
            .collect();
        Some(Ensemble {
            members,
            formed_after,
        })
    }

    pub fn members(&self) -> &[Zk] {
        &self.members
    }

    /// Server `i` (myid `i + 1`).
    pub fn member(&self, i: usize) -> &Zk {
        &self.members[i]
    }

    /// How long the three took from spawn to all serving.
    pub fn formed_after(&self) -> Duration {
        self.formed_after
    }

    /// Every server's `127.0.0.1:PORT`, joined by commas, in member order.
    pub fn connect_string(&self) -> String {
        connect_string(self.members.iter())
    }

    /// The connect string of the live servers only (running, not paused): a client
    /// given a dead server may wait up to a second before it tries the next.
    pub fn live_connect_string(&self) -> String {
        connect_string(
            (0..self.members.len())
                .filter(|&i| self.is_live(i))
                .map(|i| &self.members[i]),
        )
    }

    /// zkCli against the live servers only.
    pub fn live(&self) -> CliAt {
        cli_at(self.members[0].install(), &self.live_connect_string())
    }

    /// Whether server `i` runs and is not paused.
    pub fn is_live(&self, i: usize) -> bool {
        self.members[i]
            .pid()
            .is_some_and(|pid| !process_paused(pid))
    }

    /// What server `i` says it is; `None` when stopped, paused or not serving (no
    /// quorum, or an election under way).
    pub fn mode(&self, i: usize) -> Option<Mode> {
        self.is_live(i).then(|| self.members[i].mode()).flatten()
    }

    /// The live server that says it leads now; panics when none does: see
    /// [`wait_leader`](Self::wait_leader).
    pub fn leader(&self) -> usize {
        let modes: Vec<Option<Mode>> = (0..self.members.len()).map(|i| self.mode(i)).collect();
        modes
            .iter()
            .position(|m| *m == Some(Mode::Leader))
            .unwrap_or_else(|| panic!("no live server leads now: {modes:?}"))
    }

    /// Waits (bounded) until one live server leads and every other live one follows;
    /// its index.
    pub fn wait_leader(&self) -> usize {
        let mut leader = None;
        super::wait_until("a leader every live server follows", || {
            leader = self.settled_leader();
            leader.is_some()
        });
        leader.expect("waited")
    }

    fn settled_leader(&self) -> Option<usize> {
        let live: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.is_live(i))
            .collect();
        let modes: Vec<Mode> = live.iter().map(|&i| self.mode(i)).collect::<Option<_>>()?;
        let leaders: Vec<usize> = (0..live.len())
            .filter(|&k| modes[k] == Mode::Leader)
            .map(|k| live[k])
            .collect();
        let followers = modes.iter().filter(|m| **m == Mode::Follower).count();
        (leaders.len() == 1 && followers + 1 == live.len()).then(|| leaders[0])
    }

    /// SIGKILL of server `i` (a crash); its dir stays for [`restart`](Self::restart).
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// SIGTERM of server `i`; its dir stays.
    pub fn stop(&mut self, i: usize) {
        self.members[i].stop();
    }

    /// Starts server `i` again (stopping it first if it runs) with the same config,
    /// ports and data: it rejoins, and is ready once it serves, which needs one other
    /// live server.
    pub fn restart(&mut self, i: usize) {
        self.members[i].restart();
    }

    /// SIGSTOP of server `i`: its connections stay open and nothing answers.
    pub fn pause(&self, i: usize) {
        self.members[i].pause();
    }

    /// SIGCONT of server `i`.
    pub fn resume(&self, i: usize) {
        self.members[i].resume();
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}

impl ZkCli for Ensemble {
    fn install(&self) -> &ZkInstall {
        self.members[0].install()
    }
    /// Every server, live or not.
    fn connect_string(&self) -> String {
        Ensemble::connect_string(self)
    }
}

fn connect_string<'a>(members: impl Iterator<Item = &'a Zk>) -> String {
    members
        .map(Zk::connect_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `dir/data/myid` holds the server's number (rewritten before every start: a fresh
/// data dir has none).
fn write_myid(dir: &Path, id: usize) {
    std::fs::write(dir.join("data/myid"), format!("{id}\n")).expect("write myid");
}
