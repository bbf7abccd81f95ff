//! `PeakEwma`: the cheaper of two random endpoints, the cost being a peak-sensitive
//! moving average of latency times the calls in flight.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::lb::choose;
use crate::lb::random::Source;
use crate::lb::table::{self, Keep, Table};
use crate::lb::{CallObserver, Outcome, Pick};
use crate::{Clock, Derived, Endpointer, Endpoints, Error, Instance, Result};

/// Finagle's, Linkerd's and Envoy's decay time (τ) for latency estimates.
const DEFAULT_DECAY: Duration = Duration::from_secs(10);
/// Linkerd's default RTT for an instance with no history yet.
const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// Picks the cheaper of two endpoints drawn at random, the cost of an endpoint being
/// its latency estimate times its calls in flight plus one.
///
/// # Algorithm
/// Peak EWMA, as Finagle (`Balancers.p2cPeakEwma`) and Linkerd define it. Each
/// instance keeps an estimate of its round-trip time, measured from the pick to the
/// end of the call (a success, a failure or a drop alike):
/// - a sample slower than the current estimate replaces it at once (the *peak*), so a
///   slowing instance is avoided from its first slow answer;
/// - a faster sample is blended in with weight `1 - exp(-Δt/τ)`, `Δt` being the time
///   since the last update: `estimate = estimate·w + sample·(1 - w)`, `w = exp(-Δt/τ)`;
/// - with no samples the estimate decays towards zero as `exp(-Δt/τ)`, so an instance
///   that has not been tried for a while looks cheap and is tried again.
///
/// The cost is `estimate × (in_flight + 1)`, and a pick takes the cheaper of two
/// distinct random endpoints, a tie going to a coin toss. τ defaults to 10 s (Finagle,
/// Linkerd, Envoy). An instance new to the set starts at 30 ms (Linkerd's default RTT),
/// decaying as above, so new instances are tried soon without being flooded.
///
/// # Pair it with outlier ejection
/// An instance that fails fast looks fast: its errors come back quicker than other
/// instances' answers, so peak EWMA sends it *more* calls. Wrap the balancer in
/// [`OutlierEjection`](crate::lb::OutlierEjection), which sets such an instance aside
/// after consecutive failures; see `benches/README.md` for the simulated effect.
///
/// # State and cost
/// As [`P2c`](crate::lb::P2c): per-instance state kept beside each snapshot, keyed by
/// address, on a line of its own; no lock and no allocation per pick. A pick reads the
/// [`Clock`] once, and so does the end of its call.
///
/// ```
/// use std::time::Duration;
/// use waypost::{Clock, FixedEndpointer, ManualClock};
/// use waypost::lb::{Balancer, PeakEwma};
///
/// let clock = ManualClock::new();
/// let endpointer = FixedEndpointer::new(vec!["slow", "fast"]);
/// let lb = PeakEwma::builder(&endpointer).clock(clock.clone()).build()?;
/// for (name, rtt) in [("slow", 200), ("fast", 10)] {
///     // One call to each, timed on the manual clock.
///     let pick = loop {
///         let pick = lb.pick()?;
///         if *pick == name { break pick; }
///     };
///     clock.advance(Duration::from_millis(rtt));
///     pick.success();
/// }
/// assert_eq!(*lb.pick()?, "fast");
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct PeakEwma<P> {
    endpointer: P,
    source: Source,
    shared: Arc<Shared>,
    table: Derived<Table<Ewma>>,
}

/// Configures a [`PeakEwma`]; made by [`PeakEwma::builder`].
#[must_use = "a builder does nothing until build()"]
pub struct PeakEwmaBuilder<P> {
    endpointer: P,
    decay: Duration,
    default_rtt: Duration,
    clock: Arc<dyn Clock>,
    seed: Option<u64>,
}

/// What every instance's state reads: the clock and the constants.
struct Shared {
    clock: Arc<dyn Clock>,
    epoch: Instant,
    /// τ in nanoseconds.
    tau: f64,
    default_rtt: f64,
}

impl Shared {
    /// Nanoseconds since the balancer was built, on its clock.
    #[inline]
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// One instance's latency estimate and calls in flight, on a line of its own.
#[repr(align(128))]
pub(crate) struct Ewma {
    in_flight: AtomicUsize,
    /// The estimate in nanoseconds, as `f64` bits, as of `stamp`.
    estimate: AtomicU64,
    /// When the estimate was last set, in nanoseconds since the epoch.
    stamp: AtomicU64,
    shared: Arc<Shared>,
}

impl Ewma {
    /// The estimate decayed to `now` (nanoseconds since the epoch).
    #[inline]
    fn estimate(&self, now: u64) -> f64 {
        let estimate = f64::from_bits(self.estimate.load(Ordering::Relaxed));
        estimate * self.weight(now, self.stamp.load(Ordering::Relaxed))
    }

    /// `exp(-Δt/τ)`.
    #[inline]
    fn weight(&self, now: u64, stamp: u64) -> f64 {
        (-(now.saturating_sub(stamp) as f64) / self.shared.tau).exp()
    }

    #[inline]
    fn cost(&self, now: u64) -> f64 {
        self.estimate(now) * (self.in_flight.load(Ordering::Relaxed) + 1) as f64
    }

    /// Folds in one sample of `rtt` nanoseconds taken at `now`.
    fn observe(&self, rtt: f64, now: u64) {
        let mut bits = self.estimate.load(Ordering::Relaxed);
        loop {
            let w = self.weight(now, self.stamp.load(Ordering::Relaxed));
            let decayed = f64::from_bits(bits) * w;
            let next = if rtt > decayed {
                rtt
            } else {
                decayed + rtt * (1.0 - w)
            };
            match self.estimate.compare_exchange_weak(
                bits,
                next.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now_bits) => bits = now_bits,
            }
        }
        self.stamp.fetch_max(now, Ordering::Relaxed);
    }
}

impl<E> CallObserver<E> for Ewma {
    fn ended(&self, _: &Endpoints<E>, _: usize, _: Outcome, started: Option<Instant>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(started) = started {
            let now = self.shared.clock.now();
            let rtt = now.saturating_duration_since(started).as_nanos() as f64;
            self.observe(rtt, self.shared.nanos(now));
        }
    }
}

impl Keep<Ewma> for Arc<Shared> {
    fn make(&self, _: &Instance) -> Ewma {
        Ewma {
            in_flight: AtomicUsize::new(0),
            estimate: AtomicU64::new(self.default_rtt.to_bits()),
            stamp: AtomicU64::new(self.nanos(self.clock.now())),
            shared: self.clone(),
        }
    }
}

impl<P> PeakEwmaBuilder<P> {
    /// The decay time τ of the moving average. Default: 10 s (Finagle, Linkerd,
    /// Envoy). A shorter τ follows changes faster and noise more. Must not be zero.
    pub fn decay(mut self, tau: Duration) -> Self {
        self.decay = tau;
        self
    }

    /// The estimate an instance new to the set starts from. Default: 30 ms
    /// (Linkerd). It decays like any estimate, so new instances are tried soon.
    pub fn default_rtt(mut self, rtt: Duration) -> Self {
        self.default_rtt = rtt;
        self
    }

    /// The clock latencies and decay are read on. Default: [`SystemClock`](crate::SystemClock);
    /// tests pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Draws that follow from `seed` (see [`P2c::with_seed`](crate::lb::P2c::with_seed)).
    /// Default: each thread's own generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The balancer, or [`Error::InvalidConfig`] for a zero decay or an endpointer
    /// that cannot carry derived data.
    pub fn build<E: 'static>(self) -> Result<PeakEwma<P>>
    where
        P: Endpointer<E>,
    {
        if self.decay.is_zero() {
            return Err(Error::invalid_config("decay", "must not be zero"));
        }
        let shared = Arc::new(Shared {
            epoch: self.clock.now(),
            clock: self.clock,
            tau: self.decay.as_nanos() as f64,
            default_rtt: self.default_rtt.as_nanos() as f64,
        });
        let table = table::track(&self.endpointer, Arc::new(shared.clone()))?;
        Ok(PeakEwma {
            endpointer: self.endpointer,
            source: self.seed.map_or_else(Source::thread, Source::seeded),
            shared,
            table,
        })
    }
}

impl<P> PeakEwma<P> {
    /// A peak-EWMA balancer over `endpointer` with the defaults: τ = 10 s, 30 ms for
    /// new instances, the system clock.
    pub fn new<E: 'static>(endpointer: P) -> Result<Self>
    where
        P: Endpointer<E>,
    {
        PeakEwma::builder(endpointer).build()
    }

    /// A builder starting from the defaults of [`new`](PeakEwma::new).
    pub fn builder(endpointer: P) -> PeakEwmaBuilder<P> {
        PeakEwmaBuilder {
            endpointer,
            decay: DEFAULT_DECAY,
            default_rtt: DEFAULT_RTT,
            clock: crate::clock::system(),
            seed: None,
        }
    }

    /// The endpointer this balancer picks from.
    pub fn endpointer(&self) -> &P {
        &self.endpointer
    }

    /// Each endpoint's latency estimate now, in the order of `snapshot` (taken from
    /// this balancer's endpointer); `None` for a snapshot it keeps no state for.
    pub fn estimates<E>(&self, snapshot: &Endpoints<E>) -> Option<Vec<Duration>> {
        let table = snapshot.derived(&self.table)?;
        let now = self.shared.nanos(self.shared.clock.now());
        let estimates = table.states.iter().map(|s| s.estimate(now));
        Some(
            estimates
                .map(|ns| Duration::from_nanos(ns as u64))
                .collect(),
        )
    }

    /// The calls in flight on each endpoint of `snapshot`, as [`estimates`](PeakEwma::estimates).
    pub fn in_flight<E>(&self, snapshot: &Endpoints<E>) -> Option<Vec<usize>> {
        let table = snapshot.derived(&self.table)?;
        Some(
            table
                .states
                .iter()
                .map(|s| s.in_flight.load(Ordering::Relaxed))
                .collect(),
        )
    }

    #[inline]
    fn choose<E: 'static>(
        &self,
        endpoints: Endpoints<E>,
        usable: impl Fn(&Endpoints<E>, usize) -> bool,
    ) -> Result<Pick<E>> {
        let n = endpoints.len();
        let table = match choose::table_or_random(&endpoints, &self.table, &self.source)? {
            Ok(table) => table,
            Err(i) => return Ok(Pick::new(endpoints, i)), // no table: unobserved
        };
        let started = self.shared.clock.now();
        let now = self.shared.nanos(started);
        let i = choose::two(&self.source, n, |i| usable(&endpoints, i))
            .choose(|i| table.get(i).cost(now));
        table.get(i).in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(table::observe(
            Pick::new(endpoints, i),
            &self.table,
            Some(started),
        ))
    }
}

choose::two_choice_balancer!(PeakEwma);

impl<P: fmt::Debug> fmt::Debug for PeakEwma<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeakEwma")
            .field("endpointer", &self.endpointer)
            .field("decay", &Duration::from_nanos(self.shared.tau as u64))
            .field(
                "default_rtt",
                &Duration::from_nanos(self.shared.default_rtt as u64),
            )
            .finish()
    }
}

impl<P: fmt::Debug> fmt::Debug for PeakEwmaBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeakEwmaBuilder")
            .field("endpointer", &self.endpointer)
            .field("decay", &self.decay)
            .field("default_rtt", &self.default_rtt)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn state(clock: &ManualClock) -> Ewma {
        let shared = Arc::new(Shared {
            clock: Arc::new(clock.clone()),
            epoch: clock.now(),
            tau: 10e9,
            default_rtt: 30e6,
        });
        shared.make(&Instance::new("a:1"))
    }

    #[test]
    fn a_slower_sample_is_taken_at_once_and_a_faster_one_blended() {
        let clock = ManualClock::new();
        let s = state(&clock);
        assert_eq!(s.estimate(0), 30e6);
        s.observe(100e6, 0);
        assert_eq!(s.estimate(0), 100e6, "peak");
        // τ later, a 10 ms sample: 100·e^-1 + 10·(1 - e^-1).
        let tau = 10_000_000_000;
        s.observe(10e6, tau);
        let e = (-1f64).exp();
        let expected = 100e6 * e + 10e6 * (1.0 - e);
        assert!(
            (s.estimate(tau) - expected).abs() < 1.0,
            "{}",
            s.estimate(tau)
        );
    }

    #[test]
    fn an_idle_estimate_decays_towards_zero() {
        let clock = ManualClock::new();
        let s = state(&clock);
        let e = (-1f64).exp();
        assert!((s.estimate(10_000_000_000) - 30e6 * e).abs() < 1.0);
        assert!(s.estimate(100_000_000_000) < 30e6 * 1e-4);
    }
}
