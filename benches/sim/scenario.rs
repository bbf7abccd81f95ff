//! The simulated servers of each scenario: how fast each serves, and how often it fails.

/// Servers in every scenario.
pub const SERVERS: usize = 10;
/// Requests a server serves at once; the rest wait in its FIFO queue.
pub const CONCURRENCY: usize = 4;
/// A normal server's mean service time, in seconds.
pub const BASE: f64 = 0.010;
/// How soon a request that fails at once (scenario 2) comes back, in seconds.
pub const FAST_FAILURE: f64 = 0.001;
/// Scenario 4: the time over which the odd server slows down to [`DEGRADED`]× normal.
pub const RAMP: f64 = 60.0;
/// Scenario 4: how much slower the odd server ends up.
pub const DEGRADED: f64 = 10.0;
/// Scenario 3: each server's speed, as a multiple of the slowest.
pub const SPEEDS: [f64; SERVERS] = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// 1. One server 10× slower than the others.
    SlowServer,
    /// 2. One server fails half of its requests at once (1 ms).
    FailingServer,
    /// 3. Servers of mixed speed (1×..4×), arrivals at 95 % of capacity.
    MixedCapacity,
    /// 4. One server slows down linearly to 10× over a minute.
    Degrading,
    /// 5. (Beyond the four asked for.) Every server fails half of its requests, each
    ///    failure after a normal service: what retries add to a failing service.
    Brownout,
}

/// How a request sent to a server ends, decided when it reaches the server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fate {
    /// Queued, served, succeeds.
    Served,
    /// Queued, served (taking a slot for a normal service time), then fails.
    ServedFailing,
    /// Fails at once, after [`FAST_FAILURE`], without queueing or taking a slot.
    FailsFast,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::SlowServer,
        Scenario::FailingServer,
        Scenario::MixedCapacity,
        Scenario::Degrading,
        Scenario::Brownout,
    ];

    pub fn number(self) -> usize {
        match self {
            Scenario::SlowServer => 1,
            Scenario::FailingServer => 2,
            Scenario::MixedCapacity => 3,
            Scenario::Degrading => 4,
            Scenario::Brownout => 5,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::SlowServer => "one server 10× slower",
            Scenario::FailingServer => "one server fails 50 % at once",
            Scenario::MixedCapacity => "mixed speeds 1×..4×, 95 % load",
            Scenario::Degrading => "one server slows to 10× over 60 s",
            Scenario::Brownout => "every server fails 50 % (extra)",
        }
    }

    /// The server the scenario is about: the slow, failing or degrading one, or in
    /// scenario 3 one of the slowest.
    pub fn odd(self) -> usize {
        match self {
            Scenario::MixedCapacity => 0,
            _ => SERVERS - 1,
        }
    }

    /// Arrivals as a share of the total capacity at the start.
    pub fn load(self) -> f64 {
        match self {
            Scenario::MixedCapacity => 0.95,
            _ => 0.70,
        }
    }

    /// Server `i`'s mean service time, in seconds, for a request whose service starts
    /// at virtual time `t` (seconds from the start of the run).
    pub fn mean_service(self, i: usize, t: f64) -> f64 {
        let odd = i == self.odd();
        match self {
            Scenario::SlowServer if odd => BASE * 10.0,
            Scenario::MixedCapacity => BASE / SPEEDS[i],
            Scenario::Degrading if odd => BASE * (1.0 + (DEGRADED - 1.0) * (t / RAMP).min(1.0)),
            _ => BASE,
        }
    }

    /// Server `i`'s share of requests that fail, and how.
    pub fn failures(self, i: usize) -> (f64, Fate) {
        match self {
            Scenario::FailingServer if i == self.odd() => (0.5, Fate::FailsFast),
            Scenario::Brownout => (0.5, Fate::ServedFailing),
            _ => (0.0, Fate::Served),
        }
    }

    /// Server `i`'s capacity at time `t`, in requests per second.
    pub fn server_capacity(self, i: usize, t: f64) -> f64 {
        CONCURRENCY as f64 / self.mean_service(i, t)
    }

    /// All servers' capacity at time `t`, in requests per second.
    pub fn capacity(self, t: f64) -> f64 {
        (0..SERVERS).map(|i| self.server_capacity(i, t)).sum()
    }

    /// Poisson arrivals per second: [`load`](Scenario::load) × the capacity at the start.
    pub fn arrival_rate(self) -> f64 {
        self.load() * self.capacity(0.0)
    }
}
