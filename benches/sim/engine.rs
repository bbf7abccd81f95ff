//! The discrete-event engine: open-loop Poisson arrivals, servers with a few slots
//! and a FIFO queue each, and waypost's real balancers picking on a `ManualClock`
//! that the engine moves to each event's virtual time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use waypost::ManualClock;
use waypost::lb::Pick;

use super::client::{Client, RETRY_TIMEOUT, Setup};
use super::rng::Rng;
use super::scenario::{CONCURRENCY, FAST_FAILURE, Fate, SERVERS, Scenario};

/// How many picks a retry makes at most to find another server than the one that
/// failed (what `Retry` does).
const REPICKS: usize = 8;

/// How long a run lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Length {
    /// This many requests arrive; the run goes on until every one has ended.
    Requests(usize),
    /// Requests arrive for `arrivals` seconds; the run stops at `cutoff` seconds, and
    /// a request still open then counts with its time so far (censored).
    Window { arrivals: f64, cutoff: f64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub scenario: Scenario,
    pub setup: Setup,
    pub length: Length,
    pub seed: u64,
    /// The width of a time bucket of [`Run::buckets`], in seconds.
    pub bucket: f64,
}

/// What one run measured.
#[derive(Debug)]
pub struct Run {
    pub scenario: Scenario,
    pub setup: Setup,
    /// Each request's latency (from its arrival to its last attempt's end), in
    /// nanoseconds, in the order they ended.
    pub latencies: Vec<u64>,
    pub requests: usize,
    /// Requests whose last attempt failed.
    pub errors: usize,
    /// Attempts sent, retries included.
    pub attempts: u64,
    /// Retries the budget refused.
    pub refused: u64,
    /// Attempts sent to each server.
    pub per_server: [u64; SERVERS],
    /// Per bucket of send time: (attempts sent to the odd server, all attempts).
    pub buckets: Vec<(u64, u64)>,
    pub ejections: usize,
    /// Requests still open at the cutoff (a [`Length::Window`] run).
    pub censored: usize,
    /// At the cutoff, before the open picks were dropped: the balancer's in-flight
    /// counts, and the picks actually open on each server.
    pub open_at_cutoff: Option<(Option<Vec<usize>>, Vec<usize>)>,
    /// The balancer's in-flight counts once every pick has ended.
    pub in_flight_after: Option<Vec<usize>>,
    /// Virtual seconds from the start to the last event.
    pub end: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival,
    Done(usize),
}

/// One request: its arrival, its attempts, and the pick of its current attempt,
/// held from the pick to the attempt's end.
struct Live {
    arrived: u64,
    attempts: u32,
    pick: Option<Pick<usize>>,
    fate: Fate,
}

#[derive(Default)]
struct Server {
    busy: usize,
    queue: VecDeque<usize>,
}

fn nanos(secs: f64) -> u64 {
    (secs * 1e9).round() as u64
}

struct Sim {
    scenario: Scenario,
    client: Client,
    clock: ManualClock,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    servers: Vec<Server>,
    live: Vec<Live>,
    service: Rng,
    fates: Rng,
    bucket: u64,
    run: Run,
}

impl Sim {
    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    /// Moves the virtual time, and the balancers' clock with it, to `at`.
    fn advance(&mut self, at: u64) {
        if at > self.now {
            self.clock.advance(Duration::from_nanos(at - self.now));
            self.now = at;
        }
    }

    fn arrive(&mut self) {
        let id = self.live.len();
        self.live.push(Live {
            arrived: self.now,
            attempts: 0,
            pick: None,
            fate: Fate::Served,
        });
        self.run.requests += 1;
        if let Some(budget) = &self.client.budget {
            budget.deposit();
        }
        self.send(id, None);
    }

    /// Picks a server for request `id`'s next attempt (not `avoid` if the balancer
    /// offers another within a few picks) and hands the attempt to it.
    fn send(&mut self, id: usize, avoid: Option<usize>) {
        let balancer = &self.client.balancer;
        let mut pick = balancer.pick().expect("a pick from a fixed set");
        if let Some(avoid) = avoid {
            for _ in 1..REPICKS {
                if *pick != avoid {
                    break;
                }
                pick = balancer.pick().expect("a pick from a fixed set");
            }
        }
        let server = *pick;
        self.run.per_server[server] += 1;
        self.run.attempts += 1;
        let bucket = (self.now / self.bucket) as usize;
        if self.run.buckets.len() <= bucket {
            self.run.buckets.resize(bucket + 1, (0, 0));
        }
        self.run.buckets[bucket].0 += u64::from(server == self.scenario.odd());
        self.run.buckets[bucket].1 += 1;
        let (share, how) = self.scenario.failures(server);
        let fate = if self.fates.chance(share) {
            how
        } else {
            Fate::Served
        };
        let live = &mut self.live[id];
        live.attempts += 1;
        live.pick = Some(pick);
        live.fate = fate;
        if fate == Fate::FailsFast {
            self.schedule(self.now + nanos(FAST_FAILURE), Event::Done(id));
        } else if self.servers[server].busy < CONCURRENCY {
            self.servers[server].busy += 1;
            self.start(id, server);
        } else {
            self.servers[server].queue.push_back(id);
        }
    }

    fn start(&mut self, id: usize, server: usize) {
        let mean = self.scenario.mean_service(server, self.now as f64 / 1e9);
        let service = self.service.exp(mean);
        self.schedule(self.now + nanos(service), Event::Done(id));
    }

    fn done(&mut self, id: usize) {
        let live = &mut self.live[id];
        let pick = live.pick.take().expect("an attempt in progress");
        let fate = live.fate;
        let server = *pick;
        if fate != Fate::FailsFast {
            let next = self.servers[server].queue.pop_front();
            match next {
                Some(next) => self.start(next, server),
                None => self.servers[server].busy -= 1,
            }
        }
        if fate == Fate::Served {
            pick.success();
            self.finish(id, true);
        } else {
            pick.failure();
            if self.may_retry(id) {
                self.send(id, Some(server));
            } else {
                self.finish(id, false);
            }
        }
    }

    /// `Retry`'s rule: attempts left, the timeout not passed, and the budget (if any)
    /// allowing one more.
    fn may_retry(&mut self, id: usize) -> bool {
        let live = &self.live[id];
        if live.attempts >= self.client.max_attempts
            || self.now >= live.arrived + RETRY_TIMEOUT.as_nanos() as u64
        {
            return false;
        }
        match &self.client.budget {
            Some(budget) if !budget.try_withdraw() => {
                self.run.refused += 1;
                false
            }
            _ => true,
        }
    }

    fn finish(&mut self, id: usize, ok: bool) {
        self.run.latencies.push(self.now - self.live[id].arrived);
        self.run.errors += usize::from(!ok);
    }

    /// Counts the requests open at the cutoff with their time so far, and checks the
    /// balancer's counts before and after their picks are dropped.
    fn cut(&mut self, cutoff: u64) {
        self.advance(cutoff);
        let mut open = vec![0; SERVERS];
        for live in &self.live {
            if let Some(pick) = &live.pick {
                open[**pick] += 1;
            }
        }
        self.run.open_at_cutoff = Some((self.client.in_flight(), open));
        for live in &mut self.live {
            if live.pick.take().is_some() {
                self.run.latencies.push(cutoff - live.arrived);
                self.run.censored += 1;
            }
        }
    }
}

/// Runs one scenario with one balancer.
pub fn run(config: &Config) -> Run {
    let scenario = config.scenario;
    let mut rng = Rng::new(config.seed);
    let mut arrivals = rng.fork();
    let service = rng.fork();
    let fates = rng.fork();
    let clock = ManualClock::new();
    let client = Client::new(config.setup, &clock, rng.next_u64());
    let (limit, arrivals_end, cutoff) = match config.length {
        Length::Requests(n) => (n, u64::MAX, None),
        Length::Window { arrivals, cutoff } => (usize::MAX, nanos(arrivals), Some(nanos(cutoff))),
    };
    let mut sim = Sim {
        scenario,
        client,
        clock,
        now: 0,
        seq: 0,
        events: BinaryHeap::new(),
        servers: (0..SERVERS).map(|_| Server::default()).collect(),
        live: Vec::new(),
        service,
        fates,
        bucket: nanos(config.bucket),
        run: Run {
            scenario,
            setup: config.setup,
            latencies: Vec::new(),
            requests: 0,
            errors: 0,
            attempts: 0,
            refused: 0,
            per_server: [0; SERVERS],
            buckets: Vec::new(),
            ejections: 0,
            censored: 0,
            open_at_cutoff: None,
            in_flight_after: None,
            end: 0.0,
        },
    };
    let gap = 1.0 / scenario.arrival_rate();
    sim.schedule(nanos(arrivals.exp(gap)), Event::Arrival);
    while let Some(&Reverse((at, _, event))) = sim.events.peek() {
        if cutoff.is_some_and(|cutoff| at > cutoff) {
            break;
        }
        sim.events.pop();
        sim.advance(at);
        match event {
            Event::Arrival => {
                sim.arrive();
                let next = at + nanos(arrivals.exp(gap));
                if sim.run.requests < limit && next < arrivals_end {
                    sim.schedule(next, Event::Arrival);
                }
            }
            Event::Done(id) => sim.done(id),
        }
    }
    if let Some(cutoff) = cutoff {
        sim.cut(cutoff);
    }
    sim.run.in_flight_after = sim.client.in_flight();
    sim.run.ejections = sim.client.ejections();
    sim.run.end = sim.now as f64 / 1e9;
    sim.run
}
