//! The same model with real threads and real time: client threads pick and send
//! open-loop arrivals, each server is `CONCURRENCY` worker threads that sleep for the
//! service time, and the balancers run on the `SystemClock`. A check that the
//! simulated figures hold when picks and call ends race on several threads.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use waypost::SystemClock;
use waypost::lb::Pick;

use super::client::{Client, Setup};
use super::engine::Run;
use super::rng::Rng;
use super::scenario::{CONCURRENCY, SERVERS, Scenario};

/// One call on its way to a server: when it arrived (its scheduled time, so that a
/// late client thread does not hide queueing) and its pick, held until it ends.
struct Job {
    arrived: Instant,
    pick: Pick<usize>,
}

/// What one worker saw: latencies in nanoseconds, and how many were cut off.
type Served = (Vec<u64>, usize);

/// Runs `scenario` (one without failures) with `setup`'s balancer: `clients` threads
/// send Poisson arrivals for `arrivals`; at `cutoff` from the start every call still
/// open is counted with its time so far, as the engine's `Length::Window` does.
pub fn run(
    scenario: Scenario,
    setup: Setup,
    clients: usize,
    arrivals: Duration,
    cutoff: Duration,
    seed: u64,
) -> Run {
    assert!(
        (0..SERVERS).all(|i| scenario.failures(i).0 == 0.0),
        "the threaded run models no failures"
    );
    let mut rng = Rng::new(seed);
    let client = Arc::new(Client::new(setup, &SystemClock, rng.next_u64()));
    let start = Instant::now() + Duration::from_millis(50);
    let cut_at = start + cutoff;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..SERVERS).map(|_| unbounded()).unzip();

    let mut workers = Vec::new();
    for (server, rx) in receivers.into_iter().enumerate() {
        for _ in 0..CONCURRENCY {
            let (rx, service) = (rx.clone(), rng.fork());
            workers.push(thread::spawn(move || {
                serve(scenario, server, rx, service, start, cut_at)
            }));
        }
    }
    let gap = clients as f64 / scenario.arrival_rate();
    let mut client_threads = Vec::new();
    for _ in 0..clients {
        let (client, senders, mut draws) = (client.clone(), senders.clone(), rng.fork());
        client_threads.push(thread::spawn(move || {
            let mut sent = [0u64; SERVERS];
            let mut at = 0.0;
            loop {
                at += draws.exp(gap);
                let arrived = start + Duration::from_secs_f64(at);
                if arrived >= start + arrivals {
                    break;
                }
                if let Some(wait) = arrived.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                let pick = client.balancer.pick().expect("a pick from a fixed set");
                let server = *pick;
                sent[server] += 1;
                senders[server]
                    .send(Job { arrived, pick })
                    .expect("the server is up");
            }
            sent
        }));
    }
    drop(senders);
    let mut per_server = [0u64; SERVERS];
    for handle in client_threads {
        let sent = handle.join().expect("a client thread");
        for (total, n) in per_server.iter_mut().zip(sent) {
            *total += n;
        }
    }
    let mut latencies = Vec::new();
    let mut censored = 0;
    for handle in workers {
        let (mut served, cut) = handle.join().expect("a server thread");
        latencies.append(&mut served);
        censored += cut;
    }
    let requests = latencies.len();
    Run {
        scenario,
        setup,
        latencies,
        requests,
        errors: 0,
        attempts: per_server.iter().sum(),
        refused: 0,
        per_server,
        buckets: Vec::new(),
        ejections: client.ejections(),
        censored,
        open_at_cutoff: None,
        in_flight_after: client.in_flight(),
        end: cutoff.as_secs_f64(),
    }
}

/// One worker of `server`: takes calls in FIFO order, sleeps for each one's service
/// time, ends its pick. A call still open at `cut_at` is counted with its time so
/// far and its pick dropped.
fn serve(
    scenario: Scenario,
    server: usize,
    rx: Receiver<Job>,
    mut service: Rng,
    start: Instant,
    cut_at: Instant,
) -> Served {
    let (mut latencies, mut cut) = (Vec::new(), 0);
    for job in rx {
        let began = Instant::now();
        if began >= cut_at {
            latencies.push(cut_at.duration_since(job.arrived).as_nanos() as u64);
            cut += 1;
            continue;
        }
        let t = began.duration_since(start).as_secs_f64();
        let due = began + Duration::from_secs_f64(service.exp(scenario.mean_service(server, t)));
        thread::sleep(due.min(cut_at) - began);
        if due > cut_at {
            latencies.push(cut_at.duration_since(job.arrived).as_nanos() as u64);
            cut += 1;
            continue;
        }
        let ended = Instant::now();
        job.pick.success();
        latencies.push(ended.duration_since(job.arrived).as_nanos() as u64);
    }
    (latencies, cut)
}
