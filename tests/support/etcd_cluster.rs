//! A three-member etcd cluster on loopback for integration tests, member by member
//! on the launcher in `server.rs` with the flags of `etcd.rs`: kill, restart, pause
//! one member, find the leader. Re-exported as `etcd::Cluster`.
//!
//! The members start one after the other, each once the one before serves its peer
//! port (see [`Cluster::start`]): the cluster forms in 0.11–0.14 s here, where
//! starting all three at once took 0.1, 1 or 2 s. A member that loses its quorum
//! (two others paused) ends every watch opened with `Grpc-Metadata-hasleader: true`
//! with `{"error":{"grpc_code":14,…,"message":"etcdserver: no leader",…}}` about
//! 0.4 s later (3–4.7 s with etcd's default timings), and refuses new ones with 503;
//! the header fails a serializable range too (503, code 14), which without it still
//! answers from the member's own data. A watch without the header stays open, silent,
//! and delivers again once the quorum is back.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::etcd::{
    Etcd, EtcdBuilder, MemberStatus, healthy, member_args, require_etcd, run_etcdctl,
};
use super::server::{Port, Server, process_paused};

/// A cluster forms in 0.11–0.14 s: allow far more on a loaded machine.
const CLUSTER_READY_BOUND: Duration = Duration::from_secs(20);
/// Pause between probes of a member's peer port while the cluster starts.
const PEER_POLL: Duration = Duration::from_millis(5);
/// Bound of one probe of a peer port: short, so a probe that waits on a port that
/// listens but does not serve yet costs little.
const PEER_PROBE_BOUND: Duration = Duration::from_millis(50);
/// Whole-cluster starts when a member found its port taken.
const CLUSTER_ATTEMPTS: usize = 5;

/// Three members on loopback (`m1`..`m3`, plain http, the tuned flags), with a unique
/// `--initial-cluster-token`, each with its own temp dir and log. Dropping it kills
/// every member (SIGKILL: no leadership hand-over to wait for) and removes the dirs.
#[derive(Debug)]
pub struct Cluster {
    members: Vec<Etcd>,
    ids: Vec<String>,
    token: String,
    formed_after: Duration,
}

/// The members' [`Server`] names (temp dirs and logs are named after them).
const MEMBER_NAMES: [&str; 3] = ["etcd-m1", "etcd-m2", "etcd-m3"];

impl Cluster {
    /// Starts three members and waits until all three say healthy: each is spawned
    /// once the one before serves its peer port (a quorum needs two, so none is ready
    /// alone). A member that exits on a taken port makes the whole cluster start again
    /// on new ports, since the others were told its peer port.
    /// `None` when a binary is missing; panics, with the logs' tails, if it won't form.
    pub fn start() -> Option<Cluster> {
        let etcd = require_etcd()?;
        let etcdctl = super::bin::find_companion("etcdctl", &etcd).expect("require_etcd");
        for _ in 0..CLUSTER_ATTEMPTS {
            if let Some(cluster) = Self::form(&etcd, &etcdctl) {
                return Some(cluster);
            }
        }
        panic!("etcd cluster: a port stayed taken over {CLUSTER_ATTEMPTS} starts");
    }

    /// One start of the whole cluster; `None` when a member found its port taken.
    fn form(etcd: &Path, etcdctl: &Path) -> Option<Cluster> {
        let token = super::unique("waypost-etcd");
        let initial: Arc<OnceLock<String>> = Arc::default();
        // Set when a member fails: the others stop waiting for a quorum.
        let abort = Arc::new(AtomicBool::new(false));
        let mut servers: Vec<Server> = (0..MEMBER_NAMES.len())
            .map(|i| {
                let (initial, abort, token) = (initial.clone(), abort.clone(), token.clone());
                Server::builder(MEMBER_NAMES[i], etcd)
                    .port("client", Port::CLIENT)
                    .port("peer", Port::CLIENT) // the others know it: never moves
                    .args(move |ports, dir| {
                        let initial = initial.get().expect("the initial cluster");
                        let opts = EtcdBuilder::default();
                        member_args(&member_name(i), ports, dir, initial, Some(&token), &opts)
                    })
                    .ready(move |ports| {
                        abort.load(Ordering::SeqCst) || healthy(ports.get("client"))
                    })
                    .ready_bound(CLUSTER_READY_BOUND)
                    .build()
            })
            .collect();
        // Each member chose its ports alone: two may have chosen the same number (seen
        // in CI: "initial cluster ... has duplicate url"). All again, on new ports.
        let mut seen = std::collections::HashSet::new();
        let all = servers.iter().flat_map(|s| {
            let p = s.ports();
            [p.get("client"), p.get("peer")]
        });
        if !all.into_iter().all(|port| seen.insert(port)) {
            return None;
        }
        let peers: Vec<String> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}=http://127.0.0.1:{}",
                    member_name(i),
                    s.ports().get("peer")
                )
            })
            .collect();
        initial.set(peers.join(",")).expect("set once");

        // Each member waits for the one before it to serve its peer port. A new member
        // first asks every peer URL whether it was bootstrapped already (`GET
        // /members`, 1 s timeout), and a peer port that listens but does not serve yet
        // holds the question: two members starting together ask each other, and both
        // wait out the second. Started all at once, a cluster formed in 0.1, 1 or 2 s;
        // one after the other, in 0.11-0.14 s.
        let peer_ports: Vec<u16> = servers.iter().map(|s| s.ports().get("peer")).collect();
        let started = Instant::now();
        let outcomes: Vec<std::thread::Result<bool>> = std::thread::scope(|scope| {
            let starts: Vec<_> = servers
                .iter_mut()
                .enumerate()
                .map(|(i, server)| {
                    let (abort, peer_ports) = (&abort, &peer_ports);
                    std::thread::Builder::new()
                        .name(format!("{}-start", server.name()))
                        .spawn_scoped(scope, move || {
                            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                let before = i.checked_sub(1).map(|b| peer_ports[b]);
                                before.is_none_or(|port| peer_serves(port, abort))
                                    && server.start_once()
                            }));
                            if !matches!(outcome, Ok(true)) {
                                abort.store(true, Ordering::SeqCst);
                            }
                            outcome
                        })
                        .expect("spawn a member's start")
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
        let members: Vec<Etcd> = servers
            .into_iter()
            .map(|s| Etcd::new_member(s, EtcdBuilder::default(), etcdctl.to_owned()))
            .collect();
        let mut cluster = Cluster {
            members,
            ids: Vec::new(),
            token,
            formed_after,
        };
        for i in 0..cluster.members.len() {
            let mut status = None;
            super::wait_until("a new member's status", || {
                status = cluster.members[i].status();
                status.is_some()
            });
            cluster.ids.push(status.expect("waited").member_id);
        }
        Some(cluster)
    }

    pub fn members(&self) -> &[Etcd] {
        &self.members
    }

    pub fn member(&self, i: usize) -> &Etcd {
        &self.members[i]
    }

    /// Member `i`'s id, as the gateway writes it (decimal).
    pub fn member_id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// The `--initial-cluster-token`, unique to this cluster.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// How long the three took from spawn to all healthy.
    pub fn formed_after(&self) -> Duration {
        self.formed_after
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(Etcd::client_url).collect()
    }

    /// The client URLs joined by commas, as etcdctl's `--endpoints` takes them.
    pub fn endpoints(&self) -> String {
        self.client_urls().join(",")
    }

    /// `etcdctl ARGS` against all three endpoints; stdout, or a panic with stderr.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        run_etcdctl(&self.members[0].etcdctl, &self.endpoints(), &[], args)
            .unwrap_or_else(|e| panic!("etcdctl {args:?} failed: {e}"))
    }

    /// Whether member `i` runs and is not paused.
    pub fn is_live(&self, i: usize) -> bool {
        self.members[i]
            .pid()
            .is_some_and(|pid| !process_paused(pid))
    }

    /// The member that says it leads now (the highest term wins if a paused-and-resumed
    /// one still thinks so); stopped and paused members are not asked. Panics when none
    /// does: see [`wait_leader`](Self::wait_leader).
    pub fn leader(&self) -> usize {
        self.try_leader()
            .unwrap_or_else(|| panic!("no live member leads now: {:?}", self.statuses()))
    }

    fn try_leader(&self) -> Option<usize> {
        let statuses = self.statuses();
        let leading = statuses.iter().enumerate().filter_map(|(i, s)| {
            let s = s.as_ref()?;
            s.is_leader().then_some((s.raft_term, i))
        });
        leading.max().map(|(_, i)| i)
    }

    /// Waits (bounded) until a live member leads and every live member names it; its
    /// index.
    pub fn wait_leader(&self) -> usize {
        let mut leader = None;
        super::wait_until("a leader every live member agrees on", || {
            leader = self.agreed_leader();
            leader.is_some()
        });
        leader.expect("waited")
    }

    fn agreed_leader(&self) -> Option<usize> {
        let statuses = self.statuses();
        let live: Vec<&MemberStatus> = (0..self.members.len())
            .filter(|&i| self.is_live(i))
            .map(|i| statuses[i].as_ref())
            .collect::<Option<_>>()?;
        let leader = live.first()?.leader.clone()?;
        let index = self.ids.iter().position(|id| *id == leader)?;
        let agreed = live
            .iter()
            .all(|s| s.leader.as_deref() == Some(leader.as_str()));
        (agreed && self.is_live(index)).then_some(index)
    }

    /// Each live member's status (`None` for stopped, paused or silent ones).
    pub fn statuses(&self) -> Vec<Option<MemberStatus>> {
        let live = |i: usize| self.is_live(i);
        (0..self.members.len())
            .map(|i| live(i).then(|| self.members[i].status()).flatten())
            .collect()
    }

    /// SIGKILL of member `i` (a crash); its dir stays for [`restart`](Self::restart).
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts member `i` again (stopping it first if it runs) with the same flags,
    /// ports and data dir: it rejoins. It is ready once healthy, which needs one other
    /// live member (a quorum of two).
    pub fn restart(&mut self, i: usize) {
        self.members[i].restart();
    }

    /// SIGSTOP of member `i`: it holds its connections and answers nothing.
    pub fn pause(&self, i: usize) {
        self.members[i].pause();
    }

    /// SIGCONT of member `i`.
    pub fn resume(&self, i: usize) {
        self.members[i].resume();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}

/// Waits until a member's peer port answers `GET /members` (it serves its peers),
/// polling; false if `abort` is set first (a member failed: no use starting the next).
fn peer_serves(port: u16, abort: &AtomicBool) -> bool {
    let deadline = Instant::now() + CLUSTER_READY_BOUND;
    loop {
        if abort.load(Ordering::SeqCst) {
            return false;
        }
        if answers_ok(port, "/members") {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "the peer port {port} did not serve within {CLUSTER_READY_BOUND:?}"
        );
        // The poll interval: nothing to block on until the port serves.
        let _ = crossbeam_channel::after(PEER_POLL).recv();
    }
}

/// Whether `GET path` on `port` starts its reply with status 200 within
/// [`PEER_PROBE_BOUND`]. Only the status line is read: etcd's peer port does not
/// always close the connection after its reply, `Connection: close` or not.
fn answers_ok(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, PEER_PROBE_BOUND) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(PEER_PROBE_BOUND));
    let _ = conn.set_write_timeout(Some(PEER_PROBE_BOUND));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0; 12];
    conn.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// etcd's `--name` of member `i`.
fn member_name(i: usize) -> String {
    format!("m{}", i + 1)
}
