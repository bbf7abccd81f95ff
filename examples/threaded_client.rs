//! A threaded HTTP client service: discovery, round-robin and retries, shared by 8
//! worker threads.
//!
//! Three tiny HTTP servers start on loopback (ports chosen at run time) and register
//! as one service. One endpointer turns each registered instance into an HTTP client
//! of its own; one `Arc<Retry<RoundRobin<DefaultEndpointer<_>>>>` is shared by 8
//! worker threads that send real GET requests in a loop, each request bounded by the
//! retry's deadline. A third of the way in, one server stops while it is still
//! registered: requests that land on it fail and are retried on another server. At
//! half time its registration goes away, as a failing health check would remove it:
//! its endpoint closes and no request is sent to it again. At the end the workers are
//! joined, the balancer (and with it every endpoint) is dropped, the registrations
//! are dropped and the servers stop; a summary follows.
//!
//! ```sh
//! cargo run --example threaded_client                  # the in-process registry
//! cargo run --example threaded_client -- --seconds 10
//! cargo run --example threaded_client -- --consul http://127.0.0.1:8500
//! ```
//!
//! With `--consul URL` the servers are registered in that Consul agent (a TTL check
//! kept passing by the registrar's heartbeat) and watched with blocking queries,
//! under a service name of this process's own (`threaded-client-<pid>`).

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use waypost::crossbeam_channel::{Receiver, after, at, bounded, select, tick, unbounded};
use waypost::lb::{Deadline, Retry, RoundRobin};
use waypost::{
    DefaultEndpointer, Endpointer, Instance, Instancer, Made, MemoryRegistry, Registration,
};

#[path = "support/http.rs"]
mod http;

use http::{CallError, Client, Server};

/// Worker threads sharing the one balancer.
const WORKERS: usize = 8;
/// The servers; the second one is stopped midway.
const SERVERS: [&str; 3] = ["alpha", "beta", "gamma"];
const STOPPED: usize = 1;
/// Each worker sends at most one request per tick: a service handling its own
/// incoming requests, not a benchmark.
const PACE: Duration = Duration::from_millis(2);
/// Attempts per request, and the time they may take together.
///
/// With more worker threads than CPUs, threads share a round-robin counter (there is
/// one per CPU), so the attempt after a failure does not always go to the next server:
/// it may land on the stopped one again. With 8 workers on 2 CPUs about one such
/// retry in 8 did, and 3 attempts still let a request fail now and then; with 5, five
/// misses in a row are too rare to matter.
const ATTEMPTS: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(1);
/// The longest wait for a change to reach the endpointer (it takes microseconds with
/// the memory registry, milliseconds with Consul), or for a closer to run (the
/// requests still holding the endpoint end within `TIMEOUT`).
const CHANGE_BOUND: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let options = match Options::from_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}\nusage: threaded_client [--seconds N] [--consul http://127.0.0.1:8500]");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(summary) => {
            println!("\n{summary}");
            if summary.failures() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("threaded_client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What to run: for how long, and against which registry.
#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    /// A Consul agent's address; `None` for the in-process memory registry.
    consul: Option<String>,
}

impl Options {
    fn from_args() -> Result<Options, String> {
        let mut options = Options {
            duration: Duration::from_secs(3),
            consul: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--seconds" => {
                    let seconds: f64 = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                    options.duration = Duration::try_from_secs_f64(seconds)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or("--seconds must be a positive number")?;
                }
                "--consul" => options.consul = Some(value()?),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }
}

/// Runs the whole scenario and returns what happened. Every thread it starts is
/// joined before it returns, also when it returns an error.
fn run(options: &Options) -> Result<Summary, Box<dyn Error>> {
    let registry = Registry::connect(options.consul.as_deref())?;

    // The servers, each registered for as long as its guard lives.
    let mut servers = Vec::new();
    let mut registrations = Vec::new();
    for name in SERVERS {
        let server = Server::start(name)?;
        println!("started    {name} on {}", server.addr);
        registrations.push(Some(registry.register(&server)?));
        servers.push(Some(server));
    }
    // What happened to each server, as it and the clients count it.
    let counters: Vec<Arc<Counters>> = servers
        .iter()
        .flatten()
        .map(|server| {
            Arc::new(Counters {
                served: server.served.clone(),
                ..Counters::default()
            })
        })
        .collect();
    let by_addr: HashMap<String, Arc<Counters>> = servers
        .iter()
        .flatten()
        .zip(&counters)
        .map(|(server, counters)| (server.addr.to_string(), counters.clone()))
        .collect();

    // The factory runs on the endpointer's thread, once for each instance that joins
    // the set, and builds an HTTP client for that instance alone. The closer runs once
    // the instance has left and no request holds its endpoint any more; it also
    // reports on a channel, for the main thread to wait on.
    let (closed_tx, closed) = unbounded();
    let endpointer = DefaultEndpointer::new(registry.instancer()?, move |instance| {
        let Some(counters) = by_addr.get(instance.addr()) else {
            return Err(format!("{instance} is none of our servers").into());
        };
        let endpoint = HttpEndpoint::new(instance, counters.clone());
        println!("made       endpoint {endpoint}");
        let (agent, name, counters, closed_tx) = (
            endpoint.client.agent.clone(),
            endpoint.client.name.clone(),
            endpoint.counters.clone(),
            closed_tx.clone(),
        );
        Ok(Made::new(endpoint).on_close(move || {
            counters.closed.store(true, Ordering::Release);
            agent.shutdown(); // cuts off any request still in flight on this client
            println!("closed     endpoint {name}");
            let _ = closed_tx.send(name);
        }))
    })?;
    endpointer.wait_ready(CHANGE_BOUND)?;
    wait_for_len(&endpointer, SERVERS.len())?;

    // One balancer for the whole process, shared by every worker.
    let service = Arc::new(
        Retry::builder(RoundRobin::new(endpointer))
            .max_attempts(ATTEMPTS)
            .timeout(TIMEOUT)
            .build()?,
    );

    // Dropping `stop` disconnects the channel every worker also waits on.
    let (stop, stopping) = bounded::<()>(0);
    let started = Instant::now();
    let mut workers = Vec::new();
    for id in 0..WORKERS {
        let service = Arc::clone(&service);
        let stopping = stopping.clone();
        let spawned = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || work(&service, &stopping));
        match spawned {
            Ok(worker) => workers.push(worker),
            Err(e) => {
                drop(stop);
                join_all(workers)?;
                return Err(e.into());
            }
        }
    }
    println!(
        "{WORKERS} workers sending requests for {:?}",
        options.duration
    );

    // An error midway ends the scenario early; the workers are joined all the same.
    let removal = midway(
        options.duration,
        started,
        &mut servers,
        &mut registrations,
        &counters,
        &closed,
        &service,
    );

    println!("stopping   the workers");
    drop(stop);
    let joined = join_all(workers);
    let elapsed = started.elapsed();

    // Then, in order: the balancer (its endpointer closes every endpoint), the
    // registrations, the servers.
    drop(service);
    let deregistered: waypost::Result<()> = registrations
        .into_iter()
        .flatten()
        .try_for_each(Registration::deregister);
    for server in servers.into_iter().flatten() {
        server.stop();
    }

    let removal = removal?;
    let workers = joined?;
    deregistered?;
    let servers = SERVERS
        .iter()
        .zip(&counters)
        .map(|(name, counters)| ServerReport::new(name, counters))
        .collect();
    Ok(Summary {
        elapsed,
        workers,
        servers,
        removal,
    })
}

/// Stops one server a third of the way in, drops its registration at half time and
/// waits until its endpoint is closed and out of the set; returns at the end of the
/// run.
fn midway(
    duration: Duration,
    started: Instant,
    servers: &mut [Option<Server>],
    registrations: &mut [Option<Registration>],
    counters: &[Arc<Counters>],
    closed: &Receiver<Arc<str>>,
    service: &Service,
) -> Result<Removal, Box<dyn Error>> {
    let name = SERVERS[STOPPED];
    at(started + duration / 3).recv()?;
    if let Some(server) = servers[STOPPED].take() {
        server.stop();
    }
    println!("           {name} is down but still registered: its requests are retried");

    at(started + duration / 2).recv()?;
    if let Some(registration) = registrations[STOPPED].take() {
        registration.deregister()?;
    }
    println!("deregistered {name}");
    let closed = closed.recv_timeout(CHANGE_BOUND)?;
    if &*closed != name {
        return Err(format!("{closed} was closed instead of {name}").into());
    }
    wait_for_len(service.balancer().endpointer(), SERVERS.len() - 1)?;
    // From here on no pick returns the stopped server's endpoint: it is in no
    // snapshot that is alive (its closer ran), nor in any that will be served.
    let removal = Removal {
        after: started.elapsed(),
        served: counters[STOPPED].served.load(Ordering::Acquire),
        attempts: counters[STOPPED].attempts.load(Ordering::Acquire),
    };
    println!(
        "removed    {name} after {:.2} s: {} endpoints left",
        removal.after.as_secs_f64(),
        SERVERS.len() - 1
    );

    at(started + duration).recv()?;
    Ok(removal)
}

/// The service every worker shares.
type Service = Retry<RoundRobin<DefaultEndpointer<HttpEndpoint>>>;

/// One worker: a request per tick, until `stopping` disconnects.
fn work(service: &Service, stopping: &Receiver<()>) -> WorkerStats {
    let pace = tick(PACE);
    let mut stats = WorkerStats::default();
    loop {
        select! {
            recv(stopping) -> _ => break,
            recv(pace) -> _ => {}
        }
        stats.requests += 1;
        let mut failed = 0;
        let reply = service.call_with(
            |endpoint, deadline| endpoint.get("/", deadline),
            |_attempt, _error| {
                failed += 1;
                true // go on with the next pick
            },
        );
        match reply {
            Ok(_body) => {
                stats.successes += 1;
                stats.retries += failed;
            }
            Err(e) => {
                stats.retries += failed.saturating_sub(1);
                stats.last_error = Some(e.to_string());
            }
        }
    }
    stats
}

/// Joins every worker; their stats, or how many panicked.
fn join_all(workers: Vec<JoinHandle<WorkerStats>>) -> Result<Vec<WorkerStats>, Box<dyn Error>> {
    let mut stats = Vec::new();
    let mut panicked = 0;
    for worker in workers {
        match worker.join() {
            Ok(s) => stats.push(s),
            Err(_) => panicked += 1,
        }
    }
    match panicked {
        0 => Ok(stats),
        n => Err(format!("{n} worker(s) panicked").into()),
    }
}

/// Waits, at most `CHANGE_BOUND`, until the endpointer serves `len` endpoints.
fn wait_for_len(
    endpointer: &DefaultEndpointer<HttpEndpoint>,
    len: usize,
) -> Result<(), Box<dyn Error>> {
    let timeout = after(CHANGE_BOUND);
    let poll = tick(Duration::from_millis(1));
    while endpointer.endpoints()?.len() != len {
        select! {
            recv(poll) -> _ => {}
            recv(timeout) -> _ => {
                return Err(format!("not {len} endpoints after {CHANGE_BOUND:?}").into());
            }
        }
    }
    Ok(())
}

/// The registry the servers are registered in and watched through.
enum Registry {
    Memory(MemoryRegistry),
    #[cfg(feature = "consul")]
    Consul {
        client: waypost::consul::HttpClient,
        service: String,
    },
}

/// The service name in the memory registry.
const SERVICE: &str = "hello";

impl Registry {
    fn connect(consul: Option<&str>) -> Result<Registry, Box<dyn Error>> {
        match consul {
            None => Ok(Registry::Memory(MemoryRegistry::new())),
            #[cfg(feature = "consul")]
            Some(addr) => {
                let client = waypost::consul::HttpClient::builder()
                    .address(addr)
                    .build()?;
                // A name of this process's own, so that nothing else on the agent
                // (an earlier run, say) shows up in the set.
                let service = format!("threaded-client-{}", std::process::id());
                println!("registry   Consul at {addr}, service {service}");
                Ok(Registry::Consul { client, service })
            }
            #[cfg(not(feature = "consul"))]
            Some(_) => Err("--consul needs the `consul` feature".into()),
        }
    }

    fn register(&self, server: &Server) -> waypost::Result<Registration> {
        match self {
            Registry::Memory(registry) => {
                let instance = Instance::builder(server.addr.to_string())
                    .value("name", server.name)
                    .build();
                registry.registrar(SERVICE, instance).register()
            }
            #[cfg(feature = "consul")]
            Registry::Consul { client, service } => {
                let (host, port) = (server.addr.ip().to_string(), server.addr.port());
                let registrar = waypost::consul::Registrar::builder(client, service, host, port)
                    .meta("name", server.name)
                    .ttl(Duration::from_secs(10))
                    // Should this process die without deregistering, the agent
                    // removes the instance a minute after its check turned critical.
                    .deregister_critical_service_after(Duration::from_secs(60))
                    .build()?;
                let registration = registrar.register()?;
                println!("registered {} as {}", server.name, registrar.id());
                Ok(registration)
            }
        }
    }

    fn instancer(&self) -> waypost::Result<Arc<dyn Instancer>> {
        match self {
            Registry::Memory(registry) => Ok(Arc::new(registry.instancer(SERVICE))),
            #[cfg(feature = "consul")]
            Registry::Consul { client, service } => Ok(Arc::new(
                waypost::consul::Instancer::builder(client, service).build()?,
            )),
        }
    }
}

/// The endpoint the factory makes: the shared HTTP client, counting what the clients
/// do with it. Cloning it is cheap (the agent is shared).
#[derive(Clone, Debug)]
struct HttpEndpoint {
    client: Client,
    counters: Arc<Counters>,
}

impl HttpEndpoint {
    fn new(instance: &Instance, counters: Arc<Counters>) -> HttpEndpoint {
        HttpEndpoint {
            client: Client::new(instance, TIMEOUT),
            counters,
        }
    }

    /// `GET path`, given up at `deadline`: the retry's deadline bounds every attempt.
    fn get(&self, path: &str, deadline: Deadline<'_>) -> Result<String, CallError> {
        self.counters.attempts.fetch_add(1, Ordering::Relaxed);
        if self.counters.closed.load(Ordering::Acquire) {
            self.counters.after_close.fetch_add(1, Ordering::Relaxed);
        }
        self.client.get(path, deadline).inspect_err(|_| {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        })
    }
}

impl fmt::Display for HttpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.client.fmt(f)
    }
}

/// What happened to one server: its own count, and the clients'.
#[derive(Debug, Default)]
struct Counters {
    /// Requests the server answered (the server's own count).
    served: Arc<AtomicU64>,
    /// Attempts the clients made on its endpoint, and how many of them failed.
    attempts: AtomicU64,
    failed: AtomicU64,
    /// Attempts made on its endpoint after the endpoint's closer ran: always 0.
    after_close: AtomicU64,
    /// Set by the endpoint's closer.
    closed: AtomicBool,
}

/// One worker's requests.
#[derive(Debug, Default)]
struct WorkerStats {
    requests: u64,
    successes: u64,
    /// Attempts after the first, over all requests.
    retries: u64,
    last_error: Option<String>,
}

/// One server's counts at the end of the run.
#[derive(Debug)]
struct ServerReport {
    name: &'static str,
    served: u64,
    attempts: u64,
    failed: u64,
    after_close: u64,
}

impl ServerReport {
    fn new(name: &'static str, counters: &Counters) -> ServerReport {
        ServerReport {
            name,
            served: counters.served.load(Ordering::Acquire),
            attempts: counters.attempts.load(Ordering::Acquire),
            failed: counters.failed.load(Ordering::Acquire),
            after_close: counters.after_close.load(Ordering::Acquire),
        }
    }
}

/// The stopped server's counts when its removal had reached the endpointer.
#[derive(Debug)]
struct Removal {
    after: Duration,
    served: u64,
    attempts: u64,
}

/// What a run did.
#[derive(Debug)]
struct Summary {
    elapsed: Duration,
    workers: Vec<WorkerStats>,
    servers: Vec<ServerReport>,
    removal: Removal,
}

impl Summary {
    fn requests(&self) -> u64 {
        self.workers.iter().map(|w| w.requests).sum()
    }

    fn successes(&self) -> u64 {
        self.workers.iter().map(|w| w.successes).sum()
    }

    fn failures(&self) -> u64 {
        self.requests() - self.successes()
    }

    fn retries(&self) -> u64 {
        self.workers.iter().map(|w| w.retries).sum()
    }

    fn stopped(&self) -> &ServerReport {
        &self.servers[STOPPED]
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_worker: Vec<String> = self
            .workers
            .iter()
            .map(|w| w.requests.to_string())
            .collect();
        writeln!(
            f,
            "{} requests in {:.2} s by {} workers ({}): {} succeeded, {} failed, {} retries",
            self.requests(),
            self.elapsed.as_secs_f64(),
            self.workers.len(),
            per_worker.join(" "),
            self.successes(),
            self.failures(),
            self.retries(),
        )?;
        for s in &self.servers {
            write!(
                f,
                "  {:<6} answered {:>6}; attempts on its endpoint {:>6}, failed {:>4}",
                s.name, s.served, s.attempts, s.failed
            )?;
            if s.after_close > 0 {
                write!(f, ", {} after it was closed (a bug)", s.after_close)?;
            }
            writeln!(f)?;
        }
        let stopped = self.stopped();
        write!(
            f,
            "  {} was removed after {:.2} s; since then {} attempts on it, {} answered by it",
            stopped.name,
            self.removal.after.as_secs_f64(),
            stopped.attempts - self.removal.attempts,
            stopped.served - self.removal.served,
        )?;
        if let Some(error) = self.workers.iter().find_map(|w| w.last_error.as_deref()) {
            write!(f, "\n  a failed request: {error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_for_two_seconds() {
        let options = Options {
            duration: Duration::from_secs(2),
            consul: None,
        };
        let summary = run(&options).unwrap();
        println!("{summary}");

        assert_eq!(summary.workers.len(), WORKERS);
        for (i, worker) in summary.workers.iter().enumerate() {
            assert!(worker.requests > 0, "worker {i} made no request\n{summary}");
        }
        assert_eq!(summary.failures(), 0, "every request succeeds\n{summary}");

        let stopped = summary.stopped();
        assert!(
            stopped.failed > 0 && summary.retries() > 0,
            "requests to the stopped server failed and were retried\n{summary}"
        );
        assert_eq!(
            (stopped.attempts, stopped.served),
            (summary.removal.attempts, summary.removal.served),
            "nothing reached {} after its deregistration was served\n{summary}",
            stopped.name
        );
        for server in &summary.servers {
            assert!(server.served > 0, "{} answered requests", server.name);
            assert_eq!(server.after_close, 0, "{} used after close", server.name);
        }
    }
}
