//! `SlowStart`: an instance that joins the set takes a growing share of the calls.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::internal::rand;
use crate::lb::table::{self, Keep, Table};
use crate::lb::{Balancer, Pick, Usable};
use crate::{Clock, DeriveAny, Derived, Endpoints, Error, Instance, Result};

/// Envoy's `slow_start_window` is required there; 30 s is waypost's default.
const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
/// Envoy's default `aggression`: a linear ramp.
const DEFAULT_AGGRESSION: f64 = 1.0;
/// Envoy's default `min_weight_percent`.
const DEFAULT_MIN_PERCENT: f64 = 10.0;

/// Not ramping: an instance of the first set, or one whose window is over.
const STEADY: u64 = u64::MAX;

/// Wraps any [`Balancer`] so that an instance added after the first set takes a share
/// of calls that grows over a window, instead of its full share at once: a new
/// instance warms its caches, JIT and connection pools on a trickle, not a flood.
///
/// # Algorithm
/// Envoy's slow start: during the window after an instance joins, its weight is
/// multiplied by `max(min_weight, (t / window)^(1 / aggression))`, `t` being the time
/// since it joined (defaults: a 30 s window, aggression 1.0 for a linear ramp, a
/// minimum of 10 %). Here the factor is applied as an acceptance: when the inner
/// balancer's choice is ramping with factor `f`, it is taken with probability `f`,
/// else the inner balancer chooses again ([`Balancer::pick_if`]), so an instance's
/// share of the picks it would get is scaled by `f`, whatever the inner balancer.
/// (With [`P2c`](crate::lb::P2c), whose choice favours an instance with few calls in
/// flight, as a new one is, the ramp is what keeps it from being flooded.)
///
/// Instances of the first set the endpointer serves do not ramp (the client starts,
/// not the instances). While no instance is ramping, a pick costs the inner pick and
/// one relaxed load: no clock read. During a ramp a pick reads the [`Clock`] once.
///
/// ```
/// use std::time::Duration;
/// use waypost::{FixedEndpointer, ManualClock};
/// use waypost::lb::{Balancer, RoundRobin, SlowStart};
///
/// let lb = SlowStart::builder(RoundRobin::new(FixedEndpointer::new(vec!["a", "b"])))
///     .window(Duration::from_secs(60))
///     .clock(ManualClock::new())
///     .build()?;
/// assert!(lb.pick().is_ok()); // the first set does not ramp
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct SlowStart<B> {
    inner: B,
    shared: Arc<Shared>,
    table: Derived<Table<Ramp>>,
}

/// Configures a [`SlowStart`]; made by [`SlowStart::builder`].
#[must_use = "a builder does nothing until build()"]
pub struct SlowStartBuilder<B> {
    inner: B,
    window: Duration,
    aggression: f64,
    min_percent: f64,
    clock: Arc<dyn Clock>,
}

struct Shared {
    clock: Arc<dyn Clock>,
    epoch: Instant,
    window: u64,
    aggression: f64,
    min: f64,
    /// A first set has been seen: instances new from now on ramp.
    started: AtomicBool,
    /// Some instance may be ramping (cleared by a pick past `ramp_until`).
    ramping: AtomicBool,
    /// When the last ramp begun ends (nanoseconds since the epoch).
    ramp_until: AtomicU64,
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The factor of an instance that joined at `joined`, at `now`.
    fn factor(&self, joined: u64, now: u64) -> f64 {
        if joined == STEADY {
            return 1.0;
        }
        let t = now.saturating_sub(joined);
        if t >= self.window {
            return 1.0;
        }
        let ramp = (t as f64 / self.window as f64).powf(1.0 / self.aggression);
        ramp.max(self.min)
    }
}

/// When one instance joined (nanoseconds since the epoch), or [`STEADY`].
pub(crate) struct Ramp {
    joined: AtomicU64,
}

impl Keep<Ramp> for Arc<Shared> {
    fn make(&self, _: &Instance) -> Ramp {
        let joined = if self.started.load(Ordering::Relaxed) {
            let now = self.nanos(self.clock.now());
            self.ramp_until
                .fetch_max(now.saturating_add(self.window), Ordering::Relaxed);
            self.ramping.store(true, Ordering::Relaxed);
            now
        } else {
            STEADY
        };
        Ramp {
            joined: AtomicU64::new(joined),
        }
    }

    fn changed(&self, states: &[Arc<Ramp>], _: &[Arc<Ramp>]) {
        if !states.is_empty() {
            self.started.store(true, Ordering::Relaxed);
        }
    }
}

impl<B> SlowStartBuilder<B> {
    /// How long a new instance's ramp lasts. Default: 30 s. Must not be zero.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The ramp's shape: the factor is `(t / window)^(1 / aggression)`. Default: 1.0
    /// (linear, Envoy's default); above 1 the ramp rises faster at first. Must be
    /// positive and finite.
    pub fn aggression(mut self, aggression: f64) -> Self {
        self.aggression = aggression;
        self
    }

    /// The smallest factor, in percent. Default: 10 (Envoy's `min_weight_percent`).
    /// From 0 to 100.
    pub fn min_weight_percent(mut self, percent: f64) -> Self {
        self.min_percent = percent;
        self
    }

    /// The clock the ramp is read on. Default: [`SystemClock`](crate::SystemClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The balancer, or [`Error::InvalidConfig`] for a setting out of range or an
    /// inner balancer that cannot attach state to its endpointer.
    pub fn build<E: 'static>(self) -> Result<SlowStart<B>>
    where
        B: Balancer<E>,
    {
        if self.window.is_zero() {
            return Err(Error::invalid_config("window", "must not be zero"));
        }
        if !(self.aggression.is_finite() && self.aggression > 0.0) {
            return Err(Error::invalid_config(
                "aggression",
                "must be positive and finite",
            ));
        }
        if !(0.0..=100.0).contains(&self.min_percent) {
            return Err(Error::invalid_config(
                "min_weight_percent",
                "must be from 0 to 100",
            ));
        }
        let shared = Arc::new(Shared {
            epoch: self.clock.now(),
            clock: self.clock,
            window: self.window.as_nanos().min(u128::from(u64::MAX - 1)) as u64,
            aggression: self.aggression,
            min: self.min_percent / 100.0,
            started: AtomicBool::new(false),
            ramping: AtomicBool::new(false),
            ramp_until: AtomicU64::new(0),
        });
        let table = table::track_through(&self.inner, Arc::new(shared.clone()))?;
        Ok(SlowStart {
            inner: self.inner,
            shared,
            table,
        })
    }
}

impl<B> SlowStart<B> {
    /// Slow start around `inner` with the defaults (30 s, linear, from 10 %).
    pub fn new<E: 'static>(inner: B) -> Result<Self>
    where
        B: Balancer<E>,
    {
        SlowStart::builder(inner).build()
    }

    /// A builder starting from the defaults of [`new`](SlowStart::new).
    pub fn builder(inner: B) -> SlowStartBuilder<B> {
        SlowStartBuilder {
            inner,
            window: DEFAULT_WINDOW,
            aggression: DEFAULT_AGGRESSION,
            min_percent: DEFAULT_MIN_PERCENT,
            clock: crate::clock::system(),
        }
    }

    /// The balancer that picks.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Each endpoint's factor now (1.0 when not ramping), in the order of `snapshot`;
    /// `None` for a snapshot this balancer keeps no state for.
    pub fn factors<E>(&self, snapshot: &Endpoints<E>) -> Option<Vec<f64>> {
        let table = snapshot.derived(&self.table)?;
        let now = self.shared.nanos(self.shared.clock.now());
        let joined = table
            .states
            .iter()
            .map(|r| r.joined.load(Ordering::Relaxed));
        Some(joined.map(|j| self.shared.factor(j, now)).collect())
    }

    fn pick_ramped<E: 'static>(&self, usable: Option<&Usable<'_, E>>) -> Result<Pick<E>>
    where
        B: Balancer<E>,
    {
        let shared = &*self.shared;
        if !shared.ramping.load(Ordering::Relaxed) {
            return match usable {
                None => self.inner.pick(),
                Some(usable) => self.inner.pick_if(usable),
            };
        }
        let now = shared.nanos(shared.clock.now());
        if now >= shared.ramp_until.load(Ordering::Relaxed) {
            // Every ramp begun is over.
            shared.ramping.store(false, Ordering::Relaxed);
            return match usable {
                None => self.inner.pick(),
                Some(usable) => self.inner.pick_if(usable),
            };
        }
        // One draw per pick, mixed with the position: the same endpoint gets the same
        // answer however often the inner balancer asks within this pick.
        let draw = rand::next_u64();
        let accept = |snapshot: &Endpoints<E>, i: usize| {
            let factor = match snapshot.derived(&self.table) {
                Some(table) => shared.factor(table.get(i).joined.load(Ordering::Relaxed), now),
                None => 1.0,
            };
            let unit = (rand::mix(draw ^ i as u64) >> 11) as f64 / (1u64 << 53) as f64;
            unit < factor && usable.is_none_or(|usable| usable(snapshot, i))
        };
        self.inner.pick_if(&accept)
    }
}

impl<E: 'static, B: Balancer<E>> Balancer<E> for SlowStart<B> {
    #[inline]
    fn pick(&self) -> Result<Pick<E>> {
        self.pick_ramped(None)
    }

    fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
        self.pick_ramped(Some(usable))
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        self.inner.attach(derive)
    }
}

impl<B: fmt::Debug> fmt::Debug for SlowStart<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowStart")
            .field("inner", &self.inner)
            .field("window", &Duration::from_nanos(self.shared.window))
            .field("aggression", &self.shared.aggression)
            .field("min", &self.shared.min)
            .finish()
    }
}

impl<B: fmt::Debug> fmt::Debug for SlowStartBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowStartBuilder")
            .field("inner", &self.inner)
            .field("window", &self.window)
            .finish()
    }
}
